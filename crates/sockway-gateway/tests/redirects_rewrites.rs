//! Issue 19 item 11: `redirectConfigurations` (to another listener or a URL, 301-308),
//! `rewriteRuleSets` (request and response headers with server variables) and custom error
//! pages, over real loopback sockets.

mod support;

use serde_json::json;
use sockway_gateway::config::{self, Format};
use support::*;

fn doc(ports: [u16; 4], backend: &Backend, page_dir: &std::path::Path) -> serde_json::Value {
    let [web, legacy, app, dead] = ports;
    let listener =
        |name: &str, port: u16| json!({"name": name, "port": port, "bindAddress": "127.0.0.1"});
    let mut dead_listener = listener("dead", dead);
    dead_listener["customErrorConfigurations"] = json!([{"statusCode": "HttpStatus502",
        "customErrorPageFile": page_dir.join("502.html")}]);
    json!({
        "httpListeners": [listener("web", web), listener("legacy", legacy), listener("app", app), dead_listener],
        "backendAddressPools": [
            {"name": "pool", "backendAddresses": [{"ipAddress": "127.0.0.1", "port": backend.port()}]},
            {"name": "nowhere", "backendAddresses": [{"ipAddress": "127.0.0.1", "port": free_port()}]}
        ],
        "backendHttpSettingsCollection": [{"name": "settings", "port": 1, "requestTimeout": 5, "probe": "fast"}],
        "probes": [{"name": "fast", "path": "/", "interval": 0.1, "timeout": 1, "unhealthyThreshold": 2}],
        "redirectConfigurations": [
            {"name": "to-app", "redirectType": "Permanent", "targetListener": "app",
                "includePath": true, "includeQueryString": true},
            {"name": "moved", "redirectType": "PermanentRedirect", "targetUrl": "https://example.com/new"}
        ],
        "rewriteRuleSets": [{"name": "headers", "rewriteRules": [
            {"name": "second", "ruleSequence": 200, "actionSet": {
                "requestHeaderConfigurations": [{"headerName": "X-Client", "headerValue": "{var_client_ip} {var_uri_path} {http_req_X-Trace}"}]}},
            {"name": "first", "ruleSequence": 100, "actionSet": {
                "requestHeaderConfigurations": [
                    {"headerName": "X-Client", "headerValue": "overwritten by the later rule"},
                    {"headerName": "X-Remove-Me", "headerValue": ""}],
                "responseHeaderConfigurations": [{"headerName": "X-Served-By", "headerValue": "gateway on {var_server_port}"}]}}
        ]}],
        "customErrorConfigurations": [{"statusCode": "502", "customErrorPageFile": page_dir.join("global.html")}],
        "limits": {"closeGrace": 0.5, "shutdownTimeout": 0.3},
        "requestRoutingRules": [
            {"name": "r-web", "httpListener": "web", "redirectConfiguration": "to-app"},
            {"name": "r-legacy", "httpListener": "legacy", "redirectConfiguration": "moved"},
            {"name": "r-app", "httpListener": "app", "backendAddressPool": "pool",
                "backendHttpSettings": "settings", "rewriteRuleSet": "headers"},
            {"name": "r-dead", "httpListener": "dead", "backendAddressPool": "nowhere", "backendHttpSettings": "settings"}
        ]
    })
}

#[tokio::test]
async fn redirects_rewrites_and_error_pages() {
    let backend = Backend::start("b").await;
    let ports = [free_port(), free_port(), free_port(), free_port()];
    let [web, legacy, app, dead] = ports;
    let dir = std::env::temp_dir().join(format!("sockway-gw-pages-{web}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("502.html"), "<h1>we are fixing it</h1>").unwrap();
    std::fs::write(dir.join("global.html"), "<h1>global</h1>").unwrap();
    let gateway = start_gateway(&doc(ports, &backend, &dir)).await;
    wait_healthy(&gateway, 1).await;

    let r = get(web, "/a/b?x=1", "").await;
    assert!(r.starts_with("HTTP/1.1 301"), "{r}");
    assert!(
        r.contains(&format!("location: http://localhost:{app}/a/b?x=1")),
        "{r}"
    );
    let r = get(legacy, "/old?y=2", "").await;
    assert!(r.starts_with("HTTP/1.1 308"), "{r}");
    assert!(r.contains("location: https://example.com/new\r\n"), "{r}");
    assert!(!r.contains("backend="), "answered by the gateway: {r}");

    let r = get(app, "/headers", "X-Trace: t1\r\nX-Remove-Me: secret\r\n").await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert!(r.contains("x-client=127.0.0.1 /headers t1\n"), "{r}");
    assert!(!r.contains("x-remove-me"), "{r}");
    assert!(r.contains(&format!("x-served-by: gateway on {app}")), "{r}");
    let (mut ws, head) = ws_connect(app, "/", "").await.unwrap();
    assert!(head.contains("x-served-by: gateway on"), "{head}");
    let seen = ask(&mut ws, "headers").await;
    assert!(seen.contains("x-client=127.0.0.1 /"), "{seen}");

    let r = get(dead, "/", "").await;
    assert!(r.starts_with("HTTP/1.1 502"), "{r}");
    assert!(r.contains("content-type: text/html"), "{r}");
    assert!(
        r.ends_with("<h1>we are fixing it</h1>"),
        "the listener's own page: {r}"
    );
    gateway.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_redirects_and_rewrites_are_refused_with_their_paths() {
    let backend_port = 1;
    let doc = json!({
        "httpListeners": [{"name": "l", "port": 8080}],
        "backendAddressPools": [{"name": "p", "backendAddresses": [{"ipAddress": "127.0.0.1", "port": backend_port}]}],
        "backendHttpSettingsCollection": [{"name": "s", "port": 1}],
        "redirectConfigurations": [{"name": "r", "targetListener": "l", "targetUrl": "https://x"}],
        "rewriteRuleSets": [{"name": "w", "rewriteRules": [{"name": "x", "actionSet": {
            "requestHeaderConfigurations": [{"headerName": "X", "headerValue": "{var_nope}"}]}}]}],
        "customErrorConfigurations": [{"statusCode": "HttpStatus200", "customErrorPageUrl": "https://blob/x.html"}],
        "requestRoutingRules": [{"name": "rule", "httpListener": "l", "redirectConfiguration": "missing",
            "rewriteRuleSet": "w"}]
    });
    let error = config::from_str(&doc.to_string(), Format::Json).unwrap_err();
    let text = error.to_string();
    for path in [
        "redirectConfigurations[0].targetListener",
        "rewriteRuleSets[0].rewriteRules[0].actionSet.requestHeaderConfigurations[0].headerValue",
        "customErrorConfigurations[0].statusCode",
        "customErrorConfigurations[0].customErrorPageFile",
        "requestRoutingRules[0].redirectConfiguration",
    ] {
        assert!(text.contains(path), "{path} in {text}");
    }
}
