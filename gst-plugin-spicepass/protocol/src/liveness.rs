//! Heartbeat and dead-peer detection, pure bookkeeping: the caller passes
//! monotonic timestamps (ns since any fixed origin) so this is testable
//! without clocks or sockets.
//!
//! Any received byte proves the peer alive; heartbeats are sent every
//! `interval` regardless of traffic (they are tiny) so the round-trip time
//! is always fresh. A peer silent for `timeout` is dead.

use std::time::Duration;

use crate::message::{Heartbeat, HeartbeatEcho};

/// Liveness state of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Liveness {
    interval_ns: u64,
    timeout_ns: u64,
    last_received: u64,
    last_heartbeat_sent: Option<u64>,
    peer_heartbeat: Option<(u64, u64)>,
    rtt_ns: Option<u64>,
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

impl Liveness {
    /// Starts tracking at `now` (the connection counts as alive then).
    pub fn new(now: u64, interval: Duration, timeout: Duration) -> Liveness {
        Liveness {
            interval_ns: nanos(interval),
            timeout_ns: nanos(timeout),
            last_received: now,
            last_heartbeat_sent: None,
            peer_heartbeat: None,
            rtt_ns: None,
        }
    }

    /// Something arrived from the peer.
    pub fn on_received(&mut self, now: u64) {
        self.last_received = self.last_received.max(now);
    }

    /// A heartbeat arrived (also counts as received). Returns the round-trip
    /// time if it echoes one of ours.
    pub fn on_heartbeat(&mut self, heartbeat: &Heartbeat, now: u64) -> Option<Duration> {
        self.on_received(now);
        self.peer_heartbeat = Some((heartbeat.timestamp, now));
        let echo = heartbeat.echo?;
        // An echo of a time we have not reached yet is a lie: ignore it.
        let elapsed = now.checked_sub(echo.timestamp)?;
        let rtt = elapsed.saturating_sub(echo.held);
        self.rtt_ns = Some(rtt);
        Some(Duration::from_nanos(rtt))
    }

    /// Whether it is time to send a heartbeat.
    pub fn heartbeat_due(&self, now: u64) -> bool {
        match self.last_heartbeat_sent {
            None => true,
            Some(sent) => now.saturating_sub(sent) >= self.interval_ns,
        }
    }

    /// Builds the heartbeat to send now (echoing the peer's last one) and
    /// records it as sent.
    pub fn heartbeat(&mut self, now: u64) -> Heartbeat {
        self.last_heartbeat_sent = Some(now);
        Heartbeat {
            timestamp: now,
            echo: self
                .peer_heartbeat
                .map(|(timestamp, received)| HeartbeatEcho {
                    timestamp,
                    held: now.saturating_sub(received),
                }),
        }
    }

    /// Whether the peer has been silent for the timeout or longer.
    pub fn peer_timed_out(&self, now: u64) -> bool {
        now.saturating_sub(self.last_received) >= self.timeout_ns
    }

    /// The next time something needs doing (a heartbeat or the timeout), to
    /// bound the transport's poll.
    pub fn next_deadline(&self) -> u64 {
        let timeout_at = self.last_received.saturating_add(self.timeout_ns);
        match self.last_heartbeat_sent {
            None => self.last_received.min(timeout_at),
            Some(sent) => sent.saturating_add(self.interval_ns).min(timeout_at),
        }
    }

    /// Last measured round-trip time.
    pub fn rtt(&self) -> Option<Duration> {
        self.rtt_ns.map(Duration::from_nanos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn silent_peer_times_out_and_traffic_keeps_it_alive() {
        let mut live = Liveness::new(0, Duration::from_millis(100), Duration::from_millis(500));
        assert!(!live.peer_timed_out(499 * MS));
        assert!(live.peer_timed_out(500 * MS));
        live.on_received(400 * MS);
        assert!(!live.peer_timed_out(899 * MS));
        assert!(live.peer_timed_out(900 * MS));
        // Timestamps going backwards neither panic nor revive.
        live.on_received(10 * MS);
        assert!(live.peer_timed_out(900 * MS));
        assert!(!live.peer_timed_out(0));
    }

    #[test]
    fn heartbeat_schedule() {
        let mut live = Liveness::new(0, Duration::from_millis(100), Duration::from_secs(1));
        assert!(live.heartbeat_due(0));
        assert_eq!(live.next_deadline(), 0);
        let first = live.heartbeat(0);
        assert_eq!(first.echo, None);
        assert!(!live.heartbeat_due(99 * MS));
        assert!(live.heartbeat_due(100 * MS));
        assert_eq!(live.next_deadline(), 100 * MS);
    }

    #[test]
    fn rtt_from_echo_excludes_hold_time() {
        // Two ends with unrelated clock origins.
        let mut a = Liveness::new(
            1_000 * MS,
            Duration::from_millis(100),
            Duration::from_secs(1),
        );
        let mut b = Liveness::new(5 * MS, Duration::from_millis(100), Duration::from_secs(1));
        let ping = a.heartbeat(1_000 * MS);
        // One-way delay 3 ms each way, b holds it for 40 ms.
        assert_eq!(b.on_heartbeat(&ping, 8 * MS), None);
        let pong = b.heartbeat(48 * MS);
        assert_eq!(
            pong.echo,
            Some(HeartbeatEcho {
                timestamp: 1_000 * MS,
                held: 40 * MS
            })
        );
        let rtt = a.on_heartbeat(&pong, 1_046 * MS).unwrap();
        assert_eq!(rtt, Duration::from_millis(6));
        assert_eq!(a.rtt(), Some(rtt));
    }

    #[test]
    fn echo_from_the_future_is_ignored() {
        let mut live = Liveness::new(0, Duration::from_millis(100), Duration::from_secs(1));
        let bogus = Heartbeat {
            timestamp: 0,
            echo: Some(HeartbeatEcho {
                timestamp: u64::MAX,
                held: 0,
            }),
        };
        assert_eq!(live.on_heartbeat(&bogus, 10), None);
        assert_eq!(live.rtt(), None);
    }
}
