// SPDX-License-Identifier: MPL-2.0
//! The codecs of `gst-plugin-v4l2stateless` next to GStreamer's C `v4l2codecs` elements,
//! for tests and benchmarks that run both on the same stream.

use crate::gst_command;

/// One codec: our element, the C element, and how a stream file reaches them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Codec {
    /// Key used by `tools/fluster/mediapass-make-suite` (`vp8`, `vp9`, `h264`, `mpeg2`).
    pub key: &'static str,
    /// Our element on the first device.
    pub ours: &'static str,
    /// GStreamer's C element (Debian's v4l2codecs) on the first device.
    pub c: &'static str,
    /// `gst-launch` fragment between `filesrc` and the decoder.
    pub parse: &'static str,
    /// Fluster decoder names: ours (tools/fluster/mediapass_decoders.py) and the C one.
    pub fluster_ours: &'static str,
    pub fluster_c: &'static str,
}

pub const CODECS: &[Codec] = &[
    Codec {
        key: "vp8",
        ours: "v4l2statelessvp8dec",
        c: "v4l2slvp8dec",
        parse: "ivfparse",
        fluster_ours: "GStreamer-VP8-V4L2STATELESS",
        fluster_c: "GStreamer-VP8-V4L2SL",
    },
    Codec {
        key: "vp9",
        ours: "v4l2statelessvp9dec",
        c: "v4l2slvp9dec",
        parse: "ivfparse ! vp9parse",
        fluster_ours: "GStreamer-VP9-V4L2STATELESS",
        fluster_c: "GStreamer-VP9-V4L2SL",
    },
    Codec {
        key: "h264",
        ours: "v4l2statelessh264dec",
        c: "v4l2slh264dec",
        parse: "h264parse",
        fluster_ours: "GStreamer-H.264-V4L2STATELESS",
        fluster_c: "GStreamer-H.264-V4L2SL",
    },
    Codec {
        key: "mpeg2",
        ours: "v4l2statelessmpeg2dec",
        c: "v4l2slmpeg2dec",
        parse: "mpegvideoparse",
        fluster_ours: "GStreamer-MPEG2_VIDEO-V4L2STATELESS",
        fluster_c: "GStreamer-MPEG2_VIDEO-V4L2SL",
    },
];

impl Codec {
    pub fn by_key(key: &str) -> Option<&'static Codec> {
        CODECS.iter().find(|c| c.key == key)
    }
}

/// The codecs whose element our built plugin registers (asked with the plugin's fake
/// devices, so this works on a host without decoders). A codec whose element has not
/// landed yet is left out instead of failing.
pub fn implemented_codecs() -> Vec<&'static Codec> {
    CODECS
        .iter()
        .filter(|codec| {
            gst_command("gst-inspect-1.0")
                .env("GST_V4L2STATELESS_FAKE_DEVICES", "1")
                .env(
                    "GST_REGISTRY",
                    crate::plugin_dir().join("mediapass-fake-devices-registry.bin"),
                )
                // Not `--exists`: it also requires the plugin's version to be at least
                // GStreamer's own.
                .arg(codec.ours)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .collect()
}
