// SPDX-License-Identifier: MPL-2.0
//! One end of a spicepass channel at run time: a worker thread that (re)establishes the
//! link, runs the handshake, reads and dispatches frames, sends heartbeats and notices a
//! dead peer; and an [`Outbox`] any thread uses to send (buffers wait for credits).
//!
//! The element-specific reactions (push an event, queue a buffer, post a bus message) are
//! behind [`Handler`]; this module knows nothing about pads.

mod outbox;
mod payload;
mod worker;

pub use outbox::{Outbox, SendError, WhenDisconnected, count_event};
pub use worker::Worker;

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use spicepass_protocol::{
    BufferHeader, ClientReport, Event as WireEvent, ProtocolError, Role, Session,
};

use crate::transport::{Address, LinkError, Mode};

/// The only stream used so far (the protocol allows several per channel).
pub const STREAM_ID: u32 = 0;
/// Read granularity for everything but big payloads (those go straight into buffer memory).
const READ_CHUNK: usize = 64 * 1024;
/// How often blocked waits re-check their conditions (flushing, stopping, lost peer).
const WAIT_SLICE: Duration = Duration::from_millis(100);

static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

/// Monotonic nanoseconds for heartbeats and reports.
pub fn now_ns() -> u64 {
    u64::try_from(EPOCH.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

#[derive(Debug, Clone)]
pub struct Config {
    pub role: Role,
    pub address: Address,
    pub mode: Mode,
    pub auth_token: Option<Vec<u8>>,
    pub max_message_size: u64,
    pub heartbeat_interval: Duration,
    pub heartbeat_timeout: Duration,
    /// Receiver window (src only): bytes and buffers the sender may have in flight.
    pub window_bytes: u64,
    pub window_buffers: u64,
}

/// How a connection attempt or a connection ended badly.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("protocol error from {peer}: {source}")]
    Protocol {
        peer: String,
        #[source]
        source: ProtocolError,
    },
    #[error("{0}")]
    Link(#[from] LinkError),
}

/// What the element does with what arrives. Called from the worker thread.
pub trait Handler: Send + Sync + 'static {
    /// A new connection passed the handshake (`generation` counts connections from 1).
    fn connected(&self, generation: u64, session: &Session);
    /// The connection is gone (peer closed, died, or sent garbage).
    fn lost(&self, generation: u64, reason: &str);
    /// A protocol-level failure the user must hear about (garbage, version mismatch,
    /// refused auth). The worker keeps listening for another peer if it can.
    fn protocol_error(&self, message: &str, fatal: bool);
    /// A downstream or upstream event.
    fn event(&self, generation: u64, event: WireEvent);
    /// A buffer, payload already read into `memory`.
    fn buffer(&self, generation: u64, header: BufferHeader, memory: gst::Buffer);
    /// A client report (sink only).
    fn report(&self, report: ClientReport);
}
