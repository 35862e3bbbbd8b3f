// SPDX-License-Identifier: MPL-2.0
//! H.264 parser against independent oracles on streams made by x264 and openh264:
//! every syntax element ffmpeg's `trace_headers` prints is compared field by field
//! (values and the bit sizes V4L2 wants), POC order against ffprobe's display order,
//! and the AVC (`avcC` + length-prefixed) path against ffmpeg's MP4 muxer.

mod ffmpeg_trace;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use ffmpeg_trace::{TraceUnit, base_name, require_tool, run, trace_headers, work_dir, y4m_source};
use mediapass_codecparsers::annexb::{AvcDecoderConfig, LengthPrefixedNals, StartCodeUnits};
use mediapass_codecparsers::h264::{
    NalHeader, ParameterSets, ParsedNal, PocCalculator, PocInput, SliceHeader,
    raster_from_zigzag_4x4, raster_from_zigzag_8x8,
};

/// Syntax elements of the trace that are checked elsewhere or carry no decoder state.
const NOT_COMPARED: &[&str] = &[
    "forbidden_zero_bit",
    "reserved_zero_2bits",
    "rbsp_stop_one_bit",
    "rbsp_alignment_zero_bit",
    "cabac_alignment_one_bit",
    // Scaling lists are compared as resolved matrices in `custom_scaling_lists`.
    "seq_scaling_list_present_flag",
    "pic_scaling_list_present_flag",
    "delta_scale",
    // Presence flags whose content is compared.
    "aspect_ratio_info_present_flag",
    "video_signal_type_present_flag",
    "chroma_loc_info_present_flag",
    "num_ref_frames_in_pic_order_cnt_cycle",
];

/// Titles of units that are compared field by field.
const COMPARED_UNITS: &[&str] = &[
    "Sequence Parameter Set",
    "Picture Parameter Set",
    "Slice Header",
    "Access Unit Delimiter",
];

fn put(map: &mut HashMap<String, Vec<i64>>, name: impl Into<String>, value: impl Into<i64>) {
    map.entry(name.into()).or_default().push(value.into());
}

fn set(map: &mut HashMap<String, Vec<i64>>, name: impl Into<String>, value: impl Into<i64>) {
    map.insert(name.into(), vec![value.into()]);
}

