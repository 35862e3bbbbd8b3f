// SPDX-License-Identifier: MPL-2.0
//! The src's side of shared-memory payloads: fds received with `SCM_RIGHTS` wait for the
//! `Segment` frame they came with; each segment is checked (a memfd sealed against
//! shrinking, at least as large as announced) and mapped read-only once; a
//! `SharedBuffer` becomes a bounds-checked view of one mapping.
//!
//! Everything a peer can get wrong is an error value, never a mapping outside a segment.

use std::collections::{HashMap, VecDeque};
use std::os::fd::OwnedFd;
use std::sync::Arc;

use shmzero_core::{MapError, MappedRange, ReaderSegment, SegmentId};
use spicepass_protocol::{Segment, SharedBuffer};

/// Most segments mapped at once per connection (each costs a mapping; a sender
/// retires the ones it no longer uses).
pub const MAX_SEGMENTS: usize = 64;
/// Most fds waiting for their `Segment` frame. The fd arrives with the frame's first
/// byte, so a well-behaved sender never has more than one or two in flight.
pub const MAX_PENDING_FDS: usize = 8;

/// What a peer got wrong with shared memory.
#[derive(Debug, thiserror::Error)]
pub enum ShmError {
    #[error("segment {0} was announced without a file descriptor")]
    NoFd(u32),
    #[error("{0} file descriptors arrived without segment announcements")]
    TooManyFds(usize),
    #[error("{0}")]
    FdsTruncated(crate::transport::LinkError),
    #[error("segment {0} is already mapped")]
    Duplicate(u32),
    #[error("segment {0} refused: already {MAX_SEGMENTS} segments mapped")]
    TooManySegments(u32),
    #[error("segment {0} is not known (never announced, or retired)")]
    UnknownSegment(u32),
    #[error("cannot use segment: {0}")]
    Map(#[from] MapError),
    #[error("the peer sent {0} without negotiating shared-memory payloads")]
    NotNegotiated(&'static str),
    #[error("{0}")]
    UnknownBuffer(#[from] crate::shm::UnknownBuffer),
}

/// The segments of one connection.
#[derive(Debug, Default)]
pub struct ReceivedSegments {
    fds: VecDeque<OwnedFd>,
    segments: HashMap<u32, Arc<ReaderSegment>>,
}

impl ReceivedSegments {
    /// Where a read puts the fds it received.
    pub fn fd_queue(&mut self) -> &mut VecDeque<OwnedFd> {
        &mut self.fds
    }

    /// After each read and the frames it completed: fds piling up without their
    /// `Segment` frames mean a hostile or broken peer.
    pub fn check_pending(&self) -> Result<(), ShmError> {
        if self.fds.len() > MAX_PENDING_FDS {
            return Err(ShmError::TooManyFds(self.fds.len()));
        }
        Ok(())
    }

    /// A `Segment` frame: takes the oldest received fd, checks and maps it.
    pub fn announce(&mut self, segment: &Segment) -> Result<(), ShmError> {
        let fd = self
            .fds
            .pop_front()
            .ok_or(ShmError::NoFd(segment.segment))?;
        if self.segments.contains_key(&segment.segment) {
            return Err(ShmError::Duplicate(segment.segment));
        }
        if self.segments.len() >= MAX_SEGMENTS {
            return Err(ShmError::TooManySegments(segment.segment));
        }
        let mapped = ReaderSegment::map(SegmentId(segment.segment), fd, segment.size)?;
        self.segments.insert(segment.segment, mapped);
        Ok(())
    }

    /// A `RetireSegment` frame: buffers still held keep their mapping alive.
    pub fn retire(&mut self, segment: u32) -> Result<(), ShmError> {
        self.segments
            .remove(&segment)
            .map(drop)
            .ok_or(ShmError::UnknownSegment(segment))
    }

    /// The bytes a `SharedBuffer` refers to, checked against its segment's size.
    pub fn range(&self, shared: &SharedBuffer) -> Result<MappedRange, ShmError> {
        let segment = self
            .segments
            .get(&shared.segment)
            .ok_or(ShmError::UnknownSegment(shared.segment))?;
        Ok(segment.range(shared.offset, shared.header.payload_len)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::fs::{MemfdFlags, SealFlags};
    use spicepass_protocol::BufferHeader;

    fn memfd(len: u64, seal: bool) -> OwnedFd {
        let fd = rustix::fs::memfd_create("received-test", MemfdFlags::ALLOW_SEALING).unwrap();
        rustix::fs::ftruncate(&fd, len).unwrap();
        rustix::io::write(&fd, b"spicepass").unwrap();
        if seal {
            rustix::fs::fcntl_add_seals(&fd, SealFlags::SHRINK | SealFlags::GROW).unwrap();
        }
        fd
    }

    fn shared(segment: u32, offset: u64, len: u64) -> SharedBuffer {
        SharedBuffer {
            header: BufferHeader {
                payload_len: len,
                ..BufferHeader::default()
            },
            buffer_id: 0,
            segment,
            offset,
        }
    }

    #[test]
    fn a_sealed_segment_is_mapped_and_bounds_are_checked() {
        let mut segments = ReceivedSegments::default();
        segments.fd_queue().push_back(memfd(4096, true));
        segments
            .announce(&Segment {
                segment: 5,
                size: 4096,
            })
            .unwrap();
        let range = segments.range(&shared(5, 0, 9)).unwrap();
        assert_eq!(range.as_ref(), b"spicepass");
        assert!(segments.range(&shared(5, 4000, 96)).is_ok());
        for (offset, len) in [(4000, 97), (4097, 0), (u64::MAX, 2), (1, u64::MAX)] {
            assert!(
                matches!(
                    segments.range(&shared(5, offset, len)),
                    Err(ShmError::Map(MapError::OutOfBounds { .. }))
                ),
                "{offset}+{len}"
            );
        }
        assert!(matches!(
            segments.range(&shared(6, 0, 1)),
            Err(ShmError::UnknownSegment(6))
        ));
        segments.retire(5).unwrap();
        assert!(matches!(
            segments.retire(5),
            Err(ShmError::UnknownSegment(5))
        ));
        // A view taken before the retirement stays readable.
        assert_eq!(range.as_ref(), b"spicepass");
    }

    #[test]
    fn bad_segments_are_refused() {
        let mut segments = ReceivedSegments::default();
        let announce = |segment, size| Segment { segment, size };
        assert!(matches!(
            segments.announce(&announce(1, 4096)),
            Err(ShmError::NoFd(1))
        ));
        segments.fd_queue().push_back(memfd(4096, false));
        assert!(matches!(
            segments.announce(&announce(1, 4096)),
            Err(ShmError::Map(MapError::NotSealed { .. }))
        ));
        segments.fd_queue().push_back(memfd(4096, true));
        assert!(matches!(
            segments.announce(&announce(1, 1 << 20)),
            Err(ShmError::Map(MapError::TooSmall { .. }))
        ));
        let file = std::fs::File::open("/proc/self/exe").unwrap();
        segments.fd_queue().push_back(file.into());
        assert!(matches!(
            segments.announce(&announce(1, 1)),
            Err(ShmError::Map(MapError::NotSealed { .. }))
        ));
        segments.fd_queue().push_back(memfd(4096, true));
        segments.announce(&announce(1, 4096)).unwrap();
        segments.fd_queue().push_back(memfd(4096, true));
        assert!(matches!(
            segments.announce(&announce(1, 4096)),
            Err(ShmError::Duplicate(1))
        ));
        for _ in 0..=MAX_PENDING_FDS {
            segments.fd_queue().push_back(memfd(4096, true));
        }
        assert!(matches!(
            segments.check_pending(),
            Err(ShmError::TooManyFds(_))
        ));
    }

    #[test]
    fn the_number_of_segments_is_bounded() {
        let mut segments = ReceivedSegments::default();
        for id in 0..MAX_SEGMENTS as u32 {
            segments.fd_queue().push_back(memfd(4096, true));
            segments
                .announce(&Segment {
                    segment: id,
                    size: 4096,
                })
                .unwrap();
        }
        segments.fd_queue().push_back(memfd(4096, true));
        assert!(matches!(
            segments.announce(&Segment {
                segment: 999,
                size: 4096
            }),
            Err(ShmError::TooManySegments(999))
        ));
    }
}
