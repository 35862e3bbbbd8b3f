// SPDX-License-Identifier: MPL-2.0
//! One end of a spicepass channel at run time: a worker thread that (re)establishes the
//! link, runs the handshake, reads and dispatches frames, sends heartbeats and notices a
//! dead peer; and an [`Outbox`] any thread uses to send (buffers wait for credits).
//!
//! The element-specific reactions (push an event, queue a buffer, post a bus message) are
//! behind [`Handler`]; this module knows nothing about pads.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use gst::prelude::*;
use spicepass_protocol::{
    BufferHeader, Capabilities, ClientReport, CreditGranter, CreditSender, Decoded, Decoder,
    Encoder, Event as WireEvent, Frame, Goodbye, GoodbyeReason, Hello, Limits, Liveness, Message,
    ProtocolError, Role, Session, negotiate,
};

use crate::stats::Stats;
use crate::transport::{Address, Canceller, Link, LinkError, Mode, Rendezvous};

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

struct Connected {
    link: Link,
    encoder: Encoder,
    generation: u64,
    credits: CreditSender,
    granter: Option<CreditGranter>,
    scratch: Vec<u8>,
}

#[derive(Default)]
struct OutboxState {
    connected: Option<Connected>,
    flushing: bool,
    stopping: bool,
    /// Goodbye sent: finish the current connection, do not make another.
    closing: bool,
}

/// The sending half, shared by the streaming thread, event handlers and the worker.
pub struct Outbox {
    state: Mutex<OutboxState>,
    cond: Condvar,
    cancel: Canceller,
    write_timeout: Duration,
    stats: Arc<Stats>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SendError {
    #[error("no peer connected")]
    NotConnected,
    #[error("flushing")]
    Flushing,
    #[error("stopping")]
    Stopping,
    #[error("the connection was lost while sending: {0}")]
    Lost(String),
    #[error("{0}")]
    Unencodable(String),
}

/// Why a single write did not happen.
enum WriteError {
    /// The message cannot be encoded (too big, wrong direction): the link is fine.
    Encode(String),
    /// The link failed: the connection is over.
    Link(String),
}

/// What a buffer send should do without a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenDisconnected {
    Fail,
    WaitForPeer,
}

impl Outbox {
    fn lock(&self) -> MutexGuard<'_, OutboxState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Connection generation if a peer is connected.
    pub fn generation(&self) -> Option<u64> {
        self.lock().connected.as_ref().map(|c| c.generation)
    }

    /// Flush-start wakes blocked buffer sends; flush-stop re-enables them.
    pub fn set_flushing(&self, flushing: bool) {
        self.lock().flushing = flushing;
        self.cond.notify_all();
    }

    fn set_stopping(&self) {
        self.lock().stopping = true;
        self.cancel.cancel();
        self.cond.notify_all();
    }

    /// Sends a non-buffer message now (events, credits, reports: never credit-limited).
    pub fn send(&self, message: &Message) -> Result<u64, SendError> {
        let mut state = self.lock();
        let generation = state
            .connected
            .as_ref()
            .map(|c| c.generation)
            .ok_or(SendError::NotConnected)?;
        let result = Self::write(
            state.connected.as_mut().expect("checked"),
            message,
            &[],
            &self.cancel,
            self.write_timeout,
        );
        self.finish_write(&mut state, generation, result, 0)
    }