/// Our parse result under ffmpeg's syntax element names.
fn our_fields(header: &NalHeader, nal: &ParsedNal) -> HashMap<String, Vec<i64>> {
    let mut m = HashMap::new();
    set(&mut m, "nal_ref_idc", header.nal_ref_idc);
    set(&mut m, "nal_unit_type", header.nal_unit_type_value);
    match nal {
        ParsedNal::Sps(s) => {
            set(&mut m, "profile_idc", s.profile_idc);
            for i in 0..6 {
                set(
                    &mut m,
                    format!("constraint_set{i}_flag"),
                    (s.constraint_set_flags >> i) & 1,
                );
            }
            set(&mut m, "level_idc", s.level_idc);
            set(&mut m, "seq_parameter_set_id", s.seq_parameter_set_id);
            set(&mut m, "chroma_format_idc", s.chroma_format_idc);
            set(
                &mut m,
                "separate_colour_plane_flag",
                s.separate_colour_plane_flag,
            );
            set(&mut m, "bit_depth_luma_minus8", s.bit_depth_luma_minus8);
            set(&mut m, "bit_depth_chroma_minus8", s.bit_depth_chroma_minus8);
            set(
                &mut m,
                "qpprime_y_zero_transform_bypass_flag",
                s.qpprime_y_zero_transform_bypass_flag,
            );
            set(
                &mut m,
                "seq_scaling_matrix_present_flag",
                s.seq_scaling_matrix_present_flag,
            );
            set(
                &mut m,
                "log2_max_frame_num_minus4",
                s.log2_max_frame_num_minus4,
            );
            set(&mut m, "pic_order_cnt_type", s.pic_order_cnt_type);
            set(
                &mut m,
                "log2_max_pic_order_cnt_lsb_minus4",
                s.log2_max_pic_order_cnt_lsb_minus4,
            );
            set(
                &mut m,
                "delta_pic_order_always_zero_flag",
                s.delta_pic_order_always_zero_flag,
            );
            set(&mut m, "offset_for_non_ref_pic", s.offset_for_non_ref_pic);
            set(
                &mut m,
                "offset_for_top_to_bottom_field",
                s.offset_for_top_to_bottom_field,
            );
            for (i, o) in s.offset_for_ref_frame.iter().enumerate() {
                set(&mut m, format!("offset_for_ref_frame[{i}]"), *o);
            }
            set(&mut m, "max_num_ref_frames", s.max_num_ref_frames);
            set(
                &mut m,
                "gaps_in_frame_num_allowed_flag",
                s.gaps_in_frame_num_value_allowed_flag,
            );
            set(&mut m, "pic_width_in_mbs_minus1", s.pic_width_in_mbs_minus1);
            set(
                &mut m,
                "pic_height_in_map_units_minus1",
                s.pic_height_in_map_units_minus1,
            );
            set(&mut m, "frame_mbs_only_flag", s.frame_mbs_only_flag);
            set(
                &mut m,
                "mb_adaptive_frame_field_flag",
                s.mb_adaptive_frame_field_flag,
            );
            set(
                &mut m,
                "direct_8x8_inference_flag",
                s.direct_8x8_inference_flag,
            );
            set(&mut m, "frame_cropping_flag", s.frame_cropping_flag);
            set(&mut m, "frame_crop_left_offset", s.frame_crop_left_offset);
            set(&mut m, "frame_crop_right_offset", s.frame_crop_right_offset);
            set(&mut m, "frame_crop_top_offset", s.frame_crop_top_offset);
            set(
                &mut m,
                "frame_crop_bottom_offset",
                s.frame_crop_bottom_offset,
            );
            set(&mut m, "vui_parameters_present_flag", s.vui.is_some());
            if let Some(v) = &s.vui {
                set(&mut m, "aspect_ratio_idc", v.aspect_ratio_idc);
                set(&mut m, "sar_width", v.sar_width);
                set(&mut m, "sar_height", v.sar_height);
                set(
                    &mut m,
                    "overscan_info_present_flag",
                    v.overscan_info_present_flag,
                );
                set(
                    &mut m,
                    "overscan_appropriate_flag",
                    v.overscan_appropriate_flag,
                );
                set(&mut m, "video_format", v.video_format);
                set(&mut m, "video_full_range_flag", v.video_full_range_flag);
                set(
                    &mut m,
                    "colour_description_present_flag",
                    v.colour_description_present_flag,
                );
                set(&mut m, "colour_primaries", v.colour_primaries);
                set(
                    &mut m,
                    "transfer_characteristics",
                    v.transfer_characteristics,
                );
                set(&mut m, "matrix_coefficients", v.matrix_coefficients);
                set(
                    &mut m,
                    "chroma_sample_loc_type_top_field",
                    v.chroma_sample_loc_type_top_field,
                );
                set(
                    &mut m,
                    "chroma_sample_loc_type_bottom_field",
                    v.chroma_sample_loc_type_bottom_field,
                );
                set(
                    &mut m,
                    "timing_info_present_flag",
                    v.timing_info_present_flag,
                );
                set(&mut m, "num_units_in_tick", v.num_units_in_tick);
                set(&mut m, "time_scale", v.time_scale);
                set(&mut m, "fixed_frame_rate_flag", v.fixed_frame_rate_flag);
                set(
                    &mut m,
                    "nal_hrd_parameters_present_flag",
                    v.nal_hrd_parameters.is_some(),
                );
                set(
                    &mut m,
                    "vcl_hrd_parameters_present_flag",
                    v.vcl_hrd_parameters.is_some(),
                );
                for hrd in [&v.nal_hrd_parameters, &v.vcl_hrd_parameters]
                    .into_iter()
                    .flatten()
                {
                    put(&mut m, "cpb_cnt_minus1", hrd.cpb_cnt_minus1);
                    put(&mut m, "bit_rate_scale", hrd.bit_rate_scale);
                    put(&mut m, "cpb_size_scale", hrd.cpb_size_scale);
                    for i in 0..hrd.bit_rate_value_minus1.len() {
                        put(
                            &mut m,
                            format!("bit_rate_value_minus1[{i}]"),
                            hrd.bit_rate_value_minus1[i],
                        );
                        put(
                            &mut m,
                            format!("cpb_size_value_minus1[{i}]"),
                            hrd.cpb_size_value_minus1[i],
                        );
                        put(&mut m, format!("cbr_flag[{i}]"), hrd.cbr_flag[i]);
                    }
                    put(
                        &mut m,
                        "initial_cpb_removal_delay_length_minus1",
                        hrd.initial_cpb_removal_delay_length_minus1,
                    );
                    put(
                        &mut m,
                        "cpb_removal_delay_length_minus1",
                        hrd.cpb_removal_delay_length_minus1,
                    );
                    put(
                        &mut m,
                        "dpb_output_delay_length_minus1",
                        hrd.dpb_output_delay_length_minus1,
                    );
                    put(&mut m, "time_offset_length", hrd.time_offset_length);
                }
                set(&mut m, "low_delay_hrd_flag", v.low_delay_hrd_flag);
                set(&mut m, "pic_struct_present_flag", v.pic_struct_present_flag);
                set(
                    &mut m,
                    "bitstream_restriction_flag",
                    v.bitstream_restriction_flag,
                );
                set(
                    &mut m,
                    "motion_vectors_over_pic_boundaries_flag",
                    v.motion_vectors_over_pic_boundaries_flag,
                );
                set(&mut m, "max_bytes_per_pic_denom", v.max_bytes_per_pic_denom);
                set(&mut m, "max_bits_per_mb_denom", v.max_bits_per_mb_denom);
                set(
                    &mut m,
                    "log2_max_mv_length_horizontal",
                    v.log2_max_mv_length_horizontal,
                );
                set(
                    &mut m,
                    "log2_max_mv_length_vertical",
                    v.log2_max_mv_length_vertical,
                );
                set(&mut m, "max_num_reorder_frames", v.max_num_reorder_frames);
                set(&mut m, "max_dec_frame_buffering", v.max_dec_frame_buffering);
            }
        }
        ParsedNal::Pps(p) => {
            set(&mut m, "pic_parameter_set_id", p.pic_parameter_set_id);
            set(&mut m, "seq_parameter_set_id", p.seq_parameter_set_id);
            set(
                &mut m,
                "entropy_coding_mode_flag",
                p.entropy_coding_mode_flag,
            );
            set(
                &mut m,
                "bottom_field_pic_order_in_frame_present_flag",
                p.bottom_field_pic_order_in_frame_present_flag,
            );
            set(&mut m, "num_slice_groups_minus1", p.num_slice_groups_minus1);
            set(
                &mut m,
                "num_ref_idx_l0_default_active_minus1",
                p.num_ref_idx_l0_default_active_minus1,
            );
            set(
                &mut m,
                "num_ref_idx_l1_default_active_minus1",
                p.num_ref_idx_l1_default_active_minus1,
            );
            set(&mut m, "weighted_pred_flag", p.weighted_pred_flag);
            set(&mut m, "weighted_bipred_idc", p.weighted_bipred_idc);
            set(&mut m, "pic_init_qp_minus26", p.pic_init_qp_minus26);
            set(&mut m, "pic_init_qs_minus26", p.pic_init_qs_minus26);
            set(&mut m, "chroma_qp_index_offset", p.chroma_qp_index_offset);
            set(
                &mut m,
                "deblocking_filter_control_present_flag",
                p.deblocking_filter_control_present_flag,
            );
            set(
                &mut m,
                "constrained_intra_pred_flag",
                p.constrained_intra_pred_flag,
            );
            set(
                &mut m,
                "redundant_pic_cnt_present_flag",
                p.redundant_pic_cnt_present_flag,
            );
            set(&mut m, "transform_8x8_mode_flag", p.transform_8x8_mode_flag);
            set(
                &mut m,
                "pic_scaling_matrix_present_flag",
                p.pic_scaling_matrix_present_flag,
            );
            set(
                &mut m,
                "second_chroma_qp_index_offset",
                p.second_chroma_qp_index_offset,
            );
        }
        ParsedNal::Slice(s) => slice_fields(&mut m, s),
        ParsedNal::AccessUnitDelimiter { primary_pic_type } => {
            set(&mut m, "primary_pic_type", *primary_pic_type);
        }
        _ => {}
    }
    m
}

