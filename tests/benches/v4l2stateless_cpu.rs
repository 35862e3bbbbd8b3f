// SPDX-License-Identifier: MPL-2.0
//! CPU benchmark of `gst-plugin-v4l2stateless`'s decoders against GStreamer's C
//! `v4l2sl*dec` (Debian's v4l2codecs), both on visl in the VM lab, in one boot.
//!
//! ```sh
//! cargo build --release -p gst-plugin-v4l2stateless
//! cargo bench -p mediapass-tests --bench v4l2stateless_cpu
//! ```
//!
//! For every stream of mediapass's generated Fluster suites (the same files the Fluster
//! tests use) and every codec our plugin implements, three `gst-launch-1.0` pipelines
//! run, interleaved (base, C, ours, base, C, ours, ...), `MEDIAPASS_BENCH_REPS` times
//! (default 3), on the stream played `MEDIAPASS_BENCH_REPEAT` times in a row in one file
//! (default 10: each copy starts with a key frame; IVF frame headers renumbered):
//!
//! * baseline: `filesrc ! PARSE ! fakesink` (process start, registry, file, parser, sink;
//!   `fakevideosink` takes raw video only),
//! * C:        `filesrc ! PARSE ! v4l2sl<codec>dec ! video/x-raw ! fakevideosink`,
//! * ours:     `filesrc ! PARSE ! v4l2stateless<codec>dec ! video/x-raw ! fakevideosink`.
//!
//! `fakevideosink` offers the video meta, so both decoders lend their CAPTURE buffers
//! downstream (no picture copy on either side).
//!
//! Why the guest runs with QEMU's `-icount` ([`LabCommand::icount`]): under ordinary
//! (multi-threaded) TCG the guest's clock is the host's, so a process's CPU time in the
//! guest includes every moment the host took the emulating thread away for other work;
//! on this shared machine that made repetitions of one pipeline differ by up to 2x. With
//! `-icount shift=0,sleep=off` the guest clock advances 1 ns per emulated instruction:
//! a shell loop measured three times gives the same CPU time to the tick, whatever the
//! host does. Caveats: (1) the two vCPUs run round-robin on one host thread and share
//! that instruction clock, so a task is also charged what the other vCPU executes while
//! it runs (visl's worker, the pipeline's other threads): the same for both decoders,
//! it pulls the ratio towards 1; (2) the tick-sampled user/sys split is meaningless under
//! icount (one baseline run reads 0.35 s user + 0 s sys, the next 0.19 + 0.16), while
//! the total, which the kernel takes from the scheduler's runtime, is stable, so the
//! table gives user + sys.
//!
//! CPU time is the pipeline process's rusage (`wait4`, microseconds, from a small Python
//! wrapper). Per stream and repetition: (decoder run - baseline run of the same
//! repetition) / frames; the table gives the median over repetitions and the ratio
//! ours/C with its min-max over repetitions; the last rows are geometric means over
//! streams (per codec and overall). visl's decoding work is in a kernel worker, not in
//! these processes; what remains is the decoder element's own: parsing, controls,
//! ioctls, buffer handling.
//!
//! Then syscalls per frame (`strace -f -c`, one run of each decoder on the original
//! stream, minus the baseline's), and frames in flight: ours with `render-delay` 0, 1, 2
//! and our TRACE line "in flight: N requests queued, M pictures not pushed" after each
//! decode; that table gives the maximum of each, and the frames output (checksumsink)
//! against the C decoder's and the software decoder's counts.
//!
//! Absolute times are those of an emulated CPU counting 1 ns per instruction, not the
//! host's; the ratio between two decoders on the same streams is the meaningful number.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mediapass_tests::fluster::{Suite, Vector};
use mediapass_tests::measure::{
    geometric_mean, max_in_flight, median, parse_rusage, parse_strace_summary,
};
use mediapass_tests::v4l2stateless::{Codec, implemented_codecs};
use mediapass_tests::vmlab::{Lab, LabCommand};
use mediapass_tests::{built_plugin, plugin_dir};

