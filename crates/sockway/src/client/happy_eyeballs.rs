//! Racing a host's addresses, per RFC 8305 (Happy Eyeballs version 2): the address list
//! alternates families (section 4), attempts start one at a time, the next one after the
//! Connection Attempt Delay (250 ms by default, section 5) or at once when an attempt fails,
//! the first connection to succeed wins and every other attempt is dropped, which closes its
//! socket. Dropping the race itself aborts every attempt in flight.
//!
//! Name resolution happens before the race (the system resolver returns both families at
//! once, so section 3's resolution delay does not apply).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::net::{TcpSocket, TcpStream};

use super::error::ClientError;

/// Socket options applied to every attempt before it connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SocketOptions {
    /// `TCP_NODELAY`: send small frames at once rather than waiting (Nagle).
    pub nodelay: bool,
    /// `SO_SNDBUF`, if set.
    pub send_buffer: Option<u32>,
    /// `SO_RCVBUF`, if set.
    pub recv_buffer: Option<u32>,
    /// The source address to bind before connecting (port chosen by the OS), if set.
    pub local_address: Option<IpAddr>,
}

/// Orders `addrs` for racing: the first address's family first, then alternating families
/// (RFC 8305 section 4, "First Address Family Count" of 1), each family in the resolver's
/// order, without duplicates, cut to `max` addresses.
pub(crate) fn interleave(addrs: &[SocketAddr], max: usize) -> Vec<SocketAddr> {
    let mut unique: Vec<SocketAddr> = Vec::with_capacity(addrs.len());
    for addr in addrs {
        if !unique.contains(addr) {
            unique.push(*addr);
        }
    }
    let first_is_v6 = unique.first().is_some_and(SocketAddr::is_ipv6);
    let (mut first, mut second): (Vec<_>, Vec<_>) =
        unique.into_iter().partition(|a| a.is_ipv6() == first_is_v6);
    first.reverse();
    second.reverse();
    let mut out = Vec::with_capacity(max.min(addrs.len()));
    while out.len() < max {
        match (first.pop(), second.pop()) {
            (None, None) => break,
            (a, b) => out.extend(a.into_iter().chain(b).take(max - out.len())),
        }
    }
    out
}

async fn attempt(addr: SocketAddr, options: SocketOptions) -> (SocketAddr, io::Result<TcpStream>) {
    let result = async {
        let socket = if addr.is_ipv6() {
            TcpSocket::new_v6()?
        } else {
            TcpSocket::new_v4()?
        };
        if let Some(ip) = options.local_address {
            bind_source(&socket, ip, addr)?;
        }
        if let Some(size) = options.send_buffer {
            socket.set_send_buffer_size(size)?;
        }
        if let Some(size) = options.recv_buffer {
            socket.set_recv_buffer_size(size)?;
        }
        let stream = socket.connect(addr).await?;
        stream.set_nodelay(options.nodelay)?;
        Ok(stream)
    }
    .await;
    (addr, result)
}

/// Binds `socket` to the source address `ip` (port chosen by the OS) before it connects to
/// `target`; a source of the other family cannot reach the target, so that is refused.
fn bind_source(socket: &TcpSocket, ip: IpAddr, target: SocketAddr) -> io::Result<()> {
    if ip.is_ipv6() != target.is_ipv6() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("the local address {ip} and the target {target} are of different families"),
        ));
    }
    leave_port_to_connect(socket);
    socket.bind(SocketAddr::new(ip, 0))
}

/// Asks the kernel to pick the source port at `connect` rather than at `bind`
/// (`IP_BIND_ADDRESS_NO_PORT`, Linux 4.2). A port bound before the destination is known
/// must differ from every other socket's on that address, those in TIME_WAIT included, so
/// bind-then-connect runs out after about 28,000 connections per source address in all;
/// picked at connect, a port need only make the four-tuple unique, as when no source
/// address is given (nginx sets the same option for `proxy_bind` without a port). Best
/// effort: where the option is missing, `bind` picks the port as before.
#[cfg(target_os = "linux")]
fn leave_port_to_connect(socket: &TcpSocket) {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: the descriptor is the socket's own, open for this call, and the option value
    // is an `int` passed with its size, as setsockopt(2) asks.
    let _ = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
}

