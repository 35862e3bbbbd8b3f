// SPDX-License-Identifier: MPL-2.0
//! Sending buffers and events to every reader (the render side of the hub).

use std::collections::HashSet;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use gst::glib::translate::IntoGlib;
use shmzero_core::{
    BufferDescriptor, ChannelError, EventMessage, Message, NewSegment, ReaderId, SegmentId, SlotId,
};

use super::{AcquireError, CAT, FOREIGN_SEGMENT_BASE, ForeignHold, Hub, Inner, Located};

impl Hub {
    /// Finds the slot holding `ptr..ptr+len`, if those bytes are in one of our segments.
    fn locate(inner: &Inner, ptr: *const u8, len: usize) -> Option<Located> {
        let addr = ptr as usize;
        for (id, segment) in &inner.segments {
            let base = segment.as_ptr() as usize;
            let size = segment.size() as usize;
            if addr < base || addr.checked_add(len)? > base + size {
                continue;
            }
            let offset = (addr - base) as u64;
            let layout = inner.table.layout(*id)?;
            let index = u32::try_from(offset / layout.stride).ok()?;
            let slot_end = layout.slot_offset(index) + layout.slot_size;
            if offset + len as u64 > slot_end {
                return None;
            }
            return Some(Located {
                slot: SlotId {
                    segment: *id,
                    index,
                },
                offset,
            });
        }
        None
    }

    /// Sends `memory` (already in one of our slots) to every reader with credit left.
    /// Returns false if the bytes are not ours.
    pub fn publish_in_place(&self, memory: &gst::MemoryRef, template: &BufferDescriptor) -> bool {
        let Ok(map) = memory.map_readable() else {
            return false;
        };
        let mut inner = self.lock();
        let Some(located) = Self::locate(&inner, map.as_ptr(), map.len()) else {
            return false;
        };
        let descriptor = BufferDescriptor {
            segment: located.slot.segment,
            offset: located.offset,
            size: map.len() as u64,
            ..*template
        };
        self.publish_slot(&mut inner, located.slot, descriptor);
        self.post_pending(inner);
        true
    }

    /// Copies `buffer` into a slot and sends it. Blocks (bounded) for a free slot.
    pub fn publish_copy(
        self: &Arc<Self>,
        buffer: &gst::BufferRef,
        template: &BufferDescriptor,
    ) -> Result<(), AcquireError> {
        let size = buffer.size() as u64;
        let segment = {
            let current = self.lock().copy_segment;
            match current {
                Some((segment, slot_size)) if slot_size >= size => segment,
                _ => {
                    if let Some((old, _)) = current {
                        self.retire_segment(old);
                    }
                    let n_slots = self.config.max_buffers.max(2);
                    let segment = self
                        .add_segment(size.max(1), n_slots, 64)
                        .map_err(AcquireError::Failed)?;
                    self.lock().copy_segment = Some((segment, size.max(1)));
                    segment
                }
            }
        };
        let mut held = self.acquire(segment, false, &AtomicBool::new(false))?;
        let dest = &mut held.as_mut()[..buffer.size()];
        buffer
            .copy_to_slice(0, dest)
            .map_err(|n| AcquireError::Failed(format!("buffer copy stopped after {n} bytes")))?;
        let offset = {
            let inner = self.lock();
            inner
                .table
                .layout(segment)
                .map(|l| l.slot_offset(held.slot.index))
                .unwrap_or(0)
        };
        let descriptor = BufferDescriptor {
            segment,
            offset,
            size,
            ..*template
        };
        let mut inner = self.lock();
        self.publish_slot(&mut inner, held.slot, descriptor);
        self.post_pending(inner);
        // `held` drops here: the writer's hold ends, readers keep theirs.
        Ok(())
    }

    fn publish_slot(&self, inner: &mut Inner, slot: SlotId, mut descriptor: BufferDescriptor) {
        let n_readers = inner.readers.len() as u64;
        let (buffer_id, receivers) = match inner.table.publish(slot, Instant::now()) {
            Ok(published) => published,
            Err(err) => {
                gst::error!(CAT, "publishing {slot:?}: {err}");
                return;
            }
        };
        descriptor.buffer = buffer_id;
        let message = Message::Buffer(descriptor);
        let mut sent = 0u64;
        for reader in receivers {
            let Some(conn) = inner.readers.get(&reader) else {
                continue;
            };
            match conn.channel.try_send(&message, None) {
                Ok(()) => sent += 1,
                Err(err) => {
                    if let Ok(reclaimed) = inner.table.cancel(reader, buffer_id) {
                        Self::settle(inner, reclaimed);
                    }
                    self.drop_reader(
                        inner,
                        reader,
                        &format!("sending a buffer failed: {err}"),
                        None,
                    );
                }
            }
        }
        self.stats.count_delivery(sent, n_readers);
    }

