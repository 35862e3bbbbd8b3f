// SPDX-License-Identifier: MPL-2.0
//! `ShmZeroPool` implementation.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex, OnceLock};

use gst::glib;
use gst::subclass::prelude::*;
use gst_video::prelude::*;
use shmzero_core::SegmentId;

use crate::hub::{AcquireError, Hub};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "shmzeropool",
        gst::DebugColorFlags::empty(),
        Some("shmzero shared-memory buffer pool"),
    )
});

/// Slot start alignment when upstream asks for less: a cache line, which also suits SIMD.
const MIN_ALIGN: u64 = 64;

#[derive(Debug, Clone)]
struct Layout {
    /// Bytes per buffer (the aligned frame size for video).
    buffer_size: usize,
    /// Slot start alignment (a power of two).
    align: u64,
    n_slots: u32,
    /// Set when upstream asked for `GstVideoMeta`: the (padded) frame layout to describe.
    video: Option<gst_video::VideoInfo>,
}

#[derive(Default)]
pub struct ShmZeroPool {
    hub: OnceLock<Arc<Hub>>,
    layout: Mutex<Option<Layout>>,
    segment: Mutex<Option<SegmentId>>,
    flushing: AtomicBool,
}

impl ShmZeroPool {
    pub(super) fn set_hub(&self, hub: Arc<Hub>) {
        let _ = self.hub.set(hub);
    }

    fn hub(&self) -> Option<&Arc<Hub>> {
        self.hub.get()
    }
}

#[glib::object_subclass]
impl ObjectSubclass for ShmZeroPool {
    const NAME: &'static str = "GstShmZeroPool";
    type Type = super::ShmZeroPool;
    type ParentType = gst::BufferPool;
}

impl ObjectImpl for ShmZeroPool {}
impl GstObjectImpl for ShmZeroPool {}

impl BufferPoolImpl for ShmZeroPool {
    fn options() -> &'static [&'static str] {
        static OPTIONS: LazyLock<[&'static str; 2]> = LazyLock::new(|| {
            [
                gst_video::BUFFER_POOL_OPTION_VIDEO_META.as_str(),
                gst_video::BUFFER_POOL_OPTION_VIDEO_ALIGNMENT.as_str(),
            ]
        });
        &*OPTIONS
    }

    fn set_config(&self, config: &mut gst::BufferPoolConfigRef) -> bool {
        let Some(hub) = self.hub() else {
            return false;
        };
        let Some((caps, size, min, max)) = config.params() else {
            gst::warning!(CAT, imp = self, "config without parameters");
            return false;
        };
        let mut buffer_size = size as usize;
        let mut video = None;
        if let Some(info) = caps
            .as_ref()
            .and_then(|caps| gst_video::VideoInfo::from_caps(caps).ok())
        {
            let mut info = info;
            if config.has_option(gst_video::BUFFER_POOL_OPTION_VIDEO_ALIGNMENT) {
                let mut align = config.video_alignment().unwrap_or_else(|| {
                    gst_video::VideoAlignment::new(0, 0, 0, 0, &[0; gst_video::VIDEO_MAX_PLANES])
                });
                if let Err(err) = info.align(&mut align) {
                    gst::warning!(CAT, imp = self, "cannot apply {align:?}: {err}");
                    return false;
                }
                // Record what was applied, as GstVideoBufferPool does.
                config.set_video_alignment(&align);
            }
            buffer_size = buffer_size.max(info.size());
            if config.has_option(gst_video::BUFFER_POOL_OPTION_VIDEO_META) {
                video = Some(info);
            }
        }
        if buffer_size == 0 {
            gst::warning!(CAT, imp = self, "zero-sized buffers requested");
            return false;
        }
        let align = config
            .allocator()
            .map(|(_, params)| (params.align() as u64).saturating_add(1))
            .unwrap_or(1)
            .max(MIN_ALIGN)
            .next_power_of_two();
        // A fixed slot count: 0 ("unlimited") means our configured maximum.
        let n_slots = if max == 0 {
            hub.config.max_buffers
        } else {
            max
        }
        .max(min)
        .max(2);
        gst::debug!(
            CAT,
            imp = self,
            "{n_slots} slots of {buffer_size} bytes aligned to {align}, video meta: {}",
            video.is_some()
        );
        *self.layout.lock().unwrap() = Some(Layout {
            buffer_size,
            align,
            n_slots,
            video,
        });
        config.set_params(caps.as_ref(), buffer_size as u32, min, n_slots);
        self.parent_set_config(config)
    }

    fn start(&self) -> bool {
        // No preallocation into GstBufferPool's queue: slots are bound at acquire time.
        let (Some(hub), Some(layout)) = (self.hub(), self.layout.lock().unwrap().clone()) else {
            return false;
        };
        match hub.add_segment(layout.buffer_size as u64, layout.n_slots, layout.align) {
            Ok(segment) => {
                *self.segment.lock().unwrap() = Some(segment);
                self.flushing.store(false, Ordering::SeqCst);
                true
            }
            Err(err) => {
                gst::error!(CAT, imp = self, "cannot create the shared segment: {err}");
                false
            }
        }
    }

    fn stop(&self) -> bool {
        if let (Some(hub), Some(segment)) = (self.hub(), self.segment.lock().unwrap().take()) {
            hub.retire_segment(segment);
        }
        true
    }

    fn flush_start(&self) {
        self.flushing.store(true, Ordering::SeqCst);
        if let Some(hub) = self.hub() {
            hub.wake_waiters();
        }
    }

    fn flush_stop(&self) {
        self.flushing.store(false, Ordering::SeqCst);
    }

    fn acquire_buffer(
        &self,
        params: Option<&gst::BufferPoolAcquireParams>,
    ) -> Result<gst::Buffer, gst::FlowError> {
        let hub = self.hub().ok_or(gst::FlowError::Flushing)?;
        let segment = self
            .segment
            .lock()
            .unwrap()
            .ok_or(gst::FlowError::Flushing)?;
        let layout = self
            .layout
            .lock()
            .unwrap()
            .clone()
            .ok_or(gst::FlowError::NotNegotiated)?;
        let dont_wait =
            params.is_some_and(|p| p.flags().contains(gst::BufferPoolAcquireFlags::DONTWAIT));
        let held = hub
            .acquire(segment, dont_wait, &self.flushing)
            .map_err(|err| match err {
                AcquireError::Flushing => gst::FlowError::Flushing,
                // GstBufferPool's convention for "would block" with DONTWAIT.
                AcquireError::WouldBlock => gst::FlowError::Eos,
                err => {
                    gst::error!(CAT, imp = self, "no shared-memory slot: {err}");
                    gst::FlowError::Error
                }
            })?;
        let mut buffer = gst::Buffer::new();
        {
            let buffer = buffer.get_mut().expect("new buffer is writable");
            buffer.append_memory(gst::Memory::from_mut_slice(held));
            buffer.set_size(layout.buffer_size);
            if let Some(info) = &layout.video {
                gst_video::VideoMeta::add_full(
                    buffer,
                    gst_video::VideoFrameFlags::empty(),
                    info.format(),
                    info.width(),
                    info.height(),
                    info.offset(),
                    info.stride(),
                )
                .map_err(|err| {
                    gst::error!(CAT, imp = self, "cannot add video meta: {err}");
                    gst::FlowError::Error
                })?;
            }
        }
        Ok(buffer)
    }

    fn release_buffer(&self, buffer: gst::Buffer) {
        // Not queued for reuse: dropping it frees the GstBuffer, and the slot's memory hands
        // the writer's hold back to the slot table (readers may still hold the slot).
        drop(buffer);
    }
}
