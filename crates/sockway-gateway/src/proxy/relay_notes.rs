//! What the relay notes about the bytes it moves (split from `relay.rs`): that a source
//! was heard (the idle limit's activity clock and keep-alive), the pongs the gateway's
//! pings get back (taken out), the frames that go through (for close frames at a boundary)
//! and the byte counts. A chunk of whole frames is walked once for the pong filter and the
//! frame tracker together ([`whole_frames`]); anything else is walked by each.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{
    whole_frames, FrameTracker, PongFilter, Pump, Scanned, Totals, WholeFrames, WriteSide, Written,
    UP,
};

/// What the relay makes of a chunk its source sent ([`Pump::heard_at`]).
pub(super) enum Heard {
    /// Whole frames, none of them filtered, walked once: relay the chunk as it is and apply
    /// this to the tracker once it is written.
    Whole(WholeFrames),
    /// Relay the chunk as it is.
    Pass,
    /// Relay these bytes instead (pongs to the gateway taken out, or bytes held back).
    Edited(Vec<u8>),
}

impl<T: Totals + ?Sized> Pump<T> {
    /// Notes that the source was heard now (the coarse activity clock, [`clock`](super::clock), read once
    /// per chunk, and, with keep-alive, its [`Heartbeat`](super::Heartbeat)) and takes the pongs to the
    /// gateway's pings out of `bytes`.
    pub(super) fn heard(
        &self,
        bytes: &[u8],
        tracker: &FrameTracker,
        filter: &mut Option<PongFilter>,
    ) -> Heard {
        self.heard_at(self.shared.since_start(), bytes, tracker, filter)
    }

    /// [`heard`](Self::heard) with the clock already read (`now`, since the relay's start).
    /// A chunk of whole frames that starts at a frame boundary of both the destination's
    /// stream (`tracker`) and the filter's is walked once for both ([`whole_frames`]).
    pub(super) fn heard_at(
        &self,
        now: Duration,
        bytes: &[u8],
        tracker: &FrameTracker,
        filter: &mut Option<PongFilter>,
    ) -> Heard {
        self.shared.touch(now);
        let heartbeat = self.shared.heartbeat.as_ref();
        if let (Some(heartbeat), Some(_)) = (heartbeat, filter.as_ref()) {
            heartbeat.heard(self.way, now);
        }
        // Whether the filter still follows the stream (a lost one passes everything).
        let filtered = match (heartbeat, filter.as_ref()) {
            (Some(_), Some(f)) if !f.lost() => f.at_boundary().then_some(true),
            _ => Some(false),
        };
        if let Some(filtered) = filtered.filter(|_| tracker.at_boundary()) {
            if let Some(whole) = whole_frames(bytes, filtered) {
                return Heard::Whole(whole);
            }
        }
        match (heartbeat, filter.as_mut()) {
            (Some(_), Some(filter)) => match filter.scan(bytes) {
                Scanned::Pass => Heard::Pass,
                Scanned::Edited(kept) => Heard::Edited(kept),
            },
            _ => Heard::Pass,
        }
    }

    /// Relays `bytes` the source sent: notes that the source was heard and takes out its
    /// pongs to the gateway's pings (with keep-alive), then writes the rest.
    pub(super) async fn relay_chunk(
        &self,
        dst: &mut WriteSide,
        bytes: &[u8],
        tracker: &mut FrameTracker,
        filter: &mut Option<PongFilter>,
    ) -> Written {
        // Only the edited bytes, if any, are kept across the write.
        let edited = match self.heard(bytes, tracker, filter) {
            Heard::Whole(_) | Heard::Pass => None,
            Heard::Edited(kept) => Some(kept),
        };
        match edited {
            None => self.write_out(dst, bytes, tracker).await,
            Some(kept) => self.write_out(dst, &kept, tracker).await,
        }
    }

    /// Notes `bytes` written to the destination out of a chunk of `len` bytes whose frames
    /// `whole` describes (if it does): all of the chunk at once applies `whole` to the
    /// tracker instead of walking the frames again; anything less is fed.
    pub(super) fn wrote_chunk(
        &self,
        tracker: &mut FrameTracker,
        whole: Option<WholeFrames>,
        bytes: &[u8],
        len: usize,
    ) {
        match whole.filter(|_| bytes.len() == len) {
            Some(whole) => {
                tracker.apply(whole);
                self.noted(tracker, bytes.len());
            }
            None => self.wrote(tracker, bytes),
        }
    }

    /// Notes bytes written to the destination: follows their frames (and a close code
    /// passing) and counts them.
    pub(super) fn wrote(&self, tracker: &mut FrameTracker, bytes: &[u8]) {
        tracker.feed(bytes);
        self.noted(tracker, bytes.len());
    }

    /// Passes on the close code the tracker saw, if any, and counts `n` bytes written.
    pub(super) fn noted(&self, tracker: &FrameTracker, n: usize) {
        if let Some(code) = tracker.close_code() {
            self.shared.close_codes[self.way].store(u32::from(code) + 1, Ordering::Relaxed);
        }
        self.count(n);
    }

    /// Counts `n` bytes written to the destination.
    pub(super) fn count(&self, n: usize) {
        let own = if self.way == UP {
            &self.counters.up
        } else {
            &self.counters.down
        };
        for counter in [own, self.totals.totals()[self.way]] {
            counter.fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    /// Counts `n` bytes that went through a pipe, and notes that bytes move.
    pub(super) fn spliced(&self, n: usize) {
        self.counters.spliced.fetch_add(n as u64, Ordering::Relaxed);
        self.shared.touch(self.shared.since_start());
    }
}
