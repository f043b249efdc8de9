//! The whole-message read of a socket whose receive buffer is released (the usual state of
//! a socket of small messages between two of them): one read onto the stack, and when it
//! brought a whole small message, that message is read where it lies
//! ([`sockway_proto::Connection::read_message_in_place`]: unmasked and validated in place)
//! and copied once into a buffer of its own. Only bytes after it are kept in the receive
//! buffer, so a socket that gets one message per read allocates nothing else for it, and
//! the core's general frame path (header, message state, split of the payload) is skipped,
//! as the event loop's lent messages skip it.

use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::BytesMut;
use sockway_proto::{Message, ProtocolError};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::engine::{Engine, STACK_READ};

/// What [`Engine::poll_fill_message`] got.
pub(super) enum Filled {
    /// This many bytes, kept in the receive buffer for the core's general read.
    Bytes(usize),
    /// This many bytes, of which one whole message came out (the rest, if any, kept in the
    /// receive buffer); or the error that failed the connection (invalid UTF-8, close 1007
    /// queued), its input dropped.
    Message(usize, Result<Message, ProtocolError>),
}

impl<S: AsyncRead + AsyncWrite + Unpin> Engine<S> {
    /// Whether the next read is a small one outside the receive buffer (see
    /// [`Engine::poll_fill_message`]).
    #[inline]
    pub(super) fn reads_small_messages(&self) -> bool {
        self.read_buf.capacity() == 0 && !self.large_reads
    }

    /// The small read onto the stack of a released receive buffer (as
    /// [`Engine::poll_fill`] makes it), for a whole-message read: a whole small message that
    /// arrived in it is read in place and returned; anything else is kept in the receive
    /// buffer as [`Engine::poll_fill`] keeps it.
    pub(super) fn poll_fill_message(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<Filled>> {
        let size = self.config.read_buffer_size.min(STACK_READ);
        let mut stack = [MaybeUninit::<u8>::uninit(); STACK_READ];
        let mut read_buf = ReadBuf::uninit(&mut stack[..size]);
        ready!(Pin::new(&mut self.io).poll_read(cx, &mut read_buf))?;
        let n = read_buf.filled().len();
        self.large_reads = n >= size && n > 0;
        if n == 0 || n == size {
            self.keep_read(read_buf.filled(), size);
            return Poll::Ready(Ok(Filled::Bytes(n)));
        }
        let input = read_buf.filled_mut();
        let message = match self.conn.read_message_in_place(input, n) {
            None => {
                self.keep_read(input, size);
                return Poll::Ready(Ok(Filled::Bytes(n)));
            }
            Some(Err(e)) => Err(e),
            Some(Ok((view, end))) => {
                let message = view.to_message();
                if end < n {
                    self.read_buf = BytesMut::from(&input[end..]);
                }
                Ok(message)
            }
        };
        Poll::Ready(Ok(Filled::Message(n, message)))
    }
}
