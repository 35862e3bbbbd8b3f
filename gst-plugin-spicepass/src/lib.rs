// SPDX-License-Identifier: MPL-2.0
//! GStreamer plugin `spicepass`: Media redirection (encoded streams with bidirectional events).
//!
//! Elements are registered here only once they really work.

use gst::glib;

pub mod transport;

fn plugin_init(_plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    Ok(())
}

gst::plugin_define!(
    spicepass,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MPL",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_REPOSITORY"),
    env!("BUILD_REL_DATE")
);
