// SPDX-License-Identifier: MPL-2.0
//! VP9 uncompressed frame header (VP9 bitstream spec 1.0, section 6.2), with the state
//! that persists between frames: reference slot sizes and formats, loop filter deltas
//! and segmentation features.

use crate::bitreader::{BitReader, OutOfData};
use thiserror::Error;

pub const NUM_REF_FRAMES: usize = 8;
pub const REFS_PER_FRAME: usize = 3;
pub const MAX_SEGMENTS: usize = 8;
pub const SEG_LVL_MAX: usize = 4;
const SYNC_CODE: u32 = 0x49_83_42;
const CS_RGB: u8 = 7;
const SEGMENTATION_FEATURE_BITS: [u32; SEG_LVL_MAX] = [8, 6, 2, 0];
const SEGMENTATION_FEATURE_SIGNED: [bool; SEG_LVL_MAX] = [true, true, false, false];

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UncompressedHeaderError {
    #[error(transparent)]
    OutOfData(#[from] OutOfData),
    #[error("frame_marker is {0}, expected 2")]
    BadFrameMarker(u32),
    #[error("reserved bit {0} is set")]
    ReservedBitSet(&'static str),
    #[error("frame_sync_code is {0:#08x}, expected 0x498342")]
    BadSyncCode(u32),
    #[error("profile {0} does not allow RGB (4:4:4 needs profile 1 or 3)")]
    RgbNotAllowed(u8),
    #[error("profile {0} requires 4:2:0 subsampling but header signals x={1} y={2}")]
    BadSubsampling(u8, bool, bool),
    #[error("inter frame takes its size from reference slot {slot}, which holds no frame")]
    EmptyReference { slot: u8 },
    #[error("inter frame before any key frame (no colour configuration known)")]
    NoKeyFrameYet,
    #[error("header_size_in_bytes is 0: the compressed header is mandatory")]
    ZeroCompressedHeaderSize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FrameType {
    #[default]
    KeyFrame,
    NonKeyFrame,
}

/// Spec `interp_filter` values, numbered like `V4L2_VP9_INTERP_FILTER_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum InterpolationFilter {
    #[default]
    EightTap = 0,
    EightTapSmooth = 1,
    EightTapSharp = 2,
    Bilinear = 3,
    Switchable = 4,
}

/// `reset_frame_context` as V4L2 (`V4L2_VP9_RESET_FRAME_CTX_*`) numbers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum ResetFrameContext {
    /// Coded 0 or 1.
    #[default]
    None = 0,
    /// Coded 2: reset the context `frame_context_idx` names.
    Current = 1,
    /// Coded 3: reset all four contexts.
    All = 2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ColorConfig {
    /// 8, 10 or 12.
    pub bit_depth: u8,
    /// `color_space` (0 unknown, 1 BT.601, 2 BT.709, 3 SMPTE-170, 4 SMPTE-240,
    /// 5 BT.2020, 6 reserved, 7 sRGB).
    pub color_space: u8,
    /// `color_range`: full swing (V4L2 `COLOR_RANGE_FULL_SWING`).
    pub full_range: bool,
    pub subsampling_x: bool,
    pub subsampling_y: bool,
}

impl ColorConfig {
    /// Profile 0 intra-only frames carry no colour config: 8-bit 4:2:0 BT.601.
    const PROFILE_0_INTRA_ONLY: Self = Self {
        bit_depth: 8,
        color_space: 1,
        full_range: false,
        subsampling_x: true,
        subsampling_y: true,
    };
}

/// Loop filter parameters (`v4l2_vp9_loop_filter`). The deltas persist across frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoopFilter {
    pub level: u8,
    pub sharpness: u8,
    pub delta_enabled: bool,
    pub delta_update: bool,
    /// Indexed by reference frame: intra, last, golden, altref.
    pub ref_deltas: [i8; 4],
    pub mode_deltas: [i8; 2],
}

impl Default for LoopFilter {
    /// The state `setup_past_independence` establishes.
    fn default() -> Self {
        Self {
            level: 0,
            sharpness: 0,
            delta_enabled: true,
            delta_update: false,
            ref_deltas: [1, 0, -1, -1],
            mode_deltas: [0, 0],
        }
    }
}

/// Quantisation parameters (`v4l2_vp9_quantization`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Quantization {
    pub base_q_idx: u8,
    pub delta_q_y_dc: i8,
    pub delta_q_uv_dc: i8,
    pub delta_q_uv_ac: i8,
}

