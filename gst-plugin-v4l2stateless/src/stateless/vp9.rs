// SPDX-License-Identifier: MPL-2.0
//! VP9: `V4L2_CID_STATELESS_VP9_FRAME` per decoded frame, plus
//! `V4L2_CID_STATELESS_VP9_COMPRESSED_HDR` when the driver asks for it; eight reference
//! slots named by timestamp; `show_existing_frame` shows a slot without decoding;
//! superframes are split into their frames.

use mediapass_codecparsers::vp9::{
    CompressedHeader, UncompressedHeader, Vp9Parser, split_superframe, uncompressed::NUM_REF_FRAMES,
};
use v4l2r::bindings;

use super::backend::{Backend, Control, DecodeError, DecodeJob, Outcome};
use super::tentative::parse_on_copy;

/// Hidden frames packed in a superframe with a shown one share its input frame, so they
/// get timestamps from a range frame numbers never reach (2^31 and up), still whole
/// microseconds so they survive the `timeval` round trip.
const SUBFRAME_BASE: u64 = 1 << 31;

/// Decodes VP9 frames in decode order.
#[derive(Debug, Default)]
pub struct Vp9Decoder {
    parser: Vp9Parser,
    slots: [Option<u64>; NUM_REF_FRAMES],
    send_compressed_header: bool,
    subframes: u64,
    last_header: Option<UncompressedHeader>,
    /// Segmentation tree/pred probabilities of the last frame with segmentation on.
    segmentation_probs: SegmentationProbs,
}

/// `(tree_probs, pred_probs)`.
pub type SegmentationProbs = ([u8; 7], [u8; 3]);

/// Frame size and format facts the element needs for caps and the CAPTURE format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vp9FrameInfo {
    pub width: u32,
    pub height: u32,
    pub bit_depth: u8,
    pub subsampling_x: bool,
    pub subsampling_y: bool,
}

impl Vp9Decoder {
    /// `send_compressed_header`: the driver exposes `VP9_COMPRESSED_HDR` (it cannot
    /// parse the compressed header itself).
    pub fn new(send_compressed_header: bool) -> Self {
        Self {
            send_compressed_header,
            ..Self::default()
        }
    }

    pub fn slots(&self) -> [Option<u64>; NUM_REF_FRAMES] {
        self.slots
    }

    /// Size and format of the last decoded frame.
    pub fn info(&self) -> Option<Vp9FrameInfo> {
        self.last_header.as_ref().map(info)
    }

    /// Parses the first decodable frame of `chunk` without decoding it: the control the
    /// driver needs before the CAPTURE format is chosen, and the frame's size/format.
    pub fn peek(&self, chunk: &[u8]) -> Result<(Control, Vp9FrameInfo), String> {
        let mut parser = self.parser.clone();
        for frame in split_superframe(chunk).map_err(|e| e.to_string())? {
            let parsed = parser.parse_frame(frame).map_err(|e| e.to_string())?;
            if let Some(compressed) = &parsed.compressed {
                let control = frame_control(
                    &parsed.header,
                    compressed,
                    &self.slots,
                    &self.segmentation_probs,
                );
                return Ok((Control::Vp9Frame(Box::new(control)), info(&parsed.header)));
            }
        }
        Err("VP9 chunk holds no decodable frame".into())
    }

    /// Decodes a chunk (a frame or a superframe) that arrived as input frame
    /// `frame_timestamp` (see [`super::frame_timestamp`]). The outcome shows the
    /// chunk's shown picture, or discards the input frame if it shows none.
    pub fn decode<B: Backend>(
        &mut self,
        chunk: &[u8],
        frame_timestamp: u64,
        backend: &mut B,
    ) -> Result<Outcome, DecodeError<B::Error>> {
        let frames = split_superframe(chunk).map_err(|e| DecodeError::Bitstream(e.to_string()))?;
        let count = frames.len();
        let mut shown = None;
        for (i, frame) in frames.into_iter().enumerate() {
            // The last frame of a chunk is its own; earlier ones are packed hidden frames.
            let timestamp = if i + 1 == count {
                frame_timestamp
            } else {
                self.subframes += 1;
                (SUBFRAME_BASE + self.subframes) * 1000
            };
            if let Some(picture) = self.decode_frame(frame, timestamp, backend)? {
                shown = Some(picture);
            }
        }
        Ok(match shown {
            Some(picture) => Outcome {
                show: vec![(frame_timestamp, picture)],
                discard: Vec::new(),
            },
            None => Outcome::discarded(frame_timestamp),
        })
    }

    /// Pictures still waiting for output: none, VP9 shows pictures in decode order.
    pub fn drain(&mut self) -> Vec<(u64, u64)> {
        Vec::new()
    }

