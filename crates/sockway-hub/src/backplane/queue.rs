//! The ordered queue of messages waiting to be published, which is also the outage buffer:
//! bounded by a count and a byte total, it holds what was sent while the engine was
//! unreachable and drops what comes past the bound, counting it.

use std::collections::VecDeque;
use std::sync::Mutex;

use bytes::Bytes;
use tokio::sync::{oneshot, Notify};

use super::Published;

/// One message to publish.
#[derive(Debug)]
pub(crate) struct Item {
    pub(crate) channel: String,
    pub(crate) payload: Bytes,
    /// Told how the engine took the message, when someone waits for that.
    pub(crate) reply: Option<oneshot::Sender<Published>>,
}

impl Item {
    fn size(&self) -> usize {
        self.channel.len() + self.payload.len()
    }

    /// Tells the waiting sender, if any, how the message was taken.
    pub(crate) fn answer(&mut self, outcome: Published) {
        if let Some(reply) = self.reply.take() {
            let _ = reply.send(outcome);
        }
    }
}

#[derive(Debug, Default)]
struct State {
    items: VecDeque<Item>,
    bytes: usize,
    dropped: u64,
    /// Whether the engine is reachable: while it is not, new messages are answered
    /// [`Published::Buffered`] at once.
    online: bool,
}

/// The publish queue of one server.
#[derive(Debug)]
pub(crate) struct Queue {
    state: Mutex<State>,
    max_messages: usize,
    max_bytes: usize,
    /// Wakes the publisher when a message is queued.
    pub(crate) ready: Notify,
}

impl Queue {
    pub(crate) fn new(max_messages: usize, max_bytes: usize) -> Self {
        Queue {
            state: Mutex::new(State::default()),
            max_messages,
            max_bytes,
            ready: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues `item` behind the others, or drops it when a bound would be passed; returns the
    /// number of messages dropped so far when it was dropped.
    pub(crate) fn push(&self, mut item: Item) -> Result<(), u64> {
        let mut state = self.lock();
        let size = item.size();
        if state.items.len() >= self.max_messages || state.bytes + size > self.max_bytes {
            state.dropped += 1;
            let dropped = state.dropped;
            drop(state);
            item.answer(Published::Dropped);
            return Err(dropped);
        }
        if !state.online {
            item.answer(Published::Buffered);
        }
        state.bytes += size;
        state.items.push_back(item);
        drop(state);
        self.ready.notify_one();
        Ok(())
    }

    /// Takes the oldest message to publish it.
    pub(crate) fn pop(&self) -> Option<Item> {
        let mut state = self.lock();
        let item = state.items.pop_front()?;
        state.bytes -= item.size();
        Some(item)
    }

    /// Puts back a message whose publishing failed, first in line again (past the bounds if
    /// need be: it was already counted in them).
    pub(crate) fn unpop(&self, item: Item) {
        let mut state = self.lock();
        state.bytes += item.size();
        state.items.push_front(item);
    }

    /// Records whether the engine is reachable; going offline answers every waiting sender
    /// [`Published::Buffered`].
    pub(crate) fn set_online(&self, online: bool) {
        let mut state = self.lock();
        state.online = online;
        if !online {
            for item in state.items.iter_mut() {
                item.answer(Published::Buffered);
            }
        }
    }

    /// Messages waiting, and messages dropped so far.
    pub(crate) fn counts(&self) -> (u64, u64) {
        let state = self.lock();
        (state.items.len() as u64, state.dropped)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.lock().items.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(payload: &'static [u8]) -> Item {
        Item {
            channel: "c".into(),
            payload: Bytes::from_static(payload),
            reply: None,
        }
    }

    #[test]
    fn bounds_by_count_and_bytes_and_keeps_order() {
        let queue = Queue::new(2, 100);
        queue.push(item(b"1")).unwrap();
        queue.push(item(b"2")).unwrap();
        assert_eq!(queue.push(item(b"3")), Err(1));
        let first = queue.pop().unwrap();
        assert_eq!(&first.payload[..], b"1");
        queue.unpop(first);
        assert_eq!(&queue.pop().unwrap().payload[..], b"1");
        assert_eq!(&queue.pop().unwrap().payload[..], b"2");
        assert!(queue.pop().is_none());

        let small = Queue::new(10, 4);
        small.push(item(b"ab")).unwrap();
        assert_eq!(small.push(item(b"cd")), Err(1));
        assert_eq!(small.counts(), (1, 1));
    }

    #[tokio::test]
    async fn an_offline_queue_answers_buffered_at_once() {
        let queue = Queue::new(10, 1000);
        let (reply, answer) = oneshot::channel();
        queue
            .push(Item {
                channel: "c".into(),
                payload: Bytes::new(),
                reply: Some(reply),
            })
            .unwrap();
        assert_eq!(answer.await.unwrap(), Published::Buffered);
    }
}
