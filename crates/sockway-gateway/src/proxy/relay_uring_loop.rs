//! One io_uring loop: the sessions a ring relays, and the loop turn that submits their
//! requests and handles what completed (see `relay_uring.rs` for what it does and hands
//! back).
//!
//! Per direction at most one receive and one send are in flight. The receive is multishot
//! (Linux 6.0): armed once, it stays armed across messages, so a message costs the kernel
//! no new request and no new wait on the socket. A chunk that arrives while the one before
//! is still being written waits, unread by the filter and the tracker, and the receive is
//! cancelled then: a destination that stops reading holds back what the source sent until
//! the cancellation took effect (one read, and what the kernel had already read in the
//! same pass), and the source is not read meanwhile; the receive is armed again once all
//! of it is written. Receives take their buffer from the ring's pool (`relay_uring_pool.rs`)
//! when data arrives; the buffer goes back once its bytes are written. When the pool runs
//! dry a receive fails with `ENOBUFS` and is armed again once a buffer comes back.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use io_uring::types::Fd;
use io_uring::{cqueue, opcode, squeue, IoUring};
use nix::errno::Errno;
use nix::sys::socket::MsgFlags;
use tokio::sync::oneshot;

use super::super::splice_step::SPLICE_MIN;
use super::super::{
    clock, FrameTracker, Heard, Interrupt, PongFilter, Pump, Totals, WholeFrames, DOWN, UP,
};
use super::tls::{self, Opened};
use super::{Front, Handed, Inbox, Msg, NewSession, Poke};
use files::{Files, Target};
use pool::{Pool, GROUP, POOL};

#[path = "relay_uring_files.rs"]
mod files;
#[path = "relay_uring_handback.rs"]
mod handback;
#[path = "relay_uring_pool.rs"]
mod pool;

/// `IORING_RECVSEND_POLL_FIRST` (linux/io_uring.h): a receive waits for readiness before its
/// first try. The io-uring crate keeps its constants private.
const RECVSEND_POLL_FIRST: u16 = 1;
/// `IORING_RECV_MULTISHOT` (linux/io_uring.h): the receive stays armed after a completion.
const RECV_MULTISHOT: u16 = 2;

/// The pool's buffers are at most this long; a larger `relayBufferBytes` reads this much at
/// a time.
const MAX_BUFFER: usize = 64 * 1024;
/// Byte buffers a ring keeps for reuse ([`Ring::recycle`]): at most this many, of at most
/// `2 * MAX_BUFFER` bytes each (8 MiB at the very most; about 1 MiB under 16 KiB messages).
const SPARE: usize = 64;
/// Submission queue entries; the completion queue gets eight times as many (the kernel
/// keeps completions that do not fit until there is room, `IORING_FEAT_NODROP`).
const ENTRIES: u32 = 1024;

/// What a completion is for, in the low 3 bits of its user data (the session's slot above
/// them): a receive (+ the direction), a send (+ the direction), the inbox's eventfd, a
/// cancellation.
const RECV: u64 = 0;
const SEND: u64 = 2;
const WAKE: u64 = 4;
const CANCEL: u64 = 5;

/// The user data of a request of `kind` for the session in `slot`.
fn tag(slot: usize, kind: u64) -> u64 {
    ((slot as u64) << 3) | kind
}

/// Bytes of a direction waiting to be written, or being written.
#[derive(Default)]
enum Out {
    #[default]
    Empty,
    /// In a pool buffer: `at..end` still to write.
    Pool { bid: u16, at: usize, end: usize },
    /// Of their own (edited by the pong filter, a prefix, or the gateway's ping).
    Own { bytes: Vec<u8>, at: usize },
}

/// One direction of a session on the ring.
struct Way {
    pump: Pump<dyn Totals>,
    tracker: FrameTracker,
    filter: Option<PongFilter>,
    /// The frames of the source's chunk in `out` (or `next`), when they were walked once
    /// for the filter and the tracker together: applied if one send writes it all.
    whole: Option<WholeFrames>,
    src: Target,
    dst: Target,
    /// What the send in flight writes (or the next send will).
    out: Out,
    /// Bytes read while `out` was being written, to hear and write after it.
    next: Out,
    /// A receive is armed (a multishot one until a completion says no more will come).
    recv: bool,
    /// Its cancellation was asked for because `next` holds bytes.
    capped: bool,
    send: bool,
    /// `out` is the gateway's ping, not the source's bytes.
    pinging: bool,
    /// The last receive found the pool empty.
    starved: bool,
    /// `out` holds records encrypted for a TLS client: their plaintext was counted when
    /// they were made, and what is left of them goes to the socket as it is.
    sealed: bool,
}

