//! The relay's writes that wait: keep-alive pings, backlogs, and the close at the end
//! (split from `relay.rs`, whose copy loop only writes what the destination takes at once).

use std::future::Future;
use std::task::Poll;

use tokio::io::AsyncWriteExt;

use super::{close_frame, CloseOrder, FrameTracker, Pump, Totals, WriteSide, Written, UP};

impl<T: Totals + ?Sized> Pump<T> {
    /// Writes the keep-alive ping towards the destination (called at a frame boundary).
    pub(super) async fn ping(&self, dst: &mut WriteSide) -> Written {
        let Some(heartbeat) = self.shared.heartbeat.as_ref() else {
            return Written::All;
        };
        let side = 1 - self.way;
        let frame = heartbeat.ping_frame(side);
        // Noted before writing: an answer may come back before the write returns.
        heartbeat.ping_sent(side, self.shared.start.elapsed());
        match self.unless_stopped(dst.write_all(&frame)).await {
            Ok(Ok(())) => Written::All,
            Ok(Err(_)) => Written::Failed,
            Err(order) => Written::Stopped(order),
        }
    }

    /// Writes all of `bytes` to `dst`, tracking frames and counting bytes as they go.
    pub(super) async fn write_out(
        &self,
        dst: &mut WriteSide,
        bytes: &[u8],
        tracker: &mut FrameTracker,
    ) -> Written {
        let mut pos = 0;
        while pos < bytes.len() {
            let written = match self.unless_stopped(dst.write(&bytes[pos..])).await {
                Ok(written) => written,
                Err(order) => return Written::Stopped(order),
            };
            match written {
                Ok(0) | Err(_) => return Written::Failed,
                Ok(w) => {
                    self.wrote(tracker, &bytes[pos..pos + w]);
                    pos += w;
                    if pos < bytes.len() {
                        // A partial write: the destination is slow, but bytes still move.
                        self.shared.touch(self.shared.since_start());
                    }
                }
            }
        }
        Written::All
    }

    /// Runs `io` unless a close order is (or gets) given: then `Err` with it. The order is
    /// checked at every poll; while `io` is pending this direction's waker is left with the
    /// relay, which wakes it when it gives the order.
    pub(super) async fn unless_stopped<O>(
        &self,
        io: impl Future<Output = O>,
    ) -> Result<O, CloseOrder> {
        let mut io = std::pin::pin!(io);
        let shared = &*self.shared;
        std::future::poll_fn(|cx| {
            if let Some(order) = shared.stop.get() {
                return Poll::Ready(Err(order.clone()));
            }
            match io.as_mut().poll(cx) {
                Poll::Ready(out) => Poll::Ready(Ok(out)),
                Poll::Pending => {
                    shared.wakers[self.way].register(cx.waker());
                    // The order may have been given before the waker was left.
                    match shared.stop.get() {
                        Some(order) => Poll::Ready(Err(order.clone())),
                        None => Poll::Pending,
                    }
                }
            }
        })
        .await
    }

    /// Writes a close frame for `order` (if at a frame boundary, nothing of a frame is left
    /// in a pipe (`clean`) and no close went this way yet) and shuts the destination's write
    /// side.
    pub(super) async fn finish(
        &self,
        dst: &mut WriteSide,
        tracker: &FrameTracker,
        clean: bool,
        order: Option<CloseOrder>,
    ) {
        let mask = self.way == UP;
        let _ = tokio::time::timeout(self.shared.config.close_grace, async {
            if let Some(order) = order {
                if clean && tracker.at_boundary() && !tracker.close_seen() {
                    let frame = close_frame(order.code, order.reason, mask);
                    if dst.write_all(&frame).await.is_err() {
                        return;
                    }
                }
            }
            let _ = dst.flush().await;
            let _ = dst.shutdown().await;
        })
        .await;
    }
}
