// SPDX-License-Identifier: MPL-2.0
//! The V4L2 side of a stateless decoder: the video node's two MMAP queues, the media
//! node's requests, request-bound controls. [`RequestDecoder`] implements
//! [`crate::stateless::backend::Backend`] for the per-codec state machines.

mod buffers;
mod controls;
mod decoder;
mod loans;

pub use buffers::QueueCaps;
pub use decoder::{CaptureLayout, DecoderError, LentPicture, RequestDecoder};
pub use loans::{Loan, LoanBook};
