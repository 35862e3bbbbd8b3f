// SPDX-License-Identifier: MPL-2.0
//! A V4L2 stateless decoder: one video node (OUTPUT = bitstream, CAPTURE = pictures,
//! both MMAP) and its media node (requests). Each decode job is one request holding the
//! codec controls and one OUTPUT buffer; a CAPTURE buffer is queued alongside. Decoded
//! pictures stay dequeued while they are references, wait to be output, or are lent to
//! downstream without a copy ([`RequestDecoder::lend`]).

use std::collections::VecDeque;
use std::fs::File;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use v4l2r::ioctl::{
    BufferFlags, Capabilities, Capability, FormatIterator, PlaneMapping, QBufPlane, QBuffer,
    Request, V4l2Buffer, dqbuf, g_fmt, qbuf, querycap, s_fmt, streamoff, streamon,
};
use v4l2r::memory::MmapHandle;
use v4l2r::{Format, PixelFormat, PlaneLayout, QueueType};

use super::buffers::{BufferSet, QueueCaps};
use super::controls;
use super::loans::{Loan, LoanBook};
use crate::codec::Codec;
use crate::stateless::backend::{Backend, Control, DecodeJob};

#[derive(Debug, thiserror::Error)]
pub enum DecoderError {
    #[error("{0}")]
    Device(String),
    #[error("no answer from the decoder after {0:?} ({1})")]
    Timeout(Duration, String),
    /// The driver flagged the picture as failed (`V4L2_BUF_FLAG_ERROR`): corrupt input
    /// or a decode problem limited to this picture.
    #[error("the driver failed to decode the picture with timestamp {0} ns")]
    Picture(u64),
}

/// The negotiated CAPTURE format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureLayout {
    pub fourcc: [u8; 4],
    /// Allocated size (may exceed the visible size).
    pub width: u32,
    pub height: u32,
    /// (bytesperline, sizeimage) of each memory plane.
    pub planes: Vec<(u32, u32)>,
}

/// A decoded picture lent to downstream: its mappings and DMABufs stay valid as long as
/// this lives; the slot returns to the decoder when `loan` drops.
pub struct LentPicture {
    pub layout: CaptureLayout,
    /// The mapped planes (shared with the decoder).
    pub planes: Vec<Arc<PlaneMapping>>,
    /// Duplicated DMABuf fds of the planes, when the decoder exports them.
    pub dmabufs: Vec<OwnedFd>,
    pub loan: Loan,
}

/// Upper bound of CAPTURE buffers when growing for downstream (`VIDIOC_CREATE_BUFS`):
/// vb2's own limit is 64 per queue on 6.12 (`VB2_MAX_FRAME`), and each buffer is a
/// full picture.
pub const MAX_CAPTURE_BUFFERS: usize = 32;

#[derive(Debug, Clone, Copy, Default)]
struct CaptureSlot {
    timestamp: Option<u64>,
    queued: bool,
    /// Pending outputs of this picture (a shown frame, `show_existing_frame` repeats).
    outputs: u32,
}

struct Pending {
    timestamp: u64,
    request: Request,
    output_index: usize,
    capture_index: usize,
    /// More slices of the picture follow: the driver keeps the CAPTURE buffer, so only
    /// the OUTPUT buffer comes back.
    holds_capture: bool,
}

pub struct RequestDecoder {
    video: File,
    media: File,
    codec: Codec,
    output_queue: QueueType,
    capture_queue: QueueType,
    output: Option<BufferSet>,
    capture: Option<BufferSet>,
    free_output: Vec<usize>,
    slots: Vec<CaptureSlot>,
    requests: Vec<Request>,
    pending: VecDeque<Pending>,
    references: Vec<u64>,
    layout: Option<CaptureLayout>,
    timeout: Duration,
    loans: LoanBook,
    /// CAPTURE buffer of a picture whose last slice is still to come.
    held_capture: Option<usize>,
}

fn device(what: impl Into<String>) -> DecoderError {
    DecoderError::Device(what.into())
}

