// SPDX-License-Identifier: MPL-2.0
//! AVC input: the first byte gives the size of an `avcC` record that follows, the rest
//! is length-prefixed sample data; both go through the H.264 parsers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mediapass_codecparsers::annexb::{AvcDecoderConfig, LengthPrefixedNals};
use mediapass_codecparsers::h264::ParameterSets;

fuzz_target!(|data: &[u8]| {
    let Some((&record_len, rest)) = data.split_first() else {
        return;
    };
    let (record, samples) = rest.split_at(usize::from(record_len).min(rest.len()));
    let mut sets = ParameterSets::default();
    let length_size = match AvcDecoderConfig::parse(record) {
        Ok(config) => {
            for nal in config.sps.iter().chain(&config.pps) {
                let _ = sets.parse_nal(nal);
            }
            config.nal_length_size
        }
        Err(_) => 4,
    };
    let Ok(nals) = LengthPrefixedNals::new(samples, length_size) else {
        return;
    };
    for nal in nals.flatten() {
        let _ = sets.parse_nal(nal);
    }
});
