// SPDX-License-Identifier: MPL-2.0
//! Differential conformance of `gst-plugin-v4l2stateless`'s decoders on visl (the
//! kernel's virtual stateless decoder, in the VM lab): for each generated VP8/VP9
//! stream, GStreamer's C decoder (`v4l2slvp8dec`/`v4l2slvp9dec`, Debian's v4l2codecs) and
//! ours run on the same device with visl's trace events on; every field of every
//! control struct of every decode job must be equal, and both must output as many
//! frames.
//!
//! Reference timestamps (`last_frame_ts`, ...) are compared as they are: both decoders
//! name a picture by its input frame number in microseconds, so equal values mean the
//! same reference structure.
//!
//! One VM boot for all streams. The test FAILS (never skips) when the lab cannot start.

use std::path::{Path, PathBuf};
use std::process::Command;

use mediapass_tests::visl_trace::{self, VislTrace};
use mediapass_tests::vmlab::{Lab, LabCommand, lab_dir};
use mediapass_tests::{plugin_dir, workspace_root};

/// (stream, codec): a name for the codec parsers' vpxenc generator, or a libvpx
/// conformance vector shipped in the cros-codecs crate (`cros:` prefix).
const STREAMS: &[(&str, &str)] = &[
    ("vp8-error-resilient", "vp8"),
    ("vp8-altref", "vp8"),
    ("vp8-partitions", "vp8"),
    ("vp8-rt", "vp8"),
    ("vp9-error-resilient", "vp9"),
    ("vp9-altref", "vp9"),
    ("vp9-segmentation", "vp9"),
    ("cros:vp90-2-10-show-existing-frame.vp9.ivf", "vp9"),
    ("cros:vp90-2-10-show-existing-frame2.vp9.ivf", "vp9"),
];

/// A libvpx test vector from the cros-codecs crate, which cargo unpacked into its
/// registry (it is a dev-dependency of the codec parsers).
fn cros_codecs_vector(file: &str) -> PathBuf {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .expect("CARGO_HOME or HOME");
    let registry = cargo_home.join("registry/src");
    std::fs::read_dir(&registry)
        .unwrap_or_else(|e| panic!("{}: {e}", registry.display()))
        .flatten()
        .map(|index| {
            index
                .path()
                .join("cros-codecs-0.0.6/src/codec/vp9/test_data")
                .join(file)
        })
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!(
                "{file} not in any cros-codecs-0.0.6 under {}",
                registry.display()
            )
        })
}

/// Generates a stream with the codec parsers' vpxenc script (cached per build).
fn stream(name: &str) -> PathBuf {
    if let Some(file) = name.strip_prefix("cros:") {
        return cros_codecs_vector(file);
    }
    let dir = plugin_dir().join("v4l2stateless-streams");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.ivf"));
    if !path.exists() {
        let tmp = dir.join(format!("{name}.{}.tmp", std::process::id()));
        let script =
            workspace_root().join("gst-plugin-v4l2stateless/codecparsers/tests/gen/vpx-streams.sh");
        let out = Command::new("bash")
            .arg(&script)
            .arg(name)
            .arg(&tmp)
            .output()
            .expect("bash runs");
        assert!(
            out.status.success(),
            "generating {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::rename(&tmp, &path).unwrap();
    }
    path
}

/// The name results are filed under.
fn file_stem(name: &str) -> &str {
    name.trim_start_matches("cros:")
        .trim_end_matches(".vp9.ivf")
}

fn pipeline(stream: &Path, codec: &str, decoder: &str) -> String {
    let parse = if codec == "vp9" { "! vp9parse " } else { "" };
    format!(
        "gst-launch-1.0 -q --no-fault filesrc location={} ! ivfparse {parse}! {decoder} \
         ! video/x-raw ! checksumsink",
        stream.display()
    )
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn vp8_vp9_controls_match_gstreamers_c_decoders_on_visl() {
    let lab = Lab::new().unwrap_or_else(|e| panic!("{e}"));
    let results = lab.scratch_dir("v4l2stateless-decode").unwrap();
    let trace = lab_trace_script();
    let mut script = String::from("set -u\n");
    for (name, codec) in STREAMS {
        let path = stream(name);
        for (side, decoder) in [
            ("c", format!("v4l2sl{codec}dec")),
            ("ours", format!("v4l2stateless{codec}dec")),
        ] {
            let base = results.join(format!("{}.{side}", file_stem(name)));
            script.push_str(&format!(
                "timeout 300 {trace} {base}.trace {cmd} >{base}.checksums 2>{base}.stderr; \
                 echo $? >{base}.status\n",
                cmd = pipeline(&path, codec, &decoder),
                base = base.display(),
            ));
        }
    }
    let out = lab
        .run(&LabCommand::shell(&script).rw_dir(&results))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(out.success(), "{}", out.describe());

    let mut table = vec![format!(
        "{:<34} {:>8} {:>8} {:>7} {:>7} {:>10}",
        "stream", "jobs C", "jobs us", "out C", "out us", "identical"
    )];
    let mut failures = Vec::new();
    for (name, _) in STREAMS {
        let load = |side: &str| -> (VislTrace, usize) {
            let file = |ext: &str| results.join(format!("{}.{side}.{ext}", file_stem(name)));
            let status = read(&file("status"));
            assert_eq!(
                status.trim(),
                "0",
                "{name} with the {side} decoder failed:\n{}",
                read(&file("stderr"))
            );
            let trace = visl_trace::parse(&read(&file("trace")))
                .unwrap_or_else(|e| panic!("{name} {side}: {e}"));
            assert!(!trace.lost_events, "{name} {side}: ftrace lost events");
            let shown = read(&file("checksums")).lines().count();
            (trace, shown)
        };
        let (c, c_shown) = load("c");
        let (ours, our_shown) = load("ours");
        let diffs = visl_trace::compare(&c, &ours, &[]);
        let identical = (0..c.frames.len().max(ours.frames.len()))
            .filter(|n| !diffs.iter().any(|d| d.frame == *n))
            .count();
        table.push(format!(
            "{:<34} {:>8} {:>8} {:>7} {:>7} {:>10}",
            file_stem(name),
            c.frames.len(),
            ours.frames.len(),
            c_shown,
            our_shown,
            identical
        ));
        if !diffs.is_empty() {
            let shown: Vec<String> = diffs.iter().take(20).map(ToString::to_string).collect();
            failures.push(format!(
                "{name}: {} differences (C left, ours right), first ones:\n  {}",
                diffs.len(),
                shown.join("\n  ")
            ));
        }
        if c_shown != our_shown || c.frames.is_empty() {
            failures.push(format!(
                "{name}: C output {c_shown} frames in {} jobs, ours {our_shown}",
                c.frames.len()
            ));
        }
    }
    println!("{}", table.join("\n"));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The guest-side trace wrapper `visl_trace::capture_argv` uses, for a shell script
/// running several captures in one boot.
fn lab_trace_script() -> String {
    lab_dir().join("visl-trace.sh").display().to_string()
}
