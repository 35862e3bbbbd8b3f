// SPDX-License-Identifier: MPL-2.0
//! The boolean entropy decoder shared by VP8 (RFC 6386 section 7) and VP9 (bitstream
//! spec section 9.2), plus the matching encoder used by tests and fuzz seeds.
//!
//! The decoder keeps a 16-bit window (`value`): its high byte is compared against the
//! split, its low byte holds look-ahead bits. Past the end of the data it shifts in
//! zeros like libvpx, and every read reports an error once more bits were consumed than
//! the data holds, so a truncated header is a typed error, never a panic.

use thiserror::Error;

/// More bits were consumed than the partition holds.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("bool-coded data exhausted while reading {field} (bit {bit_pos} of {bit_len})")]
pub struct BoolOutOfData {
    pub field: &'static str,
    pub bit_pos: usize,
    pub bit_len: usize,
}

/// Decoder state that V4L2 VP8 hardware needs to resume where the header parse stopped
/// (`struct v4l2_vp8_entropy_coder_state`), in the convention of libvpx and GStreamer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BoolCoderState {
    /// Current range, 128..=255 after normalisation.
    pub range: u8,
    /// The 8-bit comparison window (high byte of the value register).
    pub value: u8,
    /// Number of not yet consumed bits in the byte that holds the window's last bit.
    pub bit_count: u8,
}

#[derive(Debug, Clone)]
pub struct BoolDecoder<'a> {
    data: &'a [u8],
    /// Index of the next byte to load into the window.
    next_byte: usize,
    value: u32,
    range: u32,
    /// Bits of the low (look-ahead) byte already shifted into the high byte.
    bits_shifted: u32,
    /// Total normalisation shifts so far = bits of the stream consumed by the window.
    consumed_bits: usize,
}

impl<'a> BoolDecoder<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        let mut decoder = Self {
            data,
            next_byte: 0,
            value: 0,
            range: 255,
            bits_shifted: 0,
            consumed_bits: 0,
        };
        decoder.value = (u32::from(decoder.load_byte()) << 8) | u32::from(decoder.load_byte());
        decoder
    }

    fn load_byte(&mut self) -> u8 {
        let byte = self.data.get(self.next_byte).copied().unwrap_or(0);
        self.next_byte += 1;
        byte
    }

    /// Bits consumed so far (the VP8 `first_part_header_bits` once the header is read).
    pub fn consumed_bits(&self) -> usize {
        self.consumed_bits
    }

    pub fn bit_len(&self) -> usize {
        self.data.len() * 8
    }

    /// Whether the window has moved past the end of the data (zeros were invented).
    pub fn is_overrun(&self) -> bool {
        self.consumed_bits > self.bit_len()
    }

    /// Whether every bit after the decoding window is zero: VP9's `exit_bool` requires
    /// this padding, so it checks that a header parse read exactly its symbols.
    pub fn padding_is_zero(&self) -> bool {
        let first = self.consumed_bits + 8;
        let (byte, bit) = (first / 8, first % 8);
        match self.data.get(byte) {
            None => true,
            Some(&b) => (b & (0xff >> bit)) == 0 && self.data[byte + 1..].iter().all(|&b| b == 0),
        }
    }

    pub fn state(&self) -> BoolCoderState {
        BoolCoderState {
            range: self.range as u8,
            value: (self.value >> 8) as u8,
            bit_count: ((8 - self.consumed_bits % 8) % 8) as u8,
        }
    }

    fn check(&self, field: &'static str) -> Result<(), BoolOutOfData> {
        if self.is_overrun() {
            return Err(BoolOutOfData {
                field,
                bit_pos: self.consumed_bits,
                bit_len: self.bit_len(),
            });
        }
        Ok(())
    }

    /// Decodes one bool whose probability of being `false` is `prob / 256`.
    pub fn read_bool(&mut self, prob: u8, field: &'static str) -> Result<bool, BoolOutOfData> {
        let split = 1 + (((self.range - 1) * u32::from(prob)) >> 8);
        let big_split = split << 8;
        let bit = if self.value >= big_split {
            self.range -= split;
            self.value -= big_split;
            true
        } else {
            self.range = split;
            false
        };
        // Normalise: at most 7 shifts since range ≥ 1.
        while self.range < 128 {
            self.value <<= 1;
            self.range <<= 1;
            self.consumed_bits += 1;
            self.bits_shifted += 1;
            if self.bits_shifted == 8 {
                self.bits_shifted = 0;
                self.value |= u32::from(self.load_byte());
            }
        }
        self.value &= 0xffff;
        self.check(field)?;
        Ok(bit)
    }

    /// An equiprobable bit (`L(1)` in the specs).
    pub fn read_flag(&mut self, field: &'static str) -> Result<bool, BoolOutOfData> {
        self.read_bool(128, field)
    }

    /// An `n`-bit (≤ 31) unsigned literal, most significant bit first (`L(n)`).
    pub fn read_literal(&mut self, n: u32, field: &'static str) -> Result<u32, BoolOutOfData> {
        debug_assert!(n <= 31);
        let mut value = 0u32;
        for _ in 0..n.min(31) {
            value = (value << 1) | u32::from(self.read_flag(field)?);
        }
        Ok(value)
    }

    /// An `n`-bit magnitude followed by a sign bit (VP8 deltas).
    pub fn read_signed_literal(
        &mut self,
        n: u32,
        field: &'static str,
    ) -> Result<i32, BoolOutOfData> {
        let magnitude = self.read_literal(n, field)? as i32;
        Ok(if self.read_flag(field)? {
            -magnitude
        } else {
            magnitude
        })
    }

    /// A flag followed, if set, by a signed `n`-bit value; 0 when the flag is clear.
    pub fn read_optional_signed(
        &mut self,
        n: u32,
        field: &'static str,
    ) -> Result<i32, BoolOutOfData> {
        if self.read_flag(field)? {
            self.read_signed_literal(n, field)
        } else {
            Ok(0)
        }
    }
}

