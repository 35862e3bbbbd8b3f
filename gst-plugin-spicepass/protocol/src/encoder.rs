//! Turns messages into bytes. One `Encoder` per connection and direction:
//! it numbers frames and remembers the previous buffer of every stream, so
//! every frame it produces must be sent, in order (drop buffers *before*
//! encoding them, never after).

use crate::body::BodyWriter;
use crate::buffer_header::{BufferHeader, BufferPredictor};
use crate::error::ProtocolError;
use crate::hello::{Limits, Role};
use crate::message::Message;
use crate::varint;

/// Stream ids are below this (bounds the per-stream state of a decoder).
pub const MAX_STREAMS: u32 = 256;

/// Longest frame header: kind byte and a `u32` body length varint.
pub const MAX_FRAME_PREFIX_LEN: usize = 1 + 5;

/// Encoder for the frames one end sends.
#[derive(Debug)]
pub struct Encoder {
    role: Role,
    peer_limits: Limits,
    next_seq: u64,
    predictors: Vec<BufferPredictor>,
    scratch: Vec<u8>,
}

impl Encoder {
    /// An encoder for an end of role `role` whose peer enforces `peer_limits`
    /// (from [`crate::Session::peer_limits`]).
    pub fn new(role: Role, peer_limits: Limits) -> Encoder {
        Encoder {
            role,
            peer_limits,
            next_seq: 0,
            predictors: Vec::new(),
            scratch: Vec::with_capacity(64),
        }
    }

    /// The sequence number the next frame will carry.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Appends the frame for `message` to `out` and returns its sequence
    /// number. For [`Message::Buffer`] only the header is written: the caller
    /// sends `payload_len` payload bytes right after it (e.g. with `writev`).
    /// On error nothing is appended and the encoder state is unchanged.
    pub fn encode(
        &mut self,
        stream_id: u32,
        message: &Message,
        out: &mut Vec<u8>,
    ) -> Result<u64, ProtocolError> {
        if !message.allowed_from(self.role) {
            return Err(ProtocolError::WrongDirection {
                kind: message.kind(),
                from: self.role,
            });
        }
        if stream_id >= MAX_STREAMS {
            return Err(ProtocolError::InvalidValue {
                field: "stream_id",
                value: stream_id.into(),
            });
        }
        self.scratch.clear();
        self.scratch.varint(stream_id.into());
        self.scratch.varint(self.next_seq);
        let mut predictor = None;
        match message {
            Message::Buffer(header) => {
                self.check_payload(header)?;
                let mut next = self.predictor(stream_id);
                next.encode(header, &mut self.scratch);
                predictor = Some(next);
            }
            Message::SharedBuffer(shared) => {
                self.check_payload(&shared.header)?;
                let mut next = self.predictor(stream_id);
                next.encode(&shared.header, &mut self.scratch);
                shared.encode_tail(&mut self.scratch);
                predictor = Some(next);
            }
            other => other.encode_body(&mut self.scratch),
        }
        let body_len = self.scratch.len() as u64;
        if body_len > u64::from(self.peer_limits.max_body) {
            return Err(ProtocolError::TooLarge {
                field: "body_len",
                value: body_len,
                max: self.peer_limits.max_body.into(),
            });
        }
        out.push(message.kind().to_wire());
        varint::put(out, body_len);
        out.extend_from_slice(&self.scratch);
        if let Some(predictor) = predictor {
            self.predictors[stream_id as usize] = predictor;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        Ok(seq)
    }

    /// Shorthand for `encode(stream_id, &Message::Buffer(*header), out)`.
    pub fn encode_buffer(
        &mut self,
        stream_id: u32,
        header: &BufferHeader,
        out: &mut Vec<u8>,
    ) -> Result<u64, ProtocolError> {
        self.encode(stream_id, &Message::Buffer(*header), out)
    }

    fn check_payload(&self, header: &BufferHeader) -> Result<(), ProtocolError> {
        if header.payload_len > self.peer_limits.max_payload {
            return Err(ProtocolError::TooLarge {
                field: "buffer.payload_len",
                value: header.payload_len,
                max: self.peer_limits.max_payload,
            });
        }
        Ok(())
    }

    fn predictor(&mut self, stream_id: u32) -> BufferPredictor {
        let index = stream_id as usize;
        if self.predictors.len() <= index {
            self.predictors
                .resize(index + 1, BufferPredictor::default());
        }
        self.predictors[index]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Credit, Event, EventDirection, MessageKind};

    #[test]
    fn direction_is_enforced() {
        let mut src = Encoder::new(Role::Src, Limits::default());
        let err = src
            .encode_buffer(0, &BufferHeader::default(), &mut Vec::new())
            .unwrap_err();
        assert_eq!(
            err,
            ProtocolError::WrongDirection {
                kind: MessageKind::Buffer,
                from: Role::Src
            }
        );
        let mut sink = Encoder::new(Role::Sink, Limits::default());
        let credit = Message::Credit(Credit {
            max_bytes: 1,
            max_buffers: 1,
        });
        assert!(sink.encode(0, &credit, &mut Vec::new()).is_err());
        let upstream = Message::Event(Event {
            direction: EventDirection::Upstream,
            event_type: 0,
            seqnum: 0,
            running_time_offset: 0,
            sticky: false,
            structure: None,
        });
        assert!(sink.encode(0, &upstream, &mut Vec::new()).is_err());
        assert_eq!(sink.next_seq(), 0);
    }

    #[test]
    fn limits_are_enforced_without_side_effects() {
        let limits = Limits {
            max_body: 16,
            max_payload: 100,
        };
        let mut sink = Encoder::new(Role::Sink, limits);
        let mut out = Vec::new();
        let big = BufferHeader {
            payload_len: 101,
            ..BufferHeader::default()
        };
        assert!(matches!(
            sink.encode_buffer(0, &big, &mut out),
            Err(ProtocolError::TooLarge {
                field: "buffer.payload_len",
                ..
            })
        ));
        let event = Message::Event(Event {
            direction: EventDirection::Downstream,
            event_type: 1,
            seqnum: 1,
            running_time_offset: 0,
            sticky: true,
            structure: Some("x".repeat(20)),
        });
        assert!(matches!(
            sink.encode(0, &event, &mut out),
            Err(ProtocolError::TooLarge {
                field: "body_len",
                ..
            })
        ));
        assert!(matches!(
            sink.encode_buffer(MAX_STREAMS, &BufferHeader::default(), &mut out),
            Err(ProtocolError::InvalidValue {
                field: "stream_id",
                ..
            })
        ));
        assert!(out.is_empty());
        assert_eq!(sink.next_seq(), 0);
    }
}
