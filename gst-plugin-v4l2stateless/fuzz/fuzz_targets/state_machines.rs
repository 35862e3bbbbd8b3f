// SPDX-License-Identifier: MPL-2.0
//! The VP8/VP9 state machines on arbitrary frame sequences: never a panic, and every
//! reference a decode job names is a picture decoded earlier (or 0 when there is none).
//!
//! Input: byte 0 selects the codec (even: VP8, odd: VP9) and whether the driver takes
//! the VP9 compressed header (bit 1); then frames as (u16 little-endian length, bytes).
#![no_main]

use libfuzzer_sys::fuzz_target;

use gstv4l2stateless::stateless::backend::Control;
use gstv4l2stateless::stateless::frame_timestamp;
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
