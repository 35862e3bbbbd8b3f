// SPDX-License-Identifier: MPL-2.0
//! H.264 state machine tests over the recording backend: a real x264 stream (B-pyramid,
//! 2 slices per picture, weighted prediction, 4 references) and hand-written streams for
//! what encoders rarely emit (long-term references, MMCO, frame_num gaps).

use v4l2r::bindings;

use super::{DecodeMode, Decoded, H264Decoder};
use crate::stateless::backend::{Control, DecodeError};
use crate::stateless::frame_timestamp;
use crate::stateless::recording::{Recorded, RecordingBackend};

const X264_PYRAMID: &[u8] = include_bytes!("testdata/x264-pyramid-2slices.264");

const SLICE_BASED: DecodeMode = DecodeMode {
    slice_based: true,
    annex_b: false,
};

/// Splits an Annex-B stream into access units: a new one starts at a slice with
/// `first_mb_in_slice == 0` or at a non-VCL NAL unit that follows a slice.
fn access_units(stream: &[u8]) -> Vec<Vec<u8>> {
    let mut units: Vec<Vec<u8>> = Vec::new();
    let mut current = Vec::new();
    let mut has_slice = false;
    for nal in mediapass_codecparsers::annexb::StartCodeUnits::new(stream) {
        let kind = nal.data[0] & 0x1f;
        let is_slice = kind == 1 || kind == 5;
        let starts_picture = is_slice && nal.data.get(1).is_some_and(|b| b & 0x80 != 0);
        if has_slice && (!is_slice || starts_picture) {
            units.push(std::mem::take(&mut current));
            has_slice = false;
        }
        current.extend_from_slice(&[0, 0, 0, 1]);
        current.extend_from_slice(nal.data);
        has_slice |= is_slice;
    }
    if !current.is_empty() {
        units.push(current);
    }
    units
}

fn decode_params(job: &Recorded) -> Option<&bindings::v4l2_ctrl_h264_decode_params> {
    job.controls.iter().find_map(|c| match c {
        Control::H264DecodeParams(p) => Some(&**p),
        _ => None,
    })
}

fn slice_params(job: &Recorded) -> &bindings::v4l2_ctrl_h264_slice_params {
    job.controls
        .iter()
        .find_map(|c| match c {
            Control::H264SliceParams(p) => Some(&**p),
            _ => None,
        })
        .expect("slice-based jobs carry SLICE_PARAMS")
}

fn pred_weights(job: &Recorded) -> &bindings::v4l2_ctrl_h264_pred_weights {
    job.controls
        .iter()
        .find_map(|c| match c {
            Control::H264PredWeights(p) => Some(&**p),
            _ => None,
        })
        .expect("slice-based jobs carry PRED_WEIGHTS")
}

/// The timestamps a slice's list refers to, through the DPB of its picture.
fn list_timestamps(
    list: &[bindings::v4l2_h264_reference; 32],
    dpb: &bindings::v4l2_ctrl_h264_decode_params,
) -> Vec<Option<u64>> {
    list.iter()
        .take_while(|r| r.fields != 0xff)
        .map(|r| dpb.dpb.get(usize::from(r.index)).map(|e| e.reference_ts))
        .collect()
}

struct Run {
    be: RecordingBackend,
    output: Vec<u64>,
    dropped: Vec<u64>,
}

fn decode_all(mode: DecodeMode, units: &[Vec<u8>]) -> Run {
    let mut dec = H264Decoder::new(mode);
    let mut be = RecordingBackend::default();
    let mut output = Vec::new();
    let mut dropped = Vec::new();
    for (n, au) in units.iter().enumerate() {
        let d: Decoded = dec
            .decode(au, frame_timestamp(n as u32), &mut be)
            .unwrap_or_else(|e| panic!("access unit {n}: {e}"));
        output.extend(d.output);
        dropped.extend(d.dropped);
    }
    output.extend(dec.drain());
    Run {
        be,
        output,
        dropped,
    }
}

