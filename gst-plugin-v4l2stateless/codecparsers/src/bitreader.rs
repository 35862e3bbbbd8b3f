// SPDX-License-Identifier: MPL-2.0
//! MSB-first bit reader shared by the header parsers (MPEG-2, VP9 uncompressed header,
//! H.264 RBSP, FWHT). Reads past the end are errors, never panics.

use thiserror::Error;

/// A read ran past the end of the data while parsing `field`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("truncated data while reading {field} (bit {bit_pos} of {bit_len})")]
pub struct OutOfData {
    pub field: &'static str,
    pub bit_pos: usize,
    pub bit_len: usize,
}

/// Errors of Exp-Golomb reads.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ExpGolombError {
    #[error(transparent)]
    OutOfData(#[from] OutOfData),
    /// More than 31 leading zero bits: the value would not fit 32 bits.
    #[error("exp-golomb code too long in {field}")]
    TooLong { field: &'static str },
}

/// Reads bits MSB-first from a byte slice.
#[derive(Debug, Clone)]
pub struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    /// Position in bits from the start.
    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn bit_len(&self) -> usize {
        self.data.len() * 8
    }

    pub fn bits_left(&self) -> usize {
        self.bit_len() - self.pos
    }

    pub fn is_byte_aligned(&self) -> bool {
        self.pos.is_multiple_of(8)
    }

    /// Byte offset of the next whole byte (rounds a partial byte up).
    pub fn byte_position_aligned_up(&self) -> usize {
        self.pos.div_ceil(8)
    }

    fn out_of_data(&self, field: &'static str) -> OutOfData {
        OutOfData {
            field,
            bit_pos: self.pos,
            bit_len: self.bit_len(),
        }
    }

    /// Reads one bit.
    pub fn bit(&mut self, field: &'static str) -> Result<bool, OutOfData> {
        let byte = *self
            .data
            .get(self.pos / 8)
            .ok_or_else(|| self.out_of_data(field))?;
        let bit = (byte >> (7 - (self.pos % 8))) & 1;
        self.pos += 1;
        Ok(bit == 1)
    }

    /// Reads `n` (0..=32) bits as an unsigned number.
    pub fn bits(&mut self, n: u32, field: &'static str) -> Result<u32, OutOfData> {
        debug_assert!(n <= 32, "at most 32 bits at once");
        let n = n.min(32) as usize;
        if self.bits_left() < n {
            return Err(self.out_of_data(field));
        }
        let mut value: u64 = 0;
        let mut remaining = n;
        while remaining > 0 {
            let byte = self.data[self.pos / 8];
            let offset = self.pos % 8;
            let take = (8 - offset).min(remaining);
            let chunk = (byte >> (8 - offset - take)) & ((1u16 << take) - 1) as u8;
            value = (value << take) | u64::from(chunk);
            self.pos += take;
            remaining -= take;
        }
        Ok(value as u32)
    }

    /// Reads `n` bits as a u8 (n ≤ 8).
    pub fn bits_u8(&mut self, n: u32, field: &'static str) -> Result<u8, OutOfData> {
        debug_assert!(n <= 8);
        Ok(self.bits(n.min(8), field)? as u8)
    }

    /// Reads `n` bits as a u16 (n ≤ 16).
    pub fn bits_u16(&mut self, n: u32, field: &'static str) -> Result<u16, OutOfData> {
        debug_assert!(n <= 16);
        Ok(self.bits(n.min(16), field)? as u16)
    }

    /// Skips `n` bits.
    pub fn skip(&mut self, n: usize, field: &'static str) -> Result<(), OutOfData> {
        if self.bits_left() < n {
            return Err(self.out_of_data(field));
        }
        self.pos += n;
        Ok(())
    }

    /// Skips to the next byte boundary.
    pub fn align(&mut self) {
        self.pos = self.byte_position_aligned_up() * 8;
    }

    /// Peeks `n` bits without consuming them.
    pub fn peek(&self, n: u32, field: &'static str) -> Result<u32, OutOfData> {
        self.clone().bits(n, field)
    }

    /// Unsigned Exp-Golomb code (H.264 `ue(v)`).
    pub fn ue(&mut self, field: &'static str) -> Result<u32, ExpGolombError> {
        let mut leading_zeros = 0u32;
        while !self.bit(field)? {
            leading_zeros += 1;
            if leading_zeros > 31 {
                return Err(ExpGolombError::TooLong { field });
            }
        }
        if leading_zeros == 0 {
            return Ok(0);
        }
        let suffix = u64::from(self.bits(leading_zeros, field)?);
        let value = (1u64 << leading_zeros) - 1 + suffix;
        u32::try_from(value).map_err(|_| ExpGolombError::TooLong { field })
    }

    /// Signed Exp-Golomb code (H.264 `se(v)`).
    pub fn se(&mut self, field: &'static str) -> Result<i32, ExpGolombError> {
        let k = i64::from(self.ue(field)?);
        let value = if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) };
        Ok(value as i32)
    }

    /// A signed value as VP9 codes it: `n` magnitude bits then a sign bit.
    pub fn su(&mut self, n: u32, field: &'static str) -> Result<i32, OutOfData> {
        let magnitude = self.bits(n, field)? as i32;
        Ok(if self.bit(field)? {
            -magnitude
        } else {
            magnitude
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_across_byte_boundaries() {
        let mut r = BitReader::new(&[0b1010_1100, 0b0101_0011]);
        assert!(r.bit("a").unwrap());
        assert_eq!(r.bits(3, "b").unwrap(), 0b010);
        assert_eq!(r.bits(8, "c").unwrap(), 0b1100_0101);
        assert_eq!(r.bits(4, "d").unwrap(), 0b0011);
        let err = r.bit("e").unwrap_err();
        assert_eq!(err.field, "e");
        assert_eq!(err.bit_pos, 16);
    }

    #[test]
    fn exp_golomb_known_codes() {
        // 1 | 010 | 011 | 00100 | 00101 -> ue 0,1,2,3,4
        let mut r = BitReader::new(&[0b1010_0110, 0b0100_0010, 0b1000_0000]);
        for expected in 0..5 {
            assert_eq!(r.ue("x").unwrap(), expected);
        }
        // se: 1 -> 0, 010 -> 1, 011 -> -1
        let mut r = BitReader::new(&[0b1010_0110]);
        assert_eq!(r.se("x").unwrap(), 0);
        assert_eq!(r.se("x").unwrap(), 1);
        assert_eq!(r.se("x").unwrap(), -1);
    }

    #[test]
    fn exp_golomb_rejects_overlong_and_truncated() {
        assert!(matches!(
            BitReader::new(&[0u8; 8]).ue("x"),
            Err(ExpGolombError::TooLong { field: "x" })
        ));
        assert!(matches!(
            BitReader::new(&[0b0000_0001]).ue("x"),
            Err(ExpGolombError::OutOfData(_))
        ));
    }

    fn write_ue(bits: &mut Vec<bool>, v: u32) {
        let v1 = u64::from(v) + 1;
        let len = 64 - v1.leading_zeros();
        bits.extend(std::iter::repeat_n(false, len as usize - 1));
        for i in (0..len).rev() {
            bits.push((v1 >> i) & 1 == 1);
        }
    }

    fn pack(bits: &[bool]) -> Vec<u8> {
        bits.chunks(8)
            .map(|c| {
                c.iter()
                    .enumerate()
                    .fold(0u8, |acc, (i, &b)| acc | (u8::from(b) << (7 - i)))
            })
            .collect()
    }

    proptest! {
        #[test]
        fn bits_round_trip(fields in proptest::collection::vec((1u32..=32, any::<u32>()), 0..40)) {
            let mut bits = Vec::new();
            let fields: Vec<(u32, u32)> = fields
                .into_iter()
                .map(|(n, v)| (n, if n == 32 { v } else { v & ((1 << n) - 1) }))
                .collect();
            for &(n, v) in &fields {
                for i in (0..n).rev() {
                    bits.push((v >> i) & 1 == 1);
                }
            }
            let data = pack(&bits);
            let mut r = BitReader::new(&data);
            for &(n, v) in &fields {
                prop_assert_eq!(r.bits(n, "f").unwrap(), v);
            }
            prop_assert!(r.bits_left() < 8);
        }

        #[test]
        fn ue_round_trip(values in proptest::collection::vec(any::<u32>().prop_map(|v| v >> 1), 0..30)) {
            let mut bits = Vec::new();
            for &v in &values {
                write_ue(&mut bits, v);
            }
            let data = pack(&bits);
            let mut r = BitReader::new(&data);
            for &v in &values {
                prop_assert_eq!(r.ue("f").unwrap(), v);
            }
        }

        #[test]
        fn never_panics_on_any_input(data in proptest::collection::vec(any::<u8>(), 0..16), ops in proptest::collection::vec(0u32..40, 0..64)) {
            let mut r = BitReader::new(&data);
            for op in ops {
                let _ = match op {
                    33 => r.ue("f").map(|_| ()).map_err(|_| ()),
                    34 => r.se("f").map(|_| ()).map_err(|_| ()),
                    35 => { r.align(); Ok(()) }
                    36..=39 => r.skip(op as usize, "f").map_err(|_| ()),
                    n => r.bits(n, "f").map(|_| ()).map_err(|_| ()),
                };
                prop_assert!(r.position() <= r.bit_len());
            }
        }
    }
}
