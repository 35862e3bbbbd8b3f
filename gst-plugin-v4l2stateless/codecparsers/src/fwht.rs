// SPDX-License-Identifier: MPL-2.0
//! The compressed frame header of the kernel's `vicodec` FWHT codec
//! (`struct fwht_cframe_hdr`, drivers/media/test-drivers/vicodec/codec-fwht.h): two
//! magic words then nine big-endian 32-bit fields, followed by `size` bytes of
//! coefficients. It feeds `v4l2_ctrl_fwht_params` field for field.

use thiserror::Error;

pub const FWHT_MAGIC1: u32 = 0x4f4f_4f4f;
pub const FWHT_MAGIC2: u32 = 0xffff_ffff;
/// Size of `struct fwht_cframe_hdr`.
pub const HEADER_SIZE: usize = 44;
/// `V4L2_FWHT_VERSION`: the newest version the kernel accepts.
pub const FWHT_VERSION: u32 = 3;

/// `V4L2_FWHT_FL_*` (include/uapi/linux/v4l2-controls.h).
pub mod flags {
    pub const IS_INTERLACED: u32 = 1 << 0;
    pub const IS_BOTTOM_FIRST: u32 = 1 << 1;
    pub const IS_ALTERNATE: u32 = 1 << 2;
    pub const IS_BOTTOM_FIELD: u32 = 1 << 3;
    pub const LUMA_IS_UNCOMPRESSED: u32 = 1 << 4;
    pub const CB_IS_UNCOMPRESSED: u32 = 1 << 5;
    pub const CR_IS_UNCOMPRESSED: u32 = 1 << 6;
    pub const CHROMA_FULL_HEIGHT: u32 = 1 << 7;
    pub const CHROMA_FULL_WIDTH: u32 = 1 << 8;
    pub const ALPHA_IS_UNCOMPRESSED: u32 = 1 << 9;
    pub const I_FRAME: u32 = 1 << 10;
    pub const COMPONENTS_NUM_MASK: u32 = 0x7 << 16;
    pub const COMPONENTS_NUM_OFFSET: u32 = 16;
    pub const PIXENC_MASK: u32 = 0x3 << 19;
    pub const PIXENC_OFFSET: u32 = 19;
}

/// Why an FWHT frame header was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FwhtError {
    #[error("FWHT frame of {0} bytes is shorter than the {HEADER_SIZE}-byte header")]
    Truncated(usize),
    #[error("bad FWHT magic {0:#010x} {1:#010x}")]
    BadMagic(u32, u32),
    #[error("unsupported FWHT version {0} (1..={FWHT_VERSION})")]
    UnsupportedVersion(u32),
    #[error("invalid FWHT frame size {width}x{height}")]
    BadDimensions { width: u32, height: u32 },
    #[error("invalid FWHT component count {0} (1..=4)")]
    BadComponentCount(u32),
    #[error("FWHT pixel encoding not set in flags {0:#x}")]
    MissingPixelEncoding(u32),
    #[error("FWHT payload claims {claimed} bytes but only {available} follow the header")]
    TruncatedPayload { claimed: u32, available: usize },
}

/// `V4L2_FWHT_FL_PIXENC_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelEncoding {
    Yuv,
    Rgb,
    Hsv,
}

/// A validated `fwht_cframe_hdr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FwhtHeader {
    pub version: u32,
    pub width: u32,
    pub height: u32,
    pub flags: u32,
    pub colorspace: u32,
    pub xfer_func: u32,
    pub ycbcr_enc: u32,
    pub quantization: u32,
    /// Bytes of compressed data after the header.
    pub size: u32,
}

fn be32(data: &[u8], offset: usize) -> u32 {
    u32::from_be_bytes([
        data[offset],
        data[offset + 1],
        data[offset + 2],
        data[offset + 3],
    ])
}

