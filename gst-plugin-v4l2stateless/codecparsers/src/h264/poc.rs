// SPDX-License-Identifier: MPL-2.0
//! Picture order count (8.2.1) for `pic_order_cnt_type` 0, 1 and 2. V4L2 wants
//! `top_field_order_cnt`/`bottom_field_order_cnt` in the decode params and in every DPB
//! entry; the kernel does not compute them. All arithmetic wraps instead of panicking on
//! hostile input.

use super::{SliceHeader, Sps};

/// What the POC process needs from one picture (its first slice header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PocInput {
    pub idr: bool,
    pub nal_ref_idc: u8,
    pub frame_num: u32,
    pub field_pic_flag: bool,
    pub bottom_field_flag: bool,
    pub pic_order_cnt_lsb: u32,
    pub delta_pic_order_cnt_bottom: i32,
    pub delta_pic_order_cnt: [i32; 2],
    /// The picture carries `memory_management_control_operation == 5`.
    pub mmco5: bool,
}

impl From<&SliceHeader> for PocInput {
    fn from(s: &SliceHeader) -> Self {
        Self {
            idr: s.idr_pic_flag,
            nal_ref_idc: s.nal_ref_idc,
            frame_num: u32::from(s.frame_num),
            field_pic_flag: s.field_pic_flag,
            bottom_field_flag: s.bottom_field_flag,
            pic_order_cnt_lsb: u32::from(s.pic_order_cnt_lsb),
            delta_pic_order_cnt_bottom: s.delta_pic_order_cnt_bottom,
            delta_pic_order_cnt: s.delta_pic_order_cnt,
            mmco5: s
                .dec_ref_pic_marking
                .as_ref()
                .is_some_and(|m| m.has_mmco5()),
        }
    }
}

/// Field order counts of one picture. For a field picture only its own parity is
/// meaningful (the other is set equal to it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PicOrderCnt {
    pub top_field_order_cnt: i32,
    pub bottom_field_order_cnt: i32,
}

impl PicOrderCnt {
    /// `PicOrderCnt(CurrPic)`.
    pub fn pic_order_cnt(&self, input: &PocInput) -> i32 {
        match (input.field_pic_flag, input.bottom_field_flag) {
            (false, _) => self.top_field_order_cnt.min(self.bottom_field_order_cnt),
            (true, false) => self.top_field_order_cnt,
            (true, true) => self.bottom_field_order_cnt,
        }
    }
}

/// Carries the state between pictures (`prevPicOrderCntMsb/Lsb`, `prevFrameNumOffset`,
/// `prevFrameNum`). Feed pictures in decoding order, once per picture (not per slice).
#[derive(Debug, Clone, Default)]
pub struct PocCalculator {
    prev_pic_order_cnt_msb: i64,
    prev_pic_order_cnt_lsb: i64,
    prev_frame_num_offset: i64,
    prev_frame_num: i64,
    prev_had_mmco5: bool,
}

