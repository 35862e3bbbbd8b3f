// SPDX-License-Identifier: MPL-2.0
//! `GstVideoMeta` ⇄ the descriptor's [`VideoLayout`], so strides and plane offsets chosen by
//! the writer's pool (with upstream's `GstVideoAlignment` padding) survive the trip.

use gst::glib::translate::{FromGlib, IntoGlib};
use shmzero_core::VideoLayout;
use shmzero_core::protocol::MAX_PLANES;

/// The layout of `buffer`: its `GstVideoMeta` if it has one, else the default layout of
/// `info` (tightly packed, as GStreamer assumes for a buffer without meta).
pub fn layout_of(
    buffer: &gst::BufferRef,
    info: Option<&gst_video::VideoInfo>,
) -> Option<VideoLayout> {
    if let Some(meta) = buffer.meta::<gst_video::VideoMeta>() {
        let n_planes = meta.n_planes() as usize;
        if n_planes == 0 || n_planes > MAX_PLANES {
            return None;
        }
        let mut offsets = [0u64; MAX_PLANES];
        let mut strides = [0i32; MAX_PLANES];
        for plane in 0..n_planes {
            offsets[plane] = meta.offset()[plane] as u64;
            strides[plane] = meta.stride()[plane];
        }
        return Some(VideoLayout {
            format: meta.format().into_glib() as u32,
            width: meta.width(),
            height: meta.height(),
            n_planes: n_planes as u8,
            offsets,
            strides,
        });
    }
    let info = info?;
    let n_planes = info.n_planes() as usize;
    if n_planes == 0 || n_planes > MAX_PLANES {
        return None;
    }
    let mut offsets = [0u64; MAX_PLANES];
    let mut strides = [0i32; MAX_PLANES];
    for plane in 0..n_planes {
        offsets[plane] = info.offset()[plane] as u64;
        strides[plane] = info.stride()[plane];
    }
    Some(VideoLayout {
        format: info.format().into_glib() as u32,
        width: info.width(),
        height: info.height(),
        n_planes: n_planes as u8,
        offsets,
        strides,
    })
}

