// SPDX-License-Identifier: MPL-2.0
//! spicepass over a real virtio-serial port: the guest runs `spicepasssink` on
//! `/dev/virtio-ports/org.mediapass.0` (through `spicepass-peer`, which prints every buffer's
//! timestamps, flags, size and checksum), the host runs `spicepasssrc` on QEMU's
//! `-chardev socket` unix socket. One boot, four phases:
//!
//! 1. a clip end to end: every buffer and sticky event identical on both sides, EOS;
//! 2. a client seek moves the guest pipeline (flush + new segment at 8 s);
//! 3. the drop: the host client is killed with SIGKILL mid-stream, the guest (paced at
//!    real time, `drop-policy=drop`) keeps going without a client, a new client resyncs
//!    at a keyframe with fresh caps and only ever sees whole buffers the guest sent;
//! 4. raw virtio-serial throughput under TCG (32 KiB `dd` writes), printed for docs/vdi.md.
//!
//! Fails (never skips) when the lab cannot start: run `./x setup` first.

mod spicepass_common;

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mediapass_tests::vmlab::{Lab, LabCommand};
use spicepass_common::*;

const PORT: &str = "/dev/virtio-ports/org.mediapass.0";
const THROUGHPUT_BYTES: usize = 64 * 1024 * 1024;
/// Generous: TCG guest on a loaded 2-core machine, and other lab VMs go first.
const LONG: Duration = Duration::from_secs(240);
const VM_START_LIMIT: Duration = Duration::from_secs(1800);

