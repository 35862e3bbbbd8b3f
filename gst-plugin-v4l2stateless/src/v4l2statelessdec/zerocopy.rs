// SPDX-License-Identifier: MPL-2.0
//! Pictures pushed without a copy: a lent CAPTURE buffer wrapped as a GstBuffer, either
//! as its MMAP mapping (system memory) or as its exported DMABuf, with a video meta
//! carrying the driver's strides and offsets. The CAPTURE slot goes back to the decoder
//! when downstream drops the last buffer (or copy) referring to it.

use std::os::fd::OwnedFd;
use std::sync::{Arc, LazyLock};

use gst_allocators::prelude::*;
use v4l2r::ioctl::PlaneMapping;

use super::copy::plane_geometry;
use crate::v4l2::{LentPicture, Loan};

/// How pictures reach downstream, chosen at each negotiation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputMode {
    /// Copied into a buffer of downstream's pool (downstream without video meta).
    #[default]
    Copy,
    /// The mapped CAPTURE buffer itself, read-only system memory.
    SystemMemory,
    /// The exported CAPTURE buffer, `memory:DMABuf` caps.
    DmaBuf,
}

impl OutputMode {
    pub fn name(self) -> &'static str {
        match self {
            OutputMode::Copy => "copy",
            OutputMode::SystemMemory => "system-memory",
            OutputMode::DmaBuf => "dmabuf",
        }
    }
}

/// The mapped plane of a lent CAPTURE buffer as the bytes of a GstMemory. Holding the
/// loan here ties the slot's return to the memory's lifetime.
struct LentPlane {
    mapping: Arc<PlaneMapping>,
    size: usize,
    _loan: Loan,
}

impl AsRef<[u8]> for LentPlane {
    fn as_ref(&self) -> &[u8] {
        &self.mapping[..self.size]
    }
}

/// Bytes of the single memory plane holding the picture (`sizeimage`, bounded by the
/// mapping).
fn picture_size(picture: &LentPicture) -> Result<usize, String> {
    if picture.layout.planes.len() != 1 || picture.planes.len() != 1 {
        return Err(format!(
            "zero copy handles single-plane CAPTURE formats, not {} planes",
            picture.layout.planes.len()
        ));
    }
    let sizeimage = picture.layout.planes[0].1 as usize;
    Ok(sizeimage.min(picture.planes[0].len()))
}

fn add_video_meta(
    buffer: &mut gst::BufferRef,
    picture: &LentPicture,
    info: &gst_video::VideoInfo,
) -> Result<(), String> {
    let geometry = plane_geometry(&picture.layout);
    if geometry.len() != info.n_planes() as usize {
        return Err(format!(
            "CAPTURE format {} does not match {:?}",
            String::from_utf8_lossy(&picture.layout.fourcc),
            info.format()
        ));
    }
    let offsets: Vec<usize> = geometry.iter().map(|g| g.0).collect();
    let strides: Vec<i32> = geometry.iter().map(|g| g.1 as i32).collect();
    gst_video::VideoMeta::add_full(
        buffer,
        gst_video::VideoFrameFlags::empty(),
        info.format(),
        info.width(),
        info.height(),
        &offsets,
        &strides,
    )
    .map_err(|e| format!("video meta: {e}"))?;
    Ok(())
}

/// The picture as read-only system memory (its MMAP mapping).
pub fn wrap_mapped(
    picture: LentPicture,
    info: &gst_video::VideoInfo,
) -> Result<gst::Buffer, String> {
    let size = picture_size(&picture)?;
    let mut buffer = gst::Buffer::new();
    {
        let buffer = buffer.get_mut().expect("new buffer is writable");
        add_video_meta(buffer, &picture, info)?;
        let plane = LentPlane {
            mapping: picture.planes[0].clone(),
            size,
            _loan: picture.loan,
        };
        buffer.append_memory(gst::Memory::from_slice(plane));
    }
    Ok(buffer)
}

/// The picture as its exported DMABuf. The loan stays with a parent buffer (the same
/// picture as mapped memory) that the DMABuf buffer and its copies keep alive.
pub fn wrap_dmabuf(
    mut picture: LentPicture,
    info: &gst_video::VideoInfo,
) -> Result<gst::Buffer, String> {
    static ALLOCATOR: LazyLock<gst_allocators::DmaBufAllocator> =
        LazyLock::new(gst_allocators::DmaBufAllocator::new);
    let size = picture_size(&picture)?;
    let fd: OwnedFd = picture
        .dmabufs
        .drain(..)
        .next()
        .ok_or("the CAPTURE buffers were not exported as DMABufs")?;
    // SAFETY: `fd` is a DMABuf exported by VIDIOC_EXPBUF for this picture's plane, at
    // least `size` bytes long; the memory takes ownership of it.
    let memory = unsafe { ALLOCATOR.alloc_dmabuf(fd, size) }
        .map_err(|e| format!("wrapping a CAPTURE DMABuf: {e}"))?;
    let mut buffer = gst::Buffer::new();
    {
        let buffer = buffer.get_mut().expect("new buffer is writable");
        add_video_meta(buffer, &picture, info)?;
        buffer.append_memory(memory);
    }
    let parent = wrap_mapped(picture, info)?;
    gst::ParentBufferMeta::add(buffer.get_mut().expect("not shared yet"), &parent);
    Ok(buffer)
}
