// SPDX-License-Identifier: MPL-2.0
//! Copies a decoded CAPTURE picture into a system-memory video frame.

use gst_video::VideoFormat;
use gst_video::prelude::*;

use crate::v4l2::CaptureLayout;

/// CAPTURE formats the element can output, best first, with their GStreamer format.
pub const FORMATS: &[([u8; 4], VideoFormat)] =
    &[(*b"NV12", VideoFormat::Nv12), (*b"YU12", VideoFormat::I420)];

/// (offset, stride, rows) of each component plane inside the single memory plane of
/// `layout`, for `visible_height` rows of picture.
fn plane_geometry(layout: &CaptureLayout) -> Vec<(usize, usize, usize)> {
    let stride = layout.planes.first().map_or(0, |p| p.0) as usize;
    let height = layout.height as usize;
    let luma = stride * height;
    match &layout.fourcc {
        b"NV12" => vec![(0, stride, height), (luma, stride, height.div_ceil(2))],
        b"YU12" => {
            let chroma_stride = stride / 2;
            let chroma = chroma_stride * height.div_ceil(2);
            vec![
                (0, stride, height),
                (luma, chroma_stride, height.div_ceil(2)),
                (luma + chroma, chroma_stride, height.div_ceil(2)),
            ]
        }
        _ => Vec::new(),
    }
}

/// Copies `src` (the mapped planes of a CAPTURE buffer laid out as `layout`) into
/// `frame`. Fails on a layout that does not match the frame or a short buffer.
pub fn copy_picture(
    layout: &CaptureLayout,
    src: &[&[u8]],
    frame: &mut gst_video::VideoFrameRef<&mut gst::BufferRef>,
) -> Result<(), String> {
    let geometry = plane_geometry(layout);
    let Some(data) = src.first() else {
        return Err("CAPTURE buffer has no plane".into());
    };
    if geometry.len() != frame.n_planes() as usize {
        return Err(format!(
            "CAPTURE format {} has {} planes, the output frame {}",
            String::from_utf8_lossy(&layout.fourcc),
            geometry.len(),
            frame.n_planes()
        ));
    }
    for (plane, (offset, src_stride, _)) in geometry.into_iter().enumerate() {
        let dst_stride = frame.plane_stride()[plane] as usize;
        let rows = frame.comp_height(plane as u32) as usize;
        let row_bytes =
            (frame.comp_width(plane as u32) * frame.comp_pstride(plane as u32) as u32) as usize;
        let dst = frame
            .plane_data_mut(plane as u32)
            .map_err(|e| format!("output plane {plane}: {e}"))?;
        for row in 0..rows {
            let s = offset + row * src_stride;
            let d = row * dst_stride;
            let (Some(from), Some(to)) =
                (data.get(s..s + row_bytes), dst.get_mut(d..d + row_bytes))
            else {
                return Err(format!(
                    "CAPTURE plane {plane} is shorter than its format says"
                ));
            };
            to.copy_from_slice(from);
        }
    }
    Ok(())
}
