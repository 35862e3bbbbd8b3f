//! Realistic messages for the round-trip and property tests.

#![allow(dead_code)]

use spicepass_protocol::*;

/// `GstEventType` values (gstevent.h: number << 8 | direction/serialized/sticky flags).
pub mod event_type {
    const UP: u32 = 1;
    const DOWN: u32 = 2;
    const SER: u32 = 4;
    const STICKY: u32 = 8;
    const MULTI: u32 = 16;
    pub const FLUSH_START: u32 = 10 << 8 | UP | DOWN;
    pub const FLUSH_STOP: u32 = 20 << 8 | UP | DOWN | SER;
    pub const STREAM_START: u32 = 40 << 8 | DOWN | SER | STICKY;
    pub const CAPS: u32 = 50 << 8 | DOWN | SER | STICKY;
    pub const SEGMENT: u32 = 70 << 8 | DOWN | SER | STICKY;
    pub const STREAM_COLLECTION: u32 = 75 << 8 | DOWN | SER | STICKY | MULTI;
    pub const TAG: u32 = 80 << 8 | DOWN | SER | STICKY | MULTI;
    pub const EOS: u32 = 110 << 8 | DOWN | SER | STICKY;
    pub const GAP: u32 = 160 << 8 | DOWN | SER;
    pub const INSTANT_RATE_CHANGE: u32 = 180 << 8 | DOWN | STICKY;
    pub const QOS: u32 = 190 << 8 | UP;
    pub const SEEK: u32 = 200 << 8 | UP;
    pub const NAVIGATION: u32 = 210 << 8 | UP;
    pub const LATENCY: u32 = 220 << 8 | UP;
    pub const STEP: u32 = 230 << 8 | UP;
    pub const RECONFIGURE: u32 = 240 << 8 | UP;
    pub const CUSTOM_UPSTREAM: u32 = 270 << 8 | UP;
    pub const CUSTOM_DOWNSTREAM: u32 = 280 << 8 | DOWN | SER;
    pub const CUSTOM_DOWNSTREAM_STICKY: u32 = 300 << 8 | DOWN | SER | STICKY | MULTI;
}

fn event(
    direction: EventDirection,
    event_type: u32,
    seqnum: u32,
    sticky: bool,
    structure: Option<&str>,
) -> Message {
    Message::Event(Event {
        direction,
        event_type,
        seqnum,
        running_time_offset: 0,
        sticky,
        structure: structure.map(str::to_owned),
    })
}

/// Every downstream event kind the sink forwards, as the glue would serialize it.
pub fn downstream_events() -> Vec<Message> {
    use EventDirection::Downstream as D;
    use event_type::*;
    vec![
        event(
            D,
            STREAM_START,
            1,
            true,
            Some(
                "GstEventStreamStart, stream-id=(string)\"4f2c/001\", flags=(GstStreamFlags)GST_STREAM_FLAG_NONE, group-id=(uint)7;",
            ),
        ),
        event(
            D,
            CAPS,
            2,
            true,
            Some(
                "video/x-h264, stream-format=(string)byte-stream, alignment=(string)au, width=(int)1920, height=(int)1080, framerate=(fraction)30/1, profile=(string)high",
            ),
        ),
        event(
            D,
            SEGMENT,
            3,
            true,
            Some(
                "GstEventSegment, segment=(GstSegment)\"segment, flags=(GstSegmentFlags)GST_SEGMENT_FLAG_NONE, rate=(double)1, applied-rate=(double)1, format=(GstFormat)time, base=(guint64)0, offset=(guint64)0, start=(guint64)0, stop=(guint64)18446744073709551615, time=(guint64)0, position=(guint64)0, duration=(guint64)18446744073709551615;\";",
            ),
        ),
        event(
            D,
            TAG,
            4,
            true,
            Some(
                "GstEventTag, taglist=(taglist)\"taglist\\,\\ title\\=\\(string\\)\\\"Été\\ ünïcødé\\ ✓\\\"\\;\", scope=(GstTagScope)GST_TAG_SCOPE_STREAM;",
            ),
        ),
        event(
            D,
            STREAM_COLLECTION,
            5,
            true,
            Some("GstEventStreamCollection, collection=(GstStreamCollection)NULL;"),
        ),
        event(
            D,
            GAP,
            6,
            false,
            Some("GstEventGap, timestamp=(guint64)1000000000, duration=(guint64)40000000;"),
        ),
        event(D, FLUSH_START, 7, false, None),
        event(
            D,
            FLUSH_STOP,
            7,
            false,
            Some("GstEventFlushStop, reset-time=(boolean)true;"),
        ),
        event(
            D,
            INSTANT_RATE_CHANGE,
            8,
            true,
            Some(
                "GstEventInstantRateChange, rate=(double)2, flags=(GstSegmentFlags)GST_SEGMENT_FLAG_NONE;",
            ),
        ),
        event(
            D,
            CUSTOM_DOWNSTREAM,
            9,
            false,
            Some("my-app/marker, chapter=(int)3;"),
        ),
        event(
            D,
            CUSTOM_DOWNSTREAM_STICKY,
            9,
            true,
            Some("my-app/sticky, id=(string)a;"),
        ),
        event(D, EOS, 10, true, None),
        Message::Event(Event {
            direction: D,
            event_type: SEGMENT,
            seqnum: u32::MAX,
            running_time_offset: -5_000_000_000,
            sticky: true,
            structure: Some(String::new()),
        }),
    ]
}

