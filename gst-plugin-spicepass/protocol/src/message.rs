//! The messages exchanged after the handshake, and the wire form of their
//! bodies (all but `Buffer`, whose delta-coded header lives in
//! [`crate::buffer_header`]).

use std::fmt;

use crate::body::{BodyReader, BodyWriter};
use crate::buffer_header::BufferHeader;
use crate::error::ProtocolError;
use crate::hello::Role;

/// The kind byte that starts every frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// Sink → src: buffer header, payload follows.
    Buffer,
    /// Both ways: a serialized GStreamer event.
    Event,
    /// Src → sink: position and latency of the client pipeline.
    ClientReport,
    /// Src → sink: flow-control grant.
    Credit,
    /// Both ways: liveness and RTT.
    Heartbeat,
    /// Both ways: the sender closes the channel, and why.
    Goodbye,
    /// Sink → src: where the guest window showing the video is (issue 8).
    WindowGeometry,
    /// Sink → src: a sealed memfd segment, its fd attached with `SCM_RIGHTS`.
    Segment,
    /// Sink → src: a buffer whose payload lies in an announced segment.
    SharedBuffer,
    /// Sink → src: a segment will not be referenced again.
    RetireSegment,
    /// Src → sink: shared buffers the src no longer uses.
    Release,
}

impl MessageKind {
    /// Every kind of this version.
    pub const ALL: [MessageKind; 11] = [
        MessageKind::Buffer,
        MessageKind::Event,
        MessageKind::ClientReport,
        MessageKind::Credit,
        MessageKind::Heartbeat,
        MessageKind::Goodbye,
        MessageKind::WindowGeometry,
        MessageKind::Segment,
        MessageKind::SharedBuffer,
        MessageKind::RetireSegment,
        MessageKind::Release,
    ];

    /// The kind byte.
    pub fn to_wire(self) -> u8 {
        match self {
            MessageKind::Buffer => 1,
            MessageKind::Event => 2,
            MessageKind::ClientReport => 3,
            MessageKind::Credit => 4,
            MessageKind::Heartbeat => 5,
            MessageKind::Goodbye => 6,
            MessageKind::WindowGeometry => 7,
            MessageKind::Segment => 8,
            MessageKind::SharedBuffer => 9,
            MessageKind::RetireSegment => 10,
            MessageKind::Release => 11,
        }
    }

    /// The kind for a kind byte, if this version knows it.
    pub fn from_wire(byte: u8) -> Option<MessageKind> {
        MessageKind::ALL
            .into_iter()
            .find(|kind| kind.to_wire() == byte)
    }

    /// Name used in errors and logs.
    pub fn name(self) -> &'static str {
        match self {
            MessageKind::Buffer => "buffer",
            MessageKind::Event => "event",
            MessageKind::ClientReport => "client-report",
            MessageKind::Credit => "credit",
            MessageKind::Heartbeat => "heartbeat",
            MessageKind::Goodbye => "goodbye",
            MessageKind::WindowGeometry => "window-geometry",
            MessageKind::Segment => "segment",
            MessageKind::SharedBuffer => "shared-buffer",
            MessageKind::RetireSegment => "retire-segment",
            MessageKind::Release => "release",
        }
    }

    /// Whether a peer of role `from` may send this kind (events are further
    /// restricted by their direction, see [`Message::allowed_from`]).
    pub fn allowed_from(self, from: Role) -> bool {
        match self {
            MessageKind::Buffer
            | MessageKind::WindowGeometry
            | MessageKind::Segment
            | MessageKind::SharedBuffer
            | MessageKind::RetireSegment => from == Role::Sink,
            MessageKind::ClientReport | MessageKind::Credit | MessageKind::Release => {
                from == Role::Src
            }
            MessageKind::Event | MessageKind::Heartbeat | MessageKind::Goodbye => true,
        }
    }
}

impl fmt::Display for MessageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One decoded frame: the common header fields and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Which stream of the channel this belongs to (`0` for channel-wide messages).
    pub stream_id: u32,
    /// Per-direction counter, `0` for the first frame after the hello.
    pub seq: u64,
    /// The message.
    pub message: Message,
}

