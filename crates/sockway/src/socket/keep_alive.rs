//! Keep-alive timing (ASP.NET Core's `KeepAliveInterval` / `KeepAliveTimeout`; pings and pongs
//! are RFC 6455 section 5.5.2-5.5.3) for every socket on a runtime, kept by one shared timer.
//! The rule (when to ping, when to give up) is the core's: [`Connection::poll_timeout`] says
//! when the socket next needs the clock and [`Connection::handle_timeout`] acts; this module
//! only sleeps until that deadline, on the runtime's [`Wheel`], and tells the core when the
//! peer was heard from, on the wheel's coarse clock.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Waker};
use std::time::Duration;

use sockway_proto::connection::{Timeout, Timers};
use sockway_proto::Connection;
use sockway_proto::ConnectionState;

use super::wheel::{Wheel, NEVER};

/// What the socket should do after [`KeepAliveTimer::poll`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeepAliveAction {
    /// Nothing yet: the wheel wakes the socket when something is due.
    Wait,
    /// The peer has been quiet for the interval: a ping is queued, to be written.
    Ping,
    /// The peer stayed silent for the timeout after the ping: the core failed the connection
    /// (close 1001 queued). Holds how long the peer was silent.
    TimedOut(Duration),
    /// The peer did not answer this side's close frame within the close timeout: the core
    /// gave up on the handshake; the transport is dropped.
    CloseTimedOut,
}

/// One socket's place in the wheel, kept inline in its engine.
///
/// Reads never touch the wheel: they only set `heard`. When the engine is about to wait, it
/// notes the wheel's coarse clock (one atomic load; see [`Wheel::horizon`]) as the time the
/// peer was heard by, and checks with one more load whether the wheel has scanned past the
/// armed deadline. Only then is the core told when the peer was last heard from
/// ([`Wheel::heard_by`], [`Connection::heard`]) and decides
/// ([`Connection::handle_timeout`]): heard from since, so nothing yet; quiet for the interval,
/// so ping; silent after the ping, so give up; and the timer arms the core's next deadline
/// ([`Connection::poll_timeout`]). A busy connection costs no clock read and no shared-state
/// update per message, and a ping still goes out after `interval` of silence, never before
/// (to within the wheel's scan gap and two ticks of its coarse clock, at most about 3 % of the
/// interval).
#[derive(Debug, Default)]
pub(crate) struct KeepAliveTimer {
    /// The runtime's wheel, once registered in it (at the first wait).
    wheel: Option<Arc<Wheel>>,
    /// This socket's slot in the wheel.
    index: u32,
    /// Whether bytes arrived since the core was last told.
    heard: bool,
    /// Whether the connection was seen closing: the core's close timeout replaced the
    /// keep-alive deadline.
    closing: bool,
    /// The deadline armed in the wheel, in the wheel's milliseconds (0 before the first).
    armed: u64,
    /// The coarse clock's horizon taken when the peer was last heard from, not yet told to
    /// the core (0: none).
    heard_by: u64,
    /// The waker the armed deadline will wake.
    armed_with: Option<Waker>,
}

impl KeepAliveTimer {
    /// Bytes arrived from the peer: it is alive, and any ping is answered.
    pub(crate) fn heard(&mut self) {
        self.heard = true;
    }

    /// Stops the timer for good (the connection failed or closed).
    pub(crate) fn stop(&mut self) {
        if let Some(wheel) = self.wheel.take() {
            wheel.unregister(self.index);
        }
        self.armed = NEVER;
        self.armed_with = None;
    }

