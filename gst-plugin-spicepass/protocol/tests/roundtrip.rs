//! Encode → bytes → decode for every message type, under every way the
//! transport may cut the byte stream, plus every rejection path.

mod common;

use common::*;
use spicepass_protocol::*;

#[test]
fn sink_session_round_trips_byte_by_byte_and_whole() {
    let (hello, frames) = sink_session();
    let wire = encode_session(&hello, &frames);
    let expected = expected_items(&hello, &frames);
    assert_eq!(decode_in_pieces(Role::Src, &wire, &[]), expected);
    let every_byte: Vec<usize> = (1..wire.len()).collect();
    assert_eq!(decode_in_pieces(Role::Src, &wire, &every_byte), expected);
}

#[test]
fn src_session_round_trips_byte_by_byte_and_whole() {
    let (hello, frames) = src_session();
    let wire = encode_session(&hello, &frames);
    let expected = expected_items(&hello, &frames);
    assert_eq!(decode_in_pieces(Role::Sink, &wire, &[]), expected);
    let every_byte: Vec<usize> = (1..wire.len()).collect();
    assert_eq!(decode_in_pieces(Role::Sink, &wire, &every_byte), expected);
}

#[test]
fn virtio_serial_and_spicevmc_chunking() {
    // virtio-serial cuts guest writes at 32 KiB, spice-server re-chunks at 64 KiB + 32.
    let (hello, mut frames) = sink_session();
    let big: Vec<u8> = (0..200_000u32).map(|i| (i * 7) as u8).collect();
    frames.push((
        0,
        Message::Buffer(BufferHeader {
            pts: Some(1),
            payload_len: big.len() as u64,
            ..BufferHeader::default()
        }),
        big,
    ));
    let wire = encode_session(&hello, &frames);
    let expected = expected_items(&hello, &frames);
    for chunk in [32 * 1024, 64 * 1024 + 32, 4096, 1] {
        let cuts: Vec<usize> = (chunk..wire.len()).step_by(chunk).collect();
        assert_eq!(
            decode_in_pieces(Role::Src, &wire, &cuts),
            expected,
            "chunk {chunk}"
        );
    }
}

#[test]
fn every_downstream_and_upstream_event_type_round_trips_alone() {
    for (role, events) in [
        (Role::Sink, downstream_events()),
        (Role::Src, upstream_events()),
    ] {
        for event in events {
            let hello = Hello::new(role, 1);
            let frames = vec![(0, event, Vec::new())];
            let wire = encode_session(&hello, &frames);
            assert_eq!(
                decode_in_pieces(role.peer(), &wire, &[]),
                expected_items(&hello, &frames)
            );
        }
    }
}

#[test]
fn typical_buffer_framing_is_at_most_32_bytes() {
    let headers = video_headers(600, |i| if i % 60 == 0 { 60_000 } else { 8_000 });
    let mut encoder = Encoder::new(Role::Sink, Limits::default());
    let mut worst = 0;
    let mut total = 0;
    for header in &headers {
        let mut frame = Vec::new();
        let seq = encoder.encode_buffer(0, header, &mut frame).unwrap();
        // Charge every frame as if the session were 268 million frames old
        // (a 4-byte seq varint): ~50 days of 60 fps video.
        let size = frame.len() - varint::len(seq) + varint::len((1 << 28) - 1);
        worst = worst.max(size);
        total += size;
    }
    let mean = total as f64 / headers.len() as f64;
    println!("typical video buffer framing: worst {worst} bytes, mean {mean:.1} bytes");
    assert!(worst <= 32, "worst framing {worst} bytes");
    assert!(mean <= 16.0, "mean framing {mean} bytes");
}

