// SPDX-License-Identifier: MPL-2.0
//! MSB-first bit writer for building hand-made headers in unit tests.

#[derive(Default)]
pub(crate) struct BitWriter {
    bytes: Vec<u8>,
    bits: usize,
}

impl BitWriter {
    pub(crate) fn put(&mut self, n: u32, value: u64) -> &mut Self {
        for i in (0..n).rev() {
            if self.bits.is_multiple_of(8) {
                self.bytes.push(0);
            }
            if (value >> i) & 1 == 1 {
                let last = self.bytes.len() - 1;
                self.bytes[last] |= 0x80 >> (self.bits % 8);
            }
            self.bits += 1;
        }
        self
    }

    pub(crate) fn flag(&mut self, value: bool) -> &mut Self {
        self.put(1, u64::from(value))
    }

    pub(crate) fn ue(&mut self, value: u32) -> &mut Self {
        let v1 = u64::from(value) + 1;
        let len = 64 - v1.leading_zeros();
        self.put(len - 1, 0).put(len, v1)
    }

    pub(crate) fn se(&mut self, value: i32) -> &mut Self {
        let k = if value > 0 {
            2 * value as u32 - 1
        } else {
            (-2 * i64::from(value)) as u32
        };
        self.ue(k)
    }

    pub(crate) fn bytes(&self) -> Vec<u8> {
        self.bytes.clone()
    }
}
