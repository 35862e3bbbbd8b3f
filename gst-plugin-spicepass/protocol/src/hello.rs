//! The handshake: each end sends one [`Hello`] as the very first bytes of a
//! connection, without waiting for the peer's (no extra round trip), then
//! checks the peer's with [`negotiate`].
//!
//! The first 14 bytes (magic, major, minor, length of the rest) are frozen for
//! every future version, so any two versions can always tell each other
//! "we do not match" instead of misparsing.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::LazyLock;
use std::time::Duration;

use crate::error::ProtocolError;

/// First eight bytes on every spicepass connection, in both directions.
pub const MAGIC: [u8; 8] = *b"SPCPASS\n";

/// The version this crate speaks.
pub const VERSION: Version = Version { major: 1, minor: 1 };

/// Bytes before the variable part of a hello: magic, major, minor, rest length.
pub const HELLO_PREFIX_LEN: usize = 14;

/// Upper bound of a hello's variable part (role .. extensions).
pub const MAX_HELLO_REST_LEN: usize = 1024;

/// Fixed fields of the variable part, up to and including `token_len`.
const HELLO_REST_FIXED_LEN: usize = 1 + 8 + 8 + 4 + 8 + 4 + 1;

/// Longest auth token.
pub const MAX_AUTH_TOKEN_LEN: usize = 255;

/// Protocol version: majors must be equal, the lower minor wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// Incompatible framing changes.
    pub major: u16,
    /// Additive changes: new message kinds, new trailing fields.
    pub minor: u16,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Which end of the media path a peer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// `spicepasssink`, in the guest: sends buffers and downstream events.
    Sink,
    /// `spicepasssrc`, on the client: sends upstream events, reports, credits.
    Src,
}

impl Role {
    /// The role the peer must have.
    pub fn peer(self) -> Role {
        match self {
            Role::Sink => Role::Src,
            Role::Src => Role::Sink,
        }
    }

    fn to_wire(self) -> u8 {
        match self {
            Role::Sink => 0,
            Role::Src => 1,
        }
    }

    fn from_wire(value: u8) -> Result<Role, ProtocolError> {
        match value {
            0 => Ok(Role::Sink),
            1 => Ok(Role::Src),
            other => Err(ProtocolError::InvalidValue {
                field: "hello.role",
                value: other.into(),
            }),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Sink => "sink (guest)",
            Role::Src => "src (client)",
        })
    }
}

/// Optional features; the session uses the intersection of both hellos.
/// Unknown bits are ignored, so new features only need a new bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Capabilities(pub u64);

impl Capabilities {
    /// Upstream events (seek, QoS, navigation...) are forwarded.
    pub const UPSTREAM_EVENTS: Capabilities = Capabilities(1 << 0);
    /// The src sends `ClientReport`s (position, latency).
    pub const CLIENT_REPORTS: Capabilities = Capabilities(1 << 1);
    /// Buffers are flow-controlled by `Credit` messages.
    pub const CREDITS: Capabilities = Capabilities(1 << 2);
    /// Both ends send `Heartbeat`s and time out a silent peer.
    pub const HEARTBEAT: Capabilities = Capabilities(1 << 3);
    /// The sink sends `WindowGeometry` (issue 8).
    pub const WINDOW_GEOMETRY: Capabilities = Capabilities(1 << 4);
    /// Large payloads may travel as references to sealed memfd segments passed
    /// with `SCM_RIGHTS` (`Segment`, `SharedBuffer`, `RetireSegment`,
    /// `Release`). Only meaningful on unix sockets: an end offers it only there.
    pub const MEMFD_PAYLOADS: Capabilities = Capabilities(1 << 5);
    /// Every capability this version defines.
    pub const ALL: Capabilities = Capabilities(0b11_1111);

    /// True if every bit of `other` is set.
    pub fn contains(self, other: Capabilities) -> bool {
        self.0 & other.0 == other.0
    }

    /// Bits set in both.
    pub fn intersection(self, other: Capabilities) -> Capabilities {
        Capabilities(self.0 & other.0)
    }
}

/// What a receiver accepts; sent in the hello so the sender can refuse early.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limits {
    /// Largest message body (everything but a buffer's payload), in bytes.
    pub max_body: u32,
    /// Largest buffer payload, in bytes.
    pub max_payload: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            // Room for a tag event with cover art, a big stream-collection.
            max_body: 1 << 20,
            // A 4K RGBA frame is 33 MB.
            max_payload: 64 << 20,
        }
    }
}

