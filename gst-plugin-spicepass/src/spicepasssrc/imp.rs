// SPDX-License-Identifier: MPL-2.0

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use spicepass_protocol::{
    BufferHeader, ClientReport, Event as WireEvent, EventDirection, Message, Role, Session,
    WindowGeometry,
};

use crate::endpoint::{EndpointSettings, ModeKind};
use crate::event_codec;
use crate::session::{self, Handler, Outbox, Worker};
use crate::stats::Stats;

use super::overlay_target;

/// How long stopping waits for the peer to read what was sent and close its end.
const LINGER: std::time::Duration = std::time::Duration::from_secs(2);

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "spicepasssrc",
        gst::DebugColorFlags::empty(),
        Some("spicepass client-side source"),
    )
});

/// Receive window granted to the guest: bounds the client's queue (and the guest's sends).
const DEFAULT_WINDOW_BYTES: u32 = 32 * 1024 * 1024;
const DEFAULT_WINDOW_BUFFERS: u32 = 128;
/// How often the client reports position and latency to the guest.
const REPORT_PERIOD: Duration = Duration::from_millis(100);
/// The streaming task re-checks for stop/report at least this often.
const TASK_SLICE: Duration = Duration::from_millis(50);

#[derive(Debug, Clone)]
struct Settings {
    endpoint: EndpointSettings,
    window_bytes: u32,
    window_buffers: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            endpoint: EndpointSettings::new(ModeKind::Connect),
            window_bytes: DEFAULT_WINDOW_BYTES,
            window_buffers: DEFAULT_WINDOW_BUFFERS,
        }
    }
}

enum Item {
    Buffer {
        generation: u64,
        buffer: gst::Buffer,
    },
    Event(gst::Event),
}

#[derive(Default)]
struct Queue {
    items: VecDeque<Item>,
    /// Between a guest flush-start and its flush-stop everything stale is dropped.
    remote_flushing: bool,
    /// The guest's EOS arrived: no new guest session until a flush-stop or a restart.
    ended: bool,
    stopping: bool,
}

/// State shared by the worker (producer) and the streaming task (consumer).
struct Shared {
    queue: Mutex<Queue>,
    cond: Condvar,
    outbox: Mutex<Option<Arc<Outbox>>>,
    /// Latency the client pipeline configured (from the LATENCY event), ns.
    latency_ns: Mutex<u64>,
    /// Guest window geometry not yet given to a downstream overlay (none linked yet).
    pending_geometry: Mutex<Option<WindowGeometry>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn outbox(&self) -> Option<Arc<Outbox>> {
        lock(&self.outbox).clone()
    }

    /// Returns credits for buffers that never went downstream.
    fn discard(&self, items: impl IntoIterator<Item = Item>) {
        let outbox = self.outbox();
        for item in items {
            if let (Item::Buffer { generation, buffer }, Some(o)) = (item, &outbox) {
                o.consumed(generation, buffer.size() as u64);
            }
        }
    }
}

pub struct SpicepassSrc {
    srcpad: gst::Pad,
    settings: Mutex<Settings>,
    shared: Arc<Shared>,
    worker: Mutex<Option<Worker>>,
    stats: Arc<Stats>,
    last_report: Mutex<Option<Instant>>,
}

struct SrcHandler {
    element: glib::WeakRef<super::SpicepassSrc>,
    srcpad: gst::Pad,
    shared: Arc<Shared>,
}

impl SrcHandler {
    fn post(&self, s: gst::Structure) {
        if let Some(element) = self.element.upgrade() {
            let _ = element.post_message(gst::message::Element::builder(s).src(&element).build());
        }
    }

    fn enqueue(&self, item: Item) {
        let mut q = lock(&self.shared.queue);
        if q.remote_flushing {
            drop(q);
            self.shared.discard([item]);
            return;
        }
        q.items.push_back(item);
        self.shared.cond.notify_all();
    }
}

