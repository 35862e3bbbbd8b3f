// SPDX-License-Identifier: MPL-2.0
//! [`SpicePort`]: the byte stream of one named SPICE port channel.

use std::collections::VecDeque;
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustix::event::PollFlags;

use crate::channel::Channel;
use crate::error::Error;
use crate::message::{ChannelKind, ServerMessage, encode_into};
use crate::uri::SpiceUri;
use crate::wire::{channel_type, msgc, port_event};

/// Port data per client message; spice-server sends the same size the other way.
pub const MAX_CHUNK: usize = 64 * 1024;
/// Received bytes kept before the socket is left unread (the server then stops sending
/// after its ACK window, which back-pressures the guest).
const MAX_RECEIVED: usize = 4 * 1024 * 1024;

/// Where to connect and which port to open.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub uri: SpiceUri,
    /// The `name=` of the guest's `-chardev spiceport` / `virtserialport`.
    pub port_name: String,
    /// Bound for the whole connection: TCP, links, main init, finding the port.
    pub timeout: Duration,
}

/// A state change of the guest's end of the port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortState {
    GuestOpen,
    GuestClosed,
}

/// A connected SPICE session with one port channel open.
///
/// Reading and writing go through the port channel's socket; the main channel (which must
/// stay up for the session to live, and answers the server's pings) is kept by a thread.
pub struct SpicePort {
    port: Channel,
    name: String,
    guest_open: bool,
    received: VecDeque<u8>,
    main: MainKeeper,
}

impl std::fmt::Debug for SpicePort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpicePort")
            .field("name", &self.name)
            .field("guest_open", &self.guest_open)
            .finish_non_exhaustive()
    }
}

impl SpicePort {
    /// Connects the main channel, lists the channels and opens the port channel whose
    /// `PORT_INIT` carries `options.port_name`.
    pub fn connect(options: &ConnectOptions) -> Result<Self, Error> {
        let deadline = Instant::now() + options.timeout;
        let uri = &options.uri;
        let mut main = Channel::open(uri, 0, channel_type::MAIN, 0, ChannelKind::Main, deadline)?;
        let session_id = loop {
            match recv_before(&mut main, deadline, "waiting for the main channel init")? {
                ServerMessage::MainInit { session_id } => break session_id,
                _ => continue,
            }
        };
        let mut attach = Vec::new();
        encode_into(&mut attach, msgc::MAIN_ATTACH_CHANNELS, &[]);
        main.queue(&attach);
        main.flush()?;
        let channels = loop {
            match recv_before(&mut main, deadline, "waiting for the channel list")? {
                ServerMessage::ChannelsList(list) => break list,
                _ => continue,
            }
        };
        let mut seen = Vec::new();
        for (_, id) in channels.iter().filter(|(t, _)| *t == channel_type::PORT) {
            let mut port = Channel::open(
                uri,
                session_id,
                channel_type::PORT,
                *id,
                ChannelKind::Port,
                deadline,
            )?;
            let (name, opened) = loop {
                match recv_before(&mut port, deadline, "waiting for the port init")? {
                    ServerMessage::PortInit { name, opened } => break (name, opened),
                    ServerMessage::Data(_) | ServerMessage::PortEvent(_) => {
                        return Err(Error::Protocol("port data before PORT_INIT"));
                    }
                    _ => continue,
                }
            };
            let name = String::from_utf8_lossy(&name).into_owned();
            if name == options.port_name {
                return Ok(Self {
                    port,
                    name,
                    guest_open: opened,
                    received: VecDeque::new(),
                    main: MainKeeper::spawn(main),
                });
            }
            seen.push(name);
        }
        Err(Error::PortNotFound {
            wanted: options.port_name.clone(),
            seen,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the guest has the port open (writes are refused otherwise).
    pub fn guest_open(&self) -> bool {
        self.guest_open
    }

    /// Non-blocking: handles whatever the server sent, returning the last port state change.
    ///
    /// When the session ends (server closed, main channel failed) the bytes the port channel
    /// already delivered are still handed out; the error comes once they are all read.
    pub fn pump(&mut self) -> Result<Option<PortState>, Error> {
        if self.received.len() < MAX_RECEIVED {
            self.port.fill()?;
        }
        let mut change = None;
        while self.received.len() < MAX_RECEIVED {
            match self.port.next_buffered()? {
                Some(ServerMessage::Data(bytes)) => self.received.extend(&bytes[..]),
                Some(ServerMessage::CompressedData) => {
                    return Err(Error::Protocol(
                        "compressed port data (LZ4 was not offered)",
                    ));
                }
                Some(ServerMessage::PortEvent(port_event::OPENED)) => {
                    self.guest_open = true;
                    change = Some(PortState::GuestOpen);
                }
                Some(ServerMessage::PortEvent(port_event::CLOSED)) => {
                    self.guest_open = false;
                    change = Some(PortState::GuestClosed);
                }
                Some(_) => {}
                None => break,
            }
        }
        if self.received.is_empty() {
            if self.port.is_eof() {
                return Err(Error::Closed);
            }
            self.main.check()?;
        }
        Ok(change)
    }

    /// Non-blocking read: `Ok(None)` when nothing has arrived.
    pub fn try_read(&mut self, buf: &mut [u8]) -> Result<Option<usize>, Error> {
        if self.received.is_empty() {
            self.pump()?;
        }
        if self.received.is_empty() {
            return Ok(None);
        }
        let (front, back) = self.received.as_slices();
        let from_front = buf.len().min(front.len());
        buf[..from_front].copy_from_slice(&front[..from_front]);
        let from_back = (buf.len() - from_front).min(back.len());
        buf[from_front..from_front + from_back].copy_from_slice(&back[..from_back]);
        let n = from_front + from_back;
        self.received.drain(..n);
        Ok(Some(n))
    }

    /// Reads at least one byte, waiting up to `timeout`.
    pub fn read(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, Error> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(n) = self.try_read(buf)? {
                return Ok(n);
            }
            self.wait_readable(deadline, "reading the SPICE port")?;
        }
    }

    /// Non-blocking write of up to [`MAX_CHUNK`] bytes: `Ok(None)` when the socket is full,
    /// [`Error::NoPeer`] while the guest has not opened the port.
    pub fn try_write(&mut self, data: &[u8]) -> Result<Option<usize>, Error> {
        self.pump()?;
        if !self.guest_open {
            return Err(Error::NoPeer);
        }
        self.port.flush()?;
        if self.port.unsent() > 0 {
            return Ok(None);
        }
        let n = data.len().min(MAX_CHUNK);
        let mut framed = Vec::with_capacity(n + 6);
        encode_into(&mut framed, msgc::SPICEVMC_DATA, &data[..n]);
        self.port.queue(&framed);
        self.port.flush()?;
        Ok(Some(n))
    }

    /// Writes all of `data` within `timeout` (accepted bytes may still sit in this process
    /// until [`flush`](Self::flush)).
    pub fn write_all(&mut self, mut data: &[u8], timeout: Duration) -> Result<(), Error> {
        let deadline = Instant::now() + timeout;
        while !data.is_empty() {
            match self.try_write(data)? {
                Some(n) => data = &data[n..],
                None => self.wait_writable(deadline)?,
            }
        }
        Ok(())
    }

    /// Waits until everything accepted has been handed to the kernel.
    pub fn flush(&mut self, timeout: Duration) -> Result<(), Error> {
        let deadline = Instant::now() + timeout;
        loop {
            self.port.flush()?;
            if self.port.unsent() == 0 {
                return Ok(());
            }
            self.wait_writable(deadline)?;
        }
    }

    /// Waits until the guest opens the port.
    pub fn wait_guest_open(&mut self, timeout: Duration) -> Result<(), Error> {
        let deadline = Instant::now() + timeout;
        loop {
            self.pump()?;
            if self.guest_open {
                return Ok(());
            }
            self.wait_readable(deadline, "waiting for the guest to open the port")?;
        }
    }

    /// The port channel's socket, for a caller's own poll loop: poll it for readability,
    /// then call [`try_read`](Self::try_read) until it returns `None` (data may already
    /// be buffered here without the socket being readable).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.port.fd()
    }

    fn wait_readable(&mut self, deadline: Instant, what: &'static str) -> Result<(), Error> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(Error::TimedOut(what));
        }
        // Short slices so a dead main channel is noticed while waiting.
        self.port
            .wait(PollFlags::IN, remaining.min(Duration::from_millis(200)))?;
        Ok(())
    }