impl RequestDecoder {
    /// Opens the video node (non-blocking: every wait goes through `poll` with a
    /// timeout) and the media node.
    pub fn open(
        video_device: &Path,
        media_device: &Path,
        codec: Codec,
        timeout: Duration,
    ) -> Result<Self, DecoderError> {
        let open = |path: &Path, flags: i32| {
            File::options()
                .read(true)
                .write(true)
                .custom_flags(flags)
                .open(path)
                .map_err(|e| device(format!("cannot open {}: {e}", path.display())))
        };
        let video = open(video_device, libc::O_NONBLOCK | libc::O_CLOEXEC)?;
        let media = open(media_device, libc::O_CLOEXEC)?;
        let caps: Capability = querycap(&video)
            .map_err(|e| device(format!("VIDIOC_QUERYCAP {}: {e}", video_device.display())))?;
        let mplane = caps.device_caps().contains(Capabilities::VIDEO_M2M_MPLANE);
        let (output_queue, capture_queue) = if mplane {
            (QueueType::VideoOutputMplane, QueueType::VideoCaptureMplane)
        } else {
            (QueueType::VideoOutput, QueueType::VideoCapture)
        };
        Ok(Self {
            video,
            media,
            codec,
            output_queue,
            capture_queue,
            output: None,
            capture: None,
            free_output: Vec::new(),
            slots: Vec::new(),
            requests: Vec::new(),
            pending: VecDeque::new(),
            references: Vec::new(),
            layout: None,
            timeout,
            loans: LoanBook::new(),
            held_capture: None,
        })
    }

    pub fn has_control(&self, id: u32) -> bool {
        controls::exists(&self.video, id)
    }

    /// Current value of an integer or menu control (`None` if the driver has none).
    pub fn control_value(&self, id: u32) -> Option<i32> {
        controls::value(&self.video, id)
    }

    /// Sets the bitstream format (codec fourcc, coded size, buffer size).
    pub fn set_output_format(
        &mut self,
        width: u32,
        height: u32,
        buffer_size: u32,
    ) -> Result<(), DecoderError> {
        let format = Format {
            width,
            height,
            pixelformat: PixelFormat::from_fourcc(&self.codec.fourcc()),
            plane_fmt: vec![PlaneLayout {
                sizeimage: buffer_size,
                bytesperline: 0,
            }],
        };
        let set: Format = s_fmt(&mut self.video, (self.output_queue, &format))
            .map_err(|e| device(format!("VIDIOC_S_FMT OUTPUT {width}x{height}: {e}")))?;
        if <[u8; 4]>::from(set.pixelformat) != self.codec.fourcc() {
            return Err(device(format!(
                "the driver refused the {} bitstream format",
                String::from_utf8_lossy(&self.codec.fourcc())
            )));
        }
        Ok(())
    }

    /// Sets controls outside any request (sequence-level setup before the CAPTURE
    /// format is chosen, so the driver can narrow it).
    pub fn set_controls(&mut self, controls: &mut [Control]) -> Result<(), DecoderError> {
        controls::set(&self.video, None, controls).map_err(DecoderError::Device)
    }

    /// The CAPTURE pixel formats the driver offers now.
    pub fn capture_formats(&self) -> Vec<[u8; 4]> {
        FormatIterator::new(&self.video, self.capture_queue)
            .map(|desc| desc.pixelformat.into())
            .collect()
    }

