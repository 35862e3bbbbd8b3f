// SPDX-License-Identifier: MPL-2.0
//! shmzero passes DMABuf memory by fd, without a copy, proven with a real exporter: in the
//! VM lab, vim2m (a V4L2 mem2mem scaler, `v4l2convert`) exports its CAPTURE buffers as
//! DMABufs (`capture-io-mode=dmabuf`). A writer process sends them through `shmzerosink`, a
//! reader process (`shmzero-probe`) receives them through `shmzerosrc`. The sink must count
//! every buffer as `fd-buffers` and none as `copied-buffers`; the reader must find every
//! frame inside a read-only shared `/dmabuf:` mapping of its own, with the very bytes vim2m
//! produces for the same input (a reference run of the same pipeline into a file).
//!
//! FAILS (never skips) when the lab cannot start: run `./x setup` first.

use std::path::Path;
use std::time::Duration;

use mediapass_tests::plugin_dir;
use mediapass_tests::vmlab::{Lab, LabCommand};

const FRAMES: usize = 12;
const OUT_WIDTH: usize = 640;
const OUT_HEIGHT: usize = 480;
/// BGR, packed: vim2m's CAPTURE formats are RGB565, RGB24, BGR24 and YUYV.
const FRAME_SIZE: usize = OUT_WIDTH * OUT_HEIGHT * 3;

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// FNV-1a, as `shmzero-probe --checksums` prints it.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `name=(type)value` or `name=value` of a GStreamer structure's text form.
fn field(text: &str, name: &str) -> Option<u64> {
    let rest = &text[text.find(&format!("{name}="))? + name.len() + 1..];
    let rest = match rest.strip_prefix('(') {
        Some(typed) => &typed[typed.find(')')? + 1..],
        None => rest,
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[test]
fn vim2m_dmabuf_crosses_processes_by_fd_without_copy() {
    let probe = plugin_dir().join("shmzero-probe");
    assert!(
        probe.is_file(),
        "{} is not built: run `cargo build --workspace` (or `./x test`) first",
        probe.display()
    );
    let lab = Lab::new().unwrap_or_else(|e| panic!("{e}"));
    let out = lab.scratch_dir("shmzero-dmabuf").unwrap();
    let source = format!(
        "videotestsrc num-buffers={FRAMES} pattern=smpte \
         ! video/x-raw,format=RGB,width=320,height=240,framerate=30/1"
    );
    let scaled = format!("video/x-raw,format=BGR,width={OUT_WIDTH},height={OUT_HEIGHT}");
    let script = format!(
        r#"set -u
out={out}
sock=/run/shmzero-dmabuf.sock
gst-launch-1.0 -q {source} ! v4l2convert ! {scaled} ! filesink location=$out/reference.raw \
    > $out/reference.log 2>&1
echo $? > $out/reference.status
{probe} read --socket $sock --frames {FRAMES} --not-live --checksums --timeout-ms 300000 \
    --limit-ms 300000 > $out/reader.out 2> $out/reader.err &
reader=$!
gst-launch-1.0 -m {source} ! v4l2convert capture-io-mode=dmabuf ! {scaled} \
    ! shmzerosink socket-path=$sock wait-for-connection=true connection-timeout=300000 \
      block-on-slow-readers=true sync=false > $out/writer.out 2> $out/writer.err
echo $? > $out/writer.status
wait $reader
echo $? > $out/reader.status
"#,
        out = out.display(),
        probe = probe.display(),
    );
    let result = lab
        .run(
            &LabCommand::shell(&script)
                .rw_dir(&out)
                // TCG guest on a loaded 2-core host: boot plus three short pipelines.
                .timeout(Duration::from_secs(900)),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(result.success(), "{}", result.describe());

    let reference_log = read(&out.join("reference.log"));
    assert_eq!(
        read(&out.join("reference.status")).trim(),
        "0",
        "reference run through vim2m failed:\n{reference_log}"
    );
    let writer = read(&out.join("writer.out")) + &read(&out.join("writer.err"));
    let reader = read(&out.join("reader.out")) + &read(&out.join("reader.err"));
    let both = format!("writer:\n{writer}\nreader:\n{reader}");
    assert_eq!(read(&out.join("writer.status")).trim(), "0", "{both}");
    assert_eq!(read(&out.join("reader.status")).trim(), "0", "{both}");
    assert!(
        !both.contains("CRITICAL") && !both.contains("panicked"),
        "{both}"
    );

    let stats = writer
        .lines()
        .find(|l| l.contains("shmzerosink-stats"))
        .unwrap_or_else(|| panic!("no shmzerosink-stats message:\n{both}"));
    assert_eq!(field(stats, "fd-buffers"), Some(FRAMES as u64), "{stats}");
    assert_eq!(field(stats, "copied-buffers"), Some(0), "{stats}");
    assert_eq!(field(stats, "zero-copy-buffers"), Some(0), "{stats}");

    let reference = std::fs::read(out.join("reference.raw")).unwrap();
    assert_eq!(reference.len(), FRAMES * FRAME_SIZE, "reference size");
    let frames: Vec<&str> = reader.lines().filter(|l| l.starts_with("frame ")).collect();
    assert_eq!(frames.len(), FRAMES, "{both}");
    for (n, (line, expected)) in frames.iter().zip(reference.chunks(FRAME_SIZE)).enumerate() {
        assert!(
            line.contains("zero-copy=1"),
            "frame {n} not inside a read-only shared DMABuf mapping: {line}"
        );
        assert!(
            line.contains(&format!("size={FRAME_SIZE} ")),
            "frame {n}: {line}"
        );
        let sum = format!("sum={:016x}", fnv(expected));
        assert!(line.ends_with(&sum), "frame {n}: expected {sum}: {line}");
    }
}
