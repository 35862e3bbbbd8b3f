// SPDX-License-Identifier: MPL-2.0
//! MPEG-2 state machine tests over the recording backend, on a tiny ffmpeg stream:
//! 64x48, `-g 6 -bf 2`, 11 pictures; decode order I0 P3 B1 B2 | I6 B4 B5 P9 B7 B8 | I10
//! (the first GOP closed, the others open, a sequence header before each GOP).

use mediapass_codecparsers::mpeg2::{start_code, units};
use v4l2r::bindings;

use super::backend::{Control, DecodeError};
use super::frame_timestamp as ts;
use super::mpeg2::{Mpeg2Decoder, NO_REFERENCE, is_intra_picture};
use super::recording::RecordingBackend;

const TINY: &[u8] = include_bytes!("testdata/tiny-ibbp.m2v");

/// Decode-order picture types of [`TINY`].
const TYPES: &str = "IPBBIBBPBBI";

/// Splits an elementary stream into one buffer per picture, as `mpegvideoparse` does:
/// sequence and GOP headers go with the picture after them.
fn pictures(stream: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut picture_open = false;
    let mut pending_start = None;
    for (offset, unit) in units(stream) {
        let code = unit[0];
        let header = matches!(code, start_code::SEQUENCE_HEADER | start_code::GROUP);
        if header && pending_start.is_none() {
            pending_start = Some(offset);
        }
        if code == start_code::PICTURE {
            starts.push(pending_start.take().unwrap_or(offset));
            picture_open = true;
        } else if header && picture_open {
            picture_open = false;
        }
    }
    let mut ends: Vec<usize> = starts[1..].to_vec();
    ends.push(stream.len());
    starts
        .iter()
        .zip(ends)
        .map(|(&s, e)| &stream[s..e])
        .collect()
}

fn picture(c: &Control) -> &bindings::v4l2_ctrl_mpeg2_picture {
    match c {
        Control::Mpeg2Picture(p) => p,
        other => panic!("expected MPEG2_PICTURE, got {other:?}"),
    }
}

fn sequence(c: &Control) -> &bindings::v4l2_ctrl_mpeg2_sequence {
    match c {
        Control::Mpeg2Sequence(s) => s,
        other => panic!("expected MPEG2_SEQUENCE, got {other:?}"),
    }
}

/// Decodes `input` (numbering frames from 0) and returns the decode-order indexes in
/// output order, drain included.
fn decode_all(
    dec: &mut Mpeg2Decoder,
    be: &mut RecordingBackend,
    input: &[&[u8]],
) -> (Vec<u32>, Vec<u32>) {
    let mut shown = Vec::new();
    let mut discarded = Vec::new();
    for (n, data) in input.iter().enumerate() {
        let outcome = dec.decode(data, ts(n as u32), be).unwrap();
        for (frame, picture) in outcome.show {
            assert_eq!(frame, picture, "MPEG-2 shows each frame's own picture");
            shown.push((frame / 1000) as u32);
        }
        discarded.extend(outcome.discard.iter().map(|t| (t / 1000) as u32));
        for r in &be.references {
            assert!(*r <= ts(n as u32), "references name decoded pictures");
        }
        assert!(be.references.len() <= 2);
    }
    shown.extend(dec.drain().iter().map(|(f, _)| (f / 1000) as u32));
    (shown, discarded)
}

#[test]
fn b_pictures_come_before_the_anchor_they_follow_in_decode_order() {
    let input = pictures(TINY);
    assert_eq!(input.len(), TYPES.len());
    let mut dec = Mpeg2Decoder::new();
    let mut be = RecordingBackend::default();
    let (shown, discarded) = decode_all(&mut dec, &mut be, &input);
    // Display order I0 B1 B2 P3 B4 B5 I6 B7 B8 P9 I10 in decode-order indexes.
    assert_eq!(shown, vec![0, 2, 3, 1, 5, 6, 4, 8, 9, 7, 10]);
    assert!(discarded.is_empty());
    assert_eq!(be.jobs.len(), input.len());
    assert!(dec.drain().is_empty(), "drained once");
}

#[test]
fn references_are_the_two_latest_anchors() {
    let input = pictures(TINY);
    let mut dec = Mpeg2Decoder::new();
    let mut be = RecordingBackend::default();
    decode_all(&mut dec, &mut be, &input);
    let refs: Vec<(u8, u64, u64)> = be
        .jobs
        .iter()
        .map(|j| {
            let p = picture(&j.controls[1]);
            (p.picture_coding_type, p.forward_ref_ts, p.backward_ref_ts)
        })
        .collect();
    let none = NO_REFERENCE;
    let expected = vec![
        (1, none, none),   // I0
        (2, ts(0), none),  // P3
        (3, ts(0), ts(1)), // B1
        (3, ts(0), ts(1)), // B2
        (1, ts(1), none),  // I6: names P3, unused (as v4l2codecs does)
        (3, ts(1), ts(4)), // B4: leading B of an open GOP, P3 and I6
        (3, ts(1), ts(4)), // B5
        (2, ts(4), none),  // P9
        (3, ts(4), ts(7)), // B7
        (3, ts(4), ts(7)), // B8
        (1, ts(7), none),  // I10
    ];
    assert_eq!(refs, expected);
    assert_eq!(be.references, vec![ts(7), ts(10)]);
}

