// SPDX-License-Identifier: MPL-2.0
//! `spicepasssink`: the guest end. Sends the still-encoded stream and its events to a
//! `spicepasssrc`, pushes the client's upstream events (seek, QoS, navigation...) into the
//! guest pipeline, and answers POSITION/LATENCY from the client's reports. It implements
//! `GstVideoOverlay`: the render rectangle the guest application sets travels to the client
//! (see `overlay_geometry` for the mapping).

use gst::glib;
use gst::prelude::*;

mod imp;
mod overlay_iface;
mod shared_memory;

#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstSpicepassDropPolicy")]
pub enum DropPolicy {
    #[enum_value(
        name = "Drop buffers while no client is connected (the guest keeps playing)",
        nick = "drop"
    )]
    Drop = 0,
    #[enum_value(
        name = "Block the streaming thread until a client connects",
        nick = "block"
    )]
    Block = 1,
}

glib::wrapper! {
    pub struct SpicepassSink(ObjectSubclass<imp::SpicepassSink>) @extends gst::Element, gst::Object, @implements gst_video::VideoOverlay;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "spicepasssink",
        gst::Rank::NONE,
        SpicepassSink::static_type(),
    )
}
