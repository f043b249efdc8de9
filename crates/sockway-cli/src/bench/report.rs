//! The results of a run: printed for people, written as JSON for `benches/compare.sh`.

use std::fmt::Write as _;
use std::time::Duration;

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
        let latency = object(&[
            ("count", l.count().to_string()),
            ("min", l.min().to_string()),
            ("p50", l.quantile(0.5).to_string()),
            ("p90", l.quantile(0.9).to_string()),
            ("p99", l.quantile(0.99).to_string()),
            ("p999", l.quantile(0.999).to_string()),
            ("max", l.max().to_string()),
            ("mean", number(l.mean())),
        ]);
        let server = match self.server {
            Some(s) => object(&[
                ("pid", s.pid.to_string()),
                ("cpu_seconds", number(s.cpu.total().as_secs_f64())),
                ("system_cpu_seconds", number(s.cpu.system.as_secs_f64())),
                (
                    "cpu_seconds_per_million_messages",
                    self.server_cpu_per_million().map_or("null".into(), number),
                ),
                ("rss_bytes", s.rss.to_string()),
            ]),
            None => "null".into(),
        };
        object(&[
            ("mode", string("load")),
            ("label", self.label.as_deref().map_or("null".into(), string)),
            ("url", string(&self.url)),
            ("connections", self.connections.to_string()),
            ("connected", self.connected.to_string()),
            ("compressed", self.compressed.to_string()),
            ("payload_bytes", self.payload.to_string()),
            ("kind", string(self.kind)),
            ("payload_style", string(self.payload_style)),
            ("in_flight", self.in_flight.to_string()),
            (
                "offered_rate",
                self.offered_rate.map_or("null".into(), number),
            ),
            ("generator_threads", self.threads.to_string()),
            ("warmup_seconds", number(self.warmup.as_secs_f64())),
            ("window_seconds", number(self.window.as_secs_f64())),
            ("connect_seconds", number(self.connect_time.as_secs_f64())),
            ("messages", self.messages.to_string()),
            ("messages_per_second", number(self.rate())),
            ("megabytes_per_second", number(self.megabytes_per_second())),
            ("total_echoes", self.total_echoes.to_string()),
            ("latency_ns", latency),
            ("errors", self.errors().to_string()),
            ("connect_errors", self.connect_errors.to_string()),
            ("connection_errors", self.connection_errors.to_string()),
            ("mismatches", self.mismatches.to_string()),
            (
                "first_error",
                self.first_error.as_deref().map_or("null".into(), string),
            ),
            ("server", server),
            (
                "generator_cpu_seconds",
                self.generator_cpu
                    .map_or("null".into(), |c| number(c.as_secs_f64())),
            ),
        ])
    }
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
        let opt = |v: Option<u64>| v.map_or("null".into(), |v| v.to_string());
        object(&[
            ("mode", string("idle")),
            ("label", self.label.as_deref().map_or("null".into(), string)),
            ("url", string(&self.url)),
            ("connections", self.connections.to_string()),
            ("connected", self.connected.to_string()),
            (
                "first_error",
                self.first_error.as_deref().map_or("null".into(), string),
            ),
            ("pid", self.pid.map_or("null".into(), |p| p.to_string())),
            ("rss_before_bytes", opt(self.rss_before)),
            ("rss_after_bytes", opt(self.rss_after)),
            ("settle_seconds", number(self.settle.as_secs_f64())),
            (
                "rss_bytes_per_connection",
                self.per_connection().map_or("null".into(), number),
            ),
        ])
    }
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

/// A JSON object from rendered values.
fn object(fields: &[(&str, String)]) -> String {
    let body: Vec<String> = fields
        .iter()
        .map(|(key, value)| format!("{}: {value}", string(key)))
        .collect();
    format!("{{{}}}", body.join(", "))
}

/// A JSON number (finite, else null).
fn number(value: f64) -> String {
    if value.is_finite() {
        let text = format!("{value:.6}");
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        "null".into()
    }
}

/// A JSON string.
fn string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_values_are_escaped_and_trimmed() {
        assert_eq!(string("a\"b\\c\n\u{1}"), r#""a\"b\\c\n\u0001""#);
        assert_eq!(number(1.5), "1.5");
        assert_eq!(number(2.0), "2");
        assert_eq!(number(0.0), "0");
        assert_eq!(number(f64::NAN), "null");
        assert_eq!(
            object(&[("a", "1".into()), ("b", string("x"))]),
            r#"{"a": 1, "b": "x"}"#
        );
    }
}
