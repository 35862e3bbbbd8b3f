// SPDX-License-Identifier: MPL-2.0
//! `slice_header()` (7.3.3) with `ref_pic_list_modification()`, `pred_weight_table()`
//! and `dec_ref_pic_marking()`, plus the bit sizes `v4l2_ctrl_h264_slice_params` and
//! `v4l2_ctrl_h264_decode_params` carry.

use super::error::{se_range, ue_max};
use super::{H264Error, NalHeader, ParameterSets, Pps, Sps};
use crate::annexb::Rbsp;
use crate::bitreader::BitReader;

/// `slice_type % 5`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SliceType {
    P,
    B,
    I,
    Sp,
    Si,
}

impl SliceType {
    fn from_raw(raw: u32) -> Self {
        match raw % 5 {
            0 => Self::P,
            1 => Self::B,
            2 => Self::I,
            3 => Self::Sp,
            _ => Self::Si,
        }
    }

    /// The value V4L2 expects in `v4l2_ctrl_h264_slice_params.slice_type` (0..4).
    pub fn as_v4l2(self) -> u8 {
        match self {
            Self::P => 0,
            Self::B => 1,
            Self::I => 2,
            Self::Sp => 3,
            Self::Si => 4,
        }
    }

    pub fn is_intra(self) -> bool {
        matches!(self, Self::I | Self::Si)
    }
}

/// One `modification_of_pic_nums_idc` operation with its argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefPicListModification {
    pub modification_of_pic_nums_idc: u8,
    /// `abs_diff_pic_num_minus1` (idc 0, 1) or `long_term_pic_num` (idc 2).
    pub value: u32,
}

/// `pred_weight_table()` with the defaults of 7.4.3.2 filled in for absent entries,
/// laid out like `v4l2_h264_pred_weight_table`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PredWeightTable {
    pub luma_log2_weight_denom: u8,
    pub chroma_log2_weight_denom: u8,
    /// Per list: luma weight / offset per reference index.
    pub luma_weight: [[i16; 32]; 2],
    pub luma_offset: [[i16; 32]; 2],
    /// Per list: [Cb, Cr] weight / offset per reference index.
    pub chroma_weight: [[[i16; 2]; 32]; 2],
    pub chroma_offset: [[[i16; 2]; 32]; 2],
    /// `luma_weight_lX_flag` / `chroma_weight_lX_flag` per list and index.
    pub luma_weight_flag: [[bool; 32]; 2],
    pub chroma_weight_flag: [[bool; 32]; 2],
}

/// One `memory_management_control_operation` with its arguments.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryManagementOperation {
    pub memory_management_control_operation: u8,
    pub difference_of_pic_nums_minus1: u32,
    pub long_term_pic_num: u32,
    pub long_term_frame_idx: u32,
    pub max_long_term_frame_idx_plus1: u32,
}

/// `dec_ref_pic_marking()`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecRefPicMarking {
    pub no_output_of_prior_pics_flag: bool,
    pub long_term_reference_flag: bool,
    pub adaptive_ref_pic_marking_mode_flag: bool,
    pub operations: Vec<MemoryManagementOperation>,
}

impl DecRefPicMarking {
    /// Whether the picture carries `memory_management_control_operation == 5`.
    pub fn has_mmco5(&self) -> bool {
        self.operations
            .iter()
            .any(|op| op.memory_management_control_operation == 5)
    }
}

