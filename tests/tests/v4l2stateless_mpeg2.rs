// SPDX-License-Identifier: MPL-2.0
//! Differential conformance of `v4l2statelessmpeg2dec` on visl (VM lab, one boot): for
//! each MPEG-2 stream ffmpeg makes at test time (B-frames over several open GOPs,
//! closed GOPs, custom quantiser matrices, interlaced frame pictures, no B-frames) and
//! each field-picture stream `mediapass_tests::mpeg2_fields` writes (no encoder here
//! makes field pictures: top and bottom field first, I/P and I/P/B field pairs, open and
//! closed GOPs), Debian's `v4l2slmpeg2dec` and ours decode it behind `mpegvideoparse`
//! with visl's trace events on. Every field of `v4l2_ctrl_mpeg2_sequence`, `_picture`
//! and `_quantisation` must be equal for every decode job (one per field picture), and
//! both must output as many frames.
//!
//! Reference timestamps are compared as they are: both decoders name a picture by its
//! input frame number times 1000 ns (and `u64::MAX` for "none"). Two fields are
//! compared by meaning, where the C decoder departs from ISO/IEC 13818-2:
//! - `profile_and_level_indication`: GStreamer 1.22 packs `profile << 4 | level << 1 |
//!   escape`; we send the 8 bits as coded (`escape << 7 | profile << 4 | level`). The
//!   test checks both encode the same profile, level and escape bit.
//! - `chroma_(non_)intra_quantiser_matrix`: GStreamer never sets them (zeros); we send
//!   what 6.3.11 says is in force (the luma matrices unless a chroma one is loaded).
//!   The uAPI marks them relevant for 4:2:2/4:4:4 only, and every stream here is
//!   4:2:0, so the test checks ours equal the luma matrices instead.
//!
//! The bitstream bytes of every request (visl's debugfs dump of its OUTPUT buffer) must
//! be identical too: see `visl_differential::compare_bitstreams`.
//!
//! The test FAILS (never skips) when the lab cannot start.

use std::path::{Path, PathBuf};
use std::process::Command;

use mediapass_tests::mpeg2_fields::FieldStream;
use mediapass_tests::plugin_dir;
use mediapass_tests::visl_differential::{
    compare_bitstreams, differential_command, identical_requests, load_run, traced_run_line,
};
use mediapass_tests::visl_trace::{self, VislTrace};
use mediapass_tests::vmlab::Lab;

/// (name, frames, ffmpeg arguments after `-c:v mpeg2video`).
const STREAMS: &[(&str, u32, &[&str])] = &[
    ("mpeg2-open-gops", 30, &["-g", "12", "-bf", "2"]),
    (
        "mpeg2-closed-gops",
        24,
        // ffmpeg refuses closed GOPs with scene-change detection on.
        &[
            "-g",
            "8",
            "-bf",
            "2",
            "-flags",
            "+cgop",
            "-sc_threshold",
            "1000000000",
        ],
    ),
    (
        "mpeg2-matrices",
        18,
        &[
            "-g",
            "6",
            "-bf",
            "2",
            "-intra_matrix",
            INTRA_MATRIX,
            "-inter_matrix",
            INTER_MATRIX,
            "-alternate_scan",
            "1",
            "-intra_vlc",
            "1",
            "-non_linear_quant",
            "1",
            "-qmax",
            "28",
        ],
    ),
    (
        "mpeg2-interlaced",
        18,
        &["-g", "9", "-bf", "2", "-flags", "+ilme+ildct", "-top", "1"],
    ),
    ("mpeg2-no-b-frames", 20, &["-g", "10", "-bf", "0"]),
];

/// Field-picture streams: (name, stream); every frame is two field pictures.
const FIELD_STREAMS: &[(&str, FieldStream)] = &[
    (
        "mpeg2-fields-ip-tff",
        FieldStream {
            width: 80,
            height: 64,
            top_field_first: true,
            frames: "IPPPPPIPPPPP",
            closed_gops: true,
        },
    ),
    (
        "mpeg2-fields-ipbb-bff",
        FieldStream {
            width: 64,
            height: 96,
            top_field_first: false,
            frames: "IPBBPBBIBBPBBPBB",
            closed_gops: false,
        },
    ),
];

/// Writes a field-picture stream (cached per build).
fn field_stream(name: &str, stream: &FieldStream) -> PathBuf {
    let dir = plugin_dir().join("v4l2stateless-streams");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.m2v"));
    std::fs::write(&path, stream.encode()).unwrap();
    path
}

/// Every stream: (name, path, frames, decode requests).
fn all_streams() -> Vec<(String, PathBuf, usize, usize)> {
    let coded = STREAMS.iter().map(|(name, frames, args)| {
        let frames = *frames as usize;
        (
            name.to_string(),
            stream(name, frames as u32, args),
            frames,
            frames,
        )
    });
    let fields = FIELD_STREAMS.iter().map(|(name, s)| {
        let frames = s.frames.len();
        (name.to_string(), field_stream(name, s), frames, 2 * frames)
    });
    coded.chain(fields).collect()
}

/// Custom matrices (natural order, as ffmpeg takes them); any values 1..=255 do.
const INTRA_MATRIX: &str = "8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,58,59,60,61,62,63,64,65,66,67,68,69,70,71";
const INTER_MATRIX: &str = "90,89,88,87,86,85,84,83,82,81,80,79,78,77,76,75,74,73,72,71,70,69,68,67,66,65,64,63,62,61,60,59,58,57,56,55,54,53,52,51,50,49,48,47,46,45,44,43,42,41,40,39,38,37,36,35,34,33,32,31,30,29,28,27";

