// SPDX-License-Identifier: MPL-2.0
//! Where received payloads are read into.

use gst::prelude::*;

/// Memory for received payloads. Big payloads of a recurring size (raw video) come from a
/// buffer pool, so the kernel copies into pages that are already mapped instead of
/// page-faulting a fresh multi-megabyte allocation per frame.
#[derive(Default)]
pub(super) struct PayloadMemory {
    pool: Option<(usize, gst::BufferPool)>,
}

/// Below this, plain allocations are cheap enough.
const POOL_MIN_SIZE: usize = 256 * 1024;

impl PayloadMemory {
    pub(super) fn acquire(&mut self, len: usize) -> Option<gst::Buffer> {
        if len < POOL_MIN_SIZE {
            return gst::Buffer::with_size(len).ok();
        }
        if self.pool.as_ref().map(|(size, _)| *size) != Some(len) {
            if let Some((_, old)) = self.pool.take() {
                let _ = old.set_active(false);
            }
            let pool = gst::BufferPool::new();
            let mut config = pool.config();
            config.set_params(None, u32::try_from(len).ok()?, 2, 0);
            pool.set_config(config).ok()?;
            pool.set_active(true).ok()?;
            self.pool = Some((len, pool));
        }
        let (_, pool) = self.pool.as_ref()?;
        pool.acquire_buffer(None).ok()
    }
}

impl Drop for PayloadMemory {
    fn drop(&mut self) {
        if let Some((_, pool)) = self.pool.take() {
            let _ = pool.set_active(false);
        }
    }
}