fn slice_fields(m: &mut HashMap<String, Vec<i64>>, s: &SliceHeader) {
    set(m, "first_mb_in_slice", s.first_mb_in_slice);
    set(m, "slice_type", s.slice_type_raw);
    set(m, "pic_parameter_set_id", s.pic_parameter_set_id);
    set(m, "colour_plane_id", s.colour_plane_id);
    set(m, "frame_num", s.frame_num);
    set(m, "field_pic_flag", s.field_pic_flag);
    set(m, "bottom_field_flag", s.bottom_field_flag);
    set(m, "idr_pic_id", s.idr_pic_id);
    set(m, "pic_order_cnt_lsb", s.pic_order_cnt_lsb);
    set(
        m,
        "delta_pic_order_cnt_bottom",
        s.delta_pic_order_cnt_bottom,
    );
    set(m, "delta_pic_order_cnt[0]", s.delta_pic_order_cnt[0]);
    set(m, "delta_pic_order_cnt[1]", s.delta_pic_order_cnt[1]);
    set(m, "redundant_pic_cnt", s.redundant_pic_cnt);
    set(
        m,
        "direct_spatial_mv_pred_flag",
        s.direct_spatial_mv_pred_flag,
    );
    set(
        m,
        "num_ref_idx_active_override_flag",
        s.num_ref_idx_active_override_flag,
    );
    set(
        m,
        "num_ref_idx_l0_active_minus1",
        s.num_ref_idx_l0_active_minus1,
    );
    set(
        m,
        "num_ref_idx_l1_active_minus1",
        s.num_ref_idx_l1_active_minus1,
    );
    set(
        m,
        "ref_pic_list_modification_flag_l0",
        s.ref_pic_list_modification_flag_l0,
    );
    set(
        m,
        "ref_pic_list_modification_flag_l1",
        s.ref_pic_list_modification_flag_l1,
    );
    for (flag, ops) in [
        (
            s.ref_pic_list_modification_flag_l0,
            &s.ref_pic_list_modification_l0,
        ),
        (
            s.ref_pic_list_modification_flag_l1,
            &s.ref_pic_list_modification_l1,
        ),
    ] {
        if !flag {
            continue;
        }
        for op in ops {
            put(
                m,
                "modification_of_pic_nums_idc",
                op.modification_of_pic_nums_idc,
            );
            let name = if op.modification_of_pic_nums_idc == 2 {
                "long_term_pic_num"
            } else {
                "abs_diff_pic_num_minus1"
            };
            put(m, name, op.value);
        }
        put(m, "modification_of_pic_nums_idc", 3);
    }
    if let Some(w) = &s.pred_weight_table {
        set(m, "luma_log2_weight_denom", w.luma_log2_weight_denom);
        set(m, "chroma_log2_weight_denom", w.chroma_log2_weight_denom);
        for l in 0..2 {
            for i in 0..32 {
                set(
                    m,
                    format!("luma_weight_l{l}_flag[{i}]"),
                    w.luma_weight_flag[l][i],
                );
                set(m, format!("luma_weight_l{l}[{i}]"), w.luma_weight[l][i]);
                set(m, format!("luma_offset_l{l}[{i}]"), w.luma_offset[l][i]);
                set(
                    m,
                    format!("chroma_weight_l{l}_flag[{i}]"),
                    w.chroma_weight_flag[l][i],
                );
                for j in 0..2 {
                    set(
                        m,
                        format!("chroma_weight_l{l}[{i}][{j}]"),
                        w.chroma_weight[l][i][j],
                    );
                    set(
                        m,
                        format!("chroma_offset_l{l}[{i}][{j}]"),
                        w.chroma_offset[l][i][j],
                    );
                }
            }
        }
    }
    if let Some(d) = &s.dec_ref_pic_marking {
        set(
            m,
            "no_output_of_prior_pics_flag",
            d.no_output_of_prior_pics_flag,
        );
        set(m, "long_term_reference_flag", d.long_term_reference_flag);
        set(
            m,
            "adaptive_ref_pic_marking_mode_flag",
            d.adaptive_ref_pic_marking_mode_flag,
        );
        if d.adaptive_ref_pic_marking_mode_flag {
            for op in &d.operations {
                let mmco = op.memory_management_control_operation;
                put(m, "memory_management_control_operation", mmco);
                if mmco == 1 || mmco == 3 {
                    put(
                        m,
                        "difference_of_pic_nums_minus1",
                        op.difference_of_pic_nums_minus1,
                    );
                }
                if mmco == 2 {
                    put(m, "long_term_pic_num", op.long_term_pic_num);
                }
                if mmco == 3 || mmco == 6 {
                    put(m, "long_term_frame_idx", op.long_term_frame_idx);
                }
                if mmco == 4 {
                    put(
                        m,
                        "max_long_term_frame_idx_plus1",
                        op.max_long_term_frame_idx_plus1,
                    );
                }
            }
            put(m, "memory_management_control_operation", 0);
        }
    }
    set(m, "cabac_init_idc", s.cabac_init_idc);
    set(m, "slice_qp_delta", s.slice_qp_delta);
    set(m, "sp_for_switch_flag", s.sp_for_switch_flag);
    set(m, "slice_qs_delta", s.slice_qs_delta);
    set(
        m,
        "disable_deblocking_filter_idc",
        s.disable_deblocking_filter_idc,
    );
    set(
        m,
        "slice_alpha_c0_offset_div2",
        s.slice_alpha_c0_offset_div2,
    );
    set(m, "slice_beta_offset_div2", s.slice_beta_offset_div2);
    set(m, "slice_group_change_cycle", s.slice_group_change_cycle);
}

