// SPDX-License-Identifier: MPL-2.0
//! Slot bookkeeping: a model-based property test over random sequences of
//! segment/alloc/publish/release/reader-death operations, plus unit tests of
//! the credit and slow-reader rules.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::sample::Index;
use shmzero_core::{BufferId, Delivery, ReaderId, SegmentId, SlotError, SlotId, SlotTable};

#[derive(Debug, Clone)]
enum Op {
    AddSegment {
        slots: u32,
        slot_size: u64,
        align_log2: u32,
    },
    Retire(Index),
    Alloc(Index),
    Acquire(Index, Index),
    WriterRelease(Index),
    AddReader {
        credit: u32,
    },
    Publish(Index),
    Release(Index, Index),
    BogusRelease(Index, u64),
    RemoveReader(Index),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => (1..6u32, 1..10_000u64, 0..13u32).prop_map(|(slots, slot_size, align_log2)| {
            Op::AddSegment { slots, slot_size, align_log2 }
        }),
        1 => any::<Index>().prop_map(Op::Retire),
        6 => any::<Index>().prop_map(Op::Alloc),
        2 => (any::<Index>(), any::<Index>()).prop_map(|(s, i)| Op::Acquire(s, i)),
        5 => any::<Index>().prop_map(Op::WriterRelease),
        1 => (0..4u32).prop_map(|credit| Op::AddReader { credit }),
        6 => any::<Index>().prop_map(Op::Publish),
        6 => (any::<Index>(), any::<Index>()).prop_map(|(r, b)| Op::Release(r, b)),
        1 => (any::<Index>(), any::<u64>()).prop_map(|(r, b)| Op::BogusRelease(r, b)),
        1 => any::<Index>().prop_map(Op::RemoveReader),
    ]
}

/// What the table should contain, tracked the obvious way.
#[derive(Default)]
struct Model {
    /// Live segments: id → (slot count, retired).
    segments: BTreeMap<SegmentId, (u32, bool)>,
    writer_held: BTreeSet<SlotId>,
    readers: BTreeMap<ReaderId, (u32, Vec<(BufferId, SlotId)>)>,
    sent_ids: BTreeSet<u64>,
}

impl Model {
    fn busy(&self, slot: SlotId) -> bool {
        self.writer_held.contains(&slot)
            || self
                .readers
                .values()
                .any(|(_, held)| held.iter().any(|(_, s)| *s == slot))
    }

    fn all_slots(&self) -> Vec<SlotId> {
        self.segments
            .iter()
            .flat_map(|(&segment, &(n, _))| (0..n).map(move |index| SlotId { segment, index }))
            .collect()
    }

    /// Segments that must have been drained: retired with no busy slot.
    fn take_drained(&mut self) -> BTreeSet<SegmentId> {
        let drained: BTreeSet<SegmentId> = self
            .segments
            .iter()
            .filter(|&(&segment, &(n, retired))| {
                retired && (0..n).all(|index| !self.busy(SlotId { segment, index }))
            })
            .map(|(id, _)| *id)
            .collect();
        for id in &drained {
            self.segments.remove(id);
        }
        drained
    }
}

fn pick<T: Copy>(items: &[T], index: &Index) -> Option<T> {
    (!items.is_empty()).then(|| items[index.index(items.len())])
}

