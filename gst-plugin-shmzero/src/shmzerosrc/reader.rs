// SPDX-License-Identifier: MPL-2.0
//! The reader's connection: hello, segment mappings, and turning each control message into
//! something the element pushes (a buffer wrapping shared memory, or an event).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use shmzero_core::{
    BufferDescriptor, Channel, ChannelError, Goodbye, GoodbyeReason, Message, ReaderSegments,
};

use crate::events::{SeqnumMap, from_wire};
use crate::reader_memory::ReaderBytes;
use crate::stats::ReaderStats;

/// Buffer flags a writer may set on the reader's buffers (no memory/tag bookkeeping flags).
const FORWARDED_FLAGS: gst::BufferFlags = gst::BufferFlags::LIVE
    .union(gst::BufferFlags::DECODE_ONLY)
    .union(gst::BufferFlags::DISCONT)
    .union(gst::BufferFlags::RESYNC)
    .union(gst::BufferFlags::CORRUPTED)
    .union(gst::BufferFlags::MARKER)
    .union(gst::BufferFlags::HEADER)
    .union(gst::BufferFlags::GAP)
    .union(gst::BufferFlags::DROPPABLE)
    .union(gst::BufferFlags::DELTA_UNIT)
    .union(gst::BufferFlags::NON_DROPPABLE);

/// What one step of the connection produced.
pub enum Incoming {
    /// Nothing to push (timeout, or a segment bookkeeping message).
    Idle,
    Event(gst::Event),
    /// The writer sent an event that could not be rebuilt; logged and counted.
    BadEvent(String),
    Buffer(gst::Buffer),
}

/// Why the connection ended.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("the writer closed the connection without saying goodbye (it probably died)")]
    Vanished,
    #[error("the writer stopped ({0:?}: {1})")]
    Goodbye(GoodbyeReason, String),
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("socket error: {0}")]
    Io(String),
}

impl ReadError {
    /// An ending that is not a failure once the stream reached EOS.
    pub fn is_orderly(&self) -> bool {
        matches!(
            self,
            ReadError::Goodbye(GoodbyeReason::Shutdown, _) | ReadError::Vanished
        )
    }
}

pub struct Connection {
    channel: Arc<Channel>,
    segments: ReaderSegments,
    seqnums: SeqnumMap,
    stats: Arc<ReaderStats>,
}

impl Connection {
    pub fn open(
        path: &Path,
        credit: u32,
        stats: Arc<ReaderStats>,
        timeout: Duration,
    ) -> Result<Connection, String> {
        let channel = shmzero_core::connect(path, timeout).map_err(|e| e.to_string())?;
        shmzero_core::reader_handshake(&channel, credit, timeout).map_err(|e| e.to_string())?;
        Ok(Connection {
            channel: Arc::new(channel),
            segments: ReaderSegments::new(),
            seqnums: SeqnumMap::default(),
            stats,
        })
    }

    /// Waits up to `timeout` for one message and handles it.
    pub fn next(&mut self, timeout: Duration) -> Result<Incoming, ReadError> {
        let received = match self.channel.recv(timeout) {
            Ok(received) => received,
            Err(ChannelError::Timeout(_)) => return Ok(Incoming::Idle),
            Err(err) if err.is_disconnect() => return Err(ReadError::Vanished),
            Err(err @ ChannelError::Io(_)) => return Err(ReadError::Io(err.to_string())),
            Err(err) => return Err(ReadError::Protocol(err.to_string())),
        };
        match received.message {
            Message::NewSegment(announced) => {
                let fd = received
                    .fd
                    .ok_or_else(|| ReadError::Protocol("new segment without an fd".into()))?;
                self.segments
                    .insert(announced, fd)
                    .map_err(|e| ReadError::Protocol(e.to_string()))?;
                self.stats.segments_mapped.inc();
                Ok(Incoming::Idle)
            }
            Message::RetireSegment(segment) => {
                self.segments.retire(segment);
                Ok(Incoming::Idle)
            }
            Message::Buffer(descriptor) => self.wrap(&descriptor).map(Incoming::Buffer),
            Message::Event(wire) => match from_wire(&wire) {
                Ok(mut event) => {
                    let seqnum = self.seqnums.local(wire.seqnum);
                    event.make_mut().set_seqnum(seqnum);
                    Ok(Incoming::Event(event))
                }
                Err(err) => Ok(Incoming::BadEvent(err.to_string())),
            },
            Message::Goodbye(Goodbye { reason, message }) => {
                Err(ReadError::Goodbye(reason, message))
            }
            other => Err(ReadError::Protocol(format!(
                "unexpected {:?} message from the writer",
                other.kind()
            ))),
        }
    }

    /// Wraps the descriptor's bytes, where they are mapped, into a read-only buffer.
    fn wrap(&self, descriptor: &BufferDescriptor) -> Result<gst::Buffer, ReadError> {
        let range = self
            .segments
            .range(descriptor)
            .map_err(|e| ReadError::Protocol(e.to_string()))?;
        // From here on, dropping the bytes releases the buffer to the writer, also on errors.
        let bytes = ReaderBytes::new(range, descriptor.buffer, &self.channel, &self.stats);
        let mut buffer = gst::Buffer::new();
        {
            let buffer = buffer.get_mut().expect("new buffer is writable");
            buffer.append_memory(gst::Memory::from_slice(bytes));
            buffer.set_pts(descriptor.pts.map(gst::ClockTime::from_nseconds));
            buffer.set_dts(descriptor.dts.map(gst::ClockTime::from_nseconds));
            buffer.set_duration(descriptor.duration.map(gst::ClockTime::from_nseconds));
            buffer.set_offset(descriptor.offset_start.unwrap_or(u64::MAX));
            buffer.set_offset_end(descriptor.offset_end.unwrap_or(u64::MAX));
            buffer.set_flags(
                gst::BufferFlags::from_bits_truncate(descriptor.flags) & FORWARDED_FLAGS,
            );
            if let Some(layout) = &descriptor.video {
                crate::video_layout::add_meta(buffer, layout)
                    .map_err(|e| ReadError::Protocol(format!("bad video layout: {e}")))?;
            }
        }
        Ok(buffer)
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        let _ = self.channel.try_send(
            &Message::Goodbye(Goodbye {
                reason: GoodbyeReason::Shutdown,
                message: "reader stopped".into(),
            }),
            None,
        );
    }
}