const SIDES: &[&str] = &["base", "c", "ours"];
const RENDER_DELAYS: &[u32] = &[0, 1, 2];
/// The sink of the CPU runs: offers the video meta, so both decoders lend CAPTURE buffers.
const CPU_SINK: &str = "fakevideosink";

/// Runs a command, writes its rusage `USER SYS` (seconds, microsecond resolution) to
/// the file named by the first argument, exits with the command's status.
const RUSAGE_WRAPPER: &str = r#"import os, sys
pid = os.posix_spawnp(sys.argv[2], sys.argv[2:], os.environ)
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as out:
    out.write(f"{usage.ru_utime:.6f} {usage.ru_stime:.6f}\n")
sys.exit(os.waitstatus_to_exitcode(status) & 255)
"#;

fn main() {
    let reps = env_number("MEDIAPASS_BENCH_REPS", 3);
    let repeat = env_number("MEDIAPASS_BENCH_REPEAT", 10);
    built_plugin("libgstv4l2stateless.so");
    let codecs = implemented_codecs();
    assert!(
        !codecs.is_empty(),
        "our plugin registers no decoder element"
    );
    let keys: Vec<&str> = codecs.iter().map(|c| c.key).collect();
    let suite =
        Suite::generate(&plugin_dir().join("bench-suite"), &keys).unwrap_or_else(|e| panic!("{e}"));

    let lab = Lab::new().unwrap_or_else(|e| panic!("{e}"));
    let results = lab.scratch_dir("v4l2stateless-bench").unwrap();
    let wrapper = results.join("rusage.py");
    let looped: Vec<Vector> = suite
        .vectors
        .iter()
        .map(|v| repeated(v, repeat, &suite.dir.join("repeated")))
        .collect();
    let script = guest_script(&suite.vectors, &looped, &results, reps, &wrapper);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let started = std::time::Instant::now();
    eprintln!(
        "booting the lab (icount): {} streams ({}) played {repeat} times, {reps} \
         repetitions, host load {}",
        suite.vectors.len(),
        keys.join(", "),
        load.trim()
    );
    std::fs::write(&wrapper, RUSAGE_WRAPPER).unwrap();
    let out = lab
        .run(
            &LabCommand::shell(&script)
                .rw_dir(&results)
                .icount(0)
                .timeout(std::time::Duration::from_secs(3600)),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(out.success(), "{}", out.describe());
    let wall = started.elapsed();

    println!(
        "\nCPU time (user + sys) per frame in microseconds of the emulated CPU (QEMU -icount, \
         1 ns per instruction), median over {reps} repetitions of (decoder run - baseline \
         run), each stream played {repeat} times, both decoders zero-copy into {CPU_SINK}; \
         ours/C: median of the per-repetition ratios (min-max); geometric means over \
         streams (min-max of the per-repetition means)\n"
    );
    println!("{}", cpu_table(&looped, &results, reps));
    println!(
        "\nSyscalls per frame (strace -f -c, one run on the original stream, minus the baseline)\n"
    );
    println!("{}", syscall_table(&suite.vectors, &results));
    println!("\nFrames in flight (ours), maximum over the stream, and frames output\n");
    println!("{}", in_flight_table(&suite.vectors, &results));
    println!(
        "\nlab run: {:.0} s wall (boot included); host load before: {}",
        wall.as_secs_f64(),
        load.trim()
    );
}

fn env_number(name: &str, default: usize) -> usize {
    let value = std::env::var(name)
        .ok()
        .map(|v| v.parse().unwrap_or_else(|_| panic!("{name} is a number")))
        .unwrap_or(default);
    assert!(value >= 1, "{name} must be at least 1");
    value
}

/// The stream played `times` times in a row, as one file in `dir`: IVF frames copied
/// with their timestamps continued, other (elementary) streams concatenated.
fn repeated(vector: &Vector, times: usize, dir: &Path) -> Vector {
    std::fs::create_dir_all(dir).unwrap();
    let data = std::fs::read(&vector.path).unwrap();
    let ext = vector
        .path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("");
    let path = dir.join(format!("{}.x{times}.{ext}", vector.name));
    let bytes = if ext == "ivf" {
        repeat_ivf(&data, times).unwrap_or_else(|| panic!("{}: bad IVF", vector.path.display()))
    } else {
        data.repeat(times)
    };
    std::fs::write(&path, bytes).unwrap();
    Vector {
        path,
        frames: vector.frames * times as u32,
        ..vector.clone()
    }
}

/// IVF: a 32-byte header (frame count at 24), then frames of (u32 size, u64 pts, data).
fn repeat_ivf(data: &[u8], times: usize) -> Option<Vec<u8>> {
    let header_len = usize::from(u16::from_le_bytes(data.get(6..8)?.try_into().ok()?));
    let mut frames = Vec::new();
    let mut at = header_len;
    while at < data.len() {
        let size = u32::from_le_bytes(data.get(at..at + 4)?.try_into().ok()?) as usize;
        let pts = u64::from_le_bytes(data.get(at + 4..at + 12)?.try_into().ok()?);
        frames.push((pts, data.get(at + 12..at + 12 + size)?));
        at += 12 + size;
    }
    let span = frames.iter().map(|(pts, _)| pts + 1).max()?;
    let mut out = data[..header_len].to_vec();
    let count = u32::try_from(frames.len() * times).ok()?;
    out[24..28].copy_from_slice(&count.to_le_bytes());
    for copy in 0..times as u64 {
        for (pts, frame) in &frames {
            out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
            out.extend_from_slice(&(pts + copy * span).to_le_bytes());
            out.extend_from_slice(frame);
        }
    }
    Some(out)
}

fn codec_of(vector: &Vector) -> &'static Codec {
    Codec::by_key(&vector.codec).unwrap_or_else(|| panic!("unknown codec {}", vector.codec))
}

