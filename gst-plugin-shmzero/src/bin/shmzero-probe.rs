// SPDX-License-Identifier: MPL-2.0
//! `shmzero-probe`: a writer or reader process for the shmzero tests and benchmark.
//!
//! It runs one real pipeline and reports, line by line on stdout, what a test or benchmark
//! needs to see from the outside: caps and events received, frames (and whether each frame's
//! bytes lie inside a read-only shared memfd or DMABuf mapping of this process, read from
//! `/proc/self/maps`), the sink's stats, and CPU time / peak RSS from `getrusage`.
//!
//! ```text
//! shmzero-probe read  --socket PATH [--frames N] [--reconnect] [--timeout-ms T] [--quiet]
//!                     [--keep-first] [--not-live] [--checksums]
//!                     [--src shmzero|shm --caps CAPS] [--branches K --socket-prefix P]
//! shmzero-probe write --socket PATH --frames N [--width W --height H] [--pattern P] [--live]
//!                     [--fd-memory] [--no-pool] [--caps-change-at K] [--seek-at K]
//!                     [--sink shmzero|shm] [--fps F]
//! shmzero-probe baseline --frames N [--width W --height H] [--pattern P] [--live]
//! (every mode: [--warmup K] counts CPU from frame K+1, [--limit-ms T] bounds the run)
//! ```

use std::collections::HashMap;
use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;
use gst_allocators::prelude::*;

struct Args(HashMap<String, String>);

impl Args {
    fn parse(list: &[String]) -> Args {
        let mut map = HashMap::new();
        let mut it = list.iter().peekable();
        while let Some(arg) = it.next() {
            let Some(key) = arg.strip_prefix("--") else {
                continue;
            };
            let value = match it.peek() {
                Some(v) if !v.starts_with("--") => it.next().cloned().unwrap_or_default(),
                _ => "true".to_owned(),
            };
            map.insert(key.to_owned(), value);
        }
        Args(map)
    }
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
    fn num(&self, key: &str, default: u64) -> u64 {
        self.get(key)
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    }
    fn flag(&self, key: &str) -> bool {
        self.get(key).is_some()
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// CPU time (user + system, all threads) and peak RSS of this process.
fn rusage() -> (Duration, u64) {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct we pass; RUSAGE_SELF is always valid.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    (
        tv(usage.ru_utime) + tv(usage.ru_stime),
        usage.ru_maxrss as u64,
    )
}

/// Read-only shared memfd and DMABuf mappings of this process, from `/proc/self/maps`.
fn shared_mappings() -> Vec<(usize, usize)> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    maps.lines()
        .filter(|line| line.contains("/memfd:") || line.contains("/dmabuf:"))
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let range = fields.next()?;
            let perms = fields.next()?;
            // "r--s": readable, not writable, shared.
            if !(perms.starts_with('r')
                && perms.as_bytes().get(1) == Some(&b'-')
                && perms.ends_with('s'))
            {
                return None;
            }
            let (start, end) = range.split_once('-')?;
            Some((
                usize::from_str_radix(start, 16).ok()?,
                usize::from_str_radix(end, 16).ok()?,
            ))
        })
        .collect()
}

/// Whether `buffer`'s bytes lie inside a read-only shared memfd or DMABuf mapping of this
/// process.
fn in_shared_mapping(buffer: &gst::BufferRef, cache: &mut Vec<(usize, usize)>) -> bool {
    if buffer.n_memory() != 1 {
        return false;
    }
    let Ok(map) = buffer.peek_memory(0).map_readable() else {
        return false;
    };
    let (start, end) = (map.as_ptr() as usize, map.as_ptr() as usize + map.len());
    let inside = |maps: &[(usize, usize)]| maps.iter().any(|&(s, e)| start >= s && end <= e);
    if inside(cache) {
        return true;
    }
    *cache = shared_mappings();
    inside(cache)
}

