// SPDX-License-Identifier: MPL-2.0
//! FWHT (vicodec): one `V4L2_CID_STATELESS_FWHT_PARAMS` per frame, filled from the
//! frame's `fwht_cframe_hdr`. The OUTPUT buffer carries only the payload after the
//! header (vicodec decodes from the start of the buffer and takes the size from the
//! payload length). A P-frame references the previous decoded frame, named by its
//! timestamp (`backward_ref_ts`).

use mediapass_codecparsers::fwht::FwhtHeader;
use v4l2r::bindings;

use super::backend::{Backend, Control, DecodeError, DecodeJob, Outcome};

/// Decodes FWHT frames in decode order.
#[derive(Debug, Default)]
pub struct FwhtDecoder {
    /// The previous decoded frame: the only reference a P-frame may use.
    reference: Option<u64>,
}

impl FwhtDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn reference(&self) -> Option<u64> {
        self.reference
    }

    /// Parses a frame without decoding it: its header and the control it would carry.
    pub fn peek(&self, frame: &[u8]) -> Result<(FwhtHeader, Control), String> {
        let (header, _) = FwhtHeader::parse(frame).map_err(|e| e.to_string())?;
        let control = Control::FwhtParams(Box::new(params(&header, self.reference)));
        Ok((header, control))
    }

    /// Decodes one whole frame (header + payload) queued with `timestamp`. On a
    /// bitstream error nothing changes.
    pub fn decode<B: Backend>(
        &mut self,
        frame: &[u8],
        timestamp: u64,
        backend: &mut B,
    ) -> Result<Outcome, DecodeError<B::Error>> {
        let (header, payload) =
            FwhtHeader::parse(frame).map_err(|e| DecodeError::Bitstream(e.to_string()))?;
        if header.version < 3 {
            // vicodec's stateless path rejects parameters older than version 3.
            return Err(DecodeError::Bitstream(format!(
                "FWHT version {} is not decodable statelessly (needs 3)",
                header.version
            )));
        }
        if !header.is_i_frame() && self.reference.is_none() {
            return Err(DecodeError::Bitstream(
                "FWHT P-frame without a reference frame".into(),
            ));
        }
        let control = params(&header, self.reference);
        backend
            .decode(DecodeJob::picture(
                timestamp,
                payload,
                vec![Control::FwhtParams(Box::new(control))],
            ))
            .map_err(DecodeError::Backend)?;
        self.reference = Some(timestamp);
        backend.set_references(&[timestamp]);
        Ok(Outcome::shown(timestamp))
    }

    /// Pictures still waiting for output: none, FWHT shows every frame at once.
    pub fn drain(&mut self) -> Vec<(u64, u64)> {
        Vec::new()
    }

    /// Forgets the reference (flush/seek): decoding restarts at the next I-frame.
    pub fn reset(&mut self) {
        *self = Self::default();
    }
}

