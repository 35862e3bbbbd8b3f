// SPDX-License-Identifier: MPL-2.0
//! Control messages exchanged between a writer (sink) and its readers (srcs),
//! and their binary encoding.
//!
//! One message per `SOCK_SEQPACKET` packet, little-endian, no padding:
//!
//! ```text
//! 'S' 'Z' kind:u8 reserved:u8(=0) body...
//! ```
//!
//! Bodies are described on each message type and in `PROTOCOL.md`. Decoding is
//! total: any byte string either decodes to a [`Message`] or yields a
//! [`DecodeError`]; it never panics and never allocates more than the input
//! length.

use thiserror::Error;

/// Version spoken by this implementation; both sides must speak the same.
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest encoded message, header included. Events whose serialized form is
/// larger cannot be sent (the element reports that); it stays well below the
/// default unix socket send buffer so a packet always fits.
pub const MAX_MESSAGE_SIZE: usize = 64 * 1024;

/// Number of video planes a descriptor can describe (GStreamer's
/// `GST_VIDEO_MAX_PLANES`).
pub const MAX_PLANES: usize = 4;

const MAGIC: [u8; 2] = *b"SZ";

/// Identifies one memfd segment for the lifetime of a writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SegmentId(pub u32);

/// Identifies one transmission of a buffer; the reader quotes it back in
/// [`Message::Release`]. Unique for the lifetime of a writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BufferId(pub u64);

/// Which end of the connection a peer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Writer,
    Reader,
}

/// First message in each direction.
///
/// Body: `version:u32 role:u8 credit:u32 features:u64`. Bytes after that are
/// ignored so that a future version's hello still decodes far enough to report
/// a version mismatch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    pub version: u32,
    pub role: Role,
    /// Reader: how many buffers it wants in flight at most. Writer: the number
    /// it grants (it may lower the request).
    pub credit: u32,
    /// Reserved for optional features; 0 in version 1.
    pub features: u64,
}

/// Writer → reader: a new segment; its memfd travels as the packet's single
/// `SCM_RIGHTS` fd. Body: `segment:u32 size:u64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewSegment {
    pub segment: SegmentId,
    pub size: u64,
}

/// Plane layout of a raw video frame inside a buffer, mirroring `GstVideoMeta`.
///
/// Body: `format:u32 width:u32 height:u32 n_planes:u8 offsets:[u64;4] strides:[i32;4]`.
/// Unused planes are encoded as zeros.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoLayout {
    /// `GstVideoFormat` number.
    pub format: u32,
    pub width: u32,
    pub height: u32,
    /// 1..=4.
    pub n_planes: u8,
    /// Plane offsets, relative to the buffer start.
    pub offsets: [u64; MAX_PLANES],
    pub strides: [i32; MAX_PLANES],
}

/// Writer → reader: one buffer, living at `offset..offset+size` of `segment`.
///
/// Body: `buffer:u64 segment:u32 offset:u64 size:u64 pts:u64 dts:u64
/// duration:u64 offset_start:u64 offset_end:u64 flags:u32 has_video:u8
/// [VideoLayout]`. Absent times and offsets are `u64::MAX` on the wire, the
/// same as `GST_CLOCK_TIME_NONE` / `GST_BUFFER_OFFSET_NONE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferDescriptor {
    pub buffer: BufferId,
    pub segment: SegmentId,
    pub offset: u64,
    pub size: u64,
    pub pts: Option<u64>,
    pub dts: Option<u64>,
    pub duration: Option<u64>,
    /// `GST_BUFFER_OFFSET`.
    pub offset_start: Option<u64>,
    /// `GST_BUFFER_OFFSET_END`.
    pub offset_end: Option<u64>,
    /// `GstBufferFlags` bits.
    pub flags: u32,
    pub video: Option<VideoLayout>,
}

/// An in-band serialized event.
///
/// Body: `event_type:u32 seqnum:u32 flags:u8 structure:str` where `str` is
/// `len:u32` + UTF-8 bytes and flag bit 0 = sticky. `structure` is the event's
/// structure serialized by the element (a caps event carries its caps in it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventMessage {
    /// `GstEventType` number (its low byte holds GStreamer's type flags; its
    /// order is GStreamer's sticky-event order).
    pub event_type: u32,
    pub seqnum: u32,
    pub sticky: bool,
    pub structure: String,
}

/// Why a peer closes the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoodbyeReason {
    /// Orderly stop (state change to NULL/READY).
    Shutdown,
    /// The hello versions differ.
    VersionMismatch,
    /// The peer broke the protocol (bad message, unknown buffer id…).
    ProtocolError,
    /// The writer disconnects a reader that stayed at its credit limit too long.
    SlowReader,
}

