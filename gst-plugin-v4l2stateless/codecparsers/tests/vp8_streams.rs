// SPDX-License-Identifier: MPL-2.0
//! VP8 parsing of real streams (vpxenc-generated and cros-codecs' test vector),
//! compared field by field with cros-codecs' VP8 parser (an independent
//! implementation derived from GStreamer's and Chromium's), including the
//! probabilities after this frame's updates and the bool-decoder state.

mod common;

use common::{cros_codecs_file, ivf_frames, stream};
use cros_codecs::codec::vp8::parser::Parser as OracleParser;
use mediapass_codecparsers::vp8::{Vp8FrameHeader, Vp8Parser};

fn compare_stream(name: &str, data: &[u8]) -> Vec<Vp8FrameHeader> {
    let mut ours = Vp8Parser::new();
    let mut oracle = OracleParser::default();
    let mut headers = Vec::new();
    for (n, frame) in ivf_frames(data).iter().enumerate() {
        let h = ours
            .parse_frame(frame)
            .unwrap_or_else(|e| panic!("{name}: frame {n}: {e}"));
        let o = oracle
            .parse_frame(frame)
            .unwrap_or_else(|e| panic!("{name}: frame {n}: oracle: {e}"))
            .header;
        let ctx = format!("{name}: frame {n}");
        assert_eq!(h.key_frame, o.key_frame, "{ctx}: key_frame");
        assert_eq!(h.version, o.version, "{ctx}: version");
        assert_eq!(h.show_frame, o.show_frame, "{ctx}: show_frame");
        assert_eq!(
            h.first_part_size, o.first_part_size,
            "{ctx}: first_part_size"
        );
        if h.key_frame {
            assert_eq!((h.width, h.height), (o.width, o.height), "{ctx}: size");
            assert_eq!(
                (h.horizontal_scale, h.vertical_scale),
                (o.horiz_scale_code, o.vert_scale_code),
                "{ctx}: scale"
            );
            assert_eq!(h.color_space, o.color_space, "{ctx}: color_space");
            assert_eq!(h.clamping_type, o.clamping_type, "{ctx}: clamping_type");
        }
        let seg = oracle.segmentation();
        assert_eq!(
            h.segmentation.enabled, seg.segmentation_enabled,
            "{ctx}: segmentation_enabled"
        );
        if h.segmentation.enabled {
            assert_eq!(
                h.segmentation.update_map, seg.update_mb_segmentation_map,
                "{ctx}"
            );
            assert_eq!(
                h.segmentation.update_feature_data, seg.update_segment_feature_data,
                "{ctx}"
            );
            assert_eq!(
                h.segmentation.absolute_values, seg.segment_feature_mode,
                "{ctx}"
            );
            assert_eq!(
                h.segmentation.quant_update, seg.quantizer_update_value,
                "{ctx}"
            );
            assert_eq!(h.segmentation.lf_update, seg.lf_update_value, "{ctx}");
            if h.segmentation.update_map {
                assert_eq!(h.segmentation.segment_probs, seg.segment_prob, "{ctx}");
            }
        }
        assert_eq!(h.loop_filter.simple, o.filter_type, "{ctx}: filter_type");
        assert_eq!(h.loop_filter.level, o.loop_filter_level, "{ctx}: level");
        assert_eq!(
            h.loop_filter.sharpness_level, o.sharpness_level,
            "{ctx}: sharpness"
        );
        let lf = oracle.mb_lf_adjust();
        assert_eq!(
            h.loop_filter.adj_enable, lf.loop_filter_adj_enable,
            "{ctx}: adj_enable"
        );
        assert_eq!(
            h.loop_filter.delta_update, lf.mode_ref_lf_delta_update,
            "{ctx}"
        );
        if h.loop_filter.adj_enable {
            assert_eq!(
                h.loop_filter.ref_frm_delta, lf.ref_frame_delta,
                "{ctx}: ref deltas"
            );
            assert_eq!(
                h.loop_filter.mb_mode_delta, lf.mb_mode_delta,
                "{ctx}: mode deltas"
            );
        }
        let q = &o.quant_indices;
        assert_eq!(
            [
                h.quant.y_ac_qi as i16,
                h.quant.y_dc_delta.into(),
                h.quant.y2_dc_delta.into(),
                h.quant.y2_ac_delta.into(),
                h.quant.uv_dc_delta.into(),
                h.quant.uv_ac_delta.into()
            ],
            [
                q.y_ac_qi as i16,
                q.y_dc_delta.into(),
                q.y2_dc_delta.into(),
                q.y2_ac_delta.into(),
                q.uv_dc_delta.into(),
                q.uv_ac_delta.into()
            ],
            "{ctx}: quant"
        );
        assert_eq!(
            usize::from(h.num_dct_parts),
            o.num_dct_partitions(),
            "{ctx}: partitions"
        );
        assert_eq!(h.dct_part_sizes, o.partition_size, "{ctx}: partition sizes");
        assert_eq!(h.refresh_entropy_probs, o.refresh_entropy_probs, "{ctx}");
        if !h.key_frame {
            assert_eq!(h.refresh_golden_frame, o.refresh_golden_frame, "{ctx}");
            assert_eq!(
                h.refresh_alternate_frame, o.refresh_alternate_frame,
                "{ctx}"
            );
            assert_eq!(h.copy_buffer_to_golden, o.copy_buffer_to_golden, "{ctx}");
            assert_eq!(
                h.copy_buffer_to_alternate, o.copy_buffer_to_alternate,
                "{ctx}"
            );
            assert_eq!(h.sign_bias_golden, o.sign_bias_golden, "{ctx}");
            assert_eq!(h.sign_bias_alternate, o.sign_bias_alternate, "{ctx}");
            assert_eq!(h.refresh_last, o.refresh_last, "{ctx}");
            assert_eq!(h.prob_intra, o.prob_intra, "{ctx}: prob_intra");
            assert_eq!(h.prob_last, o.prob_last, "{ctx}: prob_last");
            assert_eq!(h.prob_gf, o.prob_golden, "{ctx}: prob_gf");
            assert_eq!(
                h.entropy.y_mode_probs, o.mode_probs.intra_16x16_prob,
                "{ctx}"
            );
            assert_eq!(
                h.entropy.uv_mode_probs, o.mode_probs.intra_chroma_prob,
                "{ctx}"
            );
            assert_eq!(h.entropy.mv_probs, o.mv_prob, "{ctx}: mv probs");
        }
        assert_eq!(
            h.entropy.coeff_probs, o.coeff_prob,
            "{ctx}: coefficient probs"
        );
        assert_eq!(h.mb_no_coeff_skip, o.mb_no_coeff_skip, "{ctx}");
        assert_eq!(
            h.prob_skip_false, o.prob_skip_false,
            "{ctx}: prob_skip_false"
        );
        assert_eq!(
            usize::from(h.coder_state.range),
            o.bd_range,
            "{ctx}: bool range"
        );
        assert_eq!(
            usize::from(h.coder_state.value),
            o.bd_value,
            "{ctx}: bool value"
        );
        assert_eq!(
            h.coder_state.bit_count as isize, o.bd_count,
            "{ctx}: bool count"
        );
        assert_eq!(
            h.first_part_header_bits, o.header_size,
            "{ctx}: header bits"
        );
        // Invariants: probabilities stay valid, the header fits its partition.
        assert!(
            h.entropy
                .coeff_probs
                .iter()
                .flatten()
                .flatten()
                .flatten()
                .all(|&p| p > 0)
        );
        assert!(h.entropy.mv_probs.iter().flatten().all(|&p| p > 0));
        assert!(h.first_part_header_bits as usize <= h.first_part_size as usize * 8);
        headers.push(h);
    }
    assert!(!headers.is_empty());
    headers
}

