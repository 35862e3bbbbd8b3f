// SPDX-License-Identifier: MPL-2.0
//! A connected, non-blocking byte stream to the peer.

use std::collections::VecDeque;
use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use rustix::io::Errno;
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags,
    SendAncillaryBuffer, SendAncillaryMessage, SendFlags,
};

use super::{Canceller, Direction, Readiness, wait};

/// Why an I/O call on a link did not complete.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("peer closed the connection")]
    Closed,
    #[error("timed out after {0:?}")]
    TimedOut(Duration),
    #[error("cancelled")]
    Cancelled,
    #[error("the peer passed more than {MAX_FDS_PER_READ} file descriptors at once")]
    TooManyFds,
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl From<Errno> for LinkError {
    fn from(e: Errno) -> Self {
        LinkError::Io(e.into())
    }
}

const SOCKET_BUFFER: usize = 4 * 1024 * 1024;

/// Most fds accepted with one read: a sender attaches one per `Segment` frame, so a few
/// frames read together stay well below it. More is a hostile peer (the kernel closes
/// the fds that do not fit; we report the truncation).
pub const MAX_FDS_PER_READ: usize = 8;

/// How bytes are written: sockets use `sendmsg(MSG_NOSIGNAL)` so a dead peer is an error,
/// not a SIGPIPE that kills the host application; other fds use `writev`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Socket,
    Other,
}

#[derive(Debug)]
pub struct Link {
    fd: OwnedFd,
    kind: Kind,
    /// An `AF_UNIX` socket: fds can be passed with `SCM_RIGHTS`.
    unix: bool,
}

impl Link {
    /// Wraps an fd, switching it to non-blocking mode.
    pub fn from_fd(fd: OwnedFd) -> std::io::Result<Self> {
        rustix::io::ioctl_fionbio(&fd, true)?;
        let stat = rustix::fs::fstat(&fd)?;
        let mut unix = false;
        let kind =
            if rustix::fs::FileType::from_raw_mode(stat.st_mode) == rustix::fs::FileType::Socket {
                // Bigger socket buffers: a raw video frame crosses in a few large reads instead
                // of dozens of wake-ups (best effort, capped by net.core.[rw]mem_max).
                let _ = rustix::net::sockopt::set_socket_send_buffer_size(&fd, SOCKET_BUFFER);
                let _ = rustix::net::sockopt::set_socket_recv_buffer_size(&fd, SOCKET_BUFFER);
                unix = rustix::net::sockopt::socket_domain(&fd)
                    .is_ok_and(|domain| domain == AddressFamily::UNIX);
                Kind::Socket
            } else {
                Kind::Other
            };
        Ok(Self { fd, kind, unix })
    }

    /// Whether fds can travel over this link (`SCM_RIGHTS` on a unix socket).
    pub fn passes_fds(&self) -> bool {
        self.unix
    }

    /// A second handle on the same stream (one reader thread, one writer).
    pub fn try_clone(&self) -> std::io::Result<Self> {
        Ok(Self {
            fd: rustix::io::fcntl_dupfd_cloexec(&self.fd, 0)?,
            kind: self.kind,
            unix: self.unix,
        })
    }

    /// Reads at least one byte into `buf`, waiting at most `timeout`.
    pub fn read_some(
        &self,
        buf: &mut [u8],
        cancel: &Canceller,
        timeout: Duration,
    ) -> Result<usize, LinkError> {
        if buf.is_empty() {
            return Ok(0);
        }
        let deadline = Instant::now() + timeout;
        loop {
            match rustix::io::read(&self.fd, &mut *buf) {
                Ok(0) => return Err(LinkError::Closed),
                Ok(n) => return Ok(n),
                Err(Errno::AGAIN) => {}
                Err(Errno::INTR) => continue,
                // A pty master whose slave closed, a reset socket: the peer is gone.
                Err(Errno::IO | Errno::CONNRESET | Errno::PIPE) => return Err(LinkError::Closed),
                Err(e) => return Err(e.into()),
            }
            self.wait_until(Direction::Read, cancel, deadline, timeout)?;
        }
    }

