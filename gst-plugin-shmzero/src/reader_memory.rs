// SPDX-License-Identifier: MPL-2.0
//! Reader-side memory: a received buffer's bytes, wrapped where they are mapped, read-only.
//! Dropping the last GstMemory reference tells the writer the buffer is free again.

use std::sync::{Arc, Weak};

use shmzero_core::{BufferId, Channel, MappedRange, Message};

use crate::stats::ReaderStats;

/// Sends `release` for one buffer when dropped. Holds the connection weakly: once the
/// connection is gone (writer died or element stopped) there is nobody to tell, and the
/// mapping alone keeps the bytes valid.
struct ReleaseOnDrop {
    buffer: BufferId,
    channel: Weak<Channel>,
    stats: Arc<ReaderStats>,
}

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        self.stats.in_flight.down();
        if let Some(channel) = self.channel.upgrade() {
            // Non-blocking: if the writer's socket is full it is going away or broken, and a
            // lost release is reclaimed when our connection closes.
            let _ = channel.try_send(&Message::Release(self.buffer), None);
        }
    }
}

/// The bytes of one received buffer, for `gst::Memory::from_slice` (which marks the memory
/// read-only, so downstream writers copy it as GStreamer requires).
pub struct ReaderBytes {
    range: MappedRange,
    _release: ReleaseOnDrop,
}

impl ReaderBytes {
    pub fn new(
        range: MappedRange,
        buffer: BufferId,
        channel: &Arc<Channel>,
        stats: &Arc<ReaderStats>,
    ) -> Self {
        stats.in_flight.up();
        ReaderBytes {
            range,
            _release: ReleaseOnDrop {
                buffer,
                channel: Arc::downgrade(channel),
                stats: Arc::clone(stats),
            },
        }
    }
}

impl AsRef<[u8]> for ReaderBytes {
    fn as_ref(&self) -> &[u8] {
        self.range.as_ref()
    }
}
