//! `webSocketKeepAlive`: the gateway's own pings on a relayed session, so that a socket that
//! is quiet but alive outlives the idle limit (`requestTimeout`, 20 s by default), while
//! ASP.NET Core's `KeepAliveInterval` default is 2 minutes and browsers never ping.
//!
//! When a side has sent nothing for half the idle limit, the gateway sends it a ping (RFC 6455
//! section 5.5.2) at the next frame boundary of the stream towards it, masked towards the
//! backend (section 5.3). A side that sends anything within the next half answers; one that
//! does not is closed with 1001. Every peer must answer a ping with a pong carrying the same
//! payload (section 5.5.3); the gateway's payload is random per session, and those pongs are
//! taken out of the stream ([`PongFilter`]) so that the other side never sees an answer to a
//! ping it did not send.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use sockway_proto::frame::{FrameHeader, OpCode, MAX_HEADER_LEN};
use sockway_proto::mask::apply_mask;

/// Length of the gateway's ping payload: random bytes, so no peer can forge its answer.
pub const PAYLOAD_LEN: usize = 16;

/// The client's side (read by the up direction).
pub const CLIENT: usize = 0;
/// The backend's side (read by the down direction).
pub const BACKEND: usize = 1;

/// Keep-alive state of one session, shared by its two directions and its controller.
/// Times are milliseconds since the relay started, plus one (0: never).
#[derive(Debug)]
pub struct Heartbeat {
    /// Half the idle limit: quiet this long, a side is pinged; pinged this long without an
    /// answer, it is closed.
    pub interval: Duration,
    /// The payload of every ping of this session, per side.
    pub payload: [[u8; PAYLOAD_LEN]; 2],
    /// When each side last sent bytes.
    heard: [AtomicU64; 2],
    /// A ping the controller wants written to each side.
    wanted: [AtomicBool; 2],
    /// When the last ping to each side was written (0: none since it was last heard).
    sent: [AtomicU64; 2],
}

/// What the controller should do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beat {
    /// Nothing until this time (ms since start).
    WaitUntil(u64),
    /// Ask for a ping to this side, then look again.
    Ping(usize),
    /// This side did not answer a ping: close the session.
    Unanswered(usize),
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Heartbeat {
    /// Keep-alive for a session whose idle limit is `idle`.
    pub fn new(idle: Duration) -> Self {
        Self {
            interval: idle / 2,
            payload: [rand::random(), rand::random()],
            heard: [AtomicU64::new(1), AtomicU64::new(1)],
            wanted: [AtomicBool::new(false), AtomicBool::new(false)],
            sent: [AtomicU64::new(0), AtomicU64::new(0)],
        }
    }

    /// `side` sent bytes at `now`: it is alive, and any ping to it is answered.
    pub fn heard(&self, side: usize, now: Duration) {
        self.heard[side].store(millis(now) + 1, Ordering::Relaxed);
        self.sent[side].store(0, Ordering::Relaxed);
    }

    /// Whether a ping to `side` is wanted and not written yet.
    pub fn ping_wanted(&self, side: usize) -> bool {
        self.wanted[side].load(Ordering::Relaxed)
    }

    /// A ping was written to `side` at `now`.
    pub fn ping_sent(&self, side: usize, now: Duration) {
        self.wanted[side].store(false, Ordering::Relaxed);
        self.sent[side].store(millis(now) + 1, Ordering::Relaxed);
    }

    /// A ping noted as sent to `side` was not written after all (the io_uring relay
    /// cancelled it when handing the session back): it is wanted again.
    #[cfg(target_os = "linux")]
    pub fn ping_lost(&self, side: usize) {
        self.sent[side].store(0, Ordering::Relaxed);
        self.wanted[side].store(true, Ordering::Relaxed);
    }

    /// The controller's next step at `now` (see [`Beat`]).
    pub fn next(&self, now: Duration) -> Beat {
        let now = millis(now) + 1;
        let interval = millis(self.interval).max(1);
        let mut wake = u64::MAX;
        for side in [CLIENT, BACKEND] {
            let sent = self.sent[side].load(Ordering::Relaxed);
            if sent != 0 {
                if now >= sent + interval {
                    return Beat::Unanswered(side);
                }
                wake = wake.min(sent + interval);
                continue;
            }
            if self.wanted[side].load(Ordering::Relaxed) {
                // Waiting for a frame boundary; the writer notes when it is sent.
                wake = wake.min(now + interval / 4 + 1);
                continue;
            }
            let due = self.heard[side].load(Ordering::Relaxed) + interval;
            if now >= due {
                self.wanted[side].store(true, Ordering::Relaxed);
                return Beat::Ping(side);
            }
            wake = wake.min(due);
        }
        Beat::WaitUntil(wake.saturating_sub(1))
    }

    /// The ping frame for `side`: masked towards the backend with a fresh key.
    pub fn ping_frame(&self, side: usize) -> Vec<u8> {
        let mask = (side == BACKEND).then(rand::random::<[u8; 4]>);
        let header = FrameHeader {
            fin: true,
            rsv: 0,
            opcode: OpCode::Ping,
            mask,
            payload_len: PAYLOAD_LEN as u64,
        };
        let mut head = [0u8; MAX_HEADER_LEN];
        let n = header.encode(&mut head);
        let mut frame = Vec::with_capacity(n + PAYLOAD_LEN);
        frame.extend_from_slice(&head[..n]);
        let start = frame.len();
        frame.extend_from_slice(&self.payload[side]);
        if let Some(key) = mask {
            apply_mask(&mut frame[start..], key, 0);
        }
        frame
    }
}

