//! Publish/subscribe for sockets driven by tasks (the `async` server, or any [`WebSocket`]):
//! a [`Topics`] registry, a [`Subscriber`] per socket, and [`Topics::publish`], which frames
//! a message once ([`PreparedFrame`]) and hands the same bytes to every subscriber, from any
//! thread. uWebSockets' `subscribe` and `publish` for task-per-connection servers; the event
//! loop has its own (`sockway::event_loop::Conn::subscribe`).
//!
//! Each subscriber has a mailbox bounded in bytes ([`TopicsOptions::max_queued_bytes`]): a
//! publish never waits, and a subscriber whose task does not keep up misses messages (counted
//! in [`Subscriber::missed`]) instead of slowing the publisher or the other subscribers. The
//! socket's task takes frames with [`Subscriber::recv`] (next to its `recv` in a `select!`)
//! and writes them with [`WebSocket::feed_prepared`] and one flush for all that waited, so a
//! burst costs one write.
//!
//! [`WebSocket`]: crate::WebSocket
//! [`WebSocket::feed_prepared`]: crate::WebSocket::feed_prepared

use std::collections::{HashMap, VecDeque};
use std::future::poll_fn;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use sockway_proto::{Message, PreparedFrame};

/// Limits of a [`Topics`] registry; each has a default and a setter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicsOptions {
    /// Most frame bytes waiting in one subscriber's mailbox; a publish that would pass it is
    /// dropped for that subscriber. Default 1 MiB.
    pub max_queued_bytes: usize,
    /// Most topics one subscriber may subscribe to. Default 1,024.
    pub max_subscriptions: usize,
}

impl Default for TopicsOptions {
    fn default() -> Self {
        Self {
            max_queued_bytes: 1 << 20,
            max_subscriptions: 1024,
        }
    }
}

impl TopicsOptions {
    /// Sets [`TopicsOptions::max_queued_bytes`].
    pub fn max_queued_bytes(mut self, bytes: usize) -> Self {
        self.max_queued_bytes = bytes;
        self
    }

    /// Sets [`TopicsOptions::max_subscriptions`].
    pub fn max_subscriptions(mut self, max: usize) -> Self {
        self.max_subscriptions = max;
        self
    }
}

/// Why a subscription was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SubscribeRefused {
    /// The subscriber has [`TopicsOptions::max_subscriptions`] topics already.
    #[error("subscribed to {0} topics already")]
    TooMany(usize),
}

/// A topic registry, cheap to clone and shared by every thread that publishes.
#[derive(Debug, Clone, Default)]
pub struct Topics {
    inner: Arc<Registry>,
}

/// Each topic's subscribers: their ids and mailboxes.
type Subscribers = HashMap<Arc<str>, Vec<(u64, Arc<Mailbox>)>>;

#[derive(Debug, Default)]
struct Registry {
    options: TopicsOptions,
    next_id: AtomicU64,
    topics: Mutex<Subscribers>,
}

/// One subscriber's waiting frames.
#[derive(Debug, Default)]
struct Mailbox {
    state: Mutex<MailboxState>,
}

#[derive(Debug, Default)]
struct MailboxState {
    frames: VecDeque<PreparedFrame>,
    bytes: usize,
    missed: u64,
    waker: Option<Waker>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Topics {
    /// An empty registry with `options`.
    pub fn new(options: TopicsOptions) -> Self {
        Self {
            inner: Arc::new(Registry {
                options,
                ..Registry::default()
            }),
        }
    }

    /// A subscriber (one per socket), subscribed to nothing yet; dropping it unsubscribes it
    /// from everything.
    pub fn subscriber(&self) -> Subscriber {
        Subscriber {
            id: self.inner.next_id.fetch_add(1, Ordering::Relaxed),
            mailbox: Arc::default(),
            topics: self.clone(),
            subscribed: Vec::new(),
        }
    }

    /// Sends `message` to every subscriber of `topic`; returns how many got it (those
    /// whose mailbox was full missed it).
    pub fn publish(&self, topic: &str, message: &Message) -> usize {
        self.publish_prepared(topic, &PreparedFrame::new(message))
    }

    /// [`Topics::publish`] of a frame prepared already.
    pub fn publish_prepared(&self, topic: &str, frame: &PreparedFrame) -> usize {
        let limit = self.inner.options.max_queued_bytes;
        let topics = lock(&self.inner.topics);
        let Some(subscribers) = topics.get(topic) else {
            return 0;
        };
        let mut delivered = 0;
        for (_, mailbox) in subscribers {
            let mut state = lock(&mailbox.state);
            if state.bytes + frame.len() > limit {
                state.missed += 1;
                continue;
            }
            state.bytes += frame.len();
            state.frames.push_back(frame.clone());
            delivered += 1;
            if let Some(waker) = state.waker.take() {
                drop(state);
                waker.wake();
            }
        }
        delivered
    }

    /// How many subscribers `topic` has.
    pub fn subscribers(&self, topic: &str) -> usize {
        lock(&self.inner.topics).get(topic).map_or(0, Vec::len)
    }
}

/// One socket's subscriptions and mailbox (see the module documentation).
#[derive(Debug)]
pub struct Subscriber {
    id: u64,
    mailbox: Arc<Mailbox>,
    topics: Topics,
    subscribed: Vec<Arc<str>>,
}

impl Subscriber {
    /// Subscribes to `topic`; `Ok(false)` when subscribed already.
    pub fn subscribe(&mut self, topic: &str) -> Result<bool, SubscribeRefused> {
        if self.subscribed.iter().any(|t| &**t == topic) {
            return Ok(false);
        }
        let max = self.topics.inner.options.max_subscriptions;
        if self.subscribed.len() >= max {
            return Err(SubscribeRefused::TooMany(max));
        }
        let mut topics = lock(&self.topics.inner.topics);
        let name = match topics.get_key_value(topic) {
            Some((name, _)) => Arc::clone(name),
            None => Arc::from(topic),
        };
        let entry = (self.id, Arc::clone(&self.mailbox));
        topics.entry(Arc::clone(&name)).or_default().push(entry);
        self.subscribed.push(name);
        Ok(true)
    }

