// SPDX-License-Identifier: MPL-2.0
//! Finding the peer: listening (bind once, accept per connection) or connecting (retried),
//! for every [`Address`] kind.

use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::{Address, Canceller, Direction, Link, LinkError, Mode, Readiness, wait};

/// How long to wait between two connection attempts (or two POLLHUP checks of a device).
const RETRY_PERIOD: Duration = Duration::from_millis(100);

enum Listener {
    Unix {
        listener: UnixListener,
        path: PathBuf,
    },
    Tcp(TcpListener),
}

/// One end's way to (re)connect to its peer.
pub struct Rendezvous {
    address: Address,
    mode: Mode,
    listener: Option<Listener>,
    inherited: Option<OwnedFd>,
    spice: super::spice::SpiceDialer,
}

impl Rendezvous {
    /// Prepares the endpoint: binds and listens at once in listen mode (so a peer can connect
    /// as soon as the element is PAUSED), takes a private duplicate of an inherited fd.
    pub fn new(address: Address, mode: Mode) -> std::io::Result<Self> {
        let mut listener = None;
        let mut inherited = None;
        match (&address, mode) {
            (Address::Unix(path), Mode::Listen) => {
                remove_stale_socket(path)?;
                let l = UnixListener::bind(path)?;
                l.set_nonblocking(true)?;
                listener = Some(Listener::Unix {
                    listener: l,
                    path: path.clone(),
                });
            }
            (Address::Tcp { host, port }, Mode::Listen) => {
                let l = TcpListener::bind((host.as_str(), *port))?;
                l.set_nonblocking(true)?;
                listener = Some(Listener::Tcp(l));
            }
            (Address::Spice { .. }, Mode::Listen) => {
                return Err(std::io::Error::other(
                    "a SPICE port is reached through the SPICE server: spicepass+spice:// only \
                     connects (mode=connect)",
                ));
            }
            (Address::Fd(fd), _) => {
                // SAFETY: the application hands us this fd number through a property and
                // keeps it open while the element runs; we only borrow it long enough to
                // duplicate it, so its owner may still close its own copy.
                let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(*fd) };
                inherited = Some(rustix::io::fcntl_dupfd_cloexec(borrowed, 0)?);
            }
            _ => {}
        }
        Ok(Self {
            address,
            mode,
            listener,
            inherited,
            spice: Default::default(),
        })
    }

    /// Whether another link can be made after this one is lost (not for a one-shot fd).
    pub fn can_reconnect(&self) -> bool {
        !matches!(self.address, Address::Fd(_))
    }

    /// The TCP port actually bound (useful with port 0).
    pub fn local_port(&self) -> Option<u16> {
        match &self.listener {
            Some(Listener::Tcp(l)) => l.local_addr().ok().map(|a| a.port()),
            _ => None,
        }
    }

    pub fn describe(&self) -> String {
        format!("{} ({})", self.address, self.mode.as_str())
    }

    /// Waits for the next link: accept, connect (retried every 100 ms) or open the device
    /// once it stops reporting POLLHUP. `Err(TimedOut)` just means "no peer yet".
    pub fn next_link(&mut self, cancel: &Canceller, timeout: Duration) -> Result<Link, LinkError> {
        let deadline = Instant::now() + timeout;
        if let Some(fd) = self.inherited.take() {
            return Ok(Link::from_fd(fd)?);
        }
        if let Address::Fd(fd) = self.address {
            return Err(LinkError::Io(std::io::Error::other(format!(
                "fd {fd} was already used and closed; an fd transport cannot reconnect"
            ))));
        }
        loop {
            if let Some(link) = self.try_once(cancel, deadline)? {
                return Ok(link);
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(LinkError::TimedOut(timeout));
            }
            sleep_cancellable(cancel, remaining.min(RETRY_PERIOD))?;
        }
    }

    fn try_once(
        &mut self,
        cancel: &Canceller,
        deadline: Instant,
    ) -> Result<Option<Link>, LinkError> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match (&self.listener, &self.address) {
            (Some(Listener::Unix { listener, .. }), _) => {
                if !ready(listener.as_fd(), cancel, remaining)? {
                    return Ok(None);
                }
                match listener.accept() {
                    Ok((s, _)) => Ok(Some(Link::from_fd(s.into())?)),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(None),
                    Err(e) => Err(e.into()),
                }
            }
            (Some(Listener::Tcp(listener)), _) => {
                if !ready(listener.as_fd(), cancel, remaining)? {
                    return Ok(None);
                }
                match listener.accept() {
                    Ok((s, _)) => {
                        let _ = s.set_nodelay(true);
                        Ok(Some(Link::from_fd(s.into())?))
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(None),
                    Err(e) => Err(e.into()),
                }
            }
            (None, Address::Unix(path)) => match UnixStream::connect(path) {
                Ok(s) => Ok(Some(Link::from_fd(s.into())?)),
                Err(e) if not_there_yet(&e) => Ok(None),
                Err(e) => Err(e.into()),
            },
            (None, Address::Tcp { host, port }) => {
                let addrs = (host.as_str(), *port).to_socket_addrs()?;
                for addr in addrs {
                    let attempt =
                        remaining.clamp(Duration::from_millis(10), Duration::from_secs(1));
                    match TcpStream::connect_timeout(&addr, attempt) {
                        Ok(s) => {
                            let _ = s.set_nodelay(true);
                            return Ok(Some(Link::from_fd(s.into())?));
                        }
                        Err(e) if not_there_yet(&e) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                Ok(None)
            }
            (None, Address::Device(path)) => open_device(path),
            (None, Address::Fd(_)) => Ok(None),
            (
                None,
                Address::Spice {
                    host,
                    port,
                    port_name,
                    password,
                },
            ) => self.spice.try_link(
                super::spice::SpiceTarget {
                    host,
                    port: *port,
                    port_name,
                    password,
                },
                remaining,
            ),
        }
    }
}

impl Drop for Rendezvous {
    fn drop(&mut self) {
        if let Some(Listener::Unix { path, .. }) = &self.listener {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn ready(
    fd: std::os::fd::BorrowedFd<'_>,
    cancel: &Canceller,
    timeout: Duration,
) -> Result<bool, LinkError> {
    match wait(fd, Direction::Read, cancel, timeout)? {
        Readiness::Ready => Ok(true),
        Readiness::TimedOut | Readiness::Hangup => Ok(false),
        Readiness::Cancelled => Err(LinkError::Cancelled),
    }
}

fn sleep_cancellable(cancel: &Canceller, d: Duration) -> Result<(), LinkError> {
    let (r, _w) = rustix::pipe::pipe()?;
    match wait(r.as_fd(), Direction::Read, cancel, d)? {
        Readiness::Cancelled => Err(LinkError::Cancelled),
        _ => Ok(()),
    }
}

fn not_there_yet(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        NotFound | ConnectionRefused | TimedOut | WouldBlock | ConnectionReset
    )
}

/// A path left by a crashed listener is removed; a path with a live listener is an error
/// (never silently bind elsewhere).
fn remove_stale_socket(path: &std::path::Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => match UnixStream::connect(path) {
            Ok(_) => Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!("{} is in use by a running listener", path.display()),
            )),
            Err(_) => std::fs::remove_file(path),
        },
        Ok(_) => Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a socket", path.display()),
        )),
        Err(_) => Ok(()),
    }
}

