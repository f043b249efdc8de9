//! The authentication hook on negotiate and every transport, and mounting next to other
//! routes.

mod http_support;

use futures_util::future::BoxFuture;
use futures_util::FutureExt as _;
use http_support::{request, ws_url, Echo, TestServer, LIMIT};
use sockway::client::{ClientBuilder, ClientError};
use sockway::server::{Body, Server, ServerOptions};
use sockway_hub::auth::{AuthRefused, AuthRequest, AuthResult};
use sockway_hub::{HttpOptions, HubService};

fn only_alice(request: AuthRequest<'_>) -> BoxFuture<'static, AuthResult> {
    let answer = match request.token {
        Some("alice-token") => Ok(Some("alice".to_owned())),
        Some(_) => Err(AuthRefused("unknown token".into())),
        None => Err(AuthRefused("a bearer token is required".into())),
    };
    async move { answer }.boxed()
}

#[tokio::test]
async fn negotiate_without_a_good_token_gets_401() {
    let server = TestServer::start(HttpOptions::default().authenticator(only_alice)).await;
    let none = request(
        server.addr,
        "POST",
        "/hub/negotiate?negotiateVersion=1",
        &[],
        b"",
    )
    .await;
    assert_eq!(none.status, 401);
    assert_eq!(none.header("www-authenticate"), Some("Bearer"));
    assert_eq!(none.body, b"a bearer token is required");
    let wrong = request(
        server.addr,
        "POST",
        "/hub/negotiate?negotiateVersion=1",
        &[("Authorization", "Bearer mallory")],
        b"",
    )
    .await;
    assert_eq!(wrong.status, 401);
    let good = request(
        server.addr,
        "POST",
        "/hub/negotiate?negotiateVersion=1",
        &[("Authorization", "Bearer alice-token")],
        b"",
    )
    .await;
    assert_eq!(good.status, 200);
}

#[tokio::test]
async fn every_transport_request_is_authenticated_and_the_hub_learns_the_user() {
    let mut server = TestServer::start(HttpOptions::default().authenticator(only_alice)).await;
    let answer = request(
        server.addr,
        "POST",
        "/hub/negotiate?negotiateVersion=1&access_token=alice-token",
        &[],
        b"",
    )
    .await;
    assert_eq!(answer.status, 200);
    let answer: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    let token = answer["connectionToken"].as_str().unwrap();
    let anonymous = request(server.addr, "GET", &format!("/hub?id={token}"), &[], b"").await;
    assert_eq!(anonymous.status, 401);
    let post = request(server.addr, "POST", &format!("/hub?id={token}"), &[], b"x").await;
    assert_eq!(post.status, 401);
    let poll = request(
        server.addr,
        "GET",
        &format!("/hub?id={token}&access_token=alice-token"),
        &[],
        b"",
    )
    .await;
    assert_eq!(poll.status, 200);
    assert_eq!(server.started().await.user.as_deref(), Some("alice"));

    let refused = ClientBuilder::new(ws_url(server.addr, ""))
        .connect_message()
        .await;
    match refused {
        Err(ClientError::Rejected { status, .. }) => assert_eq!(status.as_u16(), 401),
        other => panic!("expected 401, got {:?}", other.err()),
    }
    let socket = tokio::time::timeout(
        LIMIT,
        ClientBuilder::new(ws_url(server.addr, "?access_token=alice-token")).connect_message(),
    )
    .await
    .unwrap();
    assert!(socket.is_ok());
    assert_eq!(server.started().await.user.as_deref(), Some("alice"));
}

#[tokio::test]
async fn other_paths_reach_the_wrapped_service() {
    let (events, _rx) = tokio::sync::mpsc::unbounded_channel();
    let pages = tower_service_fn();
    let hub = HubService::new("/chat/", Echo(events), HttpOptions::default()).fallback(pages);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::new(ServerOptions::default().handle_signals(false));
    let stop = server.shutdown_handle();
    tokio::spawn(server.serve(listener, hub));
    let page = request(addr, "GET", "/", &[], b"").await;
    assert_eq!(page.status, 200);
    assert_eq!(page.body, b"the page");
    let negotiate = request(addr, "POST", "/chat/negotiate", &[], b"").await;
    assert_eq!(negotiate.status, 200);
    stop.shutdown();
}

type Page = fn(http::Request<hyper::body::Incoming>) -> std::future::Ready<http::Response<Body>>;

fn page(
    _request: http::Request<hyper::body::Incoming>,
) -> std::future::Ready<http::Response<Body>> {
    std::future::ready(http::Response::new(Body::from("the page")))
}

fn tower_service_fn() -> sockway::server::ServiceFn<Page> {
    sockway::server::service_fn(page as Page)
}
