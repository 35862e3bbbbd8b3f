// SPDX-License-Identifier: MPL-2.0
//! A client killed with SIGKILL again and again, and peers that send garbage, truncated
//! frames or another protocol version: clear errors, no panic, no leak.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::time::Duration;

use common::*;
use spicepass_protocol::{BufferHeader, Encoder, Hello, Limits, Message, Role, Version};

const DELTA_UNIT: u32 = 0x2000;

fn flags_of(buf_line: &str) -> u32 {
    let hex = buf_line
        .split_whitespace()
        .find_map(|f| f.strip_prefix("flags=0x"))
        .expect("flags field");
    u32::from_str_radix(hex, 16).unwrap()
}

#[test]
fn twenty_client_kills_guest_keeps_playing_and_resyncs_on_keyframes() {
    let dir = TempDir::new("kill");
    let uri = format!("spicepass+unix://{}", dir.path("s.sock").display());
    // A live encoder with rare keyframes: every resync needs the force-key-unit request.
    let head = "videotestsrc is-live=true pattern=ball ! video/x-raw,width=160,height=120,framerate=30/1 \
                ! vp8enc deadline=1 keyframe-max-dist=600";
    let mut guest = Peer::spawn(
        "guest",
        &["guest", &uri, head, "drop-policy=drop", "timeout-s=600"],
    );
    guest.wait_line("READY", LONG);
    let pid = guest.child.id();
    let mut baseline = None;
    for cycle in 1..=20 {
        let mut client = Peer::spawn(&format!("client {cycle}"), &["client", &uri]);
        let first = client.wait_line("BUF", LONG);
        assert_eq!(
            flags_of(&first) & DELTA_UNIT,
            0,
            "cycle {cycle}: the first buffer after (re)connecting must be a keyframe: {first}"
        );
        let caps = client.lines_with("EVENT caps");
        assert_eq!(
            caps.len(),
            1,
            "cycle {cycle}: sticky caps replayed\n{}",
            client.story()
        );
        assert_eq!(client.lines_with("EVENT stream-start").len(), 1);
        assert_eq!(client.lines_with("EVENT segment").len(), 1);
        client.child.kill().unwrap(); // SIGKILL
        client.child.wait().unwrap();
        assert!(
            guest.child.try_wait().unwrap().is_none(),
            "guest died at cycle {cycle}\n{}",
            guest.story()
        );
        guest.wait_line("MSG spicepass-lost", LONG);
        if cycle == 3 {
            baseline = Some((fd_count(pid), rss_kib(pid)));
        }
    }
    let (fds, rss) = baseline.unwrap();
    let (fds_end, rss_end) = (fd_count(pid), rss_kib(pid));
    assert!(fds_end <= fds + 2, "fd growth: {fds} -> {fds_end}");
    assert!(
        rss_end <= rss + 16 * 1024,
        "RSS growth: {rss} KiB -> {rss_end} KiB"
    );
    assert!(
        guest.child.try_wait().unwrap().is_none(),
        "guest still playing"
    );
    let story = guest.story();
    assert_eq!(
        guest.lines_with("MSG spicepass-connected").len(),
        20,
        "{story}"
    );
    assert!(
        guest.lines_with("MSG spicepass-resynced").len() >= 20,
        "{story}"
    );
    // Clients joined mid-stream: the guest asked its encoder for a keyframe each time.
    let fku = guest
        .lines_with("UPEVENT custom-upstream")
        .into_iter()
        .filter(|l| l.contains("GstForceKeyUnit"))
        .count();
    assert!(fku >= 19, "force-key-unit requests: {fku}\n{story}");
    guest.assert_no_panic();
}

