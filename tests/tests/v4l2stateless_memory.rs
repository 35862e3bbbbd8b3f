// SPDX-License-Identifier: MPL-2.0
//! Output memory of the V4L2 stateless decoders (VM lab, one boot), checked by an appsink
//! probe (`examples/v4l2stateless-memory`) that reports each buffer's memory and writes
//! the pictures out through their video meta:
//!
//! * vicodec FWHT, 640x480 I- and P-frames: the copy path (appsink without video meta),
//!   zero copy in system memory (video meta offered: the read-only CAPTURE mapping,
//!   nothing copied) and DMABuf output (every memory a `GstDmaBufMemory`, what
//!   `gst_is_dmabuf_memory` checks) are byte-identical to
//!   each other and to vicodec's stateful decoder;
//! * a slow downstream holding many DMABuf pictures (a 64-buffer queue, 16 held by the
//!   sink, 20 ms per picture) neither stalls the decoder nor corrupts references: same
//!   bytes, and the CAPTURE queue grew (`VIDIOC_CREATE_BUFS`);
//! * visl VP8 and VP9 negotiate `memory:DMABuf` and push every picture as a DMABuf;
//! * device loss: visl unbound through sysfs mid-stream ends the pipeline with an error
//!   message, not a hang or a crash.
//!
//! FAILS (never skips) when the lab cannot start: run `./x setup` first.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use mediapass_tests::fwht::{guest_encode_and_split, hdr_records, is_i_frame, make_raw_input};
use mediapass_tests::plugin_dir;
use mediapass_tests::vmlab::{Lab, LabCommand};

const FWHT_FRAMES: usize = 24;
const WIDTH: usize = 640;
const HEIGHT: usize = 480;
const VISL_FRAMES: usize = 30;
/// Long enough that the unbind lands mid-stream: the sink takes 200 ms per picture and
/// queues at most 2, so the decoder cannot run ahead.
const LOSS_FRAMES: usize = 300;

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn encode_ivf(codec: &str, frames: usize, out: &Path) {
    let status = Command::new("gst-launch-1.0")
        .args([
            "-q",
            "videotestsrc",
            &format!("num-buffers={frames}"),
            "pattern=ball",
        ])
        .args([
            "!",
            "video/x-raw,width=320,height=240,framerate=30/1,format=I420",
        ])
        .args(["!", &format!("{codec}enc"), "keyframe-max-dist=10"])
        .args(["!", "avmux_ivf", "!", "filesink"])
        .arg(format!("location={}", out.display()))
        .status()
        .expect("gst-launch-1.0 runs");
    assert!(status.success(), "encoding {}", out.display());
}

/// `name=(type)value` or `name=value` in a GStreamer structure's text, up to `,`/`;`.
fn field<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let rest = &text[text.find(&format!("{name}="))? + name.len() + 1..];
    let rest = match rest.strip_prefix('(') {
        Some(typed) => &typed[typed.find(')')? + 1..],
        None => rest,
    };
    rest.split([',', ';', ' ']).next()
}

/// What the probe printed for one run.
struct Run {
    name: String,
    status: String,
    output: String,
}

impl Run {
    fn load(dir: &Path, name: &str) -> Self {
        Self {
            name: name.to_owned(),
            status: read(&dir.join(format!("{name}.status"))).trim().to_owned(),
            output: read(&dir.join(format!("{name}.out"))),
        }
    }

    fn summary(&self) -> &str {
        self.output
            .lines()
            .find(|l| l.starts_with("summary "))
            .unwrap_or_else(|| panic!("{}: no summary line:\n{}", self.name, self.output))
    }

    fn count(&self, name: &str) -> usize {
        field(self.summary(), name)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{}: no {name} in {}", self.name, self.summary()))
    }

    fn mode(&self) -> &str {
        field(self.summary(), "output-mode")
            .map(|m| m.trim_matches('"'))
            .unwrap_or_else(|| panic!("{}: no output-mode in {}", self.name, self.summary()))
    }

    fn assert_ok(&self) {
        assert_eq!(self.status, "0", "{} failed:\n{}", self.name, self.output);
        assert!(
            !self.output.contains("CRITICAL") && !self.output.contains("panicked"),
            "{}:\n{}",
            self.name,
            self.output
        );
    }
}

