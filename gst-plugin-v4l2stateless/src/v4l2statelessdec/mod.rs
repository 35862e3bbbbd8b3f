// SPDX-License-Identifier: MPL-2.0
//! `v4l2stateless<codec>dec`: V4L2 stateless (Request API) video decoders, one element
//! per (device, codec), registered at plugin load from the media-controller scan.

use gst::glib;

mod codecs;
mod copy;
mod imp;
mod register;
mod zerocopy;

pub use register::{DeviceDescription, FAKE_DEVICES_ENV};

glib::wrapper! {
    /// The abstract base of every registered decoder element.
    pub struct V4l2StatelessDec(ObjectSubclass<imp::V4l2StatelessDec>)
        @extends gst_video::VideoDecoder, gst::Element, gst::Object;
}

/// Registers one element per decoder device and supported codec.
pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    register::register_all(plugin)
}
