//! A socket's `recv`, `send` and `writev` as plain system calls, without glibc's
//! cancellation-point wrappers.
//!
//! glibc's `recv`, `send` and `writev` are POSIX thread-cancellation points: in a process
//! with more than one thread (every event-loop server: the workers and the thread that
//! started them) each call enables and then disables asynchronous cancellation around the
//! system call, about 65 instructions per call pair and more than the rest of the wrapper
//! (callgrind, `benches/instructions.sh`). A single-threaded process such as uWebSockets'
//! skips that step. Nothing here uses thread cancellation, so the worker enters the kernel
//! through glibc's `syscall(2)`, which is no cancellation point: the same `recvfrom`,
//! `sendto` and `writev` system calls with the same arguments and errors (`errno`, read by
//! [`io::Error::last_os_error`]). On other platforms the standard library's calls are used.

use std::io::{self, IoSlice};
use std::mem::MaybeUninit;

use mio::net::TcpStream;

#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
mod raw {
    use std::ffi::{c_long, c_void};
    use std::os::fd::AsRawFd;

    use std::io::IoSlice;

    use mio::net::TcpStream;

    /// `recvfrom` and `sendto` in the kernel's system call table (`asm/unistd_64.h`;
    /// aarch64 uses the generic table, `asm-generic/unistd.h`).
    #[cfg(target_arch = "x86_64")]
    const SYS_RECVFROM: c_long = 45;
    #[cfg(target_arch = "x86_64")]
    const SYS_SENDTO: c_long = 44;
    #[cfg(target_arch = "x86_64")]
    const SYS_WRITEV: c_long = 20;
    #[cfg(target_arch = "aarch64")]
    const SYS_RECVFROM: c_long = 207;
    #[cfg(target_arch = "aarch64")]
    const SYS_SENDTO: c_long = 206;
    #[cfg(target_arch = "aarch64")]
    const SYS_WRITEV: c_long = 66;
    /// `send(2)`'s flag that turns a write to a closed peer into `EPIPE` instead of
    /// `SIGPIPE`, as the standard library's `TcpStream::write` passes it.
    const MSG_NOSIGNAL: c_long = 0x4000;

    extern "C" {
        /// glibc's indirect system call (`syscall(2)`), which is not a cancellation point.
        fn syscall(number: c_long, ...) -> c_long;
    }

    /// `recvfrom(fd, buf, len, 0, NULL, NULL)` (every argument a whole `long`, as a variadic
    /// call does not widen an `int`): bytes read, or -1 with `errno` set.
    #[inline]
    pub(super) fn recv(stream: &TcpStream, buf: *mut c_void, len: usize) -> isize {
        let null = std::ptr::null_mut::<c_void>();
        // SAFETY: `buf` is valid for writes of `len` bytes (the caller's spare capacity), the
        // descriptor is the open socket `stream` borrows, and the address arguments are null.
        unsafe {
            syscall(
                SYS_RECVFROM,
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
    #[inline]
    pub(super) fn send(stream: &TcpStream, buf: &[u8]) -> isize {
        // SAFETY: `buf` is valid for reads of its length, the descriptor is the open socket
        // `stream` borrows, and no address is given.
        unsafe {
            syscall(
                SYS_SENDTO,
                stream.as_raw_fd() as c_long,
                buf.as_ptr().cast::<c_void>(),
                buf.len(),
                MSG_NOSIGNAL,
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
            syscall(
                SYS_WRITEV,
                stream.as_raw_fd() as c_long,
                slices.as_ptr().cast::<c_void>(),
                slices.len() as c_long,
            ) as isize
        }
    }
}

/// Reads into `spare` from `stream`; how many bytes were read (0 at end of stream).
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
#[inline]
pub(super) fn recv(stream: &TcpStream, spare: &mut [MaybeUninit<u8>]) -> io::Result<usize> {
    let n = raw::recv(stream, spare.as_mut_ptr().cast(), spare.len());
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// Writes from `buf` to `stream`; how many bytes the socket took.
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
#[inline]
pub(super) fn send(stream: &TcpStream, buf: &[u8]) -> io::Result<usize> {
    let n = raw::send(stream, buf);
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// Writes `slices` to `stream` in order with one `writev`; how many bytes the socket took.
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
#[inline]
pub(super) fn writev(stream: &TcpStream, slices: &[IoSlice<'_>]) -> io::Result<usize> {
    let n = raw::writev(stream, slices);
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// Reads into `spare` from `stream`; how many bytes were read (0 at end of stream).
#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
pub(super) fn recv(stream: &TcpStream, spare: &mut [MaybeUninit<u8>]) -> io::Result<usize> {
    socket2::SockRef::from(stream).recv(spare)
}

/// Writes from `buf` to `stream`; how many bytes the socket took.
#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
pub(super) fn send(stream: &TcpStream, buf: &[u8]) -> io::Result<usize> {
    std::io::Write::write(&mut &*stream, buf)
}

/// Writes `slices` to `stream` in order with one vectored write; how many bytes it took.
#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
pub(super) fn writev(stream: &TcpStream, slices: &[IoSlice<'_>]) -> io::Result<usize> {
    std::io::Write::write_vectored(&mut &*stream, slices)
}
