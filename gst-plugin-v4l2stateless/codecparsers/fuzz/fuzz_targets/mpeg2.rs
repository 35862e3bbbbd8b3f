// SPDX-License-Identifier: MPL-2.0
//! An MPEG-2 elementary stream through start-code splitting and the stateful header
//! parser (sequence state, quantiser matrices, slices).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mediapass_codecparsers::mpeg2::{Mpeg2Parser, Mpeg2Unit, units};

fuzz_target!(|data: &[u8]| {
    let mut parser = Mpeg2Parser::new();
    for (_, unit) in units(data) {
        if let Ok(Mpeg2Unit::Slice(slice)) = parser.parse_unit(unit) {
            assert!(slice.header_bit_size as usize <= unit.len() * 8);
        }
    }
    let _ = parser.quant_matrices();
});