/// Adds a `GstVideoMeta` describing `layout` to `buffer`. Fails (returning why) when the
/// layout does not fit the buffer: a corrupt or hostile descriptor must not make a
/// downstream element read past the memory.
pub fn add_meta(buffer: &mut gst::BufferRef, layout: &VideoLayout) -> Result<(), String> {
    // SAFETY: GstVideoFormat is a C enum held as int; unknown values are mapped to
    // `__Unknown` by from_glib, which we reject below.
    let format = unsafe { gst_video::VideoFormat::from_glib(layout.format as i32) };
    if matches!(
        format,
        gst_video::VideoFormat::Unknown | gst_video::VideoFormat::Encoded
    ) || matches!(format, gst_video::VideoFormat::__Unknown(_))
    {
        return Err(format!("unknown video format {}", layout.format));
    }
    let n_planes = usize::from(layout.n_planes);
    if n_planes == 0 || n_planes > MAX_PLANES {
        return Err(format!("{n_planes} planes"));
    }
    let size = buffer.size() as u64;
    let offsets: Vec<usize> = layout.offsets[..n_planes]
        .iter()
        .map(|&o| usize::try_from(o).unwrap_or(usize::MAX))
        .collect();
    if layout.offsets[..n_planes].iter().any(|&o| o >= size) {
        return Err(format!(
            "plane offsets {offsets:?} outside a {size}-byte buffer"
        ));
    }
    let finfo = gst_video::VideoFormatInfo::from_format(format);
    for plane in 0..n_planes {
        // Rows of this plane: the tallest component stored in it (chroma may be subsampled).
        let rows = (0..finfo.n_components())
            .filter(|&c| finfo.plane()[c as usize] as usize == plane)
            .map(|c| finfo.scale_height(c as u8, layout.height))
            .max()
            .unwrap_or(layout.height);
        let stride = layout.strides[plane];
        let end = u64::try_from(stride)
            .ok()
            .filter(|&s| s > 0)
            .and_then(|s| s.checked_mul(u64::from(rows)))
            .and_then(|bytes| bytes.checked_add(layout.offsets[plane]));
        match end {
            Some(end) if end <= size => {}
            _ => {
                return Err(format!(
                    "plane {plane} (offset {}, stride {stride}, {rows} rows) does not fit a \
                     {size}-byte buffer",
                    layout.offsets[plane]
                ));
            }
        }
    }
    gst_video::VideoMeta::add_full(
        buffer,
        gst_video::VideoFrameFlags::empty(),
        format,
        layout.width,
        layout.height,
        &offsets,
        &layout.strides[..n_planes],
    )
    .map(|_| ())
    .map_err(|err| err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_layout_survives_the_round_trip() {
        gst::init().unwrap();
        let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::I420, 100, 50)
            .build()
            .unwrap();
        let mut buffer = gst::Buffer::with_size(info.size() + 4096).unwrap();
        let offsets = [0usize, 128 * 50, 128 * 50 + 64 * 25];
        let strides = [128i32, 64, 64];
        gst_video::VideoMeta::add_full(
            buffer.get_mut().unwrap(),
            gst_video::VideoFrameFlags::empty(),
            gst_video::VideoFormat::I420,
            100,
            50,
            &offsets,
            &strides,
        )
        .unwrap();
        let layout = layout_of(&buffer, Some(&info)).unwrap();
        assert_eq!(layout.strides[..3], strides);

        let mut copy = gst::Buffer::with_size(buffer.size()).unwrap();
        add_meta(copy.get_mut().unwrap(), &layout).unwrap();
        let meta = copy.meta::<gst_video::VideoMeta>().unwrap();
        assert_eq!(meta.stride(), &strides);
        assert_eq!(meta.offset(), &offsets);
        assert_eq!(meta.format(), gst_video::VideoFormat::I420);
    }

    #[test]
    fn hostile_layouts_are_refused() {
        gst::init().unwrap();
        let mut buffer = gst::Buffer::with_size(1000).unwrap();
        let good = VideoLayout {
            format: gst_video::VideoFormat::Rgba.into_glib() as u32,
            width: 10,
            height: 10,
            n_planes: 1,
            offsets: [0; 4],
            strides: [40, 0, 0, 0],
        };
        let mut bad_format = good;
        bad_format.format = 0xffff;
        let mut bad_planes = good;
        bad_planes.n_planes = 9;
        let mut bad_offset = good;
        bad_offset.offsets[0] = 5000;
        let mut too_big = good;
        too_big.height = 1000;
        for bad in [bad_format, bad_planes, bad_offset, too_big] {
            assert!(
                add_meta(buffer.get_mut().unwrap(), &bad).is_err(),
                "{bad:?}"
            );
        }
        add_meta(buffer.get_mut().unwrap(), &good).unwrap();
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// A descriptor's layout either fits the buffer (every plane's rows inside it) or is
        /// refused; it never panics.
        #[test]
        fn arbitrary_layouts_fit_or_are_refused(
            format in 0u32..120,
            width in 0u32..5000,
            height in 0u32..5000,
            n_planes in 0u8..6,
            offsets in proptest::array::uniform4(0u64..40_000_000),
            strides in proptest::array::uniform4(-20_000i32..20_000),
            size in 1usize..40_000_000,
        ) {
            gst::init().unwrap();
            let layout = VideoLayout { format, width, height, n_planes, offsets, strides };
            let mut buffer = gst::Buffer::new();
            // A buffer of `size` bytes without allocating them: the meta check only needs
            // the size, never the bytes.
            buffer.get_mut().unwrap().append_memory(gst::Memory::from_slice(Zeros(size)));
            if add_meta(buffer.get_mut().unwrap(), &layout).is_ok() {
                let meta = buffer.meta::<gst_video::VideoMeta>().unwrap();
                for plane in 0..meta.n_planes() as usize {
                    proptest::prop_assert!(meta.stride()[plane] > 0);
                    proptest::prop_assert!(meta.offset()[plane] < size);
                }
            }
        }
    }

    /// `size` zero bytes, shared from one static page-sized block repeated virtually is not
    /// possible, so this is a plain boxed slice; sizes stay below 40 MB.
    struct Zeros(usize);

    impl AsRef<[u8]> for Zeros {
        fn as_ref(&self) -> &[u8] {
            static ZEROS: std::sync::LazyLock<Vec<u8>> =
                std::sync::LazyLock::new(|| vec![0; 40_000_000]);
            &ZEROS[..self.0]
        }
    }
}
