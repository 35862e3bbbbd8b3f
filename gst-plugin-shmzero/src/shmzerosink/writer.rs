// SPDX-License-Identifier: MPL-2.0
//! The sink's running part: the listening socket, the connection thread that accepts readers
//! and collects their releases, and the per-buffer decision zero-copy / fd / copy.

use std::os::fd::AsFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use gst::prelude::*;
use rustix::event::{PollFd, PollFlags};
use shmzero_core::{BufferDescriptor, BufferId, Listener, SegmentId};

use crate::hub::{AcquireError, Hub, HubConfig};
use crate::stats::WriterStats;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "shmzerosink-io",
        gst::DebugColorFlags::empty(),
        Some("shmzerosink connection thread"),
    )
});

/// How long a connecting reader may take to say hello.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);
/// Upper bound on the connection thread's sleep, so it notices a stop request.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

#[derive(Debug, Clone)]
pub struct WriterConfig {
    pub max_in_flight: u32,
    pub slow_reader_timeout: Option<Duration>,
    pub min_buffers: u32,
    pub max_buffers: u32,
    pub wait_for_connection: bool,
    pub connection_timeout: Option<Duration>,
    pub block_on_slow_readers: bool,
}

struct Running {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Cheap to clone; every clone drives the same hub.
#[derive(Clone)]
pub struct Writer {
    hub: Arc<Hub>,
    config: WriterConfig,
    video_info: Arc<Mutex<Option<gst_video::VideoInfo>>>,
    running: Arc<Mutex<Running>>,
}

impl Writer {
    pub fn start(
        path: &Path,
        config: WriterConfig,
        element: &impl IsA<gst::Element>,
    ) -> Result<Writer, String> {
        let listener = Listener::bind(path).map_err(|e| e.to_string())?;
        let hub = Hub::new(
            HubConfig {
                max_in_flight: config.max_in_flight,
                slow_reader_timeout: config.slow_reader_timeout,
                max_buffers: config.max_buffers,
                // A slot frees up at the latest when the slow-reader timeout disconnects its
                // holder; leave generous slack on top for a loaded machine.
                acquire_timeout: config.slow_reader_timeout.unwrap_or(Duration::from_secs(5))
                    + Duration::from_secs(5),
            },
            element.upcast_ref(),
        );
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let hub = Arc::clone(&hub);
            let stop = Arc::clone(&stop);
            let max_credit = config.max_in_flight;
            std::thread::Builder::new()
                .name("shmzerosink-io".into())
                .spawn(move || serve(listener, hub, stop, max_credit))
                .map_err(|e| format!("cannot start the connection thread: {e}"))?
        };
        Ok(Writer {
            hub,
            config,
            video_info: Arc::new(Mutex::new(None)),
            running: Arc::new(Mutex::new(Running {
                stop,
                thread: Some(thread),
            })),
        })
    }

    pub fn hub(&self) -> Arc<Hub> {
        Arc::clone(&self.hub)
    }

    pub fn buffer_limits(&self) -> (u32, u32) {
        (self.config.min_buffers, self.config.max_buffers)
    }

    pub fn stats_structure(&self) -> gst::Structure {
        self.hub.stats.to_structure(self.hub.reader_count() as u64)
    }

    pub fn idle_stats_structure() -> gst::Structure {
        WriterStats::default().to_structure(0)
    }

    pub fn set_flushing(&self, flushing: bool) {
        self.hub.set_flushing(flushing);
    }

    /// Stops the connection thread, says goodbye to the readers and removes the socket.
    pub fn shutdown(&self) {
        let mut running = self.running.lock().unwrap();
        running.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = running.thread.take() {
            let _ = thread.join();
        }
        self.hub.shutdown();
    }

    pub fn send_event(&self, event: &gst::Event) {
        if let gst::EventView::Caps(caps) = event.view() {
            *self.video_info.lock().unwrap() = gst_video::VideoInfo::from_caps(caps.caps()).ok();
        }
        let resets = matches!(
            event.type_(),
            gst::EventType::FlushStop | gst::EventType::StreamStart
        );
        self.hub.send_event(&crate::events::to_wire(event), resets);
    }

    pub fn render(&self, buffer: &gst::Buffer) -> Result<(), RenderError> {
        let started = crate::stats::thread_cpu_ns();
        let result = self.send(buffer);
        let stats = &self.hub.stats;
        stats.rendered.inc();
        stats
            .render_cpu_ns
            .add(crate::stats::thread_cpu_ns().saturating_sub(started));
        result
    }

