// SPDX-License-Identifier: MPL-2.0
//! `seq_parameter_set_rbsp()` (7.3.2.1.1) with `vui_parameters()` (E.1.1).

use super::error::{se_range, ue_max};
use super::{H264Error, ScalingLists};
use crate::bitreader::BitReader;

/// `hrd_parameters()` (E.1.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HrdParameters {
    pub cpb_cnt_minus1: u8,
    pub bit_rate_scale: u8,
    pub cpb_size_scale: u8,
    pub bit_rate_value_minus1: Vec<u32>,
    pub cpb_size_value_minus1: Vec<u32>,
    pub cbr_flag: Vec<bool>,
    pub initial_cpb_removal_delay_length_minus1: u8,
    pub cpb_removal_delay_length_minus1: u8,
    pub dpb_output_delay_length_minus1: u8,
    pub time_offset_length: u8,
}

/// `vui_parameters()` (E.1.1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VuiParameters {
    pub aspect_ratio_idc: u8,
    pub sar_width: u16,
    pub sar_height: u16,
    pub overscan_info_present_flag: bool,
    pub overscan_appropriate_flag: bool,
    pub video_format: u8,
    pub video_full_range_flag: bool,
    pub colour_description_present_flag: bool,
    pub colour_primaries: u8,
    pub transfer_characteristics: u8,
    pub matrix_coefficients: u8,
    pub chroma_sample_loc_type_top_field: u8,
    pub chroma_sample_loc_type_bottom_field: u8,
    pub timing_info_present_flag: bool,
    pub num_units_in_tick: u32,
    pub time_scale: u32,
    pub fixed_frame_rate_flag: bool,
    pub nal_hrd_parameters: Option<HrdParameters>,
    pub vcl_hrd_parameters: Option<HrdParameters>,
    pub low_delay_hrd_flag: bool,
    pub pic_struct_present_flag: bool,
    pub bitstream_restriction_flag: bool,
    pub motion_vectors_over_pic_boundaries_flag: bool,
    pub max_bytes_per_pic_denom: u32,
    pub max_bits_per_mb_denom: u32,
    pub log2_max_mv_length_horizontal: u32,
    pub log2_max_mv_length_vertical: u32,
    pub max_num_reorder_frames: u32,
    pub max_dec_frame_buffering: u32,
}

/// A sequence parameter set. Fields named as in the specification / `v4l2_ctrl_h264_sps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sps {
    pub profile_idc: u8,
    /// `constraint_set0..5_flag` in the V4L2 layout: bit *i* is `constraint_set<i>_flag`.
    pub constraint_set_flags: u8,
    pub level_idc: u8,
    pub seq_parameter_set_id: u8,
    pub chroma_format_idc: u8,
    pub separate_colour_plane_flag: bool,
    pub bit_depth_luma_minus8: u8,
    pub bit_depth_chroma_minus8: u8,
    pub qpprime_y_zero_transform_bypass_flag: bool,
    pub seq_scaling_matrix_present_flag: bool,
    /// Resolved lists (flat when no matrix is transmitted).
    pub scaling_lists: ScalingLists,
    pub log2_max_frame_num_minus4: u8,
    pub pic_order_cnt_type: u8,
    pub log2_max_pic_order_cnt_lsb_minus4: u8,
    pub delta_pic_order_always_zero_flag: bool,
    pub offset_for_non_ref_pic: i32,
    pub offset_for_top_to_bottom_field: i32,
    pub offset_for_ref_frame: Vec<i32>,
    pub max_num_ref_frames: u8,
    pub gaps_in_frame_num_value_allowed_flag: bool,
    pub pic_width_in_mbs_minus1: u16,
    pub pic_height_in_map_units_minus1: u16,
    pub frame_mbs_only_flag: bool,
    pub mb_adaptive_frame_field_flag: bool,
    pub direct_8x8_inference_flag: bool,
    pub frame_cropping_flag: bool,
    pub frame_crop_left_offset: u32,
    pub frame_crop_right_offset: u32,
    pub frame_crop_top_offset: u32,
    pub frame_crop_bottom_offset: u32,
    pub vui: Option<VuiParameters>,
}

/// Profiles whose SPS carries chroma format, bit depth and scaling matrices.
fn has_frext_fields(profile_idc: u8) -> bool {
    matches!(
        profile_idc,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    )
}

