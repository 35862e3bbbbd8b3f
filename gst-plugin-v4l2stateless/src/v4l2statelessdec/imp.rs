// SPDX-License-Identifier: MPL-2.0
//! `GstV4l2StatelessDec`: the abstract GstVideoDecoder every registered
//! `v4l2stateless<codec>dec` derives from. Each registered subtype carries one device
//! and codec (see `register.rs`); this type does the work.

use std::collections::VecDeque;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_video::prelude::*;
use gst_video::subclass::prelude::*;

use super::codecs::CodecState;
use super::copy;
use super::register::{DeviceDescription, device_for};
use super::zerocopy::{self, OutputMode};
use crate::stateless::backend::DecodeError;
use crate::stateless::{frame_number, frame_timestamp};
use crate::v4l2::{DecoderError, RequestDecoder};

pub(crate) static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "v4l2statelessdec",
        gst::DebugColorFlags::empty(),
        Some("V4L2 stateless decoders"),
    )
});

/// -1: pick from liveness (0 when live, 1 otherwise).
const DEFAULT_RENDER_DELAY: i32 = -1;
const MAX_RENDER_DELAY: i32 = 16;
/// How long any single wait on the device may take. Generous: the lab runs the kernel
/// under TCG emulation on a loaded machine.
const DEVICE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy)]
struct Settings {
    render_delay: i32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            render_delay: DEFAULT_RENDER_DELAY,
        }
    }
}

struct State {
    device: RequestDecoder,
    codec: CodecState,
    input_state:
        Option<gst_video::VideoCodecState<'static, gst_video::video_codec_state::Readable>>,
    output_info: Option<gst_video::VideoInfo>,
    coded_size: Option<(u32, u32)>,
    render_delay: usize,
    /// Shown pictures not yet pushed: (system frame number, picture timestamp).
    pending: VecDeque<(u32, u64)>,
    /// After bad input or a flush: drop frames until the next key frame.
    need_key_frame: bool,
}

/// What the last negotiation chose, and what went downstream since. Apart from `State`
/// because `decide_allocation` runs while `state` is locked (negotiation from `setup`).
#[derive(Debug, Default)]
struct Output {
    mode: OutputMode,
    /// Buffers downstream's pool wants (ALLOCATION query), added to the CAPTURE count.
    downstream_min: u32,
    pictures_copied: u64,
    pictures_zero_copy: u64,
    capture_buffers: u32,
}

#[derive(Default)]
pub struct V4l2StatelessDec {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
    output: Mutex<Output>,
}

impl V4l2StatelessDec {
    fn description(&self) -> Option<Arc<DeviceDescription>> {
        device_for(self.obj().type_())
    }

    fn is_live(&self) -> bool {
        let mut query = gst::query::Latency::new();
        self.obj().sink_pad().peer_query(&mut query) && query.result().0
    }

