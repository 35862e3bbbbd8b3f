// SPDX-License-Identifier: MPL-2.0
//! Filling the `v4l2_ctrl_h264_*` structs from parsed syntax and the DPB, the way
//! GStreamer's v4l2codecs does, so both can be compared field by field.

use mediapass_codecparsers::h264::{
    Pps, SliceHeader, SliceType, Sps, raster_from_zigzag_4x4, raster_from_zigzag_8x8,
};
use v4l2r::bindings;

use super::dpb::{Picture, Reference};
use super::ref_lists::RefList;

const fn flag(on: bool, bit: u32) -> u32 {
    if on { bit } else { 0 }
}

pub fn sps(s: &Sps) -> bindings::v4l2_ctrl_h264_sps {
    let mut c = bindings::v4l2_ctrl_h264_sps {
        profile_idc: s.profile_idc,
        constraint_set_flags: s.constraint_set_flags,
        level_idc: s.level_idc,
        seq_parameter_set_id: s.seq_parameter_set_id,
        chroma_format_idc: s.chroma_format_idc,
        bit_depth_luma_minus8: s.bit_depth_luma_minus8,
        bit_depth_chroma_minus8: s.bit_depth_chroma_minus8,
        log2_max_frame_num_minus4: s.log2_max_frame_num_minus4,
        pic_order_cnt_type: s.pic_order_cnt_type,
        log2_max_pic_order_cnt_lsb_minus4: s.log2_max_pic_order_cnt_lsb_minus4,
        max_num_ref_frames: s.max_num_ref_frames,
        num_ref_frames_in_pic_order_cnt_cycle: s.offset_for_ref_frame.len().min(255) as u8,
        offset_for_non_ref_pic: s.offset_for_non_ref_pic,
        offset_for_top_to_bottom_field: s.offset_for_top_to_bottom_field,
        pic_width_in_mbs_minus1: s.pic_width_in_mbs_minus1,
        pic_height_in_map_units_minus1: s.pic_height_in_map_units_minus1,
        flags: flag(
            s.separate_colour_plane_flag,
            bindings::V4L2_H264_SPS_FLAG_SEPARATE_COLOUR_PLANE,
        ) | flag(
            s.qpprime_y_zero_transform_bypass_flag,
            bindings::V4L2_H264_SPS_FLAG_QPPRIME_Y_ZERO_TRANSFORM_BYPASS,
        ) | flag(
            s.delta_pic_order_always_zero_flag,
            bindings::V4L2_H264_SPS_FLAG_DELTA_PIC_ORDER_ALWAYS_ZERO,
        ) | flag(
            s.gaps_in_frame_num_value_allowed_flag,
            bindings::V4L2_H264_SPS_FLAG_GAPS_IN_FRAME_NUM_VALUE_ALLOWED,
        ) | flag(
            s.frame_mbs_only_flag,
            bindings::V4L2_H264_SPS_FLAG_FRAME_MBS_ONLY,
        ) | flag(
            s.mb_adaptive_frame_field_flag,
            bindings::V4L2_H264_SPS_FLAG_MB_ADAPTIVE_FRAME_FIELD,
        ) | flag(
            s.direct_8x8_inference_flag,
            bindings::V4L2_H264_SPS_FLAG_DIRECT_8X8_INFERENCE,
        ),
        ..Default::default()
    };
    for (dst, src) in c
        .offset_for_ref_frame
        .iter_mut()
        .zip(&s.offset_for_ref_frame)
    {
        *dst = *src;
    }
    c
}

/// Whether a scaling matrix applies (from the SPS or the PPS): then the PPS flag is set
/// and `SCALING_MATRIX` is sent.
pub fn scaling_matrix_present(s: &Sps, p: &Pps) -> bool {
    s.seq_scaling_matrix_present_flag || p.pic_scaling_matrix_present_flag
}

