//! Malformed HTTP and request smuggling attempts at the gateway (in process, two multi-site
//! listeners on one port, each routed to a [`Recorder`] backend). Every attempt is either
//! refused with 400 and never forwarded, or forwarded in a form no backend can read
//! differently (checked on the bytes the backend received: CRLF only, origin form, one
//! `Host`, one framing header). Content-Length together with Transfer-Encoding is covered by
//! `crates/sockway-gateway/tests/proxy.rs` (`ambiguous_framing_is_refused_with_400_and_never_
//! forwarded`).

use std::time::Duration;

use serde_json::json;
use sockway_gateway::config::{self, Format};
use sockway_gateway::Gateway;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::recorder::{Recorded, Recorder};
use crate::support::{shared, within};

/// The health probe's path, left out of the recordings that are judged.
const PROBE: &str = "/probe";

/// What must happen to one attempt.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// The answer is 400 and nothing with the marker reaches a backend.
    Refused,
    /// Either refused with 400, or forwarded once, cleanly, to the pool of this host.
    RefusedOrClean(&'static str),
    /// Only forwarded cleanly to the pool of this host (never to the other), or refused.
    RoutedTo(&'static str),
    /// Whatever the answer, no complete request with the marker reaches a backend.
    NotForwarded,
}

/// One attempt: a name, the marker that identifies it in the backends' recordings, the raw
/// bytes, and the expected outcome.
struct Case {
    name: &'static str,
    marker: &'static str,
    bytes: String,
    expect: Expect,
}

fn cases() -> Vec<Case> {
    let case = |name, marker, bytes: &str, expect| Case {
        name,
        marker,
        bytes: bytes.to_owned(),
        expect,
    };
    vec![
        case(
            "Transfer-Encoding: chunked, identity",
            "/te-identity",
            "POST /te-identity HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked, identity\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            Expect::Refused,
        ),
        case(
            "Transfer-Encoding over two lines, identity last",
            "/te-two-lines",
            "POST /te-two-lines HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            Expect::Refused,
        ),
        case(
            "obs-fold in a header value",
            "/obs-fold",
            "GET /obs-fold HTTP/1.1\r\nHost: a.test\r\nX-Folded: one\r\n two\r\nConnection: close\r\n\r\n",
            Expect::Refused,
        ),
        case(
            "obs-fold hiding Transfer-Encoding",
            "/obs-fold-te",
            "POST /obs-fold-te HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding:\r\n chunked\r\nContent-Length: 5\r\n\r\nhello",
            Expect::Refused,
        ),
        case(
            "whitespace before the colon",
            "/space-colon",
            "POST /space-colon HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\nhello",
            Expect::Refused,
        ),
        case(
            "bare LF line endings",
            "/bare-lf",
            "GET /bare-lf HTTP/1.1\nHost: a.test\nConnection: close\n\n",
            Expect::RefusedOrClean("a.test"),
        ),
        case(
            "bare LF then CRLF ending a head, hiding a CL+TE request",
            "/lf-hidden",
            "GET /lf-first HTTP/1.1\nHost: a.test\nContent-Length: 0\n\r\nPOST /lf-hidden HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            Expect::Refused,
        ),
        case(
            "CRLF then bare LF ending a head, hiding a CL+TE request",
            "/crlf-lf-hidden",
            "GET /crlf-lf-first HTTP/1.1\r\nHost: a.test\r\nContent-Length: 0\r\n\nPOST /crlf-lf-hidden HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            Expect::Refused,
        ),
        case(
            "absolute-form target naming another host than Host",
            "/abs-form",
            "GET http://b.test/abs-form HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n",
            Expect::RoutedTo("b.test"),
        ),
        case(
            "absolute-form target naming a host no listener serves",
            "/abs-evil",
            "GET http://evil.example/abs-evil HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n",
            Expect::NotForwarded,
        ),
        case(
            "duplicate Host",
            "/dup-host",
            "GET /dup-host HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\nConnection: close\r\n\r\n",
            Expect::Refused,
        ),
        case(
            "Content-Length: +5",
            "/cl-plus",
            "POST /cl-plus HTTP/1.1\r\nHost: a.test\r\nContent-Length: +5\r\n\r\nhello",
            Expect::Refused,
        ),
        case(
            "chunk size overflowing 64 bits (wraps to 5)",
            "/chunk-overflow",
            "POST /chunk-overflow HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n10000000000000005\r\nhello\r\n0\r\n\r\n",
            Expect::NotForwarded,
        ),
        case(
            "chunk size of 2^64 - 1",
            "/chunk-huge",
            "POST /chunk-huge HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nffffffffffffffff\r\nhello\r\n0\r\n\r\n",
            Expect::NotForwarded,
        ),
    ]
}

/// Sends `bytes` on a new connection to `port` and reads for at most `limit` (or until the
/// gateway closes); returns what came back.
async fn exchange(port: u16, bytes: &[u8], limit: Duration) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect to the gateway");
    let _ = stream.write_all(bytes).await;
    let mut back = Vec::new();
    let _ = tokio::time::timeout(limit, stream.read_to_end(&mut back)).await;
    String::from_utf8_lossy(&back).into_owned()
}

