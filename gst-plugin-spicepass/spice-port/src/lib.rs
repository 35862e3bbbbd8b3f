// SPDX-License-Identifier: MPL-2.0
//! A SPICE port-channel client in plain Rust (no glib): connect to a SPICE server
//! (`spice://host:port`, optional password), open the port channel a guest exposes with
//! `-chardev spiceport,name=NAME` + `virtserialport,name=NAME`, and exchange bytes with
//! the guest's `/dev/virtio-ports/NAME`.
//!
//! ```no_run
//! use std::time::Duration;
//! use spicepass_spice_port::{ConnectOptions, SpicePort, SpiceUri};
//! let mut port = SpicePort::connect(&ConnectOptions {
//!     uri: SpiceUri::parse("spice://127.0.0.1:5930")?,
//!     port_name: "org.mediapass.0".into(),
//!     timeout: Duration::from_secs(10),
//! })?;
//! port.wait_guest_open(Duration::from_secs(30))?;
//! port.write_all(b"hello guest", Duration::from_secs(5))?;
//! let mut buf = [0u8; 4096];
//! let n = port.read(&mut buf, Duration::from_secs(5))?;
//! # Ok::<(), spicepass_spice_port::Error>(())
//! ```
//!
//! The byte stream has no message boundaries (the server cuts the guest's output into
//! ≤ 64 KiB chunks) and writes fail with [`Error::NoPeer`] while the guest has not opened
//! its end, the SPICE equivalent of `POLLHUP` on a virtio-serial port.
//!
//! [`bridge`] turns a connected port into one end of a socketpair (with a pump thread),
//! for code written against fd transports.

pub mod bridge;
mod channel;
mod error;
pub mod link;
pub mod message;
mod port;
mod uri;
pub mod wire;

pub use bridge::{Bridge, bridge};
pub use error::Error;
pub use port::{ConnectOptions, MAX_CHUNK, PortState, SpicePort};
pub use uri::SpiceUri;