/// The handshake message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Hello {
    /// The sender's protocol version.
    pub version: Version,
    /// The sender's role.
    pub role: Role,
    /// Features the sender supports.
    pub capabilities: Capabilities,
    /// Fresh for every (re)connection (see PROTOCOL.md §Handshake).
    pub session_id: u64,
    /// What the sender accepts.
    pub limits: Limits,
    /// The sender sends something at least this often (0: no heartbeats).
    pub heartbeat_interval_ms: u32,
    /// Shared secret proving the sender is allowed in (≤ 255 bytes).
    pub auth_token: Option<Vec<u8>>,
}

impl Hello {
    /// A hello of this crate's version with every capability, default
    /// limits, a 1 s heartbeat and no token.
    pub fn new(role: Role, session_id: u64) -> Hello {
        Hello {
            version: VERSION,
            role,
            capabilities: Capabilities::ALL,
            session_id,
            limits: Limits::default(),
            heartbeat_interval_ms: 1000,
            auth_token: None,
        }
    }

    /// Appends the wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), ProtocolError> {
        let token = self.auth_token.as_deref().unwrap_or_default();
        if token.len() > MAX_AUTH_TOKEN_LEN {
            return Err(ProtocolError::TooLarge {
                field: "hello.auth_token",
                value: token.len() as u64,
                max: MAX_AUTH_TOKEN_LEN as u64,
            });
        }
        let rest_len = HELLO_REST_FIXED_LEN + token.len();
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&self.version.major.to_le_bytes());
        out.extend_from_slice(&self.version.minor.to_le_bytes());
        out.extend_from_slice(&(rest_len as u16).to_le_bytes());
        out.push(self.role.to_wire());
        out.extend_from_slice(&self.capabilities.0.to_le_bytes());
        out.extend_from_slice(&self.session_id.to_le_bytes());
        out.extend_from_slice(&self.limits.max_body.to_le_bytes());
        out.extend_from_slice(&self.limits.max_payload.to_le_bytes());
        out.extend_from_slice(&self.heartbeat_interval_ms.to_le_bytes());
        out.push(token.len() as u8);
        out.extend_from_slice(token);
        Ok(())
    }

    /// Parses a hello from the start of `bytes`: `Ok(None)` if more bytes are
    /// needed, else the hello and the bytes it used. Bad magic and a major
    /// version mismatch are reported as soon as the bytes that show them arrive.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Option<(Hello, usize)>, ProtocolError> {
        let seen = bytes.len().min(MAGIC.len());
        if bytes[..seen] != MAGIC[..seen] {
            return Err(ProtocolError::BadMagic {
                expected: MAGIC,
                got: bytes[..seen].to_vec(),
            });
        }
        if bytes.len() < HELLO_PREFIX_LEN {
            return Ok(None);
        }
        let le16 = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]);
        let version = Version {
            major: le16(8),
            minor: le16(10),
        };
        if version.major != VERSION.major {
            return Err(ProtocolError::VersionMismatch {
                ours: VERSION,
                theirs: version,
            });
        }
        let rest_len = usize::from(le16(12));
        if rest_len > MAX_HELLO_REST_LEN {
            return Err(ProtocolError::TooLarge {
                field: "hello.rest_len",
                value: rest_len as u64,
                max: MAX_HELLO_REST_LEN as u64,
            });
        }
        if rest_len < HELLO_REST_FIXED_LEN {
            return Err(ProtocolError::Truncated {
                message: "hello",
                field: "hello.token_len",
            });
        }
        let Some(rest) = bytes.get(HELLO_PREFIX_LEN..HELLO_PREFIX_LEN + rest_len) else {
            return Ok(None);
        };
        let u32_at =
            |at: usize| u32::from_le_bytes(rest[at..at + 4].try_into().unwrap_or_default());
        let u64_at =
            |at: usize| u64::from_le_bytes(rest[at..at + 8].try_into().unwrap_or_default());
        let role = Role::from_wire(rest[0])?;
        let token_len = usize::from(rest[33]);
        let token = rest
            .get(HELLO_REST_FIXED_LEN..HELLO_REST_FIXED_LEN + token_len)
            .ok_or(ProtocolError::Truncated {
                message: "hello",
                field: "hello.auth_token",
            })?;
        let hello = Hello {
            version,
            role,
            capabilities: Capabilities(u64_at(1)),
            session_id: u64_at(9),
            limits: Limits {
                max_body: u32_at(17),
                max_payload: u64_at(21),
            },
            heartbeat_interval_ms: u32_at(29),
            auth_token: (token_len > 0).then(|| token.to_vec()),
        };
        // Bytes after the token are extensions of a later minor version: skipped.
        Ok(Some((hello, HELLO_PREFIX_LEN + rest_len)))
    }
}

