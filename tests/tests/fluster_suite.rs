// SPDX-License-Identifier: MPL-2.0
//! mediapass's own Fluster suites (`tools/fluster/mediapass-make-suite`: VP8, VP9, H.264
//! and MPEG-2 streams made at test time, expected MD5s from vpxdec and ffmpeg) run by
//! Fluster through our wrapper (`tools/fluster/mediapass-fluster`) with software GStreamer
//! decoders Fluster already knows. Every vector must pass with each of them: this proves
//! the suite files, the MD5 convention (I420 frames, unpadded, concatenated) and the
//! wrapper's plumbing, without hardware. A second run with one expected MD5 altered must
//! fail on exactly that vector, so the check can fail.
//!
//! The same suites run with our hardware decoders in `v4l2stateless_fluster.rs` (VM lab).

use std::collections::BTreeSet;

use mediapass_tests::fluster::{Suite, fluster_command, parse_results};
use mediapass_tests::plugin_dir;

/// (codec key, Fluster's names of GStreamer software decoders for it): libvpx and
/// FFmpeg (gst-libav) implementations, both independent of our code.
const SOFTWARE_DECODERS: &[(&str, &[&str])] = &[
    ("vp8", &["GStreamer-VP8-libvpx", "GStreamer-VP8-Libav"]),
    ("vp9", &["GStreamer-VP9-libvpx", "GStreamer-VP9-Libav"]),
    ("h264", &["GStreamer-H.264-Libav"]),
    ("mpeg2", &["GStreamer-MPEG2_VIDEO-Libav"]),
];

fn run_fluster(suite: &Suite, extra: &[&str], decoders: &[&str]) -> (bool, String) {
    let out = fluster_command()
        .args(suite.fluster_args())
        .arg("-o")
        .arg(suite.dir.join("fluster-output"))
        .args(["run", "-j", "2", "-t", "120"])
        .args(extra)
        .arg("-d")
        .args(decoders)
        .env(
            "GST_REGISTRY",
            plugin_dir().join("mediapass-fluster-registry.bin"),
        )
        .output()
        .expect("tools/fluster/mediapass-fluster runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    (
        out.status.success(),
        format!(
            "exit {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
            out.status
        ),
    )
}

#[test]
fn generated_suites_pass_with_software_decoders() {
    let codecs: Vec<&str> = SOFTWARE_DECODERS.iter().map(|(c, _)| *c).collect();
    let suite = Suite::generate(&plugin_dir().join("fluster-suite"), &codecs)
        .unwrap_or_else(|e| panic!("{e}"));
    for (codec, _) in SOFTWARE_DECODERS {
        assert!(
            suite.vectors.iter().any(|v| v.codec == *codec),
            "no {codec} vector generated"
        );
    }
    let decoders: Vec<&str> = SOFTWARE_DECODERS
        .iter()
        .flat_map(|(_, d)| d.iter().copied())
        .collect();
    let (ok, output) = run_fluster(&suite, &[], &decoders);
    let results = parse_results(&output);

    let mut missing = Vec::new();
    for (codec, names) in SOFTWARE_DECODERS {
        for vector in suite.vectors.iter().filter(|v| v.codec == *codec) {
            for decoder in *names {
                let passed = results.iter().any(|r| {
                    r.suite == vector.suite
                        && r.decoder == *decoder
                        && r.vector == vector.name
                        && r.result == "Success"
                });
                if !passed {
                    missing.push(format!("{decoder} {}/{}", vector.suite, vector.name));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "not passed: {missing:?}\nFluster output:\n{output}"
    );
    let expected_runs: usize = SOFTWARE_DECODERS
        .iter()
        .map(|(codec, names)| {
            names.len() * suite.vectors.iter().filter(|v| v.codec == *codec).count()
        })
        .sum();
    assert_eq!(results.len(), expected_runs, "{output}");
    assert!(ok, "Fluster reported a failure:\n{output}");
}

#[test]
fn a_wrong_expected_md5_fails_that_vector_only() {
    let suite = Suite::generate(&plugin_dir().join("fluster-suite-tampered"), &["vp8"])
        .unwrap_or_else(|e| panic!("{e}"));
    let victim = &suite.vectors[1];
    let file = suite
        .test_suites_dir()
        .join(format!("{}.json", victim.suite));
    let json = std::fs::read_to_string(&file).unwrap();
    let good = format!("\"result\": \"{}\"", victim.md5);
    assert_eq!(json.matches(&good).count(), 1, "{json}");
    let bad = format!("\"result\": \"{}\"", "0".repeat(32));
    std::fs::write(&file, json.replace(&good, &bad)).unwrap();

    let (ok, output) = run_fluster(&suite, &[], &["GStreamer-VP8-libvpx"]);
    assert!(!ok, "Fluster passed a wrong MD5:\n{output}");
    let results = parse_results(&output);
    let failed: BTreeSet<&str> = results
        .iter()
        .filter(|r| r.result != "Success")
        .map(|r| r.vector.as_str())
        .collect();
    assert_eq!(failed, BTreeSet::from([victim.name.as_str()]), "{output}");
    assert_eq!(results.len(), suite.vectors.len(), "{output}");
}
