// SPDX-License-Identifier: MPL-2.0
//! Superframe index splitting on arbitrary chunks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mediapass_codecparsers::vp9::split_superframe;

fuzz_target!(|data: &[u8]| {
    if let Ok(frames) = split_superframe(data) {
        let total: usize = frames.iter().map(|f| f.len()).sum();
        assert!(total <= data.len());
    }
});