/// A message after the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A buffer's metadata; `payload_len` bytes of payload follow the frame.
    Buffer(BufferHeader),
    /// A GStreamer event, downstream or upstream.
    Event(Event),
    /// Client position and latency.
    ClientReport(ClientReport),
    /// Flow-control grant.
    Credit(Credit),
    /// Liveness.
    Heartbeat(Heartbeat),
    /// Channel close.
    Goodbye(Goodbye),
    /// Guest window geometry.
    WindowGeometry(WindowGeometry),
    /// A memfd segment announcement (its fd travels with the frame's first byte).
    Segment(Segment),
    /// A buffer whose payload is in a segment; nothing follows the frame.
    SharedBuffer(SharedBuffer),
    /// A segment the sink will not reference again.
    RetireSegment(RetireSegment),
    /// Shared buffers the src is done with.
    Release(Release),
}

impl Message {
    /// The kind byte's meaning.
    pub fn kind(&self) -> MessageKind {
        match self {
            Message::Buffer(_) => MessageKind::Buffer,
            Message::Event(_) => MessageKind::Event,
            Message::ClientReport(_) => MessageKind::ClientReport,
            Message::Credit(_) => MessageKind::Credit,
            Message::Heartbeat(_) => MessageKind::Heartbeat,
            Message::Goodbye(_) => MessageKind::Goodbye,
            Message::WindowGeometry(_) => MessageKind::WindowGeometry,
            Message::Segment(_) => MessageKind::Segment,
            Message::SharedBuffer(_) => MessageKind::SharedBuffer,
            Message::RetireSegment(_) => MessageKind::RetireSegment,
            Message::Release(_) => MessageKind::Release,
        }
    }

    /// Whether a peer of role `from` may send this message: downstream
    /// events only from the sink, upstream events only from the src.
    pub fn allowed_from(&self, from: Role) -> bool {
        match self {
            Message::Event(event) => match event.direction {
                EventDirection::Downstream => from == Role::Sink,
                EventDirection::Upstream => from == Role::Src,
            },
            other => other.kind().allowed_from(from),
        }
    }

    /// Appends the body of a non-buffer message.
    pub(crate) fn encode_body(&self, out: &mut Vec<u8>) {
        match self {
            // The encoder handles buffers, they need per-stream state.
            Message::Buffer(_) | Message::SharedBuffer(_) => {}
            Message::Event(event) => event.encode(out),
            Message::ClientReport(report) => report.encode(out),
            Message::Credit(credit) => credit.encode(out),
            Message::Heartbeat(heartbeat) => heartbeat.encode(out),
            Message::Goodbye(goodbye) => goodbye.encode(out),
            Message::WindowGeometry(geometry) => geometry.encode(out),
            Message::Segment(segment) => segment.encode(out),
            Message::RetireSegment(retire) => out.varint(retire.segment.into()),
            Message::Release(release) => release.encode(out),
        }
    }

    /// Parses the body of a non-buffer message.
    pub(crate) fn decode_body(
        kind: MessageKind,
        reader: &mut BodyReader<'_>,
    ) -> Result<Message, ProtocolError> {
        Ok(match kind {
            MessageKind::Buffer | MessageKind::SharedBuffer => {
                return Err(ProtocolError::InvalidValue {
                    field: "kind",
                    value: kind.to_wire().into(),
                });
            }
            MessageKind::Event => Message::Event(Event::decode(reader)?),
            MessageKind::ClientReport => Message::ClientReport(ClientReport::decode(reader)?),
            MessageKind::Credit => Message::Credit(Credit::decode(reader)?),
            MessageKind::Heartbeat => Message::Heartbeat(Heartbeat::decode(reader)?),
            MessageKind::Goodbye => Message::Goodbye(Goodbye::decode(reader)?),
            MessageKind::WindowGeometry => Message::WindowGeometry(WindowGeometry::decode(reader)?),
            MessageKind::Segment => Message::Segment(Segment::decode(reader)?),
            MessageKind::RetireSegment => Message::RetireSegment(RetireSegment {
                segment: reader.varint_u32("retire-segment.segment")?,
            }),
            MessageKind::Release => Message::Release(Release::decode(reader)?),
        })
    }
}

/// Which way an event travels in the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventDirection {
    /// Sink → src: stream-start, caps, segment, tag, EOS, flush, gap...
    Downstream,
    /// Src → sink: seek, QoS, navigation, latency, reconfigure, step, force-key-unit...
    Upstream,
}

/// A GStreamer event, carried generically: the glue turns it back into a
/// `GstEvent` of the same type, seqnum and running-time offset, built from
/// the serialized structure.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Event {
    /// Travel direction (checked against the sender's role).
    pub direction: EventDirection,
    /// The numeric `GstEventType` (it includes the direction/serialized/sticky bits).
    pub event_type: u32,
    /// `gst_event_get_seqnum()`, so replies (flush after a seek) can be matched.
    pub seqnum: u32,
    /// `gst_event_get_running_time_offset()`.
    pub running_time_offset: i64,
    /// The event is sticky on its pad (replayed on reconnection).
    pub sticky: bool,
    /// `gst_structure_to_string()` of the event's structure (for a CAPS
    /// event that is `GstEventCaps` whose `caps` field holds the caps
    /// string). `None` for events without a structure (EOS, flush-start...).
    pub structure: Option<String>,
}

