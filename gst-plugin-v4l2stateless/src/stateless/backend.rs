// SPDX-License-Identifier: MPL-2.0
//! What a state machine asks of the device: decode jobs and reference bookkeeping.

use v4l2r::bindings;

/// One control struct bound to a decode request.
#[derive(Clone)]
pub enum Control {
    Vp8Frame(Box<bindings::v4l2_ctrl_vp8_frame>),
    Vp9Frame(Box<bindings::v4l2_ctrl_vp9_frame>),
    Vp9CompressedHdr(Box<bindings::v4l2_ctrl_vp9_compressed_hdr>),
    FwhtParams(Box<bindings::v4l2_ctrl_fwht_params>),
    Mpeg2Sequence(Box<bindings::v4l2_ctrl_mpeg2_sequence>),
    Mpeg2Picture(Box<bindings::v4l2_ctrl_mpeg2_picture>),
    Mpeg2Quantisation(Box<bindings::v4l2_ctrl_mpeg2_quantisation>),
    H264Sps(Box<bindings::v4l2_ctrl_h264_sps>),
    H264Pps(Box<bindings::v4l2_ctrl_h264_pps>),
    H264ScalingMatrix(Box<bindings::v4l2_ctrl_h264_scaling_matrix>),
    H264DecodeParams(Box<bindings::v4l2_ctrl_h264_decode_params>),
    H264SliceParams(Box<bindings::v4l2_ctrl_h264_slice_params>),
    H264PredWeights(Box<bindings::v4l2_ctrl_h264_pred_weights>),
}

impl Control {
    /// The `V4L2_CID_STATELESS_*` id.
    pub fn id(&self) -> u32 {
        match self {
            Control::Vp8Frame(_) => bindings::V4L2_CID_STATELESS_VP8_FRAME,
            Control::Vp9Frame(_) => bindings::V4L2_CID_STATELESS_VP9_FRAME,
            Control::Vp9CompressedHdr(_) => bindings::V4L2_CID_STATELESS_VP9_COMPRESSED_HDR,
            Control::FwhtParams(_) => bindings::V4L2_CID_STATELESS_FWHT_PARAMS,
            Control::Mpeg2Sequence(_) => bindings::V4L2_CID_STATELESS_MPEG2_SEQUENCE,
            Control::Mpeg2Picture(_) => bindings::V4L2_CID_STATELESS_MPEG2_PICTURE,
            Control::Mpeg2Quantisation(_) => bindings::V4L2_CID_STATELESS_MPEG2_QUANTISATION,
            Control::H264Sps(_) => bindings::V4L2_CID_STATELESS_H264_SPS,
            Control::H264Pps(_) => bindings::V4L2_CID_STATELESS_H264_PPS,
            Control::H264ScalingMatrix(_) => bindings::V4L2_CID_STATELESS_H264_SCALING_MATRIX,
            Control::H264DecodeParams(_) => bindings::V4L2_CID_STATELESS_H264_DECODE_PARAMS,
            Control::H264SliceParams(_) => bindings::V4L2_CID_STATELESS_H264_SLICE_PARAMS,
            Control::H264PredWeights(_) => bindings::V4L2_CID_STATELESS_H264_PRED_WEIGHTS,
        }
    }

