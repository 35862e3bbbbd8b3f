// SPDX-License-Identifier: MPL-2.0
//! `shmzerosink` implementation: properties, allocation query, events and render; the
//! connection handling lives in [`super::writer`].

use std::path::PathBuf;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::subclass::prelude::*;

use super::writer::{RenderError, Writer, WriterConfig};
use crate::pool::ShmZeroPool;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "shmzerosink",
        gst::DebugColorFlags::empty(),
        Some("Zero-copy shared-memory sink"),
    )
});

const DEFAULT_MIN_BUFFERS: u32 = 4;
const DEFAULT_MAX_BUFFERS: u32 = 16;
const DEFAULT_MAX_IN_FLIGHT: u32 = 4;
const DEFAULT_SLOW_READER_TIMEOUT_MS: u32 = 2000;
const DEFAULT_WAIT_FOR_CONNECTION: bool = false;
const DEFAULT_CONNECTION_TIMEOUT_MS: u32 = 0;
const DEFAULT_BLOCK_ON_SLOW_READERS: bool = false;

#[derive(Debug, Clone)]
struct Settings {
    socket_path: Option<String>,
    min_buffers: u32,
    max_buffers: u32,
    max_in_flight: u32,
    slow_reader_timeout_ms: u32,
    wait_for_connection: bool,
    connection_timeout_ms: u32,
    block_on_slow_readers: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            socket_path: None,
            min_buffers: DEFAULT_MIN_BUFFERS,
            max_buffers: DEFAULT_MAX_BUFFERS,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            slow_reader_timeout_ms: DEFAULT_SLOW_READER_TIMEOUT_MS,
            wait_for_connection: DEFAULT_WAIT_FOR_CONNECTION,
            connection_timeout_ms: DEFAULT_CONNECTION_TIMEOUT_MS,
            block_on_slow_readers: DEFAULT_BLOCK_ON_SLOW_READERS,
        }
    }
}

#[derive(Default)]
pub struct ShmZeroSink {
    settings: Mutex<Settings>,
    /// `Some` between start() and stop().
    writer: Mutex<Option<Writer>>,
    /// The counters of the last run, so `stats` stays readable after stopping.
    last_stats: Mutex<Option<gst::Structure>>,
}

#[glib::object_subclass]
impl ObjectSubclass for ShmZeroSink {
    const NAME: &'static str = "GstShmZeroSink";
    type Type = super::ShmZeroSink;
    type ParentType = gst_base::BaseSink;
}

impl ShmZeroSink {
    fn writer(&self) -> Option<Writer> {
        self.writer.lock().unwrap().clone()
    }
}