impl Handler for SrcHandler {
    fn connected(&self, generation: u64, session: &Session) {
        if let Some(e) = self.element.upgrade() {
            gst::info!(
                CAT,
                obj = e,
                "connected to guest (connection {generation}, guest session {:#x}, protocol {})",
                session.peer_session_id,
                session.version
            );
        }
        self.post(
            gst::Structure::builder("spicepass-connected")
                .field("generation", generation)
                .field("peer-session-id", session.peer_session_id)
                .build(),
        );
    }

    fn lost(&self, generation: u64, reason: &str) {
        if let Some(e) = self.element.upgrade() {
            gst::info!(
                CAT,
                obj = e,
                "guest lost (connection {generation}): {reason}"
            );
        }
        // A flush that never completes must not block the next connection's data.
        lock(&self.shared.queue).remote_flushing = false;
        self.post(
            gst::Structure::builder("spicepass-lost")
                .field("generation", generation)
                .field("reason", reason)
                .build(),
        );
    }

    fn protocol_error(&self, message: &str, _fatal: bool) {
        if let Some(e) = self.element.upgrade() {
            gst::element_error!(e, gst::StreamError::Decode, ("{message}"));
        }
    }

    fn event(&self, generation: u64, wire: WireEvent) {
        let Some(e) = self.element.upgrade() else {
            return;
        };
        if wire.direction != EventDirection::Downstream {
            gst::element_warning!(
                e,
                gst::StreamError::Decode,
                ("The guest sent an upstream event; ignored")
            );
            return;
        }
        let event = match event_codec::from_wire(&wire) {
            Ok(ev) => ev,
            Err(err) => {
                gst::element_warning!(
                    e,
                    gst::StreamError::Decode,
                    ("Dropping a guest event: {err}")
                );
                return;
            }
        };
        gst::debug!(
            CAT,
            obj = e,
            "guest event (connection {generation}): {:?} seqnum {:?}",
            event.type_(),
            event.seqnum()
        );
        match event.type_() {
            gst::EventType::FlushStart => {
                let stale = {
                    let mut q = lock(&self.shared.queue);
                    q.remote_flushing = true;
                    std::mem::take(&mut q.items)
                };
                self.shared.discard(stale);
                // Out of band, from this thread: it unblocks a streaming thread stuck downstream.
                self.srcpad.push_event(event);
            }
            gst::EventType::FlushStop => {
                let mut q = lock(&self.shared.queue);
                q.remote_flushing = false;
                q.ended = false;
                q.items.push_back(Item::Event(event));
                self.shared.cond.notify_all();
            }
            gst::EventType::Eos => {
                gst::info!(
                    CAT,
                    obj = e,
                    "the guest's stream ended: no new guest session until flushed or restarted"
                );
                {
                    let mut q = lock(&self.shared.queue);
                    q.ended |= !q.remote_flushing;
                }
                self.enqueue(Item::Event(event));
            }
            _ => self.enqueue(Item::Event(event)),
        }
    }

    fn accepts_sessions(&self) -> bool {
        !lock(&self.shared.queue).ended
    }

    fn buffer(&self, generation: u64, header: BufferHeader, mut buffer: gst::Buffer) {
        {
            let b = buffer.get_mut().expect("fresh buffer is writable");
            b.set_pts(header.pts.map(gst::ClockTime::from_nseconds));
            b.set_dts(header.dts.map(gst::ClockTime::from_nseconds));
            b.set_duration(header.duration.map(gst::ClockTime::from_nseconds));
            b.set_offset(header.offset.unwrap_or(gst::ffi::GST_BUFFER_OFFSET_NONE));
            b.set_offset_end(
                header
                    .offset_end
                    .unwrap_or(gst::ffi::GST_BUFFER_OFFSET_NONE),
            );
            b.set_flags(gst::BufferFlags::from_bits_truncate(header.flags));
        }
        self.enqueue(Item::Buffer { generation, buffer });
    }

    fn report(&self, _report: ClientReport) {}

