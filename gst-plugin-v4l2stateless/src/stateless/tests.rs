// SPDX-License-Identifier: MPL-2.0
//! State machine tests over the recording backend, on the small real streams the
//! parsers' fuzz corpus keeps (vpxenc output).

use mediapass_codecparsers::ivf::IvfReader;
use mediapass_codecparsers::vp9::superframe::build_superframe;

use super::backend::{Control, DecodeError, Outcome};
use super::frame_timestamp;
use super::recording::RecordingBackend;
use super::vp8::Vp8Decoder;
use super::vp9::Vp9Decoder;

const TINY_VP8: &[u8] = include_bytes!("../../codecparsers/fuzz/corpus/ivf/tiny-vp8.ivf");
const TINY_VP9: &[u8] = include_bytes!("../../codecparsers/fuzz/corpus/ivf/tiny-vp9.ivf");

fn frames(ivf: &[u8]) -> Vec<&[u8]> {
    IvfReader::new(ivf)
        .unwrap()
        .map(|f| f.unwrap().data)
        .collect()
}

fn vp8_control(c: &Control) -> &v4l2r::bindings::v4l2_ctrl_vp8_frame {
    match c {
        Control::Vp8Frame(f) => f,
        other => panic!("expected VP8_FRAME, got {other:?}"),
    }
}

fn vp9_control(c: &Control) -> &v4l2r::bindings::v4l2_ctrl_vp9_frame {
    match c {
        Control::Vp9Frame(f) => f,
        other => panic!("expected VP9_FRAME, got {other:?}"),
    }
}

#[test]
fn vp8_key_then_inter_frames_reference_the_previous_picture() {
    let input = frames(TINY_VP8);
    assert!(input.len() >= 2);
    let mut dec = Vp8Decoder::new();
    let mut be = RecordingBackend::default();
    for (n, frame) in input.iter().enumerate() {
        let ts = frame_timestamp(n as u32);
        assert_eq!(dec.decode(frame, ts, &mut be).unwrap(), Outcome::shown(ts));
    }
    assert_eq!(be.jobs.len(), input.len());
    assert_eq!(
        be.jobs[0].bitstream_len,
        input[0].len(),
        "whole frame queued"
    );
    let key = vp8_control(&be.jobs[0].controls[0]);
    assert_eq!(
        key.flags & u64::from(v4l2r::bindings::V4L2_VP8_FRAME_FLAG_KEY_FRAME),
        1
    );
    assert_eq!(
        (key.last_frame_ts, key.golden_frame_ts, key.alt_frame_ts),
        (0, 0, 0)
    );
    let second = vp8_control(&be.jobs[1].controls[0]);
    assert_eq!(second.flags & 1, 0, "inter frame");
    // After a key frame all three references are that key frame.
    assert_eq!(
        (
            second.last_frame_ts,
            second.golden_frame_ts,
            second.alt_frame_ts
        ),
        (0, 0, 0)
    );
    if let Some(third) = be.jobs.get(2) {
        assert_eq!(
            vp8_control(&third.controls[0]).last_frame_ts,
            frame_timestamp(1)
        );
    }
    assert!(
        be.references
            .contains(&frame_timestamp(input.len() as u32 - 1))
    );
    assert!(be.references.len() <= 3);
}

#[test]
fn vp8_inter_frame_first_is_skipped_until_a_key_frame() {
    let input = frames(TINY_VP8);
    let mut dec = Vp8Decoder::new();
    let mut be = RecordingBackend::default();
    let err = dec.decode(input[1], 1000, &mut be).unwrap_err();
    assert!(matches!(err, DecodeError::Bitstream(_)), "{err}");
    assert!(be.jobs.is_empty());
    assert_eq!(
        dec.decode(input[0], 2000, &mut be).unwrap(),
        Outcome::shown(2000)
    );
}

