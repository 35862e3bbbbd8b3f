// SPDX-License-Identifier: MPL-2.0

use std::sync::mpsc;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::thread::JoinHandle;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use spicepass_protocol::{
    BufferHeader, Capabilities, ClientReport, Event as WireEvent, EventDirection, Message, Role,
    Session,
};

use super::DropPolicy;
use super::shared_memory::{self, CopyPool};
use crate::endpoint::{EndpointSettings, ModeKind};
use crate::event_codec;
use crate::overlay_geometry::OverlayGeometry;
use crate::session::{self, Handler, SendError, WhenDisconnected, Worker};
use crate::stats::Stats;
use crate::transport::Address;

/// How long stopping waits for the peer to read what was sent and close its end.
const LINGER: std::time::Duration = std::time::Duration::from_secs(2);

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "spicepasssink",
        gst::DebugColorFlags::empty(),
        Some("spicepass guest-side sink"),
    )
});

const DEFAULT_DROP_POLICY: DropPolicy = DropPolicy::Drop;
/// Buffers at least this big go through shared memory when the client takes it: below,
/// the socket copy costs less than announcing and releasing a reference.
const DEFAULT_MEMFD_THRESHOLD: u64 = 256 * 1024;

#[derive(Debug, Clone)]
struct Settings {
    endpoint: EndpointSettings,
    drop_policy: DropPolicy,
    memfd_threshold: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            endpoint: EndpointSettings::new(ModeKind::Listen),
            drop_policy: DEFAULT_DROP_POLICY,
            memfd_threshold: DEFAULT_MEMFD_THRESHOLD,
        }
    }
}

/// Streaming-thread bookkeeping for resynchronising a (new) client.
#[derive(Debug, Default)]
struct StreamState {
    /// Connection generation that got the sticky events.
    synced_generation: u64,
    /// After a (re)connection only a keyframe may go first.
    awaiting_keyframe: bool,
    /// A force-key-unit was pushed upstream for the current resync.
    key_unit_requested: bool,
    /// Buffers were seen before (so a new client joins mid-stream).
    seen_buffers: bool,
}

/// The guest application's overlay geometry and which connection has seen it.
#[derive(Debug, Default)]
struct GeometryState {
    /// None until the application used the `GstVideoOverlay` interface.
    overlay: Option<OverlayGeometry>,
    /// Connection that got the current geometry.
    sent_to: u64,
    /// Connection whose client announced `WINDOW_GEOMETRY`.
    accepting_generation: u64,
}

struct Running {
    worker: Worker,
    upstream: Option<(mpsc::Sender<gst::Event>, JoinHandle<()>)>,
}

pub struct SpicepassSink {
    sinkpad: gst::Pad,
    settings: Mutex<Settings>,
    stream: Mutex<StreamState>,
    running: Mutex<Option<Running>>,
    report: Arc<Mutex<Option<ClientReport>>>,
    geometry: Arc<Mutex<GeometryState>>,
    stats: Arc<Stats>,
    /// Where big buffers from foreign memory are copied into (streaming thread).
    copy_pool: Mutex<CopyPool>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The worker's view of the element: bus messages, upstream events, reports.
struct SinkHandler {
    element: glib::WeakRef<super::SpicepassSink>,
    upstream: mpsc::Sender<gst::Event>,
    report: Arc<Mutex<Option<ClientReport>>>,
    geometry: Arc<Mutex<GeometryState>>,
}

impl SinkHandler {
    fn post(&self, name: &str, fields: &[(&str, &(dyn ToSendValue + Sync))]) {
        let Some(element) = self.element.upgrade() else {
            return;
        };
        let mut s = gst::Structure::new_empty(name);
        for (k, v) in fields {
            s.set_value(*k, v.to_send_value());
        }
        let _ = element.post_message(gst::message::Element::builder(s).src(&element).build());
    }
}

impl Handler for SinkHandler {
    fn connected(&self, generation: u64, session: &Session) {
        if let Some(e) = self.element.upgrade() {
            gst::info!(
                CAT,
                obj = e,
                "client connected (connection {generation}, client session {:#x}, protocol {}, capabilities {:#x})",
                session.peer_session_id,
                session.version,
                session.capabilities.0
            );
        }
        if session.capabilities.contains(Capabilities::WINDOW_GEOMETRY) {
            lock(&self.geometry).accepting_generation = generation;
            if let Some(e) = self.element.upgrade()
                && let Some(outbox) = e.imp().outbox()
            {
                e.imp().push_geometry(&outbox, false);
            }
        }
        self.post(
            "spicepass-connected",
            &[
                ("generation", &generation),
                ("peer-session-id", &session.peer_session_id),
            ],
        );
    }

