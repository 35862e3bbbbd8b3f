// SPDX-License-Identifier: MPL-2.0
//! Two-process raw-video transport benchmark: `shmzerosink ! shmzerosrc` side by side with
//! GStreamer's `shmsink ! shmsrc`, in one run, on the same machine.
//!
//! Every case runs a writer and a reader as separate `shmzero-probe` processes (the
//! `shmsink`/`shmsrc` case uses the same probe with the C elements). Each process reports its
//! CPU time (`getrusage`, all threads) from its first frame to exit and its peak RSS. The
//! "baseline" is the same source into a `fakesink` in one process; transport cost per frame is
//! `writer − baseline + reader`, the method of `/work/shared/research/ipc-measurements.md`.
//!
//! ```text
//! cargo bench -p gst-plugin-shmzero --bench transport            # all cases
//! SHMZERO_BENCH_FRAMES=300 cargo bench -p gst-plugin-shmzero --bench transport
//! SHMZERO_BENCH_CASES=a,d cargo bench -p gst-plugin-shmzero --bench transport   # some cases
//! ```

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PROBE: &str = env!("CARGO_BIN_EXE_shmzero-probe");

#[derive(Debug, Default, Clone)]
struct Summary {
    frames: f64,
    /// Frames after the warm-up, over which CPU and wall time were measured.
    measured: f64,
    cpu_ms: f64,
    wall_ms: f64,
    maxrss_kb: f64,
    stats: String,
}

fn parse_summary(output: &str) -> Summary {
    let mut summary = Summary::default();
    for line in output.lines() {
        if let Some(rest) = line.strip_prefix("summary ") {
            let fields: HashMap<&str, f64> = rest
                .split_whitespace()
                .filter_map(|kv| kv.split_once('='))
                .filter_map(|(k, v)| Some((k, v.parse().ok()?)))
                .collect();
            summary.frames = fields.get("frames").copied().unwrap_or(0.0);
            summary.measured = fields.get("measured").copied().unwrap_or(0.0);
            summary.cpu_ms = fields.get("cpu_ms").copied().unwrap_or(0.0);
            summary.wall_ms = fields.get("wall_ms").copied().unwrap_or(0.0);
            summary.maxrss_kb = fields.get("maxrss_kb").copied().unwrap_or(0.0);
        }
        if let Some(rest) = line.strip_prefix("stats ") {
            summary.stats = rest.to_owned();
        }
    }
    summary
}

/// A probe process whose stdout goes to a file (read once it exited).
struct Running {
    child: std::process::Child,
    output: std::path::PathBuf,
}

/// Frames before CPU accounting starts: start-up and the first touch of every slot / shm
/// block (page faults) are not per-frame transport cost.
const WARMUP: u32 = 20;

fn spawn(args: &[String]) -> Running {
    let mut args = args.to_vec();
    args.extend(["--warmup".into(), WARMUP.to_string()]);
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let output = socket_dir().join(format!(
        "out-{}",
        COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    ));
    let file = std::fs::File::create(&output).expect("output file");
    let child = Command::new(PROBE)
        .args(&args)
        .env("GST_REGISTRY_FORK", "no")
        .stdout(file)
        .stderr(Stdio::null())
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn shmzero-probe");
    Running { child, output }
}

/// Waits for the probe (killing it after `limit`: a shmsink writer may wait forever for a
/// last ACK) and parses its summary.
fn finish(mut running: Running, what: &str, limit: Duration) -> Summary {
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = running.child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = running.child.kill();
            break running.child.wait().expect("wait");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = std::fs::read_to_string(&running.output).unwrap_or_default();
    let _ = std::fs::remove_file(&running.output);
    if !status.success() {
        eprintln!("{what} exited with {status}:\n{text}");
    }
    parse_summary(&text)
}

fn socket_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("shmzero-bench-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    dir
}

#[derive(Clone, Copy, PartialEq)]
enum Transport {
    ShmZero,
    Shm,
}

impl Transport {
    fn name(self) -> &'static str {
        match self {
            Transport::ShmZero => "shmzerosink/src",
            Transport::Shm => "shmsink/shmsrc",
        }
    }
}

struct Case {
    name: &'static str,
    width: u32,
    height: u32,
    pattern: &'static str,
    frames: u32,
    /// Number of independent live 30 fps feeds into one reader process (0 = one non-live feed).
    live_feeds: u32,
}

