# SPDX-License-Identifier: MPL-2.0
"""Fluster decoder entries for mediapass's V4L2 stateless decoders.

Importing this module registers one Fluster decoder per codec, named
``GStreamer-<codec>-V4L2STATELESS`` (Fluster also accepts the older ``-Gst1.0``
suffix on the command line). They reuse Fluster's own GStreamer video decoder class,
so the pipeline is the one Fluster runs for GStreamer's C ``v4l2sl*dec``:

    filesrc ! parsebin ! v4l2stateless<codec>dec ! video/x-raw
        ! videoconvert dither=none ! video/x-raw,format=<vector's format>
        ! videocodectestsink            (MD5 of the unpadded frames)

Our elements register at rank NONE; Fluster's base class already raises the decoder
to MAX through GST_PLUGIN_FEATURE_RANK for the run, and names it in the pipeline
anyway. GStreamer must find the plugin: set GST_PLUGIN_PATH to the directory holding
libgstv4l2stateless.so (e.g. target/release) unless it is installed.
"""

from fluster.codec import Codec
from fluster.decoder import register_decoder
from fluster.decoders.gstreamer import GStreamerVideo

API = "V4L2STATELESS"


class _MediapassStateless(GStreamerVideo):
    """Common part: naming and description of our elements."""

    api = API

    def __init__(self) -> None:
        super().__init__()
        element = self.decoder_bin.strip()
        self.description = f"mediapass {element} (V4L2 Request API, gst-plugin-v4l2stateless)"


@register_decoder
class MediapassV4l2StatelessVP8(_MediapassStateless):
    """VP8 on a V4L2 stateless decoder (v4l2statelessvp8dec)."""

    codec = Codec.VP8
    decoder_bin = " v4l2statelessvp8dec "


@register_decoder
class MediapassV4l2StatelessVP9(_MediapassStateless):
    """VP9 on a V4L2 stateless decoder (v4l2statelessvp9dec); parsebin plugs vp9parse,
    which splits superframes as the element's alignment=frame sink caps ask."""

    codec = Codec.VP9
    decoder_bin = " v4l2statelessvp9dec "


@register_decoder
class MediapassV4l2StatelessH264(_MediapassStateless):
    """H.264 on a V4L2 stateless decoder (v4l2statelessh264dec); parsebin plugs h264parse.
    Runs only where the plugin registers that element (see `list -c`)."""

    codec = Codec.H264
    decoder_bin = " v4l2statelessh264dec "


@register_decoder
class MediapassV4l2StatelessMPEG2(_MediapassStateless):
    """MPEG-2 on a V4L2 stateless decoder (v4l2statelessmpeg2dec); parsebin plugs
    mpegvideoparse. Runs only where the plugin registers that element (see `list -c`)."""

    codec = Codec.MPEG2_VIDEO
    decoder_bin = " v4l2statelessmpeg2dec "
