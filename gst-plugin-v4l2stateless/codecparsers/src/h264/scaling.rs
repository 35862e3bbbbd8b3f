// SPDX-License-Identifier: MPL-2.0
//! Scaling lists (7.3.2.1.1.1) with the fall-back rules of Table 7-2. Lists are kept in
//! the coded (zig-zag) order; V4L2 wants raster order, see [`raster_from_zigzag_4x4`].

use super::H264Error;
use super::error::se_range;
use crate::bitreader::BitReader;
use crate::zigzag::ZIGZAG_8X8;

pub const FLAT_4X4: [u8; 16] = [16; 16];
pub const FLAT_8X8: [u8; 64] = [16; 64];

/// Default_4x4_Intra (Table 7-3), zig-zag order.
pub const DEFAULT_4X4_INTRA: [u8; 16] = [
    6, 13, 13, 20, 20, 20, 28, 28, 28, 28, 32, 32, 32, 37, 37, 42,
];
/// Default_4x4_Inter (Table 7-3), zig-zag order.
pub const DEFAULT_4X4_INTER: [u8; 16] = [
    10, 14, 14, 20, 20, 20, 24, 24, 24, 24, 27, 27, 27, 30, 30, 34,
];
/// Default_8x8_Intra (Table 7-4), zig-zag order.
pub const DEFAULT_8X8_INTRA: [u8; 64] = [
    6, 10, 10, 13, 11, 13, 16, 16, 16, 16, 18, 18, 18, 18, 18, 23, 23, 23, 23, 23, 23, 25, 25, 25,
    25, 25, 25, 25, 27, 27, 27, 27, 27, 27, 27, 27, 29, 29, 29, 29, 29, 29, 29, 31, 31, 31, 31, 31,
    31, 33, 33, 33, 33, 33, 36, 36, 36, 36, 38, 38, 38, 40, 40, 42,
];
/// Default_8x8_Inter (Table 7-4), zig-zag order.
pub const DEFAULT_8X8_INTER: [u8; 64] = [
    9, 13, 13, 15, 13, 15, 17, 17, 17, 17, 19, 19, 19, 19, 19, 21, 21, 21, 21, 21, 21, 22, 22, 22,
    22, 22, 22, 22, 24, 24, 24, 24, 24, 24, 24, 24, 25, 25, 25, 25, 25, 25, 25, 27, 27, 27, 27, 27,
    27, 28, 28, 28, 28, 28, 30, 30, 30, 30, 32, 32, 32, 33, 33, 35,
];

/// Raster index of each zig-zag position, 4x4 (frame scan, Table 8-13).
const ZIGZAG_4X4: [usize; 16] = [0, 1, 4, 8, 5, 2, 3, 6, 9, 12, 13, 10, 7, 11, 14, 15];

/// Converts a coded 4x4 list to raster order (what `v4l2_ctrl_h264_scaling_matrix` wants).
pub fn raster_from_zigzag_4x4(zigzag: &[u8; 16]) -> [u8; 16] {
    let mut raster = [0; 16];
    for (i, &v) in zigzag.iter().enumerate() {
        raster[ZIGZAG_4X4[i]] = v;
    }
    raster
}

/// Converts a coded 8x8 list to raster order.
pub fn raster_from_zigzag_8x8(zigzag: &[u8; 64]) -> [u8; 64] {
    let mut raster = [0; 64];
    for (i, &v) in zigzag.iter().enumerate() {
        raster[ZIGZAG_8X8[i]] = v;
    }
    raster
}

/// The resolved scaling lists of an SPS or PPS, zig-zag order. 4x4: Intra Y, Cb, Cr,
/// Inter Y, Cb, Cr. 8x8: Intra Y, Inter Y, Intra Cb, Inter Cb, Intra Cr, Inter Cr
/// (the order of the syntax and of `v4l2_ctrl_h264_scaling_matrix`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScalingLists {
    pub list_4x4: [[u8; 16]; 6],
    pub list_8x8: [[u8; 64]; 6],
}

impl Default for ScalingLists {
    /// Flat_4x4_16 / Flat_8x8_16: what applies when no matrix is transmitted.
    fn default() -> Self {
        Self {
            list_4x4: [FLAT_4X4; 6],
            list_8x8: [FLAT_8X8; 6],
        }
    }
}

enum Coded {
    NotPresent,
    UseDefault,
    List,
}

fn read_list(r: &mut BitReader, list: &mut [u8]) -> Result<Coded, H264Error> {
    let mut last_scale: i32 = 8;
    let mut next_scale: i32 = 8;
    for (j, slot) in list.iter_mut().enumerate() {
        if next_scale != 0 {
            let delta_scale = se_range(r, "delta_scale", -128, 127)?;
            next_scale = (last_scale + delta_scale + 256) % 256;
            if j == 0 && next_scale == 0 {
                return Ok(Coded::UseDefault);
            }
        }
        let value = if next_scale == 0 {
            last_scale
        } else {
            next_scale
        };
        *slot = value as u8;
        last_scale = value;
    }
    Ok(Coded::List)
}

