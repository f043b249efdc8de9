//! `sockway bench` run as a user would, against `sockway echo`: a saturating run counts echoes
//! without errors, and a paced run (`--rate`) offers the load asked for, not more.

mod echo_support;

use std::process::Command;
use std::time::Duration;

use echo_support::start_echo;

/// Runs `sockway bench` on `url` with `args` and `--json`; returns its JSON document.
fn bench(url: &str, args: &[&str]) -> serde_json::Value {
    let json = std::env::temp_dir().join(format!(
        "sockway-bench-test-{}-{}.json",
        std::process::id(),
        args.join("_").replace(['-', '.'], "")
    ));
    let output = Command::new(env!("CARGO_BIN_EXE_sockway"))
        .arg("bench")
        .arg(url)
        .args(args)
        .arg("--json")
        .arg(&json)
        .output()
        .expect("sockway bench runs");
    assert!(
        output.status.success(),
        "sockway bench failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(&json).expect("the JSON file was written");
    let _ = std::fs::remove_file(&json);
    serde_json::from_str(&text).expect("valid JSON")
}

#[tokio::test]
async fn a_saturating_run_and_a_paced_run() {
    let server = start_echo(&[]).await;
    let url = format!("ws://{}/ws", server.addr);
    let common = ["--connections", "4", "--warmup", "0.2", "--threads", "1"];

    let free = bench(&url, &[&common[..], &["--duration", "0.5"]].concat());
    assert_eq!(free["errors"], 0, "{free}");
    assert_eq!(free["offered_rate"], serde_json::Value::Null);
    assert!(free["messages"].as_u64().unwrap_or(0) > 0, "{free}");

    // 200 messages/s over 4 connections: one send per connection every 20 ms. The window
    // lasts about a second, so about 200 echoes; far fewer than the saturating run above
    // would give in that time on any machine, and bounded above whatever the scheduling.
    let paced = bench(
        &url,
        &[&common[..], &["--duration", "1", "--rate", "200"]].concat(),
    );
    assert_eq!(paced["errors"], 0, "{paced}");
    assert_eq!(paced["offered_rate"], 200.0);
    let window = paced["window_seconds"].as_f64().unwrap_or(0.0);
    let messages = paced["messages"].as_u64().unwrap_or(0) as f64;
    assert!(messages > 0.0, "{paced}");
    assert!(
        messages <= 200.0 * window + 4.0 * 5.0 + 8.0,
        "{messages} echoes in {window} s at 200/s: {paced}"
    );
    drop(server);
    tokio::time::sleep(Duration::from_millis(10)).await;
}

#[test]
fn a_rate_must_be_positive() {
    for rate in ["0", "-5", "fast", "inf"] {
        let output = Command::new(env!("CARGO_BIN_EXE_sockway"))
            .args(["bench", "ws://127.0.0.1:9/ws", &format!("--rate={rate}")])
            .output()
            .expect("sockway bench runs");
        assert!(!output.status.success(), "--rate {rate} was accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("messages per second"), "{stderr}");
    }
}
