//! Turns bytes into messages, incrementally: the transport may split or merge
//! writes anywhere (virtio-serial cuts at 32 KiB, spice-server re-chunks at
//! 64 KiB), and any split yields the same messages.
//!
//! Buffer payloads are not copied by the decoder: after a buffer header the
//! caller is told how many payload bytes follow, takes the few the decoder
//! had already buffered ([`Decoder::take_payload`]) and reads the rest from
//! the transport straight into its own memory ([`Decoder::consume_payload`]).

use std::io::{self, Read};

use crate::body::BodyReader;
use crate::buffer_header::BufferPredictor;
use crate::encoder::MAX_STREAMS;
use crate::error::ProtocolError;
use crate::hello::{Hello, Limits, Role, VERSION};
use crate::message::{Frame, Message, MessageKind, SharedBuffer};
use crate::varint::{self, VarintRead};

/// What [`Decoder::poll`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// The peer's hello (always first). Check it with [`crate::negotiate`].
    Hello(Hello),
    /// A frame. After a [`Message::Buffer`] with a non-zero `payload_len`,
    /// consume the payload before polling again.
    Frame(Frame),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Hello,
    Frames,
    Payload { remaining: u64 },
}

/// Incremental decoder for the bytes one end receives.
#[derive(Debug)]
pub struct Decoder {
    role: Role,
    limits: Limits,
    /// Received bytes are `input[start..end]`; `input` beyond `end` is
    /// initialized spare room for `read_from` (never zeroed twice).
    input: Vec<u8>,
    start: usize,
    end: usize,
    state: State,
    peer_newer_minor: bool,
    next_seq: u64,
    predictors: Vec<BufferPredictor>,
    failed: Option<ProtocolError>,
    skipped_unknown: u64,
}

impl Decoder {
    /// A decoder for an end of role `role` that enforces `limits` on what it
    /// receives (announce the same limits in your hello).
    pub fn new(role: Role, limits: Limits) -> Decoder {
        Decoder {
            role,
            limits,
            input: Vec::new(),
            start: 0,
            end: 0,
            state: State::Hello,
            peer_newer_minor: false,
            next_seq: 0,
            predictors: Vec::new(),
            failed: None,
            skipped_unknown: 0,
        }
    }

    /// Appends bytes received from the transport. The decoder holds them
    /// until they are decoded or taken as payload, so push one read at a
    /// time and poll (or take the payload) in between: memory then stays
    /// bounded by one read plus `max_body`.
    pub fn push(&mut self, bytes: &[u8]) {
        self.spare(bytes.len()).copy_from_slice(bytes);
        self.end += bytes.len();
    }

    /// Reads once from `reader` into the decoder's buffer (at most `max`
    /// bytes, `max` > 0); returns what `read` returned (`Ok(0)`: the peer
    /// closed).
    pub fn read_from<R: Read + ?Sized>(&mut self, reader: &mut R, max: usize) -> io::Result<usize> {
        let read = reader.read(self.spare(max))?;
        // A misbehaving reader claiming more than it was given is clamped.
        self.end += read.min(max);
        Ok(read)
    }

    /// Room for `len` more bytes after `end`, compacting first.
    fn spare(&mut self, len: usize) -> &mut [u8] {
        self.compact();
        if self.input.len() < self.end + len {
            self.input.resize(self.end + len, 0);
        }
        &mut self.input[self.end..self.end + len]
    }

    /// Bytes received but not decoded or taken yet.
    pub fn buffered_len(&self) -> usize {
        self.end - self.start
    }

    /// Payload bytes of the current buffer still to be consumed (0 when the
    /// decoder is between frames).
    pub fn payload_remaining(&self) -> u64 {
        match self.state {
            State::Payload { remaining } => remaining,
            _ => 0,
        }
    }

    /// Frames of unknown kinds skipped (sent by a peer with a newer minor version).
    pub fn skipped_unknown(&self) -> u64 {
        self.skipped_unknown
    }

    /// Copies payload bytes the decoder already holds into `dst` (at most
    /// `dst.len()` and at most the remaining payload); returns how many.
    /// Call it first, then read the rest of the payload yourself.
    pub fn take_payload(&mut self, dst: &mut [u8]) -> usize {
        let State::Payload { remaining } = self.state else {
            return 0;
        };
        let count = self
            .buffered_len()
            .min(dst.len())
            .min(usize::try_from(remaining).unwrap_or(usize::MAX));
        dst[..count].copy_from_slice(&self.input[self.start..self.start + count]);
        self.start += count;
        self.advance_payload(remaining, count as u64);
        count
    }

