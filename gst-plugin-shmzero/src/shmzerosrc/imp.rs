// SPDX-License-Identifier: MPL-2.0
//! `shmzerosrc` implementation: a plain element with one always src pad and a streaming
//! task. It is not a GstBaseSrc because it forwards the writer's own events (stream-start,
//! caps, segment, tags, flush, EOS) verbatim, which BaseSrc would rather generate itself.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::reader::{Connection, Incoming, ReadError};
use crate::stats::ReaderStats;

pub(super) static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "shmzerosrc",
        gst::DebugColorFlags::empty(),
        Some("Zero-copy shared-memory source"),
    )
});

const DEFAULT_IS_LIVE: bool = true;
const DEFAULT_RECONNECT: bool = false;
const DEFAULT_TIMEOUT_MS: u32 = 10_000;
const DEFAULT_MAX_IN_FLIGHT: u32 = 4;
/// How often a blocked receive wakes up to notice a stop request.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Pause between connection attempts while waiting for a writer.
const RETRY_INTERVAL: Duration = Duration::from_millis(50);
/// Connect and hello of one attempt (the writer answers from its connection thread).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
struct Settings {
    socket_path: Option<String>,
    is_live: bool,
    reconnect: bool,
    timeout_ms: u32,
    max_in_flight: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            socket_path: None,
            is_live: DEFAULT_IS_LIVE,
            reconnect: DEFAULT_RECONNECT,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
        }
    }
}

/// What the streaming task owns.
#[derive(Default)]
struct State {
    connection: Option<Connection>,
    /// When the current wait for a writer started (start-up or after losing one).
    waiting_since: Option<Instant>,
    /// Whether the writer we lost had sent EOS (then losing it is not an error).
    saw_eos: bool,
}

pub struct ShmZeroSrc {
    srcpad: gst::Pad,
    settings: Mutex<Settings>,
    state: Mutex<State>,
    stats: Arc<ReaderStats>,
    /// Set to stop the task; checked between bounded waits.
    stopping: AtomicBool,
    current_caps: Mutex<Option<gst::Caps>>,
    /// Whether the element is PLAYING. A live source produces nothing while PAUSED: buffers
    /// arriving then are released at once (and counted), events still go downstream.
    playing: AtomicBool,
}

#[glib::object_subclass]
impl ObjectSubclass for ShmZeroSrc {
    const NAME: &'static str = "GstShmZeroSrc";
    type Type = super::ShmZeroSrc;
    type ParentType = gst::Element;

    fn with_class(klass: &Self::Class) -> Self {
        let templ = klass.pad_template("src").expect("src template");
        let srcpad = gst::Pad::builder_from_template(&templ)
            .activatemode_function(|pad, parent, mode, active| {
                ShmZeroSrc::catch_panic_pad_function(
                    parent,
                    || Err(gst::loggable_error!(CAT, "panic in activate")),
                    |imp| imp.activate_mode(pad, mode, active),
                )
            })
            .query_function(|pad, parent, query| {
                ShmZeroSrc::catch_panic_pad_function(
                    parent,
                    || false,
                    |imp| imp.src_query(pad, query),
                )
            })
            .event_function(|pad, parent, event| {
                ShmZeroSrc::catch_panic_pad_function(
                    parent,
                    || false,
                    |imp| imp.src_event(pad, event),
                )
            })
            .build();
        Self {
            srcpad,
            settings: Mutex::new(Settings::default()),
            state: Mutex::new(State::default()),
            stats: Arc::new(ReaderStats::default()),
            stopping: AtomicBool::new(false),
            current_caps: Mutex::new(None),
            playing: AtomicBool::new(false),
        }
    }
}

impl ShmZeroSrc {
    fn socket_path(&self) -> Result<PathBuf, String> {
        match &self.settings.lock().unwrap().socket_path {
            Some(path) => Ok(PathBuf::from(path)),
            None => shmzero_core::default_socket_path("shmzerosink0").map_err(|e| e.to_string()),
        }
    }