/// A parsed slice header, with the bit sizes V4L2 wants in the domain GStreamer fills
/// them in (see each field); `*_rbsp` / `*_escaped` give the other domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SliceHeader {
    pub nal_ref_idc: u8,
    pub idr_pic_flag: bool,
    pub first_mb_in_slice: u32,
    /// Raw `slice_type` (0..9; ≥ 5 means all slices of the picture share the type).
    pub slice_type_raw: u8,
    pub slice_type: SliceType,
    pub pic_parameter_set_id: u8,
    pub seq_parameter_set_id: u8,
    pub colour_plane_id: u8,
    pub frame_num: u16,
    pub field_pic_flag: bool,
    pub bottom_field_flag: bool,
    pub idr_pic_id: u16,
    pub pic_order_cnt_lsb: u16,
    pub delta_pic_order_cnt_bottom: i32,
    pub delta_pic_order_cnt: [i32; 2],
    pub redundant_pic_cnt: u8,
    pub direct_spatial_mv_pred_flag: bool,
    pub num_ref_idx_active_override_flag: bool,
    /// Effective values (the PPS defaults unless overridden).
    pub num_ref_idx_l0_active_minus1: u8,
    pub num_ref_idx_l1_active_minus1: u8,
    pub ref_pic_list_modification_flag_l0: bool,
    pub ref_pic_list_modification_l0: Vec<RefPicListModification>,
    pub ref_pic_list_modification_flag_l1: bool,
    pub ref_pic_list_modification_l1: Vec<RefPicListModification>,
    pub pred_weight_table: Option<PredWeightTable>,
    pub dec_ref_pic_marking: Option<DecRefPicMarking>,
    pub cabac_init_idc: u8,
    pub slice_qp_delta: i8,
    pub sp_for_switch_flag: bool,
    pub slice_qs_delta: i8,
    pub disable_deblocking_filter_idc: u8,
    pub slice_alpha_c0_offset_div2: i8,
    pub slice_beta_offset_div2: i8,
    pub slice_group_change_cycle: u32,
    /// `v4l2_ctrl_h264_slice_params.header_bit_size`: the offset of `slice_data()` from
    /// the start of the NAL unit, NAL header included, emulation-prevention bytes not
    /// counted (what GStreamer's v4l2codecs computes:
    /// `8 * header_bytes + header_size - 8 * n_emulation_prevention_bytes`).
    pub header_bit_size: u32,
    /// Bits of `slice_header()` alone, RBSP domain.
    pub slice_header_bits: u32,
    /// Bits of `slice_header()` alone in the escaped NAL payload.
    pub slice_header_bits_escaped: u32,
    /// Escaped size of the POC syntax (`pic_order_cnt_lsb` … `delta_pic_order_cnt[1]`),
    /// `v4l2_ctrl_h264_decode_params.pic_order_cnt_bit_size` (hardware that re-reads
    /// the header, such as Hantro, skips it in the escaped stream).
    pub pic_order_cnt_bit_size: u32,
    pub pic_order_cnt_bit_size_rbsp: u32,
    /// Escaped size of `dec_ref_pic_marking()`,
    /// `v4l2_ctrl_h264_decode_params.dec_ref_pic_marking_bit_size`.
    pub dec_ref_pic_marking_bit_size: u32,
    pub dec_ref_pic_marking_bit_size_rbsp: u32,
    /// Number of emulation-prevention bytes inside `slice_header()`.
    pub header_emulation_prevention_bytes: u32,
}

impl SliceHeader {
    /// `MbaffFrameFlag`.
    pub fn mbaff_frame_flag(&self, sps: &Sps) -> bool {
        sps.mb_adaptive_frame_field_flag && !self.field_pic_flag
    }

