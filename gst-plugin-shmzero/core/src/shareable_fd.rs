// SPDX-License-Identifier: MPL-2.0
//! Which fds a reader may map: only those whose size can never drop below what
//! was checked, so an access inside the mapping can never raise `SIGBUS`.
//!
//! * a memfd sealed with `F_SEAL_SHRINK` (our own segments, or a producer's);
//! * a DMABuf: its size is fixed when it is exported and cannot change.
//!
//! Anything else (a plain file, an unsealed memfd, a socket…) is refused: the
//! writer copies such memory once and the reader never maps it.

use std::io;
use std::os::fd::AsFd;

use rustix::fs::{SealFlags, SeekFrom};

/// `DMA_BUF_MAGIC` from `<linux/magic.h>`: the `f_type` of a DMABuf's filesystem.
const DMA_BUF_MAGIC: u64 = 0x444d_4142;

/// What kind of fixed-size memory an fd refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShareableKind {
    SealedMemfd,
    DmaBuf,
}

/// An fd that is safe to map, with its size in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shareable {
    pub kind: ShareableKind,
    pub size: u64,
}

/// Why an fd may not be mapped.
#[derive(Debug, thiserror::Error)]
pub enum NotShareable {
    #[error("neither a DMABuf nor a memfd sealed against shrinking (seals {seals:#x})")]
    MayShrink { seals: u32 },
    #[error("cannot query the fd: {0}")]
    Io(#[from] io::Error),
}

/// Classifies `fd` and returns its current size; for both kinds that size is final.
pub fn classify(fd: impl AsFd) -> Result<Shareable, NotShareable> {
    let fd = fd.as_fd();
    if is_dmabuf(fd) {
        // The DMABuf uAPI gives the size through llseek(SEEK_END); fstat reports it
        // only on recent kernels. The file position of a DMABuf means nothing, so
        // moving it is harmless for every holder of the fd.
        let size = rustix::fs::seek(fd, SeekFrom::End(0)).map_err(io::Error::from)?;
        return Ok(Shareable {
            kind: ShareableKind::DmaBuf,
            size,
        });
    }
    let seals = rustix::fs::fcntl_get_seals(fd).unwrap_or(SealFlags::empty());
    if !seals.contains(SealFlags::SHRINK) {
        return Err(NotShareable::MayShrink {
            seals: seals.bits(),
        });
    }
    let size = rustix::fs::fstat(fd).map_err(io::Error::from)?.st_size;
    Ok(Shareable {
        kind: ShareableKind::SealedMemfd,
        size: u64::try_from(size).unwrap_or(0),
    })
}

/// Which end of a CPU read access to a DMABuf (`DMA_BUF_SYNC_START` / `_END`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncStep {
    Start,
    End,
}

/// `DMA_BUF_IOCTL_SYNC = _IOW('b', 0, struct dma_buf_sync { __u64 flags; })`.
const DMA_BUF_IOCTL_SYNC: rustix::ioctl::Opcode = rustix::ioctl::opcode::write::<u64>(b'b', 0);
const DMA_BUF_SYNC_READ: u64 = 1 << 0;
const DMA_BUF_SYNC_END: u64 = 1 << 2;

/// Brackets CPU reads of a DMABuf, as its uAPI asks of every CPU user (a no-op on
/// cache-coherent exporters). Retries on `EINTR`/`EAGAIN`, as the kernel documents.
pub fn dmabuf_sync(fd: impl AsFd, step: SyncStep) -> io::Result<()> {
    let flags = DMA_BUF_SYNC_READ
        | match step {
            SyncStep::Start => 0,
            SyncStep::End => DMA_BUF_SYNC_END,
        };
    loop {
        // SAFETY: DMA_BUF_IOCTL_SYNC is an _IOW ioctl whose argument is exactly
        // `struct dma_buf_sync { __u64 flags; }`, which a u64 matches in size
        // and layout; the kernel only reads it.
        let result = unsafe {
            rustix::ioctl::ioctl(
                fd.as_fd(),
                rustix::ioctl::Setter::<DMA_BUF_IOCTL_SYNC, u64>::new(flags),
            )
        };
        match result {
            Ok(()) => return Ok(()),
            Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => continue,
            Err(err) => return Err(err.into()),
        }
    }
}

fn is_dmabuf(fd: std::os::fd::BorrowedFd<'_>) -> bool {
    // `f_type`'s integer type differs between architectures; widen it as bits.
    #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
    rustix::fs::fstatfs(fd).is_ok_and(|fs| fs.f_type as u64 == DMA_BUF_MAGIC)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::fs::MemfdFlags;

    fn memfd(len: u64) -> std::os::fd::OwnedFd {
        let fd = rustix::fs::memfd_create("shareable-test", MemfdFlags::ALLOW_SEALING).unwrap();
        rustix::fs::ftruncate(&fd, len).unwrap();
        fd
    }

    #[test]
    fn sealed_memfd_is_shareable_with_its_size() {
        let fd = memfd(8192);
        rustix::fs::fcntl_add_seals(&fd, SealFlags::SHRINK).unwrap();
        let shareable = classify(&fd).unwrap();
        assert_eq!(shareable.kind, ShareableKind::SealedMemfd);
        assert_eq!(shareable.size, 8192);
    }

    #[test]
    fn unsealed_memfd_and_plain_file_are_refused() {
        assert!(matches!(
            classify(memfd(4096)),
            Err(NotShareable::MayShrink { .. })
        ));
        let file = std::fs::File::open("/proc/self/exe").unwrap();
        assert!(matches!(
            classify(&file),
            Err(NotShareable::MayShrink { .. })
        ));
    }
}