fn pipeline(vector: &Vector, side: &str, extra: &str, sink: &str) -> String {
    let codec = codec_of(vector);
    let decoder = match side {
        "base" => String::new(),
        "c" => format!("! {} {extra} ! video/x-raw ", codec.c),
        _ => format!("! {} {extra} ! video/x-raw ", codec.ours),
    };
    // The baseline has no decoder: its parser's output goes to a sink taking anything.
    let sink = if side == "base" { "fakesink" } else { sink };
    format!(
        "gst-launch-1.0 -q --no-fault filesrc location={} ! {} {decoder}! {sink}",
        vector.path.display(),
        codec.parse
    )
}

/// CPU runs on the `looped` streams, then syscall counts, frame counts and frames in
/// flight on `vectors`.
fn guest_script(
    vectors: &[Vector],
    looped: &[Vector],
    dir: &Path,
    reps: usize,
    wrapper: &Path,
) -> String {
    let mut script = String::from("set -u\n");
    // One warm-up run of each side so the first measured one does not pay for cold caches.
    if let Some(v) = looped.first() {
        for side in SIDES {
            script.push_str(&format!(
                "{} >/dev/null 2>&1\n",
                pipeline(v, side, "", CPU_SINK)
            ));
        }
    }
    for rep in 0..reps {
        for vector in looped {
            for side in SIDES {
                let base = dir.join(format!("{}.{side}.{rep}", vector.name));
                script.push_str(&format!(
                    "timeout 600 python3 {wrapper} {base}.rusage {cmd} >/dev/null \
                     2>{base}.stderr; echo $? >{base}.status\n",
                    wrapper = wrapper.display(),
                    cmd = pipeline(vector, side, "", CPU_SINK),
                    base = base.display()
                ));
            }
        }
    }
    for vector in vectors {
        for side in SIDES {
            let base = dir.join(format!("{}.{side}.strace", vector.name));
            script.push_str(&format!(
                "timeout 600 strace -f -c -o {base}.summary {cmd} >/dev/null 2>{base}.stderr; \
                 echo $? >{base}.status\n",
                cmd = pipeline(vector, side, "", CPU_SINK),
                base = base.display()
            ));
        }
    }
    for vector in vectors {
        let base = dir.join(format!("{}.c.frames", vector.name));
        script.push_str(&format!(
            "timeout 300 {cmd} >{base}.checksums 2>{base}.stderr; echo $? >{base}.status\n",
            cmd = pipeline(vector, "c", "", "checksumsink"),
            base = base.display()
        ));
        for delay in RENDER_DELAYS {
            let base = dir.join(format!("{}.rd{delay}", vector.name));
            script.push_str(&format!(
                "GST_DEBUG=v4l2statelessdec:7 GST_DEBUG_NO_COLOR=1 GST_DEBUG_FILE={base}.log \
                 timeout 300 {cmd} >{base}.checksums 2>{base}.stderr; echo $? >{base}.status\n",
                cmd = pipeline(
                    vector,
                    "ours",
                    &format!("render-delay={delay}"),
                    "checksumsink"
                ),
                base = base.display()
            ));
        }
    }
    script
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Checks a run's exit status file; panics with its stderr when it failed.
fn check_status(base: &Path) {
    let status = read(&with_ext(base, "status"));
    assert_eq!(
        status.trim(),
        "0",
        "{} failed:\n{}",
        base.display(),
        read(&with_ext(base, "stderr"))
    );
}

fn with_ext(base: &Path, ext: &str) -> PathBuf {
    let mut name = base.as_os_str().to_owned();
    name.push(".");
    name.push(ext);
    PathBuf::from(name)
}

/// (user, sys) seconds of one CPU run.
fn rusage(dir: &Path, vector: &Vector, side: &str, rep: usize) -> (f64, f64) {
    let base = dir.join(format!("{}.{side}.{rep}", vector.name));
    check_status(&base);
    let text = read(&with_ext(&base, "rusage"));
    parse_rusage(&text).unwrap_or_else(|| panic!("{}: bad rusage line {text:?}", base.display()))
}

/// Per repetition: the decoder side's CPU time (user + sys) in microseconds per frame,
/// the baseline of the same repetition subtracted.
fn per_frame(dir: &Path, vector: &Vector, side: &str, reps: usize) -> Vec<f64> {
    let frames = f64::from(vector.frames);
    (0..reps)
        .map(|rep| {
            let (user, sys) = rusage(dir, vector, side, rep);
            let (base_user, base_sys) = rusage(dir, vector, "base", rep);
            (user + sys - base_user - base_sys) / frames * 1e6
        })
        .collect()
}

fn min_max(values: &[f64]) -> (f64, f64) {
    values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(*v), hi.max(*v))
        })
}

