// SPDX-License-Identifier: MPL-2.0
//! The client against a scripted SPICE server on a real loopback socket: the link
//! handshake with a real RSA key (the ticket must decrypt to the password), main-channel
//! init and channel list, port lookup by name, writes refused until the guest opens the
//! port, housekeeping answers (ACK_SYNC, PONG, ACK per window), and garbage → typed errors.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::Duration;

use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey};
use rsa::{Oaep, RsaPrivateKey};
use spicepass_spice_port::link::{LinkError, LinkRefusal};
use spicepass_spice_port::{ConnectOptions, Error, SpicePort, SpiceUri};

const KEY: &str = include_str!("data/test-key.pem");
const WAIT: Duration = Duration::from_secs(30);

fn mini(kind: u16, body: &[u8]) -> Vec<u8> {
    let mut m = kind.to_le_bytes().to_vec();
    m.extend_from_slice(&(body.len() as u32).to_le_bytes());
    m.extend_from_slice(body);
    m
}

fn read_mini(s: &mut TcpStream) -> (u16, Vec<u8>) {
    let mut h = [0u8; 6];
    s.read_exact(&mut h).unwrap();
    let kind = u16::from_le_bytes([h[0], h[1]]);
    let mut body = vec![0u8; u32::from_le_bytes(h[2..6].try_into().unwrap()) as usize];
    s.read_exact(&mut body).unwrap();
    (kind, body)
}

/// Server side of the link; returns (channel type, channel id, connection id).
fn accept_link(s: &mut TcpStream, password: &str, result: u32) -> (u8, u8, u32) {
    let mut header = [0u8; 16];
    s.read_exact(&mut header).unwrap();
    assert_eq!(&header[..4], b"REDQ");
    let size = u32::from_le_bytes(header[12..16].try_into().unwrap()) as usize;
    let mut mess = vec![0u8; size];
    s.read_exact(&mut mess).unwrap();
    let connection_id = u32::from_le_bytes(mess[..4].try_into().unwrap());
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
    s.write_all(&out).unwrap();
    let mut auth = [0u8; 4 + 128];
    s.read_exact(&mut auth).unwrap();
    assert_eq!(
        u32::from_le_bytes(auth[..4].try_into().unwrap()),
        1,
        "AUTH_SPICE"
    );
    let ticket = key.decrypt(Oaep::new::<sha1::Sha1>(), &auth[4..]).unwrap();
    let mut expected = password.as_bytes().to_vec();
    expected.push(0);
    assert_eq!(ticket, expected, "the ticket decrypts to password\\0");
    s.write_all(&result.to_le_bytes()).unwrap();
    (channel_type, channel_id, connection_id)
}

fn port_init(name: &str, opened: bool) -> Vec<u8> {
    let mut b = ((name.len() + 1) as u32).to_le_bytes().to_vec();
    b.extend_from_slice(&9u32.to_le_bytes());
    b.push(opened.into());
    b.extend_from_slice(name.as_bytes());
    b.push(0);
    mini(201, &b)
}

/// A server with a main channel and two port channels ("other.port" id 0, "org.mediapass.0"
/// id 1); `port` scripts the wanted port's connection after its PORT_INIT.
fn serve(port: impl FnOnce(TcpStream) + Send + 'static) -> SpiceUri {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut port_script = Some(port);
        let mut keep = Vec::new();
        for conn in listener.incoming() {
            let mut s = conn.unwrap();
            let (kind, id, connection_id) = accept_link(&mut s, "pw", 0);
            match (kind, id) {
                (1, 0) => {
                    assert_eq!(connection_id, 0);
                    let mut init = 42u32.to_le_bytes().to_vec();
                    init.extend_from_slice(&[0; 28]);
                    s.write_all(&mini(103, &init)).unwrap();
                    assert_eq!(read_mini(&mut s).0, 104, "ATTACH_CHANNELS");
                    let mut list = 3u32.to_le_bytes().to_vec();
                    list.extend_from_slice(&[1, 0, 10, 0, 10, 1]);
                    s.write_all(&mini(104, &list)).unwrap();
                    keep.push(s);
                }
                (10, 0) => {
                    assert_eq!(connection_id, 42, "port channels join the session");
                    s.write_all(&port_init("other.port", true)).unwrap();
                    keep.push(s);
                }
                (10, 1) => {
                    s.write_all(&port_init("org.mediapass.0", false)).unwrap();
                    if let Some(script) = port_script.take() {
                        std::thread::spawn(move || script(s));
                    }
                }
                other => panic!("unexpected channel {other:?}"),
            }
        }
    });
    SpiceUri::parse(&format!("spice://{addr}?password=pw")).unwrap()
}

