// SPDX-License-Identifier: MPL-2.0
//! Codecs we decode, the V4L2 OUTPUT pixel formats that announce them, and element naming.

/// A compressed format a stateless decoder may accept on its OUTPUT queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Codec {
    Mpeg2,
    Vp8,
    Vp9,
    H264,
    Fwht,
}

impl Codec {
    pub const ALL: [Codec; 5] = [
        Codec::Mpeg2,
        Codec::Vp8,
        Codec::Vp9,
        Codec::H264,
        Codec::Fwht,
    ];

    /// The stateless OUTPUT fourcc (`V4L2_PIX_FMT_*_SLICE` / `_FRAME` / `FWHT_STATELESS`).
    pub const fn fourcc(self) -> [u8; 4] {
        match self {
            Codec::Mpeg2 => *b"MG2S",
            Codec::Vp8 => *b"VP8F",
            Codec::Vp9 => *b"VP9F",
            Codec::H264 => *b"S264",
            Codec::Fwht => *b"SFWH",
        }
    }

    pub fn from_fourcc(fourcc: [u8; 4]) -> Option<Codec> {
        Codec::ALL.into_iter().find(|c| c.fourcc() == fourcc)
    }

    /// Short name used in element names.
    pub const fn short_name(self) -> &'static str {
        match self {
            Codec::Mpeg2 => "mpeg2",
            Codec::Vp8 => "vp8",
            Codec::Vp9 => "vp9",
            Codec::H264 => "h264",
            Codec::Fwht => "fwht",
        }
    }
}

/// Element name for `codec` on a device. The first device that offers a codec gets the
/// plain name; later ones carry their video node (`v4l2statelessvideo1vp9dec`), the scheme
/// Debian's v4l2codecs uses with its `v4l2sl` prefix, which we never reuse.
pub fn element_name(codec: Codec, video_node: &str, first_for_codec: bool) -> String {
    if first_for_codec {
        format!("v4l2stateless{}dec", codec.short_name())
    } else {
        let node: String = video_node
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        format!("v4l2stateless{node}{}dec", codec.short_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fourccs_round_trip() {
        for codec in Codec::ALL {
            assert_eq!(Codec::from_fourcc(codec.fourcc()), Some(codec));
        }
        assert_eq!(
            Codec::from_fourcc(*b"VP90"),
            None,
            "stateful VP9 is not ours"
        );
    }

    #[test]
    fn names_never_clash_with_debians_v4l2codecs() {
        assert_eq!(
            element_name(Codec::Vp9, "video8", true),
            "v4l2statelessvp9dec"
        );
        assert_eq!(
            element_name(Codec::Vp9, "video1", false),
            "v4l2statelessvideo1vp9dec"
        );
        for codec in Codec::ALL {
            for first in [true, false] {
                assert!(
                    !element_name(codec, "video3", first).starts_with("v4l2sl")
                        || element_name(codec, "video3", first).starts_with("v4l2stateless")
                );
            }
        }
    }
}
