// SPDX-License-Identifier: MPL-2.0
//! An Annex-B byte stream through NAL splitting, emulation-prevention removal, the
//! H.264 parameter-set/slice/SEI parsers and the POC calculator.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mediapass_codecparsers::annexb::StartCodeUnits;
use mediapass_codecparsers::h264::{ParameterSets, ParsedNal, PocCalculator, PocInput};

fuzz_target!(|data: &[u8]| {
    let mut sets = ParameterSets::default();
    let mut poc = PocCalculator::new();
    for unit in StartCodeUnits::new(data) {
        let Ok(parsed) = sets.parse_nal(unit.data) else {
            continue;
        };
        if let ParsedNal::Slice(slice) = parsed {
            assert!(slice.header_bit_size as usize <= unit.data.len() * 8);
            assert!(slice.slice_header_bits_escaped >= slice.slice_header_bits);
            if let Some(sps) = sets.sps(u32::from(slice.seq_parameter_set_id)) {
                let input = PocInput::from(slice.as_ref());
                let _ = poc.compute(sps, &input).pic_order_cnt(&input);
            }
        }
    }
});