#[test]
fn vp8_corrupt_frame_changes_nothing_and_device_errors_surface() {
    let input = frames(TINY_VP8);
    let mut dec = Vp8Decoder::new();
    let mut be = RecordingBackend::default();
    dec.decode(input[0], 0, &mut be).unwrap();
    let refs = dec.references();
    assert!(matches!(
        dec.decode(&input[1][..2], 1000, &mut be),
        Err(DecodeError::Bitstream(_))
    ));
    assert_eq!(dec.references(), refs);
    be.fail_next = true;
    assert!(matches!(
        dec.decode(input[1], 1000, &mut be),
        Err(DecodeError::Backend(_))
    ));
    assert_eq!(
        dec.references(),
        refs,
        "a failed job refreshes no reference"
    );
}

#[test]
fn vp9_refresh_flags_fill_slots_and_name_references() {
    let input = frames(TINY_VP9);
    let mut dec = Vp9Decoder::new(true);
    let mut be = RecordingBackend::default();
    for (n, frame) in input.iter().enumerate() {
        dec.decode(frame, frame_timestamp(n as u32), &mut be)
            .unwrap();
    }
    assert!(!be.jobs.is_empty());
    let key = &be.jobs[0];
    assert_eq!(key.controls.len(), 2, "frame + compressed header");
    assert!(matches!(key.controls[1], Control::Vp9CompressedHdr(_)));
    let k = vp9_control(&key.controls[0]);
    assert_ne!(k.flags & v4l2r::bindings::V4L2_VP9_FRAME_FLAG_KEY_FRAME, 0);
    // A key frame refreshes every slot.
    assert!(dec.slots().iter().all(Option::is_some));
    for job in &be.jobs[1..] {
        let f = vp9_control(&job.controls[0]);
        for ts in [f.last_frame_ts, f.golden_frame_ts, f.alt_frame_ts] {
            assert!(ts < job.timestamp, "references name earlier pictures");
        }
    }
}

#[test]
fn vp9_without_compressed_header_control_sends_one_control() {
    let input = frames(TINY_VP9);
    let mut dec = Vp9Decoder::new(false);
    let mut be = RecordingBackend::default();
    dec.decode(input[0], 0, &mut be).unwrap();
    assert_eq!(be.jobs[0].controls.len(), 1);
}

#[test]
fn vp9_superframe_frames_get_distinct_timestamps() {
    let input = frames(TINY_VP9);
    assert!(input.len() >= 3);
    let mut dec = Vp9Decoder::new(false);
    let mut be = RecordingBackend::default();
    dec.decode(input[0], 0, &mut be).unwrap();
    let chunk = build_superframe(&[input[1], input[2]]);
    let outcome = dec.decode(&chunk, 5000, &mut be).unwrap();
    assert_eq!(outcome, Outcome::shown(5000));
    assert_eq!(be.jobs.len(), 3);
    assert_ne!(be.jobs[1].timestamp, be.jobs[2].timestamp);
    assert_eq!(be.jobs[1].timestamp % 1000, 0, "whole microseconds");
}

#[test]
fn vp9_inter_frame_without_key_frame_is_a_bitstream_error() {
    let input = frames(TINY_VP9);
    let mut dec = Vp9Decoder::new(false);
    let mut be = RecordingBackend::default();
    let err = dec.decode(input[1], 0, &mut be).unwrap_err();
    assert!(matches!(err, DecodeError::Bitstream(_)), "{err}");
    assert!(be.jobs.is_empty());
    // Truncated garbage is an error, never a panic.
    for len in 0..input[0].len().min(64) {
        let _ = dec.decode(&input[0][..len], 0, &mut be);
    }
}

#[test]
fn frame_numbers_survive_the_timestamp_round_trip() {
    for n in [0, 1, 999, 1 << 31, u32::MAX] {
        assert_eq!(super::frame_number(frame_timestamp(n)), Some(n));
    }
    assert_eq!(super::frame_number(1500), None);
    assert_eq!(super::frame_number(u64::MAX / 1000 * 1000), None);
}
