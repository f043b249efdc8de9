//! A ring's registered descriptors (a sparse table, `IORING_REGISTER_FILES2`, Linux 5.19).
//!
//! A request on a plain descriptor makes the kernel look the file up and take a reference
//! on it for the request's life, atomically, since the gateway's threads share one
//! descriptor table (`fget` and `fput`: about 1.5 % of a ring's CPU at 100 × 20 B, nearly
//! all of it for sends, which are one request per write). A request on a registered
//! descriptor finds the file in the ring's own table instead. Each session takes the two
//! entries of its slot while it is on the ring; a session in a slot beyond the table, or on
//! a kernel without the table, uses its plain descriptors.

use std::os::fd::RawFd;

use io_uring::types::{Fd, Fixed};
use io_uring::{opcode, squeue, IoUring};

/// Table sizes tried in turn (the kernel refuses one above the open-files limit): two
/// entries per session, so the first covers 4,096 sessions per ring in 64 KiB of kernel
/// memory.
const SIZES: [u32; 3] = [8192, 1024, 128];

/// Where a request finds a session's socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Target {
    /// An entry of the ring's table.
    Fixed(u32),
    /// The descriptor itself.
    Raw(RawFd),
}

/// The ring's table: how many entries it has (none when the kernel has no sparse tables).
pub(super) struct Files {
    entries: u32,
}

impl Files {
    /// Registers an empty table on `uring`, as large as the kernel allows of [`SIZES`].
    pub(super) fn new(uring: &IoUring) -> Self {
        let submitter = uring.submitter();
        let entries = SIZES
            .into_iter()
            .find(|&n| submitter.register_files_sparse(n).is_ok())
            .unwrap_or(0);
        if entries == 0 {
            tracing::debug!("io_uring: no registered descriptors; requests name the sockets");
        }
        Self { entries }
    }

    /// Puts a session's two sockets (client, backend) in the entries of its `slot`; where
    /// there is no room or the kernel refuses, the requests name the descriptors.
    pub(super) fn enter(&self, uring: &IoUring, slot: usize, fds: [RawFd; 2]) -> [Target; 2] {
        let raw = fds.map(Target::Raw);
        let Some(first) = slot
            .checked_mul(2)
            .and_then(|i| u32::try_from(i).ok())
            .filter(|&i| i.saturating_add(2) <= self.entries && !fds.contains(&-1))
        else {
            return raw;
        };
        match uring.submitter().register_files_update(first, &fds) {
            Ok(2) => [Target::Fixed(first), Target::Fixed(first + 1)],
            Ok(_) | Err(_) => {
                self.leave(uring, [Target::Fixed(first), Target::Fixed(first + 1)]);
                raw
            }
        }
    }

    /// Empties a session's entries, once nothing of its is in flight: an entry holds its
    /// socket open, so this comes before the sockets are closed or handed back.
    pub(super) fn leave(&self, uring: &IoUring, targets: [Target; 2]) {
        if let [Target::Fixed(first), Target::Fixed(_)] = targets {
            if let Err(error) = uring.submitter().register_files_update(first, &[-1, -1]) {
                tracing::warn!(%error, "io_uring: a session's registered descriptors stayed");
            }
        }
    }
}

/// A send of `len` bytes at `ptr` to `to`.
pub(super) fn send(to: Target, ptr: *const u8, len: u32, flags: i32) -> squeue::Entry {
    let send = match to {
        Target::Fixed(i) => opcode::Send::new(Fixed(i), ptr, len),
        Target::Raw(fd) => opcode::Send::new(Fd(fd), ptr, len),
    };
    send.flags(flags).build()
}

/// A receive from `from` into a buffer of `group` (`len` 0: whole buffers), with `mode`'s
/// flags (`IORING_RECV_MULTISHOT`, `IORING_RECVSEND_POLL_FIRST`).
pub(super) fn recv(from: Target, len: u32, group: u16, mode: u16) -> squeue::Entry {
    let recv = match from {
        Target::Fixed(i) => opcode::Recv::new(Fixed(i), std::ptr::null_mut(), len),
        Target::Raw(fd) => opcode::Recv::new(Fd(fd), std::ptr::null_mut(), len),
    };
    let entry = recv.buf_group(group).ioprio(mode).build();
    entry.flags(squeue::Flags::BUFFER_SELECT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;
    use std::time::Duration;

    /// A connected pair of loopback sockets.
    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let near = TcpStream::connect(listener.local_addr().expect("address")).expect("connect");
        let (far, _) = listener.accept().expect("accept");
        (near, far)
    }

    /// A send through a registered entry; after the entries are emptied, dropping the
    /// socket closes it (the peer reads the end), as a hand-back or a session's end needs.
    #[test]
    fn registered_sockets_carry_requests_and_close_once_left() {
        let Ok(mut uring) = IoUring::new(8) else {
            return eprintln!("io_uring unavailable here");
        };
        let files = Files::new(&uring);
        if files.entries == 0 {
            return eprintln!("no sparse descriptor tables here");
        }
        let (near, mut far) = pair();
        let (other, _other_far) = pair();
        let targets = files.enter(&uring, 1, [near.as_raw_fd(), other.as_raw_fd()]);
        assert_eq!(targets, [Target::Fixed(2), Target::Fixed(3)]);
        let message = b"through the table";
        let entry = send(targets[0], message.as_ptr(), message.len() as u32, 0);
        // SAFETY: `message` outlives the request, whose completion is waited for below.
        unsafe { uring.submission().push(&entry.user_data(7)) }.expect("queue room");
        uring.submit_and_wait(1).expect("submit");
        let done = uring.completion().next().expect("a completion");
        assert_eq!(done.result(), message.len() as i32);
        let mut got = [0u8; 17];
        far.read_exact(&mut got).expect("read");
        assert_eq!(&got, message);

        files.leave(&uring, targets);
        drop(near);
        far.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        assert_eq!(far.read(&mut got).expect("the end, not a timeout"), 0);
    }

    /// A slot beyond the table, or a socket that is not there, keeps plain descriptors.
    #[test]
    fn sessions_beyond_the_table_name_their_descriptors() {
        let Ok(uring) = IoUring::new(8) else {
            return eprintln!("io_uring unavailable here");
        };
        let files = Files::new(&uring);
        let (mut near, _far) = pair();
        let fd = near.as_raw_fd();
        let beyond = files.entries as usize / 2;
        assert_eq!(
            files.enter(&uring, beyond, [fd, fd]),
            [Target::Raw(fd), Target::Raw(fd)]
        );
        assert_eq!(
            files.enter(&uring, 0, [fd, -1]),
            [Target::Raw(fd), Target::Raw(-1)]
        );
        files.leave(&uring, [Target::Raw(fd), Target::Raw(fd)]);
        near.write_all(b"still open").expect("write");
    }
}
