// SPDX-License-Identifier: MPL-2.0
//! memfd segments: created, sized and sealed by the writer, mapped read-only
//! once by each reader.
//!
//! Memory model (see `PROTOCOL.md`): a segment is an anonymous memfd, so it
//! has no name in `/dev/shm` and disappears with the last fd or mapping, even
//! after a crash. After sizing, the writer adds `F_SEAL_SHRINK | F_SEAL_GROW |
//! F_SEAL_SEAL`; a reader refuses a segment without `F_SEAL_SHRINK`, so a
//! mapping can never lose its pages and no access ever raises `SIGBUS`.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex};

use rustix::fs::{MemfdFlags, Mode, OFlags, SealFlags};
use thiserror::Error;

use crate::mapping::Mapping;
use crate::protocol::{BufferDescriptor, NewSegment, SegmentId};

/// The seals a writer applies and a reader requires (only `SHRINK` matters
/// for safety; the writer never needs to grow a segment either).
const WRITER_SEALS: SealFlags = SealFlags::SHRINK
    .union(SealFlags::GROW)
    .union(SealFlags::SEAL);

/// Most segments a reader keeps mapped in its table at once; a writer that
/// announces more without retiring any is misbehaving (each one costs a
/// mapping, and `vm.max_map_count` is finite).
pub const MAX_READER_SEGMENTS: usize = 4096;

/// A writer's segment: an anonymous, sealed memfd mapped read-write.
#[derive(Debug)]
pub struct WriterSegment {
    id: SegmentId,
    memfd: OwnedFd,
    /// What readers receive: a read-only reopening of the memfd when
    /// `/proc/self/fd` allows it, so readers cannot map it writable.
    share_fd: OwnedFd,
    share_read_only: bool,
    map: Mapping,
    /// Claimed byte ranges (start → end), so two [`SlotMemory`] never alias.
    claims: Mutex<BTreeMap<usize, usize>>,
}

/// Why a range of a [`WriterSegment`] could not be claimed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ClaimError {
    #[error("range {offset}+{len} is outside segment {segment:?} of {segment_size} bytes")]
    OutOfBounds {
        segment: SegmentId,
        offset: u64,
        len: u64,
        segment_size: usize,
    },
    #[error("range {offset}+{len} of segment {segment:?} overlaps a range already claimed")]
    Overlap {
        segment: SegmentId,
        offset: u64,
        len: u64,
    },
    #[error("cannot claim an empty range")]
    Empty,
}

