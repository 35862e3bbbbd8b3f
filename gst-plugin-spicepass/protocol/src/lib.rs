//! The spicepass wire protocol, without GStreamer and without I/O.
//!
//! `spicepasssink` (guest) and `spicepasssrc` (client) talk over one
//! bidirectional byte stream (unix/TCP socket, socketpair, virtio-serial
//! port). This crate defines the bytes; `gst-plugin-spicepass/PROTOCOL.md`
//! is the normative description.
//!
//! * [`Hello`] / [`negotiate`]: the handshake both ends send first.
//! * [`Encoder`] / [`Decoder`]: frames with a stream id and a sequence
//!   number; the decoder accepts any split of the byte stream and enforces
//!   [`Limits`] before allocating anything.
//! * Buffers are zero-copy friendly: [`Encoder::encode_buffer`] writes only a
//!   small header (≤ 32 bytes for a typical encoded buffer) and the caller
//!   sends the payload after it, e.g. with `writev`; [`Decoder`] reports the
//!   payload length and lets the caller read the payload straight into its
//!   own memory.
//! * [`CreditSender`] / [`CreditGranter`]: flow control with bounded memory.
//! * [`Liveness`]: heartbeats, dead-peer timeout, round-trip time.
//!
//! ```
//! use spicepass_protocol::*;
//!
//! // Guest side: hello, then a buffer header followed by its payload.
//! let mut wire = Vec::new();
//! Hello::new(Role::Sink, 42).encode(&mut wire)?;
//! let mut encoder = Encoder::new(Role::Sink, Limits::default());
//! let payload = b"encoded frame";
//! let header = BufferHeader {
//!     pts: Some(0),
//!     duration: Some(40_000_000),
//!     payload_len: payload.len() as u64,
//!     ..BufferHeader::default()
//! };
//! encoder.encode_buffer(0, &header, &mut wire)?;
//! wire.extend_from_slice(payload); // a real sender uses writev(header, payload)
//!
//! // Client side: bytes arrive in arbitrary pieces.
//! let mut decoder = Decoder::new(Role::Src, Limits::default());
//! let (first, rest) = wire.split_at(20);
//! decoder.push(first);
//! assert_eq!(decoder.poll()?, None); // incomplete hello: wait for more
//! decoder.push(rest);
//! let Some(Decoded::Hello(hello)) = decoder.poll()? else { unreachable!() };
//! let session = negotiate(&Hello::new(Role::Src, 7), &hello, None)?;
//! assert_eq!(session.peer_session_id, 42);
//! let Some(Decoded::Frame(frame)) = decoder.poll()? else { unreachable!() };
//! let Message::Buffer(received) = frame.message else { unreachable!() };
//! assert_eq!(received, header);
//! // Payload: take what the decoder already holds, read the rest from the
//! // transport into the same memory, then `consume_payload(n)`.
//! let mut memory = vec![0; received.payload_len as usize];
//! let taken = decoder.take_payload(&mut memory);
//! assert_eq!(taken, payload.len());
//! assert_eq!(&memory, payload);
//! assert_eq!(decoder.payload_remaining(), 0);
//! # Ok::<(), ProtocolError>(())
//! ```

mod body;
pub mod buffer_header;
pub mod credit;
pub mod decoder;
pub mod encoder;
pub mod error;
pub mod hello;
pub mod liveness;
pub mod message;
pub mod varint;

pub use buffer_header::BufferHeader;
pub use credit::{CreditGranter, CreditSender};
pub use decoder::{BufferingDecoder, Decoded, Decoder, Item};
pub use encoder::{Encoder, MAX_FRAME_PREFIX_LEN, MAX_STREAMS};
pub use error::ProtocolError;
pub use hello::{Capabilities, Hello, Limits, MAGIC, Role, Session, VERSION, Version, negotiate};
pub use liveness::Liveness;
pub use message::{
    ClientReport, Credit, Event, EventDirection, Frame, Goodbye, GoodbyeReason, Heartbeat,
    HeartbeatEcho, Message, MessageKind, Release, RetireSegment, Segment, SharedBuffer,
    WindowGeometry,
};