    /// Unsubscribes from `topic`; `false` when not subscribed.
    pub fn unsubscribe(&mut self, topic: &str) -> bool {
        let Some(at) = self.subscribed.iter().position(|t| &**t == topic) else {
            return false;
        };
        let name = self.subscribed.swap_remove(at);
        self.remove_from(&mut lock(&self.topics.inner.topics), &name);
        true
    }

    fn remove_from(&self, topics: &mut Subscribers, name: &str) {
        if let Some(list) = topics.get_mut(name) {
            list.retain(|(id, _)| *id != self.id);
            if list.is_empty() {
                topics.remove(name);
            }
        }
    }

    /// The next published frame, waiting for one. Cancel-safe.
    pub async fn recv(&mut self) -> PreparedFrame {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Polls for the next published frame.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<PreparedFrame> {
        let mut state = lock(&self.mailbox.state);
        match state.frames.pop_front() {
            Some(frame) => {
                state.bytes -= frame.len();
                Poll::Ready(frame)
            }
            None => {
                state.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    /// The next published frame if one is waiting.
    pub fn try_recv(&mut self) -> Option<PreparedFrame> {
        let mut state = lock(&self.mailbox.state);
        let frame = state.frames.pop_front()?;
        state.bytes -= frame.len();
        Some(frame)
    }

    /// How many published frames this subscriber missed because its mailbox was full.
    pub fn missed(&self) -> u64 {
        lock(&self.mailbox.state).missed
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let mut topics = lock(&self.topics.inner.topics);
        for name in std::mem::take(&mut self.subscribed) {
            self.remove_from(&mut topics, &name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_subscriber_gets_the_same_frame_and_dropping_unsubscribes() {
        let topics = Topics::default();
        let mut a = topics.subscriber();
        let mut b = topics.subscriber();
        assert_eq!(a.subscribe("t"), Ok(true));
        assert_eq!(a.subscribe("t"), Ok(false));
        assert_eq!(b.subscribe("t"), Ok(true));
        assert_eq!(topics.publish("t", &Message::text("hi")), 2);
        let (fa, fb) = (a.recv().await, b.recv().await);
        assert_eq!(fa, PreparedFrame::text("hi"));
        // One allocation for both: the same bytes.
        assert_eq!(fa.frame().as_ptr(), fb.frame().as_ptr());
        drop(b);
        assert_eq!(topics.subscribers("t"), 1);
        assert!(a.unsubscribe("t"));
        assert!(!a.unsubscribe("t"));
        assert_eq!(topics.subscribers("t"), 0);
        assert_eq!(topics.publish("t", &Message::text("nobody")), 0);
        assert_eq!(a.try_recv(), None);
    }

    #[test]
    fn a_full_mailbox_misses_messages_and_others_still_get_them() {
        let topics = Topics::new(TopicsOptions::default().max_queued_bytes(100));
        let mut slow = topics.subscriber();
        let mut fast = topics.subscriber();
        slow.subscribe("t").unwrap();
        fast.subscribe("t").unwrap();
        let message = Message::binary(vec![0u8; 40]);
        for _ in 0..5 {
            topics.publish("t", &message);
            assert!(fast.try_recv().is_some());
        }
        // 42-byte frames: two fit in 100 bytes.
        assert_eq!(slow.missed(), 3);
        assert_eq!(fast.missed(), 0);
        assert!(slow.try_recv().is_some() && slow.try_recv().is_some());
        assert!(slow.try_recv().is_none());
    }

    #[test]
    fn the_subscription_limit_holds() {
        let topics = Topics::new(TopicsOptions::default().max_subscriptions(1));
        let mut one = topics.subscriber();
        assert_eq!(one.subscribe("a"), Ok(true));
        assert_eq!(one.subscribe("b"), Err(SubscribeRefused::TooMany(1)));
    }
}
