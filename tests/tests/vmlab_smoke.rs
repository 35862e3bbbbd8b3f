// SPDX-License-Identifier: MPL-2.0
//! The VM lab works: a guest boots with visl and vicodec, runs commands, and hands back
//! statuses and files; Debian's `v4l2slvp9dec` decodes on visl with the expected controls
//! in visl's trace; vicodec's stateless FWHT decoder produces real pixels.
//!
//! These tests FAIL (never skip) when the lab cannot start: run `./x setup` first.
//! VMs run one at a time (see `vmlab::Lab::run`); each boot costs ~5-10 s under TCG.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use mediapass_tests::visl_trace::{self, VislTrace};
use mediapass_tests::vmlab::{Lab, LabCommand, LabError, lab_dir};

const FRAMES: usize = 10;
const WIDTH: i128 = 320;
const HEIGHT: i128 = 240;

fn lab() -> Lab {
    Lab::new().unwrap_or_else(|e| panic!("{e}"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn lab_returns_status_output_and_files() {
    let lab = lab();
    let share = lab.scratch_dir("basics").unwrap();
    // QEMU writes what the guest sends on the virtio-serial port here.
    let serial = share.join("serial-port.out");
    let script = format!(
        r#"echo to-stdout
echo to-stderr >&2
echo "$VMLAB_TEST_MARKER" > {share}/marker
nproc > {share}/nproc
pwd > {share}/cwd
tr ' ' '\n' < /proc/cmdline | grep '^mediapass.marker=' > {share}/cmdline
echo hello-over-virtio-serial > /dev/virtio-ports/org.mediapass.vmlab-test
if touch /usr/vmlab-write-probe 2>/dev/null; then echo writable; else echo read-only; fi > {share}/root
exit 3"#,
        share = share.display()
    );
    let out = lab
        .run(
            &LabCommand::shell(&script)
                .rw_dir(&share)
                .env("VMLAB_TEST_MARKER", "hello from the host")
                .kernel_arg("mediapass.marker=42")
                .qemu_arg("-device")
                .qemu_arg("virtio-serial-pci")
                .qemu_arg("-chardev")
                .qemu_arg(format!("file,id=port0,path={}", serial.display()))
                .qemu_arg("-device")
                .qemu_arg("virtserialport,chardev=port0,name=org.mediapass.vmlab-test"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status, 3, "{}", out.describe());
    assert_eq!(out.stdout, "to-stdout\n", "{}", out.describe());
    assert_eq!(out.stderr, "to-stderr\n", "{}", out.describe());
    assert_eq!(read(&share.join("marker")), "hello from the host\n");
    assert_eq!(read(&share.join("root")), "read-only\n");
    assert_eq!(read(&share.join("cmdline")), "mediapass.marker=42\n");
    assert_eq!(read(&serial), "hello-over-virtio-serial\n");
    // Two vCPUs: needs ACPI in the kernel config (SeaBIOS's MP table lists one CPU).
    assert_eq!(read(&share.join("nproc")), "2\n");
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(read(&share.join("cwd")).trim_end(), cwd.to_str().unwrap());
    assert!(
        out.console.contains("vmlab-init:"),
        "console has no init lines:\n{}",
        out.console
    );
}

#[test]
fn lab_timeout_is_an_error_not_a_status() {
    let lab = lab();
    let err = lab
        .run(
            &LabCommand::new("sleep")
                .arg("1000")
                .timeout(Duration::from_secs(5)),
        )
        .expect_err("a 5 s limit cannot fit a 1000 s sleep");
    match err {
        LabError::DidNotFinish { reason, .. } => {
            assert!(reason.contains("timed out after 5s"), "{reason}")
        }
        other => panic!("expected DidNotFinish, got {other}"),
    }
}

#[test]
fn lab_guest_panic_is_an_error_not_a_status() {
    let lab = lab();
    // A later init= wins: the kernel finds no init and panics before any command runs.
    let err = lab
        .run(&LabCommand::new("true").kernel_arg("init=/nonexistent"))
        .expect_err("a guest that panics cannot report a status");
    match err {
        LabError::DidNotFinish {
            reason,
            console_tail,
        } => {
            assert!(reason.contains("without reporting"), "{reason}");
            assert!(console_tail.contains("Kernel panic"), "{console_tail}");
        }
        other => panic!("expected DidNotFinish, got {other}"),
    }
}

/// One boot: device inventory, `v4l2slvp9dec` on visl with the trace, vicodec round trip.
#[test]
fn visl_and_vicodec_smoke() {
    let lab = lab();
    let results = lab.scratch_dir("smoke").unwrap();
    let stream = results.join("ball-320x240.ivf");
    make_vp9_stream(&stream);
    let out = lab
        .run(
            &LabCommand::new(lab_dir().join("smoke-guest.sh"))
                .arg(&results)
                .arg(&stream)
                .rw_dir(&results)
                // Generous: ~30 s on a quiet machine, ~2.5 min at load average 17.
                .timeout(Duration::from_secs(900)),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(out.success(), "{}", out.describe());

    check_devices(&results);
    check_vp9_on_visl(&results);
    check_vicodec_round_trip(&results);
}

fn make_vp9_stream(path: &Path) {
    let status = Command::new("gst-launch-1.0")
        .args([
            "-q",
            "videotestsrc",
            &format!("num-buffers={FRAMES}"),
            "pattern=ball",
            "!",
        ])
        .arg(format!(
            "video/x-raw,width={WIDTH},height={HEIGHT},framerate=30/1,format=I420"
        ))
        .args(["!", "vp9enc", "!", "avmux_ivf", "!", "filesink"])
        .arg(format!("location={}", path.display()))
        .status()
        .expect("gst-launch-1.0 runs");
    assert!(status.success(), "encoding the VP9 test stream failed");
    assert_eq!(ivf_frame_count(&std::fs::read(path).unwrap()), FRAMES);
}

/// Frames in an IVF file: a 32-byte file header, then (u32 size, u64 pts, data) records.
fn ivf_frame_count(data: &[u8]) -> usize {
    assert!(data.starts_with(b"DKIF"), "not an IVF file");
    let header_len = u16::from_le_bytes([data[6], data[7]]) as usize;
    let (mut pos, mut frames) = (header_len, 0);
    while pos + 12 <= data.len() {
        let size = u32::from_le_bytes(data[pos..pos + 4].try_into().unwrap()) as usize;
        pos += 12 + size;
        frames += 1;
    }
    assert_eq!(pos, data.len(), "truncated IVF frame");
    frames
}

/// Frames in a `v4l2-ctl --stream-to-hdr` file (single plane): records of a big-endian
/// u32 marker `Vhdr`, a big-endian u32 size, then the payload.
fn hdr_frame_count(data: &[u8]) -> usize {
    let (mut pos, mut frames) = (0, 0);
    while pos + 8 <= data.len() {
        assert_eq!(&data[pos..pos + 4], b"rdhV", "bad record marker at {pos}");
        let size = u32::from_be_bytes(data[pos + 4..pos + 8].try_into().unwrap()) as usize;
        pos += 8 + size;
        frames += 1;
    }
    assert_eq!(pos, data.len(), "truncated hdr record");
    frames
}

fn check_devices(results: &Path) {
    let video = read(&results.join("video-devices.tsv"));
    let has = |name: &str, driver: &str| {
        video.lines().any(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            cols.len() == 3
                && cols[0].starts_with("/dev/video")
                && cols[1] == name
                && cols[2] == driver
        })
    };
    for (name, driver) in [
        ("visl", "visl"),
        ("stateful-encoder", "vicodec"),
        ("stateful-decoder", "vicodec"),
        ("stateless-decoder", "vicodec"),
    ] {
        assert!(
            has(name, driver),
            "no {name} ({driver}) video device in:\n{video}"
        );
    }
    let media = read(&results.join("media-devices.tsv"));
    for model in ["visl", "vicodec"] {
        assert!(
            media
                .lines()
                .any(|l| l.starts_with("/dev/media") && l.ends_with(&format!("\t{model}"))),
            "no /dev/media* with model {model} in:\n{media}"
        );
    }
}

fn check_vp9_on_visl(results: &Path) {
    let status = read(&results.join("vp9.status"));
    assert_eq!(
        status.trim(),
        "0",
        "v4l2slvp9dec pipeline failed:\n{}",
        read(&results.join("vp9.stderr"))
    );
    let checksums = read(&results.join("vp9.checksums"));
    assert_eq!(
        checksums.lines().count(),
        FRAMES,
        "decoded frames:\n{checksums}"
    );

    let trace: VislTrace =
        visl_trace::parse(&read(&results.join("vp9.trace"))).unwrap_or_else(|e| panic!("{e}"));
    assert!(!trace.lost_events, "ftrace dropped events");
    // vp9enc makes no hidden frames here: one decode job per shown frame.
    assert_eq!(trace.frames.len(), FRAMES, "decode jobs seen by visl");
    assert_eq!(trace.count("v4l2_ctrl_vp9_frame"), FRAMES);
    for (n, frame) in trace.frames.iter().enumerate() {
        for event in [
            "v4l2_ctrl_vp9_frame",
            "v4l2_ctrl_vp9_compressed_hdr",
            "v4l2_ctrl_vp9_compressed_coeff",
            "v4l2_vp9_mv_probs",
        ] {
            assert_eq!(frame.controls(event).count(), 1, "frame {n}: {event}");
        }
        let f = frame.control("v4l2_ctrl_vp9_frame").unwrap();
        assert_eq!(
            f.number("frame_width_minus_1"),
            Some(WIDTH - 1),
            "frame {n}"
        );
        assert_eq!(
            f.number("frame_height_minus_1"),
            Some(HEIGHT - 1),
            "frame {n}"
        );
        assert_eq!(f.number("profile"), Some(0), "frame {n}");
        assert_eq!(f.number("bit_depth"), Some(8), "frame {n}");
        assert!(
            f.number("uncompressed_header_size").unwrap() > 0,
            "frame {n}"
        );
        assert!(f.number("compressed_header_size").unwrap() > 0, "frame {n}");
        let flags = f.flags("flags").unwrap();
        assert!(flags.contains(&"SHOW_FRAME"), "frame {n}: {flags:?}");
        assert_eq!(flags.contains(&"KEY_FRAME"), n == 0, "frame {n}: {flags:?}");
        assert_eq!(
            f.array("lf.ref_deltas").map(|v| v.len()),
            Some(4),
            "frame {n}"
        );
    }

    // A second decode of the same stream hands visl the very same controls.
    assert_eq!(read(&results.join("vp9-again.status")).trim(), "0");
    let again = visl_trace::parse(&read(&results.join("vp9-again.trace")))
        .unwrap_or_else(|e| panic!("{e}"));
    let diffs = visl_trace::compare(&trace, &again, &[]);
    assert!(
        diffs.is_empty(),
        "two decodes of one stream differ: {diffs:#?}"
    );
}

fn check_vicodec_round_trip(results: &Path) {
    for step in ["fwht-encode", "fwht-stateless", "fwht-stateful"] {
        assert_eq!(
            read(&results.join(format!("{step}.status"))).trim(),
            "0",
            "{step} failed:\n{}",
            read(&results.join(format!("{step}.log")))
        );
    }
    let format = read(&results.join("fwht-stateless-format.txt"));
    let (w, h) = format
        .lines()
        .find_map(|l| l.trim().strip_prefix("Width/Height")?.split(':').nth(1))
        .and_then(|wh| wh.trim().split_once('/'))
        .map(|(w, h)| (w.parse::<usize>().unwrap(), h.parse::<usize>().unwrap()))
        .unwrap_or_else(|| panic!("no Width/Height in:\n{format}"));
    // v4l2-ctl asks the encoder for FRAMES frames but, on a loaded machine, may stop
    // before the last one comes out: judge the decoders on what the encoder produced.
    let encoded = hdr_frame_count(&std::fs::read(results.join("fwht.hdr")).unwrap());
    assert!(
        (FRAMES / 2..=FRAMES).contains(&encoded),
        "the FWHT encoder produced {encoded} frames, asked for {FRAMES}"
    );
    let stateless = std::fs::read(results.join("fwht-stateless.yuv")).unwrap();
    let stateful = std::fs::read(results.join("fwht-stateful.yuv")).unwrap();
    assert_eq!(
        stateless.len(),
        w * h * 3 / 2 * encoded,
        "{w}x{h} YU12 x {encoded}"
    );
    assert!(
        stateless == stateful,
        "stateless and stateful FWHT decodes differ"
    );
    // A blank or constant picture would also match: demand real content.
    let mut seen = [false; 256];
    stateless.iter().for_each(|&b| seen[b as usize] = true);
    let distinct = seen.iter().filter(|&&s| s).count();
    assert!(
        distinct > 16,
        "decoded frames hold only {distinct} distinct byte values"
    );
}