    /// Sets up the device for the sequence starting with key frame `data`: bitstream
    /// format, sequence-level control, CAPTURE format, buffers, output caps.
    fn setup(&self, state: &mut State, data: &[u8]) -> Result<(), gst::FlowError> {
        self.drain_all(state)?;
        let seq = match state.codec.sequence(data) {
            Ok(seq) => seq,
            Err(e) => {
                gst::warning!(CAT, imp = self, "cannot start a sequence here: {e}");
                return Err(gst::FlowError::CustomError);
            }
        };
        if !seq.is_8bit_420 {
            gst::element_imp_error!(
                self,
                gst::StreamError::Format,
                ("only 8-bit 4:2:0 streams are supported so far")
            );
            return Err(gst::FlowError::NotNegotiated);
        }
        let fail = |e: DecoderError| {
            gst::element_imp_error!(self, gst::ResourceError::Settings, ("{e}"));
            gst::FlowError::Error
        };
        state.device.stop();
        state.codec.reset();
        let bitstream_size = (seq.width * seq.height * 3 / 4).max(512 * 1024);
        state
            .device
            .set_output_format(seq.width, seq.height, bitstream_size)
            .map_err(fail)?;
        if let Some(control) = seq.control {
            state.device.set_controls(&mut [control]).map_err(fail)?;
        }
        let offered = state.device.capture_formats();
        let Some(&(fourcc, format)) = copy::FORMATS.iter().find(|(f, _)| offered.contains(f))
        else {
            let names: Vec<String> = offered
                .iter()
                .map(|f| String::from_utf8_lossy(f).into_owned())
                .collect();
            gst::element_imp_error!(
                self,
                gst::CoreError::Negotiation,
                [
                    "the driver offers no CAPTURE format we can output ({})",
                    names.join(", ")
                ]
            );
            return Err(gst::FlowError::NotNegotiated);
        };
        let capture_size = seq
            .capture_size_from_stream
            .then_some((seq.width, seq.height));
        state
            .device
            .set_capture_format(fourcc, capture_size)
            .map_err(fail)?;
        let configured = self.settings.lock().unwrap().render_delay;
        state.render_delay = if configured >= 0 {
            configured as usize
        } else if self.is_live() {
            0
        } else {
            1
        };
        // Negotiate first: downstream's ALLOCATION answer decides the memory mode and
        // how many CAPTURE buffers to allocate.
        let obj = self.obj();
        // The visible part (H.264 frame cropping); the copy takes it from the top left.
        let (width, height) = state
            .codec
            .display_size(data)
            .unwrap_or((seq.width, seq.height));
        let mut output_state = if seq.interlaced {
            obj.set_interlaced_output_state(
                format,
                gst_video::VideoInterlaceMode::Interleaved,
                width,
                height,
                state.input_state.as_ref(),
            )
        } else {
            obj.set_output_state(format, width, height, state.input_state.as_ref())
        }
        .map_err(|_| gst::FlowError::NotNegotiated)?;
        if self.downstream_prefers_dmabuf() {
            let mut caps = output_state
                .info()
                .to_caps()
                .map_err(|_| gst::FlowError::Error)?;
            caps.get_mut()
                .expect("new caps")
                .set_features_simple(Some(gst::CapsFeatures::new([
                    gst_allocators::CAPS_FEATURE_MEMORY_DMABUF,
                ])));
            output_state.set_caps(&caps);
        }
        obj.negotiate(output_state)
            .map_err(|_| gst::FlowError::NotNegotiated)?;
        state.output_info = self.obj().output_state().map(|s| s.info().clone());
        let (mode, downstream_min) = {
            let output = self.output.lock().unwrap();
            (output.mode, output.downstream_min)
        };
        let outputs = state.render_delay as u32 + 2;
        let captures = state.codec.max_references() + state.render_delay as u32 + 3;
        let captures = if mode == OutputMode::Copy {
            captures
        } else {
            captures + downstream_min
        };
        state
            .device
            .start(outputs, captures, mode == OutputMode::DmaBuf)
            .map_err(fail)?;
        let (allocated, queue_caps) = state.device.capture_buffers();
        self.output.lock().unwrap().capture_buffers = allocated as u32;
        gst::info!(
            CAT,
            imp = self,
            "{}x{} {} render delay {}, output {}, {allocated} CAPTURE buffers \
             (CREATE_BUFS {}, REMOVE_BUFS {})",
            seq.width,
            seq.height,
            String::from_utf8_lossy(&fourcc),
            state.render_delay,
            mode.name(),
            queue_caps.create_bufs,
            queue_caps.remove_bufs,
        );
        state.coded_size = Some((seq.width, seq.height));
        Ok(())
    }

    /// Pushes the oldest pending picture downstream.
    fn output_one(&self, state: &mut State) -> Result<gst::FlowSuccess, gst::FlowError> {
        let Some((number, timestamp)) = state.pending.pop_front() else {
            return Ok(gst::FlowSuccess::Ok);
        };
        let obj = self.obj();
        let Some(mut frame) = obj.frame(number as i32) else {
            state.device.release_output(timestamp);
            return Ok(gst::FlowSuccess::Ok);
        };
        let picture = match state.device.wait_picture(timestamp) {
            Ok(p) => p,
            Err(DecoderError::Picture(ts)) => {
                gst::element_imp_warning!(
                    self,
                    gst::StreamError::Decode,
                    ("the driver failed to decode picture {ts} ns; dropping it")
                );
                state.device.release_output(timestamp);
                return self.obj().drop_frame(frame);
            }
            Err(e) => {
                gst::element_imp_error!(self, gst::StreamError::Decode, ("{e}"));
                return Err(gst::FlowError::Error);
            }
        };
        let mode = self.output.lock().unwrap().mode;
        if mode != OutputMode::Copy {
            return self.output_lent(state, frame, timestamp, mode);
        }
        let (layout, planes) = picture;
        let layout = layout.clone();
        let planes: Vec<&[u8]> = planes.iter().map(|p| &p[..]).collect();
        let info = state
            .output_info
            .clone()
            .ok_or(gst::FlowError::NotNegotiated)?;
        self.obj().allocate_output_frame(&mut frame, None)?;
        let copied = {
            let buffer = frame.output_buffer_mut().ok_or(gst::FlowError::Error)?;
            let mut video = gst_video::VideoFrameRef::from_buffer_ref_writable(buffer, &info)
                .map_err(|_| gst::FlowError::Error)?;
            copy::copy_picture(&layout, &planes, &mut video)
        };
        state.device.release_output(timestamp);
        if let Err(e) = copied {
            gst::element_imp_error!(self, gst::StreamError::Decode, ("{e}"));
            return Err(gst::FlowError::Error);
        }
        self.output.lock().unwrap().pictures_copied += 1;
        self.obj().finish_frame(frame)
    }