/// Every upstream event kind the src forwards.
pub fn upstream_events() -> Vec<Message> {
    use EventDirection::Upstream as U;
    use event_type::*;
    vec![
        event(
            U,
            SEEK,
            100,
            false,
            Some(
                "GstEventSeek, rate=(double)1, format=(GstFormat)time, flags=(GstSeekFlags)GST_SEEK_FLAG_FLUSH|GST_SEEK_FLAG_KEY_UNIT, cur-type=(GstSeekType)GST_SEEK_TYPE_SET, cur=(gint64)5000000000, stop-type=(GstSeekType)GST_SEEK_TYPE_NONE, stop=(gint64)-1;",
            ),
        ),
        event(
            U,
            QOS,
            101,
            false,
            Some(
                "GstEventQOS, type=(GstQOSType)GST_QOS_TYPE_UNDERFLOW, proportion=(double)1.25, diff=(gint64)-2000000, timestamp=(guint64)120000000;",
            ),
        ),
        event(
            U,
            NAVIGATION,
            102,
            false,
            Some(
                "application/x-gst-navigation, event=(string)mouse-button-press, button=(int)1, pointer_x=(double)320.5, pointer_y=(double)200;",
            ),
        ),
        event(
            U,
            LATENCY,
            103,
            false,
            Some("GstEventLatency, latency=(guint64)150000000;"),
        ),
        event(
            U,
            STEP,
            104,
            false,
            Some(
                "GstEventStep, format=(GstFormat)buffers, amount=(guint64)1, rate=(double)1, flush=(boolean)true, intermediate=(boolean)false;",
            ),
        ),
        event(U, RECONFIGURE, 105, false, None),
        event(
            U,
            CUSTOM_UPSTREAM,
            106,
            false,
            Some(
                "GstForceKeyUnit, running-time=(guint64)18446744073709551615, all-headers=(boolean)true, count=(uint)0;",
            ),
        ),
        event(
            U,
            event_type::CUSTOM_UPSTREAM,
            107,
            false,
            Some("my-app/ping;"),
        ),
    ]
}

/// A typical H.264 stream in decode order (IPBB), 30 fps, one hour in.
pub fn video_headers(count: usize, payload_len: impl Fn(usize) -> u64) -> Vec<BufferHeader> {
    let frame = 33_333_333u64;
    let base = 3_600_000_000_000u64;
    (0..count)
        .map(|i| {
            // Decode order I0 P3 B1 B2 P6 B4 B5 ...
            let presentation = match i {
                0 => 0,
                _ => {
                    let (gop, index) = ((i - 1) / 3, (i - 1) % 3);
                    (3 * gop + if index == 0 { 3 } else { index }) as u64
                }
            };
            BufferHeader {
                dts: Some(base + i as u64 * frame),
                pts: Some(base + (presentation + 1) * frame),
                duration: Some(frame),
                offset: Some(i as u64),
                offset_end: Some(i as u64 + 1),
                flags: if i % 60 == 0 { 0 } else { 1 << 13 },
                payload_len: payload_len(i),
            }
        })
        .collect()
}

/// Everything a sink sends, in one session, with payloads.
pub fn sink_session() -> (Hello, Vec<(u32, Message, Vec<u8>)>) {
    let mut hello = Hello::new(Role::Sink, 0xdead_beef_0000_0001);
    hello.auth_token = Some(b"token".to_vec());
    let mut frames: Vec<(u32, Message, Vec<u8>)> = downstream_events()
        .into_iter()
        .map(|message| (0, message, Vec::new()))
        .collect();
    for (i, header) in video_headers(40, |i| (i as u64 * 977) % 3000)
        .into_iter()
        .enumerate()
    {
        let payload: Vec<u8> = (0..header.payload_len)
            .map(|b| (b as u8) ^ (i as u8))
            .collect();
        frames.push(((i % 3) as u32, Message::Buffer(header), payload));
    }
    frames.push((0, Message::Buffer(BufferHeader::default()), Vec::new()));
    frames.push((
        255,
        Message::Buffer(BufferHeader {
            pts: Some(u64::MAX),
            dts: Some(0),
            duration: Some(u64::MAX - 1),
            offset: None,
            offset_end: Some(7),
            flags: u32::MAX,
            payload_len: 1,
        }),
        vec![0x5a],
    ));
    frames.push((
        0,
        Message::WindowGeometry(WindowGeometry {
            x: -1920,
            y: 40,
            width: 1280,
            height: 720,
            visible: true,
        }),
        Vec::new(),
    ));
    // Shared-memory payloads: a segment, buffers in it (predicted like
    // inline ones, interleaved with them), its retirement.
    frames.push((
        0,
        Message::Segment(Segment {
            segment: 3,
            size: 8_294_400 * 4,
        }),
        Vec::new(),
    ));
    for (i, header) in video_headers(6, |_| 8_294_400).into_iter().enumerate() {
        frames.push((
            1,
            Message::SharedBuffer(SharedBuffer {
                header,
                buffer_id: i as u64,
                segment: 3,
                offset: (i as u64 % 4) * 8_294_400,
            }),
            Vec::new(),
        ));
    }
    frames.push((
        0,
        Message::RetireSegment(RetireSegment { segment: 3 }),
        Vec::new(),
    ));
    frames.push((
        0,
        Message::Heartbeat(Heartbeat {
            timestamp: 123_456_789,
            echo: Some(HeartbeatEcho {
                timestamp: 99,
                held: 1_000,
            }),
        }),
        Vec::new(),
    ));
    frames.push((
        0,
        Message::Goodbye(Goodbye {
            reason: GoodbyeReason::NORMAL,
            message: "end of stream".into(),
        }),
        Vec::new(),
    ));
    (hello, frames)
}

