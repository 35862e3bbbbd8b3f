// SPDX-License-Identifier: MPL-2.0
//! VP9 superframe index (VP9 bitstream spec, Annex B): several frames (typically a
//! hidden alt-ref frame and a shown frame) packed into one chunk, with a size index at
//! the end that starts and ends with the same marker byte `0b110_ss_nnn`.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SuperframeError {
    #[error("superframe frame {index} has size 0")]
    EmptyFrame { index: usize },
    #[error(
        "superframe frame sizes add up to {total} bytes but only {available} precede the index"
    )]
    SizesExceedData { total: usize, available: usize },
}

/// Splits a chunk into its frames. A chunk without a (valid) superframe index is one
/// frame. Bytes between the last indexed frame and the index are ignored, like libvpx.
pub fn split_superframe(chunk: &[u8]) -> Result<Vec<&[u8]>, SuperframeError> {
    let Some(index) = superframe_index(chunk) else {
        return Ok(vec![chunk]);
    };
    let available = chunk.len() - index.len;
    let mut frames = Vec::with_capacity(index.sizes.len());
    let mut offset = 0usize;
    for (i, &size) in index.sizes.iter().enumerate() {
        if size == 0 {
            return Err(SuperframeError::EmptyFrame { index: i });
        }
        let end = offset + size;
        if end > available {
            return Err(SuperframeError::SizesExceedData {
                total: index.sizes.iter().sum(),
                available,
            });
        }
        frames.push(&chunk[offset..end]);
        offset = end;
    }
    Ok(frames)
}

/// A parsed superframe index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuperframeIndex {
    /// Size in bytes of each frame, in order.
    pub sizes: Vec<usize>,
    /// Length of the index itself (at the end of the chunk).
    pub len: usize,
}

/// Finds the superframe index at the end of `chunk`, if there is a well-formed one.
pub fn superframe_index(chunk: &[u8]) -> Option<SuperframeIndex> {
    let &marker = chunk.last()?;
    if marker & 0xe0 != 0xc0 {
        return None;
    }
    let frames = usize::from(marker & 0x7) + 1;
    let bytes_per_size = usize::from((marker >> 3) & 0x3) + 1;
    let len = 2 + bytes_per_size * frames;
    if chunk.len() < len || chunk[chunk.len() - len] != marker {
        return None;
    }
    let sizes = chunk[chunk.len() - len + 1..chunk.len() - 1]
        .chunks_exact(bytes_per_size)
        .map(|b| {
            b.iter()
                .rev()
                .fold(0usize, |acc, &byte| (acc << 8) | usize::from(byte))
        })
        .collect();
    Some(SuperframeIndex { sizes, len })
}

/// Builds a superframe (test helper, also used for fuzz seeds).
pub fn build_superframe(frames: &[&[u8]]) -> Vec<u8> {
    assert!((1..=8).contains(&frames.len()));
    let max = frames.iter().map(|f| f.len()).max().unwrap_or(0);
    let bytes_per_size = match max {
        0..=0xff => 1,
        0x100..=0xffff => 2,
        0x1_0000..=0xff_ffff => 3,
        _ => 4,
    };
    let marker = 0xc0 | ((bytes_per_size as u8 - 1) << 3) | (frames.len() as u8 - 1);
    let mut out: Vec<u8> = frames.concat();
    out.push(marker);
    for frame in frames {
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes()[..bytes_per_size]);
    }
    out.push(marker);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn plain_frame_is_one_frame() {
        let data = [0x82, 0x49, 0x83, 0x42, 0x00];
        assert_eq!(split_superframe(&data).unwrap(), vec![&data[..]]);
    }

    #[test]
    fn splits_two_frames() {
        let sf = build_superframe(&[&[1, 2, 3], &[4, 5]]);
        assert_eq!(sf, vec![1, 2, 3, 4, 5, 0xc1, 3, 2, 0xc1]);
        assert_eq!(
            split_superframe(&sf).unwrap(),
            vec![&[1, 2, 3][..], &[4, 5][..]]
        );
    }

    #[test]
    fn rejects_inconsistent_sizes() {
        let data = [1, 2, 0xc1, 3, 2, 0xc1];
        assert_eq!(
            split_superframe(&data),
            Err(SuperframeError::SizesExceedData {
                total: 5,
                available: 2
            })
        );
        let data = [1, 2, 0xc1, 0, 2, 0xc1];
        assert_eq!(
            split_superframe(&data),
            Err(SuperframeError::EmptyFrame { index: 0 })
        );
    }

    proptest! {
        #[test]
        fn round_trips(frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..300), 1..=8)) {
            let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
            let sf = build_superframe(&refs);
            let split = split_superframe(&sf).unwrap();
            prop_assert_eq!(split, refs);
        }

        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(frames) = split_superframe(&data) {
                let total: usize = frames.iter().map(|f| f.len()).sum();
                prop_assert!(total <= data.len());
            }
        }
    }
}