    /// Pushes the decoded picture `timestamp` without a copy: its CAPTURE buffer is lent
    /// to downstream until the pushed buffer is dropped.
    fn output_lent(
        &self,
        state: &mut State,
        mut frame: gst_video::VideoCodecFrame,
        timestamp: u64,
        mode: OutputMode,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let info = state
            .output_info
            .clone()
            .ok_or(gst::FlowError::NotNegotiated)?;
        let wrapped = (|| -> Result<gst::Buffer, String> {
            if mode == OutputMode::DmaBuf {
                state.device.export_capture().map_err(|e| e.to_string())?;
            }
            let picture = state.device.lend(timestamp).map_err(|e| e.to_string())?;
            match mode {
                OutputMode::DmaBuf => zerocopy::wrap_dmabuf(picture, &info),
                _ => zerocopy::wrap_mapped(picture, &info),
            }
        })();
        state.device.release_output(timestamp);
        let buffer = wrapped.map_err(|e| {
            gst::element_imp_error!(self, gst::StreamError::Decode, ("{e}"));
            gst::FlowError::Error
        })?;
        {
            let mut output = self.output.lock().unwrap();
            output.pictures_zero_copy += 1;
            output.capture_buffers = state.device.capture_buffers().0 as u32;
        }
        frame.set_output_buffer(buffer);
        self.obj().finish_frame(frame)
    }

    /// DMABuf output when downstream asks for `memory:DMABuf` explicitly (not when it
    /// accepts anything: then system memory is the safe choice).
    fn downstream_prefers_dmabuf(&self) -> bool {
        let peer = self.obj().src_pad().peer_query_caps(None);
        !peer.is_any()
            && peer
                .iter_with_features()
                .any(|(_, features)| features.contains(gst_allocators::CAPS_FEATURE_MEMORY_DMABUF))
    }

    fn stats(&self) -> gst::Structure {
        let output = self.output.lock().unwrap();
        gst::Structure::builder("application/x-v4l2stateless-stats")
            .field("output-mode", output.mode.name())
            .field("pictures-copied", output.pictures_copied)
            .field("pictures-zero-copy", output.pictures_zero_copy)
            .field("capture-buffers", output.capture_buffers)
            .build()
    }

    /// Pushes pictures until no more than the render delay stay queued.
    fn output_beyond_delay(&self, state: &mut State) -> Result<gst::FlowSuccess, gst::FlowError> {
        while state.pending.len() > state.render_delay {
            self.output_one(state)?;
        }
        Ok(gst::FlowSuccess::Ok)
    }

    fn output_all(&self, state: &mut State) -> Result<gst::FlowSuccess, gst::FlowError> {
        while !state.pending.is_empty() {
            self.output_one(state)?;
        }
        Ok(gst::FlowSuccess::Ok)
    }

    /// Pushes every picture, including those the codec still holds back for reordering.
    fn drain_all(&self, state: &mut State) -> Result<gst::FlowSuccess, gst::FlowError> {
        let waiting = state.codec.drain();
        self.queue_pictures(state, &waiting);
        self.output_all(state)
    }

    /// Queues shown pictures, (input frame timestamp, picture timestamp), for output.
    fn queue_pictures(&self, state: &mut State, shown: &[(u64, u64)]) {
        for &(frame_ts, picture) in shown {
            let Some(number) = frame_number(frame_ts) else {
                gst::warning!(CAT, imp = self, "no input frame has timestamp {frame_ts}");
                continue;
            };
            state.device.hold_output(picture);
            state.pending.push_back((number, picture));
        }
    }

