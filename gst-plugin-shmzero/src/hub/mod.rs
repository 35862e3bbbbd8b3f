// SPDX-License-Identifier: MPL-2.0
//! The writer's shared state: segments, the slot table, connected readers and the sticky
//! events, behind one lock. Used by the buffer pool (slots for upstream), the sink's render
//! (publishing buffers and events) and the sink's connection thread (readers coming, going and
//! releasing buffers).
//!
//! Nothing here blocks on a reader: every send is non-blocking, and a reader whose socket is
//! full or broken is dropped (its references reclaimed at once) rather than waited for.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use shmzero_core::{
    BufferId, Channel, Message, PeerCredentials, ReaderId, Reclaimed, SegmentId, SlotId,
    SlotMemory, SlotTable, StickyEvents, WriterSegment,
};

use crate::stats::WriterStats;

mod publish;
mod readers;

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
}
