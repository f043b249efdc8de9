//! The relay's splice step (Linux, plain TCP on both sides): large payloads go socket → pipe
//! → socket (`splice.rs`) instead of through the thread's read buffer.
//!
//! The relay still sees every frame header, which the frame tracker (boundaries, close
//! codes) and the pong filter need; only payload bytes pass unseen:
//!
//! - **Mid-payload**: when the tracker and the filter both say that at least
//!   [`SPLICE_MIN`] bytes of the current frame's payload are still to come, those are spliced
//!   (a frame longer than the read buffer, such as a 1 MiB message, after its first chunk).
//! - **At a frame boundary after a large frame**: the next header is peeked
//!   (`recv(MSG_PEEK)`, at most 14 bytes, RFC 6455 section 5.2); a data frame with at least
//!   [`SPLICE_MIN`] bytes of payload is spliced whole, header included (control frames
//!   never: they are at most 125 bytes, section 5.5, and pongs must pass the filter). A small
//!   one ends the peeking until a large frame comes again, so a stream of small messages
//!   costs one peek at the change, not one per message.
//!
//! Masked payloads pass as they are: the gateway relays bytes and never unmasks them. The
//! bytes in the pipe count as relayed when they reach the destination; until the pipe is
//! empty the direction is not at a frame boundary for a ping or a close frame of the
//! gateway's, and a close order that finds the pipe holding bytes just shuts the stream
//! (as it does mid-frame on any path).

#[cfg(target_os = "linux")]
use std::task::{Context, Poll};

#[cfg(target_os = "linux")]
use tokio::io::ReadBuf;

#[cfg(target_os = "linux")]
use super::{FrameTracker, PongFilter, Pump, Step, Totals};
use super::{ReadSide, WriteSide};
#[cfg(target_os = "linux")]
pub(super) use crate::proxy::splice::Splicer;

/// Payloads at least this long are spliced: below it, the peek this costs outweighs the
/// copies it saves (the read buffer is the thread's, already hot).
#[cfg(target_os = "linux")]
pub(super) const SPLICE_MIN: u64 = 8192;

/// What the splice step did.
#[cfg(target_os = "linux")]
pub(super) enum Spliced {
    /// Bytes moved (into the pipe or out of it): go round again.
    Moved,
    /// Nothing to splice here: read through the buffer.
    Not,
    /// The copy loop's answer for this poll.
    Done(Poll<Step>),
}

/// Without `splice(2)`, a direction never has a splicer.
#[cfg(not(target_os = "linux"))]
pub(super) enum Splicer {}

#[cfg(not(target_os = "linux"))]
impl Splicer {
    /// Bytes held in a pipe: never any.
    pub(super) fn held(&self) -> usize {
        match *self {}
    }

    /// Nothing to give back.
    pub(super) fn release(&mut self) {
        match *self {}
    }
}

/// A splicer for a direction from `src` to `dst`: only between two plain TCP sockets.
pub(super) fn splicer_for(src: &ReadSide, dst: &WriteSide) -> Option<Splicer> {
    #[cfg(target_os = "linux")]
    if let (ReadSide::Tcp(_), WriteSide::Tcp(_)) = (src, dst) {
        return Some(Splicer::default());
    }
    let _ = (src, dst);
    None
}

/// At most this much per splice: a pipe's default capacity (16 pages, pipe(7)).
#[cfg(target_os = "linux")]
const CHUNK: u64 = 65_536;

#[cfg(target_os = "linux")]
impl<T: Totals + ?Sized> Pump<T> {
    /// One splice step of the copy loop (see the module documentation): writes out what the
    /// pipe holds, or moves the next large payload into it, or says to read normally.
    pub(super) fn poll_splice(
        &self,
        cx: &mut Context<'_>,
        sp: &mut Splicer,
        src: &mut ReadSide,
        dst: &mut WriteSide,
        tracker: &mut FrameTracker,
        filter: &mut Option<PongFilter>,
    ) -> Spliced {
        let (ReadSide::Tcp(src), WriteSide::Tcp(dst)) = (src, dst) else {
            return Spliced::Not;
        };
        if sp.held() > 0 {
            return match sp.poll_drain(cx, dst.as_ref()) {
                Poll::Ready(Ok(n)) if n > 0 => {
                    self.count(n);
                    self.spliced(n);
                    Spliced::Moved
                }
                Poll::Ready(_) => Spliced::Done(Poll::Ready(Step::Failed)),
                Poll::Pending => Spliced::Done(self.wait(cx, false)),
            };
        }
        if sp.off() {
            return Spliced::Not;
        }
        let unscanned = filter.as_ref().map_or(u64::MAX, PongFilter::payload_left);
        let span = tracker.payload_left().min(unscanned);
        let mut head = [0u8; sockway_proto::frame::MAX_HEADER_LEN];
        let (want, head_len) = if span >= SPLICE_MIN {
            (span.min(CHUNK), 0)
        } else if span == 0
            && tracker.at_boundary()
            && tracker.last_len() >= SPLICE_MIN
            && filter.as_ref().is_none_or(PongFilter::at_boundary)
        {
            let mut peek = ReadBuf::new(&mut head);
            let n = match src.poll_peek(cx, &mut peek) {
                Poll::Pending => {
                    sp.release();
                    return Spliced::Done(self.wait(cx, !tracker.close_seen()));
                }
                Poll::Ready(Ok(n)) => n,
                // The read reports the end or the error.
                Poll::Ready(Err(_)) => return Spliced::Not,
            };
            match sockway_proto::frame::RawFrameHeader::parse(&head[..n]) {
                Some((h, len)) if h.payload_len >= SPLICE_MIN && h.opcode & 0x8 == 0 => {
                    ((len as u64).saturating_add(h.payload_len).min(CHUNK), len)
                }
                _ => return Spliced::Not,
            }
        } else {
            return Spliced::Not;
        };
        let want = usize::try_from(want).unwrap_or(usize::MAX);
        match sp.poll_fill(cx, src.as_ref(), want) {
            Poll::Pending => {
                sp.release();
                let ping_ok = tracker.at_boundary() && !tracker.close_seen();
                Spliced::Done(self.wait(cx, ping_ok))
            }
            Poll::Ready(Ok(0)) => Spliced::Done(Poll::Ready(Step::Ended)),
            Poll::Ready(Ok(n)) => {
                let seen = n.min(head_len);
                // A data frame's header at the filter's boundary always passes unedited.
                let _ = self.heard(&head[..seen], tracker, filter);
                tracker.feed(&head[..seen]);
                let skipped = (n - seen) as u64;
                tracker.skip(skipped);
                if let Some(filter) = filter.as_mut() {
                    filter.skip(skipped);
                }
                Spliced::Moved
            }
            // Splicing failed: this direction reads through the buffer from now on, and that
            // read reports the socket's error, if it has one.
            Poll::Ready(Err(_)) => {
                sp.turn_off();
                Spliced::Not
            }
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
#[path = "relay_splice_tests.rs"]
mod tests;
