//! Decoder fuzz target: arbitrary bytes, fed in arbitrary pieces, with buffer
//! payloads taken partly from the decoder and partly "read from the
//! transport" (`consume_payload`), must give exactly what feeding the whole
//! input at once gives, and must never panic.
//!
//! Every successful decode must also survive a round trip: the decoded hello and frames,
//! encoded again by the reference encoder, decode to the same items (any mode or varint
//! choice of the peer decodes to the same values as the encoder's own).
//!
//! Input layout: byte 0 = options (bit 0: prepend a valid hello so the
//! fuzzer reaches the frame parser; bit 1: decode as the sink, i.e. the
//! stream of a src), byte 1 = seed of the split pattern, rest = bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use spicepass_protocol::{
    BufferingDecoder, Decoded, Decoder, Encoder, Frame, Hello, Item, Limits, Message,
    ProtocolError, Role, VERSION,
};

const LIMITS: Limits = Limits {
    max_body: 4096,
    max_payload: 1 << 20,
};

/// Items and the final error, with the one position-dependent error field
/// (how much of a bad magic had arrived) erased.
type Outcome = (Vec<Item>, Option<ProtocolError>);

fn normalize(error: ProtocolError) -> ProtocolError {
    match error {
        ProtocolError::BadMagic { expected, .. } => ProtocolError::BadMagic {
            expected,
            got: Vec::new(),
        },
        other => other,
    }
}

fn whole(role: Role, wire: &[u8]) -> Outcome {
    let mut decoder = BufferingDecoder::new(role, LIMITS);
    decoder.push(wire);
    let mut items = Vec::new();
    loop {
        match decoder.poll() {
            Ok(Some(item)) => items.push(item),
            Ok(None) => return (items, None),
            Err(error) => return (items, Some(normalize(error))),
        }
    }
}

fn pieces(role: Role, wire: &[u8], seed: u8) -> Outcome {
    let mut decoder = Decoder::new(role, LIMITS);
    let mut items = Vec::new();
    let mut position = 0;
    let mut state = u32::from(seed) | 1;
    let mut next_piece = || {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        1 + (state >> 16) as usize % 97
    };
    let mut pending: Option<(Frame, Vec<u8>, usize)> = None;
    loop {
        if let Some((frame, mut payload, mut filled)) = pending.take() {
            filled += decoder.take_payload(&mut payload[filled..]);
            if filled < payload.len() && position < wire.len() {
                // Read the rest "straight from the transport".
                let count = next_piece()
                    .min(payload.len() - filled)
                    .min(wire.len() - position);
                payload[filled..filled + count].copy_from_slice(&wire[position..position + count]);
                position += count;
                filled += count;
                decoder
                    .consume_payload(count as u64)
                    .expect("consume_payload after take_payload");
            }
            if filled == payload.len() {
                items.push(Item::Frame(frame, payload));
            } else if position == wire.len() {
                return (items, None);
            } else {
                pending = Some((frame, payload, filled));
            }
            continue;
        }
        match decoder.poll() {
            Ok(Some(Decoded::Hello(hello))) => items.push(Item::Hello(hello)),
            Ok(Some(Decoded::Frame(frame))) => {
                let payload_len = match &frame.message {
                    Message::Buffer(header) => header.payload_len,
                    _ => 0,
                };
                assert!(payload_len <= LIMITS.max_payload, "limit not enforced");
                pending = Some((frame, vec![0; payload_len as usize], 0));
            }
            Ok(None) => {
                if position == wire.len() {
                    return (items, None);
                }
                let end = (position + next_piece()).min(wire.len());
                decoder.push(&wire[position..end]);
                position = end;
            }
            Err(error) => return (items, Some(normalize(error))),
        }
    }
}

/// Encodes decoded items again; they must decode to themselves.
fn round_trip(role: Role, items: &[Item]) {
    let [Item::Hello(hello), frames @ ..] = items else {
        return;
    };
    if hello.version.minor > VERSION.minor {
        // Frames of unknown kinds from a newer peer were skipped (sequence gaps) and
        // their trailing fields dropped: nothing to compare against.
        return;
    }
    let mut wire = Vec::new();
    hello.encode(&mut wire).expect("a decoded hello encodes");
    let mut encoder = Encoder::new(role.peer(), LIMITS);
    for item in frames {
        let Item::Frame(frame, payload) = item else {
            panic!("a second hello was decoded");
        };
        let seq = encoder
            .encode(frame.stream_id, &frame.message, &mut wire)
            .expect("a decoded frame encodes within the same limits");
        assert_eq!(seq, frame.seq, "sequence numbers restart from 0");
        wire.extend_from_slice(payload);
    }
    let (again, error) = whole(role, &wire);
    assert_eq!(error, None, "re-encoded frames do not decode");
    assert_eq!(again, items, "re-encoded frames decode differently");
}

fuzz_target!(|data: &[u8]| {
    let [options, seed, bytes @ ..] = data else {
        return;
    };
    let role = if options & 2 == 0 {
        Role::Src
    } else {
        Role::Sink
    };
    let mut wire = Vec::new();
    if options & 1 == 1 {
        Hello::new(role.peer(), 1)
            .encode(&mut wire)
            .expect("hello without token encodes");
    }
    wire.extend_from_slice(bytes);
    let expected = whole(role, &wire);
    let got = pieces(role, &wire, *seed);
    assert_eq!(got, expected, "splitting the input changed the outcome");
    round_trip(role, &expected.0);
});
