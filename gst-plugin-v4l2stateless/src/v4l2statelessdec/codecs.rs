// SPDX-License-Identifier: MPL-2.0
//! The state machine of each codec behind one interface for the element.

use mediapass_codecparsers::fwht::{FwhtHeader, PixelEncoding};
use mediapass_codecparsers::mpeg2::PictureCodingType;
use v4l2r::bindings;

use crate::codec::Codec;
use crate::stateless::backend::{Backend, Control, DecodeError, Outcome};
use crate::stateless::fwht::FwhtDecoder;
use crate::stateless::h264::{DecodeMode, H264Decoder};
use crate::stateless::mpeg2::{self, Mpeg2Decoder};
use crate::stateless::vp8::Vp8Decoder;
use crate::stateless::vp9::Vp9Decoder;

/// Coded size and the sequence-level control to set before the CAPTURE format.
pub struct Sequence {
    pub width: u32,
    pub height: u32,
    /// Sequence-level control to set before the CAPTURE format (none for FWHT, whose
    /// only control is per frame).
    pub control: Option<Control>,
    /// The driver does not derive the CAPTURE size from the OUTPUT format: set it.
    pub capture_size_from_stream: bool,
    /// 8-bit 4:2:0 (the only layout the element outputs so far).
    pub is_8bit_420: bool,
    /// Interlaced content (frames carry two fields).
    pub interlaced: bool,
}

pub enum CodecState {
    Mpeg2(Box<Mpeg2Decoder>),
    Vp8(Box<Vp8Decoder>),
    Vp9(Box<Vp9Decoder>),
    Fwht(FwhtDecoder),
    H264(Box<H264Decoder>),
}

impl CodecState {
    /// `has_control`: asks the driver whether an optional control exists;
    /// `control_value`: the current value of a menu control.
    pub fn new(
        codec: Codec,
        has_control: impl Fn(u32) -> bool,
        control_value: impl Fn(u32) -> Option<i32>,
    ) -> Option<Self> {
        match codec {
            Codec::Mpeg2 => Some(CodecState::Mpeg2(Box::new(Mpeg2Decoder::new()))),
            Codec::Vp8 => Some(CodecState::Vp8(Box::new(Vp8Decoder::new()))),
            Codec::Vp9 => Some(CodecState::Vp9(Box::new(Vp9Decoder::new(has_control(
                bindings::V4L2_CID_STATELESS_VP9_COMPRESSED_HDR,
            ))))),
            Codec::Fwht => Some(CodecState::Fwht(FwhtDecoder::new())),
            Codec::H264 => Some(CodecState::H264(Box::new(H264Decoder::new(h264_mode(
                control_value,
            ))))),
        }
    }

    /// Whether `data` starts a new sequence that can be decoded on its own.
    pub fn sequence(&self, data: &[u8]) -> Result<Sequence, String> {
        match self {
            CodecState::Mpeg2(d) => {
                let (picture, seq) = d.peek(data)?;
                if picture.header.picture_coding_type != PictureCodingType::I {
                    return Err("MPEG-2 stream does not start with an I picture".into());
                }
                Ok(Sequence {
                    width: seq.horizontal_size.into(),
                    height: seq.vertical_size.into(),
                    is_8bit_420: seq.chroma_format == 1,
                    interlaced: u32::from(seq.flags) & bindings::V4L2_MPEG2_SEQ_FLAG_PROGRESSIVE
                        == 0,
                    control: Some(Control::Mpeg2Sequence(Box::new(seq))),
                    capture_size_from_stream: false,
                })
            }
            CodecState::Vp8(d) => {
                let control = d.peek(data)?;
                let Control::Vp8Frame(f) = &control else {
                    unreachable!("VP8 peek gives VP8_FRAME")
                };
                if f.flags & u64::from(bindings::V4L2_VP8_FRAME_FLAG_KEY_FRAME) == 0 {
                    return Err("VP8 stream does not start with a key frame".into());
                }
                Ok(Sequence {
                    width: f.width.into(),
                    height: f.height.into(),
                    control: Some(control),
                    capture_size_from_stream: false,
                    is_8bit_420: true,
                    interlaced: false,
                })
            }
            CodecState::Vp9(d) => {
                let (control, info) = d.peek(data)?;
                Ok(Sequence {
                    width: info.width,
                    height: info.height,
                    control: Some(control),
                    capture_size_from_stream: false,
                    is_8bit_420: info.bit_depth == 8 && info.subsampling_x && info.subsampling_y,
                    interlaced: false,
                })
            }
            CodecState::H264(d) => {
                let info = d.peek(data)?;
                Ok(Sequence {
                    width: info.width,
                    height: info.height,
                    control: Some(info.control),
                    capture_size_from_stream: false,
                    is_8bit_420: info.is_8bit_420,
                    interlaced: false,
                })
            }
            CodecState::Fwht(d) => {
                let (header, _) = d.peek(data)?;
                if !header.is_i_frame() {
                    return Err("FWHT stream does not start with an I-frame".into());
                }
                Ok(Sequence {
                    width: header.width,
                    height: header.height,
                    control: None,
                    capture_size_from_stream: true,
                    is_8bit_420: header.components_num() == 3
                        && header.pixel_encoding() == Some(PixelEncoding::Yuv)
                        && header.chroma_divisors() == (2, 2),
                    interlaced: false,
                })
            }
        }
    }