    fn window_geometry(&self, generation: u64, geometry: WindowGeometry) {
        if let Some(e) = self.element.upgrade() {
            gst::info!(
                CAT,
                obj = e,
                "guest window geometry (connection {generation}): {geometry:?}"
            );
        }
        self.post(
            gst::Structure::builder("spicepass-window-geometry")
                .field("x", geometry.x)
                .field("y", geometry.y)
                .field("width", geometry.width)
                .field("height", geometry.height)
                .field("visible", geometry.visible)
                .build(),
        );
        *lock(&self.shared.pending_geometry) = Some(geometry);
        if let Some(e) = self.element.upgrade() {
            e.imp().apply_pending_geometry();
        }
    }
}

impl SpicepassSrc {
    /// Gives the guest's render rectangle to a downstream `GstVideoOverlay`, once one is
    /// linked (decodebin links it late: retried after every item pushed).
    fn apply_pending_geometry(&self) {
        let mut pending = lock(&self.shared.pending_geometry);
        let Some(geometry) = *pending else {
            return;
        };
        let Some(overlay) = overlay_target::find_downstream(&self.srcpad) else {
            return;
        };
        *pending = None;
        drop(pending);
        let name = overlay.name();
        if !geometry.visible {
            // GstVideoOverlay has no "hide": the application acts on the bus message.
            gst::info!(
                CAT,
                imp = self,
                "guest video hidden; {name} keeps its rectangle"
            );
            return;
        }
        let (Ok(width), Ok(height)) = (
            i32::try_from(geometry.width),
            i32::try_from(geometry.height),
        ) else {
            gst::warning!(CAT, imp = self, "window geometry too large: {geometry:?}");
            return;
        };
        let applied =
            overlay_target::set_render_rectangle(&overlay, geometry.x, geometry.y, width, height);
        gst::info!(
            CAT,
            imp = self,
            "render rectangle {},{} {width}x{height} on {name}: {}",
            geometry.x,
            geometry.y,
            if applied { "set" } else { "not supported" }
        );
        let s = gst::Structure::builder("spicepass-window-geometry-applied")
            .field("sink", name.as_str())
            .field("x", geometry.x)
            .field("y", geometry.y)
            .field("width", width)
            .field("height", height)
            .field("supported", applied)
            .build();
        let obj = self.obj();
        let _ = obj.post_message(gst::message::Element::builder(s).src(&*obj).build());
    }