#[test]
fn zero_copy_receive_over_a_real_socket() {
    use std::io::{IoSlice, Read, Write};
    use std::os::unix::net::UnixStream;

    let (mut guest, mut client) = UnixStream::pair().unwrap();
    let payloads: Vec<Vec<u8>> = (0..20u32)
        .map(|i| (0..(i * 10_007) % 300_000).map(|b| (b ^ i) as u8).collect())
        .collect();
    let sent = payloads.clone();
    let writer = std::thread::spawn(move || {
        let mut wire = Vec::new();
        Hello::new(Role::Sink, 5).encode(&mut wire).unwrap();
        guest.write_all(&wire).unwrap();
        let mut encoder = Encoder::new(Role::Sink, Limits::default());
        for (i, payload) in sent.iter().enumerate() {
            let header = BufferHeader {
                pts: Some(i as u64 * 40_000_000),
                duration: Some(40_000_000),
                payload_len: payload.len() as u64,
                ..BufferHeader::default()
            };
            let mut head = Vec::new();
            encoder.encode_buffer(0, &header, &mut head).unwrap();
            // writev(header, payload): the payload is never copied in user space.
            let mut slices = [IoSlice::new(&head), IoSlice::new(payload)];
            let mut slices = &mut slices[..];
            while !slices.is_empty() {
                let written = guest.write_vectored(slices).unwrap();
                IoSlice::advance_slices(&mut slices, written);
            }
        }
    });
    client
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut decoder = Decoder::new(Role::Src, Limits::default());
    let mut received = Vec::new();
    let mut direct_bytes = 0u64;
    while received.len() < payloads.len() {
        match decoder.poll().unwrap() {
            None => {
                // Small header reads: most of a big payload stays in the socket.
                let read = decoder.read_from(&mut client, 256).unwrap();
                assert!(read > 0, "writer closed early");
            }
            Some(Decoded::Hello(hello)) => assert_eq!(hello.session_id, 5),
            Some(Decoded::Frame(Frame {
                message: Message::Buffer(header),
                ..
            })) => {
                let mut memory = vec![0u8; header.payload_len as usize];
                let mut filled = decoder.take_payload(&mut memory);
                while filled < memory.len() {
                    let read = client.read(&mut memory[filled..]).unwrap();
                    assert!(read > 0, "writer closed early");
                    decoder.consume_payload(read as u64).unwrap();
                    direct_bytes += read as u64;
                    filled += read;
                }
                assert_eq!(decoder.payload_remaining(), 0);
                received.push(memory);
            }
            Some(other) => panic!("unexpected {other:?}"),
        }
    }
    writer.join().unwrap();
    assert_eq!(received, payloads);
    let total: u64 = payloads.iter().map(|p| p.len() as u64).sum();
    assert!(
        direct_bytes * 10 > total * 9,
        "only {direct_bytes} of {total} payload bytes were read straight into buffer memory"
    );
    assert_eq!(decoder.read_from(&mut client, 256).unwrap(), 0);
    decoder.finish().unwrap();
}

fn sink_wire_prefix() -> Vec<u8> {
    let mut wire = Vec::new();
    Hello::new(Role::Sink, 1).encode(&mut wire).unwrap();
    wire
}

fn first_error(role: Role, limits: Limits, wire: &[u8]) -> ProtocolError {
    let mut decoder = Decoder::new(role, limits);
    decoder.push(wire);
    loop {
        match decoder.poll() {
            Ok(Some(Decoded::Frame(Frame {
                message: Message::Buffer(header),
                ..
            }))) if header.payload_len > 0 => {
                let mut sink = vec![0; header.payload_len as usize];
                decoder.take_payload(&mut sink);
            }
            Ok(Some(_)) => {}
            Ok(None) => panic!("no error, decoder wants more bytes"),
            Err(error) => {
                // Errors are final.
                assert_eq!(decoder.poll(), Err(error.clone()));
                return error;
            }
        }
    }
}

#[test]
fn body_larger_than_the_limit_is_refused_before_it_arrives() {
    let mut wire = sink_wire_prefix();
    wire.push(MessageKind::Event.to_wire());
    varint::put(&mut wire, 10 << 20); // announces 10 MiB, sends nothing of it
    let error = first_error(Role::Src, Limits::default(), &wire);
    assert_eq!(
        error,
        ProtocolError::TooLarge {
            field: "body_len",
            value: 10 << 20,
            max: 1 << 20
        }
    );
    assert_eq!(
        error.to_string(),
        "body_len is 10485760, more than the limit of 1048576"
    );
}