impl Sps {
    /// Parses the RBSP after the NAL header.
    pub fn parse(rbsp: &[u8]) -> Result<Self, H264Error> {
        let mut r = BitReader::new(rbsp);
        let profile_idc = r.bits_u8(8, "profile_idc")?;
        let constraint_bits = r.bits_u8(6, "constraint_set_flags")?;
        let constraint_set_flags = (0..6).fold(0u8, |acc, i| {
            acc | (((constraint_bits >> (5 - i)) & 1) << i)
        });
        r.skip(2, "reserved_zero_2bits")?;
        let level_idc = r.bits_u8(8, "level_idc")?;
        let seq_parameter_set_id = ue_max(&mut r, "seq_parameter_set_id", 31)? as u8;

        let mut chroma_format_idc = 1;
        let mut separate_colour_plane_flag = false;
        let mut bit_depth_luma_minus8 = 0;
        let mut bit_depth_chroma_minus8 = 0;
        let mut qpprime_y_zero_transform_bypass_flag = false;
        let mut seq_scaling_matrix_present_flag = false;
        let mut scaling_lists = ScalingLists::default();
        if has_frext_fields(profile_idc) {
            chroma_format_idc = ue_max(&mut r, "chroma_format_idc", 3)? as u8;
            if chroma_format_idc == 3 {
                separate_colour_plane_flag = r.bit("separate_colour_plane_flag")?;
            }
            bit_depth_luma_minus8 = ue_max(&mut r, "bit_depth_luma_minus8", 6)? as u8;
            bit_depth_chroma_minus8 = ue_max(&mut r, "bit_depth_chroma_minus8", 6)? as u8;
            qpprime_y_zero_transform_bypass_flag = r.bit("qpprime_y_zero_transform_bypass_flag")?;
            seq_scaling_matrix_present_flag = r.bit("seq_scaling_matrix_present_flag")?;
            if seq_scaling_matrix_present_flag {
                let count = if chroma_format_idc == 3 { 12 } else { 8 };
                scaling_lists = ScalingLists::parse(&mut r, count, None)?;
            }
        }

        let log2_max_frame_num_minus4 = ue_max(&mut r, "log2_max_frame_num_minus4", 12)? as u8;
        let pic_order_cnt_type = ue_max(&mut r, "pic_order_cnt_type", 2)? as u8;
        let mut log2_max_pic_order_cnt_lsb_minus4 = 0;
        let mut delta_pic_order_always_zero_flag = false;
        let mut offset_for_non_ref_pic = 0;
        let mut offset_for_top_to_bottom_field = 0;
        let mut offset_for_ref_frame = Vec::new();
        match pic_order_cnt_type {
            0 => {
                log2_max_pic_order_cnt_lsb_minus4 =
                    ue_max(&mut r, "log2_max_pic_order_cnt_lsb_minus4", 12)? as u8;
            }
            1 => {
                delta_pic_order_always_zero_flag = r.bit("delta_pic_order_always_zero_flag")?;
                offset_for_non_ref_pic =
                    se_range(&mut r, "offset_for_non_ref_pic", -i32::MAX, i32::MAX)?;
                offset_for_top_to_bottom_field = se_range(
                    &mut r,
                    "offset_for_top_to_bottom_field",
                    -i32::MAX,
                    i32::MAX,
                )?;
                let n = ue_max(&mut r, "num_ref_frames_in_pic_order_cnt_cycle", 255)?;
                for _ in 0..n {
                    offset_for_ref_frame.push(se_range(
                        &mut r,
                        "offset_for_ref_frame",
                        -i32::MAX,
                        i32::MAX,
                    )?);
                }
            }
            _ => {}
        }
        let max_num_ref_frames = ue_max(&mut r, "max_num_ref_frames", 16)? as u8;
        let gaps_in_frame_num_value_allowed_flag = r.bit("gaps_in_frame_num_value_allowed_flag")?;
        let pic_width_in_mbs_minus1 = ue_max(&mut r, "pic_width_in_mbs_minus1", 1023)? as u16;
        let pic_height_in_map_units_minus1 =
            ue_max(&mut r, "pic_height_in_map_units_minus1", 1023)? as u16;
        let frame_mbs_only_flag = r.bit("frame_mbs_only_flag")?;
        let mb_adaptive_frame_field_flag =
            !frame_mbs_only_flag && r.bit("mb_adaptive_frame_field_flag")?;
        let direct_8x8_inference_flag = r.bit("direct_8x8_inference_flag")?;
        let frame_cropping_flag = r.bit("frame_cropping_flag")?;
        let mut crop = [0u32; 4];
        if frame_cropping_flag {
            for (value, field) in crop.iter_mut().zip([
                "frame_crop_left_offset",
                "frame_crop_right_offset",
                "frame_crop_top_offset",
                "frame_crop_bottom_offset",
            ]) {
                *value = ue_max(&mut r, field, 8192)?;
            }
        }
        let vui = if r.bit("vui_parameters_present_flag")? {
            Some(parse_vui(&mut r)?)
        } else {
            None
        };
        Ok(Self {
            profile_idc,
            constraint_set_flags,
            level_idc,
            seq_parameter_set_id,
            chroma_format_idc,
            separate_colour_plane_flag,
            bit_depth_luma_minus8,
            bit_depth_chroma_minus8,
            qpprime_y_zero_transform_bypass_flag,
            seq_scaling_matrix_present_flag,
            scaling_lists,
            log2_max_frame_num_minus4,
            pic_order_cnt_type,
            log2_max_pic_order_cnt_lsb_minus4,
            delta_pic_order_always_zero_flag,
            offset_for_non_ref_pic,
            offset_for_top_to_bottom_field,
            offset_for_ref_frame,
            max_num_ref_frames,
            gaps_in_frame_num_value_allowed_flag,
            pic_width_in_mbs_minus1,
            pic_height_in_map_units_minus1,
            frame_mbs_only_flag,
            mb_adaptive_frame_field_flag,
            direct_8x8_inference_flag,
            frame_cropping_flag,
            frame_crop_left_offset: crop[0],
            frame_crop_right_offset: crop[1],
            frame_crop_top_offset: crop[2],
            frame_crop_bottom_offset: crop[3],
            vui,
        })
    }

