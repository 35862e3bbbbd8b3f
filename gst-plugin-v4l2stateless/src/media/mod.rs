// SPDX-License-Identifier: MPL-2.0
//! Finding stateless decoders through the media controller, without udev.
//!
//! A stateless decoder exposes a media device whose topology has an entity with function
//! `MEDIA_ENT_F_PROC_VIDEO_DECODER`; an interface link ties that entity to the V4L2 video
//! interface whose device node (major:minor) we open for the memory-to-memory queues.
//! The media device itself is what requests are allocated on.

mod ioctl;
pub mod scan;
pub mod topology;
