// SPDX-License-Identifier: MPL-2.0
//! MPEG-2 (and MPEG-1) video: one input buffer holds one coded frame (as `mpegvideoparse`
//! outputs it): a frame picture, or two field pictures. Each picture is decoded with one
//! request carrying `V4L2_CID_STATELESS_MPEG2_SEQUENCE`, `_PICTURE` and
//! `_QUANTISATION`; the OUTPUT buffer holds the picture's slices with their start codes.
//! References are the two latest I/P frames (forward = older, backward = newer), named
//! by timestamp.
//!
//! Field pictures: both fields decode into one CAPTURE buffer, the first field's request
//! queued with `V4L2_BUF_FLAG_M2M_HOLD_CAPTURE_BUF`, the second one continuing it. Both
//! requests carry the same timestamp and the same references, those of the frame: the
//! driver finds the first field (the reference of a P second field, chosen per
//! macroblock by `motion_vertical_field_select`) in the CAPTURE buffer it decodes into,
//! as Hantro's G1 driver does and GStreamer's v4l2codecs expects.
//!
//! Output order: a B frame is shown at once; an I/P frame waits until the next I/P
//! frame is decoded (or the drain), since the B frames between them come first.

use std::ops::Range;

use mediapass_codecparsers::mpeg2::{
    self, GroupOfPictures, Mpeg2Parser, Mpeg2Unit, PictureCodingExtension, PictureCodingType,
    PictureHeader, SequenceExtension, SequenceHeader,
};
use v4l2r::bindings;

use super::backend::{Backend, Control, DecodeError, DecodeJob, Outcome};
use super::tentative::parse_on_copy;

/// `forward_ref_ts`/`backward_ref_ts` of a direction without reference: like GStreamer's
/// v4l2codecs, `GST_CLOCK_TIME_NONE`, which names no CAPTURE buffer.
pub const NO_REFERENCE: u64 = u64::MAX;

/// The headers and slice range of one input buffer's picture.
#[derive(Debug, Clone)]
pub struct ParsedPicture {
    pub sequence: SequenceHeader,
    /// Absent in MPEG-1 streams.
    pub sequence_extension: Option<SequenceExtension>,
    pub gop: Option<GroupOfPictures>,
    pub header: PictureHeader,
    pub coding_extension: Option<PictureCodingExtension>,
    /// From the first slice's start code to the end of the last slice.
    pub slices: Range<usize>,
    /// The frame's second field, when this picture is its first field.
    pub second_field: Option<SecondField>,
    /// Matrices in force for the first field, when a second field follows (the
    /// parser's final state is the second field's).
    pub first_field_quantisation: Option<bindings::v4l2_ctrl_mpeg2_quantisation>,
}

/// The second field picture of a frame coded as two fields (same buffer, same sequence
/// and GOP).
#[derive(Debug, Clone)]
pub struct SecondField {
    pub header: PictureHeader,
    pub coding_extension: PictureCodingExtension,
    pub slices: Range<usize>,
    /// Matrices in force for this field (a quant matrix extension may sit between the
    /// fields).
    pub quantisation: bindings::v4l2_ctrl_mpeg2_quantisation,
}

impl ParsedPicture {
    fn is_field_picture(&self) -> bool {
        self.coding_extension
            .as_ref()
            .is_some_and(PictureCodingExtension::is_field_picture)
    }
}

/// Which B pictures a GOP lets us decode.
#[derive(Debug, Clone, Copy, Default)]
struct GopState {
    closed: bool,
    broken_link: bool,
    /// I/P pictures decoded since the last GOP header.
    anchors: u32,
}

/// Decodes MPEG-2 pictures in decode order.
#[derive(Debug, Default)]
pub struct Mpeg2Decoder {
    parser: Mpeg2Parser,
    /// The two latest I/P pictures: `[older, newer]`.
    anchors: [Option<u64>; 2],
    /// The newest I/P picture, decoded but not shown yet.
    waiting: Option<u64>,
    gop: GopState,
}

