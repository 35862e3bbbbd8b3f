// SPDX-License-Identifier: MPL-2.0
//! The writer's shared state: segments, the slot table, connected readers and the sticky
//! events, behind one lock. Used by the buffer pool (slots for upstream), the sink's render
//! (publishing buffers and events) and the sink's connection thread (readers coming, going and
//! releasing buffers).
//!
//! Nothing here blocks on a reader: every send is non-blocking, and a reader whose socket is
//! full or broken is dropped (its references reclaimed at once) rather than waited for.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gst::glib;
use gst::glib::translate::IntoGlib;
use gst::prelude::*;
use shmzero_core::{
    BufferDescriptor, BufferId, Channel, ChannelError, EventMessage, Goodbye, GoodbyeReason, Hello,
    Message, NewSegment, PeerCredentials, ReaderId, Reclaimed, SegmentId, SlotId, SlotMemory,
    SlotTable, StickyEvents, WriterSegment,
};

use crate::stats::WriterStats;

static CAT: std::sync::LazyLock<gst::DebugCategory> = std::sync::LazyLock::new(|| {
    gst::DebugCategory::new(
        "shmzerohub",
        gst::DebugColorFlags::empty(),
        Some("shmzero writer state"),
    )
});

/// Segment ids for fd memory that upstream brought itself live in their own range, so they
/// never collide with the slot table's ids (which count up from 0).
const FOREIGN_SEGMENT_BASE: u32 = 0x8000_0000;

#[derive(Debug, Clone)]
pub struct HubConfig {
    pub max_in_flight: u32,
    pub slow_reader_timeout: Option<Duration>,
    pub max_buffers: u32,
    /// Longest wait for a free slot before upstream gets an error.
    pub acquire_timeout: Duration,
}

/// Why no slot was handed out.
#[derive(Debug, thiserror::Error)]
pub enum AcquireError {
    #[error("flushing")]
    Flushing,
    #[error("no free slot right now")]
    WouldBlock,
    #[error("no slot became free within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Failed(String),
}

struct ReaderConn {
    channel: Arc<Channel>,
    credentials: PeerCredentials,
    credit: u32,
    /// Fd-passed buffers this reader holds (the slot table counts only slot buffers).
    foreign_in_flight: u32,
}

/// A buffer of upstream fd memory sent by fd: kept alive until every reader released it.
struct ForeignHold {
    _buffer: gst::Buffer,
    holders: HashSet<ReaderId>,
}

struct Inner {
    table: SlotTable,
    /// Every segment the table knows (active, or retired with slots in flight).
    segments: HashMap<SegmentId, Arc<WriterSegment>>,
    /// Segments still handing out slots (announced to newly connecting readers).
    active: Vec<SegmentId>,
    readers: BTreeMap<ReaderId, ReaderConn>,
    sticky: StickyEvents,
    flushing: bool,
    /// Segment used to copy foreign memory into, with its slot size.
    copy_segment: Option<(SegmentId, u64)>,
    foreign: HashMap<BufferId, ForeignHold>,
    next_foreign_segment: u32,
    /// Bus messages to post once the lock is released.
    pending_messages: Vec<gst::Structure>,
}

pub struct Hub {
    inner: Mutex<Inner>,
    /// Signalled when a slot is freed, a reader comes or goes, or flushing changes.
    changed: Condvar,
    pub stats: WriterStats,
    pub config: HubConfig,
    element: glib::WeakRef<gst::Element>,
    debug_name: String,
}

/// A slot taken for the writer, as writable bytes; dropping it gives the writer's hold back.
/// Wrapped in `gst::Memory::from_mut_slice` by the pool.
pub struct HeldSlot {
    memory: Option<SlotMemory>,
    slot: SlotId,
    hub: Arc<Hub>,
}

impl AsRef<[u8]> for HeldSlot {
    fn as_ref(&self) -> &[u8] {
        self.memory.as_ref().map_or(&[], |m| m.as_ref())
    }
}

impl AsMut<[u8]> for HeldSlot {
    fn as_mut(&mut self) -> &mut [u8] {
        self.memory.as_mut().map_or(&mut [], |m| m.as_mut())
    }
}

impl Drop for HeldSlot {
    fn drop(&mut self) {
        // Unclaim the bytes before the slot can be handed out again.
        drop(self.memory.take());
        self.hub.writer_release(self.slot);
    }
}

/// Where a buffer's bytes already live in one of our segments.
struct Located {
    slot: SlotId,
    offset: u64,
}

