// SPDX-License-Identifier: MPL-2.0
//! `shmzerosrc`: connects to a `shmzerosink`, maps its shared memory once and pushes each
//! received buffer downstream as read-only memory wrapping that mapping (no copy).

use gst::glib;
use gst::prelude::*;

mod imp;
mod reader;

glib::wrapper! {
    pub struct ShmZeroSrc(ObjectSubclass<imp::ShmZeroSrc>)
        @extends gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "shmzerosrc",
        gst::Rank::NONE,
        ShmZeroSrc::static_type(),
    )
}