impl Mpeg2Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// `[forward, backward]` candidates: the two latest I/P pictures, older first.
    pub fn anchors(&self) -> [Option<u64>; 2] {
        self.anchors
    }

    /// Parses stream headers that arrive outside the buffers (caps `codec_data`).
    pub fn parse_codec_data(&mut self, data: &[u8]) -> Result<(), String> {
        let mut parser = self.parser.clone();
        for (_, unit) in mpeg2::units(data) {
            parser.parse_unit(unit).map_err(|e| e.to_string())?;
        }
        self.parser = parser;
        Ok(())
    }

    /// Parses a buffer without decoding it (sequence setup before the CAPTURE format):
    /// its picture and the sequence control the first request would carry.
    pub fn peek(
        &self,
        data: &[u8],
    ) -> Result<(ParsedPicture, bindings::v4l2_ctrl_mpeg2_sequence), String> {
        let mut parser = self.parser.clone();
        let picture = parse_picture(&mut parser, data)?;
        let control = sequence_control(&picture.sequence, picture.sequence_extension.as_ref());
        Ok((picture, control))
    }

    /// Decodes the picture in `data`, queued with `timestamp`. On a bitstream error
    /// nothing changes.
    pub fn decode<B: Backend>(
        &mut self,
        data: &[u8],
        timestamp: u64,
        backend: &mut B,
    ) -> Result<Outcome, DecodeError<B::Error>> {
        let (parser, picture) = parse_on_copy(&self.parser, |p| parse_picture(p, data))?;
        if picture.is_field_picture() && picture.second_field.is_none() {
            return Err(DecodeError::Bitstream(
                "unpaired MPEG-2 field picture (the buffer must hold both fields of a frame)"
                    .into(),
            ));
        }
        if picture.sequence_extension.is_none()
            && (picture.header.full_pel_forward_vector || picture.header.full_pel_backward_vector)
        {
            return Err(DecodeError::Bitstream(
                "MPEG-1 full-pel motion vectors have no V4L2 control field".into(),
            ));
        }
        let mut gop = self.gop;
        if let Some(header) = &picture.gop {
            gop = GopState {
                closed: header.closed_gop,
                broken_link: header.broken_link,
                anchors: 0,
            };
        }
        let [older, newer] = self.anchors;
        let coding_type = picture.header.picture_coding_type;
        let (forward, backward) = match coding_type {
            // Intra pictures predict from nothing; like v4l2codecs (which names the
            // nearest earlier reference for every picture) an I picture still names the
            // latest I/P picture as forward reference, so both send the same controls.
            PictureCodingType::I => (newer, None),
            PictureCodingType::D => (None, None),
            PictureCodingType::P => {
                let Some(newer) = newer else {
                    return Err(DecodeError::Bitstream(
                        "MPEG-2 P picture without a reference picture".into(),
                    ));
                };
                (Some(newer), None)
            }
            PictureCodingType::B => {
                let Some(newer) = newer else {
                    return Err(DecodeError::Bitstream(
                        "MPEG-2 B picture without reference pictures".into(),
                    ));
                };
                // Leading B pictures of an open GOP predict from the previous GOP: missing
                // after a start or seek, wrong after an edit (broken_link). Skip them.
                let leading = gop.anchors <= 1;
                let undecodable =
                    (older.is_none() && !gop.closed) || (leading && gop.broken_link && !gop.closed);
                if undecodable {
                    self.parser = parser;
                    self.gop = gop;
                    return Ok(Outcome::discarded(timestamp));
                }
                (older, Some(newer))
            }
        };
        let sequence = sequence_control(&picture.sequence, picture.sequence_extension.as_ref());
        let controls =
            |picture: bindings::v4l2_ctrl_mpeg2_picture,
             quantisation: bindings::v4l2_ctrl_mpeg2_quantisation| {
                vec![
                    Control::Mpeg2Sequence(Box::new(sequence)),
                    Control::Mpeg2Picture(Box::new(picture)),
                    Control::Mpeg2Quantisation(Box::new(quantisation)),
                ]
            };
        let first_quantisation = picture
            .first_field_quantisation
            .unwrap_or_else(|| quantisation_control(&parser));
        let mut first = DecodeJob::picture(
            timestamp,
            &data[picture.slices.clone()],
            controls(
                picture_control(&picture, forward, backward),
                first_quantisation,
            ),
        );
        first.hold_capture = picture.second_field.is_some();
        backend.decode(first).map_err(DecodeError::Backend)?;
        if let Some(second) = &picture.second_field {
            let mut job = DecodeJob::picture(
                timestamp,
                &data[second.slices.clone()],
                controls(
                    second_field_control(&picture, second, forward, backward),
                    second.quantisation,
                ),
            );
            job.continues_picture = true;
            backend.decode(job).map_err(DecodeError::Backend)?;
        }
        self.parser = parser;
        self.gop = gop;
        let outcome = match coding_type {
            PictureCodingType::B | PictureCodingType::D => Outcome::shown(timestamp),
            PictureCodingType::I | PictureCodingType::P => {
                self.gop.anchors += 1;
                self.anchors = [newer, Some(timestamp)];
                let previous = self.waiting.replace(timestamp);
                Outcome {
                    show: previous.map(|ts| (ts, ts)).into_iter().collect(),
                    discard: Vec::new(),
                }
            }
        };
        let live: Vec<u64> = self.anchors.iter().flatten().copied().collect();
        backend.set_references(&live);
        Ok(outcome)
    }

    /// The I/P picture still waiting for output (EOS, new sequence).
    pub fn drain(&mut self) -> Vec<(u64, u64)> {
        self.waiting.take().map(|ts| (ts, ts)).into_iter().collect()
    }

    /// Forgets references and the waiting picture (flush/seek). The sequence header
    /// and quantiser matrices are kept: streams do not repeat them on every buffer.
    pub fn reset(&mut self) {
        *self = Self {
            parser: std::mem::take(&mut self.parser),
            ..Self::default()
        };
    }
}

