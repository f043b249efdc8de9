//! A bounded channel with many senders and one receiver that holds no allocation while it is
//! empty: the queues between a connection's transport and the hub.
//!
//! tokio's `mpsc` allocates its first block of 32 slots, and a channel state padded to cache
//! lines, when it is created: about 1.5 KB per channel whether anything is ever queued. A hub
//! holds two queues per connection, and most connections are idle most of the time, so these
//! queues keep their items in a `VecDeque` that is allocated by the first item and freed
//! again when the receiver takes the last one (docs/benchmarks/hub.md, "Idle memory").

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;

/// A new channel holding at most `capacity` items (at least one).
pub fn bounded<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    bounded_with(capacity, ())
}

/// A new channel like [`bounded`], with `extra` state that every handle reaches through
/// `extra()`, kept in the channel's one allocation: a user that needs more shared state per
/// channel (the outbound link's close flag and lease) then needs no allocation of its own,
/// and each handle is one pointer.
pub fn bounded_with<T, X>(capacity: usize, extra: X) -> (Sender<T, X>, Receiver<T, X>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            items: VecDeque::new(),
            senders: 1,
            receiver: true,
        }),
        readable: Notify::new(),
        writable: Notify::new(),
        capacity: capacity.max(1),
        extra,
    });
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver { shared },
    )
}

struct Shared<T, X> {
    state: Mutex<State<T>>,
    /// Wakes the receiver: an item arrived, or the last sender went.
    readable: Notify,
    /// Wakes senders waiting for room: an item was taken, or the receiver went.
    writable: Notify,
    capacity: usize,
    extra: X,
}

struct State<T> {
    items: VecDeque<T>,
    senders: usize,
    receiver: bool,
}

impl<T, X> Shared<T, X> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn describe(&self, side: &str, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct(side)
            .field("queued", &state.items.len())
            .field("capacity", &self.capacity)
            .finish()
    }
}

/// Why [`Sender::try_send`] gave the item back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrySendError<T> {
    /// The channel holds its capacity.
    #[error("the channel is full")]
    Full(T),
    /// The receiver is gone.
    #[error("the channel's receiver is gone")]
    Closed(T),
}

/// [`Sender::send`] found the receiver gone; the item comes back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the channel's receiver is gone")]
pub struct Closed<T>(pub T);

/// The sending side; clone it for more senders. The receiver sees the end of the channel
/// when every sender is dropped.
pub struct Sender<T, X = ()> {
    shared: Arc<Shared<T, X>>,
}

impl<T, X> std::fmt::Debug for Sender<T, X> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.shared.describe("Sender", f)
    }
}

impl<T, X> Clone for Sender<T, X> {
    fn clone(&self) -> Self {
        self.shared.lock().senders += 1;
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<T, X> Drop for Sender<T, X> {
    fn drop(&mut self) {
        let last = {
            let mut state = self.shared.lock();
            state.senders -= 1;
            state.senders == 0
        };
        if last {
            self.shared.readable.notify_one();
        }
    }
}

impl<T, X> Sender<T, X> {
    /// The state given to [`bounded_with`].
    pub fn extra(&self) -> &X {
        &self.shared.extra
    }

    /// Queues `item` if there is room, without waiting.
    pub fn try_send(&self, item: T) -> Result<(), TrySendError<T>> {
        {
            let mut state = self.shared.lock();
            if !state.receiver {
                return Err(TrySendError::Closed(item));
            }
            if state.items.len() >= self.shared.capacity {
                return Err(TrySendError::Full(item));
            }
            state.items.push_back(item);
        }
        self.shared.readable.notify_one();
        Ok(())
    }

    /// Queues `item`, waiting while the channel is full; fails once the receiver is gone.
    pub async fn send(&self, item: T) -> Result<(), Closed<T>> {
        let mut item = item;
        loop {
            let room = self.shared.writable.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            match self.try_send(item) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Closed(back)) => return Err(Closed(back)),
                Err(TrySendError::Full(back)) => item = back,
            }
            room.await;
        }
    }

    /// Whether the receiver is gone.
    pub fn is_closed(&self) -> bool {
        !self.shared.lock().receiver
    }

    /// Wakes the receiver's [`recv_unless`](Receiver::recv_unless) to check its condition.
    pub fn wake_receiver(&self) {
        self.shared.readable.notify_one();
    }
}

