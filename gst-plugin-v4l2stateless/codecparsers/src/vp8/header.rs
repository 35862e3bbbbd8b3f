// SPDX-License-Identifier: MPL-2.0
//! VP8 frame header (RFC 6386 sections 9 and 19): the uncompressed frame tag and key
//! frame start, the bool-coded first-partition header, and the DCT partition sizes.

use super::probs::{COEFF_UPDATE_PROBS, EntropyProbs, MV_UPDATE_PROBS};
use crate::boolcoder::{BoolCoderState, BoolDecoder, BoolOutOfData};
use thiserror::Error;

const START_CODE: [u8; 3] = [0x9d, 0x01, 0x2a];
pub const KEY_FRAME_HEADER_LEN: usize = 10;
pub const INTER_FRAME_HEADER_LEN: usize = 3;
pub const MAX_PARTITIONS: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Vp8Error {
    #[error(transparent)]
    OutOfData(#[from] BoolOutOfData),
    #[error("VP8 frame too short for its uncompressed header: {len} < {need} bytes")]
    TruncatedHeader { len: usize, need: usize },
    #[error("VP8 key frame start code is {0:02x?}, expected 9d 01 2a")]
    BadStartCode([u8; 3]),
    #[error("VP8 key frame has zero width or height ({width}x{height})")]
    ZeroSize { width: u16, height: u16 },
    #[error(
        "VP8 first partition ({size} bytes) exceeds the frame ({available} bytes after the header)"
    )]
    FirstPartitionTooLarge { size: usize, available: usize },
    #[error("VP8 partition size table needs {need} bytes but only {available} remain")]
    TruncatedPartitionTable { need: usize, available: usize },
    #[error("VP8 DCT partition {index} ({size} bytes) exceeds the frame")]
    PartitionTooLarge { index: usize, size: usize },
    #[error("VP8 inter frame before any key frame")]
    NoKeyFrameYet,
}

/// Segmentation (`v4l2_vp8_segment`). Feature values and map probabilities persist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segmentation {
    pub enabled: bool,
    pub update_map: bool,
    pub update_feature_data: bool,
    /// `segment_feature_mode` == 1: values are absolute, not deltas.
    pub absolute_values: bool,
    pub quant_update: [i8; 4],
    pub lf_update: [i8; 4],
    pub segment_probs: [u8; 3],
}

impl Default for Segmentation {
    fn default() -> Self {
        Self {
            enabled: false,
            update_map: false,
            update_feature_data: false,
            absolute_values: false,
            quant_update: [0; 4],
            lf_update: [0; 4],
            segment_probs: [255; 3],
        }
    }
}

/// Loop filter (`v4l2_vp8_loop_filter`). The deltas persist across frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoopFilter {
    /// `filter_type` == 1 (V4L2 `LF_FILTER_TYPE_SIMPLE`).
    pub simple: bool,
    pub level: u8,
    pub sharpness_level: u8,
    /// `loop_filter_adj_enable` (V4L2 `LF_ADJ_ENABLE`).
    pub adj_enable: bool,
    /// `mode_ref_lf_delta_update` (V4L2 `LF_DELTA_UPDATE`).
    pub delta_update: bool,
    /// Indexed intra, last, golden, altref.
    pub ref_frm_delta: [i8; 4],
    /// Indexed B_PRED, ZEROMV, NEARESTMV/NEARMV/NEWMV, SPLITMV.
    pub mb_mode_delta: [i8; 4],
}

/// Quantiser indices (`v4l2_vp8_quantization`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Quantization {
    pub y_ac_qi: u8,
    pub y_dc_delta: i8,
    pub y2_dc_delta: i8,
    pub y2_ac_delta: i8,
    pub uv_dc_delta: i8,
    pub uv_ac_delta: i8,
}

