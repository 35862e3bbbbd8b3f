// SPDX-License-Identifier: MPL-2.0
//! Shared-memory payloads (capability `MEMFD_PAYLOADS`, unix sockets only): big buffers
//! travel as references into sealed memfd segments instead of through the socket.
//!
//! * [`registry`]: the process's writer segments, so the sink recognizes a buffer that
//!   already lives in one (no copy at all).
//! * [`pool`]: `GstSpicepassMemfdPool`, whose buffers are each one sealed memfd segment;
//!   the sink proposes it upstream and also copies foreign memory into one of its own.
//! * [`outstanding`]: which shared buffers the peer still holds (sink side).
//! * [`received`]: the segments a src has mapped, and the fds waiting for their
//!   `Segment` frame.

pub mod outstanding;
pub mod pool;
pub mod received;
pub mod registry;

pub use outstanding::{Outstanding, UnknownBuffer};
pub use pool::MemfdPool;
pub use received::{ReceivedSegments, ShmError};