/// The receiving side.
pub struct Receiver<T, X = ()> {
    shared: Arc<Shared<T, X>>,
}

impl<T, X> std::fmt::Debug for Receiver<T, X> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.shared.describe("Receiver", f)
    }
}

impl<T, X> Drop for Receiver<T, X> {
    fn drop(&mut self) {
        let items = {
            let mut state = self.shared.lock();
            state.receiver = false;
            std::mem::take(&mut state.items)
        };
        drop(items);
        self.shared.writable.notify_waiters();
    }
}

impl<T, X> Receiver<T, X> {
    /// The next item, waiting for one; `None` once every sender is gone and nothing is left.
    pub async fn recv(&mut self) -> Option<T> {
        self.recv_unless(|| false).await
    }

    /// A handle that takes items for this receiver while the receiver itself stays where it
    /// is (see [`Taker`]).
    pub fn taker(&self) -> Taker<T, X> {
        Taker(self.shared.clone())
    }

    /// Like [`recv`](Self::recv), but `None` as soon as `stop` holds while nothing is queued
    /// (checked again whenever a sender calls [`Sender::wake_receiver`]): one wait where a
    /// select over this and a second wake-up would hold two, for each idle connection
    /// (docs/benchmarks/hub.md, "Idle memory").
    pub async fn recv_unless(&mut self, stop: impl Fn() -> bool) -> Option<T> {
        self.shared.recv_unless(stop).await
    }

    /// An item already queued, without waiting. The queue's memory is freed when it empties.
    pub fn try_recv(&mut self) -> Option<T> {
        self.shared.take()
    }

    /// A handle that wakes this receiver's [`recv_unless`](Self::recv_unless) without being
    /// a sender (the channel still ends with its last sender).
    pub fn waker(&self) -> Waker<T, X> {
        Waker(self.shared.clone())
    }

    /// Drops every queued item.
    pub fn clear(&mut self) {
        self.shared.clear();
    }

    /// Whether every sender is gone.
    pub fn is_closed(&self) -> bool {
        self.shared.lock().senders == 0
    }

    /// The state given to [`bounded_with`].
    pub fn extra(&self) -> &X {
        &self.shared.extra
    }
}

impl<T, X> Shared<T, X> {
    async fn recv_unless(&self, stop: impl Fn() -> bool) -> Option<T> {
        loop {
            let arrived = self.readable.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            if let Some(item) = self.take() {
                return Some(item);
            }
            if stop() || self.lock().senders == 0 {
                return self.take();
            }
            arrived.await;
        }
    }

    fn take(&self) -> Option<T> {
        let item = {
            let mut state = self.lock();
            let item = state.items.pop_front()?;
            if state.items.is_empty() {
                state.items = VecDeque::new();
            }
            item
        };
        self.writable.notify_one();
        Some(item)
    }

    fn clear(&self) {
        let items = std::mem::take(&mut self.lock().items);
        drop(items);
        self.writable.notify_waiters();
    }
}

/// Takes items on behalf of a [`Receiver`] that stays where it is (see
/// [`Receiver::taker`]): the receiver's owner can lend its queue to one consumer at a time
/// without moving the receiver, whose drop still ends the channel. Using two takers (or a
/// taker and the receiver) at once is not unsafe, but each item goes to only one of them;
/// the lender keeps to one at a time.
pub struct Taker<T, X = ()>(Arc<Shared<T, X>>);

impl<T, X> std::fmt::Debug for Taker<T, X> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.describe("Taker", f)
    }
}

impl<T, X> Taker<T, X> {
    /// As [`Receiver::recv_unless`] (`stop` may look at this taker's
    /// [`extra`](Self::extra)).
    pub async fn recv_unless(&self, stop: impl Fn() -> bool) -> Option<T> {
        self.0.recv_unless(stop).await
    }

    /// As [`Receiver::try_recv`].
    pub fn try_recv(&mut self) -> Option<T> {
        self.0.take()
    }

    /// As [`Receiver::clear`].
    pub fn clear(&mut self) {
        self.0.clear();
    }

    /// As [`Receiver::waker`].
    pub fn waker(&self) -> Waker<T, X> {
        Waker(self.0.clone())
    }

    /// The state given to [`bounded_with`].
    pub fn extra(&self) -> &X {
        &self.0.extra
    }
}

