// SPDX-License-Identifier: MPL-2.0
//! Channel messages after the link: mini-header framing and the server messages a
//! port-channel client acts on. Pure functions over bytes; garbage gives a typed error.

use crate::wire::{MINI_HEADER_LEN, Reader, Truncated, msg, msgc};

/// Larger server messages are refused: spice-server sends ≤ 64 KiB of port data per
/// message and its biggest main-channel messages are far below this.
pub const MAX_MESSAGE_LEN: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("server message of {0} bytes exceeds the {MAX_MESSAGE_LEN}-byte limit")]
    TooLarge(u32),
    #[error(transparent)]
    Truncated(#[from] Truncated),
    #[error("port name is not terminated by a NUL byte")]
    PortName,
}

/// One framed message: type and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawMessage {
    pub kind: u16,
    pub body: Vec<u8>,
}

/// Collects bytes from the socket and cuts them into mini-header messages.
#[derive(Debug, Default)]
pub struct Framer {
    buf: Vec<u8>,
    start: usize,
}

impl Framer {
    pub fn push(&mut self, bytes: &[u8]) {
        // Compact only when the consumed prefix dominates, so pushing stays amortised O(n).
        if self.start > 0 && self.start >= self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete message, `Ok(None)` if more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<RawMessage>, DecodeError> {
        let pending = &self.buf[self.start..];
        if pending.len() < MINI_HEADER_LEN {
            return Ok(None);
        }
        let mut r = Reader::new(pending, "mini header");
        let kind = r.u16()?;
        let size = r.u32()?;
        if size as usize > MAX_MESSAGE_LEN {
            return Err(DecodeError::TooLarge(size));
        }
        let total = MINI_HEADER_LEN + size as usize;
        if pending.len() < total {
            return Ok(None);
        }
        let body = pending[MINI_HEADER_LEN..total].to_vec();
        self.start += total;
        Ok(Some(RawMessage { kind, body }))
    }

    /// Bytes received but not yet returned as messages.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }
}

/// The server messages this client acts on; the rest are `Other` and ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerMessage {
    SetAck {
        generation: u32,
        window: u32,
    },
    Ping {
        id: u32,
        timestamp: u64,
    },
    Disconnecting,
    MainInit {
        session_id: u32,
    },
    /// `(channel type, channel id)` pairs.
    ChannelsList(Vec<(u8, u8)>),
    Data(Vec<u8>),
    /// LZ4-compressed port data: never asked for (the capability is not offered).
    CompressedData,
    PortInit {
        name: Vec<u8>,
        opened: bool,
    },
    PortEvent(u8),
    Other(u16),
}

/// Which channel a message arrived on: the same number means different things per channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelKind {
    Main,
    Port,
}

pub fn decode(channel: ChannelKind, raw: RawMessage) -> Result<ServerMessage, DecodeError> {
    let mut r = Reader::new(&raw.body, "message body");
    Ok(match (channel, raw.kind) {
        (_, msg::SET_ACK) => ServerMessage::SetAck {
            generation: r.u32()?,
            window: r.u32()?,
        },
        // Pings may carry filler bytes (the server's bandwidth test): only id and time matter.
        (_, msg::PING) => ServerMessage::Ping {
            id: r.u32()?,
            timestamp: r.u64()?,
        },
        (_, msg::DISCONNECTING) => ServerMessage::Disconnecting,
        (ChannelKind::Main, msg::MAIN_INIT) => ServerMessage::MainInit {
            session_id: r.u32()?,
        },
        (ChannelKind::Main, msg::MAIN_CHANNELS_LIST) => {
            let count = r.u32()? as usize;
            let pairs = r.take(count.saturating_mul(2))?;
            ServerMessage::ChannelsList(pairs.chunks_exact(2).map(|p| (p[0], p[1])).collect())
        }
        (ChannelKind::Port, msg::SPICEVMC_DATA) => ServerMessage::Data(raw.body),
        (ChannelKind::Port, msg::SPICEVMC_COMPRESSED_DATA) => ServerMessage::CompressedData,
        (ChannelKind::Port, msg::PORT_INIT) => {
            let name_size = r.u32()? as usize;
            let name_offset = r.u32()? as usize;
            let opened = r.u8()? != 0;
            let name = r.bytes_at(name_offset, name_size)?;
            let Some((&0, name)) = name.split_last() else {
                return Err(DecodeError::PortName);
            };
            ServerMessage::PortInit {
                name: name.to_vec(),
                opened,
            }
        }
        (ChannelKind::Port, msg::PORT_EVENT) => ServerMessage::PortEvent(r.u8()?),
        (_, other) => ServerMessage::Other(other),
    })
}

/// A client message with its mini header.
pub fn encode(kind: u16, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(MINI_HEADER_LEN + body.len());
    encode_into(&mut out, kind, body);
    out
}

/// Appends a client message with its mini header to `out`.
pub fn encode_into(out: &mut Vec<u8>, kind: u16, body: &[u8]) {
    let size = u32::try_from(body.len()).expect("client messages are small");
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&size.to_le_bytes());
    out.extend_from_slice(body);
}

pub fn pong(id: u32, timestamp: u64) -> Vec<u8> {
    let mut body = id.to_le_bytes().to_vec();
    body.extend_from_slice(&timestamp.to_le_bytes());
    encode(msgc::PONG, &body)
}

