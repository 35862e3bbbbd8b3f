// SPDX-License-Identifier: MPL-2.0
//! MPEG-2 video (ISO/IEC 13818-2) headers: sequence header and extensions, GOP,
//! picture header and coding extension, quant matrix extension and slice headers.
//! [`Mpeg2Parser`] keeps the sequence state slices need and the quantiser matrices in
//! effect, so `v4l2_ctrl_mpeg2_sequence/picture/quantisation` can be filled directly.

mod headers;
mod quant;

pub use headers::{
    GroupOfPictures, PictureCodingExtension, PictureCodingType, PictureHeader,
    QuantMatrixExtension, SequenceDisplayExtension, SequenceExtension, SequenceHeader, SliceHeader,
};
pub use quant::{DEFAULT_INTRA_MATRIX, QuantMatrices};

use thiserror::Error;

use crate::annexb::StartCodeUnits;
use crate::bitreader::OutOfData;

/// Start code values (Table 6-1).
pub mod start_code {
    pub const PICTURE: u8 = 0x00;
    pub const SLICE_FIRST: u8 = 0x01;
    pub const SLICE_LAST: u8 = 0xaf;
    pub const USER_DATA: u8 = 0xb2;
    pub const SEQUENCE_HEADER: u8 = 0xb3;
    pub const SEQUENCE_ERROR: u8 = 0xb4;
    pub const EXTENSION: u8 = 0xb5;
    pub const SEQUENCE_END: u8 = 0xb7;
    pub const GROUP: u8 = 0xb8;
}

/// `extension_start_code_identifier` values (Table 6-2).
pub mod extension_id {
    pub const SEQUENCE: u8 = 1;
    pub const SEQUENCE_DISPLAY: u8 = 2;
    pub const QUANT_MATRIX: u8 = 3;
    pub const PICTURE_CODING: u8 = 8;
}

/// Why an MPEG-2 unit could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Mpeg2Error {
    #[error(transparent)]
    OutOfData(#[from] OutOfData),
    #[error("empty start code unit")]
    EmptyUnit,
    #[error("marker bit not set after {0}")]
    MarkerBit(&'static str),
    #[error("{field} = {value} is invalid")]
    Invalid { field: &'static str, value: u32 },
    #[error("slice before any sequence header")]
    SliceWithoutSequence,
}

/// One parsed start-code unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mpeg2Unit {
    SequenceHeader(SequenceHeader),
    SequenceExtension(SequenceExtension),
    SequenceDisplayExtension(SequenceDisplayExtension),
    QuantMatrixExtension(QuantMatrixExtension),
    PictureCodingExtension(PictureCodingExtension),
    /// Extensions the decoder does not need (copyright, scalability, picture display).
    OtherExtension(u8),
    GroupOfPictures(GroupOfPictures),
    Picture(PictureHeader),
    Slice(SliceHeader),
    UserData,
    SequenceEnd,
    /// Reserved, sequence_error or system start codes.
    Other(u8),
}

/// Stateful MPEG-2 header parser: feed every unit of the stream in order.
#[derive(Debug, Clone, Default)]
pub struct Mpeg2Parser {
    sequence: Option<SequenceHeader>,
    sequence_extension: Option<SequenceExtension>,
    quant: QuantMatrices,
}

impl Mpeg2Parser {
    pub fn new() -> Self {
        Self::default()
    }

    /// The last sequence header.
    pub fn sequence(&self) -> Option<&SequenceHeader> {
        self.sequence.as_ref()
    }

    /// The last sequence extension (absent in MPEG-1 streams).
    pub fn sequence_extension(&self) -> Option<&SequenceExtension> {
        self.sequence_extension.as_ref()
    }

    /// Quantiser matrices in effect (`v4l2_ctrl_mpeg2_quantisation`, zig-zag order).
    pub fn quant_matrices(&self) -> &QuantMatrices {
        &self.quant
    }

    /// Full `vertical_size` (with the sequence extension's high bits).
    pub fn vertical_size(&self) -> Option<u32> {
        let seq = self.sequence.as_ref()?;
        Some(seq.vertical_size(self.sequence_extension.as_ref()))
    }

    /// Parses one unit: `unit[0]` is the start code value (the byte after `00 00 01`).
    pub fn parse_unit(&mut self, unit: &[u8]) -> Result<Mpeg2Unit, Mpeg2Error> {
        let code = *unit.first().ok_or(Mpeg2Error::EmptyUnit)?;
        let body = &unit[1..];
        Ok(match code {
            start_code::PICTURE => Mpeg2Unit::Picture(PictureHeader::parse(body)?),
            start_code::SLICE_FIRST..=start_code::SLICE_LAST => {
                let vertical_size = self
                    .vertical_size()
                    .ok_or(Mpeg2Error::SliceWithoutSequence)?;
                Mpeg2Unit::Slice(SliceHeader::parse(code, body, vertical_size)?)
            }
            start_code::USER_DATA => Mpeg2Unit::UserData,
            start_code::SEQUENCE_HEADER => {
                let seq = SequenceHeader::parse(body)?;
                self.quant.apply_sequence_header(&seq);
                // A new sequence header without extension means MPEG-1 until one follows.
                self.sequence_extension = None;
                self.sequence = Some(seq.clone());
                Mpeg2Unit::SequenceHeader(seq)
            }
            start_code::EXTENSION => self.parse_extension(body)?,
            start_code::SEQUENCE_END => Mpeg2Unit::SequenceEnd,
            start_code::GROUP => Mpeg2Unit::GroupOfPictures(GroupOfPictures::parse(body)?),
            other => Mpeg2Unit::Other(other),
        })
    }

    fn parse_extension(&mut self, body: &[u8]) -> Result<Mpeg2Unit, Mpeg2Error> {
        let id = body.first().ok_or(OutOfData {
            field: "extension_start_code_identifier",
            bit_pos: 0,
            bit_len: 0,
        })? >> 4;
        Ok(match id {
            extension_id::SEQUENCE => {
                let ext = SequenceExtension::parse(body)?;
                self.sequence_extension = Some(ext.clone());
                Mpeg2Unit::SequenceExtension(ext)
            }
            extension_id::SEQUENCE_DISPLAY => {
                Mpeg2Unit::SequenceDisplayExtension(SequenceDisplayExtension::parse(body)?)
            }
            extension_id::QUANT_MATRIX => {
                let ext = QuantMatrixExtension::parse(body)?;
                self.quant.apply_extension(&ext);
                Mpeg2Unit::QuantMatrixExtension(ext)
            }
            extension_id::PICTURE_CODING => {
                Mpeg2Unit::PictureCodingExtension(PictureCodingExtension::parse(body)?)
            }
            other => Mpeg2Unit::OtherExtension(other),
        })
    }
}

/// Splits an MPEG-2 elementary stream into start-code units (start code value first).
pub fn units(data: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    StartCodeUnits::keeping_trailing_zeros(data).map(|u| (u.prefix_offset, u.data))
}