#[test]
fn controls_carry_the_sequence_and_only_the_slices_are_queued() {
    let input = pictures(TINY);
    let mut dec = Mpeg2Decoder::new();
    let mut be = RecordingBackend::default();
    dec.decode(input[0], 0, &mut be).unwrap();
    let job = &be.jobs[0];
    let kinds: Vec<String> = job.controls.iter().map(|c| format!("{c:?}")).collect();
    assert_eq!(
        kinds,
        ["MPEG2_SEQUENCE", "MPEG2_PICTURE", "MPEG2_QUANTISATION"]
    );
    let s = sequence(&job.controls[0]);
    assert_eq!((s.horizontal_size, s.vertical_size), (64, 48));
    assert_eq!(s.chroma_format, 1);
    assert_eq!(
        s.profile_and_level_indication, 0x48,
        "main profile, main level"
    );
    assert_eq!(
        u32::from(s.flags),
        bindings::V4L2_MPEG2_SEQ_FLAG_PROGRESSIVE
    );
    let p = picture(&job.controls[1]);
    assert_eq!(
        u32::from(p.picture_structure),
        bindings::V4L2_MPEG2_PIC_FRAME
    );
    assert_ne!(p.flags & bindings::V4L2_MPEG2_PIC_FLAG_PROGRESSIVE, 0);
    // Sequence header, its extension, GOP, picture header and extension are not sent.
    let headers = input[0]
        .windows(4)
        .position(|w| w[..3] == [0, 0, 1] && (1..=0xaf).contains(&w[3]))
        .unwrap();
    assert_eq!(job.bitstream_len, input[0].len() - headers);
    assert_eq!(
        job.bitstream_head,
        [0, 0, 1, 1],
        "the first slice, start code included"
    );
}

#[test]
fn leading_b_pictures_without_forward_reference_are_discarded() {
    let input = pictures(TINY);
    let mut dec = Mpeg2Decoder::new();
    let mut be = RecordingBackend::default();
    // Start at the second (open) GOP, as after a seek: B4 and B5 lack P3.
    let (shown, discarded) = decode_all(&mut dec, &mut be, &input[4..]);
    assert_eq!(discarded, vec![1, 2]);
    assert_eq!(shown, vec![0, 4, 5, 3, 6]);
    assert_eq!(be.jobs.len(), input.len() - 4 - 2);
}

/// `input` with the GOP header of buffer `index` changed by `edit` on its flags byte.
fn with_gop_flags(input: &[&[u8]], index: usize, edit: impl Fn(u8) -> u8) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = input.iter().map(|b| b.to_vec()).collect();
    let buf = &mut out[index];
    let at = buf
        .windows(4)
        .position(|w| w == [0, 0, 1, start_code::GROUP])
        .expect("GOP header");
    // time_code (25 bits), closed_gop (0x40 of byte 3), broken_link (0x20).
    buf[at + 7] = edit(buf[at + 7]);
    out
}

#[test]
fn closed_gop_leading_b_pictures_decode_from_the_backward_reference_alone() {
    let input = pictures(TINY);
    let closed = with_gop_flags(&input, 4, |b| b | 0x40);
    let refs: Vec<&[u8]> = closed[4..].iter().map(Vec::as_slice).collect();
    let mut dec = Mpeg2Decoder::new();
    let mut be = RecordingBackend::default();
    let (shown, discarded) = decode_all(&mut dec, &mut be, &refs);
    assert!(discarded.is_empty());
    assert_eq!(shown, vec![1, 2, 0, 4, 5, 3, 6]);
    let b = picture(&be.jobs[1].controls[1]);
    assert_eq!((b.forward_ref_ts, b.backward_ref_ts), (NO_REFERENCE, ts(0)));
}

#[test]
fn broken_link_b_pictures_are_discarded_even_with_references() {
    let input = pictures(TINY);
    let broken = with_gop_flags(&input, 4, |b| b | 0x20);
    let all: Vec<&[u8]> = broken.iter().map(Vec::as_slice).collect();
    let mut dec = Mpeg2Decoder::new();
    let mut be = RecordingBackend::default();
    let (shown, discarded) = decode_all(&mut dec, &mut be, &all);
    assert_eq!(discarded, vec![5, 6]);
    assert_eq!(shown, vec![0, 2, 3, 1, 4, 8, 9, 7, 10]);
}

