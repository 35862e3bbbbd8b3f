// SPDX-License-Identifier: MPL-2.0
//! The buffer pool `shmzerosink` proposes upstream: every buffer is a slot of a memfd segment
//! that readers have already mapped, so upstream writes straight into shared memory.
//!
//! Buffers are not recycled by GstBufferPool's queue: a slot may still be held by readers when
//! its buffer returns, so each acquire takes a slot that is free for writer *and* readers from
//! the slot table, and wraps it in a fresh GstBuffer (two small allocations, no page faults:
//! the segment stays mapped).

use std::sync::Arc;

use gst::glib;
use gst::subclass::prelude::*;

use crate::hub::Hub;

mod imp;

glib::wrapper! {
    pub struct ShmZeroPool(ObjectSubclass<imp::ShmZeroPool>)
        @extends gst::BufferPool, gst::Object;
}

impl ShmZeroPool {
    pub(crate) fn new(hub: Arc<Hub>) -> Self {
        let pool: Self = glib::Object::new();
        pool.imp().set_hub(hub);
        pool
    }
}
