// SPDX-License-Identifier: MPL-2.0
//! The link handshake that opens every SPICE channel: `SpiceLinkMess` out, `SpiceLinkReply`
//! in (with the server's RSA key), the password ticket out (RSA-OAEP/SHA-1, always sent,
//! even empty: the server decrypts it whether or not ticketing is on), a u32 result in.

use rsa::pkcs8::DecodePublicKey;
use rsa::{Oaep, RsaPublicKey};

use crate::wire::{
    LINK_HEADER_LEN, LINK_MAGIC, MAX_PASSWORD_LEN, Reader, TICKET_PUBKEY_BYTES, Truncated,
    VERSION_MAJOR, VERSION_MINOR, common_cap, has_cap,
};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("not a SPICE server (link magic {0:#010x})")]
    Magic(u32),
    #[error("SPICE protocol {0}.x not supported (this client speaks 2.x)")]
    Version(u32),
    #[error("link reply of {0} bytes is larger than any SPICE server sends")]
    ReplyTooLarge(u32),
    #[error(transparent)]
    Truncated(#[from] Truncated),
    #[error("SPICE server refused the link: {0}")]
    Refused(LinkRefusal),
    #[error("the server does not offer {0}")]
    MissingCapability(&'static str),
    #[error("the server's public key is unusable: {0}")]
    PublicKey(String),
    #[error("password longer than {MAX_PASSWORD_LEN} bytes")]
    PasswordTooLong,
}

/// `SPICE_LINK_ERR_*` with a readable name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkRefusal(pub u32);

impl std::fmt::Display for LinkRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self.0 {
            1 => "error",
            2 => "invalid magic",
            3 => "invalid data",
            4 => "version mismatch",
            5 => "TLS required (need secured)",
            6 => "need unsecured",
            7 => "permission denied (wrong password?)",
            8 => "bad connection id",
            9 => "channel not available",
            _ => "unknown error",
        };
        write!(f, "{name} (code {})", self.0)
    }
}

/// Upper bound for the reply body: fixed part plus a generous number of capability words.
const MAX_REPLY_LEN: u32 = 4096;
const LINK_MESS_LEN: u32 = 18;

/// Link header + `SpiceLinkMess` + capability words for one channel.
pub fn link_message(
    connection_id: u32,
    channel_type: u8,
    channel_id: u8,
    channel_caps: &[u32],
) -> Vec<u8> {
    let common_caps = [(1 << common_cap::PROTOCOL_AUTH_SELECTION)
        | (1 << common_cap::AUTH_SPICE)
        | (1 << common_cap::MINI_HEADER)];
    let size = LINK_MESS_LEN + 4 * (common_caps.len() + channel_caps.len()) as u32;
    let mut out = Vec::with_capacity(LINK_HEADER_LEN + size as usize);
    for word in [LINK_MAGIC, VERSION_MAJOR, VERSION_MINOR, size] {
        out.extend_from_slice(&word.to_le_bytes());
    }
    out.extend_from_slice(&connection_id.to_le_bytes());
    out.push(channel_type);
    out.push(channel_id);
    out.extend_from_slice(&(common_caps.len() as u32).to_le_bytes());
    out.extend_from_slice(&(channel_caps.len() as u32).to_le_bytes());
    // Capabilities follow the fixed part; the offset is from the start of SpiceLinkMess.
    out.extend_from_slice(&LINK_MESS_LEN.to_le_bytes());
    for cap in common_caps.iter().chain(channel_caps) {
        out.extend_from_slice(&cap.to_le_bytes());
    }
    out
}

/// Validates the 16-byte link header and returns the size of the body that follows.
pub fn reply_body_len(header: &[u8; LINK_HEADER_LEN]) -> Result<usize, LinkError> {
    let mut r = Reader::new(header, "link header");
    let magic = r.u32()?;
    if magic != LINK_MAGIC {
        return Err(LinkError::Magic(magic));
    }
    let major = r.u32()?;
    if major != VERSION_MAJOR {
        return Err(LinkError::Version(major));
    }
    let _minor = r.u32()?;
    let size = r.u32()?;
    if size > MAX_REPLY_LEN {
        return Err(LinkError::ReplyTooLarge(size));
    }
    Ok(size as usize)
}

/// What the server said in `SpiceLinkReply`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkReply {
    pub public_key: Vec<u8>,
    pub common_caps: Vec<u32>,
    pub channel_caps: Vec<u32>,
}

pub fn parse_reply(body: &[u8]) -> Result<LinkReply, LinkError> {
    let mut r = Reader::new(body, "link reply");
    let error = r.u32()?;
    if error != 0 {
        return Err(LinkError::Refused(LinkRefusal(error)));
    }
    let public_key = r.take(TICKET_PUBKEY_BYTES)?.to_vec();
    let num_common = r.u32()? as usize;
    let num_channel = r.u32()? as usize;
    let caps_offset = r.u32()? as usize;
    let common_caps = r.u32s_at(caps_offset, num_common)?;
    let channel_caps = r.u32s_at(caps_offset + num_common * 4, num_channel)?;
    let reply = LinkReply {
        public_key,
        common_caps,
        channel_caps,
    };
    // This client only speaks mini headers and SPICE password auth.
    if !has_cap(&reply.common_caps, common_cap::MINI_HEADER) {
        return Err(LinkError::MissingCapability("mini headers"));
    }
    Ok(reply)
}

