// SPDX-License-Identifier: MPL-2.0
//! Pixel proof of `v4l2statelessfwhtdec` on vicodec (VM lab, one boot): vicodec's
//! stateful encoder makes FWHT frames (an I-frame, then P-frames) from a moving 640x480
//! test pattern; our element decodes them on vicodec's stateless decoder, one frame per
//! buffer (`multifilesrc` over the frames split from the encoder's `--stream-to-hdr`
//! records), and vicodec's stateful decoder decodes them through v4l2-ctl. The two NV12 outputs must be byte-identical, have one
//! picture per encoded frame, and hold real content.
//!
//! The test FAILS (never skips) when the lab cannot start.

use std::path::Path;
use std::time::Duration;

use mediapass_tests::fwht::{
    guest_encode_and_split, hdr_records, header_word, is_i_frame, make_raw_input,
};
use mediapass_tests::vmlab::{Lab, LabCommand};

const FRAMES: usize = 10;
/// Not vicodec's default size (1280x720), so the CAPTURE size must follow the stream;
/// vicodec's minimum is 640x360.
const WIDTH: usize = 640;
const HEIGHT: usize = 480;

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs in the guest after the encode-and-split part; `$R` is the results directory.
const GUEST_DECODE: &str = r#"
timeout 240 gst-launch-1.0 -v --no-fault multifilesrc location="$R/frames/frame%d.fwht" \
  caps=video/x-fwht ! v4l2statelessfwhtdec ! filesink location="$R/ours.yuv" \
  >"$R/ours.log" 2>&1
echo $? >"$R/ours.status"
timeout 240 v4l2-ctl -d "$dec" -x pixelformat=FWHT -v pixelformat=NV12 --stream-mmap \
  --stream-out-mmap --stream-from-hdr "$R/fwht.hdr" --stream-to "$R/stateful.yuv" \
  >"$R/stateful.log" 2>&1
echo $? >"$R/stateful.status"
"#;

#[test]
fn fwht_decode_matches_vicodecs_stateful_decoder_byte_for_byte() {
    let lab = Lab::new().unwrap_or_else(|e| panic!("{e}"));
    let results = lab.scratch_dir("v4l2stateless-fwht").unwrap();
    make_raw_input(&results.join("raw.yuv"), FRAMES, WIDTH, HEIGHT);
    let script = format!(
        "set -u\nR=$1\n{}{GUEST_DECODE}",
        guest_encode_and_split(FRAMES, WIDTH, HEIGHT)
    );
    let out = lab
        .run(
            &LabCommand::new("bash")
                .arg("-c")
                .arg(&script)
                .arg("guest")
                .arg(&results)
                .rw_dir(&results)
                .timeout(Duration::from_secs(900)),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(out.success(), "{}", out.describe());
    for step in ["encode", "ours", "stateful"] {
        assert_eq!(
            read(&results.join(format!("{step}.status"))).trim(),
            "0",
            "{step} failed:\n{}",
            read(&results.join(format!("{step}.log")))
        );
    }
    let hdr = std::fs::read(results.join("fwht.hdr")).unwrap();
    let records = hdr_records(&hdr);
    // On a loaded machine v4l2-ctl may stop before the last frame comes out.
    assert!(
        (FRAMES / 2..=FRAMES).contains(&records.len()),
        "the encoder produced {} frames, asked for {FRAMES}",
        records.len()
    );
    assert!(is_i_frame(records[0]), "the stream starts with an I-frame");
    let p_frames = records.iter().filter(|r| !is_i_frame(r)).count();
    assert!(p_frames > 0, "no P-frame: references would go untested");

    let log = read(&results.join("ours.log"));
    assert!(
        log.contains("format=(string)NV12"),
        "our element did not output NV12:\n{log}"
    );
    let ours = std::fs::read(results.join("ours.yuv")).unwrap();
    let stateful = std::fs::read(results.join("stateful.yuv")).unwrap();
    let (w, h) = (header_word(records[0], 3), header_word(records[0], 4));
    assert_eq!((w, h), (WIDTH, HEIGHT), "encoded size");
    assert_eq!(
        ours.len(),
        w * h * 3 / 2 * records.len(),
        "{w}x{h} NV12 x {} frames",
        records.len()
    );
    assert!(
        ours == stateful,
        "our decode differs from vicodec's stateful decoder ({} vs {} bytes)",
        ours.len(),
        stateful.len()
    );
    let mut seen = [false; 256];
    ours.iter().for_each(|&b| seen[b as usize] = true);
    let distinct = seen.iter().filter(|&&s| s).count();
    assert!(
        distinct > 16,
        "decoded frames hold only {distinct} distinct byte values"
    );
}
