//! An experiment, not one of the compared servers: sockway's sans-I/O core driven by io_uring
//! instead of epoll, to measure what completion-based I/O would save before building it into
//! `sockway::event_loop` (see docs/benchmarks/rounds-1-6.md, "Sixth round").
//!
//! One thread per ring, each with its own `SO_REUSEPORT` listener (the kernel spreads the
//! connections), a multishot accept, and per connection one receive and at most one send in
//! flight; every loop turn submits all new requests and waits for completions in a single
//! `io_uring_enter`. Each connection keeps a 16 KiB receive buffer (no provided-buffer ring),
//! so its idle memory is not representative. The handshake is parsed just enough for the
//! benchmark's client (Sec-WebSocket-Key, 8 KiB head at most); framing, masking, UTF-8 and
//! close rules are sockway-proto's.

use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use bytes::{Buf, BytesMut};
use io_uring::{cqueue, opcode, squeue, types, IoUring};
use sockway::proto::connection::Delivery;
use sockway::proto::{Config, Connection, ConnectionState, Event, Role};
use sockway_bench_peers::{args, refuse_tls, ALLOCATOR_NAME, MAX_MESSAGE};

/// What a completion is for, in the low byte of its user data (the slot index above it).
const ACCEPT: u64 = 0;
const RECV: u64 = 1;
const SEND: u64 = 2;
/// Bytes one receive asks for.
const RECV_SIZE: usize = 16 * 1024;
/// The largest request head accepted.
const MAX_HEAD: usize = 8 * 1024;

/// One connection.
struct Conn {
    fd: OwnedFd,
    /// The request head, until the handshake is answered.
    head: Vec<u8>,
    protocol: Option<Connection>,
    input: BytesMut,
    /// The bytes of the send in flight (or about to be), kept still until it completes.
    sending: BytesMut,
    send_in_flight: bool,
    recv_buf: Box<[u8]>,
    recv_in_flight: bool,
    /// Shut down: the slot is freed once no request of it is in flight.
    dead: bool,
}

/// One ring's connections and the requests to submit next.
struct Ring {
    /// The listener's descriptor, to arm the multishot accept again when it ends.
    listener: i32,
    conns: Vec<Option<Box<Conn>>>,
    free: Vec<usize>,
    queued: Vec<squeue::Entry>,
    config: Config,
}

fn main() {
    let args = args("uring-echo", false);
    refuse_tls("uring-echo", &args);
    let address = SocketAddr::from(([127, 0, 0, 1], args.port));
    let listeners = sockway::server::reuse_port_listeners(address, args.threads).expect("bind");
    let address = listeners[0].local_addr().expect("local address");
    println!(
        "uring-echo listening on {address} (experiment: io_uring, {} rings, one per thread, \
         SO_REUSEPORT, max message {} MiB, no compression, {ALLOCATOR_NAME})",
        args.threads,
        MAX_MESSAGE >> 20
    );
    let threads: Vec<_> = listeners
        .into_iter()
        .map(|listener| {
            // The ring waits for connections itself: a blocking listener.
            listener.set_nonblocking(false).expect("blocking listener");
            std::thread::spawn(move || run(listener))
        })
        .collect();
    for thread in threads {
        if let Err(error) = thread.join().expect("ring thread") {
            eprintln!("uring-echo: {error}");
            std::process::exit(1);
        }
    }
}

/// Serves one ring until it fails.
fn run(listener: TcpListener) -> std::io::Result<()> {
    let mut uring = IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .build(4096)?;
    let mut ring = Ring {
        listener: listener.as_raw_fd(),
        conns: Vec::new(),
        free: Vec::new(),
        queued: vec![accept_entry(listener.as_raw_fd())],
        config: Config::default().max_message_size(MAX_MESSAGE),
    };
    let mut completions = Vec::with_capacity(1024);
    loop {
        for entry in ring.queued.drain(..) {
            // SAFETY: every buffer an entry names lives in a boxed `Conn` that is not dropped
            // or changed until the entry's completion has arrived.
            while unsafe { uring.submission().push(&entry) }.is_err() {
                uring.submit()?;
            }
        }
        match uring.submit_and_wait(1) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(4) => continue,
            Err(e) => return Err(e),
        }
        completions.extend(
            uring
                .completion()
                .map(|c: cqueue::Entry| (c.user_data(), c.result(), cqueue::more(c.flags()))),
        );
        for (user_data, result, more) in completions.drain(..) {
            let index = (user_data >> 8) as usize;
            match user_data & 0xff {
                ACCEPT => ring.accepted(result, more),
                RECV => ring.received(index, result),
                SEND => ring.sent(index, result),
                _ => {}
            }
        }
    }
}