fn options(uri: SpiceUri, name: &str) -> ConnectOptions {
    ConnectOptions {
        uri,
        port_name: name.into(),
        timeout: WAIT,
    }
}

#[test]
fn writes_wait_for_the_guest_and_housekeeping_is_answered() {
    let (opened_tx, opened_rx) = mpsc::channel::<()>();
    let (seen_tx, seen_rx) = mpsc::channel();
    let uri = serve(move |mut s| {
        let mut set_ack = 9u32.to_le_bytes().to_vec();
        set_ack.extend_from_slice(&2u32.to_le_bytes());
        let mut ping = 5u32.to_le_bytes().to_vec();
        ping.extend_from_slice(&77u64.to_le_bytes());
        ping.extend_from_slice(&[0xaa; 100]); // bandwidth-test filler
        s.write_all(&[mini(3, &set_ack), mini(4, &ping)].concat())
            .unwrap();
        opened_rx.recv().unwrap();
        s.write_all(&[mini(202, &[0]), mini(101, b"abc"), mini(101, b"def")].concat())
            .unwrap();
        let mut seen = Vec::new();
        loop {
            let m = read_mini(&mut s);
            let data = m.0 == 101;
            seen.push(m);
            if data {
                break;
            }
        }
        seen_tx.send(seen).unwrap();
    });
    let mut port = SpicePort::connect(&options(uri, "org.mediapass.0")).unwrap();
    assert_eq!(port.name(), "org.mediapass.0");
    assert!(!port.guest_open());
    assert!(matches!(port.try_write(b"early"), Err(Error::NoPeer)));
    opened_tx.send(()).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 2];
    while got.len() < 6 {
        let n = port.read(&mut buf, WAIT).unwrap();
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, b"abcdef");
    assert!(port.guest_open());
    port.write_all(b"xyz", WAIT).unwrap();
    port.flush(WAIT).unwrap();
    let seen = seen_rx.recv_timeout(WAIT).unwrap();
    let mut pong = 5u32.to_le_bytes().to_vec();
    pong.extend_from_slice(&77u64.to_le_bytes());
    assert!(
        seen.contains(&(1, 9u32.to_le_bytes().to_vec())),
        "ACK_SYNC(9): {seen:?}"
    );
    assert!(seen.contains(&(3, pong)), "PONG(5, 77): {seen:?}");
    // Window 2: after SET_ACK + PING, and again after event + 2 data messages.
    assert!(
        seen.iter().filter(|m| m.0 == 2).count() >= 1,
        "ACK: {seen:?}"
    );
    assert_eq!(seen.last().unwrap(), &(101, b"xyz".to_vec()));
}

#[test]
fn unknown_port_names_the_ports_that_exist() {
    let uri = serve(|_| {});
    match SpicePort::connect(&options(uri, "org.nope.0")) {
        Err(Error::PortNotFound { wanted, seen }) => {
            assert_eq!(wanted, "org.nope.0");
            assert_eq!(seen, ["other.port", "org.mediapass.0"]);
        }
        other => panic!("expected PortNotFound, got {other:?}"),
    }
}

#[test]
fn garbage_from_the_server_is_a_typed_error() {
    let uri = serve(|mut s| {
        s.write_all(&[0x65, 0x00, 0xff, 0xff, 0xff, 0x7f]).unwrap();
        std::thread::sleep(WAIT);
    });
    let mut port = SpicePort::connect(&options(uri, "org.mediapass.0")).unwrap();
    let mut buf = [0u8; 16];
    match port.read(&mut buf, WAIT) {
        Err(Error::Decode(_)) => {}
        other => panic!("expected a decode error, got {other:?}"),
    }
}

