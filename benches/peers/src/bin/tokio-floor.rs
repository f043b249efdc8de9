//! Not a WebSocket server: the floor under every tokio server that gives each connection a
//! task of its own. It answers the opening handshake (RFC 6455 section 4.2.2) and then its
//! task holds nothing but the `TcpStream`, waiting for the peer to close. What it costs per
//! idle connection (`benches/idle_memory.sh --servers tokio-floor --fresh`) is what tokio
//! and the allocator charge for one spawned task and one registered socket, before any
//! WebSocket state: no library built that way can go below it. It never echoes, so it is
//! only measured with `--fresh` (connections that exchanged no message).

use sockway::proto::handshake::accept_key;
use sockway_bench_peers::{accept, args, refuse_tls, run};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The largest request head it reads.
const MAX_HEAD: usize = 4096;

/// The value of the request's `Sec-WebSocket-Key` header, if the head has one.
fn websocket_key(head: &[u8]) -> Option<&[u8]> {
    const NAME: &[u8] = b"sec-websocket-key:";
    head.split(|&byte| byte == b'\n').find_map(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        (line.len() > NAME.len() && line[..NAME.len()].eq_ignore_ascii_case(NAME))
            .then(|| line[NAME.len()..].trim_ascii())
    })
}

/// Answers the handshake, then waits for the peer to close, holding only the stream.
async fn serve(mut stream: TcpStream) {
    let response = {
        // On the heap, so that the task's future does not carry it for the connection's life.
        let mut head = vec![0u8; MAX_HEAD];
        let mut len = 0;
        loop {
            match stream.read(&mut head[len..]).await {
                Ok(0) | Err(_) => return,
                Ok(n) => len += n,
            }
            if head[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
            if len == MAX_HEAD {
                return;
            }
        }
        let Some(key) = websocket_key(&head[..len]) else {
            return;
        };
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
            accept_key(key)
        )
    };
    if stream.write_all(response.as_bytes()).await.is_err() {
        return;
    }
    drop(response);
    let mut scratch = [0u8; 16];
    while let Ok(n) = stream.read(&mut scratch).await {
        if n == 0 {
            break;
        }
    }
}

fn main() {
    let args = args("tokio-floor", false);
    refuse_tls("tokio-floor", &args);
    run("tokio-floor", args, |listener| async move {
        loop {
            let stream = accept(&listener).await;
            tokio::spawn(serve(stream));
        }
    });
}
