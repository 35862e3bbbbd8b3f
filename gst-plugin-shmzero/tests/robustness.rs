// SPDX-License-Identifier: MPL-2.0
//! Readers and writers that stall, die or talk garbage, in separate processes.

mod common;

use std::time::Duration;

use common::{Proc, TestDir, assert_no_criticals, assert_no_new_shm, dev_shm, probe};

/// A live 30 fps writer that runs until killed.
fn live_writer(socket: &str, extra_sink_props: &str) -> Proc {
    let mut cmd = probe();
    cmd.args([
        "write",
        "--socket",
        socket,
        "--frames",
        "1000000",
        "--live",
        "--limit-ms",
        "600000",
        "--sink-props",
        extra_sink_props,
    ]);
    Proc::spawn("writer", cmd)
}

fn reader(name: &str, socket: &str, extra: &[&str]) -> Proc {
    let mut cmd = probe();
    cmd.args(["read", "--socket", socket, "--limit-ms", "600000"]);
    cmd.args(extra);
    Proc::spawn(name, cmd)
}

#[test]
fn a_stalled_reader_neither_slows_the_others_nor_survives_being_killed() {
    let dir = TestDir::new("stall");
    let socket = dir.socket("s");
    let writer = live_writer(&socket, "slow-reader-timeout=1000 max-in-flight=4");
    let a = reader("reader-a", &socket, &[]);
    let b = reader("reader-b", &socket, &[]);
    let mut c = reader("reader-c", &socket, &[]);
    for r in [&a, &b, &c] {
        r.wait_frames(10);
    }
    c.signal(libc::SIGSTOP);
    let (a0, b0) = (a.frames(), b.frames());
    std::thread::sleep(Duration::from_secs(3));
    let (a1, b1) = (a.frames(), b.frames());
    eprintln!(
        "healthy readers while one is stalled: {} and {} frames in 3 s",
        a1 - a0,
        b1 - b0
    );
    // 3 s at 30 fps is 90 frames; a shared slot pool or a blocking send would have stopped
    // them at a handful (shmsink/shmsrc gets 9, measured). Half the rate leaves room for a
    // loaded machine without hiding a stall.
    assert!(
        a1 - a0 >= 45 && b1 - b0 >= 45,
        "healthy readers slowed down by a stalled one: a {} b {} frames in 3 s\n{}",
        a1 - a0,
        b1 - b0,
        writer.dump()
    );
    // The stalled reader stayed at its credit limit past slow-reader-timeout: disconnected.
    writer.wait_line("the stalled reader disconnected", |l| {
        l.contains("shmzerosink-reader-lost") && l.contains(&format!("pid=(int){}", c.pid()))
    });
    c.kill9();
    let (a2, b2) = (a.frames(), b.frames());
    a.wait_frames(a2 + 30);
    b.wait_frames(b2 + 30);
    assert!(
        writer.count(|l| l.starts_with("error")) == 0,
        "{}",
        writer.dump()
    );
}

#[test]
fn killed_readers_are_reclaimed_at_once_twenty_times_over() {
    let dir = TestDir::new("rkill");
    let socket = dir.socket("s");
    let shm_before = dev_shm();
    // slow-reader-timeout=0: only the death of a reader may free its slots here.
    let writer = live_writer(
        &socket,
        "slow-reader-timeout=0 max-buffers=8 max-in-flight=4",
    );
    let mut baseline = None;
    let mut pids = vec![writer.pid()];
    for cycle in 0..20 {
        let mut r = reader("reader", &socket, &[]);
        pids.push(r.pid());
        r.wait_frames(3);
        r.kill9();
        writer.wait_until("the killed reader to be dropped", |lines| {
            lines
                .iter()
                .filter(|l| l.contains("shmzerosink-reader-lost"))
                .count()
                > cycle
        });
        if cycle == 2 {
            baseline = Some((writer.fd_count(), writer.rss_kb()));
        }
    }
    let (fds0, rss0) = baseline.unwrap();
    let (fds1, rss1) = (writer.fd_count(), writer.rss_kb());
    assert!(fds1 <= fds0 + 2, "writer fds grew from {fds0} to {fds1}");
    assert!(
        rss1 <= rss0 + 16 * 1024,
        "writer RSS grew from {rss0} kB to {rss1} kB"
    );
    // 20 dead readers held up to 4 of 8 slots each: were they never reclaimed, this reader
    // would get nothing.
    let last = reader("last-reader", &socket, &[]);
    last.wait_frames(30);
    // It joined a running stream: the sticky events were replayed before its first frame.
    let lines = last.lines();
    let first_frame = lines.iter().position(|l| l.starts_with("frame ")).unwrap();
    for event in [
        "event stream-start",
        "event caps video/x-raw",
        "event segment",
    ] {
        assert!(
            lines[..first_frame].iter().any(|l| l.starts_with(event)),
            "late reader missed {event}\n{}",
            last.dump()
        );
    }
    pids.push(last.pid());
    assert_no_new_shm(&shm_before, &pids);
    drop(writer);
}

