// SPDX-License-Identifier: MPL-2.0
//! Readers coming, releasing and going (the connection-thread side of the hub).

use std::sync::Arc;
use std::time::Instant;

use shmzero_core::{Channel, Goodbye, GoodbyeReason, Hello, Message, PeerCredentials, ReaderId};

use super::{CAT, Hub, Inner, ReaderConn};

impl Hub {
    /// Registers a reader that completed the handshake: announces every live segment, replays
    /// the sticky events, then lets it receive buffers.
    pub fn add_reader(&self, channel: Channel, hello: &Hello, credentials: PeerCredentials) {
        let mut inner = self.lock();
        let channel = Arc::new(channel);
        let mut result = Ok(());
        for segment in inner.active.clone() {
            if let Some(seg) = inner.segments.get(&segment) {
                result = channel.try_send(
                    &Message::NewSegment(seg.announcement()),
                    Some(seg.share_fd()),
                );
                if result.is_err() {
                    break;
                }
            }
        }
        if result.is_ok() {
            for event in inner.sticky.iter() {
                result = channel.try_send(&Message::Event(event.clone()), None);
                if result.is_err() {
                    break;
                }
            }
        }
        if let Err(err) = result {
            gst::warning!(
                CAT,
                "reader pid {} dropped during set-up: {err}",
                credentials.pid
            );
            return;
        }
        let id = inner.table.add_reader(hello.credit);
        inner.readers.insert(
            id,
            ReaderConn {
                channel,
                credentials,
                credit: hello.credit,
                foreign_in_flight: 0,
            },
        );
        self.stats.readers_connected.inc();
        gst::info!(
            CAT,
            "reader {id:?} connected: pid {} uid {} gid {}, credit {}",
            credentials.pid,
            credentials.uid,
            credentials.gid,
            hello.credit
        );
        inner.pending_messages.push(
            gst::Structure::builder("shmzerosink-reader-connected")
                .field("reader", id.0)
                .field("pid", credentials.pid)
                .field("uid", credentials.uid)
                .field("credit", hello.credit)
                .build(),
        );
        self.changed.notify_all();
        self.post_pending(inner);
    }

    /// The channels to poll, with their reader ids.
    pub fn reader_channels(&self) -> Vec<(ReaderId, Arc<Channel>)> {
        self.lock()
            .readers
            .iter()
            .map(|(id, conn)| (*id, Arc::clone(&conn.channel)))
            .collect()
    }

    /// Handles one message from a reader.
    pub fn handle_reader_message(&self, reader: ReaderId, message: Message) {
        let mut inner = self.lock();
        match message {
            Message::Release(buffer) => {
                if let Some(hold) = inner.foreign.get_mut(&buffer) {
                    if hold.holders.remove(&reader) {
                        if hold.holders.is_empty() {
                            inner.foreign.remove(&buffer);
                        }
                        if let Some(conn) = inner.readers.get_mut(&reader) {
                            conn.foreign_in_flight = conn.foreign_in_flight.saturating_sub(1);
                        }
                    }
                } else {
                    match inner.table.release(reader, buffer) {
                        Ok(reclaimed) => {
                            Self::settle(&mut inner, reclaimed);
                            self.changed.notify_all();
                        }
                        Err(err) => {
                            let why = format!("bad release: {err}");
                            self.drop_reader(
                                &mut inner,
                                reader,
                                &why,
                                Some(GoodbyeReason::ProtocolError),
                            );
                        }
                    }
                }
            }
            Message::Goodbye(goodbye) => {
                let why = format!("reader said goodbye: {}", goodbye.message);
                self.drop_reader(&mut inner, reader, &why, None);
            }
            other => {
                let why = format!("unexpected {:?} message from a reader", other.kind());
                self.drop_reader(&mut inner, reader, &why, Some(GoodbyeReason::ProtocolError));
            }
        }
        self.post_pending(inner);
    }

    /// The reader's socket failed or closed.
    pub fn reader_failed(&self, reader: ReaderId, why: &str) {
        let mut inner = self.lock();
        self.drop_reader(&mut inner, reader, why, None);
        self.post_pending(inner);
    }

    /// Disconnects readers that stayed at their credit limit longer than the timeout.
    pub fn drop_slow_readers(&self) {
        let Some(timeout) = self.config.slow_reader_timeout else {
            return;
        };
        let mut inner = self.lock();
        let slow = inner.table.slow_readers(Instant::now(), timeout);
        for reader in slow {
            self.stats.readers_timed_out.inc();
            let why = format!(
                "held {} buffers for more than {timeout:?}",
                self.config.max_in_flight
            );
            self.drop_reader(&mut inner, reader, &why, Some(GoodbyeReason::SlowReader));
        }
        self.post_pending(inner);
    }

    /// Forgets a reader and reclaims every buffer it held, at once.
    pub(super) fn drop_reader(
        &self,
        inner: &mut Inner,
        reader: ReaderId,
        why: &str,
        goodbye: Option<GoodbyeReason>,
    ) {
        let Some(conn) = inner.readers.remove(&reader) else {
            return;
        };
        if let Some(reason) = goodbye {
            let _ = conn.channel.try_send(
                &Message::Goodbye(Goodbye {
                    reason,
                    message: why.to_owned(),
                }),
                None,
            );
        }
        match inner.table.remove_reader(reader) {
            Ok((_, reclaimed)) => Self::settle(inner, reclaimed),
            Err(err) => gst::error!(CAT, "removing {reader:?}: {err}"),
        }
        inner.foreign.retain(|_, hold| {
            hold.holders.remove(&reader);
            !hold.holders.is_empty()
        });
        self.stats.readers_lost.inc();
        gst::info!(
            CAT,
            "reader {reader:?} (pid {}) lost: {why}",
            conn.credentials.pid
        );
        inner.pending_messages.push(
            gst::Structure::builder("shmzerosink-reader-lost")
                .field("reader", reader.0)
                .field("pid", conn.credentials.pid)
                .field("reason", why)
                .build(),
        );
        self.changed.notify_all();
    }

    /// Says goodbye to every reader and forgets them (element stopping).
    pub fn shutdown(&self) {
        let mut inner = self.lock();
        inner.flushing = true;
        let goodbye = Message::Goodbye(Goodbye {
            reason: GoodbyeReason::Shutdown,
            message: "writer stopped".to_owned(),
        });
        for conn in inner.readers.values() {
            let _ = conn.channel.try_send(&goodbye, None);
        }
        let readers: Vec<ReaderId> = inner.readers.keys().copied().collect();
        for reader in readers {
            inner.readers.remove(&reader);
            if let Ok((_, reclaimed)) = inner.table.remove_reader(reader) {
                Self::settle(&mut inner, reclaimed);
            }
        }
        inner.foreign.clear();
        drop(inner);
        self.changed.notify_all();
    }
}