/// Everything a src sends.
pub fn src_session() -> (Hello, Vec<(u32, Message, Vec<u8>)>) {
    let hello = Hello::new(Role::Src, 77);
    let mut frames: Vec<(u32, Message, Vec<u8>)> = upstream_events()
        .into_iter()
        .map(|message| (0, message, Vec::new()))
        .collect();
    frames.push((
        0,
        Message::Credit(Credit {
            max_bytes: 8 << 20,
            max_buffers: 64,
        }),
        Vec::new(),
    ));
    frames.push((
        1,
        Message::ClientReport(ClientReport {
            timestamp: 5_000_000_000,
            position: Some(4_200_000_000),
            live: false,
            latency_min: 33_000_000,
            latency_max: None,
        }),
        Vec::new(),
    ));
    frames.push((
        1,
        Message::ClientReport(ClientReport {
            timestamp: 0,
            position: None,
            live: true,
            latency_min: 0,
            latency_max: Some(u64::MAX),
        }),
        Vec::new(),
    ));
    frames.push((
        0,
        Message::Release(Release {
            buffer_ids: vec![0, 2, 1, u64::MAX],
        }),
        Vec::new(),
    ));
    frames.push((
        0,
        Message::Release(Release {
            buffer_ids: Vec::new(),
        }),
        Vec::new(),
    ));
    frames.push((
        0,
        Message::Heartbeat(Heartbeat {
            timestamp: 1,
            echo: None,
        }),
        Vec::new(),
    ));
    frames.push((
        0,
        Message::Goodbye(Goodbye {
            reason: GoodbyeReason(4242),
            message: String::new(),
        }),
        Vec::new(),
    ));
    (hello, frames)
}

/// Hello + frames + payloads as one byte string.
pub fn encode_session(hello: &Hello, frames: &[(u32, Message, Vec<u8>)]) -> Vec<u8> {
    let mut wire = Vec::new();
    hello.encode(&mut wire).unwrap();
    let mut encoder = Encoder::new(hello.role, Limits::default());
    for (seq, (stream_id, message, payload)) in frames.iter().enumerate() {
        assert_eq!(
            encoder.encode(*stream_id, message, &mut wire).unwrap(),
            seq as u64
        );
        wire.extend_from_slice(payload);
    }
    wire
}

/// Feeds `wire` to a decoder of the peer role in chunks cut at `cuts`, and
/// returns what came out. Panics on a decode error.
pub fn decode_in_pieces(role: Role, wire: &[u8], cuts: &[usize]) -> Vec<Item> {
    let mut decoder = BufferingDecoder::new(role, Limits::default());
    let mut items = Vec::new();
    let mut position = 0;
    let mut cuts: Vec<usize> = cuts.iter().map(|&cut| cut.min(wire.len())).collect();
    cuts.sort_unstable();
    cuts.push(wire.len());
    for cut in cuts {
        decoder.push(&wire[position..cut]);
        position = cut;
        while let Some(item) = decoder.poll().unwrap() {
            items.push(item);
        }
    }
    decoder.finish().unwrap();
    items
}

/// What a decoder must produce for a session.
pub fn expected_items(hello: &Hello, frames: &[(u32, Message, Vec<u8>)]) -> Vec<Item> {
    std::iter::once(Item::Hello(hello.clone()))
        .chain(
            frames
                .iter()
                .enumerate()
                .map(|(seq, (stream_id, message, payload))| {
                    Item::Frame(
                        Frame {
                            stream_id: *stream_id,
                            seq: seq as u64,
                            message: message.clone(),
                        },
                        payload.clone(),
                    )
                }),
        )
        .collect()
}
