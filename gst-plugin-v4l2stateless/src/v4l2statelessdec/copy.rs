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
pub(super) fn plane_geometry(layout: &CaptureLayout) -> Vec<(usize, usize, usize)> {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A CAPTURE picture whose every byte says where it is: plane p, row r, column c
    /// holds `p * 100 + r * 10 + c` (wrapping), with padding bytes of 0xEE.
    fn capture(fourcc: [u8; 4], width: usize, height: usize, stride: usize) -> Vec<u8> {
        let planes: Vec<(usize, usize, usize)> = match &fourcc {
            b"NV12" => vec![(stride, height, width), (stride, height / 2, width)],
            _ => vec![
                (stride, height, width),
                (stride / 2, height / 2, width / 2),
                (stride / 2, height / 2, width / 2),
            ],
        };
        let mut data = Vec::new();
        for (p, (plane_stride, rows, row_bytes)) in planes.into_iter().enumerate() {
            for r in 0..rows {
                for c in 0..plane_stride {
                    data.push(if c < row_bytes {
                        (p * 100 + r * 10 + c) as u8
                    } else {
                        0xEE
                    });
                }
            }
        }
        data
    }

    fn check(fourcc: [u8; 4], format: VideoFormat) {
        gst::init().unwrap();
        let (width, height, stride) = (8usize, 4usize, 16usize);
        let layout = CaptureLayout {
            fourcc,
            width: width as u32,
            height: height as u32,
            planes: vec![(stride as u32, (stride * height * 3 / 2) as u32)],
        };
        let src = capture(fourcc, width, height, stride);
        let info = gst_video::VideoInfo::builder(format, width as u32, height as u32)
            .build()
            .unwrap();
        let mut buffer = gst::Buffer::with_size(info.size()).unwrap();
        {
            let mut frame = gst_video::VideoFrameRef::from_buffer_ref_writable(
                buffer.get_mut().unwrap(),
                &info,
            )
            .unwrap();
            copy_picture(&layout, &[&src], &mut frame).unwrap();
        }
        let frame = gst_video::VideoFrame::from_buffer_readable(buffer, &info).unwrap();
        for p in 0..frame.n_planes() {
            let data = frame.plane_data(p).unwrap();
            let dst_stride = frame.plane_stride()[p as usize] as usize;
            let row_bytes = (frame.comp_width(p) * frame.comp_pstride(p) as u32) as usize;
            for r in 0..frame.comp_height(p) as usize {
                for c in 0..row_bytes {
                    assert_eq!(
                        data[r * dst_stride + c],
                        (p as usize * 100 + r * 10 + c) as u8,
                        "{format:?} plane {p} row {r} column {c}"
                    );
                }
            }
        }
        // A CAPTURE buffer shorter than its format says is an error, not a panic.
        let gst_buffer = gst::Buffer::with_size(info.size()).unwrap();
        let mut short = gst_buffer;
        let mut frame =
            gst_video::VideoFrameRef::from_buffer_ref_writable(short.get_mut().unwrap(), &info)
                .unwrap();
        assert!(copy_picture(&layout, &[&src[..src.len() / 2]], &mut frame).is_err());
    }

    #[test]
    fn nv12_planes_are_copied_row_by_row_without_padding() {
        check(*b"NV12", VideoFormat::Nv12);
    }

    #[test]
    fn yu12_planes_are_copied_row_by_row_without_padding() {
        check(*b"YU12", VideoFormat::I420);
    }
}