    fn lost(&self, generation: u64, reason: &str) {
        if let Some(e) = self.element.upgrade() {
            gst::info!(
                CAT,
                obj = e,
                "client lost (connection {generation}): {reason}"
            );
        }
        self.post(
            "spicepass-lost",
            &[("generation", &generation), ("reason", &reason)],
        );
    }

    fn protocol_error(&self, message: &str, fatal: bool) {
        let Some(e) = self.element.upgrade() else {
            return;
        };
        if fatal {
            gst::element_error!(e, gst::StreamError::Decode, ("{message}"));
        } else {
            // The guest application must survive a misbehaving client: warn, keep listening.
            gst::element_warning!(e, gst::StreamError::Decode, ("{message}"));
        }
    }

    fn event(&self, generation: u64, wire: WireEvent) {
        let Some(e) = self.element.upgrade() else {
            return;
        };
        match event_codec::from_wire(&wire) {
            Ok(event) => {
                gst::debug!(
                    CAT,
                    obj = e,
                    "client event (connection {generation}): {:?} {:?}",
                    event.type_(),
                    event.structure()
                );
                // Pushed from a helper thread: a flushing seek upstream must not stall reading.
                let _ = self.upstream.send(event);
            }
            Err(err) => {
                gst::element_warning!(
                    e,
                    gst::StreamError::Decode,
                    ("Dropping a client event: {err}")
                );
            }
        }
    }

    fn buffer(&self, _generation: u64, _header: BufferHeader, _memory: gst::Buffer) {
        // The decoder refuses buffers from a src (wrong direction); nothing to do.
    }

    fn report(&self, report: ClientReport) {
        if let Some(e) = self.element.upgrade() {
            gst::log!(CAT, obj = e, "client report {report:?}");
        }
        *lock(&self.report) = Some(report);
    }
}

impl SpicepassSink {
    fn outbox(&self) -> Option<Arc<session::Outbox>> {
        lock(&self.running)
            .as_ref()
            .map(|r| r.worker.outbox().clone())
    }

    fn send_event(&self, outbox: &session::Outbox, event: &gst::Event) {
        let wire = event_codec::to_wire(event, EventDirection::Downstream);
        let left_out = event_codec::unserializable_fields(event);
        if !left_out.is_empty() {
            gst::debug!(
                CAT,
                imp = self,
                "{:?}: fields {left_out:?} hold objects that cannot be serialized; sent without them",
                event.type_()
            );
        }
        match outbox.send(&Message::Event(wire)) {
            Ok(generation) => {
                session::count_event(outbox);
                gst::debug!(
                    CAT,
                    imp = self,
                    "sent event {:?} seqnum {:?} (connection {generation})",
                    event.type_(),
                    event.seqnum()
                );
            }
            Err(e) => gst::debug!(CAT, imp = self, "event {:?} not sent: {e}", event.type_()),
        }
    }