    /// Parses the slice header of a NAL unit of type 1 or 5. `rbsp` is the whole NAL unit
    /// unescaped (NAL header included), so bit positions can be mapped back.
    pub fn parse(header: &NalHeader, rbsp: &Rbsp, sets: &ParameterSets) -> Result<Self, H264Error> {
        let mut r = BitReader::new(&rbsp.data);
        r.skip(header.header_bytes * 8, "nal_unit_header")?;
        let start = r.position();
        let escaped_size = |from: usize, to: usize| -> u32 {
            (rbsp.escaped_bit_position(to) - rbsp.escaped_bit_position(from)) as u32
        };

        let first_mb_in_slice = ue_max(&mut r, "first_mb_in_slice", 139_264)?;
        let slice_type_raw = ue_max(&mut r, "slice_type", 9)?;
        let slice_type = SliceType::from_raw(slice_type_raw);
        let pps_id = ue_max(&mut r, "pic_parameter_set_id", 255)?;
        let pps: &Pps = sets.pps(pps_id).ok_or(H264Error::MissingPps(pps_id))?;
        let sps: &Sps =
            sets.sps(u32::from(pps.seq_parameter_set_id))
                .ok_or(H264Error::MissingSps {
                    pps_id,
                    sps_id: u32::from(pps.seq_parameter_set_id),
                })?;
        let idr_pic_flag = header.is_idr();
        let mut colour_plane_id = 0;
        if sps.separate_colour_plane_flag {
            colour_plane_id = r.bits_u8(2, "colour_plane_id")?;
        }
        let frame_num = r.bits_u16(u32::from(sps.log2_max_frame_num_minus4) + 4, "frame_num")?;
        let mut field_pic_flag = false;
        let mut bottom_field_flag = false;
        if !sps.frame_mbs_only_flag {
            field_pic_flag = r.bit("field_pic_flag")?;
            if field_pic_flag {
                bottom_field_flag = r.bit("bottom_field_flag")?;
            }
        }
        let mut idr_pic_id = 0;
        if idr_pic_flag {
            idr_pic_id = ue_max(&mut r, "idr_pic_id", 65535)? as u16;
        }

        let poc_start = r.position();
        let mut pic_order_cnt_lsb = 0;
        let mut delta_pic_order_cnt_bottom = 0;
        let mut delta_pic_order_cnt = [0; 2];
        let bottom_present = pps.bottom_field_pic_order_in_frame_present_flag && !field_pic_flag;
        if sps.pic_order_cnt_type == 0 {
            pic_order_cnt_lsb = r.bits_u16(
                u32::from(sps.log2_max_pic_order_cnt_lsb_minus4) + 4,
                "pic_order_cnt_lsb",
            )?;
            if bottom_present {
                delta_pic_order_cnt_bottom =
                    se_range(&mut r, "delta_pic_order_cnt_bottom", -i32::MAX, i32::MAX)?;
            }
        }
        if sps.pic_order_cnt_type == 1 && !sps.delta_pic_order_always_zero_flag {
            delta_pic_order_cnt[0] =
                se_range(&mut r, "delta_pic_order_cnt[0]", -i32::MAX, i32::MAX)?;
            if bottom_present {
                delta_pic_order_cnt[1] =
                    se_range(&mut r, "delta_pic_order_cnt[1]", -i32::MAX, i32::MAX)?;
            }
        }
        let poc_end = r.position();

        let mut redundant_pic_cnt = 0;
        if pps.redundant_pic_cnt_present_flag {
            redundant_pic_cnt = ue_max(&mut r, "redundant_pic_cnt", 127)? as u8;
        }
        let mut direct_spatial_mv_pred_flag = false;
        if slice_type == SliceType::B {
            direct_spatial_mv_pred_flag = r.bit("direct_spatial_mv_pred_flag")?;
        }
        let mut num_ref_idx_active_override_flag = false;
        let mut num_ref_idx_l0_active_minus1 = pps.num_ref_idx_l0_default_active_minus1;
        let mut num_ref_idx_l1_active_minus1 = pps.num_ref_idx_l1_default_active_minus1;
        if matches!(slice_type, SliceType::P | SliceType::Sp | SliceType::B) {
            num_ref_idx_active_override_flag = r.bit("num_ref_idx_active_override_flag")?;
            if num_ref_idx_active_override_flag {
                num_ref_idx_l0_active_minus1 =
                    ue_max(&mut r, "num_ref_idx_l0_active_minus1", 31)? as u8;
                if slice_type == SliceType::B {
                    num_ref_idx_l1_active_minus1 =
                        ue_max(&mut r, "num_ref_idx_l1_active_minus1", 31)? as u8;
                }
            }
        }
        if slice_type != SliceType::B {
            num_ref_idx_l1_active_minus1 = 0;
        }
        if slice_type.is_intra() {
            num_ref_idx_l0_active_minus1 = 0;
        }

        let mut ref_pic_list_modification_flag_l0 = false;
        let mut ref_pic_list_modification_l0 = Vec::new();
        let mut ref_pic_list_modification_flag_l1 = false;
        let mut ref_pic_list_modification_l1 = Vec::new();
        if !slice_type.is_intra() {
            ref_pic_list_modification_flag_l0 = r.bit("ref_pic_list_modification_flag_l0")?;
            if ref_pic_list_modification_flag_l0 {
                ref_pic_list_modification_l0 =
                    parse_modifications(&mut r, num_ref_idx_l0_active_minus1)?;
            }
        }
        if slice_type == SliceType::B {
            ref_pic_list_modification_flag_l1 = r.bit("ref_pic_list_modification_flag_l1")?;
            if ref_pic_list_modification_flag_l1 {
                ref_pic_list_modification_l1 =
                    parse_modifications(&mut r, num_ref_idx_l1_active_minus1)?;
            }
        }

        let weighted = (pps.weighted_pred_flag
            && matches!(slice_type, SliceType::P | SliceType::Sp))
            || (pps.weighted_bipred_idc == 1 && slice_type == SliceType::B);
        let pred_weight_table = if weighted {
            Some(parse_pred_weight_table(
                &mut r,
                sps.chroma_array_type(),
                slice_type,
                [num_ref_idx_l0_active_minus1, num_ref_idx_l1_active_minus1],
            )?)
        } else {
            None
        };

        let marking_start = r.position();
        let dec_ref_pic_marking = if header.nal_ref_idc != 0 {
            Some(parse_dec_ref_pic_marking(&mut r, idr_pic_flag)?)
        } else {
            None
        };
        let marking_end = r.position();

        let mut cabac_init_idc = 0;
        if pps.entropy_coding_mode_flag && !slice_type.is_intra() {
            cabac_init_idc = ue_max(&mut r, "cabac_init_idc", 2)? as u8;
        }
        let qp_bd_offset = 6 * i32::from(sps.bit_depth_luma_minus8);
        let slice_qp_delta = se_range(&mut r, "slice_qp_delta", -87 - qp_bd_offset, 77)? as i8;
        let mut sp_for_switch_flag = false;
        let mut slice_qs_delta = 0;
        if matches!(slice_type, SliceType::Sp | SliceType::Si) {
            if slice_type == SliceType::Sp {
                sp_for_switch_flag = r.bit("sp_for_switch_flag")?;
            }
            slice_qs_delta = se_range(&mut r, "slice_qs_delta", -51, 51)? as i8;
        }
        let mut disable_deblocking_filter_idc = 0;
        let mut slice_alpha_c0_offset_div2 = 0;
        let mut slice_beta_offset_div2 = 0;
        if pps.deblocking_filter_control_present_flag {
            disable_deblocking_filter_idc =
                ue_max(&mut r, "disable_deblocking_filter_idc", 2)? as u8;
            if disable_deblocking_filter_idc != 1 {
                slice_alpha_c0_offset_div2 =
                    se_range(&mut r, "slice_alpha_c0_offset_div2", -6, 6)? as i8;
                slice_beta_offset_div2 = se_range(&mut r, "slice_beta_offset_div2", -6, 6)? as i8;
            }
        }
        let mut slice_group_change_cycle = 0;
        if pps.num_slice_groups_minus1 > 0 && (3..=5).contains(&pps.slice_group_map_type) {
            let rate = pps.slice_group_change_rate_minus1 + 1;
            let units = sps.pic_size_in_map_units();
            // Ceil(Log2(PicSizeInMapUnits ÷ SliceGroupChangeRate + 1))
            let max = units.div_ceil(rate) + 1;
            let bits = 32 - (max - 1).leading_zeros();
            slice_group_change_cycle = r.bits(bits, "slice_group_change_cycle")?;
        }
        let end = r.position();
        let escaped_header_end = rbsp.escaped_bit_position(end);
        let header_emulation_prevention_bytes =
            ((escaped_header_end - rbsp.escaped_bit_position(start) - (end - start)) / 8) as u32;

        Ok(Self {
            nal_ref_idc: header.nal_ref_idc,
            idr_pic_flag,
            first_mb_in_slice,
            slice_type_raw: slice_type_raw as u8,
            slice_type,
            pic_parameter_set_id: pps.pic_parameter_set_id,
            seq_parameter_set_id: sps.seq_parameter_set_id,
            colour_plane_id,
            frame_num,
            field_pic_flag,
            bottom_field_flag,
            idr_pic_id,
            pic_order_cnt_lsb,
            delta_pic_order_cnt_bottom,
            delta_pic_order_cnt,
            redundant_pic_cnt,
            direct_spatial_mv_pred_flag,
            num_ref_idx_active_override_flag,
            num_ref_idx_l0_active_minus1,
            num_ref_idx_l1_active_minus1,
            ref_pic_list_modification_flag_l0,
            ref_pic_list_modification_l0,
            ref_pic_list_modification_flag_l1,
            ref_pic_list_modification_l1,
            pred_weight_table,
            dec_ref_pic_marking,
            cabac_init_idc,
            slice_qp_delta,
            sp_for_switch_flag,
            slice_qs_delta,
            disable_deblocking_filter_idc,
            slice_alpha_c0_offset_div2,
            slice_beta_offset_div2,
            slice_group_change_cycle,
            header_bit_size: end as u32,
            slice_header_bits: (end - start) as u32,
            slice_header_bits_escaped: escaped_size(start, end),
            pic_order_cnt_bit_size: escaped_size(poc_start, poc_end),
            pic_order_cnt_bit_size_rbsp: (poc_end - poc_start) as u32,
            dec_ref_pic_marking_bit_size: escaped_size(marking_start, marking_end),
            dec_ref_pic_marking_bit_size_rbsp: (marking_end - marking_start) as u32,
            header_emulation_prevention_bytes,
        })
    }
}