/// Headers and slices of one picture while its buffer is parsed.
#[derive(Default)]
struct PictureUnits {
    header: Option<PictureHeader>,
    coding_extension: Option<PictureCodingExtension>,
    slices: Option<Range<usize>>,
}

/// Parses every unit of one buffer: one frame picture, or the two field pictures of a
/// frame (a first field alone is returned without `second_field`).
pub fn parse_picture(parser: &mut Mpeg2Parser, data: &[u8]) -> Result<ParsedPicture, String> {
    let mut gop = None;
    let mut first = PictureUnits::default();
    let mut second: Option<PictureUnits> = None;
    let mut first_field_quantisation = None;
    for (prefix_offset, unit) in mpeg2::units(data) {
        let parsed = parser.parse_unit(unit).map_err(|e| e.to_string())?;
        let current = second.as_mut().unwrap_or(&mut first);
        if current.slices.is_some() && !matches!(parsed, Mpeg2Unit::Slice(_)) {
            if matches!(parsed, Mpeg2Unit::Picture(_)) {
                if second.is_some()
                    || !first
                        .coding_extension
                        .as_ref()
                        .is_some_and(PictureCodingExtension::is_field_picture)
                {
                    return Err(
                        "more than one MPEG-2 frame in a buffer (not parsed by mpegvideoparse?)"
                            .into(),
                    );
                }
                first_field_quantisation = Some(quantisation_control(parser));
                second = Some(PictureUnits {
                    header: Some(parsed_picture_header(&parsed)),
                    ..PictureUnits::default()
                });
            }
            continue;
        }
        match parsed {
            Mpeg2Unit::GroupOfPictures(g) => gop = Some(g),
            Mpeg2Unit::Picture(h) => current.header = Some(h),
            Mpeg2Unit::PictureCodingExtension(e) => current.coding_extension = Some(e),
            Mpeg2Unit::Slice(_) => {
                if current.header.is_none() {
                    return Err("MPEG-2 slice before a picture header".into());
                }
                let end = offset_in(data, unit) + unit.len();
                current.slices = Some(
                    current
                        .slices
                        .clone()
                        .map_or(prefix_offset..end, |s| s.start..end),
                );
            }
            _ => {}
        }
    }
    let header = first
        .header
        .ok_or("no MPEG-2 picture header in the buffer")?;
    let slices = first.slices.ok_or("MPEG-2 picture without slices")?;
    let sequence = parser
        .sequence()
        .cloned()
        .ok_or("MPEG-2 picture before any sequence header")?;
    let sequence_extension = parser.sequence_extension().cloned();
    if sequence_extension.is_some() && first.coding_extension.is_none() {
        return Err("MPEG-2 picture without picture coding extension".into());
    }
    let second_field = match second {
        None => None,
        Some(units) => Some(second_field(
            &header,
            first.coding_extension.as_ref(),
            units,
            parser,
        )?),
    };
    Ok(ParsedPicture {
        sequence,
        sequence_extension,
        gop,
        header,
        coding_extension: first.coding_extension,
        slices,
        second_field,
        first_field_quantisation,
    })
}