/// FNV-1a over every byte of the buffer.
fn checksum(buffer: &gst::BufferRef) -> u64 {
    let Ok(map) = buffer.map_readable() else {
        return 0;
    };
    map.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn run_pipeline(pipeline: &gst::Pipeline, limit: Duration) -> Result<(), String> {
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| format!("cannot start: {e}"))?;
    let bus = pipeline.bus().expect("pipeline has a bus");
    let deadline = Instant::now() + limit;
    let result = loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            break Err(format!("no EOS within {limit:?}"));
        }
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(remaining.as_millis() as u64))
        else {
            continue;
        };
        match msg.view() {
            gst::MessageView::Eos(_) => break Ok(()),
            gst::MessageView::Error(err) => {
                break Err(format!(
                    "{} ({})",
                    err.error(),
                    err.debug().map(|d| d.to_string()).unwrap_or_default()
                ));
            }
            gst::MessageView::Element(element) => {
                if let Some(s) = element.structure() {
                    say(&format!("message {s}"));
                }
            }
            gst::MessageView::Application(app)
                if app.structure().is_some_and(|s| s.name() == "probe-done") =>
            {
                break Ok(());
            }
            _ => {}
        }
    };
    let _ = pipeline.set_state(gst::State::Null);
    result
}

fn read(args: &Args) -> ExitCode {
    let frames_wanted = args.num("frames", 0);
    // CPU and wall time are counted from frame `warmup + 1`: steady state, without start-up
    // and first-touch page faults.
    let warmup = args.num("warmup", 0);
    let branches = args.num("branches", 1).max(1);
    let quiet = args.flag("quiet");
    let src = args.get("src").unwrap_or("shmzero");
    let mut description = String::new();
    for branch in 0..branches {
        let socket = if branches == 1 {
            args.get("socket")
                .unwrap_or("/tmp/shmzero-probe.sock")
                .to_owned()
        } else {
            format!(
                "{}{branch}",
                args.get("socket-prefix").unwrap_or("/tmp/shmzero-probe-")
            )
        };
        let source = match src {
            "shm" => format!(
                "shmsrc socket-path={socket} is-live={} ! {} ",
                args.flag("live"),
                args.get("caps").unwrap_or("video/x-raw")
            ),
            _ => format!(
                "shmzerosrc name=src{branch} socket-path={socket} reconnect={} timeout={} is-live={} ",
                args.flag("reconnect"),
                args.num("timeout-ms", 10_000),
                !args.flag("not-live")
            ),
        };
        description.push_str(&format!(
            "{source} ! fakesink name=sink{branch} sync=false async=false  "
        ));
    }
    let pipeline = match gst::parse::launch(&description) {
        Ok(p) => p.downcast::<gst::Pipeline>().expect("a pipeline"),
        Err(err) => {
            say(&format!("error {err}"));
            return ExitCode::from(2);
        }
    };
    let frames = Arc::new(AtomicU64::new(0));
    let zero_copy = Arc::new(AtomicU64::new(0));
    let first_frame: Arc<Mutex<Option<(Instant, Duration)>>> = Arc::default();
    // --keep-first: hold the first buffer to the end and check its bytes did not change, even
    // after the writer is gone (its mapping must outlive the connection).
    let keep_first = args.flag("keep-first");
    let with_checksums = args.flag("checksums");
    let kept: Arc<Mutex<Option<(gst::Buffer, u64)>>> = Arc::default();
    for branch in 0..branches {
        let sink = pipeline.by_name(&format!("sink{branch}")).expect("sink");
        let pad = sink.static_pad("sink").expect("sink pad");
        let frames = frames.clone();
        let zero_copy = zero_copy.clone();
        let first_frame = first_frame.clone();
        let pipeline_weak = pipeline.downgrade();
        let maps = Mutex::new(Vec::new());
        let kept = kept.clone();
        pad.add_probe(
            gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM | gst::PadProbeType::EVENT_FLUSH,
            move |_, info| {
                match &info.data {
                    Some(gst::PadProbeData::Buffer(buffer)) => {
                        let n = frames.fetch_add(1, Ordering::SeqCst) + 1;
                        if n == warmup + 1 {
                            *first_frame.lock().unwrap() = Some((Instant::now(), rusage().0));
                        }
                        if keep_first && n == 1 {
                            let sum = checksum(buffer);
                            *kept.lock().unwrap() = Some((buffer.clone(), sum));
                        }
                        let zc = in_shared_mapping(buffer, &mut maps.lock().unwrap());
                        if zc {
                            zero_copy.fetch_add(1, Ordering::SeqCst);
                        }
                        if !quiet {
                            let sum = if with_checksums {
                                format!(" sum={:016x}", checksum(buffer))
                            } else {
                                String::new()
                            };
                            let meta = buffer
                                .meta::<gst_video::VideoMeta>()
                                .map(|m| format!("{}x{}", m.width(), m.height()))
                                .unwrap_or_default();
                            say(&format!(
                                "frame {n} zero-copy={} size={} pts={} video={meta} branch={branch}{sum}",
                                u8::from(zc),
                                buffer.size(),
                                buffer.pts().map(|t| t.nseconds()).unwrap_or(u64::MAX),
                            ));
                        }
                        if frames_wanted > 0 && n == frames_wanted
                            && let Some(p) = pipeline_weak.upgrade()
                        {
                            let _ = p.post_message(
                                gst::message::Application::new(gst::Structure::new_empty("probe-done")),
                            );
                        }
                    }
                    Some(gst::PadProbeData::Event(event)) => {
                        let detail = match event.view() {
                            gst::EventView::Caps(c) => c.caps().to_string(),
                            gst::EventView::Segment(s) => format!("{:?}", s.segment()),
                            _ => String::new(),
                        };
                        if !quiet || event.type_() == gst::EventType::Caps {
                            say(&format!("event {} {detail}", event.type_().name()));
                        }
                    }
                    _ => {}
                }
                gst::PadProbeReturn::Ok
            },
        );
    }
    let limit = Duration::from_millis(args.num("limit-ms", 60_000));
    let started = Instant::now();
    let result = run_pipeline(&pipeline, limit);
    if let Some((buffer, sum)) = kept.lock().unwrap().take() {
        say(&format!(
            "kept-buffer unchanged={} size={}",
            u8::from(checksum(&buffer) == sum),
            buffer.size()
        ));
    }
    let (cpu, maxrss) = rusage();
    let n = frames.load(Ordering::SeqCst);
    let (first_at, cpu_at_first) = first_frame.lock().unwrap().unwrap_or((started, cpu));
    let stats = pipeline
        .by_name("src0")
        .map(|src| src.property::<gst::Structure>("stats").to_string())
        .unwrap_or_default();
    say(&format!("stats {stats}"));
    say(&format!(
        "summary frames={n} measured={} zero_copy={} cpu_ms={:.3} wall_ms={:.1} maxrss_kb={maxrss}",
        n.saturating_sub(warmup),
        zero_copy.load(Ordering::SeqCst),
        (cpu - cpu_at_first).as_secs_f64() * 1e3,
        first_at.elapsed().as_secs_f64() * 1e3,
    ));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            say(&format!("error {err}"));
            ExitCode::from(2)
        }
    }
}