/// What both ends agreed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Common version: same major, lower minor.
    pub version: Version,
    /// Capabilities both support.
    pub capabilities: Capabilities,
    /// Our session id.
    pub local_session_id: u64,
    /// The peer's session id.
    pub peer_session_id: u64,
    /// Limits the peer enforces on what we send.
    pub peer_limits: Limits,
    /// How often the peer promised to send something (None: never).
    pub peer_heartbeat_interval: Option<Duration>,
}

/// Random per process: two runs of the same program never reuse session ids.
static PROCESS_NONCE: LazyLock<u32> = LazyLock::new(|| {
    // std seeds every RandomState from the OS; no extra dependency needed.
    let random = RandomState::new().hash_one(std::process::id());
    (random ^ (random >> 32)) as u32
});

/// A session id for the `connection`-th connection of this process: high
/// 32 bits random per process, low 32 bits the connection counter, so ids
/// differ across reconnections and across restarts.
pub fn session_id(connection: u32) -> u64 {
    (u64::from(*PROCESS_NONCE) << 32) | u64::from(connection)
}

/// Checks the peer's hello against ours. `expected_token`: if set, the peer
/// must present exactly this token.
pub fn negotiate(
    ours: &Hello,
    theirs: &Hello,
    expected_token: Option<&[u8]>,
) -> Result<Session, ProtocolError> {
    if ours.version.major != theirs.version.major {
        return Err(ProtocolError::VersionMismatch {
            ours: ours.version,
            theirs: theirs.version,
        });
    }
    if theirs.role != ours.role.peer() {
        return Err(ProtocolError::RoleMismatch {
            ours: ours.role,
            theirs: theirs.role,
        });
    }
    if let Some(expected) = expected_token {
        match theirs.auth_token.as_deref() {
            None => {
                return Err(ProtocolError::AuthFailed {
                    reason: "the peer sent no auth token",
                });
            }
            Some(token) if !constant_time_eq(token, expected) => {
                return Err(ProtocolError::AuthFailed {
                    reason: "the peer's auth token does not match",
                });
            }
            Some(_) => {}
        }
    }
    Ok(Session {
        version: ours.version.min(theirs.version),
        capabilities: ours.capabilities.intersection(theirs.capabilities),
        local_session_id: ours.session_id,
        peer_session_id: theirs.session_id,
        peer_limits: theirs.limits,
        peer_heartbeat_interval: (theirs.heartbeat_interval_ms > 0)
            .then(|| Duration::from_millis(theirs.heartbeat_interval_ms.into())),
    })
}

