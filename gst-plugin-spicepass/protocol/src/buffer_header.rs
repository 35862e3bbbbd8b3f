//! The buffer header: small (typically 12–20 bytes with the frame header),
//! and separate from the payload so the sender can `writev(header, payload)`
//! and the receiver can read the payload straight into buffer memory.
//!
//! Timestamps and offsets are coded against the previous buffer of the same
//! stream: each field has a 2-bit mode (absent, predicted, delta, absolute),
//! so the steady state of a typical stream costs almost nothing while any
//! value, including jumps after a seek, stays exactly representable.

use crate::body::{BodyReader, BodyWriter};
use crate::error::ProtocolError;
use crate::varint;

/// A buffer's metadata. `None` is GStreamer's `NONE` (`u64::MAX` in C).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct BufferHeader {
    /// Presentation timestamp, ns.
    pub pts: Option<u64>,
    /// Decoding timestamp, ns.
    pub dts: Option<u64>,
    /// Duration, ns.
    pub duration: Option<u64>,
    /// Media-specific offset (frame or sample number, byte offset).
    pub offset: Option<u64>,
    /// Media-specific end offset.
    pub offset_end: Option<u64>,
    /// `GstBufferFlags` bits, carried as is.
    pub flags: u32,
    /// Bytes of payload following the frame.
    pub payload_len: u64,
}

/// Values of the previous buffer on a stream: the reference for predictions.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct BufferPredictor {
    prev: BufferHeader,
}

const MODE_ABSENT: u16 = 0;
const MODE_PREDICTED: u16 = 1;
const MODE_DELTA: u16 = 2;
const MODE_ABSOLUTE: u16 = 3;

/// Field order in the `modes` word and on the wire: a field may only refer
/// to fields before it (pts refers to dts, offset_end to offset).
const DTS: u32 = 0;
const PTS: u32 = 1;
const DURATION: u32 = 2;
const OFFSET: u32 = 3;
const OFFSET_END: u32 = 4;
const FIELD_NAMES: [&str; 5] = [
    "buffer.dts",
    "buffer.pts",
    "buffer.duration",
    "buffer.offset",
    "buffer.offset_end",
];
const MODES_USED_BITS: u16 = (1 << 10) - 1;

/// How to code one field: prediction and delta reference, both optional.
#[derive(Clone, Copy)]
struct Refs {
    predicted: Option<u64>,
    reference: Option<u64>,
}

fn add(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    Some(a?.wrapping_add(b?))
}

fn span(start: Option<u64>, end: Option<u64>) -> Option<u64> {
    Some(end?.wrapping_sub(start?))
}

impl BufferPredictor {
    fn refs(&self, field: u32, current: &BufferHeader) -> Refs {
        let prev = &self.prev;
        match field {
            DTS => Refs {
                predicted: add(prev.dts, prev.duration),
                reference: prev.dts,
            },
            // With B-frames PTS is a few frames from DTS; without DTS, near the previous PTS.
            PTS => Refs {
                predicted: add(prev.pts, prev.duration),
                reference: current.dts.or(prev.pts),
            },
            DURATION => Refs {
                predicted: prev.duration,
                reference: prev.duration,
            },
            OFFSET => Refs {
                predicted: prev.offset_end,
                reference: prev.offset,
            },
            _ => Refs {
                predicted: add(current.offset, span(prev.offset, prev.offset_end)),
                reference: current.offset,
            },
        }
    }

    /// Appends the buffer body (without stream id and seq) and remembers `header`.
    pub(crate) fn encode(&mut self, header: &BufferHeader, out: &mut Vec<u8>) {
        let values = [
            header.dts,
            header.pts,
            header.duration,
            header.offset,
            header.offset_end,
        ];
        let mut modes = 0u16;
        let mut coded = [0u64; 5];
        for field in [DTS, PTS, DURATION, OFFSET, OFFSET_END] {
            let (mode, value) = match values[field as usize] {
                None => (MODE_ABSENT, 0),
                Some(value) => {
                    let refs = self.refs(field, header);
                    if refs.predicted == Some(value) {
                        (MODE_PREDICTED, 0)
                    } else {
                        let delta = refs
                            .reference
                            .map(|reference| varint::zigzag(value.wrapping_sub(reference) as i64));
                        match delta {
                            Some(delta) if varint::len(delta) < varint::len(value) => {
                                (MODE_DELTA, delta)
                            }
                            _ => (MODE_ABSOLUTE, value),
                        }
                    }
                }
            };
            modes |= mode << (2 * field);
            coded[field as usize] = value;
        }
        out.extend_from_slice(&modes.to_le_bytes());
        out.varint(u64::from(header.flags ^ self.prev.flags));
        for field in [DTS, PTS, DURATION, OFFSET, OFFSET_END] {
            let mode = (modes >> (2 * field)) & 3;
            if mode == MODE_DELTA || mode == MODE_ABSOLUTE {
                out.varint(coded[field as usize]);
            }
        }
        out.varint(header.payload_len);
        self.prev = *header;
    }