impl Quantization {
    /// Lossless mode: only 4x4 WHT transforms (`Lossless` in the spec).
    pub fn lossless(&self) -> bool {
        self.base_q_idx == 0
            && self.delta_q_y_dc == 0
            && self.delta_q_uv_dc == 0
            && self.delta_q_uv_ac == 0
    }
}

/// Segmentation parameters (`v4l2_vp9_segmentation`). Features persist across frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segmentation {
    pub enabled: bool,
    pub update_map: bool,
    pub temporal_update: bool,
    pub update_data: bool,
    pub abs_or_delta_update: bool,
    pub tree_probs: [u8; 7],
    pub pred_probs: [u8; 3],
    /// `[segment][feature]`, features ALT_Q, ALT_L, REF_FRAME, SKIP.
    pub feature_enabled: [[bool; SEG_LVL_MAX]; MAX_SEGMENTS],
    pub feature_data: [[i16; SEG_LVL_MAX]; MAX_SEGMENTS],
}

impl Default for Segmentation {
    fn default() -> Self {
        Self {
            enabled: false,
            update_map: false,
            temporal_update: false,
            update_data: false,
            abs_or_delta_update: false,
            tree_probs: [255; 7],
            pred_probs: [255; 3],
            feature_enabled: [[false; SEG_LVL_MAX]; MAX_SEGMENTS],
            feature_data: [[0; SEG_LVL_MAX]; MAX_SEGMENTS],
        }
    }
}

/// What a reference slot holds, as far as header parsing needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefSlot {
    pub width: u32,
    pub height: u32,
    pub color: ColorConfig,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UncompressedHeader {
    pub profile: u8,
    pub show_existing_frame: bool,
    pub frame_to_show_map_idx: u8,
    pub frame_type: FrameType,
    pub show_frame: bool,
    pub error_resilient_mode: bool,
    pub intra_only: bool,
    pub reset_frame_context: ResetFrameContext,
    pub color: ColorConfig,
    pub refresh_frame_flags: u8,
    /// Slots of LAST, GOLDEN, ALTREF.
    pub ref_frame_idx: [u8; REFS_PER_FRAME],
    /// Indexed by reference frame (intra, last, golden, altref); `[0]` is always false.
    pub ref_frame_sign_bias: [bool; 4],
    /// Frame size in pixels (1..=65536; V4L2 takes `width - 1`).
    pub width: u32,
    pub height: u32,
    pub render_width: u32,
    pub render_height: u32,
    /// Which of the three references the frame size was copied from, if any.
    pub size_from_ref: Option<u8>,
    pub allow_high_precision_mv: bool,
    pub interpolation_filter: InterpolationFilter,
    pub refresh_frame_context: bool,
    pub frame_parallel_decoding_mode: bool,
    /// The context to load and save; already forced to 0 for intra/error-resilient
    /// frames as the spec requires.
    pub frame_context_idx: u8,
    /// `frame_context_idx` as coded (selects the context reset by `reset_frame_context`).
    pub coded_frame_context_idx: u8,
    pub loop_filter: LoopFilter,
    /// Which ref/mode deltas this frame's header updated.
    pub update_ref_delta: [bool; 4],
    pub update_mode_delta: [bool; 2],
    pub quant: Quantization,
    pub segmentation: Segmentation,
    pub tile_cols_log2: u8,
    pub tile_rows_log2: u8,
    /// Size of the compressed header that follows (`header_size_in_bytes`).
    pub compressed_header_size: u16,
    /// Size of this header in bytes, up to the byte-aligned end.
    pub uncompressed_header_size: usize,
}

