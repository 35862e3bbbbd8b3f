//! The one error type of the protocol: every variant names the offending
//! field or the two values that disagree, so a GStreamer error message built
//! from its `Display` tells the user what went wrong without a debugger.

use crate::hello::{Role, Version};
use crate::message::MessageKind;

/// Anything that can go wrong while encoding, decoding or negotiating.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The first bytes on the channel are not [`crate::MAGIC`].
    #[error(
        "bad magic: expected {expected:02x?}, got {got:02x?} (the peer does not speak spicepass)"
    )]
    BadMagic {
        /// What a spicepass peer sends first.
        expected: [u8; 8],
        /// What arrived (possibly fewer than 8 bytes: a mismatch is reported as soon as it is seen).
        got: Vec<u8>,
    },
    /// Major versions differ: the framing itself may differ.
    #[error("protocol version mismatch: we speak {ours}, the peer speaks {theirs}")]
    VersionMismatch {
        /// Our version.
        ours: Version,
        /// The peer's version from its hello.
        theirs: Version,
    },
    /// Both ends claim the same role (two sinks or two sources connected together).
    #[error("role mismatch: we are a {ours} and the peer is also a {theirs}")]
    RoleMismatch {
        /// Our role.
        ours: Role,
        /// The peer's role.
        theirs: Role,
    },
    /// The peer's auth token is missing or wrong.
    #[error("authentication failed: {reason}")]
    AuthFailed {
        /// Which of the two cases.
        reason: &'static str,
    },
    /// A length or size exceeds the configured limit (checked before allocating).
    #[error("{field} is {value}, more than the limit of {max}")]
    TooLarge {
        /// Field name as in PROTOCOL.md.
        field: &'static str,
        /// Announced value.
        value: u64,
        /// Configured limit.
        max: u64,
    },
    /// A varint longer than 10 bytes or wider than 64 bits.
    #[error("{field}: invalid varint (longer than 10 bytes or wider than 64 bits)")]
    InvalidVarint {
        /// Field name as in PROTOCOL.md.
        field: &'static str,
    },
    /// A message body ends before one of its fields.
    #[error("{message} message body ends inside field {field}")]
    Truncated {
        /// Message name.
        message: &'static str,
        /// Field name as in PROTOCOL.md.
        field: &'static str,
    },
    /// A string field is not UTF-8.
    #[error("{field}: not valid UTF-8")]
    InvalidUtf8 {
        /// Field name as in PROTOCOL.md.
        field: &'static str,
    },
    /// A field holds a value outside its range (reserved bits, an unknown role...).
    #[error("{field}: invalid value {value:#x}")]
    InvalidValue {
        /// Field name as in PROTOCOL.md.
        field: &'static str,
        /// The offending value.
        value: u64,
    },
    /// A message kind this version does not know, from a peer that claims it
    /// does not know more than we do.
    #[error("unknown message kind {kind:#04x}")]
    UnknownMessageKind {
        /// The kind byte.
        kind: u8,
    },
    /// A message that may only travel in the other direction.
    #[error("{kind} message is not allowed from a {from}")]
    WrongDirection {
        /// Message kind.
        kind: MessageKind,
        /// Role of the sender.
        from: Role,
    },
    /// The sequence number is not the next one: bytes were lost or inserted
    /// on the channel (a byte stream resumed mid-way, garbage injected...).
    #[error(
        "sequence number {got}, expected {expected}: bytes were lost or inserted on the channel"
    )]
    SequenceGap {
        /// Next sequence number we expected.
        expected: u64,
        /// The one that arrived.
        got: u64,
    },
    /// `Decoder::poll` was called while a buffer payload is still owed to the caller.
    #[error("{remaining} payload bytes of the current buffer must be consumed first")]
    PayloadPending {
        /// Bytes of payload not consumed yet.
        remaining: u64,
    },
    /// `Decoder::consume_payload` was called while the decoder still holds
    /// payload bytes that come first: take them with `take_payload`.
    #[error(
        "{buffered} buffered payload bytes must be taken before reading more from the transport"
    )]
    PayloadNotTaken {
        /// Bytes still held by the decoder.
        buffered: u64,
    },
    /// More payload bytes were reported consumed than the buffer has.
    #[error("consumed {consumed} payload bytes but only {remaining} remain")]
    PayloadOverrun {
        /// Bytes reported.
        consumed: u64,
        /// Bytes that remained.
        remaining: u64,
    },
    /// The peer closed the channel in the middle of something.
    #[error("peer closed the channel in the middle of {what} ({buffered} bytes of it received)")]
    UnexpectedEof {
        /// What was being received.
        what: &'static str,
        /// How much of it had arrived.
        buffered: u64,
    },
    /// A message arrived before the hello, or a second hello.
    #[error("handshake not complete: {what}")]
    NoHandshake {
        /// What was attempted.
        what: &'static str,
    },
    /// The sender sent more than it was granted.
    #[error("credit exceeded: {field} would reach {used}, granted {granted}")]
    CreditExceeded {
        /// `bytes` or `buffers`.
        field: &'static str,
        /// Total including the offending buffer.
        used: u64,
        /// Granted total.
        granted: u64,
    },
}
