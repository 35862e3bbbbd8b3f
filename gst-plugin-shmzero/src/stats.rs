// SPDX-License-Identifier: MPL-2.0
//! Counters behind the read-only `stats` property of both elements.
//!
//! Plain atomics: the streaming thread, the connection thread and property readers all
//! touch them, and a snapshot need not be consistent across counters.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

/// CPU time consumed so far by the calling thread.
pub fn thread_cpu_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    (t.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(t.tv_nsec as u64)
}

impl Counter {
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn inc(&self) {
        self.add(1);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The writer side (`shmzerosink`).
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Buffers whose memory was already in one of our segments: only a descriptor was sent.
    pub zero_copy_buffers: Counter,
    /// Buffers of fd / DMABuf memory: passed by fd, not copied.
    pub fd_buffers: Counter,
    /// Buffers of foreign memory, copied once into a slot.
    pub copied_buffers: Counter,
    /// Descriptors delivered to readers (one buffer to three readers counts three).
    pub deliveries: Counter,
    /// Deliveries skipped because that reader had too many buffers in flight.
    pub dropped_for_slow_readers: Counter,
    /// Buffers rendered while no reader was connected.
    pub dropped_without_readers: Counter,
    pub readers_connected: Counter,
    pub readers_lost: Counter,
    pub readers_timed_out: Counter,
    /// CPU time of the streaming thread inside render (the whole per-buffer send path).
    pub render_cpu_ns: Counter,
    pub rendered: Counter,
}

impl WriterStats {
    /// One buffer went to `sent` of `n_readers` readers; the others were at their credit.
    pub fn count_delivery(&self, sent: u64, n_readers: u64) {
        self.deliveries.add(sent);
        self.dropped_for_slow_readers
            .add(n_readers.saturating_sub(sent));
        if n_readers == 0 {
            self.dropped_without_readers.inc();
        }
    }

    pub fn to_structure(&self, current_readers: u64) -> gst::Structure {
        gst::Structure::builder("shmzerosink-stats")
            .field("zero-copy-buffers", self.zero_copy_buffers.get())
            .field("fd-buffers", self.fd_buffers.get())
            .field("copied-buffers", self.copied_buffers.get())
            .field("deliveries", self.deliveries.get())
            .field(
                "dropped-for-slow-readers",
                self.dropped_for_slow_readers.get(),
            )
            .field(
                "dropped-without-readers",
                self.dropped_without_readers.get(),
            )
            .field("readers", current_readers)
            .field("readers-connected", self.readers_connected.get())
            .field("readers-lost", self.readers_lost.get())
            .field("readers-timed-out", self.readers_timed_out.get())
            .field("rendered", self.rendered.get())
            .field("render-cpu-ns", self.render_cpu_ns.get())
            .build()
    }
}

/// The reader side (`shmzerosrc`).
#[derive(Debug, Default)]
pub struct ReaderStats {
    pub buffers: Counter,
    pub events: Counter,
    /// Events the writer sent that could not be rebuilt here (logged, not pushed).
    pub bad_events: Counter,
    pub segments_mapped: Counter,
    pub connections: Counter,
    /// Buffers received while a live source was PAUSED, released without pushing.
    pub dropped_while_paused: Counter,
    /// Buffers still held downstream (released to the writer when dropped).
    pub in_flight: AtomicGauge,
}

impl ReaderStats {
    pub fn to_structure(&self) -> gst::Structure {
        gst::Structure::builder("shmzerosrc-stats")
            .field("buffers", self.buffers.get())
            .field("events", self.events.get())
            .field("bad-events", self.bad_events.get())
            .field("segments-mapped", self.segments_mapped.get())
            .field("connections", self.connections.get())
            .field("dropped-while-paused", self.dropped_while_paused.get())
            .field("in-flight", self.in_flight.get())
            .build()
    }
}

#[derive(Debug, Default)]
pub struct AtomicGauge(std::sync::atomic::AtomicI64);

impl AtomicGauge {
    pub fn up(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    pub fn down(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}
