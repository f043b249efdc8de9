//! The results of a run: printed for people, written as JSON for `benches/compare.sh`.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use super::histogram::Histogram;
use super::procfs::CpuTimes;

/// What a load run measured.
#[derive(Debug)]
pub struct LoadResults {
    /// A name for the server, from `--label`.
    pub label: Option<String>,
    /// The URL benchmarked.
    pub url: String,
    /// Connections asked for.
    pub connections: usize,
    /// Connections that were established.
    pub connected: usize,
    /// Connections on which permessage-deflate was negotiated.
    pub compressed: usize,
    /// Payload bytes per message.
    pub payload: usize,
    /// `"binary"` or `"text"`.
    pub kind: &'static str,
    /// `"alphabet"` or `"json"` (see `bench/payload.rs`).
    pub payload_style: &'static str,
    /// Messages outstanding per connection.
    pub in_flight: usize,
    /// The messages per second offered in all (`--rate`), if the load was paced.
    pub offered_rate: Option<f64>,
    /// Generator worker threads.
    pub threads: usize,
    /// The warm-up, not counted.
    pub warmup: Duration,
    /// The measured window as it really lasted.
    pub window: Duration,
    /// How long connecting took.
    pub connect_time: Duration,
    /// Echoes received in the measured window.
    pub messages: u64,
    /// Payload bytes echoed in the measured window (one direction).
    pub bytes: u64,
    /// Echoes received in any phase, warm-up and wind-down included.
    pub total_echoes: u64,
    /// Round trips measured.
    pub latency: Histogram,
    /// Connections that could not be established.
    pub connect_errors: u64,
    /// Connections that failed while running.
    pub connection_errors: u64,
    /// Echoes that differed in kind or length.
    pub mismatches: u64,
    /// The first error seen, as an example.
    pub first_error: Option<String>,
    /// The server's cost over the window, with `--server-pid`.
    pub server: Option<ProcessCost>,
    /// The generator's own CPU time over the window.
    pub generator_cpu: Option<Duration>,
}

/// A process's resource use over the measured window.
#[derive(Debug, Clone, Copy)]
pub struct ProcessCost {
    /// Its PID.
    pub pid: u32,
    /// CPU time used during the window, user and system.
    pub cpu: CpuTimes,
    /// Resident memory at the end of the window, in bytes.
    pub rss: u64,
}

impl LoadResults {
    /// All errors together.
    pub fn errors(&self) -> u64 {
        self.connect_errors + self.connection_errors + self.mismatches
    }

    /// Echoes per second in the window.
    pub fn rate(&self) -> f64 {
        per_second(self.messages, self.window)
    }

    /// Payload megabytes (10^6 bytes) echoed per second, one direction.
    pub fn megabytes_per_second(&self) -> f64 {
        per_second(self.bytes, self.window) / 1e6
    }

    /// Server CPU seconds per million echoed messages.
    pub fn server_cpu_per_million(&self) -> Option<f64> {
        let server = self.server?;
        (self.messages > 0).then(|| server.cpu.total().as_secs_f64() * 1e6 / self.messages as f64)
    }

    /// The human-readable report.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let label = self
            .label
            .as_deref()
            .map(|l| format!(" [{l}]"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "sockway bench {}{label}: {} connections, {}-byte {} messages ({} payload), {} in flight, {} generator threads",
            self.url,
            self.connections,
            self.payload,
            self.kind,
            self.payload_style,
            self.in_flight,
            self.threads
        );
        if let Some(rate) = self.offered_rate {
            let _ = writeln!(
                out,
                "  offered      {rate:.0} messages/s in all (paced), not as many as answered"
            );
        }
        let _ = writeln!(
            out,
            "  connected    {}/{} in {:.2} s; warm-up {:.1} s (discarded); measured {:.2} s",
            self.connected,
            self.connections,
            self.connect_time.as_secs_f64(),
            self.warmup.as_secs_f64(),
            self.window.as_secs_f64()
        );
        if self.compressed > 0 {
            let _ = writeln!(
                out,
                "  compression  permessage-deflate on {}/{} connections",
                self.compressed, self.connected
            );
        }
        let _ = writeln!(
            out,
            "  throughput   {:.0} messages/s, {:.2} MB/s of payload each way ({} messages)",
            self.rate(),
            self.megabytes_per_second(),
            self.messages
        );
        let l = &self.latency;
        let _ = writeln!(
            out,
            "  round trip   p50 {}  p99 {}  p99.9 {}  max {}  mean {}",
            ns(l.quantile(0.5) as f64),
            ns(l.quantile(0.99) as f64),
            ns(l.quantile(0.999) as f64),
            ns(l.max() as f64),
            ns(l.mean())
        );
        let _ = writeln!(
            out,
            "  errors       {} (connect {}, connections failed {}, wrong echoes {}){}",
            self.errors(),
            self.connect_errors,
            self.connection_errors,
            self.mismatches,
            self.first_error
                .as_deref()
                .map(|e| format!("; first: {e}"))
                .unwrap_or_default()
        );
        if let (Some(server), Some(per_million)) = (self.server, self.server_cpu_per_million()) {
            let _ = writeln!(
                out,
                "  server cost  pid {}: {:.2} CPU s in the window ({:.0} % of a core, {:.0} % of it in the kernel), {:.3} CPU s per million messages, RSS {:.1} MiB",
                server.pid,
                server.cpu.total().as_secs_f64(),
                100.0 * server.cpu.total().as_secs_f64() / self.window.as_secs_f64().max(1e-9),
                100.0 * server.cpu.system.as_secs_f64()
                    / server.cpu.total().as_secs_f64().max(1e-9),
                per_million,
                server.rss as f64 / (1 << 20) as f64
            );
        }
        if let Some(cpu) = self.generator_cpu {
            let _ = writeln!(
                out,
                "  generator    {:.2} CPU s in the window ({:.0} % of a core)",
                cpu.as_secs_f64(),
                100.0 * cpu.as_secs_f64() / self.window.as_secs_f64().max(1e-9)
            );
        }
        out
    }

