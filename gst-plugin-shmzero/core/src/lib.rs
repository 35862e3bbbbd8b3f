// SPDX-License-Identifier: MPL-2.0
//! Transport core of the `shmzero` plugin, free of GStreamer types.
//!
//! The pieces, one module each:
//!
//! * [`segment`]: memfd segments. The writer creates, sizes and seals them
//!   ([`WriterSegment`]); each reader maps a received fd read-only, once
//!   ([`ReaderSegment`], [`ReaderSegments`]). Mappings are reference counted, so
//!   memory handed downstream stays valid after the peer or the connection is gone.
//! * [`slots`]: pure bookkeeping of fixed-size slots inside segments, with one
//!   writer hold plus one reference per reader that has the slot in flight, a
//!   per-reader credit and a slow-reader timeout hook ([`SlotTable`]).
//! * [`protocol`]: the control messages and their binary codec ([`Message`]).
//!   Decoding is total: garbage gives a [`DecodeError`], never a panic.
//! * [`channel`]: a `SOCK_SEQPACKET` unix socket carrying one message per packet,
//!   with segment fds attached as `SCM_RIGHTS` ([`Channel`]).
//! * [`rendezvous`]: the listening socket path, stale-socket replacement and
//!   connection set-up ([`Listener`], [`connect`]).
//! * [`handshake`]: the hello exchange and version check.
//! * [`sticky`]: the set of sticky events a writer replays to late readers.
//!
//! The wire protocol and memory model are specified in `PROTOCOL.md` next to
//! the plugin's `Cargo.toml`.

pub mod channel;
pub mod handshake;
mod mapping;
pub mod protocol;
pub mod rendezvous;
pub mod segment;
pub mod slots;
pub mod sticky;

pub use channel::{Channel, ChannelError, PeerCredentials, Received};
pub use handshake::{HandshakeError, reader_handshake, writer_handshake};
pub use protocol::{
    BufferDescriptor, BufferId, DecodeError, EventMessage, Goodbye, GoodbyeReason, Hello,
    MAX_MESSAGE_SIZE, Message, MessageKind, NewSegment, PROTOCOL_VERSION, Role, SegmentId,
    VideoLayout,
};
pub use rendezvous::{Listener, RendezvousError, connect, default_socket_path};
pub use segment::{
    MapError, MappedRange, ReaderSegment, ReaderSegments, SlotMemory, WriterSegment,
};
pub use slots::{
    Delivery, ReaderId, ReaderStats, Reclaimed, SegmentLayout, SlotError, SlotId, SlotTable,
};
pub use sticky::StickyEvents;
