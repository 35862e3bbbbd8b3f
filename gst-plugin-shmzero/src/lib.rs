// SPDX-License-Identifier: MPL-2.0
//! GStreamer plugin `shmzero`: zero-copy shared-memory transport between processes.
//!
//! * `shmzerosink` offers upstream a buffer pool whose memory lives in memfd segments, and
//!   sends each buffer to any number of reader processes as a small descriptor.
//! * `shmzerosrc` maps those segments once and wraps each descriptor into read-only memory,
//!   without copying; it tells the writer when the buffer is free again.
//!
//! The protocol, memory bookkeeping and sockets live in the GStreamer-free `shmzero-core`
//! crate; this crate is the GStreamer glue.

use gst::glib;

mod events;
mod hub;
pub mod pool;
mod reader_memory;
mod shmzerosink;
mod shmzerosrc;
mod stats;
mod video_layout;

/// Where the plugin's documentation lives (shown as "Documentation" by gst-inspect-1.0),
/// relative to the repository root like the other mediapass plugins.
pub(crate) const DOC_URI: &str = "gst-plugin-shmzero/README.md";

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    shmzerosink::register(plugin)?;
    shmzerosrc::register(plugin)?;
    Ok(())
}

gst::plugin_define!(
    shmzero,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MPL",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_REPOSITORY"),
    env!("BUILD_REL_DATE")
);

/// The one always-present pad of both elements: any caps (the sink forwards whatever it gets,
/// the source announces what the writer sent).
pub(crate) fn any_caps_pad_template(name: &str, direction: gst::PadDirection) -> gst::PadTemplate {
    gst::PadTemplate::new(
        name,
        direction,
        gst::PadPresence::Always,
        &gst::Caps::new_any(),
    )
    .expect("valid pad template with any caps")
}