    fn task_iteration(&self) {
        self.maybe_report();
        self.apply_pending_geometry();
        let item = {
            let mut q = lock(&self.shared.queue);
            if q.items.is_empty() && !q.stopping {
                q = self
                    .shared
                    .cond
                    .wait_timeout(q, TASK_SLICE)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            if q.stopping {
                return;
            }
            q.items.pop_front()
        };
        match item {
            None => {}
            Some(Item::Event(event)) => {
                gst::log!(CAT, imp = self, "pushing {:?}", event.type_());
                if !self.srcpad.push_event(event.clone()) {
                    gst::debug!(CAT, imp = self, "downstream refused {:?}", event.type_());
                }
            }
            Some(Item::Buffer { generation, buffer }) => {
                let len = buffer.size() as u64;
                gst::trace!(
                    CAT,
                    imp = self,
                    "pushing buffer pts {:?} ({len} bytes)",
                    buffer.pts()
                );
                let result = self.srcpad.push(buffer);
                if let Some(o) = self.shared.outbox() {
                    o.consumed(generation, len);
                }
                match result {
                    Ok(_) | Err(gst::FlowError::Flushing) | Err(gst::FlowError::Eos) => {}
                    Err(gst::FlowError::NotLinked) => {
                        gst::debug!(CAT, imp = self, "not linked");
                    }
                    Err(err) => {
                        gst::element_imp_error!(
                            self,
                            gst::StreamError::Failed,
                            ("Internal data stream error."),
                            ["streaming stopped, reason {err:?}"]
                        );
                        let _ = self.srcpad.pause_task();
                    }
                }
            }
        }
    }

    /// Tells the guest where playback is (running time) and the client latency.
    fn maybe_report(&self) {
        let mut last = lock(&self.last_report);
        if last.is_some_and(|t| t.elapsed() < REPORT_PERIOD) {
            return;
        }
        *last = Some(Instant::now());
        drop(last);
        let Some(outbox) = self.shared.outbox() else {
            return;
        };
        if outbox.generation().is_none() {
            return;
        }
        let obj = self.obj();
        let position = if obj.current_state() == gst::State::Playing {
            obj.current_running_time().map(|t| t.nseconds())
        } else {
            None
        };
        let report = ClientReport {
            timestamp: session::now_ns(),
            position,
            live: false,
            latency_min: *lock(&self.shared.latency_ns),
            latency_max: None,
        };
        let _ = outbox.send(&Message::ClientReport(report));
    }

    fn src_event(&self, event: gst::Event) -> bool {
        gst::debug!(
            CAT,
            imp = self,
            "upstream event {:?} seqnum {:?}",
            event.type_(),
            event.seqnum()
        );
        if let gst::EventView::Latency(l) = event.view() {
            *lock(&self.shared.latency_ns) = l.latency().nseconds();
        }
        let Some(outbox) = self.shared.outbox() else {
            return false;
        };
        match outbox.send(&Message::Event(event_codec::to_wire(
            &event,
            EventDirection::Upstream,
        ))) {
            Ok(generation) => {
                session::count_event(&outbox);
                gst::debug!(
                    CAT,
                    imp = self,
                    "sent {:?} to the guest (connection {generation})",
                    event.type_()
                );
                true
            }
            Err(e) => {
                gst::debug!(CAT, imp = self, "cannot send {:?}: {e}", event.type_());
                false
            }
        }
    }

    fn src_query(&self, pad: &gst::Pad, query: &mut gst::QueryRef) -> bool {
        match query.view_mut() {
            gst::QueryViewMut::Latency(q) => {
                // Not live: timestamps come from the guest's stream.
                q.set(false, gst::ClockTime::ZERO, gst::ClockTime::NONE);
                true
            }
            gst::QueryViewMut::Scheduling(q) => {
                q.set(gst::SchedulingFlags::SEQUENTIAL, 1, -1, 0);
                q.add_scheduling_modes([gst::PadMode::Push]);
                true
            }
            _ => gst::Pad::query_default(pad, Some(&*self.obj()), query),
        }
    }

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = lock(&self.settings).clone();
        let config = settings.endpoint.session_config(
            Role::Src,
            settings.window_bytes.into(),
            settings.window_buffers.into(),
        )?;
        let address = config.address.clone();
        *lock(&self.shared.queue) = Queue::default();
        *lock(&self.last_report) = None;
        let handler = Arc::new(SrcHandler {
            element: self.obj().downgrade(),
            srcpad: self.srcpad.clone(),
            shared: self.shared.clone(),
        });
        let (worker, port) = Worker::start(config, handler, self.stats.clone(), "spicepasssrc")
            .map_err(|e| {
                gst::error_msg!(
                    gst::ResourceError::OpenReadWrite,
                    ("Cannot open {address}: {e}")
                )
            })?;
        if let Some(port) = port {
            lock(&self.settings).endpoint.port = port.into();
        }
        *lock(&self.shared.outbox) = Some(worker.outbox().clone());
        *lock(&self.worker) = Some(worker);
        gst::info!(
            CAT,
            imp = self,
            "started on {}",
            address.to_uri(Some(settings.endpoint.mode.into()))
        );
        Ok(())
    }

    fn stop(&self) {
        {
            let mut q = lock(&self.shared.queue);
            q.stopping = true;
            self.shared.cond.notify_all();
        }
        let _ = self.srcpad.stop_task();
        *lock(&self.shared.outbox) = None;
        if let Some(worker) = lock(&self.worker).take() {
            worker.stop(LINGER);
        }
        lock(&self.shared.queue).items.clear();
        gst::info!(CAT, imp = self, "stopped");
    }
}

#[glib::object_subclass]
impl ObjectSubclass for SpicepassSrc {
    const NAME: &'static str = "GstSpicepassSrc";
    type Type = super::SpicepassSrc;
    type ParentType = gst::Element;
    type Interfaces = (gst::URIHandler,);

