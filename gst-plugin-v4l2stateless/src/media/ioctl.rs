// SPDX-License-Identifier: MPL-2.0
//! The two media-controller ioctls the scan needs (v4l2r binds only videodev2.h).
//!
//! Layouts mirror `<linux/media.h>`; their sizes are checked at compile time against the
//! sizes encoded in the ioctl numbers.

use std::os::fd::{AsRawFd, BorrowedFd};

use super::topology::{Entity, Interface, Link, Pad, Topology};

#[repr(C)]
#[derive(Clone, Copy)]
struct MediaDeviceInfo {
    driver: [u8; 16],
    model: [u8; 32],
    serial: [u8; 40],
    bus_info: [u8; 32],
    media_version: u32,
    hw_revision: u32,
    driver_version: u32,
    reserved: [u32; 31],
}

#[repr(C, packed)]
#[derive(Clone, Copy)]
struct MediaV2Entity {
    id: u32,
    name: [u8; 64],
    function: u32,
    flags: u32,
    reserved: [u32; 5],
}

#[repr(C, packed)]
#[derive(Clone, Copy)]
struct MediaV2Interface {
    id: u32,
    intf_type: u32,
    flags: u32,
    reserved: [u32; 9],
    // union { struct media_v2_intf_devnode { major, minor }; __u32 raw[16]; }
    raw: [u32; 16],
}

#[repr(C, packed)]
#[derive(Clone, Copy)]
struct MediaV2Pad {
    id: u32,
    entity_id: u32,
    flags: u32,
    index: u32,
    reserved: [u32; 4],
}

#[repr(C, packed)]
#[derive(Clone, Copy)]
struct MediaV2Link {
    id: u32,
    source_id: u32,
    sink_id: u32,
    flags: u32,
    reserved: [u32; 6],
}

#[repr(C, packed)]
#[derive(Clone, Copy, Default)]
struct MediaV2Topology {
    topology_version: u64,
    num_entities: u32,
    reserved1: u32,
    ptr_entities: u64,
    num_interfaces: u32,
    reserved2: u32,
    ptr_interfaces: u64,
    num_pads: u32,
    reserved3: u32,
    ptr_pads: u64,
    num_links: u32,
    reserved4: u32,
    ptr_links: u64,
}

const fn iowr(ty: u8, nr: u8, size: usize) -> libc::c_ulong {
    ((3 << 30) | ((size as u32) << 16) | ((ty as u32) << 8) | nr as u32) as libc::c_ulong
}

const MEDIA_IOC_DEVICE_INFO: libc::c_ulong = iowr(b'|', 0x00, size_of::<MediaDeviceInfo>());
const MEDIA_IOC_G_TOPOLOGY: libc::c_ulong = iowr(b'|', 0x04, size_of::<MediaV2Topology>());

// Sizes from <linux/media.h>; a mismatch would make the kernel reject (or worse, misread) the call.
const _: () = assert!(size_of::<MediaDeviceInfo>() == 256);
const _: () = assert!(size_of::<MediaV2Topology>() == 72);
const _: () = assert!(size_of::<MediaV2Entity>() == 96);
const _: () = assert!(size_of::<MediaV2Interface>() == 112);
const _: () = assert!(size_of::<MediaV2Link>() == 40);
const _: () = assert!(size_of::<MediaV2Pad>() == 32);

fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// `MEDIA_IOC_DEVICE_INFO`: the driver name (e.g. "visl", "vicodec").
pub(super) fn driver_name(fd: BorrowedFd<'_>) -> std::io::Result<String> {
    // SAFETY: all-zero bytes are a valid MediaDeviceInfo (integers and byte arrays only).
    let mut info: MediaDeviceInfo = unsafe { std::mem::zeroed() };
    // SAFETY: the fd is open for the call's duration, and `info` is a properly sized,
    // writable struct whose size is the one encoded in the request number.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), MEDIA_IOC_DEVICE_INFO, &mut info) };
    if ret < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(c_string(&info.driver))
}