    fn send(&self, buffer: &gst::Buffer) -> Result<(), RenderError> {
        if self.hub.reader_count() == 0 {
            if !self.config.wait_for_connection {
                self.hub.stats.dropped_without_readers.inc();
                return Ok(());
            }
            match self.hub.wait_for_reader(self.config.connection_timeout) {
                Ok(true) => {}
                Ok(false) => {
                    return Err(RenderError::NoReader(
                        self.config.connection_timeout.unwrap_or_default(),
                    ));
                }
                Err(_) => return Err(RenderError::Flushing),
            }
        }
        if self.config.block_on_slow_readers {
            let timeout = self
                .config
                .slow_reader_timeout
                .unwrap_or(Duration::from_secs(5));
            if self.hub.wait_for_credit(timeout).is_err() {
                return Err(RenderError::Flushing);
            }
        }
        let info = self.video_info.lock().unwrap().clone();
        let template = descriptor_template(buffer, info.as_ref());
        if buffer.n_memory() == 1 {
            let memory = buffer.peek_memory(0);
            if let Some(fd_memory) = memory.downcast_memory_ref::<gst_allocators::FdMemory>() {
                let fd = fd_memory.fd();
                // SAFETY: the fd is owned by the memory, which `buffer` keeps alive for this
                // whole call; the socket send duplicates it for the readers.
                let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
                if self.hub.publish_fd(
                    buffer,
                    fd.as_fd(),
                    memory.offset() as u64,
                    memory.size() as u64,
                    &template,
                ) {
                    self.hub.stats.fd_buffers.inc();
                    return Ok(());
                }
            } else if self.hub.publish_in_place(memory, &template) {
                self.hub.stats.zero_copy_buffers.inc();
                return Ok(());
            }
        }
        match self.hub.publish_copy(buffer, &template) {
            Ok(()) => {
                self.hub.stats.copied_buffers.inc();
                Ok(())
            }
            Err(AcquireError::Flushing) => Err(RenderError::Flushing),
            Err(err) => Err(RenderError::Copy(err.to_string())),
        }
    }
}

/// Why a buffer was not sent.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("flushing")]
    Flushing,
    #[error("no reader connected within {0:?}")]
    NoReader(Duration),
    #[error("cannot copy a foreign buffer into shared memory: {0}")]
    Copy(String),
}

/// Everything of a descriptor that comes from the buffer itself (ids and placement are
/// filled in when it is published).
fn descriptor_template(
    buffer: &gst::BufferRef,
    info: Option<&gst_video::VideoInfo>,
) -> BufferDescriptor {
    let none_if_max = |v: u64| (v != u64::MAX).then_some(v);
    BufferDescriptor {
        buffer: BufferId(0),
        segment: SegmentId(0),
        offset: 0,
        size: 0,
        pts: buffer.pts().map(|t| t.nseconds()),
        dts: buffer.dts().map(|t| t.nseconds()),
        duration: buffer.duration().map(|t| t.nseconds()),
        offset_start: none_if_max(buffer.offset()),
        offset_end: none_if_max(buffer.offset_end()),
        flags: buffer.flags().bits(),
        video: crate::video_layout::layout_of(buffer, info),
    }
}

/// The connection thread: accepts readers (handshake on a short-lived thread each, so a
/// silent or garbage-sending client cannot hold up the others), collects releases, notices
/// dead readers and disconnects slow ones.
fn serve(listener: Listener, hub: Arc<Hub>, stop: Arc<AtomicBool>, max_credit: u32) {
    let timeout = rustix::event::Timespec {
        tv_sec: 0,
        tv_nsec: i64::from(POLL_INTERVAL.subsec_nanos()),
    };
    while !stop.load(Ordering::SeqCst) {
        let readers = hub.reader_channels();
        let mut fds = Vec::with_capacity(readers.len() + 1);
        fds.push(PollFd::new(&listener, PollFlags::IN));
        for (_, channel) in &readers {
            fds.push(PollFd::new(channel.as_ref(), PollFlags::IN));
        }
        match rustix::event::poll(&mut fds, Some(&timeout)) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(err) => {
                gst::error!(CAT, "poll failed: {err}");
                std::thread::sleep(POLL_INTERVAL);
            }
        }
        let ready: Vec<bool> = fds.iter().map(|fd| !fd.revents().is_empty()).collect();
        drop(fds);
        if ready[0] {
            accept_all(&listener, &hub, max_credit);
        }
        for ((reader, channel), ready) in readers.iter().zip(&ready[1..]) {
            if !ready {
                continue;
            }
            loop {
                match channel.try_recv() {
                    Ok(Some(received)) => hub.handle_reader_message(*reader, received.message),
                    Ok(None) => break,
                    Err(err) => {
                        hub.reader_failed(*reader, &err.to_string());
                        break;
                    }
                }
            }
        }
        hub.drop_slow_readers();
    }
    drop(listener);
}

fn accept_all(listener: &Listener, hub: &Arc<Hub>, max_credit: u32) {
    loop {
        match listener.try_accept() {
            Ok(Some((channel, credentials))) => {
                let hub = Arc::clone(hub);
                let spawned = std::thread::Builder::new()
                    .name("shmzerosink-hello".into())
                    .spawn(move || {
                        match shmzero_core::writer_handshake(
                            &channel,
                            max_credit,
                            HANDSHAKE_TIMEOUT,
                        ) {
                            Ok(hello) => hub.add_reader(channel, &hello, credentials),
                            Err(err) => gst::warning!(
                                CAT,
                                "refused a connection from pid {} uid {}: {err}",
                                credentials.pid,
                                credentials.uid
                            ),
                        }
                    });
                if let Err(err) = spawned {
                    gst::error!(CAT, "cannot spawn a handshake thread: {err}");
                }
            }
            Ok(None) => return,
            Err(err) => {
                gst::warning!(CAT, "accept failed: {err}");
                return;
            }
        }
    }
}
