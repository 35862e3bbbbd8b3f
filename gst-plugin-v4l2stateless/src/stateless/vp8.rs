// SPDX-License-Identifier: MPL-2.0
//! VP8: one `V4L2_CID_STATELESS_VP8_FRAME` per frame; references are the last, golden
//! and alt-ref pictures (RFC 6386 section 9.7), named by timestamp.

use mediapass_codecparsers::vp8::{Vp8FrameHeader, Vp8Parser};
use v4l2r::bindings;

use super::backend::{Backend, Control, DecodeError, DecodeJob, Outcome};
use super::tentative::parse_on_copy;

/// `kf_ymode_prob` and `kf_uv_mode_prob` (RFC 6386 section 11.2).
const KEY_FRAME_Y_MODE_PROBS: [u8; 4] = [145, 156, 163, 128];
const KEY_FRAME_UV_MODE_PROBS: [u8; 3] = [142, 114, 183];

/// The three VP8 reference pictures, by timestamp.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Vp8References {
    pub last: Option<u64>,
    pub golden: Option<u64>,
    pub alt: Option<u64>,
}

impl Vp8References {
    /// Applies a decoded frame's buffer updates, in libvpx's order: alt-ref copy, golden
    /// copy (which sees the new alt-ref), then the refresh flags.
    fn update(&mut self, header: &Vp8FrameHeader, timestamp: u64) {
        if header.key_frame {
            *self = Vp8References {
                last: Some(timestamp),
                golden: Some(timestamp),
                alt: Some(timestamp),
            };
            return;
        }
        let before = *self;
        match header.copy_buffer_to_alternate {
            1 => self.alt = before.last,
            2 => self.alt = before.golden,
            _ => {}
        }
        match header.copy_buffer_to_golden {
            1 => self.golden = before.last,
            2 => self.golden = before.alt,
            _ => {}
        }
        if header.refresh_golden_frame {
            self.golden = Some(timestamp);
        }
        if header.refresh_alternate_frame {
            self.alt = Some(timestamp);
        }
        if header.refresh_last {
            self.last = Some(timestamp);
        }
    }

    pub fn live(&self) -> Vec<u64> {
        let mut live: Vec<u64> = [self.last, self.golden, self.alt]
            .into_iter()
            .flatten()
            .collect();
        live.sort_unstable();
        live.dedup();
        live
    }
}

/// Decodes VP8 frames in decode order.
#[derive(Debug, Default)]
pub struct Vp8Decoder {
    parser: Vp8Parser,
    refs: Vp8References,
    /// Size of the last key frame, for the element's caps.
    size: Option<(u32, u32)>,
    /// Segment probabilities of the last frame with segmentation on.
    segment_probs: [u8; 3],
}

impl Vp8Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn references(&self) -> Vp8References {
        self.refs
    }

    pub fn size(&self) -> Option<(u32, u32)> {
        self.size
    }

    /// Parses a frame without decoding it (for the sequence-level setup before the
    /// CAPTURE format is chosen): returns the control the first request would carry.
    pub fn peek(&self, frame: &[u8]) -> Result<Control, String> {
        let mut parser = self.parser.clone();
        let header = parser.parse_frame(frame).map_err(|e| e.to_string())?;
        Ok(Control::Vp8Frame(Box::new(frame_control(
            &header,
            &self.refs,
            &self.segment_probs,
        ))))
    }

    /// Decodes one frame queued with `timestamp`. On a bitstream error nothing changes,
    /// so the caller may skip the frame and go on (inter frames keep failing until the
    /// next key frame if references are missing).
    pub fn decode<B: Backend>(
        &mut self,
        frame: &[u8],
        timestamp: u64,
        backend: &mut B,
    ) -> Result<Outcome, DecodeError<B::Error>> {
        let (parser, header) = parse_on_copy(&self.parser, |p| p.parse_frame(frame))?;
        if !header.key_frame && (self.refs.last.is_none() || self.refs.golden.is_none()) {
            return Err(DecodeError::Bitstream(
                "VP8 inter frame without reference pictures".into(),
            ));
        }
        let segment_probs = if header.segmentation.enabled {
            header.segmentation.segment_probs
        } else {
            self.segment_probs
        };
        let control = frame_control(&header, &self.refs, &segment_probs);
        backend
            .decode(DecodeJob::picture(
                timestamp,
                frame,
                vec![Control::Vp8Frame(Box::new(control))],
            ))
            .map_err(DecodeError::Backend)?;
        self.parser = parser;
        self.segment_probs = segment_probs;
        if header.key_frame {
            self.size = Some((header.width.into(), header.height.into()));
        }
        self.refs.update(&header, timestamp);
        backend.set_references(&self.refs.live());
        Ok(if header.show_frame {
            Outcome::shown(timestamp)
        } else {
            Outcome::discarded(timestamp)
        })
    }

    /// Pictures still waiting for output: none, VP8 shows pictures in decode order.
    pub fn drain(&mut self) -> Vec<(u64, u64)> {
        Vec::new()
    }

    /// Forgets all references (flush/seek): decoding restarts at the next key frame.
    pub fn reset(&mut self) {
        *self = Self::default();
    }
}

