// SPDX-License-Identifier: MPL-2.0
//! The hello exchange that opens every connection.
//!
//! The reader speaks first with its version and requested credit; the writer
//! always answers with its own hello (so the reader can name both versions),
//! then, on a mismatch, a [`Goodbye`] with [`GoodbyeReason::VersionMismatch`]
//! before closing. Both sides report [`HandshakeError::VersionMismatch`].

use std::time::Duration;

use thiserror::Error;

use crate::channel::{Channel, ChannelError};
use crate::protocol::{
    Goodbye, GoodbyeReason, Hello, Message, MessageKind, PROTOCOL_VERSION, Role,
};

/// Why a connection could not be opened.
#[derive(Debug, Error)]
pub enum HandshakeError {
    #[error("protocol version mismatch: we speak version {ours}, the peer speaks version {theirs}")]
    VersionMismatch { ours: u32, theirs: u32 },
    #[error("expected a hello from a {expected:?}, got one from a {got:?}")]
    WrongRole { expected: Role, got: Role },
    #[error("expected a hello, got a {0:?} message")]
    UnexpectedMessage(MessageKind),
    #[error("the peer refused the connection: {0:?}")]
    Rejected(Goodbye),
    #[error("handshake failed: {0}")]
    Channel(#[from] ChannelError),
}

fn expect_hello(channel: &Channel, from: Role, timeout: Duration) -> Result<Hello, HandshakeError> {
    let received = channel.recv(timeout)?;
    match received.message {
        Message::Hello(hello) if hello.role == from => Ok(hello),
        Message::Hello(hello) => Err(HandshakeError::WrongRole {
            expected: from,
            got: hello.role,
        }),
        Message::Goodbye(goodbye) => Err(HandshakeError::Rejected(goodbye)),
        other => Err(HandshakeError::UnexpectedMessage(other.kind())),
    }
}

/// Writer side: waits for the reader's hello, grants it at most `max_credit`
/// buffers in flight, and returns the reader's hello with `credit` set to
/// the granted value.
pub fn writer_handshake(
    channel: &Channel,
    max_credit: u32,
    timeout: Duration,
) -> Result<Hello, HandshakeError> {
    let mut theirs = expect_hello(channel, Role::Reader, timeout)?;
    let granted = theirs.credit.clamp(1, max_credit.max(1));
    let ours = Hello {
        version: PROTOCOL_VERSION,
        role: Role::Writer,
        credit: granted,
        features: 0,
    };
    channel.send(&Message::Hello(ours), None, timeout)?;
    if theirs.version != PROTOCOL_VERSION {
        let goodbye = Goodbye {
            reason: GoodbyeReason::VersionMismatch,
            message: format!(
                "writer speaks shmzero protocol version {PROTOCOL_VERSION}, reader version {}",
                theirs.version
            ),
        };
        // Best effort: the reader detects the mismatch from our hello anyway.
        let _ = channel.send(&Message::Goodbye(goodbye), None, timeout);
        return Err(HandshakeError::VersionMismatch {
            ours: PROTOCOL_VERSION,
            theirs: theirs.version,
        });
    }
    theirs.credit = granted;
    Ok(theirs)
}

/// Reader side: sends a hello asking for `credit` buffers in flight and
/// returns the writer's hello (its `credit` is the granted value).
pub fn reader_handshake(
    channel: &Channel,
    credit: u32,
    timeout: Duration,
) -> Result<Hello, HandshakeError> {
    let ours = Hello {
        version: PROTOCOL_VERSION,
        role: Role::Reader,
        credit,
        features: 0,
    };
    channel.send(&Message::Hello(ours), None, timeout)?;
    let theirs = expect_hello(channel, Role::Writer, timeout)?;
    if theirs.version != PROTOCOL_VERSION {
        return Err(HandshakeError::VersionMismatch {
            ours: PROTOCOL_VERSION,
            theirs: theirs.version,
        });
    }
    Ok(theirs)
}
