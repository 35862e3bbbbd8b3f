// SPDX-License-Identifier: MPL-2.0
//! Quantiser matrices in effect (6.3.11): what `v4l2_ctrl_mpeg2_quantisation` carries.

use super::{QuantMatrixExtension, SequenceHeader};
use crate::zigzag::ZIGZAG_8X8;

/// The default intra matrix of 6.3.11 in natural (raster) order.
pub const DEFAULT_INTRA_MATRIX: [u8; 64] = [
    8, 16, 19, 22, 26, 27, 29, 34, //
    16, 16, 22, 24, 27, 29, 34, 37, //
    19, 22, 26, 27, 29, 34, 34, 38, //
    22, 22, 26, 27, 29, 34, 37, 40, //
    22, 26, 27, 29, 32, 35, 40, 48, //
    26, 27, 29, 32, 35, 40, 48, 58, //
    26, 27, 29, 34, 38, 46, 56, 69, //
    27, 29, 35, 38, 46, 56, 69, 83,
];

fn default_intra_zigzag() -> [u8; 64] {
    std::array::from_fn(|i| DEFAULT_INTRA_MATRIX[ZIGZAG_8X8[i]])
}

/// The four matrices, zig-zag order as transmitted and as V4L2 wants them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuantMatrices {
    pub intra_quantiser_matrix: [u8; 64],
    pub non_intra_quantiser_matrix: [u8; 64],
    pub chroma_intra_quantiser_matrix: [u8; 64],
    pub chroma_non_intra_quantiser_matrix: [u8; 64],
}

impl Default for QuantMatrices {
    fn default() -> Self {
        let intra = default_intra_zigzag();
        Self {
            intra_quantiser_matrix: intra,
            non_intra_quantiser_matrix: [16; 64],
            chroma_intra_quantiser_matrix: intra,
            chroma_non_intra_quantiser_matrix: [16; 64],
        }
    }
}

impl QuantMatrices {
    /// A sequence header resets all four: loaded or default, chroma = luma.
    pub fn apply_sequence_header(&mut self, seq: &SequenceHeader) {
        let intra = seq
            .intra_quantiser_matrix
            .unwrap_or_else(default_intra_zigzag);
        let non_intra = seq.non_intra_quantiser_matrix.unwrap_or([16; 64]);
        *self = Self {
            intra_quantiser_matrix: intra,
            non_intra_quantiser_matrix: non_intra,
            chroma_intra_quantiser_matrix: intra,
            chroma_non_intra_quantiser_matrix: non_intra,
        };
    }

    /// A quant matrix extension replaces only what it loads; a loaded luma matrix also
    /// replaces the chroma one (which a later chroma load may override).
    pub fn apply_extension(&mut self, ext: &QuantMatrixExtension) {
        if let Some(m) = ext.intra_quantiser_matrix {
            self.intra_quantiser_matrix = m;
            self.chroma_intra_quantiser_matrix = m;
        }
        if let Some(m) = ext.non_intra_quantiser_matrix {
            self.non_intra_quantiser_matrix = m;
            self.chroma_non_intra_quantiser_matrix = m;
        }
        if let Some(m) = ext.chroma_intra_quantiser_matrix {
            self.chroma_intra_quantiser_matrix = m;
        }
        if let Some(m) = ext.chroma_non_intra_quantiser_matrix {
            self.chroma_non_intra_quantiser_matrix = m;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_intra_in_zigzag_starts_as_the_spec_lists_it() {
        let zz = default_intra_zigzag();
        assert_eq!(&zz[..6], &[8, 16, 16, 19, 16, 19]);
        assert_eq!(zz[63], 83);
    }

    #[test]
    fn extension_updates_chroma_with_luma() {
        let mut q = QuantMatrices::default();
        q.apply_extension(&QuantMatrixExtension {
            intra_quantiser_matrix: Some([9; 64]),
            non_intra_quantiser_matrix: None,
            chroma_intra_quantiser_matrix: None,
            chroma_non_intra_quantiser_matrix: Some([7; 64]),
        });
        assert_eq!(q.chroma_intra_quantiser_matrix, [9; 64]);
        assert_eq!(q.non_intra_quantiser_matrix, [16; 64]);
        assert_eq!(q.chroma_non_intra_quantiser_matrix, [7; 64]);
    }
}