const EVENT_UPSTREAM: u64 = 1 << 0;
const EVENT_STICKY: u64 = 1 << 1;
const EVENT_HAS_STRUCTURE: u64 = 1 << 2;

impl Event {
    fn encode(&self, out: &mut Vec<u8>) {
        let mut flags = 0;
        if self.direction == EventDirection::Upstream {
            flags |= EVENT_UPSTREAM;
        }
        if self.sticky {
            flags |= EVENT_STICKY;
        }
        if self.structure.is_some() {
            flags |= EVENT_HAS_STRUCTURE;
        }
        out.varint(flags);
        out.varint(self.event_type.into());
        out.varint(self.seqnum.into());
        out.signed(self.running_time_offset);
        if let Some(structure) = &self.structure {
            out.string(structure);
        }
    }

    fn decode(reader: &mut BodyReader<'_>) -> Result<Event, ProtocolError> {
        let flags = reader.flags(
            "event.flags",
            EVENT_UPSTREAM | EVENT_STICKY | EVENT_HAS_STRUCTURE,
        )?;
        let event_type = reader.varint_u32("event.event_type")?;
        let seqnum = reader.varint_u32("event.seqnum")?;
        let running_time_offset = reader.signed("event.running_time_offset")?;
        let structure = if flags & EVENT_HAS_STRUCTURE != 0 {
            Some(reader.string("event.structure")?)
        } else {
            None
        };
        Ok(Event {
            direction: if flags & EVENT_UPSTREAM != 0 {
                EventDirection::Upstream
            } else {
                EventDirection::Downstream
            },
            event_type,
            seqnum,
            running_time_offset,
            sticky: flags & EVENT_STICKY != 0,
            structure,
        })
    }
}

/// What the client pipeline reports periodically, so the sink can answer
/// POSITION and LATENCY queries from a cache instead of a round trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientReport {
    /// Sender's monotonic clock when the report was taken, in ns (lets the
    /// sink extrapolate the position).
    pub timestamp: u64,
    /// Playback position as running time, in ns; `None` if unknown.
    pub position: Option<u64>,
    /// The client pipeline is live (LATENCY query `live`).
    pub live: bool,
    /// Minimum latency of the client pipeline, in ns.
    pub latency_min: u64,
    /// Maximum latency, in ns; `None` for unlimited.
    pub latency_max: Option<u64>,
}

const REPORT_HAS_POSITION: u64 = 1 << 0;
const REPORT_LIVE: u64 = 1 << 1;
const REPORT_HAS_LATENCY_MAX: u64 = 1 << 2;

impl ClientReport {
    fn encode(&self, out: &mut Vec<u8>) {
        let mut flags = 0;
        if self.position.is_some() {
            flags |= REPORT_HAS_POSITION;
        }
        if self.live {
            flags |= REPORT_LIVE;
        }
        if self.latency_max.is_some() {
            flags |= REPORT_HAS_LATENCY_MAX;
        }
        out.varint(flags);
        out.varint(self.timestamp);
        if let Some(position) = self.position {
            out.varint(position);
        }
        out.varint(self.latency_min);
        if let Some(max) = self.latency_max {
            out.varint(max);
        }
    }

    fn decode(reader: &mut BodyReader<'_>) -> Result<ClientReport, ProtocolError> {
        let flags = reader.flags(
            "client-report.flags",
            REPORT_HAS_POSITION | REPORT_LIVE | REPORT_HAS_LATENCY_MAX,
        )?;
        let timestamp = reader.varint("client-report.timestamp")?;
        let position = if flags & REPORT_HAS_POSITION != 0 {
            Some(reader.varint("client-report.position")?)
        } else {
            None
        };
        let latency_min = reader.varint("client-report.latency_min")?;
        let latency_max = if flags & REPORT_HAS_LATENCY_MAX != 0 {
            Some(reader.varint("client-report.latency_max")?)
        } else {
            None
        };
        Ok(ClientReport {
            timestamp,
            position,
            live: flags & REPORT_LIVE != 0,
            latency_min,
            latency_max,
        })
    }
}

