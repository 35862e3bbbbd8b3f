// SPDX-License-Identifier: MPL-2.0
//! The main demo: media redirection with `spicepasssink` → `spicepasssrc`.
//!
//! Two processes, like a virtual desktop: a "guest" plays a clip (generated on the fly) with
//! `filesrc ! matroskademux ! spicepasssink`, without decoding it; a "client" receives the
//! still-encoded stream with `spicepasssrc ! vp8dec ! …` and shows it (a window when $DISPLAY
//! is set, otherwise a clock-synchronised fakesink). Mid-way the client seeks; the seek
//! travels to the guest, whose demuxer jumps, and the guest's flush and new segment travel
//! back. Both sides print what they see, then a summary.
//!
//! Run with `./x demo` (GST_PLUGIN_PATH points at the release build).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

const CLIP_SECONDS: u64 = 10;
const SEEK_AT_MS: u64 = 3000;
const SEEK_TO_MS: u64 = 7000;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    gst::init()?;
    match args.get(1).map(String::as_str) {
        Some("guest") => guest(&args[2], &args[3]),
        Some("client") => client(&args[2]),
        _ => orchestrate(),
    }
}

fn secs(t: Option<gst::ClockTime>) -> String {
    t.map_or("none".into(), |t| {
        format!("{:.3}s", t.nseconds() as f64 / 1e9)
    })
}

fn orchestrate() -> Result<()> {
    if gst::ElementFactory::find("spicepasssink").is_none() {
        return Err(
            "spicepasssink not found: set GST_PLUGIN_PATH to the build dir (./x demo does)".into(),
        );
    }
    let dir = std::env::temp_dir().join(format!("mediapass-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let clip = dir.join("clip.webm");
    let sock = dir.join("spicepass.sock");
    println!(
        "== making a {CLIP_SECONDS} s VP8/WebM clip: {}",
        clip.display()
    );
    make_clip(&clip)?;
    let uri = format!("spicepass+unix://{}", sock.display());
    println!("== guest:  filesrc ! matroskademux ! spicepasssink uri={uri}");
    let display = std::env::var_os("DISPLAY").is_some();
    println!(
        "== client: spicepasssrc uri={uri} ! vp8dec ! {}",
        if display {
            "videoconvert ! autovideosink"
        } else {
            "fakesink sync=true (no $DISPLAY)"
        }
    );
    let me = std::env::current_exe()?;
    let started = Instant::now();
    let mut guest = Command::new(&me)
        .args(["guest", &uri, &clip.to_string_lossy()])
        .stdout(Stdio::piped())
        .spawn()?;
    let guest_out = relay("guest ", guest.stdout.take().expect("piped"));
    let mut client = Command::new(&me)
        .args(["client", &uri])
        .stdout(Stdio::piped())
        .spawn()?;
    let client_out = relay("client", client.stdout.take().expect("piped"));
    let deadline = Instant::now() + Duration::from_secs(120);
    let client_status = wait_until(&mut client, deadline)?;
    let guest_status = wait_until(&mut guest, deadline)?;
    std::thread::sleep(Duration::from_millis(200));
    let _ = std::fs::remove_dir_all(&dir);

    let g = guest_out.lock().expect("lines").clone();
    let c = client_out.lock().expect("lines").clone();
    let find = |lines: &[String], needle: &str| lines.iter().any(|l| l.contains(needle));
    println!("\n== summary ({:.1} s)", started.elapsed().as_secs_f64());
    println!(
        "  guest  exit {guest_status}: seek received: {}, flushed: {}, new segment at {} s: {}",
        yes(find(&g, "upstream seek")),
        yes(find(&g, "flush-stop")),
        SEEK_TO_MS / 1000,
        yes(find(
            &g,
            &format!(
                "segment start={}",
                secs(Some(gst::ClockTime::from_mseconds(SEEK_TO_MS)))
            )
        ))
    );
    println!(
        "  client exit {client_status}: saw the guest's flush: {}, new segment: {}, EOS: {}",
        yes(find(&c, "flush-stop")),
        yes(find(
            &c,
            &format!(
                "segment start={}",
                secs(Some(gst::ClockTime::from_mseconds(SEEK_TO_MS)))
            )
        )),
        yes(find(&c, "EOS"))
    );
    for l in c
        .iter()
        .chain(g.iter())
        .filter(|l| l.starts_with("summary"))
    {
        println!("  {l}");
    }
    if guest_status != 0 || client_status != 0 {
        return Err("a pipeline failed".into());
    }
    Ok(())
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "NO" }
}

fn wait_until(child: &mut std::process::Child, deadline: Instant) -> Result<i32> {
    loop {
        if let Some(s) = child.try_wait()? {
            return Ok(s.code().unwrap_or(-1));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err("timed out".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn relay(tag: &'static str, out: std::process::ChildStdout) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let l = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(|r| r.ok()) {
            println!("[{tag}] {line}");
            l.lock().expect("lines").push(line);
        }
    });
    lines
}

fn make_clip(path: &std::path::Path) -> Result<()> {
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc num-buffers={} pattern=ball ! video/x-raw,width=640,height=360,framerate=30/1 \
         ! vp8enc deadline=1 keyframe-max-dist=30 ! webmmux \
         ! filesink location={}",
        CLIP_SECONDS * 30,
        path.display()
    ))?;
    run_to_eos(
        &pipeline
            .downcast::<gst::Pipeline>()
            .map_err(|_| "not a pipeline")?,
        |_| {},
    )
}

