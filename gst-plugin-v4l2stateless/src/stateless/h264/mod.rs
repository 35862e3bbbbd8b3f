// SPDX-License-Identifier: MPL-2.0
//! H.264: one access unit (one frame) per input buffer. Per picture the state machine
//! computes the POC, fills in missing `frame_num`s, builds the V4L2 DPB from the
//! reference frames, queues the slices (one request per slice in slice-based mode, with
//! the reference lists of 8.2.4; the whole picture in one request in frame-based
//! mode), then marks references (sliding window or MMCO) and outputs pictures in POC
//! order through the bumping process of Annex C.
//!
//! Field pictures (PAFF) are refused with a bitstream error; MBAFF and progressive
//! frames are decoded.

mod controls;
mod dpb;
mod level;
mod ref_lists;

use mediapass_codecparsers::annexb::StartCodeUnits;
use mediapass_codecparsers::h264::{
    NalHeader, NalUnitType, ParameterSets, ParsedNal, PocCalculator, PocInput, SliceHeader,
    SliceType, Sps,
};

use super::backend::{Backend, Control, DecodeError, DecodeJob};
pub use dpb::{Dpb, MarkingError, Picture, Reference};

/// How the driver wants the bitstream (`V4L2_CID_STATELESS_H264_DECODE_MODE` and
/// `_START_CODE`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecodeMode {
    /// One request per slice with `SLICE_PARAMS` and `PRED_WEIGHTS`; otherwise one
    /// request per frame holding all its slices.
    pub slice_based: bool,
    /// Prefix each slice with `00 00 01`.
    pub annex_b: bool,
}

/// What one access unit produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decoded {
    /// Timestamps of the pictures to output now, in output order.
    pub output: Vec<u64>,
    /// Pictures decoded but never to be output (`no_output_of_prior_pics_flag`).
    pub dropped: Vec<u64>,
    /// Whether this access unit held a picture (parameter sets alone do not).
    pub decoded_picture: bool,
}

/// Sequence-level facts for the element, from an SPS.
#[derive(Debug, Clone)]
pub struct SequenceInfo {
    pub control: Control,
    /// Coded size in luma samples.
    pub width: u32,
    pub height: u32,
    /// Display rectangle after cropping `(x, y, width, height)`.
    pub crop: (u32, u32, u32, u32),
    pub is_8bit_420: bool,
    /// Frame buffers the DPB needs.
    pub dpb_size: u32,
}

/// Decodes H.264 access units in decoding order.
#[derive(Debug, Clone, Default)]
pub struct H264Decoder {
    mode: DecodeMode,
    sets: ParameterSets,
    poc: PocCalculator,
    dpb: Dpb,
    /// The SPS of the current sequence (a change re-derives the DPB limits).
    active_sps: Option<Sps>,
    /// `PrevRefFrameNum` (7.4.3).
    prev_ref_frame_num: u32,
    /// An IDR (or an intra picture) started decoding: references can be resolved.
    started: bool,
}

/// One slice NAL unit of the picture with its parsed header.
struct SliceNal<'a> {
    header: SliceHeader,
    nal: &'a [u8],
}

fn bitstream_error<E: std::error::Error>(e: impl std::fmt::Display) -> DecodeError<E> {
    DecodeError::Bitstream(e.to_string())
}

/// The slices of a picture must agree on what identifies the picture (7.4.1.2.4).
fn same_picture(a: &SliceHeader, b: &SliceHeader) -> bool {
    a.frame_num == b.frame_num
        && a.pic_parameter_set_id == b.pic_parameter_set_id
        && a.field_pic_flag == b.field_pic_flag
        && a.bottom_field_flag == b.bottom_field_flag
        && (a.nal_ref_idc == 0) == (b.nal_ref_idc == 0)
        && a.idr_pic_flag == b.idr_pic_flag
        && a.idr_pic_id == b.idr_pic_id
        && a.pic_order_cnt_lsb == b.pic_order_cnt_lsb
        && a.delta_pic_order_cnt_bottom == b.delta_pic_order_cnt_bottom
        && a.delta_pic_order_cnt == b.delta_pic_order_cnt
}

