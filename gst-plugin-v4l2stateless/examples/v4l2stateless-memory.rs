// SPDX-License-Identifier: MPL-2.0
//! Runs a pipeline ending in `appsink name=sink` and reports what memory each decoded
//! buffer arrived in, so the VM lab can prove zero copy: one line per buffer
//! (`buffer n=N dmabuf=0|1 readonly=0|1`), then `summary frames=N dmabuf=D readonly=R
//! cpu_ms=T stats=<the decoder's stats>` (decoder named `dec`; T is the process's CPU
//! time, for the README's copy-cost table, never asserted). The pictures are written to
//! FILE without padding, through the buffers' video meta.
//!
//!   usage: v4l2stateless-memory [--video-meta] [--hold N] [--delay-ms M] FILE PIPELINE
//!
//! `--video-meta` answers the ALLOCATION query with `GstVideoMeta` support (appsink in
//! GStreamer 1.22 does not), which allows zero copy in system memory. `--hold N` keeps
//! the last N buffers alive and `--delay-ms M` sleeps per buffer: a slow downstream
//! holding many pictures. Every wait has a timeout.

use std::collections::VecDeque;
use std::io::Write;
use std::time::Duration;

use gst::prelude::*;
use gst_video::prelude::*;

const WAIT: Duration = Duration::from_secs(120);

struct Options {
    video_meta: bool,
    hold: usize,
    delay: Duration,
    file: String,
    pipeline: String,
}

fn parse_args() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let mut options = Options {
        video_meta: false,
        hold: 0,
        delay: Duration::ZERO,
        file: String::new(),
        pipeline: String::new(),
    };
    let mut positional = Vec::new();
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> Result<u64, String> {
            args.next()
                .and_then(|v| v.parse().ok())
                .ok_or(format!("{name} needs a number"))
        };
        match arg.as_str() {
            "--video-meta" => options.video_meta = true,
            "--hold" => options.hold = number("--hold")? as usize,
            "--delay-ms" => options.delay = Duration::from_millis(number("--delay-ms")?),
            _ => positional.push(arg),
        }
    }
    let [file, pipeline] = <[String; 2]>::try_from(positional).map_err(
        |_| "usage: v4l2stateless-memory [--video-meta] [--hold N] [--delay-ms M] FILE PIPELINE",
    )?;
    options.file = file;
    options.pipeline = pipeline;
    Ok(options)
}

/// The picture's visible bytes, plane by plane, row by row, through its video meta.
fn packed_picture(sample: &gst::Sample) -> Result<Vec<u8>, String> {
    let caps = sample.caps().ok_or("sample without caps")?;
    let info = gst_video::VideoInfo::from_caps(caps).map_err(|e| e.to_string())?;
    let buffer = sample.buffer().ok_or("sample without buffer")?;
    let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info)
        .map_err(|e| format!("mapping a picture: {e}"))?;
    let mut out = Vec::new();
    for plane in 0..frame.n_planes() {
        let data = frame.plane_data(plane).map_err(|e| e.to_string())?;
        let stride = frame.plane_stride()[plane as usize] as usize;
        let row = (frame.comp_width(plane) * frame.comp_pstride(plane) as u32) as usize;
        for r in 0..frame.comp_height(plane) as usize {
            out.extend_from_slice(&data[r * stride..r * stride + row]);
        }
    }
    Ok(out)
}

/// CPU time (user + system) this process used so far, in milliseconds.
fn cpu_ms() -> u64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0;
    };
    // Fields after the command name: state is the 1st, utime the 12th, stime the 13th.
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
        .sum();
    // SAFETY: sysconf only reads a configuration value.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    ticks * 1000 / per_second
}

fn run(options: &Options) -> Result<String, String> {
    gst::init().map_err(|e| e.to_string())?;
    let pipeline = gst::parse::launch(&options.pipeline)
        .map_err(|e| e.to_string())?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "not a pipeline".to_string())?;
    let sink = pipeline
        .by_name("sink")
        .and_then(|s| s.downcast::<gst_app::AppSink>().ok())
        .ok_or("no appsink named sink")?;
    if options.video_meta {
        let pad = sink.static_pad("sink").ok_or("appsink has no sink pad")?;
        pad.add_probe(gst::PadProbeType::QUERY_DOWNSTREAM, |_, info| {
            if let Some(gst::PadProbeData::Query(query)) = info.data.as_mut()
                && let gst::QueryViewMut::Allocation(allocation) = query.view_mut()
            {
                allocation.add_allocation_meta::<gst_video::VideoMeta>(None);
                return gst::PadProbeReturn::Handled;
            }
            gst::PadProbeReturn::Ok
        });
    }
    let result = stream(&pipeline, &sink, options);
    // Also after an error, so elements are torn down in order.
    let _ = pipeline.set_state(gst::State::Null);
    result
}

fn stream(
    pipeline: &gst::Pipeline,
    sink: &gst_app::AppSink,
    options: &Options,
) -> Result<String, String> {
    let mut file =
        std::fs::File::create(&options.file).map_err(|e| format!("{}: {e}", options.file))?;
    let bus = pipeline.bus().ok_or("no bus")?;
    let check_bus = || -> Result<(), String> {
        while let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error]) {
            if let gst::MessageView::Error(e) = msg.view() {
                return Err(format!("{} ({:?})", e.error(), e.debug()));
            }
        }
        Ok(())
    };
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| format!("PLAYING: {e}"))?;
    let mut held = VecDeque::new();
    let (mut frames, mut dmabuf, mut readonly) = (0, 0, 0);
    let mut waiting_since = std::time::Instant::now();
    loop {
        // Short pulls so an error on the bus ends the run at once.
        let sample = sink.try_pull_sample(gst::ClockTime::from_mseconds(200));
        check_bus()?;
        let Some(sample) = sample else {
            if sink.is_eos() {
                break;
            }
            if waiting_since.elapsed() > WAIT {
                return Err(format!("no sample within {WAIT:?}"));
            }
            continue;
        };
        waiting_since = std::time::Instant::now();
        let buffer = sample.buffer().ok_or("sample without buffer")?;
        let is_dmabuf = buffer
            .iter_memories()
            .all(|m| m.is_memory_type::<gst_allocators::DmaBufMemory>());
        let is_readonly = buffer
            .iter_memories()
            .all(|m| m.flags().contains(gst::MemoryFlags::READONLY));
        println!(
            "buffer n={frames} memories={} dmabuf={} readonly={}",
            buffer.n_memory(),
            u8::from(is_dmabuf),
            u8::from(is_readonly)
        );
        frames += 1;
        dmabuf += usize::from(is_dmabuf);
        readonly += usize::from(is_readonly);
        file.write_all(&packed_picture(&sample)?)
            .map_err(|e| format!("{}: {e}", options.file))?;
        held.push_back(sample);
        while held.len() > options.hold {
            held.pop_front();
        }
        std::thread::sleep(options.delay);
    }
    let stats = pipeline
        .by_name("dec")
        .map(|dec| dec.property::<gst::Structure>("stats").to_string())
        .unwrap_or_default();
    drop(held);
    Ok(format!(
        "summary frames={frames} dmabuf={dmabuf} readonly={readonly} cpu_ms={} stats={stats}",
        cpu_ms()
    ))
}

fn main() {
    let options = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    match run(&options) {
        Ok(line) => println!("{line}"),
        Err(e) => {
            eprintln!("v4l2stateless-memory: {e}");
            std::process::exit(1);
        }
    }
}