#[test]
fn payload_larger_than_the_limit_is_refused() {
    let mut wire = sink_wire_prefix();
    let header = BufferHeader {
        payload_len: 5000,
        ..BufferHeader::default()
    };
    Encoder::new(Role::Sink, Limits::default())
        .encode_buffer(0, &header, &mut wire)
        .unwrap();
    let limits = Limits {
        max_body: 1024,
        max_payload: 4096,
    };
    assert_eq!(
        first_error(Role::Src, limits, &wire),
        ProtocolError::TooLarge {
            field: "buffer.payload_len",
            value: 5000,
            max: 4096
        }
    );
}

#[test]
fn version_mismatch_names_both_versions() {
    let mut hello = Hello::new(Role::Sink, 1);
    hello.version = Version { major: 7, minor: 1 };
    let mut wire = Vec::new();
    hello.encode(&mut wire).unwrap();
    let error = first_error(Role::Src, Limits::default(), &wire);
    assert_eq!(
        error.to_string(),
        "protocol version mismatch: we speak 1.1, the peer speaks 7.1"
    );
}

#[test]
fn garbage_is_bad_magic() {
    for garbage in [
        &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"[..], // a TLS ClientHello
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
        b"S",
    ] {
        let mut decoder = Decoder::new(Role::Src, Limits::default());
        decoder.push(garbage);
        let result = decoder.poll();
        if garbage == b"S" {
            assert_eq!(result, Ok(None), "a correct magic prefix needs more bytes");
        } else {
            assert!(
                matches!(result, Err(ProtocolError::BadMagic { .. })),
                "{result:?}"
            );
        }
    }
}

#[test]
fn same_role_on_both_ends_is_refused_at_the_hello() {
    let error = first_error(Role::Sink, Limits::default(), &sink_wire_prefix());
    assert_eq!(
        error,
        ProtocolError::RoleMismatch {
            ours: Role::Sink,
            theirs: Role::Sink
        }
    );
}

#[test]
fn truncated_input_waits_and_eof_reports_where() {
    let (hello, frames) = sink_session();
    let wire = encode_session(&hello, &frames);
    // Where a complete item ends: a cut there is a clean close.
    let mut boundaries = vec![encode_session(&hello, &[]).len()];
    for end in 1..=frames.len() {
        boundaries.push(encode_session(&hello, &frames[..end]).len());
    }
    let around_boundaries = boundaries
        .iter()
        .flat_map(|&end| [end - 1, end, end + 1])
        .filter(|&cut| cut <= wire.len());
    for cut in (0..wire.len()).step_by(97).chain(around_boundaries) {
        let mut decoder = BufferingDecoder::new(Role::Src, Limits::default());
        decoder.push(&wire[..cut]);
        let mut items = 0;
        while decoder.poll().unwrap().is_some() {
            items += 1;
        }
        match boundaries.iter().position(|&end| end == cut) {
            Some(index) => {
                assert_eq!(items, index + 1, "cut {cut}");
                decoder.finish().unwrap();
            }
            None => {
                let error = decoder.finish().unwrap_err();
                assert!(
                    matches!(error, ProtocolError::UnexpectedEof { .. }),
                    "cut {cut}: {error:?}"
                );
            }
        }
    }
    let mut decoder = Decoder::new(Role::Src, Limits::default());
    assert_eq!(
        decoder.finish(),
        Err(ProtocolError::UnexpectedEof {
            what: "the hello",
            buffered: 0
        })
    );
    decoder.push(&wire[..3]);
    assert_eq!(decoder.poll(), Ok(None));
}

#[test]
fn lost_bytes_are_a_sequence_gap() {
    // A byte stream resumed mid-way (spiceport after a client switch) must
    // not be misread as valid frames.
    let hello = Hello::new(Role::Sink, 1);
    let mut wire = Vec::new();
    hello.encode(&mut wire).unwrap();
    let mut encoder = Encoder::new(Role::Sink, Limits::default());
    let mut dropped = Vec::new();
    let events = downstream_events();
    encoder.encode(0, &events[0], &mut wire).unwrap();
    encoder.encode(0, &events[1], &mut dropped).unwrap();
    encoder.encode(0, &events[2], &mut wire).unwrap();
    assert_eq!(
        first_error(Role::Src, Limits::default(), &wire),
        ProtocolError::SequenceGap {
            expected: 1,
            got: 2
        }
    );
}