/// Last message before closing. Body: `reason:u8 message:str`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Goodbye {
    pub reason: GoodbyeReason,
    /// Human-readable detail for the peer's error message.
    pub message: String,
}

/// A control message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Hello(Hello),
    NewSegment(NewSegment),
    /// Writer → reader: no new buffers will use this segment; the reader drops
    /// its table entry (buffers still held keep the mapping alive). Body: `segment:u32`.
    RetireSegment(SegmentId),
    Buffer(BufferDescriptor),
    /// Reader → writer: the reader no longer uses this buffer. Body: `buffer:u64`.
    Release(BufferId),
    Event(EventMessage),
    Goodbye(Goodbye),
}

/// The kind byte of each message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum MessageKind {
    Hello = 1,
    NewSegment = 2,
    RetireSegment = 3,
    Buffer = 4,
    Release = 5,
    Event = 6,
    Goodbye = 7,
}

impl MessageKind {
    fn from_u8(value: u8) -> Option<Self> {
        Some(match value {
            1 => Self::Hello,
            2 => Self::NewSegment,
            3 => Self::RetireSegment,
            4 => Self::Buffer,
            5 => Self::Release,
            6 => Self::Event,
            7 => Self::Goodbye,
            _ => return None,
        })
    }
}

/// Why bytes did not decode to a [`Message`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("message of {len} bytes exceeds the maximum of {MAX_MESSAGE_SIZE}")]
    TooLarge { len: usize },
    #[error("message truncated: {field} needs {need} more bytes, {have} left")]
    Truncated {
        field: &'static str,
        need: usize,
        have: usize,
    },
    #[error("bad magic {found:02x?}, not a shmzero message")]
    BadMagic { found: [u8; 2] },
    #[error("unknown message kind {0}")]
    UnknownKind(u8),
    #[error("invalid value {value} for {field}")]
    InvalidField { field: &'static str, value: u64 },
    #[error("string field {field} is not UTF-8")]
    InvalidUtf8 { field: &'static str },
    #[error("{count} unexpected trailing bytes after a {kind:?} message")]
    TrailingBytes { kind: MessageKind, count: usize },
}

/// Why a message could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EncodeError {
    #[error("{kind:?} message would be {len} bytes, the maximum is {MAX_MESSAGE_SIZE}")]
    TooLarge { kind: MessageKind, len: usize },
    #[error("invalid value {value} for {field}")]
    InvalidField { field: &'static str, value: u64 },
}

impl Message {
    pub fn kind(&self) -> MessageKind {
        match self {
            Message::Hello(_) => MessageKind::Hello,
            Message::NewSegment(_) => MessageKind::NewSegment,
            Message::RetireSegment(_) => MessageKind::RetireSegment,
            Message::Buffer(_) => MessageKind::Buffer,
            Message::Release(_) => MessageKind::Release,
            Message::Event(_) => MessageKind::Event,
            Message::Goodbye(_) => MessageKind::Goodbye,
        }
    }

    /// Whether this message travels with exactly one fd (and all others with none).
    pub fn carries_fd(&self) -> bool {
        matches!(self, Message::NewSegment(_))
    }

    /// Appends the encoding of `self` to `out` (cleared first).
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        out.clear();
        out.extend_from_slice(&MAGIC);
        out.push(self.kind() as u8);
        out.push(0);
        let mut w = Writer(out);
        match self {
            Message::Hello(h) => {
                w.u32(h.version);
                w.u8(match h.role {
                    Role::Writer => 0,
                    Role::Reader => 1,
                });
                w.u32(h.credit);
                w.u64(h.features);
            }
            Message::NewSegment(s) => {
                w.u32(s.segment.0);
                w.u64(s.size);
            }
            Message::RetireSegment(id) => w.u32(id.0),
            Message::Buffer(b) => encode_buffer(&mut w, b)?,
            Message::Release(id) => w.u64(id.0),
            Message::Event(e) => {
                w.u32(e.event_type);
                w.u32(e.seqnum);
                w.u8(u8::from(e.sticky));
                w.str(&e.structure);
            }
            Message::Goodbye(g) => {
                w.u8(match g.reason {
                    GoodbyeReason::Shutdown => 0,
                    GoodbyeReason::VersionMismatch => 1,
                    GoodbyeReason::ProtocolError => 2,
                    GoodbyeReason::SlowReader => 3,
                });
                w.str(&g.message);
            }
        }
        if out.len() > MAX_MESSAGE_SIZE {
            return Err(EncodeError::TooLarge {
                kind: self.kind(),
                len: out.len(),
            });
        }
        Ok(())
    }

    /// Encodes into a new vector.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(128);
        self.encode_into(&mut out)?;
        Ok(out)
    }

    /// Decodes one complete message.
    pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
        if bytes.len() > MAX_MESSAGE_SIZE {
            return Err(DecodeError::TooLarge { len: bytes.len() });
        }
        let mut r = Reader(bytes);
        let magic = r.array::<2>("magic")?;
        if magic != MAGIC {
            return Err(DecodeError::BadMagic { found: magic });
        }
        let kind_byte = r.u8("kind")?;
        let kind = MessageKind::from_u8(kind_byte).ok_or(DecodeError::UnknownKind(kind_byte))?;
        let reserved = r.u8("reserved")?;
        if reserved != 0 {
            return Err(DecodeError::InvalidField {
                field: "reserved",
                value: reserved.into(),
            });
        }
        let message = match kind {
            MessageKind::Hello => {
                let version = r.u32("hello.version")?;
                let role = match r.u8("hello.role")? {
                    0 => Role::Writer,
                    1 => Role::Reader,
                    other => {
                        return Err(DecodeError::InvalidField {
                            field: "hello.role",
                            value: other.into(),
                        });
                    }
                };
                let credit = r.u32("hello.credit")?;
                let features = r.u64("hello.features")?;
                // Later versions may append fields: ignore them so the
                // version check can still report the mismatch.
                r.0 = &[];
                Message::Hello(Hello {
                    version,
                    role,
                    credit,
                    features,
                })
            }
            MessageKind::NewSegment => {
                let segment = SegmentId(r.u32("segment")?);
                let size = r.u64("segment.size")?;
                if size == 0 {
                    return Err(DecodeError::InvalidField {
                        field: "segment.size",
                        value: 0,
                    });
                }
                Message::NewSegment(NewSegment { segment, size })
            }
            MessageKind::RetireSegment => Message::RetireSegment(SegmentId(r.u32("segment")?)),
            MessageKind::Buffer => Message::Buffer(decode_buffer(&mut r)?),
            MessageKind::Release => Message::Release(BufferId(r.u64("buffer")?)),
            MessageKind::Event => {
                let event_type = r.u32("event.type")?;
                let seqnum = r.u32("event.seqnum")?;
                let flags = r.u8("event.flags")?;
                if flags & !1 != 0 {
                    return Err(DecodeError::InvalidField {
                        field: "event.flags",
                        value: flags.into(),
                    });
                }
                let structure = r.str("event.structure")?;
                Message::Event(EventMessage {
                    event_type,
                    seqnum,
                    sticky: flags & 1 != 0,
                    structure,
                })
            }
            MessageKind::Goodbye => {
                let reason = match r.u8("goodbye.reason")? {
                    0 => GoodbyeReason::Shutdown,
                    1 => GoodbyeReason::VersionMismatch,
                    2 => GoodbyeReason::ProtocolError,
                    3 => GoodbyeReason::SlowReader,
                    other => {
                        return Err(DecodeError::InvalidField {
                            field: "goodbye.reason",
                            value: other.into(),
                        });
                    }
                };
                let message = r.str("goodbye.message")?;
                Message::Goodbye(Goodbye { reason, message })
            }
        };
        if !r.0.is_empty() {
            return Err(DecodeError::TrailingBytes {
                kind,
                count: r.0.len(),
            });
        }
        Ok(message)
    }
}

