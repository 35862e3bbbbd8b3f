// SPDX-License-Identifier: MPL-2.0
//! Differential conformance of `v4l2statelessh264dec` on visl: x264 streams generated
//! at test time (baseline; main with a B-pyramid; high with 8x8 transform and the JVT
//! scaling lists; 4 slices per picture; weighted prediction; a long GOP with 4
//! references; MBAFF interlaced frames; a cropped 180x100 picture) are decoded by Debian's `v4l2slh264dec` and by ours with visl's trace
//! events on. Every field of every H.264 control struct (SPS, PPS, scaling matrix,
//! decode params with its 16 DPB entries, slice params with both 32-entry reference
//! lists, prediction weights) must be equal for every request, and both must output as
//! many frames.
//!
//! Both decoders name pictures by input frame number in microseconds, so reference
//! timestamps are compared as they are. visl traces the controls in effect for each
//! request, so a control sent once and inherited by later requests compares by value.
//!
//! One VM boot for all streams. The test FAILS (never skips) when the lab cannot start.

use std::path::{Path, PathBuf};
use std::process::Command;

use mediapass_tests::visl_trace::{self, VislTrace};
use mediapass_tests::vmlab::{Lab, LabCommand, lab_dir};
use mediapass_tests::{plugin_dir, workspace_root};

/// (stream, raw caps after the decoder): the cropped stream must come out at its
/// visible size, not the coded 192x112.
const STREAMS: &[(&str, &str)] = &[
    ("h264-baseline", "video/x-raw"),
    ("h264-main-bpyramid", "video/x-raw"),
    ("h264-high-cqm", "video/x-raw"),
    ("h264-slices", "video/x-raw"),
    ("h264-weightp", "video/x-raw"),
    ("h264-long-gop", "video/x-raw"),
    ("h264-mbaff", "video/x-raw"),
    ("h264-cropped", "video/x-raw,width=180,height=100"),
];

/// Generates a stream with the x264 script (cached per build).
fn stream(name: &str) -> PathBuf {
    let dir = plugin_dir().join("v4l2stateless-streams");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.264"));
    if !path.exists() {
        let tmp = dir.join(format!("{name}.{}.tmp", std::process::id()));
        let script = workspace_root()
            .join("gst-plugin-v4l2stateless/codecparsers/tests/gen/h264-streams.sh");
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

fn pipeline(stream: &Path, decoder: &str, raw_caps: &str) -> String {
    format!(
        "gst-launch-1.0 -q --no-fault filesrc location={} ! h264parse ! {decoder} \
         ! {raw_caps} ! checksumsink",
        stream.display()
    )
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn h264_controls_match_gstreamers_c_decoder_on_visl() {
    let lab = Lab::new().unwrap_or_else(|e| panic!("{e}"));
    let results = lab.scratch_dir("v4l2stateless-h264").unwrap();
    let trace = lab_dir().join("visl-trace.sh");
    let mut script = String::from("set -u\n");
    for (name, raw_caps) in STREAMS {
        let path = stream(name);
        for (side, decoder) in [("c", "v4l2slh264dec"), ("ours", "v4l2statelessh264dec")] {
            let base = results.join(format!("{name}.{side}"));
            script.push_str(&format!(
                "timeout 300 {trace} {base}.trace {cmd} >{base}.checksums 2>{base}.stderr; \
                 echo $? >{base}.status\n",
                trace = trace.display(),
                cmd = pipeline(&path, decoder, raw_caps),
                base = base.display(),
            ));
        }
    }
    let out = lab
        .run(&LabCommand::shell(&script).rw_dir(&results))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(out.success(), "{}", out.describe());

    let mut table = vec![format!(
        "{:<20} {:>8} {:>8} {:>7} {:>7} {:>10}",
        "stream", "jobs C", "jobs us", "out C", "out us", "identical"
    )];
    let mut failures = Vec::new();
    for (name, _) in STREAMS {
        let load = |side: &str| -> (VislTrace, usize) {
            let file = |ext: &str| results.join(format!("{name}.{side}.{ext}"));
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
            "{:<20} {:>8} {:>8} {:>7} {:>7} {:>10}",
            name,
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
