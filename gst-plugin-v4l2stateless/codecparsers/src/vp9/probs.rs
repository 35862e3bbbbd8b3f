// SPDX-License-Identifier: MPL-2.0
//! VP9 probability tables: the default frame context (VP9 spec section 10.5), the four
//! saved frame contexts and the forward updates a compressed header applies to them.
//!
//! The same [`ProbTables`] shape holds either probabilities (a frame context) or the
//! per-field deltas of a compressed header (`v4l2_ctrl_vp9_compressed_hdr`: 0 = no
//! update, otherwise `inv_map_table[delta]`; for motion vectors the new probability).
//!
//! What V4L2 stateless VP9 expects: drivers that take `VP9_COMPRESSED_HDR` (rkvdec,
//! Hantro G2) keep the four contexts, apply the deltas and run backward adaptation
//! (which needs symbol counts only the hardware has) themselves; userspace passes
//! `frame_context_idx`, `reset_frame_context`, `refresh_frame_context` and the deltas.
//! [`FrameContexts`] mirrors the save/load/reset part so userspace can follow along
//! (e.g. for drivers or tests that need the probabilities before adaptation).

use super::coef_probs::DEFAULT_COEF_PROBS;
use super::uncompressed::{ResetFrameContext, UncompressedHeader};

/// Coefficient probabilities `[tx_size][plane][is_inter][band][ctx][node]`.
pub type CoefProbs = [[[[[[u8; 3]; 6]; 6]; 2]; 2]; 4];

/// Motion vector probabilities (`v4l2_vp9_mv_probs`), per component `[vertical,
/// horizontal]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MvProbs {
    pub joint: [u8; 3],
    pub sign: [u8; 2],
    pub classes: [[u8; 10]; 2],
    pub class0_bit: [u8; 2],
    pub bits: [[u8; 10]; 2],
    pub class0_fr: [[[u8; 3]; 2]; 2],
    pub fr: [[u8; 3]; 2],
    pub class0_hp: [u8; 2],
    pub hp: [u8; 2],
}

/// All adaptive probabilities of a frame, in the layout of `v4l2_vp9_frame_context`
/// and `v4l2_ctrl_vp9_compressed_hdr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbTables {
    pub tx8: [[u8; 1]; 2],
    pub tx16: [[u8; 2]; 2],
    pub tx32: [[u8; 3]; 2],
    pub coef: CoefProbs,
    pub skip: [u8; 3],
    pub inter_mode: [[u8; 3]; 7],
    pub interp_filter: [[u8; 2]; 4],
    pub is_inter: [u8; 4],
    pub comp_mode: [u8; 5],
    pub single_ref: [[u8; 2]; 5],
    pub comp_ref: [u8; 5],
    pub y_mode: [[u8; 9]; 4],
    pub uv_mode: [[u8; 9]; 10],
    pub partition: [[u8; 3]; 16],
    pub mv: MvProbs,
}

impl ProbTables {
    /// All zero: as deltas, "nothing updated".
    pub const fn zeroed() -> Self {
        Self {
            tx8: [[0; 1]; 2],
            tx16: [[0; 2]; 2],
            tx32: [[0; 3]; 2],
            coef: [[[[[[0; 3]; 6]; 6]; 2]; 2]; 4],
            skip: [0; 3],
            inter_mode: [[0; 3]; 7],
            interp_filter: [[0; 2]; 4],
            is_inter: [0; 4],
            comp_mode: [0; 5],
            single_ref: [[0; 2]; 5],
            comp_ref: [0; 5],
            y_mode: [[0; 9]; 4],
            uv_mode: [[0; 9]; 10],
            partition: [[0; 3]; 16],
            mv: MvProbs {
                joint: [0; 3],
                sign: [0; 2],
                classes: [[0; 10]; 2],
                class0_bit: [0; 2],
                bits: [[0; 10]; 2],
                class0_fr: [[[0; 3]; 2]; 2],
                fr: [[0; 3]; 2],
                class0_hp: [0; 2],
                hp: [0; 2],
            },
        }
    }

