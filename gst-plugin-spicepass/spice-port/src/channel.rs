// SPDX-License-Identifier: MPL-2.0
//! One linked SPICE channel over a non-blocking TCP socket: the link handshake, then
//! messages in and out. Housekeeping the server insists on (PONG for PING, ACK_SYNC and an
//! ACK every window) is answered here so the server keeps sending.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags};

use crate::error::Error;
use crate::link;
use crate::message::{self, AckWindow, ChannelKind, Framer, ServerMessage};
use crate::uri::SpiceUri;
use crate::wire::LINK_HEADER_LEN;

const READ_CHUNK: usize = 64 * 1024;

pub struct Channel {
    stream: TcpStream,
    kind: ChannelKind,
    framer: Framer,
    ack: AckWindow,
    out: Vec<u8>,
    out_sent: usize,
    eof: bool,
}

impl Channel {
    /// Connects and links one channel; every step is bounded by `deadline`.
    pub fn open(
        uri: &SpiceUri,
        connection_id: u32,
        channel_type: u8,
        channel_id: u8,
        kind: ChannelKind,
        deadline: Instant,
    ) -> Result<Self, Error> {
        let addr = uri.authority();
        let remaining = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        let sockaddrs: Vec<_> = std::net::ToSocketAddrs::to_socket_addrs(&addr)
            .map_err(|source| Error::Connect {
                addr: addr.clone(),
                source,
            })?
            .collect();
        let first = sockaddrs.first().ok_or_else(|| Error::Connect {
            addr: addr.clone(),
            source: std::io::Error::new(ErrorKind::NotFound, "no address"),
        })?;
        let stream = TcpStream::connect_timeout(first, remaining)
            .map_err(|source| Error::Connect { addr, source })?;
        stream.set_nodelay(true)?;
        // The handshake is short and strictly request/reply: do it blocking, bounded.
        let timeout = |d: Instant| {
            Some(
                d.saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(1)),
            )
        };
        stream.set_read_timeout(timeout(deadline))?;
        stream.set_write_timeout(timeout(deadline))?;
        let mut s = &stream;
        s.write_all(&link::link_message(
            connection_id,
            channel_type,
            channel_id,
            &[],
        ))
        .map_err(handshake_io)?;
        let mut header = [0u8; LINK_HEADER_LEN];
        s.read_exact(&mut header).map_err(handshake_io)?;
        let mut body = vec![0u8; link::reply_body_len(&header)?];
        s.read_exact(&mut body).map_err(handshake_io)?;
        let reply = link::parse_reply(&body)?;
        s.write_all(&link::auth_message(&reply, &uri.password)?)
            .map_err(handshake_io)?;
        let mut result = [0u8; 4];
        s.read_exact(&mut result).map_err(handshake_io)?;
        link::check_result(result)?;
        stream.set_read_timeout(None)?;
        stream.set_write_timeout(None)?;
        stream.set_nonblocking(true)?;
        Ok(Self {
            stream,
            kind,
            framer: Framer::default(),
            ack: AckWindow::default(),
            out: Vec::new(),
            out_sent: 0,
            eof: false,
        })
    }

    /// The next message that is not housekeeping, reading the socket (waiting up to
    /// `timeout`) only when nothing is buffered. `Ok(None)`: nothing within the timeout.
    pub fn recv(&mut self, timeout: Duration) -> Result<Option<ServerMessage>, Error> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(m) = self.next_buffered()? {
                return Ok(Some(m));
            }
            if self.eof {
                return Err(Error::Closed);
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if !self.wait(PollFlags::IN, remaining)? {
                return Ok(None);
            }
            self.fill()?;
        }
    }

    /// Decodes what is already buffered; never touches the socket for reading.
    pub fn next_buffered(&mut self) -> Result<Option<ServerMessage>, Error> {
        while let Some(raw) = self.framer.next_message()? {
            if self.ack.on_message() {
                self.queue(&message::ack());
            }
            match message::decode(self.kind, raw)? {
                ServerMessage::Ping { id, timestamp } => self.queue(&message::pong(id, timestamp)),
                ServerMessage::SetAck { generation, window } => {
                    self.ack.set(window);
                    self.queue(&message::ack_sync(generation));
                }
                ServerMessage::Disconnecting => return Err(Error::Closed),
                ServerMessage::Other(_) => {}
                m => {
                    self.flush()?;
                    return Ok(Some(m));
                }
            }
        }
        self.flush()?;
        Ok(None)
    }

    /// Reads whatever the socket has now (non-blocking).
    pub fn fill(&mut self) -> Result<(), Error> {
        let mut buf = [0u8; READ_CHUNK];
        loop {
            match (&self.stream).read(&mut buf) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.framer.push(&buf[..n]);
                    if n < buf.len() {
                        return Ok(());
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if is_disconnect(&e) => {
                    self.eof = true;
                    return Ok(());
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Appends a framed client message to the outgoing queue.
    pub fn queue(&mut self, framed: &[u8]) {
        if self.out_sent == self.out.len() {
            self.out.clear();
            self.out_sent = 0;
        }
        self.out.extend_from_slice(framed);
    }

    /// Writes as much of the outgoing queue as the socket takes now.
    pub fn flush(&mut self) -> Result<(), Error> {
        while self.out_sent < self.out.len() {
            match (&self.stream).write(&self.out[self.out_sent..]) {
                Ok(n) => self.out_sent += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if is_disconnect(&e) => return Err(Error::Closed),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Bytes queued but not yet written to the socket.
    pub fn unsent(&self) -> usize {
        self.out.len() - self.out_sent
    }

    pub fn is_eof(&self) -> bool {
        self.eof
    }

    /// Waits for `flags` on the socket; false on timeout. A hang-up counts as ready so the
    /// caller reads the EOF.
    pub fn wait(&self, flags: PollFlags, timeout: Duration) -> Result<bool, Error> {
        let ts = rustix::time::Timespec::try_from(timeout).unwrap_or(rustix::time::Timespec {
            tv_sec: i64::MAX,
            tv_nsec: 0,
        });
        let mut fds = [PollFd::new(&self.stream, flags)];
        loop {
            match rustix::event::poll(&mut fds, Some(&ts)) {
                Ok(n) => return Ok(n > 0),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(std::io::Error::from(e).into()),
            }
        }
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.stream.as_fd()
    }
}

fn is_disconnect(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::ConnectionReset | ErrorKind::BrokenPipe | ErrorKind::ConnectionAborted
    )
}

fn handshake_io(e: std::io::Error) -> Error {
    match e.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => {
            Error::TimedOut("in the SPICE link handshake")
        }
        ErrorKind::UnexpectedEof => Error::Closed,
        _ => Error::Io(e),
    }
}
