// SPDX-License-Identifier: MPL-2.0
//! IVF reader on arbitrary bytes: never panics, frames stay inside the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mediapass_codecparsers::ivf::IvfReader;

fuzz_target!(|data: &[u8]| {
    if let Ok(reader) = IvfReader::new(data) {
        for frame in reader.flatten() {
            assert!(frame.offset + frame.data.len() <= data.len());
        }
    }
});