    /// The JSON document `--json` writes.
    pub fn json(&self) -> String {
        let l = &self.latency;
        let document = LoadJson {
            mode: "load",
            label: self.label.as_deref(),
            url: &self.url,
            connections: self.connections,
            connected: self.connected,
            compressed: self.compressed,
            payload_bytes: self.payload,
            kind: self.kind,
            payload_style: self.payload_style,
            in_flight: self.in_flight,
            offered_rate: self.offered_rate,
            generator_threads: self.threads,
            warmup_seconds: self.warmup.as_secs_f64(),
            window_seconds: self.window.as_secs_f64(),
            connect_seconds: self.connect_time.as_secs_f64(),
            messages: self.messages,
            messages_per_second: self.rate(),
            megabytes_per_second: self.megabytes_per_second(),
            total_echoes: self.total_echoes,
            latency_ns: LatencyJson {
                count: l.count(),
                min: l.min(),
                p50: l.quantile(0.5),
                p90: l.quantile(0.9),
                p99: l.quantile(0.99),
                p999: l.quantile(0.999),
                max: l.max(),
                mean: l.mean(),
            },
            errors: self.errors(),
            connect_errors: self.connect_errors,
            connection_errors: self.connection_errors,
            mismatches: self.mismatches,
            first_error: self.first_error.as_deref(),
            server: self.server.map(|s| ServerJson {
                pid: s.pid,
                cpu_seconds: s.cpu.total().as_secs_f64(),
                system_cpu_seconds: s.cpu.system.as_secs_f64(),
                cpu_seconds_per_million_messages: self.server_cpu_per_million(),
                rss_bytes: s.rss,
            }),
            generator_cpu_seconds: self.generator_cpu.map(|c| c.as_secs_f64()),
        };
        to_json(&document)
    }
}

/// The `--json` document of a load run: one field per key, in the order written.
#[derive(Serialize)]
struct LoadJson<'a> {
    mode: &'static str,
    label: Option<&'a str>,
    url: &'a str,
    connections: usize,
    connected: usize,
    compressed: usize,
    payload_bytes: usize,
    kind: &'static str,
    payload_style: &'static str,
    in_flight: usize,
    offered_rate: Option<f64>,
    generator_threads: usize,
    warmup_seconds: f64,
    window_seconds: f64,
    connect_seconds: f64,
    messages: u64,
    messages_per_second: f64,
    megabytes_per_second: f64,
    total_echoes: u64,
    latency_ns: LatencyJson,
    errors: u64,
    connect_errors: u64,
    connection_errors: u64,
    mismatches: u64,
    first_error: Option<&'a str>,
    server: Option<ServerJson>,
    generator_cpu_seconds: Option<f64>,
}

/// Round-trip times in nanoseconds.
#[derive(Serialize)]
struct LatencyJson {
    count: u64,
    min: u64,
    p50: u64,
    p90: u64,
    p99: u64,
    p999: u64,
    max: u64,
    mean: f64,
}

/// The server's cost over the window (`--server-pid`).
#[derive(Serialize)]
struct ServerJson {
    pid: u32,
    cpu_seconds: f64,
    system_cpu_seconds: f64,
    cpu_seconds_per_million_messages: Option<f64>,
    rss_bytes: u64,
}

