// SPDX-License-Identifier: MPL-2.0
//! A sequence of VP9 chunks (each prefixed by a 16-bit little-endian length) through
//! superframe splitting, the stateful header parser and the frame-context bookkeeping.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mediapass_codecparsers::vp9::{FrameContexts, Vp9Parser, split_superframe};

fuzz_target!(|data: &[u8]| {
    let mut parser = Vp9Parser::new();
    let mut contexts = FrameContexts::default();
    let mut rest = data;
    while rest.len() >= 2 {
        let len = usize::from(u16::from_le_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        let chunk = &rest[2..2 + len];
        rest = &rest[2 + len..];
        let Ok(frames) = split_superframe(chunk) else {
            continue;
        };
        for frame in frames {
            let Ok(parsed) = parser.parse_frame(frame) else {
                continue;
            };
            let h = &parsed.header;
            assert!(h.uncompressed_header_size <= frame.len());
            if let Some(compressed) = &parsed.compressed {
                let mut probs = contexts.load_for(h);
                probs.apply_deltas(&compressed.deltas);
                contexts.save_for(h, &probs);
            }
        }
    }
});
