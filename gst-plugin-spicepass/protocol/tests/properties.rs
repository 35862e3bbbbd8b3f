//! Property tests: arbitrary messages survive arbitrary splits of the byte
//! stream, and arbitrary bytes never make the decoder panic or over-allocate.

mod common;

use common::*;
use proptest::prelude::*;
use spicepass_protocol::*;

fn opt_u64() -> impl Strategy<Value = Option<u64>> {
    prop_oneof![
        Just(None),
        (0u64..100_000).prop_map(Some),
        any::<u64>().prop_map(Some),
    ]
}

fn buffer() -> impl Strategy<Value = (Message, Vec<u8>)> {
    (
        (opt_u64(), opt_u64(), opt_u64(), opt_u64(), opt_u64()),
        any::<u32>(),
        proptest::collection::vec(any::<u8>(), 0..600),
    )
        .prop_map(
            |((pts, dts, duration, offset, offset_end), flags, payload)| {
                (
                    Message::Buffer(BufferHeader {
                        pts,
                        dts,
                        duration,
                        offset,
                        offset_end,
                        flags,
                        payload_len: payload.len() as u64,
                    }),
                    payload,
                )
            },
        )
}

fn shared_buffer() -> impl Strategy<Value = Message> {
    (
        (opt_u64(), opt_u64(), opt_u64(), opt_u64(), opt_u64()),
        (any::<u32>(), 0u64..(64 << 20)),
        (any::<u64>(), any::<u32>(), any::<u64>()),
    )
        .prop_map(
            |(
                (pts, dts, duration, offset, offset_end),
                (flags, payload_len),
                (buffer_id, segment, segment_offset),
            )| {
                Message::SharedBuffer(SharedBuffer {
                    header: BufferHeader {
                        pts,
                        dts,
                        duration,
                        offset,
                        offset_end,
                        flags,
                        payload_len,
                    },
                    buffer_id,
                    segment,
                    offset: segment_offset,
                })
            },
        )
}

fn event(direction: EventDirection) -> impl Strategy<Value = Message> {
    (
        any::<u32>(),
        any::<u32>(),
        any::<i64>(),
        any::<bool>(),
        proptest::option::of(".{0,80}"),
    )
        .prop_map(
            move |(event_type, seqnum, running_time_offset, sticky, structure)| {
                Message::Event(Event {
                    direction,
                    event_type,
                    seqnum,
                    running_time_offset,
                    sticky,
                    structure,
                })
            },
        )
}

fn heartbeat() -> impl Strategy<Value = Message> {
    (
        any::<u64>(),
        proptest::option::of((any::<u64>(), any::<u64>())),
    )
        .prop_map(|(timestamp, echo)| {
            Message::Heartbeat(Heartbeat {
                timestamp,
                echo: echo.map(|(timestamp, held)| HeartbeatEcho { timestamp, held }),
            })
        })
}

fn goodbye() -> impl Strategy<Value = Message> {
    (any::<u32>(), ".{0,40}").prop_map(|(reason, message)| {
        Message::Goodbye(Goodbye {
            reason: GoodbyeReason(reason),
            message,
        })
    })
}

fn sink_message() -> impl Strategy<Value = (u32, Message, Vec<u8>)> {
    let no_payload = |message: Message| (message, Vec::new());
    (
        0..MAX_STREAMS,
        prop_oneof![
            4 => buffer(),
            2 => event(EventDirection::Downstream).prop_map(no_payload),
            1 => heartbeat().prop_map(no_payload),
            1 => goodbye().prop_map(no_payload),
            1 => (any::<i32>(), any::<i32>(), any::<u32>(), any::<u32>(), any::<bool>())
                .prop_map(move |(x, y, width, height, visible)| no_payload(
                    Message::WindowGeometry(WindowGeometry { x, y, width, height, visible })
                )),
            2 => shared_buffer().prop_map(no_payload),
            1 => (any::<u32>(), any::<u64>())
                .prop_map(move |(segment, size)| no_payload(Message::Segment(Segment { segment, size }))),
            1 => any::<u32>()
                .prop_map(move |segment| no_payload(Message::RetireSegment(RetireSegment { segment }))),
        ],
    )
        .prop_map(|(stream, (message, payload))| (stream, message, payload))
}