    /// The default probabilities `setup_past_independence` loads (spec section 10.5).
    pub const fn defaults() -> Self {
        Self {
            tx8: [[100], [66]],
            tx16: [[20, 152], [15, 101]],
            tx32: [[3, 136, 37], [5, 52, 13]],
            coef: DEFAULT_COEF_PROBS,
            skip: [192, 128, 64],
            inter_mode: [
                [2, 173, 34],
                [7, 145, 85],
                [7, 166, 63],
                [7, 94, 66],
                [8, 64, 46],
                [17, 81, 31],
                [25, 29, 30],
            ],
            interp_filter: [[235, 162], [36, 255], [34, 3], [149, 144]],
            is_inter: [9, 102, 187, 225],
            comp_mode: [239, 183, 119, 96, 41],
            single_ref: [[33, 16], [77, 74], [142, 142], [172, 170], [238, 247]],
            comp_ref: [50, 126, 123, 221, 226],
            y_mode: [
                [65, 32, 18, 144, 162, 194, 41, 51, 98],
                [132, 68, 18, 165, 217, 196, 45, 40, 78],
                [173, 80, 19, 176, 240, 193, 64, 35, 46],
                [221, 135, 38, 194, 248, 121, 96, 85, 29],
            ],
            uv_mode: [
                [120, 7, 76, 176, 208, 126, 28, 54, 103],
                [48, 12, 154, 155, 139, 90, 34, 117, 119],
                [67, 6, 25, 204, 243, 158, 13, 21, 96],
                [97, 5, 44, 131, 176, 139, 48, 68, 97],
                [83, 5, 42, 156, 111, 152, 26, 49, 152],
                [80, 5, 58, 178, 74, 83, 33, 62, 145],
                [86, 5, 32, 154, 192, 168, 14, 22, 163],
                [85, 5, 32, 156, 216, 148, 19, 29, 73],
                [77, 7, 64, 116, 132, 122, 37, 126, 120],
                [101, 21, 107, 181, 192, 103, 19, 67, 125],
            ],
            partition: [
                [199, 122, 141],
                [147, 63, 159],
                [148, 133, 118],
                [121, 104, 114],
                [174, 73, 87],
                [92, 41, 83],
                [82, 99, 50],
                [53, 39, 39],
                [177, 58, 59],
                [68, 26, 63],
                [52, 79, 25],
                [17, 14, 12],
                [222, 34, 30],
                [72, 16, 44],
                [58, 32, 12],
                [10, 7, 6],
            ],
            mv: MvProbs {
                joint: [32, 64, 96],
                sign: [128, 128],
                classes: [
                    [224, 144, 192, 168, 192, 176, 192, 198, 198, 245],
                    [216, 128, 176, 160, 176, 176, 192, 198, 198, 208],
                ],
                class0_bit: [216, 208],
                bits: [
                    [136, 140, 148, 160, 176, 192, 224, 234, 234, 240],
                    [136, 140, 148, 160, 176, 192, 224, 234, 234, 240],
                ],
                class0_fr: [
                    [[128, 128, 64], [96, 112, 64]],
                    [[128, 128, 64], [96, 112, 64]],
                ],
                fr: [[64, 96, 64], [64, 96, 64]],
                class0_hp: [160, 160],
                hp: [128, 128],
            },
        }
    }

    /// Every probability byte in a fixed order (used by invariant checks).
    pub fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(2048);
        out.extend(self.tx8.iter().flatten());
        out.extend(self.tx16.iter().flatten());
        out.extend(self.tx32.iter().flatten());
        out.extend(
            self.coef
                .iter()
                .flatten()
                .flatten()
                .flatten()
                .flatten()
                .flatten(),
        );
        out.extend(&self.skip);
        out.extend(self.inter_mode.iter().flatten());
        out.extend(self.interp_filter.iter().flatten());
        out.extend(&self.is_inter);
        out.extend(&self.comp_mode);
        out.extend(self.single_ref.iter().flatten());
        out.extend(&self.comp_ref);
        out.extend(self.y_mode.iter().flatten());
        out.extend(self.uv_mode.iter().flatten());
        out.extend(self.partition.iter().flatten());
        let mv = &self.mv;
        out.extend(&mv.joint);
        out.extend(&mv.sign);
        out.extend(mv.classes.iter().flatten());
        out.extend(&mv.class0_bit);
        out.extend(mv.bits.iter().flatten());
        out.extend(mv.class0_fr.iter().flatten().flatten());
        out.extend(mv.fr.iter().flatten());
        out.extend(&mv.class0_hp);
        out.extend(&mv.hp);
        out
    }

    /// Applies the deltas of a compressed header (spec 6.3 `diff_update_prob` and
    /// `update_mv_prob`): the forward update done before decoding the tiles.
    pub fn apply_deltas(&mut self, deltas: &ProbTables) {
        fn apply<const N: usize>(probs: &mut [u8; N], deltas: &[u8; N]) {
            for (p, &d) in probs.iter_mut().zip(deltas) {
                *p = update_prob(*p, d);
            }
        }
        fn set<const N: usize>(probs: &mut [u8; N], values: &[u8; N]) {
            for (p, &v) in probs.iter_mut().zip(values) {
                if v != 0 {
                    *p = v;
                }
            }
        }
        for i in 0..2 {
            apply(&mut self.tx8[i], &deltas.tx8[i]);
            apply(&mut self.tx16[i], &deltas.tx16[i]);
            apply(&mut self.tx32[i], &deltas.tx32[i]);
        }
        for (p, d) in self
            .coef
            .iter_mut()
            .flatten()
            .flatten()
            .flatten()
            .flatten()
            .zip(deltas.coef.iter().flatten().flatten().flatten().flatten())
        {
            apply(p, d);
        }
        apply(&mut self.skip, &deltas.skip);
        for (p, d) in self.inter_mode.iter_mut().zip(&deltas.inter_mode) {
            apply(p, d);
        }
        for (p, d) in self.interp_filter.iter_mut().zip(&deltas.interp_filter) {
            apply(p, d);
        }
        apply(&mut self.is_inter, &deltas.is_inter);
        apply(&mut self.comp_mode, &deltas.comp_mode);
        for (p, d) in self.single_ref.iter_mut().zip(&deltas.single_ref) {
            apply(p, d);
        }
        apply(&mut self.comp_ref, &deltas.comp_ref);
        for (p, d) in self.y_mode.iter_mut().zip(&deltas.y_mode) {
            apply(p, d);
        }
        for (p, d) in self.uv_mode.iter_mut().zip(&deltas.uv_mode) {
            apply(p, d);
        }
        for (p, d) in self.partition.iter_mut().zip(&deltas.partition) {
            apply(p, d);
        }
        let (mv, dmv) = (&mut self.mv, &deltas.mv);
        set(&mut mv.joint, &dmv.joint);
        set(&mut mv.sign, &dmv.sign);
        set(&mut mv.class0_bit, &dmv.class0_bit);
        set(&mut mv.class0_hp, &dmv.class0_hp);
        set(&mut mv.hp, &dmv.hp);
        for i in 0..2 {
            set(&mut mv.classes[i], &dmv.classes[i]);
            set(&mut mv.bits[i], &dmv.bits[i]);
            set(&mut mv.fr[i], &dmv.fr[i]);
            for j in 0..2 {
                set(&mut mv.class0_fr[i][j], &dmv.class0_fr[i][j]);
            }
        }
    }
}