impl FwhtHeader {
    /// Parses and validates the header at the start of `frame`, returning it with the
    /// compressed payload it announces.
    pub fn parse(frame: &[u8]) -> Result<(Self, &[u8]), FwhtError> {
        if frame.len() < HEADER_SIZE {
            return Err(FwhtError::Truncated(frame.len()));
        }
        // The magic words are stored in host order, but both are byte-symmetric.
        let (magic1, magic2) = (be32(frame, 0), be32(frame, 4));
        if magic1 != FWHT_MAGIC1 || magic2 != FWHT_MAGIC2 {
            return Err(FwhtError::BadMagic(magic1, magic2));
        }
        let header = Self {
            version: be32(frame, 8),
            width: be32(frame, 12),
            height: be32(frame, 16),
            flags: be32(frame, 20),
            colorspace: be32(frame, 24),
            xfer_func: be32(frame, 28),
            ycbcr_enc: be32(frame, 32),
            quantization: be32(frame, 36),
            size: be32(frame, 40),
        };
        if header.version == 0 || header.version > FWHT_VERSION {
            return Err(FwhtError::UnsupportedVersion(header.version));
        }
        // vicodec rounds to 8x8 blocks; anything beyond 16k would overflow its sizes.
        const MAX_DIMENSION: u32 = 16384;
        if header.width == 0
            || header.height == 0
            || header.width > MAX_DIMENSION
            || header.height > MAX_DIMENSION
        {
            return Err(FwhtError::BadDimensions {
                width: header.width,
                height: header.height,
            });
        }
        if header.version >= 2 {
            let components = header.components_num();
            if !(1..=4).contains(&components) {
                return Err(FwhtError::BadComponentCount(components));
            }
            if header.pixel_encoding().is_none() {
                return Err(FwhtError::MissingPixelEncoding(header.flags));
            }
        }
        let payload = &frame[HEADER_SIZE..];
        let payload = payload
            .get(..header.size as usize)
            .ok_or(FwhtError::TruncatedPayload {
                claimed: header.size,
                available: payload.len(),
            })?;
        Ok((header, payload))
    }

    /// Number of planes: from the flags since version 2, always 3 before.
    pub fn components_num(&self) -> u32 {
        if self.version >= 2 {
            1 + ((self.flags & flags::COMPONENTS_NUM_MASK) >> flags::COMPONENTS_NUM_OFFSET)
        } else {
            3
        }
    }

    /// Pixel encoding: from the flags since version 2, YUV before.
    pub fn pixel_encoding(&self) -> Option<PixelEncoding> {
        if self.version < 2 {
            return Some(PixelEncoding::Yuv);
        }
        match (self.flags & flags::PIXENC_MASK) >> flags::PIXENC_OFFSET {
            1 => Some(PixelEncoding::Yuv),
            2 => Some(PixelEncoding::Rgb),
            3 => Some(PixelEncoding::Hsv),
            _ => None,
        }
    }

    /// Intra frame (no reference needed).
    pub fn is_i_frame(&self) -> bool {
        self.flags & flags::I_FRAME != 0
    }

    pub fn is_interlaced(&self) -> bool {
        self.flags & flags::IS_INTERLACED != 0
    }

    /// Chroma subsampling divisors `(width_div, height_div)`.
    pub fn chroma_divisors(&self) -> (u32, u32) {
        (
            if self.flags & flags::CHROMA_FULL_WIDTH != 0 {
                1
            } else {
                2
            },
            if self.flags & flags::CHROMA_FULL_HEIGHT != 0 {
                1
            } else {
                2
            },
        )
    }
}

/// Iterates over concatenated FWHT frames (header + payload each), as vicodec's
/// stateful encoder writes them; stops with one error item on a bad frame.
#[derive(Debug, Clone)]
pub struct FwhtFrames<'a> {
    data: &'a [u8],
    failed: bool,
}

impl<'a> FwhtFrames<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self {
            data,
            failed: false,
        }
    }
}

