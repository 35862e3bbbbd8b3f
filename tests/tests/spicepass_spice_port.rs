// SPDX-License-Identifier: MPL-2.0
//! The SPICE port channel for real: a lab guest with `-chardev spiceport` behind a
//! `virtserialport` writes a known byte stream to `/dev/virtio-ports/org.mediapass.0`;
//! this process connects to QEMU's SPICE server with `spicepass-spice-port`, receives every
//! byte in order, sends a payload back (which the guest stores for comparison) and sees
//! the guest close the port, after which writes are refused with "no peer".
//!
//! Fails (never skips) when the lab cannot start: run `./x setup` first.

use std::net::TcpListener;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mediapass_tests::vmlab::{Lab, LabCommand, LabError, LabOutput};
use spicepass_spice_port::{ConnectOptions, Error, PortState, SpicePort, SpiceUri};

const PORT_NAME: &str = "org.mediapass.0";
const GUEST_TO_HOST: usize = 8 * 1024 * 1024;
const HOST_TO_GUEST: usize = 1024 * 1024 + 12_345;
/// Waiting for the VM includes waiting for other lab VMs (they run one at a time).
const VM_START_LIMIT: Duration = Duration::from_secs(1800);
const THROUGHPUT_BYTES: usize = 64 * 1024 * 1024;
const IO_LIMIT: Duration = Duration::from_secs(180);

/// A deterministic, non-repeating byte pattern (xorshift), different per seed.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    a.iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .or((a.len() != b.len()).then(|| a.len().min(b.len())))
}

fn connect(
    port: u16,
    lab_done: &mpsc::Receiver<Result<LabOutput, LabError>>,
) -> Result<SpicePort, String> {
    let started = Instant::now();
    let options = ConnectOptions {
        uri: SpiceUri::parse(&format!("spice://127.0.0.1:{port}")).unwrap(),
        port_name: PORT_NAME.into(),
        timeout: Duration::from_secs(30),
    };
    let mut last = String::new();
    while started.elapsed() < VM_START_LIMIT {
        match SpicePort::connect(&options) {
            Ok(p) => return Ok(p),
            // QEMU is not listening yet (booting, or waiting for another lab VM).
            Err(e @ Error::Connect { .. }) => last = e.to_string(),
            Err(e) => return Err(format!("SPICE connect failed: {e}")),
        }
        match lab_done.recv_timeout(Duration::from_millis(250)) {
            Ok(Ok(out)) => {
                return Err(format!(
                    "the VM ended before SPICE connected:\n{}",
                    out.describe()
                ));
            }
            Ok(Err(e)) => return Err(format!("{e}")),
            Err(_) => {}
        }
    }
    Err(format!(
        "QEMU's SPICE server never accepted a connection: {last}"
    ))
}