/// Bit sizes from the trace positions (RBSP domain, NAL header excluded).
fn check_bit_sizes(unit: &TraceUnit, s: &SliceHeader, what: &str) {
    let end = unit
        .first("cabac_alignment_one_bit")
        .map(|f| f.pos)
        .unwrap_or_else(|| {
            let last = unit.fields.last().expect("slice fields");
            last.pos + last.bits
        });
    assert_eq!(
        s.slice_header_bits as usize,
        end - 8,
        "{what}: header bit size"
    );
    let poc = unit.span_bits(&[
        "pic_order_cnt_lsb",
        "delta_pic_order_cnt_bottom",
        "delta_pic_order_cnt",
    ]);
    assert_eq!(
        s.pic_order_cnt_bit_size_rbsp as usize, poc,
        "{what}: POC bit size"
    );
    let marking = unit.span_bits(&[
        "no_output_of_prior_pics_flag",
        "long_term_reference_flag",
        "adaptive_ref_pic_marking_mode_flag",
        "memory_management_control_operation",
        "difference_of_pic_nums_minus1",
        "long_term_pic_num",
        "long_term_frame_idx",
        "max_long_term_frame_idx_plus1",
    ]);
    // long_term_pic_num can also end a ref list modification right before a
    // pred weight table; span_bits takes the first run, which starts at the marking
    // only if no modification used it. x264 never emits long-term modifications.
    assert_eq!(
        s.dec_ref_pic_marking_bit_size_rbsp as usize, marking,
        "{what}: dec_ref_pic_marking bit size"
    );
    // V4L2's header_bit_size counts the NAL header and no emulation-prevention bytes:
    // exactly the trace's position of the first slice_data() bit.
    assert_eq!(
        s.header_bit_size as usize, end,
        "{what}: V4L2 header_bit_size"
    );
    assert_eq!(
        s.slice_header_bits_escaped - s.slice_header_bits,
        8 * s.header_emulation_prevention_bytes
    );
}

