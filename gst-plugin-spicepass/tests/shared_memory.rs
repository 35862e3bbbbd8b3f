// SPDX-License-Identifier: MPL-2.0
//! Shared-memory payloads over a unix socket (capability `MEMFD_PAYLOADS`), with real guest
//! and client processes: raw video arrives byte-identical by reference into sealed memfd
//! segments, segments are recycled, the sink's pool is used when upstream takes it and
//! foreign memory is copied once; kill -9 of either side with segments held leaks nothing
//! and reconnects; a hostile guest's bad references are clear errors.

mod common;

use std::io::{IoSlice, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Duration, Instant};

use common::*;
use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
use spicepass_protocol::{
    BufferHeader, BufferingDecoder, Encoder, Hello, Item, Limits, Message, Role, Segment,
    SharedBuffer,
};

/// 640×480 RGBA: 1.2 MB per frame, far above the 256 KiB default threshold.
const RAW: &str = "video/x-raw,format=RGBA,width=640,height=480,framerate=30/1";
const FRAME_SIZE: u64 = 640 * 480 * 4;

/// A counter from a peer's final `STATS` line.
fn stat(peer: &Peer, field: &str) -> u64 {
    let line = peer
        .lines_with("STATS")
        .pop()
        .unwrap_or_else(|| panic!("no STATS line\n{}", peer.story()));
    let key = format!("{field}=(guint64)");
    let start = line
        .find(&key)
        .unwrap_or_else(|| panic!("no {field} in {line}"))
        + key.len();
    line[start..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn run_pair(tag: &str, head: &str, guest_options: &[&str]) -> (Peer, Peer) {
    let dir = TempDir::new(tag);
    let uri = format!("spicepass+unix://{}", dir.path("s.sock").display());
    let mut args = vec!["guest", &uri, head];
    args.extend_from_slice(guest_options);
    let mut guest = Peer::spawn("guest", &args);
    guest.wait_line("READY", LONG);
    let mut client = Peer::spawn("client", &["client", &uri]);
    assert_eq!(client.finish(LONG), 0, "{}", client.story());
    assert_eq!(guest.finish(LONG), 0, "{}", guest.story());
    guest.assert_no_panic();
    client.assert_no_panic();
    (guest, client)
}

#[test]
fn raw_video_by_reference_is_identical_and_segments_are_recycled() {
    // 150 frames through a pool of 6 segments: each segment carries ~25 frames.
    let head = format!("videotestsrc num-buffers=150 pattern=ball ! {RAW}");
    let (guest, client) = run_pair("shm-pool", &head, &[]);
    assert_identical_stream(&guest, &client);
    assert!(
        client
            .lines_with("BUF")
            .iter()
            .all(|l| l.contains(&format!("size={FRAME_SIZE}")))
    );
    // videotestsrc took the sink's memfd pool: no copy on the guest at all. (The first
    // frame may go inline: it can be pushed before the client's hello arrives.)
    let zero_copy = stat(&guest, "shm-buffers-zero-copy");
    assert!(
        zero_copy >= 149,
        "zero-copy sends: {zero_copy}\n{}",
        guest.story()
    );
    assert_eq!(stat(&guest, "shm-buffers-copied"), 0);
    assert_eq!(stat(&client, "shm-buffers-received"), zero_copy);
}

#[test]
fn foreign_memory_is_copied_once_and_small_or_disabled_goes_inline() {
    // identity drop-allocation: upstream never sees the sink's pool, so each frame is
    // copied once into one of the sink's own segments.
    let head =
        format!("videotestsrc num-buffers=60 pattern=snow ! {RAW} ! identity drop-allocation=true");
    let (guest, client) = run_pair("shm-copy", &head, &[]);
    assert_identical_stream(&guest, &client);
    let copied = stat(&guest, "shm-buffers-copied");
    assert!(copied >= 59, "copied: {copied}\n{}", guest.story());
    assert_eq!(stat(&guest, "shm-buffers-zero-copy"), 0);
    assert_eq!(stat(&client, "shm-buffers-received"), copied);

    // memfd-threshold=0: the same stream through the socket.
    let head = format!("videotestsrc num-buffers=30 pattern=snow ! {RAW}");
    let (guest, client) = run_pair("shm-off", &head, &["memfd-threshold=0"]);
    assert_identical_stream(&guest, &client);
    assert_eq!(stat(&client, "shm-buffers-received"), 0);
    // Below the threshold (320×240 RGBA = 300 KiB < 1 MiB): inline too.
    let head = "videotestsrc num-buffers=30 ! video/x-raw,format=RGBA,width=320,height=240";
    let (guest, client) = run_pair("shm-small", head, &["memfd-threshold=1048576"]);
    assert_identical_stream(&guest, &client);
    assert_eq!(stat(&client, "shm-buffers-received"), 0);
}

const LIVE: &str = "videotestsrc is-live=true pattern=ball ! video/x-raw,format=RGBA,width=640,height=480,framerate=60/1";

/// Waits until `peer` printed `count` more lines starting with `prefix` than it had.
fn wait_more(peer: &Peer, prefix: &str, count: usize) {
    let target = peer.lines_with(prefix).len() + count;
    let deadline = Instant::now() + LONG;
    while peer.lines_with(prefix).len() < target {
        assert!(
            Instant::now() < deadline,
            "{}: fewer than {target} '{prefix}' lines\n{}",
            peer.name,
            peer.story()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `POOL_BUFFERS` of the sink's memfd pools (the one proposed upstream and the one
/// foreign memory is copied into).
const SINK_POOL_BUFFERS: usize = 6;

/// The guest's open fds: (everything but its memfd segments, its memfd segments).
fn guest_fds(pid: u32) -> (usize, usize) {
    let links: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .map(|target| target.display().to_string())
                .collect()
        })
        .unwrap_or_default();
    let segments = links
        .iter()
        .filter(|l| l.starts_with("/memfd:spicepass"))
        .count();
    (links.len() - segments, segments)
}

#[test]
fn client_killed_with_segments_held_leaks_nothing_and_the_next_client_is_served() {
    let dir = TempDir::new("shm-kill-client");
    let uri = format!("spicepass+unix://{}", dir.path("s.sock").display());
    let mut guest = Peer::spawn(
        "guest",
        &["guest", &uri, LIVE, "drop-policy=drop", "timeout-s=600"],
    );
    guest.wait_line("READY", LONG);
    let pid = guest.child.id();
    let mut baseline = None;
    for cycle in 1..=6 {
        let mut client = Peer::spawn(&format!("client {cycle}"), &["client", &uri]);
        // Enough frames that segments are in flight, then SIGKILL while the client maps them.
        wait_more(&client, "BUF", 20);
        client.child.kill().unwrap();
        client.child.wait().unwrap();
        guest.wait_line("MSG spicepass-lost", LONG);
        if cycle == 2 {
            baseline = Some(guest_fds(pid));
        }
    }
    let (other, _) = baseline.unwrap();
    // The last connection's segments may still be on their way back to the pool.
    std::thread::sleep(Duration::from_millis(500));
    let (other_end, segments_end) = guest_fds(pid);
    // Segments are pool memory: the pools grow lazily (under load they may still be
    // growing after cycle 2) but never beyond the proposed pool plus the copy pool.
    assert!(
        segments_end <= 2 * SINK_POOL_BUFFERS,
        "guest holds {segments_end} memfd segments, more than its two pools"
    );
    assert!(
        other_end <= other + 2,
        "guest fd growth (not counting pool segments): {other} -> {other_end}"
    );
    // A new client is served by reference again.
    let client = Peer::spawn("last client", &["client", &uri]);
    wait_more(&client, "BUF", 30);
    drop(client);
    guest.wait_line("MSG spicepass-lost", LONG);
    assert!(
        guest.child.try_wait().unwrap().is_none(),
        "guest still playing"
    );
    guest.child.kill().unwrap();
    guest.assert_no_panic();
}

#[test]
fn guest_killed_with_segments_mapped_leaks_nothing_and_the_client_reconnects() {
    let dir = TempDir::new("shm-kill-guest");
    let uri = format!("spicepass+unix://{}", dir.path("s.sock").display());
    let spawn_guest = |n: u32| {
        let guest = Peer::spawn(
            &format!("guest {n}"),
            &["guest", &uri, LIVE, "drop-policy=drop", "timeout-s=600"],
        );
        guest.wait_line("READY", LONG);
        guest
    };
    let mut guest = spawn_guest(1);
    let client = Peer::spawn("client", &["client", &uri, "timeout-s=600"]);
    let pid = client.child.id();
    let mut baseline = None;
    for cycle in 1..=5 {
        wait_more(&client, "BUF", 20);
        guest.child.kill().unwrap();
        guest.child.wait().unwrap();
        client.wait_line("MSG spicepass-lost", LONG);
        if cycle == 2 {
            baseline = Some(fd_count(pid));
        }
        guest = spawn_guest(cycle + 1);
        client.wait_line("MSG spicepass-connected", LONG);
    }
    wait_more(&client, "BUF", 20);
    let fds = baseline.unwrap();
    let fds_end = fd_count(pid);
    assert!(fds_end <= fds + 2, "client fd growth: {fds} -> {fds_end}");
    assert!(client.lines_with("ERROR").is_empty(), "{}", client.story());
    client.assert_no_panic();
}

/// A hostile guest: sends its hello (offering shared memory), waits for the client's
/// hello and first credit, then lets `attack` write frames (with fds) on the socket.
/// Returns the client's error line.
fn hostile_guest(attack: impl FnOnce(&mut Encoder, &UnixStream)) -> String {
    let dir = TempDir::new("shm-hostile");
    let path = dir.path("s.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let uri = format!("spicepass+unix://{}", path.display());
    let mut client = Peer::spawn("client", &["client", &uri, "timeout-s=60"]);
    let (mut conn, _) = listener.accept().unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut hello = Vec::new();
    Hello::new(Role::Sink, 1).encode(&mut hello).unwrap();
    conn.write_all(&hello).unwrap();
    let mut decoder = BufferingDecoder::new(Role::Sink, Limits::default());
    let mut credited = false;
    let mut chunk = [0u8; 4096];
    while !credited {
        let n = conn.read(&mut chunk).unwrap();
        assert!(n > 0, "client closed\n{}", client.story());
        decoder.push(&chunk[..n]);
        while let Some(item) = decoder.poll().unwrap() {
            credited |= matches!(item, Item::Frame(frame, _) if matches!(frame.message, Message::Credit(_)));
        }
    }
    let mut encoder = Encoder::new(Role::Sink, Limits::default());
    attack(&mut encoder, &conn);
    let code = client.finish(LONG);
    assert_eq!(
        code,
        1,
        "client must stop with an error\n{}",
        client.story()
    );
    client.assert_no_panic();
    let errors = client.lines_with("ERROR");
    assert_eq!(errors.len(), 1, "{}", client.story());
    drop(conn);
    errors[0].clone()
}

/// Writes one frame, with `fds` attached to its first byte.
fn send_frame(conn: &UnixStream, encoder: &mut Encoder, message: &Message, fds: &[BorrowedFd<'_>]) {
    let mut bytes = Vec::new();
    encoder.encode(0, message, &mut bytes).unwrap();
    let mut space = vec![MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(32))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() {
        assert!(control.push(SendAncillaryMessage::ScmRights(fds)));
    }
    let sent = rustix::net::sendmsg(
        conn,
        &[IoSlice::new(&bytes)],
        &mut control,
        SendFlags::NOSIGNAL,
    )
    .unwrap();
    assert_eq!(sent, bytes.len());
}

fn shared(segment: u32, offset: u64, len: u64) -> Message {
    Message::SharedBuffer(SharedBuffer {
        header: BufferHeader {
            pts: Some(0),
            payload_len: len,
            ..BufferHeader::default()
        },
        buffer_id: 0,
        segment,
        offset,
    })
}

fn sealed_segment(size: u64) -> std::sync::Arc<shmzero_core::WriterSegment> {
    shmzero_core::WriterSegment::create(shmzero_core::SegmentId(1), size, "hostile").unwrap()
}

#[test]
fn a_bogus_segment_reference_is_a_clear_error() {
    let e = hostile_guest(|encoder, conn| send_frame(conn, encoder, &shared(7, 0, 4096), &[]));
    assert!(e.contains("segment 7 is not known"), "{e}");
}

#[test]
fn an_offset_outside_the_segment_is_a_clear_error() {
    let segment = sealed_segment(65536);
    let e = hostile_guest(|encoder, conn| {
        let announce = Message::Segment(Segment {
            segment: 3,
            size: 65536,
        });
        send_frame(conn, encoder, &announce, &[segment.share_fd()]);
        send_frame(conn, encoder, &shared(3, 65536 - 100, 4096), &[]);
    });
    assert!(e.contains("outside segment"), "{e}");
}

#[test]
fn an_unsealed_or_missing_fd_is_a_clear_error() {
    let unsealed =
        rustix::fs::memfd_create("unsealed", rustix::fs::MemfdFlags::ALLOW_SEALING).unwrap();
    rustix::fs::ftruncate(&unsealed, 65536).unwrap();
    let e = hostile_guest(|encoder, conn| {
        let announce = Message::Segment(Segment {
            segment: 3,
            size: 65536,
        });
        send_frame(conn, encoder, &announce, &[unsealed.as_fd()]);
    });
    assert!(e.contains("sealed against shrinking"), "{e}");
    let e = hostile_guest(|encoder, conn| {
        let announce = Message::Segment(Segment {
            segment: 3,
            size: 65536,
        });
        send_frame(conn, encoder, &announce, &[]);
    });
    assert!(e.contains("without a file descriptor"), "{e}");
}

#[test]
fn too_many_fds_are_a_clear_error() {
    let segment = sealed_segment(4096);
    let e = hostile_guest(|encoder, conn| {
        let fds = vec![segment.share_fd(); 20];
        let announce = Message::Segment(Segment {
            segment: 3,
            size: 4096,
        });
        send_frame(conn, encoder, &announce, &fds);
    });
    assert!(e.contains("file descriptors"), "{e}");
}