#[test]
fn spice_port_carries_bytes_both_ways_and_reports_no_peer() {
    let lab = Lab::new().unwrap_or_else(|e| panic!("{e}"));
    let share = lab.scratch_dir("spice-port").unwrap();
    let to_host = pattern(GUEST_TO_HOST, 0x5eed_0001);
    let to_guest = pattern(HOST_TO_GUEST, 0x5eed_0002);
    std::fs::write(share.join("to-host.bin"), &to_host).unwrap();
    let spice_port = free_tcp_port();

    // One open of the port for both directions (a virtio port allows one opener); the
    // reader is bounded so a lost host payload ends the run instead of hanging it.
    let script = format!(
        r#"set -e
s={share}
exec 3<>/dev/virtio-ports/{PORT_NAME}
timeout -s KILL 300 head -c {HOST_TO_GUEST} <&3 >"$s/to-guest.bin" &
reader=$!
timeout -s KILL 300 cat "$s/to-host.bin" >&3
wait $reader
exec 3>&-
echo closed >"$s/guest-closed"
# Closed long enough for the host to see it; then reopen for the throughput run, which
# starts when the host says so.
sleep 2
exec 3<>/dev/virtio-ports/{PORT_NAME}
timeout -s KILL 300 head -c 1 <&3 >/dev/null
timeout -s KILL 300 dd if=/dev/zero bs=32k count={dd_count} >&3 2>"$s/dd.err"
sleep 2"#,
        share = share.display(),
        dd_count = THROUGHPUT_BYTES / 32768,
    );
    let cmd = spice_qemu_args(
        LabCommand::shell(&script)
            .rw_dir(&share)
            .timeout(Duration::from_secs(900)),
        spice_port,
    );
    let (done_tx, done_rx) = mpsc::channel();
    let vm = std::thread::spawn(move || {
        let _ = done_tx.send(lab.run(&cmd));
    });

    let mut port = connect(spice_port, &done_rx).unwrap_or_else(|e| panic!("{e}"));

    // Guest → host: every byte, in order.
    let mut received = Vec::with_capacity(GUEST_TO_HOST);
    let mut buf = vec![0u8; 256 * 1024];
    let mut first_byte_at = None;
    while received.len() < GUEST_TO_HOST {
        let n = port
            .read(&mut buf, IO_LIMIT)
            .unwrap_or_else(|e| panic!("after {} bytes: {e}", received.len()));
        first_byte_at.get_or_insert_with(Instant::now);
        received.extend_from_slice(&buf[..n]);
    }
    let elapsed = first_byte_at.unwrap().elapsed();
    if let Some(at) = first_difference(&received, &to_host) {
        panic!(
            "guest → host stream differs at byte {at} of {GUEST_TO_HOST} (got {} bytes)",
            received.len()
        );
    }
    eprintln!(
        "guest → SPICE client, pattern read from a 9p share: {GUEST_TO_HOST} bytes in {:.2} s = {:.1} MB/s",
        elapsed.as_secs_f64(),
        GUEST_TO_HOST as f64 / elapsed.as_secs_f64() / 1e6
    );

    // Host → guest.
    assert!(
        port.guest_open(),
        "data came, so the guest has the port open"
    );
    port.write_all(&to_guest, IO_LIMIT)
        .unwrap_or_else(|e| panic!("writing to the guest: {e}"));
    port.flush(IO_LIMIT).unwrap();

    // The guest closes its end: the server says so and writes are refused as "no peer".
    let deadline = Instant::now() + IO_LIMIT;
    loop {
        match port.pump() {
            Ok(Some(PortState::GuestClosed)) => break,
            Ok(_) => {}
            Err(e) => panic!("waiting for the guest to close the port: {e}"),
        }
        let mut extra = [0u8; 1];
        if let Ok(Some(_)) = port.try_read(&mut extra) {
            panic!("the guest sent more than {GUEST_TO_HOST} bytes");
        }
        assert!(Instant::now() < deadline, "the guest never closed the port");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!port.guest_open());
    match port.try_write(b"nobody there") {
        Err(Error::NoPeer) => {}
        other => panic!("write to a closed port: expected NoPeer, got {other:?}"),
    }

    // Throughput: 64 MiB of zeros in 32 KiB writes, guest → client.
    port.wait_guest_open(IO_LIMIT)
        .unwrap_or_else(|e| panic!("waiting for the guest to reopen: {e}"));
    port.write_all(b"g", IO_LIMIT).unwrap();
    port.flush(IO_LIMIT).unwrap();
    let mut total = 0;
    let mut started = None;
    while total < THROUGHPUT_BYTES {
        let n = port
            .read(&mut buf, IO_LIMIT)
            .unwrap_or_else(|e| panic!("throughput run, after {total} bytes: {e}"));
        started.get_or_insert_with(Instant::now);
        total += n;
    }
    let secs = started.unwrap().elapsed().as_secs_f64();
    eprintln!(
        "SPICE port guest→client (TCG, 32 KiB dd writes): {total} bytes in {secs:.2} s = {:.1} MB/s",
        total as f64 / secs / 1e6
    );

    vm.join().unwrap();
    let out = done_rx.recv().unwrap().unwrap_or_else(|e| panic!("{e}"));
    drop(port);
    assert!(out.success(), "{}", out.describe());
    let back = std::fs::read(share.join("to-guest.bin")).unwrap();
    if let Some(at) = first_difference(&back, &to_guest) {
        panic!(
            "host → guest stream differs at byte {at} (guest got {} of {HOST_TO_GUEST})",
            back.len()
        );
    }
    assert!(Path::new(&share.join("guest-closed")).exists());
}

fn spice_qemu_args(cmd: LabCommand, spice_port: u16) -> LabCommand {
    cmd.qemu_arg("-spice")
        .qemu_arg(format!(
            "port={spice_port},addr=127.0.0.1,disable-ticketing=on"
        ))
        .qemu_arg("-device")
        .qemu_arg("virtio-serial-pci")
        .qemu_arg("-chardev")
        .qemu_arg(format!("spiceport,id=sp0,name={PORT_NAME}"))
        .qemu_arg("-device")
        .qemu_arg(format!("virtserialport,chardev=sp0,name={PORT_NAME}"))
}