#[test]
fn corrupt_input_is_a_bitstream_error_that_changes_nothing() {
    let input = pictures(TINY);
    let mut dec = Mpeg2Decoder::new();
    let mut be = RecordingBackend::default();
    // A P picture first: no reference.
    let err = dec.decode(input[1], 0, &mut be).unwrap_err();
    assert!(matches!(err, DecodeError::Bitstream(_)), "{err}");
    dec.decode(input[0], 0, &mut be).unwrap();
    let anchors = dec.anchors();
    // Headers only (no slices), garbage, every truncation: errors, never panics.
    let header_end = input[1].len().min(12);
    assert!(matches!(
        dec.decode(&input[1][..header_end], 1000, &mut be),
        Err(DecodeError::Bitstream(_))
    ));
    assert!(dec.decode(&[0xff; 32], 1000, &mut be).is_err());
    assert_eq!(dec.anchors(), anchors);
    for len in 0..input[1].len() {
        let _ = dec.decode(&input[1][..len], 1000, &mut be);
    }
    let mut fresh = Mpeg2Decoder::new();
    for len in 0..input[0].len() {
        let _ = fresh.decode(&input[0][..len], 1000, &mut be);
    }
    // Two pictures in one buffer.
    let two = [input[0], input[1]].concat();
    assert!(Mpeg2Decoder::new().decode(&two, 0, &mut be).is_err());
    // A device error: no reference changes, the waiting picture stays.
    let mut dec = Mpeg2Decoder::new();
    let mut be = RecordingBackend::default();
    dec.decode(input[0], 0, &mut be).unwrap();
    let before = dec.anchors();
    be.fail_next = true;
    assert!(matches!(
        dec.decode(input[1], 1000, &mut be),
        Err(DecodeError::Backend(_))
    ));
    assert_eq!(dec.anchors(), before);
    assert_eq!(dec.drain(), vec![(0, 0)]);
}

#[test]
fn reset_forgets_references_but_keeps_the_sequence_header() {
    let input = pictures(TINY);
    let mut dec = Mpeg2Decoder::new();
    let mut be = RecordingBackend::default();
    dec.decode(input[0], 0, &mut be).unwrap();
    dec.reset();
    assert_eq!(dec.anchors(), [None, None]);
    assert!(dec.drain().is_empty());
    // input[1] (P3) carries no sequence header: without the kept one the error would
    // be about the missing sequence header, not the missing reference.
    let err = dec.decode(input[1], 1000, &mut be).unwrap_err();
    assert!(
        err.to_string().contains("reference"),
        "the sequence header is still known: {err}"
    );
}

#[test]
fn intra_pictures_are_recognised_without_state() {
    let input = pictures(TINY);
    let intra: String = input
        .iter()
        .map(|p| if is_intra_picture(p) { 'I' } else { '-' })
        .collect();
    assert_eq!(intra, TYPES.replace(['P', 'B'], "-"));
}

/// Field pictures: `tests/src/mpeg2_fields.rs` writes this stream (its test keeps the
/// copy current). 64x64, bottom field first, frames `I P B B P B B | I B B P` in decode
/// order, each coded as two fields (the I frames as an I and a P field), open GOPs.
static FIELDS: &[u8] = include_bytes!("testdata/fields-ipbb.m2v");

/// Decode-order frame types of [`FIELDS`].
const FIELD_FRAME_TYPES: &str = "IPBBPBBIBBP";

/// [`FIELDS`] cut as `mpegvideoparse` cuts it: one buffer per frame, both fields.
fn field_frames() -> Vec<&'static [u8]> {
    let fields = pictures(FIELDS);
    assert_eq!(fields.len(), 2 * FIELD_FRAME_TYPES.len());
    fields
        .chunks(2)
        .map(|pair| {
            let start = pair[0].as_ptr() as usize - FIELDS.as_ptr() as usize;
            &FIELDS[start..start + pair[0].len() + pair[1].len()]
        })
        .collect()
}

