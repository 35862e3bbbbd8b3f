//! LEB128 unsigned varints and zigzag mapping for signed values.
//!
//! Small numbers dominate the wire (stream ids, deltas, lengths), so every
//! integer field after the handshake is a varint: 7 bits per byte, low group
//! first, high bit set on every byte but the last. A `u64` takes at most
//! [`MAX_VARINT_LEN`] bytes.

/// Longest encoding of a `u64`.
pub const MAX_VARINT_LEN: usize = 10;

/// Outcome of reading a varint from a possibly incomplete byte slice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarintRead {
    /// The value and how many bytes it used.
    Value(u64, usize),
    /// The slice ends inside the varint: more bytes are needed.
    Incomplete,
    /// More than [`MAX_VARINT_LEN`] bytes, or bits beyond 64.
    Overflow,
}

/// Appends `value` to `out`.
pub fn put(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Number of bytes `put` would write for `value`.
pub fn len(value: u64) -> usize {
    let bits = 64 - value.leading_zeros() as usize;
    bits.max(1).div_ceil(7)
}

/// Reads one varint from the start of `bytes`.
pub fn get(bytes: &[u8]) -> VarintRead {
    let mut value: u64 = 0;
    for (index, &byte) in bytes.iter().enumerate() {
        if index == MAX_VARINT_LEN - 1 && byte > 0x01 {
            // The tenth group may only carry bit 63.
            return VarintRead::Overflow;
        }
        value |= u64::from(byte & 0x7f) << (7 * index);
        if byte & 0x80 == 0 {
            return VarintRead::Value(value, index + 1);
        }
    }
    if bytes.len() >= MAX_VARINT_LEN {
        VarintRead::Overflow
    } else {
        VarintRead::Incomplete
    }
}

/// Maps signed to unsigned so that values near zero stay short.
pub fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

/// Inverse of [`zigzag`].
pub fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_encodings() {
        let cases: &[(u64, &[u8])] = &[
            (0, &[0]),
            (1, &[1]),
            (127, &[0x7f]),
            (128, &[0x80, 0x01]),
            (300, &[0xac, 0x02]),
            (
                u64::MAX,
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
            ),
        ];
        for &(value, bytes) in cases {
            let mut out = Vec::new();
            put(&mut out, value);
            assert_eq!(out, bytes, "encoding of {value}");
            assert_eq!(len(value), bytes.len());
            assert_eq!(get(bytes), VarintRead::Value(value, bytes.len()));
        }
    }

    #[test]
    fn incomplete_and_overflow() {
        assert_eq!(get(&[]), VarintRead::Incomplete);
        assert_eq!(get(&[0x80, 0x80]), VarintRead::Incomplete);
        assert_eq!(get(&[0xff; 10]), VarintRead::Overflow);
        assert_eq!(get(&[0xff; 11]), VarintRead::Overflow);
        let mut eleven = vec![0x80; 10];
        eleven.push(0);
        assert_eq!(get(&eleven), VarintRead::Overflow);
    }

    #[test]
    fn zigzag_known() {
        assert_eq!(zigzag(0), 0);
        assert_eq!(zigzag(-1), 1);
        assert_eq!(zigzag(1), 2);
        assert_eq!(zigzag(i64::MIN), u64::MAX);
        assert_eq!(zigzag(i64::MAX), u64::MAX - 1);
    }

    proptest! {
        #[test]
        fn varint_round_trip(value: u64, tail in proptest::collection::vec(any::<u8>(), 0..4)) {
            let mut out = Vec::new();
            put(&mut out, value);
            prop_assert_eq!(out.len(), len(value));
            let used = out.len();
            out.extend_from_slice(&tail);
            prop_assert_eq!(get(&out), VarintRead::Value(value, used));
            for cut in 0..used {
                prop_assert_eq!(get(&out[..cut]), VarintRead::Incomplete);
            }
        }

        #[test]
        fn zigzag_round_trip(value: i64) {
            prop_assert_eq!(unzigzag(zigzag(value)), value);
        }
    }
}
