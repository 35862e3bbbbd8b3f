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
pub mod recording;
pub mod vp8;
pub mod vp9;

/// `v4l2_timeval_to_ns()` of the OUTPUT buffer timestamp a frame is queued with.
///
/// Like GStreamer's v4l2codecs we use the decoder's frame number in microseconds,
/// so a timestamp is `frame_number * 1000` ns and survives the timeval round trip.
pub fn frame_timestamp(frame_number: u32) -> u64 {
    u64::from(frame_number) * 1000
}

#[cfg(test)]
mod tests;
