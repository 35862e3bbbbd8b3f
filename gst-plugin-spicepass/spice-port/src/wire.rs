// SPDX-License-Identifier: MPL-2.0
//! Numbers of the SPICE protocol (spice-protocol `protocol.h`, `enums.h`) that a port-channel
//! client needs, and a bounds-checked little-endian reader. Everything on the wire is
//! little-endian and packed.

/// `"REDQ"` read as a little-endian u32.
pub const LINK_MAGIC: u32 = u32::from_le_bytes(*b"REDQ");
pub const VERSION_MAJOR: u32 = 2;
pub const VERSION_MINOR: u32 = 2;
/// Size of the DER SubjectPublicKeyInfo of the server's 1024-bit RSA key in the link reply.
pub const TICKET_PUBKEY_BYTES: usize = 162;
/// The longest password a SPICE server accepts.
pub const MAX_PASSWORD_LEN: usize = 60;

/// Common capability bits (first capability word of every channel).
pub mod common_cap {
    pub const PROTOCOL_AUTH_SELECTION: u32 = 0;
    pub const AUTH_SPICE: u32 = 1;
    pub const MINI_HEADER: u32 = 3;
}

pub mod channel_type {
    pub const MAIN: u8 = 1;
    pub const PORT: u8 = 10;
}

/// Server → client messages every channel understands.
pub mod msg {
    pub const MIGRATE: u16 = 1;
    pub const SET_ACK: u16 = 3;
    pub const PING: u16 = 4;
    pub const DISCONNECTING: u16 = 6;
    pub const NOTIFY: u16 = 7;
    pub const MAIN_INIT: u16 = 103;
    pub const MAIN_CHANNELS_LIST: u16 = 104;
    pub const SPICEVMC_DATA: u16 = 101;
    pub const SPICEVMC_COMPRESSED_DATA: u16 = 102;
    pub const PORT_INIT: u16 = 201;
    pub const PORT_EVENT: u16 = 202;
}

/// Client → server messages.
pub mod msgc {
    pub const ACK_SYNC: u16 = 1;
    pub const ACK: u16 = 2;
    pub const PONG: u16 = 3;
    pub const DISCONNECTING: u16 = 6;
    pub const MAIN_ATTACH_CHANNELS: u16 = 104;
    pub const SPICEVMC_DATA: u16 = 101;
    pub const PORT_EVENT: u16 = 201;
}

/// `SPICE_PORT_EVENT_*`.
pub mod port_event {
    pub const OPENED: u8 = 0;
    pub const CLOSED: u8 = 1;
    pub const BREAK: u8 = 2;
}

/// Mini header: `u16 type, u32 size`.
pub const MINI_HEADER_LEN: usize = 6;
/// Link header: `u32 magic, u32 major, u32 minor, u32 size`.
pub const LINK_HEADER_LEN: usize = 16;

/// Why bytes could not be read as the structure expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: needs {needed} bytes at offset {offset}, message has {len}")]
pub struct Truncated {
    pub what: &'static str,
    pub offset: usize,
    pub needed: usize,
    pub len: usize,
}

/// Reads little-endian fields from a byte slice; every read is bounds-checked.
pub struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8], what: &'static str) -> Self {
        Self {
            bytes,
            pos: 0,
            what,
        }
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8], Truncated> {
        let slice = self.bytes_at(self.pos, n)?;
        self.pos += n;
        Ok(slice)
    }

    /// `n` bytes at an absolute offset (SPICE "pointer" fields are offsets in the message).
    pub fn bytes_at(&self, offset: usize, n: usize) -> Result<&'a [u8], Truncated> {
        offset
            .checked_add(n)
            .and_then(|end| self.bytes.get(offset..end))
            .ok_or(Truncated {
                what: self.what,
                offset,
                needed: n,
                len: self.bytes.len(),
            })
    }

    pub fn u8(&mut self) -> Result<u8, Truncated> {
        Ok(self.take(1)?[0])
    }

    pub fn u16(&mut self) -> Result<u16, Truncated> {
        Ok(u16::from_le_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }

    pub fn u32(&mut self) -> Result<u32, Truncated> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    pub fn u64(&mut self) -> Result<u64, Truncated> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    /// `count` u32 capability words at an absolute offset.
    pub fn u32s_at(&self, offset: usize, count: usize) -> Result<Vec<u32>, Truncated> {
        let bytes = self.bytes_at(offset, count.saturating_mul(4))?;
        Ok(bytes
            .chunks_exact(4)
            .map(|w| u32::from_le_bytes(w.try_into().expect("4 bytes")))
            .collect())
    }
}

/// Whether capability `bit` is set in a capability word list.
pub fn has_cap(caps: &[u32], bit: u32) -> bool {
    caps.get((bit / 32) as usize)
        .is_some_and(|word| word & (1 << (bit % 32)) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_is_redq() {
        assert_eq!(LINK_MAGIC.to_le_bytes(), *b"REDQ");
    }

    #[test]
    fn reader_refuses_to_run_past_the_end() {
        let mut r = Reader::new(&[1, 0, 0], "test");
        assert_eq!(r.u16().unwrap(), 1);
        assert!(r.u16().is_err());
        assert!(r.bytes_at(usize::MAX, 2).is_err());
        assert!(r.u32s_at(1, usize::MAX).is_err());
    }

    #[test]
    fn caps_are_bits_in_words() {
        assert!(has_cap(&[0b1000], 3));
        assert!(!has_cap(&[0b1000], 2));
        assert!(!has_cap(&[], 0));
        assert!(has_cap(&[0, 1], 32));
    }
}
