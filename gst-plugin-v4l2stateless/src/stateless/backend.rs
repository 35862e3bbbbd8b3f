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
}

impl Control {
    /// The `V4L2_CID_STATELESS_*` id.
    pub fn id(&self) -> u32 {
        match self {
            Control::Vp8Frame(_) => bindings::V4L2_CID_STATELESS_VP8_FRAME,
            Control::Vp9Frame(_) => bindings::V4L2_CID_STATELESS_VP9_FRAME,
            Control::Vp9CompressedHdr(_) => bindings::V4L2_CID_STATELESS_VP9_COMPRESSED_HDR,
            Control::FwhtParams(_) => bindings::V4L2_CID_STATELESS_FWHT_PARAMS,
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
        };
        f.write_str(name)
    }
}

/// One picture to decode: one request, one OUTPUT buffer, one CAPTURE buffer.
#[derive(Debug)]
pub struct DecodeJob<'a> {
    /// Timestamp (ns) of the OUTPUT buffer; the driver copies it to the decoded picture
    /// and later jobs name their references with it.
    pub timestamp: u64,
    pub bitstream: &'a [u8],
    pub controls: Vec<Control>,
}

/// Executes decode jobs. Errors are the backend's own (device errors, timeouts).
pub trait Backend {
    type Error: std::error::Error + Send + Sync + 'static;

    /// Queues (or performs) one decode job.
    fn decode(&mut self, job: DecodeJob<'_>) -> Result<(), Self::Error>;

    /// The decoded pictures still used as references, by timestamp. Pictures not listed
    /// may be recycled once they are output.
    fn set_references(&mut self, timestamps: &[u64]);
}

/// A state machine's verdict on one input frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Show the picture with this timestamp (just decoded, or an existing one).
    Show(u64),
    /// Decoded but not shown (VP8/VP9 hidden frames such as alt-refs).
    Hidden,
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