/// Replaces each buffer by a copy in a sealed memfd wrapped as `GstFdMemory`: an upstream
/// that brings its own fd memory.
fn to_fd_memory(
    buffer: &gst::BufferRef,
    allocator: &gst_allocators::FdAllocator,
) -> Option<gst::Buffer> {
    use rustix::fs::{MemfdFlags, SealFlags};
    let size = buffer.size();
    let memfd = rustix::fs::memfd_create(
        "probe-upstream",
        MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
    )
    .ok()?;
    rustix::fs::ftruncate(&memfd, size as u64).ok()?;
    let map = buffer.map_readable().ok()?;
    rustix::io::pwrite(&memfd, map.as_slice(), 0).ok()?;
    rustix::fs::fcntl_add_seals(&memfd, SealFlags::SHRINK | SealFlags::GROW).ok()?;
    let raw = std::os::fd::IntoRawFd::into_raw_fd(memfd);
    // SAFETY: `raw` is a valid fd we own; with DONT_CLOSE unset the memory takes ownership
    // and closes it when freed.
    let memory =
        unsafe { allocator.alloc_fd(raw, size, gst_allocators::FdMemoryFlags::NONE) }.ok()?;
    let mut out = gst::Buffer::new();
    {
        let out = out.get_mut()?;
        out.append_memory(memory);
        let _ = buffer.copy_into(
            out,
            gst::BufferCopyFlags::FLAGS
                | gst::BufferCopyFlags::TIMESTAMPS
                | gst::BufferCopyFlags::META,
            ..,
        );
    }
    Some(out)
}

