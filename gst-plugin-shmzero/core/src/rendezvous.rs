// SPDX-License-Identifier: MPL-2.0
//! Where writer and readers meet: a `SOCK_SEQPACKET` unix socket path.
//!
//! * Default path: `$XDG_RUNTIME_DIR/shmzero-<name>.sock`, or
//!   `/tmp/shmzero-<uid>/shmzero-<name>.sock` (directory created `0700` and
//!   checked to be ours) when that variable is unset.
//! * The socket file is `0600`: only the same user can connect.
//! * A socket file left by a dead writer is detected with a connect probe
//!   (`ECONNREFUSED`) and replaced. A live writer on the path is a clear
//!   [`RendezvousError::InUse`]; no other name is ever picked silently.
//! * The writer's [`Listener`] unlinks its socket file on drop, but only if the
//!   file is still the one it created.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::event::PollFlags;
use rustix::fs::{FileType, FlockOperation, Mode, OFlags};
use rustix::io::Errno;
use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
use thiserror::Error;

use crate::channel::{Channel, PeerCredentials, poll_one};

/// Pending connections the kernel queues before `accept`.
const BACKLOG: i32 = 16;

/// Errors setting up or using the rendezvous socket.
#[derive(Debug, Error)]
pub enum RendezvousError {
    #[error("invalid stream name {0:?}: use 1-64 characters, no '/' or NUL")]
    InvalidName(String),
    #[error("socket path {0} is too long for a unix socket address")]
    PathTooLong(PathBuf),
    #[error("{path}: directory is not private to this user ({reason})")]
    InsecureDirectory { path: PathBuf, reason: String },
    #[error("{0}: a writer is already listening on this socket")]
    InUse(PathBuf),
    #[error("{0} exists and is not a socket; refusing to replace it")]
    NotASocket(PathBuf),
    #[error("{0}: no writer is listening (no socket file)")]
    NotFound(PathBuf),
    #[error("{0}: no writer is listening (stale socket file)")]
    Refused(PathBuf),
    #[error("{0}: timed out after {1:?}")]
    Timeout(PathBuf, Duration),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl RendezvousError {
    /// True when nobody is listening yet (a reader may retry later).
    pub fn is_no_writer(&self) -> bool {
        matches!(
            self,
            RendezvousError::NotFound(_) | RendezvousError::Refused(_)
        )
    }

    fn io(path: &Path, source: impl Into<io::Error>) -> Self {
        RendezvousError::Io {
            path: path.to_owned(),
            source: source.into(),
        }
    }
}

/// The default socket path for stream `name`.
///
/// Creates the `/tmp/shmzero-<uid>` fallback directory if needed and refuses
/// it if another user owns it or it is accessible to others.
pub fn default_socket_path(name: &str) -> Result<PathBuf, RendezvousError> {
    if name.is_empty() || name.len() > 64 || name.contains(['/', '\0']) {
        return Err(RendezvousError::InvalidName(name.to_owned()));
    }
    let file = format!("shmzero-{name}.sock");
    let runtime_dir = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute() && dir.is_dir());
    let dir = match runtime_dir {
        Some(dir) => dir,
        None => private_tmp_dir()?,
    };
    Ok(dir.join(file))
}

fn private_tmp_dir() -> Result<PathBuf, RendezvousError> {
    let uid = rustix::process::getuid();
    let dir = PathBuf::from(format!("/tmp/shmzero-{}", uid.as_raw()));
    match rustix::fs::mkdir(&dir, Mode::RWXU) {
        Ok(()) | Err(Errno::EXIST) => {}
        Err(e) => return Err(RendezvousError::io(&dir, e)),
    }
    // lstat: a symlink planted by someone else must not redirect us.
    let stat = rustix::fs::lstat(&dir).map_err(|e| RendezvousError::io(&dir, e))?;
    let insecure = |reason: String| RendezvousError::InsecureDirectory {
        path: dir.clone(),
        reason,
    };
    if FileType::from_raw_mode(stat.st_mode) != FileType::Directory {
        return Err(insecure("not a directory".into()));
    }
    if stat.st_uid != uid.as_raw() {
        return Err(insecure(format!("owned by uid {}", stat.st_uid)));
    }
    if stat.st_mode & 0o077 != 0 {
        return Err(insecure(format!("mode {:o}", stat.st_mode & 0o7777)));
    }
    Ok(dir)
}