impl ObjectImpl for ShmZeroSink {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecString::builder("socket-path")
                    .nick("Socket path")
                    .blurb(
                        "Unix socket readers connect to (created with mode 0600; a stale socket \
                         left by a dead writer is replaced). Default: \
                         $XDG_RUNTIME_DIR/shmzero-<element name>.sock",
                    )
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("min-buffers")
                    .nick("Minimum buffers")
                    .blurb("Minimum number of buffers the proposed pool announces to upstream")
                    .minimum(1)
                    .maximum(1024)
                    .default_value(DEFAULT_MIN_BUFFERS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("max-buffers")
                    .nick("Maximum buffers")
                    .blurb(
                        "Shared-memory slots per frame size; upstream waits (bounded by \
                         slow-reader-timeout) when all are in use",
                    )
                    .minimum(2)
                    .maximum(1024)
                    .default_value(DEFAULT_MAX_BUFFERS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("max-in-flight")
                    .nick("Max buffers in flight per reader")
                    .blurb(
                        "Buffers one reader may hold at once; while a reader is at this limit \
                         it misses frames (counted) instead of stalling the writer",
                    )
                    .minimum(1)
                    .maximum(256)
                    .default_value(DEFAULT_MAX_IN_FLIGHT)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("slow-reader-timeout")
                    .nick("Slow reader timeout (ms)")
                    .blurb(
                        "A reader that stays at its max-in-flight limit this long is \
                         disconnected and its buffers reclaimed (0 = never disconnect, only \
                         drop its frames)",
                    )
                    .default_value(DEFAULT_SLOW_READER_TIMEOUT_MS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("wait-for-connection")
                    .nick("Wait for connection")
                    .blurb(
                        "Block rendering until at least one reader is connected, instead of \
                         dropping buffers nobody reads",
                    )
                    .default_value(DEFAULT_WAIT_FOR_CONNECTION)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("connection-timeout")
                    .nick("Connection timeout (ms)")
                    .blurb(
                        "With wait-for-connection, fail with an error after waiting this long \
                         for a reader (0 = wait until stopped)",
                    )
                    .default_value(DEFAULT_CONNECTION_TIMEOUT_MS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("block-on-slow-readers")
                    .nick("Block on slow readers")
                    .blurb(
                        "Back-pressure for non-live pipelines: before sending a buffer, wait \
                         (at most slow-reader-timeout, or 5 s when that is 0) until every reader \
                         has credit left, instead of making full readers miss the frame",
                    )
                    .default_value(DEFAULT_BLOCK_ON_SLOW_READERS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                    .nick("Statistics")
                    .blurb(
                        "Counters: zero-copy-buffers, fd-buffers, copied-buffers (foreign \
                         memory copied once into a slot), deliveries, dropped frames, readers, \
                         rendered and render-cpu-ns (streaming-thread CPU spent sending)",
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
            "min-buffers" => settings.min_buffers = value.get().expect("type checked"),
            "max-buffers" => settings.max_buffers = value.get().expect("type checked"),
            "max-in-flight" => settings.max_in_flight = value.get().expect("type checked"),
            "slow-reader-timeout" => {
                settings.slow_reader_timeout_ms = value.get().expect("type checked")
            }
            "wait-for-connection" => {
                settings.wait_for_connection = value.get().expect("type checked")
            }
            "connection-timeout" => {
                settings.connection_timeout_ms = value.get().expect("type checked")
            }
            "block-on-slow-readers" => {
                settings.block_on_slow_readers = value.get().expect("type checked")
            }
            other => unreachable!("unknown property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        match pspec.name() {
            "stats" => match self.writer() {
                Some(writer) => writer.stats_structure().to_value(),
                None => self
                    .last_stats
                    .lock()
                    .unwrap()
                    .clone()
                    .unwrap_or_else(Writer::idle_stats_structure)
                    .to_value(),
            },
            name => {
                let settings = self.settings.lock().unwrap();
                match name {
                    "socket-path" => settings.socket_path.to_value(),
                    "min-buffers" => settings.min_buffers.to_value(),
                    "max-buffers" => settings.max_buffers.to_value(),
                    "max-in-flight" => settings.max_in_flight.to_value(),
                    "slow-reader-timeout" => settings.slow_reader_timeout_ms.to_value(),
                    "wait-for-connection" => settings.wait_for_connection.to_value(),
                    "connection-timeout" => settings.connection_timeout_ms.to_value(),
                    "block-on-slow-readers" => settings.block_on_slow_readers.to_value(),
                    other => unreachable!("unknown property {other}"),
                }
            }
        }
    }
}

impl GstObjectImpl for ShmZeroSink {}

impl ElementImpl for ShmZeroSink {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::with_additional(
                "Zero-copy shared-memory sink",
                "Sink/Video",
                "Offers upstream a pool of memfd-backed buffers and sends each buffer to \
                 shmzerosrc readers in other processes as a descriptor, without copying",
                "The mediapass developers",
                &[("doc-uri", crate::DOC_URI)],
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            vec![crate::any_caps_pad_template(
                "sink",
                gst::PadDirection::Sink,
            )]
        });
        TEMPLATES.as_ref()
    }
}

impl BaseSinkImpl for ShmZeroSink {
    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = self.settings.lock().unwrap().clone();
        let path = match &settings.socket_path {
            Some(path) => PathBuf::from(path),
            None => shmzero_core::default_socket_path(&self.obj().name()).map_err(|err| {
                gst::error_msg!(
                    gst::ResourceError::Settings,
                    ["No usable default socket path: {err}"]
                )
            })?,
        };
        let config = WriterConfig {
            max_in_flight: settings.max_in_flight,
            slow_reader_timeout: (settings.slow_reader_timeout_ms > 0)
                .then(|| Duration::from_millis(settings.slow_reader_timeout_ms.into())),
            min_buffers: settings.min_buffers,
            max_buffers: settings.max_buffers.max(settings.min_buffers),
            wait_for_connection: settings.wait_for_connection,
            connection_timeout: (settings.connection_timeout_ms > 0)
                .then(|| Duration::from_millis(settings.connection_timeout_ms.into())),
            block_on_slow_readers: settings.block_on_slow_readers,
        };
        let writer = Writer::start(&path, config, &*self.obj()).map_err(|err| {
            gst::error_msg!(
                gst::ResourceError::OpenWrite,
                ["Cannot listen on {}: {err}", path.display()]
            )
        })?;
        gst::info!(CAT, imp = self, "listening on {}", path.display());
        *self.writer.lock().unwrap() = Some(writer);
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        if let Some(writer) = self.writer.lock().unwrap().take() {
            writer.shutdown();
            *self.last_stats.lock().unwrap() = Some(writer.stats_structure());
        }
        Ok(())
    }

    fn unlock(&self) -> Result<(), gst::ErrorMessage> {
        if let Some(writer) = self.writer() {
            writer.set_flushing(true);
        }
        Ok(())
    }

    fn unlock_stop(&self) -> Result<(), gst::ErrorMessage> {
        if let Some(writer) = self.writer() {
            writer.set_flushing(false);
        }
        Ok(())
    }

    fn event(&self, event: gst::Event) -> bool {
        if crate::events::is_forwarded(&event)
            && let Some(writer) = self.writer()
        {
            gst::debug!(CAT, imp = self, "forwarding {:?} to readers", event.type_());
            writer.send_event(&event);
            if event.type_() == gst::EventType::Eos {
                // Lets gst-launch-1.0 -m users (and tests) see the counters of a finished stream.
                let _ = self.obj().post_message(
                    gst::message::Element::builder(writer.stats_structure())
                        .src(&*self.obj())
                        .build(),
                );
            }
        }
        self.parent_event(event)
    }

    fn render(&self, buffer: &gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
        let Some(writer) = self.writer() else {
            return Err(gst::FlowError::Flushing);
        };
        match writer.render(buffer) {
            Ok(()) => Ok(gst::FlowSuccess::Ok),
            Err(RenderError::Flushing) => Err(gst::FlowError::Flushing),
            Err(err @ RenderError::NoReader(_)) => {
                gst::element_imp_error!(self, gst::ResourceError::NotFound, ("{err}"));
                Err(gst::FlowError::Error)
            }
            Err(err @ RenderError::Copy(_)) => {
                gst::element_imp_error!(self, gst::ResourceError::NoSpaceLeft, ("{err}"));
                Err(gst::FlowError::Error)
            }
        }
    }

    fn propose_allocation(
        &self,
        query: &mut gst::query::Allocation,
    ) -> Result<(), gst::LoggableError> {
        let (caps, need_pool) = query.get_owned();
        let Some(caps) = caps else {
            return Err(gst::loggable_error!(CAT, "allocation query without caps"));
        };
        let Some(writer) = self.writer() else {
            return Err(gst::loggable_error!(CAT, "not started"));
        };
        let size = match gst_video::VideoInfo::from_caps(&caps) {
            Ok(info) => info.size() as u32,
            // Not raw video: readers still get the buffers, upstream just uses its own memory.
            Err(_) => {
                gst::debug!(CAT, imp = self, "no pool for non-video caps {caps}");
                return Ok(());
            }
        };
        let (min, max) = writer.buffer_limits();
        if need_pool {
            let pool = ShmZeroPool::new(writer.hub());
            let mut config = pool.config();
            config.set_params(Some(&caps), size, min, max);
            config.add_option(gst_video::BUFFER_POOL_OPTION_VIDEO_META);
            pool.set_config(config)
                .map_err(|_| gst::loggable_error!(CAT, "pool refused its own config"))?;
            query.add_allocation_pool(Some(&pool), size, min, max);
        } else {
            query.add_allocation_pool(None::<&gst::BufferPool>, size, min, max);
        }
        query.add_allocation_meta::<gst_video::VideoMeta>(None);
        Ok(())
    }
}