    /// Decodes one frame of a chunk; returns the picture it shows, if any.
    fn decode_frame<B: Backend>(
        &mut self,
        frame: &[u8],
        timestamp: u64,
        backend: &mut B,
    ) -> Result<Option<u64>, DecodeError<B::Error>> {
        let (parser, parsed) = parse_on_copy(&self.parser, |p| p.parse_frame(frame))?;
        let header = &parsed.header;
        if header.show_existing_frame {
            let slot = usize::from(header.frame_to_show_map_idx);
            let Some(shown) = self.slots[slot] else {
                return Err(DecodeError::Bitstream(format!(
                    "VP9 show_existing_frame of empty slot {slot}"
                )));
            };
            self.parser = parser;
            return Ok(Some(shown));
        }
        if !header.frame_is_intra() {
            if let Some(&missing) = header
                .ref_frame_idx
                .iter()
                .find(|&&i| self.slots[usize::from(i)].is_none())
            {
                return Err(DecodeError::Bitstream(format!(
                    "VP9 inter frame references empty slot {missing}"
                )));
            }
        } else if !header.is_key_frame() && self.slots.iter().all(Option::is_none) {
            return Err(DecodeError::Bitstream(
                "VP9 intra-only frame before any key frame".into(),
            ));
        }
        let Some(compressed) = &parsed.compressed else {
            return Err(DecodeError::Bitstream(
                "VP9 frame without compressed header".into(),
            ));
        };
        let segmentation_probs = if header.segmentation.enabled {
            (
                header.segmentation.tree_probs,
                header.segmentation.pred_probs,
            )
        } else {
            self.segmentation_probs
        };
        let mut controls = vec![Control::Vp9Frame(Box::new(frame_control(
            header,
            compressed,
            &self.slots,
            &segmentation_probs,
        )))];
        if self.send_compressed_header {
            controls.push(Control::Vp9CompressedHdr(Box::new(compressed_control(
                compressed,
            ))));
        }
        backend
            .decode(DecodeJob::picture(timestamp, frame, controls))
            .map_err(DecodeError::Backend)?;
        self.parser = parser;
        self.segmentation_probs = segmentation_probs;
        for (i, slot) in self.slots.iter_mut().enumerate() {
            if header.refresh_frame_flags & (1 << i) != 0 {
                *slot = Some(timestamp);
            }
        }
        let mut live: Vec<u64> = self.slots.iter().flatten().copied().collect();
        live.sort_unstable();
        live.dedup();
        backend.set_references(&live);
        let shown = header.show_frame;
        self.last_header = Some(parsed.header);
        Ok(shown.then_some(timestamp))
    }

    /// Forgets all references and parser state (flush/seek).
    pub fn reset(&mut self) {
        *self = Self::new(self.send_compressed_header);
    }
}

fn info(h: &UncompressedHeader) -> Vp9FrameInfo {
    Vp9FrameInfo {
        width: h.width,
        height: h.height,
        bit_depth: h.color.bit_depth,
        subsampling_x: h.color.subsampling_x,
        subsampling_y: h.color.subsampling_y,
    }
}

