// SPDX-License-Identifier: MPL-2.0
//! Rendezvous socket and handshake on real unix sockets in a private
//! directory.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
use shmzero_core::{
    Channel, ChannelError, Goodbye, GoodbyeReason, HandshakeError, Hello, Listener, Message,
    PROTOCOL_VERSION, RendezvousError, Role, connect, default_socket_path, reader_handshake,
    writer_handshake,
};

const TIMEOUT: Duration = Duration::from_secs(10);

/// A fresh private directory per test, removed on drop.
struct TestDir(PathBuf);

impl TestDir {
    fn new() -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "shmzero-core-rdv-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        TestDir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Leaves a socket file nobody listens on, like a writer killed with -9.
fn make_stale_socket(path: &std::path::Path) {
    let fd = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .unwrap();
    rustix::net::bind(&fd, &SocketAddrUnix::new(path).unwrap()).unwrap();
    rustix::net::listen(&fd, 1).unwrap();
    drop(fd);
    assert!(std::fs::metadata(path).unwrap().file_type().is_socket());
}

#[test]
fn socket_is_private_and_removed_on_drop() {
    let dir = TestDir::new();
    let path = dir.path("a.sock");
    let listener = Listener::bind(&path).unwrap();
    let meta = std::fs::metadata(&path).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(listener.path(), path);
    drop(listener);
    assert!(!path.exists());
}

#[test]
fn stale_socket_is_replaced_at_the_same_path() {
    let dir = TestDir::new();
    let path = dir.path("stale.sock");
    make_stale_socket(&path);
    let err = connect(&path, TIMEOUT).unwrap_err();
    assert!(matches!(err, RendezvousError::Refused(_)), "{err}");
    assert!(err.is_no_writer());

    let listener = Listener::bind(&path).unwrap();
    let _reader = connect(&path, TIMEOUT).unwrap();
    assert!(listener.accept(TIMEOUT).unwrap().is_some());
    // Nothing else appeared in the directory (no "<path>.0").
    let entries: Vec<_> = std::fs::read_dir(&dir.0).unwrap().collect();
    assert_eq!(entries.len(), 1);
}

#[test]
fn live_writer_is_not_replaced() {
    let dir = TestDir::new();
    let path = dir.path("live.sock");
    let first = Listener::bind(&path).unwrap();
    let err = Listener::bind(&path).unwrap_err();
    assert!(
        matches!(err, RendezvousError::InUse(ref p) if *p == path),
        "{err}"
    );
    assert!(err.to_string().contains("already listening"));
    // The first writer still works (the probe connection is just dropped).
    let _reader = connect(&path, TIMEOUT).unwrap();
    let mut accepted = 0;
    while first.accept(Duration::from_millis(200)).unwrap().is_some() {
        accepted += 1;
    }
    assert!(accepted >= 1);
    assert!(path.exists());
}

#[test]
fn non_socket_file_is_never_removed() {
    let dir = TestDir::new();
    let path = dir.path("precious");
    std::fs::write(&path, b"data").unwrap();
    let err = Listener::bind(&path).unwrap_err();
    assert!(matches!(err, RendezvousError::NotASocket(_)), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), b"data");
}

