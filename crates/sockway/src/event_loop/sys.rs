//! A socket's `recv`, `send` and `writev` as plain system calls, without glibc's
//! cancellation-point wrappers.
//!
//! glibc's `recv`, `send` and `writev` are POSIX thread-cancellation points: in a process
//! with more than one thread (every event-loop server: the workers and the thread that
//! started them) each call enables and then disables asynchronous cancellation around the
//! system call, about 65 instructions per call pair and more than the rest of the wrapper
//! (callgrind, `benches/instructions.sh`). A single-threaded process such as uWebSockets'
//! skips that step. Nothing here uses thread cancellation, so the worker enters the kernel
//! through `syscall(2)` (the `libc` crate's binding), which is no cancellation point: the same `recvfrom`,
//! `sendto` and `writev` system calls with the same arguments and errors (`errno`, read by
//! [`io::Error::last_os_error`]). On other platforms the standard library's calls are used.

use std::io::{self, IoSlice};
use std::mem::MaybeUninit;

use mio::net::TcpStream;

#[cfg(target_os = "linux")]
mod raw {
    use std::io::IoSlice;
    use std::os::fd::AsRawFd;

    use libc::{c_long, c_void};
    use mio::net::TcpStream;

    /// `recvfrom(fd, buf, len, 0, NULL, NULL)` (every argument a whole `long`, as a variadic
    /// call does not widen an `int`): bytes read, or -1 with `errno` set.
    #[inline]
    pub(super) fn recv(stream: &TcpStream, buf: *mut c_void, len: usize) -> isize {
        let null = std::ptr::null_mut::<c_void>();
        // SAFETY: `buf` is valid for writes of `len` bytes (the caller's spare capacity), the
        // descriptor is the open socket `stream` borrows, and the address arguments are null.
        unsafe {
            libc::syscall(
                libc::SYS_recvfrom,
                stream.as_raw_fd() as c_long,
                buf,
                len,
                0 as c_long,
                null,
                null,
            ) as isize
        }
    }

    /// `sendto(fd, buf, len, MSG_NOSIGNAL, NULL, 0)`: bytes written, or -1 with `errno` set.
    /// `MSG_NOSIGNAL` turns a write to a closed peer into `EPIPE` instead of `SIGPIPE`, as
    /// the standard library's `TcpStream::write` does.
    #[inline]
    pub(super) fn send(stream: &TcpStream, buf: &[u8]) -> isize {
        // SAFETY: `buf` is valid for reads of its length, the descriptor is the open socket
        // `stream` borrows, and no address is given.
        unsafe {
            libc::syscall(
                libc::SYS_sendto,
                stream.as_raw_fd() as c_long,
                buf.as_ptr().cast::<c_void>(),
                buf.len(),
                libc::MSG_NOSIGNAL as c_long,
                std::ptr::null::<c_void>(),
                0 as c_long,
            ) as isize
        }
    }

    /// `writev(fd, slices, count)`: bytes written, or -1 with `errno` set.
    #[inline]
    pub(super) fn writev(stream: &TcpStream, slices: &[IoSlice<'_>]) -> isize {
        // SAFETY: `IoSlice` is ABI-compatible with `struct iovec` on Unix (the standard
        // library's guarantee), each one valid for reads of its length while `slices` is
        // borrowed, and the descriptor is the open socket `stream` borrows.
        unsafe {
            libc::syscall(
                libc::SYS_writev,
                stream.as_raw_fd() as c_long,
                slices.as_ptr().cast::<c_void>(),
                slices.len() as c_long,
            ) as isize
        }
    }
}

/// Reads into `spare` from `stream`; how many bytes were read (0 at end of stream).
#[cfg(target_os = "linux")]
#[inline]
pub(super) fn recv(stream: &TcpStream, spare: &mut [MaybeUninit<u8>]) -> io::Result<usize> {
    let n = raw::recv(stream, spare.as_mut_ptr().cast(), spare.len());
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// Writes from `buf` to `stream`; how many bytes the socket took.
#[cfg(target_os = "linux")]
#[inline]
pub(super) fn send(stream: &TcpStream, buf: &[u8]) -> io::Result<usize> {
    let n = raw::send(stream, buf);
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// Writes `slices` to `stream` in order with one `writev`; how many bytes the socket took.
#[cfg(target_os = "linux")]
#[inline]
pub(super) fn writev(stream: &TcpStream, slices: &[IoSlice<'_>]) -> io::Result<usize> {
    let n = raw::writev(stream, slices);
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// Reads into `spare` from `stream`; how many bytes were read (0 at end of stream).
#[cfg(not(target_os = "linux"))]
pub(super) fn recv(stream: &TcpStream, spare: &mut [MaybeUninit<u8>]) -> io::Result<usize> {
    socket2::SockRef::from(stream).recv(spare)
}

/// Writes from `buf` to `stream`; how many bytes the socket took.
#[cfg(not(target_os = "linux"))]
pub(super) fn send(stream: &TcpStream, buf: &[u8]) -> io::Result<usize> {
    std::io::Write::write(&mut &*stream, buf)
}

/// Writes `slices` to `stream` in order with one vectored write; how many bytes it took.
#[cfg(not(target_os = "linux"))]
pub(super) fn writev(stream: &TcpStream, slices: &[IoSlice<'_>]) -> io::Result<usize> {
    std::io::Write::write_vectored(&mut &*stream, slices)
}