    fn activate_mode(
        &self,
        pad: &gst::Pad,
        mode: gst::PadMode,
        active: bool,
    ) -> Result<(), gst::LoggableError> {
        if mode != gst::PadMode::Push {
            return Err(gst::loggable_error!(CAT, "only push mode is supported"));
        }
        if active {
            self.stopping.store(false, Ordering::SeqCst);
            *self.state.lock().unwrap() = State {
                waiting_since: Some(Instant::now()),
                ..State::default()
            };
            let element = self.obj().downgrade();
            pad.start_task(move || {
                if let Some(element) = element.upgrade() {
                    element.imp().iterate();
                }
            })
            .map_err(|err| gst::loggable_error!(CAT, "cannot start task: {err}"))?;
        } else {
            self.stopping.store(true, Ordering::SeqCst);
            pad.stop_task()
                .map_err(|err| gst::loggable_error!(CAT, "cannot stop task: {err}"))?;
            // Closing the connection says goodbye; buffers still downstream keep their
            // mappings and release into the void.
            self.state.lock().unwrap().connection = None;
        }
        Ok(())
    }

    /// One step of the streaming task: connect if needed, then handle one message.
    fn iterate(&self) {
        if self.stopping.load(Ordering::SeqCst) {
            let _ = self.srcpad.pause_task();
            return;
        }
        let settings = self.settings.lock().unwrap().clone();
        let mut state = self.state.lock().unwrap();
        if state.connection.is_none() {
            drop(state);
            self.try_connect(&settings);
            return;
        }
        let connection = state.connection.as_mut().expect("checked above");
        let incoming = connection.next(POLL_INTERVAL);
        match incoming {
            Ok(Incoming::Idle) => {}
            Ok(Incoming::Event(event)) => {
                self.stats.events.inc();
                if event.type_() == gst::EventType::Eos {
                    state.saw_eos = true;
                } else if event.type_() == gst::EventType::FlushStop
                    || event.type_() == gst::EventType::StreamStart
                {
                    state.saw_eos = false;
                }
                drop(state);
                self.push_event(event);
            }
            Ok(Incoming::BadEvent(why)) => {
                self.stats.bad_events.inc();
                gst::warning!(CAT, imp = self, "dropping an event from the writer: {why}");
            }
            Ok(Incoming::Buffer(buffer)) => {
                drop(state);
                if settings.is_live && !self.playing.load(Ordering::SeqCst) {
                    // Dropping it releases the slot to the writer right away.
                    self.stats.dropped_while_paused.inc();
                    return;
                }
                self.stats.buffers.inc();
                self.push_buffer(buffer);
            }
            Err(err) => {
                let saw_eos = state.saw_eos;
                state.connection = None;
                state.waiting_since = Some(Instant::now());
                drop(state);
                self.lost_writer(err, saw_eos, &settings);
            }
        }
    }

    fn try_connect(&self, settings: &Settings) {
        let path = match self.socket_path() {
            Ok(path) => path,
            Err(err) => {
                gst::element_imp_error!(
                    self,
                    gst::ResourceError::Settings,
                    ("No usable socket path: {err}")
                );
                let _ = self.srcpad.pause_task();
                return;
            }
        };
        match Connection::open(
            &path,
            settings.max_in_flight,
            self.stats.clone(),
            HANDSHAKE_TIMEOUT,
        ) {
            Ok(connection) => {
                gst::info!(CAT, imp = self, "connected to {}", path.display());
                self.stats.connections.inc();
                let mut state = self.state.lock().unwrap();
                state.connection = Some(connection);
                state.waiting_since = None;
                state.saw_eos = false;
            }
            Err(err) => {
                let waited = self
                    .state
                    .lock()
                    .unwrap()
                    .waiting_since
                    .map(|since| since.elapsed())
                    .unwrap_or_default();
                let limit = Duration::from_millis(settings.timeout_ms.into());
                if settings.timeout_ms > 0 && waited >= limit {
                    gst::element_imp_error!(
                        self,
                        gst::ResourceError::OpenRead,
                        (
                            "No shmzerosink writer at {} after {waited:?}",
                            path.display()
                        ),
                        ["last error: {err}"]
                    );
                    let _ = self.srcpad.pause_task();
                    return;
                }
                gst::trace!(CAT, imp = self, "writer not there yet: {err}");
                std::thread::sleep(RETRY_INTERVAL);
            }
        }
    }