#[test]
fn refused_link_and_dead_server_are_errors() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut s = listener.accept().unwrap().0;
        accept_link(&mut s, "wrong", 7);
    });
    let uri = SpiceUri::parse(&format!("spice://{addr}?password=wrong")).unwrap();
    match SpicePort::connect(&options(uri, "x")) {
        Err(Error::Link(LinkError::Refused(LinkRefusal(7)))) => {}
        other => panic!("expected a refusal, got {other:?}"),
    }
    // A server that accepts and says nothing: the handshake times out.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let uri = SpiceUri::parse(&format!("spice://{}", silent.local_addr().unwrap())).unwrap();
    let opts = ConnectOptions {
        timeout: Duration::from_millis(500),
        ..options(uri, "x")
    };
    assert!(matches!(SpicePort::connect(&opts), Err(Error::TimedOut(_))));
}

#[test]
fn bridge_is_a_socket_that_outlives_guest_reopens_and_ends_with_the_session() {
    let (step_tx, step_rx) = mpsc::channel::<()>();
    let (got_tx, got_rx) = mpsc::channel();
    let uri = serve(move |mut s| {
        // The caller has written before the guest opened: nothing may arrive yet.
        step_rx.recv().unwrap();
        s.write_all(&[mini(202, &[0]), mini(101, b"hello")].concat())
            .unwrap();
        let mut early = Vec::new();
        while early.len() < 5 {
            let (kind, body) = read_mini(&mut s);
            if kind == 101 {
                early.extend_from_slice(&body);
            }
        }
        got_tx.send(early).unwrap();
        // The guest closes and reopens its end; the bridge socket stays up.
        s.write_all(&[mini(202, &[1]), mini(202, &[0]), mini(101, b"again")].concat())
            .unwrap();
        step_rx.recv().unwrap();
        // Session over.
    });
    let port = SpicePort::connect(&options(uri, "org.mediapass.0")).unwrap();
    let bridge = spicepass_spice_port::bridge(port).unwrap();
    let mut sock = std::os::unix::net::UnixStream::from(bridge.fd);
    sock.set_read_timeout(Some(WAIT)).unwrap();
    sock.write_all(b"early").unwrap();
    step_tx.send(()).unwrap();
    let mut buf = [0u8; 5];
    sock.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"hello");
    assert_eq!(got_rx.recv_timeout(WAIT).unwrap(), b"early");
    sock.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"again");
    step_tx.send(()).unwrap();
    let mut rest = Vec::new();
    sock.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "EOF when the session ends, got {rest:?}");
    assert!(matches!(bridge.thread.join().unwrap(), Err(Error::Closed)));
}

/// The server ends the session while the caller has not read everything yet: what the guest
/// sent before the end still arrives, byte for byte, and only then EOF.
#[test]
fn bridge_delivers_what_arrived_before_the_session_ended() {
    // More than the socketpair holds, less than the bridge buffers: the bytes sit in the
    // pump thread when the server closes.
    let sent: Vec<u8> = (0..768 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let (closed_tx, closed_rx) = mpsc::channel::<()>();
    let payload = sent.clone();
    let uri = serve(move |mut s| {
        s.write_all(&mini(202, &[0])).unwrap();
        for chunk in payload.chunks(64 * 1024) {
            s.write_all(&mini(101, chunk)).unwrap();
        }
        drop(s);
        closed_tx.send(()).unwrap();
    });
    let port = SpicePort::connect(&options(uri, "org.mediapass.0")).unwrap();
    let bridge = spicepass_spice_port::bridge(port).unwrap();
    closed_rx.recv_timeout(WAIT).unwrap();
    // Give the pump every chance to see the end before anything is read (it cannot finish
    // while it still holds bytes for us, so this wait ends early only when it dropped them).
    let until = std::time::Instant::now() + Duration::from_secs(2);
    while !bridge.thread.is_finished() && std::time::Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut sock = std::os::unix::net::UnixStream::from(bridge.fd);
    sock.set_read_timeout(Some(WAIT)).unwrap();
    let mut got = Vec::new();
    sock.read_to_end(&mut got).unwrap();
    assert_eq!(
        got.len(),
        sent.len(),
        "bytes lost at the end of the session"
    );
    assert!(got == sent, "bytes altered at the end of the session");
    assert!(matches!(bridge.thread.join().unwrap(), Err(Error::Closed)));
}
