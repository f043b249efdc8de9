//! Keep-alive as a rule on a clock the driver passes in, in the manner of quinn-proto: the
//! connection says when it next needs the clock ([`Connection::poll_timeout`]) and acts when
//! told the time ([`Connection::handle_timeout`]); it never reads a clock itself. A driver
//! only sleeps until the deadline (however it sleeps: a tokio timer, an event loop's tick)
//! and notes when bytes arrive ([`Connection::heard`]).
//!
//! The rule (RFC 6455 sections 5.5.2 and 5.5.3: a ping asks for a pong, and anything from the
//! peer shows it is there): after `interval` without receiving anything, send a ping; when
//! nothing at all arrives within `timeout` after that, fail the connection with 1001. A peer
//! that vanished without a FIN is so detected within `interval + timeout`.
//!
//! Times are milliseconds since an epoch of the driver's choosing ([`Millis`]); the settings
//! ([`KeepAlive`]) are passed to each call, as one value usually serves many connections.

use std::time::Duration;

use super::{Connection, ConnectionState};
use crate::close::CloseCode;

/// A point in time as the driver counts it: milliseconds since an epoch it chose, the same
/// for every call on one connection.
pub type Millis = u64;

/// Keep-alive settings: ping the peer when it has been quiet for `interval`, and give up on
/// it when it stays silent for `timeout` after that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeepAlive {
    /// How long the connection may be quiet before a ping goes out (ASP.NET Core's
    /// `KeepAliveInterval` default of 2 minutes keeps proxies from closing an idle connection).
    pub interval: Duration,
    /// How long to wait after a ping for anything from the peer.
    pub timeout: Duration,
}

impl Default for KeepAlive {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(120),
            timeout: Duration::from_secs(30),
        }
    }
}

/// What [`Connection::handle_timeout`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timeout {
    /// The peer was quiet for the interval: a ping is queued in the output.
    Ping,
    /// The peer stayed silent after the ping: the connection failed with 1001 ("going
    /// away"), its close frame queued. Holds how long the peer was silent at most
    /// (`interval + timeout`).
    KeepAliveFailed(Duration),
}

/// A duration in whole milliseconds, rounded up, saturating.
fn millis(duration: Duration) -> Millis {
    duration
        .as_secs()
        .saturating_mul(1000)
        .saturating_add(u64::from(duration.subsec_nanos().div_ceil(1_000_000)))
}

impl Connection {
    /// Notes that bytes arrived from the peer at `now`: it is alive, and any ping counts as
    /// answered. A driver calls it when the connection opens too, which starts the clock.
    #[inline]
    pub fn heard(&mut self, now: Millis) {
        self.heard_at = now;
        self.ping_sent = false;
    }

    /// When the peer was last heard from ([`Connection::heard`]), on the driver's clock.
    pub fn last_heard(&self) -> Millis {
        self.heard_at
    }

    /// When the connection next needs [`Connection::handle_timeout`] under `keep_alive`: the
    /// time a ping is due, or, after one, the time the peer counts as gone. `None` once the
    /// connection is closed.
    pub fn poll_timeout(&self, keep_alive: &KeepAlive) -> Option<Millis> {
        if self.state == ConnectionState::Closed {
            return None;
        }
        let mut after = millis(keep_alive.interval);
        if self.ping_sent {
            after = after.saturating_add(millis(keep_alive.timeout));
        }
        Some(self.heard_at.saturating_add(after))
    }

    /// Acts on the clock at `now` under `keep_alive`: queues a ping once the peer has been
    /// quiet for the interval, and fails the connection once it stayed silent for the timeout
    /// after that. Before the deadline ([`Connection::poll_timeout`]) it does nothing.
    pub fn handle_timeout(&mut self, now: Millis, keep_alive: &KeepAlive) -> Option<Timeout> {
        if now < self.poll_timeout(keep_alive)? {
            return None;
        }
        if self.ping_sent {
            self.fail_with(CloseCode::GOING_AWAY, "keep-alive timeout");
            let waited = keep_alive.interval.saturating_add(keep_alive.timeout);
            return Some(Timeout::KeepAliveFailed(waited));
        }
        self.ping_sent = true;
        // Only an open connection sends data; while closing, the missing close reply makes
        // the same point, and the timeout still follows.
        if self.state == ConnectionState::Open {
            let _ = self.send_ping(b"");
        }
        Some(Timeout::Ping)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Config, Role};

    const SETTINGS: KeepAlive = KeepAlive {
        interval: Duration::from_millis(1_000),
        timeout: Duration::from_millis(500),
    };

    fn opened_at(now: Millis) -> Connection {
        let mut conn = Connection::new(Role::Server, Config::default());
        conn.heard(now);
        conn
    }

    #[test]
    fn a_quiet_peer_is_pinged_after_the_interval_and_failed_after_the_timeout() {
        let mut conn = opened_at(10_000);
        assert_eq!(conn.poll_timeout(&SETTINGS), Some(11_000));
        assert_eq!(conn.handle_timeout(10_999, &SETTINGS), None);
        assert!(!conn.has_output());
        assert_eq!(conn.handle_timeout(11_000, &SETTINGS), Some(Timeout::Ping));
        assert_eq!(conn.output(), [0x89, 0x00]);
        conn.advance_output(2);
        assert_eq!(conn.poll_timeout(&SETTINGS), Some(11_500));
        assert_eq!(conn.handle_timeout(11_499, &SETTINGS), None);
        assert_eq!(
            conn.handle_timeout(11_500, &SETTINGS),
            Some(Timeout::KeepAliveFailed(Duration::from_millis(1_500)))
        );
        assert!(conn.is_closed());
        assert_eq!(&conn.output()[..4], [0x88, 20, 0x03, 0xE9]);
        assert_eq!(conn.poll_timeout(&SETTINGS), None);
        assert_eq!(conn.handle_timeout(20_000, &SETTINGS), None);
    }

    #[test]
    fn hearing_from_the_peer_moves_the_deadline_and_answers_the_ping() {
        let mut conn = opened_at(0);
        conn.heard(700);
        assert_eq!(conn.handle_timeout(1_000, &SETTINGS), None);
        assert_eq!(conn.handle_timeout(1_700, &SETTINGS), Some(Timeout::Ping));
        conn.heard(1_800);
        assert_eq!(conn.poll_timeout(&SETTINGS), Some(2_800));
        assert_eq!(conn.handle_timeout(2_300, &SETTINGS), None);
        assert!(!conn.is_closed());
    }

    #[test]
    fn a_late_call_still_pings_before_it_fails() {
        // A driver that slept long (a stalled event loop) still gives the peer its timeout.
        let mut conn = opened_at(0);
        assert_eq!(conn.handle_timeout(60_000, &SETTINGS), Some(Timeout::Ping));
        assert!(!conn.is_closed());
    }

    #[test]
    fn huge_settings_do_not_overflow() {
        let forever = KeepAlive {
            interval: Duration::MAX,
            timeout: Duration::MAX,
        };
        let mut conn = opened_at(u64::MAX - 1);
        assert_eq!(conn.poll_timeout(&forever), Some(u64::MAX));
        assert_eq!(conn.handle_timeout(u64::MAX - 1, &forever), None);
    }
}