    /// Sends the overlay geometry to the client on the control path (never behind credits),
    /// if the application set one and the client accepts it; `again` re-sends it to a client
    /// that already has it.
    pub(super) fn push_geometry(&self, outbox: &session::Outbox, again: bool) {
        let Some(generation) = outbox.generation() else {
            return;
        };
        let mut state = lock(&self.geometry);
        let Some(overlay) = state.overlay else {
            return;
        };
        if state.accepting_generation != generation || (!again && state.sent_to == generation) {
            return;
        }
        state.sent_to = generation;
        drop(state);
        let wire = overlay.to_wire();
        match outbox.send(&Message::WindowGeometry(wire)) {
            Ok(_) => gst::debug!(
                CAT,
                imp = self,
                "sent window geometry {wire:?} (connection {generation})"
            ),
            Err(e) => gst::debug!(CAT, imp = self, "window geometry not sent: {e}"),
        }
    }

    fn update_overlay(&self, what: &str, change: impl FnOnce(&mut OverlayGeometry)) {
        {
            let mut state = lock(&self.geometry);
            let overlay = state.overlay.get_or_insert_with(OverlayGeometry::default);
            change(overlay);
            gst::debug!(
                CAT,
                imp = self,
                "{what}: window geometry now {:?}",
                overlay.to_wire()
            );
        }
        if let Some(outbox) = self.outbox() {
            self.push_geometry(&outbox, true);
        }
    }

    pub(super) fn overlay_set_render_rectangle(&self, x: i32, y: i32, width: i32, height: i32) {
        self.update_overlay(
            &format!("set_render_rectangle({x}, {y}, {width}, {height})"),
            |o| o.set_render_rectangle(x, y, width, height),
        );
    }

    pub(super) fn overlay_set_window_handle(&self, handle: usize) {
        // A guest window id means nothing on the client: only "no window" (0) matters.
        self.update_overlay(&format!("set_window_handle({handle:#x})"), |o| {
            o.set_window_handle(handle)
        });
    }

    pub(super) fn overlay_expose(&self) {
        self.update_overlay("expose", |_| {});
    }

    /// Replays the sticky events to a client that has not seen them (a new connection).
    fn ensure_synced(&self, outbox: &session::Outbox, generation: u64) {
        self.push_geometry(outbox, false);
        let mut stream = lock(&self.stream);
        if stream.synced_generation == generation {
            return;
        }
        stream.synced_generation = generation;
        stream.awaiting_keyframe = true;
        stream.key_unit_requested = false;
        let mid_stream = stream.seen_buffers;
        drop(stream);
        let mut sticky = Vec::new();
        self.sinkpad.sticky_events_foreach(|ev| {
            sticky.push(ev.clone());
            std::ops::ControlFlow::Continue(gst::EventForeachAction::Keep)
        });
        gst::info!(
            CAT,
            imp = self,
            "connection {generation}: replaying {} sticky events{}",
            sticky.len(),
            if mid_stream {
                ", waiting for a keyframe"
            } else {
                ""
            }
        );
        for ev in &sticky {
            self.send_event(outbox, ev);
        }
        if mid_stream {
            self.request_key_unit();
        }
    }

    fn request_key_unit(&self) {
        {
            let mut stream = lock(&self.stream);
            if stream.key_unit_requested {
                return;
            }
            stream.key_unit_requested = true;
        }
        let fku = gst::event::CustomUpstream::new(
            gst::Structure::builder("GstForceKeyUnit")
                .field("running-time", u64::MAX)
                .field("all-headers", true)
                .field("count", 0u32)
                .build(),
        );
        gst::debug!(CAT, imp = self, "asking upstream for a key unit");
        self.sinkpad.push_event(fku);
    }

