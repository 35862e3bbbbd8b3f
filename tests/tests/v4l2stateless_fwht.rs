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
use std::process::Command;
use std::time::Duration;

use mediapass_tests::vmlab::{Lab, LabCommand};

const FRAMES: usize = 10;
/// Not vicodec's default size (1280x720), so the CAPTURE size must follow the stream;
/// vicodec's minimum is 640x360.
const WIDTH: usize = 640;
const HEIGHT: usize = 480;

/// A moving test pattern (so the encoder makes P-frames), raw I420.
fn make_raw_input(path: &Path) {
    let status = Command::new("gst-launch-1.0")
        .args([
            "-q",
            "videotestsrc",
            "pattern=ball",
            &format!("num-buffers={FRAMES}"),
            "!",
            &format!("video/x-raw,format=I420,width={WIDTH},height={HEIGHT},framerate=30/1"),
            "!",
            "filesink",
            &format!("location={}", path.display()),
        ])
        .status()
        .expect("gst-launch-1.0 runs");
    assert!(status.success(), "making the raw input failed");
    let len = std::fs::metadata(path).unwrap().len() as usize;
    assert_eq!(len, WIDTH * HEIGHT * 3 / 2 * FRAMES);
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Records of a `v4l2-ctl --stream-to-hdr` file: marker `rdhV`, big-endian u32 size,
/// payload.
fn hdr_records(data: &[u8]) -> Vec<&[u8]> {
    let (mut pos, mut records) = (0, Vec::new());
    while pos + 8 <= data.len() {
        assert_eq!(&data[pos..pos + 4], b"rdhV", "bad record marker at {pos}");
        let size = u32::from_be_bytes(data[pos + 4..pos + 8].try_into().unwrap()) as usize;
        records.push(&data[pos + 8..pos + 8 + size]);
        pos += 8 + size;
    }
    assert_eq!(pos, data.len(), "truncated hdr record");
    records
}

/// Big-endian u32 number `index` of an `fwht_cframe_hdr` (3 = width, 4 = height,
/// 5 = flags).
fn header_word(frame: &[u8], index: usize) -> usize {
    let bytes = frame[index * 4..index * 4 + 4].try_into().unwrap();
    u32::from_be_bytes(bytes) as usize
}

/// `FWHT_FL_I_FRAME`.
fn is_i_frame(frame: &[u8]) -> bool {
    header_word(frame, 5) & (1 << 10) != 0
}

/// Runs in the guest. Splits the encoder's records into one file per frame with `od`
/// and `tail`/`head` (the guest has no other tools we could rely on).
const GUEST_SCRIPT: &str = r#"set -u
R=$1
dev_named() {
  for v in /sys/class/video4linux/video*; do
    [ "$(cat "$v/name")" = "$1" ] && { echo "/dev/${v##*/}"; return; }
  done
}
enc=$(dev_named stateful-encoder) dec=$(dev_named stateful-decoder)
timeout 240 v4l2-ctl -d "$enc" -x width=WIDTH,height=HEIGHT,pixelformat=YU12 -v pixelformat=FWHT \
  --stream-mmap --stream-out-mmap --stream-count FRAMES --stream-from "$R/raw.yuv" \
  --stream-to-hdr "$R/fwht.hdr" >"$R/encode.log" 2>&1
echo $? >"$R/encode.status"
mkdir -p "$R/frames"
pos=0 n=0 total=$(stat -c %s "$R/fwht.hdr")
while [ $((pos + 8)) -le "$total" ]; do
  size=$(od -An -tu1 -j $((pos + 4)) -N4 "$R/fwht.hdr" | awk '{ print $1*16777216 + $2*65536 + $3*256 + $4 }')
  tail -c +$((pos + 9)) "$R/fwht.hdr" | head -c "$size" >"$R/frames/frame$n.fwht"
  pos=$((pos + 8 + size)) n=$((n + 1))
done
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
    make_raw_input(&results.join("raw.yuv"));
    let script = GUEST_SCRIPT
        .replace("FRAMES", &FRAMES.to_string())
        .replace("WIDTH", &WIDTH.to_string())
        .replace("HEIGHT", &HEIGHT.to_string());
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