    fn lost_writer(&self, err: ReadError, saw_eos: bool, settings: &Settings) {
        if settings.reconnect {
            gst::warning!(
                CAT,
                imp = self,
                "lost the writer ({err}); waiting for it to come back"
            );
            self.post_element_message("shmzerosrc-writer-lost", &err.to_string());
            return;
        }
        if saw_eos && err.is_orderly() {
            gst::info!(CAT, imp = self, "writer finished after EOS");
            let _ = self.srcpad.pause_task();
            return;
        }
        gst::element_imp_error!(
            self,
            gst::ResourceError::Read,
            ("Lost the shmzerosink writer: {err}"),
            ["set reconnect=true to wait for a new writer instead"]
        );
        let _ = self.srcpad.pause_task();
    }

    fn post_element_message(&self, name: &str, detail: &str) {
        let structure = gst::Structure::builder(name)
            .field(
                "socket-path",
                self.socket_path()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            )
            .field("detail", detail)
            .build();
        let _ = self.obj().post_message(
            gst::message::Element::builder(structure)
                .src(&*self.obj())
                .build(),
        );
    }

    fn push_event(&self, event: gst::Event) {
        if let gst::EventView::Caps(caps) = event.view() {
            *self.current_caps.lock().unwrap() = Some(caps.caps_owned());
        }
        gst::debug!(CAT, imp = self, "pushing {:?}", event.type_());
        if !self.srcpad.push_event(event.clone()) {
            // Downstream refusing an event (e.g. not-linked) is not fatal by itself; a
            // following buffer's flow return tells whether to stop.
            gst::debug!(
                CAT,
                imp = self,
                "downstream did not accept {:?}",
                event.type_()
            );
        }
    }

    fn push_buffer(&self, buffer: gst::Buffer) {
        match self.srcpad.push(buffer) {
            Ok(_) => {}
            Err(gst::FlowError::Flushing) => {
                gst::debug!(CAT, imp = self, "flushing, pausing task");
                let _ = self.srcpad.pause_task();
            }
            // Downstream EOS: keep draining the writer (it may flush and restart).
            Err(gst::FlowError::Eos) => {}
            Err(err) => {
                gst::element_imp_error!(
                    self,
                    gst::StreamError::Failed,
                    ("Internal data stream error"),
                    ["streaming stopped, reason {err:?}"]
                );
                self.srcpad.push_event(gst::event::Eos::new());
                let _ = self.srcpad.pause_task();
            }
        }
    }