    /// Decides whether `buffer` may go to connection `generation` (resync rules).
    fn admit(&self, outbox: &session::Outbox, generation: u64, buffer: &gst::BufferRef) -> bool {
        self.ensure_synced(outbox, generation);
        let mut stream = lock(&self.stream);
        stream.seen_buffers = true;
        if !stream.awaiting_keyframe {
            return true;
        }
        if buffer.flags().contains(gst::BufferFlags::DELTA_UNIT) {
            drop(stream);
            Stats::add(&self.stats.dropped, 1);
            gst::log!(
                CAT,
                imp = self,
                "dropping delta unit {:?} until a keyframe",
                buffer.pts()
            );
            self.request_key_unit();
            return false;
        }
        stream.awaiting_keyframe = false;
        drop(stream);
        gst::info!(
            CAT,
            imp = self,
            "connection {generation}: resynced on keyframe {:?}",
            buffer.pts()
        );
        let s = gst::Structure::builder("spicepass-resynced")
            .field("generation", generation)
            .field("pts", buffer.pts())
            .build();
        let obj = self.obj();
        let _ = obj.post_message(gst::message::Element::builder(s).src(&*obj).build());
        true
    }

    fn chain(&self, buffer: gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
        let Some(outbox) = self.outbox() else {
            return Err(gst::FlowError::Flushing);
        };
        let (policy, threshold) = {
            let settings = lock(&self.settings);
            (settings.drop_policy, settings.memfd_threshold)
        };
        let when = match policy {
            DropPolicy::Drop => WhenDisconnected::Fail,
            DropPolicy::Block => WhenDisconnected::WaitForPeer,
        };
        let size = buffer.size();
        let shared = threshold > 0 && size as u64 >= threshold && outbox.shared_memory();
        let result = if shared {
            self.send_shared(&outbox, &buffer, when)
        } else {
            let map = buffer.map_readable().map_err(|_| {
                gst::element_imp_error!(self, gst::ResourceError::Read, ("Cannot map a buffer"));
                gst::FlowError::Error
            })?;
            let header = header_of(&buffer, map.len() as u64);
            outbox.send_buffer(&header, &map, when, |generation| {
                self.admit(&outbox, generation, &buffer)
            })
        };
        match result {
            Ok(_) => {
                gst::trace!(
                    CAT,
                    imp = self,
                    "sent buffer pts {:?} ({size} bytes{})",
                    buffer.pts(),
                    if shared { ", shared memory" } else { "" }
                );
                Ok(gst::FlowSuccess::Ok)
            }
            Err(SendError::NotConnected) => {
                Stats::add(&self.stats.dropped, 1);
                lock(&self.stream).seen_buffers = true;
                gst::log!(
                    CAT,
                    imp = self,
                    "no client: dropped buffer {:?}",
                    buffer.pts()
                );
                Ok(gst::FlowSuccess::Ok)
            }
            Err(SendError::Lost(e)) => {
                Stats::add(&self.stats.dropped, 1);
                gst::debug!(CAT, imp = self, "client lost while sending: {e}");
                Ok(gst::FlowSuccess::Ok)
            }
            Err(SendError::Unencodable(e)) => {
                gst::element_imp_error!(
                    self,
                    gst::StreamError::Encode,
                    ("Cannot send a buffer of {size} bytes: {e}"),
                    ["raise max-message-size on the spicepasssrc"]
                );
                Err(gst::FlowError::Error)
            }
            Err(SendError::Flushing | SendError::Stopping) => Err(gst::FlowError::Flushing),
        }
    }

    /// A big buffer by reference: as is if it already lives in one of our segments
    /// (upstream took our pool), else copied once into a segment of the private pool.
    fn send_shared(
        &self,
        outbox: &session::Outbox,
        buffer: &gst::Buffer,
        when: WhenDisconnected,
    ) -> Result<u64, SendError> {
        let payload = match shared_memory::locate(buffer) {
            Some(payload) => {
                Stats::add(&self.stats.shm_buffers_zero_copy, 1);
                payload
            }
            None => {
                let payload = lock(&self.copy_pool).copy_in(buffer, outbox)?;
                Stats::add(&self.stats.shm_buffers_copied, 1);
                payload
            }
        };
        let header = header_of(buffer, buffer.size() as u64);
        outbox.send_shared_buffer(&header, payload, when, |generation| {
            self.admit(outbox, generation, buffer)
        })
    }