/// `MEDIA_IOC_G_TOPOLOGY`, called twice: once for the counts, once to fill the arrays.
/// Retries if the topology changed between the two calls.
pub(super) fn topology(fd: BorrowedFd<'_>) -> std::io::Result<Topology> {
    for _ in 0..4 {
        let mut counts = MediaV2Topology::default();
        // SAFETY: null array pointers ask the kernel for counts only; `counts` is a valid,
        // writable struct of the size encoded in the request number.
        let ret = unsafe { libc::ioctl(fd.as_raw_fd(), MEDIA_IOC_G_TOPOLOGY, &mut counts) };
        if ret < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let zero_entity = MediaV2Entity {
            id: 0,
            name: [0; 64],
            function: 0,
            flags: 0,
            reserved: [0; 5],
        };
        let zero_interface = MediaV2Interface {
            id: 0,
            intf_type: 0,
            flags: 0,
            reserved: [0; 9],
            raw: [0; 16],
        };
        let zero_link = MediaV2Link {
            id: 0,
            source_id: 0,
            sink_id: 0,
            flags: 0,
            reserved: [0; 6],
        };
        let mut entities = vec![zero_entity; counts.num_entities as usize];
        let mut interfaces = vec![zero_interface; counts.num_interfaces as usize];
        let zero_pad = MediaV2Pad {
            id: 0,
            entity_id: 0,
            flags: 0,
            index: 0,
            reserved: [0; 4],
        };
        let mut pads = vec![zero_pad; counts.num_pads as usize];
        let mut links = vec![zero_link; counts.num_links as usize];
        let mut query = MediaV2Topology {
            topology_version: 0,
            num_entities: counts.num_entities,
            ptr_entities: entities.as_mut_ptr() as u64,
            num_interfaces: counts.num_interfaces,
            ptr_interfaces: interfaces.as_mut_ptr() as u64,
            num_pads: counts.num_pads,
            ptr_pads: pads.as_mut_ptr() as u64,
            num_links: counts.num_links,
            ptr_links: links.as_mut_ptr() as u64,
            ..Default::default()
        };
        // SAFETY: each pointer refers to a live Vec with exactly `num_*` elements of the
        // kernel's layout; the kernel writes at most that many and fails with ENOSPC if
        // the topology grew, which we treat as "retry".
        let ret = unsafe { libc::ioctl(fd.as_raw_fd(), MEDIA_IOC_G_TOPOLOGY, &mut query) };
        if ret < 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::ENOSPC) {
                continue;
            }
            return Err(err);
        }
        if query.topology_version != counts.topology_version {
            continue;
        }
        let take = |n: u32, len: usize| (n as usize).min(len);
        entities.truncate(take(query.num_entities, entities.len()));
        interfaces.truncate(take(query.num_interfaces, interfaces.len()));
        pads.truncate(take(query.num_pads, pads.len()));
        links.truncate(take(query.num_links, links.len()));
        return Ok(Topology {
            entities: entities
                .iter()
                .map(|e| Entity {
                    id: e.id,
                    name: c_string(&{ e.name }),
                    function: e.function,
                })
                .collect(),
            interfaces: interfaces
                .iter()
                .map(|i| {
                    let raw = i.raw;
                    Interface {
                        id: i.id,
                        intf_type: i.intf_type,
                        major: raw[0],
                        minor: raw[1],
                    }
                })
                .collect(),
            pads: pads
                .iter()
                .map(|p| Pad {
                    id: p.id,
                    entity_id: p.entity_id,
                })
                .collect(),
            links: links
                .iter()
                .map(|l| Link {
                    source_id: l.source_id,
                    sink_id: l.sink_id,
                    flags: l.flags,
                })
                .collect(),
        });
    }
    Err(std::io::Error::other(
        "media topology kept changing while it was read",
    ))
}