impl UncompressedHeader {
    pub fn is_key_frame(&self) -> bool {
        self.frame_type == FrameType::KeyFrame
    }

    /// `FrameIsIntra`.
    pub fn frame_is_intra(&self) -> bool {
        self.is_key_frame() || self.intra_only
    }

    /// `ref_frame_sign_bias` as the V4L2 bit mask (`V4L2_VP9_SIGN_BIAS_*`).
    pub fn sign_bias_mask(&self) -> u8 {
        (1..4)
            .filter(|&i| self.ref_frame_sign_bias[i])
            .fold(0, |mask, i| mask | (1 << (i - 1)))
    }

    /// Whether probabilities and past state are reset (`setup_past_independence`).
    pub fn resets_past(&self) -> bool {
        self.frame_is_intra() || self.error_resilient_mode
    }
}

/// State that one frame's header leaves for the next ones.
#[derive(Debug, Clone, Default)]
pub struct Vp9State {
    pub ref_slots: [Option<RefSlot>; NUM_REF_FRAMES],
    pub loop_filter: LoopFilter,
    pub segmentation: Segmentation,
    /// Colour config of the last key/intra frame (inter frames inherit it).
    pub color: Option<ColorConfig>,
}

/// Parses an uncompressed header; on success `state` is updated as decoding the frame
/// would (references refreshed, deltas and segmentation kept). On error `state` is
/// left untouched.
pub fn parse_uncompressed_header(
    data: &[u8],
    state: &mut Vp9State,
) -> Result<UncompressedHeader, UncompressedHeaderError> {
    let mut next = state.clone();
    let header = parse(data, &mut next)?;
    *state = next;
    Ok(header)
}

