// SPDX-License-Identifier: MPL-2.0
//! Guest and client in separate processes over real transports: unix socket, TCP,
//! socketpair and a pty (the char-device path of a virtio-serial port).

mod common;

use std::os::fd::{AsRawFd, OwnedFd};

use common::*;

fn guest_args<'a>(uri: &'a str, head: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["guest", uri, head];
    v.extend_from_slice(extra);
    v
}

fn run_pair(guest_uri: &str, client_uri: &str, clip: &std::path::Path) -> (Peer, Peer) {
    let head = play_clip(clip);
    let mut guest = Peer::spawn("guest", &guest_args(guest_uri, &head, &[]));
    guest.wait_line("READY", LONG);
    let mut client = Peer::spawn("client", &["client", client_uri]);
    assert_eq!(client.finish(LONG), 0, "client failed\n{}", client.story());
    assert_eq!(guest.finish(LONG), 0, "guest failed\n{}", guest.story());
    guest.assert_no_panic();
    client.assert_no_panic();
    (guest, client)
}

#[test]
fn unix_socket_stream_is_byte_identical() {
    let dir = TempDir::new("unix");
    let clip = make_clip(&dir, 90);
    let uri = format!("spicepass+unix://{}", dir.path("s.sock").display());
    let (guest, client) = run_pair(&uri, &uri, &clip);
    assert_identical_stream(&guest, &client);
    assert!(
        !dir.path("s.sock").exists(),
        "the listener removes its socket"
    );
}

#[test]
fn tcp_stream_is_byte_identical() {
    let dir = TempDir::new("tcp");
    let clip = make_clip(&dir, 90);
    let head = play_clip(&clip);
    // Port 0: the guest binds any free loopback port and prints it.
    let mut guest = Peer::spawn(
        "guest",
        &guest_args("spicepass+tcp://127.0.0.1:0", &head, &[]),
    );
    let ready = guest.wait_line("READY", LONG);
    let port: u16 = ready.trim_start_matches("READY port=").parse().unwrap();
    assert_ne!(port, 0);
    let uri = format!("spicepass+tcp://127.0.0.1:{port}");
    let mut client = Peer::spawn("client", &["client", &uri]);
    assert_eq!(client.finish(LONG), 0, "client failed\n{}", client.story());
    assert_eq!(guest.finish(LONG), 0, "guest failed\n{}", guest.story());
    assert_identical_stream(&guest, &client);
}

