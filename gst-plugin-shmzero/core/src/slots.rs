// SPDX-License-Identifier: MPL-2.0
//! Slot bookkeeping on the writer side: pure, deterministic, no I/O.
//!
//! A segment is cut into `n_slots` slots of `stride` bytes (slot size rounded
//! up to the alignment). A slot is *busy* while the writer holds it (it backs
//! a buffer being filled or pushed) or while any reader has it in flight; it
//! returns to its segment's free list only when neither is true. References
//! are counted per transmission ([`BufferId`]), so a reader that receives the
//! same slot twice must release it twice, and releasing an unknown id is a
//! reported error, never a double free.
//!
//! Each reader has a credit (maximum buffers in flight). A reader at its limit
//! is skipped for new buffers and the skip is counted as a drop for it; it
//! never blocks the writer or other readers. [`SlotTable::slow_readers`]
//! reports readers that stayed at the limit too long, for the element to
//! disconnect; [`SlotTable::remove_reader`] drops all references of a reader
//! at once (disconnect or death).
//!
//! Time is passed in by the caller, so the table stays deterministic.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::protocol::{BufferId, SegmentId};

/// A slot: segment and index inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SlotId {
    pub segment: SegmentId,
    pub index: u32,
}

/// A connected reader, as numbered by the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReaderId(pub u64);

/// Geometry of one segment's slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentLayout {
    pub id: SegmentId,
    /// Usable bytes per slot.
    pub slot_size: u64,
    /// Distance between slot starts: `slot_size` rounded up to the alignment.
    pub stride: u64,
    pub n_slots: u32,
    /// Total bytes to allocate for the segment (`stride * n_slots`).
    pub size: u64,
}

impl SegmentLayout {
    /// Byte offset of slot `index` inside the segment.
    pub fn slot_offset(&self, index: u32) -> u64 {
        self.stride * u64::from(index)
    }
}

/// Per-reader counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReaderStats {
    /// Buffers handed to the reader.
    pub sent: u64,
    /// Buffers skipped because the reader was at its credit limit.
    pub dropped: u64,
    /// Buffers the reader released (or that were dropped on its removal).
    pub released: u64,
    /// Buffers currently in flight.
    pub in_flight: u32,
    /// Credit limit.
    pub max_in_flight: u32,
}

/// What happened when offering a buffer to a reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The reader now holds a reference; send it the descriptor.
    Sent,
    /// The reader is at its limit; counted as dropped for it.
    Skipped,
}

/// Slots that became free, and retired segments that became empty, as a
/// result of an operation. The element wakes pool waiters for the former and
/// drops its mapping of the latter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reclaimed {
    pub freed: Vec<SlotId>,
    /// Retired segments whose last slot became free; they are gone from the
    /// table.
    pub drained: Vec<SegmentId>,
}

impl Reclaimed {
    pub fn is_empty(&self) -> bool {
        self.freed.is_empty() && self.drained.is_empty()
    }

    fn merge(&mut self, other: Reclaimed) {
        self.freed.extend(other.freed);
        self.drained.extend(other.drained);
    }
}

/// Misuse of the table, or a reader quoting something it does not hold.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SlotError {
    #[error("invalid segment layout: {0}")]
    InvalidLayout(&'static str),
    #[error("unknown segment {0:?}")]
    UnknownSegment(SegmentId),
    #[error("segment {0:?} is retired")]
    Retired(SegmentId),
    #[error("unknown slot {0:?}")]
    UnknownSlot(SlotId),
    #[error("slot {0:?} is not held by the writer")]
    NotHeld(SlotId),
    #[error("slot {0:?} is already held by the writer")]
    AlreadyHeld(SlotId),
    #[error("slot {0:?} is still in flight to a reader")]
    InFlight(SlotId),
    #[error("unknown reader {0:?}")]
    UnknownReader(ReaderId),
    #[error("reader {reader:?} does not hold buffer {buffer:?}")]
    UnknownBuffer { reader: ReaderId, buffer: BufferId },
    #[error("buffer {buffer:?} was already sent to reader {reader:?}")]
    DuplicateBuffer { reader: ReaderId, buffer: BufferId },
}