/// One parsed VP8 frame header with everything `v4l2_ctrl_vp8_frame` needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vp8FrameHeader {
    pub key_frame: bool,
    pub version: u8,
    pub show_frame: bool,
    pub first_part_size: u32,
    /// Size of the uncompressed header (10 for key frames, 3 otherwise); the first
    /// partition starts here.
    pub first_part_offset: usize,
    pub width: u16,
    pub height: u16,
    pub horizontal_scale: u8,
    pub vertical_scale: u8,
    pub color_space: bool,
    pub clamping_type: bool,
    pub segmentation: Segmentation,
    pub loop_filter: LoopFilter,
    pub quant: Quantization,
    /// 1, 2, 4 or 8.
    pub num_dct_parts: u8,
    pub refresh_entropy_probs: bool,
    pub refresh_golden_frame: bool,
    pub refresh_alternate_frame: bool,
    pub copy_buffer_to_golden: u8,
    pub copy_buffer_to_alternate: u8,
    pub sign_bias_golden: bool,
    pub sign_bias_alternate: bool,
    pub refresh_last: bool,
    pub mb_no_coeff_skip: bool,
    pub prob_skip_false: u8,
    pub prob_intra: u8,
    pub prob_last: u8,
    pub prob_gf: u8,
    /// Probabilities for decoding this frame (after this header's updates).
    pub entropy: EntropyProbs,
    /// Number of token probabilities this header updated.
    pub coeff_prob_updates: usize,
    /// Bool decoder state after the header (`v4l2_vp8_entropy_coder_state`).
    pub coder_state: BoolCoderState,
    /// Bits of the first partition the header used (`first_part_header_bits`).
    pub first_part_header_bits: u32,
    /// Sizes of the DCT token partitions (`dct_part_sizes`).
    pub dct_part_sizes: [u32; MAX_PARTITIONS],
}

/// State one frame leaves for the next.
#[derive(Debug, Clone, Default)]
pub struct Vp8State {
    /// Probabilities saved for the next frame.
    pub probs: EntropyProbs,
    pub segmentation: Segmentation,
    pub lf_ref_frm_delta: [i8; 4],
    pub lf_mb_mode_delta: [i8; 4],
    /// Size from the last key frame (inter frames inherit it).
    pub size: Option<(u16, u16, u8, u8)>,
}

/// Parses VP8 frames in decode order.
#[derive(Debug, Clone, Default)]
pub struct Vp8Parser {
    state: Vp8State,
}

impl Vp8Parser {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn state(&self) -> &Vp8State {
        &self.state
    }

    /// Parses a frame; on error the parser state is unchanged.
    pub fn parse_frame(&mut self, frame: &[u8]) -> Result<Vp8FrameHeader, Vp8Error> {
        let mut state = self.state.clone();
        let header = parse_frame(frame, &mut state)?;
        self.state = state;
        Ok(header)
    }
}