/// Flow-control grant: the sender may send buffers while its running totals
/// since the hello stay within these cumulative limits (see [`crate::credit`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Credit {
    /// Cumulative payload bytes the sender may have sent.
    pub max_bytes: u64,
    /// Cumulative buffers the sender may have sent.
    pub max_buffers: u64,
}

impl Credit {
    fn encode(&self, out: &mut Vec<u8>) {
        out.varint(self.max_bytes);
        out.varint(self.max_buffers);
    }

    fn decode(reader: &mut BodyReader<'_>) -> Result<Credit, ProtocolError> {
        Ok(Credit {
            max_bytes: reader.varint("credit.max_bytes")?,
            max_buffers: reader.varint("credit.max_buffers")?,
        })
    }
}

/// Liveness probe. `echo` returns the last heartbeat timestamp received from
/// the peer and how long it was held, so the peer computes
/// `rtt = now - echo.timestamp - echo.held` on its own clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Heartbeat {
    /// Sender's monotonic clock, in ns.
    pub timestamp: u64,
    /// Echo of the peer's last heartbeat.
    pub echo: Option<HeartbeatEcho>,
}

/// See [`Heartbeat`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HeartbeatEcho {
    /// The peer's `timestamp`, unchanged.
    pub timestamp: u64,
    /// Time between receiving it and sending this heartbeat, in ns.
    pub held: u64,
}

const HEARTBEAT_HAS_ECHO: u64 = 1 << 0;

impl Heartbeat {
    fn encode(&self, out: &mut Vec<u8>) {
        out.varint(if self.echo.is_some() {
            HEARTBEAT_HAS_ECHO
        } else {
            0
        });
        out.varint(self.timestamp);
        if let Some(echo) = self.echo {
            out.varint(echo.timestamp);
            out.varint(echo.held);
        }
    }

    fn decode(reader: &mut BodyReader<'_>) -> Result<Heartbeat, ProtocolError> {
        let flags = reader.flags("heartbeat.flags", HEARTBEAT_HAS_ECHO)?;
        let timestamp = reader.varint("heartbeat.timestamp")?;
        let echo = if flags & HEARTBEAT_HAS_ECHO != 0 {
            Some(HeartbeatEcho {
                timestamp: reader.varint("heartbeat.echo_timestamp")?,
                held: reader.varint("heartbeat.echo_held")?,
            })
        } else {
            None
        };
        Ok(Heartbeat { timestamp, echo })
    }
}

/// Why a peer closes the channel. Open-ended: unknown codes are kept as is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GoodbyeReason(pub u32);

impl GoodbyeReason {
    /// End of session (EOS delivered, element stopped).
    pub const NORMAL: GoodbyeReason = GoodbyeReason(0);
    /// The sender saw a protocol error.
    pub const PROTOCOL_ERROR: GoodbyeReason = GoodbyeReason(1);
    /// The peer was silent for longer than the timeout.
    pub const TIMEOUT: GoodbyeReason = GoodbyeReason(2);
    /// Handshake refused: bad token.
    pub const AUTH_FAILED: GoodbyeReason = GoodbyeReason(3);
    /// Handshake refused: incompatible versions or roles.
    pub const INCOMPATIBLE: GoodbyeReason = GoodbyeReason(4);
    /// Another client took this connection's place.
    pub const REPLACED: GoodbyeReason = GoodbyeReason(5);
    /// The sender's pipeline failed.
    pub const PIPELINE_ERROR: GoodbyeReason = GoodbyeReason(6);
}

impl fmt::Display for GoodbyeReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            GoodbyeReason::NORMAL => f.write_str("normal"),
            GoodbyeReason::PROTOCOL_ERROR => f.write_str("protocol-error"),
            GoodbyeReason::TIMEOUT => f.write_str("timeout"),
            GoodbyeReason::AUTH_FAILED => f.write_str("auth-failed"),
            GoodbyeReason::INCOMPATIBLE => f.write_str("incompatible"),
            GoodbyeReason::REPLACED => f.write_str("replaced"),
            GoodbyeReason::PIPELINE_ERROR => f.write_str("pipeline-error"),
            GoodbyeReason(other) => write!(f, "reason-{other}"),
        }
    }
}

/// Channel close with a reason and a human-readable message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Goodbye {
    /// Machine-readable reason.
    pub reason: GoodbyeReason,
    /// For the log and the GStreamer error message.
    pub message: String,
}

impl Goodbye {
    fn encode(&self, out: &mut Vec<u8>) {
        out.varint(self.reason.0.into());
        out.string(&self.message);
    }