    /// Like [`Self::read_some`], also collecting fds passed with `SCM_RIGHTS` into `fds`
    /// (in arrival order). More than [`MAX_FDS_PER_READ`] in one read is an error.
    pub fn read_some_with_fds(
        &self,
        buf: &mut [u8],
        fds: &mut VecDeque<OwnedFd>,
        cancel: &Canceller,
        timeout: Duration,
    ) -> Result<usize, LinkError> {
        if buf.is_empty() {
            return Ok(0);
        }
        let deadline = Instant::now() + timeout;
        loop {
            let mut space =
                [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS_PER_READ))];
            let mut control = RecvAncillaryBuffer::new(&mut space);
            match rustix::net::recvmsg(
                &self.fd,
                &mut [IoSliceMut::new(&mut *buf)],
                &mut control,
                RecvFlags::CMSG_CLOEXEC | RecvFlags::DONTWAIT,
            ) {
                Ok(msg) => {
                    let before = fds.len();
                    for ancillary in control.drain() {
                        if let RecvAncillaryMessage::ScmRights(received) = ancillary {
                            fds.extend(received);
                        }
                    }
                    // The control buffer may hold a few more than asked (alignment).
                    if msg.flags.contains(ReturnFlags::CTRUNC)
                        || fds.len() - before > MAX_FDS_PER_READ
                    {
                        fds.truncate(before);
                        return Err(LinkError::TooManyFds);
                    }
                    if msg.bytes == 0 {
                        return Err(LinkError::Closed);
                    }
                    return Ok(msg.bytes);
                }
                Err(Errno::AGAIN) => {}
                Err(Errno::INTR) => continue,
                Err(Errno::IO | Errno::CONNRESET | Errno::PIPE) => return Err(LinkError::Closed),
                Err(e) => return Err(e.into()),
            }
            self.wait_until(Direction::Read, cancel, deadline, timeout)?;
        }
    }

    /// Fills `buf` completely, waiting at most `timeout` between two progressing reads.
    pub fn read_exact(
        &self,
        mut buf: &mut [u8],
        cancel: &Canceller,
        timeout: Duration,
    ) -> Result<(), LinkError> {
        while !buf.is_empty() {
            let n = self.read_some(buf, cancel, timeout)?;
            buf = &mut buf[n..];
        }
        Ok(())
    }

    /// Writes every byte of `parts` (gathered, so a header and a payload leave in one call),
    /// giving up after `timeout` without progress.
    pub fn write_all(
        &self,
        parts: &[&[u8]],
        cancel: &Canceller,
        timeout: Duration,
    ) -> Result<(), LinkError> {
        self.write_all_with_fd(parts, None, cancel, timeout)
    }

    /// [`Self::write_all`], with `fd` attached (`SCM_RIGHTS`) to the first bytes: the
    /// receiver gets it together with the start of `parts`. Unix sockets only.
    pub fn write_all_with_fd(
        &self,
        parts: &[&[u8]],
        mut fd: Option<BorrowedFd<'_>>,
        cancel: &Canceller,
        timeout: Duration,
    ) -> Result<(), LinkError> {
        if fd.is_some() && !self.unix {
            return Err(LinkError::Io(std::io::Error::other(
                "file descriptors can only be passed over a unix socket",
            )));
        }
        let mut part = 0;
        let mut offset = 0;
        while part < parts.len() {
            if parts[part].len() == offset {
                part += 1;
                offset = 0;
                continue;
            }
            let mut slices = Vec::with_capacity(parts.len() - part);
            slices.push(IoSlice::new(&parts[part][offset..]));
            slices.extend(parts[part + 1..].iter().map(|p| IoSlice::new(p)));
            match self.write_vectored(&slices, fd) {
                Ok(mut n) => {
                    // The fd went with these bytes.
                    fd = None;
                    while n > 0 && part < parts.len() {
                        let left = parts[part].len() - offset;
                        if n >= left {
                            n -= left;
                            part += 1;
                            offset = 0;
                        } else {
                            offset += n;
                            n = 0;
                        }
                    }
                }
                Err(Errno::AGAIN) => {
                    let deadline = Instant::now() + timeout;
                    self.wait_until(Direction::Write, cancel, deadline, timeout)?;
                }
                Err(Errno::INTR) => {}
                Err(Errno::PIPE | Errno::CONNRESET | Errno::IO) => return Err(LinkError::Closed),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Tells the peer no more data comes (sockets only); used on an orderly goodbye.
    pub fn shutdown(&self) {
        if self.kind == Kind::Socket {
            let _ = rustix::net::shutdown(&self.fd, rustix::net::Shutdown::Both);
        }
    }

    /// Half-close: the peer reads everything sent so far, then EOF; we can still read.
    /// Closing a TCP socket with unread input would send a reset that can destroy data
    /// the peer has not read yet, so an orderly close is shutdown(write) + drain + close.
    pub fn shutdown_write(&self) {
        if self.kind == Kind::Socket {
            let _ = rustix::net::shutdown(&self.fd, rustix::net::Shutdown::Write);
        }
    }

    fn write_vectored(
        &self,
        slices: &[IoSlice<'_>],
        fd: Option<BorrowedFd<'_>>,
    ) -> Result<usize, Errno> {
        match self.kind {
            Kind::Socket => {
                let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
                let mut control = SendAncillaryBuffer::new(&mut space);
                let fds = fd.as_slice();
                if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
                    return Err(Errno::NOBUFS);
                }
                rustix::net::sendmsg(&self.fd, slices, &mut control, SendFlags::NOSIGNAL)
            }
            Kind::Other => rustix::io::writev(&self.fd, slices),
        }
    }

    fn wait_until(
        &self,
        direction: Direction,
        cancel: &Canceller,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<(), LinkError> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match wait(self.fd.as_fd(), direction, cancel, remaining)? {
            Readiness::Ready => Ok(()),
            // Let the next read/write report the precise condition (EOF, EIO, EPIPE).
            Readiness::Hangup if direction == Direction::Read => Ok(()),
            Readiness::Hangup => Err(LinkError::Closed),
            Readiness::TimedOut => Err(LinkError::TimedOut(timeout)),
            Readiness::Cancelled => Err(LinkError::Cancelled),
        }
    }
}

impl AsFd for Link {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    fn pair() -> (Link, Link) {
        let (a, b) = UnixStream::pair().unwrap();
        (
            Link::from_fd(a.into()).unwrap(),
            Link::from_fd(b.into()).unwrap(),
        )
    }

    #[test]
    fn gathered_write_arrives_in_order() {
        let (a, b) = pair();
        let cancel = Canceller::new().unwrap();
        let big = vec![7u8; 1 << 20];
        let t = std::thread::spawn(move || {
            let cancel = Canceller::new().unwrap();
            a.write_all(&[b"head", &big, b"tail"], &cancel, Duration::from_secs(30))
                .unwrap();
        });
        let mut got = vec![0u8; 4 + (1 << 20) + 4];
        b.read_exact(&mut got, &cancel, Duration::from_secs(30))
            .unwrap();
        t.join().unwrap();
        assert_eq!(&got[..4], b"head");
        assert!(got[4..4 + (1 << 20)].iter().all(|&x| x == 7));
        assert_eq!(&got[got.len() - 4..], b"tail");
    }

    #[test]
    fn read_times_out_and_cancels() {
        let (_a, b) = pair();
        let cancel = Canceller::new().unwrap();
        let mut buf = [0u8; 4];
        assert!(matches!(
            b.read_some(&mut buf, &cancel, Duration::from_millis(20)),
            Err(LinkError::TimedOut(_))
        ));
        cancel.cancel();
        assert!(matches!(
            b.read_some(&mut buf, &cancel, Duration::from_secs(30)),
            Err(LinkError::Cancelled)
        ));
        cancel.reset();
        assert!(!cancel.is_cancelled());
    }

    #[test]
    fn peer_close_is_reported_not_signalled() {
        let (a, b) = pair();
        drop(a);
        let cancel = Canceller::new().unwrap();
        let mut buf = [0u8; 4];
        assert!(matches!(
            b.read_some(&mut buf, &cancel, Duration::from_secs(5)),
            Err(LinkError::Closed)
        ));
        // Without MSG_NOSIGNAL this would kill the test process with SIGPIPE.
        let big = vec![0u8; 1 << 20];
        assert!(matches!(
            b.write_all(&[&big], &cancel, Duration::from_secs(5)),
            Err(LinkError::Closed)
        ));
    }

    #[test]
    fn an_fd_travels_with_the_first_bytes_and_excess_fds_are_refused() {
        let (a, b) = pair();
        assert!(a.passes_fds() && b.passes_fds());
        let cancel = Canceller::new().unwrap();
        let memfd = rustix::fs::memfd_create("link-test", rustix::fs::MemfdFlags::empty()).unwrap();
        rustix::fs::ftruncate(&memfd, 4096).unwrap();
        a.write_all_with_fd(
            &[b"seg", b"ment"],
            Some(memfd.as_fd()),
            &cancel,
            Duration::from_secs(5),
        )
        .unwrap();
        let mut fds = VecDeque::new();
        let mut buf = [0u8; 64];
        let n = b
            .read_some_with_fds(&mut buf, &mut fds, &cancel, Duration::from_secs(5))
            .unwrap();
        assert_eq!(&buf[..n], b"segment");
        assert_eq!(fds.len(), 1);
        let received = fds.pop_front().unwrap();
        assert_eq!(rustix::fs::fstat(&received).unwrap().st_size, 4096);

        // More fds than one read accepts: an error, and the kernel closed the excess.
        let many = vec![memfd.as_fd(); MAX_FDS_PER_READ + 4];
        let mut space = vec![MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(16))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        assert!(control.push(SendAncillaryMessage::ScmRights(&many)));
        rustix::net::sendmsg(&a, &[IoSlice::new(b"x")], &mut control, SendFlags::empty()).unwrap();
        assert!(matches!(
            b.read_some_with_fds(&mut buf, &mut fds, &cancel, Duration::from_secs(5)),
            Err(LinkError::TooManyFds)
        ));
        assert!(fds.is_empty(), "the excess fds were closed");
    }

    #[test]
    fn fds_cannot_be_written_to_a_pipe() {
        let (_read, write) = rustix::pipe::pipe().unwrap();
        let link = Link::from_fd(write).unwrap();
        assert!(!link.passes_fds());
        let cancel = Canceller::new().unwrap();
        let memfd = rustix::fs::memfd_create("link-test", rustix::fs::MemfdFlags::empty()).unwrap();
        assert!(
            link.write_all_with_fd(
                &[b"x"],
                Some(memfd.as_fd()),
                &cancel,
                Duration::from_secs(1)
            )
            .is_err()
        );
    }
}