    /// Tells the decoder the caller read `count` payload bytes directly from
    /// the transport. All buffered bytes must have been taken before.
    pub fn consume_payload(&mut self, count: u64) -> Result<(), ProtocolError> {
        let remaining = self.payload_remaining();
        if count > remaining {
            return Err(ProtocolError::PayloadOverrun {
                consumed: count,
                remaining,
            });
        }
        if count == 0 {
            return Ok(());
        }
        if self.buffered_len() > 0 {
            return Err(ProtocolError::PayloadNotTaken {
                buffered: self.buffered_len() as u64,
            });
        }
        self.advance_payload(remaining, count);
        Ok(())
    }

    fn advance_payload(&mut self, remaining: u64, count: u64) {
        self.state = if remaining == count {
            State::Frames
        } else {
            State::Payload {
                remaining: remaining - count,
            }
        };
    }

    /// Decodes the next hello or frame: `Ok(None)` when more bytes are
    /// needed. Errors are final: the connection must be closed (the same
    /// error is returned again if polled).
    pub fn poll(&mut self) -> Result<Option<Decoded>, ProtocolError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        let result = match self.state {
            State::Payload { remaining } => {
                // Misuse, not a peer error: do not poison the decoder.
                return Err(ProtocolError::PayloadPending { remaining });
            }
            State::Hello => self.poll_hello(),
            State::Frames => self.poll_frame(),
        };
        if let Err(error) = &result {
            self.failed = Some(error.clone());
        }
        result
    }

    /// Call when the peer closed the channel: an error if it stopped in the
    /// middle of a hello, frame or payload.
    pub fn finish(&self) -> Result<(), ProtocolError> {
        let buffered = self.buffered_len() as u64;
        match self.state {
            State::Hello => Err(ProtocolError::UnexpectedEof {
                what: "the hello",
                buffered,
            }),
            State::Payload { .. } => Err(ProtocolError::UnexpectedEof {
                what: "a buffer payload",
                buffered,
            }),
            State::Frames if buffered > 0 => Err(ProtocolError::UnexpectedEof {
                what: "a frame",
                buffered,
            }),
            State::Frames => Ok(()),
        }
    }

    fn poll_hello(&mut self) -> Result<Option<Decoded>, ProtocolError> {
        let Some((hello, used)) = Hello::parse(&self.input[self.start..self.end])? else {
            return Ok(None);
        };
        if hello.role != self.role.peer() {
            return Err(ProtocolError::RoleMismatch {
                ours: self.role,
                theirs: hello.role,
            });
        }
        self.start += used;
        self.peer_newer_minor = hello.version.minor > VERSION.minor;
        self.state = State::Frames;
        Ok(Some(Decoded::Hello(hello)))
    }

    fn poll_frame(&mut self) -> Result<Option<Decoded>, ProtocolError> {
        loop {
            let available = &self.input[self.start..self.end];
            let Some((&kind_byte, rest)) = available.split_first() else {
                return Ok(None);
            };
            let kind = MessageKind::from_wire(kind_byte);
            if kind.is_none() && !self.peer_newer_minor {
                return Err(ProtocolError::UnknownMessageKind { kind: kind_byte });
            }
            let (body_len, len_bytes) = match varint::get(rest) {
                VarintRead::Value(value, used) => (value, used),
                VarintRead::Incomplete => return Ok(None),
                VarintRead::Overflow => {
                    return Err(ProtocolError::InvalidVarint { field: "body_len" });
                }
            };
            if body_len > u64::from(self.limits.max_body) {
                return Err(ProtocolError::TooLarge {
                    field: "body_len",
                    value: body_len,
                    max: self.limits.max_body.into(),
                });
            }
            let body_start = 1 + len_bytes;
            let frame_len = body_start + body_len as usize;
            let Some(body) = available.get(body_start..frame_len) else {
                return Ok(None);
            };
            let name = kind.map_or("unknown", MessageKind::name);
            let mut reader = BodyReader::new(body, name);
            let stream_id = reader.varint_u32("stream_id")?;
            if stream_id >= MAX_STREAMS {
                return Err(ProtocolError::InvalidValue {
                    field: "stream_id",
                    value: stream_id.into(),
                });
            }
            let seq = reader.varint("seq")?;
            if seq != self.next_seq {
                return Err(ProtocolError::SequenceGap {
                    expected: self.next_seq,
                    got: seq,
                });
            }
            let Some(kind) = kind else {
                self.start += frame_len;
                self.next_seq += 1;
                self.skipped_unknown += 1;
                continue;
            };
            let peer = self.role.peer();
            if !kind.allowed_from(peer) {
                return Err(ProtocolError::WrongDirection { kind, from: peer });
            }
            let message = if kind == MessageKind::Buffer || kind == MessageKind::SharedBuffer {
                let index = stream_id as usize;
                if self.predictors.len() <= index {
                    self.predictors
                        .resize(index + 1, BufferPredictor::default());
                }
                let mut predictor = self.predictors[index];
                let header = predictor.decode(&mut reader)?;
                if header.payload_len > self.limits.max_payload {
                    return Err(ProtocolError::TooLarge {
                        field: "buffer.payload_len",
                        value: header.payload_len,
                        max: self.limits.max_payload,
                    });
                }
                if kind == MessageKind::SharedBuffer {
                    // The payload is in shared memory: nothing follows the frame.
                    let shared = SharedBuffer::decode_tail(header, &mut reader)?;
                    self.predictors[index] = predictor;
                    Message::SharedBuffer(shared)
                } else {
                    self.predictors[index] = predictor;
                    if header.payload_len > 0 {
                        self.state = State::Payload {
                            remaining: header.payload_len,
                        };
                    }
                    Message::Buffer(header)
                }
            } else {
                let message = Message::decode_body(kind, &mut reader)?;
                if !message.allowed_from(peer) {
                    return Err(ProtocolError::WrongDirection { kind, from: peer });
                }
                message
            };
            // Bytes left in the body are fields of a newer minor version: skipped.
            self.start += frame_len;
            self.next_seq += 1;
            return Ok(Some(Decoded::Frame(Frame {
                stream_id,
                seq,
                message,
            })));
        }
    }

    /// Drops consumed bytes once they are a large share of the buffer, so
    /// memory stays bounded without moving bytes on every frame.
    fn compact(&mut self) {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.start > 4096 && self.start * 2 > self.end {
            self.input.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
    }
}

