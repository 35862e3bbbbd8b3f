// SPDX-License-Identifier: MPL-2.0
//! VP9: superframe splitting, uncompressed and compressed frame headers, probability
//! contexts. [`Vp9Parser`] ties them together with the state kept between frames.

pub mod coef_probs;
pub mod compressed;
pub mod probs;
pub mod superframe;
pub mod uncompressed;

pub use compressed::{CompressedHeader, CompressedHeaderError, ReferenceMode, TxMode};
pub use probs::{FrameContexts, MvProbs, ProbTables};
pub use superframe::{SuperframeError, split_superframe};
pub use uncompressed::{
    ColorConfig, FrameType, InterpolationFilter, LoopFilter, Quantization, ResetFrameContext,
    Segmentation, UncompressedHeader, UncompressedHeaderError, Vp9State,
};

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Vp9Error {
    #[error("VP9 uncompressed header: {0}")]
    Uncompressed(#[from] UncompressedHeaderError),
    #[error("VP9 compressed header: {0}")]
    Compressed(#[from] CompressedHeaderError),
}

/// One parsed frame (one element of a superframe).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vp9Frame {
    pub header: UncompressedHeader,
    /// `None` for `show_existing_frame` (nothing to decode).
    pub compressed: Option<CompressedHeader>,
}

/// Parses VP9 frames in decode order, keeping the inter-frame state.
#[derive(Debug, Clone, Default)]
pub struct Vp9Parser {
    state: Vp9State,
}

impl Vp9Parser {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn state(&self) -> &Vp9State {
        &self.state
    }

    /// Parses one frame (not a superframe: split it first). On error the parser state
    /// is unchanged, so the caller may skip the frame and go on.
    pub fn parse_frame(&mut self, frame: &[u8]) -> Result<Vp9Frame, Vp9Error> {
        let mut state = self.state.clone();
        let header = uncompressed::parse_uncompressed_header(frame, &mut state)?;
        let compressed = if header.show_existing_frame {
            None
        } else {
            let rest = frame.get(header.uncompressed_header_size..).unwrap_or(&[]);
            Some(CompressedHeader::parse(rest, &header)?)
        };
        self.state = state;
        Ok(Vp9Frame { header, compressed })
    }
}
