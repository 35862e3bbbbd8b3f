// SPDX-License-Identifier: MPL-2.0
//! `spicepasssrc uri=spicepass+spice://…`: the client reaches the guest through a SPICE
//! server's port channel. The server here is scripted on loopback (real link handshake with
//! an RSA ticket, main channel, channel list, PORT_INIT) and relays SPICEVMC data to and
//! from a real guest `spicepass-peer` process, as QEMU relays to the guest's virtio-serial
//! port. (A QEMU run of the same path is the VM lab's job.)

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::*;
use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey};
use rsa::{Oaep, RsaPrivateKey};

/// The spice-port crate's test key (a throwaway RSA-1024 key).
const KEY: &str = include_str!("../spice-port/tests/data/test-key.pem");
const PORT_NAME: &str = "org.mediapass.0";
const MSG_SPICEVMC_DATA: u16 = 101;
const MSG_MAIN_INIT: u16 = 103;
const MSG_MAIN_CHANNELS_LIST: u16 = 104;
const MSGC_MAIN_ATTACH_CHANNELS: u16 = 104;
const MSG_PORT_INIT: u16 = 201;
const MSG_PORT_EVENT: u16 = 202;
const PORT_EVENT_OPENED: u8 = 0;
const PORT_EVENT_CLOSED: u8 = 1;
const LINK_ERR_PERMISSION_DENIED: u32 = 7;

fn mini(kind: u16, body: &[u8]) -> Vec<u8> {
    let mut m = kind.to_le_bytes().to_vec();
    m.extend_from_slice(&(body.len() as u32).to_le_bytes());
    m.extend_from_slice(body);
    m
}

fn read_mini(s: &mut TcpStream) -> std::io::Result<(u16, Vec<u8>)> {
    let mut h = [0u8; 6];
    s.read_exact(&mut h)?;
    let kind = u16::from_le_bytes([h[0], h[1]]);
    let mut body = vec![0u8; u32::from_le_bytes(h[2..6].try_into().unwrap()) as usize];
    s.read_exact(&mut body)?;
    Ok((kind, body))
}

/// Server side of a channel link; `None` when the ticket was wrong (link refused).
fn accept_link(s: &mut TcpStream, password: &str) -> Option<(u8, u8)> {
    let mut header = [0u8; 16];
    s.read_exact(&mut header).ok()?;
    assert_eq!(&header[..4], b"REDQ");
    let size = u32::from_le_bytes(header[12..16].try_into().unwrap()) as usize;
    let mut mess = vec![0u8; size];
    s.read_exact(&mut mess).ok()?;
    let (channel_type, channel_id) = (mess[4], mess[5]);
    let key = RsaPrivateKey::from_pkcs8_pem(KEY).unwrap();
    let der = key.to_public_key().to_public_key_der().unwrap().into_vec();
    let mut reply = 0u32.to_le_bytes().to_vec();
    reply.extend_from_slice(&der);
    reply.extend_from_slice(&1u32.to_le_bytes()); // common caps
    reply.extend_from_slice(&0u32.to_le_bytes()); // channel caps
    reply.extend_from_slice(&178u32.to_le_bytes()); // caps offset
    reply.extend_from_slice(&0b1011u32.to_le_bytes());
    let mut out = b"REDQ".to_vec();
    for w in [2u32, 2, reply.len() as u32] {
        out.extend_from_slice(&w.to_le_bytes());
    }
    out.extend_from_slice(&reply);
    s.write_all(&out).ok()?;
    let mut auth = [0u8; 4 + 128];
    s.read_exact(&mut auth).ok()?;
    let ticket = key.decrypt(Oaep::new::<sha1::Sha1>(), &auth[4..]).ok()?;
    let mut expected = password.as_bytes().to_vec();
    expected.push(0);
    if ticket != expected {
        let _ = s.write_all(&LINK_ERR_PERMISSION_DENIED.to_le_bytes());
        return None;
    }
    s.write_all(&0u32.to_le_bytes()).ok()?;
    Some((channel_type, channel_id))
}

