// SPDX-License-Identifier: MPL-2.0
//! Anything a SPICE server (or an impostor) can send: a link header + reply, then a
//! mini-header message stream decoded as main- and port-channel messages. Must give
//! values or typed errors, never panic, and never buffer past the message size limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spicepass_spice_port::link;
use spicepass_spice_port::message::{ChannelKind, Framer, MAX_MESSAGE_LEN, decode};

fuzz_target!(|data: &[u8]| {
    if data.len() >= 16 {
        let header: [u8; 16] = data[..16].try_into().unwrap();
        if let Ok(len) = link::reply_body_len(&header) {
            let body = &data[16..data.len().min(16 + len)];
            if let Ok(reply) = link::parse_reply(body) {
                let _ = link::auth_message(&reply, "");
            }
        }
    }
    // The first byte picks how the stream is cut into reads.
    let (cut, stream) = data
        .split_first()
        .map_or((1, &[][..]), |(c, s)| (usize::from(*c) + 1, s));
    let mut framer = Framer::default();
    for piece in stream.chunks(cut) {
        framer.push(piece);
        loop {
            match framer.next_message() {
                Ok(Some(raw)) => {
                    assert!(raw.body.len() <= MAX_MESSAGE_LEN);
                    let _ = decode(ChannelKind::Main, raw.clone());
                    let _ = decode(ChannelKind::Port, raw);
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
});