#[test]
fn x264_pyramid_is_output_once_each_in_poc_order() {
    let units = access_units(X264_PYRAMID);
    assert_eq!(units.len(), 24);
    let run = decode_all(SLICE_BASED, &units);
    // Two slices per picture: the first holds the CAPTURE buffer, the second continues.
    assert_eq!(run.be.jobs.len(), 48);
    for pair in run.be.jobs.chunks(2) {
        assert!(pair[0].hold_capture && !pair[0].continues_picture);
        assert!(!pair[1].hold_capture && pair[1].continues_picture);
        assert_eq!(pair[0].timestamp, pair[1].timestamp);
        assert!(decode_params(&pair[0]).is_some());
        assert!(decode_params(&pair[1]).is_none(), "picture controls once");
        assert_eq!(slice_params(&pair[0]).first_mb_in_slice, 0);
        assert!(slice_params(&pair[1]).first_mb_in_slice > 0);
        assert!(
            pair[0].bitstream_head[0] & 0x80 == 0 && pair[0].bitstream_head[0] != 0,
            "NAL header first, no start code"
        );
    }
    let mut sorted = run.output.clone();
    sorted.sort_unstable();
    let all: Vec<u64> = (0..24).map(frame_timestamp).collect();
    assert_eq!(sorted, all, "every picture output exactly once");
    assert!(run.dropped.is_empty());
    // Output order follows POC within each IDR period (keyint 12).
    let poc = |ts: u64| {
        let job = run.be.jobs.iter().find(|j| j.timestamp == ts).unwrap();
        decode_params(job).unwrap().top_field_order_cnt
    };
    let idr = |ts: u64| {
        let job = run.be.jobs.iter().find(|j| j.timestamp == ts).unwrap();
        decode_params(job).unwrap().flags & bindings::V4L2_H264_DECODE_PARAM_FLAG_IDR_PIC != 0
    };
    for w in run.output.windows(2) {
        assert!(idr(w[1]) || poc(w[0]) < poc(w[1]), "{w:?}");
    }
    assert_ne!(
        run.output, all,
        "B-frames make output order differ from decoding order"
    );
}

#[test]
fn x264_pyramid_reference_lists_follow_poc() {
    let units = access_units(X264_PYRAMID);
    let run = decode_all(SLICE_BASED, &units);
    let mut saw_b = false;
    let mut saw_weights = false;
    for job in run.be.jobs.iter().step_by(2) {
        let dp = decode_params(job).unwrap();
        let sp = slice_params(job);
        let entries: Vec<_> = dp
            .dpb
            .iter()
            .filter(|e| e.flags & bindings::V4L2_H264_DPB_ENTRY_FLAG_VALID != 0)
            .collect();
        let poc_of = |ts: u64| {
            entries
                .iter()
                .find(|e| e.reference_ts == ts)
                .map(|e| e.top_field_order_cnt.min(e.bottom_field_order_cnt))
                .expect("listed pictures are in the DPB")
        };
        let cur = dp.top_field_order_cnt.min(dp.bottom_field_order_cnt);
        let l0 = list_timestamps(&sp.ref_pic_list0, dp);
        let l1 = list_timestamps(&sp.ref_pic_list1, dp);
        match sp.slice_type {
            2 => assert!(l0.is_empty() && l1.is_empty()),
            0 => {
                assert_eq!(l0.len(), usize::from(sp.num_ref_idx_l0_active_minus1) + 1);
                assert!(l1.is_empty());
                // x264 may reorder P lists for weighted prediction duplicates; the
                // references themselves must be past pictures.
                for ts in l0.iter().flatten() {
                    assert!(poc_of(*ts) < cur);
                }
                // --weightp 2: explicit tables (default weight 1 << denom when a
                // reference is not weighted), never the all-zero "no table".
                let w = pred_weights(job);
                saw_weights = true;
                assert_eq!(
                    w.weight_factors[0].luma_weight[0] >> w.luma_log2_weight_denom,
                    1,
                    "{w:?}"
                );
            }
            1 => {
                saw_b = true;
                assert_eq!(l0.len(), usize::from(sp.num_ref_idx_l0_active_minus1) + 1);
                assert_eq!(l1.len(), usize::from(sp.num_ref_idx_l1_active_minus1) + 1);
                let first0 = poc_of(l0[0].unwrap());
                let first1 = poc_of(l1[0].unwrap());
                assert!(first0 < cur && first1 > cur, "{first0} {cur} {first1}");
            }
            other => panic!("unexpected slice type {other}"),
        }
        assert!(entries.len() <= 4, "--ref 4 keeps at most 4 references");
    }
    assert!(saw_b, "the stream has B slices");
    assert!(saw_weights, "--weightp 2 gives explicit weights");
}