struct Row {
    /// CPU the sink's streaming thread spent inside render per frame (shmzerosink's own
    /// `render-cpu-ns` stat; shmsink has no equivalent).
    render_ms: Option<f64>,
    case: String,
    transport: &'static str,
    fps: f64,
    writer_ms: f64,
    reader_ms: f64,
    baseline_ms: f64,
    writer_rss_mb: f64,
    reader_rss_mb: f64,
    note: String,
}

/// `key=(type)value` from a GstStructure string, as f64.
fn stat(structure: &str, key: &str) -> Option<f64> {
    let start = structure.find(&format!("{key}="))? + key.len() + 1;
    let rest = &structure[start..];
    let rest = rest.split_once(')').map_or(rest, |(_, v)| v);
    rest.split([',', ';']).next()?.trim().parse().ok()
}

fn caps(case: &Case) -> String {
    format!(
        "video/x-raw,format=RGBA,width={},height={},framerate=30/1",
        case.width, case.height
    )
}

fn baseline(case: &Case) -> Summary {
    let args: Vec<String> = [
        "baseline",
        "--frames",
        &case.frames.to_string(),
        "--width",
        &case.width.to_string(),
        "--height",
        &case.height.to_string(),
        "--pattern",
        case.pattern,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut args = args;
    if case.live_feeds > 0 {
        // Live feeds are compared with a live source into a syncing fakesink: the clock waits
        // and thread wake-ups are not transport.
        args.push("--live".into());
    }
    finish(spawn(&args), "baseline", Duration::from_secs(300))
}

fn writer_args(case: &Case, transport: Transport, socket: &str, live: bool) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "write".into(),
        "--socket".into(),
        socket.into(),
        "--frames".into(),
        case.frames.to_string(),
        "--width".into(),
        case.width.to_string(),
        "--height".into(),
        case.height.to_string(),
        "--pattern".into(),
        case.pattern.into(),
        "--limit-ms".into(),
        "30000".into(),
    ];
    if live {
        args.push("--live".into());
    }
    match transport {
        Transport::Shm => args.extend(["--sink".into(), "shm".into()]),
        Transport::ShmZero => args.extend([
            "--sink-props".into(),
            // Back-pressure like shmsink for the non-live cases, so the reader sees every frame.
            if live {
                "max-buffers=8".into()
            } else {
                "block-on-slow-readers=true max-buffers=8".into()
            },
        ]),
    }
    args
}

fn reader_args(case: &Case, transport: Transport, socket: &str, frames: u32) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "read".into(),
        "--frames".into(),
        frames.to_string(),
        "--quiet".into(),
        "--not-live".into(),
        "--limit-ms".into(),
        "30000".into(),
    ];
    if case.live_feeds > 0 {
        args.extend([
            "--branches".into(),
            case.live_feeds.to_string(),
            "--socket-prefix".into(),
            socket.into(),
        ]);
    } else {
        args.extend(["--socket".into(), socket.into()]);
    }
    if transport == Transport::Shm {
        args.extend(["--src".into(), "shm".into(), "--caps".into(), caps(case)]);
    }
    args
}