fn parse(data: &[u8], state: &mut Vp9State) -> Result<UncompressedHeader, UncompressedHeaderError> {
    let mut r = BitReader::new(data);
    let mut h = UncompressedHeader::default();
    let frame_marker = r.bits(2, "frame_marker")?;
    if frame_marker != 2 {
        return Err(UncompressedHeaderError::BadFrameMarker(frame_marker));
    }
    let profile_low = r.bits(1, "profile_low_bit")?;
    let profile_high = r.bits(1, "profile_high_bit")?;
    h.profile = ((profile_high << 1) | profile_low) as u8;
    if h.profile == 3 && r.bit("reserved_zero")? {
        return Err(UncompressedHeaderError::ReservedBitSet("reserved_zero"));
    }
    h.show_existing_frame = r.bit("show_existing_frame")?;
    if h.show_existing_frame {
        h.frame_to_show_map_idx = r.bits_u8(3, "frame_to_show_map_idx")?;
        h.show_frame = true;
        h.uncompressed_header_size = r.byte_position_aligned_up();
        return Ok(h);
    }
    h.frame_type = if r.bit("frame_type")? {
        FrameType::NonKeyFrame
    } else {
        FrameType::KeyFrame
    };
    h.show_frame = r.bit("show_frame")?;
    h.error_resilient_mode = r.bit("error_resilient_mode")?;
    if h.is_key_frame() {
        read_sync_code(&mut r)?;
        h.color = read_color_config(&mut r, h.profile)?;
        read_frame_size(&mut r, &mut h)?;
        read_render_size(&mut r, &mut h)?;
        h.refresh_frame_flags = 0xff;
    } else {
        h.intra_only = if h.show_frame {
            false
        } else {
            r.bit("intra_only")?
        };
        let reset = if h.error_resilient_mode {
            0
        } else {
            r.bits(2, "reset_frame_context")?
        };
        h.reset_frame_context = match reset {
            2 => ResetFrameContext::Current,
            3 => ResetFrameContext::All,
            _ => ResetFrameContext::None,
        };
        if h.intra_only {
            read_sync_code(&mut r)?;
            h.color = if h.profile > 0 {
                read_color_config(&mut r, h.profile)?
            } else {
                ColorConfig::PROFILE_0_INTRA_ONLY
            };
            h.refresh_frame_flags = r.bits_u8(8, "refresh_frame_flags")?;
            read_frame_size(&mut r, &mut h)?;
            read_render_size(&mut r, &mut h)?;
        } else {
            h.color = state.color.ok_or(UncompressedHeaderError::NoKeyFrameYet)?;
            h.refresh_frame_flags = r.bits_u8(8, "refresh_frame_flags")?;
            for i in 0..REFS_PER_FRAME {
                h.ref_frame_idx[i] = r.bits_u8(3, "ref_frame_idx")?;
                h.ref_frame_sign_bias[i + 1] = r.bit("ref_frame_sign_bias")?;
            }
            read_frame_size_with_refs(&mut r, &mut h, state)?;
            h.allow_high_precision_mv = r.bit("allow_high_precision_mv")?;
            h.interpolation_filter = read_interpolation_filter(&mut r)?;
        }
    }
    if h.error_resilient_mode {
        h.refresh_frame_context = false;
        h.frame_parallel_decoding_mode = true;
    } else {
        h.refresh_frame_context = r.bit("refresh_frame_context")?;
        h.frame_parallel_decoding_mode = r.bit("frame_parallel_decoding_mode")?;
    }
    h.coded_frame_context_idx = r.bits_u8(2, "frame_context_idx")?;
    h.frame_context_idx = h.coded_frame_context_idx;
    if h.resets_past() {
        // setup_past_independence: the persistent parts go back to their defaults.
        state.loop_filter = LoopFilter::default();
        state.segmentation.feature_enabled = Default::default();
        state.segmentation.feature_data = Default::default();
        state.segmentation.abs_or_delta_update = false;
        h.frame_context_idx = 0;
    }
    read_loop_filter(&mut r, &mut h, state)?;
    h.quant = read_quantization(&mut r)?;
    read_segmentation(&mut r, &mut h, state)?;
    read_tile_info(&mut r, &mut h)?;
    h.compressed_header_size = r.bits_u16(16, "header_size_in_bytes")?;
    if h.compressed_header_size == 0 {
        return Err(UncompressedHeaderError::ZeroCompressedHeaderSize);
    }
    h.uncompressed_header_size = r.byte_position_aligned_up();

    if h.frame_is_intra() {
        state.color = Some(h.color);
    }
    let slot = RefSlot {
        width: h.width,
        height: h.height,
        color: h.color,
    };
    for (i, s) in state.ref_slots.iter_mut().enumerate() {
        if h.refresh_frame_flags & (1 << i) != 0 {
            *s = Some(slot);
        }
    }
    Ok(h)
}

fn read_sync_code(r: &mut BitReader) -> Result<(), UncompressedHeaderError> {
    let code = r.bits(24, "frame_sync_code")?;
    if code != SYNC_CODE {
        return Err(UncompressedHeaderError::BadSyncCode(code));
    }
    Ok(())
}

fn read_color_config(
    r: &mut BitReader,
    profile: u8,
) -> Result<ColorConfig, UncompressedHeaderError> {
    let bit_depth = if profile >= 2 {
        if r.bit("ten_or_twelve_bit")? { 12 } else { 10 }
    } else {
        8
    };
    let color_space = r.bits_u8(3, "color_space")?;
    let odd_profile = profile == 1 || profile == 3;
    let mut color = ColorConfig {
        bit_depth,
        color_space,
        full_range: true,
        subsampling_x: false,
        subsampling_y: false,
    };
    if color_space != CS_RGB {
        color.full_range = r.bit("color_range")?;
        if odd_profile {
            color.subsampling_x = r.bit("subsampling_x")?;
            color.subsampling_y = r.bit("subsampling_y")?;
            if color.subsampling_x && color.subsampling_y {
                // 4:2:0 belongs to the even profiles.
                return Err(UncompressedHeaderError::BadSubsampling(profile, true, true));
            }
            if r.bit("reserved_zero")? {
                return Err(UncompressedHeaderError::ReservedBitSet("reserved_zero"));
            }
        } else {
            color.subsampling_x = true;
            color.subsampling_y = true;
        }
    } else {
        if !odd_profile {
            return Err(UncompressedHeaderError::RgbNotAllowed(profile));
        }
        if r.bit("reserved_zero")? {
            return Err(UncompressedHeaderError::ReservedBitSet("reserved_zero"));
        }
    }
    Ok(color)
}