    /// Parses a buffer body (after stream id and seq). The predictor is only
    /// updated if the whole header is valid.
    pub(crate) fn decode(
        &mut self,
        reader: &mut BodyReader<'_>,
    ) -> Result<BufferHeader, ProtocolError> {
        let modes = reader.u16_le("buffer.modes")?;
        if modes & !MODES_USED_BITS != 0 {
            return Err(ProtocolError::InvalidValue {
                field: "buffer.modes",
                value: modes.into(),
            });
        }
        let flags_xor = reader.varint_u32("buffer.flags")?;
        let mut header = BufferHeader {
            flags: flags_xor ^ self.prev.flags,
            ..BufferHeader::default()
        };
        for field in [DTS, PTS, DURATION, OFFSET, OFFSET_END] {
            let name = FIELD_NAMES[field as usize];
            let refs = self.refs(field, &header);
            let missing = || ProtocolError::InvalidValue {
                field: name,
                value: ((modes >> (2 * field)) & 3).into(),
            };
            let value = match (modes >> (2 * field)) & 3 {
                MODE_ABSENT => None,
                MODE_PREDICTED => Some(refs.predicted.ok_or_else(missing)?),
                MODE_DELTA => {
                    let reference = refs.reference.ok_or_else(missing)?;
                    let delta = varint::unzigzag(reader.varint(name)?);
                    Some(reference.wrapping_add(delta as u64))
                }
                _ => Some(reader.varint(name)?),
            };
            match field {
                DTS => header.dts = value,
                PTS => header.pts = value,
                DURATION => header.duration = value,
                OFFSET => header.offset = value,
                _ => header.offset_end = value,
            }
        }
        header.payload_len = reader.varint("buffer.payload_len")?;
        self.prev = header;
        Ok(header)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(headers: &[BufferHeader]) -> Vec<usize> {
        let mut encoder = BufferPredictor::default();
        let mut decoder = BufferPredictor::default();
        headers
            .iter()
            .map(|header| {
                let mut out = Vec::new();
                encoder.encode(header, &mut out);
                let mut reader = BodyReader::new(&out, "buffer");
                assert_eq!(decoder.decode(&mut reader).unwrap(), *header);
                out.len()
            })
            .collect()
    }

    #[test]
    fn steady_video_stream_is_tiny() {
        // 30 fps, one hour in, IPBB reordering: decode order I0 P3 B1 B2 P6 B4 B5...
        let frame = 33_333_333;
        let presentation = [0u64, 3, 1, 2, 6, 4, 5, 9, 7, 8, 12, 10, 11];
        let base = 3_600_000_000_000;
        let headers: Vec<_> = presentation
            .iter()
            .enumerate()
            .map(|(i, &p)| BufferHeader {
                dts: Some(base + i as u64 * frame),
                pts: Some(base + (p + 1) * frame),
                duration: Some(frame),
                offset: Some(i as u64),
                offset_end: Some(i as u64 + 1),
                flags: if i == 0 { 0 } else { 1 << 13 },
                payload_len: 20_000,
            })
            .collect();
        let sizes = round_trip(&headers);
        // modes(2) + flags(1) + pts delta(≤4) + payload_len(3); dts, duration
        // and offsets are predicted.
        assert!(sizes[2..].iter().all(|&size| size <= 10), "{sizes:?}");
        // Even the first buffer, all absolute, stays small.
        assert!(sizes[0] <= 24, "{sizes:?}");
    }

    #[test]
    fn audio_stream_is_all_predicted() {
        let duration = 21_333_333; // 1024 samples at 48 kHz
        let headers: Vec<_> = (0..10u64)
            .map(|i| BufferHeader {
                pts: Some(i * duration),
                dts: Some(i * duration),
                duration: Some(duration),
                offset: Some(i * 1024),
                offset_end: Some((i + 1) * 1024),
                flags: 0,
                payload_len: 300,
            })
            .collect();
        let sizes = round_trip(&headers);
        // modes(2) + flags(1) + payload_len(2).
        assert!(sizes[1..].iter().all(|&size| size == 5), "{sizes:?}");
    }

    #[test]
    fn absent_fields_cost_nothing() {
        let sizes = round_trip(&[BufferHeader::default(), BufferHeader::default()]);
        assert_eq!(sizes, [4, 4]);
    }

    #[test]
    fn reserved_mode_bits_are_rejected() {
        let body = [0x00, 0x04, 0x00, 0x00];
        let mut reader = BodyReader::new(&body, "buffer");
        assert!(matches!(
            BufferPredictor::default().decode(&mut reader),
            Err(ProtocolError::InvalidValue {
                field: "buffer.modes",
                ..
            })
        ));
    }

    #[test]
    fn prediction_without_reference_is_rejected() {
        // DTS "predicted" on the first buffer: there is nothing to predict from.
        let body = [MODE_PREDICTED as u8, 0x00, 0x00, 0x00];
        let mut reader = BodyReader::new(&body, "buffer");
        assert!(matches!(
            BufferPredictor::default().decode(&mut reader),
            Err(ProtocolError::InvalidValue {
                field: "buffer.dts",
                ..
            })
        ));
    }

    fn any_header() -> impl Strategy<Value = BufferHeader> {
        let small = prop_oneof![
            Just(None),
            (0u64..1_000_000).prop_map(Some),
            any::<u64>().prop_map(Some)
        ];
        (
            small.clone(),
            small.clone(),
            small.clone(),
            small.clone(),
            small,
            any::<u32>(),
            any::<u64>(),
        )
            .prop_map(
                |(pts, dts, duration, offset, offset_end, flags, payload_len)| BufferHeader {
                    pts,
                    dts,
                    duration,
                    offset,
                    offset_end,
                    flags,
                    payload_len,
                },
            )
    }

    proptest! {
        #[test]
        fn any_sequence_round_trips(headers in proptest::collection::vec(any_header(), 1..20)) {
            round_trip(&headers);
        }
    }
}