#[test]
fn zero_copy_and_dmabuf_output_match_the_copy_path_and_device_loss_is_an_error() {
    let probe = plugin_dir().join("examples/v4l2stateless-memory");
    assert!(
        probe.is_file(),
        "{} is not built: run `cargo build --workspace --all-targets` (./x test does)",
        probe.display()
    );
    let lab = Lab::new().unwrap_or_else(|e| panic!("{e}"));
    let r = lab.scratch_dir("v4l2stateless-memory").unwrap();
    make_raw_input(&r.join("raw.yuv"), FWHT_FRAMES, WIDTH, HEIGHT);
    for codec in ["vp8", "vp9"] {
        encode_ivf(codec, VISL_FRAMES, &r.join(format!("{codec}.ivf")));
    }
    encode_ivf("vp8", LOSS_FRAMES, &r.join("long.ivf"));

    let fwht = "multifilesrc location=$R/frames/frame%d.fwht caps=video/x-fwht \
                ! v4l2statelessfwhtdec name=dec";
    let dmabuf = "video/x-raw(memory:DMABuf)";
    let sink = "appsink name=sink sync=false";
    let mut script = format!(
        "set -u\nR=$1\nM={}\n{}\n",
        probe.display(),
        guest_encode_and_split(FWHT_FRAMES, WIDTH, HEIGHT)
    );
    script.push_str(
        r#"run() { name=$1; shift; timeout 300 "$M" "$@" >"$R/$name.out" 2>&1; echo $? >"$R/$name.status"; }
"#,
    );
    script.push_str(&format!(
        r#"run copy "$R/copy.yuv" "{fwht} ! {sink}"
run mapped --video-meta "$R/mapped.yuv" "{fwht} ! {sink}"
run dmabuf "$R/dmabuf.yuv" "{fwht} ! {dmabuf} ! {sink}"
run held --hold 16 --delay-ms 20 "$R/held.yuv" "{fwht} ! {dmabuf} ! queue max-size-buffers=64 ! {sink}"
timeout 240 v4l2-ctl -d "$dec" -x pixelformat=FWHT -v pixelformat=NV12 --stream-mmap \
  --stream-out-mmap --stream-from-hdr "$R/fwht.hdr" --stream-to "$R/stateful.yuv" \
  >"$R/stateful.log" 2>&1
echo $? >"$R/stateful.status"
run visl-vp8 "$R/visl-vp8.yuv" "filesrc location=$R/vp8.ivf ! ivfparse ! v4l2statelessvp8dec name=dec ! {dmabuf} ! {sink}"
run visl-vp9 "$R/visl-vp9.yuv" "filesrc location=$R/vp9.ivf ! ivfparse ! vp9parse ! v4l2statelessvp9dec name=dec ! {dmabuf} ! {sink}"
"$M" --delay-ms 200 "$R/loss.yuv" "filesrc location=$R/long.ivf ! ivfparse ! v4l2statelessvp8dec name=dec ! {sink} max-buffers=2" >"$R/loss.out" 2>&1 &
pid=$!
for i in $(seq 600); do grep -q "buffer n=3 " "$R/loss.out" && break; sleep 0.5; done
drv=/sys/bus/platform/drivers/visl
ls "$drv" >"$R/visl-sysfs.txt"
for d in "$drv"/*; do
  [ -L "$d" ] && [ "${{d##*/}}" != module ] && echo "${{d##*/}}" >"$drv/unbind" && echo "${{d##*/}}" >>"$R/unbound"
done
status=hang
for i in $(seq 240); do kill -0 $pid 2>/dev/null || {{ wait $pid; status=$?; break; }}; sleep 0.5; done
[ "$status" = hang ] && kill -9 $pid
echo $status >"$R/loss.status"
"#
    ));
    let out = lab
        .run(
            &LabCommand::new("bash")
                .arg("-c")
                .arg(&script)
                .arg("guest")
                .arg(&r)
                .rw_dir(&r)
                .timeout(Duration::from_secs(1500)),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(out.success(), "{}", out.describe());
    assert_eq!(
        read(&r.join("encode.status")).trim(),
        "0",
        "{}",
        read(&r.join("encode.log"))
    );
    assert_eq!(
        read(&r.join("stateful.status")).trim(),
        "0",
        "{}",
        read(&r.join("stateful.log"))
    );
    let hdr = std::fs::read(r.join("fwht.hdr")).unwrap();
    let records = hdr_records(&hdr);
    // On a loaded machine v4l2-ctl may stop before the last frame comes out.
    assert!(
        (FWHT_FRAMES / 2..=FWHT_FRAMES).contains(&records.len()),
        "the encoder produced {} frames",
        records.len()
    );
    assert!(is_i_frame(records[0]) && records.iter().any(|r| !is_i_frame(r)));
    let frames = records.len();
    let stateful = std::fs::read(r.join("stateful.yuv")).unwrap();
    assert_eq!(stateful.len(), WIDTH * HEIGHT * 3 / 2 * frames);

    let copy = Run::load(&r, "copy");
    copy.assert_ok();
    assert_eq!(copy.count("frames"), frames, "{}", copy.output);
    assert_eq!(copy.mode(), "copy", "{}", copy.summary());
    assert_eq!(copy.count("pictures-zero-copy"), 0, "{}", copy.summary());
    assert_eq!(copy.count("dmabuf"), 0, "{}", copy.summary());
    let reference = std::fs::read(r.join("copy.yuv")).unwrap();
    assert!(
        reference == stateful,
        "the copy path differs from vicodec's stateful decoder"
    );

    for (name, mode) in [
        ("mapped", "system-memory"),
        ("dmabuf", "dmabuf"),
        ("held", "dmabuf"),
    ] {
        let run = Run::load(&r, name);
        run.assert_ok();
        assert_eq!(run.count("frames"), frames, "{name}:\n{}", run.output);
        assert_eq!(run.mode(), mode, "{name}: {}", run.summary());
        assert_eq!(run.count("pictures-copied"), 0, "{name}: {}", run.summary());
        assert_eq!(
            run.count("pictures-zero-copy"),
            frames,
            "{name}: {}",
            run.summary()
        );
        if mode == "dmabuf" {
            assert_eq!(run.count("dmabuf"), frames, "{name}: {}", run.summary());
        } else {
            // The mapped CAPTURE buffer itself: read-only, unlike a pool buffer.
            assert_eq!(run.count("readonly"), frames, "{name}: {}", run.summary());
            assert_eq!(run.count("dmabuf"), 0, "{name}: {}", run.summary());
        }
        let pictures = std::fs::read(r.join(format!("{name}.yuv"))).unwrap();
        assert!(
            pictures == reference,
            "{name}: pictures differ from the copy path ({} vs {} bytes)",
            pictures.len(),
            reference.len()
        );
    }
    // Process CPU time per mode, for the README (never asserted: TCG timing is noise).
    eprintln!("run     mode            frames  cpu ms  cpu ms/frame");
    for name in ["copy", "mapped", "dmabuf"] {
        let run = Run::load(&r, name);
        let cpu = run.count("cpu_ms");
        eprintln!(
            "{name:<7} {:<15} {frames:>6} {cpu:>7} {:>13.1}",
            run.mode(),
            cpu as f64 / frames as f64
        );
    }
    // The copy path never lends, so its CAPTURE count is the initial one; downstream
    // holding up to all pictures must have made the queue grow (VIDIOC_CREATE_BUFS).
    let grown = Run::load(&r, "held").count("capture-buffers");
    let initial = copy.count("capture-buffers");
    assert!(
        grown > initial,
        "a downstream holding pictures should grow the CAPTURE queue ({grown} vs {initial})"
    );

    for codec in ["vp8", "vp9"] {
        let run = Run::load(&r, &format!("visl-{codec}"));
        run.assert_ok();
        assert_eq!(run.count("frames"), VISL_FRAMES, "{}", run.output);
        assert_eq!(run.count("dmabuf"), VISL_FRAMES, "{}", run.summary());
        assert_eq!(run.mode(), "dmabuf", "{}", run.summary());
    }

    let loss = Run::load(&r, "loss");
    let unbound = read(&r.join("unbound"));
    assert!(
        !unbound.trim().is_empty(),
        "nothing to unbind: {}",
        read(&r.join("visl-sysfs.txt"))
    );
    assert_eq!(
        loss.status, "1",
        "after unbinding visl the pipeline must stop with an error (status 1), not hang \
         or crash:\n{}",
        loss.output
    );
    let error = loss
        .output
        .lines()
        .find(|l| l.starts_with("v4l2stateless-memory: "))
        .unwrap_or_else(|| panic!("no error message:\n{}", loss.output));
    assert!(
        error.contains("GstV4l2StatelessVp8Dec:dec"),
        "the error must come from the decoder: {error}"
    );
    assert!(
        loss.output.contains("buffer n=3 "),
        "the device went away before the stream started:\n{}",
        loss.output
    );
    eprintln!("device loss: {error}");
}