/// What an idle-connection run measured.
#[derive(Debug)]
pub struct IdleResults {
    /// A name for the server, from `--label`.
    pub label: Option<String>,
    /// The URL benchmarked.
    pub url: String,
    /// Connections asked for.
    pub connections: usize,
    /// Connections established (and held).
    pub connected: usize,
    /// The first connect error, as an example.
    pub first_error: Option<String>,
    /// The server's PID, with `--server-pid`.
    pub pid: Option<u32>,
    /// The server's RSS before connecting, in bytes.
    pub rss_before: Option<u64>,
    /// The server's RSS once it stopped changing with every connection open, in bytes.
    pub rss_after: Option<u64>,
    /// Seconds waited for the RSS to settle.
    pub settle: Duration,
}

impl IdleResults {
    /// Server memory per open connection, in bytes.
    pub fn per_connection(&self) -> Option<f64> {
        let (before, after) = (self.rss_before?, self.rss_after?);
        (self.connected > 0).then(|| (after as f64 - before as f64) / self.connected as f64)
    }

    /// The human-readable report.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let label = self
            .label
            .as_deref()
            .map(|l| format!(" [{l}]"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "sockway bench --idle {}{label}: {}/{} connections open{}",
            self.url,
            self.connected,
            self.connections,
            self.first_error
                .as_deref()
                .map(|e| format!(" (first error: {e})"))
                .unwrap_or_default()
        );
        if let (Some(before), Some(after), Some(per)) =
            (self.rss_before, self.rss_after, self.per_connection())
        {
            let _ = writeln!(
                out,
                "  server RSS   {:.1} MiB before, {:.1} MiB with the connections open (settled after {:.1} s): {:.0} bytes per connection",
                before as f64 / (1 << 20) as f64,
                after as f64 / (1 << 20) as f64,
                self.settle.as_secs_f64(),
                per
            );
        }
        out
    }

    /// The JSON document `--json` writes.
    pub fn json(&self) -> String {
        to_json(&IdleJson {
            mode: "idle",
            label: self.label.as_deref(),
            url: &self.url,
            connections: self.connections,
            connected: self.connected,
            first_error: self.first_error.as_deref(),
            pid: self.pid,
            rss_before_bytes: self.rss_before,
            rss_after_bytes: self.rss_after,
            settle_seconds: self.settle.as_secs_f64(),
            rss_bytes_per_connection: self.per_connection(),
        })
    }
}

/// The `--json` document of an idle run.
#[derive(Serialize)]
struct IdleJson<'a> {
    mode: &'static str,
    label: Option<&'a str>,
    url: &'a str,
    connections: usize,
    connected: usize,
    first_error: Option<&'a str>,
    pid: Option<u32>,
    rss_before_bytes: Option<u64>,
    rss_after_bytes: Option<u64>,
    settle_seconds: f64,
    rss_bytes_per_connection: Option<f64>,
}

/// Serialises a document; serde_json writes a number that is not finite (a rate over an
/// empty window) as `null`.
fn to_json(document: &impl Serialize) -> String {
    serde_json::to_string(document).unwrap_or_else(|_| "null".into())
}

fn per_second(count: u64, window: Duration) -> f64 {
    let seconds = window.as_secs_f64();
    if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    }
}

/// A duration in nanoseconds, shown in µs or ms.
fn ns(value: f64) -> String {
    if value >= 1e6 {
        format!("{:.2} ms", value / 1e6)
    } else {
        format!("{:.1} µs", value / 1e3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idle(label: Option<&str>, settle: f64) -> IdleResults {
        IdleResults {
            label: label.map(str::to_owned),
            url: "ws://127.0.0.1:1/".into(),
            connections: 2,
            connected: 2,
            first_error: None,
            pid: None,
            rss_before: Some(1000),
            rss_after: Some(3000),
            settle: Duration::from_secs_f64(settle),
        }
    }

    #[test]
    fn json_is_escaped_and_keeps_its_keys() {
        let doc: serde_json::Value =
            serde_json::from_str(&idle(Some("a\"b\\c\n\u{1}"), 1.5).json()).unwrap();
        assert_eq!(doc["mode"], "idle");
        assert_eq!(doc["label"], "a\"b\\c\n\u{1}");
        assert_eq!(doc["settle_seconds"], 1.5);
        assert_eq!(doc["rss_bytes_per_connection"], 1000.0);
        assert!(doc["pid"].is_null());
        let keys: Vec<&String> = doc.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 11);
    }
}