impl WriterSegment {
    /// Creates a sealed memfd of `size` bytes and maps it read-write.
    /// `debug_name` appears in `/proc/<pid>/fd` as `memfd:<debug_name>`.
    pub fn create(id: SegmentId, size: u64, debug_name: &str) -> io::Result<Arc<Self>> {
        let len = usize::try_from(size).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidInput, "segment size exceeds usize")
        })?;
        let name = debug_name.replace('\0', "_");
        let memfd = rustix::fs::memfd_create(
            name.as_str(),
            MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
        )?;
        rustix::fs::ftruncate(&memfd, size)?;
        rustix::fs::fcntl_add_seals(&memfd, WRITER_SEALS)?;
        let map = Mapping::map_shared(&memfd, len, true)?;
        let (share_fd, share_read_only) = match reopen_read_only(&memfd) {
            Ok(fd) => (fd, true),
            // No /proc (some sandboxes): readers get the memfd itself. They
            // still map it read-only, and the seals still protect them.
            Err(_) => (memfd.try_clone()?, false),
        };
        Ok(Arc::new(WriterSegment {
            id,
            memfd,
            share_fd,
            share_read_only,
            map,
            claims: Mutex::new(BTreeMap::new()),
        }))
    }

    pub fn id(&self) -> SegmentId {
        self.id
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.map.len() as u64
    }

    /// Start of the writer's mapping.
    pub fn as_ptr(&self) -> *const u8 {
        self.map.as_ptr()
    }

    /// The fd to attach to [`crate::Message::NewSegment`].
    pub fn share_fd(&self) -> BorrowedFd<'_> {
        self.share_fd.as_fd()
    }

    /// Whether [`Self::share_fd`] was opened read-only (false only without `/proc`).
    pub fn share_is_read_only(&self) -> bool {
        self.share_read_only
    }

    /// The writable memfd itself (for inspection, e.g. checking seals).
    pub fn memfd(&self) -> BorrowedFd<'_> {
        self.memfd.as_fd()
    }

    /// The message announcing this segment to a reader.
    pub fn announcement(&self) -> NewSegment {
        NewSegment {
            segment: self.id,
            size: self.size(),
        }
    }

    /// Exclusive writable access to `offset..offset+len` until the returned
    /// value is dropped. Fails if the range overlaps another live claim.
    pub fn claim(self: &Arc<Self>, offset: u64, len: u64) -> Result<SlotMemory, ClaimError> {
        if len == 0 {
            return Err(ClaimError::Empty);
        }
        let out_of_bounds = || ClaimError::OutOfBounds {
            segment: self.id,
            offset,
            len,
            segment_size: self.map.len(),
        };
        let start = usize::try_from(offset).map_err(|_| out_of_bounds())?;
        let len_usize = usize::try_from(len).map_err(|_| out_of_bounds())?;
        let end = start.checked_add(len_usize).ok_or_else(out_of_bounds)?;
        if end > self.map.len() {
            return Err(out_of_bounds());
        }
        let mut claims = self.claims.lock().unwrap_or_else(|e| e.into_inner());
        // The only claim that can overlap is the last one starting before `end`.
        if let Some((_, &prev_end)) = claims.range(..end).next_back()
            && prev_end > start
        {
            return Err(ClaimError::Overlap {
                segment: self.id,
                offset,
                len,
            });
        }
        claims.insert(start, end);
        Ok(SlotMemory {
            segment: Arc::clone(self),
            offset: start,
            len: len_usize,
        })
    }

    fn unclaim(&self, offset: usize) {
        let mut claims = self.claims.lock().unwrap_or_else(|e| e.into_inner());
        claims.remove(&offset);
    }
}

