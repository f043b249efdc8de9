//! The bookkeeping of stateful reconnect for one connection (`HubProtocol.md`, "Stateful
//! Reconnect"; the reference's `MessageBuffer`): sequence ids of sent trackable messages, the
//! bounded buffer of those not yet acknowledged, and the duplicate filter for received ones.

use std::collections::VecDeque;

use bytes::Bytes;

/// Sent messages kept for replay, and where the client's own numbering stands.
#[derive(Debug)]
pub(crate) struct Replay {
    /// The sequence id the next trackable message sent gets (ids start at 1).
    next_id: u64,
    /// Unacknowledged trackable messages, oldest first, with their ids.
    entries: VecDeque<(u64, Bytes)>,
    /// Their total size.
    bytes: usize,
    /// The buffer's limit in bytes (`StatefulReconnectBufferSize`).
    limit: usize,
    /// The highest id queued to the transport; later entries wait for room in the queue.
    written_through: u64,
    /// The id the next trackable message received from the client has.
    next_receive: u64,
    /// The highest id received and processed.
    latest_received: u64,
    /// The highest id the server has acknowledged to the client.
    last_acked: u64,
    /// After a reconnect, received messages are ignored until the client's `Sequence`.
    waiting_for_sequence: bool,
}

/// What to do with a received message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Receive {
    /// Process it.
    Process,
    /// A duplicate, or a message before the client's `Sequence`: ignore it.
    Ignore,
}

impl Replay {
    /// An empty buffer holding up to `limit` bytes.
    pub(crate) fn new(limit: usize) -> Self {
        Replay {
            next_id: 1,
            entries: VecDeque::new(),
            bytes: 0,
            limit,
            written_through: 0,
            next_receive: 1,
            latest_received: 0,
            last_acked: 0,
            waiting_for_sequence: false,
        }
    }

    /// Whether the buffer is over its limit: the reference admits a message while the total is
    /// at most the limit, so one message may take it over, and then waits for an `Ack`.
    pub(crate) fn is_full(&self) -> bool {
        self.bytes > self.limit
    }

    /// Numbers and keeps a trackable message; it is not yet written.
    pub(crate) fn push(&mut self, frame: Bytes) {
        self.bytes += frame.len();
        self.entries.push_back((self.next_id, frame));
        self.next_id += 1;
    }

    /// The kept messages not yet written to the transport, oldest first.
    pub(crate) fn unwritten(&self) -> impl Iterator<Item = &(u64, Bytes)> {
        let after = self.written_through;
        self.entries.iter().filter(move |(id, _)| *id > after)
    }

    /// Records that every message up to `id` went to the transport.
    pub(crate) fn written(&mut self, id: u64) {
        self.written_through = self.written_through.max(id);
    }

    /// Drops every message the client acknowledged (`Ack`, up to and including `id`).
    pub(crate) fn ack(&mut self, id: u64) {
        while let Some((first, frame)) = self.entries.front() {
            if *first > id {
                break;
            }
            self.bytes -= frame.len();
            self.entries.pop_front();
        }
    }

    /// A new transport took over: every kept message must be written again, after a
    /// `Sequence` carrying the returned id (the first kept message's, or the next one's when
    /// nothing is kept, as the reference's `ResendAsync` does). Received messages are ignored
    /// until the client's own `Sequence`.
    pub(crate) fn reconnected(&mut self) -> u64 {
        self.written_through = 0;
        self.waiting_for_sequence = true;
        self.entries.front().map_or(self.next_id, |(id, _)| *id)
    }

    /// Whether to process a received message (`trackable` per the spec); counts trackable ones.
    pub(crate) fn receive(&mut self, trackable: bool, is_sequence: bool) -> Receive {
        if self.waiting_for_sequence {
            if is_sequence {
                self.waiting_for_sequence = false;
                return Receive::Process;
            }
            return Receive::Ignore;
        }
        if !trackable {
            return Receive::Process;
        }
        let id = self.next_receive;
        self.next_receive += 1;
        if id <= self.latest_received {
            return Receive::Ignore;
        }
        self.latest_received = id;
        Receive::Process
    }

    /// The client's `Sequence`: its next message has `id`. An id beyond what was received is a
    /// protocol error (the reference's "Sequence ID greater than amount of messages we've
    /// received.").
    pub(crate) fn sequence(&mut self, id: u64) -> Result<(), String> {
        if id > self.next_receive {
            return Err("Sequence ID greater than amount of messages we've received.".into());
        }
        self.next_receive = id;
        Ok(())
    }

    /// The id to acknowledge to the client, when it received something since the last `Ack`.
    pub(crate) fn ack_due(&mut self) -> Option<u64> {
        if self.latest_received > self.last_acked {
            self.last_acked = self.latest_received;
            return Some(self.latest_received);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_trim_and_free_room() {
        let mut replay = Replay::new(10);
        replay.push(Bytes::from_static(b"123456"));
        assert!(!replay.is_full());
        replay.push(Bytes::from_static(b"123456"));
        assert!(replay.is_full());
        replay.ack(1);
        assert!(!replay.is_full());
        assert_eq!(
            replay.unwritten().map(|(id, _)| *id).collect::<Vec<_>>(),
            [2]
        );
    }

    #[test]
    fn reconnect_replays_from_the_first_unacknowledged() {
        let mut replay = Replay::new(100);
        for _ in 0..3 {
            replay.push(Bytes::from_static(b"x"));
        }
        replay.written(3);
        assert_eq!(replay.unwritten().count(), 0);
        replay.ack(1);
        assert_eq!(replay.reconnected(), 2);
        assert_eq!(replay.unwritten().count(), 2);
        replay.ack(3);
        assert_eq!(replay.reconnected(), 4);
    }

    #[test]
    fn duplicates_after_a_sequence_are_ignored() {
        let mut replay = Replay::new(100);
        assert_eq!(replay.receive(true, false), Receive::Process);
        assert_eq!(replay.receive(true, false), Receive::Process);
        replay.reconnected();
        assert_eq!(replay.receive(true, false), Receive::Ignore);
        assert_eq!(replay.receive(false, true), Receive::Process);
        replay.sequence(2).unwrap();
        assert_eq!(replay.receive(true, false), Receive::Ignore);
        assert_eq!(replay.receive(true, false), Receive::Process);
        assert!(replay.sequence(10).is_err());
        assert_eq!(replay.ack_due(), Some(3));
        assert_eq!(replay.ack_due(), None);
    }
}
