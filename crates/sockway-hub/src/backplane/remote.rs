//! Answers one server waits for from another: group acknowledgements and client results,
//! keyed by an id, each forgotten when its waiter gives up.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

/// Waiters for answers of type `T`, by id.
#[derive(Debug)]
pub(crate) struct Waiters<T> {
    map: Arc<Mutex<HashMap<String, oneshot::Sender<T>>>>,
}

impl<T> Default for Waiters<T> {
    fn default() -> Self {
        Waiters {
            map: Arc::default(),
        }
    }
}

/// A registered wait; dropping it (the answer came, or the waiter timed out) forgets the id.
#[derive(Debug)]
pub(crate) struct Wait<T> {
    map: Arc<Mutex<HashMap<String, oneshot::Sender<T>>>>,
    id: String,
    /// Resolves with the answer; fails when the waiters are gone.
    pub(crate) answer: oneshot::Receiver<T>,
}

impl<T> Drop for Wait<T> {
    fn drop(&mut self) {
        if let Ok(mut map) = self.map.lock() {
            map.remove(&self.id);
        }
    }
}

impl<T> Waiters<T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, oneshot::Sender<T>>> {
        self.map
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts waiting for the answer to `id`.
    pub(crate) fn register(&self, id: String) -> Wait<T> {
        let (sender, answer) = oneshot::channel();
        self.lock().insert(id.clone(), sender);
        Wait {
            map: self.map.clone(),
            id,
            answer,
        }
    }

    /// Hands `value` to the waiter of `id`; `false` when nobody waits for it (any more).
    pub(crate) fn resolve(&self, id: &str, value: T) -> bool {
        match self.lock().remove(id) {
            Some(sender) => sender.send(value).is_ok(),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_answer_reaches_its_waiter_once_and_a_dropped_wait_is_forgotten() {
        let waiters = Waiters::<u32>::default();
        let mut wait = waiters.register("1".into());
        assert!(waiters.resolve("1", 7));
        assert!(!waiters.resolve("1", 8));
        assert_eq!((&mut wait.answer).await.unwrap(), 7);

        let dropped = waiters.register("2".into());
        drop(dropped);
        assert!(!waiters.resolve("2", 1));
        assert!(waiters.lock().is_empty());
    }
}
