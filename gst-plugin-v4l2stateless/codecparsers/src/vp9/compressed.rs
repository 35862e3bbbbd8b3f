// SPDX-License-Identifier: MPL-2.0
//! VP9 compressed header (VP9 bitstream spec section 6.3): transform mode, reference
//! mode and the probability deltas `v4l2_ctrl_vp9_compressed_hdr` carries.

use super::probs::ProbTables;
use super::uncompressed::{InterpolationFilter, UncompressedHeader};
use crate::boolcoder::{BoolDecoder, BoolOutOfData};
use thiserror::Error;

/// Probability that a `diff_update_prob`/`update_mv_prob` update is present.
const UPDATE_PROB: u8 = 252;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CompressedHeaderError {
    #[error(transparent)]
    OutOfData(#[from] BoolOutOfData),
    #[error(
        "compressed header needs {size} bytes but only {available} follow the uncompressed header"
    )]
    Truncated { size: usize, available: usize },
    #[error("compressed header marker bit is set")]
    MarkerBitSet,
}

/// `tx_mode`, numbered like `V4L2_VP9_TX_MODE_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum TxMode {
    #[default]
    Only4x4 = 0,
    Allow8x8 = 1,
    Allow16x16 = 2,
    Allow32x32 = 3,
    Select = 4,
}

/// `reference_mode`, numbered like `V4L2_VP9_REFERENCE_MODE_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum ReferenceMode {
    #[default]
    Single = 0,
    Compound = 1,
    Select = 2,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompressedHeader {
    pub tx_mode: TxMode,
    /// Needed by `v4l2_ctrl_vp9_frame.reference_mode`.
    pub reference_mode: ReferenceMode,
    /// Deltas as V4L2 wants them: 0 = unchanged, else `inv_map_table[delta]`; motion
    /// vector entries hold the new probability.
    pub deltas: ProbTables,
    /// Number of `diff_update_prob`/`update_mv_prob` updates present.
    pub update_count: usize,
    /// Whether the bits after the last symbol are zero, as `exit_bool` requires of a
    /// conforming stream (false hints at a parse that read too few or too many
    /// symbols, or a corrupt header; decoders may still go on).
    pub padding_ok: bool,
}

/// `inv_map_table` (spec 6.3.5): the 20 "coarse" values 7 + 13k first, then every
/// other value 1..=253 in order, then 253 again (the table has 255 entries).
pub const INV_MAP_TABLE: [u8; 255] = {
    let mut table = [0u8; 255];
    let mut i = 0;
    while i < 20 {
        table[i] = (7 + 13 * i) as u8;
        i += 1;
    }
    let mut v = 1;
    while v <= 253 {
        if v % 13 != 7 {
            table[i] = v as u8;
            i += 1;
        }
        v += 1;
    }
    table[i] = 253;
    table
};

struct Reader<'a> {
    bd: BoolDecoder<'a>,
    updates: usize,
}

impl Reader<'_> {
    fn decode_term_subexp(&mut self, field: &'static str) -> Result<usize, BoolOutOfData> {
        let bd = &mut self.bd;
        if !bd.read_flag(field)? {
            return Ok(bd.read_literal(4, field)? as usize);
        }
        if !bd.read_flag(field)? {
            return Ok(bd.read_literal(4, field)? as usize + 16);
        }
        if !bd.read_flag(field)? {
            return Ok(bd.read_literal(5, field)? as usize + 32);
        }
        let v = bd.read_literal(7, field)? as usize;
        if v < 65 {
            return Ok(v + 64);
        }
        let bit = bd.read_flag(field)? as usize;
        Ok((v << 1) - 1 + bit)
    }

    /// `diff_update_prob`: returns the V4L2 delta (0 if no update).
    fn diff_update(&mut self, field: &'static str) -> Result<u8, BoolOutOfData> {
        if !self.bd.read_bool(UPDATE_PROB, field)? {
            return Ok(0);
        }
        self.updates += 1;
        let delta = self.decode_term_subexp(field)?;
        Ok(INV_MAP_TABLE[delta.min(INV_MAP_TABLE.len() - 1)])
    }

    fn diff_update_all(
        &mut self,
        probs: &mut [u8],
        field: &'static str,
    ) -> Result<(), BoolOutOfData> {
        for p in probs {
            *p = self.diff_update(field)?;
        }
        Ok(())
    }

    /// `update_mv_prob`: returns the new probability (0 if no update).
    fn mv_update_all(
        &mut self,
        probs: &mut [u8],
        field: &'static str,
    ) -> Result<(), BoolOutOfData> {
        for p in probs {
            *p = if self.bd.read_bool(UPDATE_PROB, field)? {
                self.updates += 1;
                ((self.bd.read_literal(7, field)? << 1) | 1) as u8
            } else {
                0
            };
        }
        Ok(())
    }
}

