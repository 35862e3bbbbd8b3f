// SPDX-License-Identifier: MPL-2.0
//! GStreamer plugin `v4l2stateless`: V4L2 stateless decoders.
//!
//! One decoder element per (device, codec) found at plugin load; see the README.

pub mod codec;
pub mod device;
pub mod media;
pub mod stateless;
pub mod v4l2;
pub mod v4l2statelessdec;

use gst::glib;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    v4l2statelessdec::register(plugin)
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
