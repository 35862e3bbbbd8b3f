// SPDX-License-Identifier: MPL-2.0
//! The writer segments of this process, so the sink can tell whether a buffer's bytes
//! already live in one (then it is sent by reference, without any copy).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, LazyLock, Mutex, Weak};

use shmzero_core::{SegmentId, WriterSegment};

static SEGMENTS: LazyLock<Mutex<Vec<Weak<WriterSegment>>>> =
    LazyLock::new(|| Mutex::new(Vec::new()));
static NEXT_ID: AtomicU32 = AtomicU32::new(1);

/// Creates a sealed memfd segment of `size` bytes and registers it.
pub fn create(size: u64) -> std::io::Result<Arc<WriterSegment>> {
    let id = SegmentId(NEXT_ID.fetch_add(1, Ordering::Relaxed));
    let segment = WriterSegment::create(id, size, "spicepass")?;
    let mut segments = SEGMENTS.lock().unwrap_or_else(|e| e.into_inner());
    segments.retain(|weak| weak.strong_count() > 0);
    segments.push(Arc::downgrade(&segment));
    Ok(segment)
}

/// The live segment holding all of `ptr..ptr + len`, and the offset of `ptr` in it.
pub fn find(ptr: *const u8, len: usize) -> Option<(Arc<WriterSegment>, u64)> {
    let segments = SEGMENTS.lock().unwrap_or_else(|e| e.into_inner());
    segments
        .iter()
        .filter_map(Weak::upgrade)
        .find_map(|segment| {
            let start = segment.as_ptr() as usize;
            let end = start + segment.size() as usize;
            let p = ptr as usize;
            (p >= start && p.checked_add(len).is_some_and(|e| e <= end))
                .then(|| (segment.clone(), (p - start) as u64))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_ranges_inside_live_segments_only() {
        let segment = create(8192).unwrap();
        let base = segment.as_ptr();
        let (found, offset) = find(base.wrapping_add(100), 50).unwrap();
        assert_eq!(found.id(), segment.id());
        assert_eq!(offset, 100);
        assert!(
            find(base.wrapping_add(8000), 500).is_none(),
            "crosses the end"
        );
        let outside = [0u8; 16];
        assert!(find(outside.as_ptr(), 16).is_none());
        let id = segment.id();
        drop(found);
        drop(segment);
        // Another test's new segment may be mapped at the same address, never with this id.
        assert!(
            find(base, 1).is_none_or(|(other, _)| other.id() != id),
            "a freed segment is forgotten"
        );
    }
}
