//! The sample chat hub of `sockway hub` with the two Python SignalR clients from PyPI
//! (`tests/peers/signalr_py.py`), over what each supports: `signalrcore` over WebSockets
//! (JSON and MessagePack) and Server-Sent Events (it negotiates without `negotiateVersion`, so
//! these runs also cover version 0 of negotiate, where the connection id is the token);
//! `pysignalr` over WebSockets, JSON and MessagePack, with a client result. Scenarios: chat to
//! every connection, groups with the sample's texts, a server stream, a client stream, echo.
//!
//! Left out, for faults of signalrcore 1.0.2 itself: long polling (its poll loop hands on only
//! the first record of a response that carries several, so the rest wait for the next poll,
//! up to the 90 s poll timeout; its binary long-polling client does not construct at all),
//! and a client stream over MessagePack (it encodes the stream invocation without the
//! invocation-id slot, `[1, {}, "UploadStream", [], ["id"]]`, which the spec's layout does not
//! allow, and the server rightly closes the connection).
//!
//! Needs `SOCKWAY_PEERS_PYTHON` (the venv of `scripts/install-peers.sh`) and
//! `SOCKWAY_PEERS_NODE_DIR` (the server is given the npm client bundle for its page);
//! `scripts/test-all.sh` sets both. Without them the tests say so and pass.

mod echo_support;
mod hub_support;

use std::path::PathBuf;

use echo_support::peers_dir;
use hub_support::{assert_scenarios, run_peer, start_hub};

/// Runs `signalr_py.py HUB_URL --client CLIENT ARGS...` against a fresh `sockway hub` and
/// asserts that every scenario in `expected` passed.
async fn python_client(client: &str, args: &[&str], expected: &[&str]) {
    let Some(peers) = peers_dir() else {
        return;
    };
    let Some(python) = std::env::var_os("SOCKWAY_PEERS_PYTHON").map(PathBuf::from) else {
        println!("skipped: SOCKWAY_PEERS_PYTHON is not set (run scripts/test-all.sh)");
        return;
    };
    let mut hub = start_hub(&peers).await;
    let mut all = vec![
        peers.join("signalr_py.py").display().to_string(),
        hub.hub_url(),
        "--client".into(),
        client.into(),
    ];
    all.extend(args.iter().map(|a| a.to_string()));
    let run = run_peer(&python, &all, &peers).await;
    let results = assert_scenarios(&run, expected, &mut hub);
    assert_eq!(results.len(), expected.len(), "{}", run.stdout);
}

/// What signalrcore runs (it cannot answer client results); `upload_stream` last.
const SIGNALRCORE: &[&str] = &[
    "send_message",
    "groups",
    "stream_counter",
    "echo",
    "upload_stream",
];

/// What pysignalr runs.
const PYSIGNALR: &[&str] = &[
    "send_message",
    "groups",
    "stream_counter",
    "upload_stream",
    "echo",
    "client_result",
];

#[tokio::test]
async fn signalrcore_websockets_json() {
    python_client("signalrcore", &["--transport", "WebSockets"], SIGNALRCORE).await;
}

#[tokio::test]
async fn signalrcore_websockets_messagepack() {
    let without_upload = &SIGNALRCORE[..SIGNALRCORE.len() - 1];
    python_client(
        "signalrcore",
        &[
            "--transport",
            "WebSockets",
            "--protocol",
            "messagepack",
            "--only",
            &without_upload.join(","),
        ],
        without_upload,
    )
    .await;
}

#[tokio::test]
async fn signalrcore_server_sent_events_json() {
    python_client(
        "signalrcore",
        &["--transport", "ServerSentEvents"],
        SIGNALRCORE,
    )
    .await;
}

#[tokio::test]
async fn pysignalr_json() {
    python_client("pysignalr", &[], PYSIGNALR).await;
}

#[tokio::test]
async fn pysignalr_messagepack() {
    python_client("pysignalr", &["--protocol", "messagepack"], PYSIGNALR).await;
}
