//! The poll-based driver around [`sockway_proto::Connection`]: it moves bytes between the
//! transport and the state machine, applies backpressure, runs keep-alive, and closes the
//! transport in the order RFC 6455 section 7.1.1 asks for. All state lives here, not in
//! futures, which is what makes receiving cancel-safe.

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::BytesMut;
use sockway_proto::connection::Delivery;
use sockway_proto::deflate::DeflateParams;
use sockway_proto::{Connection, Event, FrameHeader, Role};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

use super::keep_alive::{KeepAliveAction, KeepAliveTimer};
use super::small_read::Filled;
use crate::config::WebSocketConfig;
use crate::error::Error;

/// Where closing the transport stands once the protocol is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Teardown {
    /// The protocol is still open (or closing): the transport stays.
    NotStarted,
    /// Flushing the last frames, then shutting down or waiting for the peer's FIN.
    Flushing,
    /// Our FIN is sent (server) or not yet (client); waiting for the peer's FIN.
    Draining { shut_down: bool },
    /// The transport is closed.
    Done,
}

/// The most bytes read onto the stack when the receive buffer is released (see
/// [`Engine::poll_fill`]) and messages have been small: one page, so the read needs no
/// stack probing.
pub(super) const STACK_READ: usize = 4096;

/// The read once one found more than [`STACK_READ`] waiting: sized for one read to take a
/// whole message of a few dozen kilobytes, rather than by
/// [`WebSocketConfig::read_buffer_size`]. It goes straight into a heap buffer, which is given
/// back when nothing arrived, so a waiting socket holds none; a large message read there
/// becomes its payload without being copied (uWebSockets likewise parses large messages
/// where they were read).
const LARGE_READ: usize = 32 * 1024;

thread_local! {
    /// The buffer of this thread's last large read (see [`LARGE_READ`]), once the bytes read
    /// into it were split off, or whole when the read found nothing. When the message read
    /// into it is gone (an echo's, once written), the next large read on this thread takes
    /// the whole allocation again instead of allocating 32 KiB and freeing them per message
    /// (uWebSockets keeps one receive buffer per thread for the same reason). While a
    /// handler still holds that message, the next read allocates afresh and the message
    /// keeps its memory. One buffer per thread, however many sockets: a waiting socket
    /// holds none.
    static SPARE_READ: Cell<Option<BytesMut>> = const { Cell::new(None) };
}

/// A buffer with room for a [`LARGE_READ`]: this thread's spare one when nothing else uses
/// it any more, else a new one.
fn take_spare_read() -> BytesMut {
    if let Some(mut spare) = SPARE_READ.try_with(Cell::take).ok().flatten() {
        // Whole already (the last read found nothing), or whole again once the message that
        // shared it is gone.
        if spare.capacity() >= LARGE_READ || spare.try_reclaim(LARGE_READ) {
            return spare;
        }
    }
    BytesMut::with_capacity(LARGE_READ)
}

/// Keeps `buf` (empty; maybe sharing its allocation with a message just read) as this
/// thread's spare read buffer.
fn keep_spare_read(buf: BytesMut) {
    debug_assert!(buf.is_empty());
    // After the thread's locals are gone (a socket polled while its thread exits), it is
    // simply freed.
    let _ = SPARE_READ.try_with(|spare| spare.set(Some(buf)));
}

/// A read size as stored in the engine: no single read asks for 4 GiB.
fn clamp_u32(size: usize) -> u32 {
    u32::try_from(size).unwrap_or(u32::MAX)
}

/// How many bytes of the frame that starts `bytes` have not arrived yet, once its header is
/// complete (RFC 6455 section 5.2); `None` before that or for a header the core will refuse.
fn rest_of_first_frame(bytes: &[u8]) -> Option<usize> {
    let (header, header_len) = FrameHeader::parse(bytes).ok()??;
    let total = usize::try_from(header.payload_len)
        .ok()?
        .saturating_add(header_len);
    Some(total.saturating_sub(bytes.len()))
}

/// The most bytes one read asks for when reads keep filling the buffer (a large message
/// streaming in), unless [`WebSocketConfig::read_buffer_size`] is larger still.
const MAX_READ_SIZE: usize = 64 * 1024;

/// The most runs of output one vectored write hands the transport.
const WRITE_SLICES: usize = 16;