/// Fills `v4l2_ctrl_vp8_frame` from a parsed header and the current references.
/// `segment_probs` are sent while segmentation is off: unused then, we repeat the last
/// ones in force (zero before any), as GStreamer's v4l2codecs does.
pub fn frame_control(
    h: &Vp8FrameHeader,
    refs: &Vp8References,
    segment_probs: &[u8; 3],
) -> bindings::v4l2_ctrl_vp8_frame {
    let flag = |on: bool, bit: u32| if on { bit } else { 0 };
    let seg = &h.segmentation;
    let lf = &h.loop_filter;
    let q = &h.quant;
    let mut c = bindings::v4l2_ctrl_vp8_frame::default();
    c.segment.quant_update = seg.quant_update;
    c.segment.lf_update = seg.lf_update;
    c.segment.segment_probs = if seg.enabled {
        seg.segment_probs
    } else {
        *segment_probs
    };
    c.segment.flags = flag(seg.enabled, bindings::V4L2_VP8_SEGMENT_FLAG_ENABLED)
        | flag(seg.update_map, bindings::V4L2_VP8_SEGMENT_FLAG_UPDATE_MAP)
        | flag(
            seg.update_feature_data,
            bindings::V4L2_VP8_SEGMENT_FLAG_UPDATE_FEATURE_DATA,
        )
        | flag(
            !seg.absolute_values,
            bindings::V4L2_VP8_SEGMENT_FLAG_DELTA_VALUE_MODE,
        );
    c.lf.ref_frm_delta = lf.ref_frm_delta;
    c.lf.mb_mode_delta = lf.mb_mode_delta;
    c.lf.sharpness_level = lf.sharpness_level;
    c.lf.level = lf.level;
    c.lf.flags = flag(lf.adj_enable, bindings::V4L2_VP8_LF_ADJ_ENABLE)
        | flag(lf.delta_update, bindings::V4L2_VP8_LF_DELTA_UPDATE)
        | flag(lf.simple, bindings::V4L2_VP8_LF_FILTER_TYPE_SIMPLE);
    c.quant.y_ac_qi = q.y_ac_qi;
    c.quant.y_dc_delta = q.y_dc_delta;
    c.quant.y2_dc_delta = q.y2_dc_delta;
    c.quant.y2_ac_delta = q.y2_ac_delta;
    c.quant.uv_dc_delta = q.uv_dc_delta;
    c.quant.uv_ac_delta = q.uv_ac_delta;
    c.entropy.coeff_probs = h.entropy.coeff_probs;
    // Key frames decode their modes with the fixed key-frame trees (RFC 6386 11.2), not
    // the saved inter-frame probabilities: send the ones this frame really uses.
    if h.key_frame {
        c.entropy.y_mode_probs = KEY_FRAME_Y_MODE_PROBS;
        c.entropy.uv_mode_probs = KEY_FRAME_UV_MODE_PROBS;
    } else {
        c.entropy.y_mode_probs = h.entropy.y_mode_probs;
        c.entropy.uv_mode_probs = h.entropy.uv_mode_probs;
    }
    c.entropy.mv_probs = h.entropy.mv_probs;
    c.coder_state.range = h.coder_state.range;
    c.coder_state.value = h.coder_state.value;
    c.coder_state.bit_count = h.coder_state.bit_count;
    c.width = h.width;
    c.height = h.height;
    c.horizontal_scale = h.horizontal_scale;
    c.vertical_scale = h.vertical_scale;
    c.version = h.version;
    c.prob_skip_false = h.prob_skip_false;
    c.prob_intra = h.prob_intra;
    c.prob_last = h.prob_last;
    c.prob_gf = h.prob_gf;
    c.num_dct_parts = h.num_dct_parts;
    c.first_part_size = h.first_part_size;
    c.first_part_header_bits = h.first_part_header_bits;
    c.dct_part_sizes = h.dct_part_sizes;
    c.last_frame_ts = refs.last.unwrap_or(0);
    c.golden_frame_ts = refs.golden.unwrap_or(0);
    c.alt_frame_ts = refs.alt.unwrap_or(0);
    c.flags = u64::from(
        flag(h.key_frame, bindings::V4L2_VP8_FRAME_FLAG_KEY_FRAME)
            | flag(h.show_frame, bindings::V4L2_VP8_FRAME_FLAG_SHOW_FRAME)
            | flag(
                h.mb_no_coeff_skip,
                bindings::V4L2_VP8_FRAME_FLAG_MB_NO_SKIP_COEFF,
            )
            | flag(
                h.sign_bias_golden,
                bindings::V4L2_VP8_FRAME_FLAG_SIGN_BIAS_GOLDEN,
            )
            | flag(
                h.sign_bias_alternate,
                bindings::V4L2_VP8_FRAME_FLAG_SIGN_BIAS_ALT,
            ),
    );
    c
}