/// Wakes a [`Receiver`] waiting in [`recv_unless`](Receiver::recv_unless) to check its
/// condition again (see [`Receiver::waker`]).
pub struct Waker<T, X = ()>(Arc<Shared<T, X>>);

impl<T, X> std::fmt::Debug for Waker<T, X> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.describe("Waker", f)
    }
}

impl<T, X> Waker<T, X> {
    /// Wakes the receiver.
    pub fn wake(&self) {
        self.0.readable.notify_one();
    }

    /// The state given to [`bounded_with`].
    pub fn extra(&self) -> &X {
        &self.0.extra
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const WAIT: Duration = Duration::from_secs(20);

    #[tokio::test]
    async fn items_arrive_in_order_and_the_end_follows_the_last_sender() {
        let (tx, mut rx) = bounded(4);
        let second = tx.clone();
        tx.try_send(1).unwrap();
        second.send(2).await.unwrap();
        drop(tx);
        assert_eq!(rx.recv().await, Some(1));
        assert!(!rx.is_closed(), "one sender is left");
        drop(second);
        assert_eq!(rx.recv().await, Some(2), "queued items outlive the senders");
        assert_eq!(rx.recv().await, None);
    }

    #[tokio::test]
    async fn a_full_channel_refuses_try_send_and_holds_send_until_room() {
        let (tx, mut rx) = bounded(1);
        tx.try_send(1).unwrap();
        assert_eq!(tx.try_send(2), Err(TrySendError::Full(2)));
        let waiting = tokio::spawn(async move { tx.send(3).await });
        assert_eq!(rx.recv().await, Some(1));
        let sent = tokio::time::timeout(WAIT, waiting).await.unwrap().unwrap();
        assert_eq!(sent, Ok(()));
        assert_eq!(rx.recv().await, Some(3));
    }

    #[tokio::test]
    async fn a_dropped_receiver_fails_waiting_and_later_senders() {
        let (tx, rx) = bounded(1);
        tx.try_send(1).unwrap();
        let tx2 = tx.clone();
        let waiting = tokio::spawn(async move { tx2.send(2).await });
        tokio::task::yield_now().await;
        drop(rx);
        let sent = tokio::time::timeout(WAIT, waiting).await.unwrap().unwrap();
        assert_eq!(sent, Err(Closed(2)));
        assert!(tx.is_closed());
        assert_eq!(tx.try_send(3), Err(TrySendError::Closed(3)));
    }

    #[tokio::test]
    async fn a_waiting_receiver_wakes_for_an_item_and_for_the_end() {
        let (tx, mut rx) = bounded::<u8>(2);
        let reader = tokio::spawn(async move { (rx.recv().await, rx.recv().await) });
        tokio::task::yield_now().await;
        tx.try_send(7).unwrap();
        tokio::task::yield_now().await;
        drop(tx);
        let read = tokio::time::timeout(WAIT, reader).await.unwrap().unwrap();
        assert_eq!(read, (Some(7), None));
    }

    #[tokio::test]
    async fn recv_unless_stops_when_woken_with_its_condition_met() {
        let (tx, mut rx) = bounded::<u8>(2);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let waker = rx.waker();
        let flag = stop.clone();
        let reader = tokio::spawn(async move {
            let first = rx
                .recv_unless(|| flag.load(std::sync::atomic::Ordering::Acquire))
                .await;
            let second = rx
                .recv_unless(|| flag.load(std::sync::atomic::Ordering::Acquire))
                .await;
            (first, second, rx)
        });
        tx.try_send(1).unwrap();
        tokio::task::yield_now().await;
        stop.store(true, std::sync::atomic::Ordering::Release);
        waker.wake();
        let (first, second, rx) = tokio::time::timeout(WAIT, reader).await.unwrap().unwrap();
        assert_eq!(first, Some(1));
        assert_eq!(second, None, "the condition ends the wait, not the channel");
        assert!(
            !rx.is_closed(),
            "a waker is not a sender, and the sender is still there"
        );
        drop(tx);
        assert!(rx.is_closed());
    }

    #[tokio::test]
    async fn clear_drops_what_is_queued() {
        let (tx, mut rx) = bounded(2);
        tx.try_send(1).unwrap();
        tx.try_send(2).unwrap();
        rx.clear();
        assert_eq!(rx.try_recv(), None);
        tx.try_send(3).unwrap();
        assert_eq!(rx.try_recv(), Some(3));
    }
}
