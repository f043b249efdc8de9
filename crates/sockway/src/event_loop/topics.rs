//! Publish/subscribe for the event loop: each worker keeps the topics its own connections
//! subscribed to, so a publish reaches every worker once (one queued command each, not one
//! per subscriber) and each worker writes the one [`PreparedFrame`] to its subscribers.
//!
//! Publishes are corked like uWebSockets' (its loop drains every subscriber's pending
//! messages once per iteration): what a loop turn publishes is queued into each
//! subscriber's output first, and every subscriber touched is written once at the end of the
//! turn, one system call per socket however many messages it got.

use std::collections::HashMap;
use std::sync::Arc;

use sockway_proto::PreparedFrame;

use super::shared::ConnId;

/// Why a subscription was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SubscribeRefused {
    /// The connection has [`super::EventLoopOptions::max_subscriptions`] topics already.
    #[error("the connection is subscribed to {0} topics already")]
    TooMany(usize),
}

/// One worker's topics.
#[derive(Debug, Default)]
pub(super) struct Topics {
    /// Most topics one connection may subscribe to
    /// ([`super::EventLoopOptions::max_subscriptions`]).
    max: usize,
    /// The subscribers of each topic, on this worker.
    by_topic: HashMap<Arc<str>, Vec<ConnId>>,
    /// The topics of each subscribed connection, by slot key, for unsubscribing on close.
    by_conn: HashMap<u32, Vec<Arc<str>>>,
    /// Published this turn, for this worker's subscribers: delivered at its end.
    pending: Vec<(Arc<str>, PreparedFrame)>,
}

impl Topics {
    /// No topics yet; each connection may subscribe to `max` of them.
    pub(super) fn new(max: usize) -> Self {
        Self {
            max,
            ..Self::default()
        }
    }

    /// Subscribes connection `id` to `topic`; `false` when it was already.
    pub(super) fn subscribe(&mut self, id: ConnId, topic: &str) -> Result<bool, SubscribeRefused> {
        let max = self.max;
        let mine = self.by_conn.entry(id.key).or_default();
        if mine.iter().any(|t| &**t == topic) {
            return Ok(false);
        }
        if mine.len() >= max {
            if mine.is_empty() {
                self.by_conn.remove(&id.key);
            }
            return Err(SubscribeRefused::TooMany(max));
        }
        let name = match self.by_topic.get_key_value(topic) {
            Some((name, _)) => Arc::clone(name),
            None => Arc::from(topic),
        };
        mine.push(Arc::clone(&name));
        self.by_topic.entry(name).or_default().push(id);
        Ok(true)
    }

    /// Unsubscribes connection `id` from `topic`; `false` when it was not subscribed.
    pub(super) fn unsubscribe(&mut self, id: ConnId, topic: &str) -> bool {
        let Some(mine) = self.by_conn.get_mut(&id.key) else {
            return false;
        };
        let Some(at) = mine.iter().position(|t| &**t == topic) else {
            return false;
        };
        mine.swap_remove(at);
        if mine.is_empty() {
            self.by_conn.remove(&id.key);
        }
        self.remove_subscriber(topic, id);
        true
    }

    /// Forgets every subscription of the connection in slot `key` (it closed).
    pub(super) fn remove_conn(&mut self, id: ConnId) {
        if let Some(mine) = self.by_conn.remove(&id.key) {
            for topic in mine {
                self.remove_subscriber(&topic, id);
            }
        }
    }

    fn remove_subscriber(&mut self, topic: &str, id: ConnId) {
        if let Some(subscribers) = self.by_topic.get_mut(topic) {
            subscribers.retain(|s| s.key != id.key);
            if subscribers.is_empty() {
                self.by_topic.remove(topic);
            }
        }
    }

    /// Queues `frame` for this worker's subscribers of `topic`, delivered at the turn's end.
    pub(super) fn queue(&mut self, topic: &str, frame: PreparedFrame) {
        if let Some((name, _)) = self.by_topic.get_key_value(topic) {
            self.pending.push((Arc::clone(name), frame));
        }
    }

    /// Whether publishes wait for delivery.
    pub(super) fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The publishes of this turn, leaving an empty list (with its room) in their place.
    pub(super) fn take_pending(&mut self) -> Vec<(Arc<str>, PreparedFrame)> {
        std::mem::take(&mut self.pending)
    }

    /// Gives back the list [`Topics::take_pending`] took, emptied, to keep its room.
    pub(super) fn restore_pending(&mut self, mut list: Vec<(Arc<str>, PreparedFrame)>) {
        list.clear();
        if self.pending.is_empty() {
            self.pending = list;
        }
    }

    /// The subscribers of `topic` on this worker.
    pub(super) fn subscribers(&self, topic: &str) -> &[ConnId] {
        self.by_topic.get(topic).map_or(&[], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(key: u32) -> ConnId {
        ConnId {
            worker: 0,
            key,
            generation: key,
        }
    }

    #[test]
    fn subscribe_unsubscribe_and_close() {
        let mut topics = Topics::new(8);
        assert_eq!(topics.subscribe(id(1), "a"), Ok(true));
        assert_eq!(topics.subscribe(id(1), "a"), Ok(false));
        assert_eq!(topics.subscribe(id(2), "a"), Ok(true));
        assert_eq!(topics.subscribe(id(2), "b"), Ok(true));
        assert_eq!(topics.subscribers("a"), &[id(1), id(2)]);
        assert!(topics.unsubscribe(id(1), "a"));
        assert!(!topics.unsubscribe(id(1), "a"));
        assert_eq!(topics.subscribers("a"), &[id(2)]);
        topics.remove_conn(id(2));
        assert!(topics.subscribers("a").is_empty() && topics.subscribers("b").is_empty());
        assert!(topics.by_conn.is_empty());
    }

    #[test]
    fn the_subscription_limit_is_per_connection() {
        let mut topics = Topics::new(2);
        assert_eq!(topics.subscribe(id(1), "a"), Ok(true));
        assert_eq!(topics.subscribe(id(1), "b"), Ok(true));
        assert_eq!(
            topics.subscribe(id(1), "c"),
            Err(SubscribeRefused::TooMany(2))
        );
        assert_eq!(topics.subscribe(id(2), "c"), Ok(true));
        let mut none = Topics::new(0);
        assert_eq!(
            none.subscribe(id(3), "c"),
            Err(SubscribeRefused::TooMany(0))
        );
        assert!(none.by_conn.is_empty());
    }

    #[test]
    fn only_topics_with_subscribers_queue() {
        let mut topics = Topics::new(8);
        topics.queue("nobody", PreparedFrame::text("x"));
        assert!(!topics.has_pending());
        topics.subscribe(id(1), "a").unwrap();
        topics.queue("a", PreparedFrame::text("x"));
        assert!(topics.has_pending());
        let list = topics.take_pending();
        assert_eq!(list.len(), 1);
        topics.restore_pending(list);
        assert!(!topics.has_pending());
    }
}