fn parsed_picture_header(unit: &Mpeg2Unit) -> PictureHeader {
    match unit {
        Mpeg2Unit::Picture(h) => h.clone(),
        _ => unreachable!("called on picture headers only"),
    }
}

/// Checks that `units` complete the first field (ISO/IEC 13818-2 6.1.1.4.1: opposite
/// parity; an I first field pairs with an I or P field, P with P, B with B).
fn second_field(
    first_header: &PictureHeader,
    first_extension: Option<&PictureCodingExtension>,
    units: PictureUnits,
    parser: &Mpeg2Parser,
) -> Result<SecondField, String> {
    let header = units
        .header
        .ok_or("no MPEG-2 picture header for the second field")?;
    let coding_extension = units
        .coding_extension
        .ok_or("MPEG-2 second field without picture coding extension")?;
    let slices = units.slices.ok_or("MPEG-2 second field without slices")?;
    let first_structure = first_extension.map_or(0, |e| e.picture_structure);
    if !coding_extension.is_field_picture() || coding_extension.picture_structure == first_structure
    {
        return Err(format!(
            "MPEG-2 field (picture_structure {first_structure}) followed by picture_structure {} instead of the opposite field",
            coding_extension.picture_structure
        ));
    }
    use PictureCodingType::{B, I, P};
    let pair = (first_header.picture_coding_type, header.picture_coding_type);
    if !matches!(pair, (I, I) | (I, P) | (P, P) | (B, B)) {
        return Err(format!(
            "MPEG-2 field pair of types {:?} and {:?}",
            pair.0, pair.1
        ));
    }
    Ok(SecondField {
        header,
        coding_extension,
        slices,
        quantisation: quantisation_control(parser),
    })
}

/// Byte offset of `part` (a sub-slice of `whole`).
fn offset_in(whole: &[u8], part: &[u8]) -> usize {
    part.as_ptr() as usize - whole.as_ptr() as usize
}

/// Whether the buffer holds an I picture (a sequence may start there).
pub fn is_intra_picture(data: &[u8]) -> bool {
    mpeg2::units(data)
        .find(|(_, unit)| unit.first() == Some(&mpeg2::start_code::PICTURE))
        .and_then(|(_, unit)| PictureHeader::parse(&unit[1..]).ok())
        .is_some_and(|h| h.picture_coding_type == PictureCodingType::I)
}

/// Fills `v4l2_ctrl_mpeg2_sequence`. `vbv_buffer_size` is in bits (the 16 kbit units
/// times 16384), as GStreamer's v4l2codecs sends it. MPEG-1 streams are 4:2:0 and
/// progressive.
pub fn sequence_control(
    seq: &SequenceHeader,
    ext: Option<&SequenceExtension>,
) -> bindings::v4l2_ctrl_mpeg2_sequence {
    let progressive = ext.is_none_or(|e| e.progressive_sequence);
    bindings::v4l2_ctrl_mpeg2_sequence {
        horizontal_size: seq.horizontal_size(ext) as u16,
        vertical_size: seq.vertical_size(ext) as u16,
        vbv_buffer_size: seq.vbv_buffer_size(ext).wrapping_mul(16 * 1024),
        profile_and_level_indication: ext.map_or(0, |e| e.profile_and_level_indication.into()),
        chroma_format: ext.map_or(1, |e| e.chroma_format),
        flags: if progressive {
            bindings::V4L2_MPEG2_SEQ_FLAG_PROGRESSIVE as u8
        } else {
            0
        },
    }
}

