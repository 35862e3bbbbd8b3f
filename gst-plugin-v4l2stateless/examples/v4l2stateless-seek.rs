// SPDX-License-Identifier: MPL-2.0
//! Decodes a WebM file with a decoder element, seeks (flushing, to a key frame) half way
//! after a few frames, and decodes to EOS. Prints one line:
//! `before=N after=M first_after_ms=T` and exits 0, or prints the error and exits 1.
//! Used by the VM lab test of flush/seek; every wait has a timeout.
//!
//!   usage: v4l2stateless-seek DECODER FILE.webm [PROPERTY=VALUE...]

use std::time::Duration;

use gst::prelude::*;

const WAIT: Duration = Duration::from_secs(60);

fn run(decoder: &str, file: &str, props: &[String]) -> Result<String, String> {
    gst::init().map_err(|e| e.to_string())?;
    let parse = if decoder.contains("vp9") {
        "! vp9parse "
    } else {
        ""
    };
    let description = format!(
        "filesrc location={file} ! matroskademux {parse}! {decoder} name=dec {} \
         ! video/x-raw ! appsink name=sink sync=false",
        props.join(" ")
    );
    let pipeline = gst::parse::launch(&description)
        .map_err(|e| e.to_string())?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "not a pipeline".to_string())?;
    let sink = pipeline
        .by_name("sink")
        .and_then(|s| s.downcast::<gst_app::AppSink>().ok())
        .ok_or("no appsink")?;
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
    let pull = |what: &str| -> Result<Option<gst::Sample>, String> {
        let sample = sink.try_pull_sample(gst::ClockTime::from_nseconds(WAIT.as_nanos() as u64));
        check_bus()?;
        if sample.is_none() && !sink.is_eos() {
            return Err(format!("no sample within {WAIT:?} ({what})"));
        }
        Ok(sample)
    };
    let mut before = 0;
    while before < 5 {
        pull("before the seek")?.ok_or("EOS before the seek")?;
        before += 1;
    }
    let duration = pipeline
        .query_duration::<gst::ClockTime>()
        .ok_or("no duration")?;
    pipeline
        .seek_simple(
            gst::SeekFlags::FLUSH | gst::SeekFlags::KEY_UNIT | gst::SeekFlags::SNAP_BEFORE,
            duration / 2,
        )
        .map_err(|e| format!("seek: {e}"))?;
    let mut after = 0;
    let mut first_after = None;
    while let Some(sample) = pull("after the seek")? {
        let pts = sample.buffer().and_then(|b| b.pts());
        if first_after.is_none() {
            first_after = pts;
        }
        after += 1;
    }
    pipeline
        .set_state(gst::State::Null)
        .map_err(|e| format!("NULL: {e}"))?;
    Ok(format!(
        "before={before} after={after} first_after_ms={}",
        first_after.map_or(-1, |t| t.mseconds() as i64)
    ))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        eprintln!("usage: v4l2stateless-seek DECODER FILE.webm [PROPERTY=VALUE...]");
        std::process::exit(2);
    }
    match run(&args[0], &args[1], &args[2..]) {
        Ok(line) => println!("{line}"),
        Err(e) => {
            eprintln!("v4l2stateless-seek: {e}");
            std::process::exit(1);
        }
    }
}