/// Plays `pipeline` until EOS or error; `on_message` sees every bus message.
fn run_to_eos(pipeline: &gst::Pipeline, mut on_message: impl FnMut(&gst::Message)) -> Result<()> {
    pipeline.set_state(gst::State::Playing)?;
    let bus = pipeline.bus().expect("bus");
    let result = loop {
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_seconds(60)) else {
            break Err("no message for 60 s".into());
        };
        on_message(&msg);
        match msg.view() {
            gst::MessageView::Eos(_) => break Ok(()),
            gst::MessageView::Error(e) => {
                break Err(format!("{}: {:?}", e.error(), e.debug()).into());
            }
            _ => {}
        }
    };
    pipeline.set_state(gst::State::Null)?;
    result
}

fn print_spicepass_message(msg: &gst::Message) {
    if let gst::MessageView::Element(e) = msg.view()
        && let Some(s) = e.structure()
        && s.name().starts_with("spicepass-")
    {
        println!("bus: {}", s.name());
    }
}

fn describe_event(event: &gst::EventRef) -> Option<String> {
    Some(match event.view() {
        gst::EventView::Segment(s) => {
            let seg = s.segment().downcast_ref::<gst::ClockTime>()?;
            format!(
                "segment start={} (seqnum {})",
                secs(seg.start()),
                event.seqnum().into_glib()
            )
        }
        gst::EventView::FlushStart(_) => {
            format!("flush-start (seqnum {})", event.seqnum().into_glib())
        }
        gst::EventView::FlushStop(_) => {
            format!("flush-stop (seqnum {})", event.seqnum().into_glib())
        }
        gst::EventView::Caps(c) => format!("caps {}", c.caps()),
        gst::EventView::Eos(_) => "eos".into(),
        gst::EventView::Seek(s) => {
            let (_, _, _, start, _, _) = s.get();
            format!(
                "upstream seek to {start} (seqnum {})",
                event.seqnum().into_glib()
            )
        }
        _ => return None,
    })
}

use gst::glib::translate::IntoGlib;