impl Ring {
    /// A connection came in (or the accept failed, out of descriptors for instance); a
    /// multishot accept that ended (`more` false) is armed again at once, so a ring out of
    /// descriptors retries in a busy loop until one is freed (a benchmark peer's shortcut).
    fn accepted(&mut self, result: i32, more: bool) {
        if !more {
            self.queued.push(accept_entry(self.listener));
        }
        if result < 0 {
            return;
        }
        // SAFETY: a successful accept completion's result is a new descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(result) };
        let _ = socket2::SockRef::from(&fd).set_tcp_nodelay(true);
        let conn = Box::new(Conn {
            fd,
            head: Vec::new(),
            protocol: None,
            input: BytesMut::new(),
            sending: BytesMut::new(),
            send_in_flight: false,
            recv_buf: vec![0; RECV_SIZE].into_boxed_slice(),
            recv_in_flight: false,
            dead: false,
        });
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                self.conns.push(None);
                self.conns.len() - 1
            }
        };
        let conn = self.conns[index].insert(conn);
        self.queued.push(recv_entry(conn, index));
    }

    /// A receive completed: hand the bytes to the handshake or the protocol, answer, re-arm.
    fn received(&mut self, index: usize, result: i32) {
        let Some(conn) = self.conns.get_mut(index).and_then(Option::as_mut) else {
            return;
        };
        conn.recv_in_flight = false;
        if result <= 0 || conn.dead {
            return self.remove(index);
        }
        let len = result as usize;
        let keep = match conn.protocol.as_mut() {
            None => conn.handshake(len, &self.config),
            Some(protocol) => {
                conn.input.extend_from_slice(&conn.recv_buf[..len]);
                echo(protocol, &mut conn.input)
            }
        };
        if !keep {
            return self.remove(index);
        }
        queue_send(conn, index, &mut self.queued);
        let open = conn
            .protocol
            .as_ref()
            .is_none_or(|p| p.state() != ConnectionState::Closed);
        if open {
            self.queued.push(recv_entry(conn, index));
        }
    }

    /// A send completed: send what else waits, or end a closed connection once all is out.
    fn sent(&mut self, index: usize, result: i32) {
        let Some(conn) = self.conns.get_mut(index).and_then(Option::as_mut) else {
            return;
        };
        conn.send_in_flight = false;
        if result < 0 || conn.dead {
            return self.remove(index);
        }
        conn.sending.advance(result as usize);
        queue_send(conn, index, &mut self.queued);
        let closed = conn
            .protocol
            .as_ref()
            .is_some_and(|p| p.state() == ConnectionState::Closed);
        if closed && !conn.send_in_flight {
            self.remove(index);
        }
    }

    /// Shuts connection `index` down and frees its slot once no request of it is in flight
    /// (the kernel may still write into its buffers until then; shutting the socket down
    /// makes an armed receive complete).
    fn remove(&mut self, index: usize) {
        let Some(conn) = self.conns.get_mut(index).and_then(Option::as_mut) else {
            return;
        };
        if !conn.dead {
            conn.dead = true;
            let _ = socket2::SockRef::from(&conn.fd).shutdown(std::net::Shutdown::Both);
        }
        if !conn.recv_in_flight && !conn.send_in_flight {
            self.conns[index] = None;
            self.free.push(index);
        }
    }
}

impl Conn {
    /// Collects the request head (the first `len` bytes of the receive buffer); answers 101
    /// once it is complete. False: close.
    fn handshake(&mut self, len: usize, config: &Config) -> bool {
        self.head.extend_from_slice(&self.recv_buf[..len]);
        let Some(end) = self.head.windows(4).position(|w| w == b"\r\n\r\n") else {
            return self.head.len() <= MAX_HEAD;
        };
        let Some(key) = websocket_key(&self.head[..end]) else {
            return false;
        };
        let accept = sockway::proto::handshake::accept_key(key.as_bytes());
        self.sending.extend_from_slice(
            format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                 Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
            )
            .as_bytes(),
        );
        let mut protocol = Connection::new(Role::Server, config.clone());
        self.input.extend_from_slice(&self.head[end + 4..]);
        self.head = Vec::new();
        let keep = echo(&mut protocol, &mut self.input);
        self.protocol = Some(protocol);
        keep
    }
}

/// Echoes every whole message in `input`. False once the protocol failed.
fn echo(protocol: &mut Connection, input: &mut BytesMut) -> bool {
    loop {
        match protocol.read_event(input, Delivery::Messages) {
            Ok(Some(Event::Message(message))) => {
                let _ = protocol.send(&message);
            }
            Ok(Some(_)) => {}
            Ok(None) => return true,
            Err(_) => return protocol.has_output(),
        }
    }
}

/// The request's Sec-WebSocket-Key, if it has one.
fn websocket_key(head: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(head).ok()?;
    text.split("\r\n").skip(1).find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("sec-websocket-key")
            .then(|| value.trim().to_owned())
    })
}

/// Queues a send of what waits, unless one is in flight.
fn queue_send(conn: &mut Conn, index: usize, queued: &mut Vec<squeue::Entry>) {
    if conn.send_in_flight {
        return;
    }
    if conn.sending.is_empty() {
        if let Some(protocol) = conn.protocol.as_mut().filter(|p| p.has_output()) {
            conn.sending = protocol.take_output();
        }
    }
    if !conn.sending.is_empty() {
        conn.send_in_flight = true;
        let len = u32::try_from(conn.sending.len()).unwrap_or(u32::MAX);
        let entry = opcode::Send::new(types::Fd(conn.fd.as_raw_fd()), conn.sending.as_ptr(), len)
            .build()
            .user_data(((index as u64) << 8) | SEND);
        queued.push(entry);
    }
}

/// A multishot accept on `listener`.
fn accept_entry(listener: i32) -> squeue::Entry {
    opcode::AcceptMulti::new(types::Fd(listener))
        .build()
        .user_data(ACCEPT)
}

/// A receive into the connection's buffer.
fn recv_entry(conn: &mut Conn, index: usize) -> squeue::Entry {
    conn.recv_in_flight = true;
    opcode::Recv::new(
        types::Fd(conn.fd.as_raw_fd()),
        conn.recv_buf.as_mut_ptr(),
        RECV_SIZE as u32,
    )
    .build()
    .user_data(((index as u64) << 8) | RECV)
}