impl<'a> Iterator for FwhtFrames<'a> {
    type Item = Result<(FwhtHeader, &'a [u8]), FwhtError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.data.is_empty() {
            return None;
        }
        match FwhtHeader::parse(self.data) {
            Ok((header, payload)) => {
                self.data = &self.data[HEADER_SIZE + payload.len()..];
                Some(Ok((header, payload)))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Builds a header the way vicodec's `v4l2_fwht_encode` writes it.
    fn frame(version: u32, width: u32, height: u32, flags: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&FWHT_MAGIC1.to_ne_bytes());
        out.extend_from_slice(&FWHT_MAGIC2.to_ne_bytes());
        for v in [
            version,
            width,
            height,
            flags,
            8,
            4,
            1,
            2,
            payload.len() as u32,
        ] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        out.extend_from_slice(payload);
        out
    }

    const YUV420_I_FRAME: u32 =
        flags::I_FRAME | (2 << flags::COMPONENTS_NUM_OFFSET) | (1 << flags::PIXENC_OFFSET);

    #[test]
    fn parses_a_version_3_yuv420_i_frame() {
        let data = frame(3, 1280, 720, YUV420_I_FRAME, &[1, 2, 3]);
        let (h, payload) = FwhtHeader::parse(&data).unwrap();
        assert_eq!((h.width, h.height, h.version), (1280, 720, 3));
        assert_eq!(
            (h.colorspace, h.xfer_func, h.ycbcr_enc, h.quantization),
            (8, 4, 1, 2)
        );
        assert_eq!(payload, &[1, 2, 3]);
        assert_eq!(h.components_num(), 3);
        assert_eq!(h.pixel_encoding(), Some(PixelEncoding::Yuv));
        assert!(h.is_i_frame() && !h.is_interlaced());
        assert_eq!(h.chroma_divisors(), (2, 2));
    }

    #[test]
    fn version_1_implies_three_yuv_planes() {
        let data = frame(1, 640, 480, flags::CHROMA_FULL_WIDTH, &[]);
        let (h, _) = FwhtHeader::parse(&data).unwrap();
        assert_eq!(h.components_num(), 3);
        assert_eq!(h.pixel_encoding(), Some(PixelEncoding::Yuv));
        assert_eq!(h.chroma_divisors(), (1, 2));
    }

    #[test]
    fn rejects_bad_headers_with_the_reason() {
        let good = frame(3, 64, 64, YUV420_I_FRAME, &[9; 4]);
        assert_eq!(
            FwhtHeader::parse(&good[..43]),
            Err(FwhtError::Truncated(43))
        );
        let mut bad_magic = good.clone();
        bad_magic[0] = 0;
        assert!(matches!(
            FwhtHeader::parse(&bad_magic),
            Err(FwhtError::BadMagic(..))
        ));
        assert_eq!(
            FwhtHeader::parse(&frame(4, 64, 64, YUV420_I_FRAME, &[])),
            Err(FwhtError::UnsupportedVersion(4))
        );
        assert_eq!(
            FwhtHeader::parse(&frame(3, 0, 64, YUV420_I_FRAME, &[])),
            Err(FwhtError::BadDimensions {
                width: 0,
                height: 64
            })
        );
        assert_eq!(
            FwhtHeader::parse(&frame(3, 64, 64, (4 << 16) | (1 << 19), &[])),
            Err(FwhtError::BadComponentCount(5))
        );
        assert_eq!(
            FwhtHeader::parse(&frame(2, 64, 64, 2 << 16, &[])),
            Err(FwhtError::MissingPixelEncoding(2 << 16))
        );
        assert_eq!(
            FwhtHeader::parse(&good[..46]),
            Err(FwhtError::TruncatedPayload {
                claimed: 4,
                available: 2
            })
        );
    }

    #[test]
    fn splits_concatenated_frames() {
        let mut data = frame(3, 64, 64, YUV420_I_FRAME, &[1; 10]);
        data.extend(frame(3, 64, 64, YUV420_I_FRAME & !flags::I_FRAME, &[2; 3]));
        data.extend_from_slice(&[0x4f; 5]);
        let frames: Vec<_> = FwhtFrames::new(&data).collect();
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[0].as_ref().unwrap().1, &[1; 10]);
        assert!(!frames[1].as_ref().unwrap().0.is_i_frame());
        assert_eq!(frames[2], Err(FwhtError::Truncated(5)));
    }

    proptest! {
        #[test]
        fn round_trips_valid_headers(
            version in 1u32..=3,
            width in 1u32..=16384,
            height in 1u32..=16384,
            components in 1u32..=4,
            pixenc in 1u32..=3,
            low_flags in 0u32..(1 << 11),
            payload in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let flags = low_flags | ((components - 1) << 16) | (pixenc << 19);
            let data = frame(version, width, height, flags, &payload);
            let (h, p) = FwhtHeader::parse(&data).unwrap();
            prop_assert_eq!((h.version, h.width, h.height, h.flags), (version, width, height, flags));
            prop_assert_eq!(p, &payload[..]);
            if version >= 2 {
                prop_assert_eq!(h.components_num(), components);
            }
        }

        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..128)) {
            for item in FwhtFrames::new(&data) {
                let _ = item;
            }
        }
    }
}
