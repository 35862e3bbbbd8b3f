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
//!
//! One frame from writer to reader and back, on a socket pair (real peers
//! meet through [`Listener::bind`] / [`connect`] and [`writer_handshake`] /
//! [`reader_handshake`] first):
//!
//! ```
//! use std::time::{Duration, Instant};
//! use shmzero_core::*;
//!
//! let timeout = Duration::from_secs(5);
//! let (writer_end, reader_end) = Channel::pair()?;
//!
//! // Writer: plan slots, create the memfd, announce it with its fd.
//! let mut table = SlotTable::new();
//! let layout = table.add_segment(640 * 480 * 4, 4, 4096)?;
//! let segment = WriterSegment::create(layout.id, layout.size, "example")?;
//! writer_end.send(&Message::NewSegment(segment.announcement()), Some(segment.share_fd()), timeout)?;
//! let reader_id = table.add_reader(2);
//!
//! // Writer: fill a slot in place, publish it, let go of the writer hold.
//! let slot = table.alloc_in(layout.id)?.expect("a free slot");
//! let offset = layout.slot_offset(slot.index);
//! let mut memory = segment.claim(offset, layout.slot_size)?;
//! memory.as_mut().fill(0x80);
//! let (buffer, readers) = table.publish(slot, Instant::now())?;
//! assert_eq!(readers, [reader_id]);
//! let descriptor = BufferDescriptor {
//!     buffer, segment: layout.id, offset, size: layout.slot_size,
//!     pts: Some(0), dts: None, duration: Some(33_333_333),
//!     offset_start: None, offset_end: None, flags: 0, video: None,
//! };
//! writer_end.try_send(&Message::Buffer(descriptor), None)?;
//! drop(memory);
//! table.writer_release(slot)?;
//!
//! // Reader: map the segment once, view the buffer in place, release it.
//! let mut segments = ReaderSegments::new();
//! let Received { message: Message::NewSegment(announced), fd: Some(fd) } = reader_end.recv(timeout)? else {
//!     panic!("expected a segment")
//! };
//! segments.insert(announced, fd)?;
//! let Message::Buffer(descriptor) = reader_end.recv(timeout)?.message else { panic!() };
//! let frame = segments.range(&descriptor)?;
//! assert!(frame.as_ref().iter().all(|&b| b == 0x80));
//! drop(frame);
//! reader_end.send(&Message::Release(descriptor.buffer), None, timeout)?;
//!
//! // Writer: the release frees the slot.
//! let Message::Release(id) = writer_end.recv(timeout)?.message else { panic!() };
//! assert_eq!(table.release(reader_id, id)?.freed, [slot]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod channel;
pub mod handshake;
mod mapping;
mod peercred;
pub mod protocol;
pub mod rendezvous;
pub mod segment;
pub mod shareable_fd;
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
