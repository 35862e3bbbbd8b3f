// SPDX-License-Identifier: MPL-2.0
//! The VP8/VP9/MPEG-2 state machines on arbitrary frame sequences: never a panic, every
//! reference a decode job names is a picture decoded earlier (or 0 / MPEG-2's "none"
//! when there is none), and every picture shown was decoded.
//!
//! Input: byte 0 selects the codec (bit 2 set: MPEG-2; else bit 0 clear: VP8, set: VP9)
//! and whether the driver takes the VP9 compressed header (bit 1); then frames as
//! (u16 little-endian length, bytes).
#![no_main]

use libfuzzer_sys::fuzz_target;

use gstv4l2stateless::stateless::backend::Control;
use gstv4l2stateless::stateless::frame_timestamp;
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
    let mut vp8 = Vp8Decoder::new();
    let mut vp9 = Vp9Decoder::new(mode & 2 != 0);
    let mut mpeg2 = Mpeg2Decoder::new();
    let mut shown = Vec::new();
    for (n, frame) in frames(rest).into_iter().enumerate() {
        let ts = frame_timestamp(n as u32 + 1);
        let outcome = if mode & 4 != 0 {
            mpeg2.decode(frame, ts, &mut backend)
        } else if mode & 1 == 0 {
            vp8.decode(frame, ts, &mut backend)
        } else {
            vp9.decode(frame, ts, &mut backend)
        };
        if let Ok(outcome) = outcome {
            shown.extend(outcome.show.iter().map(|&(_, picture)| picture));
        }
    }
    shown.extend(mpeg2.drain().iter().map(|&(_, picture)| picture));
    let decoded_pictures: Vec<u64> = backend.jobs.iter().map(|j| j.timestamp).collect();
    for picture in shown {
        assert!(
            decoded_pictures.contains(&picture),
            "picture {picture} shown but never decoded"
        );
    }
    let mut decoded = vec![0u64, NO_REFERENCE];
    for job in &backend.jobs {
        let refs: Vec<u64> = job
            .controls
            .iter()
            .flat_map(|c| match c {
                Control::Vp8Frame(f) => vec![f.last_frame_ts, f.golden_frame_ts, f.alt_frame_ts],
                Control::Vp9Frame(f) => vec![f.last_frame_ts, f.golden_frame_ts, f.alt_frame_ts],
                Control::Vp9CompressedHdr(_) => Vec::new(),
                Control::FwhtParams(f) => vec![f.backward_ref_ts],
                Control::Mpeg2Picture(p) => vec![p.forward_ref_ts, p.backward_ref_ts],
                Control::Mpeg2Sequence(_) | Control::Mpeg2Quantisation(_) => Vec::new(),
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