impl H264Decoder {
    pub fn new(mode: DecodeMode) -> Self {
        Self {
            mode,
            ..Self::default()
        }
    }

    pub fn mode(&self) -> DecodeMode {
        self.mode
    }

    /// The DPB (for tests and the element's buffer accounting).
    pub fn dpb(&self) -> &Dpb {
        &self.dpb
    }

    /// Parses the parameter sets of `access_unit` without decoding: the SPS the first
    /// slice activates (or the last SPS when there is no slice).
    pub fn peek(&self, access_unit: &[u8]) -> Result<SequenceInfo, String> {
        let mut sets = self.sets.clone();
        let mut sps = None;
        for unit in StartCodeUnits::new(access_unit) {
            match sets.parse_nal(unit.data) {
                Ok(ParsedNal::Sps(s)) => sps = Some(*s),
                Ok(ParsedNal::Slice(slice)) => {
                    sps = sets.sps(slice.seq_parameter_set_id.into()).cloned();
                    break;
                }
                Ok(_) => {}
                Err(e) => {
                    let is_slice = NalHeader::parse(unit.data).is_ok_and(|h| {
                        matches!(h.nal_unit_type, NalUnitType::Slice | NalUnitType::IdrSlice)
                    });
                    if is_slice {
                        return Err(e.to_string());
                    }
                }
            }
        }
        let sps = sps.ok_or("no sequence parameter set before the first slice")?;
        let (width, height) = sps.coded_size();
        Ok(SequenceInfo {
            control: Control::H264Sps(Box::new(controls::sps(&sps))),
            width,
            height,
            crop: sps.crop_rectangle(),
            is_8bit_420: sps.chroma_format_idc == 1
                && sps.bit_depth_luma_minus8 == 0
                && sps.bit_depth_chroma_minus8 == 0,
            dpb_size: level::dpb_size(&sps) as u32,
        })
    }

    /// Whether `access_unit` holds an IDR slice (a sequence can start there).
    pub fn is_idr(access_unit: &[u8]) -> bool {
        StartCodeUnits::new(access_unit).any(|u| {
            NalHeader::parse(u.data).is_ok_and(|h| h.nal_unit_type == NalUnitType::IdrSlice)
        })
    }

