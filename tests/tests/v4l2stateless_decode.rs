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
//! The bitstream bytes of every request (visl's debugfs dump of its OUTPUT buffer) must
//! be identical too: see `visl_differential::compare_bitstreams`.
//!
//! One VM boot for all streams. The test FAILS (never skips) when the lab cannot start.

use std::path::{Path, PathBuf};

use mediapass_tests::visl_differential::{
    compare_bitstreams, differential_command, generated_stream, identical_requests, load_run,
    traced_run_line,
};
use mediapass_tests::visl_trace;
use mediapass_tests::vmlab::Lab;

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
    generated_stream("vpx-streams.sh", name, "ivf")
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

#[test]
fn vp8_vp9_controls_match_gstreamers_c_decoders_on_visl() {
    let lab = Lab::new().unwrap_or_else(|e| panic!("{e}"));
    let results = lab.scratch_dir("v4l2stateless-decode").unwrap();
    let mut script = String::from("set -u\n");
    for (name, codec) in STREAMS {
        let path = stream(name);
        for (side, decoder) in [
            ("c", format!("v4l2sl{codec}dec")),
            ("ours", format!("v4l2stateless{codec}dec")),
        ] {
            let base = results.join(format!("{}.{side}", file_stem(name)));
            script.push_str(&traced_run_line(&base, &pipeline(&path, codec, &decoder)));
        }
    }
    let out = lab
        .run(&differential_command(&script, &results))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(out.success(), "{}", out.describe());

    let mut table = vec![format!(
        "{:<34} {:>8} {:>8} {:>7} {:>7} {:>10} {:>10}",
        "stream", "jobs C", "jobs us", "out C", "out us", "identical", "same bytes"
    )];
    let mut failures = Vec::new();
    for (name, _) in STREAMS {
        let (c, c_shown) = load_run(&results, file_stem(name), "c");
        let (ours, our_shown) = load_run(&results, file_stem(name), "ours");
        let bitstreams = compare_bitstreams(&results, file_stem(name), &c, &ours);
        let diffs = visl_trace::compare(&c, &ours, &[]);
        let identical = identical_requests(&c, &ours, |n| diffs.iter().any(|d| d.frame == n));
        table.push(format!(
            "{:<34} {:>8} {:>8} {:>7} {:>7} {:>10} {:>10}",
            file_stem(name),
            c.frames.len(),
            ours.frames.len(),
            c_shown,
            our_shown,
            identical,
            bitstreams.identical
        ));
        failures.extend(bitstreams.failures);
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
