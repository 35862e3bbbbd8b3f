// SPDX-License-Identifier: MPL-2.0
//! Byte-stream readers for start-code based codecs: H.264 Annex-B NAL splitting,
//! emulation-prevention removal, AVC (`avcC`) length-prefixed input and the
//! `AVCDecoderConfigurationRecord` itself. MPEG-2 start-code units reuse
//! [`find_start_code`].

use thiserror::Error;

/// Offset of the next `00 00 01` start code prefix at or after `from`.
pub fn find_start_code(data: &[u8], from: usize) -> Option<usize> {
    let tail = data.get(from..)?;
    let mut i = 0;
    while i + 3 <= tail.len() {
        // Skip fast over bytes that cannot end a prefix.
        if tail[i + 2] > 1 {
            i += 3;
        } else if tail[i] == 0 && tail[i + 1] == 0 && tail[i + 2] == 1 {
            return Some(from + i);
        } else {
            i += 1;
        }
    }
    None
}

/// One unit of a start-code delimited byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartCodeUnit<'a> {
    /// Offset of the `00 00 01` prefix in the input (a leading `zero_byte` is not counted).
    pub prefix_offset: usize,
    /// Offset of the first byte after the prefix.
    pub offset: usize,
    /// The unit without prefix and without trailing zero bytes.
    pub data: &'a [u8],
}

/// Iterates over the units of an Annex-B (or MPEG-2) byte stream. Bytes before the first
/// start code are ignored.
#[derive(Debug, Clone)]
pub struct StartCodeUnits<'a> {
    data: &'a [u8],
    next_prefix: Option<usize>,
    strip_trailing_zeros: bool,
}

impl<'a> StartCodeUnits<'a> {
    /// H.264 NAL units: trailing zero bytes (`trailing_zero_8bits`, the next unit's
    /// `zero_byte`) are stripped; a NAL unit never ends in `0x00`.
    pub fn new(data: &'a [u8]) -> Self {
        Self {
            data,
            next_prefix: find_start_code(data, 0),
            strip_trailing_zeros: true,
        }
    }

    /// MPEG-2 units: kept whole, since a header may legitimately end in zero bytes
    /// (zero stuffing before the next start code is harmless to the header parsers).
    pub fn keeping_trailing_zeros(data: &'a [u8]) -> Self {
        Self {
            strip_trailing_zeros: false,
            ..Self::new(data)
        }
    }
}

impl<'a> Iterator for StartCodeUnits<'a> {
    type Item = StartCodeUnit<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        let prefix_offset = self.next_prefix?;
        let offset = prefix_offset + 3;
        self.next_prefix = find_start_code(self.data, offset);
        let mut end = self.next_prefix.unwrap_or(self.data.len());
        while self.strip_trailing_zeros && end > offset && self.data[end - 1] == 0 {
            end -= 1;
        }
        Some(StartCodeUnit {
            prefix_offset,
            offset,
            data: &self.data[offset..end],
        })
    }
}

/// An RBSP with the emulation-prevention bytes removed, remembering where they were so
/// bit positions can be mapped back to the escaped NAL (V4L2 wants escaped sizes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rbsp {
    pub data: Vec<u8>,
    /// For each removed `0x03`, the number of RBSP bytes that precede it.
    pub epb_positions: Vec<usize>,
}

impl Rbsp {
    /// Removes `emulation_prevention_three_byte`s (`00 00 03` → `00 00`).
    pub fn unescape(escaped: &[u8]) -> Self {
        let mut data = Vec::with_capacity(escaped.len());
        let mut epb_positions = Vec::new();
        let mut zeros = 0usize;
        for &byte in escaped {
            if zeros >= 2 && byte == 3 {
                epb_positions.push(data.len());
                zeros = 0;
                continue;
            }
            zeros = if byte == 0 { zeros + 1 } else { 0 };
            data.push(byte);
        }
        Self {
            data,
            epb_positions,
        }
    }

    /// Maps a bit position in the RBSP to the same position in the escaped data. A
    /// position right at a removed byte is mapped before it, as a lazy bit reader on
    /// the escaped data would report.
    pub fn escaped_bit_position(&self, rbsp_bit: usize) -> usize {
        let removed = self
            .epb_positions
            .iter()
            .take_while(|&&pos| pos * 8 < rbsp_bit)
            .count();
        rbsp_bit + 8 * removed
    }
}

/// Errors of length-prefixed (AVC) input and of the `avcC` record.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AvcError {
    #[error("NAL length field of {size} bytes is invalid (must be 1, 2 or 4)")]
    BadLengthSize { size: u8 },
    #[error("NAL unit at offset {offset} claims {length} bytes but only {available} remain")]
    TruncatedNal {
        offset: usize,
        length: usize,
        available: usize,
    },
    #[error("truncated avcC record while reading {field}")]
    TruncatedRecord { field: &'static str },
    #[error("avcC configurationVersion is {0}, expected 1")]
    BadVersion(u8),
}

