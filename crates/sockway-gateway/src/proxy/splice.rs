//! `splice(2)` for the relay (Linux): a large payload moves socket → pipe → socket inside the
//! kernel, so its bytes are never copied into user space and back (splice(2): "it transfers
//! data between two file descriptors without copying between kernel address space and user
//! address space"); on loopback and TCP the pages are handed on, not copied.
//!
//! A direction holds a pipe only while a payload is passing through it: the pipe is taken
//! from its thread's small pool when a splice starts and given back, empty, as soon as the
//! direction waits for its source again, so an idle session holds no pipe (no descriptors,
//! no kernel buffers). Only a direction whose destination stopped reading mid-payload keeps
//! one, with at most the pipe's capacity in it (64 KiB by default, pipe(7)), until the bytes
//! go or the session ends.

use std::cell::RefCell;
use std::io;
use std::os::fd::OwnedFd;
use std::task::{ready, Context, Poll};

use nix::fcntl::{splice, OFlag, SpliceFFlags};
use nix::unistd::pipe2;
use tokio::io::Interest;
use tokio::net::TcpStream;

/// Empty pipes kept per worker thread for the next payloads: one direction runs at a time on a
/// thread, so a few cover the directions whose pipe is still waiting on a slow destination.
const POOL: usize = 8;

thread_local! {
    static PIPES: RefCell<Vec<Pipe>> = const { RefCell::new(Vec::new()) };
}

/// A non-blocking pipe's two ends.
struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
}

impl Pipe {
    /// A pipe from this thread's pool, or a new one.
    fn take() -> io::Result<Pipe> {
        let pooled = PIPES.with(|pool| pool.try_borrow_mut().ok().and_then(|mut p| p.pop()));
        if let Some(pipe) = pooled {
            return Ok(pipe);
        }
        let (read, write) = pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC)?;
        Ok(Pipe { read, write })
    }

    /// Gives an empty pipe back to this thread's pool (closes it when the pool is full).
    fn give(self) {
        PIPES.with(|pool| {
            if let Ok(mut pool) = pool.try_borrow_mut() {
                if pool.len() < POOL {
                    pool.push(self);
                }
            }
        });
    }
}

/// Never block on either end (the sockets are non-blocking already; this makes the pipe's
/// end so too); move pages rather than copy where the kernel can.
fn flags() -> SpliceFFlags {
    SpliceFFlags::SPLICE_F_NONBLOCK | SpliceFFlags::SPLICE_F_MOVE
}

/// One direction's splicing state: the pipe while a payload is in it, and how many bytes it
/// holds that the destination has not taken yet.
#[derive(Default)]
pub struct Splicer {
    pipe: Option<Pipe>,
    held: usize,
    /// Splicing failed once on this direction (say, a kernel without it for these
    /// descriptors): its bytes go through user space from then on.
    off: bool,
}

impl Splicer {
    /// Bytes in the pipe still to write to the destination.
    pub fn held(&self) -> usize {
        self.held
    }

    /// Whether splicing was given up on this direction.
    pub fn off(&self) -> bool {
        self.off
    }

    /// Gives up splicing on this direction (its pipe, empty, goes back to the pool).
    pub fn turn_off(&mut self) {
        self.off = true;
        self.release();
    }

    /// Gives the pipe back to the pool if it is empty (the direction is about to wait).
    pub fn release(&mut self) {
        if self.held == 0 {
            if let Some(pipe) = self.pipe.take() {
                pipe.give();
            }
        }
    }

    /// Moves up to `len` bytes the socket `src` has received into the (empty) pipe, once
    /// `src` is readable: `Ok(0)` at its end of stream.
    pub fn poll_fill(
        &mut self,
        cx: &mut Context<'_>,
        src: &TcpStream,
        len: usize,
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(src.poll_read_ready(cx))?;
            let pipe = match self.pipe.take() {
                Some(pipe) => pipe,
                None => Pipe::take()?,
            };
            let moved = src.try_io(Interest::READABLE, || {
                splice(src, None, &pipe.write, None, len, flags()).map_err(io::Error::from)
            });
            self.pipe = Some(pipe);
            match moved {
                Ok(n) => {
                    self.held += n;
                    return Poll::Ready(Ok(n));
                }
                // Readiness was cleared: the next turn waits for it.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    /// Moves what the pipe holds to the socket `dst`, once `dst` is writable: how many bytes
    /// went (`Ok(0)` only if the pipe was empty).
    pub fn poll_drain(&mut self, cx: &mut Context<'_>, dst: &TcpStream) -> Poll<io::Result<usize>> {
        let Some(pipe) = self.pipe.as_ref() else {
            return Poll::Ready(Ok(0));
        };
        let held = self.held;
        let moved = loop {
            ready!(dst.poll_write_ready(cx))?;
            let moved = dst.try_io(Interest::WRITABLE, || {
                splice(&pipe.read, None, dst, None, held, flags()).map_err(io::Error::from)
            });
            match moved {
                // Readiness was cleared: the next turn waits for it.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                moved => break moved,
            }
        };
        let n = moved?;
        self.held -= n.min(self.held);
        Poll::Ready(Ok(n))
    }
}

impl Drop for Splicer {
    /// An empty pipe goes back to the pool; one still holding bytes is closed with them.
    fn drop(&mut self) {
        self.release();
    }
}