    fn sink_query(&self, pad: &gst::Pad, query: &mut gst::QueryRef) -> bool {
        if let gst::QueryViewMut::Allocation(q) = query.view_mut() {
            let settings = lock(&self.settings);
            // Only a unix socket (or an fd that may be one) can carry shared memory.
            let fds_possible = matches!(
                settings.endpoint.address(),
                Ok(Address::Unix(_) | Address::Fd(_))
            );
            let threshold = settings.memfd_threshold;
            drop(settings);
            let proposed = fds_possible && shared_memory::propose_pool(q, threshold);
            gst::debug!(
                CAT,
                imp = self,
                "allocation query: memfd pool proposed: {proposed}"
            );
            return proposed;
        }
        gst::Pad::query_default(pad, Some(&*self.obj()), query)
    }

    fn sink_event(&self, event: gst::Event) -> bool {
        gst::log!(CAT, imp = self, "event {:?}", event);
        let outbox = self.outbox();
        match event.view() {
            gst::EventView::FlushStart(_) => {
                if let Some(o) = &outbox {
                    o.set_flushing(true);
                    self.send_event(o, &event);
                }
            }
            gst::EventView::FlushStop(_) => {
                if let Some(o) = &outbox {
                    o.set_flushing(false);
                    self.send_event(o, &event);
                }
            }
            _ => {
                if let Some(o) = &outbox
                    && let Some(generation) = o.generation()
                {
                    self.ensure_synced(o, generation);
                    self.send_event(o, &event);
                }
                if let gst::EventView::Eos(_) = event.view() {
                    // A sink element posts EOS itself so the bin knows this branch is done.
                    let obj = self.obj();
                    let _ = obj.post_message(
                        gst::message::Eos::builder()
                            .src(&*obj)
                            .seqnum(event.seqnum())
                            .build(),
                    );
                }
            }
        }
        true
    }

    fn answer_query(&self, query: &mut gst::QueryRef) -> Option<bool> {
        match query.view_mut() {
            gst::QueryViewMut::Position(q) if q.format() == gst::Format::Time => {
                let report = (*lock(&self.report))?;
                let running = gst::ClockTime::from_nseconds(report.position?);
                let segment = self
                    .sinkpad
                    .sticky_event::<gst::event::Segment>(0)?
                    .segment()
                    .downcast_ref::<gst::ClockTime>()?
                    .clone();
                let position = segment.position_from_running_time(running)?;
                let stream_time = segment.to_stream_time(position)?;
                gst::log!(
                    CAT,
                    imp = self,
                    "position from client report: {stream_time}"
                );
                q.set(stream_time);
                Some(true)
            }
            gst::QueryViewMut::Latency(q) => {
                let report = (*lock(&self.report))?;
                let mut upstream = gst::query::Latency::new();
                let (up_live, up_min, up_max) = if self.sinkpad.peer_query(&mut upstream) {
                    upstream.result()
                } else {
                    (false, gst::ClockTime::ZERO, gst::ClockTime::NONE)
                };
                let min = up_min + gst::ClockTime::from_nseconds(report.latency_min);
                let max = match (up_max, report.latency_max) {
                    (Some(a), Some(b)) => Some(a + gst::ClockTime::from_nseconds(b)),
                    _ => None,
                };
                gst::log!(
                    CAT,
                    imp = self,
                    "latency from client report: {min} / {max:?}"
                );
                q.set(up_live || report.live, min, max);
                Some(true)
            }
            _ => None,
        }
    }

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = lock(&self.settings).clone();
        let config = settings.endpoint.session_config(Role::Sink, 0, 0)?;
        let address = config.address.clone();
        {
            // The overlay survives restarts; which client saw it does not.
            let mut geometry = lock(&self.geometry);
            geometry.sent_to = 0;
            geometry.accepting_generation = 0;
        }
        let (tx, rx) = mpsc::channel::<gst::Event>();
        let handler = Arc::new(SinkHandler {
            element: self.obj().downgrade(),
            upstream: tx.clone(),
            report: self.report.clone(),
            geometry: self.geometry.clone(),
        });
        let (worker, port) = Worker::start(config, handler, self.stats.clone(), "spicepasssink")
            .map_err(|e| {
                gst::error_msg!(
                    gst::ResourceError::OpenReadWrite,
                    ("Cannot open {address}: {e}")
                )
            })?;
        if let Some(port) = port {
            lock(&self.settings).endpoint.port = port.into();
        }
        let pad = self.sinkpad.clone();
        let upstream_thread = std::thread::Builder::new()
            .name("spicepasssink-upstream".into())
            .spawn(move || {
                while let Ok(event) = rx.recv() {
                    gst::debug!(
                        CAT,
                        obj = pad,
                        "pushing client event upstream: {:?}",
                        event.type_()
                    );
                    if !pad.push_event(event) {
                        gst::debug!(CAT, obj = pad, "upstream did not handle the client event");
                    }
                }
            })
            .map_err(|e| gst::error_msg!(gst::CoreError::Thread, ("{e}")))?;
        *lock(&self.stream) = StreamState::default();
        *lock(&self.report) = None;
        gst::info!(
            CAT,
            imp = self,
            "started on {}",
            address.to_uri(Some(settings.endpoint.mode.into()))
        );
        let outbox = worker.outbox().clone();
        *lock(&self.running) = Some(Running {
            worker,
            upstream: Some((tx, upstream_thread)),
        });
        // A client that connected before `running` was set has not got the geometry yet.
        self.push_geometry(&outbox, false);
        Ok(())
    }