/// A fake guest: accepts the client's connection and sends `bytes`, then closes.
fn fake_guest_sends(bytes: Vec<u8>) -> Peer {
    let dir = TempDir::new("fake");
    let path = dir.path("s.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let uri = format!("spicepass+unix://{}", path.display());
    let mut client = Peer::spawn("client", &["client", &uri, "timeout-s=60"]);
    let (mut conn, _) = listener.accept().unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    conn.write_all(&bytes).unwrap();
    // Read the client's hello so closing does not reset the connection under it.
    let mut sink = [0u8; 256];
    let _ = conn.read(&mut sink);
    drop(conn);
    let code = client.finish(LONG);
    assert_eq!(
        code,
        1,
        "client must stop with an error\n{}",
        client.story()
    );
    client.assert_no_panic();
    drop(dir);
    client
}

fn error_line(client: &Peer) -> String {
    let errors = client.lines_with("ERROR");
    assert_eq!(errors.len(), 1, "{}", client.story());
    errors[0].clone()
}

#[test]
fn garbage_is_a_clear_error() {
    let client = fake_guest_sends(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello".to_vec());
    let e = error_line(&client);
    assert!(
        e.contains("bad magic") && e.contains("does not speak spicepass"),
        "{e}"
    );
}

#[test]
fn truncated_frame_is_a_clear_error() {
    let mut bytes = Vec::new();
    Hello::new(Role::Sink, 1).encode(&mut bytes).unwrap();
    let mut encoder = Encoder::new(Role::Sink, Limits::default());
    let header = BufferHeader {
        pts: Some(0),
        payload_len: 1000,
        ..BufferHeader::default()
    };
    encoder
        .encode(0, &Message::Buffer(header), &mut bytes)
        .unwrap();
    bytes.extend_from_slice(&[0xab; 10]); // 10 of the 1000 payload bytes, then EOF
    let client = fake_guest_sends(bytes);
    let e = error_line(&client);
    assert!(e.contains("in the middle of"), "{e}");
}

#[test]
fn version_mismatch_names_both_versions() {
    let mut hello = Hello::new(Role::Sink, 1);
    hello.version = Version { major: 2, minor: 3 };
    let mut bytes = Vec::new();
    hello.encode(&mut bytes).unwrap();
    let client = fake_guest_sends(bytes);
    let e = error_line(&client);
    assert!(
        e.contains("version mismatch") && e.contains("1.1") && e.contains("2.3"),
        "{e}"
    );
}

#[test]
fn guest_survives_a_garbage_client_and_serves_the_next_one() {
    let dir = TempDir::new("garbage-client");
    let clip = make_clip(&dir, 60);
    let sock = dir.path("s.sock");
    let uri = format!("spicepass+unix://{}", sock.display());
    let mut guest = Peer::spawn("guest", &["guest", &uri, &play_clip(&clip)]);
    guest.wait_line("READY", LONG);
    {
        let mut bad = std::os::unix::net::UnixStream::connect(&sock).unwrap();
        bad.write_all(b"\x00\x01garbage garbage garbage").unwrap();
        guest.wait_line("WARNING", LONG);
    }
    let mut client = Peer::spawn("client", &["client", &uri]);
    assert_eq!(client.finish(LONG), 0, "{}", client.story());
    assert_eq!(guest.finish(LONG), 0, "{}", guest.story());
    let warning = guest.lines_with("WARNING");
    assert!(warning[0].contains("bad magic"), "{}", warning[0]);
    assert_identical_stream(&guest, &client);
}

#[test]
fn wrong_auth_token_is_refused_and_the_right_one_plays() {
    let dir = TempDir::new("auth");
    let clip = make_clip(&dir, 30);
    let uri = format!("spicepass+unix://{}", dir.path("s.sock").display());
    let mut guest = Peer::spawn(
        "guest",
        &["guest", &uri, &play_clip(&clip), "auth-token=s3cret"],
    );
    guest.wait_line("READY", LONG);
    let mut intruder = Peer::spawn("intruder", &["client", &uri, "auth-token=guess"]);
    assert_eq!(intruder.finish(LONG), 1, "{}", intruder.story());
    let e = error_line(&intruder);
    assert!(
        e.contains("authentication failed") || e.contains("auth failed"),
        "{e}"
    );
    assert_eq!(
        intruder.lines_with("BUF").len(),
        0,
        "no data without the token"
    );
    let warning = guest.wait_line("WARNING", LONG);
    assert!(warning.contains("authentication failed"), "{warning}");
    let mut client = Peer::spawn("client", &["client", &uri, "auth-token=s3cret"]);
    assert_eq!(client.finish(LONG), 0, "{}", client.story());
    assert_eq!(guest.finish(LONG), 0, "{}", guest.story());
    assert_identical_stream(&guest, &client);
}

/// A guest blocked waiting for a client (drop-policy=block) or for credit must still stop:
/// the state change wakes the streaming thread instead of deadlocking on it.
#[test]
fn guest_blocked_without_client_stops_cleanly() {
    let dir = TempDir::new("block-stop");
    let uri = format!("spicepass+unix://{}", dir.path("s.sock").display());
    assert_blocked_guest_stops(&dir, &uri);
    assert!(!dir.path("s.sock").exists(), "socket removed on stop");
}

/// The same on a guest's virtio-serial port that is not there (not hot-plugged yet, or no
/// host end): the sink keeps looking for it, and stopping still returns.
#[test]
fn guest_blocked_on_an_absent_port_stops_cleanly() {
    let dir = TempDir::new("block-stop-dev");
    let uri = format!(
        "spicepass+dev://{}",
        dir.path("virtio-ports/org.mediapass.0").display()
    );
    assert_blocked_guest_stops(&dir, &uri);
}

/// A guest on `uri` with no client, `drop-policy=block`: the peer gives up after 2 s and
/// sets its pipeline to NULL, which must return.
fn assert_blocked_guest_stops(dir: &TempDir, uri: &str) {
    let clip = make_clip(dir, 30);
    let mut guest = Peer::spawn(
        "guest",
        &[
            "guest",
            uri,
            &play_clip(&clip),
            "drop-policy=block",
            "timeout-s=2",
        ],
    );
    guest.wait_line("READY", LONG);
    assert_eq!(guest.finish(LONG), 4, "{}", guest.story());
    assert_eq!(guest.lines_with("TIMEOUT").len(), 1);
    guest.assert_no_panic();
}

/// A relay in front of the guest (a SPICE proxy whose server is not up yet, an SSH tunnel)
/// accepts the client and hangs up before saying anything: that is "no guest yet", not bad
/// data. The client keeps trying and gets the whole stream once the relay reaches the guest.
#[test]
fn relay_hanging_up_before_the_hello_is_no_peer_yet() {
    let dir = TempDir::new("relay-hangup");
    let clip = make_clip(&dir, 30);
    let guest_sock = dir.path("guest.sock");
    let guest_uri = format!("spicepass+unix://{}", guest_sock.display());
    let mut guest = Peer::spawn("guest", &["guest", &guest_uri, &play_clip(&clip)]);
    guest.wait_line("READY", LONG);
    let relay_path = dir.path("relay.sock");
    let relay = UnixListener::bind(&relay_path).unwrap();
    let relay_thread = std::thread::spawn(move || {
        // Three connections refused by hanging up, then the real thing.
        for _ in 0..3 {
            drop(relay.accept().unwrap());
        }
        let (client, _) = relay.accept().unwrap();
        let guest = std::os::unix::net::UnixStream::connect(&guest_sock).unwrap();
        let (mut c_r, mut g_w) = (client.try_clone().unwrap(), guest.try_clone().unwrap());
        let up = std::thread::spawn(move || {
            let _ = std::io::copy(&mut c_r, &mut g_w);
            let _ = g_w.shutdown(std::net::Shutdown::Write);
        });
        let (mut g_r, mut c_w) = (guest, client);
        let _ = std::io::copy(&mut g_r, &mut c_w);
        let _ = c_w.shutdown(std::net::Shutdown::Write);
        let _ = up.join();
    });
    let client_uri = format!("spicepass+unix://{}", relay_path.display());
    let mut client = Peer::spawn("client", &["client", &client_uri]);
    assert_eq!(
        client.finish(LONG),
        0,
        "{}\n{}",
        client.story(),
        guest.story()
    );
    assert_eq!(guest.finish(LONG), 0, "{}", guest.story());
    relay_thread.join().unwrap();
    assert!(client.lines_with("ERROR").is_empty(), "{}", client.story());
    client.assert_no_panic();
    assert_identical_stream(&guest, &client);
}

/// A client application that keeps its pipeline a while after EOS must not take the next
/// guest's stream (it would go nowhere): that stream waits for, and goes whole to, the
/// next client.
#[test]
fn client_after_eos_leaves_the_next_guest_to_the_next_client() {
    let dir = TempDir::new("after-eos");
    let clip = make_clip(&dir, 60);
    let uri = format!("spicepass+unix://{}", dir.path("s.sock").display());
    let mut first_guest = Peer::spawn("guest 1", &["guest", &uri, &play_clip(&clip)]);
    first_guest.wait_line("READY", LONG);
    let mut lingering = Peer::spawn("client 1", &["client", &uri, "linger-after-eos-ms=4000"]);
    lingering.wait_line("EOS", LONG);
    assert_eq!(first_guest.finish(LONG), 0, "{}", first_guest.story());
    assert_identical_stream(&first_guest, &lingering);

    let mut second_guest = Peer::spawn(
        "guest 2",
        &["guest", &uri, &play_clip(&clip), "drop-policy=block"],
    );
    second_guest.wait_line("READY", LONG);
    assert_eq!(lingering.finish(LONG), 0, "{}", lingering.story());
    assert_eq!(
        lingering.lines_with("MSG spicepass-connected").len(),
        1,
        "the client took a session after its EOS\n{}\n{}",
        lingering.story(),
        second_guest.story()
    );
    let mut next = Peer::spawn("client 2", &["client", &uri]);
    assert_eq!(next.finish(LONG), 0, "{}", next.story());
    assert_eq!(second_guest.finish(LONG), 0, "{}", second_guest.story());
    assert_identical_stream(&second_guest, &next);
    lingering.assert_no_panic();
}
