//! Per-server Prometheus gauges, rebuilt from the database periodically in every replica.

use chrono::{DateTime, Utc};
use meridian_platform::prometheus::{GaugeVec, Opts, Registry};

use crate::statuses::HealthRow;

#[derive(Clone)]
pub struct Gauges {
    up: GaugeVec,
    latency: GaugeVec,
    version: GaugeVec,
}

impl Gauges {
    /// Registers the gauges in `registry` (once per registry).
    pub fn register(registry: &Registry) -> Result<Gauges, meridian_platform::prometheus::Error> {
        let up = GaugeVec::new(
            Opts::new(
                "discovery_server_up",
                "1 when the server is up (latest success newer than its latest error and under 5 minutes old)",
            ),
            &["server_id", "name", "rank"],
        )?;
        let latency = GaugeVec::new(
            Opts::new("discovery_server_latency_milliseconds", "Latency of the server's latest successful poll"),
            &["server_id", "name", "rank"],
        )?;
        let version = GaugeVec::new(
            Opts::new("discovery_server_version_info", "Always 1, labelled with the version the server last reported"),
            &["server_id", "name", "rank", "version"],
        )?;
        registry.register(Box::new(up.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(version.clone()))?;
        Ok(Gauges { up, latency, version })
    }

    /// Replaces every series with the current state (servers removed disappear).
    pub fn update(&self, rows: &[HealthRow], now: DateTime<Utc>) {
        self.up.reset();
        self.latency.reset();
        self.version.reset();
        for row in rows {
            let id = row.id.to_string();
            let name = row.name.as_deref().unwrap_or("");
            let rank = row.rank.as_deref().unwrap_or("");
            self.up.with_label_values(&[id.as_str(), name, rank]).set(if row.is_up(now) { 1.0 } else { 0.0 });
            if let Some(ms) = row.latency_ms {
                self.latency.with_label_values(&[id.as_str(), name, rank]).set(f64::from(ms));
            }
            if let Some(version) = row.version.as_deref() {
                self.version.with_label_values(&[id.as_str(), name, rank, version]).set(1.0);
            }
        }
    }
}