    /// Sends a buffer, waiting for credits (and, if asked, for a peer). Returns the
    /// generation it went out on.
    pub fn send_buffer(
        &self,
        header: &BufferHeader,
        payload: &[u8],
        when_disconnected: WhenDisconnected,
        mut before_send: impl FnMut(u64) -> bool,
    ) -> Result<u64, SendError> {
        let mut state = self.lock();
        loop {
            if state.stopping {
                return Err(SendError::Stopping);
            }
            if state.flushing {
                return Err(SendError::Flushing);
            }
            match &state.connected {
                None if when_disconnected == WhenDisconnected::Fail => {
                    return Err(SendError::NotConnected);
                }
                Some(c) if c.credits.may_send() => break,
                _ => {}
            }
            state = self
                .cond
                .wait_timeout(state, WAIT_SLICE)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        let generation = state.connected.as_ref().expect("checked").generation;
        // The element may need to send sticky events first, or drop this buffer (resync).
        drop(state);
        if !before_send(generation) {
            return Ok(generation);
        }
        let mut state = self.lock();
        match &state.connected {
            Some(c) if c.generation == generation => {}
            _ => return Err(SendError::Lost("peer changed while sending".into())),
        }
        let c = state.connected.as_mut().expect("checked");
        let result = Self::write(
            c,
            &Message::Buffer(*header),
            payload,
            &self.cancel,
            self.write_timeout,
        );
        if result.is_ok() {
            c.credits.on_sent(header.payload_len);
            let (bytes, buffers) = c.credits.available();
            self.stats.credits_bytes.store(bytes, Relaxed);
            self.stats.credits_buffers.store(buffers, Relaxed);
            Stats::add(&self.stats.buffers_sent, 1);
        }
        self.finish_write(&mut state, generation, result, payload.len())
            .map(|_| generation)
    }

    fn write(
        c: &mut Connected,
        message: &Message,
        payload: &[u8],
        cancel: &Canceller,
        timeout: Duration,
    ) -> Result<(), WriteError> {
        c.scratch.clear();
        c.encoder
            .encode(STREAM_ID, message, &mut c.scratch)
            .map_err(|e| WriteError::Encode(format!("cannot encode {}: {e}", message.kind())))?;
        c.link
            .write_all(&[&c.scratch, payload], cancel, timeout)
            .map_err(|e| WriteError::Link(e.to_string()))
    }

    fn finish_write(
        &self,
        state: &mut OutboxState,
        generation: u64,
        result: Result<(), WriteError>,
        payload_len: usize,
    ) -> Result<u64, SendError> {
        match result {
            Err(WriteError::Encode(e)) => Err(SendError::Unencodable(e)),
            Ok(()) => {
                let header_len = state.connected.as_ref().map_or(0, |c| c.scratch.len());
                Stats::add(&self.stats.bytes_sent, (header_len + payload_len) as u64);
                Ok(generation)
            }
            Err(WriteError::Link(e)) => {
                if state.stopping {
                    return Err(SendError::Stopping);
                }
                // Tear the link down so the worker notices at once and reconnects.
                if let Some(c) = state.connected.take() {
                    c.link.shutdown();
                }
                self.cond.notify_all();
                Err(SendError::Lost(e))
            }
        }
    }

    /// Src side: a buffer of `payload_len` left the element; grant more credit when due.
    pub fn consumed(&self, generation: u64, payload_len: u64) {
        let mut state = self.lock();
        let Some(c) = state.connected.as_mut() else {
            return;
        };
        if c.generation != generation {
            return;
        }
        let Some(granter) = c.granter.as_mut() else {
            return;
        };
        granter.on_consumed(payload_len);
        if let Some(credit) = granter.poll_grant() {
            let result = Self::write(
                c,
                &Message::Credit(credit),
                &[],
                &self.cancel,
                self.write_timeout,
            );
            let _ = self.finish_write(&mut state, generation, result, 0);
        }
    }
}

/// A running worker; stopping it joins the thread.
pub struct Worker {
    outbox: Arc<Outbox>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    /// Binds/prepares the endpoint now (so errors show up in the state change) and starts
    /// the worker thread.
    pub fn start(
        config: Config,
        handler: Arc<dyn Handler>,
        stats: Arc<Stats>,
        debug_name: &str,
    ) -> std::io::Result<(Worker, Option<u16>)> {
        let rendezvous = Rendezvous::new(config.address.clone(), config.mode)?;
        let port = rendezvous.local_port();
        let outbox = Arc::new(Outbox {
            state: Mutex::new(OutboxState::default()),
            cond: Condvar::new(),
            cancel: Canceller::new()?,
            write_timeout: config.heartbeat_timeout,
            stats,
        });
        let thread_outbox = outbox.clone();
        let thread = std::thread::Builder::new()
            .name(format!("{debug_name}-io"))
            .spawn(move || run(config, rendezvous, handler, thread_outbox))?;
        Ok((
            Worker {
                outbox,
                thread: Some(thread),
            },
            port,
        ))
    }

    pub fn outbox(&self) -> &Arc<Outbox> {
        &self.outbox
    }

