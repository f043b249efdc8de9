//! `POST /hub/negotiate`: the answer's shape for negotiate versions 0 and 1, stateful
//! reconnect, errors, methods, and routing of other paths.

mod http_support;

use http_support::{request, TestServer};
use sockway_hub::HttpOptions;

#[tokio::test]
async fn version_1_has_a_public_id_and_a_distinct_secret_token() {
    let server = TestServer::start(HttpOptions::default()).await;
    let response = request(
        server.addr,
        "POST",
        "/hub/negotiate?negotiateVersion=1",
        &[],
        b"",
    )
    .await;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("application/json"));
    let answer: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(answer["negotiateVersion"], 1);
    let id = answer["connectionId"].as_str().unwrap();
    let token = answer["connectionToken"].as_str().unwrap();
    assert!(!id.is_empty() && !token.is_empty());
    assert_ne!(id, token);
    assert!(answer.get("useStatefulReconnect").is_none());
    assert_eq!(
        answer["availableTransports"],
        serde_json::json!([
            {"transport": "WebSockets", "transferFormats": ["Text", "Binary"]},
            {"transport": "ServerSentEvents", "transferFormats": ["Text"]},
            {"transport": "LongPolling", "transferFormats": ["Text", "Binary"]},
        ])
    );
}

#[tokio::test]
async fn version_0_has_no_token_and_its_id_opens_the_transports() {
    let server = TestServer::start(HttpOptions::default()).await;
    let answer = server.negotiate("").await;
    assert_eq!(answer["negotiateVersion"], 0);
    assert!(answer.get("connectionToken").is_none());
    let id = answer["connectionId"].as_str().unwrap();
    let poll = request(server.addr, "GET", &format!("/hub?id={id}"), &[], b"").await;
    assert_eq!(poll.status, 200, "the first poll starts the connection");
}

#[tokio::test]
async fn versions_above_1_get_1_and_query_keys_ignore_case() {
    let server = TestServer::start(HttpOptions::default()).await;
    assert_eq!(
        server.negotiate("NEGOTIATEVERSION=5").await["negotiateVersion"],
        1
    );
    assert_eq!(
        server.negotiate("negotiateversion=1").await["negotiateVersion"],
        1
    );
}

#[tokio::test]
async fn stateful_reconnect_is_echoed_only_when_asked_and_allowed() {
    let allowed = TestServer::start(HttpOptions::default().stateful_reconnect(true)).await;
    let asked = allowed
        .negotiate("negotiateVersion=1&useStatefulReconnect=true")
        .await;
    assert_eq!(asked["useStatefulReconnect"], true);
    let not_asked = allowed.negotiate("negotiateVersion=1").await;
    assert!(not_asked.get("useStatefulReconnect").is_none());

    let refused = TestServer::start(HttpOptions::default()).await;
    let asked = refused
        .negotiate("negotiateVersion=1&UseStatefulReconnect=true")
        .await;
    assert!(asked.get("useStatefulReconnect").is_none());
}

#[tokio::test]
async fn a_bad_version_gets_an_error_body() {
    let server = TestServer::start(HttpOptions::default()).await;
    let answer = server.negotiate("negotiateVersion=one").await;
    assert!(answer["error"].as_str().unwrap().contains("non-integer"));
    assert!(answer.get("connectionId").is_none());
}

#[tokio::test]
async fn only_post_negotiates_and_other_paths_are_not_found() {
    let server = TestServer::start(HttpOptions::default()).await;
    let get = request(
        server.addr,
        "GET",
        "/hub/negotiate?negotiateVersion=1",
        &[],
        b"",
    )
    .await;
    assert_eq!(get.status, 405);
    assert_eq!(get.header("allow"), Some("POST"));
    let put = request(server.addr, "PUT", "/hub", &[], b"").await;
    assert_eq!(put.status, 405);
    let elsewhere = request(server.addr, "GET", "/other", &[], b"").await;
    assert_eq!(elsewhere.status, 404);
}

#[tokio::test]
async fn the_store_limit_is_an_error_not_growth() {
    let server = TestServer::start(HttpOptions::default().max_connections(1)).await;
    server.negotiate("negotiateVersion=1").await;
    let answer = server.negotiate("negotiateVersion=1").await;
    assert!(answer["error"].as_str().is_some(), "{answer}");
}
