// SPDX-License-Identifier: MPL-2.0
//! Compound controls through raw `v4l2_ext_control` arrays (v4l2r wraps only some of the
//! stateless controls, e.g. not `VP9_COMPRESSED_HDR`).

use std::os::fd::AsRawFd;

use v4l2r::bindings;
use v4l2r::ioctl::{CtrlId, CtrlWhich, QueryCtrlFlags, g_ctrl, query_ext_ctrl, s_ext_ctrls};

use crate::stateless::backend::Control;

/// Sets `controls`, in a request (`Some(request_fd)`) or on the device now (`None`).
pub fn set(
    video: &impl AsRawFd,
    request: Option<i32>,
    controls: &mut [Control],
) -> Result<(), String> {
    let mut raw: Vec<bindings::v4l2_ext_control> = controls
        .iter_mut()
        .map(|c| {
            let (ptr, size) = c.payload();
            let mut ctrl = bindings::v4l2_ext_control {
                id: c.id(),
                size,
                ..Default::default()
            };
            // `ptr` points into `controls`, which outlives the ioctl below.
            ctrl.__bindgen_anon_1.ptr = ptr;
            ctrl
        })
        .collect();
    let which = match request {
        Some(fd) => CtrlWhich::Request(fd),
        None => CtrlWhich::Current,
    };
    s_ext_ctrls(video, which, raw.as_mut_slice()).map_err(|e| {
        let name = controls
            .get(e.error_idx as usize)
            .map(|c| format!("{c:?}"))
            .unwrap_or_else(|| "controls".into());
        format!("VIDIOC_S_EXT_CTRLS {name}: {e}")
    })
}

/// Whether the driver exposes control `id` (e.g. the optional VP9 compressed header).
pub fn exists(video: &impl AsRawFd, id: u32) -> bool {
    let Ok(id) = CtrlId::new(id) else {
        return false;
    };
    query_ext_ctrl::<bindings::v4l2_query_ext_ctrl>(video, id, QueryCtrlFlags::empty()).is_ok()
}

/// The current value of a plain (integer or menu) control, e.g. the H.264 decode mode.
pub fn value(video: &impl AsRawFd, id: u32) -> Option<i32> {
    g_ctrl(video, id).ok()
}
