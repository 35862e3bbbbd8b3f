// SPDX-License-Identifier: MPL-2.0
//! A backend that records what would be queued: for the state machine tests and the
//! fuzz targets (no device needed).

use super::backend::{Backend, Control, DecodeJob};

#[derive(Debug, Clone)]
pub struct Recorded {
    pub timestamp: u64,
    pub bitstream_len: usize,
    pub controls: Vec<Control>,
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
            controls: job.controls,
        });
        Ok(())
    }

    fn set_references(&mut self, timestamps: &[u64]) {
        self.references = timestamps.to_vec();
    }
}
