use std::sync::{Arc, Mutex};

use tokio::time::Instant;

use super::*;

fn bearer(value: &'static str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(AUTHORIZATION, HeaderValue::from_static(value));
    h
}

#[test]
fn without_a_token_only_loopback_peers_are_answered() {
    let none = HeaderMap::new();
    assert!(authorize("127.0.0.1".parse().unwrap(), &none, None).is_ok());
    assert!(authorize("::1".parse().unwrap(), &none, None).is_ok());
    assert!(authorize("::ffff:127.0.0.1".parse().unwrap(), &none, None).is_ok());
    for outsider in ["192.0.2.1", "10.0.0.1", "2001:db8::1"] {
        let refused = authorize(outsider.parse().unwrap(), &none, None).unwrap_err();
        assert_eq!(refused, Refused::NotLoopback, "{outsider}");
        assert_eq!(refused.into_response().status(), StatusCode::FORBIDDEN);
    }
}

#[test]
fn with_a_token_every_peer_must_present_it() {
    let token = Some("0123456789abcdef-secret");
    let outsider: IpAddr = "192.0.2.1".parse().unwrap();
    let loopback: IpAddr = "127.0.0.1".parse().unwrap();
    assert!(authorize(outsider, &bearer("Bearer 0123456789abcdef-secret"), token).is_ok());
    assert!(authorize(outsider, &bearer("bearer 0123456789abcdef-secret"), token).is_ok());
    for (peer, headers) in [
        (loopback, HeaderMap::new()),
        (outsider, HeaderMap::new()),
        (outsider, bearer("Bearer 0123456789abcdef-secreT")),
        (outsider, bearer("Bearer 0123456789abcdef")),
        (outsider, bearer("Basic 0123456789abcdef-secret")),
        (outsider, bearer("0123456789abcdef-secret")),
    ] {
        let refused = authorize(peer, &headers, token)
            .unwrap_err()
            .into_response();
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED, "{headers:?}");
        let challenge = refused.headers()[WWW_AUTHENTICATE].to_str().unwrap();
        assert!(challenge.starts_with("Bearer "), "{challenge}");
    }
}

/// Fails every accept, noting when; after `calls` accepts it waits forever.
struct Failing {
    seen: Arc<Mutex<Vec<Instant>>>,
    calls: usize,
}

impl Acceptor for Failing {
    type Conn = ();

    fn accept(&mut self) -> impl Future<Output = std::io::Result<()>> + Send {
        let seen = self.seen.clone();
        let calls = self.calls;
        async move {
            let n = {
                let mut seen = seen.lock().unwrap();
                seen.push(Instant::now());
                seen.len()
            };
            if n >= calls {
                std::future::pending::<()>().await;
            }
            Err(std::io::Error::other("too many open files"))
        }
    }
}

#[tokio::test]
async fn accept_errors_back_off_instead_of_spinning() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (stop, shutdown) = watch::channel(false);
    let acceptor = Failing {
        seen: seen.clone(),
        calls: 6,
    };
    let task = tokio::spawn(accept_loop(acceptor, shutdown, |()| {}));
    tokio::time::timeout(Duration::from_secs(30), async {
        while seen.lock().unwrap().len() < 6 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("six accepts within 30 s");
    let seen = seen.lock().unwrap().clone();
    // Pauses of 10, 20, 40, 80 and 160 ms came between the six attempts.
    let waited = seen[5] - seen[0];
    assert!(waited >= Duration::from_millis(310), "{waited:?}");
    for pair in seen.windows(2).skip(1) {
        assert!(pair[1] - pair[0] >= Duration::from_millis(20), "{seen:?}");
    }
    stop.send_replace(true);
    tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("the loop stops on shutdown")
        .unwrap();
}

#[test]
fn the_backoff_doubles_up_to_a_second() {
    let mut b = Backoff::new();
    let pauses: Vec<u128> = (0..10).map(|_| b.next().as_millis()).collect();
    assert_eq!(pauses, [10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000]);
}
