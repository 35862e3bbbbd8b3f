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
    generated_stream("h264-streams.sh", name, "264")
}

fn pipeline(stream: &Path, decoder: &str, raw_caps: &str) -> String {
    format!(
        "gst-launch-1.0 -q --no-fault filesrc location={} ! h264parse ! {decoder} \
         ! {raw_caps} ! checksumsink",
        stream.display()
    )
}

#[test]
fn h264_controls_match_gstreamers_c_decoder_on_visl() {
    let lab = Lab::new().unwrap_or_else(|e| panic!("{e}"));
    let results = lab.scratch_dir("v4l2stateless-h264").unwrap();
    let mut script = String::from("set -u\n");
    for (name, raw_caps) in STREAMS {
        let path = stream(name);
        for (side, decoder) in [("c", "v4l2slh264dec"), ("ours", "v4l2statelessh264dec")] {
            let base = results.join(format!("{name}.{side}"));
            script.push_str(&traced_run_line(&base, &pipeline(&path, decoder, raw_caps)));
        }
    }
    let out = lab
        .run(&differential_command(&script, &results))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(out.success(), "{}", out.describe());

    let mut table = vec![format!(
        "{:<20} {:>8} {:>8} {:>7} {:>7} {:>10} {:>10}",
        "stream", "jobs C", "jobs us", "out C", "out us", "identical", "same bytes"
    )];
    let mut failures = Vec::new();
    for (name, _) in STREAMS {
        let (c, c_shown) = load_run(&results, name, "c");
        let (ours, our_shown) = load_run(&results, name, "ours");
        let bitstreams = compare_bitstreams(&results, name, &c, &ours);
        let diffs = visl_trace::compare(&c, &ours, &[]);
        let identical = identical_requests(&c, &ours, |n| diffs.iter().any(|d| d.frame == n));
        table.push(format!(
            "{:<20} {:>8} {:>8} {:>7} {:>7} {:>10} {:>10}",
            name,
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
