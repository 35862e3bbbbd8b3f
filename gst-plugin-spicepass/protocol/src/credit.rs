//! Credit-based flow control, pure bookkeeping (no clocks, no I/O).
//!
//! The receiver (src) grants cumulative limits: "you may have sent up to
//! `max_bytes` payload bytes and `max_buffers` buffers since the hello". The
//! sender (sink) sends a buffer only while both running totals are below the
//! limits; one buffer may overshoot the byte limit, so a buffer larger than
//! the whole window still passes. Memory on either side is therefore bounded
//! by `window_bytes + max_payload` and `window_buffers` buffers. Limits are
//! cumulative, so a grant is idempotent and a stale one is harmless.
//! Events are not credited: they are rare, small and must pass (a
//! flush-start must reach a stalled peer).

use crate::error::ProtocolError;
use crate::message::Credit;

/// Sender side: may I send this buffer?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreditSender {
    sent_bytes: u64,
    sent_buffers: u64,
    granted: Credit,
}

impl Default for CreditSender {
    fn default() -> Self {
        CreditSender::new()
    }
}

impl CreditSender {
    /// Nothing granted yet: the receiver's first `Credit` opens the window.
    pub fn new() -> CreditSender {
        CreditSender {
            sent_bytes: 0,
            sent_buffers: 0,
            granted: Credit {
                max_bytes: 0,
                max_buffers: 0,
            },
        }
    }

    /// No flow control (peer without the CREDITS capability).
    pub fn unlimited() -> CreditSender {
        CreditSender {
            granted: Credit {
                max_bytes: u64::MAX,
                max_buffers: u64::MAX,
            },
            ..CreditSender::new()
        }
    }

    /// Whether a buffer may be sent now (its size does not matter, see the
    /// module documentation).
    pub fn may_send(&self) -> bool {
        self.sent_buffers < self.granted.max_buffers && self.sent_bytes < self.granted.max_bytes
    }

    /// Records a sent buffer.
    pub fn on_sent(&mut self, payload_len: u64) {
        self.sent_bytes = self.sent_bytes.saturating_add(payload_len);
        self.sent_buffers = self.sent_buffers.saturating_add(1);
    }

    /// Applies a grant; limits never shrink.
    pub fn on_credit(&mut self, credit: &Credit) {
        self.granted.max_bytes = self.granted.max_bytes.max(credit.max_bytes);
        self.granted.max_buffers = self.granted.max_buffers.max(credit.max_buffers);
    }

    /// Remaining `(bytes, buffers)` before the sender must wait.
    pub fn available(&self) -> (u64, u64) {
        (
            self.granted.max_bytes.saturating_sub(self.sent_bytes),
            self.granted.max_buffers.saturating_sub(self.sent_buffers),
        )
    }

    /// Running totals `(bytes, buffers)` sent since the hello.
    pub fn sent(&self) -> (u64, u64) {
        (self.sent_bytes, self.sent_buffers)
    }
}

/// Receiver side: checks the sender keeps to its grant and decides when to
/// grant more. A grant goes out once half a window has been consumed, so
/// there is one `Credit` message per half window, not per buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreditGranter {
    window_bytes: u64,
    window_buffers: u64,
    granted: Credit,
    received_bytes: u64,
    received_buffers: u64,
    consumed_bytes: u64,
    consumed_buffers: u64,
}

impl CreditGranter {
    /// A receiver that holds at most `window_bytes` (plus one buffer) and
    /// `window_buffers` buffers not yet consumed. Zero windows are raised to 1.
    pub fn new(window_bytes: u64, window_buffers: u64) -> CreditGranter {
        CreditGranter {
            window_bytes: window_bytes.max(1),
            window_buffers: window_buffers.max(1),
            granted: Credit {
                max_bytes: 0,
                max_buffers: 0,
            },
            received_bytes: 0,
            received_buffers: 0,
            consumed_bytes: 0,
            consumed_buffers: 0,
        }
    }

    /// The first grant, sent right after the hello: one full window.
    pub fn initial(&mut self) -> Credit {
        self.granted = Credit {
            max_bytes: self.consumed_bytes.saturating_add(self.window_bytes),
            max_buffers: self.consumed_buffers.saturating_add(self.window_buffers),
        };
        self.granted
    }

    /// Records a received buffer header; an error if the sender exceeded
    /// its grant (a buggy or hostile peer).
    pub fn on_received(&mut self, payload_len: u64) -> Result<(), ProtocolError> {
        if self.received_buffers >= self.granted.max_buffers {
            return Err(ProtocolError::CreditExceeded {
                field: "buffers",
                used: self.received_buffers.saturating_add(1),
                granted: self.granted.max_buffers,
            });
        }
        if self.received_bytes >= self.granted.max_bytes {
            return Err(ProtocolError::CreditExceeded {
                field: "bytes",
                used: self.received_bytes.saturating_add(payload_len),
                granted: self.granted.max_bytes,
            });
        }
        self.received_bytes = self.received_bytes.saturating_add(payload_len);
        self.received_buffers += 1;
        Ok(())
    }

    /// Records that a received buffer left the receiver's queue (pushed
    /// downstream, dropped). More than was received is ignored.
    pub fn on_consumed(&mut self, payload_len: u64) {
        self.consumed_bytes = self
            .consumed_bytes
            .saturating_add(payload_len)
            .min(self.received_bytes);
        self.consumed_buffers = self
            .consumed_buffers
            .saturating_add(1)
            .min(self.received_buffers);
    }