    /// Releases input frames that will never be shown.
    fn release_frames(&self, discarded: &[u64]) {
        let obj = self.obj();
        for &frame_ts in discarded {
            gst::trace!(CAT, imp = self, "input frame {frame_ts} ns is not shown");
            if let Some(frame) = frame_number(frame_ts).and_then(|n| obj.frame(n as i32)) {
                obj.release_frame(frame);
            }
        }
    }
}

#[glib::object_subclass]
impl ObjectSubclass for V4l2StatelessDec {
    const NAME: &'static str = "GstV4l2StatelessDec";
    const ABSTRACT: bool = true;
    type Type = super::V4l2StatelessDec;
    type ParentType = gst_video::VideoDecoder;
}

impl ObjectImpl for V4l2StatelessDec {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecInt::builder("render-delay")
                    .nick("Render delay")
                    .blurb(
                        "Decode requests kept in flight before a picture is pushed, so the \
                         device works while downstream consumes (-1: 0 when live, 1 otherwise)",
                    )
                    .minimum(-1)
                    .maximum(MAX_RENDER_DELAY)
                    .default_value(DEFAULT_RENDER_DELAY)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("media-device")
                    .nick("Media device")
                    .blurb("The media controller node requests are allocated on")
                    .read_only()
                    .build(),
                glib::ParamSpecString::builder("video-device")
                    .nick("Video device")
                    .blurb("The V4L2 memory-to-memory video node of the decoder")
                    .read_only()
                    .build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                    .nick("Statistics")
                    .blurb(
                        "Output memory mode (copy, system-memory, dmabuf), pictures copied and \
                         pushed without copy, CAPTURE buffers allocated",
                    )
                    .read_only()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        if pspec.name() == "render-delay" {
            self.settings.lock().unwrap().render_delay = value.get().expect("type checked");
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let desc = self.description();
        match pspec.name() {
            "render-delay" => self.settings.lock().unwrap().render_delay.to_value(),
            "media-device" => desc
                .map(|d| d.media_device.display().to_string())
                .to_value(),
            "video-device" => desc
                .map(|d| d.video_device.display().to_string())
                .to_value(),
            "stats" => self.stats().to_value(),
            _ => unreachable!("unknown property {}", pspec.name()),
        }
    }
}

impl GstObjectImpl for V4l2StatelessDec {}

impl ElementImpl for V4l2StatelessDec {}