/// What [`PongFilter::scan`] made of a chunk.
#[derive(Debug, PartialEq, Eq)]
pub enum Scanned {
    /// Relay the chunk as it is.
    Pass,
    /// Relay these bytes instead (pongs to the gateway taken out, or bytes held back).
    Edited(Vec<u8>),
}

/// Follows the frames a side sends and takes out the pongs that answer the gateway's pings
/// (same payload). A pong is held back until it is complete (at most 14 + 125 bytes, since a
/// control frame's payload is at most 125 bytes, RFC 6455 section 5.5); every other byte is
/// relayed as it arrives. A stream that stops parsing as frames is relayed untouched.
#[derive(Debug)]
pub struct PongFilter {
    payload: [u8; PAYLOAD_LEN],
    /// Header bytes of a frame being relayed, until the header is complete.
    header: Vec<u8>,
    /// Payload bytes of the current frame still to relay.
    left: u64,
    /// A pong being collected: its bytes so far.
    pong: Option<Vec<u8>>,
    /// Parsing failed: relay everything.
    lost: bool,
}

impl PongFilter {
    /// A filter for the pongs answering pings with `payload`.
    pub fn new(payload: [u8; PAYLOAD_LEN]) -> Self {
        Self {
            payload,
            header: Vec::with_capacity(MAX_HEADER_LEN),
            left: 0,
            pong: None,
            lost: false,
        }
    }

