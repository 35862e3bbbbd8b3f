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

/// One SPICE session to `host:port`, opened on the port channel named `port_name`.
/// `Ok(None)`: no server listening there yet (retried by the caller).
pub fn connect(
    host: &str,
    port: u16,
    port_name: &str,
    password: &str,
    timeout: Duration,
) -> Result<Option<Link>, LinkError> {
    let options = ConnectOptions {
        uri: SpiceUri {
            host: host.to_owned(),
            port,
            password: password.to_owned(),
        },
        port_name: port_name.to_owned(),
        timeout: timeout.max(MIN_SETUP),
    };
    let spice_port = match SpicePort::connect(&options) {
        Ok(p) => p,
        Err(Error::Connect { source, .. })
            if matches!(
                source.kind(),
                std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound
            ) =>
        {
            return Ok(None);
        }
        Err(e) => {
            return Err(LinkError::Io(std::io::Error::other(format!(
                "SPICE port '{port_name}' at {host}:{port}: {e}"
            ))));
        }
    };
    // The pump thread ends when the link (our end of the socketpair) is closed.
    let bridged = bridge(spice_port)?;
    Ok(Some(Link::from_fd(bridged.fd)?))
}
