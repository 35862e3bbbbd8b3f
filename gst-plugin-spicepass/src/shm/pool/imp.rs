// SPDX-License-Identifier: MPL-2.0
//! `MemfdPool` implementation: only allocation differs from GstBufferPool.

use std::sync::{LazyLock, Mutex};

use gst::glib;
use gst::subclass::prelude::*;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "spicepassmemfdpool",
        gst::DebugColorFlags::empty(),
        Some("spicepass buffer pool of sealed memfd segments"),
    )
});

#[derive(Default)]
pub struct MemfdPool {
    /// Bytes per buffer, from the last accepted configuration.
    size: Mutex<u32>,
}

#[glib::object_subclass]
impl ObjectSubclass for MemfdPool {
    const NAME: &'static str = "GstSpicepassMemfdPool";
    type Type = super::MemfdPool;
    type ParentType = gst::BufferPool;
}

impl ObjectImpl for MemfdPool {}
impl GstObjectImpl for MemfdPool {}

impl BufferPoolImpl for MemfdPool {
    fn set_config(&self, config: &mut gst::BufferPoolConfigRef) -> bool {
        let Some((_caps, size, _min, _max)) = config.params() else {
            gst::warning!(CAT, imp = self, "configuration without parameters");
            return false;
        };
        if size == 0 {
            gst::warning!(CAT, imp = self, "zero-sized buffers requested");
            return false;
        }
        *self.size.lock().unwrap_or_else(|e| e.into_inner()) = size;
        self.parent_set_config(config)
    }

    fn alloc_buffer(
        &self,
        _params: Option<&gst::BufferPoolAcquireParams>,
    ) -> Result<gst::Buffer, gst::FlowError> {
        let size = u64::from(*self.size.lock().unwrap_or_else(|e| e.into_inner()));
        let segment = super::super::registry::create(size).map_err(|err| {
            gst::error!(
                CAT,
                imp = self,
                "cannot create a {size}-byte memfd segment: {err}"
            );
            gst::FlowError::Error
        })?;
        let memory = segment.claim(0, size).map_err(|err| {
            gst::error!(CAT, imp = self, "cannot claim a new segment: {err}");
            gst::FlowError::Error
        })?;
        gst::debug!(
            CAT,
            imp = self,
            "new segment {:?} of {size} bytes",
            segment.id()
        );
        let mut buffer = gst::Buffer::new();
        buffer
            .get_mut()
            .expect("new buffer is writable")
            .append_memory(gst::Memory::from_mut_slice(memory));
        Ok(buffer)
    }
}
