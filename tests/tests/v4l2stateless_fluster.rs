// SPDX-License-Identifier: MPL-2.0
//! Our Fluster wrapper (`tools/fluster/mediapass-fluster`) drives our decoders end to end
//! on visl in the VM lab: Fluster runs mediapass's generated suites (one per codec our
//! plugin implements) with `GStreamer-<codec>-V4L2STATELESS`, keeping the decoded frames
//! (`-k`).
//!
//! visl decodes nothing: its CAPTURE buffers hold a test pattern, so no MD5 can match and
//! Fluster must report every vector as `Fail` (the pipeline ran to EOS, the checksum
//! differs), never `Error` or `Timeout`. What this test checks instead is that every
//! vector decoded to the software decoder's number of frames, each of the stream's size:
//! the kept output (unpadded I420) must be exactly frames x width x height x 3/2 bytes.
//! Real MD5 conformance needs a board with a real decoder (see the plugin README); the
//! frame counts of GStreamer's C decoders on the same streams are in the differential
//! test (`v4l2stateless_decode.rs`) and the benchmark.
//!
//! Fluster writes its output in the guest's `/tmp` (RAM): writing raw frames to the
//! 9p share costs ~10x more under TCG; only the sizes come back. One VM boot. The test
//! FAILS (never skips) when the lab cannot start.

use std::collections::BTreeMap;

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
    let decoders: Vec<&str> = codecs.iter().map(|c| c.fluster_ours).collect();

    let base = results.join("fluster");
    let script = format!(
        "set -u\n\
         {wrapper} {suite} -o /tmp/fluster-out run -j 1 -t 300 -k -d {decoders} \
         >{base}.stdout 2>{base}.stderr; echo $? >{base}.status\n\
         cd /tmp/fluster-out && find . -name '*.out' -printf '%P %s\\n' >{base}.sizes\n",
        wrapper = tools_dir().join("mediapass-fluster").display(),
        suite = suite.fluster_args().join(" "),
        base = base.display(),
        decoders = decoders.join(" "),
    );
    let out = lab
        .run(&LabCommand::shell(&script).rw_dir(&results))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(out.success(), "{}", out.describe());

    let read = |ext: &str| {
        let path = results.join(format!("fluster.{ext}"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    let stdout = read("stdout");
    let log = format!("--- stdout\n{stdout}\n--- stderr\n{}", read("stderr"));
    // Every vector fails its MD5 on visl, so Fluster's own status is 1.
    assert_eq!(read("status").trim(), "1", "Fluster:\n{log}");
    let parsed = parse_results(&stdout);
    let sizes: BTreeMap<String, u64> = read("sizes")
        .lines()
        .filter_map(|line| {
            let (path, size) = line.rsplit_once(' ')?;
            Some((path.to_owned(), size.parse().ok()?))
        })
        .collect();

    let mut table = vec![format!(
        "{:<22} {:>9} {:>7} {:>10} {:>8}",
        "vector", "size", "frames", "ours out", "Fluster"
    )];
    let mut failures = Vec::new();
    for vector in &suite.vectors {
        let decoder = codecs
            .iter()
            .find(|c| c.key == vector.codec)
            .map(|c| c.fluster_ours)
            .unwrap();
        let result = parsed
            .iter()
            .find(|r| r.decoder == decoder && r.vector == vector.name)
            .map(|r| r.result.clone())
            .unwrap_or_else(|| "-".into());
        if result != "Fail" {
            failures.push(format!(
                "{decoder} {}: Fluster result {result}, expected Fail (decoded, MD5 differs)",
                vector.name
            ));
        }
        let kept = format!("{}/{}.out", vector.suite, vector.name);
        let bytes = sizes.get(&kept).copied().unwrap_or(0);
        let expected = u64::from(vector.frames) * vector.frame_size();
        if bytes != expected {
            failures.push(format!(
                "{decoder} {}: {kept} holds {bytes} bytes, expected {} frames of {}x{} I420 = {expected}",
                vector.name, vector.frames, vector.width, vector.height
            ));
        }
        table.push(format!(
            "{:<22} {:>9} {:>7} {:>10} {:>8}",
            vector.name,
            format!("{}x{}", vector.width, vector.height),
            vector.frames,
            bytes as f64 / vector.frame_size() as f64,
            result
        ));
    }
    println!("{}", table.join("\n"));
    assert!(failures.is_empty(), "{}\n{log}", failures.join("\n"));
}