fn reopen_read_only(memfd: &OwnedFd) -> io::Result<OwnedFd> {
    use std::os::fd::AsRawFd;
    let path = format!("/proc/self/fd/{}", memfd.as_raw_fd());
    Ok(rustix::fs::open(
        path.as_str(),
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Exclusive, writable view of one range of a [`WriterSegment`]; keeps the
/// segment alive. Suitable for wrapping as writable `GstMemory`.
#[derive(Debug)]
pub struct SlotMemory {
    segment: Arc<WriterSegment>,
    offset: usize,
    len: usize,
}

impl SlotMemory {
    pub fn segment(&self) -> &Arc<WriterSegment> {
        &self.segment
    }

    /// Offset of this range inside its segment.
    pub fn offset(&self) -> u64 {
        self.offset as u64
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl AsRef<[u8]> for SlotMemory {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `offset + len` lies inside the mapping (checked in `claim`),
        // which lives as long as the `Arc` we hold; the claim table guarantees
        // no other `SlotMemory` covers these bytes, so Rust-side aliasing
        // rules hold. Readers in other processes only read slots that the
        // writer has stopped writing (protocol rule, see PROTOCOL.md).
        unsafe { std::slice::from_raw_parts(self.segment.map.as_ptr().add(self.offset), self.len) }
    }
}

impl AsMut<[u8]> for SlotMemory {
    fn as_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_ref`; `&mut self` makes this the only live borrow
        // of the range, and the mapping is writable on the writer side.
        unsafe {
            std::slice::from_raw_parts_mut(self.segment.map.as_ptr().add(self.offset), self.len)
        }
    }
}

impl Drop for SlotMemory {
    fn drop(&mut self) {
        self.segment.unclaim(self.offset);
    }
}

/// Why a received segment or buffer could not be mapped.
#[derive(Debug, Error)]
pub enum MapError {
    #[error("segment {segment:?}: {source}")]
    Io {
        segment: SegmentId,
        #[source]
        source: io::Error,
    },
    #[error("segment {segment:?} announced {announced} bytes but its fd has only {actual}")]
    TooSmall {
        segment: SegmentId,
        announced: u64,
        actual: u64,
    },
    #[error(
        "segment {segment:?} is neither a DMABuf nor sealed against shrinking \
         (seals {seals:#x}); mapping it could raise SIGBUS"
    )]
    NotSealed { segment: SegmentId, seals: u32 },
    #[error("segment {segment:?} is already known")]
    Duplicate { segment: SegmentId },
    #[error("segment {segment:?} refused: already {MAX_READER_SEGMENTS} segments mapped")]
    TooManySegments { segment: SegmentId },
    #[error("buffer refers to unknown segment {segment:?}")]
    UnknownSegment { segment: SegmentId },
    #[error("buffer {offset}+{size} is outside segment {segment:?} of {segment_size} bytes")]
    OutOfBounds {
        segment: SegmentId,
        offset: u64,
        size: u64,
        segment_size: u64,
    },
}

/// A reader's read-only mapping of one segment. Shared by every
/// [`MappedRange`] cut from it; unmapped when the last one is dropped, which
/// may be long after the writer or the connection is gone.
#[derive(Debug)]
pub struct ReaderSegment {
    id: SegmentId,
    /// A DMABuf's fd, kept to end the CPU access bracket before unmapping.
    dmabuf: Option<OwnedFd>,
    map: Mapping,
}

impl Drop for ReaderSegment {
    fn drop(&mut self) {
        if let Some(fd) = &self.dmabuf {
            // Nothing to do about a failure while letting go of the memory.
            let _ = crate::shareable_fd::dmabuf_sync(fd, crate::shareable_fd::SyncStep::End);
        }
        // `map` is unmapped after this, by its own Drop.
    }
}

impl ReaderSegment {
    /// Checks that `fd` cannot shrink (a memfd sealed against shrinking, or a
    /// DMABuf) and is at least `size` bytes long, then maps it read-only. A
    /// memfd is closed afterwards: the mapping alone keeps the memory alive. A
    /// DMABuf's fd is kept: CPU reads are bracketed with `DMA_BUF_IOCTL_SYNC`
    /// (start now, end when the mapping goes), so non-coherent exporters
    /// flush or invalidate caches as the DMABuf uAPI requires.
    pub fn map(id: SegmentId, fd: OwnedFd, size: u64) -> Result<Arc<Self>, MapError> {
        let io_err = |source: io::Error| MapError::Io {
            segment: id,
            source,
        };
        // A sealed memfd or a DMABuf: neither can shrink below the size checked here.
        let (kind, actual) = match crate::shareable_fd::classify(&fd) {
            Ok(shareable) => (shareable.kind, shareable.size),
            Err(crate::shareable_fd::NotShareable::MayShrink { seals }) => {
                return Err(MapError::NotSealed { segment: id, seals });
            }
            Err(crate::shareable_fd::NotShareable::Io(err)) => return Err(io_err(err)),
        };
        if actual < size {
            return Err(MapError::TooSmall {
                segment: id,
                announced: size,
                actual,
            });
        }
        let len = usize::try_from(size).map_err(|_| {
            io_err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "segment size exceeds usize",
            ))
        })?;
        let map = Mapping::map_shared(&fd, len, false).map_err(io_err)?;
        let dmabuf = match kind {
            crate::shareable_fd::ShareableKind::DmaBuf => {
                crate::shareable_fd::dmabuf_sync(&fd, crate::shareable_fd::SyncStep::Start)
                    .map_err(io_err)?;
                Some(fd)
            }
            crate::shareable_fd::ShareableKind::SealedMemfd => None,
        };
        Ok(Arc::new(ReaderSegment { id, dmabuf, map }))
    }

    pub fn id(&self) -> SegmentId {
        self.id
    }

    pub fn size(&self) -> u64 {
        self.map.len() as u64
    }

    /// Start of this process's mapping.
    pub fn as_ptr(&self) -> *const u8 {
        self.map.as_ptr()
    }

    /// Whether `ptr..ptr+len` lies inside this mapping.
    pub fn contains(&self, ptr: *const u8, len: usize) -> bool {
        let start = self.map.as_ptr() as usize;
        let end = start + self.map.len();
        let p = ptr as usize;
        p >= start && p.checked_add(len).is_some_and(|e| e <= end)
    }

    /// A read-only view of `offset..offset+size`, keeping the mapping alive.
    pub fn range(self: &Arc<Self>, offset: u64, size: u64) -> Result<MappedRange, MapError> {
        let out_of_bounds = || MapError::OutOfBounds {
            segment: self.id,
            offset,
            size,
            segment_size: self.size(),
        };
        let end = offset.checked_add(size).ok_or_else(out_of_bounds)?;
        if end > self.size() {
            return Err(out_of_bounds());
        }
        Ok(MappedRange {
            segment: Arc::clone(self),
            // Both fit: they are bounded by the mapping length, a usize.
            offset: offset as usize,
            len: size as usize,
        })
    }
}

/// Read-only view of one buffer inside a [`ReaderSegment`]. Suitable for
/// wrapping as read-only `GstMemory`; the element pairs it with sending
/// [`crate::Message::Release`] when the memory is freed.
#[derive(Debug, Clone)]
pub struct MappedRange {
    segment: Arc<ReaderSegment>,
    offset: usize,
    len: usize,
}

impl MappedRange {
    pub fn segment(&self) -> &Arc<ReaderSegment> {
        &self.segment
    }

    pub fn offset(&self) -> u64 {
        self.offset as u64
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn as_ptr(&self) -> *const u8 {
        self.as_ref().as_ptr()
    }
}

impl AsRef<[u8]> for MappedRange {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `offset + len <= mapping length` (checked in `range`); the
        // mapping lives as long as the `Arc` we hold and is sealed against
        // shrinking, so every byte stays readable. The writer does not write
        // a slot while a reader holds it (protocol rule, PROTOCOL.md).
        unsafe { std::slice::from_raw_parts(self.segment.map.as_ptr().add(self.offset), self.len) }
    }
}

/// The segments a reader currently knows, by id.
#[derive(Debug, Default)]
pub struct ReaderSegments {
    segments: HashMap<SegmentId, Arc<ReaderSegment>>,
}

impl ReaderSegments {
    pub fn new() -> Self {
        Self::default()
    }

    /// Maps a segment announced by [`crate::Message::NewSegment`] with the
    /// fd that came with it.
    pub fn insert(&mut self, announced: NewSegment, fd: OwnedFd) -> Result<(), MapError> {
        if self.segments.contains_key(&announced.segment) {
            return Err(MapError::Duplicate {
                segment: announced.segment,
            });
        }
        if self.segments.len() >= MAX_READER_SEGMENTS {
            return Err(MapError::TooManySegments {
                segment: announced.segment,
            });
        }
        let mapping = ReaderSegment::map(announced.segment, fd, announced.size)?;
        self.segments.insert(announced.segment, mapping);
        Ok(())
    }

    /// Forgets a segment; buffers still held keep their mapping alive.
    /// Returns whether it was known.
    pub fn retire(&mut self, segment: SegmentId) -> bool {
        self.segments.remove(&segment).is_some()
    }

    pub fn get(&self, segment: SegmentId) -> Option<&Arc<ReaderSegment>> {
        self.segments.get(&segment)
    }

    /// The memory a buffer descriptor points at.
    pub fn range(&self, descriptor: &BufferDescriptor) -> Result<MappedRange, MapError> {
        self.segments
            .get(&descriptor.segment)
            .ok_or(MapError::UnknownSegment {
                segment: descriptor.segment,
            })?
            .range(descriptor.offset, descriptor.size)
    }

    pub fn len(&self) -> usize {
        self.segments.len()
    }

    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// Forgets every segment (writer gone); held buffers stay valid.
    pub fn clear(&mut self) {
        self.segments.clear();
    }
}
