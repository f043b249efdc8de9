//! What the event-loop server's integration tests share: an echo handler that also publishes,
//! one echo from sockway's client, stopping a server, and a bound on every step.

use std::time::Duration;

use sockway::client::ClientStream;
use sockway::event_loop::{Conn, Handler, LentMessage, OpenRequest, RunningServer};
use sockway::{Message, WebSocket};
use tokio::time::timeout;

/// A bound on every step, so a bug fails the test instead of hanging it.
pub const STEP: Duration = Duration::from_secs(10);

/// Echoes lent messages; "publish ..." is published to every connection (all subscribe to
/// one topic when they open).
#[derive(Clone)]
pub struct EchoAndPublish;

impl Handler for EchoAndPublish {
    type Session = ();

    fn open(&mut self, conn: &mut Conn<'_>, _request: &OpenRequest<'_>) {
        conn.subscribe("all").unwrap();
    }

    fn message(&mut self, _conn: &mut Conn<'_>, _session: &mut (), _message: Message) {
        panic!("lent_message is overridden, so message is never called");
    }

    fn lent_message(&mut self, conn: &mut Conn<'_>, _session: &mut (), message: LentMessage<'_>) {
        if message.as_bytes().starts_with(b"publish") {
            conn.publish("all", &message.into_owned()).unwrap();
        } else {
            conn.send_lent(&message).unwrap();
        }
    }
}

/// Sends `message` and expects it back.
pub async fn echo(socket: &mut WebSocket<ClientStream>, message: Message) {
    socket.send(message.clone()).await.unwrap();
    let echoed = timeout(STEP, socket.recv()).await.unwrap().unwrap();
    assert_eq!(echoed, Some(message));
}

/// Stops the server and waits for its workers: every connection is gone by then.
pub fn stop(server: RunningServer) {
    server.stop();
    server.join().unwrap();
}
