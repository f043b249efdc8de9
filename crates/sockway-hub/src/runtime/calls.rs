//! What a connection keeps for its calls: the invocation slots, the running calls, the items
//! and the client-to-server streams. Most connections sit idle between calls, so none of it
//! exists until a call or hook needs it, and it goes again once nothing uses it: an idle
//! connection holds no semaphore, map or items (docs/benchmarks/hub.md, "Idle memory per hub
//! connection", change 21).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::args::StreamEvent;
use crate::context::Items;

/// A running call, for `CancelInvocation` and the stream limit.
pub(super) struct Running {
    pub token: CancellationToken,
    /// Whether it is a server-to-client stream.
    pub stream: bool,
}

/// The running calls by invocation id.
pub(super) type RunningMap = Mutex<HashMap<String, Running>>;

/// The state a connection's calls share, created on first use ([`Calls::new`]).
pub(super) struct Calls {
    /// One permit per invocation that may run at once; a running call holds its permit.
    pub slots: Arc<Semaphore>,
    /// Running invocations and server-to-client streams by invocation id, for
    /// `CancelInvocation`; each call's task holds a clone until it ends.
    pub running: Arc<RunningMap>,
    /// The connection's items (ASP.NET Core's `HubCallerContext.Items`), shared by every
    /// context of the connection.
    pub items: Items,
}

impl Calls {
    /// The calls' state with `parallel` invocations allowed at once.
    pub fn new(parallel: usize) -> Self {
        Calls {
            slots: Arc::new(Semaphore::new(parallel.max(1))),
            running: Arc::new(Mutex::new(HashMap::new())),
            items: Items::default(),
        }
    }

    /// Whether nothing but the connection holds any of it and it holds nothing: no call
    /// runs (each holds a permit and the map), no context is alive (each holds the items),
    /// and no item is stored. Dropping it then and making a new one later is the same as
    /// keeping it.
    pub fn unused(&self) -> bool {
        Arc::strong_count(&self.slots) == 1
            && Arc::strong_count(&self.running) == 1
            && self.running.lock().is_ok_and(|running| running.is_empty())
            && self.items.is_unused()
    }
}

/// The sender of each open client-to-server stream, by stream id: boxed, and absent while
/// there is none (an empty `HashMap` allocates nothing but is 48 bytes of every idle
/// connection's future; the box is 8).
#[derive(Default)]
#[allow(clippy::box_collection)]
pub(super) struct Uploads(Option<Box<HashMap<String, mpsc::Sender<StreamEvent>>>>);

impl Uploads {
    /// Opens stream `id`.
    pub fn insert(&mut self, id: String, sender: mpsc::Sender<StreamEvent>) {
        self.0
            .get_or_insert_with(Default::default)
            .insert(id, sender);
    }

    /// The sender of stream `id`.
    pub fn get(&self, id: &str) -> Option<&mpsc::Sender<StreamEvent>> {
        self.0.as_ref()?.get(id)
    }

    /// Forgets stream `id`, returning its sender.
    pub fn remove(&mut self, id: &str) -> Option<mpsc::Sender<StreamEvent>> {
        let sender = self.0.as_mut()?.remove(id);
        self.free_if_empty();
        sender
    }

    /// Keeps the streams for which `keep` says true.
    pub fn retain(&mut self, keep: impl FnMut(&String, &mut mpsc::Sender<StreamEvent>) -> bool) {
        if let Some(uploads) = &mut self.0 {
            uploads.retain(keep);
        }
        self.free_if_empty();
    }

    /// How many streams are open.
    pub fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |uploads| uploads.len())
    }

    /// Forgets every stream (their methods see them end).
    pub fn clear(&mut self) {
        self.0 = None;
    }

    fn free_if_empty(&mut self) {
        if self.0.as_ref().is_some_and(|uploads| uploads.is_empty()) {
            self.0 = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_unused_only_when_nothing_holds_them() {
        let calls = Calls::new(1);
        assert!(calls.unused());
        let permit = calls.slots.clone().try_acquire_owned().unwrap();
        assert!(!calls.unused(), "a running call holds a permit");
        drop(permit);
        let items = calls.items.clone();
        assert!(!calls.unused(), "a context holds the items");
        drop(items);
        calls.items.insert(7u8);
        assert!(!calls.unused(), "an item is stored");
        calls.items.remove::<u8>();
        let running = calls.running.clone();
        assert!(!calls.unused(), "a call's task holds the map");
        drop(running);
        assert!(calls.unused());
    }

    #[test]
    fn uploads_hold_no_map_while_empty() {
        let mut uploads = Uploads::default();
        let (sender, receiver) = mpsc::channel(1);
        uploads.insert("1".into(), sender);
        assert_eq!(uploads.len(), 1);
        assert!(uploads.get("1").is_some());
        drop(receiver);
        uploads.retain(|_, sender| !sender.is_closed());
        assert_eq!(uploads.len(), 0);
        assert!(uploads.0.is_none());
        assert!(uploads.remove("1").is_none());
    }
}