/// Fills `v4l2_ctrl_mpeg2_picture`; an MPEG-1 picture (no coding extension) is a
/// progressive frame picture with frame DCT and its f_codes in both components.
pub fn picture_control(
    picture: &ParsedPicture,
    forward: Option<u64>,
    backward: Option<u64>,
) -> bindings::v4l2_ctrl_mpeg2_picture {
    let flag = |on: bool, bit: u32| if on { bit } else { 0 };
    let h = &picture.header;
    let mut c = bindings::v4l2_ctrl_mpeg2_picture {
        forward_ref_ts: forward.unwrap_or(NO_REFERENCE),
        backward_ref_ts: backward.unwrap_or(NO_REFERENCE),
        picture_coding_type: h.picture_coding_type as u8,
        ..Default::default()
    };
    match &picture.coding_extension {
        Some(e) => {
            c.f_code = e.f_code;
            c.picture_structure = e.picture_structure;
            c.intra_dc_precision = e.intra_dc_precision;
            c.flags = flag(
                e.top_field_first,
                bindings::V4L2_MPEG2_PIC_FLAG_TOP_FIELD_FIRST,
            ) | flag(
                e.frame_pred_frame_dct,
                bindings::V4L2_MPEG2_PIC_FLAG_FRAME_PRED_DCT,
            ) | flag(
                e.concealment_motion_vectors,
                bindings::V4L2_MPEG2_PIC_FLAG_CONCEALMENT_MV,
            ) | flag(e.q_scale_type, bindings::V4L2_MPEG2_PIC_FLAG_Q_SCALE_TYPE)
                | flag(e.intra_vlc_format, bindings::V4L2_MPEG2_PIC_FLAG_INTRA_VLC)
                | flag(e.alternate_scan, bindings::V4L2_MPEG2_PIC_FLAG_ALT_SCAN)
                | flag(
                    e.repeat_first_field,
                    bindings::V4L2_MPEG2_PIC_FLAG_REPEAT_FIRST,
                )
                | flag(
                    e.progressive_frame,
                    bindings::V4L2_MPEG2_PIC_FLAG_PROGRESSIVE,
                );
        }
        None => {
            c.f_code = [
                [h.forward_f_code, h.forward_f_code],
                [h.backward_f_code, h.backward_f_code],
            ];
            c.picture_structure = bindings::V4L2_MPEG2_PIC_FRAME as u8;
            c.flags = bindings::V4L2_MPEG2_PIC_FLAG_FRAME_PRED_DCT
                | bindings::V4L2_MPEG2_PIC_FLAG_PROGRESSIVE;
        }
    }
    c
}

/// `v4l2_ctrl_mpeg2_picture` of a frame's second field: its own header and coding
/// extension, the frame's references.
pub fn second_field_control(
    frame: &ParsedPicture,
    second: &SecondField,
    forward: Option<u64>,
    backward: Option<u64>,
) -> bindings::v4l2_ctrl_mpeg2_picture {
    let field = ParsedPicture {
        header: second.header.clone(),
        coding_extension: Some(second.coding_extension.clone()),
        slices: second.slices.clone(),
        second_field: None,
        first_field_quantisation: None,
        ..frame.clone()
    };
    picture_control(&field, forward, backward)
}

/// Fills `v4l2_ctrl_mpeg2_quantisation` with the matrices in effect (zig-zag order).
pub fn quantisation_control(parser: &Mpeg2Parser) -> bindings::v4l2_ctrl_mpeg2_quantisation {
    let q = parser.quant_matrices();
    bindings::v4l2_ctrl_mpeg2_quantisation {
        intra_quantiser_matrix: q.intra_quantiser_matrix,
        non_intra_quantiser_matrix: q.non_intra_quantiser_matrix,
        chroma_intra_quantiser_matrix: q.chroma_intra_quantiser_matrix,
        chroma_non_intra_quantiser_matrix: q.chroma_non_intra_quantiser_matrix,
    }
}