/// Iterates over NAL units of AVC (`avc1`) length-prefixed data. A bad length ends the
/// iteration with one error item.
#[derive(Debug, Clone)]
pub struct LengthPrefixedNals<'a> {
    data: &'a [u8],
    pos: usize,
    length_size: usize,
    failed: bool,
}

impl<'a> LengthPrefixedNals<'a> {
    /// `length_size` is `lengthSizeMinusOne + 1` from the `avcC` record.
    pub fn new(data: &'a [u8], length_size: u8) -> Result<Self, AvcError> {
        if !matches!(length_size, 1 | 2 | 4) {
            return Err(AvcError::BadLengthSize { size: length_size });
        }
        Ok(Self {
            data,
            pos: 0,
            length_size: usize::from(length_size),
            failed: false,
        })
    }
}

impl<'a> Iterator for LengthPrefixedNals<'a> {
    type Item = Result<&'a [u8], AvcError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.data.len() {
            return None;
        }
        let rest = &self.data[self.pos..];
        let offset = self.pos;
        let Some(prefix) = rest.get(..self.length_size) else {
            self.failed = true;
            return Some(Err(AvcError::TruncatedNal {
                offset,
                length: self.length_size,
                available: rest.len(),
            }));
        };
        let length = prefix
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        let body = &rest[self.length_size..];
        if length > body.len() {
            self.failed = true;
            return Some(Err(AvcError::TruncatedNal {
                offset,
                length,
                available: body.len(),
            }));
        }
        self.pos += self.length_size + length;
        Some(Ok(&body[..length]))
    }
}

/// `AVCDecoderConfigurationRecord` (ISO/IEC 14496-15 §5.3.3.1), the `codec_data` of
/// `video/x-h264,stream-format=avc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvcDecoderConfig<'a> {
    pub profile_indication: u8,
    pub profile_compatibility: u8,
    pub level_indication: u8,
    /// `lengthSizeMinusOne + 1`.
    pub nal_length_size: u8,
    /// Escaped SPS NAL units (with NAL header).
    pub sps: Vec<&'a [u8]>,
    /// Escaped PPS NAL units (with NAL header).
    pub pps: Vec<&'a [u8]>,
}

