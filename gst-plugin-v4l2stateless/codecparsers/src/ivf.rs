// SPDX-License-Identifier: MPL-2.0
//! IVF container reader (the simple VP8/VP9/AV1 test container of libvpx): a 32-byte
//! file header, then frames, each a 12-byte header (little-endian size and timestamp)
//! followed by the frame data.

use thiserror::Error;

pub const FILE_HEADER_LEN: usize = 32;
pub const FRAME_HEADER_LEN: usize = 12;
const SIGNATURE: &[u8; 4] = b"DKIF";

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IvfError {
    #[error("IVF file header truncated: {0} of 32 bytes")]
    TruncatedFileHeader(usize),
    #[error("not an IVF file: signature {0:02x?} is not \"DKIF\"")]
    BadSignature([u8; 4]),
    #[error("IVF header length {0} is shorter than 32 bytes")]
    BadHeaderLength(u16),
    #[error("IVF frame header at offset {offset} truncated")]
    TruncatedFrameHeader { offset: usize },
    #[error("IVF frame at offset {offset} claims {size} bytes but only {available} remain")]
    TruncatedFrame {
        offset: usize,
        size: u32,
        available: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IvfFileHeader {
    pub version: u16,
    /// Header length in bytes; frames start here (≥ 32).
    pub header_len: u16,
    /// Codec FourCC, e.g. `VP80`, `VP90`.
    pub fourcc: [u8; 4],
    pub width: u16,
    pub height: u16,
    /// Time base: timestamps are in units of `timebase_num / timebase_den` seconds.
    pub timebase_den: u32,
    pub timebase_num: u32,
    /// Frame count as written by the muxer (often wrong or 0; informational).
    pub frame_count: u32,
}

fn u16_le(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_le(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl IvfFileHeader {
    pub fn parse(data: &[u8]) -> Result<Self, IvfError> {
        if data.len() < FILE_HEADER_LEN {
            return Err(IvfError::TruncatedFileHeader(data.len()));
        }
        let signature = [data[0], data[1], data[2], data[3]];
        if &signature != SIGNATURE {
            return Err(IvfError::BadSignature(signature));
        }
        let header_len = u16_le(data, 6);
        if usize::from(header_len) < FILE_HEADER_LEN {
            return Err(IvfError::BadHeaderLength(header_len));
        }
        Ok(Self {
            version: u16_le(data, 4),
            header_len,
            fourcc: [data[8], data[9], data[10], data[11]],
            width: u16_le(data, 12),
            height: u16_le(data, 14),
            timebase_den: u32_le(data, 16),
            timebase_num: u32_le(data, 20),
            frame_count: u32_le(data, 24),
        })
    }
}

/// Header of one frame: the size of the data that follows and its timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IvfFrameHeader {
    pub size: u32,
    pub timestamp: u64,
}

impl IvfFrameHeader {
    pub fn parse(bytes: &[u8; FRAME_HEADER_LEN]) -> Self {
        Self {
            size: u32_le(bytes, 0),
            timestamp: u64::from_le_bytes(bytes[4..12].try_into().expect("8 bytes")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IvfFrame<'a> {
    pub timestamp: u64,
    /// Offset of the frame data in the file.
    pub offset: usize,
    pub data: &'a [u8],
}

/// Iterates over the frames of an IVF file held in memory. After the first error it
/// yields nothing more.
#[derive(Debug, Clone)]
pub struct IvfReader<'a> {
    header: IvfFileHeader,
    data: &'a [u8],
    pos: usize,
    failed: bool,
}

impl<'a> IvfReader<'a> {
    pub fn new(data: &'a [u8]) -> Result<Self, IvfError> {
        let header = IvfFileHeader::parse(data)?;
        Ok(Self {
            header,
            data,
            pos: usize::from(header.header_len),
            failed: false,
        })
    }

    pub fn header(&self) -> &IvfFileHeader {
        &self.header
    }
}

impl<'a> Iterator for IvfReader<'a> {
    type Item = Result<IvfFrame<'a>, IvfError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.data.len() {
            return None;
        }
        let offset = self.pos;
        let Some(header_bytes) = self
            .data
            .get(offset..offset + FRAME_HEADER_LEN)
            .and_then(|b| <&[u8; FRAME_HEADER_LEN]>::try_from(b).ok())
        else {
            self.failed = true;
            return Some(Err(IvfError::TruncatedFrameHeader { offset }));
        };
        let header = IvfFrameHeader::parse(header_bytes);
        let start = offset + FRAME_HEADER_LEN;
        let available = self.data.len() - start;
        let size = header.size as usize;
        if size > available {
            self.failed = true;
            return Some(Err(IvfError::TruncatedFrame {
                offset,
                size: header.size,
                available,
            }));
        }
        self.pos = start + size;
        Some(Ok(IvfFrame {
            timestamp: header.timestamp,
            offset: start,
            data: &self.data[start..start + size],
        }))
    }
}

/// Writes an IVF file (used by tests and to build fuzz seeds).
pub fn write_ivf(fourcc: [u8; 4], width: u16, height: u16, frames: &[(u64, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(SIGNATURE);
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&(FILE_HEADER_LEN as u16).to_le_bytes());
    out.extend_from_slice(&fourcc);
    out.extend_from_slice(&width.to_le_bytes());
    out.extend_from_slice(&height.to_le_bytes());
    out.extend_from_slice(&30u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&(frames.len() as u32).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    for (timestamp, data) in frames {
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(&timestamp.to_le_bytes());
        out.extend_from_slice(data);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_header_and_frames() {
        let file = write_ivf(*b"VP90", 352, 288, &[(0, b"abc"), (7, b""), (9, b"xy")]);
        let reader = IvfReader::new(&file).unwrap();
        assert_eq!(reader.header().fourcc, *b"VP90");
        assert_eq!((reader.header().width, reader.header().height), (352, 288));
        let frames: Vec<_> = reader.map(Result::unwrap).collect();
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[0].data, b"abc");
        assert_eq!(frames[1].timestamp, 7);
        assert_eq!(frames[2].data, b"xy");
        assert_eq!(frames[2].offset, 32 + 12 + 3 + 12 + 12);
    }

    #[test]
    fn rejects_bad_files() {
        assert_eq!(
            IvfFileHeader::parse(b"DKIF"),
            Err(IvfError::TruncatedFileHeader(4))
        );
        let mut file = write_ivf(*b"VP80", 1, 1, &[(0, b"abcd")]);
        file[0] = b'X';
        assert!(matches!(
            IvfReader::new(&file),
            Err(IvfError::BadSignature(_))
        ));
        let file = write_ivf(*b"VP80", 1, 1, &[(0, b"abcd")]);
        let cut = &file[..file.len() - 1];
        let results: Vec<_> = IvfReader::new(cut).unwrap().collect();
        assert!(matches!(
            results.as_slice(),
            [Err(IvfError::TruncatedFrame {
                size: 4,
                available: 3,
                ..
            })]
        ));
        let cut = &file[..FILE_HEADER_LEN + 5];
        let results: Vec<_> = IvfReader::new(cut).unwrap().collect();
        assert!(matches!(
            results.as_slice(),
            [Err(IvfError::TruncatedFrameHeader { offset: 32 })]
        ));
    }

    proptest! {
        #[test]
        fn round_trips_and_never_panics(frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..50), 0..10), cut in any::<prop::sample::Index>()) {
            let refs: Vec<(u64, &[u8])> = frames.iter().enumerate().map(|(i, f)| (i as u64, f.as_slice())).collect();
            let file = write_ivf(*b"VP80", 64, 48, &refs);
            let parsed: Vec<_> = IvfReader::new(&file).unwrap().map(|f| f.unwrap().data.to_vec()).collect();
            prop_assert_eq!(&parsed, &frames);
            let cut = &file[..cut.index(file.len() + 1)];
            if let Ok(reader) = IvfReader::new(cut) {
                for frame in reader.flatten() {
                    prop_assert!(frame.offset + frame.data.len() <= cut.len());
                }
            }
        }
    }
}