    fn stop(&self) {
        let running = lock(&self.running).take();
        if let Some(mut running) = running {
            running.worker.outbox().set_flushing(true);
            running.worker.stop(LINGER);
            if let Some((tx, thread)) = running.upstream.take() {
                drop(tx);
                let _ = thread.join();
            }
            gst::info!(CAT, imp = self, "stopped");
        }
        lock(&self.copy_pool).stop();
    }
}

fn header_of(buffer: &gst::BufferRef, len: u64) -> BufferHeader {
    let offset = buffer.offset();
    let offset_end = buffer.offset_end();
    BufferHeader {
        pts: buffer.pts().map(|t| t.nseconds()),
        dts: buffer.dts().map(|t| t.nseconds()),
        duration: buffer.duration().map(|t| t.nseconds()),
        offset: (offset != gst::ffi::GST_BUFFER_OFFSET_NONE).then_some(offset),
        offset_end: (offset_end != gst::ffi::GST_BUFFER_OFFSET_NONE).then_some(offset_end),
        flags: buffer.flags().bits(),
        payload_len: len,
    }
}

#[glib::object_subclass]
impl ObjectSubclass for SpicepassSink {
    const NAME: &'static str = "GstSpicepassSink";
    type Type = super::SpicepassSink;
    type ParentType = gst::Element;
    type Interfaces = (gst_video::VideoOverlay,);

    fn with_class(klass: &Self::Class) -> Self {
        let templ = klass.pad_template("sink").expect("template exists");
        let sinkpad = gst::Pad::builder_from_template(&templ)
            .chain_function(|_pad, parent, buffer| {
                SpicepassSink::catch_panic_pad_function(
                    parent,
                    || Err(gst::FlowError::Error),
                    |imp| imp.chain(buffer),
                )
            })
            .event_function(|_pad, parent, event| {
                SpicepassSink::catch_panic_pad_function(
                    parent,
                    || false,
                    |imp| imp.sink_event(event),
                )
            })
            .query_function(|pad, parent, query| {
                SpicepassSink::catch_panic_pad_function(
                    parent,
                    || false,
                    |imp| imp.sink_query(pad, query),
                )
            })
            .build();
        Self {
            sinkpad,
            settings: Mutex::new(Settings::default()),
            stream: Mutex::new(StreamState::default()),
            running: Mutex::new(None),
            report: Arc::new(Mutex::new(None)),
            geometry: Arc::new(Mutex::new(GeometryState::default())),
            stats: Arc::new(Stats::new()),
            copy_pool: Mutex::new(CopyPool::default()),
        }
    }
}

