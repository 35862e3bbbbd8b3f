// SPDX-License-Identifier: MPL-2.0
//! MPEG-2 (and MPEG-1) video: one input buffer holds one picture (as `mpegvideoparse`
//! outputs it), decoded with one request carrying `V4L2_CID_STATELESS_MPEG2_SEQUENCE`,
//! `_PICTURE` and `_QUANTISATION`; the OUTPUT buffer holds the picture's slices with
//! their start codes. References are the two latest I/P pictures (forward = older,
//! backward = newer), named by timestamp.
//!
//! Output order: a B picture is shown at once; an I/P picture waits until the next I/P
//! picture is decoded (or the drain), since the B pictures between them come first.

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
        if picture
            .coding_extension
            .as_ref()
            .is_some_and(PictureCodingExtension::is_field_picture)
        {
            return Err(DecodeError::Bitstream(
                "MPEG-2 field pictures are not supported yet".into(),
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
        let controls = vec![
            Control::Mpeg2Sequence(Box::new(sequence_control(
                &picture.sequence,
                picture.sequence_extension.as_ref(),
            ))),
            Control::Mpeg2Picture(Box::new(picture_control(&picture, forward, backward))),
            Control::Mpeg2Quantisation(Box::new(quantisation_control(&parser))),
        ];
        backend
            .decode(DecodeJob::picture(
                timestamp,
                &data[picture.slices.clone()],
                controls,
            ))
            .map_err(DecodeError::Backend)?;
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

/// Parses every unit of one buffer; it must hold exactly one picture with slices.
pub fn parse_picture(parser: &mut Mpeg2Parser, data: &[u8]) -> Result<ParsedPicture, String> {
    let mut gop = None;
    let mut header = None;
    let mut coding_extension = None;
    let mut slices: Option<Range<usize>> = None;
    for (prefix_offset, unit) in mpeg2::units(data) {
        let parsed = parser.parse_unit(unit).map_err(|e| e.to_string())?;
        if slices.is_some() && !matches!(parsed, Mpeg2Unit::Slice(_)) {
            if matches!(parsed, Mpeg2Unit::Picture(_)) {
                return Err(
                    "more than one MPEG-2 picture in a buffer (not parsed by mpegvideoparse?)"
                        .into(),
                );
            }
            continue;
        }
        match parsed {
            Mpeg2Unit::GroupOfPictures(g) => gop = Some(g),
            Mpeg2Unit::Picture(h) => header = Some(h),
            Mpeg2Unit::PictureCodingExtension(e) => coding_extension = Some(e),
            Mpeg2Unit::Slice(_) => {
                if header.is_none() {
                    return Err("MPEG-2 slice before a picture header".into());
                }
                let end = offset_in(data, unit) + unit.len();
                slices = Some(slices.map_or(prefix_offset..end, |s| s.start..end));
            }
            _ => {}
        }
    }
    let header = header.ok_or("no MPEG-2 picture header in the buffer")?;
    let slices = slices.ok_or("MPEG-2 picture without slices")?;
    let sequence = parser
        .sequence()
        .cloned()
        .ok_or("MPEG-2 picture before any sequence header")?;
    let sequence_extension = parser.sequence_extension().cloned();
    if sequence_extension.is_some() && coding_extension.is_none() {
        return Err("MPEG-2 picture without picture coding extension".into());
    }
    Ok(ParsedPicture {
        sequence,
        sequence_extension,
        gop,
        header,
        coding_extension,
        slices,
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