/// Fills `v4l2_ctrl_fwht_params` from a parsed header; `reference` is ignored by the
/// driver for I-frames, so it is sent as 0 there.
pub fn params(header: &FwhtHeader, reference: Option<u64>) -> bindings::v4l2_ctrl_fwht_params {
    bindings::v4l2_ctrl_fwht_params {
        backward_ref_ts: if header.is_i_frame() {
            0
        } else {
            reference.unwrap_or(0)
        },
        version: header.version,
        width: header.width,
        height: header.height,
        flags: header.flags,
        colorspace: header.colorspace,
        xfer_func: header.xfer_func,
        ycbcr_enc: header.ycbcr_enc,
        quantization: header.quantization,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stateless::frame_timestamp;
    use crate::stateless::recording::RecordingBackend;
    use mediapass_codecparsers::fwht::{HEADER_SIZE, flags};

    /// A version-3 YUV 4:2:0 frame header (3 components) with `payload` after it.
    fn frame(i_frame: bool, width: u32, height: u32, payload: &[u8]) -> Vec<u8> {
        let frame_flags = (2 << flags::COMPONENTS_NUM_OFFSET)
            | (1 << flags::PIXENC_OFFSET)
            | if i_frame { flags::I_FRAME } else { 0 };
        let mut data = Vec::new();
        for word in [
            0x4f4f_4f4f,
            0xffff_ffff,
            3,
            width,
            height,
            frame_flags,
            1,
            2,
            3,
            4,
            payload.len() as u32,
        ] {
            data.extend_from_slice(&u32::to_be_bytes(word));
        }
        assert_eq!(data.len(), HEADER_SIZE);
        data.extend_from_slice(payload);
        data
    }

    fn fwht(c: &Control) -> &bindings::v4l2_ctrl_fwht_params {
        match c {
            Control::FwhtParams(p) => p,
            other => panic!("expected FWHT_PARAMS, got {other:?}"),
        }
    }

    #[test]
    fn p_frames_reference_the_previous_frame_and_only_the_payload_is_queued() {
        let mut dec = FwhtDecoder::new();
        let mut backend = RecordingBackend::default();
        let stream = [
            frame(true, 320, 240, &[1; 100]),
            frame(false, 320, 240, &[2; 30]),
            frame(false, 320, 240, &[3; 20]),
            frame(true, 320, 240, &[4; 90]),
            frame(false, 320, 240, &[5; 10]),
        ];
        for (n, f) in stream.iter().enumerate() {
            let ts = frame_timestamp(n as u32);
            assert_eq!(dec.decode(f, ts, &mut backend).unwrap(), Outcome::shown(ts));
            assert_eq!(backend.references, vec![ts]);
        }
        let refs: Vec<u64> = backend
            .jobs
            .iter()
            .map(|j| fwht(&j.controls[0]).backward_ref_ts)
            .collect();
        let ts = frame_timestamp;
        assert_eq!(refs, vec![0, ts(0), ts(1), 0, ts(3)]);
        let lens: Vec<usize> = backend.jobs.iter().map(|j| j.bitstream_len).collect();
        assert_eq!(lens, vec![100, 30, 20, 90, 10]);
        let first = fwht(&backend.jobs[0].controls[0]);
        assert_eq!((first.width, first.height, first.version), (320, 240, 3));
        assert_eq!(
            (
                first.colorspace,
                first.xfer_func,
                first.ycbcr_enc,
                first.quantization
            ),
            (1, 2, 3, 4)
        );
        assert_ne!(first.flags & flags::I_FRAME, 0);
    }

    #[test]
    fn p_frame_without_reference_is_a_bitstream_error_until_an_i_frame() {
        let mut dec = FwhtDecoder::new();
        let mut backend = RecordingBackend::default();
        let p = frame(false, 64, 64, &[0; 8]);
        assert!(matches!(
            dec.decode(&p, 0, &mut backend),
            Err(DecodeError::Bitstream(_))
        ));
        assert!(backend.jobs.is_empty());
        dec.decode(&frame(true, 64, 64, &[0; 8]), 1000, &mut backend)
            .unwrap();
        dec.decode(&p, 2000, &mut backend).unwrap();
        dec.reset();
        assert_eq!(dec.reference(), None);
        assert!(dec.decode(&p, 3000, &mut backend).is_err());
    }

    #[test]
    fn corrupt_frames_and_device_errors_change_nothing() {
        let mut dec = FwhtDecoder::new();
        let mut backend = RecordingBackend::default();
        let good = frame(true, 64, 64, &[7; 16]);
        assert!(dec.decode(&good[..20], 0, &mut backend).is_err());
        assert!(
            dec.decode(&good[..good.len() - 1], 0, &mut backend)
                .is_err()
        );
        let mut old = good.clone();
        old[11] = 2; // version 2
        assert!(dec.decode(&old, 0, &mut backend).is_err());
        backend.fail_next = true;
        assert!(matches!(
            dec.decode(&good, 0, &mut backend),
            Err(DecodeError::Backend(_))
        ));
        assert_eq!(dec.reference(), None);
        assert!(backend.jobs.is_empty());
    }
}
