// SPDX-License-Identifier: MPL-2.0
//! `shmzerosink`: offers upstream a pool of shared-memory buffers and hands every buffer to
//! the connected `shmzerosrc` readers as a descriptor (no copy).

use gst::glib;
use gst::prelude::*;

mod imp;
mod writer;

glib::wrapper! {
    pub struct ShmZeroSink(ObjectSubclass<imp::ShmZeroSink>)
        @extends gst_base::BaseSink, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "shmzerosink",
        gst::Rank::NONE,
        ShmZeroSink::static_type(),
    )
}
