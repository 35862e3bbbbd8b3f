// SPDX-License-Identifier: MPL-2.0
//! The sending half: any thread sends through it; buffers wait for credits.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use spicepass_protocol::{BufferHeader, CreditGranter, CreditSender, Encoder, Message};

use super::{STREAM_ID, WAIT_SLICE};
use crate::stats::Stats;
use crate::transport::{Canceller, Link};

pub(super) struct Connected {
    pub(super) link: Link,
    pub(super) encoder: Encoder,
    pub(super) generation: u64,
    pub(super) credits: CreditSender,
    pub(super) granter: Option<CreditGranter>,
    pub(super) scratch: Vec<u8>,
    /// Sink, shared memory negotiated: announced segments and buffers the src holds.
    pub(super) shm_send: Option<super::shared::ShmSend>,
    /// Src: released shared-buffer ids not written yet.
    pub(super) pending_releases: Vec<u64>,
}

#[derive(Default)]
pub(super) struct OutboxState {
    pub(super) connected: Option<Connected>,
    pub(super) flushing: bool,
    pub(super) stopping: bool,
    /// Goodbye sent: finish the current connection, do not make another.
    pub(super) closing: bool,
    /// Generation of the last connection that passed the handshake. A failed write may
    /// drop `connected` before the worker notices; this still says it was connected.
    pub(super) last_connected: u64,
}

/// The sending half, shared by the streaming thread, event handlers and the worker.
pub struct Outbox {
    pub(super) state: Mutex<OutboxState>,
    pub(super) cond: Condvar,
    pub(super) cancel: Canceller,
    pub(super) write_timeout: Duration,
    pub(super) stats: Arc<Stats>,
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
pub(super) enum WriteError {
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
    pub(super) fn lock(&self) -> MutexGuard<'_, OutboxState> {
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

    pub(super) fn set_stopping(&self) {
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
        before_send: impl FnMut(u64) -> bool,
    ) -> Result<u64, SendError> {
        self.send_buffer_with(
            header,
            when_disconnected,
            before_send,
            |c, cancel, timeout| {
                Self::write(c, &Message::Buffer(*header), payload, cancel, timeout)
                    .map(|()| payload.len())
            },
        )
    }

    /// The credit and peer waits of every buffer send; `write` puts the frame(s) on the
    /// link and returns the payload bytes it wrote.
    pub(super) fn send_buffer_with(
        &self,
        header: &BufferHeader,
        when_disconnected: WhenDisconnected,
        mut before_send: impl FnMut(u64) -> bool,
        write: impl FnOnce(&mut Connected, &Canceller, Duration) -> Result<usize, WriteError>,
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
        let result = write(c, &self.cancel, self.write_timeout);
        let payload_len = *result.as_ref().unwrap_or(&0);
        if result.is_ok() {
            c.credits.on_sent(header.payload_len);
            let (bytes, buffers) = c.credits.available();
            self.stats.credits_bytes.store(bytes, Relaxed);
            self.stats.credits_buffers.store(buffers, Relaxed);
            Stats::add(&self.stats.buffers_sent, 1);
        }
        self.finish_write(&mut state, generation, result.map(drop), payload_len)
            .map(|_| generation)
    }

    pub(super) fn write(
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

    pub(super) fn finish_write(
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

/// Counter of sent events (kept here so both elements count the same way).
pub fn count_event(outbox: &Outbox) {
    Stats::add(&outbox.stats.events_sent, 1);
}