fn parse_frame(data: &[u8], state: &mut Vp8State) -> Result<Vp8FrameHeader, Vp8Error> {
    if data.len() < INTER_FRAME_HEADER_LEN {
        return Err(Vp8Error::TruncatedHeader {
            len: data.len(),
            need: INTER_FRAME_HEADER_LEN,
        });
    }
    let tag = u32::from(data[0]) | (u32::from(data[1]) << 8) | (u32::from(data[2]) << 16);
    let key_frame = tag & 1 == 0;
    let first_part_offset = if key_frame {
        KEY_FRAME_HEADER_LEN
    } else {
        INTER_FRAME_HEADER_LEN
    };
    if data.len() < first_part_offset {
        return Err(Vp8Error::TruncatedHeader {
            len: data.len(),
            need: first_part_offset,
        });
    }
    let (width, height, horizontal_scale, vertical_scale) = if key_frame {
        let start = [data[3], data[4], data[5]];
        if start != START_CODE {
            return Err(Vp8Error::BadStartCode(start));
        }
        let w = u16::from_le_bytes([data[6], data[7]]);
        let h = u16::from_le_bytes([data[8], data[9]]);
        let size = (w & 0x3fff, h & 0x3fff, (w >> 14) as u8, (h >> 14) as u8);
        if size.0 == 0 || size.1 == 0 {
            return Err(Vp8Error::ZeroSize {
                width: size.0,
                height: size.1,
            });
        }
        size
    } else {
        state.size.ok_or(Vp8Error::NoKeyFrameYet)?
    };
    let first_part_size = (tag >> 5) & 0x7ffff;
    let available = data.len() - first_part_offset;
    if first_part_size as usize > available {
        return Err(Vp8Error::FirstPartitionTooLarge {
            size: first_part_size as usize,
            available,
        });
    }
    let first_part = &data[first_part_offset..first_part_offset + first_part_size as usize];

    if key_frame {
        // Key frames restore the default probabilities and clear the persistent
        // segmentation and loop filter deltas (libvpx `vp8_decode_frame`).
        state.probs = EntropyProbs::default();
        state.segmentation = Segmentation::default();
        state.lf_ref_frm_delta = [0; 4];
        state.lf_mb_mode_delta = [0; 4];
        state.size = Some((width, height, horizontal_scale, vertical_scale));
    }

    let mut bd = BoolDecoder::new(first_part);
    let (color_space, clamping_type) = if key_frame {
        (bd.read_flag("color_space")?, bd.read_flag("clamping_type")?)
    } else {
        (false, false)
    };

    let segmentation = read_segmentation(&mut bd, &mut state.segmentation)?;

    let loop_filter = read_loop_filter(&mut bd, state)?;

    let log2_parts = bd.read_literal(2, "log2_nbr_of_dct_partitions")?;
    let num_dct_parts = 1u8 << log2_parts;

    let quant = read_quantization(&mut bd)?;

    let mut refresh_golden_frame = key_frame;
    let mut refresh_alternate_frame = key_frame;
    let mut copy_buffer_to_golden = 0;
    let mut copy_buffer_to_alternate = 0;
    let mut sign_bias_golden = false;
    let mut sign_bias_alternate = false;
    let refresh_entropy_probs;
    let mut refresh_last = true;
    if key_frame {
        refresh_entropy_probs = bd.read_flag("refresh_entropy_probs")?;
    } else {
        refresh_golden_frame = bd.read_flag("refresh_golden_frame")?;
        refresh_alternate_frame = bd.read_flag("refresh_alternate_frame")?;
        if !refresh_golden_frame {
            copy_buffer_to_golden = bd.read_literal(2, "copy_buffer_to_golden")? as u8;
        }
        if !refresh_alternate_frame {
            copy_buffer_to_alternate = bd.read_literal(2, "copy_buffer_to_alternate")? as u8;
        }
        sign_bias_golden = bd.read_flag("sign_bias_golden")?;
        sign_bias_alternate = bd.read_flag("sign_bias_alternate")?;
        refresh_entropy_probs = bd.read_flag("refresh_entropy_probs")?;
        refresh_last = bd.read_flag("refresh_last")?;
    }

    // This frame's probabilities: the saved ones plus this header's updates. They are
    // saved for the next frame only when refresh_entropy_probs is set.
    let mut entropy = state.probs;
    let coeff_prob_updates = read_token_prob_updates(&mut bd, &mut entropy.coeff_probs)?;

    let mb_no_coeff_skip = bd.read_flag("mb_no_coeff_skip")?;
    let prob_skip_false = if mb_no_coeff_skip {
        bd.read_literal(8, "prob_skip_false")? as u8
    } else {
        0
    };
    let (mut prob_intra, mut prob_last, mut prob_gf) = (0, 0, 0);
    if !key_frame {
        prob_intra = bd.read_literal(8, "prob_intra")? as u8;
        prob_last = bd.read_literal(8, "prob_last")? as u8;
        prob_gf = bd.read_literal(8, "prob_gf")? as u8;
        if bd.read_flag("intra_16x16_prob_update_flag")? {
            for p in entropy.y_mode_probs.iter_mut() {
                *p = bd.read_literal(8, "intra_16x16_prob")? as u8;
            }
        }
        if bd.read_flag("intra_chroma_prob_update_flag")? {
            for p in entropy.uv_mode_probs.iter_mut() {
                *p = bd.read_literal(8, "intra_chroma_prob")? as u8;
            }
        }
        read_mv_prob_updates(&mut bd, &mut entropy.mv_probs)?;
    }
    if refresh_entropy_probs {
        state.probs = entropy;
    }

    let dct_part_sizes =
        read_partition_sizes(data, first_part_offset, first_part_size, num_dct_parts)?;

    Ok(Vp8FrameHeader {
        key_frame,
        version: ((tag >> 1) & 7) as u8,
        show_frame: (tag >> 4) & 1 == 1,
        first_part_size,
        first_part_offset,
        width,
        height,
        horizontal_scale,
        vertical_scale,
        color_space,
        clamping_type,
        segmentation,
        loop_filter,
        quant,
        num_dct_parts,
        refresh_entropy_probs,
        refresh_golden_frame,
        refresh_alternate_frame,
        copy_buffer_to_golden,
        copy_buffer_to_alternate,
        sign_bias_golden,
        sign_bias_alternate,
        refresh_last,
        mb_no_coeff_skip,
        prob_skip_false,
        prob_intra,
        prob_last,
        prob_gf,
        entropy,
        coeff_prob_updates,
        coder_state: bd.state(),
        first_part_header_bits: bd.consumed_bits() as u32,
        dct_part_sizes,
    })
}