    /// Says goodbye to a connected peer, lets it read everything and close its end (bounded
    /// by `linger`), then stops the thread. Every wait in the worker is cancellable.
    pub fn stop(mut self, linger: Duration) {
        let mut state = self.outbox.lock();
        state.closing = true;
        if let Some(c) = state.connected.as_mut() {
            let bye = Message::Goodbye(Goodbye {
                reason: GoodbyeReason::NORMAL,
                message: "element stopped".into(),
            });
            if Outbox::write(c, &bye, &[], &self.outbox.cancel, linger).is_ok() {
                c.link.shutdown_write();
                let deadline = Instant::now() + linger;
                while state.connected.is_some() && Instant::now() < deadline {
                    state = self
                        .outbox
                        .cond
                        .wait_timeout(state, WAIT_SLICE)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
        drop(state);
        self.outbox.set_stopping();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.outbox.set_stopping();
            let _ = t.join();
        }
    }
}

fn run(config: Config, mut rendezvous: Rendezvous, handler: Arc<dyn Handler>, outbox: Arc<Outbox>) {
    let mut generation = 0u64;
    loop {
        {
            let state = outbox.lock();
            if state.stopping || state.closing {
                return;
            }
        }
        let link = match rendezvous.next_link(&outbox.cancel, Duration::from_secs(1)) {
            Ok(link) => link,
            Err(LinkError::TimedOut(_)) => continue,
            Err(LinkError::Cancelled) => return,
            Err(e) => {
                handler.protocol_error(
                    &format!("cannot reach the peer at {}: {e}", rendezvous.describe()),
                    !rendezvous.can_reconnect(),
                );
                if !rendezvous.can_reconnect() {
                    return;
                }
                std::thread::sleep(WAIT_SLICE);
                continue;
            }
        };
        generation += 1;
        let result = serve(&config, &link, generation, handler.as_ref(), &outbox);
        let was_connected = {
            let mut state = outbox.lock();
            let was = state
                .connected
                .take_if(|c| c.generation == generation)
                .is_some();
            outbox.cond.notify_all();
            was
        };
        link.shutdown();
        match result {
            Ok(reason) => {
                if was_connected {
                    handler.lost(generation, &reason);
                }
            }
            Err(SessionError::Link(LinkError::Cancelled)) => return,
            Err(SessionError::Protocol { source, .. }) => {
                let fatal = matches!(source, ProtocolError::VersionMismatch { .. })
                    || !rendezvous.can_reconnect();
                handler.protocol_error(
                    &format!("{} sent bad data: {source}", rendezvous.describe()),
                    fatal,
                );
                if was_connected {
                    handler.lost(generation, &source.to_string());
                }
                if fatal {
                    return;
                }
            }
            Err(e) => {
                if was_connected {
                    handler.lost(generation, &e.to_string());
                }
            }
        }
        if !rendezvous.can_reconnect() {
            return;
        }
        if config.mode == Mode::Connect {
            // Do not spin against a peer that accepts and drops at once.
            std::thread::sleep(WAIT_SLICE);
        }
    }
}

fn our_limits(config: &Config) -> Limits {
    Limits {
        max_body: Limits::default().max_body,
        max_payload: config.max_message_size,
    }
}

/// Runs one connection: handshake, then the read loop. `Ok(reason)` when the peer left.
fn serve(
    config: &Config,
    link: &Link,
    generation: u64,
    handler: &dyn Handler,
    outbox: &Outbox,
) -> Result<String, SessionError> {
    let peer = config.address.to_string();
    let protocol = |source| SessionError::Protocol {
        peer: peer.clone(),
        source,
    };
    let mut hello = Hello::new(config.role, rand_session_id(generation));
    hello.limits = our_limits(config);
    hello.heartbeat_interval_ms =
        u32::try_from(config.heartbeat_interval.as_millis()).unwrap_or(u32::MAX);
    hello.auth_token = config.auth_token.clone();
    let mut bytes = Vec::new();
    hello.encode(&mut bytes).map_err(protocol)?;
    link.write_all(&[&bytes], &outbox.cancel, config.heartbeat_timeout)?;

    let mut decoder = Decoder::new(config.role, our_limits(config));
    let mut chunk = vec![0u8; READ_CHUNK];
    let deadline = Instant::now() + config.heartbeat_timeout;
    let theirs = loop {
        if let Some(decoded) = decoder.poll().map_err(protocol)? {
            match decoded {
                Decoded::Hello(h) => break h,
                Decoded::Frame(_) => unreachable!("the decoder yields the hello first"),
            }
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(LinkError::TimedOut(config.heartbeat_timeout).into());
        }
        match link.read_some(&mut chunk, &outbox.cancel, remaining) {
            Ok(n) => {
                decoder.push(&chunk[..n]);
                Stats::add(&outbox.stats.bytes_received, n as u64);
            }
            Err(LinkError::Closed) => {
                decoder.finish().map_err(protocol)?;
                return Ok("peer closed during the handshake".into());
            }
            Err(e) => return Err(e.into()),
        }
    };
    let expected = config.auth_token.as_deref();
    let session = match negotiate(&hello, &theirs, expected) {
        Ok(s) => s,
        Err(e) => {
            let mut bye = Vec::new();
            let reason = match e {
                ProtocolError::AuthFailed { .. } => GoodbyeReason::AUTH_FAILED,
                _ => GoodbyeReason::INCOMPATIBLE,
            };
            let mut enc = Encoder::new(config.role, theirs.limits);
            let _ = enc.encode(
                STREAM_ID,
                &Message::Goodbye(Goodbye {
                    reason,
                    message: e.to_string(),
                }),
                &mut bye,
            );
            let _ = link.write_all(&[&bye], &outbox.cancel, Duration::from_millis(500));
            return Err(protocol(e));
        }
    };
    let credits_on = session.capabilities.contains(Capabilities::CREDITS);
    let mut granter = (config.role == Role::Src && credits_on)
        .then(|| CreditGranter::new(config.window_bytes, config.window_buffers));
    let initial_credit = granter.as_mut().map(|g| g.initial());
    {
        let mut state = outbox.lock();
        state.connected = Some(Connected {
            link: link.try_clone().map_err(LinkError::from)?,
            encoder: Encoder::new(config.role, session.peer_limits),
            generation,
            credits: if credits_on {
                CreditSender::new()
            } else {
                CreditSender::unlimited()
            },
            granter,
            scratch: Vec::with_capacity(64),
        });
        outbox.cond.notify_all();
    }
    Stats::add(&outbox.stats.connections, 1);
    if generation > 1 {
        Stats::add(&outbox.stats.reconnects, 1);
    }
    if let Some(credit) = initial_credit {
        let _ = outbox.send(&Message::Credit(credit));
    }
    handler.connected(generation, &session);

    let mut payloads = PayloadMemory::default();
    let mut liveness = Liveness::new(
        now_ns(),
        config.heartbeat_interval,
        config.heartbeat_timeout,
    );
    loop {
        // Dispatch everything decodable.
        while let Some(decoded) = decoder.poll().map_err(protocol)? {
            let Decoded::Frame(frame) = decoded else {
                return Err(protocol(ProtocolError::NoHandshake {
                    what: "a second hello arrived",
                }));
            };
            if let Some(reason) = dispatch(
                frame,
                &mut decoder,
                link,
                generation,
                handler,
                outbox,
                config,
                &mut liveness,
                &mut payloads,
            )? {
                return Ok(reason);
            }
        }
        if outbox.generation() != Some(generation) {
            return Ok("sending failed".into());
        }
        let now = now_ns();
        if liveness.peer_timed_out(now) {
            return Ok(format!(
                "no data or heartbeat from the peer for {:?}",
                config.heartbeat_timeout
            ));
        }
        if liveness.heartbeat_due(now) {
            let hb = liveness.heartbeat(now);
            let _ = outbox.send(&Message::Heartbeat(hb));
        }
        let wait = Duration::from_nanos(liveness.next_deadline().saturating_sub(now_ns()))
            .clamp(Duration::from_millis(1), WAIT_SLICE);
        match link.read_some(&mut chunk, &outbox.cancel, wait) {
            Ok(n) => {
                decoder.push(&chunk[..n]);
                liveness.on_received(now_ns());
                Stats::add(&outbox.stats.bytes_received, n as u64);
            }
            Err(LinkError::TimedOut(_)) => {}
            Err(LinkError::Closed) => {
                decoder.finish().map_err(protocol)?;
                return Ok("peer closed the connection".into());
            }
            Err(e) => return Err(e.into()),
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn dispatch(
    frame: Frame,
    decoder: &mut Decoder,
    link: &Link,
    generation: u64,
    handler: &dyn Handler,
    outbox: &Outbox,
    config: &Config,
    liveness: &mut Liveness,
    payloads: &mut PayloadMemory,
) -> Result<Option<String>, SessionError> {
    let protocol = |source| SessionError::Protocol {
        peer: config.address.to_string(),
        source,
    };
    match frame.message {
        Message::Buffer(header) => {
            {
                let mut state = outbox.lock();
                if let Some(g) = state
                    .connected
                    .as_mut()
                    .filter(|c| c.generation == generation)
                    .and_then(|c| c.granter.as_mut())
                {
                    g.on_received(header.payload_len).map_err(protocol)?;
                }
            }
            let len = usize::try_from(header.payload_len).map_err(|_| {
                protocol(ProtocolError::TooLarge {
                    field: "buffer.payload_len",
                    value: header.payload_len,
                    max: usize::MAX as u64,
                })
            })?;
            let mut buffer = payloads.acquire(len).ok_or_else(|| {
                LinkError::Io(std::io::Error::other(format!(
                    "cannot allocate {len} bytes"
                )))
            })?;
            {
                let buffer = buffer.get_mut().expect("fresh buffer is writable");
                let mut map = buffer
                    .map_writable()
                    .map_err(|_| LinkError::Io(std::io::Error::other("cannot map a new buffer")))?;
                let taken = decoder.take_payload(&mut map);
                // The rest goes from the socket straight into the buffer memory.
                let mut filled = taken;
                while filled < len {
                    match link.read_some(
                        &mut map[filled..],
                        &outbox.cancel,
                        config.heartbeat_timeout,
                    ) {
                        Ok(n) => filled += n,
                        Err(LinkError::Closed) => {
                            return Err(protocol(ProtocolError::UnexpectedEof {
                                what: "a buffer payload",
                                buffered: filled as u64,
                            }));
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                decoder
                    .consume_payload((len - taken) as u64)
                    .map_err(protocol)?;
                Stats::add(&outbox.stats.bytes_received, (len - taken) as u64);
            }
            liveness.on_received(now_ns());
            Stats::add(&outbox.stats.buffers_received, 1);
            handler.buffer(generation, header, buffer);
        }
        Message::Event(event) => {
            Stats::add(&outbox.stats.events_received, 1);
            handler.event(generation, event);
        }
        Message::ClientReport(report) => handler.report(report),
        Message::Credit(credit) => {
            let mut state = outbox.lock();
            if let Some(c) = state
                .connected
                .as_mut()
                .filter(|c| c.generation == generation)
            {
                c.credits.on_credit(&credit);
                let (bytes, buffers) = c.credits.available();
                outbox.stats.credits_bytes.store(bytes, Relaxed);
                outbox.stats.credits_buffers.store(buffers, Relaxed);
            }
            outbox.cond.notify_all();
        }
        Message::Heartbeat(hb) => {
            if let Some(rtt) = liveness.on_heartbeat(&hb, now_ns()) {
                outbox
                    .stats
                    .rtt_ns
                    .store(u64::try_from(rtt.as_nanos()).unwrap_or(u64::MAX), Relaxed);
            }
        }
        Message::Goodbye(bye) => {
            return Ok(Some(format!(
                "peer said goodbye ({}): {}",
                bye.reason, bye.message
            )));
        }
        Message::WindowGeometry(_) => {}
    }
    Ok(None)
}

/// Memory for received payloads. Big payloads of a recurring size (raw video) come from a
/// buffer pool, so the kernel copies into pages that are already mapped instead of
/// page-faulting a fresh multi-megabyte allocation per frame.
#[derive(Default)]
struct PayloadMemory {
    pool: Option<(usize, gst::BufferPool)>,
}

/// Below this, plain allocations are cheap enough.
const POOL_MIN_SIZE: usize = 256 * 1024;

impl PayloadMemory {
    fn acquire(&mut self, len: usize) -> Option<gst::Buffer> {
        if len < POOL_MIN_SIZE {
            return gst::Buffer::with_size(len).ok();
        }
        if self.pool.as_ref().map(|(size, _)| *size) != Some(len) {
            if let Some((_, old)) = self.pool.take() {
                let _ = old.set_active(false);
            }
            let pool = gst::BufferPool::new();
            let mut config = pool.config();
            config.set_params(None, u32::try_from(len).ok()?, 2, 0);
            pool.set_config(config).ok()?;
            pool.set_active(true).ok()?;
            self.pool = Some((len, pool));
        }
        let (_, pool) = self.pool.as_ref()?;
        pool.acquire_buffer(None).ok()
    }
}

impl Drop for PayloadMemory {
    fn drop(&mut self) {
        if let Some((_, pool)) = self.pool.take() {
            let _ = pool.set_active(false);
        }
    }
}

/// A session id that differs on every connection (and between processes).
fn rand_session_id(generation: u64) -> u64 {
    let pid = u64::from(std::process::id());
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default();
    t ^ (pid << 32) ^ generation.rotate_left(17)
}

/// Counter of sent events (kept here so both elements count the same way).
pub fn count_event(outbox: &Outbox) {
    Stats::add(&outbox.stats.events_sent, 1);
}
