// SPDX-License-Identifier: MPL-2.0
//! GStreamer plugin `spicepass`: Media redirection (encoded streams with bidirectional events).
//!
//! * `spicepasssink` (guest): sends the encoded stream and its events to the client.
//! * `spicepasssrc` (client): receives them and sends upstream events and reports back.
//!
//! The wire protocol lives in the `spicepass-protocol` crate; [`transport`] moves its bytes.

use gst::glib;

mod endpoint;
pub mod event_codec;
mod overlay_geometry;
mod session;
mod shm;
mod spicepasssink;
mod spicepasssrc;
mod stats;
pub mod transport;

pub use spicepasssink::{DropPolicy, SpicepassSink};
pub use spicepasssrc::SpicepassSrc;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    spicepasssink::register(plugin)?;
    spicepasssrc::register(plugin)?;
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
