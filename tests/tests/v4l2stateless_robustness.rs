// SPDX-License-Identifier: MPL-2.0
//! `v4l2statelessvp8dec`/`v4l2statelessvp9dec` on visl (VM lab) beyond the happy path,
//! in one boot: flushing seek to a mid-stream key frame, EOS drain with render delay
//! 0 and 2, and corrupt input (truncated frames) that must give warnings and a skip to
//! the next key frame, never an error, hang or crash.
//!
//! Streams: 30 frames of 320x240 from GStreamer's vp8enc/vp9enc with a key frame every
//! 10 frames, in IVF and WebM (the WebM demuxer can seek).

use std::path::Path;
use std::process::Command;

use mediapass_tests::plugin_dir;
use mediapass_tests::vmlab::{Lab, LabCommand};

const FRAMES: usize = 30;
const KEY_INTERVAL: usize = 10;

fn encode(codec: &str, container: &str, out: &Path) {
    // A WebM cluster (and cue point) per key frame, so a key-unit seek can land mid-stream.
    let mux: &[&str] = if container == "webm" {
        &["webmmux", "min-cluster-duration=0"]
    } else {
        &["avmux_ivf"]
    };
    let status = Command::new("gst-launch-1.0")
        .args([
            "-q",
            "videotestsrc",
            &format!("num-buffers={FRAMES}"),
            "pattern=ball",
            "!",
        ])
        .arg("video/x-raw,width=320,height=240,framerate=30/1,format=I420")
        .args(["!", &format!("{codec}enc")])
        .arg(format!("keyframe-max-dist={KEY_INTERVAL}"))
        .arg("!")
        .args(mux)
        .args(["!", "filesink"])
        .arg(format!("location={}", out.display()))
        .status()
        .expect("gst-launch-1.0 runs");
    assert!(status.success(), "encoding {}", out.display());
}

/// An IVF frame: its 8 pts bytes and its payload.
type IvfFrame = (Vec<u8>, Vec<u8>);

/// IVF frames: 32-byte header (length at 6..8), then (u32 size, u64 pts, data).
fn ivf_split(data: &[u8]) -> (Vec<u8>, Vec<IvfFrame>) {
    assert!(data.starts_with(b"DKIF"));
    let header_len = u16::from_le_bytes([data[6], data[7]]) as usize;
    let mut frames = Vec::new();
    let mut pos = header_len;
    while pos + 12 <= data.len() {
        let size = u32::from_le_bytes(data[pos..pos + 4].try_into().unwrap()) as usize;
        frames.push((
            data[pos + 4..pos + 12].to_vec(),
            data[pos + 12..pos + 12 + size].to_vec(),
        ));
        pos += 12 + size;
    }
    (data[..header_len].to_vec(), frames)
}