    /// Payload pointer and size for `v4l2_ext_control.ptr`/`size`. The pointer stays
    /// valid as long as `self` (the struct is boxed).
    pub fn payload(&mut self) -> (*mut std::ffi::c_void, u32) {
        fn raw<T>(b: &mut Box<T>) -> (*mut std::ffi::c_void, u32) {
            ((&mut **b as *mut T).cast(), std::mem::size_of::<T>() as u32)
        }
        match self {
            Control::Vp8Frame(c) => raw(c),
            Control::Vp9Frame(c) => raw(c),
            Control::Vp9CompressedHdr(c) => raw(c),
            Control::FwhtParams(c) => raw(c),
            Control::Mpeg2Sequence(c) => raw(c),
            Control::Mpeg2Picture(c) => raw(c),
            Control::Mpeg2Quantisation(c) => raw(c),
            Control::H264Sps(c) => raw(c),
            Control::H264Pps(c) => raw(c),
            Control::H264ScalingMatrix(c) => raw(c),
            Control::H264DecodeParams(c) => raw(c),
            Control::H264SliceParams(c) => raw(c),
            Control::H264PredWeights(c) => raw(c),
        }
    }
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            Control::Vp8Frame(_) => "VP8_FRAME",
            Control::Vp9Frame(_) => "VP9_FRAME",
            Control::Vp9CompressedHdr(_) => "VP9_COMPRESSED_HDR",
            Control::FwhtParams(_) => "FWHT_PARAMS",
            Control::Mpeg2Sequence(_) => "MPEG2_SEQUENCE",
            Control::Mpeg2Picture(_) => "MPEG2_PICTURE",
            Control::Mpeg2Quantisation(_) => "MPEG2_QUANTISATION",
            Control::H264Sps(_) => "H264_SPS",
            Control::H264Pps(_) => "H264_PPS",
            Control::H264ScalingMatrix(_) => "H264_SCALING_MATRIX",
            Control::H264DecodeParams(_) => "H264_DECODE_PARAMS",
            Control::H264SliceParams(_) => "H264_SLICE_PARAMS",
            Control::H264PredWeights(_) => "H264_PRED_WEIGHTS",
        };
        f.write_str(name)
    }
}

/// One picture (or one slice of it) to decode: one request, one OUTPUT buffer, one
/// CAPTURE buffer.
#[derive(Debug)]
pub struct DecodeJob<'a> {
    /// Timestamp (ns) of the OUTPUT buffer; the driver copies it to the decoded picture
    /// and later jobs name their references with it.
    pub timestamp: u64,
    pub bitstream: &'a [u8],
    pub controls: Vec<Control>,
    /// More slices of this picture follow: the device keeps the CAPTURE buffer
    /// (`V4L2_BUF_FLAG_M2M_HOLD_CAPTURE_BUF` on the OUTPUT buffer).
    pub hold_capture: bool,
    /// A later slice of the previous job's picture: decode into its CAPTURE buffer.
    pub continues_picture: bool,
}

impl<'a> DecodeJob<'a> {
    /// A job holding a whole picture.
    pub fn picture(timestamp: u64, bitstream: &'a [u8], controls: Vec<Control>) -> Self {
        Self {
            timestamp,
            bitstream,
            controls,
            hold_capture: false,
            continues_picture: false,
        }
    }
}

/// Executes decode jobs. Errors are the backend's own (device errors, timeouts).
pub trait Backend {
    type Error: std::error::Error + Send + Sync + 'static;

    /// Queues (or performs) one decode job.
    fn decode(&mut self, job: DecodeJob<'_>) -> Result<(), Self::Error>;

    /// Every decoded picture the device must keep, by timestamp: references *and*
    /// pictures decoded but still waiting for output (reordering holds them back).
    /// Pictures not listed may be recycled once the element has pushed them.
    fn set_references(&mut self, timestamps: &[u64]);
}

/// What the element does after one decode call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Pictures to push now, in presentation order: (input frame timestamp, picture
    /// timestamp). Usually equal; VP9 `show_existing_frame` shows an older picture for
    /// the current frame.
    pub show: Vec<(u64, u64)>,
    /// Input frames (by timestamp) that will never be shown (VP8/VP9 hidden frames,
    /// MPEG-2 B-frames with a broken link...).
    pub discard: Vec<u64>,
}

impl Outcome {
    /// The frame's own picture, shown now.
    pub fn shown(timestamp: u64) -> Self {
        Self {
            show: vec![(timestamp, timestamp)],
            discard: Vec::new(),
        }
    }

    /// The frame is never shown.
    pub fn discarded(timestamp: u64) -> Self {
        Self {
            show: Vec::new(),
            discard: vec![timestamp],
        }
    }
}

/// Why a frame was not decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError<E: std::error::Error + 'static> {
    /// Corrupt, truncated or undecodable input (no key frame yet, missing reference):
    /// skip it and go on with the next decodable frame.
    #[error("{0}")]
    Bitstream(String),
    /// The device failed.
    #[error(transparent)]
    Backend(E),
}