#[test]
fn messages_in_the_wrong_direction_are_refused() {
    // A src peer pretending to send buffers: craft the frame by hand.
    let mut wire = Vec::new();
    Hello::new(Role::Src, 1).encode(&mut wire).unwrap();
    let body = [0u8, 0, 0, 0, 0, 0];
    wire.push(MessageKind::Buffer.to_wire());
    varint::put(&mut wire, body.len() as u64);
    wire.extend_from_slice(&body);
    assert_eq!(
        first_error(Role::Sink, Limits::default(), &wire),
        ProtocolError::WrongDirection {
            kind: MessageKind::Buffer,
            from: Role::Src
        }
    );
    // A downstream event from the src.
    let mut wire = Vec::new();
    Hello::new(Role::Src, 1).encode(&mut wire).unwrap();
    wire.extend_from_slice(&[MessageKind::Event.to_wire(), 6, 0, 0, 0, 0, 0, 0]);
    assert!(matches!(
        first_error(Role::Sink, Limits::default(), &wire),
        ProtocolError::WrongDirection {
            kind: MessageKind::Event,
            ..
        }
    ));
}

#[test]
fn unknown_kinds_are_skipped_only_from_a_newer_minor() {
    for (minor, skipped) in [
        (0u16, false),
        (VERSION.minor, false),
        (VERSION.minor + 1, true),
    ] {
        let mut hello = Hello::new(Role::Sink, 1);
        hello.version.minor = minor;
        let mut wire = Vec::new();
        hello.encode(&mut wire).unwrap();
        // kind 0x40 from the future: stream 0, seq 0, two extra bytes.
        wire.extend_from_slice(&[0x40, 4, 0, 0, 0xaa, 0xbb]);
        let mut encoder = Encoder::new(Role::Sink, Limits::default());
        let mut next = Vec::new();
        encoder
            .encode(0, &downstream_events()[0], &mut next)
            .unwrap();
        // The encoder numbered it 0; the skipped frame took seq 0, so renumber.
        next[3] = 1;
        wire.extend_from_slice(&next);
        let mut decoder = Decoder::new(Role::Src, Limits::default());
        decoder.push(&wire);
        assert!(matches!(decoder.poll(), Ok(Some(Decoded::Hello(_)))));
        let result = decoder.poll();
        if skipped {
            let Ok(Some(Decoded::Frame(frame))) = result else {
                panic!("{result:?}")
            };
            assert_eq!(frame.seq, 1);
            assert_eq!(frame.message, downstream_events()[0]);
            assert_eq!(decoder.skipped_unknown(), 1);
        } else {
            assert_eq!(
                result,
                Err(ProtocolError::UnknownMessageKind { kind: 0x40 })
            );
        }
    }
}

#[test]
fn trailing_body_fields_from_a_newer_minor_are_ignored() {
    let mut wire = sink_wire_prefix();
    let mut frame = Vec::new();
    let geometry = Message::WindowGeometry(WindowGeometry {
        x: 1,
        y: 2,
        width: 3,
        height: 4,
        visible: false,
    });
    Encoder::new(Role::Sink, Limits::default())
        .encode(0, &geometry, &mut frame)
        .unwrap();
    // Grow the body by two bytes (a field added by a later minor).
    frame[1] += 2;
    frame.extend_from_slice(&[9, 9]);
    wire.extend_from_slice(&frame);
    let items = decode_in_pieces(Role::Src, &wire, &[]);
    assert_eq!(
        items[1],
        Item::Frame(
            Frame {
                stream_id: 0,
                seq: 0,
                message: geometry
            },
            Vec::new()
        )
    );
}

#[test]
fn body_shorter_than_its_fields_names_the_field() {
    let mut wire = sink_wire_prefix();
    // A credit-less heartbeat body cut after the flags.
    wire.extend_from_slice(&[MessageKind::Heartbeat.to_wire(), 3, 0, 0, 0]);
    assert_eq!(
        first_error(Role::Src, Limits::default(), &wire),
        ProtocolError::Truncated {
            message: "heartbeat",
            field: "heartbeat.timestamp"
        }
    );
}