struct ByteCursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> ByteCursor<'a> {
    fn u8(&mut self, field: &'static str) -> Result<u8, AvcError> {
        let byte = *self
            .data
            .get(self.pos)
            .ok_or(AvcError::TruncatedRecord { field })?;
        self.pos += 1;
        Ok(byte)
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, AvcError> {
        Ok(u16::from(self.u8(field)?) << 8 | u16::from(self.u8(field)?))
    }

    fn slice(&mut self, len: usize, field: &'static str) -> Result<&'a [u8], AvcError> {
        let end = self
            .pos
            .checked_add(len)
            .ok_or(AvcError::TruncatedRecord { field })?;
        let s = self
            .data
            .get(self.pos..end)
            .ok_or(AvcError::TruncatedRecord { field })?;
        self.pos = end;
        Ok(s)
    }
}

impl<'a> AvcDecoderConfig<'a> {
    pub fn parse(data: &'a [u8]) -> Result<Self, AvcError> {
        let mut c = ByteCursor { data, pos: 0 };
        let version = c.u8("configurationVersion")?;
        if version != 1 {
            return Err(AvcError::BadVersion(version));
        }
        let profile_indication = c.u8("AVCProfileIndication")?;
        let profile_compatibility = c.u8("profile_compatibility")?;
        let level_indication = c.u8("AVCLevelIndication")?;
        let nal_length_size = (c.u8("lengthSizeMinusOne")? & 0x3) + 1;
        if nal_length_size == 3 {
            return Err(AvcError::BadLengthSize { size: 3 });
        }
        let num_sps = c.u8("numOfSequenceParameterSets")? & 0x1f;
        let mut sps = Vec::with_capacity(usize::from(num_sps));
        for _ in 0..num_sps {
            let len = c.u16("sequenceParameterSetLength")?;
            sps.push(c.slice(usize::from(len), "sequenceParameterSetNALUnit")?);
        }
        let num_pps = c.u8("numOfPictureParameterSets")?;
        let mut pps = Vec::with_capacity(usize::from(num_pps));
        for _ in 0..num_pps {
            let len = c.u16("pictureParameterSetLength")?;
            pps.push(c.slice(usize::from(len), "pictureParameterSetNALUnit")?);
        }
        // High-profile trailers (chroma_format, bit depths, SPS-ext) repeat what the SPS
        // says; the SPS is authoritative, so they are not needed here.
        Ok(Self {
            profile_indication,
            profile_compatibility,
            level_indication,
            nal_length_size,
            sps,
            pps,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn splits_three_and_four_byte_start_codes() {
        let data = [
            0xaa, 0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 0, 1, 0x65, 0, 0,
        ];
        let units: Vec<_> = StartCodeUnits::new(&data).collect();
        assert_eq!(units.len(), 3);
        assert_eq!(units[0].data, &[0x67, 1, 2]);
        assert_eq!(units[0].prefix_offset, 2);
        assert_eq!(units[1].data, &[0x68, 3]);
        assert_eq!(units[2].data, &[0x65]);
        assert_eq!(units[2].offset, 18);
    }

    #[test]
    fn no_start_code_means_no_units() {
        assert_eq!(StartCodeUnits::new(&[1, 2, 3, 0, 0]).count(), 0);
        assert_eq!(StartCodeUnits::new(&[]).count(), 0);
    }

    #[test]
    fn removes_emulation_prevention() {
        let rbsp = Rbsp::unescape(&[0x25, 0, 0, 3, 0, 0, 0, 3, 1, 0, 3]);
        assert_eq!(rbsp.data, vec![0x25, 0, 0, 0, 0, 0, 1, 0, 3]);
        assert_eq!(rbsp.epb_positions, vec![3, 6]);
        assert_eq!(rbsp.escaped_bit_position(24), 24);
        assert_eq!(rbsp.escaped_bit_position(25), 33);
        assert_eq!(rbsp.escaped_bit_position(60), 76);
    }

    #[test]
    fn length_prefixed_reports_truncation_once() {
        let data = [0, 2, 0x67, 1, 0, 5, 0x68];
        let mut it = LengthPrefixedNals::new(&data, 2).unwrap();
        assert_eq!(it.next(), Some(Ok(&[0x67, 1][..])));
        assert!(matches!(
            it.next(),
            Some(Err(AvcError::TruncatedNal { length: 5, .. }))
        ));
        assert_eq!(it.next(), None);
        assert!(LengthPrefixedNals::new(&data, 3).is_err());
    }

    #[test]
    fn parses_avcc() {
        let data = [
            1, 100, 0, 31, 0xff, 0xe1, 0, 3, 0x67, 100, 0, 1, 0, 2, 0x68, 0xee,
        ];
        let cfg = AvcDecoderConfig::parse(&data).unwrap();
        assert_eq!(cfg.nal_length_size, 4);
        assert_eq!(cfg.sps, vec![&[0x67, 100, 0][..]]);
        assert_eq!(cfg.pps, vec![&[0x68, 0xee][..]]);
        assert_eq!(
            AvcDecoderConfig::parse(&data[..10]),
            Err(AvcError::TruncatedRecord {
                field: "sequenceParameterSetNALUnit"
            })
        );
    }

    fn escape(rbsp: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut zeros = 0;
        for &b in rbsp {
            if zeros >= 2 && b <= 3 {
                out.push(3);
                zeros = 0;
            }
            zeros = if b == 0 { zeros + 1 } else { 0 };
            out.push(b);
        }
        out
    }

    proptest! {
        #[test]
        fn escape_unescape_round_trip(rbsp in proptest::collection::vec(prop_oneof![Just(0u8), Just(3u8), any::<u8>()], 0..64)) {
            let escaped = escape(&rbsp);
            let back = Rbsp::unescape(&escaped);
            prop_assert_eq!(&back.data, &rbsp);
            prop_assert_eq!(back.epb_positions.len(), escaped.len() - rbsp.len());
        }

        #[test]
        fn annexb_split_recovers_escaped_nals(nals in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..32), 0..8)) {
            // Escaped NALs never contain a start code and a NAL header byte is never 0.
            let nals: Vec<Vec<u8>> = nals.into_iter().map(|mut n| { n[0] |= 0x01; let mut e = escape(&n); if e.last() == Some(&0) { e.push(3); } e }).collect();
            let mut stream = Vec::new();
            for n in &nals {
                stream.extend_from_slice(&[0, 0, 0, 1]);
                stream.extend_from_slice(n);
            }
            let got: Vec<&[u8]> = StartCodeUnits::new(&stream).map(|u| u.data).collect();
            prop_assert_eq!(got, nals.iter().map(Vec::as_slice).collect::<Vec<_>>());
        }

        #[test]
        fn splitters_never_panic(data in proptest::collection::vec(prop_oneof![Just(0u8), Just(1u8), any::<u8>()], 0..128), size in 0u8..6) {
            for unit in StartCodeUnits::new(&data) {
                prop_assert!(unit.offset + unit.data.len() <= data.len());
            }
            if let Ok(it) = LengthPrefixedNals::new(&data, size) {
                for nal in it.flatten() {
                    prop_assert!(nal.len() <= data.len());
                }
            }
            let _ = AvcDecoderConfig::parse(&data);
        }
    }
}
