// SPDX-License-Identifier: MPL-2.0
//! Test and diagnostic peer: runs a guest (`… ! spicepasssink`) or client (`spicepasssrc ! …`)
//! pipeline in its own process and prints, one line each, what crosses the element: every
//! buffer (timestamps, flags, size, checksum), every event both ways, spicepass bus messages,
//! errors and EOS. The integration tests drive two of these and compare their stories.
//!
//! ```text
//! spicepass-peer guest  <uri> "<pipeline before the sink>" [key=value...]
//! spicepass-peer client <uri> [key=value...]
//! ```
//! Options: `drop-policy=drop|block`, `sync=true|false`, `seek-after=N seek-to-ms=T`,
//! `upstream-after=N` (client sends latency, navigation and QoS events upstream),
//! `query-after-upstream=true` (guest answers LATENCY/POSITION once the client reported),
//! `auth-token=T`, `timeout-s=S`, `render-rect=X,Y,W,H` (guest application calls
//! `gst_video_overlay_set_render_rectangle` on the sink, before playing or, with
//! `render-rect-after=N`, after the N-th buffer), `video-sink=ELEMENT` (client decodes and
//! renders with `ELEMENT name=out`, properties included, instead of counting buffers in a
//! fakesink), `checksum=false` (`sum=-`: for throughput runs), `memfd-threshold=N` (the
//! sink's shared-memory threshold; 0 = socket only), `linger-after-eos-ms=N` (keep the
//! pipeline playing N ms after EOS, as an application that does not stop at once).

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;

fn out(line: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}

