// SPDX-License-Identifier: MPL-2.0
//! Pure-Rust bitstream parsers for the stateless decoders of `gst-plugin-v4l2stateless`.
//!
//! Nothing here knows GStreamer or V4L2: every parser takes bytes and returns typed
//! headers or a typed error naming the field that was bad. They are unit-tested,
//! property-tested and fuzzed on their own (see `fuzz/`).

pub mod annexb;
pub mod bitreader;
pub mod boolcoder;
pub mod fwht;
pub mod h264;
pub mod ivf;
pub mod mpeg2;
pub mod vp8;
pub mod vp9;
mod zigzag;

#[cfg(test)]
mod test_bits;