fn read_segmentation(
    bd: &mut BoolDecoder,
    seg: &mut Segmentation,
) -> Result<Segmentation, BoolOutOfData> {
    seg.enabled = bd.read_flag("segmentation_enabled")?;
    seg.update_map = false;
    seg.update_feature_data = false;
    if seg.enabled {
        seg.update_map = bd.read_flag("update_mb_segmentation_map")?;
        seg.update_feature_data = bd.read_flag("update_segment_feature_data")?;
        if seg.update_feature_data {
            seg.absolute_values = bd.read_flag("segment_feature_mode")?;
            for q in seg.quant_update.iter_mut() {
                *q = bd.read_optional_signed(7, "quantizer_update_value")? as i8;
            }
            for lf in seg.lf_update.iter_mut() {
                *lf = bd.read_optional_signed(6, "loop_filter_update_value")? as i8;
            }
        }
        if seg.update_map {
            for p in seg.segment_probs.iter_mut() {
                *p = if bd.read_flag("segment_prob_update")? {
                    bd.read_literal(8, "segment_prob")? as u8
                } else {
                    255
                };
            }
        }
    }
    Ok(*seg)
}

/// Loop filter type, level, sharpness and the (persistent) delta adjustments.
fn read_loop_filter(
    bd: &mut BoolDecoder,
    state: &mut Vp8State,
) -> Result<LoopFilter, BoolOutOfData> {
    let mut loop_filter = LoopFilter {
        simple: bd.read_flag("filter_type")?,
        level: bd.read_literal(6, "loop_filter_level")? as u8,
        sharpness_level: bd.read_literal(3, "sharpness_level")? as u8,
        adj_enable: bd.read_flag("loop_filter_adj_enable")?,
        ..Default::default()
    };
    if loop_filter.adj_enable {
        loop_filter.delta_update = bd.read_flag("mode_ref_lf_delta_update")?;
        if loop_filter.delta_update {
            for delta in state.lf_ref_frm_delta.iter_mut() {
                if bd.read_flag("ref_frame_delta_update_flag")? {
                    *delta = bd.read_signed_literal(6, "delta_magnitude")? as i8;
                }
            }
            for delta in state.lf_mb_mode_delta.iter_mut() {
                if bd.read_flag("mb_mode_delta_update_flag")? {
                    *delta = bd.read_signed_literal(6, "delta_magnitude")? as i8;
                }
            }
        }
    }
    loop_filter.ref_frm_delta = state.lf_ref_frm_delta;
    loop_filter.mb_mode_delta = state.lf_mb_mode_delta;
    Ok(loop_filter)
}