    /// `ChromaArrayType`.
    pub fn chroma_array_type(&self) -> u8 {
        if self.separate_colour_plane_flag {
            0
        } else {
            self.chroma_format_idc
        }
    }

    /// `MaxFrameNum`.
    pub fn max_frame_num(&self) -> u32 {
        1 << (u32::from(self.log2_max_frame_num_minus4) + 4)
    }

    /// `MaxPicOrderCntLsb`.
    pub fn max_pic_order_cnt_lsb(&self) -> u32 {
        1 << (u32::from(self.log2_max_pic_order_cnt_lsb_minus4) + 4)
    }

    pub fn pic_width_in_mbs(&self) -> u32 {
        u32::from(self.pic_width_in_mbs_minus1) + 1
    }

    /// `FrameHeightInMbs`.
    pub fn frame_height_in_mbs(&self) -> u32 {
        (2 - u32::from(self.frame_mbs_only_flag))
            * (u32::from(self.pic_height_in_map_units_minus1) + 1)
    }

    /// `PicSizeInMapUnits`.
    pub fn pic_size_in_map_units(&self) -> u32 {
        self.pic_width_in_mbs() * (u32::from(self.pic_height_in_map_units_minus1) + 1)
    }

    /// Coded size in luma samples (before cropping).
    pub fn coded_size(&self) -> (u32, u32) {
        (
            self.pic_width_in_mbs() * 16,
            self.frame_height_in_mbs() * 16,
        )
    }

    /// Display rectangle `(x, y, width, height)` after frame cropping (7-19..7-22),
    /// saturating on nonsensical offsets.
    pub fn crop_rectangle(&self) -> (u32, u32, u32, u32) {
        let (width, height) = self.coded_size();
        let (crop_unit_x, crop_unit_y) = match self.chroma_array_type() {
            0 => (1, 2 - u32::from(self.frame_mbs_only_flag)),
            cat => {
                let sub_width_c = if cat == 3 { 1 } else { 2 };
                let sub_height_c = if cat == 1 { 2 } else { 1 };
                (
                    sub_width_c,
                    sub_height_c * (2 - u32::from(self.frame_mbs_only_flag)),
                )
            }
        };
        let x = crop_unit_x * self.frame_crop_left_offset;
        let y = crop_unit_y * self.frame_crop_top_offset;
        let w = width.saturating_sub(
            crop_unit_x * (self.frame_crop_left_offset + self.frame_crop_right_offset),
        );
        let h = height.saturating_sub(
            crop_unit_y * (self.frame_crop_top_offset + self.frame_crop_bottom_offset),
        );
        (x, y, w, h)
    }
}

