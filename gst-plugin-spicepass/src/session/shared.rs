// SPDX-License-Identifier: MPL-2.0
//! The session's shared-memory paths (capability `MEMFD_PAYLOADS`): the sink sends a
//! buffer as a reference into a sealed memfd segment (announcing the segment with its fd
//! once per connection) and keeps the memory until the src releases it; the src wraps the
//! mapped bytes as read-only buffer memory that releases itself when freed.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use shmzero_core::{MappedRange, WriterSegment};
use spicepass_protocol::{BufferHeader, Message, Release, RetireSegment, Segment, SharedBuffer};

use super::outbox::{Connected, Outbox, SendError, WhenDisconnected, WriteError};
use super::{STREAM_ID, WAIT_SLICE};
use crate::shm::Outstanding;
use crate::stats::Stats;
use crate::transport::Canceller;

/// Sink side, per connection that negotiated shared memory.
#[derive(Default)]
pub(super) struct ShmSend {
    /// Segments announced on this connection; a dead one is retired before the next send.
    announced: HashMap<u32, Weak<WriterSegment>>,
    /// Buffers the src holds: keeping them keeps their slot from being written again.
    pub(super) outstanding: Outstanding<gst::Buffer>,
}

/// A payload already in a segment: `hold` keeps it alive (and its pool slot taken).
pub struct SharedPayload {
    pub hold: gst::Buffer,
    pub segment: Arc<WriterSegment>,
    pub offset: u64,
}

impl Outbox {
    /// Whether the current connection takes shared-memory payloads.
    pub fn shared_memory(&self) -> bool {
        self.lock()
            .connected
            .as_ref()
            .is_some_and(|c| c.shm_send.is_some())
    }

    /// Sends a buffer whose payload lies in a segment (credits and the disconnected policy
    /// as for [`Outbox::send_buffer`]). If the connection changed meanwhile to a peer
    /// without shared memory, the payload goes inline instead.
    pub fn send_shared_buffer(
        &self,
        header: &BufferHeader,
        payload: SharedPayload,
        when_disconnected: WhenDisconnected,
        before_send: impl FnMut(u64) -> bool,
    ) -> Result<u64, SendError> {
        self.send_buffer_with(
            header,
            when_disconnected,
            before_send,
            |c, cancel, timeout| {
                if c.shm_send.is_some() {
                    write_shared(c, header, &payload, cancel, timeout).map(|()| 0)
                } else {
                    let map = payload
                        .hold
                        .map_readable()
                        .map_err(|_| WriteError::Encode("cannot map a shared buffer".into()))?;
                    Self::write(c, &Message::Buffer(*header), &map, cancel, timeout)
                        .map(|()| map.len())
                }
            },
        )
    }

    /// Waits (at most [`WAIT_SLICE`]) for the src to release something, so a full copy
    /// pool can be tried again; fails when flushing, stopping or not connected.
    pub fn wait_for_release(&self) -> Result<(), SendError> {
        let state = self.lock();
        if state.stopping {
            return Err(SendError::Stopping);
        }
        if state.flushing {
            return Err(SendError::Flushing);
        }
        if state.connected.is_none() {
            return Err(SendError::NotConnected);
        }
        let _ = self
            .cond
            .wait_timeout(state, WAIT_SLICE)
            .unwrap_or_else(|e| e.into_inner());
        Ok(())
    }

    /// Src side: the buffer `buffer_id` of connection `generation` is free again. Ids
    /// freed while a release is being written go out together in the next one.
    pub(super) fn release(&self, generation: u64, buffer_id: u64) {
        let mut state = self.lock();
        let Some(c) = state
            .connected
            .as_mut()
            .filter(|c| c.generation == generation)
        else {
            // That connection is gone: its sender already took everything back.
            return;
        };
        c.pending_releases.push(buffer_id);
        let buffer_ids = std::mem::take(&mut c.pending_releases);
        let result = Self::write(
            c,
            &Message::Release(Release { buffer_ids }),
            &[],
            &self.cancel,
            self.write_timeout,
        );
        let _ = self.finish_write(&mut state, generation, result, 0);
    }
}

fn write_shared(
    c: &mut Connected,
    header: &BufferHeader,
    payload: &SharedPayload,
    cancel: &Canceller,
    timeout: Duration,
) -> Result<(), WriteError> {
    let shm = c.shm_send.as_mut().expect("checked by the caller");
    let dead: Vec<u32> = shm
        .announced
        .iter()
        .filter(|(_, segment)| segment.strong_count() == 0)
        .map(|(&id, _)| id)
        .collect();
    let segment_id = payload.segment.id().0;
    let announce = !shm.announced.contains_key(&segment_id);
    for segment in dead {
        if let Some(shm) = c.shm_send.as_mut() {
            shm.announced.remove(&segment);
        }
        Outbox::write(
            c,
            &Message::RetireSegment(RetireSegment { segment }),
            &[],
            cancel,
            timeout,
        )?;
    }
    if announce {
        c.scratch.clear();
        let segment = Message::Segment(Segment {
            segment: segment_id,
            size: payload.segment.size(),
        });
        c.encoder
            .encode(STREAM_ID, &segment, &mut c.scratch)
            .map_err(|e| WriteError::Encode(format!("cannot encode a segment: {e}")))?;
        c.link
            .write_all_with_fd(
                &[&c.scratch],
                Some(payload.segment.share_fd()),
                cancel,
                timeout,
            )
            .map_err(|e| WriteError::Link(e.to_string()))?;
        if let Some(shm) = c.shm_send.as_mut() {
            shm.announced
                .insert(segment_id, Arc::downgrade(&payload.segment));
        }
    }
    let buffer_id = c
        .shm_send
        .as_ref()
        .map_or(0, |shm| shm.outstanding.next_id());
    let message = Message::SharedBuffer(SharedBuffer {
        header: *header,
        buffer_id,
        segment: segment_id,
        offset: payload.offset,
    });
    Outbox::write(c, &message, &[], cancel, timeout)?;
    if let Some(shm) = c.shm_send.as_mut() {
        shm.outstanding.insert(payload.hold.clone());
    }
    Ok(())
}

/// Src side: a received buffer's bytes where the guest's segment is mapped (read-only).
/// Dropping the last reference releases the buffer to the guest.
pub(super) struct SharedBytes {
    range: MappedRange,
    buffer_id: u64,
    generation: u64,
    outbox: Weak<Outbox>,
}

impl SharedBytes {
    pub(super) fn new(
        range: MappedRange,
        buffer_id: u64,
        generation: u64,
        outbox: &Arc<Outbox>,
    ) -> Self {
        Stats::add(&outbox.stats.shm_buffers_received, 1);
        SharedBytes {
            range,
            buffer_id,
            generation,
            outbox: Arc::downgrade(outbox),
        }
    }
}

impl AsRef<[u8]> for SharedBytes {
    fn as_ref(&self) -> &[u8] {
        self.range.as_ref()
    }
}

impl Drop for SharedBytes {
    fn drop(&mut self) {
        if let Some(outbox) = self.outbox.upgrade() {
            outbox.release(self.generation, self.buffer_id);
        }
    }
}