/// FNV-1a, enough to tell two payloads apart in a test.
fn checksum(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn opt_ns(t: Option<gst::ClockTime>) -> String {
    t.map_or("none".into(), |t| t.nseconds().to_string())
}

/// `checksum=false` leaves the checksum out (`sum=-`): for throughput runs, where hashing
/// every byte in a debug build would be what is measured.
fn buffer_line(buffer: &gst::BufferRef, with_checksum: bool) -> String {
    let map = buffer.map_readable().expect("readable buffer");
    let off = |o: u64| {
        if o == gst::ffi::GST_BUFFER_OFFSET_NONE {
            "none".to_string()
        } else {
            o.to_string()
        }
    };
    format!(
        "BUF pts={} dts={} dur={} off={} offend={} flags={:#x} size={} sum={}",
        opt_ns(buffer.pts()),
        opt_ns(buffer.dts()),
        opt_ns(buffer.duration()),
        off(buffer.offset()),
        off(buffer.offset_end()),
        buffer.flags().bits(),
        map.len(),
        if with_checksum {
            format!("{:016x}", checksum(&map))
        } else {
            "-".to_owned()
        }
    )
}

fn event_line(prefix: &str, event: &gst::EventRef) -> String {
    format!(
        "{prefix} {} seqnum={} {}",
        event.type_().name(),
        event.seqnum().into_glib_u32(),
        event.structure().map(|s| s.to_string()).unwrap_or_default()
    )
}

trait SeqnumExt {
    fn into_glib_u32(self) -> u32;
}

impl SeqnumExt for gst::Seqnum {
    fn into_glib_u32(self) -> u32 {
        use gst::glib::translate::IntoGlib;
        self.into_glib()
    }
}

struct Options(HashMap<String, String>);

impl Options {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
    fn num(&self, key: &str) -> Option<u64> {
        self.get(key).and_then(|v| v.parse().ok())
    }
    fn flag(&self, key: &str) -> bool {
        self.get(key) == Some("true")
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: spicepass-peer guest <uri> <pipeline> [k=v...] | client <uri> [k=v...]");
        std::process::exit(2);
    }
    gst::init().expect("gst init");
    gstspicepass::plugin_register_static().expect("registering spicepass");
    let role = args[1].as_str();
    let uri = args[2].as_str();
    let (head, rest) = if role == "guest" {
        (
            Some(args.get(3).expect("guest needs a pipeline").as_str()),
            &args[4..],
        )
    } else {
        (None, &args[3..])
    };
    let options = Options(
        rest.iter()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    );
    let code = match role {
        "guest" => run(
            guest_pipeline(uri, head.unwrap_or_default(), &options),
            &options,
            true,
        ),
        "client" => run(client_pipeline(uri, &options), &options, false),
        _ => {
            eprintln!("unknown role {role}");
            2
        }
    };
    std::process::exit(code);
}

fn guest_pipeline(uri: &str, head: &str, options: &Options) -> gst::Pipeline {
    let policy = options.get("drop-policy").unwrap_or("block");
    let mut desc = format!("{head} ! spicepasssink name=sink uri={uri} drop-policy={policy}");
    if let Some(threshold) = options.num("memfd-threshold") {
        desc.push_str(&format!(" memfd-threshold={threshold}"));
    }
    launch(&desc)
}

fn client_pipeline(uri: &str, options: &Options) -> gst::Pipeline {
    let sync = options.get("sync").unwrap_or("false");
    let desc = match options.get("video-sink") {
        Some(sink) => {
            format!("spicepasssrc name=src uri={uri} ! decodebin ! videoconvert ! {sink} name=out")
        }
        None => {
            format!("spicepasssrc name=src uri={uri} ! fakesink name=out sync={sync} qos=false")
        }
    };
    launch(&desc)
}

fn launch(desc: &str) -> gst::Pipeline {
    match gst::parse::launch(desc) {
        Ok(p) => p.downcast().expect("a pipeline"),
        Err(e) => {
            out(&format!("ERROR cannot build '{desc}': {e}"));
            std::process::exit(3);
        }
    }
}

fn run(pipeline: gst::Pipeline, options: &Options, guest: bool) -> i32 {
    if let Some(token) = options.get("auth-token") {
        let end = pipeline
            .by_name(if guest { "sink" } else { "src" })
            .expect("spicepass element");
        end.set_property("auth-token", token);
    }
    let render_rect = options.get("render-rect").map(|r| {
        let v: Vec<i32> = r.split(',').filter_map(|n| n.parse().ok()).collect();
        assert_eq!(v.len(), 4, "render-rect=X,Y,W,H");
        (v[0], v[1], v[2], v[3])
    });
    let render_rect_after = options.num("render-rect-after");
    if guest
        && render_rect_after.is_none()
        && let Some(rect) = render_rect
    {
        set_render_rect(&pipeline, rect);
    }
    let (probe_element, probe_pad) = if guest {
        ("sink", "sink")
    } else {
        ("out", "sink")
    };
    let pad = pipeline
        .by_name(probe_element)
        .and_then(|e| e.static_pad(probe_pad))
        .expect("probe pad");
    let buffers = Arc::new(AtomicU64::new(0));
    let seek_after = options.num("seek-after");
    let seek_to = options.num("seek-to-ms").unwrap_or(0);
    let upstream_after = options.num("upstream-after");
    let query_after_upstream = options.flag("query-after-upstream");
    let with_checksum = options.get("checksum") != Some("false");
    let weak = pipeline.downgrade();
    let counted = buffers.clone();
    let queried = Arc::new(Mutex::new(false));
    pad.add_probe(
        gst::PadProbeType::BUFFER
            | gst::PadProbeType::EVENT_DOWNSTREAM
            | gst::PadProbeType::EVENT_UPSTREAM
            | gst::PadProbeType::EVENT_FLUSH,
        move |_pad, info| {
            match &info.data {
                Some(gst::PadProbeData::Buffer(b)) => {
                    out(&buffer_line(b, with_checksum));
                    let n = counted.fetch_add(1, Ordering::SeqCst) + 1;
                    if Some(n) == seek_after {
                        spawn_seek(weak.clone(), seek_to);
                    }
                    if Some(n) == upstream_after {
                        spawn_upstream_events(weak.clone());
                    }
                    if guest
                        && Some(n) == render_rect_after
                        && let (Some(rect), Some(p)) = (render_rect, weak.upgrade())
                    {
                        set_render_rect(&p, rect);
                    }
                }
                Some(gst::PadProbeData::Event(e)) => {
                    if e.is_upstream() && !e.is_downstream() {
                        out(&event_line("UPEVENT", e));
                        if guest && query_after_upstream && e.type_() == gst::EventType::Navigation
                        {
                            let mut q = queried.lock().unwrap();
                            if !*q {
                                *q = true;
                                spawn_queries(weak.clone());
                            }
                        }
                    } else {
                        out(&event_line("EVENT", e));
                    }
                }
                _ => {}
            }
            gst::PadProbeReturn::Ok
        },
    );
    if pipeline.set_state(gst::State::Paused).is_err() {
        drain_errors(&pipeline);
        return 1;
    }
    if guest && let Some(sink) = pipeline.by_name("sink") {
        out(&format!("READY port={}", sink.property::<u32>("port")));
    }
    if pipeline.set_state(gst::State::Playing).is_err() {
        drain_errors(&pipeline);
        return 1;
    }
    let deadline = Instant::now() + Duration::from_secs(options.num("timeout-s").unwrap_or(120));
    let bus = pipeline.bus().expect("pipeline bus");
    let mut code = 4;
    while Instant::now() < deadline {
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(100)) else {
            continue;
        };
        match msg.view() {
            gst::MessageView::Eos(_) => {
                out("EOS");
                code = 0;
                break;
            }
            gst::MessageView::Error(e) => {
                out(&format!(
                    "ERROR {} | {}",
                    e.error(),
                    e.debug().map(|d| d.to_string()).unwrap_or_default()
                ));
                code = 1;
                break;
            }
            gst::MessageView::Warning(w) => out(&format!("WARNING {}", w.error())),
            gst::MessageView::Element(e) => {
                if let Some(s) = e.structure()
                    && s.name().starts_with("spicepass-")
                {
                    out(&format!("MSG {s}"));
                }
            }
            _ => {}
        }
    }
    if code == 4 {
        out("TIMEOUT");
    }
    if code == 0
        && let Some(ms) = options.num("linger-after-eos-ms")
    {
        let until = Instant::now() + Duration::from_millis(ms);
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            let wait = gst::ClockTime::from_nseconds(left.as_nanos().min(100_000_000) as u64);
            if let Some(msg) = bus.timed_pop(wait)
                && let gst::MessageView::Element(e) = msg.view()
                && let Some(s) = e.structure()
                && s.name().starts_with("spicepass-")
            {
                out(&format!("MSG {s}"));
            }
        }
    }
    for name in ["sink", "src"] {
        if let Some(e) = pipeline.by_name(name) {
            out(&format!("STATS {}", e.property::<gst::Structure>("stats")));
        }
    }
    let _ = pipeline.set_state(gst::State::Null);
    code
}

