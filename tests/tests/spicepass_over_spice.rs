// SPDX-License-Identifier: MPL-2.0
//! spicepass the way a VDI deployment runs it: the guest's virtio-serial port is backed by
//! QEMU's SPICE server (`-chardev spiceport` + `virtserialport`), the guest application
//! ends in `spicepasssink` on `/dev/virtio-ports/org.mediapass.0`, and the client is
//! `spicepasssrc uri=spicepass+spice://…?port=org.mediapass.0`, which speaks SPICE to QEMU
//! and opens the port channel. Both ends run `spicepass-peer`, which prints every buffer's
//! timestamps, flags, size and checksum and every event. One boot, three phases:
//!
//! 1. a WebM clip through matroskademux: every buffer and sticky event identical on both
//!    sides, EOS reaches the client;
//! 2. an MP4 clip through qtdemux: a client seek moves the guest pipeline (the guest gets
//!    the seek; the client sees its flush and a segment at 8 s, then exactly the buffers
//!    the guest sent after the flush);
//! 3. throughput: 128 MiB in 1 MiB buffers from guest RAM, timed at the client from the
//!    first buffer to EOS (printed for docs/vdi.md, never asserted).
//!
//! Fails (never skips) when the lab cannot start: run `./x setup` first.

mod spicepass_common;

use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mediapass_tests::vmlab::{Lab, LabCommand, LabError, LabOutput};
use spicepass_common::*;

const PORT_NAME: &str = "org.mediapass.0";
const DEVICE: &str = "/dev/virtio-ports/org.mediapass.0";
const THROUGHPUT_MIB: usize = 128;
/// Generous: TCG guest on a loaded 2-core machine.
const LONG: Duration = Duration::from_secs(240);
/// Waiting for the VM includes waiting for other lab VMs (they run one at a time).
const VM_START_LIMIT: Duration = Duration::from_secs(1800);

fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// QEMU's SPICE server accepts TCP once QEMU runs (after any other lab VM has finished).
fn wait_for_spice_server(port: u16, vm: &mpsc::Receiver<Result<LabOutput, LabError>>) {
    let deadline = Instant::now() + VM_START_LIMIT;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(result) = vm.recv_timeout(Duration::from_millis(200)) {
            panic!(
                "the VM ended before its SPICE server listened: {:?}",
                result.map(|o| o.describe())
            );
        }
        assert!(
            Instant::now() < deadline,
            "QEMU's SPICE server never listened on port {port}"
        );
    }
}