impl ObjectImpl for SpicepassSink {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            let mut props = EndpointSettings::properties(ModeKind::Listen);
            props.push(
                glib::ParamSpecEnum::builder_with_default("drop-policy", DEFAULT_DROP_POLICY)
                    .nick("Drop policy")
                    .blurb("What to do with buffers while no client is connected")
                    .mutable_playing()
                    .build(),
            );
            props.push(
                glib::ParamSpecUInt64::builder("memfd-threshold")
                    .nick("Shared-memory threshold")
                    .blurb(
                        "Buffers of at least this many bytes travel as references to sealed \
                         memfd segments (SCM_RIGHTS) when the transport is a unix socket and \
                         the client supports it; smaller ones, and other transports, go \
                         through the socket. 0 disables shared memory",
                    )
                    .default_value(DEFAULT_MEMFD_THRESHOLD)
                    .mutable_playing()
                    .build(),
            );
            props
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut settings = lock(&self.settings);
        if pspec.name() == "drop-policy" {
            settings.drop_policy = value.get().expect("type checked upstream");
            return;
        }
        if pspec.name() == "memfd-threshold" {
            settings.memfd_threshold = value.get().expect("type checked upstream");
            return;
        }
        if let Err(e) = settings.endpoint.set_property(value, pspec) {
            gst::warning!(CAT, imp = self, "{}: {e}", pspec.name());
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        match pspec.name() {
            "drop-policy" => lock(&self.settings).drop_policy.to_value(),
            "memfd-threshold" => lock(&self.settings).memfd_threshold.to_value(),
            "stats" => self.stats.to_structure().to_value(),
            _ => lock(&self.settings)
                .endpoint
                .property(pspec)
                .expect("every property is handled"),
        }
    }

    fn constructed(&self) {
        self.parent_constructed();
        let obj = self.obj();
        obj.add_pad(&self.sinkpad).expect("adding the sink pad");
        obj.set_element_flags(gst::ElementFlags::SINK);
    }
}

impl GstObjectImpl for SpicepassSink {}

impl ElementImpl for SpicepassSink {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::with_additional(
                "Spicepass guest sink",
                "Sink/Network",
                "Sends an encoded stream and its events to a spicepasssrc over a unix/TCP socket, \
                 fd or virtio-serial port, and replays the client's seeks, QoS and navigation \
                 upstream",
                "The mediapass developers",
                &[("doc-uri", "gst-plugin-spicepass/README.md")],
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            vec![
                gst::PadTemplate::new(
                    "sink",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Always,
                    &gst::Caps::new_any(),
                )
                .expect("valid template"),
            ]
        });
        TEMPLATES.as_ref()
    }

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        if transition == gst::StateChange::ReadyToPaused
            && let Err(e) = self.start()
        {
            self.post_error_message(e);
            return Err(gst::StateChangeError);
        }
        if transition == gst::StateChange::PausedToReady
            && let Some(outbox) = self.outbox()
        {
            // Wake a streaming thread waiting for a client or for credit before the pad
            // deactivation waits for it to leave chain().
            outbox.set_flushing(true);
        }
        let result = self.parent_change_state(transition)?;
        if transition == gst::StateChange::PausedToReady {
            self.stop();
        }
        Ok(result)
    }

    fn query(&self, query: &mut gst::QueryRef) -> bool {
        if let Some(answer) = self.answer_query(query) {
            return answer;
        }
        self.parent_query(query)
    }
}
