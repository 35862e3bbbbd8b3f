// SPDX-License-Identifier: MPL-2.0
//! The VP8/VP9/H.264/MPEG-2 state machines on arbitrary frame sequences: never a panic,
//! and every reference a decode job names is a picture decoded earlier (or 0, MPEG-2:
//! `NO_REFERENCE`, when there is none); H.264 and MPEG-2 output each decoded picture at
//! most once. MPEG-2 field pairs: a job continuing a CAPTURE buffer (second field)
//! directly follows the job that held it (first field), with the same timestamp.
//!
//! Input: byte 0 selects the codec: bit 3 set is MPEG-2 (one frame per buffer: a frame
//! picture or two field pictures), bit 2
//! set is H.264 (bit 0: slice-based, bit 1: Annex-B start codes), otherwise bit 0
//! selects VP8 (clear) or VP9 (set) and bit 1 whether the driver takes the VP9
//! compressed header; then frames (H.264: access units) as (u16 little-endian length,
//! bytes).
#![no_main]

use libfuzzer_sys::fuzz_target;

use gstv4l2stateless::stateless::backend::Control;
use gstv4l2stateless::stateless::frame_timestamp;
use gstv4l2stateless::stateless::h264::{DecodeMode, H264Decoder};
use gstv4l2stateless::stateless::mpeg2::{Mpeg2Decoder, NO_REFERENCE};
use gstv4l2stateless::stateless::recording::RecordingBackend;
use gstv4l2stateless::stateless::vp8::Vp8Decoder;
use gstv4l2stateless::stateless::vp9::Vp9Decoder;

fn frames(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while data.len() >= 2 {
        let len = usize::from(u16::from_le_bytes([data[0], data[1]])).min(data.len() - 2);
        out.push(&data[2..2 + len]);
        data = &data[2 + len..];
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut backend = RecordingBackend::default();
    if mode & 8 != 0 {
        mpeg2(rest, &mut backend);
        return;
    }
    if mode & 4 != 0 {
        h264(mode, rest, &mut backend);
        return;
    }
    let mut vp8 = Vp8Decoder::new();
    let mut vp9 = Vp9Decoder::new(mode & 2 != 0);
    for (n, frame) in frames(rest).into_iter().enumerate() {
        let ts = frame_timestamp(n as u32 + 1);
        let _ = if mode & 1 == 0 {
            vp8.decode(frame, ts, &mut backend)
        } else {
            vp9.decode(frame, ts, &mut backend)
        };
    }
    let mut decoded = vec![0u64];
    for job in &backend.jobs {
        let refs: Vec<u64> = job
            .controls
            .iter()
            .flat_map(|c| match c {
                Control::Vp8Frame(f) => vec![f.last_frame_ts, f.golden_frame_ts, f.alt_frame_ts],
                Control::Vp9Frame(f) => vec![f.last_frame_ts, f.golden_frame_ts, f.alt_frame_ts],
                Control::Vp9CompressedHdr(_) => Vec::new(),
                Control::FwhtParams(f) => vec![f.backward_ref_ts],
                _ => Vec::new(),
            })
            .collect();
        for r in refs {
            assert!(
                decoded.contains(&r),
                "reference {r} names no earlier picture"
            );
        }
        decoded.push(job.timestamp);
    }
});

fn mpeg2(data: &[u8], backend: &mut RecordingBackend) {
    let mut dec = Mpeg2Decoder::new();
    let mut shown = Vec::new();
    for (n, picture) in frames(data).into_iter().enumerate() {
        let ts = frame_timestamp(n as u32 + 1);
        let jobs_before = backend.jobs.len();
        match dec.decode(picture, ts, backend) {
            Ok(outcome) => {
                for (frame, picture) in outcome.show {
                    assert_eq!(frame, picture, "MPEG-2 shows each frame's own picture");
                    shown.push(picture);
                }
            }
            Err(_) => assert_eq!(backend.jobs.len(), jobs_before, "a refused picture queued a job"),
        }
    }
    shown.extend(dec.drain().into_iter().map(|(_, picture)| picture));
    let mut decoded = vec![NO_REFERENCE];
    let mut held: Option<u64> = None;
    for job in &backend.jobs {
        if job.continues_picture {
            assert_eq!(held, Some(job.timestamp), "a second field without its first");
        } else {
            assert!(held.is_none(), "a first field without its second");
        }
        held = job.hold_capture.then_some(job.timestamp);
        for c in &job.controls {
            if let Control::Mpeg2Picture(p) = c {
                for r in [p.forward_ref_ts, p.backward_ref_ts] {
                    assert!(decoded.contains(&r), "reference {r} names no earlier picture");
                }
            }
        }
        decoded.push(job.timestamp);
    }
    assert!(held.is_none(), "the last first field has no second");
    let mut seen = std::collections::HashSet::new();
    for ts in &shown {
        assert!(decoded.contains(ts), "picture {ts} shown but never decoded");
        assert!(seen.insert(*ts), "picture {ts} shown twice");
    }
}

fn h264(mode: u8, data: &[u8], backend: &mut RecordingBackend) {
    let mut dec = H264Decoder::new(DecodeMode {
        slice_based: mode & 1 != 0,
        annex_b: mode & 2 != 0,
    });
    let mut decoded: Vec<u64> = Vec::new();
    let mut output: Vec<u64> = Vec::new();
    for (n, au) in frames(data).into_iter().enumerate() {
        let ts = frame_timestamp(n as u32 + 1);
        let jobs_before = backend.jobs.len();
        if let Ok(d) = dec.decode(au, ts, backend) {
            if d.decoded_picture {
                decoded.push(ts);
            }
            output.extend(d.output);
            output.extend(d.dropped);
        } else {
            assert_eq!(backend.jobs.len(), jobs_before, "a refused picture queued jobs");
        }
    }
    output.extend(dec.drain());
    let mut seen = std::collections::HashSet::new();
    for ts in &output {
        assert!(decoded.contains(ts), "output {ts} was never decoded");
        assert!(seen.insert(*ts), "picture {ts} output twice");
    }
    let mut earlier = vec![];
    let mut dpb_valid = [false; 16];
    for (i, job) in backend.jobs.iter().enumerate() {
        if job.continues_picture {
            assert_eq!(backend.jobs[i - 1].timestamp, job.timestamp);
            assert!(backend.jobs[i - 1].hold_capture);
        }
        for c in &job.controls {
            match c {
                Control::H264DecodeParams(p) => {
                    for (slot, e) in p.dpb.iter().enumerate() {
                        dpb_valid[slot] = e.flags != 0;
                        if e.flags != 0 {
                            assert!(earlier.contains(&e.reference_ts), "DPB names a future picture");
                        }
                    }
                }
                Control::H264SliceParams(s) => {
                    for r in s.ref_pic_list0.iter().chain(&s.ref_pic_list1) {
                        assert!(r.index == 0xff || dpb_valid[usize::from(r.index)]);
                    }
                }
                _ => {}
            }
        }
        if !job.continues_picture {
            earlier.push(job.timestamp);
        }
    }
}
