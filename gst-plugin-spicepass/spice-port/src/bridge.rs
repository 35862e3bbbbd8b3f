// SPDX-License-Identifier: MPL-2.0
//! A SPICE port as a plain socket: one end of a socketpair, with a thread moving bytes
//! between the other end and the port channel. Code written for fd transports (poll,
//! non-blocking read/write) then works unchanged over SPICE.
//!
//! Semantics follow QEMU's `-chardev socket` host end of a virtio-serial port: the socket
//! stays connected while the guest closes and reopens its end; bytes written while the
//! guest has the port closed wait here (up to [`MAX_PENDING`], then the socket is left
//! unread, back-pressuring the writer). The socket reports EOF when the SPICE session
//! ends, after every byte the guest sent before that; closing the returned fd ends the
//! session.

use std::io::{ErrorKind, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::thread::JoinHandle;
use std::time::Duration;

use rustix::event::{PollFd, PollFlags};

use crate::error::Error;
use crate::port::SpicePort;

/// Client → guest bytes held while the guest has not opened the port.
pub const MAX_PENDING: usize = 1024 * 1024;
const TICK: Duration = Duration::from_millis(100);
/// How long the bytes left over when the session ends wait for the caller to read them
/// (a caller that stopped reading must not keep the pump thread alive for ever).
pub const DRAIN_LIMIT: Duration = Duration::from_secs(60);

/// The fd the caller uses, and the pump thread (ends when either side closes).
#[derive(Debug)]
pub struct Bridge {
    pub fd: OwnedFd,
    pub thread: JoinHandle<Result<(), Error>>,
}

/// Hands `port` to a pump thread and returns the caller's end of the socketpair.
pub fn bridge(port: SpicePort) -> std::io::Result<Bridge> {
    let (ours, theirs) = UnixStream::pair()?;
    ours.set_nonblocking(true)?;
    let thread = std::thread::Builder::new()
        .name("spice-bridge".into())
        .spawn(move || pump(port, ours))?;
    Ok(Bridge {
        fd: theirs.into(),
        thread,
    })
}

fn pump(mut port: SpicePort, mut sock: UnixStream) -> Result<(), Error> {
    let mut to_sock: Vec<u8> = Vec::new();
    let mut to_port: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // Port → socket.
        while to_sock.len() < MAX_PENDING {
            match port.try_read(&mut buf) {
                Ok(Some(n)) => to_sock.extend_from_slice(&buf[..n]),
                Ok(None) => break,
                Err(e) => {
                    // The session is over, but what the guest sent before it ended is
                    // delivered: EOF comes after the last byte, as on a socket.
                    deliver_rest(&sock, &to_sock);
                    return Err(e);
                }
            }
        }
        if !to_sock.is_empty() {
            // MSG_NOSIGNAL: in a C host application SIGPIPE is not ignored and would kill it.
            match rustix::net::send(&sock, &to_sock, rustix::net::SendFlags::NOSIGNAL) {
                Ok(n) => {
                    to_sock.drain(..n);
                }
                Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => {}
                // The caller closed its end: the session ends with it.
                Err(_) => return Ok(()),
            }
        }
        // Socket → port.
        if to_port.len() < MAX_PENDING {
            match sock.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => to_port.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => return Ok(()),
            }
        }
        if !to_port.is_empty() && port.guest_open() {
            match port.try_write(&to_port) {
                Ok(Some(n)) => {
                    to_port.drain(..n);
                }
                Ok(None) | Err(Error::NoPeer) => {}
                Err(e) => return Err(e),
            }
        }
        // Sleep until something can move (or a tick passes, to notice state changes).
        let mut sock_flags = PollFlags::empty();
        if to_port.len() < MAX_PENDING {
            sock_flags |= PollFlags::IN;
        }
        if !to_sock.is_empty() {
            sock_flags |= PollFlags::OUT;
        }
        // A full buffer towards the socket leaves the port unread (no busy loop).
        let port_flags = if to_sock.len() < MAX_PENDING {
            PollFlags::IN
        } else {
            PollFlags::empty()
        };
        let mut fds = [
            PollFd::from_borrowed_fd(port.fd(), port_flags),
            PollFd::from_borrowed_fd(sock.as_fd(), sock_flags),
        ];
        let ts = rustix::time::Timespec::try_from(TICK).expect("small duration");
        match rustix::event::poll(&mut fds, Some(&ts)) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(std::io::Error::from(e).into()),
        }
    }
}

/// Hands `rest` to the caller's end before the session's end is reported (bounded by
/// [`DRAIN_LIMIT`]), then half-closes so the caller reads EOF after the last byte.
fn deliver_rest(sock: &UnixStream, mut rest: &[u8]) {
    let deadline = std::time::Instant::now() + DRAIN_LIMIT;
    while !rest.is_empty() {
        match rustix::net::send(sock, rest, rustix::net::SendFlags::NOSIGNAL) {
            Ok(n) => rest = &rest[n..],
            Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => {
                let remaining = deadline.saturating_duration_since(std::time::Instant::now());
                if remaining.is_zero() {
                    break;
                }
                let mut fds = [PollFd::from_borrowed_fd(sock.as_fd(), PollFlags::OUT)];
                let ts =
                    rustix::time::Timespec::try_from(remaining.min(TICK)).expect("small duration");
                let _ = rustix::event::poll(&mut fds, Some(&ts));
            }
            // The caller closed its end: nobody left to deliver to.
            Err(_) => break,
        }
    }
    let _ = sock.shutdown(std::net::Shutdown::Write);
}