/// A session on the ring.
struct Session {
    ways: [Way; 2],
    client: Front,
    backend: std::net::TcpStream,
    back: [oneshot::Sender<Handed>; 2],
    runtime: tokio::runtime::Handle,
    slot: usize,
    key: u64,
    /// Handing back: cancelling what is in flight.
    handing: bool,
    /// The client's TLS session failed: it ends instead of going back to the tasks.
    broken: bool,
}

impl Session {
    fn idle(&self) -> bool {
        self.ways.iter().all(|w| !w.recv && !w.send)
    }
}

/// One ring, its buffer pool and its sessions.
pub(in super::super) struct Ring {
    uring: IoUring,
    inbox: Arc<Inbox>,
    pool: Pool,
    /// The sessions' registered descriptors.
    files: Files,
    sessions: Vec<Option<Box<Session>>>,
    free: Vec<usize>,
    generation: u64,
    /// Directions whose receive found the pool empty (checked against the session).
    starved: Vec<(usize, usize)>,
    /// Pool buffers the kernel filled and the loop has not given back yet.
    held: usize,
    /// Where the inbox's eventfd is read to.
    wake: Box<[u8; 8]>,
    /// Receives are multishot (until the kernel refuses one).
    multishot: bool,
    /// Byte buffers of `Out::Own` that were written, for the next ones (a TLS client's
    /// plaintext and records): allocating and freeing them for every message had the
    /// allocator give their pages back and the kernel fault them in again.
    spare: Vec<Vec<u8>>,
}

impl Ring {
    /// A ring (single issuer, deferred task work where the kernel has them) with its pool of
    /// `buffer`-byte buffers (1 KiB to 64 KiB).
    pub(in super::super) fn new(inbox: Arc<Inbox>, buffer: usize) -> io::Result<Self> {
        let uring = IoUring::builder()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .setup_coop_taskrun()
            .setup_cqsize(ENTRIES * 8)
            .build(ENTRIES)
            .or_else(|_| IoUring::builder().setup_cqsize(ENTRIES * 8).build(ENTRIES))?;
        let pool = Pool::new(&uring, buffer.clamp(1024, MAX_BUFFER))?;
        let files = Files::new(&uring);
        Ok(Self {
            uring,
            inbox,
            pool,
            files,
            sessions: Vec::new(),
            free: Vec::new(),
            generation: 0,
            starved: Vec::new(),
            held: 0,
            wake: Box::new([0; 8]),
            multishot: true,
            spare: Vec::new(),
        })
    }

    /// The loop: every turn one `io_uring_enter` submits what the last turn queued and
    /// waits for at least one completion; the completions are then handled in order.
    pub(in super::super) fn run(&mut self) {
        self.arm_wake();
        let mut done = Vec::new();
        loop {
            if let Err(error) = self.uring.submit_and_wait(1) {
                if !matches!(
                    Errno::from_raw(error.raw_os_error().unwrap_or(0)),
                    Errno::EINTR | Errno::EBUSY
                ) {
                    tracing::error!(%error, "the io_uring relay loop stopped");
                    return;
                }
            }
            // The activity clock, read once per loop turn.
            let now = clock::now_ms();
            done.extend(
                self.uring
                    .completion()
                    .map(|c| (c.user_data(), c.result(), c.flags())),
            );
            for (data, result, flags) in done.drain(..) {
                self.complete(data, result, flags, now);
            }
            self.feed_starved();
        }
    }