    /// The visible size when it is smaller than the coded size and starts at the top
    /// left (H.264 cropping of the right and bottom edges, the usual case).
    pub fn display_size(&self, data: &[u8]) -> Option<(u32, u32)> {
        match self {
            CodecState::H264(d) => {
                let info = d.peek(data).ok()?;
                let (x, y, width, height) = info.crop;
                (x == 0 && y == 0 && width > 0 && height > 0).then_some((width, height))
            }
            _ => None,
        }
    }

    /// Whether this chunk starts with a key frame (a new sequence may start here).
    pub fn is_key_frame(data: &[u8], codec: Codec) -> bool {
        match codec {
            Codec::Mpeg2 => mpeg2::is_intra_picture(data),
            // Frame tag bit 0 clear.
            Codec::Vp8 => data.first().is_some_and(|b| b & 1 == 0),
            // frame_marker(2) profile_low(1) profile_high(1) [reserved] show_existing(1)
            // frame_type(1): a key frame has frame_type 0 and no show_existing_frame.
            Codec::Vp9 => {
                let Some(&b) = data.first() else { return false };
                let profile = ((b >> 5) & 1) | (((b >> 4) & 1) << 1);
                let shift = if profile == 3 { 1 } else { 0 };
                let show_existing = (b >> (3 - shift)) & 1;
                let frame_type = (b >> (2 - shift)) & 1;
                b >> 6 == 0b10 && show_existing == 0 && frame_type == 0
            }
            Codec::Fwht => FwhtHeader::parse(data).is_ok_and(|(h, _)| h.is_i_frame()),
            Codec::H264 => H264Decoder::is_idr(data),
        }
    }

    pub fn decode<B: Backend>(
        &mut self,
        data: &[u8],
        timestamp: u64,
        backend: &mut B,
    ) -> Result<Outcome, DecodeError<B::Error>> {
        match self {
            CodecState::Mpeg2(d) => d.decode(data, timestamp, backend),
            CodecState::Vp8(d) => d.decode(data, timestamp, backend),
            CodecState::Vp9(d) => d.decode(data, timestamp, backend),
            CodecState::Fwht(d) => d.decode(data, timestamp, backend),
            CodecState::H264(d) => {
                let decoded = d.decode(data, timestamp, backend)?;
                let mut discard = decoded.dropped;
                if !decoded.decoded_picture {
                    discard.push(timestamp);
                }
                Ok(Outcome {
                    show: decoded.output.into_iter().map(|t| (t, t)).collect(),
                    discard,
                })
            }
        }
    }

    /// Pictures decoded but still waiting for output, in presentation order, as
    /// (input frame timestamp, picture timestamp): at EOS or before a new sequence.
    pub fn drain(&mut self) -> Vec<(u64, u64)> {
        match self {
            CodecState::Mpeg2(d) => d.drain(),
            CodecState::Vp8(d) => d.drain(),
            CodecState::Vp9(d) => d.drain(),
            CodecState::Fwht(d) => d.drain(),
            CodecState::H264(d) => d.drain().into_iter().map(|t| (t, t)).collect(),
        }
    }

    /// Stream headers from the caps (`codec_data`), for codecs that take them.
    pub fn codec_data(&mut self, data: &[u8]) -> Result<(), String> {
        match self {
            CodecState::Mpeg2(d) => d.parse_codec_data(data),
            _ => Ok(()),
        }
    }

    /// Forgets references and pictures waiting for output (flush/seek).
    pub fn reset(&mut self) {
        match self {
            CodecState::Mpeg2(d) => d.reset(),
            CodecState::Vp8(d) => d.reset(),
            CodecState::Vp9(d) => d.reset(),
            CodecState::Fwht(d) => d.reset(),
            CodecState::H264(d) => d.reset(),
        }
    }

    /// Pictures the codec may keep as references at once.
    pub fn max_references(&self) -> u32 {
        match self {
            // Forward and backward; the picture waiting for output is the backward one.
            CodecState::Mpeg2(_) => 2,
            CodecState::Vp8(_) => 3,
            CodecState::Vp9(_) => 8,
            CodecState::Fwht(_) => 1,
            // The largest DPB, plus the picture being decoded.
            CodecState::H264(_) => 17,
        }
    }
}

/// The decode mode and start code the driver currently selects: its defaults, which is
/// also what GStreamer's v4l2codecs uses (it reads them and never sets them).
fn h264_mode(control_value: impl Fn(u32) -> Option<i32>) -> DecodeMode {
    let slice_based = control_value(bindings::V4L2_CID_STATELESS_H264_DECODE_MODE)
        .is_none_or(|v| {
            v as u32
                == bindings::v4l2_stateless_h264_decode_mode_V4L2_STATELESS_H264_DECODE_MODE_SLICE_BASED
        });
    let annex_b = control_value(bindings::V4L2_CID_STATELESS_H264_START_CODE).is_some_and(|v| {
        v as u32 == bindings::v4l2_stateless_h264_start_code_V4L2_STATELESS_H264_START_CODE_ANNEX_B
    });
    DecodeMode {
        slice_based,
        annex_b,
    }
}
