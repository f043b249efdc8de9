//! Keep-alive and the close timeout as rules on a clock the driver passes in, in the manner
//! of quinn-proto: the connection says when it next needs the clock
//! ([`Connection::poll_timeout`]) and acts when told the time ([`Connection::handle_timeout`]);
//! it never reads a clock itself. A driver only sleeps until the deadline (however it sleeps:
//! a tokio timer, an event loop's tick) and notes when bytes arrive ([`Connection::heard`]).
//!
//! Keep-alive (RFC 6455 sections 5.5.2 and 5.5.3: a ping asks for a pong, and anything from
//! the peer shows it is there): while open, after `interval` without receiving anything, send
//! a ping; when nothing at all arrives within `timeout` after that, fail the connection with
//! 1001. A peer that vanished without a FIN is so detected within `interval + timeout`.
//!
//! The close timeout (section 7.1.1: the endpoint that sent a close frame waits for the
//! reply, then the TCP connection is closed): once this side sent its close frame, the peer
//! has `close_timeout` to answer; once the close handshake is over (or the connection failed),
//! the driver has `close_timeout` again to write the last frames and close TCP. When either
//! runs out, [`Connection::handle_timeout`] gives up ([`Timeout::CloseTimedOut`]) and the
//! driver drops the transport: at most twice the close timeout in all, as the async
//! socket's `close` promises. The clock of each phase starts at the first call that sees it.
//!
//! Times are milliseconds since an epoch of the driver's choosing ([`Millis`]); the settings
//! ([`Timers`]) are passed to each call, as one value usually serves many connections.

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

/// The timer settings of a connection: keep-alive (off when `None`) and the close timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// Keep-alive pings while the connection is open; `None` sends none.
    pub keep_alive: Option<KeepAlive>,
    /// How long the peer has to answer a close frame, and then how long closing the transport
    /// may take; default 5 s.
    pub close_timeout: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Self {
            keep_alive: None,
            close_timeout: Duration::from_secs(5),
        }
    }
}

/// Which closing phase the close clock counts ([`Connection::heard_at`] holds its start).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum CloseClock {
    /// Not started: the connection is open, or no call saw the phase yet.
    #[default]
    Idle,
    /// Waiting for the peer's reply to this side's close frame.
    Handshake,
    /// The close handshake is over; the driver closes the transport.
    Teardown,
    /// The close timeout ran out; nothing more is due.
    GaveUp,
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
    /// The close timeout ran out: the peer never answered this side's close frame, or the
    /// transport did not close in time. The connection is closed (abnormally, if the peer's
    /// close frame never came); the driver drops the transport. Holds the close timeout.
    CloseTimedOut(Duration),
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
    /// Once closing, bytes no longer move any deadline: a peer cannot hold a closing
    /// connection open by trickling data.
    #[inline]
    pub fn heard(&mut self, now: Millis) {
        if self.close_clock == CloseClock::Idle {
            self.heard_at = now;
            self.ping_sent = false;
        }
    }

    /// When the peer was last heard from ([`Connection::heard`]), on the driver's clock.
    pub fn last_heard(&self) -> Millis {
        self.heard_at
    }

    /// The closing phase the connection is in, if it is closing.
    fn close_phase(&self) -> Option<CloseClock> {
        match self.state {
            ConnectionState::Open => None,
            ConnectionState::CloseSent => Some(CloseClock::Handshake),
            ConnectionState::Closed => Some(CloseClock::Teardown),
        }
    }

    /// When the connection next needs [`Connection::handle_timeout`] under `timers`: while
    /// open, the time a keep-alive ping is due or, after one, the time the peer counts as
    /// gone (`None` without keep-alive); while closing, the end of the close timeout, or a time
    /// already past when the phase's clock has not started (the next call starts it). `None`
    /// once the close timeout ran out.
    pub fn poll_timeout(&self, timers: &Timers) -> Option<Millis> {
        let Some(phase) = self.close_phase() else {
            let keep_alive = timers.keep_alive.as_ref()?;
            let mut after = millis(keep_alive.interval);
            if self.ping_sent {
                after = after.saturating_add(millis(keep_alive.timeout));
            }
            return Some(self.heard_at.saturating_add(after));
        };
        match self.close_clock {
            CloseClock::GaveUp => None,
            clock if clock == phase => {
                Some(self.heard_at.saturating_add(millis(timers.close_timeout)))
            }
            _ => Some(self.heard_at),
        }
    }

    /// Acts on the clock at `now` under `timers`. While open: queues a ping once the peer has
    /// been quiet for the keep-alive interval, and fails the connection with 1001 once it
    /// stayed silent for the timeout after that. While closing: starts the phase's close
    /// clock, and gives up once it ran out ([`Timeout::CloseTimedOut`]; a close frame never
    /// answered closes the connection). Before the deadline ([`Connection::poll_timeout`]) it
    /// does nothing.
    pub fn handle_timeout(&mut self, now: Millis, timers: &Timers) -> Option<Timeout> {
        if let Some(phase) = self.close_phase() {
            return self.handle_close_timeout(now, phase, timers.close_timeout);
        }
        let keep_alive = timers.keep_alive.as_ref()?;
        if now < self.poll_timeout(timers)? {
            return None;
        }
        if self.ping_sent {
            self.fail_with(CloseCode::GOING_AWAY, "keep-alive timeout");
            let waited = keep_alive.interval.saturating_add(keep_alive.timeout);
            return Some(Timeout::KeepAliveFailed(waited));
        }
        self.ping_sent = true;
        let _ = self.send_ping(b"");
        Some(Timeout::Ping)
    }

    /// [`Connection::handle_timeout`] while closing, in `phase`.
    fn handle_close_timeout(
        &mut self,
        now: Millis,
        phase: CloseClock,
        close_timeout: Duration,
    ) -> Option<Timeout> {
        match self.close_clock {
            CloseClock::GaveUp => None,
            clock if clock != phase => {
                self.close_clock = phase;
                self.heard_at = now;
                None
            }
            _ if now < self.heard_at.saturating_add(millis(close_timeout)) => None,
            _ => {
                self.close_clock = CloseClock::GaveUp;
                // The reply never came: nothing more is read or sent (an abnormal closure,
                // as when TCP ends without it).
                self.receive_eof();
                Some(Timeout::CloseTimedOut(close_timeout))
            }
        }
    }
}

#[cfg(test)]
#[path = "timers_tests.rs"]
mod tests;