    /// Called when the engine is about to wait for the peer: lets the core act on the clock
    /// once its deadline may have passed, and otherwise makes sure the wheel wakes this task
    /// when it may. Outside a tokio runtime there is no wheel and it always says
    /// [`KeepAliveAction::Wait`].
    #[inline]
    pub(crate) fn poll(
        &mut self,
        conn: &mut Connection,
        settings: &Timers,
        cx: &mut Context<'_>,
    ) -> KeepAliveAction {
        // The path of every wait: the armed deadline has not passed, for this task, and a
        // driver serves it.
        if let Some(wheel) = &self.wheel {
            if self.heard {
                self.heard = false;
                if let Some(keep_alive) = &settings.keep_alive {
                    self.heard_by = wheel.horizon();
                    if self.heard_by == 0 {
                        // The coarse clock is stopped: read the clock, and start it.
                        conn.heard(wheel.now_rounded_up());
                        wheel.start_ticking(keep_alive.interval);
                    }
                }
            }
            if !self.closing && conn.state() != ConnectionState::Open {
                // The close clock starts now: let the core see the time at once rather than
                // at the keep-alive deadline armed before.
                self.closing = true;
                self.armed = 0;
            } else if wheel.scanned.load(Ordering::Acquire) < self.armed
                && self
                    .armed_with
                    .as_ref()
                    .is_some_and(|waker| waker.will_wake(cx.waker()))
                && wheel.driver_alive.load(Ordering::Acquire)
            {
                return KeepAliveAction::Wait;
            }
        }
        self.poll_due(conn, settings, cx)
    }

    /// [`Self::poll`] when the wheel must be told something: at the first wait, when the
    /// armed deadline passed, or when another task or a new driver must be woken.
    #[inline(never)]
    fn poll_due(
        &mut self,
        conn: &mut Connection,
        settings: &Timers,
        cx: &mut Context<'_>,
    ) -> KeepAliveAction {
        let Some(wheel) = &self.wheel else {
            let Some(wheel) = Wheel::for_current_runtime() else {
                return KeepAliveAction::Wait;
            };
            self.index = wheel.register();
            // The quiet interval starts at the first wait, on the wheel's clock.
            self.heard = false;
            conn.heard(wheel.now_rounded_up());
            self.wheel = Some(wheel);
            self.arm(next_deadline(conn, settings), cx.waker());
            return KeepAliveAction::Wait;
        };
        if wheel.scanned.load(Ordering::Acquire) < self.armed {
            self.arm(self.armed, cx.waker());
            return KeepAliveAction::Wait;
        }
        if self.heard_by != 0 {
            conn.heard(wheel.heard_by(self.heard_by));
            self.heard_by = 0;
        }
        let action = match conn.handle_timeout(wheel.now(), settings) {
            None => KeepAliveAction::Wait,
            Some(Timeout::Ping) => KeepAliveAction::Ping,
            Some(Timeout::KeepAliveFailed(silent)) => {
                self.stop();
                return KeepAliveAction::TimedOut(silent);
            }
            Some(Timeout::CloseTimedOut(_)) => {
                self.stop();
                return KeepAliveAction::CloseTimedOut;
            }
        };
        self.arm(next_deadline(conn, settings), cx.waker());
        action
    }

    fn arm(&mut self, due: u64, waker: &Waker) {
        let Some(wheel) = &self.wheel else {
            return;
        };
        wheel.arm(self.index, due, waker);
        self.armed = due;
        match &mut self.armed_with {
            Some(current) => current.clone_from(waker),
            None => self.armed_with = Some(waker.clone()),
        }
    }
}

/// The core's next deadline, as the wheel counts (`NEVER` once the connection is closed).
fn next_deadline(conn: &Connection, settings: &Timers) -> u64 {
    conn.poll_timeout(settings)
        .map_or(NEVER, |due| due.min(NEVER - 1))
}

impl Drop for KeepAliveTimer {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sockway_proto::connection::KeepAlive;
    use tokio::io::{duplex, AsyncReadExt, DuplexStream};
    use tokio::time::{timeout, Instant};

    use super::*;
    use crate::{Error, Message, Role, WebSocket, WebSocketConfig};

