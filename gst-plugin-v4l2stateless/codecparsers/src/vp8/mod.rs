// SPDX-License-Identifier: MPL-2.0
//! VP8 frame headers and the entropy state kept between frames.

pub mod coeff_probs;
pub mod header;
pub mod probs;

pub use header::{
    LoopFilter, Quantization, Segmentation, Vp8Error, Vp8FrameHeader, Vp8Parser, Vp8State,
};
pub use probs::EntropyProbs;
