//! The exact bytes of the examples in PROTOCOL.md: the wire format is a
//! contract between separately built peers, so any change must show up here
//! (and come with a version bump).

use spicepass_protocol::*;

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn hello_example() {
    let mut hello = Hello::new(Role::Sink, 0x0000_0001_2345_6789);
    hello.auth_token = Some(b"abc".to_vec());
    let mut wire = Vec::new();
    hello.encode(&mut wire).unwrap();
    assert_eq!(
        hex(&wire),
        "53 50 43 50 41 53 53 0a 01 00 01 00 25 00 \
         00 3f 00 00 00 00 00 00 00 89 67 45 23 01 00 00 00 \
         00 00 10 00 00 00 00 04 00 00 00 00 e8 03 00 00 03 61 62 63"
    );
}

#[test]
fn frame_examples() {
    let frame = 33_333_333u64;
    let base = 3_600_000_000_000u64;
    let delta_unit = 1 << 13;
    let mut encoder = Encoder::new(Role::Sink, Limits::default());
    let buffers = [
        (
            BufferHeader {
                dts: Some(base),
                pts: Some(base + frame),
                duration: Some(frame),
                offset: Some(0),
                offset_end: Some(1),
                flags: 0,
                payload_len: 60_000,
            },
            "01 18 00 00 fb 03 00 80 c0 e2 85 e3 68 aa 81 e5 1f d5 c0 f2 0f 00 01 e0 d4 03",
        ),
        (
            BufferHeader {
                dts: Some(base + frame),
                pts: Some(base + 4 * frame),
                duration: Some(frame),
                offset: Some(1),
                offset_end: Some(2),
                flags: delta_unit,
                payload_len: 8_000,
            },
            "01 0c 00 01 59 01 80 40 fe 83 af 5f c0 3e",
        ),
        (
            BufferHeader {
                dts: Some(base + 2 * frame),
                pts: Some(base + 2 * frame),
                duration: Some(frame),
                offset: Some(2),
                offset_end: Some(3),
                flags: delta_unit,
                payload_len: 5_000,
            },
            "01 08 00 02 59 01 00 00 88 27",
        ),
    ];
    for (header, expected) in buffers {
        let mut wire = Vec::new();
        encoder.encode_buffer(0, &header, &mut wire).unwrap();
        assert_eq!(hex(&wire), expected);
    }
    let eos = Message::Event(Event {
        direction: EventDirection::Downstream,
        event_type: 110 << 8 | 2 | 4 | 8,
        seqnum: 42,
        running_time_offset: 0,
        sticky: true,
        structure: None,
    });
    let mut wire = Vec::new();
    encoder.encode(0, &eos, &mut wire).unwrap();
    assert_eq!(hex(&wire), "02 08 00 03 02 8e dc 01 2a 00");

    let mut encoder = Encoder::new(Role::Src, Limits::default());
    let credit = Message::Credit(Credit {
        max_bytes: 8 << 20,
        max_buffers: 64,
    });
    let mut wire = Vec::new();
    encoder.encode(0, &credit, &mut wire).unwrap();
    assert_eq!(hex(&wire), "04 07 00 00 80 80 80 04 40");
}

#[test]
fn shared_memory_examples() {
    let size = 1920 * 1080 * 4;
    let mut sink = Encoder::new(Role::Sink, Limits::default());
    let mut wire = Vec::new();
    sink.encode(
        0,
        &Message::Segment(Segment { segment: 1, size }),
        &mut wire,
    )
    .unwrap();
    assert_eq!(hex(&wire), "08 07 00 00 01 80 a0 fa 03");
    wire.clear();
    let shared = Message::SharedBuffer(SharedBuffer {
        header: BufferHeader {
            payload_len: size,
            ..BufferHeader::default()
        },
        buffer_id: 0,
        segment: 1,
        offset: 0,
    });
    sink.encode(0, &shared, &mut wire).unwrap();
    assert_eq!(hex(&wire), "09 0c 00 01 00 00 00 80 a0 fa 03 00 01 00");
    let mut src = Encoder::new(Role::Src, Limits::default());
    wire.clear();
    let release = Message::Release(Release {
        buffer_ids: vec![0],
    });
    src.encode(0, &release, &mut wire).unwrap();
    assert_eq!(hex(&wire), "0b 04 00 00 01 00");
}
