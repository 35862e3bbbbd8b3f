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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_bits::BitWriter;

    fn escape(nal: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut zeros = 0;
        for &b in nal {
            if zeros >= 2 && b <= 3 {
                out.push(3);
                zeros = 0;
            }
            zeros = if b == 0 { zeros + 1 } else { 0 };
            out.push(b);
        }
        out
    }

    fn nal(header: u8, w: &mut BitWriter) -> Vec<u8> {
        w.flag(true); // rbsp_stop_one_bit
        let mut bytes = vec![header];
        bytes.extend(w.bytes());
        escape(&bytes)
    }

    fn baseline_sets() -> ParameterSets {
        let mut sets = ParameterSets::default();
        let mut sps = BitWriter::default();
        sps.put(8, 66)
            .put(8, 0)
            .put(8, 30)
            .ue(0)
            .ue(12)
            .ue(2)
            .ue(1)
            .flag(false);
        sps.ue(10)
            .ue(8)
            .flag(true)
            .flag(true)
            .flag(false)
            .flag(false);
        let parsed = sets.parse_nal(&nal(0x67, &mut sps)).unwrap();
        assert!(matches!(parsed, ParsedNal::Sps(ref s) if s.max_frame_num() == 1 << 16));
        let mut pps = BitWriter::default();
        pps.ue(0)
            .ue(0)
            .flag(false)
            .flag(false)
            .ue(0)
            .ue(0)
            .ue(0)
            .flag(false)
            .put(2, 0);
        pps.se(0).se(0).se(0).flag(true).flag(false).flag(false);
        sets.parse_nal(&nal(0x68, &mut pps)).unwrap();
        sets
    }

    #[test]
    fn slice_header_sizes_count_emulation_prevention_bytes() {
        let mut sets = baseline_sets();
        let mut w = BitWriter::default();
        // first_mb 0, slice_type 7 (I), pps 0, frame_num 0 (16 zero bits), then
        // idr_pic_id 65535 (16 more zeros): forces `00 00 03` into the header.
        w.ue(0).ue(7).ue(0).put(16, 0).ue(65535);
        w.flag(false).flag(false); // no_output_of_prior_pics, long_term_reference
        w.se(0).ue(1); // slice_qp_delta, disable_deblocking_filter_idc
        w.put(8, 0xa5); // slice data
        let escaped = nal(0x65, &mut w);
        let epbs = escaped.len() - (w.bytes().len() + 1);
        assert!(
            epbs >= 1,
            "test stream must contain an emulation prevention byte"
        );
        let ParsedNal::Slice(s) = sets.parse_nal(&escaped).unwrap() else {
            panic!("not a slice");
        };
        assert_eq!(s.idr_pic_id, 65535);
        assert_eq!(s.slice_header_bits, 1 + 7 + 1 + 16 + 33 + 2 + 1 + 3);
        assert_eq!(s.header_bit_size, 8 + s.slice_header_bits);
        assert_eq!(s.header_emulation_prevention_bytes as usize, epbs);
        assert_eq!(
            s.slice_header_bits_escaped,
            s.slice_header_bits + 8 * epbs as u32
        );
        assert_eq!(s.dec_ref_pic_marking_bit_size, 2);
        assert_eq!(s.pic_order_cnt_bit_size, 0);
    }

    #[test]
    fn slice_errors_name_missing_parameter_sets() {
        let mut sets = ParameterSets::default();
        let mut w = BitWriter::default();
        w.ue(0).ue(7).ue(5);
        assert_eq!(
            sets.parse_nal(&nal(0x65, &mut w)),
            Err(H264Error::MissingPps(5))
        );
        let mut pps = BitWriter::default();
        pps.ue(1).ue(3);
        assert_eq!(
            sets.parse_nal(&nal(0x68, &mut pps)),
            Err(H264Error::MissingSps {
                pps_id: 1,
                sps_id: 3
            })
        );
        assert_eq!(sets.parse_nal(&[0x80]), Err(H264Error::ForbiddenZeroBit));
        assert_eq!(sets.parse_nal(&[]), Err(H264Error::EmptyNal));
    }

    #[test]
    fn mmco_and_modification_loops_are_bounded() {
        let mut sets = baseline_sets();
        // P slice with 40 ref list modifications for a 1-entry list.
        let mut w = BitWriter::default();
        w.ue(0).ue(5).ue(0).put(16, 1).flag(false).flag(true);
        for _ in 0..40 {
            w.ue(0).ue(0);
        }
        w.ue(3);
        assert_eq!(
            sets.parse_nal(&nal(0x41, &mut w)),
            Err(H264Error::TooManyEntries("ref_pic_list_modification"))
        );
    }

    #[test]
    fn more_rbsp_data_finds_the_stop_bit() {
        assert!(!more_rbsp_data(&[0x80], 0));
        assert!(more_rbsp_data(&[0x40], 0));
        assert!(!more_rbsp_data(&[0x40], 1));
        assert!(more_rbsp_data(&[0xff, 0x80, 0, 0], 7));
        assert!(!more_rbsp_data(&[0xff, 0x80, 0, 0], 8));
        assert!(!more_rbsp_data(&[0, 0], 0));
    }
}
