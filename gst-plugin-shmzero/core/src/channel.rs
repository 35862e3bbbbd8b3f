// SPDX-License-Identifier: MPL-2.0
//! One connection between a writer and a reader: a unix `SOCK_SEQPACKET`
//! socket, one [`Message`] per packet, segment fds attached as `SCM_RIGHTS`.
//!
//! The socket is non-blocking; every wait is a `poll` with a timeout. Sends
//! use `MSG_NOSIGNAL` (a dead peer is an error, not a `SIGPIPE`). Received fds
//! are `O_CLOEXEC` and owned, so any fd that arrives where none is expected is
//! closed right away and reported.

use std::io;
use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags};
use rustix::io::Errno;
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags,
    SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};
use thiserror::Error;

use crate::protocol::{DecodeError, EncodeError, MAX_MESSAGE_SIZE, Message, MessageKind};

/// The most fds accepted in one packet's control data; more are a protocol
/// error (the kernel still delivers them, and they are closed).
const MAX_FDS_PER_PACKET: usize = 4;

/// Credentials of the process at the other end, from `SO_PEERCRED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerCredentials {
    /// 0 when the peer is in a PID namespace not visible from ours.
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
}

/// A received message and the fd that came with it (only for
/// [`Message::NewSegment`]).
#[derive(Debug)]
pub struct Received {
    pub message: Message,
    pub fd: Option<OwnedFd>,
}