#[derive(Default, Debug)]
struct Coverage {
    slices: usize,
    b_slices: usize,
    fields_compared: usize,
    modifications: usize,
    mmco: usize,
    weights: usize,
    field_or_mbaff: usize,
    aud: usize,
    sei: usize,
}

/// Parses an Annex-B file with ours and compares every traced unit with the oracle.
fn compare_with_trace(path: &Path) -> Coverage {
    let data = std::fs::read(path).unwrap();
    let trace = trace_headers(path);
    let mut sets = ParameterSets::default();
    let mut coverage = Coverage::default();
    let nals: Vec<&[u8]> = StartCodeUnits::new(&data).map(|u| u.data).collect();
    assert_eq!(
        nals.len(),
        trace.len(),
        "{}: NAL count differs from the oracle's units: {:?}",
        path.display(),
        trace.iter().map(|u| &u.title).collect::<Vec<_>>()
    );
    for (index, (nal, unit)) in nals.iter().zip(&trace).enumerate() {
        let what = format!("{} unit {index} ({})", path.display(), unit.title);
        let header = NalHeader::parse(nal).unwrap();
        let parsed = sets
            .parse_nal(nal)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        match &parsed {
            ParsedNal::Sei(msgs) => {
                coverage.sei += 1;
                assert_eq!(
                    msgs.len(),
                    unit.values("last_payload_type_byte").len(),
                    "{what}: SEI message count"
                );
                continue;
            }
            ParsedNal::AccessUnitDelimiter { .. } => coverage.aud += 1,
            _ => {}
        }
        if !COMPARED_UNITS.contains(&unit.title.as_str()) {
            continue;
        }
        let ours = our_fields(&header, &parsed);
        for (name, values) in unit.by_name() {
            if NOT_COMPARED.contains(&base_name(&name)) {
                continue;
            }
            let mine = ours
                .get(&name)
                .unwrap_or_else(|| panic!("{what}: we do not expose `{name}`"));
            assert_eq!(mine, &values, "{what}: `{name}`");
            coverage.fields_compared += values.len();
        }
        if let ParsedNal::Slice(s) = &parsed {
            check_bit_sizes(unit, s, &what);
            coverage.slices += 1;
            coverage.b_slices += usize::from(s.slice_type_raw % 5 == 1);
            coverage.modifications +=
                s.ref_pic_list_modification_l0.len() + s.ref_pic_list_modification_l1.len();
            coverage.mmco += s
                .dec_ref_pic_marking
                .as_ref()
                .map_or(0, |d| d.operations.len());
            coverage.weights += usize::from(s.pred_weight_table.is_some());
            coverage.field_or_mbaff += usize::from(
                s.field_pic_flag
                    || s.mbaff_frame_flag(sets.sps(u32::from(s.seq_parameter_set_id)).unwrap()),
            );
        }
    }
    coverage
}