fn run(case: &Case, transport: Transport, base: &Summary) -> Row {
    let dir = socket_dir();
    let tag = format!("{}-{}", case.name.replace(' ', "_"), transport as u8);
    let feeds = case.live_feeds.max(1);
    let prefix = dir.join(format!("{tag}-")).display().to_string();
    let socket_of = |i: u32| {
        if case.live_feeds > 0 {
            format!("{prefix}{i}")
        } else {
            prefix.clone()
        }
    };
    let live = case.live_feeds > 0;
    let writers: Vec<Running> = (0..feeds)
        .map(|i| spawn(&writer_args(case, transport, &socket_of(i), live)))
        .collect();
    // shmsrc has no retry: give the writers time to listen.
    std::thread::sleep(Duration::from_millis(500));
    // The reader stops itself after this many frames: shmsrc never sees an EOS. Live feeds
    // lose their first frames while the reader connects, so it stops at 80 % of them.
    let expected = if live {
        case.frames * feeds * 4 / 5
    } else {
        case.frames * feeds
    };
    let reader = spawn(&reader_args(case, transport, &prefix, expected));
    let reader = finish(reader, "reader", Duration::from_secs(300));
    let writers: Vec<Summary> = writers
        .into_iter()
        .map(|w| finish(w, "writer", Duration::from_secs(10)))
        .collect();
    let writer_frames: f64 = writers.iter().map(|w| w.measured).sum();
    let writer_cpu: f64 = writers.iter().map(|w| w.cpu_ms).sum();
    let writer_rss = writers.iter().map(|w| w.maxrss_kb).fold(0.0, f64::max);
    let fps = if reader.wall_ms > 0.0 {
        reader.measured / (reader.wall_ms / 1e3)
    } else {
        0.0
    };
    let note = if reader.frames + 0.5 < f64::from(expected) {
        format!("reader got {} of {expected} frames", reader.frames)
    } else {
        String::new()
    };
    let rendered: f64 = writers
        .iter()
        .filter_map(|w| stat(&w.stats, "rendered"))
        .sum();
    let render_ns: f64 = writers
        .iter()
        .filter_map(|w| stat(&w.stats, "render-cpu-ns"))
        .sum();
    Row {
        render_ms: (rendered > 0.0).then(|| render_ns / rendered / 1e6),
        case: case.name.to_owned(),
        transport: transport.name(),
        fps,
        writer_ms: writer_cpu / writer_frames.max(1.0),
        reader_ms: reader.cpu_ms / reader.measured.max(1.0),
        baseline_ms: base.cpu_ms / base.measured.max(1.0),
        writer_rss_mb: writer_rss / 1024.0,
        reader_rss_mb: reader.maxrss_kb / 1024.0,
        note,
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would pass nothing useful.
    let frames: u32 = std::env::var("SHMZERO_BENCH_FRAMES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(600);
    let cases = [
        Case {
            name: "(a) 1080p solid-color, painted into the pool",
            width: 1920,
            height: 1080,
            pattern: "solid-color",
            frames,
            live_feeds: 0,
        },
        Case {
            name: "(b) 1080p videotestsrc default pattern",
            width: 1920,
            height: 1080,
            pattern: "smpte",
            frames: frames / 2,
            live_feeds: 0,
        },
        Case {
            name: "(c) 4K solid-color",
            width: 3840,
            height: 2160,
            pattern: "solid-color",
            frames: frames / 2,
            live_feeds: 0,
        },
        Case {
            name: "(d) ten 1080p30 live feeds, one reader",
            width: 1920,
            height: 1080,
            pattern: "solid-color",
            frames: 150,
            live_feeds: 10,
        },
    ];
    let load = || std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average at start: {}", load().trim());
    println!(
        "| case | transport | fps (reader) | writer CPU ms/frame | baseline ms/frame | reader CPU ms/frame | transport ms/frame (w − base + r) | sink render CPU ms/frame | writer peak RSS MB | reader peak RSS MB | note |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    // SHMZERO_BENCH_CASES=a,d runs only those cases.
    let selected = std::env::var("SHMZERO_BENCH_CASES").unwrap_or_default();
    for case in cases.iter().filter(|c| {
        selected.is_empty()
            || selected
                .split(',')
                .any(|s| c.name.starts_with(&format!("({})", s.trim())))
    }) {
        let base = baseline(case);
        for transport in [Transport::ShmZero, Transport::Shm] {
            let row = run(case, transport, &base);
            println!(
                "| {} | {} | {:.0} | {:.3} | {:.3} | {:.3} | {:.3} | {} | {:.0} | {:.0} | {} |",
                row.case,
                row.transport,
                row.fps,
                row.writer_ms,
                row.baseline_ms,
                row.reader_ms,
                row.writer_ms - row.baseline_ms + row.reader_ms,
                row.render_ms
                    .map_or("n/a".to_owned(), |ms| format!("{ms:.4}")),
                row.writer_rss_mb,
                row.reader_rss_mb,
                row.note
            );
            if case.live_feeds > 0 {
                let per_second = f64::from(case.live_feeds) * 30.0;
                let transport_ms = (row.writer_ms - row.baseline_ms + row.reader_ms) * per_second;
                println!(
                    "|   ↳ {} feeds × 30 fps | {} | | | | reader {:.2} % of a core | transport {:.2} % of a core | sinks' render + reader {} | | | |",
                    case.live_feeds,
                    row.transport,
                    row.reader_ms * per_second / 10.0,
                    transport_ms / 10.0,
                    row.render_ms.map_or("n/a".to_owned(), |ms| format!(
                        "{:.2} % of a core",
                        (ms + row.reader_ms) * per_second / 10.0
                    ))
                );
            }
        }
    }
    println!("load average at end: {}", load().trim());
    let _ = std::fs::remove_dir_all(socket_dir());
}