    fn quiet_server(interval_ms: u64, timeout_ms: u64) -> (DuplexStream, WebSocket<DuplexStream>) {
        let keep_alive = KeepAlive {
            interval: Duration::from_millis(interval_ms),
            timeout: Duration::from_millis(timeout_ms),
        };
        let (peer, ours) = duplex(4096);
        let config = WebSocketConfig::default().keep_alive(Some(keep_alive));
        let socket = WebSocket::from_raw(ours, Role::Server, config, Default::default());
        (peer, socket)
    }

    /// A masked, empty binary frame: what a live client might send.
    const CLIENT_FRAME: [u8; 6] = [0x82, 0x80, 1, 2, 3, 4];

    #[tokio::test(start_paused = true)]
    async fn sockets_with_different_settings_share_one_wheel() {
        let started = Instant::now();
        let mut peers = Vec::new();
        let mut waits = Vec::new();
        for (interval, timeout_ms) in [(1_000, 500), (3_000, 2_000), (200, 100)] {
            let (peer, mut socket) = quiet_server(interval, timeout_ms);
            peers.push(peer);
            waits.push(tokio::spawn(async move {
                let error = socket.recv().await.unwrap_err();
                assert!(matches!(error, Error::KeepAliveTimeout(_)), "{error}");
                started.elapsed()
            }));
        }
        let mut elapsed = Vec::new();
        for wait in waits {
            elapsed.push(wait.await.unwrap());
        }
        for (took, expected) in elapsed.iter().zip([1_500u64, 5_000, 300]) {
            let expected = Duration::from_millis(expected);
            assert!(*took >= expected, "{took:?} < {expected:?}");
            assert!(*took < expected + Duration::from_millis(100), "{took:?}");
        }
        for mut peer in peers {
            let mut ping = [0u8; 2];
            peer.read_exact(&mut ping).await.unwrap();
            assert_eq!(ping, [0x89, 0x00], "a ping went out before giving up");
        }
    }