fn check(table: &SlotTable, model: &Model) -> Result<(), TestCaseError> {
    table.check_invariants().map_err(TestCaseError::fail)?;
    for slot in model.all_slots() {
        prop_assert_eq!(table.is_free(slot), !model.busy(slot), "slot {:?}", slot);
    }
    let table_segments: BTreeSet<SegmentId> = table.segments().map(|l| l.id).collect();
    let model_segments: BTreeSet<SegmentId> = model.segments.keys().copied().collect();
    prop_assert_eq!(table_segments, model_segments);
    for (reader, (_, held)) in &model.readers {
        let stats = table.reader_stats(*reader).expect("reader known");
        prop_assert_eq!(stats.in_flight as usize, held.len());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_operations_never_leak_or_double_free(ops in proptest::collection::vec(op(), 1..120)) {
        let mut table = SlotTable::new();
        let mut model = Model::default();
        let start = Instant::now();
        for (step, op) in ops.iter().enumerate() {
            let now = start + Duration::from_millis(step as u64);
            let before: BTreeSet<SlotId> =
                model.all_slots().into_iter().filter(|s| model.busy(*s)).collect();
            let mut reported_freed = BTreeSet::new();
            let mut reported_drained = BTreeSet::new();
            match op {
                Op::AddSegment { slots, slot_size, align_log2 } => {
                    let align = 1u64 << align_log2;
                    let layout = table.add_segment(*slot_size, *slots, align).unwrap();
                    prop_assert_eq!(layout.stride % align, 0);
                    prop_assert!(layout.stride >= *slot_size);
                    prop_assert!(layout.stride < slot_size + align);
                    prop_assert_eq!(layout.size, layout.stride * u64::from(*slots));
                    model.segments.insert(layout.id, (*slots, false));
                }
                Op::Retire(i) => {
                    let ids: Vec<SegmentId> = model.segments.keys().copied().collect();
                    if let Some(id) = pick(&ids, i) {
                        let r = table.retire_segment(id).unwrap();
                        reported_drained.extend(r.drained);
                        reported_freed.extend(r.freed);
                        model.segments.get_mut(&id).unwrap().1 = true;
                    }
                }
                Op::Alloc(i) => {
                    let ids: Vec<SegmentId> = model.segments.keys().copied().collect();
                    if let Some(id) = pick(&ids, i) {
                        let (n, retired) = model.segments[&id];
                        match table.alloc_in(id) {
                            Err(SlotError::Retired(_)) => prop_assert!(retired),
                            Err(e) => prop_assert!(false, "alloc: {}", e),
                            Ok(None) => {
                                prop_assert!(!retired);
                                let all_busy = (0..n).all(|index| model.busy(SlotId { segment: id, index }));
                                prop_assert!(all_busy);
                            }
                            Ok(Some(slot)) => {
                                prop_assert!(!retired);
                                prop_assert!(!model.busy(slot), "allocated a busy slot {:?}", slot);
                                model.writer_held.insert(slot);
                            }
                        }
                    }
                }
                Op::Acquire(s, i) => {
                    let ids: Vec<SegmentId> = model.segments.keys().copied().collect();
                    if let Some(id) = pick(&ids, s) {
                        let (n, retired) = model.segments[&id];
                        let slot = SlotId { segment: id, index: i.index(n as usize) as u32 };
                        let result = table.acquire(slot);
                        if retired || model.busy(slot) {
                            prop_assert!(result.is_err());
                        } else {
                            prop_assert!(result.is_ok());
                            model.writer_held.insert(slot);
                        }
                    }
                }
                Op::WriterRelease(i) => {
                    let held: Vec<SlotId> = model.writer_held.iter().copied().collect();
                    if let Some(slot) = pick(&held, i) {
                        let r = table.writer_release(slot).unwrap();
                        reported_freed.extend(r.freed);
                        reported_drained.extend(r.drained);
                        model.writer_held.remove(&slot);
                        // Releasing twice is an error, never a double free.
                        if model.segments.contains_key(&slot.segment) || !model.busy(slot) {
                            let again = table.writer_release(slot);
                            prop_assert!(again.is_err());
                        }
                    }
                }
                Op::AddReader { credit } => {
                    let id = table.add_reader(*credit);
                    model.readers.insert(id, ((*credit).max(1), Vec::new()));
                }
                Op::Publish(i) => {
                    let held: Vec<SlotId> = model.writer_held.iter().copied().collect();
                    if let Some(slot) = pick(&held, i) {
                        let (buffer, sent) = table.publish(slot, now).unwrap();
                        prop_assert!(model.sent_ids.insert(buffer.0), "buffer id reused");
                        for (reader, (credit, in_flight)) in model.readers.iter_mut() {
                            let should_send = in_flight.len() < *credit as usize;
                            prop_assert_eq!(sent.contains(reader), should_send);
                            if should_send {
                                in_flight.push((buffer, slot));
                            }
                        }
                    }
                }
                Op::Release(r, b) => {
                    let readers: Vec<ReaderId> = model.readers.keys().copied().collect();
                    if let Some(reader) = pick(&readers, r) {
                        let in_flight = &mut model.readers.get_mut(&reader).unwrap().1;
                        if !in_flight.is_empty() {
                            let (buffer, _) = in_flight.remove(b.index(in_flight.len()));
                            let rec = table.release(reader, buffer).unwrap();
                            reported_freed.extend(rec.freed);
                            reported_drained.extend(rec.drained);
                            // A second release of the same id is refused.
                            let again = table.release(reader, buffer);
                            let refused = matches!(again, Err(SlotError::UnknownBuffer { .. }));
                            prop_assert!(refused);
                        }
                    }
                }
                Op::BogusRelease(r, id) => {
                    let readers: Vec<ReaderId> = model.readers.keys().copied().collect();
                    if let Some(reader) = pick(&readers, r) {
                        let held = model.readers[&reader].1.iter().any(|(b, _)| b.0 == *id);
                        if !held {
                            prop_assert!(table.release(reader, BufferId(*id)).is_err());
                        }
                    }
                }
                Op::RemoveReader(r) => {
                    let readers: Vec<ReaderId> = model.readers.keys().copied().collect();
                    if let Some(reader) = pick(&readers, r) {
                        let (stats, rec) = table.remove_reader(reader).unwrap();
                        prop_assert_eq!(stats.in_flight, 0);
                        prop_assert_eq!(stats.sent, stats.released);
                        reported_freed.extend(rec.freed);
                        reported_drained.extend(rec.drained);
                        model.readers.remove(&reader);
                        prop_assert!(table.remove_reader(reader).is_err());
                    }
                }
            }
            // Exactly the slots that stopped being busy were reported freed.
            let after: BTreeSet<SlotId> =
                model.all_slots().into_iter().filter(|s| model.busy(*s)).collect();
            let expected_freed: BTreeSet<SlotId> = before.difference(&after).copied().collect();
            prop_assert_eq!(reported_freed, expected_freed);
            prop_assert_eq!(reported_drained, model.take_drained());
            check(&table, &model)?;
        }

        // Tear down: every reader dies, the writer lets go: nothing leaks.
        let readers: Vec<ReaderId> = model.readers.keys().copied().collect();
        for reader in readers {
            table.remove_reader(reader).unwrap();
            model.readers.remove(&reader);
        }
        for slot in std::mem::take(&mut model.writer_held) {
            table.writer_release(slot).unwrap();
        }
        table.check_invariants().map_err(TestCaseError::fail)?;
        for segment in table.segments().map(|l| l.id).collect::<Vec<_>>() {
            let (n, retired) = model.segments[&segment];
            if !retired {
                prop_assert_eq!(table.free_slots(segment), n as usize);
            }
            let r = table.retire_segment(segment).unwrap();
            prop_assert_eq!(r.drained, vec![segment]);
        }
        prop_assert_eq!(table.segments().count(), 0);
    }
}

#[test]
fn full_reader_is_skipped_and_others_keep_going() {
    let mut table = SlotTable::new();
    let seg = table.add_segment(1000, 8, 64).unwrap().id;
    let slow = table.add_reader(2);
    let fast = table.add_reader(2);
    let now = Instant::now();
    let mut slow_dropped = 0;
    for frame in 0..6u64 {
        let slot = table.alloc_in(seg).unwrap().expect("a free slot");
        let (buffer, sent) = table.publish(slot, now).unwrap();
        assert!(sent.contains(&fast), "fast reader skipped at frame {frame}");
        if frame >= 2 {
            assert!(!sent.contains(&slow));
            slow_dropped += 1;
        }
        // The fast reader releases right away; the slow one never does.
        table.release(fast, buffer).unwrap();
        table.writer_release(slot).unwrap();
    }
    let stats = table.reader_stats(slow).unwrap();
    assert_eq!(
        (stats.sent, stats.dropped, stats.in_flight),
        (2, slow_dropped, 2)
    );
    assert_eq!(table.reader_stats(fast).unwrap().dropped, 0);
    // Only the slow reader's two slots are busy.
    assert_eq!(table.free_slots(seg), 6);
    let (_, reclaimed) = table.remove_reader(slow).unwrap();
    assert_eq!(reclaimed.freed.len(), 2);
    assert_eq!(table.free_slots(seg), 8);
}

#[test]
fn slot_returns_only_after_every_reader_released() {
    let mut table = SlotTable::new();
    let seg = table.add_segment(4096, 1, 4096).unwrap().id;
    let a = table.add_reader(4);
    let b = table.add_reader(4);
    let slot = table.alloc_in(seg).unwrap().unwrap();
    let now = Instant::now();
    let (buffer, sent) = table.publish(slot, now).unwrap();
    assert_eq!(sent, vec![a, b]);
    assert!(table.writer_release(slot).unwrap().is_empty());
    assert_eq!(table.alloc_in(seg).unwrap(), None);
    assert!(table.release(a, buffer).unwrap().is_empty());
    assert_eq!(table.alloc_in(seg).unwrap(), None);
    assert_eq!(table.release(b, buffer).unwrap().freed, vec![slot]);
    assert_eq!(table.alloc_in(seg).unwrap(), Some(slot));
}

#[test]
fn same_slot_twice_to_one_reader_needs_two_releases() {
    let mut table = SlotTable::new();
    let seg = table.add_segment(64, 1, 1).unwrap().id;
    let r = table.add_reader(4);
    let slot = table.alloc_in(seg).unwrap().unwrap();
    let now = Instant::now();
    let (first, _) = table.publish(slot, now).unwrap();
    let (second, _) = table.publish(slot, now).unwrap();
    assert_ne!(first, second);
    assert_eq!(table.reader_refs(slot), 2);
    table.writer_release(slot).unwrap();
    assert!(table.release(r, first).unwrap().freed.is_empty());
    assert_eq!(table.release(r, second).unwrap().freed, vec![slot]);
    assert!(matches!(
        table.send(slot, BufferId(99), r, now),
        Err(SlotError::NotHeld(_))
    ));
}

#[test]
fn slow_reader_timeout_fires_only_after_staying_full() {
    let mut table = SlotTable::new();
    let seg = table.add_segment(64, 4, 1).unwrap().id;
    let r = table.add_reader(1);
    let t0 = Instant::now();
    let slot = table.alloc_in(seg).unwrap().unwrap();
    let (buffer, _) = table.publish(slot, t0).unwrap();
    let timeout = Duration::from_millis(500);
    assert!(
        table
            .slow_readers(t0 + Duration::from_millis(499), timeout)
            .is_empty()
    );
    assert_eq!(table.slow_readers(t0 + timeout, timeout), vec![r]);
    // Releasing resets the clock.
    table.release(r, buffer).unwrap();
    assert!(table.slow_readers(t0 + timeout * 10, timeout).is_empty());
    let t1 = t0 + timeout * 10;
    table.publish(slot, t1).unwrap();
    assert!(
        table
            .slow_readers(t1 + Duration::from_millis(1), timeout)
            .is_empty()
    );
    assert_eq!(table.slow_readers(t1 + timeout, timeout), vec![r]);
}

#[test]
fn cancel_undoes_a_send_without_counting_a_release() {
    let mut table = SlotTable::new();
    let seg = table.add_segment(64, 1, 1).unwrap().id;
    let r = table.add_reader(1);
    let slot = table.alloc_in(seg).unwrap().unwrap();
    let buffer = table.next_buffer_id();
    assert_eq!(
        table.send(slot, buffer, r, Instant::now()).unwrap(),
        Delivery::Sent
    );
    assert!(matches!(
        table.send(slot, buffer, r, Instant::now()),
        Err(SlotError::DuplicateBuffer { .. })
    ));
    table.cancel(r, buffer).unwrap();
    let stats = table.reader_stats(r).unwrap();
    assert_eq!((stats.sent, stats.released, stats.in_flight), (0, 0, 0));
    table.check_invariants().unwrap();
}

#[test]
fn retired_segment_drains_when_last_reader_lets_go() {
    let mut table = SlotTable::new();
    let old = table.add_segment(100, 2, 16).unwrap().id;
    let r = table.add_reader(2);
    let slot = table.alloc_in(old).unwrap().unwrap();
    table.publish(slot, Instant::now()).unwrap();
    table.writer_release(slot).unwrap();
    // Caps change: a bigger segment replaces the old one.
    let new = table.add_segment(1000, 2, 16).unwrap();
    assert!(table.retire_segment(old).unwrap().drained.is_empty());
    assert!(matches!(table.alloc_in(old), Err(SlotError::Retired(_))));
    assert!(table.alloc_in(new.id).unwrap().is_some());
    let (_, reclaimed) = table.remove_reader(r).unwrap();
    assert_eq!(reclaimed.drained, vec![old]);
    assert!(table.layout(old).is_none());
}

#[test]
fn invalid_layouts_are_refused() {
    let mut table = SlotTable::new();
    assert!(table.add_segment(0, 1, 1).is_err());
    assert!(table.add_segment(1, 0, 1).is_err());
    assert!(table.add_segment(1, 1, 3).is_err());
    assert!(table.add_segment(u64::MAX, 1, 4096).is_err());
    assert!(table.add_segment(u64::MAX / 2, 4, 1).is_err());
    let ok = table.add_segment(1000, 3, 256).unwrap();
    assert_eq!((ok.stride, ok.size, ok.slot_offset(2)), (1024, 3072, 2048));
}

#[test]
fn acquire_refuses_held_and_in_flight_slots() {
    let mut table = SlotTable::new();
    let seg = table.add_segment(64, 2, 64).unwrap().id;
    let r = table.add_reader(1);
    let slot = SlotId {
        segment: seg,
        index: 1,
    };
    table.acquire(slot).unwrap();
    assert_eq!(table.acquire(slot), Err(SlotError::AlreadyHeld(slot)));
    table.publish(slot, Instant::now()).unwrap();
    table.writer_release(slot).unwrap();
    assert_eq!(table.acquire(slot), Err(SlotError::InFlight(slot)));
    // The other slot is still handed out by alloc; the acquired one is not.
    assert_eq!(table.alloc_in(seg).unwrap().map(|s| s.index), Some(0));
    assert_eq!(table.alloc_in(seg).unwrap(), None);
    table.remove_reader(r).unwrap();
    table.acquire(slot).unwrap();
    table.check_invariants().unwrap();
}