/// Fields compared by meaning (see the module documentation).
const BY_MEANING: &[&str] = &[
    "profile_and_level_indication",
    "chroma_intra_quantiser_matrix",
    "chroma_non_intra_quantiser_matrix",
];

/// Encodes a stream with ffmpeg's mpeg2video (cached per build).
fn stream(name: &str, frames: u32, args: &[&str]) -> PathBuf {
    let dir = plugin_dir().join("v4l2stateless-streams");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.m2v"));
    if !path.exists() {
        let tmp = dir.join(format!("{name}.{}.m2v", std::process::id()));
        let out = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi"])
            .args(["-i", "testsrc2=size=176x144:rate=25"])
            .args(["-frames:v", &frames.to_string(), "-c:v", "mpeg2video"])
            .args(args)
            .args(["-f", "mpeg2video"])
            .arg(&tmp)
            .output()
            .expect("ffmpeg runs (tools/setup.sh installs it)");
        assert!(
            out.status.success(),
            "encoding {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::rename(&tmp, &path).unwrap();
    }
    path
}

fn pipeline(stream: &Path, decoder: &str) -> String {
    format!(
        "gst-launch-1.0 -q --no-fault filesrc location={} ! mpegvideoparse ! {decoder} \
         ! video/x-raw ! checksumsink",
        stream.display()
    )
}

/// GStreamer 1.22's packing of a coded `profile_and_level_indication`.
fn gstreamer_packing(coded: i128) -> i128 {
    let (escape, profile, level) = (coded >> 7 & 1, coded >> 4 & 7, coded & 0xf);
    profile << 4 | level << 1 | escape
}

/// Differences in the fields compared by meaning, frame by frame.
fn meaning_differences(c: &VislTrace, ours: &VislTrace) -> Vec<String> {
    let mut out = Vec::new();
    for (n, (cf, of)) in c.frames.iter().zip(&ours.frames).enumerate() {
        if let (Some(cs), Some(os)) = (
            cf.control("v4l2_ctrl_mpeg2_sequence"),
            of.control("v4l2_ctrl_mpeg2_sequence"),
        ) {
            let field = "profile_and_level_indication";
            let (cv, ov) = (cs.number(field), os.number(field));
            if cv.is_none() || cv != ov.map(gstreamer_packing) {
                out.push(format!("frame {n} {field}: C {cv:?}, ours {ov:?}"));
            }
        }
        if let Some(q) = of.control("v4l2_ctrl_mpeg2_quantisation") {
            for (chroma, luma) in [
                ("chroma_intra_quantiser_matrix", "intra_quantiser_matrix"),
                (
                    "chroma_non_intra_quantiser_matrix",
                    "non_intra_quantiser_matrix",
                ),
            ] {
                if q.array(chroma).is_none() || q.array(chroma) != q.array(luma) {
                    out.push(format!("frame {n} ours: {chroma} != {luma} (4:2:0)"));
                }
            }
        }
    }
    out
}

#[test]
fn mpeg2_controls_match_gstreamers_c_decoder_on_visl() {
    let lab = Lab::new().unwrap_or_else(|e| panic!("{e}"));
    let results = lab.scratch_dir("v4l2stateless-mpeg2").unwrap();
    let streams = all_streams();
    let mut script = String::from("set -u\n");
    for (name, path, _, _) in &streams {
        for (side, decoder) in [("c", "v4l2slmpeg2dec"), ("ours", "v4l2statelessmpeg2dec")] {
            let base = results.join(format!("{name}.{side}"));
            script.push_str(&traced_run_line(&base, &pipeline(path, decoder)));
        }
    }
    let out = lab
        .run(&differential_command(&script, &results))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(out.success(), "{}", out.describe());

    let mut table = vec![format!(
        "{:<22} {:>7} {:>8} {:>8} {:>7} {:>7} {:>10} {:>10}",
        "stream", "frames", "jobs C", "jobs us", "out C", "out us", "identical", "same bytes"
    )];
    let mut failures = Vec::new();
    for (name, _, frames, requests) in &streams {
        let (c, c_shown) = load_run(&results, name, "c");
        let (ours, our_shown) = load_run(&results, name, "ours");
        let bitstreams = compare_bitstreams(&results, name, &c, &ours);
        let diffs = visl_trace::compare(&c, &ours, BY_MEANING);
        let meaning = meaning_differences(&c, &ours);
        let identical = identical_requests(&c, &ours, |n| {
            diffs.iter().any(|d| d.frame == n)
                || meaning
                    .iter()
                    .any(|m| m.starts_with(&format!("frame {n} ")))
        });
        table.push(format!(
            "{:<22} {:>7} {:>8} {:>8} {:>7} {:>7} {:>10} {:>10}",
            name,
            frames,
            c.frames.len(),
            ours.frames.len(),
            c_shown,
            our_shown,
            identical,
            bitstreams.identical
        ));
        failures.extend(bitstreams.failures);
        if !diffs.is_empty() || !meaning.is_empty() {
            let shown: Vec<String> = diffs
                .iter()
                .map(ToString::to_string)
                .chain(meaning)
                .take(20)
                .collect();
            failures.push(format!(
                "{name}: differences (C left, ours right), first ones:\n  {}",
                shown.join("\n  ")
            ));
        }
        let expected = *frames;
        if c_shown != our_shown
            || our_shown != expected
            || c.frames.len() != *requests
            || ours.frames.len() != *requests
        {
            failures.push(format!(
                "{name}: {expected} frames in {requests} pictures encoded; C made {} \
                 requests and output {c_shown} frames, ours {} and {our_shown}",
                c.frames.len(),
                ours.frames.len()
            ));
        }
    }
    println!("{}", table.join("\n"));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