/// Bytes the relay moved each way.
#[derive(Default)]
struct Relayed {
    to_guest: AtomicU64,
    to_client: AtomicU64,
    /// SPICE sessions the client opened (main-channel links).
    sessions: AtomicU64,
}

/// A SPICE server with a main channel and one port channel named [`PORT_NAME`] whose guest
/// end is the unix socket `guest`. Returns its port.
fn spice_server(password: &'static str, guest: PathBuf, relayed: Arc<Relayed>) -> u16 {
    spice_server_with_late_guest(password, guest, relayed, Duration::ZERO)
}

/// The same, with a guest that opens its end of the port only `opens_after` the client
/// linked the port channel (PORT_INIT says "closed", a PORT_EVENT says "opened" later).
fn spice_server_with_late_guest(
    password: &'static str,
    guest: PathBuf,
    relayed: Arc<Relayed>,
    opens_after: Duration,
) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut keep = Vec::new();
        for conn in listener.incoming() {
            let Ok(mut s) = conn else { return };
            match accept_link(&mut s, password) {
                Some((1, 0)) => {
                    relayed.sessions.fetch_add(1, Ordering::Relaxed);
                    let mut init = 42u32.to_le_bytes().to_vec();
                    init.extend_from_slice(&[0; 28]);
                    s.write_all(&mini(MSG_MAIN_INIT, &init)).unwrap();
                    let (kind, _) = read_mini(&mut s).unwrap();
                    assert_eq!(kind, MSGC_MAIN_ATTACH_CHANNELS);
                    let mut list = 1u32.to_le_bytes().to_vec();
                    list.extend_from_slice(&[10, 0]);
                    s.write_all(&mini(MSG_MAIN_CHANNELS_LIST, &list)).unwrap();
                    keep.push(s);
                }
                Some((10, 0)) => {
                    let mut init = ((PORT_NAME.len() + 1) as u32).to_le_bytes().to_vec();
                    init.extend_from_slice(&9u32.to_le_bytes());
                    init.push(u8::from(opens_after.is_zero())); // the guest has the port open
                    init.extend_from_slice(PORT_NAME.as_bytes());
                    init.push(0);
                    s.write_all(&mini(MSG_PORT_INIT, &init)).unwrap();
                    let (guest, relayed) = (guest.clone(), relayed.clone());
                    std::thread::spawn(move || {
                        if !opens_after.is_zero() {
                            std::thread::sleep(opens_after);
                            if s.write_all(&mini(MSG_PORT_EVENT, &[PORT_EVENT_OPENED]))
                                .is_err()
                            {
                                return; // that session is gone
                            }
                        }
                        relay(s, UnixStream::connect(&guest).unwrap(), relayed);
                    });
                }
                Some(other) => panic!("unexpected channel {other:?}"),
                None => {}
            }
        }
    });
    port
}

/// QEMU's part: port-channel data ↔ the guest's port, in ≤ 64 KiB chunks. When the guest
/// closes its end the channel stays up and says so with a PORT_EVENT, as spice-server does.
fn relay(client: TcpStream, guest: UnixStream, relayed: Arc<Relayed>) {
    let (mut client_r, mut client_w) = (client.try_clone().unwrap(), client);
    let (mut guest_r, mut guest_w) = (guest.try_clone().unwrap(), guest);
    let counts = relayed.clone();
    std::thread::spawn(move || {
        while let Ok((kind, body)) = read_mini(&mut client_r) {
            if kind == MSG_SPICEVMC_DATA {
                counts
                    .to_guest
                    .fetch_add(body.len() as u64, Ordering::Relaxed);
                if guest_w.write_all(&body).is_err() {
                    break;
                }
            }
        }
        let _ = guest_w.shutdown(Shutdown::Both);
    });
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match guest_r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    relayed.to_client.fetch_add(n as u64, Ordering::Relaxed);
                    if client_w
                        .write_all(&mini(MSG_SPICEVMC_DATA, &buf[..n]))
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
        let _ = client_w.write_all(&mini(MSG_PORT_EVENT, &[PORT_EVENT_CLOSED]));
    });
}