    /// Picks the CAPTURE pixel format. The size is the driver's (derived from the OUTPUT
    /// format) unless `size` is given, for drivers that do not derive it (vicodec).
    pub fn set_capture_format(
        &mut self,
        fourcc: [u8; 4],
        size: Option<(u32, u32)>,
    ) -> Result<CaptureLayout, DecoderError> {
        let mut format: Format = g_fmt(&self.video, self.capture_queue)
            .map_err(|e| device(format!("VIDIOC_G_FMT CAPTURE: {e}")))?;
        format.pixelformat = PixelFormat::from_fourcc(&fourcc);
        if let Some((width, height)) = size {
            format.width = width;
            format.height = height;
            for plane in &mut format.plane_fmt {
                *plane = PlaneLayout {
                    sizeimage: 0,
                    bytesperline: 0,
                };
            }
        }
        let set: Format = s_fmt(&mut self.video, (self.capture_queue, &format))
            .map_err(|e| device(format!("VIDIOC_S_FMT CAPTURE: {e}")))?;
        let layout = CaptureLayout {
            fourcc: set.pixelformat.into(),
            width: set.width,
            height: set.height,
            planes: set
                .plane_fmt
                .iter()
                .map(|p| (p.bytesperline, p.sizeimage))
                .collect(),
        };
        if layout.fourcc != fourcc {
            return Err(device(format!(
                "the driver chose CAPTURE format {} instead of {}",
                String::from_utf8_lossy(&layout.fourcc),
                String::from_utf8_lossy(&fourcc)
            )));
        }
        self.layout = Some(layout.clone());
        Ok(layout)
    }

    /// Allocates and maps the buffers (exporting CAPTURE ones as DMABufs when asked)
    /// and starts both queues.
    pub fn start(
        &mut self,
        output_count: u32,
        capture_count: u32,
        export_capture: bool,
    ) -> Result<(), DecoderError> {
        self.stop();
        let output =
            BufferSet::allocate(&self.video, self.output_queue, output_count).map_err(device)?;
        let mut capture =
            BufferSet::allocate(&self.video, self.capture_queue, capture_count).map_err(device)?;
        if export_capture {
            capture.export(&self.video).map_err(device)?;
        }
        self.free_output = (0..output.buffers.len()).rev().collect();
        self.slots = vec![CaptureSlot::default(); capture.buffers.len()];
        self.loans.reset(self.slots.len());
        self.output = Some(output);
        self.capture = Some(capture);
        for queue in [self.output_queue, self.capture_queue] {
            streamon(&self.video, queue)
                .map_err(|e| device(format!("VIDIOC_STREAMON {queue:?}: {e}")))?;
        }
        Ok(())
    }

    pub fn is_started(&self) -> bool {
        self.output.is_some()
    }

    /// Stops both queues and frees everything (pending jobs are abandoned).
    pub fn stop(&mut self) {
        if self.output.is_none() && self.capture.is_none() {
            return;
        }
        for queue in [self.output_queue, self.capture_queue] {
            let _ = streamoff(&self.video, queue);
        }
        self.pending.clear();
        self.held_capture = None;
        self.free_output.clear();
        self.slots.clear();
        self.loans.reset(0);
        self.references.clear();
        if let Some(set) = self.output.take() {
            set.free(&self.video);
        }
        if let Some(set) = self.capture.take() {
            set.free(&self.video);
        }
    }

    /// Exports the CAPTURE buffers as DMABufs (once; later growth exports too).
    pub fn export_capture(&mut self) -> Result<(), DecoderError> {
        let capture = self.capture.as_mut().ok_or_else(|| device("not started"))?;
        capture.export(&self.video).map_err(device)
    }

    /// How many CAPTURE buffers exist now, and what the queue can do.
    pub fn capture_buffers(&self) -> (usize, QueueCaps) {
        self.capture
            .as_ref()
            .map_or((0, QueueCaps::default()), |c| (c.buffers.len(), c.caps))
    }