    /// Decodes one access unit queued with `timestamp`. On a bitstream error the
    /// decoding state is unchanged (parameter sets parsed so far are kept), so the
    /// caller may skip the access unit and go on.
    pub fn decode<B: Backend>(
        &mut self,
        access_unit: &[u8],
        timestamp: u64,
        backend: &mut B,
    ) -> Result<Decoded, DecodeError<B::Error>> {
        let slices = self.parse_access_unit(access_unit)?;
        let Some(first) = slices.first() else {
            return Ok(Decoded::default());
        };
        let first = &first.header;
        if let Some(other) = slices.iter().find(|s| !same_picture(first, &s.header)) {
            return Err(DecodeError::Bitstream(format!(
                "slice at macroblock {} belongs to another picture: one access unit per buffer expected",
                other.header.first_mb_in_slice
            )));
        }
        if first.field_pic_flag {
            return Err(DecodeError::Bitstream(
                "field pictures (PAFF) are not supported".into(),
            ));
        }
        let sps = self
            .sets
            .sps(first.seq_parameter_set_id.into())
            .cloned()
            .ok_or_else(|| bitstream_error("slice refers to a missing SPS"))?;
        let pps = self
            .sets
            .pps(first.pic_parameter_set_id.into())
            .cloned()
            .ok_or_else(|| bitstream_error("slice refers to a missing PPS"))?;
        let intra_only = slices.iter().all(|s| s.header.slice_type.is_intra());
        if !first.idr_pic_flag && !self.started && !intra_only {
            return Err(DecodeError::Bitstream(
                "inter picture before the first IDR picture".into(),
            ));
        }

        // Work on copies: nothing changes unless every slice was queued.
        let mut dpb = self.dpb.clone();
        let mut poc = self.poc.clone();
        let mut output = Vec::new();
        let mut dropped = Vec::new();
        let mut prev_ref_frame_num = self.prev_ref_frame_num;
        if self.active_sps.as_ref() != Some(&sps) {
            // A new sequence: what is still waiting leaves first.
            output.extend(dpb.flush());
            dpb.set_limits(level::dpb_size(&sps), level::max_num_reorder(&sps));
        }
        let frame_num = u32::from(first.frame_num);
        let max_frame_num = sps.max_frame_num();
        if first.idr_pic_flag {
            prev_ref_frame_num = 0;
        } else if self.started
            && frame_num != prev_ref_frame_num
            && frame_num != (prev_ref_frame_num + 1) % max_frame_num
        {
            output.extend(fill_frame_num_gap(
                &mut dpb,
                &mut poc,
                &sps,
                prev_ref_frame_num,
                frame_num,
            ));
            prev_ref_frame_num = (frame_num + max_frame_num - 1) % max_frame_num;
        }
        let mmco5 = first
            .dec_ref_pic_marking
            .as_ref()
            .is_some_and(|m| m.has_mmco5());
        let order = poc.compute(&sps, &PocInput::from(first));
        dpb.update_frame_num_wrap(frame_num, max_frame_num);

        // The DPB as this picture sees it (nothing for an IDR picture, whose marking
        // empties it first), and the DPB after marking it.
        let before = if first.idr_pic_flag {
            Dpb::default()
        } else {
            dpb.clone()
        };
        let mut reference = Reference::Unused;
        let marking = first.dec_ref_pic_marking.clone().unwrap_or_default();
        if first.idr_pic_flag {
            if marking.no_output_of_prior_pics_flag {
                dropped.extend(dpb.discard_all());
            } else {
                output.extend(dpb.flush());
            }
            reference = dpb.mark_idr(marking.long_term_reference_flag);
        } else if first.nal_ref_idc != 0 {
            if marking.adaptive_ref_pic_marking_mode_flag {
                let current = dpb
                    .apply_mmcos(&marking.operations, frame_num as i32)
                    .map_err(bitstream_error)?;
                reference = current.reference;
                if current.mmco5 {
                    output.extend(dpb.flush());
                }
            } else {
                dpb.sliding_window(sps.max_num_ref_frames.into());
                reference = Reference::ShortTerm;
            }
        }

        self.queue_slices(&slices, &sps, &pps, order, &before, timestamp, backend)?;

        let (mut top, mut bottom) = (order.top_field_order_cnt, order.bottom_field_order_cnt);
        if mmco5 {
            // 8.2.1: after MMCO 5 the picture counts from zero, as after an IDR.
            let temp = top.min(bottom);
            top = top.wrapping_sub(temp);
            bottom = bottom.wrapping_sub(temp);
        }
        output.extend(dpb.store(Picture {
            timestamp: Some(timestamp),
            frame_num: if mmco5 { 0 } else { frame_num },
            frame_num_wrap: if mmco5 { 0 } else { frame_num as i32 },
            top_field_order_cnt: top,
            bottom_field_order_cnt: bottom,
            reference,
            needed_for_output: true,
        }));
        if first.nal_ref_idc != 0 {
            prev_ref_frame_num = if mmco5 { 0 } else { frame_num };
        }
        self.dpb = dpb;
        self.poc = poc;
        self.prev_ref_frame_num = prev_ref_frame_num;
        self.active_sps = Some(sps);
        self.started = true;
        backend.set_references(&self.dpb.live_timestamps());
        Ok(Decoded {
            output,
            dropped,
            decoded_picture: true,
        })
    }