/// Writes `stream` with frames `truncate` cut to `keep` bytes.
fn corrupt(stream: &Path, out: &Path, truncate: &[usize], keep: usize) {
    let (header, frames) = ivf_split(&std::fs::read(stream).unwrap());
    assert_eq!(frames.len(), FRAMES);
    let mut data = header;
    for (n, (pts, mut frame)) in frames.into_iter().enumerate() {
        if truncate.contains(&n) {
            frame.truncate(keep);
        }
        data.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        data.extend_from_slice(&pts);
        data.extend_from_slice(&frame);
    }
    std::fs::write(out, data).unwrap();
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// checksumsink lines: "H:MM:SS.NNNNNNNNN checksum".
fn decoded_frames(output: &str) -> usize {
    output
        .lines()
        .filter(|l| {
            l.split_whitespace().next().is_some_and(|t| {
                t.len() > 8
                    && t.chars()
                        .all(|c| c.is_ascii_digit() || c == ':' || c == '.')
            })
        })
        .count()
}

#[test]
fn seek_drain_and_corrupt_input_on_visl() {
    let lab = Lab::new().unwrap_or_else(|e| panic!("{e}"));
    let r = lab.scratch_dir("v4l2stateless-robustness").unwrap();
    let seek = plugin_dir().join("examples/v4l2stateless-seek");
    assert!(seek.is_file(), "{} is not built", seek.display());
    let mut script = String::from("set -u\n");
    let mut line = |name: &str, cmd: String| {
        script.push_str(&format!(
            "timeout 180 {cmd} >{r}/{name}.out 2>&1; echo $? >{r}/{name}.status\n",
            r = r.display()
        ));
    };
    for codec in ["vp8", "vp9"] {
        let ivf = r.join(format!("{codec}.ivf"));
        let webm = r.join(format!("{codec}.webm"));
        encode(codec, "ivf", &ivf);
        encode(codec, "webm", &webm);
        let bad = r.join(format!("{codec}-truncated.ivf"));
        // Frame 5 and 22 truncated: 5..9 and 22..29 are skipped (next key frames: 10).
        corrupt(&ivf, &bad, &[5, 22], 2);
        let parse = if codec == "vp9" { "! vp9parse " } else { "" };
        let dec = format!("v4l2stateless{codec}dec");
        line(
            &format!("{codec}-seek"),
            format!("{} {dec} {}", seek.display(), webm.display()),
        );
        for delay in [0, 2] {
            line(
                &format!("{codec}-delay{delay}"),
                format!(
                    "gst-launch-1.0 --no-fault filesrc location={} ! ivfparse {parse}! {dec} \
                     render-delay={delay} ! video/x-raw ! checksumsink",
                    ivf.display()
                ),
            );
        }
        line(
            &format!("{codec}-corrupt"),
            format!(
                "gst-launch-1.0 --no-fault filesrc location={} ! ivfparse {parse}! {dec} \
                 ! video/x-raw ! checksumsink",
                bad.display()
            ),
        );
    }
    let out = lab
        .run(&LabCommand::shell(&script).rw_dir(&r))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(out.success(), "{}", out.describe());

    let result = |name: &str| -> (String, String) {
        (
            read(&r.join(format!("{name}.status"))).trim().to_owned(),
            read(&r.join(format!("{name}.out"))),
        )
    };
    for codec in ["vp8", "vp9"] {
        for delay in [0, 2] {
            let (status, output) = result(&format!("{codec}-delay{delay}"));
            assert_eq!(status, "0", "{codec} render-delay={delay}:\n{output}");
            assert_eq!(
                decoded_frames(&output),
                FRAMES,
                "{codec} render-delay={delay}: every frame drained at EOS\n{output}"
            );
        }

        let (status, output) = result(&format!("{codec}-seek"));
        assert_eq!(status, "0", "{codec} seek:\n{output}");
        let fields: Vec<(String, i64)> = output
            .split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .filter_map(|(k, v)| Some((k.to_owned(), v.parse().ok()?)))
            .collect();
        let get = |k: &str| {
            fields
                .iter()
                .find(|(name, _)| name == k)
                .map(|(_, v)| *v)
                .unwrap_or_else(|| panic!("{codec} seek: no {k} in {output}"))
        };
        assert_eq!(get("before"), 5);
        let first = get("first_after_ms");
        let first_frame = (first * 30 + 500) / 1000;
        assert!(
            first_frame > 0 && (first_frame as usize).is_multiple_of(KEY_INTERVAL),
            "{codec}: decoding restarts at a mid-stream key frame, not at {first} ms"
        );
        assert_eq!(
            get("after") as usize,
            FRAMES - first_frame as usize,
            "{codec}: every frame from the key frame to EOS after the seek\n{output}"
        );

        let (status, output) = result(&format!("{codec}-corrupt"));
        assert_eq!(
            status, "0",
            "{codec} corrupt input must not be an error:\n{output}"
        );
        assert!(
            output.contains("WARNING: from element")
                && output.contains("skipping to the next key frame"),
            "{codec}: corrupt frames give warnings\n{output}"
        );
        assert_eq!(
            decoded_frames(&output),
            5 + 12,
            "{codec}: frames 0-4 and 10-21 decode, the rest wait for a key frame\n{output}"
        );
    }
}