fn guest(uri: &str, clip: &str) -> Result<()> {
    let pipeline = gst::parse::launch(&format!(
        "filesrc location={clip} ! matroskademux ! spicepasssink name=sink uri={uri} drop-policy=block"
    ))?
    .downcast::<gst::Pipeline>()
    .map_err(|_| "not a pipeline")?;
    let sink = pipeline.by_name("sink").expect("sink");
    let buffers = Arc::new(AtomicU64::new(0));
    let counted = buffers.clone();
    sink.static_pad("sink").expect("pad").add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_BOTH | gst::PadProbeType::EVENT_FLUSH,
        move |_, info| {
            match &info.data {
                Some(gst::PadProbeData::Buffer(_)) => {
                    counted.fetch_add(1, Ordering::Relaxed);
                }
                Some(gst::PadProbeData::Event(e)) => {
                    if let Some(d) = describe_event(e) {
                        println!("event: {d}");
                    }
                }
                _ => {}
            }
            gst::PadProbeReturn::Ok
        },
    );
    let started = Instant::now();
    let mut last_position = Instant::now();
    run_to_eos(&pipeline, |msg| {
        print_spicepass_message(msg);
        if last_position.elapsed() > Duration::from_secs(1) {
            last_position = Instant::now();
            // Answered from the client's reports: the guest app's progress bar.
            println!(
                "position query (from client report): {}",
                secs(sink.query_position::<gst::ClockTime>())
            );
        }
    })?;
    println!(
        "summary guest: {} encoded buffers sent in {:.1} s, stats {}",
        buffers.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64(),
        sink.property::<gst::Structure>("stats")
    );
    Ok(())
}

fn client(uri: &str) -> Result<()> {
    let display = std::env::var_os("DISPLAY").is_some();
    let tail = if display {
        "videoconvert ! autovideosink"
    } else {
        "fakesink sync=true"
    };
    let pipeline = gst::parse::launch(&format!(
        "spicepasssrc name=src uri={uri} ! vp8dec name=dec ! {tail}"
    ))?
    .downcast::<gst::Pipeline>()
    .map_err(|_| "not a pipeline")?;
    let frames = Arc::new(AtomicU64::new(0));
    let counted = frames.clone();
    let weak = pipeline.downgrade();
    let seeked = Arc::new(AtomicU64::new(0));
    pipeline
        .by_name("dec")
        .expect("dec")
        .static_pad("sink")
        .expect("pad")
        .add_probe(
            gst::PadProbeType::BUFFER
                | gst::PadProbeType::EVENT_DOWNSTREAM
                | gst::PadProbeType::EVENT_FLUSH,
            move |_, info| {
                match &info.data {
                    Some(gst::PadProbeData::Buffer(b)) => {
                        counted.fetch_add(1, Ordering::Relaxed);
                        let pts = b.pts().map_or(0, |t| t.mseconds());
                        if pts >= SEEK_AT_MS && seeked.swap(1, Ordering::SeqCst) == 0 {
                            println!(
                                "playing at {}: seeking to {} s",
                                secs(b.pts()),
                                SEEK_TO_MS / 1000
                            );
                            let weak = weak.clone();
                            std::thread::spawn(move || {
                                if let Some(p) = weak.upgrade() {
                                    let ok = p
                                        .seek_simple(
                                            gst::SeekFlags::FLUSH | gst::SeekFlags::KEY_UNIT,
                                            gst::ClockTime::from_mseconds(SEEK_TO_MS),
                                        )
                                        .is_ok();
                                    println!("seek sent: {ok}");
                                }
                            });
                        }
                    }
                    Some(gst::PadProbeData::Event(e)) => {
                        if let Some(d) = describe_event(e) {
                            println!("event: {d}");
                        }
                    }
                    _ => {}
                }
                gst::PadProbeReturn::Ok
            },
        );
    let started = Instant::now();
    let src = pipeline.by_name("src").expect("src");
    run_to_eos(&pipeline, print_spicepass_message)?;
    println!("EOS");
    println!(
        "summary client: {} frames decoded in {:.1} s, stats {}",
        frames.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64(),
        src.property::<gst::Structure>("stats")
    );
    Ok(())
}