    fn src_query(&self, pad: &gst::Pad, query: &mut gst::QueryRef) -> bool {
        match query.view_mut() {
            gst::QueryViewMut::Latency(q) => {
                let live = self.settings.lock().unwrap().is_live;
                q.set(live, gst::ClockTime::ZERO, gst::ClockTime::NONE);
                true
            }
            gst::QueryViewMut::Caps(q) => {
                let caps = self
                    .current_caps
                    .lock()
                    .unwrap()
                    .clone()
                    .unwrap_or_else(gst::Caps::new_any);
                let caps = match q.filter() {
                    Some(filter) => {
                        filter.intersect_with_mode(&caps, gst::CapsIntersectMode::First)
                    }
                    None => caps,
                };
                q.set_result(&caps);
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

    fn src_event(&self, _pad: &gst::Pad, event: gst::Event) -> bool {
        // Upstream events (seek, QoS, navigation) do not cross to the writer: it is driven by
        // its own pipeline. Refuse them so the application knows.
        gst::debug!(CAT, imp = self, "not handling upstream {:?}", event.type_());
        matches!(
            event.type_(),
            gst::EventType::Reconfigure | gst::EventType::Latency
        )
    }
}

impl ObjectImpl for ShmZeroSrc {
    fn constructed(&self) {
        self.parent_constructed();
        self.obj()
            .add_pad(&self.srcpad)
            .expect("adding the always src pad");
        self.obj().set_element_flags(gst::ElementFlags::SOURCE);
    }

    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecString::builder("socket-path")
                    .nick("Socket path")
                    .blurb(
                        "Unix socket of the shmzerosink to read from. Default: \
                         $XDG_RUNTIME_DIR/shmzero-shmzerosink0.sock",
                    )
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("is-live")
                    .nick("Is live")
                    .blurb("Act as a live source (no preroll, latency query answered live)")
                    .default_value(DEFAULT_IS_LIVE)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("reconnect")
                    .nick("Reconnect")
                    .blurb(
                        "When the writer goes away, wait for a new one on the same socket and \
                         resume, instead of posting an error",
                    )
                    .default_value(DEFAULT_RECONNECT)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("timeout")
                    .nick("Writer wait timeout (ms)")
                    .blurb(
                        "How long to wait for a writer at start-up (and, with reconnect, after \
                         losing one) before posting an error (0 = wait forever)",
                    )
                    .default_value(DEFAULT_TIMEOUT_MS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("max-in-flight")
                    .nick("Max buffers in flight")
                    .blurb(
                        "Buffers this reader asks to hold at once (the writer may grant fewer); \
                         beyond that the writer skips frames for this reader",
                    )
                    .minimum(1)
                    .maximum(256)
                    .default_value(DEFAULT_MAX_IN_FLIGHT)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                    .nick("Statistics")
                    .blurb(
                        "Counters: buffers, events, bad-events, segments-mapped, connections, \
                         in-flight (buffers held downstream), dropped-while-paused (live)",
                    )
                    .read_only()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut settings = self.settings.lock().unwrap();
        match pspec.name() {
            "socket-path" => settings.socket_path = value.get().expect("type checked"),
            "is-live" => settings.is_live = value.get().expect("type checked"),
            "reconnect" => settings.reconnect = value.get().expect("type checked"),
            "timeout" => settings.timeout_ms = value.get().expect("type checked"),
            "max-in-flight" => settings.max_in_flight = value.get().expect("type checked"),
            other => unreachable!("unknown property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        if pspec.name() == "stats" {
            return self.stats.to_structure().to_value();
        }
        let settings = self.settings.lock().unwrap();
        match pspec.name() {
            "socket-path" => settings.socket_path.to_value(),
            "is-live" => settings.is_live.to_value(),
            "reconnect" => settings.reconnect.to_value(),
            "timeout" => settings.timeout_ms.to_value(),
            "max-in-flight" => settings.max_in_flight.to_value(),
            other => unreachable!("unknown property {other}"),
        }
    }
}

impl GstObjectImpl for ShmZeroSrc {}

impl ElementImpl for ShmZeroSrc {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::with_additional(
                "Zero-copy shared-memory source",
                "Source/Video",
                "Receives buffers, caps and events from a shmzerosink in another process and \
                 pushes them as read-only memory wrapping the shared segments, without copying",
                "The mediapass developers",
                &[("doc-uri", crate::DOC_URI)],
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> =
            LazyLock::new(|| vec![crate::any_caps_pad_template("src", gst::PadDirection::Src)]);
        TEMPLATES.as_ref()
    }

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        if transition == gst::StateChange::PlayingToPaused {
            self.playing.store(false, Ordering::SeqCst);
        }
        let success = self.parent_change_state(transition)?;
        if transition == gst::StateChange::PausedToPlaying {
            self.playing.store(true, Ordering::SeqCst);
        }
        let live = self.settings.lock().unwrap().is_live;
        match transition {
            gst::StateChange::ReadyToPaused | gst::StateChange::PlayingToPaused if live => {
                Ok(gst::StateChangeSuccess::NoPreroll)
            }
            _ => Ok(success),
        }
    }
}