fn read_frame_size(
    r: &mut BitReader,
    h: &mut UncompressedHeader,
) -> Result<(), UncompressedHeaderError> {
    h.width = r.bits(16, "frame_width_minus_1")? + 1;
    h.height = r.bits(16, "frame_height_minus_1")? + 1;
    Ok(())
}

fn read_render_size(
    r: &mut BitReader,
    h: &mut UncompressedHeader,
) -> Result<(), UncompressedHeaderError> {
    if r.bit("render_and_frame_size_different")? {
        h.render_width = r.bits(16, "render_width_minus_1")? + 1;
        h.render_height = r.bits(16, "render_height_minus_1")? + 1;
    } else {
        h.render_width = h.width;
        h.render_height = h.height;
    }
    Ok(())
}

fn read_frame_size_with_refs(
    r: &mut BitReader,
    h: &mut UncompressedHeader,
    state: &Vp9State,
) -> Result<(), UncompressedHeaderError> {
    for i in 0..REFS_PER_FRAME {
        if r.bit("found_ref")? {
            let slot = h.ref_frame_idx[i];
            let reference = state.ref_slots[usize::from(slot)]
                .ok_or(UncompressedHeaderError::EmptyReference { slot })?;
            h.width = reference.width;
            h.height = reference.height;
            h.size_from_ref = Some(i as u8);
            break;
        }
    }
    if h.size_from_ref.is_none() {
        read_frame_size(r, h)?;
    }
    read_render_size(r, h)
}

fn read_interpolation_filter(
    r: &mut BitReader,
) -> Result<InterpolationFilter, UncompressedHeaderError> {
    if r.bit("is_filter_switchable")? {
        return Ok(InterpolationFilter::Switchable);
    }
    Ok(match r.bits(2, "raw_interpolation_filter")? {
        0 => InterpolationFilter::EightTapSmooth,
        1 => InterpolationFilter::EightTap,
        2 => InterpolationFilter::EightTapSharp,
        _ => InterpolationFilter::Bilinear,
    })
}

fn read_loop_filter(
    r: &mut BitReader,
    h: &mut UncompressedHeader,
    state: &mut Vp9State,
) -> Result<(), UncompressedHeaderError> {
    let lf = &mut state.loop_filter;
    lf.level = r.bits_u8(6, "loop_filter_level")?;
    lf.sharpness = r.bits_u8(3, "loop_filter_sharpness")?;
    lf.delta_enabled = r.bit("loop_filter_delta_enabled")?;
    lf.delta_update = false;
    if lf.delta_enabled {
        lf.delta_update = r.bit("loop_filter_delta_update")?;
        if lf.delta_update {
            for i in 0..4 {
                h.update_ref_delta[i] = r.bit("update_ref_delta")?;
                if h.update_ref_delta[i] {
                    lf.ref_deltas[i] = r.su(6, "loop_filter_ref_deltas")? as i8;
                }
            }
            for i in 0..2 {
                h.update_mode_delta[i] = r.bit("update_mode_delta")?;
                if h.update_mode_delta[i] {
                    lf.mode_deltas[i] = r.su(6, "loop_filter_mode_deltas")? as i8;
                }
            }
        }
    }
    h.loop_filter = *lf;
    Ok(())
}

