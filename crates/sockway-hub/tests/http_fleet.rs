//! Servers that share a token key (the groundwork of issue #17): a WebSocket may start on a
//! server that did not negotiate it when that server adopts signed tokens; expired, foreign
//! and unsigned tokens still get 404, and so do the half-transports.

mod http_support;

use std::time::Duration;

use http_support::{request, ws_url, TestServer, LIMIT};
use sockway::client::{ClientBuilder, ClientError, MessageWebSocket};
use sockway::Message;
use sockway_hub::token::TokenKey;
use sockway_hub::HttpOptions;

fn fleet_options() -> HttpOptions {
    HttpOptions::default()
        .token_key(TokenKey::from_secret(
            b"the secret every server of the fleet shares",
        ))
        .adopt_signed_tokens(true)
        .stateful_reconnect(true)
}

async fn connect(url: &str) -> Result<MessageWebSocket, ClientError> {
    tokio::time::timeout(LIMIT, ClientBuilder::new(url).connect_message())
        .await
        .expect("the handshake did not finish in time")
}

fn status(result: Result<MessageWebSocket, ClientError>) -> u16 {
    match result {
        Err(ClientError::Rejected { status, .. }) => status.as_u16(),
        Err(other) => panic!("expected a refused handshake, got {other}"),
        Ok(_) => panic!("expected a refused handshake, got a socket"),
    }
}

#[tokio::test]
async fn a_socket_starts_on_a_sibling_of_the_server_that_negotiated() {
    let negotiator = TestServer::start(fleet_options()).await;
    let mut sibling = TestServer::start(fleet_options()).await;
    let (id, token) = negotiator.connection("&useStatefulReconnect=true").await;
    let mut socket = connect(&ws_url(sibling.addr, &format!("?id={token}")))
        .await
        .unwrap();
    let info = sibling.started().await;
    assert_eq!(info.connection_id, id);
    assert!(
        info.stateful_reconnect,
        "the token carries what negotiate agreed"
    );
    socket.send_text("across").await.unwrap();
    let echoed = tokio::time::timeout(LIMIT, socket.recv()).await.unwrap();
    assert_eq!(echoed.unwrap(), Some(Message::text("across")));

    // The half-transports need the server that holds the connection.
    let (_, polling) = negotiator.connection("").await;
    let poll = request(sibling.addr, "GET", &format!("/hub?id={polling}"), &[], b"").await;
    assert_eq!(poll.status, 404);
}

#[tokio::test]
async fn version_0_tokens_keep_the_token_as_the_public_id() {
    let negotiator = TestServer::start(fleet_options()).await;
    let mut sibling = TestServer::start(fleet_options()).await;
    let answer = negotiator.negotiate("").await;
    let id = answer["connectionId"].as_str().unwrap();
    let _socket = connect(&ws_url(sibling.addr, &format!("?id={id}")))
        .await
        .unwrap();
    assert_eq!(sibling.started().await.connection_id, id);
}

#[tokio::test]
async fn expired_foreign_and_unadopted_tokens_get_404() {
    let expired = TestServer::start(fleet_options().token_lifetime(Duration::ZERO)).await;
    let sibling = TestServer::start(fleet_options()).await;
    let (_, token) = expired.connection("").await;
    let refused = connect(&ws_url(sibling.addr, &format!("?id={token}"))).await;
    assert_eq!(status(refused), 404);

    let stranger = TestServer::start(HttpOptions::default()).await;
    let (_, token) = stranger.connection("").await;
    let refused = connect(&ws_url(sibling.addr, &format!("?id={token}"))).await;
    assert_eq!(status(refused), 404);

    let shared_key = fleet_options().adopt_signed_tokens(false);
    let unadopting = TestServer::start(shared_key).await;
    let negotiator = TestServer::start(fleet_options()).await;
    let (_, token) = negotiator.connection("").await;
    let refused = connect(&ws_url(unadopting.addr, &format!("?id={token}"))).await;
    assert_eq!(status(refused), 404);
}
