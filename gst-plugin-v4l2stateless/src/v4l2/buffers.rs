// SPDX-License-Identifier: MPL-2.0
//! MMAP buffers of one queue: allocation, mapping, and which are free.

use std::fs::File;

use v4l2r::QueueType;
use v4l2r::ioctl::{MemoryConsistency, PlaneMapping, QueryBuffer, mmap, querybuf, reqbufs};
use v4l2r::memory::MemoryType;

/// One MMAP buffer with its planes mapped.
pub struct MappedBuffer {
    pub planes: Vec<PlaneMapping>,
}

/// All buffers of a queue.
pub struct BufferSet {
    pub queue: QueueType,
    pub buffers: Vec<MappedBuffer>,
}

impl BufferSet {
    /// `VIDIOC_REQBUFS` `count` MMAP buffers (the driver may give more) and maps them.
    pub fn allocate(video: &File, queue: QueueType, count: u32) -> Result<Self, String> {
        let granted: u32 = reqbufs::<bindings_count::Count>(
            video,
            queue,
            MemoryType::Mmap,
            count,
            MemoryConsistency::empty(),
        )
        .map_err(|e| format!("VIDIOC_REQBUFS {queue:?} x{count}: {e}"))?
        .0;
        if granted == 0 {
            return Err(format!(
                "VIDIOC_REQBUFS {queue:?}: the driver gave no buffer"
            ));
        }
        let mut buffers = Vec::with_capacity(granted as usize);
        for index in 0..granted as usize {
            let info: QueryBuffer = querybuf(video, queue, index)
                .map_err(|e| format!("VIDIOC_QUERYBUF {queue:?} {index}: {e}"))?;
            let planes = info
                .planes
                .iter()
                .map(|p| {
                    mmap(video, p.mem_offset, p.length)
                        .map_err(|e| format!("mmap {queue:?} buffer {index}: {e}"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            buffers.push(MappedBuffer { planes });
        }
        Ok(Self { queue, buffers })
    }

    /// Unmaps and frees the buffers (the queue must be stopped).
    pub fn free(self, video: &File) {
        let queue = self.queue;
        drop(self.buffers);
        let _ = reqbufs::<()>(
            video,
            queue,
            MemoryType::Mmap,
            0,
            MemoryConsistency::empty(),
        );
    }
}

mod bindings_count {
    use v4l2r::bindings::v4l2_requestbuffers;

    /// The number of buffers `VIDIOC_REQBUFS` granted.
    pub struct Count(pub u32);

    impl From<v4l2_requestbuffers> for Count {
        fn from(r: v4l2_requestbuffers) -> Self {
            Count(r.count)
        }
    }
}