    /// Parses the NAL units of an access unit: parameter sets are remembered, primary
    /// slices returned (redundant slices are skipped, as decoders may).
    fn parse_access_unit<'a, E: std::error::Error>(
        &mut self,
        access_unit: &'a [u8],
    ) -> Result<Vec<SliceNal<'a>>, DecodeError<E>> {
        let mut slices = Vec::new();
        for unit in StartCodeUnits::new(access_unit) {
            let Ok(header) = NalHeader::parse(unit.data) else {
                continue;
            };
            match header.nal_unit_type {
                NalUnitType::Sps
                | NalUnitType::Pps
                | NalUnitType::Slice
                | NalUnitType::IdrSlice => {
                    match self.sets.parse_nal(unit.data).map_err(bitstream_error)? {
                        ParsedNal::Slice(slice) if slice.redundant_pic_cnt == 0 => {
                            slices.push(SliceNal {
                                header: *slice,
                                nal: unit.data,
                            });
                        }
                        _ => {}
                    }
                }
                // SEI, AUD, end of sequence, filler, partitions: nothing to decode.
                _ => {}
            }
        }
        Ok(slices)
    }

    #[allow(clippy::too_many_arguments)]
    fn queue_slices<B: Backend>(
        &self,
        slices: &[SliceNal<'_>],
        sps: &Sps,
        pps: &mediapass_codecparsers::h264::Pps,
        order: mediapass_codecparsers::h264::PicOrderCnt,
        before: &Dpb,
        timestamp: u64,
        backend: &mut B,
    ) -> Result<(), DecodeError<B::Error>> {
        let first = &slices[0].header;
        let scaling = controls::scaling_matrix_present(sps, pps);
        let (decode_params, slots) = controls::decode_params(
            first,
            order.top_field_order_cnt,
            order.bottom_field_order_cnt,
            before.pictures(),
        );
        let mut picture_controls = vec![
            Control::H264Sps(Box::new(controls::sps(sps))),
            Control::H264Pps(Box::new(controls::pps(pps, scaling))),
        ];
        if scaling {
            picture_controls.push(Control::H264ScalingMatrix(Box::new(
                controls::scaling_matrix(sps, pps),
            )));
        }
        picture_controls.push(Control::H264DecodeParams(Box::new(decode_params)));
        let start_code: &[u8] = if self.mode.annex_b { &[0, 0, 1] } else { &[] };

        if !self.mode.slice_based {
            let mut bitstream = Vec::new();
            for s in slices {
                bitstream.extend_from_slice(start_code);
                bitstream.extend_from_slice(s.nal);
            }
            return backend
                .decode(DecodeJob {
                    timestamp,
                    bitstream: &bitstream,
                    controls: picture_controls,
                    hold_capture: false,
                    continues_picture: false,
                })
                .map_err(DecodeError::Backend);
        }

        // Build every slice's lists before queuing anything, so a corrupt slice fails
        // the picture before the device sees it.
        let current_poc = order.top_field_order_cnt.min(order.bottom_field_order_cnt);
        let mut jobs = Vec::with_capacity(slices.len());
        for s in slices {
            let (list0, list1) = build_lists(
                &s.header,
                before.pictures(),
                current_poc,
                sps.max_frame_num() as i32,
            )
            .map_err(DecodeError::Bitstream)?;
            let mut bitstream = Vec::with_capacity(start_code.len() + s.nal.len());
            bitstream.extend_from_slice(start_code);
            bitstream.extend_from_slice(s.nal);
            jobs.push((
                bitstream,
                controls::slice_params(&s.header, &list0, &list1, &slots),
                controls::pred_weights(&s.header, sps),
            ));
        }
        let last = jobs.len() - 1;
        for (i, (bitstream, params, weights)) in jobs.into_iter().enumerate() {
            let mut job_controls = if i == 0 {
                std::mem::take(&mut picture_controls)
            } else {
                Vec::new()
            };
            job_controls.push(Control::H264SliceParams(Box::new(params)));
            job_controls.push(Control::H264PredWeights(Box::new(weights)));
            backend
                .decode(DecodeJob {
                    timestamp,
                    bitstream: &bitstream,
                    controls: job_controls,
                    hold_capture: i != last,
                    continues_picture: i != 0,
                })
                .map_err(DecodeError::Backend)?;
        }
        Ok(())
    }

    /// Outputs every picture still waiting, in POC order (end of stream).
    pub fn drain(&mut self) -> Vec<u64> {
        let out = self.dpb.flush();
        self.started = false;
        out
    }

    /// Forgets pictures and references (flush/seek); parameter sets are kept, decoding
    /// restarts at the next IDR picture.
    pub fn reset(&mut self) {
        *self = Self {
            mode: self.mode,
            sets: std::mem::take(&mut self.sets),
            ..Self::default()
        };
    }
}

