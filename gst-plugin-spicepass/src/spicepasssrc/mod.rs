// SPDX-License-Identifier: MPL-2.0
//! `spicepasssrc`: the client end. Receives the encoded stream and its events from a
//! `spicepasssink`, sends upstream events and periodic position/latency reports back.
//! Handles `spicepass+unix://`, `spicepass+tcp://`, `spicepass+fd://` and `spicepass+dev://`
//! URIs, so `playbin3 uri=spicepass+unix:///run/x.sock` works.

use gst::glib;
use gst::prelude::*;

mod imp;
mod overlay_target;

glib::wrapper! {
    pub struct SpicepassSrc(ObjectSubclass<imp::SpicepassSrc>)
        @extends gst::Element, gst::Object, @implements gst::URIHandler;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "spicepasssrc",
        gst::Rank::PRIMARY,
        SpicepassSrc::static_type(),
    )
}
