//! Sending a whole message by writing its frame straight to the transport
//! ([`sockway_proto::connection::DirectFrame`]): when nothing is queued, the frame goes out
//! in one write (a vectored one for a large payload), and only what the transport did not
//! take is queued.
//! An echo's frame is then never copied into the output buffer, nor a large payload's
//! header and payload kept in the queue's runs between the write and the flush.

use std::io::IoSlice;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll};

use sockway_proto::frame::MAX_HEADER_LEN;
use sockway_proto::Message;
use tokio::io::{AsyncRead, AsyncWrite};

use super::engine::Engine;
use crate::error::Error;

/// The largest payload copied behind its header into one buffer on the stack for a plain
/// write; a larger one goes out with a vectored write of the header and the payload as they
/// are. Below a page, with the header, so that the buffer needs no stack probing.
const COPY_MAX: usize = 2048;

impl<S: AsyncRead + AsyncWrite + Unpin> Engine<S> {
    /// Sends `message`: written straight to the transport when the core allows it, queued
    /// otherwise. Either way it is whole in the transport or the queue when this returns, and
    /// the caller flushes.
    pub(crate) fn send_message(
        &mut self,
        cx: &mut Context<'_>,
        message: &Message,
    ) -> Result<(), Error> {
        if !self.write_direct(cx, message)? {
            self.conn.send(message)?;
        }
        self.stats.messages_sent += 1;
        Ok(())
    }

    /// Writes `message`'s frame to the transport once and queues the rest; `false` when the
    /// core wants it queued instead (see [`sockway_proto::Connection::direct_frame`]) or the
    /// transport takes no vectored writes for a payload too large to copy.
    fn write_direct(&mut self, cx: &mut Context<'_>, message: &Message) -> Result<bool, Error> {
        let payload = match message {
            Message::Text(text) => text.as_bytes(),
            Message::Binary(bytes) => bytes,
        };
        if payload.len() > COPY_MAX && !self.io.is_write_vectored() {
            return Ok(false);
        }
        let Some(frame) = self.conn.direct_frame(message.kind(), payload.len()) else {
            return Ok(false);
        };
        let header = frame.header();
        let polled = if payload.len() <= COPY_MAX {
            let mut buf = [MaybeUninit::<u8>::uninit(); COPY_MAX + MAX_HEADER_LEN];
            let frame_bytes = join(&mut buf, header, payload);
            Pin::new(&mut self.io).poll_write(cx, frame_bytes)
        } else {
            let slices = [IoSlice::new(header), IoSlice::new(payload)];
            Pin::new(&mut self.io).poll_write_vectored(cx, &slices)
        };
        let written = match polled {
            Poll::Ready(Ok(n)) => n,
            Poll::Ready(Err(e)) => return Err(self.abort(e)),
            Poll::Pending => 0,
        };
        self.stats.bytes_sent += written as u64;
        if written < header.len() + payload.len() {
            self.conn.queue_unwritten(&frame, payload, written);
        }
        Ok(true)
    }
}

/// `header` and then `payload` copied into `buf`, which has room for both.
#[inline]
fn join<'a>(buf: &'a mut [MaybeUninit<u8>], header: &[u8], payload: &[u8]) -> &'a [u8] {
    let len = header.len() + payload.len();
    let dst = &mut buf[..len];
    let (head, tail) = dst.split_at_mut(header.len());
    for (slot, src) in [(head, header), (tail, payload)] {
        // SAFETY: `MaybeUninit<u8>` has the layout of `u8`, and `slot` is exactly as long
        // as `src`.
        let src = unsafe { &*(src as *const [u8] as *const [MaybeUninit<u8>]) };
        slot.copy_from_slice(src);
    }
    // SAFETY: every one of the first `len` bytes was written just above.
    unsafe { &*(dst as *const [MaybeUninit<u8>] as *const [u8]) }
}
