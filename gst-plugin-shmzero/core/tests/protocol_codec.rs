// SPDX-License-Identifier: MPL-2.0
//! The control-message codec: every message round-trips, garbage never
//! panics, sizes are bounded.

use proptest::prelude::*;
use shmzero_core::protocol::{EncodeError, MAX_PLANES};
use shmzero_core::{
    BufferDescriptor, BufferId, DecodeError, EventMessage, Goodbye, GoodbyeReason, Hello,
    MAX_MESSAGE_SIZE, Message, MessageKind, NewSegment, Role, SegmentId, VideoLayout,
};

fn opt_time() -> impl Strategy<Value = Option<u64>> {
    prop_oneof![Just(None), (0..u64::MAX).prop_map(Some)]
}

fn video_layout() -> impl Strategy<Value = VideoLayout> {
    (
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        1..=MAX_PLANES as u8,
        any::<[u64; MAX_PLANES]>(),
        any::<[i32; MAX_PLANES]>(),
    )
        .prop_map(
            |(format, width, height, n_planes, mut offsets, mut strides)| {
                // Unused planes are zero on the wire (and checked on decode).
                for plane in usize::from(n_planes)..MAX_PLANES {
                    offsets[plane] = 0;
                    strides[plane] = 0;
                }
                VideoLayout {
                    format,
                    width,
                    height,
                    n_planes,
                    offsets,
                    strides,
                }
            },
        )
}

fn buffer_descriptor() -> impl Strategy<Value = BufferDescriptor> {
    (
        any::<u64>(),
        any::<u32>(),
        any::<u64>(),
        any::<u64>(),
        [opt_time(), opt_time(), opt_time(), opt_time(), opt_time()],
        any::<u32>(),
        proptest::option::of(video_layout()),
    )
        .prop_map(|(buffer, segment, offset, size, times, flags, video)| {
            BufferDescriptor {
                buffer: BufferId(buffer),
                segment: SegmentId(segment),
                offset,
                // The decoder rejects ranges that wrap around.
                size: size.min(u64::MAX - offset),
                pts: times[0],
                dts: times[1],
                duration: times[2],
                offset_start: times[3],
                offset_end: times[4],
                flags,
                video,
            }
        })
}

fn goodbye_reason() -> impl Strategy<Value = GoodbyeReason> {
    prop_oneof![
        Just(GoodbyeReason::Shutdown),
        Just(GoodbyeReason::VersionMismatch),
        Just(GoodbyeReason::ProtocolError),
        Just(GoodbyeReason::SlowReader),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (any::<u32>(), any::<bool>(), any::<u32>(), any::<u64>()).prop_map(
            |(version, writer, credit, features)| Message::Hello(Hello {
                version,
                role: if writer { Role::Writer } else { Role::Reader },
                credit,
                features,
            })
        ),
        (any::<u32>(), 1..u64::MAX).prop_map(|(segment, size)| Message::NewSegment(NewSegment {
            segment: SegmentId(segment),
            size
        })),
        any::<u32>().prop_map(|id| Message::RetireSegment(SegmentId(id))),
        buffer_descriptor().prop_map(Message::Buffer),
        any::<u64>().prop_map(|id| Message::Release(BufferId(id))),
        (any::<u32>(), any::<u32>(), any::<bool>(), ".{0,200}").prop_map(
            |(event_type, seqnum, sticky, structure)| Message::Event(EventMessage {
                event_type,
                seqnum,
                sticky,
                structure,
            })
        ),
        (goodbye_reason(), ".{0,100}")
            .prop_map(|(reason, message)| Message::Goodbye(Goodbye { reason, message })),
    ]
}

