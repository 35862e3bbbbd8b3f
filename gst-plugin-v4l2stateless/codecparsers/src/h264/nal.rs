// SPDX-License-Identifier: MPL-2.0
use super::H264Error;
use crate::bitreader::BitReader;

/// `nal_unit_type` (Table 7-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NalUnitType {
    Unspecified(u8),
    Slice,
    SliceDataPartitionA,
    SliceDataPartitionB,
    SliceDataPartitionC,
    IdrSlice,
    Sei,
    Sps,
    Pps,
    AccessUnitDelimiter,
    EndOfSequence,
    EndOfStream,
    FillerData,
    SpsExtension,
    PrefixNal,
    SubsetSps,
    DepthParameterSet,
    AuxiliarySlice,
    SliceExtension,
    SliceExtensionDepth,
    Reserved(u8),
}

impl NalUnitType {
    pub fn from_u8(value: u8) -> Self {
        match value {
            1 => Self::Slice,
            2 => Self::SliceDataPartitionA,
            3 => Self::SliceDataPartitionB,
            4 => Self::SliceDataPartitionC,
            5 => Self::IdrSlice,
            6 => Self::Sei,
            7 => Self::Sps,
            8 => Self::Pps,
            9 => Self::AccessUnitDelimiter,
            10 => Self::EndOfSequence,
            11 => Self::EndOfStream,
            12 => Self::FillerData,
            13 => Self::SpsExtension,
            14 => Self::PrefixNal,
            15 => Self::SubsetSps,
            16 => Self::DepthParameterSet,
            19 => Self::AuxiliarySlice,
            20 => Self::SliceExtension,
            21 => Self::SliceExtensionDepth,
            0 | 24..=31 => Self::Unspecified(value),
            _ => Self::Reserved(value),
        }
    }
}

/// `nal_unit()` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NalHeader {
    pub nal_ref_idc: u8,
    pub nal_unit_type: NalUnitType,
    /// Raw `nal_unit_type` value.
    pub nal_unit_type_value: u8,
    /// 1, or 4 for the SVC/MVC/3D extension types 14, 20 and 21.
    pub header_bytes: usize,
}

impl NalHeader {
    /// Parses the header from the start of an escaped NAL unit.
    pub fn parse(nal: &[u8]) -> Result<Self, H264Error> {
        let first = *nal.first().ok_or(H264Error::EmptyNal)?;
        if first & 0x80 != 0 {
            return Err(H264Error::ForbiddenZeroBit);
        }
        let value = first & 0x1f;
        Ok(Self {
            nal_ref_idc: (first >> 5) & 0x3,
            nal_unit_type: NalUnitType::from_u8(value),
            nal_unit_type_value: value,
            header_bytes: if matches!(value, 14 | 20 | 21) { 4 } else { 1 },
        })
    }

    pub fn is_idr(&self) -> bool {
        self.nal_unit_type == NalUnitType::IdrSlice
    }
}

/// `access_unit_delimiter_rbsp()`: returns `primary_pic_type`.
pub fn parse_access_unit_delimiter(rbsp: &[u8]) -> Result<u8, H264Error> {
    Ok(BitReader::new(rbsp).bits_u8(3, "primary_pic_type")?)
}
