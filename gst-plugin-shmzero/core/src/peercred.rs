// SPDX-License-Identifier: MPL-2.0
//! `SO_PEERCRED` read by hand: the kernel reports pid 0 for a peer in a PID
//! namespace we cannot see (a sandboxed reader), which a non-zero pid type
//! cannot hold.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// `(pid, uid, gid)` of the peer at connection time; pid 0 when it lives in
/// a PID namespace invisible from ours.
pub(crate) fn peer_credentials(fd: BorrowedFd<'_>) -> io::Result<(i32, u32, u32)> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `fd` is a live descriptor for the duration of the borrow;
    // `cred` is a properly aligned, writable `ucred` and `len` tells the
    // kernel its exact size, so it writes nothing beyond it.
    let result = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&raw mut cred).cast(),
            &mut len,
        )
    };
    if result != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((cred.pid, cred.uid, cred.gid))
}
