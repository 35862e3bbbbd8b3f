// SPDX-License-Identifier: MPL-2.0
//! The worker thread: (re)connect, handshake, read and dispatch, heartbeats, liveness.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use spicepass_protocol::{
    Capabilities, CreditGranter, CreditSender, Decoded, Decoder, Encoder, Frame, Goodbye,
    GoodbyeReason, Hello, Limits, Liveness, Message, ProtocolError, Role, negotiate,
};

use super::outbox::Outbox;
use super::outbox::{Connected, OutboxState};
use super::payload::PayloadMemory;
use super::shared::{SharedBytes, ShmSend};
use super::{Config, Handler, READ_CHUNK, STREAM_ID, SessionError, WAIT_SLICE, now_ns};
use crate::shm::{ReceivedSegments, ShmError};
use crate::stats::Stats;
use crate::transport::{Canceller, Link, LinkError, Mode, Rendezvous};

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
        if !handler.accepts_sessions() {
            // Not dialling or accepting leaves the next guest waiting for the next client.
            std::thread::sleep(WAIT_SLICE);
            continue;
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
        // A dead connection's shared buffers come back only now (the Connected was dropped
        // above): wake a send waiting for a free slot.
        outbox.cond.notify_all();
        let was_connected = {
            let mut state = outbox.lock();
            let was = state.last_connected == generation;
            state.connected.take_if(|c| c.generation == generation);
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
            Err(SessionError::Refused(why)) => {
                // A client cannot fix this by retrying; a guest keeps waiting for another.
                let fatal = config.role == Role::Src || !rendezvous.can_reconnect();
                handler.protocol_error(
                    &format!("{} refused the session: {why}", rendezvous.describe()),
                    fatal,
                );
                if was_connected {
                    handler.lost(generation, &why);
                }
                if fatal {
                    return;
                }
            }
            Err(SessionError::Shm { source, .. }) => {
                let fatal = !rendezvous.can_reconnect();
                handler.protocol_error(
                    &format!("{} sent bad shared memory: {source}", rendezvous.describe()),
                    fatal,
                );
                if was_connected {
                    handler.lost(generation, &source.to_string());
                }
                if fatal {
                    return;
                }
            }
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
    outbox: &Arc<Outbox>,
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
    if !(config.shared_memory && link.passes_fds()) {
        hello.capabilities.0 &= !Capabilities::MEMFD_PAYLOADS.0;
    }
    let mut bytes = Vec::new();
    hello.encode(&mut bytes).map_err(protocol)?;
    link.write_all(&[&bytes], &outbox.cancel, config.heartbeat_timeout)?;

    let mut decoder = Decoder::new(config.role, our_limits(config));
    let mut chunk = vec![0u8; READ_CHUNK];
    // A src on a unix socket collects fds from the first byte on, so none can be lost
    // whatever arrives together with the hello.
    let mut segments = ReceivedSegments::default();
    let collect_fds = config.role == Role::Src && config.shared_memory && link.passes_fds();
    let deadline = Instant::now() + config.heartbeat_timeout;
    let mut hello_bytes = 0usize;
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
        let read = if collect_fds {
            link.read_some_with_fds(&mut chunk, segments.fd_queue(), &outbox.cancel, remaining)
        } else {
            link.read_some(&mut chunk, &outbox.cancel, remaining)
        };
        match read {
            Ok(n) => {
                decoder.push(&chunk[..n]);
                hello_bytes += n;
                Stats::add(&outbox.stats.bytes_received, n as u64);
            }
            // A relay in front of the peer (a SPICE proxy, an SSH tunnel) accepts and then
            // hangs up while its far end is not there yet: nothing was said, so that is "no
            // peer yet", retried. Only a hello cut short is bad data.
            Err(LinkError::Closed) if hello_bytes == 0 => {
                return Ok("peer closed before its hello".into());
            }
            Err(LinkError::Closed) => {
                decoder.finish().map_err(protocol)?;
                return Ok("peer closed during the handshake".into());
            }
            Err(e @ LinkError::TooManyFds) => {
                return Err(SessionError::Shm {
                    peer: peer.clone(),
                    source: ShmError::FdsTruncated(e),
                });
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
    let shm_on = session.capabilities.contains(Capabilities::MEMFD_PAYLOADS);
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
            shm_send: (shm_on && config.role == Role::Sink).then(ShmSend::default),
            pending_releases: Vec::new(),
        });
        state.last_connected = generation;
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
    let shm_receive = shm_on && config.role == Role::Src;
    let shm_error = |source| SessionError::Shm {
        peer: peer.clone(),
        source,
    };
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
                shm_receive.then_some(&mut segments),
            )? {
                return Ok(reason);
            }
        }
        segments.check_pending().map_err(shm_error)?;
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
        let read = if shm_receive {
            link.read_some_with_fds(&mut chunk, segments.fd_queue(), &outbox.cancel, wait)
        } else {
            link.read_some(&mut chunk, &outbox.cancel, wait)
        };
        match read {
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
            Err(e @ LinkError::TooManyFds) => {
                return Err(SessionError::Shm {
                    peer: peer.clone(),
                    source: ShmError::FdsTruncated(e),
                });
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
    outbox: &Arc<Outbox>,
    config: &Config,
    liveness: &mut Liveness,
    payloads: &mut PayloadMemory,
    segments: Option<&mut ReceivedSegments>,
) -> Result<Option<String>, SessionError> {
    let protocol = |source| SessionError::Protocol {
        peer: config.address.to_string(),
        source,
    };
    let shm_error = |source| SessionError::Shm {
        peer: config.address.to_string(),
        source,
    };
    match frame.message {
        Message::Buffer(header) => {
            receive_credit(outbox, generation, header.payload_len).map_err(protocol)?;
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
            let refused = [
                GoodbyeReason::AUTH_FAILED,
                GoodbyeReason::INCOMPATIBLE,
                GoodbyeReason::PROTOCOL_ERROR,
            ];
            if refused.contains(&bye.reason) {
                return Err(SessionError::Refused(format!(
                    "{}: {}",
                    bye.reason, bye.message
                )));
            }
            return Ok(Some(format!(
                "peer said goodbye ({}): {}",
                bye.reason, bye.message
            )));
        }
        Message::WindowGeometry(geometry) => handler.window_geometry(generation, geometry),
        Message::Segment(segment) => {
            let segments = segments.ok_or(shm_error(ShmError::NotNegotiated("a segment")))?;
            segments.announce(&segment).map_err(shm_error)?;
        }
        Message::RetireSegment(retire) => {
            let segments = segments.ok_or(shm_error(ShmError::NotNegotiated("a segment")))?;
            segments.retire(retire.segment).map_err(shm_error)?;
        }
        Message::SharedBuffer(shared) => {
            let segments = segments.ok_or(shm_error(ShmError::NotNegotiated("a shared buffer")))?;
            let range = segments.range(&shared).map_err(shm_error)?;
            receive_credit(outbox, generation, shared.header.payload_len).map_err(protocol)?;
            let bytes = SharedBytes::new(range, shared.buffer_id, generation, outbox);
            // From here on, dropping the buffer releases it to the guest.
            let buffer = gst::Buffer::from_slice(bytes);
            liveness.on_received(now_ns());
            Stats::add(&outbox.stats.buffers_received, 1);
            handler.buffer(generation, shared.header, buffer);
        }
        Message::Release(release) => {
            let mut freed = Vec::with_capacity(release.buffer_ids.len());
            {
                let mut state = outbox.lock();
                let shm = state
                    .connected
                    .as_mut()
                    .filter(|c| c.generation == generation)
                    .and_then(|c| c.shm_send.as_mut())
                    .ok_or(shm_error(ShmError::NotNegotiated("a release")))?;
                for id in release.buffer_ids {
                    freed.push(
                        shm.outstanding
                            .release(id)
                            .map_err(|e| shm_error(e.into()))?,
                    );
                }
                outbox.cond.notify_all();
            }
            // Back to their pools outside the lock.
            drop(freed);
        }
    }
    Ok(None)
}

/// Src: charges a received buffer to the credit window (a sender past its grant is a
/// protocol error).
fn receive_credit(outbox: &Outbox, generation: u64, payload_len: u64) -> Result<(), ProtocolError> {
    let mut state = outbox.lock();
    if let Some(g) = state
        .connected
        .as_mut()
        .filter(|c| c.generation == generation)
        .and_then(|c| c.granter.as_mut())
    {
        g.on_received(payload_len)?;
    }
    Ok(())
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
