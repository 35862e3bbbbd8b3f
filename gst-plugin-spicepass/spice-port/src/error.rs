// SPDX-License-Identifier: MPL-2.0
use crate::link::LinkError;
use crate::message::DecodeError;

/// Everything that can go wrong talking to a SPICE server. Nothing here panics on bad input.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("bad SPICE URI '{uri}': {why} (expected spice://host:port[?password=...])")]
    Uri { uri: String, why: &'static str },
    #[error("cannot connect to the SPICE server at {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("SPICE connection I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Link(#[from] LinkError),
    #[error("garbage from the SPICE server: {0}")]
    Decode(#[from] DecodeError),
    #[error("SPICE protocol violation: {0}")]
    Protocol(&'static str),
    #[error("no SPICE port channel named '{wanted}' (the server has: {seen:?})")]
    PortNotFound { wanted: String, seen: Vec<String> },
    /// The guest has not opened its end of the port (or closed it): like `POLLHUP` on a
    /// virtio-serial port, there is nobody to write to.
    #[error("no peer: the guest has not opened the SPICE port")]
    NoPeer,
    #[error("timed out {0}")]
    TimedOut(&'static str),
    #[error("the SPICE server closed the connection")]
    Closed,
    #[error("the SPICE main channel failed: {0}")]
    MainChannel(String),
}

impl Error {
    /// A transport-independent view: should the caller wait for a new peer?
    pub fn is_no_peer(&self) -> bool {
        matches!(self, Error::NoPeer)
    }
}