fn read_delta_q(r: &mut BitReader, field: &'static str) -> Result<i8, OutOfData> {
    Ok(if r.bit(field)? {
        r.su(4, field)? as i8
    } else {
        0
    })
}

fn read_quantization(r: &mut BitReader) -> Result<Quantization, UncompressedHeaderError> {
    Ok(Quantization {
        base_q_idx: r.bits_u8(8, "base_q_idx")?,
        delta_q_y_dc: read_delta_q(r, "delta_q_y_dc")?,
        delta_q_uv_dc: read_delta_q(r, "delta_q_uv_dc")?,
        delta_q_uv_ac: read_delta_q(r, "delta_q_uv_ac")?,
    })
}

fn read_prob(r: &mut BitReader, field: &'static str) -> Result<u8, OutOfData> {
    Ok(if r.bit(field)? {
        r.bits_u8(8, field)?
    } else {
        255
    })
}

fn read_segmentation(
    r: &mut BitReader,
    h: &mut UncompressedHeader,
    state: &mut Vp9State,
) -> Result<(), UncompressedHeaderError> {
    let seg = &mut state.segmentation;
    seg.enabled = r.bit("segmentation_enabled")?;
    seg.update_map = false;
    seg.temporal_update = false;
    seg.update_data = false;
    if seg.enabled {
        seg.update_map = r.bit("segmentation_update_map")?;
        if seg.update_map {
            for p in seg.tree_probs.iter_mut() {
                *p = read_prob(r, "segmentation_tree_probs")?;
            }
            seg.temporal_update = r.bit("segmentation_temporal_update")?;
            for p in seg.pred_probs.iter_mut() {
                *p = if seg.temporal_update {
                    read_prob(r, "segmentation_pred_prob")?
                } else {
                    255
                };
            }
        }
        seg.update_data = r.bit("segmentation_update_data")?;
        if seg.update_data {
            seg.abs_or_delta_update = r.bit("segmentation_abs_or_delta_update")?;
            for segment in 0..MAX_SEGMENTS {
                for feature in 0..SEG_LVL_MAX {
                    let mut value = 0i16;
                    let enabled = r.bit("feature_enabled")?;
                    if enabled {
                        let bits = SEGMENTATION_FEATURE_BITS[feature];
                        value = r.bits_u16(bits, "feature_value")? as i16;
                        if SEGMENTATION_FEATURE_SIGNED[feature] && r.bit("feature_sign")? {
                            value = -value;
                        }
                    }
                    seg.feature_enabled[segment][feature] = enabled;
                    seg.feature_data[segment][feature] = value;
                }
            }
        }
    }
    h.segmentation = *seg;
    Ok(())
}

/// `calc_min_log2_tile_cols` / `calc_max_log2_tile_cols` for a frame width.
pub fn tile_cols_log2_range(width: u32) -> (u8, u8) {
    let mi_cols = (width + 7) >> 3;
    let sb64_cols = (mi_cols + 7) >> 3;
    let mut min_log2 = 0u8;
    while (64u32 << min_log2) < sb64_cols {
        min_log2 += 1;
    }
    let mut max_log2 = 1u8;
    while (sb64_cols >> max_log2) >= 4 {
        max_log2 += 1;
    }
    (min_log2, max_log2 - 1)
}

fn read_tile_info(
    r: &mut BitReader,
    h: &mut UncompressedHeader,
) -> Result<(), UncompressedHeaderError> {
    let (min_log2, max_log2) = tile_cols_log2_range(h.width);
    h.tile_cols_log2 = min_log2;
    while h.tile_cols_log2 < max_log2 {
        if r.bit("increment_tile_cols_log2")? {
            h.tile_cols_log2 += 1;
        } else {
            break;
        }
    }
    h.tile_rows_log2 = u8::from(r.bit("tile_rows_log2")?);
    if h.tile_rows_log2 == 1 {
        h.tile_rows_log2 += u8::from(r.bit("increment_tile_rows_log2")?);
    }
    Ok(())
}
