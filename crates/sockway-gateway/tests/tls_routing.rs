//! TLS and routing agree: an unknown server name is refused at the handshake when no listener
//! catches every host, a wildcard host name stands for one label, a request whose `Host`
//! belongs to another listener than the SNI's gets 421, and renewed certificate files are
//! served without a restart.

mod support;

use std::path::Path;
use std::time::Duration;

use rustls::pki_types::ServerName;
use serde_json::json;
use sockway_gateway::reload::{self, Hangup};
use support::pki::*;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// A TLS connection to `port` sending `name` as SNI, trusting only `ca`.
async fn tls_connect(port: u16, ca: &Path, name: &str) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    let server_name = ServerName::try_from(name.to_owned()).unwrap();
    bounded(
        "TLS handshake",
        client_tls(&ca.to_path_buf()).connect(server_name, tcp),
    )
    .await
}

/// `GET /x` with `Host: host` on `tls`; the whole response.
async fn get_over(mut tls: TlsStream<TcpStream>, host: &str) -> String {
    let request = format!("GET /x HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = bounded("response", tls.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

fn https_listener(name: &str, port: u16, hosts: &[&str], pki: &Pki) -> serde_json::Value {
    json!({"name": name, "protocol": "Https", "port": port, "bindAddress": "127.0.0.1",
        "hostNames": hosts, "certificateFile": pki.cert, "keyFile": pki.key})
}

/// Two multi-site listeners on one port, `a` and `w`, each to its own backend.
fn two_sites(
    port: u16,
    a: &Backend,
    w: &Backend,
    a_hosts: &[&str],
    w_hosts: &[&str],
    pki: &Pki,
) -> serde_json::Value {
    let pool = |name: &str, backend: &Backend| json!({"name": name, "backendAddresses": [{"ipAddress": "127.0.0.1", "port": backend.port()}]});
    json!({
        "httpListeners": [https_listener("a", port, a_hosts, pki), https_listener("w", port, w_hosts, pki)],
        "backendAddressPools": [pool("pa", a), pool("pw", w)],
        "backendHttpSettingsCollection": [{"name": "s", "port": 1, "probe": "p"}],
        "probes": [{"name": "p", "interval": 0.1, "timeout": 1}],
        "requestRoutingRules": [
            {"name": "ra", "httpListener": "a", "backendAddressPool": "pa", "backendHttpSettings": "s"},
            {"name": "rw", "httpListener": "w", "backendAddressPool": "pw", "backendHttpSettings": "s"}
        ],
        "limits": {"shutdownTimeout": 0.2, "closeGrace": 0.5, "reloadPollInterval": 0.1}
    })
}

#[tokio::test]
async fn unknown_server_names_are_refused_at_the_handshake_and_wildcards_take_one_label() {
    // One certificate valid for every name tried, so only the gateway's choice can fail.
    let names = [
        "a.localhost",
        "c.localhost",
        "x.y.localhost",
        "q.x.y.localhost",
    ];
    let pki = pki_for("unknown-sni", &names);
    let a = Backend::start("site-a").await;
    let w = Backend::start("site-w").await;
    let port = free_port();
    let doc = two_sites(port, &a, &w, &["a.localhost"], &["*.y.localhost"], &pki);
    let gateway = start_gateway(&doc).await;
    wait_healthy(&gateway, 2).await;

    for (name, site) in [("a.localhost", "site-a"), ("x.y.localhost", "site-w")] {
        let tls = tls_connect(port, &pki.ca, name)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let response = get_over(tls, name).await;
        assert!(
            response.contains(&format!("backend={site}")),
            "{name}: {response}"
        );
    }
    for name in ["c.localhost", "q.x.y.localhost"] {
        let refused = tls_connect(port, &pki.ca, name).await;
        assert!(refused.is_err(), "{name}: served a certificate");
    }
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_host_of_another_listener_than_the_server_name_s_gets_421() {
    let pki = pki_for("misdirected", &["a.localhost", "b.localhost"]);
    let a = Backend::start("site-a").await;
    let b = Backend::start("site-b").await;
    let port = free_port();
    let doc = two_sites(port, &a, &b, &["a.localhost"], &["b.localhost"], &pki);
    let gateway = start_gateway(&doc).await;
    wait_healthy(&gateway, 2).await;

    let tls = tls_connect(port, &pki.ca, "a.localhost").await.unwrap();
    let response = get_over(tls, "b.localhost").await;
    assert!(response.starts_with("HTTP/1.1 421"), "{response}");
    assert!(!response.contains("backend=site-b"), "{response}");
    let tls = tls_connect(port, &pki.ca, "a.localhost").await.unwrap();
    let response = get_over(tls, "A.localhost:443").await;
    assert!(response.contains("backend=site-a"), "{response}");
    assert!(gateway.metrics_text().contains("misdirected"));
    gateway.shutdown().await;
}

#[tokio::test]
async fn renewed_certificate_files_are_served_without_a_restart() {
    let live = pki_for("renew-live", &["localhost"]);
    let renewed = pki_for("renew-next", &["localhost"]);
    let backend = Backend::start("b1").await;
    let port = free_port();
    let mut doc = basic_config(port, &[&backend], json!({}), None);
    doc["httpListeners"] = json!([https_listener("web", port, &["localhost"], &live)]);
    doc["limits"]["reloadPollInterval"] = json!(0.1);
    let gateway = start_gateway(&doc).await;
    wait_healthy(&gateway, 1).await;
    let watcher = tokio::spawn(reload::watch(gateway.clone(), Hangup::install()));

    let tls = tls_connect(port, &live.ca, "localhost").await.unwrap();
    assert!(get_over(tls, "localhost").await.contains("backend=b1"));
    // Renewal: new files written over the ones the configuration names.
    std::fs::copy(&renewed.key, &live.key).unwrap();
    std::fs::copy(&renewed.cert, &live.cert).unwrap();
    bounded("the renewed certificate is served", async {
        while tls_connect(port, &renewed.ca, "localhost").await.is_err() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(tls_connect(port, &live.ca, "localhost").await.is_err());
    let tls = tls_connect(port, &renewed.ca, "localhost").await.unwrap();
    assert!(get_over(tls, "localhost").await.contains("backend=b1"));
    watcher.abort();
    gateway.shutdown().await;
}
