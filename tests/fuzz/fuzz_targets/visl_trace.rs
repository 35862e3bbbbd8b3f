// SPDX-License-Identifier: MPL-2.0
//! Arbitrary text into the visl trace parser: an error is fine, a panic or hang is not.
//! A successful parse must also be self-consistent under `compare`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mediapass_tests::visl_trace;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(trace) = visl_trace::parse(text) {
        assert!(visl_trace::compare(&trace, &trace, &[]).is_empty());
        for frame in &trace.frames {
            for control in &frame.controls {
                for (name, _) in &control.fields {
                    let _ = control.number(name);
                    let _ = control.array(name);
                    let _ = control.flags(name);
                }
            }
        }
    }
});
