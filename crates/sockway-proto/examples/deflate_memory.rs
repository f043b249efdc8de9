//! Measures the memory a permessage-deflate connection holds, per setting: N server-side
//! connections each receive and send one compressed message, then the process's resident
//! set growth is divided by N.
//!
//! ```text
//! cargo run --release -p sockway-proto --example deflate_memory [N]
//! ```

use bytes::BytesMut;
use sockway_proto::connection::Delivery;
use sockway_proto::deflate::DeflateParams;
use sockway_proto::{Config, Connection, Role};

fn resident_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn measure(label: &str, count: usize, params: Option<DeflateParams>) {
    let message = "a chat message of ordinary length, repeated a little ".repeat(4);
    let before = resident_kib();
    let mut held = Vec::with_capacity(count);
    for _ in 0..count {
        let mut client = match params {
            Some(p) => Connection::with_deflate(Role::Client, Config::default(), p),
            None => Connection::new(Role::Client, Config::default()),
        };
        let mut server = match params {
            Some(p) => Connection::with_deflate(Role::Server, Config::default(), p),
            None => Connection::new(Role::Server, Config::default()),
        };
        client.send_text(&message).expect("send");
        let mut input = BytesMut::from(&client.take_output()[..]);
        let _ = server
            .read_event(&mut input, Delivery::Messages)
            .expect("receive");
        server.send_text(&message).expect("echo");
        let _ = server.take_output();
        held.push(server);
    }
    let after = resident_kib();
    let per = (after.saturating_sub(before)) as f64 / count as f64;
    println!("| {label} | {per:.1} KiB |");
    drop(held);
}

/// The settings measured, by name.
fn settings() -> Vec<(&'static str, Option<DeflateParams>)> {
    let params = |bits, nct| DeflateParams {
        local_max_window_bits: bits,
        local_no_context_takeover: nct,
        remote_no_context_takeover: nct,
        local_compression_level: 1,
    };
    vec![
        ("no compression", None),
        (
            "deflate, window 15, context takeover",
            Some(params(15, false)),
        ),
        (
            "deflate, window 12, context takeover",
            Some(params(12, false)),
        ),
        (
            "deflate, window 9, context takeover",
            Some(params(9, false)),
        ),
        (
            "deflate, window 15, no context takeover",
            Some(params(15, true)),
        ),
        (
            "deflate, window 9, no context takeover",
            Some(params(9, true)),
        ),
    ]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let count: usize = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(2000);
    // Each setting runs in a fresh process, so memory freed by one is not reused by the next.
    if let Some(index) = args.get(2).and_then(|i| i.parse::<usize>().ok()) {
        if let Some((label, params)) = settings().get(index).copied() {
            measure(label, count, params);
        }
        return;
    }
    println!("server-side memory per connection after one message each way, {count} connections");
    println!();
    println!("| setting | memory per connection |");
    println!("| --- | --- |");
    let exe = std::env::current_exe().expect("own path");
    for index in 0..settings().len() {
        let status = std::process::Command::new(&exe)
            .arg(count.to_string())
            .arg(index.to_string())
            .status()
            .expect("run a measurement");
        assert!(status.success());
    }
}