impl Default for ProbTables {
    fn default() -> Self {
        Self::defaults()
    }
}

fn inv_recenter_nonneg(v: u32, m: u32) -> u32 {
    if v > 2 * m {
        v
    } else if v & 1 == 1 {
        m - ((v + 1) >> 1)
    } else {
        m + (v >> 1)
    }
}

/// `inv_remap_prob` after the `inv_map_table` lookup: applies a V4L2-style delta
/// (`inv_map_table[delta]`, 1..=254; 0 = no update) to a probability (1..=255).
pub fn update_prob(prob: u8, delta: u8) -> u8 {
    if delta == 0 {
        return prob;
    }
    let (v, m) = (u32::from(delta), u32::from(prob.max(1)));
    let updated = if m <= 128 {
        1 + inv_recenter_nonneg(v, m - 1)
    } else {
        255 - inv_recenter_nonneg(v, 255 - m)
    };
    // Well-formed deltas stay inside 1..=255; clamp what a corrupt stream could produce.
    updated.clamp(1, 255) as u8
}

/// The four saved frame contexts (`save_probs`/`load_probs` of the spec).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FrameContexts {
    pub contexts: [ProbTables; 4],
}

impl FrameContexts {
    /// Resets contexts as `setup_past_independence` requires for this frame, then
    /// returns the probabilities the frame starts from (`load_probs(frame_context_idx)`).
    /// Intra and error-resilient frames start from the defaults.
    pub fn load_for(&mut self, header: &UncompressedHeader) -> ProbTables {
        if header.resets_past() {
            if header.is_key_frame()
                || header.error_resilient_mode
                || header.reset_frame_context == ResetFrameContext::All
            {
                self.contexts = [ProbTables::defaults(); 4];
            } else if header.reset_frame_context == ResetFrameContext::Current {
                self.contexts[usize::from(header.coded_frame_context_idx & 3)] =
                    ProbTables::defaults();
            }
            return ProbTables::defaults();
        }
        self.contexts[usize::from(header.frame_context_idx & 3)]
    }

    /// Stores the probabilities a frame ends with (after adaptation unless
    /// `frame_parallel_decoding_mode`), if the header asks for it.
    pub fn save_for(&mut self, header: &UncompressedHeader, probs: &ProbTables) {
        if header.refresh_frame_context {
            self.contexts[usize::from(header.frame_context_idx & 3)] = *probs;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn defaults_are_valid_probabilities() {
        let defaults = ProbTables::defaults();
        let coef_nonzero = defaults
            .coef
            .iter()
            .flatten()
            .flatten()
            .flatten()
            .flat_map(|band| band.iter().enumerate())
            .filter(|(ctx, _)| *ctx < 3)
            .flat_map(|(_, p)| p.iter())
            .all(|&p| p > 0);
        assert!(coef_nonzero);
        assert_eq!(defaults.coef[0][0][0][0][0], [195, 29, 183]);
        assert_eq!(defaults.coef[3][1][1][5][5], [1, 16, 6]);
        assert_eq!(
            defaults.bytes().len(),
            2 + 4 + 6 + 1728 + 3 + 21 + 8 + 4 + 5 + 10 + 5 + 36 + 90 + 48 + 69
        );
    }

    #[test]
    fn update_prob_examples() {
        // v = 1 recentres one step down from m - 1 (for m ≤ 128).
        assert_eq!(update_prob(128, 0), 128);
        assert_eq!(update_prob(10, 1), 9);
        assert_eq!(update_prob(10, 2), 11);
        assert_eq!(update_prob(200, 1), 201);
        assert_eq!(update_prob(200, 200), 55);
    }

    proptest! {
        #[test]
        fn update_prob_stays_in_range(prob in 1u8..=255, delta in 0u8..=254) {
            let p = update_prob(prob, delta);
            prop_assert!(p >= 1);
        }
    }
}