/// A port that was free a moment ago (the gateway's listeners take a fixed port).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Two listeners on one port, `a.test` to backend `a` and `b.test` to backend `b`.
fn gateway_config(port: u16, a: &Recorder, b: &Recorder) -> serde_json::Value {
    let pool = |name: &str, backend: &Recorder| {
        json!({"name": name, "backendAddresses": [
            {"ipAddress": "127.0.0.1", "port": backend.addr.port()}
        ]})
    };
    let rule = |name: &str, listener: &str, pool: &str, priority: u32| {
        json!({"name": name, "ruleType": "Basic", "httpListener": listener,
            "backendAddressPool": pool, "backendHttpSettings": "settings", "priority": priority})
    };
    json!({
        "httpListeners": [
            {"name": "a", "port": port, "bindAddress": "127.0.0.1", "hostNames": ["a.test"]},
            {"name": "b", "port": port, "bindAddress": "127.0.0.1", "hostNames": ["b.test"]}
        ],
        "backendAddressPools": [pool("poolA", a), pool("poolB", b)],
        "backendHttpSettingsCollection": [
            {"name": "settings", "port": 1, "requestTimeout": 1, "probe": "probe"}
        ],
        "probes": [
            {"name": "probe", "path": PROBE, "interval": 0.2, "timeout": 1, "unhealthyThreshold": 2}
        ],
        "requestRoutingRules": [rule("ra", "a", "poolA", 1), rule("rb", "b", "poolB", 2)],
        "limits": {"closeGrace": 0.5, "shutdownTimeout": 0.3, "headerReadTimeout": 2}
    })
}

/// The recordings of `backend` whose target contains `marker`.
fn with_marker(backend: &Recorder, marker: &str) -> Vec<Recorded> {
    backend
        .requests(PROBE)
        .into_iter()
        .filter(|r| r.target.contains(marker))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_smuggling_requests_are_refused_or_forwarded_unambiguously() {
    let _shared = shared().await;
    let a = Recorder::start().await;
    let b = Recorder::start().await;
    let port = free_port();
    let doc = gateway_config(port, &a, &b);
    let config = config::from_str(&doc.to_string(), Format::Json).expect("valid config");
    let gateway = Gateway::start(config, None)
        .await
        .expect("the gateway starts");
    within("backends healthy", Duration::from_secs(10), async {
        while gateway.health().iter().filter(|h| h.healthy).count() < 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;

    // A well-formed request goes through, cleanly.
    let good = exchange(
        port,
        b"GET /good HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(good.contains("recorded GET /good"), "{good}");

    // Every attempt at once, each on its own connection.
    let attempts = cases();
    let answers = futures_util::future::join_all(
        attempts
            .iter()
            .map(|case| exchange(port, case.bytes.as_bytes(), Duration::from_secs(3))),
    )
    .await;
    // Let anything still in flight to a backend arrive.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut problems = Vec::new();
    for (case, answer) in attempts.iter().zip(&answers) {
        let status = answer
            .lines()
            .next()
            .unwrap_or("(connection closed, no answer)");
        let at_a = with_marker(&a, case.marker);
        let at_b = with_marker(&b, case.marker);
        eprintln!(
            "gateway, {}: {status:?}; reached a.test {} time(s), b.test {} time(s)",
            case.name,
            at_a.len(),
            at_b.len()
        );
        let refused = answer.contains("HTTP/1.1 400");
        let problem = match case.expect {
            Expect::Refused => (!refused || !at_a.is_empty() || !at_b.is_empty())
                .then(|| "must be refused with 400 and never forwarded".to_owned()),
            Expect::NotForwarded => (!at_a.is_empty() || !at_b.is_empty())
                .then(|| "must never reach a backend".to_owned()),
            Expect::RefusedOrClean(host) | Expect::RoutedTo(host) => {
                let (right, wrong) = if host == "a.test" {
                    (&at_a, &at_b)
                } else {
                    (&at_b, &at_a)
                };
                if !wrong.is_empty() {
                    Some(format!("reached the other pool than {host}'s"))
                } else if refused && right.is_empty() {
                    None
                } else if right.len() != 1 {
                    Some(format!("forwarded {} times to {host}'s pool", right.len()))
                } else if right[0].all("host") != [host] {
                    Some(format!(
                        "the backend of {host} was told Host {:?}",
                        right[0].all("host")
                    ))
                } else {
                    None
                }
            }
        };
        if let Some(problem) = problem {
            problems.push(format!(
                "{}: {problem}; the answer was {answer:?}",
                case.name
            ));
        }
    }

    // Whatever reached a backend could not be read differently there.
    for (name, backend) in [("a.test", &a), ("b.test", &b)] {
        for request in backend.requests(PROBE) {
            let ambiguities = request.ambiguities();
            if !ambiguities.is_empty() {
                problems.push(format!(
                    "{name}'s backend received {} {}: {ambiguities:?}",
                    request.method, request.target
                ));
            }
        }
        eprintln!(
            "gateway: {name}'s backend could not frame: {:?}",
            backend.broken()
        );
    }
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(
        a.requests(PROBE).iter().any(|r| r.target == "/good"),
        "the good request was forwarded"
    );
    gateway.shutdown().await;
}