    fn with_class(klass: &Self::Class) -> Self {
        let templ = klass.pad_template("src").expect("template exists");
        let srcpad = gst::Pad::builder_from_template(&templ)
            .event_function(|_pad, parent, event| {
                SpicepassSrc::catch_panic_pad_function(parent, || false, |imp| imp.src_event(event))
            })
            .query_function(|pad, parent, query| {
                SpicepassSrc::catch_panic_pad_function(
                    parent,
                    || false,
                    |imp| imp.src_query(pad, query),
                )
            })
            .build();
        Self {
            srcpad,
            settings: Mutex::new(Settings::default()),
            shared: Arc::new(Shared {
                queue: Mutex::new(Queue::default()),
                cond: Condvar::new(),
                outbox: Mutex::new(None),
                latency_ns: Mutex::new(0),
                pending_geometry: Mutex::new(None),
            }),
            worker: Mutex::new(None),
            stats: Arc::new(Stats::new()),
            last_report: Mutex::new(None),
        }
    }
}

impl ObjectImpl for SpicepassSrc {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            let mut props = EndpointSettings::properties(ModeKind::Connect);
            props.push(
                glib::ParamSpecUInt::builder("window-bytes")
                    .nick("Window bytes")
                    .blurb(
                        "Payload bytes the guest may have in flight (bounds memory on both sides)",
                    )
                    .minimum(1)
                    .default_value(DEFAULT_WINDOW_BYTES)
                    .mutable_ready()
                    .build(),
            );
            props.push(
                glib::ParamSpecUInt::builder("window-buffers")
                    .nick("Window buffers")
                    .blurb("Buffers the guest may have in flight")
                    .minimum(1)
                    .default_value(DEFAULT_WINDOW_BUFFERS)
                    .mutable_ready()
                    .build(),
            );
            props
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut settings = lock(&self.settings);
        match pspec.name() {
            "window-bytes" => settings.window_bytes = value.get().expect("type checked upstream"),
            "window-buffers" => {
                settings.window_buffers = value.get().expect("type checked upstream")
            }
            _ => {
                if let Err(e) = settings.endpoint.set_property(value, pspec) {
                    gst::warning!(CAT, imp = self, "{}: {e}", pspec.name());
                }
            }
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        match pspec.name() {
            "window-bytes" => lock(&self.settings).window_bytes.to_value(),
            "window-buffers" => lock(&self.settings).window_buffers.to_value(),
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
        obj.add_pad(&self.srcpad).expect("adding the src pad");
        obj.set_element_flags(gst::ElementFlags::SOURCE);
    }
}

impl GstObjectImpl for SpicepassSrc {}

impl ElementImpl for SpicepassSrc {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::with_additional(
                "Spicepass client source",
                "Source/Network",
                "Receives an encoded stream and its events from a spicepasssink and sends seeks, \
                 QoS, navigation, latency and position reports back",
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
                    "src",
                    gst::PadDirection::Src,
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
        if transition == gst::StateChange::PausedToReady {
            self.stop();
        }
        let result = self.parent_change_state(transition)?;
        if transition == gst::StateChange::ReadyToPaused {
            let weak = self.obj().downgrade();
            self.srcpad
                .start_task(move || {
                    if let Some(obj) = weak.upgrade() {
                        obj.imp().task_iteration();
                    }
                })
                .map_err(|_| gst::StateChangeError)?;
        }
        Ok(result)
    }
}

impl URIHandlerImpl for SpicepassSrc {
    const URI_TYPE: gst::URIType = gst::URIType::Src;

    fn protocols() -> &'static [&'static str] {
        &[
            "spicepass+unix",
            "spicepass+tcp",
            "spicepass+fd",
            "spicepass+dev",
            "spicepass+spice",
        ]
    }

    fn uri(&self) -> Option<String> {
        lock(&self.settings).endpoint.uri()
    }

    fn set_uri(&self, uri: &str) -> Result<(), glib::Error> {
        if self.obj().current_state() > gst::State::Ready {
            return Err(glib::Error::new(
                gst::URIError::BadState,
                "Changing the URI of a running spicepasssrc is not supported",
            ));
        }
        lock(&self.settings)
            .endpoint
            .set_uri(uri)
            .map_err(|e| glib::Error::new(gst::URIError::BadUri, &e))
    }
}
