// SPDX-License-Identifier: MPL-2.0
//! Per-codec decoding state machines for V4L2 stateless decoders.
//!
//! They turn compressed frames into [`backend::DecodeJob`]s (bitstream + uAPI control
//! structs + the timestamp later frames use to name this picture as a reference) and
//! track which pictures are still references. They know nothing of GStreamer nor of
//! buffer queues: a [`backend::Backend`] executes the jobs (V4L2 in the element, a
//! recording backend in the unit tests and the fuzz target).

pub mod backend;
pub mod fwht;
pub mod h264;
pub mod mpeg2;
pub mod recording;
mod tentative;
pub mod vp8;
pub mod vp9;

/// `v4l2_timeval_to_ns()` of the OUTPUT buffer timestamp a frame is queued with.
///
/// Like GStreamer's v4l2codecs we use the decoder's frame number in microseconds,
/// so a timestamp is `frame_number * 1000` ns and survives the timeval round trip.
pub fn frame_timestamp(frame_number: u32) -> u64 {
    u64::from(frame_number) * 1000
}

/// The inverse of [`frame_timestamp`]: the frame number an input frame timestamp
/// stands for (`None` for timestamps no input frame has, e.g. VP9 packed subframes).
pub fn frame_number(timestamp: u64) -> Option<u32> {
    if !timestamp.is_multiple_of(1000) {
        return None;
    }
    u32::try_from(timestamp / 1000).ok()
}

#[cfg(test)]
mod mpeg2_tests;
#[cfg(test)]
mod tests;
