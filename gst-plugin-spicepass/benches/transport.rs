// SPDX-License-Identifier: MPL-2.0
//! Two-process transport benchmark, side by side in one run:
//! spicepass (unix socket) vs `gdppay ! tcpserversink` → `tcpclientsrc ! gdpdepay` vs
//! `ipcpipelinesink` → `ipcslavepipeline[ipcpipelinesrc]` (socketpair).
//!
//! Cases: (a) raw 1920×1080 RGBA frames, (b) 20 000 buffers of 1–50 KB (encoded-like).
//! The source pushes the same memory again and again (like `imagefreeze`), so the writer
//! figure is transport cost. For (a) spicepass runs three ways (see [`transports`]): from
//! the sink's proposed memfd pool (no copy), from heap memory (one copy into a memfd
//! segment), and through the socket (`memfd-threshold=0`). Each process samples `getrusage(RUSAGE_SELF)` (all threads) at
//! its first buffer and at the end, and reports its peak RSS.
//!
//! ```text
//! cargo bench -p gst-plugin-spicepass --bench transport            # both cases
//! cargo bench -p gst-plugin-spicepass --bench transport -- raw 300  # one case, N buffers
//! ```

use std::io::{BufRead, BufReader};
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Case {
    Raw,
    Small,
}

impl Case {
    fn name(self) -> &'static str {
        match self {
            Case::Raw => "raw",
            Case::Small => "small",
        }
    }
    fn parse(s: &str) -> Case {
        if s == "raw" { Case::Raw } else { Case::Small }
    }
}

/// Transports per case. For raw frames spicepass runs three ways: `spicepass-pool` (the
/// writer fills buffers from the memfd pool the sink proposes: sent by reference, no copy),
/// `spicepass` (the writer's own heap memory: copied once into a memfd segment, sent by
/// reference) and `spicepass-inline` (`memfd-threshold=0`: through the socket).
fn transports(case: Case) -> &'static [&'static str] {
    match case {
        Case::Raw => &[
            "spicepass-pool",
            "spicepass",
            "spicepass-inline",
            "gdp-tcp",
            "ipcpipeline",
        ],
        Case::Small => &["spicepass", "gdp-tcp", "ipcpipeline"],
    }
}

fn rusage() -> libc::rusage {
    // SAFETY: all-zero is a valid rusage; getrusage only writes into the struct we pass.
    unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    }
}

