// SPDX-License-Identifier: MPL-2.0
//! The control-message decoder on arbitrary bytes: it must never panic, and
//! whatever it accepts must re-encode to bytes that decode to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shmzero_core::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = Message::decode(data) {
        let bytes = message
            .encode()
            .expect("a decoded message is always encodable");
        assert!(bytes.len() <= data.len(), "re-encoding grew the message");
        assert_eq!(Message::decode(&bytes).as_ref(), Ok(&message));
    }
});