fn read_quantization(bd: &mut BoolDecoder) -> Result<Quantization, BoolOutOfData> {
    Ok(Quantization {
        y_ac_qi: bd.read_literal(7, "y_ac_qi")? as u8,
        y_dc_delta: bd.read_optional_signed(4, "y_dc_delta")? as i8,
        y2_dc_delta: bd.read_optional_signed(4, "y2_dc_delta")? as i8,
        y2_ac_delta: bd.read_optional_signed(4, "y2_ac_delta")? as i8,
        uv_dc_delta: bd.read_optional_signed(4, "uv_dc_delta")? as i8,
        uv_ac_delta: bd.read_optional_signed(4, "uv_ac_delta")? as i8,
    })
}

/// Token probability updates (RFC 6386 13.4); returns how many were updated.
fn read_token_prob_updates(
    bd: &mut BoolDecoder,
    coeff_probs: &mut super::probs::CoeffProbs,
) -> Result<usize, BoolOutOfData> {
    let mut updates = 0;
    for (i, block) in coeff_probs.iter_mut().enumerate() {
        for (j, band) in block.iter_mut().enumerate() {
            for (k, ctx) in band.iter_mut().enumerate() {
                for (l, prob) in ctx.iter_mut().enumerate() {
                    if bd.read_bool(COEFF_UPDATE_PROBS[i][j][k][l], "coeff_prob_update_flag")? {
                        *prob = bd.read_literal(8, "coeff_prob")? as u8;
                        updates += 1;
                    }
                }
            }
        }
    }
    Ok(updates)
}

/// Motion vector probability updates (RFC 6386 17.2): 7-bit values, 0 meaning 1.
fn read_mv_prob_updates(
    bd: &mut BoolDecoder,
    mv_probs: &mut [[u8; 19]; 2],
) -> Result<(), BoolOutOfData> {
    for (component, probs) in mv_probs.iter_mut().enumerate() {
        for (i, p) in probs.iter_mut().enumerate() {
            if bd.read_bool(MV_UPDATE_PROBS[component][i], "mv_prob_update_flag")? {
                let x = bd.read_literal(7, "mv_prob")? as u8;
                *p = if x == 0 { 1 } else { x << 1 };
            }
        }
    }
    Ok(())
}

/// Reads the 3-byte little-endian sizes of all DCT partitions but the last, which
/// takes the rest of the frame.
fn read_partition_sizes(
    data: &[u8],
    first_part_offset: usize,
    first_part_size: u32,
    num_parts: u8,
) -> Result<[u32; MAX_PARTITIONS], Vp8Error> {
    let table_start = first_part_offset + first_part_size as usize;
    let table_len = 3 * (usize::from(num_parts) - 1);
    let available = data.len() - table_start;
    if table_len > available {
        return Err(Vp8Error::TruncatedPartitionTable {
            need: table_len,
            available,
        });
    }
    let mut sizes = [0u32; MAX_PARTITIONS];
    let mut offset = table_start + table_len;
    for (i, size) in sizes.iter_mut().enumerate().take(usize::from(num_parts)) {
        let last = i + 1 == usize::from(num_parts);
        let len = if last {
            data.len() - offset
        } else {
            let b = &data[table_start + 3 * i..table_start + 3 * i + 3];
            usize::from(b[0]) | (usize::from(b[1]) << 8) | (usize::from(b[2]) << 16)
        };
        if len > data.len() - offset {
            return Err(Vp8Error::PartitionTooLarge {
                index: i,
                size: len,
            });
        }
        *size = len as u32;
        offset += len;
    }
    Ok(sizes)
}