#[test]
fn reader_reconnects_across_twenty_killed_writers() {
    let dir = TestDir::new("wkill");
    let socket = dir.socket("s");
    let shm_before = dev_shm();
    let r = reader("reader", &socket, &["--reconnect", "--timeout-ms", "0"]);
    let mut baseline = None;
    let mut pids = vec![r.pid()];
    for cycle in 0..20 {
        let before = r.frames();
        let mut w = live_writer(&socket, "");
        pids.push(w.pid());
        r.wait_frames(before + 3);
        // Only our socket, never a `.0` sibling.
        assert_eq!(dir.entries(), vec!["s.sock".to_owned()], "cycle {cycle}");
        w.kill9();
        r.wait_until("the reader to notice the writer's death", |lines| {
            lines
                .iter()
                .filter(|l| l.contains("shmzerosrc-writer-lost"))
                .count()
                > cycle
        });
        if cycle == 2 {
            baseline = Some((r.fd_count(), r.rss_kb()));
        }
    }
    let (fds0, rss0) = baseline.unwrap();
    let (fds1, rss1) = (r.fd_count(), r.rss_kb());
    assert!(fds1 <= fds0 + 2, "reader fds grew from {fds0} to {fds1}");
    assert!(
        rss1 <= rss0 + 16 * 1024,
        "reader RSS grew from {rss0} kB to {rss1} kB"
    );
    // A last writer that stops cleanly leaves nothing behind, stale socket included.
    let mut cmd = probe();
    cmd.args(["write", "--socket", &socket, "--frames", "30"]);
    let mut last = Proc::spawn("last-writer", cmd);
    assert!(last.wait().success(), "{}", last.dump());
    assert!(dir.entries().is_empty(), "left behind: {:?}", dir.entries());
    pids.push(last.pid());
    assert_no_new_shm(&shm_before, &pids);
    assert!(r.count(|l| l.starts_with("error")) == 0, "{}", r.dump());
}

#[test]
fn writer_death_is_an_error_not_eos() {
    let dir = TestDir::new("wdeath");
    let socket = dir.socket("s");
    let mut w = live_writer(&socket, "");
    let mut r = reader("reader", &socket, &["--keep-first"]);
    r.wait_frames(5);
    w.kill9();
    let status = r.wait();
    assert_eq!(status.code(), Some(2), "{}", r.dump());
    let lines = r.lines();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("error") && l.contains("Lost the shmzerosink writer")),
        "{}",
        r.dump()
    );
    assert!(
        !lines.iter().any(|l| l.starts_with("event eos")),
        "{}",
        r.dump()
    );
    // The buffer it held since the start is still mapped and unchanged after the writer died.
    assert!(
        lines
            .iter()
            .any(|l| l == "kept-buffer unchanged=1 size=307200"),
        "{}",
        r.dump()
    );
}

#[test]
fn garbage_from_a_reader_drops_that_reader_only() {
    let dir = TestDir::new("garbage-w");
    let socket = dir.socket("s");
    let writer = live_writer(&socket, "");
    let good = reader("good-reader", &socket, &[]);
    good.wait_frames(3);
    let path = std::path::Path::new(&socket);
    // Garbage instead of a hello.
    let rude = shmzero_core::connect(path, Duration::from_secs(5)).unwrap();
    rude.send_raw(b"\xde\xad\xbe\xef not a hello").unwrap();
    // A proper hello, then garbage and a release of a buffer it never got.
    let liar = shmzero_core::connect(path, Duration::from_secs(5)).unwrap();
    shmzero_core::reader_handshake(&liar, 4, Duration::from_secs(5)).unwrap();
    liar.send_raw(&[0u8; 3]).unwrap();
    let lying = shmzero_core::connect(path, Duration::from_secs(5)).unwrap();
    shmzero_core::reader_handshake(&lying, 4, Duration::from_secs(5)).unwrap();
    lying
        .try_send(
            &shmzero_core::Message::Release(shmzero_core::BufferId(u64::MAX)),
            None,
        )
        .unwrap();
    writer.wait_until("both misbehaving readers dropped", |lines| {
        lines
            .iter()
            .filter(|l| l.contains("shmzerosink-reader-lost"))
            .count()
            >= 2
    });
    let n = good.frames();
    good.wait_frames(n + 30);
    assert_no_criticals(&writer);
    assert_no_criticals(&good);
    assert!(
        writer.count(|l| l.starts_with("error")) == 0,
        "{}",
        writer.dump()
    );
    drop(rude);
}

#[test]
fn garbage_from_a_writer_is_a_clear_reader_error() {
    let dir = TestDir::new("garbage-r");
    let socket = dir.socket("s");
    let listener = shmzero_core::Listener::bind(std::path::Path::new(&socket)).unwrap();
    let mut r = reader("reader", &socket, &[]);
    let (channel, _) = listener
        .accept(common::PATIENCE)
        .unwrap()
        .expect("the reader connects");
    shmzero_core::writer_handshake(&channel, 4, Duration::from_secs(10)).unwrap();
    channel
        .send_raw(b"SZ\x04\x00 truncated buffer descriptor")
        .unwrap();
    let status = r.wait();
    assert_eq!(status.code(), Some(2), "exit {status}\n{}", r.dump());
    assert!(
        r.lines()
            .iter()
            .any(|l| l.starts_with("error") && l.contains("protocol error")),
        "{}",
        r.dump()
    );
    assert_no_criticals(&r);
}

#[test]
fn waiting_for_a_reader_is_bounded_by_connection_timeout() {
    let dir = TestDir::new("noreader");
    let socket = dir.socket("s");
    let mut cmd = common::gst_launch();
    cmd.args([
        "videotestsrc",
        "num-buffers=10",
        "!",
        "shmzerosink",
        &format!("socket-path={socket}"),
        "wait-for-connection=true",
        "connection-timeout=300",
    ]);
    let mut writer = Proc::spawn("writer", cmd);
    let status = writer.wait();
    assert!(!status.success(), "{}", writer.dump());
    assert!(
        writer
            .lines()
            .iter()
            .any(|l| l.contains("no reader connected within")),
        "{}",
        writer.dump()
    );
    assert!(dir.entries().is_empty(), "left behind: {:?}", dir.entries());
}