    /// Scans `input`, the next bytes the side sent; returns what to relay.
    pub fn scan(&mut self, input: &[u8]) -> Scanned {
        // `None` while every byte so far is relayed as it came.
        let mut out: Option<Vec<u8>> = None;
        let mut at = 0;
        while at < input.len() {
            let rest = &input[at..];
            if self.lost {
                if let Some(out) = out.as_mut() {
                    out.extend_from_slice(rest);
                }
                break;
            }
            if self.left > 0 {
                let take = usize::try_from(self.left).map_or(rest.len(), |l| l.min(rest.len()));
                self.left -= take as u64;
                if let Some(out) = out.as_mut() {
                    out.extend_from_slice(&rest[..take]);
                }
                at += take;
                continue;
            }
            if self.pong.is_none() && self.header.is_empty() && rest[0] & 0x0F == PONG {
                self.pong = Some(Vec::with_capacity(MAX_HEADER_LEN + 125));
            }
            if let Some(mut pong) = self.pong.take() {
                // Held back: from here on the output differs from the input.
                let out = out.get_or_insert_with(|| input[..at].to_vec());
                at += self.collect(&mut pong, rest, out);
                continue;
            }
            if self.header.is_empty() {
                // A whole header at hand (the usual case): take it at once instead of a byte
                // at a time; a header cut by the end of the chunk is gathered below.
                match FrameHeader::parse(rest) {
                    Ok(Some((h, n))) => {
                        if let Some(out) = out.as_mut() {
                            out.extend_from_slice(&rest[..n]);
                        }
                        self.left = h.payload_len;
                        at += n;
                        continue;
                    }
                    Err(_) => {
                        self.lost = true;
                        continue;
                    }
                    Ok(None) => {}
                }
            }
            self.header.push(rest[0]);
            if let Some(out) = out.as_mut() {
                out.push(rest[0]);
            }
            at += 1;
            match FrameHeader::parse(&self.header) {
                Ok(Some((h, _))) => {
                    self.left = h.payload_len;
                    self.header.clear();
                }
                Ok(None) => {}
                Err(_) => self.lost = true,
            }
        }
        match out {
            None => Scanned::Pass,
            Some(out) => Scanned::Edited(out),
        }
    }

    /// Payload bytes of the current frame that may pass unscanned (spliced): what is left of
    /// a frame being relayed, everything once the stream no longer parses as frames, and
    /// nothing at a boundary, inside a header or while a pong is being collected.
    pub fn payload_left(&self) -> u64 {
        if self.lost {
            u64::MAX
        } else if self.pong.is_some() || !self.header.is_empty() {
            0
        } else {
            self.left
        }
    }

    /// Whether the next byte starts a frame (or the stream is no longer followed): a data
    /// frame's header scanned here is then relayed as it is.
    pub fn at_boundary(&self) -> bool {
        self.lost || (self.left == 0 && self.pong.is_none() && self.header.is_empty())
    }

    /// Whether the stream stopped parsing as frames: everything is relayed as it comes.
    pub fn lost(&self) -> bool {
        self.lost
    }

    /// Notes that `n` payload bytes passed unscanned (at most [`payload_left`](Self::payload_left)).
    pub fn skip(&mut self, n: u64) {
        if !self.lost {
            self.left -= n.min(self.left);
        }
    }

    /// Adds bytes of `rest` to the pong being collected; when it is complete, drops it if it
    /// answers the gateway's ping and relays it (into `out`) otherwise. A frame too long to be
    /// a pong is relayed and followed to its end. Returns how many bytes of `rest` it took.
    fn collect(&mut self, pong: &mut Vec<u8>, rest: &[u8], out: &mut Vec<u8>) -> usize {
        let mut took = 0;
        loop {
            match FrameHeader::parse(pong) {
                Ok(None) => {
                    let Some(&byte) = rest.get(took) else {
                        self.pong = Some(std::mem::take(pong));
                        return took;
                    };
                    pong.push(byte);
                    took += 1;
                }
                Err(_) => {
                    out.extend_from_slice(pong);
                    self.lost = true;
                    return took;
                }
                Ok(Some((h, n))) if h.payload_len > 125 => {
                    out.extend_from_slice(pong);
                    self.left = h.payload_len - (pong.len() - n) as u64;
                    return took;
                }
                Ok(Some((h, n))) => {
                    let total = n + h.payload_len as usize;
                    let more = (total - pong.len()).min(rest.len() - took);
                    pong.extend_from_slice(&rest[took..took + more]);
                    took += more;
                    if pong.len() < total {
                        self.pong = Some(std::mem::take(pong));
                        return took;
                    }
                    let mut payload = pong[n..].to_vec();
                    if let Some(key) = h.mask {
                        apply_mask(&mut payload, key, 0);
                    }
                    if payload != self.payload {
                        out.extend_from_slice(pong);
                    }
                    return took;
                }
            }
        }
    }
}

/// The pong opcode's bits.
const PONG: u8 = 0xA;

#[cfg(test)]
#[path = "heartbeat_tests.rs"]
mod tests;