fn unix_addr(path: &Path) -> Result<SocketAddrUnix, RendezvousError> {
    SocketAddrUnix::new(path).map_err(|_| RendezvousError::PathTooLong(path.to_owned()))
}

fn seqpacket_socket(path: &Path) -> Result<OwnedFd, RendezvousError> {
    rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )
    .map_err(|e| RendezvousError::io(path, e))
}

/// The writer's listening socket. Unlinks its file on drop.
#[derive(Debug)]
pub struct Listener {
    fd: OwnedFd,
    path: PathBuf,
    /// Identity of the socket file we created, so drop never unlinks a
    /// successor's socket.
    dev_ino: (u64, u64),
}

impl Listener {
    /// Listens on `path`, replacing a stale socket left by a dead writer.
    pub fn bind(path: &Path) -> Result<Listener, RendezvousError> {
        let addr = unix_addr(path)?;
        // Two writers starting together on one stale path must not both
        // unlink and bind: serialise probe-unlink-bind-listen with a lock on
        // the directory itself, which leaves no file behind.
        let _dir_lock = DirLock::acquire(path)?;
        let fd = seqpacket_socket(path)?;
        // Linux creates the socket file with the socket inode's mode minus
        // the umask: restrict it before bind so the file is never more open
        // than 0600, not even for an instant.
        rustix::fs::fchmod(&fd, Mode::RUSR | Mode::WUSR)
            .map_err(|e| RendezvousError::io(path, e))?;
        match rustix::net::bind(&fd, &addr) {
            Ok(()) => {}
            Err(Errno::ADDRINUSE) => {
                replace_if_stale(path, &addr)?;
                rustix::net::bind(&fd, &addr).map_err(|e| match e {
                    // Another writer won the race between our unlink and bind.
                    Errno::ADDRINUSE => RendezvousError::InUse(path.to_owned()),
                    e => RendezvousError::io(path, e),
                })?;
            }
            Err(e) => return Err(RendezvousError::io(path, e)),
        }
        let stat = rustix::fs::lstat(path).map_err(|e| RendezvousError::io(path, e))?;
        let listener = Listener {
            fd,
            path: path.to_owned(),
            dev_ino: (stat.st_dev, stat.st_ino),
        };
        // Belt and braces for filesystems that ignore the inode mode.
        rustix::fs::chmod(path, Mode::RUSR | Mode::WUSR)
            .map_err(|e| RendezvousError::io(path, e))?;
        rustix::net::listen(&listener.fd, BACKLOG).map_err(|e| RendezvousError::io(path, e))?;
        Ok(listener)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts a pending connection, if any, without blocking.
    pub fn try_accept(&self) -> Result<Option<(Channel, PeerCredentials)>, RendezvousError> {
        loop {
            match rustix::net::accept_with(&self.fd, SocketFlags::CLOEXEC | SocketFlags::NONBLOCK) {
                Ok(fd) => {
                    let channel =
                        Channel::from_fd(fd).map_err(|e| RendezvousError::io(&self.path, e))?;
                    let creds = channel
                        .peer_credentials()
                        .map_err(|e| RendezvousError::io(&self.path, e))?;
                    return Ok(Some((channel, creds)));
                }
                Err(Errno::INTR) => continue,
                // The peer gave up before we accepted: nothing to do.
                Err(Errno::AGAIN) | Err(Errno::CONNABORTED) => return Ok(None),
                Err(e) => return Err(RendezvousError::io(&self.path, e)),
            }
        }
    }

    /// Waits up to `timeout` for a connection.
    pub fn accept(
        &self,
        timeout: Duration,
    ) -> Result<Option<(Channel, PeerCredentials)>, RendezvousError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(accepted) = self.try_accept()? {
                return Ok(Some(accepted));
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Ok(None);
            }
            poll_one(self.fd.as_fd(), PollFlags::IN, remaining)
                .map_err(|e| RendezvousError::io(&self.path, e))?;
        }
    }
}