/// Checks that POC order equals display order as ffprobe (libavcodec's decoder) sees it.
fn check_poc_order(path: &Path) {
    let ffprobe = require_tool("ffprobe", "ffmpeg");
    let out = run(Command::new(ffprobe)
        .args([
            "-v",
            "error",
            "-show_entries",
            "frame=coded_picture_number",
            "-of",
            "csv=p=0",
        ])
        .arg(path));
    let display_order: Vec<usize> = String::from_utf8_lossy(&out)
        .lines()
        .filter_map(|l| l.split(',').next()?.trim().parse().ok())
        .collect();
    let data = std::fs::read(path).unwrap();
    let mut sets = ParameterSets::default();
    let mut calc = PocCalculator::new();
    let mut pocs = Vec::new();
    let mut idr_periods = 0usize;
    for unit in StartCodeUnits::new(&data) {
        if let ParsedNal::Slice(s) = sets.parse_nal(unit.data).unwrap()
            && s.first_mb_in_slice == 0
        {
            let sps = sets.sps(u32::from(s.seq_parameter_set_id)).unwrap();
            let input = PocInput::from(s.as_ref());
            idr_periods += usize::from(s.idr_pic_flag);
            // POC restarts at every IDR: order by (IDR period, POC).
            pocs.push((idr_periods, calc.compute(sps, &input).pic_order_cnt(&input)));
        }
    }
    assert_eq!(
        pocs.len(),
        display_order.len(),
        "{}: picture count",
        path.display()
    );
    let mut ours: Vec<usize> = (0..pocs.len()).collect();
    ours.sort_by_key(|&i| (pocs[i], i));
    assert_eq!(ours, display_order, "{}: POCs {pocs:?}", path.display());
}

fn x264(dir: &Path, name: &str, source: &Path, args: &[&str]) -> PathBuf {
    let x264 = require_tool("x264", "x264");
    let out = dir.join(format!("{name}.264"));
    run(Command::new(x264)
        .args(["--quiet", "--no-progress", "--threads", "1"])
        .args(args)
        .arg("-o")
        .arg(&out)
        .arg(source));
    out
}

