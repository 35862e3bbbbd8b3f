// SPDX-License-Identifier: MPL-2.0
//! One end of a spicepass channel at run time: a worker thread that (re)establishes the
//! link, runs the handshake, reads and dispatches frames, sends heartbeats and notices a
//! dead peer; and an [`Outbox`] any thread uses to send (buffers wait for credits).
//!
//! The element-specific reactions (push an event, queue a buffer, post a bus message) are
//! behind [`Handler`]; this module knows nothing about pads.

mod outbox;
mod payload;
mod shared;
mod worker;

pub use outbox::{Outbox, SendError, WhenDisconnected, count_event};
pub use shared::SharedPayload;
pub use worker::Worker;

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use spicepass_protocol::{
    BufferHeader, ClientReport, Event as WireEvent, ProtocolError, Role, Session, WindowGeometry,
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
    /// Offer shared-memory payloads (`MEMFD_PAYLOADS`) when the link is a unix socket.
    pub shared_memory: bool,
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
    /// The peer closed the session because it does not accept us (auth, version, garbage).
    #[error("the peer refused the session: {0}")]
    Refused(String),
    /// The peer misused shared memory (bad segment, fd, offset or release).
    #[error("bad shared memory from {peer}: {source}")]
    Shm {
        peer: String,
        #[source]
        source: crate::shm::ShmError,
    },
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
    /// Where the guest shows the video (src only; the decoder refuses it from a src).
    fn window_geometry(&self, _generation: u64, _geometry: WindowGeometry) {}
    /// Whether the worker may take a new connection now. A src that has received EOS says
    /// no until it is flushed or restarted: a new guest's stream would go nowhere.
    fn accepts_sessions(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Stats;
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;
    use std::sync::Arc;
    use std::sync::mpsc;

    use spicepass_protocol::{Capabilities, Hello, Message};

    /// Records what the worker reports.
    struct Recorder(std::sync::Mutex<mpsc::Sender<String>>);

    impl Handler for Recorder {
        fn connected(&self, generation: u64, _: &Session) {
            let _ = self
                .0
                .lock()
                .unwrap()
                .send(format!("connected {generation}"));
        }
        fn lost(&self, generation: u64, reason: &str) {
            let _ = self
                .0
                .lock()
                .unwrap()
                .send(format!("lost {generation} {reason}"));
        }
        fn protocol_error(&self, message: &str, _: bool) {
            let _ = self.0.lock().unwrap().send(format!("error {message}"));
        }
        fn event(&self, _: u64, _: WireEvent) {}
        fn buffer(&self, _: u64, _: BufferHeader, _: gst::Buffer) {}
        fn report(&self, _: ClientReport) {}
    }

    fn sink_on(fd: i32) -> (Worker, mpsc::Receiver<String>) {
        let config = Config {
            role: Role::Sink,
            address: Address::Fd(fd),
            mode: Mode::Listen,
            auth_token: None,
            max_message_size: 1 << 20,
            heartbeat_interval: Duration::from_millis(200),
            heartbeat_timeout: Duration::from_secs(30),
            window_bytes: 0,
            window_buffers: 0,
            shared_memory: false,
        };
        let (tx, rx) = mpsc::channel();
        let handler = Arc::new(Recorder(std::sync::Mutex::new(tx)));
        let (worker, _) = Worker::start(config, handler, Arc::new(Stats::new()), "test").unwrap();
        (worker, rx)
    }

    /// A client that completes the handshake but never grants credit: a buffer send must
    /// wait, and flush-start must wake it (the streaming thread can never be stuck).
    #[test]
    fn flush_wakes_a_buffer_send_waiting_for_credit() {
        gst::init().unwrap();
        let (ours, mut peer) = UnixStream::pair().unwrap();
        let (worker, events) = sink_on(ours.as_raw_fd());
        let mut hello = Hello::new(Role::Src, 9);
        hello.capabilities = Capabilities::ALL;
        let mut bytes = Vec::new();
        hello.encode(&mut bytes).unwrap();
        peer.write_all(&bytes).unwrap();
        assert_eq!(
            events.recv_timeout(Duration::from_secs(30)).unwrap(),
            "connected 1"
        );
        let outbox = worker.outbox().clone();
        let flusher = {
            let outbox = outbox.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(200));
                outbox.set_flushing(true);
            })
        };
        let header = BufferHeader {
            payload_len: 4,
            ..BufferHeader::default()
        };
        let result = outbox.send_buffer(&header, b"data", WhenDisconnected::Fail, |_| true);
        assert_eq!(result, Err(SendError::Flushing));
        flusher.join().unwrap();
        // Events are never credit-limited.
        outbox.set_flushing(false);
        let eos = gst::event::Eos::new();
        let wire =
            crate::event_codec::to_wire(&eos, spicepass_protocol::EventDirection::Downstream);
        assert!(outbox.send(&Message::Event(wire)).is_ok());
        worker.stop(Duration::from_millis(100));
        drop(ours);
        let mut rest = Vec::new();
        peer.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let _ = peer.read_to_end(&mut rest);
        assert!(
            !rest.is_empty(),
            "the sink sent its hello, the event and goodbye"
        );
    }

    /// Stopping while waiting for a peer returns (the wait is cancellable), and a buffer
    /// without a peer fails fast under the drop policy.
    #[test]
    fn stop_without_peer_returns_and_send_fails_fast() {
        gst::init().unwrap();
        let dir = std::env::temp_dir().join(format!("spicepass-stop-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = Config {
            role: Role::Sink,
            address: Address::Unix(dir.join("s.sock")),
            mode: Mode::Listen,
            auth_token: None,
            max_message_size: 1 << 20,
            heartbeat_interval: Duration::from_secs(1),
            heartbeat_timeout: Duration::from_secs(5),
            window_bytes: 0,
            window_buffers: 0,
            shared_memory: false,
        };
        let (tx, _rx) = mpsc::channel();
        let handler = Arc::new(Recorder(std::sync::Mutex::new(tx)));
        let (worker, _) = Worker::start(config, handler, Arc::new(Stats::new()), "test").unwrap();
        let header = BufferHeader::default();
        assert_eq!(
            worker
                .outbox()
                .send_buffer(&header, &[], WhenDisconnected::Fail, |_| true),
            Err(SendError::NotConnected)
        );
        worker.stop(Duration::from_secs(1));
        assert!(!dir.join("s.sock").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