pub fn ack_sync(generation: u32) -> Vec<u8> {
    encode(msgc::ACK_SYNC, &generation.to_le_bytes())
}

pub fn ack() -> Vec<u8> {
    encode(msgc::ACK, &[])
}

/// Counts received messages and says when the server wants an ACK (it stops sending
/// after about two windows without one).
#[derive(Debug, Default)]
pub struct AckWindow {
    window: u32,
    left: u32,
}

impl AckWindow {
    pub fn set(&mut self, window: u32) {
        self.window = window;
        self.left = window;
    }

    /// Call once per received message; true when an ACK must be sent now.
    pub fn on_message(&mut self) -> bool {
        if self.window == 0 {
            return false;
        }
        self.left -= 1;
        if self.left == 0 {
            self.left = self.window;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn framed(kind: u16, body: &[u8]) -> Vec<u8> {
        encode(kind, body)
    }

    #[test]
    fn port_init_carries_name_and_state() {
        // name_size, name offset (after the 9 fixed bytes), opened, name with NUL.
        let mut body = Vec::new();
        body.extend_from_slice(&16u32.to_le_bytes());
        body.extend_from_slice(&9u32.to_le_bytes());
        body.push(1);
        body.extend_from_slice(b"org.mediapass.0\0");
        let mut f = Framer::default();
        f.push(&framed(msg::PORT_INIT, &body));
        let raw = f.next_message().unwrap().unwrap();
        assert_eq!(
            decode(ChannelKind::Port, raw).unwrap(),
            ServerMessage::PortInit {
                name: b"org.mediapass.0".to_vec(),
                opened: true
            }
        );
    }

    #[test]
    fn port_init_without_nul_is_an_error() {
        let mut body = Vec::new();
        body.extend_from_slice(&2u32.to_le_bytes());
        body.extend_from_slice(&9u32.to_le_bytes());
        body.push(0);
        body.extend_from_slice(b"ab");
        let raw = RawMessage {
            kind: msg::PORT_INIT,
            body,
        };
        assert_eq!(decode(ChannelKind::Port, raw), Err(DecodeError::PortName));
    }

    #[test]
    fn channels_list_and_main_init() {
        let mut body = 2u32.to_le_bytes().to_vec();
        body.extend_from_slice(&[1, 0, 10, 3]);
        let raw = RawMessage {
            kind: msg::MAIN_CHANNELS_LIST,
            body,
        };
        assert_eq!(
            decode(ChannelKind::Main, raw).unwrap(),
            ServerMessage::ChannelsList(vec![(1, 0), (10, 3)])
        );
        let mut init = 77u32.to_le_bytes().to_vec();
        init.extend_from_slice(&[0; 28]);
        let raw = RawMessage {
            kind: msg::MAIN_INIT,
            body: init,
        };
        assert_eq!(
            decode(ChannelKind::Main, raw).unwrap(),
            ServerMessage::MainInit { session_id: 77 }
        );
    }

    #[test]
    fn same_number_means_different_things_per_channel() {
        // 101 is SPICEVMC_DATA on a port channel, MIGRATE_BEGIN on the main channel.
        let raw = RawMessage {
            kind: 101,
            body: vec![1, 2, 3],
        };
        assert_eq!(
            decode(ChannelKind::Port, raw.clone()).unwrap(),
            ServerMessage::Data(vec![1, 2, 3])
        );
        assert_eq!(
            decode(ChannelKind::Main, raw).unwrap(),
            ServerMessage::Other(101)
        );
    }

    #[test]
    fn oversized_header_is_refused_before_buffering() {
        let mut f = Framer::default();
        f.push(&[101, 0, 0xff, 0xff, 0xff, 0xff]);
        assert!(matches!(f.next_message(), Err(DecodeError::TooLarge(_))));
    }

    #[test]
    fn ack_every_window_messages() {
        let mut w = AckWindow::default();
        assert!(!w.on_message(), "no window yet: no ACKs");
        w.set(3);
        let acks: Vec<bool> = (0..7).map(|_| w.on_message()).collect();
        assert_eq!(acks, [false, false, true, false, false, true, false]);
    }

    proptest! {
        #[test]
        fn framing_survives_any_split(
            msgs in prop::collection::vec((any::<u16>(), prop::collection::vec(any::<u8>(), 0..300)), 0..20),
            cuts in prop::collection::vec(1usize..64, 1..50),
        ) {
            let stream: Vec<u8> = msgs.iter().flat_map(|(k, b)| framed(*k, b)).collect();
            let mut f = Framer::default();
            let mut got = Vec::new();
            let mut pos = 0;
            let mut cut = cuts.iter().cycle();
            while pos < stream.len() {
                let end = (pos + cut.next().unwrap()).min(stream.len());
                f.push(&stream[pos..end]);
                pos = end;
                while let Some(m) = f.next_message().unwrap() {
                    got.push((m.kind, m.body));
                }
            }
            prop_assert_eq!(got, msgs);
            prop_assert_eq!(f.buffered(), 0);
        }

        #[test]
        fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
            let mut f = Framer::default();
            f.push(&bytes);
            while let Ok(Some(raw)) = f.next_message() {
                let _ = decode(ChannelKind::Main, raw.clone());
                let _ = decode(ChannelKind::Port, raw);
            }
        }
    }
}