fn src_message() -> impl Strategy<Value = (u32, Message, Vec<u8>)> {
    (
        0..MAX_STREAMS,
        prop_oneof![
            event(EventDirection::Upstream),
            heartbeat(),
            goodbye(),
            proptest::collection::vec(any::<u64>(), 0..200)
                .prop_map(|buffer_ids| Message::Release(Release { buffer_ids })),
            (any::<u64>(), any::<u64>()).prop_map(|(max_bytes, max_buffers)| Message::Credit(
                Credit {
                    max_bytes,
                    max_buffers
                }
            )),
            (
                any::<u64>(),
                opt_u64(),
                any::<bool>(),
                any::<u64>(),
                opt_u64()
            )
                .prop_map(|(timestamp, position, live, latency_min, latency_max)| {
                    Message::ClientReport(ClientReport {
                        timestamp,
                        position,
                        live,
                        latency_min,
                        latency_max,
                    })
                }),
        ],
    )
        .prop_map(|(stream, message)| (stream, message, Vec::new()))
}

fn hello(role: Role) -> impl Strategy<Value = Hello> {
    (
        any::<u16>(),
        any::<u64>(),
        any::<u64>(),
        any::<u32>(),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 1..=255)),
    )
        .prop_map(
            move |(minor, capabilities, session_id, heartbeat, auth_token)| {
                let mut hello = Hello::new(role, session_id);
                hello.version.minor = minor;
                hello.capabilities = Capabilities(capabilities);
                hello.heartbeat_interval_ms = heartbeat;
                hello.auth_token = auth_token;
                hello
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn sink_stream_survives_any_split(
        hello in hello(Role::Sink),
        frames in proptest::collection::vec(sink_message(), 0..40),
        cuts in proptest::collection::vec(any::<usize>(), 0..30),
    ) {
        let wire = encode_session(&hello, &frames);
        let cuts: Vec<usize> = cuts.iter().map(|cut| cut % (wire.len() + 1)).collect();
        prop_assert_eq!(decode_in_pieces(Role::Src, &wire, &cuts), expected_items(&hello, &frames));
    }

    #[test]
    fn src_stream_survives_any_split(
        hello in hello(Role::Src),
        frames in proptest::collection::vec(src_message(), 0..40),
        cuts in proptest::collection::vec(any::<usize>(), 0..30),
    ) {
        let wire = encode_session(&hello, &frames);
        let cuts: Vec<usize> = cuts.iter().map(|cut| cut % (wire.len() + 1)).collect();
        prop_assert_eq!(decode_in_pieces(Role::Sink, &wire, &cuts), expected_items(&hello, &frames));
    }

    /// Garbage after a valid hello: an error or a wait, never a panic, and
    /// never more buffered than was pushed.
    #[test]
    fn garbage_after_hello_never_panics(
        garbage in proptest::collection::vec(any::<u8>(), 0..2000),
        chunk in 1usize..64,
    ) {
        let mut wire = Vec::new();
        Hello::new(Role::Sink, 1).encode(&mut wire).unwrap();
        wire.extend_from_slice(&garbage);
        let limits = Limits { max_body: 4096, max_payload: 1 << 16 };
        let mut decoder = BufferingDecoder::new(Role::Src, limits);
        for piece in wire.chunks(chunk) {
            decoder.push(piece);
            match decoder.poll() {
                Ok(_) => {}
                Err(_) => return Ok(()),
            }
            prop_assert!(decoder.decoder().buffered_len() <= wire.len());
        }
        let _ = decoder.finish();
    }

    /// A corrupted byte anywhere in a valid stream is either harmless (a
    /// timestamp or payload byte changed) or a typed error: never a panic.
    #[test]
    fn single_byte_corruption_never_panics(
        frames in proptest::collection::vec(sink_message(), 1..10),
        position in any::<usize>(),
        value in any::<u8>(),
    ) {
        let hello = Hello::new(Role::Sink, 3);
        let mut wire = encode_session(&hello, &frames);
        let index = position % wire.len();
        wire[index] = value;
        let mut decoder = BufferingDecoder::new(Role::Src, Limits::default());
        decoder.push(&wire);
        while let Ok(Some(_)) = decoder.poll() {}
    }
}