/// The final reference lists of one slice of a frame.
fn build_lists(
    s: &SliceHeader,
    dpb: &[Picture],
    current_poc: i32,
    max_pic_num: i32,
) -> Result<(ref_lists::RefList, ref_lists::RefList), String> {
    let current_pic_num = i32::from(s.frame_num);
    let l0_active = usize::from(s.num_ref_idx_l0_active_minus1) + 1;
    let l1_active = usize::from(s.num_ref_idx_l1_active_minus1) + 1;
    Ok(match s.slice_type {
        SliceType::I | SliceType::Si => (Vec::new(), Vec::new()),
        SliceType::P | SliceType::Sp => (
            ref_lists::modify(
                &ref_lists::initial_p_list(dpb),
                &s.ref_pic_list_modification_l0,
                dpb,
                l0_active,
                current_pic_num,
                max_pic_num,
            )?,
            Vec::new(),
        ),
        SliceType::B => {
            let (init0, init1) = ref_lists::initial_b_lists(dpb, current_poc);
            (
                ref_lists::modify(
                    &init0,
                    &s.ref_pic_list_modification_l0,
                    dpb,
                    l0_active,
                    current_pic_num,
                    max_pic_num,
                )?,
                ref_lists::modify(
                    &init1,
                    &s.ref_pic_list_modification_l1,
                    dpb,
                    l1_active,
                    current_pic_num,
                    max_pic_num,
                )?,
            )
        }
    })
}

/// 8.2.5.2: frames with the skipped `frame_num`s enter as short-term references without
/// pictures. Only the last `max_num_ref_frames` can still be references afterwards, so
/// only those are created (a huge gap costs nothing).
fn fill_frame_num_gap(
    dpb: &mut Dpb,
    poc: &mut PocCalculator,
    sps: &Sps,
    prev_ref_frame_num: u32,
    frame_num: u32,
) -> Vec<u64> {
    let max_frame_num = sps.max_frame_num();
    // A previous SPS may have allowed larger frame numbers (corrupt stream).
    let prev_ref_frame_num = prev_ref_frame_num % max_frame_num;
    let missing = (frame_num + max_frame_num - prev_ref_frame_num - 1) % max_frame_num;
    let keep = missing.min(u32::from(sps.max_num_ref_frames).max(1));
    let mut output = Vec::new();
    for k in (0..keep).rev() {
        let unused_frame_num = (frame_num + max_frame_num - 1 - k) % max_frame_num;
        let (top, bottom) = if sps.pic_order_cnt_type != 0 {
            let o = poc.compute(
                sps,
                &PocInput {
                    idr: false,
                    nal_ref_idc: 1,
                    frame_num: unused_frame_num,
                    field_pic_flag: false,
                    bottom_field_flag: false,
                    pic_order_cnt_lsb: 0,
                    delta_pic_order_cnt_bottom: 0,
                    delta_pic_order_cnt: [0, 0],
                    mmco5: false,
                },
            );
            (o.top_field_order_cnt, o.bottom_field_order_cnt)
        } else {
            (0, 0)
        };
        dpb.update_frame_num_wrap(unused_frame_num, max_frame_num);
        dpb.sliding_window(sps.max_num_ref_frames.into());
        output.extend(dpb.store(Picture {
            timestamp: None,
            frame_num: unused_frame_num,
            frame_num_wrap: unused_frame_num as i32,
            top_field_order_cnt: top,
            bottom_field_order_cnt: bottom,
            reference: Reference::ShortTerm,
            needed_for_output: false,
        }));
    }
    output
}

#[cfg(test)]
mod tests;
