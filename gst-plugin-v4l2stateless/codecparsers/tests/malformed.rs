// SPDX-License-Identifier: MPL-2.0
//! Malformed input: every damaged header is a typed error naming what was wrong, the
//! parsers never panic, and a failed frame leaves the parser state untouched.

mod common;

use common::{ivf_frames, stream};
use mediapass_codecparsers::vp8::{Vp8Error, Vp8Parser};
use mediapass_codecparsers::vp9::{UncompressedHeaderError, Vp9Error, Vp9Parser, split_superframe};
use proptest::prelude::*;

fn vp9_frames(name: &str) -> Vec<Vec<u8>> {
    ivf_frames(&stream(name))
        .iter()
        .flat_map(|chunk| {
            split_superframe(chunk)
                .unwrap()
                .into_iter()
                .map(<[u8]>::to_vec)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn vp9_header_errors_name_the_problem() {
    let frames = vp9_frames("vp9-altref");
    let key = &frames[0];

    let mut bad = key.clone();
    bad[0] &= 0x3f; // frame_marker 0
    assert_eq!(
        Vp9Parser::new().parse_frame(&bad),
        Err(Vp9Error::Uncompressed(
            UncompressedHeaderError::BadFrameMarker(0)
        ))
    );

    let mut bad = key.clone();
    bad[1] ^= 0xff; // inside frame_sync_code
    assert!(matches!(
        Vp9Parser::new().parse_frame(&bad),
        Err(Vp9Error::Uncompressed(
            UncompressedHeaderError::BadSyncCode(_)
        ))
    ));

    // Truncated in the middle of the frame size.
    match Vp9Parser::new().parse_frame(&key[..6]) {
        Err(Vp9Error::Uncompressed(UncompressedHeaderError::OutOfData(e))) => {
            assert!(e.field.starts_with("frame_"), "{e}");
        }
        other => panic!("{other:?}"),
    }

    // Compressed header cut short.
    let mut parser = Vp9Parser::new();
    let header = parser.parse_frame(key).unwrap().header;
    let cut = header.uncompressed_header_size + usize::from(header.compressed_header_size) - 1;
    assert!(matches!(
        Vp9Parser::new().parse_frame(&key[..cut]),
        Err(Vp9Error::Compressed(_))
    ));

    // An inter frame with no key frame before it.
    assert_eq!(
        Vp9Parser::new().parse_frame(&frames[1]),
        Err(Vp9Error::Uncompressed(
            UncompressedHeaderError::NoKeyFrameYet
        ))
    );
}

#[test]
fn vp9_failed_frame_leaves_state_untouched() {
    let frames = vp9_frames("vp9-segmentation");
    let mut parser = Vp9Parser::new();
    for frame in &frames[..5] {
        parser.parse_frame(frame).unwrap();
    }
    let before = format!("{:?}", parser.state());
    let mut bad = frames[5].clone();
    let len = bad.len();
    bad.truncate(len.min(4));
    assert!(parser.parse_frame(&bad).is_err());
    assert_eq!(format!("{:?}", parser.state()), before);
    // And parsing goes on with the real frame.
    for frame in &frames[5..] {
        parser.parse_frame(frame).unwrap();
    }
}

#[test]
fn vp8_header_errors_name_the_problem() {
    let frames = ivf_frames(&stream("vp8-partitions"));
    let key = &frames[0];

    let mut bad = key.clone();
    bad[3] = 0;
    assert_eq!(
        Vp8Parser::new().parse_frame(&bad),
        Err(Vp8Error::BadStartCode([0, 0x01, 0x2a]))
    );

    assert!(matches!(
        Vp8Parser::new().parse_frame(&key[..2]),
        Err(Vp8Error::TruncatedHeader { len: 2, need: 3 })
    ));
    assert!(matches!(
        Vp8Parser::new().parse_frame(&key[..7]),
        Err(Vp8Error::TruncatedHeader { len: 7, need: 10 })
    ));

    let first_part = Vp8Parser::new().parse_frame(key).unwrap().first_part_size as usize;
    assert!(matches!(
        Vp8Parser::new().parse_frame(&key[..10 + first_part / 2]),
        Err(Vp8Error::FirstPartitionTooLarge { .. })
    ));
    // Cut inside the partition size table (8 partitions → 21 bytes of sizes).
    assert!(matches!(
        Vp8Parser::new().parse_frame(&key[..10 + first_part + 5]),
        Err(Vp8Error::TruncatedPartitionTable {
            need: 21,
            available: 5
        })
    ));
    // Cut inside the DCT partitions.
    assert!(matches!(
        Vp8Parser::new().parse_frame(&key[..10 + first_part + 21 + 1]),
        Err(Vp8Error::PartitionTooLarge { .. })
    ));
    assert_eq!(
        Vp8Parser::new().parse_frame(&frames[1]),
        Err(Vp8Error::NoKeyFrameYet)
    );

    // A first partition too short for its header: bool decoder exhaustion names the field.
    let mut tiny = key[..10].to_vec();
    tiny[0] = (tiny[0] & 0x1f) | (2 << 5);
    tiny[1] = 0;
    tiny[2] = 0;
    tiny.extend_from_slice(&[0xff, 0xff]);
    match Vp8Parser::new().parse_frame(&tiny) {
        Err(Vp8Error::OutOfData(e)) => assert!(!e.field.is_empty()),
        other => panic!("{other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Random damage to real frames: no panics, and errors never change the state.
    #[test]
    fn damaged_frames_never_panic(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8), cut in any::<prop::sample::Index>()) {
        for (name, vp9) in [("vp9-error-resilient", true), ("vp8-error-resilient", false)] {
            let frames = if vp9 { vp9_frames(name) } else { ivf_frames(&stream(name)) };
            let mut vp9_parser = Vp9Parser::new();
            let mut vp8_parser = Vp8Parser::new();
            for (n, frame) in frames.iter().enumerate().take(6) {
                let mut damaged = frame.clone();
                if n > 0 {
                    for (at, x) in &flips {
                        let i = at.index(damaged.len());
                        damaged[i] ^= x;
                    }
                    damaged.truncate(cut.index(damaged.len() + 1).max(1));
                }
                if vp9 {
                    let before = format!("{:?}", vp9_parser.state());
                    if vp9_parser.parse_frame(&damaged).is_err() {
                        prop_assert_eq!(format!("{:?}", vp9_parser.state()), before);
                    }
                } else {
                    let before = format!("{:?}", vp8_parser.state());
                    if vp8_parser.parse_frame(&damaged).is_err() {
                        prop_assert_eq!(format!("{:?}", vp8_parser.state()), before);
                    }
                }
            }
        }
    }
}
