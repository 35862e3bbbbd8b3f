// SPDX-License-Identifier: MPL-2.0
//! The slot table driven by arbitrary operation sequences, including bogus
//! ids: it must never panic, its invariants must hold after every step, and
//! once every reader is gone and the writer lets go, every slot is free.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use shmzero_core::{BufferId, ReaderId, SegmentId, SlotId, SlotTable};

fuzz_target!(|data: &[u8]| {
    let mut table = SlotTable::new();
    let start = Instant::now();
    let mut held: Vec<SlotId> = Vec::new();
    let mut sent: Vec<(ReaderId, BufferId)> = Vec::new();
    for (step, chunk) in data.chunks(3).enumerate() {
        let [op, a, b] = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let now = start + Duration::from_millis(step as u64 * u64::from(b));
        let segment = SegmentId(u32::from(a % 8));
        let slot = SlotId {
            segment,
            index: u32::from(b % 8),
        };
        match op % 11 {
            0 => {
                let _ = table.add_segment(u64::from(b) * 1000 + 1, u32::from(a % 6), 1 << (b % 13));
            }
            1 => {
                let _ = table.retire_segment(segment);
                held.retain(|s| table.layout(s.segment).is_some() || !table.is_free(*s));
            }
            2 => {
                if let Ok(Some(slot)) = table.alloc_in(segment) {
                    held.push(slot);
                }
            }
            3 => {
                if table.acquire(slot).is_ok() {
                    held.push(slot);
                }
            }
            4 => {
                if !held.is_empty() {
                    let slot = held.swap_remove(usize::from(a) % held.len());
                    table.writer_release(slot).expect("held slots release");
                }
            }
            5 => {
                table.add_reader(u32::from(a % 5));
            }
            6 => {
                if !held.is_empty() {
                    let slot = held[usize::from(a) % held.len()];
                    let (buffer, readers) = table.publish(slot, now).expect("held slots publish");
                    sent.extend(readers.into_iter().map(|r| (r, buffer)));
                }
            }
            7 => {
                if !sent.is_empty() {
                    let (reader, buffer) = sent.swap_remove(usize::from(a) % sent.len());
                    table.release(reader, buffer).expect("sent buffers release");
                }
            }
            8 => {
                // Bogus ids: an error, never a panic or a double free.
                // Ids far above the table's counter, so they never collide
                // with ids from `next_buffer_id`.
                let bogus = BufferId(u64::MAX - u64::from(b));
                let reader = ReaderId(u64::from(a % 8));
                if table.release(reader, bogus).is_ok() {
                    sent.retain(|entry| *entry != (reader, bogus));
                }
                if table.writer_release(slot).is_ok() {
                    // It was one of ours after all.
                    let at = held.iter().position(|s| *s == slot).expect("was held");
                    held.swap_remove(at);
                }
                if let Ok(shmzero_core::Delivery::Sent) = table.send(slot, bogus, reader, now) {
                    sent.push((reader, bogus));
                }
            }
            9 => {
                let reader = ReaderId(u64::from(a % 8));
                if table.remove_reader(reader).is_ok() {
                    sent.retain(|(r, _)| *r != reader);
                }
            }
            _ => {
                let _ = table.slow_readers(now, Duration::from_millis(u64::from(a)));
            }
        }
        table.check_invariants().expect("invariants hold");
    }
    for reader in table.readers().collect::<Vec<_>>() {
        table.remove_reader(reader).unwrap();
    }
    for slot in held {
        let _ = table.writer_release(slot);
    }
    table.check_invariants().expect("invariants hold");
    for layout in table.segments().collect::<Vec<_>>() {
        // Everything is idle now: retiring drains at once.
        let reclaimed = table.retire_segment(layout.id).unwrap();
        assert_eq!(reclaimed.drained, vec![layout.id], "a slot leaked");
    }
});