    fn wait_writable(&mut self, deadline: Instant) -> Result<(), Error> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(Error::TimedOut("writing to the SPICE port"));
        }
        // Also wake for input (a port event such as "guest closed" must end the wait), unless
        // received data is already at its cap: then input would wake us without end.
        let mut flags = PollFlags::OUT;
        if self.received.len() < MAX_RECEIVED {
            flags |= PollFlags::IN;
        }
        self.port
            .wait(flags, remaining.min(Duration::from_millis(200)))?;
        Ok(())
    }
}

fn recv_before(
    channel: &mut Channel,
    deadline: Instant,
    what: &'static str,
) -> Result<ServerMessage, Error> {
    let remaining = deadline.saturating_duration_since(Instant::now());
    channel.recv(remaining)?.ok_or(Error::TimedOut(what))
}

/// Services the main channel (pings, acks) until dropped; the session ends with it.
struct MainKeeper {
    stop: Arc<AtomicBool>,
    failure: Arc<Mutex<Option<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl MainKeeper {
    fn spawn(mut main: Channel) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let failure = Arc::new(Mutex::new(None));
        let thread = {
            let stop = stop.clone();
            let failure = failure.clone();
            std::thread::Builder::new()
                .name("spice-main".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        if let Err(e) = main.recv(Duration::from_millis(100)) {
                            *failure.lock().unwrap_or_else(|p| p.into_inner()) =
                                Some(e.to_string());
                            return;
                        }
                    }
                })
                .ok()
        };
        Self {
            stop,
            failure,
            thread,
        }
    }

    fn check(&self) -> Result<(), Error> {
        if self.thread.is_none() {
            return Err(Error::MainChannel("could not start its thread".into()));
        }
        match &*self.failure.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(why) => Err(Error::MainChannel(why.clone())),
            None => Ok(()),
        }
    }
}

impl Drop for MainKeeper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            // The loop wakes every 100 ms: the join is bounded.
            let _ = thread.join();
        }
    }
}
