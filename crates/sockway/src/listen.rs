//! Listeners that share one port (`SO_REUSEPORT`, Linux 3.9, `socket(7)`), for servers that
//! give each thread a listener of its own and let the kernel spread new connections over
//! them, as uWebSockets' processes and nginx's workers do: the async runner's
//! [`Server::serve_per_core`](crate::server::Server::serve_per_core) and the event loop's
//! `EventLoopServer::start_per_worker` (the `event-loop` feature).

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Socket, Type};

/// The backlog of each listener, as `tokio::net::TcpListener::bind` uses.
const BACKLOG: i32 = 1024;

/// `count` (at least 1) listeners on `address`, all with `SO_REUSEPORT` and `SO_REUSEADDR`,
/// non-blocking; with port 0 the first picks a free port and the others share it. On Linux
/// the kernel hands each new connection to one of them by a hash of its addresses.
pub fn reuse_port_listeners(
    address: SocketAddr,
    count: usize,
) -> io::Result<Vec<std::net::TcpListener>> {
    let first = reuse_port_listener(address)?;
    let address = first.local_addr()?;
    let mut listeners = vec![first];
    for _ in 1..count.max(1) {
        listeners.push(reuse_port_listener(address)?);
    }
    Ok(listeners)
}

fn reuse_port_listener(address: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(address), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    #[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos"))))]
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&address.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}