fn cpu_table(vectors: &[Vector], dir: &Path, reps: usize) -> String {
    let row = |name: &str, frames: String, base: String, c: String, ours: String, ratio: String| {
        format!("{name:<26} {frames:>6} {base:>8} {c:>9} {ours:>9} {ratio:>18}")
    };
    let mut rows = vec![row(
        "stream",
        "frames".into(),
        "base ms".into(),
        "C us/frm".into(),
        "ours us/frm".into(),
        "ours/C (min-max)".into(),
    )];
    // Per codec and over all streams: per stream, the ratio ours/C of each repetition.
    let mut ratios: BTreeMap<String, Vec<Vec<f64>>> = BTreeMap::new();
    for vector in vectors {
        let c = per_frame(dir, vector, "c", reps);
        let ours = per_frame(dir, vector, "ours", reps);
        let ratio: Vec<f64> = c.iter().zip(&ours).map(|(c, o)| o / c).collect();
        let base: Vec<f64> = (0..reps)
            .map(|rep| {
                let (user, sys) = rusage(dir, vector, "base", rep);
                (user + sys) * 1e3
            })
            .collect();
        let med = |values: Vec<f64>| median(values).expect("reps >= 1");
        let (lo, hi) = min_max(&ratio);
        rows.push(row(
            &vector.name,
            vector.frames.to_string(),
            format!("{:.0}", med(base)),
            format!("{:.0}", med(c)),
            format!("{:.0}", med(ours)),
            format!("{:.2} ({lo:.2}-{hi:.2})", med(ratio.clone())),
        ));
        for key in [vector.codec.clone(), "all streams".to_owned()] {
            ratios.entry(key).or_default().push(ratio.clone());
        }
    }
    // Geometric mean over streams of the per-stream medians; min-max: the geometric mean
    // over streams within each repetition, lowest and highest repetition.
    for (key, streams) in &ratios {
        let medians: Vec<f64> = streams
            .iter()
            .map(|s| median(s.clone()).expect("reps >= 1"))
            .collect();
        let per_rep: Vec<f64> = (0..reps)
            .map(|rep| {
                let values: Vec<f64> = streams.iter().map(|s| s[rep]).collect();
                geometric_mean(&values).unwrap_or(f64::NAN)
            })
            .collect();
        let (lo, hi) = min_max(&per_rep);
        rows.push(row(
            &format!("geometric mean, {key}"),
            format!("{}", streams.len()),
            String::new(),
            String::new(),
            String::new(),
            format!(
                "{:.2} ({lo:.2}-{hi:.2})",
                geometric_mean(&medians).unwrap_or(f64::NAN)
            ),
        ));
    }
    rows.join("\n")
}

