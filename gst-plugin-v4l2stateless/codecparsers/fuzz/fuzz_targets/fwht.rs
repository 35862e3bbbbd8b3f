// SPDX-License-Identifier: MPL-2.0
//! Concatenated vicodec FWHT frames through the header parser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mediapass_codecparsers::fwht::{FwhtFrames, HEADER_SIZE};

fuzz_target!(|data: &[u8]| {
    let mut consumed = 0;
    for frame in FwhtFrames::new(data) {
        let Ok((header, payload)) = frame else {
            break;
        };
        assert_eq!(payload.len(), header.size as usize);
        let _ = (header.components_num(), header.pixel_encoding());
        consumed += HEADER_SIZE + payload.len();
    }
    assert!(consumed <= data.len());
});