    fn complete(&mut self, data: u64, result: i32, flags: u32, now: u64) {
        let slot = (data >> 3) as usize;
        match data & 7 {
            WAKE => {
                let mut msgs = Vec::new();
                self.inbox.take(&mut msgs);
                for msg in msgs {
                    match msg {
                        Msg::New(session) => self.admit(*session),
                        Msg::Poke(key) => self.poke(key),
                    }
                }
                self.arm_wake();
            }
            kind @ (RECV | 1) => self.received(slot, (kind - RECV) as usize, result, flags, now),
            kind @ (SEND | 3) => self.sent(slot, (kind - SEND) as usize, result, now),
            _ => {}
        }
    }

    /// Queues a request; a full submission queue is submitted first.
    fn push(&mut self, entry: squeue::Entry) {
        for _ in 0..3 {
            // SAFETY: every buffer a request names (the eventfd's, a pool buffer, an `Out`'s
            // bytes) stays where it is until the request's completion has been handled.
            if unsafe { self.uring.submission().push(&entry) }.is_ok() {
                return;
            }
            let _ = self.uring.submit();
        }
        tracing::error!("io_uring submission queue stuck full; a request was dropped");
    }

    fn arm_wake(&mut self) {
        let fd = std::os::fd::AsRawFd::as_raw_fd(&self.inbox.wake);
        let read = opcode::Read::new(Fd(fd), self.wake.as_mut_ptr(), 8);
        self.push(read.build().user_data(WAKE));
    }

    /// Takes a new session: its prefixes are written first, its receives armed.
    fn admit(&mut self, new: NewSession) {
        let NewSession {
            client,
            backend,
            prefixes,
            pumps,
            back,
            runtime,
        } = new;
        let slot = self.free.pop().unwrap_or_else(|| {
            self.sessions.push(None);
            self.sessions.len() - 1
        });
        self.generation += 1;
        let key = (self.generation << 32) | slot as u64;
        let backend_fd = std::os::fd::AsRawFd::as_raw_fd(&backend);
        let [client_fd, backend_fd] =
            self.files
                .enter(&self.uring, slot, [client.fd(), backend_fd]);
        let [up, down] = pumps;
        let way = |pump: Pump<dyn Totals>, src, dst| Way {
            filter: (pump.shared.heartbeat.as_ref()).map(|h| PongFilter::new(h.payload[pump.way])),
            pump,
            tracker: FrameTracker::new(),
            whole: None,
            src,
            dst,
            out: Out::Empty,
            next: Out::Empty,
            recv: false,
            capped: false,
            send: false,
            pinging: false,
            starved: false,
            sealed: false,
        };
        let mut s = Box::new(Session {
            ways: [
                way(up, client_fd, backend_fd),
                way(down, backend_fd, client_fd),
            ],
            client,
            backend,
            back,
            runtime,
            slot,
            key,
            handing: false,
            broken: false,
        });
        self.register(&s);
        for (w, prefix) in prefixes.into_iter().enumerate() {
            if !prefix.is_empty() {
                let way = &mut s.ways[w];
                let since = way.pump.shared.since_start();
                way.out = match way
                    .pump
                    .heard_at(since, &prefix, &way.tracker, &mut way.filter)
                {
                    Heard::Whole(_) | Heard::Pass => Out::Own {
                        bytes: prefix.to_vec(),
                        at: 0,
                    },
                    Heard::Edited(kept) => Out::Own { bytes: kept, at: 0 },
                };
            }
        }
        // An order given before the session got here (the waker was not left yet).
        if s.ways[0].pump.shared.stop.get().is_some() {
            self.hand_back(&mut s);
        } else {
            self.step(&mut s, 0);
            self.step(&mut s, 1);
        }
        self.settle(s);
    }

    /// Leaves a waker that pokes this ring in the session's `Shared::wakers`.
    fn register(&self, s: &Session) {
        let waker = Poke::waker(&self.inbox, s.key);
        for slot in &s.ways[0].pump.shared.wakers {
            slot.register(&waker);
        }
    }

    /// A session's waker was woken: a close order hands it back; a wanted ping is written
    /// at the next frame boundary.
    fn poke(&mut self, key: u64) {
        let slot = (key & 0xffff_ffff) as usize;
        let Some(mut s) = self.sessions.get_mut(slot).and_then(Option::take) else {
            return;
        };
        if s.key != key {
            self.sessions[slot] = Some(s);
            return;
        }
        self.register(&s);
        if s.ways[0].pump.shared.stop.get().is_some() {
            self.hand_back(&mut s);
        } else if !s.handing {
            self.step(&mut s, 0);
            self.step(&mut s, 1);
        }
        self.settle(s);
    }

