// SPDX-License-Identifier: MPL-2.0
//! A sequence of VP8 frames (each prefixed by a 16-bit little-endian length) through
//! the stateful frame header parser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mediapass_codecparsers::vp8::Vp8Parser;

fuzz_target!(|data: &[u8]| {
    let mut parser = Vp8Parser::new();
    let mut rest = data;
    while rest.len() >= 2 {
        let len = usize::from(u16::from_le_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        let frame = &rest[2..2 + len];
        rest = &rest[2 + len..];
        if let Ok(h) = parser.parse_frame(frame) {
            assert!(h.first_part_header_bits as usize <= h.first_part_size as usize * 8);
            let total: usize = h.dct_part_sizes.iter().map(|&s| s as usize).sum();
            assert!(h.first_part_offset + h.first_part_size as usize + total <= frame.len());
            assert!(h.entropy.mv_probs.iter().flatten().all(|&p| p > 0));
        }
    }
});