#[test]
fn x264_streams_match_trace_headers() {
    let dir = work_dir("h264_x264");
    let src = y4m_source(&dir, 24, "176x144", "yuv420p");
    let streams = [
        (
            "cabac_bpyramid_weighted_slices",
            vec![
                "--bframes",
                "3",
                "--b-adapt",
                "0",
                "--b-pyramid",
                "normal",
                "--ref",
                "4",
                "--weightp",
                "2",
                "--weightb",
                "--slices",
                "4",
                "--8x8dct",
                "--cqm",
                "jvt",
                "--aud",
            ],
        ),
        (
            "cavlc_poc_type2",
            vec![
                "--no-cabac",
                "--bframes",
                "0",
                "--slices",
                "3",
                "--no-8x8dct",
            ],
        ),
        (
            "mbaff_tff",
            vec![
                "--tff",
                "--bframes",
                "2",
                "--b-adapt",
                "0",
                "--ref",
                "3",
                "--weightp",
                "1",
            ],
        ),
        (
            "high10",
            vec!["--output-depth", "10", "--bframes", "2", "--cqm", "jvt"],
        ),
        (
            "high444_lists",
            vec![
                "--output-csp",
                "i444",
                "--cqm",
                "jvt",
                "--bframes",
                "1",
                "--b-adapt",
                "0",
            ],
        ),
        (
            "constrained_baseline",
            vec!["--profile", "baseline", "--keyint", "8", "--ref", "2"],
        ),
    ];
    let mut total = Coverage::default();
    for (name, args) in &streams {
        let path = x264(&dir, name, &src, args);
        let c = compare_with_trace(&path);
        check_poc_order(&path);
        eprintln!("{name}: {c:?}");
        total.slices += c.slices;
        total.b_slices += c.b_slices;
        total.fields_compared += c.fields_compared;
        total.modifications += c.modifications;
        total.mmco += c.mmco;
        total.weights += c.weights;
        total.field_or_mbaff += c.field_or_mbaff;
        total.aud += c.aud;
        total.sei += c.sei;
    }
    // The streams must really exercise what this test claims to check.
    assert!(total.b_slices > 10, "{total:?}");
    assert!(total.modifications > 0, "{total:?}");
    assert!(total.mmco > 0, "{total:?}");
    assert!(total.weights > 0, "{total:?}");
    assert!(total.field_or_mbaff > 0, "{total:?}");
    assert!(total.aud > 0 && total.sei > 0, "{total:?}");
    assert!(total.fields_compared > 5000, "{total:?}");
}

#[test]
fn openh264_stream_matches_trace_headers() {
    let gst = require_tool("gst-launch-1.0", "gstreamer1.0-tools");
    let dir = work_dir("h264_openh264");
    let path = dir.join("openh264.264");
    run(Command::new(gst)
        .args(["-q", "videotestsrc", "num-buffers=20", "pattern=ball", "!"])
        .args([
            "video/x-raw,width=176,height=144,framerate=25/1",
            "!",
            "openh264enc",
            "!",
        ])
        .args(["video/x-h264,stream-format=byte-stream", "!", "filesink"])
        .arg(format!("location={}", path.display())));
    let c = compare_with_trace(&path);
    assert!(c.slices >= 20, "{c:?}");
    check_poc_order(&path);
}

#[test]
fn custom_scaling_lists() {
    let dir = work_dir("h264_cqm");
    let src = y4m_source(&dir, 4, "176x144", "yuv420p");
    // Distinct values per position so a wrong scan order or fall-back cannot pass.
    let list4: Vec<u32> = (0..16).map(|i| 10 + 3 * i).collect();
    let list8: Vec<u32> = (0..64).map(|i| 8 + i).collect();
    let csv = |v: &[u32]| v.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
    let path = x264(
        &dir,
        "cqm",
        &src,
        &[
            "--8x8dct",
            "--cqm4iy",
            &csv(&list4),
            "--cqm8i",
            &csv(&list8),
        ],
    );
    let data = std::fs::read(&path).unwrap();
    let mut sets = ParameterSets::default();
    let mut pps = None;
    for unit in StartCodeUnits::new(&data) {
        if let ParsedNal::Pps(p) = sets.parse_nal(unit.data).unwrap() {
            pps = Some(p);
        }
    }
    let pps = pps.expect("PPS in stream");
    let sps = sets.sps(u32::from(pps.seq_parameter_set_id)).unwrap();
    // x264 puts custom matrices into the SPS; the PPS inherits them.
    let lists = if sps.seq_scaling_matrix_present_flag {
        &sps.scaling_lists
    } else {
        &pps.scaling_lists
    };
    assert_eq!(pps.scaling_lists, *lists);
    let raster4: Vec<u32> = raster_from_zigzag_4x4(&lists.list_4x4[0])
        .iter()
        .map(|&v| u32::from(v))
        .collect();
    assert_eq!(raster4, list4, "intra Y 4x4 (raster)");
    let raster8: Vec<u32> = raster_from_zigzag_8x8(&lists.list_8x8[0])
        .iter()
        .map(|&v| u32::from(v))
        .collect();
    assert_eq!(raster8, list8, "intra Y 8x8 (raster)");
    // Inter lists were not given: x264 leaves them flat.
    assert_eq!(lists.list_4x4[3], [16; 16]);
}