    /// A receive completed.
    fn received(&mut self, slot: usize, w: usize, result: i32, flags: u32, now: u64) {
        let Some(mut s) = self.sessions.get_mut(slot).and_then(Option::take) else {
            return;
        };
        s.ways[w].recv = cqueue::more(flags);
        match (result, cqueue::buffer_select(flags)) {
            (n, Some(bid)) if n > 0 => {
                self.held += 1;
                let mut chunk = Out::Pool {
                    bid,
                    at: 0,
                    end: n as usize,
                };
                let mut ended = false;
                if let (UP, Some(mut conn)) = (w, s.client.tls()) {
                    let mut plain = self.spare.pop().unwrap_or_default();
                    let opened = conn.open(self.pool.bytes(bid, n as usize), &mut plain);
                    self.give(bid);
                    chunk = match plain.is_empty() {
                        true => {
                            self.recycle(plain);
                            Out::Empty
                        }
                        false => Out::Own {
                            bytes: plain,
                            at: 0,
                        },
                    };
                    s.broken |= opened.is_err();
                    ended = opened.map_or(true, |o| o == Opened::Closed);
                }
                let way = &mut s.ways[w];
                let busy = way.send || !matches!(way.out, Out::Empty);
                match chunk {
                    Out::Empty => {}
                    chunk if busy => self.hold(way, tag(slot, RECV + w as u64), chunk),
                    chunk => {
                        let since = way.pump.shared.since(now);
                        self.hear(way, chunk, since);
                    }
                }
                if ended {
                    // The client closed its TLS session (or broke it): the tasks, or
                    // nobody, take over.
                    self.hand_back(&mut s);
                } else if !s.handing {
                    self.step(&mut s, w);
                    if w == UP && s.client.tls().is_some_and(|c| c.wants_write()) {
                        // A reply of TLS's own (a key update) goes out with the client's
                        // next send.
                        self.step(&mut s, DOWN);
                    }
                }
            }
            (n, _) if n == -(Errno::EINVAL as i32) && self.multishot && !s.handing => {
                tracing::warn!("io_uring: no multishot receives here; one receive per read");
                self.multishot = false;
                self.step(&mut s, w);
            }
            (n, _) if n == -(Errno::ENOBUFS as i32) && !s.handing => {
                s.ways[w].starved = true;
                self.starved.push((slot, w));
            }
            (n, bid) => {
                if let Some(bid) = bid {
                    self.held += 1;
                    self.give(bid);
                }
                if n == -(Errno::ECANCELED as i32) {
                    // Cancelled to hand back, or to hold no more: armed again once drained.
                    s.ways[w].capped = false;
                    if !s.handing {
                        self.step(&mut s, w);
                    }
                } else {
                    // The end or an error: the task finds out which.
                    self.hand_back(&mut s);
                }
            }
        }
        self.settle(s);
    }

    /// Keeps a chunk read while the one before is being written, and cancels the receive so
    /// that no more is read until both are written; chunks the kernel had read before the
    /// cancellation took effect join it (copied, their buffers given back).
    fn hold(&mut self, way: &mut Way, recv: u64, chunk: Out) {
        if way.recv && !way.capped {
            way.capped = true;
            let cancel = opcode::AsyncCancel::new(recv);
            self.push(cancel.build().user_data(CANCEL));
        }
        let held = match std::mem::take(&mut way.next) {
            Out::Empty => chunk,
            earlier => {
                let mut bytes = Vec::new();
                self.drain(earlier, &mut bytes);
                self.drain(chunk, &mut bytes);
                Out::Own { bytes, at: 0 }
            }
        };
        way.next = held;
    }