/// Boolean encoder (RFC 6386 section 7.3), the exact inverse of [`BoolDecoder`]. Used to
/// build bool-coded test data; not needed for decoding.
#[derive(Debug, Clone)]
pub struct BoolEncoder {
    output: Vec<u8>,
    range: u32,
    bottom: u32,
    /// Shifts left before the top byte of `bottom` is complete.
    bit_count: i32,
}

impl Default for BoolEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl BoolEncoder {
    pub fn new() -> Self {
        Self {
            output: Vec::new(),
            range: 255,
            bottom: 0,
            bit_count: 24,
        }
    }

    fn propagate_carry(&mut self) {
        for byte in self.output.iter_mut().rev() {
            if *byte == 0xff {
                *byte = 0;
            } else {
                *byte += 1;
                return;
            }
        }
    }

    pub fn write_bool(&mut self, prob: u8, bit: bool) {
        let split = 1 + (((self.range - 1) * u32::from(prob)) >> 8);
        if bit {
            self.bottom = self.bottom.wrapping_add(split);
            self.range -= split;
        } else {
            self.range = split;
        }
        while self.range < 128 {
            self.range <<= 1;
            if self.bottom & (1 << 31) != 0 {
                self.propagate_carry();
            }
            self.bottom <<= 1;
            self.bit_count -= 1;
            if self.bit_count == 0 {
                self.output.push((self.bottom >> 24) as u8);
                self.bottom &= (1 << 24) - 1;
                self.bit_count = 8;
            }
        }
    }

    pub fn write_flag(&mut self, bit: bool) {
        self.write_bool(128, bit);
    }

    pub fn write_literal(&mut self, n: u32, value: u32) {
        for i in (0..n).rev() {
            self.write_flag((value >> i) & 1 == 1);
        }
    }

    pub fn write_signed_literal(&mut self, n: u32, value: i32) {
        self.write_literal(n, value.unsigned_abs());
        self.write_flag(value < 0);
    }

    /// Flushes the pending bits (padding with zero bits) and returns the bytes.
    pub fn finish(mut self) -> Vec<u8> {
        for _ in 0..32 {
            self.write_flag(false);
        }
        self.output
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn bools_round_trip(symbols in proptest::collection::vec((1u8..=255, any::<bool>()), 0..2000)) {
            let mut encoder = BoolEncoder::new();
            for &(prob, bit) in &symbols {
                encoder.write_bool(prob, bit);
            }
            let data = encoder.finish();
            let mut decoder = BoolDecoder::new(&data);
            for &(prob, bit) in &symbols {
                prop_assert_eq!(decoder.read_bool(prob, "sym").unwrap(), bit);
            }
            prop_assert!(!decoder.is_overrun());
        }

        #[test]
        fn literals_round_trip(values in proptest::collection::vec((1u32..=16, any::<u16>(), any::<bool>()), 0..200)) {
            let mut encoder = BoolEncoder::new();
            for &(n, v, negative) in &values {
                let magnitude = u32::from(v) & ((1 << n) - 1);
                encoder.write_signed_literal(n, if negative { -(magnitude as i32) } else { magnitude as i32 });
            }
            let data = encoder.finish();
            let mut decoder = BoolDecoder::new(&data);
            for &(n, v, negative) in &values {
                let magnitude = (u32::from(v) & ((1 << n) - 1)) as i32;
                let got = decoder.read_signed_literal(n, "lit").unwrap();
                prop_assert_eq!(got.abs(), magnitude);
                if magnitude != 0 {
                    prop_assert_eq!(got < 0, negative);
                }
            }
        }

        #[test]
        fn never_panics_and_reports_exhaustion(data in proptest::collection::vec(any::<u8>(), 0..8), probs in proptest::collection::vec(any::<u8>(), 0..400)) {
            let mut decoder = BoolDecoder::new(&data);
            for prob in probs {
                match decoder.read_bool(prob, "x") {
                    Ok(_) => prop_assert!(decoder.consumed_bits() <= data.len() * 8),
                    Err(e) => { prop_assert_eq!(e.field, "x"); break; }
                }
                let state = decoder.state();
                prop_assert!(state.range >= 128);
                prop_assert!(state.bit_count < 8);
            }
        }
    }

    #[test]
    fn consumed_bits_counts_normalisation_shifts() {
        let mut encoder = BoolEncoder::new();
        encoder.write_literal(8, 0xa5);
        let data = encoder.finish();
        let mut decoder = BoolDecoder::new(&data);
        assert_eq!(decoder.read_literal(8, "x").unwrap(), 0xa5);
        // Equiprobable bools halve the range: about one shift each.
        assert!((7..=8).contains(&decoder.consumed_bits()));
        let state = decoder.state();
        assert_eq!(
            usize::from(state.bit_count),
            (8 - decoder.consumed_bits() % 8) % 8
        );
    }
}
