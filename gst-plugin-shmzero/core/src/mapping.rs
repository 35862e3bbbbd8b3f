// SPDX-License-Identifier: MPL-2.0
//! The only place that calls `mmap`/`munmap`: a shared mapping of a whole fd,
//! unmapped on drop.

use std::io;
use std::os::fd::AsFd;
use std::ptr::NonNull;

use rustix::mm::{MapFlags, ProtFlags};

/// A `MAP_SHARED` mapping of `len` bytes from offset 0 of a file.
#[derive(Debug)]
pub(crate) struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by this value; nothing about it is
// tied to the creating thread, and `&Mapping` only hands out raw pointers.
unsafe impl Send for Mapping {}
// SAFETY: as above; shared access only exposes the address and length.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `len` bytes of `fd`. `len` must be non-zero and the file at least
    /// that long (callers check size and seals first, so access never faults).
    pub(crate) fn map_shared(fd: impl AsFd, len: usize, writable: bool) -> io::Result<Self> {
        if len == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot map an empty segment",
            ));
        }
        let prot = if writable {
            ProtFlags::READ | ProtFlags::WRITE
        } else {
            ProtFlags::READ
        };
        // SAFETY: a null hint lets the kernel pick a fresh address range, so no
        // existing Rust object is aliased or replaced; the result is owned by
        // the returned value and released exactly once in `drop`.
        let ptr =
            unsafe { rustix::mm::mmap(std::ptr::null_mut(), len, prot, MapFlags::SHARED, fd, 0)? };
        let ptr = NonNull::new(ptr.cast::<u8>())
            .ok_or_else(|| io::Error::other("mmap returned a null address"))?;
        Ok(Mapping { ptr, len })
    }

    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` describe exactly the region returned by `mmap`
        // in `map_shared`, and every borrow of it (`SlotMemory`,
        // `MappedRange`) holds an `Arc` to the owner of this value, so none
        // outlives it. A failure here cannot be acted on; ignore it.
        let _ = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}