    /// Hears a chunk of the source's (notes the activity, takes out pongs to the gateway's
    /// pings, walks whole frames) and makes it the bytes to write next.
    fn hear(&mut self, way: &mut Way, chunk: Out, since: Duration) {
        let bytes = match &chunk {
            Out::Empty => return,
            Out::Pool { bid, at, end } => &self.pool.bytes(*bid, *end)[*at..],
            Out::Own { bytes, at } => &bytes[*at..],
        };
        let heard = way
            .pump
            .heard_at(since, bytes, &way.tracker, &mut way.filter);
        let (out, whole) = match heard {
            Heard::Whole(whole) => (chunk, Some(whole)),
            Heard::Pass => (chunk, None),
            Heard::Edited(kept) => {
                self.done_with(chunk);
                (Out::Own { bytes: kept, at: 0 }, None)
            }
        };
        way.whole = whole;
        way.out = out;
    }

    /// A send completed.
    fn sent(&mut self, slot: usize, w: usize, result: i32, now: u64) {
        let Some(mut s) = self.sessions.get_mut(slot).and_then(Option::take) else {
            return;
        };
        let way = &mut s.ways[w];
        way.send = false;
        if result <= 0 {
            self.hand_back(&mut s);
            self.settle(s);
            return;
        }
        let n = result as usize;
        let len = match &way.out {
            Out::Pool { end, .. } => *end,
            Out::Own { bytes, .. } => bytes.len(),
            Out::Empty => 0,
        };
        let (bytes, done) = match &mut way.out {
            Out::Pool { bid, at, end } => {
                *at += n;
                (self.pool.bytes(*bid, *at).get(*at - n..), *at >= *end)
            }
            Out::Own { bytes, at } => {
                *at += n;
                (bytes.get(*at - n..*at), *at >= bytes.len())
            }
            Out::Empty => (None, true),
        };
        if !way.pinging && !way.sealed {
            // The chunk's first send: all of it at once applies the one walk's result.
            let whole = way.whole.take();
            way.pump
                .wrote_chunk(&mut way.tracker, whole, bytes.unwrap_or_default(), len);
        }
        if done {
            let written = std::mem::take(&mut way.out);
            self.done_with(written);
            s.ways[w].pinging = false;
            s.ways[w].sealed = false;
        } else {
            // A partial write: the destination is slow, but bytes still move.
            let shared = &way.pump.shared;
            shared.touch(shared.since(now));
        }
        if !s.handing {
            self.step(&mut s, w);
        }
        self.settle(s);
    }

    /// Moves a direction on: writes what waits (or a wanted ping at a frame boundary), and
    /// reads again once nothing of the source's waits; frames large enough to splice, or a
    /// close order, hand the session back.
    fn step(&mut self, s: &mut Session, w: usize) {
        let slot = s.slot;
        let way = &mut s.ways[w];
        // Spliced on plain TCP only: a TLS client's bytes are records, not payloads.
        if way.tracker.last_len() >= SPLICE_MIN && !way.pinging && matches!(s.client, Front::Tcp(_))
        {
            return self.hand_back(s);
        }
        if !way.send {
            if matches!(way.out, Out::Empty) && !matches!(way.next, Out::Empty) {
                let next = std::mem::take(&mut way.next);
                let since = way.pump.shared.since_start();
                self.hear(way, next, since);
            }
            if matches!(way.out, Out::Empty) {
                let ping_ok = way.tracker.at_boundary() && !way.tracker.close_seen();
                match way.pump.due(ping_ok) {
                    Some(Interrupt::Stop(_)) => return self.hand_back(s),
                    Some(Interrupt::Ping) => {
                        if let Some(heartbeat) = way.pump.shared.heartbeat.as_ref() {
                            let side = 1 - way.pump.way;
                            let bytes = heartbeat.ping_frame(side);
                            heartbeat.ping_sent(side, way.pump.shared.start.elapsed());
                            way.out = Out::Own { bytes, at: 0 };
                            way.pinging = true;
                        }
                    }
                    None => {}
                }
            }
            if w == DOWN && !way.sealed {
                let tls = s.client.tls();
                let due = |c: &tls::Cipher<'_>| !matches!(way.out, Out::Empty) || c.wants_write();
                if let Some(conn) = tls.filter(due) {
                    if self.seal(way, conn).is_err() {
                        s.broken = true;
                        return self.hand_back(s);
                    }
                }
            }
            let pending = match &way.out {
                Out::Empty => None,
                Out::Pool { bid, at, end } => {
                    Some(self.pool.bytes(*bid, *end)[*at..].as_ptr()).map(|p| (p, end - at))
                }
                Out::Own { bytes, at } => Some((bytes[*at..].as_ptr(), bytes.len() - at)),
            };
            if let Some((ptr, len)) = pending {
                way.send = true;
                let flags = MsgFlags::MSG_NOSIGNAL.bits();
                let entry = files::send(way.dst, ptr, len as u32, flags);
                self.push(entry.user_data(tag(slot, SEND + w as u64)));
            }
        }
        let way = &mut s.ways[w];
        let waiting =
            matches!(way.next, Out::Empty) && (way.pinging || matches!(way.out, Out::Empty));
        if !way.recv && !way.starved && waiting {
            way.recv = true;
            let len = way.pump.shared.config.buffer.min(self.pool.size);
            // Armed once what was read is written: the peer has rarely answered yet, so the
            // kernel waits for data first instead of trying a receive that finds none
            // (`IORING_RECVSEND_POLL_FIRST`, Linux 5.19). A multishot receive reads whole
            // pool buffers (its length must be 0), so a smaller `relayBufferBytes` keeps
            // single receives.
            let (len, mode) = match self.multishot && len == self.pool.size {
                true => (0, RECVSEND_POLL_FIRST | RECV_MULTISHOT),
                false => (len as u32, RECVSEND_POLL_FIRST),
            };
            let entry = files::recv(way.src, len, GROUP, mode);
            self.push(entry.user_data(tag(slot, RECV + w as u64)));
        }
    }

