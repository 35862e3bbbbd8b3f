// SPDX-License-Identifier: MPL-2.0
//! MMAP buffers of one queue: allocation (`REQBUFS`, growth with `CREATE_BUFS`),
//! mapping, and DMABuf export (`EXPBUF`) of their planes.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use v4l2r::QueueType;
use v4l2r::bindings::{v4l2_create_buffers, v4l2_format, v4l2_requestbuffers};
use v4l2r::ioctl::{
    ExpbufFlags, MemoryConsistency, PlaneMapping, QueryBuffer, create_bufs, expbuf, g_fmt, mmap,
    querybuf, reqbufs,
};
use v4l2r::memory::MemoryType;

/// One MMAP buffer with its planes mapped. Mappings are shared so a picture lent to
/// downstream keeps its memory mapped even after the queue is freed (vb2 orphans MMAP
/// memory that is still mapped or exported).
pub struct MappedBuffer {
    pub planes: Vec<Arc<PlaneMapping>>,
    /// One DMABuf per plane, once [`BufferSet::export`] ran.
    pub dmabufs: Vec<OwnedFd>,
}

/// What the queue can do beyond plain `REQBUFS` (`V4L2_BUF_CAP_*`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueCaps {
    pub create_bufs: bool,
    pub remove_bufs: bool,
    /// `V4L2_BUF_CAP_SUPPORTS_M2M_HOLD_CAPTURE_BUF` (OUTPUT queue): one CAPTURE buffer
    /// can take several requests (slices, MPEG-2 fields).
    pub hold_capture: bool,
}

/// All buffers of a queue.
pub struct BufferSet {
    pub queue: QueueType,
    pub buffers: Vec<MappedBuffer>,
    pub caps: QueueCaps,
    exported: bool,
}

/// `V4L2_BUF_CAP_SUPPORTS_REMOVE_BUFS` (linux 6.10); not in v4l2r's bindings.
const CAP_SUPPORTS_REMOVE_BUFS: u32 = 1 << 8;

struct Granted {
    count: u32,
    first_index: u32,
    capabilities: u32,
}

impl From<v4l2_requestbuffers> for Granted {
    fn from(r: v4l2_requestbuffers) -> Self {
        Granted {
            count: r.count,
            first_index: 0,
            capabilities: r.capabilities,
        }
    }
}

impl From<v4l2_create_buffers> for Granted {
    fn from(r: v4l2_create_buffers) -> Self {
        Granted {
            count: r.count,
            first_index: r.index,
            capabilities: r.capabilities,
        }
    }
}

fn map_buffer(video: &File, queue: QueueType, index: usize) -> Result<MappedBuffer, String> {
    let info: QueryBuffer = querybuf(video, queue, index)
        .map_err(|e| format!("VIDIOC_QUERYBUF {queue:?} {index}: {e}"))?;
    let planes = info
        .planes
        .iter()
        .map(|p| {
            mmap(video, p.mem_offset, p.length)
                .map(Arc::new)
                .map_err(|e| format!("mmap {queue:?} buffer {index}: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(MappedBuffer {
        planes,
        dmabufs: Vec::new(),
    })
}

fn export_buffer(
    video: &File,
    queue: QueueType,
    index: usize,
    buffer: &mut MappedBuffer,
) -> Result<(), String> {
    if buffer.dmabufs.len() == buffer.planes.len() {
        return Ok(());
    }
    buffer.dmabufs = (0..buffer.planes.len())
        .map(|plane| {
            expbuf::<OwnedFd>(
                video,
                queue,
                index,
                plane,
                ExpbufFlags::CLOEXEC | ExpbufFlags::RDONLY,
            )
            .map_err(|e| format!("VIDIOC_EXPBUF {queue:?} buffer {index} plane {plane}: {e}"))
        })
        .collect::<Result<_, _>>()?;
    Ok(())
}

impl BufferSet {
    /// `VIDIOC_REQBUFS` `count` MMAP buffers (the driver may give more) and maps them.
    pub fn allocate(video: &File, queue: QueueType, count: u32) -> Result<Self, String> {
        let granted: Granted = reqbufs(
            video,
            queue,
            MemoryType::Mmap,
            count,
            MemoryConsistency::empty(),
        )
        .map_err(|e| format!("VIDIOC_REQBUFS {queue:?} x{count}: {e}"))?;
        if granted.count == 0 {
            return Err(format!(
                "VIDIOC_REQBUFS {queue:?}: the driver gave no buffer"
            ));
        }
        let caps = QueueCaps {
            // Every vb2 driver has CREATE_BUFS; the flag names the optional REMOVE_BUFS.
            create_bufs: true,
            remove_bufs: granted.capabilities & CAP_SUPPORTS_REMOVE_BUFS != 0,
            hold_capture: granted.capabilities
                & v4l2r::bindings::V4L2_BUF_CAP_SUPPORTS_M2M_HOLD_CAPTURE_BUF
                != 0,
        };
        let buffers = (0..granted.count as usize)
            .map(|index| map_buffer(video, queue, index))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            queue,
            buffers,
            caps,
            exported: false,
        })
    }

    /// Exports every buffer's planes as DMABufs (and those added later by
    /// [`Self::grow`]).
    pub fn export(&mut self, video: &File) -> Result<(), String> {
        self.exported = true;
        for (index, buffer) in self.buffers.iter_mut().enumerate() {
            export_buffer(video, self.queue, index, buffer)?;
        }
        Ok(())
    }

    /// `VIDIOC_CREATE_BUFS` `count` more buffers of the current format, while streaming.
    /// Returns how many were added. A driver refusing marks the queue as not growable.
    pub fn grow(&mut self, video: &File, count: u32) -> Result<usize, String> {
        let format: v4l2_format =
            g_fmt(video, self.queue).map_err(|e| format!("VIDIOC_G_FMT {:?}: {e}", self.queue))?;
        let granted: Granted = match create_bufs(video, count, MemoryType::Mmap, format) {
            Ok(granted) => granted,
            Err(e) => {
                self.caps.create_bufs = false;
                return Err(format!("VIDIOC_CREATE_BUFS {:?} x{count}: {e}", self.queue));
            }
        };
        let first = granted.first_index as usize;
        if first != self.buffers.len() {
            // We never remove buffers, so new ones must follow the existing ones.
            return Err(format!(
                "VIDIOC_CREATE_BUFS {:?} gave buffers from index {first}, expected {}",
                self.queue,
                self.buffers.len()
            ));
        }
        for index in first..first + granted.count as usize {
            let mut buffer = map_buffer(video, self.queue, index)?;
            if self.exported {
                export_buffer(video, self.queue, index, &mut buffer)?;
            }
            self.buffers.push(buffer);
        }
        Ok(granted.count as usize)
    }

    /// Unmaps and frees the buffers (the queue must be stopped). Mappings or DMABufs
    /// still held downstream keep their memory alive (vb2 orphans it).
    pub fn free(self, video: &File) {
        let queue = self.queue;
        drop(self.buffers);
        let _ = reqbufs::<v4l2_requestbuffers>(
            video,
            queue,
            MemoryType::Mmap,
            0,
            MemoryConsistency::empty(),
        );
    }
}