#[test]
fn invalid_utf8_in_an_event_structure() {
    let mut wire = sink_wire_prefix();
    // flags = has_structure, type, seqnum, rto, len 2, bytes 0xff 0xfe.
    wire.extend_from_slice(&[
        MessageKind::Event.to_wire(),
        9,
        0,
        0,
        4,
        1,
        1,
        0,
        2,
        0xff,
        0xfe,
    ]);
    assert_eq!(
        first_error(Role::Src, Limits::default(), &wire),
        ProtocolError::InvalidUtf8 {
            field: "event.structure"
        }
    );
}

#[test]
fn payload_api_misuse_is_an_error_not_a_panic() {
    let mut wire = sink_wire_prefix();
    let header = BufferHeader {
        payload_len: 10,
        ..BufferHeader::default()
    };
    Encoder::new(Role::Sink, Limits::default())
        .encode_buffer(0, &header, &mut wire)
        .unwrap();
    wire.extend_from_slice(&[1, 2, 3]);
    let mut decoder = Decoder::new(Role::Src, Limits::default());
    // Zero-length calls outside a payload change nothing (the hello is still expected).
    decoder.consume_payload(0).unwrap();
    assert_eq!(decoder.take_payload(&mut [0u8; 4]), 0);
    decoder.push(&wire);
    assert!(matches!(decoder.poll(), Ok(Some(Decoded::Hello(_)))));
    decoder.consume_payload(0).unwrap();
    decoder.poll().unwrap();
    assert_eq!(decoder.payload_remaining(), 10);
    assert_eq!(
        decoder.poll(),
        Err(ProtocolError::PayloadPending { remaining: 10 })
    );
    assert_eq!(
        decoder.consume_payload(1),
        Err(ProtocolError::PayloadNotTaken { buffered: 3 })
    );
    let mut memory = [0u8; 10];
    assert_eq!(decoder.take_payload(&mut memory), 3);
    assert_eq!(
        decoder.consume_payload(8),
        Err(ProtocolError::PayloadOverrun {
            consumed: 8,
            remaining: 7
        })
    );
    decoder.consume_payload(7).unwrap();
    assert_eq!(decoder.poll(), Ok(None));
    decoder.finish().unwrap();
}

#[test]
fn shared_memory_messages_are_checked() {
    // A release claiming more ids than its body could hold is refused before allocating.
    let mut wire = Vec::new();
    Hello::new(Role::Src, 1).encode(&mut wire).unwrap();
    // kind 11, body 4: stream 0, seq 0, count 1000 (2 bytes), no ids.
    wire.extend_from_slice(&[11, 4, 0, 0, 0xe8, 0x07]);
    assert_eq!(
        first_error(Role::Sink, Limits::default(), &wire),
        ProtocolError::Truncated {
            message: "release",
            field: "release.buffer_ids"
        }
    );
    // Segments and shared buffers only come from the sink, releases only from the src.
    let mut src = Encoder::new(Role::Src, Limits::default());
    let segment = Message::Segment(Segment {
        segment: 1,
        size: 4096,
    });
    assert!(matches!(
        src.encode(0, &segment, &mut Vec::new()),
        Err(ProtocolError::WrongDirection { .. })
    ));
    let mut sink = Encoder::new(Role::Sink, Limits::default());
    let release = Message::Release(Release {
        buffer_ids: vec![1],
    });
    assert!(matches!(
        sink.encode(0, &release, &mut Vec::new()),
        Err(ProtocolError::WrongDirection { .. })
    ));
    // A shared buffer above the peer's max_payload is refused like an inline one.
    let mut small = Encoder::new(
        Role::Sink,
        Limits {
            max_body: 1024,
            max_payload: 100,
        },
    );
    let big = Message::SharedBuffer(SharedBuffer {
        header: BufferHeader {
            payload_len: 101,
            ..BufferHeader::default()
        },
        buffer_id: 0,
        segment: 0,
        offset: 0,
    });
    assert!(matches!(
        small.encode(0, &big, &mut Vec::new()),
        Err(ProtocolError::TooLarge { .. })
    ));
}