impl CompressedHeader {
    /// Parses the compressed header. `data` starts right after the uncompressed header
    /// (the frame from `uncompressed_header_size` on).
    pub fn parse(data: &[u8], header: &UncompressedHeader) -> Result<Self, CompressedHeaderError> {
        let size = usize::from(header.compressed_header_size);
        let data = data.get(..size).ok_or(CompressedHeaderError::Truncated {
            size,
            available: data.len(),
        })?;
        let mut r = Reader {
            bd: BoolDecoder::new(data),
            updates: 0,
        };
        if r.bd.read_flag("marker_bit")? {
            return Err(CompressedHeaderError::MarkerBitSet);
        }
        let mut d = ProbTables::zeroed();

        let tx_mode = if header.quant.lossless() {
            TxMode::Only4x4
        } else {
            match r.bd.read_literal(2, "tx_mode")? {
                0 => TxMode::Only4x4,
                1 => TxMode::Allow8x8,
                2 => TxMode::Allow16x16,
                _ => {
                    if r.bd.read_flag("tx_mode_select")? {
                        TxMode::Select
                    } else {
                        TxMode::Allow32x32
                    }
                }
            }
        };
        if tx_mode == TxMode::Select {
            for i in 0..2 {
                r.diff_update_all(&mut d.tx8[i], "tx_probs_8x8")?;
            }
            for i in 0..2 {
                r.diff_update_all(&mut d.tx16[i], "tx_probs_16x16")?;
            }
            for i in 0..2 {
                r.diff_update_all(&mut d.tx32[i], "tx_probs_32x32")?;
            }
        }

        // read_coef_probs: one flag per transform size up to the largest allowed.
        let max_tx_size = match tx_mode {
            TxMode::Only4x4 => 0,
            TxMode::Allow8x8 => 1,
            TxMode::Allow16x16 => 2,
            TxMode::Allow32x32 | TxMode::Select => 3,
        };
        for tx_size in 0..=max_tx_size {
            if !r.bd.read_flag("update_coef_probs")? {
                continue;
            }
            for plane in &mut d.coef[tx_size] {
                for reference in plane.iter_mut() {
                    for (band, contexts) in reference.iter_mut().enumerate() {
                        let max_ctx = if band == 0 { 3 } else { 6 };
                        for probs in contexts.iter_mut().take(max_ctx) {
                            r.diff_update_all(probs, "coef_probs")?;
                        }
                    }
                }
            }
        }
        r.diff_update_all(&mut d.skip, "skip_prob")?;

        let mut reference_mode = ReferenceMode::Single;
        if !header.frame_is_intra() {
            for probs in &mut d.inter_mode {
                r.diff_update_all(probs, "inter_mode_probs")?;
            }
            if header.interpolation_filter == InterpolationFilter::Switchable {
                for probs in &mut d.interp_filter {
                    r.diff_update_all(probs, "interp_filter_probs")?;
                }
            }
            r.diff_update_all(&mut d.is_inter, "is_inter_prob")?;

            // frame_reference_mode: compound prediction needs references on both
            // temporal sides (differing sign bias).
            let bias = &header.ref_frame_sign_bias;
            let compound_allowed = bias[2] != bias[1] || bias[3] != bias[1];
            if compound_allowed && r.bd.read_flag("non_single_reference")? {
                reference_mode = if r.bd.read_flag("reference_select")? {
                    ReferenceMode::Select
                } else {
                    ReferenceMode::Compound
                };
            }
            if reference_mode == ReferenceMode::Select {
                r.diff_update_all(&mut d.comp_mode, "comp_mode_prob")?;
            }
            if reference_mode != ReferenceMode::Compound {
                for probs in &mut d.single_ref {
                    r.diff_update_all(probs, "single_ref_prob")?;
                }
            }
            if reference_mode != ReferenceMode::Single {
                r.diff_update_all(&mut d.comp_ref, "comp_ref_prob")?;
            }
            for probs in &mut d.y_mode {
                r.diff_update_all(probs, "y_mode_probs")?;
            }
            for probs in &mut d.partition {
                r.diff_update_all(probs, "partition_probs")?;
            }

            let mv = &mut d.mv;
            r.mv_update_all(&mut mv.joint, "mv_joint_probs")?;
            for i in 0..2 {
                r.mv_update_all(&mut mv.sign[i..=i], "mv_sign_prob")?;
                r.mv_update_all(&mut mv.classes[i], "mv_class_probs")?;
                r.mv_update_all(&mut mv.class0_bit[i..=i], "mv_class0_bit_prob")?;
                r.mv_update_all(&mut mv.bits[i], "mv_bits_prob")?;
            }
            for i in 0..2 {
                for j in 0..2 {
                    r.mv_update_all(&mut mv.class0_fr[i][j], "mv_class0_fr_probs")?;
                }
                r.mv_update_all(&mut mv.fr[i], "mv_fr_probs")?;
            }
            if header.allow_high_precision_mv {
                for i in 0..2 {
                    r.mv_update_all(&mut mv.class0_hp[i..=i], "mv_class0_hp_prob")?;
                    r.mv_update_all(&mut mv.hp[i..=i], "mv_hp_prob")?;
                }
            }
        }
        Ok(Self {
            tx_mode,
            reference_mode,
            deltas: d,
            update_count: r.updates,
            padding_ok: r.bd.padding_is_zero(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inv_map_table_is_a_permutation_of_1_to_254_plus_253() {
        assert_eq!(&INV_MAP_TABLE[..4], &[7, 20, 33, 46]);
        assert_eq!(INV_MAP_TABLE[19], 254);
        assert_eq!(&INV_MAP_TABLE[20..27], &[1, 2, 3, 4, 5, 6, 8]);
        assert_eq!(&INV_MAP_TABLE[252..], &[252, 253, 253]);
        let mut sorted = INV_MAP_TABLE[..254].to_vec();
        sorted.sort_unstable();
        assert_eq!(sorted, (1..=254).collect::<Vec<u8>>());
    }
}