#[test]
fn altref_stream_matches_oracle() {
    let headers = compare_stream("vp8-altref", &stream("vp8-altref"));
    assert!(
        headers.iter().any(|h| !h.show_frame),
        "expected hidden alt-ref frames"
    );
    assert!(headers.iter().any(|h| h.coeff_prob_updates > 0));
}

#[test]
fn error_resilient_stream_matches_oracle() {
    let headers = compare_stream("vp8-error-resilient", &stream("vp8-error-resilient"));
    // Error resilient mode never carries probability updates into later frames.
    assert!(
        headers
            .iter()
            .filter(|h| !h.key_frame)
            .all(|h| !h.refresh_entropy_probs)
    );
}

#[test]
fn partitioned_stream_matches_oracle() {
    let headers = compare_stream("vp8-partitions", &stream("vp8-partitions"));
    assert!(headers.iter().all(|h| h.num_dct_parts == 8));
}

#[test]
fn realtime_stream_matches_oracle() {
    compare_stream("vp8-rt", &stream("vp8-rt"));
}

#[test]
fn cros_codecs_vector_matches_oracle() {
    let path = cros_codecs_file("src/codec/vp8/test_data/test-25fps.vp8");
    let headers = compare_stream("test-25fps.vp8", &std::fs::read(path).unwrap());
    assert_eq!(headers.len(), 250);
}
