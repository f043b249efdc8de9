//! The backplane's counters in the Prometheus text exposition format (version 0.0.4), the
//! style of the gateway's `/metrics`, for an application to serve next to its hub.

use std::fmt::Write as _;

use super::BackplaneStats;

impl BackplaneStats {
    /// Renders the counters as Prometheus metrics named `sockway_hub_backplane_*`.
    pub fn render_prometheus(&self) -> String {
        let families: [(&str, &str, &str, String); 7] = [
            (
                "sockway_hub_backplane_connected",
                "gauge",
                "1 while the backplane is reachable for publishing and subscribing.",
                u64::from(self.connected).to_string(),
            ),
            (
                "sockway_hub_backplane_published_total",
                "counter",
                "Messages this server published through the backplane.",
                self.published.to_string(),
            ),
            (
                "sockway_hub_backplane_received_total",
                "counter",
                "Messages this server received through the backplane.",
                self.received.to_string(),
            ),
            (
                "sockway_hub_backplane_buffered",
                "gauge",
                "Messages waiting to be published (held during an outage).",
                self.buffered.to_string(),
            ),
            (
                "sockway_hub_backplane_dropped_total",
                "counter",
                "Messages dropped because the publish buffer was full.",
                self.dropped.to_string(),
            ),
            (
                "sockway_hub_backplane_reconnects_total",
                "counter",
                "Times the backplane was reached again after it was lost.",
                self.reconnects.to_string(),
            ),
            (
                "sockway_hub_backplane_servers",
                "gauge",
                "Servers hearing the fleet channel at the last check.",
                self.servers.to_string(),
            ),
        ];
        let mut out = String::new();
        for (name, kind, help, value) in families {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        let name = "sockway_hub_backplane_publish_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Round trips of the publishes the backplane accepted.\n\
             # TYPE {name} summary\n{name}_sum {:.6}\n{name}_count {}",
            self.publish_micros as f64 / 1e6,
            self.published
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_counter_is_rendered_with_its_type() {
        let stats = BackplaneStats {
            connected: true,
            published: 3,
            dropped: 2,
            publish_micros: 1_500,
            ..BackplaneStats::default()
        };
        let text = stats.render_prometheus();
        assert!(text.contains("# TYPE sockway_hub_backplane_published_total counter\n"));
        assert!(text.contains("\nsockway_hub_backplane_published_total 3\n"));
        assert!(text.contains("\nsockway_hub_backplane_dropped_total 2\n"));
        assert!(text.contains("\nsockway_hub_backplane_connected 1\n"));
        assert!(text.contains("# TYPE sockway_hub_backplane_publish_seconds summary\n"));
        assert!(text.contains("\nsockway_hub_backplane_publish_seconds_sum 0.001500\n"));
        assert!(text.contains("\nsockway_hub_backplane_publish_seconds_count 3\n"));
    }
}