/// Compares without an early exit so the time taken does not tell an
/// attacker how many leading bytes were right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(hello: &Hello) -> Vec<u8> {
        let mut out = Vec::new();
        hello.encode(&mut out).unwrap();
        out
    }

    #[test]
    fn round_trip_with_and_without_token() {
        let mut hello = Hello::new(Role::Src, 0x1234_5678_9abc_def0);
        let bytes = encoded(&hello);
        assert_eq!(Hello::parse(&bytes), Ok(Some((hello.clone(), bytes.len()))));
        hello.auth_token = Some(b"secret".to_vec());
        hello.capabilities = Capabilities::CREDITS;
        let bytes = encoded(&hello);
        assert_eq!(Hello::parse(&bytes), Ok(Some((hello, bytes.len()))));
    }

    #[test]
    fn every_prefix_needs_more() {
        let bytes = encoded(&Hello::new(Role::Sink, 7));
        for cut in 0..bytes.len() {
            assert_eq!(Hello::parse(&bytes[..cut]), Ok(None), "cut at {cut}");
        }
    }

    #[test]
    fn bad_magic_is_seen_on_the_first_wrong_byte() {
        let err = Hello::parse(b"GET / HTTP/1.1\r\n").unwrap_err();
        assert_eq!(
            err,
            ProtocolError::BadMagic {
                expected: MAGIC,
                got: b"GET / HT".to_vec()
            }
        );
        assert!(matches!(
            Hello::parse(b"SPX"),
            Err(ProtocolError::BadMagic { .. })
        ));
        assert!(err.to_string().contains("bad magic"));
    }

    #[test]
    fn major_mismatch_names_both_versions() {
        let mut hello = Hello::new(Role::Sink, 1);
        hello.version = Version { major: 2, minor: 3 };
        let bytes = encoded(&hello);
        let err = Hello::parse(&bytes[..HELLO_PREFIX_LEN]).unwrap_err();
        assert_eq!(
            err,
            ProtocolError::VersionMismatch {
                ours: VERSION,
                theirs: Version { major: 2, minor: 3 }
            }
        );
        assert_eq!(
            err.to_string(),
            "protocol version mismatch: we speak 1.1, the peer speaks 2.3"
        );
    }

    #[test]
    fn newer_minor_with_extensions_is_accepted() {
        let mut hello = Hello::new(Role::Sink, 1);
        hello.version.minor = 9;
        let mut bytes = encoded(&hello);
        // A later minor appends a field and grows rest_len accordingly.
        bytes.extend_from_slice(&[0xaa, 0xbb]);
        let rest_len = u16::from_le_bytes([bytes[12], bytes[13]]) + 2;
        bytes[12..14].copy_from_slice(&rest_len.to_le_bytes());
        bytes.push(0x42); // first byte of the next message: not consumed
        let (parsed, used) = Hello::parse(&bytes).unwrap().unwrap();
        assert_eq!(parsed, hello);
        assert_eq!(used, bytes.len() - 1);
    }

    #[test]
    fn oversized_and_undersized_rest() {
        let mut bytes = encoded(&Hello::new(Role::Sink, 1));
        bytes[12..14].copy_from_slice(&2000u16.to_le_bytes());
        assert!(matches!(
            Hello::parse(&bytes),
            Err(ProtocolError::TooLarge {
                field: "hello.rest_len",
                ..
            })
        ));
        bytes[12..14].copy_from_slice(&3u16.to_le_bytes());
        assert!(matches!(
            Hello::parse(&bytes),
            Err(ProtocolError::Truncated { .. })
        ));
    }

    #[test]
    fn token_longer_than_rest_is_rejected() {
        let mut bytes = encoded(&Hello::new(Role::Sink, 1));
        let last = bytes.len() - 1;
        bytes[last] = 5; // token_len = 5, but rest_len has room for none
        assert!(matches!(
            Hello::parse(&bytes),
            Err(ProtocolError::Truncated {
                field: "hello.auth_token",
                ..
            })
        ));
    }

    #[test]
    fn bad_role() {
        let mut bytes = encoded(&Hello::new(Role::Sink, 1));
        bytes[HELLO_PREFIX_LEN] = 7;
        assert_eq!(
            Hello::parse(&bytes),
            Err(ProtocolError::InvalidValue {
                field: "hello.role",
                value: 7
            })
        );
    }

    #[test]
    fn token_too_long_to_encode() {
        let mut hello = Hello::new(Role::Src, 1);
        hello.auth_token = Some(vec![0; 256]);
        assert!(matches!(
            hello.encode(&mut Vec::new()),
            Err(ProtocolError::TooLarge { .. })
        ));
    }

    #[test]
    fn session_ids_differ_per_connection() {
        assert_ne!(session_id(1), session_id(2));
        assert_eq!(session_id(1) >> 32, session_id(2) >> 32);
        assert_eq!(session_id(7) & 0xffff_ffff, 7);
    }

    #[test]
    fn negotiation() {
        let mut sink = Hello::new(Role::Sink, 10);
        let mut src = Hello::new(Role::Src, 20);
        src.version.minor = 4;
        src.capabilities = Capabilities(Capabilities::CREDITS.0 | 1 << 40);
        src.auth_token = Some(b"tok".to_vec());
        src.heartbeat_interval_ms = 0;
        let session = negotiate(&sink, &src, Some(b"tok")).unwrap();
        assert_eq!(session.version, VERSION);
        assert_eq!(session.capabilities, Capabilities::CREDITS);
        assert_eq!(session.local_session_id, 10);
        assert_eq!(session.peer_session_id, 20);
        assert_eq!(session.peer_heartbeat_interval, None);
        assert!(matches!(
            negotiate(&sink, &src, Some(b"tok2")),
            Err(ProtocolError::AuthFailed { .. })
        ));
        src.auth_token = None;
        assert!(matches!(
            negotiate(&sink, &src, Some(b"tok")),
            Err(ProtocolError::AuthFailed { .. })
        ));
        assert_eq!(
            negotiate(&sink, &sink.clone(), None),
            Err(ProtocolError::RoleMismatch {
                ours: Role::Sink,
                theirs: Role::Sink
            })
        );
        sink.version.major = 3;
        assert!(matches!(
            negotiate(&src, &sink, None),
            Err(ProtocolError::VersionMismatch { .. })
        ));
    }
}