    fn decode(reader: &mut BodyReader<'_>) -> Result<Goodbye, ProtocolError> {
        Ok(Goodbye {
            reason: GoodbyeReason(reader.varint_u32("goodbye.reason")?),
            message: reader.string("goodbye.message")?,
        })
    }
}

/// Position of the guest window that shows the video, in guest desktop
/// coordinates (issue 8); defined now so the message kind is reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WindowGeometry {
    /// Left edge.
    pub x: i32,
    /// Top edge.
    pub y: i32,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// False while minimized or fully covered.
    pub visible: bool,
}

const GEOMETRY_VISIBLE: u64 = 1 << 0;

impl WindowGeometry {
    fn encode(&self, out: &mut Vec<u8>) {
        out.signed(self.x.into());
        out.signed(self.y.into());
        out.varint(self.width.into());
        out.varint(self.height.into());
        out.varint(if self.visible { GEOMETRY_VISIBLE } else { 0 });
    }

    fn decode(reader: &mut BodyReader<'_>) -> Result<WindowGeometry, ProtocolError> {
        Ok(WindowGeometry {
            x: reader.signed_i32("window-geometry.x")?,
            y: reader.signed_i32("window-geometry.y")?,
            width: reader.varint_u32("window-geometry.width")?,
            height: reader.varint_u32("window-geometry.height")?,
            visible: reader.flags("window-geometry.flags", GEOMETRY_VISIBLE)? != 0,
        })
    }
}

/// A sealed memfd segment the sink will reference in `SharedBuffer`s. The
/// fd is attached (`SCM_RIGHTS`) to the write that starts this frame; the
/// receiver takes fds in arrival order, one per `Segment`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Segment {
    /// Chosen by the sink, unique among its live segments on this connection.
    pub segment: u32,
    /// Bytes the receiver maps; the fd must be at least this large.
    pub size: u64,
}

impl Segment {
    fn encode(&self, out: &mut Vec<u8>) {
        out.varint(self.segment.into());
        out.varint(self.size);
    }

    fn decode(reader: &mut BodyReader<'_>) -> Result<Segment, ProtocolError> {
        Ok(Segment {
            segment: reader.varint_u32("segment.segment")?,
            size: reader.varint("segment.size")?,
        })
    }
}

/// A buffer whose `header.payload_len` bytes lie at `offset` in `segment`
/// instead of following the frame. The src returns `buffer_id` in a
/// [`Release`] once nothing uses the memory any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SharedBuffer {
    /// Timestamps, flags and size (`payload_len`), coded as for `Buffer`.
    pub header: BufferHeader,
    /// Sink-chosen id, unique among this connection's unreleased buffers.
    pub buffer_id: u64,
    /// An announced, not retired segment.
    pub segment: u32,
    /// Where the payload starts in the segment.
    pub offset: u64,
}

impl SharedBuffer {
    pub(crate) fn encode_tail(&self, out: &mut Vec<u8>) {
        out.varint(self.buffer_id);
        out.varint(self.segment.into());
        out.varint(self.offset);
    }

    pub(crate) fn decode_tail(
        header: BufferHeader,
        reader: &mut BodyReader<'_>,
    ) -> Result<SharedBuffer, ProtocolError> {
        Ok(SharedBuffer {
            header,
            buffer_id: reader.varint("shared-buffer.buffer_id")?,
            segment: reader.varint_u32("shared-buffer.segment")?,
            offset: reader.varint("shared-buffer.offset")?,
        })
    }
}

/// The sink will not reference `segment` again; the src unmaps it once the
/// buffers it still holds are gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RetireSegment {
    /// A segment announced before.
    pub segment: u32,
}

/// Shared buffers the src no longer uses (batched: every id that became free
/// since the last `Release`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Release {
    /// `SharedBuffer::buffer_id`s.
    pub buffer_ids: Vec<u64>,
}

impl Release {
    fn encode(&self, out: &mut Vec<u8>) {
        out.varint(self.buffer_ids.len() as u64);
        for id in &self.buffer_ids {
            out.varint(*id);
        }
    }

    fn decode(reader: &mut BodyReader<'_>) -> Result<Release, ProtocolError> {
        let count = reader.varint("release.count")?;
        // Every id takes at least one byte: a count beyond the body is a lie,
        // refused before allocating for it.
        if count > reader.remaining() as u64 {
            return Err(ProtocolError::Truncated {
                message: "release",
                field: "release.buffer_ids",
            });
        }
        let mut buffer_ids = Vec::with_capacity(count as usize);
        for _ in 0..count {
            buffer_ids.push(reader.varint("release.buffer_ids")?);
        }
        Ok(Release { buffer_ids })
    }
}