/// A request from outside the socket to close it, such as the server runner's graceful
/// shutdown. The engine polls it while it waits for the peer; when it is ready and the
/// connection is still open, the engine sends a close frame with the given code and reason and
/// goes on receiving until the peer's reply (RFC 6455 section 7.1.2). The engine owns it until
/// the socket is dropped, so it can also carry a guard (a connection-count permit).
pub(crate) trait CloseRequest: Send + Sync + std::fmt::Debug {
    /// Ready with the close code and reason once the socket should close; after that it may
    /// stay pending forever.
    fn poll_close_request(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<(sockway_proto::CloseCode, &'static str)>;
}

/// The whole state of one WebSocket: transport, protocol, buffers, timers.
#[derive(Debug)]
pub(crate) struct Engine<S: AsyncRead + AsyncWrite + Unpin> {
    pub(crate) io: S,
    pub(crate) conn: Connection,
    /// Shared by every socket a server endpoint accepts with the same settings.
    pub(crate) config: Arc<WebSocketConfig>,
    pub(super) read_buf: BytesMut,
    /// Bytes the next read asks for: [`WebSocketConfig::read_buffer_size`] at first; doubled
    /// (up to [`MAX_READ_SIZE`]) each time a read fills all the room it was given, halved when
    /// a read gets less than half, and reset when the engine waits with an empty buffer. So a
    /// large message takes a few large reads, and a socket of small messages stays small.
    read_size: u32,
    /// Whether the last read onto the stack filled its small room (or, from the large one,
    /// got at least that much), so that the next one uses [`LARGE_READ`].
    pub(super) large_reads: bool,
    teardown: Teardown,
    close_deadline: Option<Pin<Box<Sleep>>>,
    /// Keep-alive bookkeeping, inline: `None` when keep-alive is off or has ended.
    keep_alive: Option<KeepAliveTimer>,
    /// An outside request to close (see [`CloseRequest`]).
    pub(crate) close_request: Option<Box<dyn CloseRequest>>,
    /// The error that ended the connection, reported once to the reader (boxed: rare).
    pub(super) pending_error: Option<Box<Error>>,
    pub(crate) stats: Stats,
}

/// Byte and message counters, for the clients' "information" and for metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Bytes read from the transport.
    pub bytes_received: u64,
    /// Bytes written to the transport.
    pub bytes_sent: u64,
    /// Data messages (or final fragments) received.
    pub messages_received: u64,
    /// Data messages (or final fragments) queued for sending.
    pub messages_sent: u64,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Engine<S> {
    pub(crate) fn new(
        io: S,
        role: Role,
        config: Arc<WebSocketConfig>,
        leftover: BytesMut,
        compression: Option<DeflateParams>,
    ) -> Self {
        let keep_alive = config.keep_alive.map(|_| KeepAliveTimer::default());
        let mut conn = match compression {
            Some(params) => Connection::with_deflate(role, config.protocol.clone(), params),
            None => Connection::new(role, config.protocol.clone()),
        };
        // Large payloads go out without a copy only where header and payload leave in one
        // write; elsewhere the header would go out alone.
        conn.set_vectored_output(io.is_write_vectored());
        Self {
            io,
            conn,
            read_size: clamp_u32(config.read_buffer_size),
            large_reads: false,
            config,
            read_buf: leftover,
            teardown: Teardown::NotStarted,
            close_deadline: None,
            keep_alive,
            close_request: None,
            pending_error: None,
            stats: Stats::default(),
        }
    }

    /// The next event from the peer; `Ok(None)` once the connection has closed cleanly and the
    /// transport is shut. Cancel-safe: dropping the future that polls this loses nothing.
    pub(crate) fn poll_event(
        &mut self,
        cx: &mut Context<'_>,
        delivery: Delivery,
    ) -> Poll<Result<Option<Event>, Error>> {
        loop {
            if self.conn.is_closed() {
                return self.poll_teardown(cx).map(|r| r.map(|()| None));
            }
            // Push out pongs and close replies opportunistically. Receiving never waits for
            // the transport to drain: the core coalesces pongs while output is backed up, so
            // what the peer can make us queue stays bounded, and a peer that only reads after
            // we read cannot deadlock us.
            if self.conn.has_output() {
                match self.poll_write_out(cx) {
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(self.abort(e))),
                    Poll::Ready(Ok(())) => {
                        let _ = Pin::new(&mut self.io).poll_flush(cx);
                    }
                    Poll::Pending => {}
                }
            }
            match self.conn.read_event(&mut self.read_buf, delivery) {
                Ok(Some(event)) => {
                    self.on_event(&event);
                    return Poll::Ready(Ok(Some(event)));
                }
                Ok(None) if self.conn.is_closed() => continue,
                Ok(None) => {}
                Err(e) => {
                    self.pending_error = Some(Box::new(Error::Protocol(e)));
                    continue;
                }
            }
            let polled = if delivery == Delivery::Messages && self.reads_small_messages() {
                match self.poll_fill_message(cx) {
                    Poll::Ready(Ok(Filled::Message(n, message))) => {
                        self.note_activity(n);
                        match message {
                            Ok(message) => {
                                let event = Event::Message(message);
                                self.on_event(&event);
                                return Poll::Ready(Ok(Some(event)));
                            }
                            Err(e) => {
                                self.pending_error = Some(Box::new(Error::Protocol(e)));
                                continue;
                            }
                        }
                    }
                    Poll::Ready(Ok(Filled::Bytes(n))) => Poll::Ready(Ok(n)),
                    Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                    Poll::Pending => Poll::Pending,
                }
            } else {
                self.poll_fill(cx)
            };
            let filled = match polled {
                Poll::Ready(filled) => filled,
                Poll::Pending => {
                    // About to wait: only now do the timers and the outside close request
                    // need our waker (a connection with data flowing never needs them), and
                    // an idle connection needs no receive buffer and little output room.
                    self.release_empty_read_buf();
                    self.conn.release_idle_output(self.config.idle_output_room);
                    if let Some(result) = self.poll_keep_alive(cx) {
                        return Poll::Ready(result);
                    }
                    if self.poll_close_request(cx) {
                        continue;
                    }
                    return Poll::Pending;
                }
            };
            match filled {
                Ok(0) => {
                    let clean = self.conn.receive_eof();
                    self.teardown = Teardown::Done;
                    if !clean && self.pending_error.is_none() {
                        return Poll::Ready(Err(Error::AbnormalClosure));
                    }
                }
                Ok(n) => self.note_activity(n),
                Err(e) => return Poll::Ready(Err(self.abort(e))),
            }
        }
    }

    pub(super) fn on_event(&mut self, event: &Event) {
        match event {
            Event::Message(_)
            | Event::Fragment {
                end_of_message: true,
                ..
            } => self.stats.messages_received += 1,
            _ => {}
        }
    }

    pub(super) fn note_activity(&mut self, n: usize) {
        self.stats.bytes_received += n as u64;
        if let Some(timer) = &mut self.keep_alive {
            timer.heard();
        }
    }

    /// Lets the core's keep-alive rule act when its deadline has come (a ping queued here is
    /// written at once; a silent peer fails the connection), and otherwise sleeps until that
    /// deadline on the runtime's shared wheel. Called when the engine is about to wait for the
    /// peer.
    fn poll_keep_alive(&mut self, cx: &mut Context<'_>) -> Option<Result<Option<Event>, Error>> {
        let timers = super::timers(&self.config);
        if self.keep_alive.is_none()
            && self.conn.state() == sockway_proto::ConnectionState::CloseSent
        {
            // A close frame went out: the core's close timeout needs the clock, keep-alive
            // or not.
            self.keep_alive = Some(KeepAliveTimer::default());
        }
        match self.keep_alive.as_mut()?.poll(&mut self.conn, &timers, cx) {
            KeepAliveAction::Wait => None,
            KeepAliveAction::Ping => {
                let _ = self.poll_write_out(cx);
                None
            }
            KeepAliveAction::TimedOut(silent) => {
                self.keep_alive = None;
                self.teardown = Teardown::Done;
                Some(Err(Error::KeepAliveTimeout(silent)))
            }
            KeepAliveAction::CloseTimedOut => {
                self.keep_alive = None;
                self.teardown = Teardown::Done;
                Some(Err(Error::CloseTimeout))
            }
        }
    }

    /// Starts the closing handshake when an outside [`CloseRequest`] asks for it; says
    /// whether it did.
    fn poll_close_request(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(request) = self.close_request.as_mut() else {
            return false;
        };
        if let Poll::Ready((code, reason)) = request.poll_close_request(cx) {
            if self.conn.state() == sockway_proto::ConnectionState::Open
                && self.conn.close(code, reason).is_ok()
            {
                let _ = self.poll_write_out(cx);
                return true;
            }
        }
        false
    }

    /// Frees the receive buffer when it holds nothing, so that an idle connection keeps no
    /// buffer; the next read goes through the stack (see [`Engine::poll_fill`]). An empty
    /// buffer without spare capacity is released too: after the last message was split off,
    /// it may still share that message's allocation.
    fn release_empty_read_buf(&mut self) {
        if self.read_buf.is_empty() {
            self.read_buf = BytesMut::new();
            self.read_size = clamp_u32(self.config.read_buffer_size);
        }
    }

    /// Reads more bytes into the receive buffer. When the buffer was released (no capacity),
    /// the read lands on the stack first and only what arrived is copied to the heap, so a
    /// small message costs a small allocation and waiting costs none.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.read_buf.capacity() == 0 {
            return self.poll_fill_from_stack(cx);
        }
        let buf = &mut self.read_buf;
        let read_size = self.read_size as usize;
        if buf.capacity() - buf.len() < read_size / 2 {
            buf.reserve(read_size);
        }
        let spare = buf.spare_capacity_mut();
        let room = spare.len();
        let mut read_buf = ReadBuf::uninit(spare);
        ready!(Pin::new(&mut self.io).poll_read(cx, &mut read_buf))?;
        let n = read_buf.filled().len();
        // SAFETY: `ReadBuf` guarantees its first `n` bytes, which start at `buf.len()`, were
        // initialised by the read.
        unsafe { buf.set_len(buf.len() + n) };
        self.adapt_read_size(n, room);
        Poll::Ready(Ok(n))
    }

    /// Grows the read size after a read that filled its `room`, shrinks it after one that got
    /// less than half of it (see [`Engine::read_size`]).
    fn adapt_read_size(&mut self, n: usize, room: usize) {
        if n == room {
            self.grow_read_size();
        } else if n < room / 2 {
            self.read_size = (self.read_size / 2).max(clamp_u32(self.config.read_buffer_size));
        }
    }

    fn grow_read_size(&mut self) {
        let most = clamp_u32(MAX_READ_SIZE.max(self.config.read_buffer_size));
        self.read_size = self.read_size.saturating_mul(2).min(most);
    }

    /// [`Engine::poll_fill`] for a released (empty, unallocated) receive buffer: a read of
    /// [`STACK_READ`] bytes onto the stack, or of [`LARGE_READ`] while messages are large.
    fn poll_fill_from_stack(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let size = self.config.read_buffer_size.min(STACK_READ);
        let n = if self.large_reads {
            ready!(self.poll_fill_large(cx))?
        } else {
            let mut stack = [std::mem::MaybeUninit::<u8>::uninit(); STACK_READ];
            ready!(self.poll_fill_from(cx, &mut stack[..size]))?
        };
        self.large_reads = n >= size && n > 0;
        Poll::Ready(Ok(n))
    }

    /// The large read (see [`LARGE_READ`]): into this thread's spare buffer or a new one.
    /// When what arrived starts with a whole frame, it becomes the receive buffer, split off
    /// the front of the buffer, and the rest goes back to the spare (so a message read there
    /// is a view of it); when nothing arrived, the buffer goes back whole; when a frame is
    /// still arriving, the whole buffer is this socket's receive buffer, as before.
    fn poll_fill_large(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let mut buf = take_spare_read();
        let mut read_buf = ReadBuf::uninit(&mut buf.spare_capacity_mut()[..LARGE_READ]);
        let polled = Pin::new(&mut self.io).poll_read(cx, &mut read_buf);
        let n = read_buf.filled().len();
        if !matches!(polled, Poll::Ready(Ok(()))) || n == 0 {
            // Waiting, failed, or the end of the stream: nothing to keep.
            keep_spare_read(buf);
            return polled.map_ok(|()| 0);
        }
        // SAFETY: `ReadBuf` guarantees its first `n` bytes, the start of `buf`'s spare
        // capacity, were initialised by the read.
        unsafe { buf.set_len(n) };
        if n < LARGE_READ && rest_of_first_frame(&buf) == Some(0) {
            // The first frame is all here (the usual case): what arrived is split off, and
            // the rest of the buffer is kept for the thread's next large read.
            self.read_buf = buf.split_to(n);
            keep_spare_read(buf);
            return Poll::Ready(Ok(n));
        }
        // Part of a frame: the rest is read into this buffer's room, which stays this
        // socket's alone, as it may move when it grows.
        if n == LARGE_READ {
            // More is waiting: room for the rest of the frame arriving, as in `poll_fill_from`.
            self.grow_read_size();
            let most = MAX_READ_SIZE.max(self.config.read_buffer_size);
            let rest = rest_of_first_frame(&buf).unwrap_or(0).min(most);
            buf.reserve(rest.max(self.read_size as usize));
        }
        self.read_buf = buf;
        Poll::Ready(Ok(n))
    }

    /// Reads into `scratch` and keeps what arrived in the receive buffer.
    fn poll_fill_from(
        &mut self,
        cx: &mut Context<'_>,
        scratch: &mut [std::mem::MaybeUninit<u8>],
    ) -> Poll<io::Result<usize>> {
        let room = scratch.len();
        let mut read_buf = ReadBuf::uninit(scratch);
        ready!(Pin::new(&mut self.io).poll_read(cx, &mut read_buf))?;
        let filled = read_buf.filled();
        self.keep_read(filled, room);
        Poll::Ready(Ok(filled.len()))
    }

    /// Keeps `filled`, what a read into `room` bytes outside the (empty, unallocated)
    /// receive buffer got, in the receive buffer.
    pub(super) fn keep_read(&mut self, filled: &[u8], room: usize) {
        if filled.len() == room {
            // The read filled its room: more is waiting. Make room for the rest of the frame
            // that is arriving (as far as its header says, within the largest read), so that
            // it takes one more read rather than several growing ones.
            self.grow_read_size();
            let most = MAX_READ_SIZE.max(self.config.read_buffer_size);
            let rest = rest_of_first_frame(filled).unwrap_or(0).min(most);
            self.read_buf
                .reserve(filled.len() + rest.max(self.read_size as usize));
            self.read_buf.extend_from_slice(filled);
        } else {
            // A buffer of exactly what arrived; when it holds one whole frame, it becomes
            // that message's payload as it is.
            self.read_buf = BytesMut::from(filled);
        }
    }

    /// Writes some of the queued output: all its runs at once with a vectored write when the
    /// output is in several runs (a header and a payload queued without copying) and the
    /// transport writes vectors natively, else the first run.
    fn poll_write_some(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let first = self.conn.output();
        // Several runs are queued only when the transport writes vectors natively (see
        // `Engine::new`).
        if first.len() == self.conn.output_len() {
            return Pin::new(&mut self.io).poll_write(cx, first);
        }
        let mut slices = [io::IoSlice::new(&[]); WRITE_SLICES];
        let runs = self.conn.output_slices(&mut slices);
        Pin::new(&mut self.io).poll_write_vectored(cx, &slices[..runs])
    }

    /// Writes queued output until it is all written.
    pub(crate) fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.conn.has_output() {
            let n = ready!(self.poll_write_some(cx))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.stats.bytes_sent += n as u64;
            self.conn.advance_output(n);
        }
        Poll::Ready(Ok(()))
    }

    /// Waits until fewer than the limit of bytes are queued, so that one more message may be.
    pub(crate) fn poll_send_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        while self.conn.output_len() >= self.config.write_buffer_limit {
            let n = ready!(self.poll_write_some(cx)).map_err(|e| self.abort(e))?;
            if n == 0 {
                return Poll::Ready(Err(self.abort(io::ErrorKind::WriteZero.into())));
            }
            self.stats.bytes_sent += n as u64;
            self.conn.advance_output(n);
        }
        Poll::Ready(Ok(()))
    }

    /// Writes all queued output and flushes the transport.
    pub(crate) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        ready!(self.poll_write_out(cx)).map_err(|e| self.abort(e))?;
        ready!(Pin::new(&mut self.io).poll_flush(cx)).map_err(|e| self.abort(e))?;
        Poll::Ready(Ok(()))
    }

    /// After the protocol closed: flush the last frames, then close TCP in the RFC's order
    /// (the server first; the client after the server's FIN), bounded by the close timeout.
    /// Ends with the error that failed the connection, if one did.
    pub(crate) fn poll_teardown(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        loop {
            match self.teardown {
                Teardown::NotStarted => {
                    // The core's close timeout bounds the teardown: start its clock and
                    // sleep until its deadline.
                    self.teardown = Teardown::Flushing;
                    let timers = super::timers(&self.config);
                    let _ = self.conn.handle_timeout(clock::now(), &timers);
                    match self.conn.poll_timeout(&timers) {
                        Some(due) => {
                            self.close_deadline =
                                Some(Box::pin(tokio::time::sleep_until(clock::at(due))));
                        }
                        None => self.teardown = Teardown::Done,
                    }
                }
                Teardown::Flushing => {
                    if self.poll_deadline(cx) {
                        continue;
                    }
                    if ready!(self.poll_write_out(cx)).is_err() {
                        self.teardown = Teardown::Done;
                        continue;
                    }
                    let _ = ready!(Pin::new(&mut self.io).poll_flush(cx));
                    self.teardown = Teardown::Draining { shut_down: false };
                }
                Teardown::Draining { shut_down } => {
                    if self.poll_deadline(cx) {
                        continue;
                    }
                    if !shut_down && self.conn.closes_transport_first() {
                        let _ = ready!(Pin::new(&mut self.io).poll_shutdown(cx));
                        self.teardown = Teardown::Draining { shut_down: true };
                        continue;
                    }
                    // Read and discard until the peer's FIN, so that closing never turns into a
                    // reset that could destroy the close frame in flight.
                    self.read_buf.clear();
                    match ready!(self.poll_fill(cx)) {
                        Ok(0) | Err(_) => {
                            if !shut_down {
                                let _ = ready!(Pin::new(&mut self.io).poll_shutdown(cx));
                            }
                            self.teardown = Teardown::Done;
                        }
                        Ok(n) => self.stats.bytes_received += n as u64,
                    }
                }
                Teardown::Done => {
                    self.close_deadline = None;
                    return Poll::Ready(match self.pending_error.take() {
                        Some(e) => Err(*e),
                        None => Ok(()),
                    });
                }
            }
        }
    }

    /// Whether the core gave up on closing, its deadline come (then teardown is cut short).
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(deadline) = self.close_deadline.as_mut() else {
            return false;
        };
        if deadline.as_mut().poll(cx).is_pending() {
            return false;
        }
        let timers = super::timers(&self.config);
        match self.conn.handle_timeout(clock::now(), &timers) {
            Some(_) => {
                self.teardown = Teardown::Done;
                true
            }
            None => {
                // Woken a little early for the core's clock: sleep until its deadline.
                match self.conn.poll_timeout(&timers) {
                    Some(due) => deadline.as_mut().reset(clock::at(due)),
                    None => self.teardown = Teardown::Done,
                }
                self.teardown == Teardown::Done || self.poll_deadline(cx)
            }
        }
    }

    /// A transport error ends everything at once.
    pub(super) fn abort(&mut self, error: io::Error) -> Error {
        self.conn.receive_eof();
        self.teardown = Teardown::Done;
        Error::Io(error)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Drop for Engine<S> {
    /// Best effort on drop: queue close 1001 if the connection is open and hand the transport
    /// whatever it accepts right now, without waiting.
    fn drop(&mut self) {
        if self.conn.state() == sockway_proto::ConnectionState::Open {
            let _ = self.conn.close(sockway_proto::CloseCode::GOING_AWAY, "");
        }
        let mut cx = Context::from_waker(std::task::Waker::noop());
        while self.conn.has_output() {
            match Pin::new(&mut self.io).poll_write(&mut cx, self.conn.output()) {
                Poll::Ready(Ok(n)) if n > 0 => self.conn.advance_output(n),
                _ => break,
            }
        }
        let _ = Pin::new(&mut self.io).poll_shutdown(&mut cx);
    }
}

/// The clock the engine gives the core while closing: milliseconds since one epoch per
/// process, on tokio's clock (so that tests with paused time see it move).
mod clock {
    use std::sync::OnceLock;
    use std::time::Duration;

    use tokio::time::Instant;

    fn epoch() -> Instant {
        static EPOCH: OnceLock<Instant> = OnceLock::new();
        *EPOCH.get_or_init(Instant::now)
    }

    /// Now, in whole milliseconds since the epoch, rounded up (so that a sleep until a
    /// deadline never wakes before the core counts it as come).
    pub(super) fn now() -> u64 {
        let elapsed = Instant::now().saturating_duration_since(epoch());
        let millis =
            elapsed.as_millis() + u128::from(!elapsed.subsec_nanos().is_multiple_of(1_000_000));
        u64::try_from(millis).unwrap_or(u64::MAX)
    }

    /// The instant `millis` after the epoch.
    pub(super) fn at(millis: u64) -> Instant {
        let epoch = epoch();
        epoch
            .checked_add(Duration::from_millis(millis))
            .unwrap_or(epoch + Duration::from_secs(86_400 * 365))
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