    /// Sends upstream fd memory by passing its fd (no copy). Returns false when the fd cannot
    /// be passed safely (neither a DMABuf nor a memfd sealed against shrinking), so the caller copies instead.
    pub fn publish_fd(
        &self,
        buffer: &gst::Buffer,
        fd: BorrowedFd<'_>,
        memory_offset: u64,
        memory_size: u64,
        template: &BufferDescriptor,
    ) -> bool {
        let fd_size = match shmzero_core::shareable_fd::classify(fd) {
            Ok(shareable) => shareable.size,
            Err(err) => {
                gst::debug!(
                    CAT,
                    "fd {} cannot be passed, copying: {err}",
                    fd.as_raw_fd()
                );
                return false;
            }
        };
        if memory_offset.saturating_add(memory_size) > fd_size {
            gst::debug!(
                CAT,
                "fd {} holds {fd_size} bytes, less than the memory's {memory_offset}+{memory_size}, copying",
                fd.as_raw_fd()
            );
            return false;
        }
        let mut inner = self.lock();
        let segment = SegmentId(inner.next_foreign_segment);
        inner.next_foreign_segment = inner
            .next_foreign_segment
            .wrapping_add(1)
            .max(FOREIGN_SEGMENT_BASE);
        let buffer_id = inner.table.next_buffer_id();
        let descriptor = BufferDescriptor {
            buffer: buffer_id,
            segment,
            offset: memory_offset,
            size: memory_size,
            ..*template
        };
        let announce = Message::NewSegment(NewSegment {
            segment,
            size: fd_size,
        });
        let n_readers = inner.readers.len() as u64;
        let candidates: Vec<ReaderId> = inner
            .readers
            .iter()
            .filter(|(id, conn)| {
                let slots = inner.table.reader_stats(**id).map_or(0, |s| s.in_flight);
                slots + conn.foreign_in_flight < conn.credit
            })
            .map(|(id, _)| *id)
            .collect();
        let mut holders = HashSet::new();
        for reader in candidates {
            let Some(conn) = inner.readers.get(&reader) else {
                continue;
            };
            let result = conn
                .channel
                .try_send(&announce, Some(fd))
                .and_then(|()| conn.channel.try_send(&Message::Buffer(descriptor), None))
                .and_then(|()| {
                    conn.channel
                        .try_send(&Message::RetireSegment(segment), None)
                });
            match result {
                Ok(()) => {
                    holders.insert(reader);
                    if let Some(conn) = inner.readers.get_mut(&reader) {
                        conn.foreign_in_flight += 1;
                    }
                }
                Err(err) => {
                    let why = format!("sending an fd buffer failed: {err}");
                    self.drop_reader(&mut inner, reader, &why, None)
                }
            }
        }
        let sent = holders.len() as u64;
        if !holders.is_empty() {
            inner.foreign.insert(
                buffer_id,
                ForeignHold {
                    _buffer: buffer.clone(),
                    holders,
                },
            );
        }
        self.stats.count_delivery(sent, n_readers);
        self.post_pending(inner);
        true
    }

    /// Forwards an event to every reader and remembers it if sticky (for late joiners).
    pub fn send_event(&self, event: &EventMessage, is_flush_stop_or_stream_start: bool) {
        let mut inner = self.lock();
        if is_flush_stop_or_stream_start {
            // As a GStreamer pad does: a flush or a new stream ends the old EOS and segment.
            inner
                .sticky
                .remove_type(gst::EventType::Eos.into_glib() as u32);
            inner
                .sticky
                .remove_type(gst::EventType::Segment.into_glib() as u32);
        }
        inner.sticky.store(event);
        self.broadcast(&mut inner, &Message::Event(event.clone()), None);
        self.post_pending(inner);
    }

    /// Sends `message` to every reader; a reader that cannot take it is dropped (it would
    /// otherwise miss a segment or an event and go out of sync).
    pub(super) fn broadcast(
        &self,
        inner: &mut Inner,
        message: &Message,
        fd: Option<BorrowedFd<'_>>,
    ) {
        let failed: Vec<(ReaderId, ChannelError)> = inner
            .readers
            .iter()
            .filter_map(|(id, conn)| conn.channel.try_send(message, fd).err().map(|e| (*id, e)))
            .collect();
        for (reader, err) in failed {
            let why = format!("sending {:?} failed: {err}", message.kind());
            self.drop_reader(inner, reader, &why, None);
        }
    }

    /// Blocks until a reader is connected, the hub flushes, or `timeout` passes.
    /// Returns whether a reader is there.
    pub fn wait_for_reader(&self, timeout: Option<Duration>) -> Result<bool, AcquireError> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut inner = self.lock();
        loop {
            if !inner.readers.is_empty() {
                return Ok(true);
            }
            if inner.flushing {
                return Err(AcquireError::Flushing);
            }
            let step = Duration::from_millis(100);
            let wait = match deadline {
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Ok(false);
                    }
                    (deadline - now).min(step)
                }
                None => step,
            };
            inner = self
                .changed
                .wait_timeout(inner, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Waits until every reader has credit left, at most `timeout` (after which the caller
    /// publishes anyway: the full reader misses the frame and the slow-reader timeout deals
    /// with it). This is the opt-in back-pressure mode for non-live pipelines.
    pub fn wait_for_credit(&self, timeout: Duration) -> Result<(), AcquireError> {
        let deadline = Instant::now() + timeout;
        let mut inner = self.lock();
        loop {
            if inner.flushing {
                return Err(AcquireError::Flushing);
            }
            let all_have_credit = inner.readers.iter().all(|(id, conn)| {
                let slots = inner.table.reader_stats(*id).map_or(0, |s| s.in_flight);
                slots + conn.foreign_in_flight < conn.credit
            });
            let now = Instant::now();
            if all_have_credit || now >= deadline {
                return Ok(());
            }
            inner = self
                .changed
                .wait_timeout(inner, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}