proptest! {
    #[test]
    fn every_message_round_trips(msg in message()) {
        let bytes = msg.encode().unwrap();
        prop_assert!(bytes.len() <= MAX_MESSAGE_SIZE);
        prop_assert_eq!(Message::decode(&bytes).unwrap(), msg);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(msg) = Message::decode(&bytes) {
            // Whatever decodes re-encodes to something that decodes the same.
            let again = msg.encode().unwrap();
            prop_assert_eq!(Message::decode(&again).unwrap(), msg);
        }
    }

    #[test]
    fn corrupted_messages_never_panic(
        msg in message(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = msg.encode().unwrap();
        for (index, value) in flips {
            let i = index.index(bytes.len());
            bytes[i] ^= value;
        }
        let _ = Message::decode(&bytes);
        let end = cut.index(bytes.len() + 1);
        let _ = Message::decode(&bytes[..end]);
    }

    #[test]
    fn every_strict_prefix_is_truncated(msg in message()) {
        let bytes = msg.encode().unwrap();
        for end in 0..bytes.len() {
            prop_assert!(Message::decode(&bytes[..end]).is_err(), "prefix {} decoded", end);
        }
    }
}

fn sample_buffer() -> BufferDescriptor {
    BufferDescriptor {
        buffer: BufferId(1),
        segment: SegmentId(2),
        offset: 4096,
        size: 8_294_400,
        pts: Some(0),
        dts: None,
        duration: Some(33_366_666),
        offset_start: Some(0),
        offset_end: Some(1),
        flags: 0x40,
        video: Some(VideoLayout {
            format: 11,
            width: 1920,
            height: 1080,
            n_planes: 1,
            offsets: [0; 4],
            strides: [7680, 0, 0, 0],
        }),
    }
}

#[test]
fn descriptor_is_small() {
    let with_video = Message::Buffer(sample_buffer()).encode().unwrap();
    assert!(with_video.len() < 160, "{} bytes", with_video.len());
    let mut plain = sample_buffer();
    plain.video = None;
    let plain = Message::Buffer(plain).encode().unwrap();
    assert_eq!(plain.len(), 4 + 8 + 4 + 8 * 2 + 8 * 5 + 4 + 1);
}

#[test]
fn garbage_gives_typed_errors() {
    assert!(matches!(
        Message::decode(b""),
        Err(DecodeError::Truncated { .. })
    ));
    assert!(matches!(
        Message::decode(b"GET / HTTP/1.1\r\n"),
        Err(DecodeError::BadMagic { .. })
    ));
    assert_eq!(
        Message::decode(b"SZ\x63\x00"),
        Err(DecodeError::UnknownKind(0x63))
    );
    assert!(matches!(
        Message::decode(b"SZ\x05\x01\x00\x00\x00\x00\x00\x00\x00\x00"),
        Err(DecodeError::InvalidField {
            field: "reserved",
            ..
        })
    ));
    let mut release = Message::Release(BufferId(9)).encode().unwrap();
    release.push(0);
    assert_eq!(
        Message::decode(&release),
        Err(DecodeError::TrailingBytes {
            kind: MessageKind::Release,
            count: 1
        })
    );
    // A string length pointing past the end.
    let mut event = Message::Event(EventMessage {
        event_type: 1,
        seqnum: 2,
        sticky: false,
        structure: "abc".into(),
    })
    .encode()
    .unwrap();
    let len_at = event.len() - 3 - 4;
    event[len_at..len_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        Message::decode(&event),
        Err(DecodeError::Truncated { .. })
    ));
    // Invalid UTF-8.
    let mut event = Message::Event(EventMessage {
        event_type: 1,
        seqnum: 2,
        sticky: true,
        structure: "abc".into(),
    })
    .encode()
    .unwrap();
    let last = event.len() - 1;
    event[last] = 0xff;
    assert!(matches!(
        Message::decode(&event),
        Err(DecodeError::InvalidUtf8 { .. })
    ));
}

#[test]
fn invalid_video_layouts_are_rejected() {
    let mut bad = sample_buffer();
    bad.video.as_mut().unwrap().n_planes = 5;
    assert!(matches!(
        Message::Buffer(bad).encode(),
        Err(EncodeError::InvalidField { .. })
    ));
    let good = Message::Buffer(sample_buffer()).encode().unwrap();
    // n_planes sits right after has_video, format, width, height.
    let n_planes_at = 4 + 8 + 4 + 8 * 2 + 8 * 5 + 4 + 1 + 12;
    for n in [0u8, 5, 255] {
        let mut bytes = good.clone();
        bytes[n_planes_at] = n;
        assert!(matches!(
            Message::decode(&bytes),
            Err(DecodeError::InvalidField {
                field: "video.n_planes",
                ..
            })
        ));
    }
    // Data in an unused plane's stride.
    let mut bytes = good.clone();
    let last = bytes.len() - 1;
    bytes[last] = 1;
    assert!(matches!(
        Message::decode(&bytes),
        Err(DecodeError::InvalidField {
            field: "video.unused_plane",
            ..
        })
    ));
}

#[test]
fn time_max_cannot_be_confused_with_none() {
    let mut desc = sample_buffer();
    desc.pts = Some(u64::MAX);
    assert!(matches!(
        Message::Buffer(desc).encode(),
        Err(EncodeError::InvalidField {
            field: "buffer.pts",
            ..
        })
    ));
}

#[test]
fn size_limit_is_enforced_both_ways() {
    let header_and_fields = 4 + 4 + 4 + 1 + 4;
    let fits = Message::Event(EventMessage {
        event_type: 1,
        seqnum: 1,
        sticky: false,
        structure: "x".repeat(MAX_MESSAGE_SIZE - header_and_fields),
    });
    let bytes = fits.encode().unwrap();
    assert_eq!(bytes.len(), MAX_MESSAGE_SIZE);
    assert_eq!(Message::decode(&bytes).unwrap(), fits);

    let too_big = Message::Event(EventMessage {
        event_type: 1,
        seqnum: 1,
        sticky: false,
        structure: "x".repeat(MAX_MESSAGE_SIZE - header_and_fields + 1),
    });
    assert!(matches!(
        too_big.encode(),
        Err(EncodeError::TooLarge { .. })
    ));
    let mut oversized = bytes.clone();
    oversized.push(0);
    assert_eq!(
        Message::decode(&oversized),
        Err(DecodeError::TooLarge {
            len: MAX_MESSAGE_SIZE + 1
        })
    );
}

#[test]
fn a_future_hello_still_decodes_its_version() {
    let mut bytes = Message::Hello(Hello {
        version: 2,
        role: Role::Writer,
        credit: 4,
        features: 1,
    })
    .encode()
    .unwrap();
    bytes.extend_from_slice(b"future fields");
    let Message::Hello(hello) = Message::decode(&bytes).unwrap() else {
        panic!("not a hello")
    };
    assert_eq!(hello.version, 2);
}