/// What the client sends after the reply: the auth mechanism (when the server negotiates
/// one) and the encrypted `password\0`.
pub fn auth_message(reply: &LinkReply, password: &str) -> Result<Vec<u8>, LinkError> {
    if password.len() > MAX_PASSWORD_LEN {
        return Err(LinkError::PasswordTooLong);
    }
    let key = RsaPublicKey::from_public_key_der(&reply.public_key)
        .map_err(|e| LinkError::PublicKey(e.to_string()))?;
    let mut ticket = password.as_bytes().to_vec();
    ticket.push(0);
    let encrypted = key
        .encrypt(&mut rand_core::OsRng, Oaep::new::<sha1::Sha1>(), &ticket)
        .map_err(|e| LinkError::PublicKey(e.to_string()))?;
    let mut out = Vec::with_capacity(4 + encrypted.len());
    if has_cap(&reply.common_caps, common_cap::PROTOCOL_AUTH_SELECTION) {
        if !has_cap(&reply.common_caps, common_cap::AUTH_SPICE) {
            return Err(LinkError::MissingCapability(
                "SPICE password authentication",
            ));
        }
        out.extend_from_slice(&common_cap::AUTH_SPICE.to_le_bytes());
    }
    out.extend_from_slice(&encrypted);
    Ok(out)
}

/// The final u32 of the handshake.
pub fn check_result(result: [u8; 4]) -> Result<(), LinkError> {
    match u32::from_le_bytes(result) {
        0 => Ok(()),
        code => Err(LinkError::Refused(LinkRefusal(code))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rsa::pkcs8::EncodePublicKey;
    use rsa::{RsaPrivateKey, pkcs8::DecodePrivateKey};

    /// A fixed 1024-bit test key (generating one in a debug build takes seconds).
    const TEST_KEY: &str = include_str!("../tests/data/test-key.pem");

    fn reply_body(error: u32, key: &[u8], common: u32) -> Vec<u8> {
        let mut b = error.to_le_bytes().to_vec();
        b.extend_from_slice(key);
        b.extend_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&(4 + TICKET_PUBKEY_BYTES as u32 + 12).to_le_bytes());
        b.extend_from_slice(&common.to_le_bytes());
        b
    }

    #[test]
    fn link_message_layout() {
        let m = link_message(7, 10, 2, &[]);
        assert_eq!(&m[..4], b"REDQ");
        assert_eq!(u32::from_le_bytes(m[12..16].try_into().unwrap()), 22);
        assert_eq!(m.len(), 16 + 22);
        assert_eq!(u32::from_le_bytes(m[16..20].try_into().unwrap()), 7);
        assert_eq!((m[20], m[21]), (10, 2));
        assert_eq!(u32::from_le_bytes(m[34..38].try_into().unwrap()), 0b1011);
    }

    #[test]
    fn ticket_decrypts_to_password_with_nul() {
        let private = RsaPrivateKey::from_pkcs8_pem(TEST_KEY).unwrap();
        let der = private
            .to_public_key()
            .to_public_key_der()
            .unwrap()
            .into_vec();
        assert_eq!(der.len(), TICKET_PUBKEY_BYTES);
        let reply = parse_reply(&reply_body(0, &der, 0b1011)).unwrap();
        let auth = auth_message(&reply, "s3cret").unwrap();
        assert_eq!(&auth[..4], &1u32.to_le_bytes(), "AUTH_SPICE mechanism");
        assert_eq!(auth.len(), 4 + 128);
        let plain = private
            .decrypt(Oaep::new::<sha1::Sha1>(), &auth[4..])
            .unwrap();
        assert_eq!(plain, b"s3cret\0");
        // Without auth selection the ticket goes alone.
        let reply = parse_reply(&reply_body(0, &der, 0b1000)).unwrap();
        assert_eq!(auth_message(&reply, "").unwrap().len(), 128);
    }

    #[test]
    fn refusals_and_bad_headers_are_errors() {
        assert_eq!(
            parse_reply(&reply_body(7, &[0; 162], 0b1011)),
            Err(LinkError::Refused(LinkRefusal(7)))
        );
        assert_eq!(
            parse_reply(&reply_body(0, &[0; 162], 0b0011)),
            Err(LinkError::MissingCapability("mini headers"))
        );
        let reply = parse_reply(&reply_body(0, &[0; 162], 0b1011)).unwrap();
        assert!(matches!(
            auth_message(&reply, ""),
            Err(LinkError::PublicKey(_))
        ));
        let mut h = [0u8; 16];
        h[..4].copy_from_slice(b"HTTP");
        assert!(matches!(reply_body_len(&h), Err(LinkError::Magic(_))));
        assert!(check_result([8, 0, 0, 0]).is_err());
        assert!(check_result([0; 4]).is_ok());
    }

    proptest! {
        #[test]
        fn any_reply_bytes_give_a_value_or_an_error(body in prop::collection::vec(any::<u8>(), 0..400)) {
            if let Ok(reply) = parse_reply(&body) {
                let _ = auth_message(&reply, "x");
            }
        }

        #[test]
        fn any_header_gives_a_value_or_an_error(h in any::<[u8; 16]>()) {
            let _ = reply_body_len(&h);
        }
    }
}