#[test]
fn both_fields_of_a_frame_decode_into_one_capture_buffer() {
    let input = field_frames();
    let mut dec = Mpeg2Decoder::new();
    let mut be = RecordingBackend::default();
    let (shown, discarded) = decode_all(&mut dec, &mut be, &input);
    // Frame logic is unchanged: display order I0 B2 B3 P1 B5 B6 P4 B8 B9 I7 P10.
    assert_eq!(shown, vec![0, 2, 3, 1, 5, 6, 4, 8, 9, 7, 10]);
    assert!(discarded.is_empty());
    assert_eq!(be.jobs.len(), 2 * input.len());
    for (n, pair) in be.jobs.chunks(2).enumerate() {
        let (first, second) = (&pair[0], &pair[1]);
        assert_eq!(
            (first.timestamp, second.timestamp),
            (ts(n as u32), ts(n as u32))
        );
        assert!(first.hold_capture && !first.continues_picture, "frame {n}");
        assert!(
            second.continues_picture && !second.hold_capture,
            "frame {n}"
        );
        assert_eq!(first.bitstream_head, [0, 0, 1, 1], "slices only");
        assert_eq!(second.bitstream_head, [0, 0, 1, 1], "slices only");
        let (p1, p2) = (picture(&first.controls[1]), picture(&second.controls[1]));
        assert_eq!(
            (
                u32::from(p1.picture_structure),
                u32::from(p2.picture_structure)
            ),
            (
                bindings::V4L2_MPEG2_PIC_BOTTOM_FIELD,
                bindings::V4L2_MPEG2_PIC_TOP_FIELD
            ),
            "frame {n}: bottom field first"
        );
        assert_eq!(p1.flags & bindings::V4L2_MPEG2_PIC_FLAG_PROGRESSIVE, 0);
        // The second field names the frame's references: the first field is in the
        // CAPTURE buffer it decodes into.
        assert_eq!(
            (p1.forward_ref_ts, p1.backward_ref_ts),
            (p2.forward_ref_ts, p2.backward_ref_ts),
            "frame {n}"
        );
        let types = (p1.picture_coding_type, p2.picture_coding_type);
        let expected = match FIELD_FRAME_TYPES.as_bytes()[n] {
            b'I' => (1, 2),
            b'P' => (2, 2),
            _ => (3, 3),
        };
        assert_eq!(types, expected, "frame {n}");
        assert_eq!(
            u32::from(sequence(&first.controls[0]).flags)
                & bindings::V4L2_MPEG2_SEQ_FLAG_PROGRESSIVE,
            0
        );
    }
    let refs: Vec<(u64, u64)> = be
        .jobs
        .iter()
        .step_by(2)
        .map(|j| {
            let p = picture(&j.controls[1]);
            (p.forward_ref_ts, p.backward_ref_ts)
        })
        .collect();
    let none = NO_REFERENCE;
    assert_eq!(
        refs,
        vec![
            (none, none),   // I0
            (ts(0), none),  // P1
            (ts(0), ts(1)), // B2
            (ts(0), ts(1)), // B3
            (ts(1), none),  // P4
            (ts(1), ts(4)), // B5
            (ts(1), ts(4)), // B6
            (ts(4), none),  // I7
            (ts(4), ts(7)), // B8: leading B of an open GOP
            (ts(4), ts(7)), // B9
            (ts(7), none),  // P10
        ]
    );
}

#[test]
fn a_field_without_its_pair_is_refused_and_changes_nothing() {
    let frames = field_frames();
    let fields = pictures(FIELDS);
    let mut dec = Mpeg2Decoder::new();
    let mut be = RecordingBackend::default();
    dec.decode(frames[0], ts(0), &mut be).unwrap();
    let anchors = dec.anchors();
    // P1's first field alone.
    let err = dec.decode(fields[2], ts(1), &mut be).unwrap_err();
    assert!(
        matches!(&err, DecodeError::Bitstream(m) if m.contains("unpaired")),
        "{err}"
    );
    // Two first fields (same parity), three fields, a field then a frame's worth of
    // another frame: refused.
    for bad in [
        [fields[2], fields[2]].concat(),
        [fields[2], fields[3], fields[4]].concat(),
        [frames[1], frames[2]].concat(),
    ] {
        assert!(
            matches!(
                dec.decode(&bad, ts(1), &mut be),
                Err(DecodeError::Bitstream(_))
            ),
            "refused"
        );
    }
    assert_eq!(be.jobs.len(), 2, "only I0's two fields were queued");
    assert_eq!(dec.anchors(), anchors);
    // The stream goes on where it left off.
    dec.decode(frames[1], ts(1), &mut be).unwrap();
    assert_eq!(dec.drain(), vec![(ts(1), ts(1))]);
}

#[test]
fn a_field_pair_with_mismatched_types_is_refused() {
    let fields = pictures(FIELDS);
    // I0's first field followed by B2's second field (same buffer, opposite parity).
    let mixed = [fields[0], fields[5]].concat();
    let mut dec = Mpeg2Decoder::new();
    let mut be = RecordingBackend::default();
    let err = dec.decode(&mixed, 0, &mut be).unwrap_err();
    assert!(
        matches!(&err, DecodeError::Bitstream(m) if m.contains("field pair")),
        "{err}"
    );
    assert!(be.jobs.is_empty());
}