#[test]
fn frame_based_annex_b_sends_whole_pictures_with_start_codes() {
    let units = access_units(X264_PYRAMID);
    let mode = DecodeMode {
        slice_based: false,
        annex_b: true,
    };
    let run = decode_all(mode, &units);
    assert_eq!(run.be.jobs.len(), 24);
    for job in &run.be.jobs {
        assert_eq!(&job.bitstream_head[..3], &[0, 0, 1]);
        assert!(!job.hold_capture && !job.continues_picture);
        assert!(
            job.controls
                .iter()
                .all(|c| !matches!(c, Control::H264SliceParams(_) | Control::H264PredWeights(_)))
        );
    }
    assert_eq!(run.output.len(), 24);
}

#[test]
fn truncated_and_corrupt_access_units_are_bitstream_errors_and_change_nothing() {
    let units = access_units(X264_PYRAMID);
    let mut dec = H264Decoder::new(SLICE_BASED);
    let mut be = RecordingBackend::default();
    // A P picture before any IDR.
    let p_only: Vec<u8> = units[1].clone();
    assert!(matches!(
        dec.decode(&p_only, 0, &mut be),
        Err(DecodeError::Bitstream(_))
    ));
    dec.decode(&units[0], frame_timestamp(0), &mut be).unwrap();
    let jobs = be.jobs.len();
    let refs = be.references.clone();
    // The next picture cut inside its first slice header.
    let au = &units[1];
    let truncated = &au[..au.len().min(6)];
    match dec.decode(truncated, frame_timestamp(1), &mut be) {
        Err(DecodeError::Bitstream(_))
        | Ok(Decoded {
            decoded_picture: false,
            ..
        }) => {}
        other => panic!("truncated access unit decoded: {other:?}"),
    }
    let garbage = [0u8, 0, 1, 0x41, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
    assert!(matches!(
        dec.decode(&garbage, frame_timestamp(1), &mut be),
        Err(DecodeError::Bitstream(_))
    ));
    assert_eq!(be.jobs.len(), jobs, "nothing queued");
    assert_eq!(be.references, refs);
    // Decoding goes on with the real next picture.
    dec.decode(&units[1], frame_timestamp(1), &mut be).unwrap();
    assert!(be.jobs.len() > jobs);
    // A device failure is the backend's error, not a bitstream error.
    be.fail_next = true;
    assert!(matches!(
        dec.decode(&units[2], frame_timestamp(2), &mut be),
        Err(DecodeError::Backend(_))
    ));
}

/// Hand-written streams: Main profile, CAVLC, 4-bit frame_num, POC type 0 with 8-bit
/// LSBs, no slice data beyond a few bytes (the state machine never reads it).
mod handmade {

    #[derive(Default)]
    struct Bits {
        bytes: Vec<u8>,
        bit: u32,
    }

    impl Bits {
        fn put(&mut self, n: u32, v: u32) -> &mut Self {
            for i in (0..n).rev() {
                if self.bit.is_multiple_of(8) {
                    self.bytes.push(0);
                }
                if (v >> i) & 1 == 1 {
                    *self.bytes.last_mut().unwrap() |= 0x80 >> (self.bit % 8);
                }
                self.bit += 1;
            }
            self
        }
        fn flag(&mut self, on: bool) -> &mut Self {
            self.put(1, u32::from(on))
        }
        fn ue(&mut self, v: u32) -> &mut Self {
            let x = v + 1;
            let len = 32 - x.leading_zeros();
            self.put(len - 1, 0).put(len, x)
        }
        fn se(&mut self, v: i32) -> &mut Self {
            let code = if v > 0 { 2 * v - 1 } else { -2 * v };
            self.ue(code as u32)
        }
        fn nal(&mut self, header: u8) -> Vec<u8> {
            self.flag(true);
            let mut out = vec![0, 0, 0, 1, header];
            let mut zeros = 0;
            for &b in &self.bytes {
                if zeros >= 2 && b <= 3 {
                    out.push(3);
                    zeros = 0;
                }
                zeros = if b == 0 { zeros + 1 } else { 0 };
                out.push(b);
            }
            out
        }
    }

    /// SPS + PPS: `max_num_ref_frames`, VUI with the given reorder depth and DPB size.
    pub(super) fn headers(max_refs: u32, reorder: u32, dpb: u32) -> Vec<u8> {
        let mut sps = Bits::default();
        sps.put(8, 77).put(8, 0).put(8, 30).ue(0); // profile, constraints, level, id
        sps.ue(0).ue(0).ue(4); // log2_max_frame_num-4, poc type 0, log2 lsb-4
        sps.ue(max_refs).flag(true); // refs, gaps allowed
        sps.ue(3).ue(3).flag(true).flag(true).flag(false); // 4x4 MBs, frame_mbs_only, 8x8
        sps.flag(true); // vui
        for _ in 0..8 {
            sps.flag(false); // aspect_ratio_info_present … pic_struct_present
        }
        sps.flag(true)
            .flag(true)
            .ue(0)
            .ue(0)
            .ue(16)
            .ue(16)
            .ue(reorder)
            .ue(dpb);
        let mut pps = Bits::default();
        pps.ue(0).ue(0).flag(false).flag(false).ue(0); // ids, CAVLC, no bottom poc, 1 group
        pps.ue(max_refs.max(1) - 1).ue(0).flag(false).put(2, 0);
        pps.se(0).se(0).se(0).flag(false).flag(false).flag(false);
        let mut out = sps.nal(0x67);
        out.extend(pps.nal(0x68));
        out
    }

    #[derive(Clone, Default)]
    pub(super) struct Pic {
        pub idr: bool,
        pub nal_ref_idc: u8,
        /// 0 P, 1 B, 2 I.
        pub slice_type: u32,
        pub frame_num: u32,
        pub poc_lsb: u32,
        pub num_ref_idx_l0_active: Option<u32>,
        pub modifications_l0: Vec<(u32, u32)>,
        pub no_output_of_prior_pics: bool,
        pub long_term_reference: bool,
        /// (operation, first argument, second argument) as the syntax orders them.
        pub mmcos: Option<Vec<(u32, u32, u32)>>,
    }

    pub(super) fn slice(p: &Pic) -> Vec<u8> {
        let mut s = Bits::default();
        s.ue(0).ue(p.slice_type + 5).ue(0).put(4, p.frame_num);
        if p.idr {
            s.ue(0);
        }
        s.put(8, p.poc_lsb);
        if p.slice_type == 1 {
            s.flag(true); // direct_spatial_mv_pred
        }
        if p.slice_type != 2 {
            s.flag(p.num_ref_idx_l0_active.is_some());
            if let Some(n) = p.num_ref_idx_l0_active {
                s.ue(n - 1);
                if p.slice_type == 1 {
                    s.ue(0);
                }
            }
            s.flag(!p.modifications_l0.is_empty());
            for &(idc, v) in &p.modifications_l0 {
                s.ue(idc).ue(v);
            }
            if !p.modifications_l0.is_empty() {
                s.ue(3);
            }
            if p.slice_type == 1 {
                s.flag(false);
            }
        }
        if p.nal_ref_idc != 0 {
            if p.idr {
                s.flag(p.no_output_of_prior_pics)
                    .flag(p.long_term_reference);
            } else {
                s.flag(p.mmcos.is_some());
                for &(op, a, b) in p.mmcos.iter().flatten() {
                    s.ue(op);
                    match op {
                        1 | 2 | 4 | 6 => {
                            s.ue(a);
                        }
                        3 => {
                            s.ue(a).ue(b);
                        }
                        _ => {}
                    }
                }
                if p.mmcos.is_some() {
                    s.ue(0);
                }
            }
        }
        s.se(0).put(8, 0xa5).put(8, 0x5a); // slice_qp_delta, "slice data"
        let header = (p.nal_ref_idc << 5) | if p.idr { 5 } else { 1 };
        s.nal(header)
    }

    pub(super) fn idr(poc_lsb: u32) -> Pic {
        Pic {
            idr: true,
            nal_ref_idc: 3,
            slice_type: 2,
            poc_lsb,
            ..Pic::default()
        }
    }

    pub(super) fn p(frame_num: u32, poc_lsb: u32) -> Pic {
        Pic {
            nal_ref_idc: 2,
            slice_type: 0,
            frame_num,
            poc_lsb,
            ..Pic::default()
        }
    }
}

use handmade::{Pic, headers, idr, p, slice};

/// Decodes pictures (the first one preceded by the headers); returns the backend and
/// every output in order.
fn run_pictures(pics: &[Pic], max_refs: u32, reorder: u32, dpb: u32) -> Run {
    let units: Vec<Vec<u8>> = pics
        .iter()
        .enumerate()
        .map(|(i, pic)| {
            let mut au = if i == 0 {
                headers(max_refs, reorder, dpb)
            } else {
                Vec::new()
            };
            au.extend(slice(pic));
            au
        })
        .collect();
    decode_all(SLICE_BASED, &units)
}

/// `(timestamp / 1000, long-term)` of the valid DPB entries of picture `n`.
fn dpb_of(run: &Run, n: u32) -> Vec<(u64, bool)> {
    let job = run
        .be
        .jobs
        .iter()
        .find(|j| j.timestamp == frame_timestamp(n))
        .unwrap();
    decode_params(job)
        .unwrap()
        .dpb
        .iter()
        .filter(|e| e.flags & bindings::V4L2_H264_DPB_ENTRY_FLAG_VALID != 0)
        .map(|e| {
            (
                e.reference_ts / 1000,
                e.flags & bindings::V4L2_H264_DPB_ENTRY_FLAG_LONG_TERM != 0,
            )
        })
        .collect()
}

fn list0_of(run: &Run, n: u32) -> Vec<Option<u64>> {
    let job = run
        .be
        .jobs
        .iter()
        .find(|j| j.timestamp == frame_timestamp(n))
        .unwrap();
    list_timestamps(
        &slice_params(job).ref_pic_list0,
        decode_params(job).unwrap(),
    )
    .into_iter()
    .map(|t| t.map(|t| t / 1000))
    .collect()
}

fn frames(ts: &[u64]) -> Vec<u64> {
    ts.iter().map(|t| t / 1000).collect()
}

#[test]
fn b_frames_are_output_in_poc_order_with_reorder_depth() {
    let b = |frame_num, poc_lsb| Pic {
        nal_ref_idc: 0,
        slice_type: 1,
        frame_num,
        poc_lsb,
        ..Pic::default()
    };
    // Decoding order I0 P6 B2 B4 P12 B8 B10; display order I0 B2 B4 P6 B8 B10 P12.
    let pics = [
        idr(0),
        p(1, 6),
        b(2, 2),
        b(2, 4),
        p(2, 12),
        b(3, 8),
        b(3, 10),
    ];
    let run = run_pictures(&pics, 2, 2, 3);
    assert_eq!(frames(&run.output), [0, 2, 3, 1, 5, 6, 4]);
    // B lists: past reference first in list 0, future one first in list 1.
    let job = &run.be.jobs[2];
    let dp = decode_params(job).unwrap();
    let l0 = list_timestamps(&slice_params(job).ref_pic_list0, dp);
    let l1 = list_timestamps(&slice_params(job).ref_pic_list1, dp);
    // PPS defaults: two active references in list 0 (past, then future), one in list 1
    // (the future one).
    assert_eq!(l0, [Some(0), Some(frame_timestamp(1))]);
    assert_eq!(l1, [Some(frame_timestamp(1))]);
    // The device keeps references and pictures waiting for output: B10 still waits,
    // B2 (not a reference, output long ago) may be recycled.
    assert!(run.be.references.contains(&frame_timestamp(6)));
    assert!(!run.be.references.contains(&frame_timestamp(2)));
}

#[test]
fn sliding_window_keeps_max_num_ref_frames() {
    let pics: Vec<Pic> = std::iter::once(idr(0))
        .chain((1..6).map(|n| p(n, 2 * n)))
        .collect();
    let run = run_pictures(&pics, 2, 0, 2);
    assert_eq!(frames(&run.output), [0, 1, 2, 3, 4, 5], "no reordering");
    assert_eq!(dpb_of(&run, 1), [(0, false)]);
    assert_eq!(dpb_of(&run, 2), [(0, false), (1, false)]);
    assert_eq!(dpb_of(&run, 3), [(1, false), (2, false)], "IDR slid out");
    assert_eq!(dpb_of(&run, 5), [(3, false), (4, false)]);
    // P list: descending PicNum.
    assert_eq!(list0_of(&run, 5), [Some(4), Some(3)]);
    assert_eq!(run.be.references, [frame_timestamp(4), frame_timestamp(5)]);
}

#[test]
fn mmco_1_unmarks_a_short_term_picture() {
    let mut p3 = p(3, 6);
    // difference_of_pic_nums_minus1 = 1: PicNum 3 - 2 = 1 (frame 1).
    p3.mmcos = Some(vec![(1, 1, 0)]);
    let pics = [idr(0), p(1, 2), p(2, 4), p3, p(4, 8)];
    let run = run_pictures(&pics, 4, 0, 4);
    assert_eq!(dpb_of(&run, 3), [(0, false), (1, false), (2, false)]);
    assert_eq!(dpb_of(&run, 4), [(0, false), (2, false), (3, false)]);
}

#[test]
fn long_term_references_via_idr_flag_and_mmco_3_4_6_2() {
    let mut first = idr(0);
    first.long_term_reference = true;
    let mut p2 = p(2, 4);
    // MMCO 4: MaxLongTermFrameIdx = 1; MMCO 3: PicNum 1 -> long-term index 1.
    p2.mmcos = Some(vec![(4, 2, 0), (3, 0, 1)]);
    let mut p3 = p(3, 6);
    // MMCO 2: LongTermPicNum 0 (the IDR) unused; MMCO 6: this picture -> index 0.
    p3.mmcos = Some(vec![(2, 0, 0), (6, 0, 0)]);
    let pics = [first, p(1, 2), p2, p3, p(4, 8)];
    let run = run_pictures(&pics, 4, 0, 4);
    assert_eq!(dpb_of(&run, 1), [(0, true)]);
    assert_eq!(dpb_of(&run, 2), [(0, true), (1, false)]);
    assert_eq!(dpb_of(&run, 3), [(0, true), (1, true), (2, false)]);
    assert_eq!(dpb_of(&run, 4), [(1, true), (2, false), (3, true)]);
    // P list: short-term first, then long-term by ascending LongTermPicNum (3 has
    // index 0, 1 has index 1).
    assert_eq!(list0_of(&run, 4), [Some(2), Some(3), Some(1)]);
}

#[test]
fn mmco_5_outputs_everything_before_and_restarts_counting() {
    let mut p2 = p(2, 40);
    p2.mmcos = Some(vec![(5, 0, 0)]);
    // After MMCO 5, frame_num counts from 0 again: next is frame_num 1.
    let pics = [idr(0), p(1, 20), p2, p(1, 2)];
    let run = run_pictures(&pics, 4, 4, 4);
    assert_eq!(frames(&run.output), [0, 1, 2, 3]);
    assert_eq!(dpb_of(&run, 3), [(2, false)]);
    let job = run
        .be
        .jobs
        .iter()
        .find(|j| j.timestamp == frame_timestamp(3));
    // POC of the MMCO 5 picture became 0, so frame 3 (lsb 2) follows it.
    assert_eq!(
        decode_params(job.unwrap()).unwrap().dpb[0].top_field_order_cnt,
        0
    );
}

#[test]
fn frame_num_gap_inserts_non_existing_frames_without_output() {
    // frame_num jumps 1 -> 4: frames 2 and 3 are "non-existing" short-term references.
    let pics = [idr(0), p(1, 2), p(4, 8), p(5, 10)];
    let run = run_pictures(&pics, 3, 0, 3);
    assert_eq!(
        frames(&run.output),
        [0, 1, 2, 3],
        "no output for missing frames"
    );
    // Sliding window with 3 references: before frame 4 the DPB held 1, 2*, 3* (the IDR
    // slid out); pictures without buffer are not given to the device.
    assert_eq!(dpb_of(&run, 2), [(1, false)]);
    // The P list names them (PicNum 3, 2 first), which map to no DPB entry.
    assert_eq!(list0_of(&run, 2), [None, None, Some(1)]);
    assert_eq!(dpb_of(&run, 3), [(2, false)], "1 slid out too");
}

#[test]
fn ref_pic_list_modification_moves_a_picture_to_the_front() {
    let mut p3 = p(3, 6);
    p3.num_ref_idx_l0_active = Some(3);
    // abs_diff_pic_num_minus1 = 2: PicNum 3 - 3 = 0 (the IDR) first.
    p3.modifications_l0 = vec![(0, 2)];
    let pics = [idr(0), p(1, 2), p(2, 4), p3];
    let run = run_pictures(&pics, 4, 0, 4);
    assert_eq!(list0_of(&run, 3), [Some(0), Some(2), Some(1)]);
    // Without modification the same picture sees descending PicNum.
    assert_eq!(list0_of(&run, 2), [Some(1), Some(0)]);
}

#[test]
fn idr_with_no_output_of_prior_pics_drops_waiting_pictures() {
    let mut second = idr(0);
    second.no_output_of_prior_pics = true;
    // Reorder depth 2: P1 and P2 still wait when the second IDR arrives.
    let pics = [idr(0), p(1, 2), p(2, 4), second, p(1, 2)];
    let run = run_pictures(&pics, 4, 2, 4);
    assert_eq!(frames(&run.dropped), [1, 2]);
    assert_eq!(frames(&run.output), [0, 3, 4]);
}

#[test]
fn idr_outputs_prior_pictures_first() {
    let pics = [idr(0), p(1, 4), p(2, 2), idr(0), p(1, 2)];
    let run = run_pictures(&pics, 4, 2, 4);
    assert_eq!(frames(&run.output), [0, 2, 1, 3, 4]);
    // An IDR picture references nothing: its DPB is empty, as GStreamer sends it.
    assert_eq!(dpb_of(&run, 3), []);
    assert_eq!(dpb_of(&run, 4), [(3, false)]);
}

#[test]
fn parameter_sets_alone_decode_nothing() {
    let mut dec = H264Decoder::new(SLICE_BASED);
    let mut be = RecordingBackend::default();
    let d = dec.decode(&headers(2, 0, 2), 0, &mut be).unwrap();
    assert!(!d.decoded_picture && d.output.is_empty());
    assert!(be.jobs.is_empty());
    let info = dec.peek(&headers(2, 0, 2)).unwrap();
    assert_eq!((info.width, info.height), (64, 64));
    assert!(info.is_8bit_420);
    assert!(matches!(info.control, Control::H264Sps(_)));
}