#[test]
fn spicepass_over_virtio_serial_in_a_guest() {
    let lab = Lab::new().unwrap_or_else(|e| panic!("{e}"));
    let peer = peer_binary();
    let share = lab.scratch_dir("spicepass-virtio-serial").unwrap();
    let clip = share.join("clip.webm");
    let long_clip = share.join("long.webm");
    make_clip(&clip, 300);
    make_clip(&long_clip, 600);
    let sock = share.join("port.sock");

    // Every guest step is bounded (SIGKILL): if this test fails half-way, the VM still
    // ends on its own instead of holding the machine-wide lab lock until its timeout.
    let guest = |phase: &str, head: String, extra: &str| {
        format!(
            "timeout -s KILL 300 {peer} guest spicepass+dev://{PORT} '{head}' {extra} timeout-s=200 \
             >$s/{phase}.out 2>$s/{phase}.err; echo $? >$s/{phase}.rc\n",
            peer = peer.display()
        )
    };
    let play = |c: &Path| format!("filesrc location={} ! matroskademux", c.display());
    let script = format!(
        "s={share}\n{a}{b}{c}timeout -s KILL 300 dd if=/dev/zero of={PORT} bs=32k count={n} 2>$s/dd.err; echo $? >$s/dd.rc\n",
        share = share.display(),
        a = guest("identity", play(&clip), ""),
        b = guest("seek", play(&clip), ""),
        // Paced at real time so the client can be killed mid-stream.
        c = guest(
            "drop",
            format!("{} ! identity sync=true", play(&long_clip)),
            "drop-policy=drop"
        ),
        n = THROUGHPUT_BYTES / 32768,
    );
    let cmd = LabCommand::shell(&script)
        .rw_dir(&share)
        .timeout(Duration::from_secs(1200))
        .qemu_arg("-device")
        .qemu_arg("virtio-serial-pci")
        .qemu_arg("-chardev")
        .qemu_arg(format!(
            "socket,id=c0,path={},server=on,wait=off",
            sock.display()
        ))
        .qemu_arg("-device")
        .qemu_arg("virtserialport,chardev=c0,name=org.mediapass.0");
    let (done_tx, vm) = mpsc::channel();
    let vm_thread = std::thread::spawn(move || {
        let _ = done_tx.send(lab.run(&cmd));
    });

    // QEMU creates the socket when it starts (after any other lab VM has finished).
    let deadline = Instant::now() + VM_START_LIMIT;
    while !sock.exists() {
        if let Ok(result) = vm.recv_timeout(Duration::from_millis(200)) {
            panic!(
                "the VM ended before its socket appeared: {:?}",
                result.map(|o| o.describe())
            );
        }
        assert!(
            Instant::now() < deadline,
            "QEMU never created {}",
            sock.display()
        );
    }

    // 1. Byte-identical stream and EOS.
    let unix_uri = format!("spicepass+unix://{}", sock.display());
    let mut client = Client::spawn(&unix_uri, &[], None);
    assert_eq!(client.finish(LONG), 0, "client failed\n{}", client.story());
    assert_eq!(
        wait_guest_phase(&share, "identity", &vm, VM_START_LIMIT),
        0,
        "{}",
        guest_story(&share, "identity")
    );
    let sent = guest_lines(&share.join("identity.out"));
    let story = || format!("{}\n{}", guest_story(&share, "identity"), client.story());
    assert_delivered_identically(&sent, &client.lines(), 300, story);

    // 2. A client seek moves the guest.
    let mut client = Client::spawn(
        &unix_uri,
        &["sync=true", "seek-after=15", "seek-to-ms=8000"],
        None,
    );
    assert_eq!(client.finish(LONG), 0, "client failed\n{}", client.story());
    assert_eq!(
        wait_guest_phase(&share, "seek", &vm, VM_START_LIMIT),
        0,
        "{}",
        guest_story(&share, "seek")
    );
    let guest_seen = guest_lines(&share.join("seek.out"));
    let story = || format!("{}\n{}", guest_story(&share, "seek"), client.story());
    assert_seek_moved_guest(&guest_seen, &client.lines(), story);

    // 3. Kill the client mid-stream; the guest keeps going; a new client resyncs.
    let guest_out = share.join("drop.out");
    let mut first_client = Client::spawn(&unix_uri, &[], None);
    first_client.wait_buffers(45, LONG);
    first_client.child.kill().unwrap();
    first_client.child.wait().unwrap();
    let at_kill = with_prefix(&guest_lines(&guest_out), "BUF").len();
    let deadline = Instant::now() + LONG;
    // 30 more buffers (1 s of a real-time stream) with nobody connected: no stall.
    while with_prefix(&guest_lines(&guest_out), "BUF").len() < at_kill + 30 {
        assert!(
            Instant::now() < deadline,
            "the guest stalled after the client died ({at_kill} buffers)\n{}",
            guest_story(&share, "drop")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut client = Client::spawn(&unix_uri, &[], None);
    assert_eq!(
        client.finish(LONG),
        0,
        "second client failed\n{}",
        client.story()
    );
    assert_eq!(
        wait_guest_phase(&share, "drop", &vm, VM_START_LIMIT),
        0,
        "{}",
        guest_story(&share, "drop")
    );
    let sent = guest_lines(&guest_out);
    let got = client.lines();
    let story = || format!("{}\n{}", guest_story(&share, "drop"), client.story());
    // The guest's sink resynced once per client: the killed one and the new one.
    assert!(
        with_prefix(&sent, "MSG spicepass-resynced").len() >= 2,
        "the guest did not resync for the new client\n{}",
        story()
    );
    assert_eq!(
        with_prefix(&got, "MSG spicepass-connected").len(),
        1,
        "{}",
        story()
    );
    let first_buf = got
        .iter()
        .position(|l| l.starts_with("BUF"))
        .expect("buffers");
    let caps = got.iter().position(|l| l.starts_with("EVENT caps"));
    assert!(
        caps.is_some_and(|c| c < first_buf),
        "fresh caps before the first buffer\n{}",
        story()
    );
    assert_eq!(
        flags_of(&got[first_buf]) & DELTA_UNIT,
        0,
        "first buffer is not a keyframe: {}",
        got[first_buf]
    );
    // Nothing mis-framed: every buffer the new client got is one the guest sent, in order.
    let sent_bufs = with_prefix(&sent, "BUF");
    if let Some(line) = first_not_sent(&sent_bufs, &with_prefix(&got, "BUF")) {
        panic!(
            "client buffer not sent by the guest (in order): {line}\n{}",
            story()
        );
    }
    assert!(
        pts_of(&got[first_buf]) >= pts_of(&sent_bufs[at_kill.min(sent_bufs.len() - 1)]),
        "the new client starts after the drop"
    );
    assert_eq!(with_prefix(&got, "EOS").len(), 1, "{}", story());

    // 4. Raw virtio-serial throughput (guest dd → host socket).
    let mut stream = UnixStream::connect(&sock).expect("connecting to the chardev socket");
    stream.set_read_timeout(Some(LONG)).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0;
    let mut started = None;
    while total < THROUGHPUT_BYTES {
        let n = stream.read(&mut buf).expect("reading the dd stream");
        assert!(n > 0, "the guest stopped after {total} bytes");
        started.get_or_insert_with(Instant::now);
        total += n;
    }
    let secs = started.unwrap().elapsed().as_secs_f64();
    eprintln!(
        "virtio-serial guest→host (TCG, 32 KiB writes): {total} bytes in {secs:.2} s = {:.1} MB/s",
        total as f64 / secs / 1e6
    );
    drop(stream);
    vm_thread.join().unwrap();
    let out = vm.recv().unwrap().unwrap_or_else(|e| panic!("{e}"));
    assert!(out.success(), "{}", out.describe());
    assert_eq!(
        std::fs::read_to_string(share.join("dd.rc")).unwrap().trim(),
        "0"
    );
}
