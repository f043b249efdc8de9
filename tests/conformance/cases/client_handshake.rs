//! The client's side of the opening handshake (RFC 6455 section 4.1, "the client MUST
//! validate the server's response"): a response that is not a valid acceptance of *this*
//! request fails the connection, which then closes without a single WebSocket frame; a valid
//! one, however its header names are cased or however it is cut into writes, opens it.

use std::time::Duration;

use sockway_tests::frame::{Event, Frame, Sender};
use sockway_tests::http1;
use sockway_tests::peer::RawPeer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::{then_close, Body, Case, Roles};
use crate::client_app::ClientApp;
use crate::script::{self, expect, send};

const SECTION: &str = "handshake";

/// A response to send to the client and whether it must accept it.
#[derive(Debug, Clone)]
pub struct Response {
    /// The response head without the final blank line; `{accept}` is replaced by the right
    /// accept value for the client's key, `{wrong}` by one for another key.
    pub head: String,
    /// Send the head one byte per write.
    pub chopped: bool,
    /// Whether the client must open the connection.
    pub accept: bool,
}

fn case(id: &str, description: &str, lines: &[&str], chopped: bool, accept: bool) -> Case {
    Case {
        id: format!("{SECTION}.client.{id}"),
        section: SECTION,
        description: description.to_owned(),
        roles: Roles::Client,
        with_handshake: Vec::new(),
        body: Body::ClientHandshake(Response {
            head: lines.join("\r\n"),
            chopped,
            accept,
        }),
    }
}

const STATUS: &str = "HTTP/1.1 101 Switching Protocols";
const UPGRADE: &str = "Upgrade: websocket";
const CONNECTION: &str = "Connection: Upgrade";
const ACCEPT: &str = "Sec-WebSocket-Accept: {accept}";

/// The cases of this section (client role).
pub fn cases() -> Vec<Case> {
    vec![
        case(
            "valid-chopped",
            "a valid 101 sent one byte per write opens the connection",
            &[STATUS, UPGRADE, CONNECTION, ACCEPT],
            true,
            true,
        ),
        case(
            "valid-header-case",
            "header names and token values in other cases are accepted",
            &[
                STATUS,
                "UPGRADE: WebSocket",
                "connection: keep-alive, UPGRADE",
                "sec-websocket-accept: {accept}",
            ],
            false,
            true,
        ),
        case(
            "wrong-accept",
            "a Sec-WebSocket-Accept computed from another key fails the connection",
            &[STATUS, UPGRADE, CONNECTION, "Sec-WebSocket-Accept: {wrong}"],
            false,
            false,
        ),
        case(
            "missing-accept",
            "a 101 without Sec-WebSocket-Accept fails the connection",
            &[STATUS, UPGRADE, CONNECTION],
            false,
            false,
        ),
        case(
            "status-200",
            "a 200 response fails the connection",
            &[
                "HTTP/1.1 200 OK",
                UPGRADE,
                CONNECTION,
                ACCEPT,
                "Content-Length: 0",
            ],
            false,
            false,
        ),
        case(
            "status-426",
            "a 426 response fails the connection",
            &[
                "HTTP/1.1 426 Upgrade Required",
                "Sec-WebSocket-Version: 13",
                "Content-Length: 0",
            ],
            false,
            false,
        ),
        case(
            "missing-upgrade",
            "a 101 without Upgrade fails the connection",
            &[STATUS, CONNECTION, ACCEPT],
            false,
            false,
        ),
        case(
            "other-upgrade",
            "a 101 upgrading to another protocol fails the connection",
            &[STATUS, "Upgrade: h2c", CONNECTION, ACCEPT],
            false,
            false,
        ),
        case(
            "missing-connection",
            "a 101 without Connection: Upgrade fails the connection",
            &[STATUS, UPGRADE, ACCEPT],
            false,
            false,
        ),
        case(
            "unrequested-subprotocol",
            "a subprotocol the client did not offer fails the connection",
            &[
                STATUS,
                UPGRADE,
                CONNECTION,
                ACCEPT,
                "Sec-WebSocket-Protocol: chat",
            ],
            false,
            false,
        ),
        case(
            "unrequested-extension",
            "an extension the client did not offer fails the connection",
            &[
                STATUS,
                UPGRADE,
                CONNECTION,
                ACCEPT,
                "Sec-WebSocket-Extensions: x-sockway-test",
            ],
            false,
            false,
        ),
    ]
}

/// Runs a check: the test server reads the client's request, sends the response, and then
/// either runs a short exchange or checks that the client gave up without sending anything.
pub async fn run(
    response: &Response,
    app: &mut ClientApp,
    mut stream: TcpStream,
    deadline: Instant,
) -> Result<Vec<String>, String> {
    let within = deadline.saturating_duration_since(Instant::now());
    let (head, leftover) = http1::read_head(&mut stream, within).await?;
    let key = head.get("Sec-WebSocket-Key").unwrap_or_default().to_owned();
    let text = format!(
        "{}\r\n\r\n",
        response
            .head
            .replace("{accept}", &http1::accept_for(&key))
            .replace("{wrong}", &http1::accept_for(&http1::new_key()))
    );
    if response.chopped {
        for byte in text.as_bytes() {
            stream
                .write_all(std::slice::from_ref(byte))
                .await
                .map_err(|e| format!("writing response: {e}"))?;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    } else {
        stream
            .write_all(text.as_bytes())
            .await
            .map_err(|e| format!("writing response: {e}"))?;
    }
    if response.accept {
        let mut peer = RawPeer::new(stream, Sender::Server, leftover);
        let steps = then_close(vec![
            send(Frame::text("opened")),
            expect(Event::text("opened")),
        ]);
        let report = script::run(&steps, &mut peer, deadline).await?;
        let want = report.app_end.ok_or("script did not end")?;
        tokio::time::timeout_at(deadline, app.check(&want))
            .await
            .map_err(|_| "the client application did not finish".to_string())??;
        return Ok(report.notes);
    }
    // The client must fail the connection: report an error and close TCP without sending a
    // frame (there is no WebSocket connection to close).
    let mut rest = Vec::new();
    let read = tokio::time::timeout_at(deadline, stream.read_to_end(&mut rest)).await;
    match read {
        Err(_) => return Err("the client kept the connection open".into()),
        Ok(Err(e)) => return Err(format!("reading after the response: {e}")),
        Ok(Ok(_)) if !leftover.is_empty() || !rest.is_empty() => {
            return Err(format!(
                "the client sent {} bytes after a refused handshake",
                leftover.len() + rest.len()
            ))
        }
        Ok(Ok(_)) => {}
    }
    let error = tokio::time::timeout_at(deadline, app.check_setup_failed())
        .await
        .map_err(|_| "the client application did not finish".to_string())??;
    Ok(vec![format!("client: {error}")])
}