pub fn pps(p: &Pps, scaling_matrix_present: bool) -> bindings::v4l2_ctrl_h264_pps {
    bindings::v4l2_ctrl_h264_pps {
        pic_parameter_set_id: p.pic_parameter_set_id,
        seq_parameter_set_id: p.seq_parameter_set_id,
        num_slice_groups_minus1: p.num_slice_groups_minus1,
        num_ref_idx_l0_default_active_minus1: p.num_ref_idx_l0_default_active_minus1,
        num_ref_idx_l1_default_active_minus1: p.num_ref_idx_l1_default_active_minus1,
        weighted_bipred_idc: p.weighted_bipred_idc,
        pic_init_qp_minus26: p.pic_init_qp_minus26,
        pic_init_qs_minus26: p.pic_init_qs_minus26,
        chroma_qp_index_offset: p.chroma_qp_index_offset,
        second_chroma_qp_index_offset: p.second_chroma_qp_index_offset,
        flags: (flag(
            p.entropy_coding_mode_flag,
            bindings::V4L2_H264_PPS_FLAG_ENTROPY_CODING_MODE,
        ) | flag(
            p.bottom_field_pic_order_in_frame_present_flag,
            bindings::V4L2_H264_PPS_FLAG_BOTTOM_FIELD_PIC_ORDER_IN_FRAME_PRESENT,
        ) | flag(
            p.weighted_pred_flag,
            bindings::V4L2_H264_PPS_FLAG_WEIGHTED_PRED,
        ) | flag(
            p.deblocking_filter_control_present_flag,
            bindings::V4L2_H264_PPS_FLAG_DEBLOCKING_FILTER_CONTROL_PRESENT,
        ) | flag(
            p.constrained_intra_pred_flag,
            bindings::V4L2_H264_PPS_FLAG_CONSTRAINED_INTRA_PRED,
        ) | flag(
            p.redundant_pic_cnt_present_flag,
            bindings::V4L2_H264_PPS_FLAG_REDUNDANT_PIC_CNT_PRESENT,
        ) | flag(
            p.transform_8x8_mode_flag,
            bindings::V4L2_H264_PPS_FLAG_TRANSFORM_8X8_MODE,
        ) | flag(
            scaling_matrix_present,
            bindings::V4L2_H264_PPS_FLAG_SCALING_MATRIX_PRESENT,
        )) as u16,
    }
}

/// The lists in effect for the PPS, raster order. 8x8 lists beyond the two luma ones
/// are only meaningful (and only filled) for 4:4:4.
pub fn scaling_matrix(s: &Sps, p: &Pps) -> bindings::v4l2_ctrl_h264_scaling_matrix {
    let mut c = bindings::v4l2_ctrl_h264_scaling_matrix::default();
    for (dst, src) in c.scaling_list_4x4.iter_mut().zip(&p.scaling_lists.list_4x4) {
        *dst = raster_from_zigzag_4x4(src);
    }
    let n = if s.chroma_format_idc == 3 { 6 } else { 2 };
    for (dst, src) in c
        .scaling_list_8x8
        .iter_mut()
        .zip(&p.scaling_lists.list_8x8)
        .take(n)
    {
        *dst = raster_from_zigzag_8x8(src);
    }
    c
}

/// `v4l2_h264_dpb_entry` of a reference frame. `pic_num` is `PicNum` for short-term and
/// `LongTermPicNum` for long-term references, as the uAPI documents.
fn dpb_entry(p: &Picture, timestamp: u64) -> bindings::v4l2_h264_dpb_entry {
    let (pic_num, long_term) = match p.reference {
        Reference::LongTerm(idx) => (idx, true),
        _ => (p.pic_num() as u32, false),
    };
    bindings::v4l2_h264_dpb_entry {
        reference_ts: timestamp,
        pic_num,
        frame_num: p.frame_num as u16,
        fields: bindings::V4L2_H264_FRAME_REF as u8,
        top_field_order_cnt: p.top_field_order_cnt,
        bottom_field_order_cnt: p.bottom_field_order_cnt,
        flags: bindings::V4L2_H264_DPB_ENTRY_FLAG_VALID
            | bindings::V4L2_H264_DPB_ENTRY_FLAG_ACTIVE
            | flag(long_term, bindings::V4L2_H264_DPB_ENTRY_FLAG_LONG_TERM),
        ..Default::default()
    }
}

/// `V4L2_H264_DECODE_PARAM_FLAG_PFRAME` / `_BFRAME` (kernel 6.x uAPI; v4l2r's headers
/// predate them). Drivers such as tegra-vde and rkvdec build their own lists from them.
const DECODE_PARAM_FLAG_PFRAME: u32 = 0x08;
const DECODE_PARAM_FLAG_BFRAME: u32 = 0x10;

/// Where each DPB picture landed in `decode_params.dpb` (`None`: not listed).
pub type DpbSlots = Vec<Option<u8>>;

