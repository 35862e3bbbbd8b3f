// SPDX-License-Identifier: MPL-2.0
//! Byte-stream transports for spicepass, free of GStreamer types.
//!
//! Four ways to reach the peer, each usable as the listening or the connecting side:
//! a unix stream socket, TCP (loopback unless told otherwise), an already-open fd
//! (socketpair, inherited) and a character device or file opened read-write — the guest
//! end of a virtio-serial port, which reports `POLLHUP` while no host end is attached.
//! A fifth, connect-only: a SPICE server's port channel (`spicepass+spice://`).
//!
//! All I/O is non-blocking and every wait goes through [`wait`], which polls the link
//! together with a [`Canceller`] and a timeout, so a state change to NULL never hangs.

mod address;
mod cancel;
mod link;
mod rendezvous;
mod spice;

pub use address::{Address, AddressError, DEFAULT_SPICE_PORT_NAME, Mode};
pub use cancel::Canceller;
pub use link::{Link, LinkError, MAX_FDS_PER_READ};
pub use rendezvous::Rendezvous;

use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags};

/// What a wait on a link ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// The requested direction is ready.
    Ready,
    /// The peer is gone (or, for a virtio-serial port, not attached yet).
    Hangup,
    /// Nothing happened within the timeout.
    TimedOut,
    /// The canceller fired: the element is shutting down.
    Cancelled,
}

/// Which direction a wait is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Read,
    Write,
}

/// Waits until `fd` is ready in `direction`, hangs up, the canceller fires, or `timeout` passes.
///
/// `EINTR` is retried with the remaining time.
pub fn wait(
    fd: BorrowedFd<'_>,
    direction: Direction,
    cancel: &Canceller,
    timeout: Duration,
) -> std::io::Result<Readiness> {
    let deadline = Instant::now() + timeout;
    let wanted = match direction {
        Direction::Read => PollFlags::IN,
        Direction::Write => PollFlags::OUT,
    };
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let mut fds = [PollFd::from_borrowed_fd(fd, wanted), cancel.poll_fd()];
        let ts = rustix::time::Timespec::try_from(remaining).unwrap_or(rustix::time::Timespec {
            tv_sec: i64::MAX,
            tv_nsec: 0,
        });
        match rustix::event::poll(&mut fds, Some(&ts)) {
            Ok(0) => return Ok(Readiness::TimedOut),
            Ok(_) => {
                if !fds[1].revents().is_empty() {
                    return Ok(Readiness::Cancelled);
                }
                let revents = fds[0].revents();
                // Readable data is delivered before a hang-up so nothing in flight is lost.
                if revents.contains(wanted) {
                    return Ok(Readiness::Ready);
                }
                if revents.intersects(PollFlags::HUP | PollFlags::ERR | PollFlags::NVAL) {
                    return Ok(Readiness::Hangup);
                }
                if remaining.is_zero() {
                    return Ok(Readiness::TimedOut);
                }
            }
            Err(rustix::io::Errno::INTR) => {
                if Instant::now() >= deadline {
                    return Ok(Readiness::TimedOut);
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
}