fn parse_modifications(
    r: &mut BitReader,
    num_ref_idx_active_minus1: u8,
) -> Result<Vec<RefPicListModification>, H264Error> {
    // At most one operation per list entry, plus the terminating 3.
    let limit = usize::from(num_ref_idx_active_minus1) + 1;
    let mut ops = Vec::new();
    loop {
        let idc = ue_max(r, "modification_of_pic_nums_idc", 5)? as u8;
        let value = match idc {
            0 | 1 => ue_max(r, "abs_diff_pic_num_minus1", 131_071)?,
            2 => ue_max(r, "long_term_pic_num", 65_535)?,
            3 => break,
            // 4 and 5 are MVC-only (view index); not valid in type 1/5 NAL units.
            _ => {
                return Err(H264Error::OutOfRange {
                    field: "modification_of_pic_nums_idc",
                    value: i64::from(idc),
                });
            }
        };
        if ops.len() >= limit {
            return Err(H264Error::TooManyEntries("ref_pic_list_modification"));
        }
        ops.push(RefPicListModification {
            modification_of_pic_nums_idc: idc,
            value,
        });
    }
    Ok(ops)
}

fn parse_pred_weight_table(
    r: &mut BitReader,
    chroma_array_type: u8,
    slice_type: SliceType,
    num_ref_idx_active_minus1: [u8; 2],
) -> Result<PredWeightTable, H264Error> {
    let luma_log2_weight_denom = ue_max(r, "luma_log2_weight_denom", 7)? as u8;
    let chroma_log2_weight_denom = if chroma_array_type != 0 {
        ue_max(r, "chroma_log2_weight_denom", 7)? as u8
    } else {
        0
    };
    let default_luma = 1i16 << luma_log2_weight_denom;
    let default_chroma = 1i16 << chroma_log2_weight_denom;
    let mut t = PredWeightTable {
        luma_log2_weight_denom,
        chroma_log2_weight_denom,
        luma_weight: [[default_luma; 32]; 2],
        luma_offset: [[0; 32]; 2],
        chroma_weight: [[[default_chroma; 2]; 32]; 2],
        chroma_offset: [[[0; 2]; 32]; 2],
        luma_weight_flag: [[false; 32]; 2],
        chroma_weight_flag: [[false; 32]; 2],
    };
    let lists = if slice_type == SliceType::B { 2 } else { 1 };
    for (list, &count_minus1) in num_ref_idx_active_minus1.iter().enumerate().take(lists) {
        for i in 0..=usize::from(count_minus1) {
            if r.bit("luma_weight_flag")? {
                t.luma_weight_flag[list][i] = true;
                t.luma_weight[list][i] = se_range(r, "luma_weight", -128, 127)? as i16;
                t.luma_offset[list][i] = se_range(r, "luma_offset", -128, 127)? as i16;
            }
            if chroma_array_type != 0 && r.bit("chroma_weight_flag")? {
                t.chroma_weight_flag[list][i] = true;
                for j in 0..2 {
                    t.chroma_weight[list][i][j] = se_range(r, "chroma_weight", -128, 127)? as i16;
                    t.chroma_offset[list][i][j] = se_range(r, "chroma_offset", -128, 127)? as i16;
                }
            }
        }
    }
    Ok(t)
}