/// One item of a [`BufferingDecoder`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// The peer's hello.
    Hello(Hello),
    /// A frame and, for buffers, its whole payload (empty otherwise).
    Frame(Frame, Vec<u8>),
}

/// Convenience wrapper that collects buffer payloads into `Vec`s (one copy).
/// For tests, tools and fuzzing; elements use [`Decoder`] to read payloads
/// straight into buffer memory.
#[derive(Debug)]
pub struct BufferingDecoder {
    decoder: Decoder,
    pending: Option<(Frame, Vec<u8>, usize)>,
}

impl BufferingDecoder {
    /// See [`Decoder::new`].
    pub fn new(role: Role, limits: Limits) -> BufferingDecoder {
        BufferingDecoder {
            decoder: Decoder::new(role, limits),
            pending: None,
        }
    }

    /// The wrapped decoder.
    pub fn decoder(&self) -> &Decoder {
        &self.decoder
    }

    /// See [`Decoder::push`].
    pub fn push(&mut self, bytes: &[u8]) {
        self.decoder.push(bytes);
    }

    /// The next complete item, `Ok(None)` if more bytes are needed.
    pub fn poll(&mut self) -> Result<Option<Item>, ProtocolError> {
        if self.pending.is_none() {
            match self.decoder.poll()? {
                None => return Ok(None),
                Some(Decoded::Hello(hello)) => return Ok(Some(Item::Hello(hello))),
                Some(Decoded::Frame(frame)) => {
                    let payload_len = match &frame.message {
                        Message::Buffer(header) => header.payload_len,
                        _ => 0,
                    };
                    // The decoder checked payload_len against max_payload.
                    let payload_len =
                        usize::try_from(payload_len).map_err(|_| ProtocolError::TooLarge {
                            field: "buffer.payload_len",
                            value: payload_len,
                            max: usize::MAX as u64,
                        })?;
                    self.pending = Some((frame, vec![0; payload_len], 0));
                }
            }
        }
        let Some((_, payload, filled)) = &mut self.pending else {
            return Ok(None);
        };
        *filled += self.decoder.take_payload(&mut payload[*filled..]);
        if *filled < payload.len() {
            return Ok(None);
        }
        Ok(self
            .pending
            .take()
            .map(|(frame, payload, _)| Item::Frame(frame, payload)))
    }

    /// See [`Decoder::finish`].
    pub fn finish(&self) -> Result<(), ProtocolError> {
        self.decoder.finish()
    }
}