impl ScalingLists {
    /// Parses `count` (6, 8 or 12) lists after `*_scaling_matrix_present_flag == 1`.
    /// `fallback` is `None` for rule A (SPS, or PPS whose SPS has no matrix) and the
    /// SPS lists for rule B.
    pub(crate) fn parse(
        r: &mut BitReader,
        count: usize,
        fallback: Option<&ScalingLists>,
    ) -> Result<Self, H264Error> {
        let mut out = ScalingLists::default();
        for i in 0..count.min(12) {
            let present = r.bit("scaling_list_present_flag")?;
            if i < 6 {
                let mut list = [0u8; 16];
                let coded = if present {
                    read_list(r, &mut list)?
                } else {
                    Coded::NotPresent
                };
                let default = if i < 3 {
                    DEFAULT_4X4_INTRA
                } else {
                    DEFAULT_4X4_INTER
                };
                out.list_4x4[i] = match coded {
                    Coded::List => list,
                    Coded::UseDefault => default,
                    Coded::NotPresent => match (i, fallback) {
                        (0 | 3, Some(seq)) => seq.list_4x4[i],
                        (0 | 3, None) => default,
                        _ => out.list_4x4[i - 1],
                    },
                };
            } else {
                let j = i - 6;
                let mut list = [0u8; 64];
                let coded = if present {
                    read_list(r, &mut list)?
                } else {
                    Coded::NotPresent
                };
                let default = if j % 2 == 0 {
                    DEFAULT_8X8_INTRA
                } else {
                    DEFAULT_8X8_INTER
                };
                out.list_8x8[j] = match coded {
                    Coded::List => list,
                    Coded::UseDefault => default,
                    Coded::NotPresent => match (j, fallback) {
                        (0 | 1, Some(seq)) => seq.list_8x8[j],
                        (0 | 1, None) => default,
                        _ => out.list_8x8[j - 2],
                    },
                };
            }
        }
        // Lists that are not transmitted at all (8x8 chroma outside 4:4:4, 8x8 without
        // transform_8x8_mode) follow the same fall-back chain.
        for j in count.saturating_sub(6).min(6)..6 {
            out.list_8x8[j] = match (j, fallback) {
                (0 | 1, Some(seq)) => seq.list_8x8[j],
                (0, None) => DEFAULT_8X8_INTRA,
                (1, None) => DEFAULT_8X8_INTER,
                _ => out.list_8x8[j - 2],
            };
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zigzag_tables_are_permutations() {
        let mut seen4 = ZIGZAG_4X4;
        seen4.sort_unstable();
        assert_eq!(seen4, std::array::from_fn(|i| i));
        let mut seen8 = ZIGZAG_8X8;
        seen8.sort_unstable();
        assert_eq!(seen8, std::array::from_fn(|i| i));
    }

    #[test]
    fn default_lists_are_symmetric_in_raster_order() {
        // The defaults are symmetric matrices: a wrong scan table would break that.
        for list in [DEFAULT_4X4_INTRA, DEFAULT_4X4_INTER] {
            let m = raster_from_zigzag_4x4(&list);
            for y in 0..4 {
                for x in 0..4 {
                    assert_eq!(m[y * 4 + x], m[x * 4 + y]);
                }
            }
        }
        for list in [DEFAULT_8X8_INTRA, DEFAULT_8X8_INTER] {
            let m = raster_from_zigzag_8x8(&list);
            for y in 0..8 {
                for x in 0..8 {
                    assert_eq!(m[y * 8 + x], m[x * 8 + y]);
                }
            }
        }
    }

    #[test]
    fn fallback_rule_a_and_use_default() {
        // 8 lists: list 0 "use default" (delta -8 → nextScale 0), the rest absent.
        // bits: 1 (present) + se(-8) = 0000 1000 1 → "1 000010001", then 7 zeros.
        let data = [0b1000_0100, 0b0100_0000, 0];
        let mut r = BitReader::new(&data);
        let lists = ScalingLists::parse(&mut r, 8, None).unwrap();
        assert_eq!(lists.list_4x4[0], DEFAULT_4X4_INTRA);
        assert_eq!(lists.list_4x4[2], DEFAULT_4X4_INTRA);
        assert_eq!(lists.list_4x4[3], DEFAULT_4X4_INTER);
        assert_eq!(lists.list_8x8[0], DEFAULT_8X8_INTRA);
        assert_eq!(lists.list_8x8[5], DEFAULT_8X8_INTER);
        assert_eq!(r.position(), 17);
    }

    #[test]
    fn fallback_rule_b_uses_sequence_lists() {
        let mut seq = ScalingLists::default();
        seq.list_4x4[3] = [7; 16];
        seq.list_8x8[1] = [9; 64];
        let data = [0u8; 2];
        let lists = ScalingLists::parse(&mut BitReader::new(&data), 6, Some(&seq)).unwrap();
        assert_eq!(lists.list_4x4[0], FLAT_4X4);
        assert_eq!(lists.list_4x4[5], [7; 16]);
        assert_eq!(lists.list_8x8[3], [9; 64]);
    }
}