/// `v4l2_ctrl_h264_decode_params` of a frame: its first slice's syntax, its POC, and
/// the reference frames in DPB order (non-existing frames have no buffer: left out).
/// P/B flags follow the first slice's type.
pub fn decode_params(
    slice: &SliceHeader,
    top_field_order_cnt: i32,
    bottom_field_order_cnt: i32,
    dpb: &[Picture],
) -> (bindings::v4l2_ctrl_h264_decode_params, DpbSlots) {
    let mut c = bindings::v4l2_ctrl_h264_decode_params {
        nal_ref_idc: u16::from(slice.nal_ref_idc),
        frame_num: slice.frame_num,
        top_field_order_cnt,
        bottom_field_order_cnt,
        idr_pic_id: slice.idr_pic_id,
        pic_order_cnt_lsb: slice.pic_order_cnt_lsb,
        delta_pic_order_cnt_bottom: slice.delta_pic_order_cnt_bottom,
        delta_pic_order_cnt0: slice.delta_pic_order_cnt[0],
        delta_pic_order_cnt1: slice.delta_pic_order_cnt[1],
        dec_ref_pic_marking_bit_size: slice.dec_ref_pic_marking_bit_size,
        pic_order_cnt_bit_size: slice.pic_order_cnt_bit_size,
        slice_group_change_cycle: slice.slice_group_change_cycle,
        flags: flag(
            slice.idr_pic_flag,
            bindings::V4L2_H264_DECODE_PARAM_FLAG_IDR_PIC,
        ) | flag(
            matches!(slice.slice_type, SliceType::P | SliceType::Sp),
            DECODE_PARAM_FLAG_PFRAME,
        ) | flag(slice.slice_type == SliceType::B, DECODE_PARAM_FLAG_BFRAME),
        ..Default::default()
    };
    let mut slots = vec![None; dpb.len()];
    let mut next = 0;
    for (i, p) in dpb.iter().enumerate() {
        let Some(timestamp) = p.timestamp else {
            continue;
        };
        if !p.is_reference() || next >= c.dpb.len() {
            continue;
        }
        c.dpb[next] = dpb_entry(p, timestamp);
        slots[i] = Some(next as u8);
        next += 1;
    }
    (c, slots)
}

fn references(list: &RefList, slots: &DpbSlots) -> [bindings::v4l2_h264_reference; 32] {
    let mut out = [bindings::v4l2_h264_reference {
        fields: 0xff,
        index: 0xff,
    }; 32];
    for (dst, entry) in out.iter_mut().zip(list) {
        *dst = bindings::v4l2_h264_reference {
            fields: bindings::V4L2_H264_FRAME_REF as u8,
            index: entry
                .and_then(|i| slots.get(i).copied().flatten())
                .unwrap_or(0xff),
        };
    }
    out
}

/// `v4l2_ctrl_h264_slice_params` of one slice with its final reference lists.
pub fn slice_params(
    s: &SliceHeader,
    list0: &RefList,
    list1: &RefList,
    slots: &DpbSlots,
) -> bindings::v4l2_ctrl_h264_slice_params {
    bindings::v4l2_ctrl_h264_slice_params {
        header_bit_size: s.header_bit_size,
        first_mb_in_slice: s.first_mb_in_slice,
        slice_type: s.slice_type.as_v4l2(),
        colour_plane_id: s.colour_plane_id,
        redundant_pic_cnt: s.redundant_pic_cnt,
        cabac_init_idc: s.cabac_init_idc,
        slice_qp_delta: s.slice_qp_delta,
        slice_qs_delta: s.slice_qs_delta,
        disable_deblocking_filter_idc: s.disable_deblocking_filter_idc,
        slice_alpha_c0_offset_div2: s.slice_alpha_c0_offset_div2,
        slice_beta_offset_div2: s.slice_beta_offset_div2,
        num_ref_idx_l0_active_minus1: s.num_ref_idx_l0_active_minus1,
        num_ref_idx_l1_active_minus1: s.num_ref_idx_l1_active_minus1,
        reserved: 0,
        ref_pic_list0: references(list0, slots),
        ref_pic_list1: references(list1, slots),
        flags: flag(
            s.direct_spatial_mv_pred_flag,
            bindings::V4L2_H264_SLICE_FLAG_DIRECT_SPATIAL_MV_PRED,
        ) | flag(
            s.sp_for_switch_flag,
            bindings::V4L2_H264_SLICE_FLAG_SP_FOR_SWITCH,
        ),
    }
}

/// `v4l2_ctrl_h264_pred_weights`: the active entries of each list (list 1 for B slices
/// only), chroma only when `ChromaArrayType != 0`; zero when the slice has no table.
pub fn pred_weights(s: &SliceHeader, sps: &Sps) -> bindings::v4l2_ctrl_h264_pred_weights {
    let mut c = bindings::v4l2_ctrl_h264_pred_weights::default();
    let Some(t) = &s.pred_weight_table else {
        return c;
    };
    c.luma_log2_weight_denom = u16::from(t.luma_log2_weight_denom);
    c.chroma_log2_weight_denom = u16::from(t.chroma_log2_weight_denom);
    let lists: &[(usize, u8)] = if s.slice_type == SliceType::B {
        &[
            (0, s.num_ref_idx_l0_active_minus1),
            (1, s.num_ref_idx_l1_active_minus1),
        ]
    } else {
        &[(0, s.num_ref_idx_l0_active_minus1)]
    };
    for &(l, active_minus1) in lists {
        let f = &mut c.weight_factors[l];
        for i in 0..=usize::from(active_minus1).min(31) {
            f.luma_weight[i] = t.luma_weight[l][i];
            f.luma_offset[i] = t.luma_offset[l][i];
            if sps.chroma_array_type() != 0 {
                f.chroma_weight[i] = t.chroma_weight[l][i];
                f.chroma_offset[i] = t.chroma_offset[l][i];
            }
        }
    }
    c
}
