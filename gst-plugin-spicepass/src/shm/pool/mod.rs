// SPDX-License-Identifier: MPL-2.0
//! `GstSpicepassMemfdPool`: a buffer pool whose every buffer is one sealed memfd segment
//! (registered in [`super::registry`]). `spicepasssink` proposes it upstream, so a producer
//! such as `videotestsrc` writes straight into memory the client maps; it also uses one
//! itself to copy foreign memory once into a segment.
//!
//! Recycling is GstBufferPool's own: the sink keeps a reference to each buffer until the
//! client releases it, so a buffer returns to the pool (and is written again) only when
//! the client no longer reads it.

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    pub struct MemfdPool(ObjectSubclass<imp::MemfdPool>)
        @extends gst::BufferPool, gst::Object;
}

impl MemfdPool {
    /// An unconfigured pool.
    pub fn new() -> Self {
        glib::Object::new()
    }

    /// A configured, active pool of `count` buffers of `size` bytes (`None`: the
    /// configuration or the first segments failed).
    pub fn with_buffers(size: u32, count: u32) -> Option<Self> {
        let pool = Self::new();
        let mut config = pool.config();
        config.set_params(None, size, 0, count);
        pool.set_config(config).ok()?;
        pool.set_active(true).ok()?;
        Some(pool)
    }
}

impl Default for MemfdPool {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_sealed_segments_and_are_recycled() {
        gst::init().unwrap();
        let pool = MemfdPool::with_buffers(300_000, 2).unwrap();
        let first = pool.acquire_buffer(None).unwrap();
        assert_eq!(first.size(), 300_000);
        let ptr = first.map_readable().unwrap().as_ptr();
        let (segment, offset) = super::super::registry::find(ptr, 300_000).expect("registered");
        assert_eq!(offset, 0);
        let seals = rustix::fs::fcntl_get_seals(segment.memfd()).unwrap();
        assert!(seals.contains(rustix::fs::SealFlags::SHRINK));
        let second = pool.acquire_buffer(None).unwrap();
        let params =
            gst::BufferPoolAcquireParams::with_flags(gst::BufferPoolAcquireFlags::DONTWAIT);
        assert!(
            pool.acquire_buffer(Some(&params)).is_err(),
            "only two buffers"
        );
        drop(first);
        let again = pool.acquire_buffer(Some(&params)).unwrap();
        assert_eq!(again.map_readable().unwrap().as_ptr(), ptr, "recycled");
        drop((second, again, segment));
        pool.set_active(false).unwrap();
    }
}