/// Fills `v4l2_ctrl_vp9_frame`. `segmentation_probs` are sent while segmentation is
/// off: they are unused then; we repeat the last ones in force (zero before any), as
/// GStreamer's v4l2codecs does, so both produce identical controls.
pub fn frame_control(
    h: &UncompressedHeader,
    compressed: &CompressedHeader,
    slots: &[Option<u64>; NUM_REF_FRAMES],
    segmentation_probs: &SegmentationProbs,
) -> bindings::v4l2_ctrl_vp9_frame {
    let flag = |on: bool, bit: u32| if on { bit } else { 0 };
    let lf = &h.loop_filter;
    let seg = &h.segmentation;
    let mut c = bindings::v4l2_ctrl_vp9_frame::default();
    c.lf.ref_deltas = lf.ref_deltas;
    c.lf.mode_deltas = lf.mode_deltas;
    c.lf.level = lf.level;
    c.lf.sharpness = lf.sharpness;
    c.lf.flags = (flag(
        lf.delta_enabled,
        bindings::V4L2_VP9_LOOP_FILTER_FLAG_DELTA_ENABLED,
    ) | flag(
        lf.delta_update,
        bindings::V4L2_VP9_LOOP_FILTER_FLAG_DELTA_UPDATE,
    )) as u8;
    c.quant.base_q_idx = h.quant.base_q_idx;
    c.quant.delta_q_y_dc = h.quant.delta_q_y_dc;
    c.quant.delta_q_uv_dc = h.quant.delta_q_uv_dc;
    c.quant.delta_q_uv_ac = h.quant.delta_q_uv_ac;
    c.seg.feature_data = seg.feature_data;
    for (mask, enabled) in c.seg.feature_enabled.iter_mut().zip(&seg.feature_enabled) {
        *mask = enabled
            .iter()
            .enumerate()
            .filter(|(_, on)| **on)
            .fold(0, |m, (i, _)| m | (1 << i));
    }
    if seg.enabled {
        c.seg.tree_probs = seg.tree_probs;
        c.seg.pred_probs = seg.pred_probs;
    } else {
        (c.seg.tree_probs, c.seg.pred_probs) = *segmentation_probs;
    }
    c.seg.flags = (flag(seg.enabled, bindings::V4L2_VP9_SEGMENTATION_FLAG_ENABLED)
        | flag(
            seg.update_map,
            bindings::V4L2_VP9_SEGMENTATION_FLAG_UPDATE_MAP,
        )
        | flag(
            seg.temporal_update,
            bindings::V4L2_VP9_SEGMENTATION_FLAG_TEMPORAL_UPDATE,
        )
        | flag(
            seg.update_data,
            bindings::V4L2_VP9_SEGMENTATION_FLAG_UPDATE_DATA,
        )
        | flag(
            seg.abs_or_delta_update,
            bindings::V4L2_VP9_SEGMENTATION_FLAG_ABS_OR_DELTA_UPDATE,
        )) as u8;
    c.flags = flag(h.is_key_frame(), bindings::V4L2_VP9_FRAME_FLAG_KEY_FRAME)
        | flag(h.show_frame, bindings::V4L2_VP9_FRAME_FLAG_SHOW_FRAME)
        | flag(
            h.error_resilient_mode,
            bindings::V4L2_VP9_FRAME_FLAG_ERROR_RESILIENT,
        )
        | flag(h.intra_only, bindings::V4L2_VP9_FRAME_FLAG_INTRA_ONLY)
        | flag(
            h.allow_high_precision_mv,
            bindings::V4L2_VP9_FRAME_FLAG_ALLOW_HIGH_PREC_MV,
        )
        | flag(
            h.refresh_frame_context,
            bindings::V4L2_VP9_FRAME_FLAG_REFRESH_FRAME_CTX,
        )
        | flag(
            h.frame_parallel_decoding_mode,
            bindings::V4L2_VP9_FRAME_FLAG_PARALLEL_DEC_MODE,
        )
        | flag(
            h.color.subsampling_x,
            bindings::V4L2_VP9_FRAME_FLAG_X_SUBSAMPLING,
        )
        | flag(
            h.color.subsampling_y,
            bindings::V4L2_VP9_FRAME_FLAG_Y_SUBSAMPLING,
        )
        | flag(
            h.color.full_range,
            bindings::V4L2_VP9_FRAME_FLAG_COLOR_RANGE_FULL_SWING,
        );
    c.compressed_header_size = h.compressed_header_size;
    c.uncompressed_header_size = h.uncompressed_header_size as u16;
    c.frame_width_minus_1 = (h.width - 1) as u16;
    c.frame_height_minus_1 = (h.height - 1) as u16;
    c.render_width_minus_1 = (h.render_width - 1) as u16;
    c.render_height_minus_1 = (h.render_height - 1) as u16;
    let slot_ts = |i: usize| slots[usize::from(h.ref_frame_idx[i])].unwrap_or(0);
    c.last_frame_ts = slot_ts(0);
    c.golden_frame_ts = slot_ts(1);
    c.alt_frame_ts = slot_ts(2);
    c.ref_frame_sign_bias = h.sign_bias_mask();
    c.reset_frame_context = h.reset_frame_context as u8;
    c.frame_context_idx = h.frame_context_idx;
    c.profile = h.profile;
    c.bit_depth = h.color.bit_depth;
    c.interpolation_filter = h.interpolation_filter as u8;
    c.tile_cols_log2 = h.tile_cols_log2;
    c.tile_rows_log2 = h.tile_rows_log2;
    c.reference_mode = compressed.reference_mode as u8;
    c
}

/// Fills `v4l2_ctrl_vp9_compressed_hdr` (probability deltas, `inv_map_table`-mapped).
pub fn compressed_control(ch: &CompressedHeader) -> bindings::v4l2_ctrl_vp9_compressed_hdr {
    let d = &ch.deltas;
    let mut c = bindings::v4l2_ctrl_vp9_compressed_hdr {
        tx_mode: ch.tx_mode as u8,
        tx8: d.tx8,
        tx16: d.tx16,
        tx32: d.tx32,
        coef: d.coef,
        skip: d.skip,
        inter_mode: d.inter_mode,
        interp_filter: d.interp_filter,
        is_inter: d.is_inter,
        comp_mode: d.comp_mode,
        single_ref: d.single_ref,
        comp_ref: d.comp_ref,
        y_mode: d.y_mode,
        uv_mode: d.uv_mode,
        partition: d.partition,
        ..Default::default()
    };
    c.mv.joint = d.mv.joint;
    c.mv.sign = d.mv.sign;
    c.mv.classes = d.mv.classes;
    c.mv.class0_bit = d.mv.class0_bit;
    c.mv.bits = d.mv.bits;
    c.mv.class0_fr = d.mv.class0_fr;
    c.mv.fr = d.mv.fr;
    c.mv.class0_hp = d.mv.class0_hp;
    c.mv.hp = d.mv.hp;
    c
}
