// SPDX-License-Identifier: MPL-2.0
//! A backend that records what would be queued: for the state machine tests and the
//! fuzz targets (no device needed).

use super::backend::{Backend, Control, DecodeJob};

#[derive(Debug, Clone)]
pub struct Recorded {
    pub timestamp: u64,
    pub bitstream_len: usize,
    /// First bytes of the bitstream (start code checks).
    pub bitstream_head: Vec<u8>,
    pub controls: Vec<Control>,
    pub hold_capture: bool,
    pub continues_picture: bool,
}

#[derive(Debug, Default)]
pub struct RecordingBackend {
    pub jobs: Vec<Recorded>,
    pub references: Vec<u64>,
    /// Fail the next decode (a device error).
    pub fail_next: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("recording backend told to fail")]
pub struct Failed;

impl Backend for RecordingBackend {
    type Error = Failed;

    fn decode(&mut self, job: DecodeJob<'_>) -> Result<(), Failed> {
        if std::mem::take(&mut self.fail_next) {
            return Err(Failed);
        }
        self.jobs.push(Recorded {
            timestamp: job.timestamp,
            bitstream_len: job.bitstream.len(),
            bitstream_head: job.bitstream.iter().take(4).copied().collect(),
            controls: job.controls,
            hold_capture: job.hold_capture,
            continues_picture: job.continues_picture,
        });
        Ok(())
    }

    fn set_references(&mut self, timestamps: &[u64]) {
        self.references = timestamps.to_vec();
    }
}
