// SPDX-License-Identifier: MPL-2.0
//! `pic_parameter_set_rbsp()` (7.3.2.2).

use super::error::{se_range, ue_max};
use super::{H264Error, ParameterSets, ScalingLists, more_rbsp_data};
use crate::bitreader::BitReader;

/// A picture parameter set. Fields named as in the specification / `v4l2_ctrl_h264_pps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pps {
    pub pic_parameter_set_id: u8,
    pub seq_parameter_set_id: u8,
    pub entropy_coding_mode_flag: bool,
    pub bottom_field_pic_order_in_frame_present_flag: bool,
    pub num_slice_groups_minus1: u8,
    pub slice_group_map_type: u8,
    pub run_length_minus1: Vec<u32>,
    pub top_left: Vec<u32>,
    pub bottom_right: Vec<u32>,
    pub slice_group_change_direction_flag: bool,
    pub slice_group_change_rate_minus1: u32,
    pub pic_size_in_map_units_minus1: u32,
    pub slice_group_id: Vec<u8>,
    pub num_ref_idx_l0_default_active_minus1: u8,
    pub num_ref_idx_l1_default_active_minus1: u8,
    pub weighted_pred_flag: bool,
    pub weighted_bipred_idc: u8,
    pub pic_init_qp_minus26: i8,
    pub pic_init_qs_minus26: i8,
    pub chroma_qp_index_offset: i8,
    pub deblocking_filter_control_present_flag: bool,
    pub constrained_intra_pred_flag: bool,
    pub redundant_pic_cnt_present_flag: bool,
    pub transform_8x8_mode_flag: bool,
    pub pic_scaling_matrix_present_flag: bool,
    /// The lists in effect for pictures using this PPS (the SPS's when the PPS has none).
    pub scaling_lists: ScalingLists,
    pub second_chroma_qp_index_offset: i8,
}