    /// Messages closer together than the wheel's tick (10 ms for a 640 ms interval) keep its
    /// coarse clock running, so the socket notes the clock's horizon instead of reading the
    /// clock: the ping still comes one interval after the last message, never before.
    #[tokio::test(start_paused = true)]
    async fn a_peer_heard_between_ticks_is_pinged_one_interval_after_its_last_message() {
        use tokio::io::AsyncWriteExt;
        const MESSAGES: usize = 200;
        let (mut peer, mut socket) = quiet_server(640, 1_000);
        let talker = tokio::spawn(async move {
            for _ in 0..MESSAGES {
                tokio::time::sleep(Duration::from_millis(3)).await;
                peer.write_all(&CLIENT_FRAME).await.unwrap();
            }
            let mut first = [0u8; 1];
            peer.read_exact(&mut first).await.unwrap();
            (first[0], Instant::now(), peer)
        });
        for _ in 0..MESSAGES {
            socket.recv().await.unwrap().unwrap();
        }
        let last_message = Instant::now();
        let error = socket.recv().await.unwrap_err();
        assert!(matches!(error, Error::KeepAliveTimeout(_)), "{error}");
        let (first_byte, pinged_at, _peer) = talker.await.unwrap();
        assert_eq!(first_byte, 0x89);
        assert!(pinged_at >= last_message + Duration::from_millis(640));
        // Two ticks of the coarse clock and a scan gap at most.
        assert!(pinged_at <= last_message + Duration::from_millis(640 + 50));
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_that_keeps_talking_is_never_pinged() {
        use tokio::io::AsyncWriteExt;
        let (mut peer, mut socket) = quiet_server(500, 500);
        let talker = tokio::spawn(async move {
            for _ in 0..20 {
                tokio::time::sleep(Duration::from_millis(300)).await;
                peer.write_all(&CLIENT_FRAME).await.unwrap();
            }
            let mut first = [0u8; 1];
            // Nothing but the ping that follows the last message's interval.
            peer.read_exact(&mut first).await.unwrap();
            // The peer is handed back, not dropped: a closed transport is not a silent peer.
            (first[0], Instant::now(), peer)
        });
        let started = Instant::now();
        for _ in 0..20 {
            let message = socket.recv().await.unwrap().unwrap();
            assert_eq!(message, Message::binary(Vec::new()));
        }
        let last_message = Instant::now();
        let error = socket.recv().await.unwrap_err();
        assert!(matches!(error, Error::KeepAliveTimeout(_)), "{error}");
        let (first_byte, pinged_at, _peer) = talker.await.unwrap();
        assert_eq!(first_byte, 0x89);
        // After one interval of silence, to within the wheel's scan gap.
        assert!(pinged_at >= last_message + Duration::from_millis(500));
        assert!(pinged_at <= last_message + Duration::from_millis(500 + 50));
        assert!(started.elapsed() >= Duration::from_millis(6_000 + 1_000));
    }

    /// Many sockets on a multi-threaded runtime, real time: the quiet ones time out after
    /// their interval and timeout, the talking ones only once they stop talking.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_sockets_on_two_threads_each_time_out_on_their_own_schedule() {
        use tokio::io::AsyncWriteExt;
        const SOCKETS: u64 = 200;
        const TALK_FOR: Duration = Duration::from_millis(400);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for i in 0..SOCKETS {
            let interval = 40 + (i % 5) * 20;
            let (mut peer, mut socket) = quiet_server(interval, 40);
            let talks = i % 2 == 0;
            tasks.push(tokio::spawn(async move {
                let talker = tokio::spawn(async move {
                    let mut last_write = started;
                    while talks && started.elapsed() < TALK_FOR {
                        peer.write_all(&CLIENT_FRAME).await.unwrap();
                        last_write = Instant::now();
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    (peer, last_write)
                });
                let error = loop {
                    match socket.recv().await {
                        Ok(Some(_)) => continue,
                        Ok(None) => panic!("closed cleanly"),
                        Err(error) => break error,
                    }
                };
                assert!(matches!(error, Error::KeepAliveTimeout(_)), "{error}");
                let (_peer, last_write) = talker.await.unwrap();
                // Quiet for the interval, then silent for the timeout after the ping.
                let least = (last_write + Duration::from_millis(interval + 40)) - started;
                let took = started.elapsed();
                assert!(took >= least, "socket {i}: {took:?} < {least:?}");
            }));
        }
        timeout(Duration::from_secs(20), async {
            for task in tasks {
                task.await.unwrap();
            }
        })
        .await
        .expect("every socket timed out within 20 s");
    }

    #[test]
    fn a_runtime_without_timers_fails_loudly_where_the_socket_is_used() {
        // On a thread of its own, so that a regression (a wait that never ends) fails the
        // test after 10 s instead of hanging it.
        let (done, outcome) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()
                .unwrap();
            let panicked: Vec<bool> = (0..2)
                .map(|_| {
                    let (_peer, mut socket) = quiet_server(100, 100);
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        runtime.block_on(socket.recv())
                    }))
                    .is_err()
                })
                .collect();
            let _ = done.send(panicked);
        });
        let panicked = outcome
            .recv_timeout(Duration::from_secs(10))
            .expect("the first wait of each socket panics at once");
        assert_eq!(panicked, [true, true]);
    }

    #[test]
    fn slots_are_reused_and_a_socket_outliving_its_runtime_moves_to_the_next() {
        let (_peer, mut socket) = quiet_server(100, 100);
        let first = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        first.block_on(async {
            assert!(timeout(Duration::from_millis(20), socket.recv())
                .await
                .is_err());
        });
        drop(first);
        let second = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let error = second.block_on(async {
            timeout(Duration::from_secs(10), socket.recv())
                .await
                .expect("the keep-alive still fires")
                .unwrap_err()
        });
        assert!(matches!(error, Error::KeepAliveTimeout(_)), "{error}");

        let wheel = second.block_on(async { Wheel::for_current_runtime().unwrap() });
        let (a, b) = (wheel.register(), wheel.register());
        wheel.unregister(a);
        assert_eq!(wheel.register(), a);
        assert_ne!(a, b);
    }
}