#[test]
fn avc_length_prefixed_and_avcc_match_annexb() {
    let ffmpeg = require_tool("ffmpeg", "ffmpeg");
    let dir = work_dir("h264_avc");
    let src = y4m_source(&dir, 10, "176x144", "yuv420p");
    let annexb_path = x264(&dir, "avc", &src, &["--bframes", "0"]);
    let mp4 = dir.join("avc.mp4");
    run(Command::new(ffmpeg)
        .args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
        .arg(&annexb_path)
        .args(["-c", "copy"])
        .arg(&mp4));
    let file = std::fs::read(&mp4).unwrap();
    let avcc_at = file
        .windows(4)
        .position(|w| w == b"avcC")
        .expect("avcC box")
        + 4;
    let avcc_size = u32::from_be_bytes(file[avcc_at - 8..avcc_at - 4].try_into().unwrap()) as usize;
    let config = AvcDecoderConfig::parse(&file[avcc_at..avcc_at - 8 + avcc_size]).unwrap();
    let annexb = std::fs::read(&annexb_path).unwrap();
    let nals: Vec<&[u8]> = StartCodeUnits::new(&annexb).map(|u| u.data).collect();
    assert_eq!(config.sps, vec![nals[0]]);
    assert_eq!(config.pps, vec![nals[1]]);
    assert_eq!(config.nal_length_size, 4);
    let mdat_at = file
        .windows(4)
        .position(|w| w == b"mdat")
        .expect("mdat box")
        + 4;
    let mdat_size = u32::from_be_bytes(file[mdat_at - 8..mdat_at - 4].try_into().unwrap()) as usize;
    let samples: Vec<&[u8]> = LengthPrefixedNals::new(&file[mdat_at..mdat_at - 8 + mdat_size], 4)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    // The muxer copies SPS/PPS into avcC and keeps every NAL unit in the samples.
    assert_eq!(samples.len(), nals.len(), "NAL count in mdat");
    assert!(
        samples == nals,
        "length-prefixed NAL units differ from the Annex-B ones"
    );
}

#[test]
fn every_truncation_of_real_nal_units_is_a_typed_error() {
    let dir = work_dir("h264_truncation");
    let src = y4m_source(&dir, 3, "64x64", "yuv420p");
    let path = x264(
        &dir,
        "trunc",
        &src,
        &[
            "--bframes",
            "1",
            "--b-adapt",
            "0",
            "--weightp",
            "2",
            "--cqm",
            "jvt",
            "--slices",
            "2",
        ],
    );
    let data = std::fs::read(&path).unwrap();
    let mut sets = ParameterSets::default();
    let mut truncated_errors = 0;
    for unit in StartCodeUnits::new(&data) {
        let full = sets.clone().parse_nal(unit.data).unwrap();
        // How many bytes the parser must see before it can succeed.
        let needed = match &full {
            // The last byte may hold only the stop bit.
            ParsedNal::Sps(_) => unit.data.len() - 1,
            // Everything up to and including the last header bit.
            ParsedNal::Slice(s) => (s.header_bit_size as usize).div_ceil(8),
            // PPS: a cut before the optional FRExt part is a valid shorter PPS.
            _ => 1,
        };
        for len in 0..needed {
            match sets.clone().parse_nal(&unit.data[..len]) {
                Err(e) => {
                    assert!(!e.to_string().is_empty());
                    truncated_errors += 1;
                }
                Ok(parsed) => panic!("{len}-byte prefix of {full:?} parsed as {parsed:?}"),
            }
        }
        sets.parse_nal(unit.data).unwrap();
    }
    assert!(truncated_errors > 50);
}