impl AsFd for Listener {
    /// For adding the listener to the caller's own poll loop.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Ok(stat) = rustix::fs::lstat(&self.path)
            && (stat.st_dev, stat.st_ino) == self.dev_ino
        {
            let _ = rustix::fs::unlink(&self.path);
        }
    }
}

/// An exclusive `flock` on a socket's parent directory, released on drop
/// (and by the kernel if the process dies holding it).
struct DirLock(OwnedFd);

impl DirLock {
    /// The critical section it guards takes microseconds; waiting longer
    /// than this means something is wrong with the directory.
    const TIMEOUT: Duration = Duration::from_secs(5);

    fn acquire(path: &Path) -> Result<DirLock, RendezvousError> {
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let fd = rustix::fs::open(
            dir,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| RendezvousError::io(dir, e))?;
        let deadline = Instant::now() + Self::TIMEOUT;
        loop {
            match rustix::fs::flock(&fd, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => return Ok(DirLock(fd)),
                Err(Errno::WOULDBLOCK) | Err(Errno::INTR) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(Errno::WOULDBLOCK) => {
                    return Err(RendezvousError::Timeout(dir.to_owned(), Self::TIMEOUT));
                }
                Err(e) => return Err(RendezvousError::io(dir, e)),
            }
        }
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let _ = rustix::fs::flock(&self.0, FlockOperation::Unlock);
    }
}

/// `path` is taken: unlink it if it is a socket nobody listens on.
fn replace_if_stale(path: &Path, addr: &SocketAddrUnix) -> Result<(), RendezvousError> {
    let stat = match rustix::fs::lstat(path) {
        Ok(stat) => stat,
        // Gone in the meantime: the retried bind decides.
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(RendezvousError::io(path, e)),
    };
    if FileType::from_raw_mode(stat.st_mode) != FileType::Socket {
        return Err(RendezvousError::NotASocket(path.to_owned()));
    }
    let probe = seqpacket_socket(path)?;
    match rustix::net::connect(&probe, addr) {
        // Someone accepts (or queues) connections here: a live writer.
        Ok(()) | Err(Errno::AGAIN) | Err(Errno::INPROGRESS) => {
            Err(RendezvousError::InUse(path.to_owned()))
        }
        Err(Errno::CONNREFUSED) => match rustix::fs::unlink(path) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(RendezvousError::io(path, e)),
        },
        Err(e) => Err(RendezvousError::io(path, e)),
    }
}

/// Connects a reader to the writer listening on `path`, waiting up to
/// `timeout` while the writer's accept queue is full.
pub fn connect(path: &Path, timeout: Duration) -> Result<Channel, RendezvousError> {
    let addr = unix_addr(path)?;
    let fd = seqpacket_socket(path)?;
    let deadline = Instant::now() + timeout;
    loop {
        match rustix::net::connect(&fd, &addr) {
            Ok(()) => break,
            Err(Errno::INTR) => continue,
            // Unix sockets report a full backlog as EAGAIN; no poll event
            // announces room, so retry shortly.
            Err(Errno::AGAIN) => {
                if Instant::now() >= deadline {
                    return Err(RendezvousError::Timeout(path.to_owned(), timeout));
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(Errno::NOENT) => return Err(RendezvousError::NotFound(path.to_owned())),
            Err(Errno::CONNREFUSED) => return Err(RendezvousError::Refused(path.to_owned())),
            Err(e) => return Err(RendezvousError::io(path, e)),
        }
    }
    Channel::from_fd(fd).map_err(|e| RendezvousError::io(path, e))
}
