// SPDX-License-Identifier: MPL-2.0
//! H.264 (ISO/IEC 14496-10) high-level syntax: NAL unit header, SPS (with VUI and FRExt
//! scaling lists), PPS, slice header (with the bit sizes V4L2 wants), SEI framing and a
//! picture-order-count calculator. Field names follow the specification so they map
//! one-to-one onto `v4l2_ctrl_h264_*`.

mod error;
mod nal;
mod poc;
mod pps;
mod scaling;
mod sei;
mod slice;
mod sps;

pub use error::H264Error;
pub use nal::{NalHeader, NalUnitType, parse_access_unit_delimiter};
pub use poc::{PicOrderCnt, PocCalculator, PocInput};
pub use pps::Pps;
pub use scaling::{ScalingLists, raster_from_zigzag_4x4, raster_from_zigzag_8x8};
pub use sei::{SeiMessage, parse_sei_messages};
pub use slice::{
    DecRefPicMarking, MemoryManagementOperation, PredWeightTable, RefPicListModification,
    SliceHeader, SliceType,
};
pub use sps::{HrdParameters, Sps, VuiParameters};

use crate::annexb::Rbsp;

/// Parameter sets seen so far, so slices (and PPSs) can be resolved.
#[derive(Debug, Clone, Default)]
pub struct ParameterSets {
    sps: Vec<Option<Sps>>,
    pps: Vec<Option<Pps>>,
}

/// One parsed NAL unit.
#[derive(Debug, Clone, PartialEq)]
pub enum ParsedNal {
    Sps(Box<Sps>),
    Pps(Box<Pps>),
    Slice(Box<SliceHeader>),
    Sei(Vec<SeiMessage>),
    AccessUnitDelimiter {
        primary_pic_type: u8,
    },
    EndOfSequence,
    EndOfStream,
    /// A NAL unit type this parser does not interpret (filler, SPS extension, SVC/MVC, …).
    Other(NalUnitType),
}

impl ParameterSets {
    pub fn sps(&self, id: u32) -> Option<&Sps> {
        self.sps.get(id as usize)?.as_ref()
    }

    pub fn pps(&self, id: u32) -> Option<&Pps> {
        self.pps.get(id as usize)?.as_ref()
    }

    pub fn insert_sps(&mut self, sps: Sps) {
        let id = usize::from(sps.seq_parameter_set_id);
        if self.sps.len() <= id {
            self.sps.resize(id + 1, None);
        }
        self.sps[id] = Some(sps);
    }

    pub fn insert_pps(&mut self, pps: Pps) {
        let id = usize::from(pps.pic_parameter_set_id);
        if self.pps.len() <= id {
            self.pps.resize(id + 1, None);
        }
        self.pps[id] = Some(pps);
    }

    /// Parses one escaped NAL unit (NAL header included, no start code), remembering
    /// parameter sets for later slices.
    pub fn parse_nal(&mut self, escaped: &[u8]) -> Result<ParsedNal, H264Error> {
        let header = NalHeader::parse(escaped)?;
        let rbsp = Rbsp::unescape(escaped);
        let payload = rbsp.data.get(header.header_bytes..).unwrap_or(&[]);
        Ok(match header.nal_unit_type {
            NalUnitType::Sps => {
                let sps = Sps::parse(payload)?;
                self.insert_sps(sps.clone());
                ParsedNal::Sps(Box::new(sps))
            }
            NalUnitType::Pps => {
                let pps = Pps::parse(payload, self)?;
                self.insert_pps(pps.clone());
                ParsedNal::Pps(Box::new(pps))
            }
            NalUnitType::Slice | NalUnitType::IdrSlice => {
                ParsedNal::Slice(Box::new(SliceHeader::parse(&header, &rbsp, self)?))
            }
            NalUnitType::Sei => ParsedNal::Sei(parse_sei_messages(payload)?),
            NalUnitType::AccessUnitDelimiter => ParsedNal::AccessUnitDelimiter {
                primary_pic_type: parse_access_unit_delimiter(payload)?,
            },
            NalUnitType::EndOfSequence => ParsedNal::EndOfSequence,
            NalUnitType::EndOfStream => ParsedNal::EndOfStream,
            other => ParsedNal::Other(other),
        })
    }
}

/// `more_rbsp_data()`: is there syntax left before the `rbsp_stop_one_bit`?
pub(crate) fn more_rbsp_data(rbsp: &[u8], bit_pos: usize) -> bool {
    let Some(last) = rbsp.iter().rposition(|&b| b != 0) else {
        return false;
    };
    let stop_bit = last * 8 + 7 - rbsp[last].trailing_zeros() as usize;
    bit_pos < stop_bit
}