fn parse_hrd(r: &mut BitReader) -> Result<HrdParameters, H264Error> {
    let cpb_cnt_minus1 = ue_max(r, "cpb_cnt_minus1", 31)? as u8;
    let bit_rate_scale = r.bits_u8(4, "bit_rate_scale")?;
    let cpb_size_scale = r.bits_u8(4, "cpb_size_scale")?;
    let mut hrd = HrdParameters {
        cpb_cnt_minus1,
        bit_rate_scale,
        cpb_size_scale,
        ..Default::default()
    };
    for _ in 0..=cpb_cnt_minus1 {
        hrd.bit_rate_value_minus1
            .push(ue_max(r, "bit_rate_value_minus1", u32::MAX - 1)?);
        hrd.cpb_size_value_minus1
            .push(ue_max(r, "cpb_size_value_minus1", u32::MAX - 1)?);
        hrd.cbr_flag.push(r.bit("cbr_flag")?);
    }
    hrd.initial_cpb_removal_delay_length_minus1 =
        r.bits_u8(5, "initial_cpb_removal_delay_length_minus1")?;
    hrd.cpb_removal_delay_length_minus1 = r.bits_u8(5, "cpb_removal_delay_length_minus1")?;
    hrd.dpb_output_delay_length_minus1 = r.bits_u8(5, "dpb_output_delay_length_minus1")?;
    hrd.time_offset_length = r.bits_u8(5, "time_offset_length")?;
    Ok(hrd)
}

fn parse_vui(r: &mut BitReader) -> Result<VuiParameters, H264Error> {
    const EXTENDED_SAR: u8 = 255;
    let mut vui = VuiParameters::default();
    if r.bit("aspect_ratio_info_present_flag")? {
        vui.aspect_ratio_idc = r.bits_u8(8, "aspect_ratio_idc")?;
        if vui.aspect_ratio_idc == EXTENDED_SAR {
            vui.sar_width = r.bits_u16(16, "sar_width")?;
            vui.sar_height = r.bits_u16(16, "sar_height")?;
        }
    }
    vui.overscan_info_present_flag = r.bit("overscan_info_present_flag")?;
    if vui.overscan_info_present_flag {
        vui.overscan_appropriate_flag = r.bit("overscan_appropriate_flag")?;
    }
    // Unspecified video format / colour description, as E.2.1 infers when absent.
    vui.video_format = 5;
    vui.colour_primaries = 2;
    vui.transfer_characteristics = 2;
    vui.matrix_coefficients = 2;
    if r.bit("video_signal_type_present_flag")? {
        vui.video_format = r.bits_u8(3, "video_format")?;
        vui.video_full_range_flag = r.bit("video_full_range_flag")?;
        vui.colour_description_present_flag = r.bit("colour_description_present_flag")?;
        if vui.colour_description_present_flag {
            vui.colour_primaries = r.bits_u8(8, "colour_primaries")?;
            vui.transfer_characteristics = r.bits_u8(8, "transfer_characteristics")?;
            vui.matrix_coefficients = r.bits_u8(8, "matrix_coefficients")?;
        }
    }
    if r.bit("chroma_loc_info_present_flag")? {
        vui.chroma_sample_loc_type_top_field =
            ue_max(r, "chroma_sample_loc_type_top_field", 5)? as u8;
        vui.chroma_sample_loc_type_bottom_field =
            ue_max(r, "chroma_sample_loc_type_bottom_field", 5)? as u8;
    }
    vui.timing_info_present_flag = r.bit("timing_info_present_flag")?;
    if vui.timing_info_present_flag {
        vui.num_units_in_tick = r.bits(32, "num_units_in_tick")?;
        vui.time_scale = r.bits(32, "time_scale")?;
        vui.fixed_frame_rate_flag = r.bit("fixed_frame_rate_flag")?;
    }
    if r.bit("nal_hrd_parameters_present_flag")? {
        vui.nal_hrd_parameters = Some(parse_hrd(r)?);
    }
    if r.bit("vcl_hrd_parameters_present_flag")? {
        vui.vcl_hrd_parameters = Some(parse_hrd(r)?);
    }
    if vui.nal_hrd_parameters.is_some() || vui.vcl_hrd_parameters.is_some() {
        vui.low_delay_hrd_flag = r.bit("low_delay_hrd_flag")?;
    }
    vui.pic_struct_present_flag = r.bit("pic_struct_present_flag")?;
    vui.bitstream_restriction_flag = r.bit("bitstream_restriction_flag")?;
    if vui.bitstream_restriction_flag {
        vui.motion_vectors_over_pic_boundaries_flag =
            r.bit("motion_vectors_over_pic_boundaries_flag")?;
        vui.max_bytes_per_pic_denom = ue_max(r, "max_bytes_per_pic_denom", 16)?;
        vui.max_bits_per_mb_denom = ue_max(r, "max_bits_per_mb_denom", 16)?;
        vui.log2_max_mv_length_horizontal = ue_max(r, "log2_max_mv_length_horizontal", 16)?;
        vui.log2_max_mv_length_vertical = ue_max(r, "log2_max_mv_length_vertical", 16)?;
        vui.max_num_reorder_frames = ue_max(r, "max_num_reorder_frames", 16)?;
        vui.max_dec_frame_buffering = ue_max(r, "max_dec_frame_buffering", 16)?;
    }
    Ok(vui)
}