impl VideoDecoderImpl for V4l2StatelessDec {
    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let desc = self.description().ok_or_else(|| {
            gst::error_msg!(
                gst::CoreError::Failed,
                ("{} has no device description", self.obj().type_().name())
            )
        })?;
        let device = RequestDecoder::open(
            &desc.video_device,
            &desc.media_device,
            desc.codec,
            DEVICE_TIMEOUT,
        )
        .map_err(|e| gst::error_msg!(gst::ResourceError::OpenReadWrite, ("{e}")))?;
        let codec = CodecState::new(
            desc.codec,
            |id| device.has_control(id),
            |id| device.control_value(id),
        )
        .ok_or_else(|| {
            gst::error_msg!(
                gst::CoreError::NotImplemented,
                ("{:?} decoding is not implemented", desc.codec)
            )
        })?;
        *self.state.lock().unwrap() = Some(State {
            device,
            codec,
            input_state: None,
            output_info: None,
            coded_size: None,
            render_delay: 0,
            pending: VecDeque::new(),
            need_key_frame: true,
        });
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        *self.state.lock().unwrap() = None;
        Ok(())
    }

    fn decide_allocation(
        &self,
        query: &mut gst::query::Allocation,
    ) -> Result<(), gst::LoggableError> {
        let dmabuf = query
            .get()
            .0
            .and_then(|caps| caps.features(0))
            .is_some_and(|features| features.contains(gst_allocators::CAPS_FEATURE_MEMORY_DMABUF));
        let video_meta = query
            .find_allocation_meta::<gst_video::VideoMeta>()
            .is_some();
        let downstream_min = query
            .allocation_pools()
            .map(|(_, _, min, _)| min)
            .max()
            .unwrap_or(0);
        self.parent_decide_allocation(query)?;
        let mode = if dmabuf {
            OutputMode::DmaBuf
        } else if video_meta {
            OutputMode::SystemMemory
        } else {
            OutputMode::Copy
        };
        gst::debug!(
            CAT,
            imp = self,
            "output {} (downstream video meta: {video_meta}, pool min {downstream_min})",
            mode.name()
        );
        let mut output = self.output.lock().unwrap();
        output.mode = mode;
        output.downstream_min = downstream_min;
        Ok(())
    }

    fn set_format(
        &self,
        input_state: &gst_video::VideoCodecState<'static, gst_video::video_codec_state::Readable>,
    ) -> Result<(), gst::LoggableError> {
        let mut guard = self.state.lock().unwrap();
        let state = guard
            .as_mut()
            .ok_or_else(|| gst::loggable_error!(CAT, "not started"))?;
        state.input_state = Some(input_state.clone());
        if let Some(codec_data) = input_state.codec_data() {
            let map = codec_data
                .map_readable()
                .map_err(|_| gst::loggable_error!(CAT, "unreadable codec_data"))?;
            if let Err(e) = state.codec.codec_data(map.as_slice()) {
                gst::warning!(CAT, imp = self, "ignoring codec_data: {e}");
            }
        }
        Ok(())
    }

    fn handle_frame(
        &self,
        frame: gst_video::VideoCodecFrame,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let mut guard = self.state.lock().unwrap();
        let state = guard.as_mut().ok_or(gst::FlowError::Flushing)?;
        let codec = self
            .description()
            .map(|d| d.codec)
            .ok_or(gst::FlowError::Error)?;
        let input = frame.input_buffer_owned().ok_or(gst::FlowError::Error)?;
        let map = input.map_readable().map_err(|_| gst::FlowError::Error)?;
        let data = map.as_slice();
        let key = CodecState::is_key_frame(data, codec);
        if state.need_key_frame && !key {
            gst::debug!(
                CAT,
                imp = self,
                "dropping a frame while waiting for a key frame"
            );
            return self.obj().drop_frame(frame);
        }
        if key {
            let size = state.codec.sequence(data).ok().map(|s| (s.width, s.height));
            if !state.device.is_started() || (size.is_some() && size != state.coded_size) {
                match self.setup(state, data) {
                    Ok(()) => {}
                    Err(gst::FlowError::CustomError) => {
                        return self.obj().drop_frame(frame);
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        let number = frame.system_frame_number();
        let timestamp = frame_timestamp(number);
        let outcome = match state.codec.decode(data, timestamp, &mut state.device) {
            Ok(outcome) => outcome,
            Err(DecodeError::Bitstream(e)) => {
                gst::element_imp_warning!(
                    self,
                    gst::StreamError::Decode,
                    ("skipping to the next key frame: {e}")
                );
                // Pictures decoded before the bad frame are fine: show them first.
                let waiting = state.codec.drain();
                state.codec.reset();
                state.need_key_frame = true;
                drop(map);
                self.obj().drop_frame(frame)?;
                self.queue_pictures(state, &waiting);
                return self.output_beyond_delay(state);
            }
            Err(DecodeError::Backend(e)) => {
                gst::element_imp_error!(self, gst::StreamError::Decode, ("{e}"));
                return Err(gst::FlowError::Error);
            }
        };
        state.need_key_frame = false;
        drop(map);
        // Frames neither shown nor discarded stay with the base class until a later
        // outcome (or the drain) shows them.
        drop(frame);
        self.release_frames(&outcome.discard);
        self.queue_pictures(state, &outcome.show);
        // The peak of this over a stream is what render-delay buys (the benchmark reads it).
        gst::trace!(
            CAT,
            imp = self,
            "in flight: {} requests queued, {} pictures not pushed",
            state.device.pending_jobs(),
            state.pending.len()
        );
        self.output_beyond_delay(state)
    }

    fn drain(&self) -> Result<gst::FlowSuccess, gst::FlowError> {
        let mut guard = self.state.lock().unwrap();
        match guard.as_mut() {
            Some(state) => self.drain_all(state),
            None => Ok(gst::FlowSuccess::Ok),
        }
    }

    fn finish(&self) -> Result<gst::FlowSuccess, gst::FlowError> {
        self.drain()
    }

    fn flush(&self) -> bool {
        let mut guard = self.state.lock().unwrap();
        if let Some(state) = guard.as_mut() {
            if let Err(e) = state.device.finish_all() {
                gst::warning!(CAT, imp = self, "while flushing: {e}");
            }
            state.pending.clear();
            state.device.forget_pictures();
            state.codec.reset();
            state.need_key_frame = true;
        }
        true
    }
}