/// CPU time of the whole process (all threads), user + system.
fn cpu_ns() -> u64 {
    let usage = rusage();
    let tv = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1000;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn max_rss_kib() -> u64 {
    rusage().ru_maxrss as u64
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    gst::init().expect("gst init");
    gstspicepass::plugin_register_static().expect("register spicepass");
    match args.first().map(String::as_str) {
        Some("writer") => role(true, &args[1..]),
        Some("reader") => role(false, &args[1..]),
        Some("rtt-guest") => rtt_guest(&args[1]),
        Some("rtt-client") => rtt_client(&args[1]),
        Some("rtt") => rtt(),
        Some(case) => orchestrate(
            &[Case::parse(case)],
            args.get(1).and_then(|n| n.parse().ok()),
        ),
        None => {
            orchestrate(&[Case::Raw, Case::Small], None);
            rtt();
        }
    }
}

/// Upstream event round trip: the client pushes a custom upstream event, the guest answers
/// with a custom downstream event through the stream; timed on the client.
fn rtt() {
    let dir = std::env::temp_dir().join(format!("spicepass-rtt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let uri = format!("spicepass+unix://{}/rtt.sock", dir.display());
    let me = std::env::current_exe().unwrap();
    let mut guest = Command::new(&me).args(["rtt-guest", &uri]).spawn().unwrap();
    let out = Command::new(&me)
        .args(["rtt-client", &uri])
        .output()
        .unwrap();
    let _ = guest.wait();
    let _ = std::fs::remove_dir_all(&dir);
    println!();
    print!("{}", String::from_utf8_lossy(&out.stdout));
}

const PINGS: u32 = 200;

fn rtt_guest(uri: &str) {
    let pipeline: gst::Pipeline = gst::parse::launch(&format!(
        "appsrc name=src format=time ! spicepasssink name=end uri={uri} drop-policy=block"
    ))
    .unwrap()
    .downcast()
    .unwrap();
    let appsrc = pipeline.by_name("src").unwrap();
    appsrc.set_property("caps", gst::Caps::new_empty_simple("application/x-ping"));
    let pad = pipeline.by_name("end").unwrap().static_pad("sink").unwrap();
    let weak_src = appsrc.downgrade();
    let reply_pad = pad.clone();
    pad.add_probe(gst::PadProbeType::EVENT_UPSTREAM, move |_, info| {
        if let Some(gst::PadProbeData::Event(e)) = &info.data
            && let Some(s) = e.structure()
            && s.name() == "ping"
        {
            let n = s.get::<u32>("n").unwrap_or(0);
            let pong = gst::event::CustomDownstream::new(
                gst::Structure::builder("pong").field("n", n).build(),
            );
            // The reply enters the sink like any serialized event from upstream.
            let _ = reply_pad.send_event(pong);
            if n + 1 == PINGS
                && let Some(src) = weak_src.upgrade()
            {
                let _ = src.emit_by_name::<gst::FlowReturn>("end-of-stream", &[]);
            }
        }
        gst::PadProbeReturn::Ok
    });
    pipeline.set_state(gst::State::Playing).unwrap();
    let _ = appsrc
        .emit_by_name::<gst::FlowReturn>("push-buffer", &[&gst::Buffer::with_size(16).unwrap()]);
    let bus = pipeline.bus().unwrap();
    let _ = bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(120),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    let _ = pipeline.set_state(gst::State::Null);
}

fn rtt_client(uri: &str) {
    let pipeline: gst::Pipeline = gst::parse::launch(&format!(
        "spicepasssrc uri={uri} ! fakesink name=sink sync=false"
    ))
    .unwrap()
    .downcast()
    .unwrap();
    let pad = pipeline
        .by_name("sink")
        .unwrap()
        .static_pad("sink")
        .unwrap();
    let (pong_tx, pong_rx) = std::sync::mpsc::channel::<u32>();
    let (first_tx, first_rx) = std::sync::mpsc::channel::<()>();
    let first_tx = Mutex::new(Some(first_tx));
    pad.add_probe(
        gst::PadProbeType::EVENT_DOWNSTREAM | gst::PadProbeType::BUFFER,
        move |_, info| {
            match &info.data {
                Some(gst::PadProbeData::Buffer(_)) => {
                    if let Some(tx) = first_tx.lock().unwrap().take() {
                        let _ = tx.send(());
                    }
                }
                Some(gst::PadProbeData::Event(e)) => {
                    if let Some(s) = e.structure()
                        && s.name() == "pong"
                    {
                        let _ = pong_tx.send(s.get::<u32>("n").unwrap_or(0));
                    }
                }
                _ => {}
            }
            gst::PadProbeReturn::Ok
        },
    );
    pipeline.set_state(gst::State::Playing).unwrap();
    first_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("first buffer");
    let mut rtts = Vec::new();
    for n in 0..PINGS {
        let ping =
            gst::event::CustomUpstream::new(gst::Structure::builder("ping").field("n", n).build());
        let t0 = Instant::now();
        pad.push_event(ping);
        match pong_rx.recv_timeout(Duration::from_secs(5)) {
            Ok(m) if m == n => rtts.push(t0.elapsed()),
            _ => break,
        }
    }
    let bus = pipeline.bus().unwrap();
    let _ = bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(30),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    let _ = pipeline.set_state(gst::State::Null);
    rtts.sort();
    if rtts.is_empty() {
        println!("upstream event round trip: no pong received");
        return;
    }
    let pct = |p: usize| rtts[(rtts.len() * p / 100).min(rtts.len() - 1)].as_secs_f64() * 1e6;
    println!(
        "upstream event round trip (client custom-upstream → guest pipeline → custom-downstream back), {} pings: median {:.0} µs, p90 {:.0} µs, max {:.0} µs",
        rtts.len(),
        pct(50),
        pct(90),
        pct(100)
    );
}

#[derive(Default, Debug, Clone)]
struct Sample {
    buffers: u64,
    cpu_ms: f64,
    wall_s: f64,
    rss_mib: f64,
    extra: String,
}

fn parse_result(line: &str) -> Option<Sample> {
    let rest = line.strip_prefix("RESULT ")?;
    let mut s = Sample::default();
    for kv in rest.split_whitespace() {
        let (k, v) = kv.split_once('=')?;
        match k {
            "buffers" => s.buffers = v.parse().ok()?,
            "cpu_ms" => s.cpu_ms = v.parse().ok()?,
            "wall_s" => s.wall_s = v.parse().ok()?,
            "rss_mib" => s.rss_mib = v.parse().ok()?,
            "rtt_us" => s.extra.push_str(&format!("heartbeat RTT {v} µs; ")),
            "framing_b" => s.extra.push_str(&format!("{v} B framing/buffer; ")),
            _ => {}
        }
    }
    Some(s)
}

fn orchestrate(cases: &[Case], count: Option<u64>) {
    let dir = std::env::temp_dir().join(format!("spicepass-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    println!(
        "| case | transport | buffers/s | writer CPU µs/buf | reader CPU µs/buf | writer peak RSS MiB | reader peak RSS MiB | notes |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for &case in cases {
        let n = count.unwrap_or(match case {
            Case::Raw => 300,
            Case::Small => 20_000,
        });
        for (i, transport) in transports(case).iter().enumerate() {
            let addr = match *transport {
                t if t.starts_with("spicepass") => {
                    format!(
                        "spicepass+unix://{}/{}-s{i}.sock",
                        dir.display(),
                        case.name()
                    )
                }
                "gdp-tcp" => free_port().to_string(),
                _ => "3".into(),
            };
            match run_pair(transport, case, n, &addr) {
                Ok((w, r)) => {
                    let rate = r.buffers as f64 / r.wall_s.max(1e-9);
                    println!(
                        "| {} | {} | {:.0} | {:.1} | {:.1} | {:.0} | {:.0} | {} |",
                        case.name(),
                        transport,
                        rate,
                        w.cpu_ms * 1000.0 / w.buffers.max(1) as f64,
                        r.cpu_ms * 1000.0 / r.buffers.max(1) as f64,
                        w.rss_mib,
                        r.rss_mib,
                        [w.extra, r.extra].join(" ").trim()
                    );
                }
                Err(e) => println!(
                    "| {} | {} | failed: {e} | | | | | |",
                    case.name(),
                    transport
                ),
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn spawn_role(
    role: &str,
    transport: &str,
    case: Case,
    n: u64,
    addr: &str,
    fd: Option<OwnedFd>,
) -> (std::process::Child, Arc<Mutex<Option<Sample>>>) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([role, transport, case.name(), &n.to_string(), addr])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(fd) = fd {
        use std::os::unix::process::CommandExt;
        let raw = fd.as_raw_fd();
        // SAFETY: only async-signal-safe fcntl/dup2 on an fd we own, between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let _keep = &fd;
                let rc = if raw == 3 {
                    libc::fcntl(3, libc::F_SETFD, 0)
                } else {
                    libc::dup2(raw, 3)
                };
                if rc < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let mut child = cmd.spawn().expect("spawn bench role");
    let out = child.stdout.take().unwrap();
    let result = Arc::new(Mutex::new(None));
    let r = result.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Some(s) = parse_result(&line) {
                *r.lock().unwrap() = Some(s);
            } else if !line.is_empty() {
                eprintln!("  {line}");
            }
        }
    });
    (child, result)
}

fn run_pair(transport: &str, case: Case, n: u64, addr: &str) -> Result<(Sample, Sample), String> {
    let (wfd, rfd) = if transport == "ipcpipeline" {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        (Some(OwnedFd::from(a)), Some(OwnedFd::from(b)))
    } else {
        (None, None)
    };
    let (mut writer, wres) = spawn_role("writer", transport, case, n, addr, wfd);
    if transport == "gdp-tcp" {
        std::thread::sleep(Duration::from_millis(500));
    }
    let (mut reader, rres) = spawn_role("reader", transport, case, n, addr, rfd);
    let deadline = Instant::now() + Duration::from_secs(300);
    for which in 0..2 {
        loop {
            let child = if which == 0 { &mut reader } else { &mut writer };
            if child.try_wait().unwrap().is_some() {
                break;
            }
            if Instant::now() > deadline {
                let _ = writer.kill();
                let _ = reader.kill();
                return Err("timeout".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    std::thread::sleep(Duration::from_millis(100));
    let w = wres
        .lock()
        .unwrap()
        .clone()
        .ok_or("writer reported nothing")?;
    let r = rres
        .lock()
        .unwrap()
        .clone()
        .ok_or("reader reported nothing")?;
    Ok((w, r))
}

/// The pool `spicepasssink` proposes for `caps` (asked the way a producer's
/// decide_allocation does), activated. Retried until the pipeline's pads are active.
fn sink_pool(appsrc: &gst::Element, caps: &gst::Caps) -> gst::BufferPool {
    let pad = appsrc.static_pad("src").expect("appsrc has a src pad");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut query = gst::query::Allocation::new(Some(caps), true);
        if pad.peer_query(&mut query)
            && let Some((Some(pool), size, min, max)) = query.allocation_pools().next()
        {
            let mut config = pool.config();
            config.set_params(Some(caps), size, min, max);
            pool.set_config(config).expect("pool config");
            pool.set_active(true).expect("pool active");
            return pool;
        }
        assert!(Instant::now() < deadline, "spicepasssink proposed no pool");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Buffers the writer pushes: one frame again and again, or 1–50 KB slices of one block.
fn make_buffers(case: Case, n: u64) -> (gst::Caps, Vec<gst::Buffer>) {
    match case {
        Case::Raw => {
            let caps = gst::Caps::builder("video/x-raw")
                .field("format", "RGBA")
                .field("width", 1920i32)
                .field("height", 1080i32)
                .field("framerate", gst::Fraction::new(30, 1))
                .build();
            let frame = gst::Buffer::from_mut_slice(vec![0x40u8; 1920 * 1080 * 4]);
            (caps, (0..n.min(1)).map(|_| frame.clone()).collect())
        }
        Case::Small => {
            let caps = gst::Caps::builder("video/x-h264")
                .field("stream-format", "byte-stream")
                .field("alignment", "au")
                .build();
            let block =
                gst::Buffer::from_mut_slice((0..50_000u32).map(|i| i as u8).collect::<Vec<u8>>());
            let mut seed = 0x1234_5678u32;
            let sizes = (0..64).map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                1000 + (seed % 49_000) as usize
            });
            let buffers = sizes
                .map(|len| {
                    block
                        .copy_region(gst::BufferCopyFlags::MEMORY, 0..len)
                        .unwrap()
                })
                .collect();
            (caps, buffers)
        }
    }
}

fn role(writer: bool, args: &[String]) {
    let transport = args[0].as_str();
    let case = Case::parse(&args[1]);
    let n: u64 = args[2].parse().unwrap();
    let addr = args[3].as_str();
    let (caps, templates) = make_buffers(case, n);
    let desc = match (writer, transport) {
        (true, "spicepass-inline") => format!(
            "appsrc name=src ! spicepasssink name=end uri={addr} drop-policy=block memfd-threshold=0"
        ),
        (true, t) if t.starts_with("spicepass") => {
            format!("appsrc name=src ! spicepasssink name=end uri={addr} drop-policy=block")
        }
        (false, t) if t.starts_with("spicepass") => {
            format!("spicepasssrc name=end uri={addr} ! fakesink name=sink sync=false")
        }
        (true, "gdp-tcp") => format!(
            "appsrc name=src ! gdppay ! tcpserversink name=end host=127.0.0.1 port={addr} sync=false"
        ),
        (false, "gdp-tcp") => format!(
            "tcpclientsrc host=127.0.0.1 port={addr} ! gdpdepay ! fakesink name=sink sync=false"
        ),
        (true, _) => "appsrc name=src ! ipcpipelinesink name=end fdin=3 fdout=3".to_owned(),
        (false, _) => "ipcpipelinesrc fdin=3 fdout=3 ! fakesink name=sink sync=false".to_owned(),
    };
    let pipeline: gst::Pipeline = if !writer && transport == "ipcpipeline" {
        // The ipcpipelinesrc must be a direct child of the slave pipeline it controls.
        let slave = gst::ElementFactory::make("ipcslavepipeline")
            .build()
            .expect("ipcslavepipeline");
        let src = gst::ElementFactory::make("ipcpipelinesrc")
            .property("fdin", 3i32)
            .property("fdout", 3i32)
            .build()
            .expect("ipcpipelinesrc");
        let sink = gst::ElementFactory::make("fakesink")
            .name("sink")
            .property("sync", false)
            .build()
            .expect("fakesink");
        let bin = slave.downcast_ref::<gst::Bin>().unwrap();
        bin.add_many([&src, &sink]).unwrap();
        src.link(&sink).unwrap();
        slave.downcast().expect("ipcslavepipeline is a pipeline")
    } else {
        gst::parse::launch(&desc)
            .expect("pipeline")
            .downcast()
            .unwrap()
    };
    let first_cpu = Arc::new(Mutex::new(None::<(u64, Instant)>));
    let last = Arc::new(Mutex::new(Instant::now()));
    let count = Arc::new(AtomicU64::new(0));
    let payload_total = Arc::new(AtomicU64::new(0));
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let probe_pad = if writer {
        pipeline.by_name("end").unwrap().static_pad("sink").unwrap()
    } else {
        pipeline
            .by_name("sink")
            .unwrap()
            .static_pad("sink")
            .unwrap()
    };
    {
        let first_cpu = first_cpu.clone();
        let last = last.clone();
        let count = count.clone();
        let payload_total = payload_total.clone();
        let done = Mutex::new(Some(done_tx));
        probe_pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(gst::PadProbeData::Buffer(b)) = &info.data {
                payload_total.fetch_add(b.size() as u64, Ordering::Relaxed);
            }
            let c = count.fetch_add(1, Ordering::Relaxed) + 1;
            let mut f = first_cpu.lock().unwrap();
            if f.is_none() {
                *f = Some((cpu_ns(), Instant::now()));
            }
            *last.lock().unwrap() = Instant::now();
            // gdpdepay never gets EOS (gdppay does not serialize it): stop after N.
            if c == n
                && let Some(tx) = done.lock().unwrap().take()
            {
                let _ = tx.send(());
            }
            gst::PadProbeReturn::Ok
        });
    }
    if writer {
        let appsrc = pipeline.by_name("src").unwrap();
        appsrc.set_property("caps", &caps);
        appsrc.set_property("format", gst::Format::Time);
        appsrc.set_property("max-bytes", 64u64 * 1024 * 1024);
        appsrc.set_property("block", true);
        let client_ready = Arc::new((
            Mutex::new(transport != "gdp-tcp"),
            std::sync::Condvar::new(),
        ));
        if transport == "gdp-tcp" {
            let cr = client_ready.clone();
            pipeline
                .by_name("end")
                .unwrap()
                .connect("client-added", false, move |_| {
                    *cr.0.lock().unwrap() = true;
                    cr.1.notify_all();
                    None
                });
        }
        let p = pipeline.clone();
        let from_pool = transport == "spicepass-pool";
        std::thread::spawn(move || {
            let (lock, cond) = &*client_ready;
            let mut ready = lock.lock().unwrap();
            while !*ready {
                ready = cond.wait(ready).unwrap();
            }
            drop(ready);
            let pool = from_pool.then(|| sink_pool(&appsrc, &caps));
            for i in 0..n {
                let mut b = match &pool {
                    // Like a producer that writes into the sink's pool; its content stays
                    // whatever it was, as the other writers push the same memory again.
                    Some(pool) => pool.acquire_buffer(None).expect("pool buffer"),
                    None => templates[(i as usize) % templates.len()].clone(),
                };
                {
                    let b = b.make_mut();
                    b.set_pts(gst::ClockTime::from_nseconds(i * 33_333_333));
                    b.set_duration(gst::ClockTime::from_nseconds(33_333_333));
                    if i % 30 != 0 {
                        b.set_flags(gst::BufferFlags::DELTA_UNIT);
                    }
                }
                if appsrc.emit_by_name::<gst::FlowReturn>("push-buffer", &[&b])
                    != gst::FlowReturn::Ok
                {
                    break;
                }
            }
            let _ = appsrc.emit_by_name::<gst::FlowReturn>("end-of-stream", &[]);
            drop(pool);
            drop(p);
        });
    }
    // An ipcslavepipeline follows the master's state changes.
    if transport != "ipcpipeline" || writer {
        pipeline.set_state(gst::State::Playing).expect("playing");
    }
    let bus = pipeline.bus().unwrap();
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        if done_rx.try_recv().is_ok() && !writer {
            break;
        }
        if Instant::now() > deadline {
            eprintln!(
                "{transport} {} timed out",
                if writer { "writer" } else { "reader" }
            );
            break;
        }
        if let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(20)) {
            match msg.view() {
                gst::MessageView::Eos(_) => break,
                gst::MessageView::Error(e) => {
                    eprintln!("{transport}: {} ({:?})", e.error(), e.debug());
                    break;
                }
                _ => {}
            }
        }
    }
    if writer && transport == "gdp-tcp" {
        // tcpserversink queues unsent data in user space: wait until the reader has it all.
        let end = pipeline.by_name("end").unwrap();
        let deadline = Instant::now() + Duration::from_secs(240);
        while end.property::<u32>("num-handles") > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let end_cpu = cpu_ns();
    let end_time = *last.lock().unwrap();
    let stats = pipeline
        .by_name("end")
        .filter(|e| e.has_property("stats"))
        .map(|e| e.property::<gst::Structure>("stats"));
    let rtt = stats
        .as_ref()
        .and_then(|s| s.get::<Option<gst::ClockTime>>("rtt").ok().flatten());
    // Bytes on the wire beyond the payloads, per buffer (events and hello amortised in).
    let framing = stats.as_ref().filter(|_| writer).and_then(|s| {
        let sent = s.get::<u64>("bytes-sent").ok()?;
        let buffers = s.get::<u64>("buffers-sent").ok()?.max(1);
        // Buffers sent by reference put no payload on the socket.
        let shared = s.get::<u64>("shm-buffers-zero-copy").ok()?
            + s.get::<u64>("shm-buffers-copied").ok()?;
        let payload = payload_total.load(Ordering::Relaxed);
        let inline_payload = payload - payload * shared.min(buffers) / buffers;
        Some(sent.saturating_sub(inline_payload) as f64 / buffers as f64)
    });
    let _ = pipeline.set_state(gst::State::Null);
    let (start_cpu, start_time) = first_cpu.lock().unwrap().unwrap_or((end_cpu, end_time));
    let mut line = format!(
        "RESULT buffers={} cpu_ms={:.3} wall_s={:.6} rss_mib={:.1}",
        count.load(Ordering::Relaxed),
        (end_cpu - start_cpu) as f64 / 1e6,
        end_time.duration_since(start_time).as_secs_f64(),
        max_rss_kib() as f64 / 1024.0
    );
    if let Some(rtt) = rtt {
        line.push_str(&format!(" rtt_us={}", rtt.useconds()));
    }
    if let Some(f) = framing {
        line.push_str(&format!(" framing_b={f:.1}"));
    }
    println!("{line}");
}
