// SPDX-License-Identifier: MPL-2.0
//! GStreamer plugin `v4l2stateless`: V4L2 stateless decoders.
//!
//! Elements are registered here only once they really work.

pub mod codec;
pub mod device;
pub mod media;
pub mod stateless;

use gst::glib;

fn plugin_init(_plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    Ok(())
}

gst::plugin_define!(
    v4l2stateless,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MPL",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_REPOSITORY"),
    env!("BUILD_REL_DATE")
);