impl PocCalculator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Computes the POC of the next picture and updates the state.
    pub fn compute(&mut self, sps: &Sps, input: &PocInput) -> PicOrderCnt {
        let (top, bottom) = match sps.pic_order_cnt_type {
            0 => self.type0(sps, input),
            1 => self.type1(sps, input),
            _ => self.type2(sps, input),
        };
        let poc = PicOrderCnt {
            top_field_order_cnt: top as i32,
            bottom_field_order_cnt: bottom as i32,
        };
        self.finish_picture(input, top, bottom);
        poc
    }

    fn frame_num_offset(&self, sps: &Sps, input: &PocInput) -> i64 {
        let prev_offset = if self.prev_had_mmco5 {
            0
        } else {
            self.prev_frame_num_offset
        };
        if input.idr {
            0
        } else if self.prev_frame_num > i64::from(input.frame_num) {
            prev_offset.wrapping_add(i64::from(sps.max_frame_num()))
        } else {
            prev_offset
        }
    }

    fn type0(&mut self, sps: &Sps, input: &PocInput) -> (i64, i64) {
        let (prev_msb, prev_lsb) = if input.idr {
            (0, 0)
        } else {
            (self.prev_pic_order_cnt_msb, self.prev_pic_order_cnt_lsb)
        };
        let max_lsb = i64::from(sps.max_pic_order_cnt_lsb());
        let lsb = i64::from(input.pic_order_cnt_lsb);
        let msb = if lsb < prev_lsb && prev_lsb - lsb >= max_lsb / 2 {
            prev_msb.wrapping_add(max_lsb)
        } else if lsb > prev_lsb && lsb - prev_lsb > max_lsb / 2 {
            prev_msb.wrapping_sub(max_lsb)
        } else {
            prev_msb
        };
        let top = msb.wrapping_add(lsb);
        let bottom = match (input.field_pic_flag, input.bottom_field_flag) {
            (false, _) => top.wrapping_add(i64::from(input.delta_pic_order_cnt_bottom)),
            (true, true) => top,
            (true, false) => top,
        };
        if input.nal_ref_idc != 0 {
            self.prev_pic_order_cnt_msb = msb;
            self.prev_pic_order_cnt_lsb = lsb;
        }
        (top, bottom)
    }

    fn type1(&mut self, sps: &Sps, input: &PocInput) -> (i64, i64) {
        let frame_num_offset = self.frame_num_offset(sps, input);
        let cycle_len = sps.offset_for_ref_frame.len() as i64;
        let mut abs_frame_num = if cycle_len != 0 {
            frame_num_offset.wrapping_add(i64::from(input.frame_num))
        } else {
            0
        };
        if input.nal_ref_idc == 0 && abs_frame_num > 0 {
            abs_frame_num -= 1;
        }
        let mut expected = 0i64;
        if abs_frame_num > 0 {
            let delta_per_cycle: i64 = sps.offset_for_ref_frame.iter().map(|&o| i64::from(o)).sum();
            let cycle_cnt = (abs_frame_num - 1) / cycle_len;
            let in_cycle = ((abs_frame_num - 1) % cycle_len) as usize;
            expected = cycle_cnt.wrapping_mul(delta_per_cycle);
            for &offset in &sps.offset_for_ref_frame[..=in_cycle] {
                expected = expected.wrapping_add(i64::from(offset));
            }
        }
        if input.nal_ref_idc == 0 {
            expected = expected.wrapping_add(i64::from(sps.offset_for_non_ref_pic));
        }
        let t2b = i64::from(sps.offset_for_top_to_bottom_field);
        let [d0, d1] = input.delta_pic_order_cnt.map(i64::from);
        let (top, bottom) = match (input.field_pic_flag, input.bottom_field_flag) {
            (false, _) => {
                let top = expected.wrapping_add(d0);
                (top, top.wrapping_add(t2b).wrapping_add(d1))
            }
            (true, false) => {
                let top = expected.wrapping_add(d0);
                (top, top)
            }
            (true, true) => {
                let bottom = expected.wrapping_add(t2b).wrapping_add(d0);
                (bottom, bottom)
            }
        };
        self.prev_frame_num_offset = frame_num_offset;
        (top, bottom)
    }

    fn type2(&mut self, sps: &Sps, input: &PocInput) -> (i64, i64) {
        let frame_num_offset = self.frame_num_offset(sps, input);
        let temp = if input.idr {
            0
        } else {
            let doubled = frame_num_offset
                .wrapping_add(i64::from(input.frame_num))
                .wrapping_mul(2);
            if input.nal_ref_idc == 0 {
                doubled - 1
            } else {
                doubled
            }
        };
        self.prev_frame_num_offset = frame_num_offset;
        (temp, temp)
    }

    fn finish_picture(&mut self, input: &PocInput, top: i64, bottom: i64) {
        self.prev_had_mmco5 = input.mmco5;
        self.prev_frame_num = i64::from(input.frame_num);
        if input.mmco5 {
            // 8.2.1: after mmco 5 the picture counts as frame_num 0 with its POC
            // rebased to 0, which is what the next picture must reference.
            self.prev_frame_num = 0;
            if input.nal_ref_idc != 0 {
                self.prev_pic_order_cnt_msb = 0;
                self.prev_pic_order_cnt_lsb = match (input.field_pic_flag, input.bottom_field_flag)
                {
                    (false, _) => top - top.min(bottom),
                    (true, false) => 0,
                    (true, true) => 0,
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::h264::ScalingLists;
    use proptest::prelude::*;

    fn sps(poc_type: u8) -> Sps {
        Sps {
            profile_idc: 66,
            constraint_set_flags: 0,
            level_idc: 30,
            seq_parameter_set_id: 0,
            chroma_format_idc: 1,
            separate_colour_plane_flag: false,
            bit_depth_luma_minus8: 0,
            bit_depth_chroma_minus8: 0,
            qpprime_y_zero_transform_bypass_flag: false,
            seq_scaling_matrix_present_flag: false,
            scaling_lists: ScalingLists::default(),
            log2_max_frame_num_minus4: 0,
            pic_order_cnt_type: poc_type,
            log2_max_pic_order_cnt_lsb_minus4: 0,
            delta_pic_order_always_zero_flag: false,
            offset_for_non_ref_pic: -2,
            offset_for_top_to_bottom_field: 1,
            offset_for_ref_frame: vec![2, 4],
            max_num_ref_frames: 2,
            gaps_in_frame_num_value_allowed_flag: false,
            pic_width_in_mbs_minus1: 0,
            pic_height_in_map_units_minus1: 0,
            frame_mbs_only_flag: true,
            mb_adaptive_frame_field_flag: false,
            direct_8x8_inference_flag: true,
            frame_cropping_flag: false,
            frame_crop_left_offset: 0,
            frame_crop_right_offset: 0,
            frame_crop_top_offset: 0,
            frame_crop_bottom_offset: 0,
            vui: None,
        }
    }

    fn pic(idr: bool, nal_ref_idc: u8, frame_num: u32, lsb: u32) -> PocInput {
        PocInput {
            idr,
            nal_ref_idc,
            frame_num,
            field_pic_flag: false,
            bottom_field_flag: false,
            pic_order_cnt_lsb: lsb,
            delta_pic_order_cnt_bottom: 0,
            delta_pic_order_cnt: [0, 0],
            mmco5: false,
        }
    }

    #[test]
    fn type0_wraps_the_lsb() {
        // MaxPicOrderCntLsb = 16: lsb 0, 6, 12, 2 (wrapped), 8.
        let sps = sps(0);
        let mut calc = PocCalculator::new();
        let pocs: Vec<i32> = [(true, 0), (false, 6), (false, 12), (false, 2), (false, 8)]
            .iter()
            .enumerate()
            .map(|(i, &(idr, lsb))| {
                calc.compute(&sps, &pic(idr, 1, i as u32, lsb))
                    .top_field_order_cnt
            })
            .collect();
        assert_eq!(pocs, vec![0, 6, 12, 18, 24]);
    }

    #[test]
    fn type0_non_reference_pictures_do_not_move_the_anchor() {
        let sps = sps(0);
        let mut calc = PocCalculator::new();
        calc.compute(&sps, &pic(true, 1, 0, 0));
        // lsb 14 after 0 jumps backwards: PicOrderCntMsb -16, POC -2.
        assert_eq!(
            calc.compute(&sps, &pic(false, 1, 1, 14))
                .top_field_order_cnt,
            -2
        );
        let b = calc.compute(&sps, &pic(false, 0, 2, 0));
        assert_eq!(b.top_field_order_cnt, -16 + 16);
    }

    #[test]
    fn type1_expected_deltas() {
        // offsets [2, 4], ExpectedDeltaPerPicOrderCntCycle = 6, non-ref offset -2,
        // top-to-bottom +1.
        let sps = sps(1);
        let mut calc = PocCalculator::new();
        let idr = calc.compute(&sps, &pic(true, 1, 0, 0));
        assert_eq!(
            (idr.top_field_order_cnt, idr.bottom_field_order_cnt),
            (0, 1)
        );
        // absFrameNum 1 → cycle 0, in-cycle 0 → 2.
        assert_eq!(
            calc.compute(&sps, &pic(false, 1, 1, 0)).top_field_order_cnt,
            2
        );
        // absFrameNum 2 → 2 + 4 = 6.
        assert_eq!(
            calc.compute(&sps, &pic(false, 1, 2, 0)).top_field_order_cnt,
            6
        );
        // non-ref frame_num 3: absFrameNum 2 → 6 - 2 = 4.
        assert_eq!(
            calc.compute(&sps, &pic(false, 0, 3, 0)).top_field_order_cnt,
            4
        );
        // absFrameNum 3 → one cycle (6) + 2 = 8.
        assert_eq!(
            calc.compute(&sps, &pic(false, 1, 3, 0)).top_field_order_cnt,
            8
        );
    }

    #[test]
    fn type2_follows_decoding_order_and_frame_num_wrap() {
        let sps = sps(2); // MaxFrameNum 16
        let mut calc = PocCalculator::new();
        assert_eq!(
            calc.compute(&sps, &pic(true, 1, 0, 0)).top_field_order_cnt,
            0
        );
        assert_eq!(
            calc.compute(&sps, &pic(false, 1, 1, 0)).top_field_order_cnt,
            2
        );
        assert_eq!(
            calc.compute(&sps, &pic(false, 0, 2, 0)).top_field_order_cnt,
            3
        );
        for n in 2..16 {
            calc.compute(&sps, &pic(false, 1, n, 0));
        }
        // frame_num wrapped to 0: FrameNumOffset = 16.
        assert_eq!(
            calc.compute(&sps, &pic(false, 1, 0, 0)).top_field_order_cnt,
            32
        );
    }

    fn field(mut p: PocInput, bottom: bool) -> PocInput {
        p.field_pic_flag = true;
        p.bottom_field_flag = bottom;
        p
    }

    #[test]
    fn field_pictures() {
        // Type 0: each field has its own lsb; the pair's frame POC is the minimum.
        let sps0 = sps(0);
        let mut calc = PocCalculator::new();
        let top = field(pic(true, 1, 0, 0), false);
        let t = calc.compute(&sps0, &top);
        assert_eq!(t.pic_order_cnt(&top), 0);
        let bottom = field(pic(false, 1, 0, 1), true);
        let b = calc.compute(&sps0, &bottom);
        assert_eq!(b.pic_order_cnt(&bottom), 1);
        assert_eq!(b.bottom_field_order_cnt, 1);
        // Type 1: the bottom field adds offset_for_top_to_bottom_field (+1).
        let sps1 = sps(1);
        let mut calc = PocCalculator::new();
        calc.compute(&sps1, &field(pic(true, 1, 0, 0), false));
        calc.compute(&sps1, &field(pic(false, 1, 0, 0), true));
        let top = field(pic(false, 1, 1, 0), false);
        assert_eq!(calc.compute(&sps1, &top).top_field_order_cnt, 2);
        let bottom = field(pic(false, 1, 1, 0), true);
        assert_eq!(calc.compute(&sps1, &bottom).bottom_field_order_cnt, 3);
        // Type 2: both fields of a frame share 2 * FrameNum.
        let sps2 = sps(2);
        let mut calc = PocCalculator::new();
        calc.compute(&sps2, &field(pic(true, 1, 0, 0), false));
        let top = calc.compute(&sps2, &field(pic(false, 1, 1, 0), false));
        let bottom = calc.compute(&sps2, &field(pic(false, 1, 1, 0), true));
        assert_eq!(
            (top.top_field_order_cnt, bottom.bottom_field_order_cnt),
            (2, 2)
        );
    }

    #[test]
    fn mmco5_resets_the_anchor() {
        let sps = sps(0);
        let mut calc = PocCalculator::new();
        calc.compute(&sps, &pic(true, 1, 0, 0));
        calc.compute(&sps, &pic(false, 1, 1, 4));
        let mut with_mmco5 = pic(false, 1, 2, 8);
        with_mmco5.mmco5 = true;
        assert_eq!(calc.compute(&sps, &with_mmco5).top_field_order_cnt, 8);
        // Next picture's lsb is relative to 0 again.
        assert_eq!(
            calc.compute(&sps, &pic(false, 1, 1, 2)).top_field_order_cnt,
            2
        );
    }

    proptest! {
        /// Type 0 reconstructs any POC sequence whose steps between reference pictures
        /// stay below MaxPicOrderCntLsb / 2, from the lsb alone.
        #[test]
        fn type0_recovers_pocs_from_lsbs(
            log2_lsb_minus4 in 0u8..=4,
            steps in proptest::collection::vec(-1000i32..1000, 1..100),
        ) {
            let mut sps = sps(0);
            sps.log2_max_pic_order_cnt_lsb_minus4 = log2_lsb_minus4;
            let max_lsb = sps.max_pic_order_cnt_lsb() as i32;
            let mut calc = PocCalculator::new();
            calc.compute(&sps, &pic(true, 1, 0, 0));
            let mut poc = 0i32;
            for (i, step) in steps.into_iter().enumerate() {
                poc += step.rem_euclid(max_lsb - 1) - (max_lsb / 2 - 1);
                let lsb = poc.rem_euclid(max_lsb) as u32;
                let got = calc.compute(&sps, &pic(false, 1, i as u32 + 1, lsb));
                prop_assert_eq!(got.top_field_order_cnt, poc);
            }
        }

        /// Type 2 gives strictly increasing POCs in decoding order across frame_num wraps.
        #[test]
        fn type2_is_monotonic(refs in proptest::collection::vec(any::<bool>(), 1..200)) {
            let sps = sps(2);
            let mut calc = PocCalculator::new();
            let mut last = calc.compute(&sps, &pic(true, 1, 0, 0)).top_field_order_cnt;
            let mut frame_num = 0u32;
            let mut prev_ref = true;
            for wants_ref in refs {
                // 8.2.1.3: type 2 forbids two non-reference pictures in a row.
                let is_ref = wants_ref || !prev_ref;
                prev_ref = is_ref;
                // frame_num counts reference pictures; a non-reference one uses prev + 1.
                let this = (frame_num + 1) % sps.max_frame_num();
                let got = calc.compute(&sps, &pic(false, u8::from(is_ref), this, 0));
                prop_assert!(got.top_field_order_cnt > last);
                last = got.top_field_order_cnt;
                if is_ref {
                    frame_num = this;
                }
            }
        }
    }
}
