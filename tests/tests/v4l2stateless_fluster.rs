// SPDX-License-Identifier: MPL-2.0
//! Our Fluster wrapper (`tools/fluster/mediapass-fluster`) drives our decoders end to end
//! on visl in the VM lab: Fluster runs mediapass's generated suites (one per codec our
//! plugin implements) with `GStreamer-<codec>-V4L2STATELESS`, and, for comparison, with
//! GStreamer's C `GStreamer-<codec>-V4L2SL`, keeping the decoded frames (`-k`).
//!
//! visl decodes nothing: its CAPTURE buffers hold a test pattern, so no MD5 can match and
//! Fluster must report every vector as `Fail` (the pipeline ran to EOS, the checksum
//! differs), never `Error` or `Timeout`. What this test checks instead is that every
//! vector decoded to the software decoder's number of frames, each of the stream's size:
//! the kept output (unpadded I420) must be exactly frames x width x height x 3/2 bytes.
//! Real MD5 conformance needs a board with a real decoder (see the plugin README).
//!
//! One VM boot. The test FAILS (never skips) when the lab cannot start.

use mediapass_tests::fluster::{Suite, parse_results, tools_dir};
use mediapass_tests::plugin_dir;
use mediapass_tests::v4l2stateless::implemented_codecs;
use mediapass_tests::vmlab::{Lab, LabCommand};

#[test]
fn fluster_wrapper_drives_our_decoders_on_visl() {
    let codecs = implemented_codecs();
    let keys: Vec<&str> = codecs.iter().map(|c| c.key).collect();
    assert!(
        keys.contains(&"vp8") && keys.contains(&"vp9"),
        "VP8/VP9 elements missing: {keys:?}"
    );
    let suite = Suite::generate(&plugin_dir().join("fluster-lab-suite"), &keys)
        .unwrap_or_else(|e| panic!("{e}"));
    let lab = Lab::new().unwrap_or_else(|e| panic!("{e}"));
    let results = lab.scratch_dir("v4l2stateless-fluster").unwrap();

    let sides = [
        ("ours", codecs.iter().map(|c| c.fluster_ours).collect::<Vec<_>>()),
        ("c", codecs.iter().map(|c| c.fluster_c).collect()),
    ];
    let mut script = String::from("set -u\n");
    for (side, decoders) in &sides {
        let base = results.join(side);
        script.push_str(&format!(
            "{wrapper} {suite} -o {base} run -j 1 -t 300 -k -d {decoders} \
             >{base}.stdout 2>{base}.stderr; echo $? >{base}.status\n",
            wrapper = tools_dir().join("mediapass-fluster").display(),
            suite = suite.fluster_args().join(" "),
            base = base.display(),
            decoders = decoders.join(" "),
        ));
    }
    let out = lab
        .run(&LabCommand::shell(&script).rw_dir(&results))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(out.success(), "{}", out.describe());

    let mut table = vec![format!(
        "{:<22} {:>7} {:>9} {:>10} {:>7} {:>12}",
        "vector", "frames", "size", "ours out", "C out", "ours/C"
    )];
    let mut failures = Vec::new();
    let mut side_results = Vec::new();
    for (side, _) in &sides {
        let read = |ext: &str| {
            let path = results.join(format!("{side}.{ext}"));
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        };
        let stdout = read("stdout");
        let log = format!("--- {side} stdout\n{stdout}\n--- stderr\n{}", read("stderr"));
        // Every vector fails its MD5 on visl, so Fluster's own status is 1.
        assert_eq!(read("status").trim(), "1", "Fluster with {side}:\n{log}");
        side_results.push((side, parse_results(&stdout), log));
    }
    for vector in &suite.vectors {
        let mut cells = Vec::new();
        let mut results_cell = Vec::new();
        for (side, parsed, log) in &side_results {
            let codec = codecs.iter().find(|c| c.key == vector.codec).unwrap();
            let decoder = if **side == "ours" {
                codec.fluster_ours
            } else {
                codec.fluster_c
            };
            let result = parsed
                .iter()
                .find(|r| r.decoder == decoder && r.vector == vector.name)
                .map(|r| r.result.clone());
            results_cell.push(result.clone().unwrap_or_else(|| "-".into()));
            if result.as_deref() != Some("Fail") {
                failures.push(format!(
                    "{decoder} {}: Fluster result {result:?}, expected Fail (decoded, MD5 differs)\n{log}",
                    vector.name
                ));
            }
            let kept = results
                .join(side)
                .join(&vector.suite)
                .join(format!("{}.out", vector.name));
            let bytes = std::fs::metadata(&kept).map(|m| m.len()).unwrap_or(0);
            let expected = u64::from(vector.frames) * vector.frame_size();
            if bytes != expected {
                failures.push(format!(
                    "{decoder} {}: {} holds {bytes} bytes, expected {} frames of {}x{} I420 = {expected}",
                    vector.name,
                    kept.display(),
                    vector.frames,
                    vector.width,
                    vector.height
                ));
            }
            cells.push(format!("{}", bytes as f64 / vector.frame_size() as f64));
        }
        table.push(format!(
            "{:<22} {:>7} {:>9} {:>10} {:>7} {:>12}",
            vector.name,
            vector.frames,
            format!("{}x{}", vector.width, vector.height),
            cells[0],
            cells[1],
            results_cell.join("/")
        ));
    }
    println!("{}", table.join("\n"));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
