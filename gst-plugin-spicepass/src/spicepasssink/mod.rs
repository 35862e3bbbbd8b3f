// SPDX-License-Identifier: MPL-2.0
//! `spicepasssink`: the guest end. Sends the still-encoded stream and its events to a
//! `spicepasssrc`, pushes the client's upstream events (seek, QoS, navigation...) into the
//! guest pipeline, and answers POSITION/LATENCY from the client's reports.

use gst::glib;
use gst::prelude::*;

mod imp;

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
    pub struct SpicepassSink(ObjectSubclass<imp::SpicepassSink>) @extends gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "spicepasssink",
        gst::Rank::NONE,
        SpicepassSink::static_type(),
    )
}