/// Without `IP_BIND_ADDRESS_NO_PORT`, `bind` picks the port.
#[cfg(not(target_os = "linux"))]
fn leave_port_to_connect(_socket: &TcpSocket) {}

/// Races connections to `addrs` (already ordered by [`interleave`]); the first to connect
/// wins. Fails with [`ClientError::Refused`] when every address refused, else
/// [`ClientError::Unreachable`] with the last error. Has no timeout of its own: the caller's
/// connect deadline bounds it, and dropping the future drops every attempt.
pub(crate) async fn race(
    addrs: &[SocketAddr],
    attempt_delay: Duration,
    options: SocketOptions,
) -> Result<TcpStream, ClientError> {
    let mut pending = FuturesUnordered::new();
    let mut next = addrs.iter().copied().peekable();
    let mut all_refused = true;
    let mut last_error = None;
    let delay = tokio::time::sleep(attempt_delay);
    tokio::pin!(delay);
    if let Some(addr) = next.next() {
        pending.push(attempt(addr, options));
    }
    while !pending.is_empty() {
        let has_more = next.peek().is_some();
        tokio::select! {
            Some((addr, result)) = pending.next() => match result {
                Ok(stream) => {
                    tracing::debug!(%addr, "connected");
                    return Ok(stream);
                }
                Err(error) => {
                    tracing::debug!(%addr, %error, "connection attempt failed");
                    all_refused &= error.kind() == io::ErrorKind::ConnectionRefused;
                    last_error = Some(error);
                }
            },
            () = &mut delay, if has_more => {}
        }
        // Either an attempt failed or the attempt delay passed: start the next one.
        if let Some(addr) = next.next() {
            tracing::debug!(%addr, "starting connection attempt");
            pending.push(attempt(addr, options));
            delay
                .as_mut()
                .reset(tokio::time::Instant::now() + attempt_delay);
        }
    }
    let addrs = addrs.to_vec();
    match last_error {
        Some(_) if all_refused => Err(ClientError::Refused { addrs }),
        Some(error) => Err(ClientError::Unreachable {
            addrs,
            detail: error.to_string(),
        }),
        None => Err(ClientError::Unreachable {
            addrs,
            detail: "no address to try".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(last: u8) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, last], 80))
    }

    fn v6(last: u16) -> SocketAddr {
        SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, last], 80))
    }

    #[test]
    fn interleaves_families_and_caps() {
        let addrs = [v6(1), v6(2), v6(3), v4(1), v4(2)];
        assert_eq!(
            interleave(&addrs, 10),
            vec![v6(1), v4(1), v6(2), v4(2), v6(3)]
        );
        assert_eq!(interleave(&addrs, 3), vec![v6(1), v4(1), v6(2)]);
        assert_eq!(interleave(&[v4(1), v4(1), v6(1)], 5), vec![v4(1), v6(1)]);
        assert!(interleave(&[], 5).is_empty());
    }

    /// Binding a source address reserves no port: the port is picked by `connect`, so that
    /// TIME_WAIT sockets and connections to other servers do not use up the address's ports.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_bound_source_leaves_the_port_to_connect() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = listener.local_addr().unwrap();
        let source = IpAddr::from([127, 0, 0, 1]);
        let socket = TcpSocket::new_v4().unwrap();
        bind_source(&socket, source, target).unwrap();
        assert_eq!(socket.local_addr().unwrap(), SocketAddr::new(source, 0));
        let stream = socket.connect(target).await.unwrap();
        let local = stream.local_addr().unwrap();
        assert_eq!(local.ip(), source);
        assert_ne!(local.port(), 0);
        let (_accepted, peer) = listener.accept().await.unwrap();
        assert_eq!(peer, local);
    }

    #[tokio::test]
    async fn all_refused_is_refused() {
        // Bind then drop: nothing listens on these ports afterwards.
        let mut addrs = Vec::new();
        for _ in 0..2 {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            addrs.push(l.local_addr().unwrap());
        }
        let options = SocketOptions {
            nodelay: true,
            send_buffer: None,
            recv_buffer: None,
            local_address: None,
        };
        let e = race(&addrs, Duration::from_millis(250), options)
            .await
            .unwrap_err();
        assert!(matches!(e, ClientError::Refused { .. }), "{e}");
    }
}