#[test]
fn stream_crosses_a_spice_port_channel_byte_identical() {
    let dir = TempDir::new("spice");
    let clip = make_clip(&dir, 60);
    let guest_sock = dir.path("guest.sock");
    let guest_uri = format!("spicepass+unix://{}", guest_sock.display());
    let mut guest = Peer::spawn("guest", &["guest", &guest_uri, &play_clip(&clip)]);
    guest.wait_line("READY", LONG);
    let relayed = Arc::new(Relayed::default());
    let port = spice_server("pw", guest_sock, relayed.clone());
    let uri = format!("spicepass+spice://127.0.0.1:{port}?port={PORT_NAME}&password=pw");
    let mut client = Peer::spawn("client", &["client", &uri]);
    assert_eq!(
        client.finish(LONG),
        0,
        "client failed\n{}\n{}",
        client.story(),
        guest.story()
    );
    assert_eq!(guest.finish(LONG), 0, "guest failed\n{}", guest.story());
    guest.assert_no_panic();
    client.assert_no_panic();
    assert_identical_stream(&guest, &client);
    // The client's hello, credits and reports went back through the port channel.
    assert!(relayed.to_guest.load(Ordering::Relaxed) > 0);
    assert!(relayed.to_client.load(Ordering::Relaxed) > 60 * 100);
}

/// The guest opens its port long after the client linked (longer than the handshake
/// timeout): the client keeps its one SPICE session instead of redialling, since every new
/// SPICE connection makes the server drop its current client (the desktop viewer too).
#[test]
fn client_keeps_one_spice_session_until_the_guest_opens_the_port() {
    let dir = TempDir::new("spice-late");
    let clip = make_clip(&dir, 30);
    let guest_sock = dir.path("guest.sock");
    let guest_uri = format!("spicepass+unix://{}", guest_sock.display());
    let mut guest = Peer::spawn("guest", &["guest", &guest_uri, &play_clip(&clip)]);
    guest.wait_line("READY", LONG);
    let relayed = Arc::new(Relayed::default());
    // The client's handshake timeout (heartbeat-timeout) is 5 s.
    let port =
        spice_server_with_late_guest("pw", guest_sock, relayed.clone(), Duration::from_secs(8));
    let uri = format!("spicepass+spice://127.0.0.1:{port}?port={PORT_NAME}&password=pw");
    let mut client = Peer::spawn("client", &["client", &uri]);
    assert_eq!(
        client.finish(LONG),
        0,
        "client failed\n{}\n{}",
        client.story(),
        guest.story()
    );
    assert_eq!(guest.finish(LONG), 0, "guest failed\n{}", guest.story());
    assert_identical_stream(&guest, &client);
    assert_eq!(
        relayed.sessions.load(Ordering::Relaxed),
        1,
        "{}",
        client.story()
    );
}

#[test]
fn wrong_spice_password_is_a_clear_error() {
    let dir = TempDir::new("spice-auth");
    let relayed = Arc::new(Relayed::default());
    let port = spice_server("right", dir.path("unused.sock"), relayed);
    let uri = format!("spicepass+spice://127.0.0.1:{port}?port={PORT_NAME}&password=Hunter2x");
    let mut client = Peer::spawn("client", &["client", &uri, "timeout-s=60"]);
    assert_eq!(client.finish(LONG), 1, "{}", client.story());
    client.assert_no_panic();
    let errors = client.lines_with("ERROR");
    assert_eq!(errors.len(), 1, "{}", client.story());
    assert!(
        errors[0].contains("SPICE port 'org.mediapass.0' at 127.0.0.1"),
        "{}",
        errors[0]
    );
    assert!(
        !errors[0].contains("Hunter2x"),
        "the password leaked: {}",
        errors[0]
    );
    assert!(errors[0].contains("permission denied"), "{}", errors[0]);
}