impl Pps {
    /// Parses the RBSP after the NAL header; the referenced SPS must be known.
    pub fn parse(rbsp: &[u8], sets: &ParameterSets) -> Result<Self, H264Error> {
        let mut r = BitReader::new(rbsp);
        let pps_id = ue_max(&mut r, "pic_parameter_set_id", 255)?;
        let sps_id = ue_max(&mut r, "seq_parameter_set_id", 31)?;
        let sps = sets
            .sps(sps_id)
            .ok_or(H264Error::MissingSps { pps_id, sps_id })?;
        let entropy_coding_mode_flag = r.bit("entropy_coding_mode_flag")?;
        let bottom_field_pic_order_in_frame_present_flag =
            r.bit("bottom_field_pic_order_in_frame_present_flag")?;
        let num_slice_groups_minus1 = ue_max(&mut r, "num_slice_groups_minus1", 7)? as u8;
        let mut pps = Pps {
            pic_parameter_set_id: pps_id as u8,
            seq_parameter_set_id: sps_id as u8,
            entropy_coding_mode_flag,
            bottom_field_pic_order_in_frame_present_flag,
            num_slice_groups_minus1,
            slice_group_map_type: 0,
            run_length_minus1: Vec::new(),
            top_left: Vec::new(),
            bottom_right: Vec::new(),
            slice_group_change_direction_flag: false,
            slice_group_change_rate_minus1: 0,
            pic_size_in_map_units_minus1: 0,
            slice_group_id: Vec::new(),
            num_ref_idx_l0_default_active_minus1: 0,
            num_ref_idx_l1_default_active_minus1: 0,
            weighted_pred_flag: false,
            weighted_bipred_idc: 0,
            pic_init_qp_minus26: 0,
            pic_init_qs_minus26: 0,
            chroma_qp_index_offset: 0,
            deblocking_filter_control_present_flag: false,
            constrained_intra_pred_flag: false,
            redundant_pic_cnt_present_flag: false,
            transform_8x8_mode_flag: false,
            pic_scaling_matrix_present_flag: false,
            scaling_lists: sps.scaling_lists.clone(),
            second_chroma_qp_index_offset: 0,
        };
        if num_slice_groups_minus1 > 0 {
            parse_slice_groups(&mut r, &mut pps, sps.pic_size_in_map_units())?;
        }
        pps.num_ref_idx_l0_default_active_minus1 =
            ue_max(&mut r, "num_ref_idx_l0_default_active_minus1", 31)? as u8;
        pps.num_ref_idx_l1_default_active_minus1 =
            ue_max(&mut r, "num_ref_idx_l1_default_active_minus1", 31)? as u8;
        pps.weighted_pred_flag = r.bit("weighted_pred_flag")?;
        pps.weighted_bipred_idc = r.bits_u8(2, "weighted_bipred_idc")?;
        if pps.weighted_bipred_idc > 2 {
            return Err(H264Error::OutOfRange {
                field: "weighted_bipred_idc",
                value: 3,
            });
        }
        let qp_bd_offset = 6 * i32::from(sps.bit_depth_luma_minus8);
        pps.pic_init_qp_minus26 =
            se_range(&mut r, "pic_init_qp_minus26", -26 - qp_bd_offset, 25)? as i8;
        pps.pic_init_qs_minus26 = se_range(&mut r, "pic_init_qs_minus26", -26, 25)? as i8;
        pps.chroma_qp_index_offset = se_range(&mut r, "chroma_qp_index_offset", -12, 12)? as i8;
        pps.deblocking_filter_control_present_flag =
            r.bit("deblocking_filter_control_present_flag")?;
        pps.constrained_intra_pred_flag = r.bit("constrained_intra_pred_flag")?;
        pps.redundant_pic_cnt_present_flag = r.bit("redundant_pic_cnt_present_flag")?;
        pps.second_chroma_qp_index_offset = pps.chroma_qp_index_offset;
        if more_rbsp_data(rbsp, r.position()) {
            pps.transform_8x8_mode_flag = r.bit("transform_8x8_mode_flag")?;
            pps.pic_scaling_matrix_present_flag = r.bit("pic_scaling_matrix_present_flag")?;
            if pps.pic_scaling_matrix_present_flag {
                let count = 6 + if pps.transform_8x8_mode_flag {
                    if sps.chroma_format_idc == 3 { 6 } else { 2 }
                } else {
                    0
                };
                // Fall-back rule B (to the SPS lists) only when the SPS has a matrix.
                let fallback = sps
                    .seq_scaling_matrix_present_flag
                    .then_some(&sps.scaling_lists);
                pps.scaling_lists = ScalingLists::parse(&mut r, count, fallback)?;
            }
            pps.second_chroma_qp_index_offset =
                se_range(&mut r, "second_chroma_qp_index_offset", -12, 12)? as i8;
        }
        Ok(pps)
    }
}

fn parse_slice_groups(
    r: &mut BitReader,
    pps: &mut Pps,
    pic_size_in_map_units: u32,
) -> Result<(), H264Error> {
    let groups = u32::from(pps.num_slice_groups_minus1) + 1;
    pps.slice_group_map_type = ue_max(r, "slice_group_map_type", 6)? as u8;
    match pps.slice_group_map_type {
        0 => {
            for _ in 0..groups {
                pps.run_length_minus1
                    .push(ue_max(r, "run_length_minus1", pic_size_in_map_units)?);
            }
        }
        2 => {
            for _ in 0..groups - 1 {
                pps.top_left
                    .push(ue_max(r, "top_left", pic_size_in_map_units)?);
                pps.bottom_right
                    .push(ue_max(r, "bottom_right", pic_size_in_map_units)?);
            }
        }
        3..=5 => {
            pps.slice_group_change_direction_flag = r.bit("slice_group_change_direction_flag")?;
            pps.slice_group_change_rate_minus1 = ue_max(
                r,
                "slice_group_change_rate_minus1",
                pic_size_in_map_units.saturating_sub(1),
            )?;
        }
        6 => {
            pps.pic_size_in_map_units_minus1 = ue_max(
                r,
                "pic_size_in_map_units_minus1",
                pic_size_in_map_units.saturating_sub(1),
            )?;
            let bits = 32 - u32::from(pps.num_slice_groups_minus1).leading_zeros();
            for _ in 0..=pps.pic_size_in_map_units_minus1 {
                pps.slice_group_id.push(r.bits_u8(bits, "slice_group_id")?);
            }
        }
        _ => {}
    }
    Ok(())
}