fn write(args: &Args) -> ExitCode {
    let width = args.num("width", 320);
    let height = args.num("height", 240);
    let fps = args.num("fps", 30);
    let pattern = args.get("pattern").unwrap_or("smpte");
    let socket = args.get("socket").unwrap_or("/tmp/shmzero-probe.sock");
    let frames_wanted = args.num("frames", 100);
    let sink = match args.get("sink").unwrap_or("shmzero") {
        "shm" => format!(
            "shmsink name=sink socket-path={socket} shm-size={} wait-for-connection=true sync=false",
            width * height * 4 * 10
        ),
        _ => format!(
            "shmzerosink name=sink socket-path={socket} wait-for-connection={} sync={} {}",
            !args.flag("no-wait"),
            args.flag("live"),
            args.get("sink-props").unwrap_or("")
        ),
    };
    let description = format!(
        "videotestsrc name=src num-buffers={frames_wanted} is-live={} pattern={pattern} \
         ! capsfilter name=cf caps=video/x-raw,format=RGBA,width={width},height={height},framerate={fps}/1 \
         {} ! {sink}",
        args.flag("live"),
        if args.flag("no-pool") {
            "! identity drop-allocation=true"
        } else {
            ""
        },
    );
    let pipeline = match gst::parse::launch(&description) {
        Ok(p) => p.downcast::<gst::Pipeline>().expect("a pipeline"),
        Err(err) => {
            say(&format!("error {err}"));
            return ExitCode::from(2);
        }
    };
    let capsfilter = pipeline.by_name("cf").expect("capsfilter");
    let counted = Arc::new(AtomicU64::new(0));
    let first_frame: Arc<Mutex<Option<Duration>>> = Arc::default();
    let caps_change_at = args.num("caps-change-at", 0);
    let warmup = args.num("warmup", 0);
    let seek_at = args.num("seek-at", 0);
    let fd_memory = args.flag("fd-memory");
    let allocator = gst_allocators::FdAllocator::new();
    {
        let counted = counted.clone();
        let first_frame = first_frame.clone();
        let pipeline_weak = pipeline.downgrade();
        let capsfilter = capsfilter.clone();
        let pad = capsfilter.static_pad("src").expect("src pad");
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            let n = counted.fetch_add(1, Ordering::SeqCst) + 1;
            if n == warmup + 1 {
                *first_frame.lock().unwrap() = Some(rusage().0);
            }
            if caps_change_at > 0 && n == caps_change_at {
                let caps = gst::Caps::builder("video/x-raw")
                    .field("format", "RGBA")
                    .field("width", (width * 2) as i32)
                    .field("height", (height * 2) as i32)
                    .field("framerate", gst::Fraction::new(fps as i32, 1))
                    .build();
                capsfilter.set_property("caps", &caps);
            }
            if seek_at > 0
                && n == seek_at
                && let Some(pipeline) = pipeline_weak.upgrade()
            {
                std::thread::spawn(move || {
                    let ok = pipeline
                        .seek_simple(gst::SeekFlags::FLUSH, gst::ClockTime::ZERO)
                        .is_ok();
                    say(&format!("seek done ok={ok}"));
                });
            }
            if fd_memory
                && let Some(gst::PadProbeData::Buffer(buffer)) = &info.data
                && let Some(replacement) = to_fd_memory(buffer, &allocator)
            {
                info.data = Some(gst::PadProbeData::Buffer(replacement));
            }
            gst::PadProbeReturn::Ok
        });
    }
    let limit = Duration::from_millis(args.num("limit-ms", 60_000));
    let sink = pipeline.by_name("sink").expect("sink");
    let result = run_pipeline(&pipeline, limit);
    let (cpu, maxrss) = rusage();
    if sink.find_property("stats").is_some() {
        say(&format!(
            "stats {}",
            sink.property::<gst::Structure>("stats")
        ));
    }
    let cpu_at_first = first_frame.lock().unwrap().unwrap_or(cpu);
    let n = counted.load(Ordering::SeqCst);
    say(&format!(
        "summary frames={n} measured={} cpu_ms={:.3} maxrss_kb={maxrss}",
        n.saturating_sub(warmup),
        (cpu - cpu_at_first).as_secs_f64() * 1e3
    ));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            say(&format!("error {err}"));
            ExitCode::from(2)
        }
    }
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some(mode) = argv.first().cloned() else {
        eprintln!("usage: shmzero-probe read|write|baseline --socket PATH ...");
        return ExitCode::from(2);
    };
    let args = Args::parse(&argv[1..]);
    if let Err(err) = gst::init() {
        eprintln!("gst::init: {err}");
        return ExitCode::from(2);
    }
    if let Err(err) = gstshmzero::plugin_register_static() {
        eprintln!("registering shmzero: {err}");
        return ExitCode::from(2);
    }
    match mode.as_str() {
        "read" => read(&args),
        "write" => write(&args),
        "baseline" => {
            let mut a = args.0.clone();
            a.insert("sink".into(), "fake".into());
            baseline(&Args(a))
        }
        other => {
            eprintln!("unknown mode {other}");
            ExitCode::from(2)
        }
    }
}