/// Why a send or receive failed.
#[derive(Debug, Error)]
pub enum ChannelError {
    #[error("the peer closed the connection")]
    Closed,
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("the peer's socket buffer is full")]
    WouldBlock,
    #[error("socket error: {0}")]
    Io(#[from] io::Error),
    #[error("cannot encode message: {0}")]
    Encode(#[from] EncodeError),
    #[error("received garbage: {0}")]
    Decode(#[from] DecodeError),
    #[error("received a packet larger than {MAX_MESSAGE_SIZE} bytes")]
    Oversized,
    #[error("ancillary data was truncated (too many fds)")]
    FdsTruncated,
    #[error("{kind:?} message came with {count} fds, expected {expected}")]
    WrongFdCount {
        kind: MessageKind,
        count: usize,
        expected: usize,
    },
}

impl ChannelError {
    /// Whether the error means the peer is gone (as opposed to misbehaving).
    pub fn is_disconnect(&self) -> bool {
        match self {
            ChannelError::Closed => true,
            ChannelError::Io(e) => matches!(
                e.raw_os_error(),
                Some(code) if code == Errno::PIPE.raw_os_error()
                    || code == Errno::CONNRESET.raw_os_error()
                    || code == Errno::NOTCONN.raw_os_error()
            ),
            _ => false,
        }
    }
}

/// A connected control socket.
#[derive(Debug)]
pub struct Channel {
    fd: OwnedFd,
    /// Receive scratch space, one byte larger than the largest message so an
    /// oversized packet is recognised even without `MSG_TRUNC` support.
    recv_buf: Mutex<Vec<u8>>,
    send_buf: Mutex<Vec<u8>>,
}

impl Channel {
    /// Wraps a connected `SOCK_SEQPACKET` unix socket (made non-blocking here).
    pub fn from_fd(fd: OwnedFd) -> io::Result<Self> {
        rustix::io::ioctl_fionbio(&fd, true)?;
        Ok(Channel {
            fd,
            recv_buf: Mutex::new(vec![0; MAX_MESSAGE_SIZE + 1]),
            send_buf: Mutex::new(Vec::with_capacity(256)),
        })
    }

    /// A connected pair, for in-process use and tests.
    pub fn pair() -> io::Result<(Channel, Channel)> {
        let (a, b) = rustix::net::socketpair(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
            None,
        )?;
        Ok((Channel::from_fd(a)?, Channel::from_fd(b)?))
    }

    /// Credentials of the peer process as of connection time.
    pub fn peer_credentials(&self) -> io::Result<PeerCredentials> {
        let (pid, uid, gid) = crate::peercred::peer_credentials(self.fd.as_fd())?;
        Ok(PeerCredentials { pid, uid, gid })
    }

    /// Sends without ever blocking: [`ChannelError::WouldBlock`] if the
    /// socket buffer is full (the writer treats that reader as stalled).
    /// `fd` must be given exactly for [`Message::NewSegment`].
    pub fn try_send(
        &self,
        message: &Message,
        fd: Option<BorrowedFd<'_>>,
    ) -> Result<(), ChannelError> {
        let expected = usize::from(message.carries_fd());
        let count = usize::from(fd.is_some());
        if count != expected {
            return Err(ChannelError::WrongFdCount {
                kind: message.kind(),
                count,
                expected,
            });
        }
        let mut buf = self.send_buf.lock().unwrap_or_else(|e| e.into_inner());
        message.encode_into(&mut buf)?;
        let fd_array;
        let fds: &[BorrowedFd<'_>] = match fd {
            Some(fd) => {
                fd_array = [fd];
                &fd_array
            }
            None => &[],
        };
        let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
            return Err(io::Error::other("control buffer too small for one fd").into());
        }
        let flags = SendFlags::NOSIGNAL | SendFlags::DONTWAIT;
        loop {
            match rustix::net::sendmsg(&self.fd, &[IoSlice::new(&buf)], &mut control, flags) {
                Ok(_) => return Ok(()),
                Err(Errno::INTR) => continue,
                Err(Errno::AGAIN) => return Err(ChannelError::WouldBlock),
                Err(Errno::PIPE) | Err(Errno::CONNRESET) => return Err(ChannelError::Closed),
                Err(e) => return Err(ChannelError::Io(e.into())),
            }
        }
    }

    /// Sends, waiting up to `timeout` for room in the socket buffer.
    pub fn send(
        &self,
        message: &Message,
        fd: Option<BorrowedFd<'_>>,
        timeout: Duration,
    ) -> Result<(), ChannelError> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.try_send(message, fd) {
                Err(ChannelError::WouldBlock) => {
                    self.wait(PollFlags::OUT, deadline, timeout)?;
                }
                other => return other,
            }
        }
    }

    /// Receives one message if one is queued, without blocking.
    pub fn try_recv(&self) -> Result<Option<Received>, ChannelError> {
        let mut buf = self.recv_buf.lock().unwrap_or_else(|e| e.into_inner());
        let mut space =
            [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS_PER_PACKET))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let flags = RecvFlags::CMSG_CLOEXEC | RecvFlags::DONTWAIT;
        let result = loop {
            match rustix::net::recvmsg(
                &self.fd,
                &mut [IoSliceMut::new(&mut buf)],
                &mut control,
                flags,
            ) {
                Err(Errno::INTR) => continue,
                other => break other,
            }
        };
        let msg = match result {
            Ok(msg) => msg,
            Err(Errno::AGAIN) => return Ok(None),
            Err(Errno::CONNRESET) => return Err(ChannelError::Closed),
            Err(e) => return Err(ChannelError::Io(e.into())),
        };
        // Take ownership of every fd first, so each is closed on any error path.
        let mut fds: Vec<OwnedFd> = Vec::new();
        for ancillary in control.drain() {
            if let RecvAncillaryMessage::ScmRights(received) = ancillary {
                fds.extend(received);
            }
        }
        if msg.bytes == 0 && fds.is_empty() {
            // A zero-length read on a SEQPACKET socket is end of stream; the
            // protocol never sends empty packets.
            return Err(ChannelError::Closed);
        }
        if msg.flags.contains(ReturnFlags::TRUNC) || msg.bytes > MAX_MESSAGE_SIZE {
            return Err(ChannelError::Oversized);
        }
        if msg.flags.contains(ReturnFlags::CTRUNC) {
            return Err(ChannelError::FdsTruncated);
        }
        let message = Message::decode(&buf[..msg.bytes])?;
        let expected = usize::from(message.carries_fd());
        if fds.len() != expected {
            return Err(ChannelError::WrongFdCount {
                kind: message.kind(),
                count: fds.len(),
                expected,
            });
        }
        Ok(Some(Received {
            message,
            fd: fds.pop(),
        }))
    }

    /// Receives one message, waiting up to `timeout`.
    pub fn recv(&self, timeout: Duration) -> Result<Received, ChannelError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(received) = self.try_recv()? {
                return Ok(received);
            }
            self.wait(PollFlags::IN, deadline, timeout)?;
        }
    }

    /// Sends raw bytes as one packet, bypassing the encoder. Only for tests
    /// of the peer's handling of garbage.
    pub fn send_raw(&self, bytes: &[u8]) -> Result<(), ChannelError> {
        match rustix::net::send(&self.fd, bytes, SendFlags::NOSIGNAL | SendFlags::DONTWAIT) {
            Ok(_) => Ok(()),
            Err(Errno::AGAIN) => Err(ChannelError::WouldBlock),
            Err(Errno::PIPE) | Err(Errno::CONNRESET) => Err(ChannelError::Closed),
            Err(e) => Err(ChannelError::Io(e.into())),
        }
    }

    /// Waits for `events` (or hang-up/error, which the next call reports).
    fn wait(
        &self,
        events: PollFlags,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<(), ChannelError> {
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(ChannelError::Timeout(timeout));
            }
            if poll_one(self.fd.as_fd(), events, remaining)? {
                return Ok(());
            }
        }
    }
}

impl AsFd for Channel {
    /// For adding the connection to the caller's own poll loop.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Polls one fd; true if it became ready (including hang-up or error).
pub(crate) fn poll_one(
    fd: BorrowedFd<'_>,
    events: PollFlags,
    timeout: Duration,
) -> io::Result<bool> {
    let timespec = rustix::event::Timespec {
        tv_sec: timeout.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: i64::from(timeout.subsec_nanos()),
    };
    let mut fds = [PollFd::from_borrowed_fd(fd, events)];
    match rustix::event::poll(&mut fds, Some(&timespec)) {
        Ok(n) => Ok(n > 0),
        // Interrupted: report "not ready"; callers loop on their deadline.
        Err(Errno::INTR) => Ok(false),
        Err(e) => Err(e.into()),
    }
}
