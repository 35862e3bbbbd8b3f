// SPDX-License-Identifier: MPL-2.0
//! FWHT streams for the vicodec lab tests: a raw moving test pattern, the guest script
//! that encodes it with vicodec's stateful encoder and splits it into one file per
//! frame, and readers of the encoder's records.

use std::path::Path;
use std::process::Command;

/// A moving test pattern (so the encoder makes P-frames), raw I420, `frames` frames.
pub fn make_raw_input(path: &Path, frames: usize, width: usize, height: usize) {
    let status = Command::new("gst-launch-1.0")
        .args([
            "-q",
            "videotestsrc",
            "pattern=ball",
            &format!("num-buffers={frames}"),
            "!",
            &format!("video/x-raw,format=I420,width={width},height={height},framerate=30/1"),
            "!",
            "filesink",
            &format!("location={}", path.display()),
        ])
        .status()
        .expect("gst-launch-1.0 runs");
    assert!(status.success(), "making the raw input failed");
    let len = std::fs::metadata(path).unwrap().len() as usize;
    assert_eq!(len, width * height * 3 / 2 * frames);
}

/// Guest shell: with `$R` the results directory holding `raw.yuv`, encodes it on
/// vicodec's stateful encoder into `$R/fwht.hdr` (status in `$R/encode.status`), splits
/// the records into `$R/frames/frameN.fwht` and sets `$dec` to vicodec's stateful
/// decoder node. Placeholders: FRAMES, WIDTH, HEIGHT.
pub const GUEST_ENCODE_AND_SPLIT: &str = r#"
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
"#;

/// The encode-and-split script with its placeholders filled in.
pub fn guest_encode_and_split(frames: usize, width: usize, height: usize) -> String {
    GUEST_ENCODE_AND_SPLIT
        .replace("FRAMES", &frames.to_string())
        .replace("WIDTH", &width.to_string())
        .replace("HEIGHT", &height.to_string())
}

/// Records of a `v4l2-ctl --stream-to-hdr` file: marker `rdhV`, big-endian u32 size,
/// payload.
pub fn hdr_records(data: &[u8]) -> Vec<&[u8]> {
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
pub fn header_word(frame: &[u8], index: usize) -> usize {
    let bytes = frame[index * 4..index * 4 + 4].try_into().unwrap();
    u32::from_be_bytes(bytes) as usize
}

/// `FWHT_FL_I_FRAME`.
pub fn is_i_frame(frame: &[u8]) -> bool {
    header_word(frame, 5) & (1 << 10) != 0
}
