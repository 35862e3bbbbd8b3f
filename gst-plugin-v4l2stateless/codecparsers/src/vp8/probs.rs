// SPDX-License-Identifier: MPL-2.0
//! VP8 entropy probabilities kept from frame to frame (RFC 6386 sections 13, 16, 17),
//! in the layout of `v4l2_vp8_entropy`.

pub use super::coeff_probs::{COEFF_UPDATE_PROBS, DEFAULT_COEFF_PROBS};

/// Token probabilities `[block_type][coeff_band][prev_ctx][node]`.
pub type CoeffProbs = [[[[u8; 11]; 3]; 8]; 4];

/// Inter-frame luma mode probabilities a key frame restores (RFC 6386 section 16.2).
pub const DEFAULT_Y_MODE_PROBS: [u8; 4] = [112, 86, 140, 37];
/// Inter-frame chroma mode probabilities a key frame restores.
pub const DEFAULT_UV_MODE_PROBS: [u8; 3] = [162, 101, 204];

/// Motion vector probabilities per component (row, column), RFC 6386 section 17.2.
pub const DEFAULT_MV_PROBS: [[u8; 19]; 2] = [
    [
        162, 128, 225, 146, 172, 147, 214, 39, 156, 128, 129, 132, 75, 145, 178, 206, 239, 254, 254,
    ],
    [
        164, 128, 204, 170, 119, 235, 140, 230, 228, 128, 130, 130, 74, 148, 180, 203, 236, 254,
        254,
    ],
];

/// Probability that each motion vector probability is updated.
pub const MV_UPDATE_PROBS: [[u8; 19]; 2] = [
    [
        237, 246, 253, 253, 254, 254, 254, 254, 254, 254, 254, 254, 254, 254, 250, 250, 252, 254,
        254,
    ],
    [
        231, 243, 245, 253, 254, 254, 254, 254, 254, 254, 254, 254, 254, 254, 251, 251, 254, 254,
        254,
    ],
];

/// The probabilities that persist across frames (`v4l2_vp8_entropy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntropyProbs {
    pub coeff_probs: CoeffProbs,
    pub y_mode_probs: [u8; 4],
    pub uv_mode_probs: [u8; 3],
    pub mv_probs: [[u8; 19]; 2],
}

impl Default for EntropyProbs {
    fn default() -> Self {
        Self {
            coeff_probs: DEFAULT_COEFF_PROBS,
            y_mode_probs: DEFAULT_Y_MODE_PROBS,
            uv_mode_probs: DEFAULT_UV_MODE_PROBS,
            mv_probs: DEFAULT_MV_PROBS,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_hold_valid_probabilities() {
        let all = DEFAULT_COEFF_PROBS
            .iter()
            .chain(COEFF_UPDATE_PROBS.iter())
            .flatten()
            .flatten()
            .flatten();
        assert!(all.into_iter().all(|&p| p > 0));
        // Spot checks against RFC 6386 section 13.5 / 13.4.
        assert_eq!(DEFAULT_COEFF_PROBS[0][1][0][..3], [253, 136, 254]);
        assert_eq!(COEFF_UPDATE_PROBS[0][1][0][..3], [176, 246, 255]);
        assert_eq!(
            DEFAULT_COEFF_PROBS[3][7][2],
            [238, 1, 255, 128, 128, 128, 128, 128, 128, 128, 128]
        );
    }
}