/// Puts `fd` at number 3 in the child (inherited, as a parent process would hand it over).
fn hand_over_fd(cmd: &mut std::process::Command, fd: OwnedFd) {
    use std::os::unix::process::CommandExt;
    let raw = fd.as_raw_fd();
    // SAFETY: dup2 is async-signal-safe; the closure only calls it on fds we own, between
    // fork and exec. `fd` stays alive (moved into the closure) until the command is dropped.
    unsafe {
        cmd.pre_exec(move || {
            let _keep = &fd;
            // dup2 onto itself keeps FD_CLOEXEC: clear it explicitly in that case.
            let rc = if raw == 3 {
                libc::fcntl(3, libc::F_SETFD, 0)
            } else {
                libc::dup2(raw, 3)
            };
            if rc < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[test]
fn socketpair_stream_is_byte_identical() {
    let dir = TempDir::new("fd");
    let clip = make_clip(&dir, 90);
    let head = play_clip(&clip);
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    let mut guest = Peer::spawn_with("guest", &guest_args("spicepass+fd://3", &head, &[]), |c| {
        hand_over_fd(c, a.into())
    });
    let mut client = Peer::spawn_with("client", &["client", "spicepass+fd://3"], |c| {
        hand_over_fd(c, b.into())
    });
    assert_eq!(client.finish(LONG), 0, "client failed\n{}", client.story());
    assert_eq!(guest.finish(LONG), 0, "guest failed\n{}", guest.story());
    assert_identical_stream(&guest, &client);
}

/// The char-device transport (virtio-serial's guest end) over a pty: the guest opens the
/// slave by path, the client holds the master fd.
#[test]
fn pty_char_device_stream_is_byte_identical() {
    let dir = TempDir::new("pty");
    let clip = make_clip(&dir, 60);
    let head = play_clip(&clip);
    let (master, slave) = open_raw_pty();
    let slave_path = std::fs::read_link(format!("/proc/self/fd/{}", slave.as_raw_fd())).unwrap();
    let guest_uri = format!("spicepass+dev://{}", slave_path.display());
    let mut guest = Peer::spawn("guest", &guest_args(&guest_uri, &head, &[]));
    guest.wait_line("READY", LONG);
    let mut client = Peer::spawn_with("client", &["client", "spicepass+fd://3"], |c| {
        hand_over_fd(c, master)
    });
    assert_eq!(client.finish(LONG), 0, "client failed\n{}", client.story());
    assert_eq!(guest.finish(LONG), 0, "guest failed\n{}", guest.story());
    drop(slave);
    assert_identical_stream(&guest, &client);
}

fn open_raw_pty() -> (OwnedFd, OwnedFd) {
    use std::os::fd::FromRawFd;
    let mut master = -1;
    let mut slave = -1;
    // SAFETY: openpty writes two fds into the out-pointers; name/termios/winsize may be NULL.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both fds were just returned by openpty and are owned by nobody else.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    // Raw before anyone writes: no echo, no line editing, bytes pass unchanged.
    let mut tio = rustix::termios::tcgetattr(&slave).unwrap();
    tio.make_raw();
    rustix::termios::tcsetattr(&slave, rustix::termios::OptionalActions::Now, &tio).unwrap();
    (master, slave)
}

#[test]
fn client_seek_moves_the_guest_and_client_sees_flush_and_segment() {
    let dir = TempDir::new("seek");
    let clip = make_clip(&dir, 300);
    client_seek_moves_the_guest(&dir, &clip);
}

/// The same with the guest playing an MP4 through qtdemux.
#[test]
fn client_seek_moves_a_qtdemux_guest() {
    let dir = TempDir::new("seek-mp4");
    let clip = make_mp4_clip(&dir, 300);
    client_seek_moves_the_guest(&dir, &clip);
}

fn client_seek_moves_the_guest(dir: &TempDir, clip: &std::path::Path) {
    let uri = format!("spicepass+unix://{}", dir.path("s.sock").display());
    let head = play_clip(clip);
    let mut guest = Peer::spawn("guest", &guest_args(&uri, &head, &[]));
    guest.wait_line("READY", LONG);
    let mut client = Peer::spawn(
        "client",
        &[
            "client",
            &uri,
            "sync=true",
            "seek-after=15",
            "seek-to-ms=8000",
        ],
    );
    assert_eq!(client.finish(LONG), 0, "client failed\n{}", client.story());
    assert_eq!(guest.finish(LONG), 0, "guest failed\n{}", guest.story());
    let story = || format!("{}\n{}", guest.story(), client.story());

    // The guest pipeline got the client's seek and reacted with a flush and a new segment.
    let seek = guest.lines_with("UPEVENT seek");
    assert_eq!(seek.len(), 1, "guest did not get the seek\n{}", story());
    assert!(seek[0].contains("cur=(gint64)8000000000"), "{}", seek[0]);
    let seek_seqnum = seek[0].split_whitespace().nth(2).unwrap().to_owned();
    for kind in ["EVENT flush-start", "EVENT flush-stop"] {
        let g = guest.lines_with(kind);
        let c = client.lines_with(kind);
        assert_eq!(g.len(), 1, "guest {kind}\n{}", story());
        assert_eq!(g, c, "client must see the guest's {kind}\n{}", story());
        assert!(
            c[0].contains(&seek_seqnum),
            "{kind} carries the seek seqnum"
        );
    }
    let client_lines = client.lines();
    let flush_stop = client_lines
        .iter()
        .position(|l| l.starts_with("EVENT flush-stop"))
        .unwrap();
    let after: Vec<&String> = client_lines[flush_stop..].iter().collect();
    let segment = after
        .iter()
        .find(|l| l.starts_with("EVENT segment"))
        .expect("a new segment after the flush");
    assert!(segment.contains("start=(guint64)8000000000"), "{segment}");
    let first = after
        .iter()
        .find(|l| l.starts_with("BUF"))
        .expect("buffers after the seek");
    let pts: u64 = first
        .split_whitespace()
        .find_map(|f| f.strip_prefix("pts="))
        .unwrap()
        .parse()
        .unwrap();
    assert!(pts >= 7_000_000_000, "first buffer after seek at {pts}");
    // Fewer buffers than the whole clip: the guest really jumped.
    assert!(client.lines_with("BUF").len() < 280, "{}", story());
    assert_eq!(client.lines_with("EOS").len(), 1);
}

#[test]
fn qos_navigation_latency_and_position_reach_the_guest() {
    let dir = TempDir::new("upstream");
    let clip = make_clip(&dir, 150);
    let uri = format!("spicepass+unix://{}", dir.path("s.sock").display());
    let head = play_clip(&clip);
    let mut guest = Peer::spawn(
        "guest",
        &guest_args(&uri, &head, &["query-after-upstream=true"]),
    );
    guest.wait_line("READY", LONG);
    let mut client = Peer::spawn(
        "client",
        &["client", &uri, "sync=true", "upstream-after=10"],
    );
    // The guest answers from the client's cached reports, no round trip.
    let latency = guest.wait_line("LATENCY", LONG);
    assert!(latency.contains("min=30000000"), "{latency}");
    let position = guest.wait_line("POSITION", LONG);
    let pos: u64 = position.trim_start_matches("POSITION ").parse().unwrap();
    assert!(pos > 0 && pos < 6_000_000_000, "{position}");
    assert_eq!(client.finish(LONG), 0, "client failed\n{}", client.story());
    assert_eq!(guest.finish(LONG), 0, "guest failed\n{}", guest.story());
    let nav = guest.lines_with("UPEVENT navigation");
    assert_eq!(nav.len(), 1, "{}", guest.story());
    assert!(nav[0].contains("pointer_x=(double)12.5"), "{}", nav[0]);
    let qos = guest.lines_with("UPEVENT qos");
    assert_eq!(qos.len(), 1, "{}", guest.story());
    assert!(qos[0].contains("proportion=(double)0.75"), "{}", qos[0]);
    assert!(qos[0].contains("diff=(gint64)-5000000"), "{}", qos[0]);
}

/// `playbin3 uri=spicepass+unix://…` on the client, through the URI handler and decodebin3,
/// with the real plugin file loaded by `gst-launch-1.0`.
#[test]
fn playbin3_plays_a_spicepass_uri() {
    let dir = TempDir::new("playbin");
    let clip = make_clip(&dir, 60);
    let uri = format!("spicepass+unix://{}", dir.path("s.sock").display());
    let mut guest = Peer::spawn("guest", &guest_args(&uri, &play_clip(&clip), &[]));
    guest.wait_line("READY", LONG);
    let plugin_dir = std::path::Path::new(PEER).parent().unwrap();
    assert!(
        plugin_dir.join("libgstspicepass.so").is_file(),
        "the plugin is built next to the peer binary"
    );
    let out = std::process::Command::new("gst-launch-1.0")
        .args([
            "playbin3",
            &format!("uri={uri}"),
            "video-sink=fakesink sync=false",
            "audio-sink=fakesink",
        ])
        .env("GST_PLUGIN_PATH", plugin_dir)
        .env("GST_REGISTRY", dir.path("registry.bin"))
        .env("GST_REGISTRY_FORK", "no")
        .output()
        .expect("gst-launch-1.0 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("Got EOS"),
        "playbin3 failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(guest.finish(LONG), 0, "{}", guest.story());
}