    /// Encrypts for a TLS client what `way` writes next (after what the connection queued of
    /// its own), and counts its plaintext as written: the records cannot be taken back.
    fn seal(&mut self, way: &mut Way, mut conn: tls::Cipher<'_>) -> io::Result<()> {
        let plain = match &way.out {
            Out::Empty => &[][..],
            Out::Pool { bid, at, end } => &self.pool.bytes(*bid, *end)[*at..],
            Out::Own { bytes, at } => &bytes[*at..],
        };
        let mut cipher = self.spare.pop().unwrap_or_default();
        conn.seal(plain, &mut cipher)?;
        if cipher.is_empty() {
            self.recycle(cipher);
            return Ok(());
        }
        if !way.pinging && !plain.is_empty() {
            let whole = way.whole.take();
            way.pump
                .wrote_chunk(&mut way.tracker, whole, plain, plain.len());
        }
        let plain = std::mem::take(&mut way.out);
        self.done_with(plain);
        way.out = Out::Own {
            bytes: cipher,
            at: 0,
        };
        way.sealed = true;
        Ok(())
    }

    /// Gives what `out` held back: its pool buffer, or its bytes' buffer for reuse.
    fn done_with(&mut self, out: Out) {
        match out {
            Out::Empty => {}
            Out::Pool { bid, .. } => self.give(bid),
            Out::Own { bytes, .. } => self.recycle(bytes),
        }
    }

    /// Keeps a byte buffer for reuse: a few, none larger than the largest pool buffer's
    /// worth of records.
    fn recycle(&mut self, mut bytes: Vec<u8>) {
        if self.spare.len() < SPARE && bytes.capacity() <= 2 * MAX_BUFFER {
            bytes.clear();
            self.spare.push(bytes);
        }
    }

    /// Gives a buffer back to the pool.
    fn give(&mut self, bid: u16) {
        self.pool.give(bid);
        self.held = self.held.saturating_sub(1);
    }

    /// Arms again as many starved receives as the pool has buffers the loop does not hold
    /// (a receive that still finds none, because the kernel filled them for completions
    /// not seen yet, starves again until those are handled).
    fn feed_starved(&mut self) {
        let mut free = usize::from(POOL).saturating_sub(self.held);
        while free > 0 {
            let Some((slot, w)) = self.starved.pop() else {
                break;
            };
            let Some(mut s) = self.sessions.get_mut(slot).and_then(Option::take) else {
                continue;
            };
            if s.ways[w].starved {
                s.ways[w].starved = false;
                free -= 1;
                self.step(&mut s, w);
            }
            self.settle(s);
        }
    }
}
