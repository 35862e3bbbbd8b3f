// SPDX-License-Identifier: MPL-2.0
//! `spicepass+spice://`: the guest's virtio-serial port reached through a SPICE server's
//! port channel (`-chardev spiceport,name=…` in QEMU). `spicepass-spice-port` speaks SPICE;
//! its bridge turns the port into one end of a socketpair, so the link is an ordinary
//! socket to the rest of spicepass (polling, cancelling, timeouts unchanged).

use std::time::Duration;

use spicepass_spice_port::{ConnectOptions, Error, SpicePort, SpiceUri, bridge};

use super::{Link, LinkError};

/// SPICE connection setup (TCP, RSA ticket, main channel, port lookup) is bounded by this,
/// at least, even if the caller's wait is shorter: a loaded machine needs the time and the
/// worker only calls again when it has nothing else to do.
const MIN_SETUP: Duration = Duration::from_secs(10);

/// Where the SPICE server is and which port channel to open.
#[derive(Debug, Clone, Copy)]
pub struct SpiceTarget<'a> {
    pub host: &'a str,
    pub port: u16,
    pub port_name: &'a str,
    pub password: &'a str,
}

/// Connects to a SPICE port channel and hands it out as a [`Link`] once the guest has the
/// port open.
///
/// Until then the session is kept, not dropped and redialled: the guest only sees a host
/// end (no `POLLHUP`) while a client holds the port channel, and every new SPICE connection
/// makes the server drop its current client (the desktop viewer too, unless the server
/// allows several).
#[derive(Default)]
pub struct SpiceDialer {
    waiting: Option<SpicePort>,
}

impl SpiceDialer {
    /// `Ok(None)`: no server listening yet, or the guest has not opened the port yet
    /// (retried by the caller).
    pub fn try_link(
        &mut self,
        target: SpiceTarget<'_>,
        timeout: Duration,
    ) -> Result<Option<Link>, LinkError> {
        let mut spice_port = match self.waiting.take() {
            Some(p) => p,
            None => match connect(target, timeout)? {
                Some(p) => p,
                None => return Ok(None),
            },
        };
        // Non-blocking: takes in the port events the server sent meanwhile.
        match spice_port.pump() {
            Ok(_) => {}
            // The session died while waiting: the next call opens a new one.
            Err(e) => return Err(session_error(target, &e)),
        }
        if !spice_port.guest_open() {
            self.waiting = Some(spice_port);
            return Ok(None);
        }
        // The pump thread ends when the link (our end of the socketpair) is closed.
        let bridged = bridge(spice_port)?;
        Ok(Some(Link::from_fd(bridged.fd)?))
    }
}

/// One SPICE session to the target, opened on its port channel.
/// `Ok(None)`: no server listening there yet.
fn connect(target: SpiceTarget<'_>, timeout: Duration) -> Result<Option<SpicePort>, LinkError> {
    let options = ConnectOptions {
        uri: SpiceUri {
            host: target.host.to_owned(),
            port: target.port,
            password: target.password.to_owned(),
        },
        port_name: target.port_name.to_owned(),
        timeout: timeout.max(MIN_SETUP),
    };
    match SpicePort::connect(&options) {
        Ok(p) => Ok(Some(p)),
        Err(Error::Connect { source, .. })
            if matches!(
                source.kind(),
                std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(session_error(target, &e)),
    }
}

fn session_error(target: SpiceTarget<'_>, e: &Error) -> LinkError {
    LinkError::Io(std::io::Error::other(format!(
        "SPICE port '{}' at {}:{}: {e}",
        target.port_name, target.host, target.port
    )))
}