#[test]
fn dropping_an_old_listener_keeps_its_successors_socket() {
    let dir = TestDir::new();
    let path = dir.path("succ.sock");
    let old = Listener::bind(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let new = Listener::bind(&path).unwrap();
    drop(old);
    assert!(path.exists());
    let _reader = connect(&path, TIMEOUT).unwrap();
    assert!(new.accept(TIMEOUT).unwrap().is_some());
}

#[test]
fn missing_socket_and_bad_names_are_clear_errors() {
    let dir = TestDir::new();
    let err = connect(&dir.path("nobody.sock"), TIMEOUT).unwrap_err();
    assert!(matches!(err, RendezvousError::NotFound(_)), "{err}");
    assert!(err.is_no_writer());
    let long = dir.path(&"x".repeat(200));
    assert!(matches!(
        Listener::bind(&long),
        Err(RendezvousError::PathTooLong(_))
    ));
    for bad in ["", "a/b", "nul\0", &"n".repeat(65)] {
        assert!(matches!(
            default_socket_path(bad),
            Err(RendezvousError::InvalidName(_))
        ));
    }
    let path = default_socket_path("cam1").unwrap();
    assert!(path.ends_with("shmzero-cam1.sock"), "{}", path.display());
}

#[test]
fn accept_reports_peer_credentials_and_times_out() {
    let dir = TestDir::new();
    let path = dir.path("creds.sock");
    let listener = Listener::bind(&path).unwrap();
    assert!(
        listener
            .accept(Duration::from_millis(50))
            .unwrap()
            .is_none()
    );
    let _reader = connect(&path, TIMEOUT).unwrap();
    let (_channel, creds) = listener.accept(TIMEOUT).unwrap().unwrap();
    assert_eq!(creds.pid, std::process::id() as i32);
    assert_eq!(creds.uid, rustix::process::getuid().as_raw());
    assert_eq!(creds.gid, rustix::process::getgid().as_raw());
}

#[test]
fn handshake_grants_a_bounded_credit() {
    let (writer, reader) = Channel::pair().unwrap();
    let reader_thread = std::thread::spawn(move || reader_handshake(&reader, 100, TIMEOUT));
    let theirs = writer_handshake(&writer, 8, TIMEOUT).unwrap();
    assert_eq!((theirs.role, theirs.credit), (Role::Reader, 8));
    let writer_hello = reader_thread.join().unwrap().unwrap();
    assert_eq!(
        (writer_hello.role, writer_hello.version, writer_hello.credit),
        (Role::Writer, PROTOCOL_VERSION, 8)
    );
}

#[test]
fn version_mismatch_names_both_versions_on_both_sides() {
    let (writer, reader) = Channel::pair().unwrap();
    // A reader from the future.
    reader
        .send(&hello_message(99, Role::Reader, 4), None, TIMEOUT)
        .unwrap();
    let err = writer_handshake(&writer, 8, TIMEOUT).unwrap_err();
    assert!(matches!(
        err,
        HandshakeError::VersionMismatch {
            ours: PROTOCOL_VERSION,
            theirs: 99
        }
    ));
    assert!(err.to_string().contains("99"), "{err}");
    // The reader gets the writer's hello, then a goodbye explaining why.
    let Message::Hello(hello) = reader.recv(TIMEOUT).unwrap().message else {
        panic!("expected the writer's hello")
    };
    assert_eq!(hello.version, PROTOCOL_VERSION);
    let Message::Goodbye(Goodbye { reason, message }) = reader.recv(TIMEOUT).unwrap().message
    else {
        panic!("expected a goodbye")
    };
    assert_eq!(reason, GoodbyeReason::VersionMismatch);
    assert!(message.contains("99"), "{message}");

    // And a writer from the future, seen by our reader.
    let (writer, reader) = Channel::pair().unwrap();
    let fake_writer = std::thread::spawn(move || {
        let _ = writer.recv(TIMEOUT).unwrap();
        writer
            .send(&hello_message(7, Role::Writer, 1), None, TIMEOUT)
            .unwrap();
    });
    let err = reader_handshake(&reader, 4, TIMEOUT).unwrap_err();
    assert!(matches!(
        err,
        HandshakeError::VersionMismatch {
            ours: PROTOCOL_VERSION,
            theirs: 7
        }
    ));
    fake_writer.join().unwrap();
}

#[test]
fn garbage_silence_and_wrong_roles_fail_the_handshake_cleanly() {
    let (writer, peer) = Channel::pair().unwrap();
    peer.send_raw(b"\x00garbage that is not a hello").unwrap();
    assert!(matches!(
        writer_handshake(&writer, 4, TIMEOUT),
        Err(HandshakeError::Channel(ChannelError::Decode(_)))
    ));

    let (writer, _silent_peer) = Channel::pair().unwrap();
    assert!(matches!(
        writer_handshake(&writer, 4, Duration::from_millis(100)),
        Err(HandshakeError::Channel(ChannelError::Timeout(_)))
    ));

    let (writer, peer) = Channel::pair().unwrap();
    peer.send(
        &hello_message(PROTOCOL_VERSION, Role::Writer, 1),
        None,
        TIMEOUT,
    )
    .unwrap();
    assert!(matches!(
        writer_handshake(&writer, 4, TIMEOUT),
        Err(HandshakeError::WrongRole { .. })
    ));

    let (writer, peer) = Channel::pair().unwrap();
    drop(peer);
    let err = writer_handshake(&writer, 4, TIMEOUT).unwrap_err();
    assert!(
        matches!(err, HandshakeError::Channel(ref e) if e.is_disconnect()),
        "{err}"
    );
}

#[test]
fn garbage_packets_are_errors_and_the_channel_keeps_working() {
    let (a, b) = Channel::pair().unwrap();
    b.send_raw(b"SZ\x04\x00short").unwrap();
    b.send_raw(&vec![0x5a; shmzero_core::MAX_MESSAGE_SIZE + 10])
        .unwrap();
    b.send(&Message::Release(shmzero_core::BufferId(3)), None, TIMEOUT)
        .unwrap();
    assert!(matches!(a.recv(TIMEOUT), Err(ChannelError::Decode(_))));
    assert!(matches!(a.recv(TIMEOUT), Err(ChannelError::Oversized)));
    assert_eq!(
        a.recv(TIMEOUT).unwrap().message,
        Message::Release(shmzero_core::BufferId(3))
    );
}

#[test]
fn concurrent_writers_on_a_stale_path_yield_exactly_one_listener() {
    let dir = TestDir::new();
    let path = dir.path("race.sock");
    for _ in 0..20 {
        make_stale_socket(&path);
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(4));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let path = path.clone();
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    Listener::bind(&path)
                })
            })
            .collect();
        let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let winners: Vec<&Listener> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(winners.len(), 1, "{results:?}");
        for result in &results {
            if let Err(err) = result {
                assert!(matches!(err, RendezvousError::InUse(_)), "{err}");
            }
        }
        // The winner is the one reachable at the path.
        let _reader = connect(&path, TIMEOUT).unwrap();
        let mut accepted = false;
        while winners[0]
            .accept(Duration::from_millis(200))
            .unwrap()
            .is_some()
        {
            accepted = true;
        }
        assert!(accepted);
        drop(results);
        assert!(!path.exists());
    }
}

/// A hello without feature bits.
fn hello_message(version: u32, role: Role, credit: u32) -> Message {
    Message::Hello(Hello {
        version,
        role,
        credit,
        features: 0,
    })
}