    /// Lends the decoded picture `timestamp` to downstream (after
    /// [`Self::wait_picture`]): its slot is not reused before the loan drops.
    pub fn lend(&mut self, timestamp: u64) -> Result<LentPicture, DecoderError> {
        let index = self
            .slots
            .iter()
            .position(|s| s.timestamp == Some(timestamp) && !s.queued)
            .ok_or_else(|| device(format!("no decoded picture with timestamp {timestamp}")))?;
        let layout = self
            .layout
            .clone()
            .ok_or_else(|| device("no CAPTURE format"))?;
        let buffer = &self
            .capture
            .as_ref()
            .ok_or_else(|| device("not started"))?
            .buffers[index];
        let dmabufs = buffer
            .dmabufs
            .iter()
            .map(|fd| fd.try_clone())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| device(format!("dup of a CAPTURE DMABuf: {e}")))?;
        let planes = buffer.planes.clone();
        let loan = self
            .loans
            .lend(index)
            .ok_or_else(|| device(format!("no CAPTURE slot {index}")))?;
        Ok(LentPicture {
            layout,
            planes,
            dmabufs,
            loan,
        })
    }

    pub fn pending_jobs(&self) -> usize {
        self.pending.len()
    }

    /// Waits until the picture with `timestamp` is decoded; returns its planes.
    pub fn wait_picture(
        &mut self,
        timestamp: u64,
    ) -> Result<(&CaptureLayout, &[Arc<PlaneMapping>]), DecoderError> {
        while self.pending.iter().any(|p| p.timestamp == timestamp) {
            self.complete_oldest()?;
        }
        let index = self
            .slots
            .iter()
            .position(|s| s.timestamp == Some(timestamp))
            .ok_or_else(|| device(format!("no decoded picture with timestamp {timestamp}")))?;
        let layout = self
            .layout
            .as_ref()
            .ok_or_else(|| device("no CAPTURE format"))?;
        let capture = self.capture.as_ref().ok_or_else(|| device("not started"))?;
        Ok((layout, &capture.buffers[index].planes))
    }

    /// The picture `timestamp` will be output: keep it until [`Self::release_output`].
    pub fn hold_output(&mut self, timestamp: u64) {
        if let Some(slot) = self
            .slots
            .iter_mut()
            .find(|s| s.timestamp == Some(timestamp))
        {
            slot.outputs += 1;
        }
    }

    pub fn release_output(&mut self, timestamp: u64) {
        if let Some(slot) = self
            .slots
            .iter_mut()
            .find(|s| s.timestamp == Some(timestamp))
        {
            slot.outputs = slot.outputs.saturating_sub(1);
        }
    }

    /// Waits for every queued job (drain before a flush or a format change). Per-picture
    /// failures are returned after all jobs completed.
    pub fn finish_all(&mut self) -> Result<(), DecoderError> {
        let mut first_error = None;
        while !self.pending.is_empty() {
            match self.complete_oldest() {
                Ok(()) => {}
                Err(e @ DecoderError::Picture(_)) => {
                    first_error.get_or_insert(e);
                }
                Err(e) => return Err(e),
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Forgets references and pending outputs (after [`Self::finish_all`], on flush).
    pub fn forget_pictures(&mut self) {
        self.references.clear();
        for slot in &mut self.slots {
            slot.outputs = 0;
        }
    }

    fn slot_is_free(&self, index: usize) -> bool {
        let slot = &self.slots[index];
        !slot.queued
            && !self.loans.is_lent(index)
            && slot.outputs == 0
            && slot
                .timestamp
                .is_none_or(|ts| !self.references.contains(&ts))
    }

    /// Waits for the oldest queued request, dequeues its buffers, recycles the request.
    fn complete_oldest(&mut self) -> Result<(), DecoderError> {
        let Some(job) = self.pending.front() else {
            return Ok(());
        };
        let deadline = Instant::now() + self.timeout;
        loop {
            // SAFETY: the fd belongs to `job.request`, which stays alive (in
            // `self.pending`) for the whole borrow.
            let fd = unsafe { BorrowedFd::borrow_raw(job.request.as_raw_fd()) };
            let mut fds = [rustix::event::PollFd::new(
                &fd,
                rustix::event::PollFlags::PRI,
            )];
            let left = deadline.saturating_duration_since(Instant::now());
            let timespec = rustix::time::Timespec {
                tv_sec: left.as_secs() as i64,
                tv_nsec: i64::from(left.subsec_nanos()),
            };
            match rustix::event::poll(&mut fds, Some(&timespec)) {
                Ok(0) => {
                    return Err(DecoderError::Timeout(
                        self.timeout,
                        format!("request of picture {} ns", job.timestamp),
                    ));
                }
                Ok(_) => break,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(device(format!("poll on a request: {e}"))),
            }
        }
        let job = self.pending.pop_front().expect("checked above");
        let out: V4l2Buffer = dqbuf(&self.video, self.output_queue)
            .map_err(|e| device(format!("VIDIOC_DQBUF OUTPUT: {e}")))?;
        self.free_output.push(out.index() as usize);
        if job.holds_capture {
            let _ = job.output_index;
            if job.request.reinit().is_ok() {
                self.requests.push(job.request);
            }
            if out.has_error() {
                return Err(DecoderError::Picture(job.timestamp));
            }
            return Ok(());
        }
        let cap: V4l2Buffer = dqbuf(&self.video, self.capture_queue)
            .map_err(|e| device(format!("VIDIOC_DQBUF CAPTURE: {e}")))?;
        let index = cap.index() as usize;
        if index != job.capture_index {
            return Err(device(format!(
                "the driver returned CAPTURE buffer {index}, expected {}",
                job.capture_index
            )));
        }
        if let Some(slot) = self.slots.get_mut(index) {
            slot.queued = false;
        }
        let _ = job.output_index;
        if job.request.reinit().is_ok() {
            self.requests.push(job.request);
        }
        if cap.has_error() || out.has_error() {
            return Err(DecoderError::Picture(job.timestamp));
        }
        Ok(())
    }

    fn take_output_buffer(&mut self) -> Result<usize, DecoderError> {
        while self.free_output.is_empty() && !self.pending.is_empty() {
            match self.complete_oldest() {
                Ok(()) | Err(DecoderError::Picture(_)) => {}
                Err(e) => return Err(e),
            }
        }
        self.free_output
            .pop()
            .ok_or_else(|| device("no free OUTPUT buffer"))
    }

    fn take_capture_buffer(&mut self) -> Result<usize, DecoderError> {
        loop {
            self.loans.collect_returns();
            if let Some(i) = (0..self.slots.len()).find(|&i| self.slot_is_free(i)) {
                return Ok(i);
            }
            if !self.pending.is_empty() {
                match self.complete_oldest() {
                    Ok(()) | Err(DecoderError::Picture(_)) => {}
                    Err(e) => return Err(e),
                }
                continue;
            }
            if self.loans.lent_slots() == 0 {
                return Err(device(format!(
                    "all {} CAPTURE buffers hold references or pictures waiting to be output",
                    self.slots.len()
                )));
            }
            // Downstream holds pictures: grow the queue if the driver lets us, else wait
            // for downstream to drop one.
            if self.grow_capture()? {
                continue;
            }
            if !self.loans.wait_return(self.timeout) {
                return Err(DecoderError::Timeout(
                    self.timeout,
                    format!(
                        "downstream holds {} of the {} CAPTURE buffers and returned none",
                        self.loans.lent_slots(),
                        self.slots.len()
                    ),
                ));
            }
        }
    }

    /// Adds CAPTURE buffers with `VIDIOC_CREATE_BUFS` up to [`MAX_CAPTURE_BUFFERS`].
    /// False when the queue cannot grow (limit reached, driver refuses).
    fn grow_capture(&mut self) -> Result<bool, DecoderError> {
        let Some(capture) = self.capture.as_mut() else {
            return Ok(false);
        };
        let room = MAX_CAPTURE_BUFFERS.saturating_sub(capture.buffers.len());
        if !capture.caps.create_bufs || room == 0 {
            return Ok(false);
        }
        match capture.grow(&self.video, room.min(2) as u32) {
            Ok(added) if added > 0 => {
                self.slots
                    .resize(capture.buffers.len(), CaptureSlot::default());
                self.loans.grow(capture.buffers.len());
                Ok(true)
            }
            // A driver without room for more buffers: wait for downstream instead.
            Ok(_) | Err(_) => {
                capture.caps.create_bufs = false;
                Ok(false)
            }
        }
    }
}

impl Backend for RequestDecoder {
    type Error = DecoderError;

    fn decode(&mut self, mut job: DecodeJob<'_>) -> Result<(), DecoderError> {
        if !self.is_started() {
            return Err(device("decode before the queues were started"));
        }
        // Without the capability vb2 drops the flag: the CAPTURE buffer would come back
        // after the first part and the next request would wait for one forever.
        if job.hold_capture && !self.output.as_ref().is_some_and(|o| o.caps.hold_capture) {
            return Err(device(
                "the driver cannot decode several requests into one CAPTURE buffer \
                 (no V4L2_BUF_CAP_SUPPORTS_M2M_HOLD_CAPTURE_BUF), which this stream needs",
            ));
        }
        let output_index = self.take_output_buffer()?;
        let held = if job.continues_picture {
            self.held_capture.take()
        } else {
            None
        };
        let capture_index = match held {
            Some(i) => i,
            None if job.continues_picture => {
                self.free_output.push(output_index);
                return Err(device("a slice continues a picture that was not started"));
            }
            None => match self.take_capture_buffer() {
                Ok(i) => i,
                Err(e) => {
                    self.free_output.push(output_index);
                    return Err(e);
                }
            },
        };
        let result = self.queue_job(&mut job, output_index, capture_index, held.is_none());
        match &result {
            Ok(()) if job.hold_capture => self.held_capture = Some(capture_index),
            Ok(()) => {}
            Err(_) => self.free_output.push(output_index),
        }
        result
    }

    fn set_references(&mut self, timestamps: &[u64]) {
        self.references = timestamps.to_vec();
    }
}

impl RequestDecoder {
    fn queue_job(
        &mut self,
        job: &mut DecodeJob<'_>,
        output_index: usize,
        capture_index: usize,
        queue_capture: bool,
    ) -> Result<(), DecoderError> {
        let output = self.output.as_mut().ok_or_else(|| device("not started"))?;
        // OUTPUT mappings are never shared, so this always succeeds.
        let plane = Arc::get_mut(&mut output.buffers[output_index].planes[0])
            .ok_or_else(|| device("an OUTPUT buffer mapping is shared"))?;
        let room = plane.len();
        if job.bitstream.len() > room {
            return Err(device(format!(
                "a {} byte frame does not fit the {room} byte OUTPUT buffer",
                job.bitstream.len()
            )));
        }
        plane[..job.bitstream.len()].copy_from_slice(job.bitstream);
        let request = match self.requests.pop() {
            Some(r) => r,
            None => Request::alloc(&self.media)
                .map_err(|e| device(format!("MEDIA_IOC_REQUEST_ALLOC: {e}")))?,
        };
        controls::set(&self.video, Some(request.as_raw_fd()), &mut job.controls)
            .map_err(DecoderError::Device)?;
        let micros = job.timestamp / 1000;
        let mut out = QBuffer::<MmapHandle>::new(self.output_queue, output_index as u32)
            .set_timestamp((micros / 1_000_000) as _, (micros % 1_000_000) as _)
            .set_request(request.as_raw_fd());
        if job.hold_capture {
            out.flags |=
                BufferFlags::from_bits_retain(v4l2r::bindings::V4L2_BUF_FLAG_M2M_HOLD_CAPTURE_BUF);
        }
        out.planes = vec![QBufPlane::new(job.bitstream.len())];
        qbuf::<_, V4l2Buffer>(&self.video, out)
            .map_err(|e| device(format!("VIDIOC_QBUF OUTPUT: {e}")))?;
        if queue_capture {
            let planes = self
                .capture
                .as_ref()
                .map_or(1, |c| c.buffers[capture_index].planes.len());
            let mut cap = QBuffer::<MmapHandle>::new(self.capture_queue, capture_index as u32);
            cap.planes = (0..planes).map(|_| QBufPlane::new(0)).collect();
            qbuf::<_, V4l2Buffer>(&self.video, cap)
                .map_err(|e| device(format!("VIDIOC_QBUF CAPTURE: {e}")))?;
        }
        request
            .queue()
            .map_err(|e| device(format!("MEDIA_REQUEST_IOC_QUEUE: {e}")))?;
        self.slots[capture_index] = CaptureSlot {
            timestamp: Some(job.timestamp),
            queued: true,
            outputs: 0,
        };
        self.pending.push_back(Pending {
            timestamp: job.timestamp,
            request,
            output_index,
            capture_index,
            holds_capture: job.hold_capture,
        });
        Ok(())
    }
}

impl Drop for RequestDecoder {
    fn drop(&mut self) {
        self.stop();
    }
}
