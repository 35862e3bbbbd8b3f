// SPDX-License-Identifier: MPL-2.0
//! Probing a decoder's video node: is it a memory-to-memory device, which queue types it
//! uses, and which stateless codecs its OUTPUT queue accepts.

use std::fs::File;
use std::path::Path;

use v4l2r::QueueType;
use v4l2r::ioctl::{Capabilities, Capability, FormatIterator, querycap};

use crate::codec::Codec;

/// What a video node offers for stateless decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCodecs {
    pub driver: String,
    pub card: String,
    /// Multi-planar API (`VIDEO_M2M_MPLANE`) or single-planar (`VIDEO_M2M`).
    pub mplane: bool,
    pub codecs: Vec<Codec>,
}

/// Opens `video_device` and lists the stateless codecs on its OUTPUT queue.
pub fn probe(video_device: &Path) -> Result<DeviceCodecs, String> {
    let file = File::options()
        .read(true)
        .write(true)
        .open(video_device)
        .map_err(|e| format!("cannot open {}: {e}", video_device.display()))?;
    let caps: Capability = querycap(&file)
        .map_err(|e| format!("VIDIOC_QUERYCAP on {}: {e}", video_device.display()))?;
    let device_caps = caps.device_caps();
    let mplane = if device_caps.contains(Capabilities::VIDEO_M2M_MPLANE) {
        true
    } else if device_caps.contains(Capabilities::VIDEO_M2M) {
        false
    } else {
        return Err(format!(
            "{} ({}) is not a memory-to-memory device",
            video_device.display(),
            caps.driver
        ));
    };
    let queue = if mplane {
        QueueType::VideoOutputMplane
    } else {
        QueueType::VideoOutput
    };
    let mut codecs: Vec<Codec> = FormatIterator::new(&file, queue)
        .filter_map(|desc| Codec::from_fourcc(desc.pixelformat.into()))
        .collect();
    codecs.sort();
    codecs.dedup();
    Ok(DeviceCodecs {
        driver: caps.driver,
        card: caps.card,
        mplane,
        codecs,
    })
}
