// SPDX-License-Identifier: MPL-2.0
//! DPB size and reorder depth of a sequence (A.3.1 Table A-1, E.2.1).

use mediapass_codecparsers::h264::Sps;

/// `MaxDpbMbs` of a level (Table A-1). `level_idc` 11 with `constraint_set3_flag` in
/// Baseline/Main/Extended is level 1b.
fn max_dpb_mbs(sps: &Sps) -> u32 {
    let constraint_set3 = sps.constraint_set_flags & (1 << 3) != 0;
    match sps.level_idc {
        9 | 10 => 396,
        11 if constraint_set3 && matches!(sps.profile_idc, 66 | 77 | 88) => 396,
        11 => 900,
        12 | 13 | 20 => 2376,
        21 => 4752,
        22 | 30 => 8100,
        31 => 18000,
        32 => 20480,
        40 | 41 => 32768,
        42 => 34816,
        50 => 110400,
        51 | 52 => 184320,
        _ => 696320,
    }
}

/// Frame buffers of the DPB: from the level, or `max_dec_frame_buffering` when the VUI
/// gives it; never below `max_num_ref_frames`, at most 16.
pub fn dpb_size(sps: &Sps) -> usize {
    let frame_mbs = sps
        .pic_width_in_mbs()
        .saturating_mul(sps.frame_height_in_mbs())
        .max(1);
    let mut size = (max_dpb_mbs(sps) / frame_mbs) as usize;
    if let Some(vui) = &sps.vui
        && vui.bitstream_restriction_flag
    {
        size = vui.max_dec_frame_buffering as usize;
    }
    size.max(usize::from(sps.max_num_ref_frames)).clamp(1, 16)
}

/// Pictures that may precede another in decoding order and follow it in output order.
pub fn max_num_reorder(sps: &Sps) -> usize {
    if let Some(vui) = &sps.vui
        && vui.bitstream_restriction_flag
    {
        return vui.max_num_reorder_frames as usize;
    }
    let constraint_set3 = sps.constraint_set_flags & (1 << 3) != 0;
    // Intra-only profiles (E.2.1 inference for constraint_set3 in High profiles).
    if constraint_set3 && matches!(sps.profile_idc, 44 | 86 | 100 | 110 | 122 | 244) {
        return 0;
    }
    dpb_size(sps)
}