/// The same source into a fakesink in one process: what the writer would cost without any
/// transport, subtracted from writer figures in the benchmark.
fn baseline(args: &Args) -> ExitCode {
    let live = args.flag("live");
    let description = format!(
        "videotestsrc num-buffers={} is-live={live} pattern={} ! video/x-raw,format=RGBA,width={},height={},framerate=30/1 ! fakesink name=sink sync={live}",
        args.num("frames", 100),
        args.get("pattern").unwrap_or("smpte"),
        args.num("width", 320),
        args.num("height", 240)
    );
    let pipeline = gst::parse::launch(&description)
        .expect("baseline pipeline")
        .downcast::<gst::Pipeline>()
        .expect("a pipeline");
    let first: Arc<Mutex<Option<Duration>>> = Arc::default();
    let count = Arc::new(AtomicU64::new(0));
    let warmup = args.num("warmup", 0);
    {
        let first = first.clone();
        let count = count.clone();
        let pad = pipeline
            .by_name("sink")
            .unwrap()
            .static_pad("sink")
            .unwrap();
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            if count.fetch_add(1, Ordering::SeqCst) == warmup {
                *first.lock().unwrap() = Some(rusage().0);
            }
            gst::PadProbeReturn::Ok
        });
    }
    let result = run_pipeline(&pipeline, Duration::from_secs(120));
    let (cpu, maxrss) = rusage();
    let at_first = first.lock().unwrap().unwrap_or(cpu);
    let n = count.load(Ordering::SeqCst);
    say(&format!(
        "summary frames={n} measured={} cpu_ms={:.3} maxrss_kb={maxrss}",
        n.saturating_sub(warmup),
        (cpu - at_first).as_secs_f64() * 1e3
    ));
    if result.is_err() {
        return ExitCode::from(2);
    }
    ExitCode::SUCCESS
}
