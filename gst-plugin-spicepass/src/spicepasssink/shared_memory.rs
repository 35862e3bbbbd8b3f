// SPDX-License-Identifier: MPL-2.0
//! `spicepasssink`'s shared-memory glue: propose a memfd-backed pool upstream, recognize a
//! buffer that already lives in one of our segments (sent without any copy), and copy any
//! other big buffer once into a segment of a private pool.

use gst::prelude::*;

use crate::session::{Outbox, SendError, SharedPayload};
use crate::shm::{MemfdPool, registry};

/// Buffers of the proposed and of the private pool. The credit window (32 MiB) already
/// keeps no more than four 1080p RGBA frames in flight; two more let the producer fill
/// one while the client still holds the others.
pub const POOL_BUFFERS: u32 = 6;

/// Answers an ALLOCATION query with a `GstSpicepassMemfdPool` for raw video whose frames
/// reach `threshold`. `false` (no proposal) for anything else.
pub fn propose_pool(query: &mut gst::query::Allocation, threshold: u64) -> bool {
    let (caps, need_pool) = query.get_owned();
    let Some(size) = caps
        .as_ref()
        .and_then(|caps| gst_video::VideoInfo::from_caps(caps).ok())
        .map(|info| info.size())
        .and_then(|size| u32::try_from(size).ok())
    else {
        return false;
    };
    if threshold == 0 || u64::from(size) < threshold {
        return false;
    }
    if need_pool {
        let pool = MemfdPool::new();
        let mut config = pool.config();
        config.set_params(caps.as_ref(), size, 0, POOL_BUFFERS);
        if pool.set_config(config).is_err() {
            return false;
        }
        query.add_allocation_pool(Some(&pool), size, 0, POOL_BUFFERS);
    } else {
        query.add_allocation_pool(None::<&gst::BufferPool>, size, 0, POOL_BUFFERS);
    }
    true
}

/// The segment `buffer`'s bytes already live in (one memory, inside one of our segments).
pub fn locate(buffer: &gst::Buffer) -> Option<SharedPayload> {
    if buffer.n_memory() != 1 {
        return None;
    }
    let (segment, offset) = {
        let map = buffer.map_readable().ok()?;
        registry::find(map.as_ptr(), map.len())?
    };
    Some(SharedPayload {
        hold: buffer.clone(),
        segment,
        offset,
    })
}

/// The private pool big buffers from foreign memory are copied into.
#[derive(Default)]
pub struct CopyPool {
    pool: Option<(usize, MemfdPool)>,
}

impl CopyPool {
    /// Copies `buffer` into a free segment, waiting (flush- and stop-aware) while the
    /// client holds all of them.
    pub fn copy_in(
        &mut self,
        buffer: &gst::Buffer,
        outbox: &Outbox,
    ) -> Result<SharedPayload, SendError> {
        let size = buffer.size();
        let pool = match &self.pool {
            Some((pool_size, pool)) if *pool_size == size => pool.clone(),
            _ => {
                self.stop();
                let pool = u32::try_from(size)
                    .ok()
                    .and_then(|size| MemfdPool::with_buffers(size, POOL_BUFFERS))
                    .ok_or_else(|| {
                        SendError::Unencodable(format!(
                            "cannot create memfd segments of {size} bytes"
                        ))
                    })?;
                self.pool = Some((size, pool.clone()));
                pool
            }
        };
        let params =
            gst::BufferPoolAcquireParams::with_flags(gst::BufferPoolAcquireFlags::DONTWAIT);
        let mut target = loop {
            match pool.acquire_buffer(Some(&params)) {
                Ok(target) => break target,
                // GstBufferPool's "would block": every segment is with the client.
                Err(gst::FlowError::Eos) => outbox.wait_for_release()?,
                Err(e) => {
                    return Err(SendError::Unencodable(format!(
                        "no memfd segment free: {e:?}"
                    )));
                }
            }
        };
        {
            let target = target.get_mut().expect("a pool buffer is ours alone");
            let mut map = target
                .map_writable()
                .map_err(|_| SendError::Unencodable("cannot map a memfd segment".into()))?;
            buffer
                .copy_to_slice(0, &mut map)
                .map_err(|_| SendError::Unencodable("cannot copy a buffer".into()))?;
        }
        locate(&target)
            .ok_or_else(|| SendError::Unencodable("a memfd pool buffer is not a segment".into()))
    }

    /// Lets the pool go (its buffers still held by a client stay valid until released).
    pub fn stop(&mut self) {
        if let Some((_, pool)) = self.pool.take() {
            let _ = pool.set_active(false);
        }
    }
}
