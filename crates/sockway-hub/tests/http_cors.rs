//! CORS on the hub's HTTP endpoints (`HttpOptions::allowed_origins`): none by default,
//! preflights and credentialed responses for the allowed origins, 403 preflights for others,
//! and the WebSocket handshake's `Origin` check.

mod http_support;

use http_support::{request, ws_url, TestServer, LIMIT};
use sockway::client::{ClientBuilder, ClientError};
use sockway_hub::HttpOptions;

const APP: &str = "https://app.example";

fn preflight_headers<'a>(origin: &'a str, method: &'a str) -> [(&'a str, &'a str); 3] {
    [
        ("Origin", origin),
        ("Access-Control-Request-Method", method),
        (
            "Access-Control-Request-Headers",
            "x-requested-with,x-signalr-user-agent,authorization,content-type",
        ),
    ]
}

#[tokio::test]
async fn without_allowed_origins_no_cors_header_is_sent() {
    let server = TestServer::start(HttpOptions::default()).await;
    let negotiate = request(
        server.addr,
        "POST",
        "/hub/negotiate?negotiateVersion=1",
        &[("Origin", APP)],
        b"",
    )
    .await;
    assert_eq!(negotiate.status, 200);
    assert_eq!(negotiate.header("access-control-allow-origin"), None);
    assert_eq!(negotiate.header("access-control-allow-credentials"), None);
    let preflight = request(
        server.addr,
        "OPTIONS",
        "/hub/negotiate",
        &preflight_headers(APP, "POST"),
        b"",
    )
    .await;
    assert_eq!(preflight.status, 405);
    assert_eq!(preflight.header("access-control-allow-origin"), None);
}

#[tokio::test]
async fn an_allowed_origin_gets_preflights_and_credentialed_responses() {
    let server = TestServer::start(HttpOptions::default().allowed_origins([APP])).await;
    for (path, method, methods) in [
        ("/hub/negotiate", "POST", "POST"),
        ("/hub", "GET", "GET, POST, DELETE"),
        ("/hub", "POST", "GET, POST, DELETE"),
    ] {
        let preflight = request(
            server.addr,
            "OPTIONS",
            path,
            &preflight_headers(APP, method),
            b"",
        )
        .await;
        assert_eq!(preflight.status, 204, "{path} {method}");
        assert_eq!(preflight.header("access-control-allow-origin"), Some(APP));
        assert_eq!(
            preflight.header("access-control-allow-credentials"),
            Some("true")
        );
        assert_eq!(
            preflight.header("access-control-allow-methods"),
            Some(methods)
        );
        let allowed = preflight.header("access-control-allow-headers").unwrap();
        for header in [
            "x-requested-with",
            "x-signalr-user-agent",
            "authorization",
            "content-type",
        ] {
            assert!(allowed.contains(header), "{header} missing from {allowed}");
        }
    }

    let negotiate = request(
        server.addr,
        "POST",
        "/hub/negotiate?negotiateVersion=1",
        &[("Origin", APP)],
        b"",
    )
    .await;
    assert_eq!(negotiate.status, 200);
    assert_eq!(negotiate.header("access-control-allow-origin"), Some(APP));
    assert_eq!(
        negotiate.header("access-control-allow-credentials"),
        Some("true")
    );
    let body: serde_json::Value = serde_json::from_slice(&negotiate.body).unwrap();
    let token = body["connectionToken"].as_str().unwrap();

    // The first long poll answers at once; a POST carries data; both from the page's origin.
    let poll = request(
        server.addr,
        "GET",
        &format!("/hub?id={token}"),
        &[("Origin", APP)],
        b"",
    )
    .await;
    assert_eq!(poll.status, 200);
    assert_eq!(poll.header("access-control-allow-origin"), Some(APP));
    let post = request(
        server.addr,
        "POST",
        &format!("/hub?id={token}"),
        &[("Origin", APP)],
        b"hello",
    )
    .await;
    assert_eq!(post.status, 200);
    assert_eq!(post.header("access-control-allow-origin"), Some(APP));
    assert_eq!(
        post.header("access-control-allow-credentials"),
        Some("true")
    );
}

#[tokio::test]
async fn another_origin_gets_no_cors_headers_and_a_403_preflight() {
    let server = TestServer::start(HttpOptions::default().allowed_origins([APP])).await;
    let evil = "https://evil.example";
    let preflight = request(
        server.addr,
        "OPTIONS",
        "/hub/negotiate",
        &preflight_headers(evil, "POST"),
        b"",
    )
    .await;
    assert_eq!(preflight.status, 403);
    assert_eq!(preflight.header("access-control-allow-origin"), None);
    let negotiate = request(
        server.addr,
        "POST",
        "/hub/negotiate?negotiateVersion=1",
        &[("Origin", evil)],
        b"",
    )
    .await;
    assert_eq!(negotiate.header("access-control-allow-origin"), None);
    assert_eq!(negotiate.header("access-control-allow-credentials"), None);
    assert_eq!(negotiate.header("vary"), Some("Origin"));
}

async fn websocket_status(url: &str, origin: Option<&str>) -> Option<u16> {
    let mut builder = ClientBuilder::new(url);
    if let Some(origin) = origin {
        builder = builder.origin(origin);
    }
    let result = tokio::time::timeout(LIMIT, builder.connect_message())
        .await
        .expect("the handshake did not finish in time");
    match result {
        Ok(_) => None,
        Err(ClientError::Rejected { status, .. }) => Some(status.as_u16()),
        Err(other) => panic!("expected a handshake or a refusal, got {other}"),
    }
}

#[tokio::test]
async fn websockets_check_the_origin_against_the_list_and_the_servers_own() {
    let server = TestServer::start(HttpOptions::default().allowed_origins([APP])).await;
    let url = ws_url(server.addr, "");
    assert_eq!(websocket_status(&url, Some(APP)).await, None);
    let own = format!("http://{}", server.addr);
    assert_eq!(websocket_status(&url, Some(&own)).await, None);
    assert_eq!(websocket_status(&url, None).await, None);
    assert_eq!(
        websocket_status(&url, Some("https://evil.example")).await,
        Some(403)
    );

    let open = TestServer::start(HttpOptions::default()).await;
    let url = ws_url(open.addr, "");
    assert_eq!(
        websocket_status(&url, Some("https://evil.example")).await,
        None
    );
}