#[derive(Debug, Clone, Copy, Default)]
struct SlotState {
    writer_hold: bool,
    reader_refs: u32,
}

impl SlotState {
    fn is_free(&self) -> bool {
        !self.writer_hold && self.reader_refs == 0
    }
}

#[derive(Debug)]
struct SegmentSlots {
    layout: SegmentLayout,
    slots: Vec<SlotState>,
    /// Free slot indices, least recently freed first (spreads wear, keeps
    /// recently released slots out of reach of late reader reads a bit longer).
    free: VecDeque<u32>,
    retired: bool,
}

#[derive(Debug)]
struct ReaderState {
    max_in_flight: u32,
    in_flight: BTreeMap<BufferId, SlotId>,
    stats: ReaderStats,
    /// When the reader reached its limit, if it is there now.
    full_since: Option<Instant>,
}

/// The writer's slot table over all segments and readers.
#[derive(Debug, Default)]
pub struct SlotTable {
    segments: BTreeMap<SegmentId, SegmentSlots>,
    readers: BTreeMap<ReaderId, ReaderState>,
    next_segment: u32,
    next_reader: u64,
    next_buffer: u64,
}

impl SlotTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// Plans and registers a segment of `n_slots` slots of `slot_size` bytes,
    /// each starting at a multiple of `align` (a power of two; GStreamer's
    /// alignment masks are `align - 1`). Create the memfd with
    /// [`SegmentLayout::size`] bytes and the returned id.
    pub fn add_segment(
        &mut self,
        slot_size: u64,
        n_slots: u32,
        align: u64,
    ) -> Result<SegmentLayout, SlotError> {
        if slot_size == 0 {
            return Err(SlotError::InvalidLayout("slot size is 0"));
        }
        if n_slots == 0 {
            return Err(SlotError::InvalidLayout("no slots"));
        }
        if !align.is_power_of_two() {
            return Err(SlotError::InvalidLayout("alignment is not a power of two"));
        }
        let stride = slot_size
            .checked_next_multiple_of(align)
            .ok_or(SlotError::InvalidLayout("slot size overflows"))?;
        let size = stride
            .checked_mul(u64::from(n_slots))
            .filter(|s| *s <= isize::MAX as u64)
            .ok_or(SlotError::InvalidLayout("segment size overflows"))?;
        let id = SegmentId(self.next_segment);
        self.next_segment = self
            .next_segment
            .checked_add(1)
            .ok_or(SlotError::InvalidLayout("segment ids exhausted"))?;
        let layout = SegmentLayout {
            id,
            slot_size,
            stride,
            n_slots,
            size,
        };
        self.segments.insert(
            id,
            SegmentSlots {
                layout,
                slots: vec![SlotState::default(); n_slots as usize],
                free: (0..n_slots).collect(),
                retired: false,
            },
        );
        Ok(layout)
    }

    pub fn layout(&self, segment: SegmentId) -> Option<SegmentLayout> {
        self.segments.get(&segment).map(|s| s.layout)
    }

    /// Segments still in the table (active, or retired with busy slots).
    pub fn segments(&self) -> impl Iterator<Item = SegmentLayout> + '_ {
        self.segments.values().map(|s| s.layout)
    }

    /// Stops handing out slots of `segment`. Returns the segment as drained
    /// (and removes it) right away if none of its slots is busy; otherwise it
    /// appears in a later [`Reclaimed::drained`].
    pub fn retire_segment(&mut self, segment: SegmentId) -> Result<Reclaimed, SlotError> {
        let seg = self
            .segments
            .get_mut(&segment)
            .ok_or(SlotError::UnknownSegment(segment))?;
        seg.retired = true;
        let mut reclaimed = Reclaimed::default();
        self.drain_if_idle(segment, &mut reclaimed);
        Ok(reclaimed)
    }

    /// Takes a free slot of `segment` for the writer.
    pub fn alloc_in(&mut self, segment: SegmentId) -> Result<Option<SlotId>, SlotError> {
        let seg = self
            .segments
            .get_mut(&segment)
            .ok_or(SlotError::UnknownSegment(segment))?;
        if seg.retired {
            return Err(SlotError::Retired(segment));
        }
        Ok(seg.free.pop_front().map(|index| {
            seg.slots[index as usize].writer_hold = true;
            SlotId { segment, index }
        }))
    }

    /// Takes a specific free slot for the writer (a pool that binds each of
    /// its buffers to one slot re-acquires it this way).
    pub fn acquire(&mut self, slot: SlotId) -> Result<(), SlotError> {
        let seg = self
            .segments
            .get_mut(&slot.segment)
            .ok_or(SlotError::UnknownSegment(slot.segment))?;
        if seg.retired {
            return Err(SlotError::Retired(slot.segment));
        }
        let state = seg
            .slots
            .get_mut(slot.index as usize)
            .ok_or(SlotError::UnknownSlot(slot))?;
        if state.writer_hold {
            return Err(SlotError::AlreadyHeld(slot));
        }
        if state.reader_refs > 0 {
            return Err(SlotError::InFlight(slot));
        }
        state.writer_hold = true;
        seg.free.retain(|&i| i != slot.index);
        Ok(())
    }

    /// Whether `slot` is neither held by the writer nor in flight.
    pub fn is_free(&self, slot: SlotId) -> bool {
        self.slot_state(slot).is_some_and(|s| s.is_free())
    }

    /// How many readers currently hold `slot` (counting repeats).
    pub fn reader_refs(&self, slot: SlotId) -> u32 {
        self.slot_state(slot).map_or(0, |s| s.reader_refs)
    }

    /// Number of free slots in a segment (0 if unknown or retired).
    pub fn free_slots(&self, segment: SegmentId) -> usize {
        self.segments
            .get(&segment)
            .filter(|s| !s.retired)
            .map_or(0, |s| s.free.len())
    }

    /// The writer stops using `slot` (its buffer went back to the pool); the
    /// slot is free once readers released it too.
    pub fn writer_release(&mut self, slot: SlotId) -> Result<Reclaimed, SlotError> {
        let state = self
            .slot_state_mut(slot)
            .ok_or(SlotError::UnknownSlot(slot))?;
        if !state.writer_hold {
            return Err(SlotError::NotHeld(slot));
        }
        state.writer_hold = false;
        Ok(self.settle(slot))
    }

    /// Registers a reader with a credit of `max_in_flight` buffers (at least 1).
    pub fn add_reader(&mut self, max_in_flight: u32) -> ReaderId {
        let id = ReaderId(self.next_reader);
        self.next_reader += 1;
        let max_in_flight = max_in_flight.max(1);
        self.readers.insert(
            id,
            ReaderState {
                max_in_flight,
                in_flight: BTreeMap::new(),
                stats: ReaderStats {
                    max_in_flight,
                    ..ReaderStats::default()
                },
                full_since: None,
            },
        );
        id
    }

    pub fn readers(&self) -> impl Iterator<Item = ReaderId> + '_ {
        self.readers.keys().copied()
    }

    pub fn reader_stats(&self, reader: ReaderId) -> Option<ReaderStats> {
        self.readers.get(&reader).map(|r| r.stats)
    }

    /// A fresh id for one transmission of a buffer (shared by every reader
    /// it goes to).
    pub fn next_buffer_id(&mut self) -> BufferId {
        let id = BufferId(self.next_buffer);
        self.next_buffer += 1;
        id
    }

    /// Offers `slot` (held by the writer) to `reader` as `buffer`, an id from
    /// [`Self::next_buffer_id`] (the same id may go to several readers). On
    /// [`Delivery::Sent`] the reader holds a reference until
    /// [`Self::release`] (or [`Self::cancel`] if sending the descriptor failed).
    pub fn send(
        &mut self,
        slot: SlotId,
        buffer: BufferId,
        reader: ReaderId,
        now: Instant,
    ) -> Result<Delivery, SlotError> {
        let state = self.slot_state(slot).ok_or(SlotError::UnknownSlot(slot))?;
        if !state.writer_hold {
            return Err(SlotError::NotHeld(slot));
        }
        let r = self
            .readers
            .get_mut(&reader)
            .ok_or(SlotError::UnknownReader(reader))?;
        if r.in_flight.contains_key(&buffer) {
            return Err(SlotError::DuplicateBuffer { reader, buffer });
        }
        if r.in_flight.len() >= r.max_in_flight as usize {
            r.stats.dropped += 1;
            r.full_since.get_or_insert(now);
            return Ok(Delivery::Skipped);
        }
        r.in_flight.insert(buffer, slot);
        r.stats.sent += 1;
        r.stats.in_flight = r.in_flight.len() as u32;
        if r.in_flight.len() >= r.max_in_flight as usize {
            r.full_since.get_or_insert(now);
        }
        if let Some(s) = self.slot_state_mut(slot) {
            s.reader_refs += 1;
        }
        Ok(Delivery::Sent)
    }

    /// Offers `slot` to every reader under one new buffer id; returns the id
    /// and the readers that must get the descriptor.
    pub fn publish(
        &mut self,
        slot: SlotId,
        now: Instant,
    ) -> Result<(BufferId, Vec<ReaderId>), SlotError> {
        let state = self.slot_state(slot).ok_or(SlotError::UnknownSlot(slot))?;
        if !state.writer_hold {
            return Err(SlotError::NotHeld(slot));
        }
        let buffer = self.next_buffer_id();
        let readers: Vec<ReaderId> = self.readers.keys().copied().collect();
        let mut sent = Vec::with_capacity(readers.len());
        for reader in readers {
            if self.send(slot, buffer, reader, now)? == Delivery::Sent {
                sent.push(reader);
            }
        }
        Ok((buffer, sent))
    }

    /// The reader released `buffer`.
    pub fn release(&mut self, reader: ReaderId, buffer: BufferId) -> Result<Reclaimed, SlotError> {
        self.drop_reference(reader, buffer, true)
    }

    /// Undoes a [`Delivery::Sent`] whose descriptor could not be sent; not
    /// counted as a release.
    pub fn cancel(&mut self, reader: ReaderId, buffer: BufferId) -> Result<Reclaimed, SlotError> {
        self.drop_reference(reader, buffer, false)
    }

    fn drop_reference(
        &mut self,
        reader: ReaderId,
        buffer: BufferId,
        count_release: bool,
    ) -> Result<Reclaimed, SlotError> {
        let r = self
            .readers
            .get_mut(&reader)
            .ok_or(SlotError::UnknownReader(reader))?;
        let slot = r
            .in_flight
            .remove(&buffer)
            .ok_or(SlotError::UnknownBuffer { reader, buffer })?;
        if count_release {
            r.stats.released += 1;
        } else {
            r.stats.sent -= 1;
        }
        r.stats.in_flight = r.in_flight.len() as u32;
        if r.in_flight.len() < r.max_in_flight as usize {
            r.full_since = None;
        }
        if let Some(s) = self.slot_state_mut(slot) {
            s.reader_refs -= 1;
        }
        Ok(self.settle(slot))
    }

    /// Forgets a reader (disconnected, dead, or kicked), dropping all its
    /// references at once. Returns its final counters with what was reclaimed.
    pub fn remove_reader(
        &mut self,
        reader: ReaderId,
    ) -> Result<(ReaderStats, Reclaimed), SlotError> {
        let mut r = self
            .readers
            .remove(&reader)
            .ok_or(SlotError::UnknownReader(reader))?;
        let mut reclaimed = Reclaimed::default();
        for slot in r.in_flight.values() {
            if let Some(s) = self.slot_state_mut(*slot) {
                s.reader_refs -= 1;
            }
            reclaimed.merge(self.settle(*slot));
        }
        r.stats.released += r.in_flight.len() as u64;
        r.stats.in_flight = 0;
        Ok((r.stats, reclaimed))
    }

    /// Readers that have been at their credit limit for at least `timeout`
    /// at `now` (the slow-reader policy: the element disconnects them).
    pub fn slow_readers(&self, now: Instant, timeout: Duration) -> Vec<ReaderId> {
        self.readers
            .iter()
            .filter(|(_, r)| {
                r.full_since
                    .is_some_and(|since| now.saturating_duration_since(since) >= timeout)
            })
            .map(|(id, _)| *id)
            .collect()
    }

    fn slot_state(&self, slot: SlotId) -> Option<&SlotState> {
        self.segments
            .get(&slot.segment)?
            .slots
            .get(slot.index as usize)
    }

    fn slot_state_mut(&mut self, slot: SlotId) -> Option<&mut SlotState> {
        self.segments
            .get_mut(&slot.segment)?
            .slots
            .get_mut(slot.index as usize)
    }

    /// After a reference to `slot` went away: free it if nothing holds it.
    fn settle(&mut self, slot: SlotId) -> Reclaimed {
        let mut reclaimed = Reclaimed::default();
        let Some(seg) = self.segments.get_mut(&slot.segment) else {
            return reclaimed;
        };
        if seg.slots[slot.index as usize].is_free() {
            seg.free.push_back(slot.index);
            reclaimed.freed.push(slot);
        }
        self.drain_if_idle(slot.segment, &mut reclaimed);
        reclaimed
    }

    fn drain_if_idle(&mut self, segment: SegmentId, reclaimed: &mut Reclaimed) {
        let idle = self
            .segments
            .get(&segment)
            .is_some_and(|s| s.retired && s.slots.iter().all(SlotState::is_free));
        if idle {
            self.segments.remove(&segment);
            reclaimed.drained.push(segment);
        }
    }

    /// Checks every internal invariant; used by tests, cheap enough for
    /// debug assertions in callers.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut refs: BTreeMap<SlotId, u32> = BTreeMap::new();
        for (rid, r) in &self.readers {
            if r.stats.in_flight as usize != r.in_flight.len() {
                return Err(format!("{rid:?}: in_flight counter out of sync"));
            }
            if r.in_flight.len() > r.max_in_flight as usize {
                return Err(format!("{rid:?}: above its credit"));
            }
            if r.stats.sent != r.stats.released + r.in_flight.len() as u64 {
                return Err(format!("{rid:?}: sent != released + in flight"));
            }
            for slot in r.in_flight.values() {
                *refs.entry(*slot).or_default() += 1;
            }
        }
        for (sid, seg) in &self.segments {
            let mut in_free = vec![false; seg.slots.len()];
            for &i in &seg.free {
                let Some(seen) = in_free.get_mut(i as usize) else {
                    return Err(format!("{sid:?}: free index {i} out of range"));
                };
                if *seen {
                    return Err(format!("{sid:?}: slot {i} twice in the free list"));
                }
                *seen = true;
            }
            for (i, state) in seg.slots.iter().enumerate() {
                let slot = SlotId {
                    segment: *sid,
                    index: i as u32,
                };
                let expected = refs.remove(&slot).unwrap_or(0);
                if state.reader_refs != expected {
                    return Err(format!(
                        "{slot:?}: refcount {} but readers hold {expected}",
                        state.reader_refs
                    ));
                }
                if state.is_free() != in_free[i] {
                    return Err(format!(
                        "{slot:?}: free={} but in free list={}",
                        state.is_free(),
                        in_free[i]
                    ));
                }
            }
            if seg.retired && seg.slots.iter().all(SlotState::is_free) {
                return Err(format!("{sid:?}: retired and idle but not drained"));
            }
        }
        if let Some((slot, _)) = refs.into_iter().next() {
            return Err(format!("a reader holds {slot:?} of a segment that is gone"));
        }
        Ok(())
    }
}