fn option_to_wire(value: Option<u64>) -> u64 {
    value.unwrap_or(u64::MAX)
}

fn option_from_wire(value: u64) -> Option<u64> {
    (value != u64::MAX).then_some(value)
}

fn encode_buffer(w: &mut Writer<'_>, b: &BufferDescriptor) -> Result<(), EncodeError> {
    // `Some(u64::MAX)` would come back as `None`: refuse rather than alter it.
    for (field, value) in [
        ("buffer.pts", b.pts),
        ("buffer.dts", b.dts),
        ("buffer.duration", b.duration),
        ("buffer.offset_start", b.offset_start),
        ("buffer.offset_end", b.offset_end),
    ] {
        if value == Some(u64::MAX) {
            return Err(EncodeError::InvalidField {
                field,
                value: u64::MAX,
            });
        }
    }
    w.u64(b.buffer.0);
    w.u32(b.segment.0);
    w.u64(b.offset);
    w.u64(b.size);
    w.u64(option_to_wire(b.pts));
    w.u64(option_to_wire(b.dts));
    w.u64(option_to_wire(b.duration));
    w.u64(option_to_wire(b.offset_start));
    w.u64(option_to_wire(b.offset_end));
    w.u32(b.flags);
    match &b.video {
        None => w.u8(0),
        Some(v) => {
            if v.n_planes == 0 || usize::from(v.n_planes) > MAX_PLANES {
                return Err(EncodeError::InvalidField {
                    field: "video.n_planes",
                    value: v.n_planes.into(),
                });
            }
            w.u8(1);
            w.u32(v.format);
            w.u32(v.width);
            w.u32(v.height);
            w.u8(v.n_planes);
            let used = usize::from(v.n_planes);
            for (i, offset) in v.offsets.iter().enumerate() {
                w.u64(if i < used { *offset } else { 0 });
            }
            for (i, stride) in v.strides.iter().enumerate() {
                w.u32(if i < used { *stride as u32 } else { 0 });
            }
        }
    }
    Ok(())
}

