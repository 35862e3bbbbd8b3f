// SPDX-License-Identifier: MPL-2.0
//! A wakeup that interrupts every wait on a link (eventfd based).

use std::os::fd::{AsFd, OwnedFd};

use rustix::event::{EventfdFlags, PollFd, PollFlags};

/// Once [`Canceller::cancel`] is called every [`super::wait`] using it returns
/// `Cancelled` until [`Canceller::reset`].
#[derive(Debug)]
pub struct Canceller {
    fd: OwnedFd,
}

impl Canceller {
    pub fn new() -> std::io::Result<Self> {
        let fd = rustix::event::eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
        Ok(Self { fd })
    }

    /// Wakes every current and future wait.
    pub fn cancel(&self) {
        // A full counter (EAGAIN) still means "readable", which is all we need.
        let _ = rustix::io::write(&self.fd, &1u64.to_ne_bytes());
    }

    /// Re-arms after a cancel (used when an element goes back to READY → PAUSED).
    pub fn reset(&self) {
        let mut buf = [0u8; 8];
        let _ = rustix::io::read(&self.fd, &mut buf);
    }

    pub fn is_cancelled(&self) -> bool {
        let mut fds = [self.poll_fd()];
        matches!(
            rustix::event::poll(&mut fds, Some(&rustix::time::Timespec { tv_sec: 0, tv_nsec: 0 })),
            Ok(n) if n > 0
        )
    }

    pub(super) fn poll_fd(&self) -> PollFd<'_> {
        PollFd::from_borrowed_fd(self.fd.as_fd(), PollFlags::IN)
    }
}