fn parse_dec_ref_pic_marking(
    r: &mut BitReader,
    idr_pic_flag: bool,
) -> Result<DecRefPicMarking, H264Error> {
    // Enough for any real stream (each operation frees or marks one picture).
    const MAX_OPERATIONS: usize = 66;
    let mut m = DecRefPicMarking::default();
    if idr_pic_flag {
        m.no_output_of_prior_pics_flag = r.bit("no_output_of_prior_pics_flag")?;
        m.long_term_reference_flag = r.bit("long_term_reference_flag")?;
        return Ok(m);
    }
    m.adaptive_ref_pic_marking_mode_flag = r.bit("adaptive_ref_pic_marking_mode_flag")?;
    if !m.adaptive_ref_pic_marking_mode_flag {
        return Ok(m);
    }
    loop {
        let mmco = ue_max(r, "memory_management_control_operation", 6)? as u8;
        if mmco == 0 {
            break;
        }
        let mut op = MemoryManagementOperation {
            memory_management_control_operation: mmco,
            ..Default::default()
        };
        if mmco == 1 || mmco == 3 {
            op.difference_of_pic_nums_minus1 = ue_max(r, "difference_of_pic_nums_minus1", 131_071)?;
        }
        if mmco == 2 {
            op.long_term_pic_num = ue_max(r, "long_term_pic_num", 65_535)?;
        }
        if mmco == 3 || mmco == 6 {
            op.long_term_frame_idx = ue_max(r, "long_term_frame_idx", 15)?;
        }
        if mmco == 4 {
            op.max_long_term_frame_idx_plus1 = ue_max(r, "max_long_term_frame_idx_plus1", 16)?;
        }
        if m.operations.len() >= MAX_OPERATIONS {
            return Err(H264Error::TooManyEntries(
                "memory_management_control_operation",
            ));
        }
        m.operations.push(op);
    }
    Ok(m)
}