/// What a guest application does to place the video: the sink's `GstVideoOverlay`.
fn set_render_rect(pipeline: &gst::Pipeline, (x, y, w, h): (i32, i32, i32, i32)) {
    use gst_video::prelude::*;
    let overlay = pipeline
        .by_name("sink")
        .and_dynamic_cast::<gst_video::VideoOverlay>()
        .expect("spicepasssink implements GstVideoOverlay");
    let ok = overlay.set_render_rectangle(x, y, w, h).is_ok();
    out(&format!("RENDER-RECT-SET {x},{y},{w},{h} ok={ok}"));
}

fn drain_errors(pipeline: &gst::Pipeline) {
    let bus = pipeline.bus().expect("bus");
    while let Some(msg) = bus.timed_pop_filtered(
        gst::ClockTime::from_mseconds(200),
        &[gst::MessageType::Error],
    ) {
        if let gst::MessageView::Error(e) = msg.view() {
            out(&format!("ERROR {} | {:?}", e.error(), e.debug()));
        }
    }
}

fn spawn_seek(weak: gst::glib::WeakRef<gst::Pipeline>, to_ms: u64) {
    std::thread::spawn(move || {
        if let Some(p) = weak.upgrade() {
            let ok = p
                .seek_simple(
                    gst::SeekFlags::FLUSH | gst::SeekFlags::KEY_UNIT,
                    gst::ClockTime::from_mseconds(to_ms),
                )
                .is_ok();
            out(&format!("SEEK-SENT ok={ok}"));
        }
    });
}

/// What a client sink sends upstream during playback: latency, navigation, QoS.
fn spawn_upstream_events(weak: gst::glib::WeakRef<gst::Pipeline>) {
    std::thread::spawn(move || {
        let Some(p) = weak.upgrade() else { return };
        let Some(sink) = p.by_name("out") else { return };
        let pad = sink.static_pad("sink").expect("fakesink pad");
        let latency = pad.push_event(gst::event::Latency::new(gst::ClockTime::from_mseconds(30)));
        // Let at least one position/latency report reach the guest before navigation.
        std::thread::sleep(Duration::from_millis(300));
        let nav = pad.push_event(gst::event::Navigation::new(
            gst::Structure::builder("application/x-gst-navigation")
                .field("event", "mouse-button-press")
                .field("button", 1i32)
                .field("pointer_x", 12.5f64)
                .field("pointer_y", 34.0f64)
                .build(),
        ));
        let qos = pad.push_event(gst::event::Qos::new(
            gst::QOSType::Underflow,
            0.75,
            -5_000_000,
            gst::ClockTime::from_mseconds(500),
        ));
        out(&format!(
            "UPSTREAM-SENT latency={latency} navigation={nav} qos={qos}"
        ));
    });
}

fn spawn_queries(weak: gst::glib::WeakRef<gst::Pipeline>) {
    std::thread::spawn(move || {
        let Some(p) = weak.upgrade() else { return };
        let Some(sink) = p.by_name("sink") else {
            return;
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut printed_latency = false;
        let mut printed_position = false;
        while Instant::now() < deadline && !(printed_latency && printed_position) {
            let mut q = gst::query::Latency::new();
            if !printed_latency && sink.query(&mut q) {
                let (live, min, max) = q.result();
                if min >= gst::ClockTime::from_mseconds(30) {
                    out(&format!(
                        "LATENCY live={live} min={} max={}",
                        min.nseconds(),
                        opt_ns(max)
                    ));
                    printed_latency = true;
                }
            }
            if !printed_position
                && let Some(pos) = sink.query_position::<gst::ClockTime>()
                && pos > gst::ClockTime::ZERO
            {
                out(&format!("POSITION {}", pos.nseconds()));
                printed_position = true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
}