/// Opens a character device (virtio-serial port, tty) or file read-write. A virtio-serial port
/// (and a pty whose other side is closed) reports POLLHUP while no peer is attached: then this
/// is "not yet". A tty is switched to raw mode so bytes pass unchanged.
fn open_device(path: &std::path::Path) -> Result<Option<Link>, LinkError> {
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(file) => file,
        // A virtio-serial port appears when the device is hot-plugged: keep waiting.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let fd: OwnedFd = file.into();
    if let Ok(mut tio) = rustix::termios::tcgetattr(&fd) {
        tio.make_raw();
        rustix::termios::tcsetattr(&fd, rustix::termios::OptionalActions::Now, &tio)?;
    }
    let mut fds = [rustix::event::PollFd::new(
        &fd,
        rustix::event::PollFlags::IN,
    )];
    let zero = rustix::time::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    rustix::event::poll(&mut fds, Some(&zero))?;
    if fds[0].revents().contains(rustix::event::PollFlags::HUP) {
        return Ok(None);
    }
    Ok(Some(Link::from_fd(fd)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_listen_connect_and_stale_path() {
        let dir = std::env::temp_dir().join(format!("spicepass-rdv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.sock");
        // A stale socket left by a "crashed" listener.
        drop(UnixListener::bind(&path).unwrap());
        let cancel = Canceller::new().unwrap();
        let mut server = Rendezvous::new(Address::Unix(path.clone()), Mode::Listen).unwrap();
        let mut client = Rendezvous::new(Address::Unix(path.clone()), Mode::Connect).unwrap();
        let c = client.next_link(&cancel, Duration::from_secs(10)).unwrap();
        let s = server.next_link(&cancel, Duration::from_secs(10)).unwrap();
        c.write_all(&[b"hi"], &cancel, Duration::from_secs(5))
            .unwrap();
        let mut b = [0u8; 2];
        s.read_exact(&mut b, &cancel, Duration::from_secs(5))
            .unwrap();
        assert_eq!(&b, b"hi");
        // A second live listener on the same path is refused, not silently renamed.
        assert!(Rendezvous::new(Address::Unix(path.clone()), Mode::Listen).is_err());
        drop(server);
        assert!(!path.exists(), "listener removes its socket path");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn tcp_port_zero_and_connect_timeout() {
        let cancel = Canceller::new().unwrap();
        let addr = |port| Address::Tcp {
            host: "127.0.0.1".into(),
            port,
        };
        let mut server = Rendezvous::new(addr(0), Mode::Listen).unwrap();
        let port = server.local_port().unwrap();
        let mut client = Rendezvous::new(addr(port), Mode::Connect).unwrap();
        let _c = client.next_link(&cancel, Duration::from_secs(10)).unwrap();
        let _s = server.next_link(&cancel, Duration::from_secs(10)).unwrap();
        // Nobody else connects: accepting times out.
        assert!(matches!(
            server.next_link(&cancel, Duration::from_millis(50)),
            Err(LinkError::TimedOut(_))
        ));
        cancel.cancel();
        assert!(matches!(
            server.next_link(&cancel, Duration::from_secs(30)),
            Err(LinkError::Cancelled)
        ));
    }

    #[test]
    fn missing_device_is_not_there_yet() {
        let cancel = Canceller::new().unwrap();
        let mut r = Rendezvous::new(
            Address::Device("/nonexistent/virtio-ports/x".into()),
            Mode::Connect,
        )
        .unwrap();
        assert!(matches!(
            r.next_link(&cancel, Duration::from_millis(250)),
            Err(LinkError::TimedOut(_))
        ));
    }

    #[test]
    fn inherited_fd_is_one_shot() {
        let (a, _b) = UnixStream::pair().unwrap();
        let raw = std::os::fd::AsRawFd::as_raw_fd(&a);
        let cancel = Canceller::new().unwrap();
        let mut r = Rendezvous::new(Address::Fd(raw), Mode::Connect).unwrap();
        assert!(!r.can_reconnect());
        r.next_link(&cancel, Duration::from_secs(1)).unwrap();
        assert!(r.next_link(&cancel, Duration::from_secs(1)).is_err());
    }
}