#[test]
fn spicepass_through_qemus_spice_server() {
    let lab = Lab::new().unwrap_or_else(|e| panic!("{e}"));
    let peer = peer_binary();
    let share = lab.scratch_dir("spicepass-over-spice").unwrap();
    let webm = share.join("clip.webm");
    let mp4 = share.join("clip.mp4");
    make_clip(&webm, 300);
    make_mp4_clip(&mp4, 300);
    let spice_port = free_tcp_port();

    // Every guest step is bounded (SIGKILL) so a failed run never holds the lab lock long.
    // A phase's guest waits for the host's go (written once the previous phase's client
    // process has exited): otherwise it could start its stream to that client while it
    // shuts down after EOS, and the buffers it accepted would never reach the next one.
    let guest = |phase: &str, head: String, extra: &str| {
        format!(
            "for i in $(seq 1500); do [ {phase} = identity ] || [ -e $s/go-{phase} ] && break; \
             sleep 0.2; done\n\
             timeout -s KILL 300 {peer} guest spicepass+dev://{DEVICE} '{head}' {extra} \
             timeout-s=200 >$s/{phase}.out 2>$s/{phase}.err; echo $? >$s/{phase}.rc\n",
            peer = peer.display()
        )
    };
    let script = format!(
        "s={share}\n{a}{b}\
         dd if=/dev/zero of=/tmp/zeros bs=1M count={THROUGHPUT_MIB} 2>/dev/null\n{c}",
        share = share.display(),
        a = guest(
            "identity",
            format!("filesrc location={} ! matroskademux", webm.display()),
            ""
        ),
        b = guest(
            "seek",
            format!("filesrc location={} ! qtdemux", mp4.display()),
            ""
        ),
        // From guest RAM (the 9p share would be the bottleneck), no checksums (the debug
        // build's hashing would be).
        c = guest(
            "throughput",
            "filesrc location=/tmp/zeros blocksize=1048576 ! application/octet-stream".into(),
            "checksum=false"
        ),
    );
    let cmd = LabCommand::shell(&script)
        .rw_dir(&share)
        .timeout(Duration::from_secs(1200))
        .qemu_arg("-spice")
        .qemu_arg(format!(
            "port={spice_port},addr=127.0.0.1,disable-ticketing=on"
        ))
        .qemu_arg("-device")
        .qemu_arg("virtio-serial-pci")
        .qemu_arg("-chardev")
        .qemu_arg(format!("spiceport,id=sp0,name={PORT_NAME}"))
        .qemu_arg("-device")
        .qemu_arg(format!("virtserialport,chardev=sp0,name={PORT_NAME}"));
    let (done_tx, vm) = mpsc::channel();
    let vm_thread = std::thread::spawn(move || {
        let _ = done_tx.send(lab.run(&cmd));
    });
    wait_for_spice_server(spice_port, &vm);
    let uri = format!("spicepass+spice://127.0.0.1:{spice_port}?port={PORT_NAME}");

    // 1. Byte-identical stream, same timestamps and sticky events, EOS.
    let mut client = Client::spawn(&uri, &[], None);
    assert_eq!(client.finish(LONG), 0, "client failed\n{}", client.story());
    std::fs::write(share.join("go-seek"), "").unwrap();
    assert_eq!(
        wait_guest_phase(&share, "identity", &vm, LONG),
        0,
        "{}",
        guest_story(&share, "identity")
    );
    let sent = guest_lines(&share.join("identity.out"));
    let story = || format!("{}\n{}", guest_story(&share, "identity"), client.story());
    assert_delivered_identically(&sent, &client.lines(), 300, story);

    // 2. A client seek moves the guest pipeline (qtdemux this time).
    let mut client = Client::spawn(
        &uri,
        &["sync=true", "seek-after=15", "seek-to-ms=8000"],
        None,
    );
    assert_eq!(client.finish(LONG), 0, "client failed\n{}", client.story());
    std::fs::write(share.join("go-throughput"), "").unwrap();
    assert_eq!(
        wait_guest_phase(&share, "seek", &vm, LONG),
        0,
        "{}",
        guest_story(&share, "seek")
    );
    let guest_seen = guest_lines(&share.join("seek.out"));
    let story = || format!("{}\n{}", guest_story(&share, "seek"), client.story());
    assert_seek_moved_guest(&guest_seen, &client.lines(), story);

    // 3. Throughput through spicepass over SPICE (a floor: TCG, debug build, shared cores).
    let mut client = Client::spawn(&uri, &["checksum=false"], None);
    let deadline = Instant::now() + LONG;
    let mut first_buffer_at = None;
    while !client.lines().iter().any(|l| l == "EOS") {
        if first_buffer_at.is_none() && client.lines().iter().any(|l| l.starts_with("BUF")) {
            first_buffer_at = Some(Instant::now());
        }
        assert!(
            Instant::now() < deadline && client.child.try_wait().unwrap().is_none(),
            "throughput client ended without EOS\n{}",
            client.story()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let secs = first_buffer_at
        .expect("buffers before EOS")
        .elapsed()
        .as_secs_f64();
    assert_eq!(client.finish(LONG), 0, "client failed\n{}", client.story());
    assert_eq!(
        wait_guest_phase(&share, "throughput", &vm, LONG),
        0,
        "{}",
        guest_story(&share, "throughput")
    );
    let got = client.lines();
    let bytes: u64 = with_prefix(&got, "BUF")
        .iter()
        .map(|l| {
            l.split_whitespace()
                .find_map(|f| f.strip_prefix("size="))
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or_else(|| panic!("no size in {l}"))
        })
        .sum();
    assert_eq!(bytes, (THROUGHPUT_MIB << 20) as u64, "{}", client.story());
    eprintln!(
        "spicepass over SPICE guest→client (TCG, 1 MiB buffers): {bytes} bytes in {secs:.2} s = {:.1} MB/s",
        bytes as f64 / secs / 1e6
    );

    vm_thread.join().unwrap();
    let out = vm.recv().unwrap().unwrap_or_else(|e| panic!("{e}"));
    assert!(out.success(), "{}", out.describe());
}