fn decode_buffer(r: &mut Reader<'_>) -> Result<BufferDescriptor, DecodeError> {
    let buffer = BufferId(r.u64("buffer.id")?);
    let segment = SegmentId(r.u32("buffer.segment")?);
    let offset = r.u64("buffer.offset")?;
    let size = r.u64("buffer.size")?;
    if offset.checked_add(size).is_none() {
        return Err(DecodeError::InvalidField {
            field: "buffer.size",
            value: size,
        });
    }
    let pts = option_from_wire(r.u64("buffer.pts")?);
    let dts = option_from_wire(r.u64("buffer.dts")?);
    let duration = option_from_wire(r.u64("buffer.duration")?);
    let offset_start = option_from_wire(r.u64("buffer.offset_start")?);
    let offset_end = option_from_wire(r.u64("buffer.offset_end")?);
    let flags = r.u32("buffer.flags")?;
    let video = match r.u8("buffer.has_video")? {
        0 => None,
        1 => {
            let format = r.u32("video.format")?;
            let width = r.u32("video.width")?;
            let height = r.u32("video.height")?;
            let n_planes = r.u8("video.n_planes")?;
            if n_planes == 0 || usize::from(n_planes) > MAX_PLANES {
                return Err(DecodeError::InvalidField {
                    field: "video.n_planes",
                    value: n_planes.into(),
                });
            }
            let mut offsets = [0u64; MAX_PLANES];
            for o in &mut offsets {
                *o = r.u64("video.offsets")?;
            }
            let mut strides = [0i32; MAX_PLANES];
            for s in &mut strides {
                *s = r.u32("video.strides")? as i32;
            }
            for plane in usize::from(n_planes)..MAX_PLANES {
                if offsets[plane] != 0 || strides[plane] != 0 {
                    return Err(DecodeError::InvalidField {
                        field: "video.unused_plane",
                        value: plane as u64,
                    });
                }
            }
            Some(VideoLayout {
                format,
                width,
                height,
                n_planes,
                offsets,
                strides,
            })
        }
        other => {
            return Err(DecodeError::InvalidField {
                field: "buffer.has_video",
                value: other.into(),
            });
        }
    };
    Ok(BufferDescriptor {
        buffer,
        segment,
        offset,
        size,
        pts,
        dts,
        duration,
        offset_start,
        offset_end,
        flags,
        video,
    })
}

struct Writer<'a>(&'a mut Vec<u8>);

impl Writer<'_> {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn str(&mut self, s: &str) {
        // A string longer than u32::MAX cannot fit MAX_MESSAGE_SIZE anyway:
        // saturate, the size check after encoding rejects the message.
        self.u32(u32::try_from(s.len()).unwrap_or(u32::MAX));
        self.0.extend_from_slice(s.as_bytes());
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let Some((head, rest)) = self.0.split_first_chunk::<N>() else {
            return Err(DecodeError::Truncated {
                field,
                need: N,
                have: self.0.len(),
            });
        };
        self.0 = rest;
        Ok(*head)
    }
    fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(field)?[0])
    }
    fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array(field)?))
    }
    fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array(field)?))
    }
    fn str(&mut self, field: &'static str) -> Result<String, DecodeError> {
        let len = self.u32(field)? as usize;
        if len > self.0.len() {
            return Err(DecodeError::Truncated {
                field,
                need: len,
                have: self.0.len(),
            });
        }
        let (bytes, rest) = self.0.split_at(len);
        self.0 = rest;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| DecodeError::InvalidUtf8 { field })
    }
}
