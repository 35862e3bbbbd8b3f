// SPDX-License-Identifier: MPL-2.0
//! Counters behind the `stats` property.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[derive(Debug, Default)]
pub struct Stats {
    pub bytes_sent: AtomicU64,
    pub bytes_received: AtomicU64,
    pub buffers_sent: AtomicU64,
    pub buffers_received: AtomicU64,
    pub events_sent: AtomicU64,
    pub events_received: AtomicU64,
    pub dropped: AtomicU64,
    pub reconnects: AtomicU64,
    pub connections: AtomicU64,
    pub credits_bytes: AtomicU64,
    pub credits_buffers: AtomicU64,
    /// Last measured heartbeat round trip, ns (`u64::MAX` = not measured yet).
    pub rtt_ns: AtomicU64,
    /// Sink: buffers sent by reference from a segment they already lived in (no copy).
    pub shm_buffers_zero_copy: AtomicU64,
    /// Sink: buffers copied once into a segment, then sent by reference.
    pub shm_buffers_copied: AtomicU64,
    /// Src: buffers received by reference into a mapped segment.
    pub shm_buffers_received: AtomicU64,
}

impl Stats {
    pub fn new() -> Self {
        let s = Self::default();
        s.rtt_ns.store(u64::MAX, Relaxed);
        s
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    pub fn to_structure(&self) -> gst::Structure {
        let rtt = self.rtt_ns.load(Relaxed);
        gst::Structure::builder("application/x-spicepass-stats")
            .field("bytes-sent", self.bytes_sent.load(Relaxed))
            .field("bytes-received", self.bytes_received.load(Relaxed))
            .field("buffers-sent", self.buffers_sent.load(Relaxed))
            .field("buffers-received", self.buffers_received.load(Relaxed))
            .field("events-sent", self.events_sent.load(Relaxed))
            .field("events-received", self.events_received.load(Relaxed))
            .field("dropped", self.dropped.load(Relaxed))
            .field("connections", self.connections.load(Relaxed))
            .field("reconnects", self.reconnects.load(Relaxed))
            .field("credits-bytes", self.credits_bytes.load(Relaxed))
            .field("credits-buffers", self.credits_buffers.load(Relaxed))
            .field(
                "shm-buffers-zero-copy",
                self.shm_buffers_zero_copy.load(Relaxed),
            )
            .field("shm-buffers-copied", self.shm_buffers_copied.load(Relaxed))
            .field(
                "shm-buffers-received",
                self.shm_buffers_received.load(Relaxed),
            )
            .field(
                "rtt",
                if rtt == u64::MAX {
                    gst::ClockTime::NONE
                } else {
                    Some(gst::ClockTime::from_nseconds(rtt))
                },
            )
            .build()
    }
}