/// Syscalls shown in their own column; the rest only in the total.
const SYSCALLS: &[&str] = &["ioctl", "ppoll", "poll", "futex", "mmap", "munmap"];

fn syscall_table(vectors: &[Vector], dir: &Path) -> String {
    let mut header = format!("{:<22} {:>6} {:>5}", "stream", "frames", "side");
    for name in SYSCALLS.iter().chain(&["total"]) {
        header.push_str(&format!(" {name:>8}"));
    }
    let mut rows = vec![header];
    for vector in vectors {
        let summary = |side: &str| {
            let base = dir.join(format!("{}.{side}.strace", vector.name));
            check_status(&base);
            parse_strace_summary(&read(&with_ext(&base, "summary")))
                .unwrap_or_else(|| panic!("{}.summary: no strace total", base.display()))
        };
        let base = summary("base");
        for side in ["c", "ours"] {
            let calls = summary(side);
            let mut row = format!("{:<22} {:>6} {:>5}", vector.name, vector.frames, side);
            for name in SYSCALLS.iter().chain(&["total"]) {
                let count = |map: &BTreeMap<String, u64>| map.get(*name).copied().unwrap_or(0);
                let per_frame =
                    (count(&calls) as f64 - count(&base) as f64) / f64::from(vector.frames);
                row.push_str(&format!(" {per_frame:>8.1}"));
            }
            rows.push(row);
        }
    }
    rows.join("\n")
}

fn in_flight_table(vectors: &[Vector], dir: &Path) -> String {
    let mut header = format!("{:<22} {:>8} {:>8}", "stream", "sw out", "C out");
    for delay in RENDER_DELAYS {
        header.push_str(&format!(" {:>20}", format!("rd={delay}: req/pic/out")));
    }
    let mut rows = vec![header];
    for vector in vectors {
        let c = dir.join(format!("{}.c.frames", vector.name));
        check_status(&c);
        let c_out = read(&with_ext(&c, "checksums")).lines().count();
        let mut row = format!("{:<22} {:>8} {:>8}", vector.name, vector.frames, c_out);
        for delay in RENDER_DELAYS {
            let base = dir.join(format!("{}.rd{delay}", vector.name));
            check_status(&base);
            let out = read(&with_ext(&base, "checksums")).lines().count();
            let (requests, pictures) = max_in_flight(&read(&with_ext(&base, "log")))
                .unwrap_or_else(|| panic!("no 'in flight' line in {}.log", base.display()));
            row.push_str(&format!(" {:>20}", format!("{requests}/{pictures}/{out}")));
        }
        rows.push(row);
    }
    rows.join("\n")
}