impl Hub {
    pub fn new(config: HubConfig, element: &gst::Element) -> Arc<Self> {
        Arc::new(Hub {
            inner: Mutex::new(Inner {
                table: SlotTable::new(),
                segments: HashMap::new(),
                active: Vec::new(),
                readers: BTreeMap::new(),
                sticky: StickyEvents::new(),
                flushing: false,
                copy_segment: None,
                foreign: HashMap::new(),
                next_foreign_segment: FOREIGN_SEGMENT_BASE,
                pending_messages: Vec::new(),
            }),
            changed: Condvar::new(),
            stats: WriterStats::default(),
            config,
            element: element.downgrade(),
            debug_name: format!("shmzero-{}", element.name()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Posts the bus messages queued while the lock was held. Never call with the lock held:
    /// a bus sync handler may call back into the element.
    fn post_pending(&self, mut inner: MutexGuard<'_, Inner>) {
        let messages = std::mem::take(&mut inner.pending_messages);
        drop(inner);
        let Some(element) = self.element.upgrade() else {
            return;
        };
        for structure in messages {
            let _ = element.post_message(
                gst::message::Element::builder(structure)
                    .src(&element)
                    .build(),
            );
        }
    }

    pub fn reader_count(&self) -> usize {
        self.lock().readers.len()
    }

    // ---- segments and slots (the pool side) ----

    /// Creates a segment of `n_slots` slots of `slot_size` bytes aligned to `align` and
    /// announces it to every reader.
    pub fn add_segment(
        &self,
        slot_size: u64,
        n_slots: u32,
        align: u64,
    ) -> Result<SegmentId, String> {
        let mut inner = self.lock();
        let layout = inner
            .table
            .add_segment(slot_size, n_slots, align)
            .map_err(|e| e.to_string())?;
        let segment = match WriterSegment::create(layout.id, layout.size, &self.debug_name) {
            Ok(segment) => segment,
            Err(err) => {
                let _ = inner.table.retire_segment(layout.id);
                return Err(format!("cannot create a {}-byte memfd: {err}", layout.size));
            }
        };
        gst::debug!(
            CAT,
            "segment {:?}: {} slots of {} bytes (stride {})",
            layout.id,
            n_slots,
            slot_size,
            layout.stride
        );
        inner.segments.insert(layout.id, segment.clone());
        inner.active.push(layout.id);
        let announcement = Message::NewSegment(segment.announcement());
        self.broadcast(&mut inner, &announcement, Some(segment.share_fd()));
        self.post_pending(inner);
        Ok(layout.id)
    }

    /// No new slots from `segment`; it goes away once its last slot is free.
    pub fn retire_segment(&self, segment: SegmentId) {
        let mut inner = self.lock();
        inner.active.retain(|s| *s != segment);
        if inner.copy_segment.is_some_and(|(s, _)| s == segment) {
            inner.copy_segment = None;
        }
        match inner.table.retire_segment(segment) {
            Ok(reclaimed) => Self::settle(&mut inner, reclaimed),
            Err(err) => gst::warning!(CAT, "retiring {segment:?}: {err}"),
        }
        self.broadcast(&mut inner, &Message::RetireSegment(segment), None);
        self.changed.notify_all();
        self.post_pending(inner);
    }

    /// Takes a free slot of `segment` for the writer, waiting (bounded) for one to be freed.
    pub fn acquire(
        self: &Arc<Self>,
        segment: SegmentId,
        dont_wait: bool,
        cancelled: &AtomicBool,
    ) -> Result<HeldSlot, AcquireError> {
        let deadline = Instant::now() + self.config.acquire_timeout;
        let mut inner = self.lock();
        loop {
            if inner.flushing || cancelled.load(Ordering::SeqCst) {
                return Err(AcquireError::Flushing);
            }
            let slot = inner
                .table
                .alloc_in(segment)
                .map_err(|e| AcquireError::Failed(e.to_string()))?;
            if let Some(slot) = slot {
                let layout = inner
                    .table
                    .layout(segment)
                    .ok_or_else(|| AcquireError::Failed(format!("{segment:?} vanished")))?;
                let memory = inner
                    .segments
                    .get(&segment)
                    .ok_or_else(|| AcquireError::Failed(format!("{segment:?} not mapped")))?
                    .claim(layout.slot_offset(slot.index), layout.slot_size);
                return match memory {
                    Ok(memory) => Ok(HeldSlot {
                        memory: Some(memory),
                        slot,
                        hub: Arc::clone(self),
                    }),
                    Err(err) => {
                        let _ = inner.table.writer_release(slot);
                        Err(AcquireError::Failed(err.to_string()))
                    }
                };
            }
            if dont_wait {
                return Err(AcquireError::WouldBlock);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(AcquireError::Timeout(self.config.acquire_timeout));
            }
            inner = self
                .changed
                .wait_timeout(inner, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn writer_release(&self, slot: SlotId) {
        let mut inner = self.lock();
        match inner.table.writer_release(slot) {
            Ok(reclaimed) => Self::settle(&mut inner, reclaimed),
            Err(err) => gst::error!(CAT, "writer release of {slot:?}: {err}"),
        }
        self.changed.notify_all();
    }

    /// Drops our mapping of segments that drained after being retired.
    fn settle(inner: &mut Inner, reclaimed: Reclaimed) {
        for segment in reclaimed.drained {
            gst::debug!(CAT, "segment {segment:?} drained, unmapping");
            inner.segments.remove(&segment);
        }
    }

    /// Wakes every waiter so it re-checks its cancellation flag.
    pub fn wake_waiters(&self) {
        let _guard = self.lock();
        self.changed.notify_all();
    }

    pub fn set_flushing(&self, flushing: bool) {
        self.lock().flushing = flushing;
        self.changed.notify_all();
    }

    // ---- publishing (the render side) ----

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
        self.stats.deliveries.add(sent);
        self.stats
            .dropped_for_slow_readers
            .add(n_readers.saturating_sub(sent));
        if n_readers == 0 {
            self.stats.dropped_without_readers.inc();
        }
    }

    /// Sends upstream fd memory by passing its fd (no copy). Returns false when the fd cannot
    /// be passed safely (not a memfd sealed against shrinking), so the caller copies instead.
    pub fn publish_fd(
        &self,
        buffer: &gst::Buffer,
        fd: BorrowedFd<'_>,
        memory_offset: u64,
        memory_size: u64,
        template: &BufferDescriptor,
    ) -> bool {
        let sealed = rustix::fs::fcntl_get_seals(fd)
            .is_ok_and(|seals| seals.contains(rustix::fs::SealFlags::SHRINK));
        let Ok(stat) = rustix::fs::fstat(fd) else {
            return false;
        };
        let fd_size = u64::try_from(stat.st_size).unwrap_or(0);
        if !sealed || memory_offset.saturating_add(memory_size) > fd_size {
            gst::debug!(CAT, "fd {} is not a sealed memfd, copying", fd.as_raw_fd());
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
        self.stats.deliveries.add(sent);
        self.stats
            .dropped_for_slow_readers
            .add(n_readers.saturating_sub(sent));
        if n_readers == 0 {
            self.stats.dropped_without_readers.inc();
        }
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
    fn broadcast(&self, inner: &mut Inner, message: &Message, fd: Option<BorrowedFd<'_>>) {
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

    // ---- readers (the connection thread side) ----

    /// Registers a reader that completed the handshake: announces every live segment, replays
    /// the sticky events, then lets it receive buffers.
    pub fn add_reader(&self, channel: Channel, hello: &Hello, credentials: PeerCredentials) {
        let mut inner = self.lock();
        let channel = Arc::new(channel);
        let mut result = Ok(());
        for segment in inner.active.clone() {
            if let Some(seg) = inner.segments.get(&segment) {
                result = channel.try_send(
                    &Message::NewSegment(seg.announcement()),
                    Some(seg.share_fd()),
                );
                if result.is_err() {
                    break;
                }
            }
        }
        if result.is_ok() {
            for event in inner.sticky.iter() {
                result = channel.try_send(&Message::Event(event.clone()), None);
                if result.is_err() {
                    break;
                }
            }
        }
        if let Err(err) = result {
            gst::warning!(
                CAT,
                "reader pid {} dropped during set-up: {err}",
                credentials.pid
            );
            return;
        }
        let id = inner.table.add_reader(hello.credit);
        inner.readers.insert(
            id,
            ReaderConn {
                channel,
                credentials,
                credit: hello.credit,
                foreign_in_flight: 0,
            },
        );
        self.stats.readers_connected.inc();
        gst::info!(
            CAT,
            "reader {id:?} connected: pid {} uid {} gid {}, credit {}",
            credentials.pid,
            credentials.uid,
            credentials.gid,
            hello.credit
        );
        inner.pending_messages.push(
            gst::Structure::builder("shmzerosink-reader-connected")
                .field("reader", id.0)
                .field("pid", credentials.pid)
                .field("uid", credentials.uid)
                .field("credit", hello.credit)
                .build(),
        );
        self.changed.notify_all();
        self.post_pending(inner);
    }

    /// The channels to poll, with their reader ids.
    pub fn reader_channels(&self) -> Vec<(ReaderId, Arc<Channel>)> {
        self.lock()
            .readers
            .iter()
            .map(|(id, conn)| (*id, Arc::clone(&conn.channel)))
            .collect()
    }

    /// Handles one message from a reader.
    pub fn handle_reader_message(&self, reader: ReaderId, message: Message) {
        let mut inner = self.lock();
        match message {
            Message::Release(buffer) => {
                if let Some(hold) = inner.foreign.get_mut(&buffer) {
                    if hold.holders.remove(&reader) {
                        if hold.holders.is_empty() {
                            inner.foreign.remove(&buffer);
                        }
                        if let Some(conn) = inner.readers.get_mut(&reader) {
                            conn.foreign_in_flight = conn.foreign_in_flight.saturating_sub(1);
                        }
                    }
                } else {
                    match inner.table.release(reader, buffer) {
                        Ok(reclaimed) => {
                            Self::settle(&mut inner, reclaimed);
                            self.changed.notify_all();
                        }
                        Err(err) => {
                            let why = format!("bad release: {err}");
                            self.drop_reader(
                                &mut inner,
                                reader,
                                &why,
                                Some(GoodbyeReason::ProtocolError),
                            );
                        }
                    }
                }
            }
            Message::Goodbye(goodbye) => {
                let why = format!("reader said goodbye: {}", goodbye.message);
                self.drop_reader(&mut inner, reader, &why, None);
            }
            other => {
                let why = format!("unexpected {:?} message from a reader", other.kind());
                self.drop_reader(&mut inner, reader, &why, Some(GoodbyeReason::ProtocolError));
            }
        }
        self.post_pending(inner);
    }

    /// The reader's socket failed or closed.
    pub fn reader_failed(&self, reader: ReaderId, why: &str) {
        let mut inner = self.lock();
        self.drop_reader(&mut inner, reader, why, None);
        self.post_pending(inner);
    }

    /// Disconnects readers that stayed at their credit limit longer than the timeout.
    pub fn drop_slow_readers(&self) {
        let Some(timeout) = self.config.slow_reader_timeout else {
            return;
        };
        let mut inner = self.lock();
        let slow = inner.table.slow_readers(Instant::now(), timeout);
        for reader in slow {
            self.stats.readers_timed_out.inc();
            let why = format!(
                "held {} buffers for more than {timeout:?}",
                self.config.max_in_flight
            );
            self.drop_reader(&mut inner, reader, &why, Some(GoodbyeReason::SlowReader));
        }
        self.post_pending(inner);
    }

    /// Forgets a reader and reclaims every buffer it held, at once.
    fn drop_reader(
        &self,
        inner: &mut Inner,
        reader: ReaderId,
        why: &str,
        goodbye: Option<GoodbyeReason>,
    ) {
        let Some(conn) = inner.readers.remove(&reader) else {
            return;
        };
        if let Some(reason) = goodbye {
            let _ = conn.channel.try_send(
                &Message::Goodbye(Goodbye {
                    reason,
                    message: why.to_owned(),
                }),
                None,
            );
        }
        match inner.table.remove_reader(reader) {
            Ok((_, reclaimed)) => Self::settle(inner, reclaimed),
            Err(err) => gst::error!(CAT, "removing {reader:?}: {err}"),
        }
        inner.foreign.retain(|_, hold| {
            hold.holders.remove(&reader);
            !hold.holders.is_empty()
        });
        self.stats.readers_lost.inc();
        gst::info!(
            CAT,
            "reader {reader:?} (pid {}) lost: {why}",
            conn.credentials.pid
        );
        inner.pending_messages.push(
            gst::Structure::builder("shmzerosink-reader-lost")
                .field("reader", reader.0)
                .field("pid", conn.credentials.pid)
                .field("reason", why)
                .build(),
        );
        self.changed.notify_all();
    }

    /// Says goodbye to every reader and forgets them (element stopping).
    pub fn shutdown(&self) {
        let mut inner = self.lock();
        inner.flushing = true;
        let goodbye = Message::Goodbye(Goodbye {
            reason: GoodbyeReason::Shutdown,
            message: "writer stopped".to_owned(),
        });
        for conn in inner.readers.values() {
            let _ = conn.channel.try_send(&goodbye, None);
        }
        let readers: Vec<ReaderId> = inner.readers.keys().copied().collect();
        for reader in readers {
            inner.readers.remove(&reader);
            if let Ok((_, reclaimed)) = inner.table.remove_reader(reader) {
                Self::settle(&mut inner, reclaimed);
            }
        }
        inner.foreign.clear();
        drop(inner);
        self.changed.notify_all();
    }
}
