// SPDX-License-Identifier: MPL-2.0
//! Exposes a SPICE port channel as a unix socket, one client connection at a time:
//!
//! ```text
//! spice-port-proxy spice://127.0.0.1:5930 org.mediapass.0 /run/mediapass/port.sock
//! gst-launch-1.0 spicepasssrc uri=spicepass+unix:///run/mediapass/port.sock ! decodebin ! autovideosink
//! ```
//!
//! The SPICE session is opened when a client connects and closed when it leaves.

use std::os::unix::net::{UnixListener, UnixStream};
use std::time::Duration;

use spicepass_spice_port::{ConnectOptions, SpicePort, SpiceUri, bridge};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: spice-port-proxy spice://HOST:PORT[?password=P] PORT_NAME SOCKET_PATH");
        std::process::exit(2);
    }
    let options = match SpiceUri::parse(&args[1]) {
        Ok(uri) => ConnectOptions {
            uri,
            port_name: args[2].clone(),
            timeout: Duration::from_secs(10),
        },
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let _ = std::fs::remove_file(&args[3]);
    let listener = UnixListener::bind(&args[3]).unwrap_or_else(|e| {
        eprintln!("cannot listen on {}: {e}", args[3]);
        std::process::exit(1);
    });
    for client in listener.incoming() {
        let client = match client {
            Ok(c) => c,
            Err(e) => {
                eprintln!("accept: {e}");
                continue;
            }
        };
        let port = match SpicePort::connect(&options) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("{e}");
                continue;
            }
        };
        eprintln!("client connected, SPICE port '{}' open", port.name());
        match bridge(port) {
            Ok(b) => splice(client, UnixStream::from(b.fd)),
            Err(e) => eprintln!("bridge: {e}"),
        }
        eprintln!("client gone");
    }
}

/// Copies both ways until either side closes.
fn splice(a: UnixStream, b: UnixStream) {
    let (Ok(a2), Ok(b2)) = (a.try_clone(), b.try_clone()) else {
        return;
    };
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut &a2, &mut &b2);
        let _ = b2.shutdown(std::net::Shutdown::Both);
    });
    let _ = std::io::copy(&mut &b, &mut &a);
    let _ = a.shutdown(std::net::Shutdown::Both);
    let _ = up.join();
}