    /// A new grant to send, if half a window (bytes or buffers) was consumed
    /// since the last one.
    pub fn poll_grant(&mut self) -> Option<Credit> {
        let next = Credit {
            max_bytes: self.consumed_bytes.saturating_add(self.window_bytes),
            max_buffers: self.consumed_buffers.saturating_add(self.window_buffers),
        };
        let more_bytes = next.max_bytes.saturating_sub(self.granted.max_bytes);
        let more_buffers = next.max_buffers.saturating_sub(self.granted.max_buffers);
        if more_bytes >= self.window_bytes.div_ceil(2)
            || more_buffers >= self.window_buffers.div_ceil(2)
        {
            self.granted.max_bytes = self.granted.max_bytes.max(next.max_bytes);
            self.granted.max_buffers = self.granted.max_buffers.max(next.max_buffers);
            Some(self.granted)
        } else {
            None
        }
    }

    /// The limits granted so far.
    pub fn granted(&self) -> Credit {
        self.granted
    }

    /// Received but not consumed `(bytes, buffers)`: what the receiver holds.
    pub fn in_flight(&self) -> (u64, u64) {
        (
            self.received_bytes - self.consumed_bytes,
            self.received_buffers - self.consumed_buffers,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn nothing_flows_before_the_first_grant() {
        let mut sender = CreditSender::new();
        assert!(!sender.may_send());
        let mut granter = CreditGranter::new(1000, 4);
        sender.on_credit(&granter.initial());
        assert!(sender.may_send());
        assert_eq!(sender.available(), (1000, 4));
    }

    #[test]
    fn buffer_count_limit_and_regrant() {
        let mut sender = CreditSender::new();
        let mut granter = CreditGranter::new(1 << 20, 4);
        sender.on_credit(&granter.initial());
        for _ in 0..4 {
            assert!(sender.may_send());
            sender.on_sent(10);
            granter.on_received(10).unwrap();
        }
        assert!(!sender.may_send());
        assert_eq!(granter.in_flight(), (40, 4));
        assert!(matches!(
            granter.on_received(10),
            Err(ProtocolError::CreditExceeded {
                field: "buffers",
                ..
            })
        ));
        granter.on_consumed(10);
        assert_eq!(
            granter.poll_grant(),
            None,
            "one buffer is less than half a window"
        );
        granter.on_consumed(10);
        let grant = granter.poll_grant().unwrap();
        assert_eq!(grant.max_buffers, 6);
        sender.on_credit(&grant);
        assert_eq!(sender.available().1, 2);
        // A stale grant does not shrink the window.
        sender.on_credit(&Credit {
            max_bytes: 0,
            max_buffers: 0,
        });
        assert_eq!(sender.available().1, 2);
    }

    #[test]
    fn a_buffer_larger_than_the_window_passes_alone() {
        let mut sender = CreditSender::new();
        let mut granter = CreditGranter::new(100, 10);
        sender.on_credit(&granter.initial());
        assert!(sender.may_send());
        sender.on_sent(5000);
        granter.on_received(5000).unwrap();
        assert!(!sender.may_send());
        assert!(matches!(
            granter.on_received(1),
            Err(ProtocolError::CreditExceeded { field: "bytes", .. })
        ));
        granter.on_consumed(5000);
        sender.on_credit(&granter.poll_grant().unwrap());
        assert!(sender.may_send());
    }

    #[test]
    fn unlimited_sender() {
        let mut sender = CreditSender::unlimited();
        for _ in 0..1000 {
            sender.on_sent(1 << 30);
        }
        assert!(sender.may_send());
    }

    proptest! {
        /// A sender and receiver that follow the rules never violate credit,
        /// the receiver never holds more than the window (plus one buffer's
        /// overshoot), and everything sent is eventually delivered.
        #[test]
        fn bounded_and_live(
            window_bytes in 1u64..10_000,
            window_buffers in 1u64..16,
            sizes in proptest::collection::vec(0u64..5_000, 1..200),
            consume_pattern in proptest::collection::vec(any::<bool>(), 1..50),
        ) {
            let mut sender = CreditSender::new();
            let mut granter = CreditGranter::new(window_bytes, window_buffers);
            sender.on_credit(&granter.initial());
            let mut queue = std::collections::VecDeque::new();
            let mut next = 0;
            let mut step = 0;
            let max_payload = sizes.iter().copied().max().unwrap_or(0);
            while next < sizes.len() || !queue.is_empty() {
                step += 1;
                prop_assert!(step < 100_000, "stalled");
                if next < sizes.len() && sender.may_send() {
                    sender.on_sent(sizes[next]);
                    granter.on_received(sizes[next]).unwrap();
                    queue.push_back(sizes[next]);
                    next += 1;
                }
                let (bytes, buffers) = granter.in_flight();
                prop_assert!(buffers <= window_buffers);
                prop_assert!(bytes < window_bytes + max_payload);
                let consume = consume_pattern[step % consume_pattern.len()]
                    || !sender.may_send()
                    || next == sizes.len();
                if consume && let Some(size) = queue.pop_front() {
                    granter.on_consumed(size);
                    if let Some(grant) = granter.poll_grant() {
                        sender.on_credit(&grant);
                    }
                }
            }
        }
    }
}
