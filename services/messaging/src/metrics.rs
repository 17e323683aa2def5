//! The service's own counters, in the platform's Prometheus registry.

use meridian_platform::prometheus::{IntCounter, IntCounterVec, Opts, Registry};

#[derive(Clone)]
pub struct Metrics {
    /// Messages stored.
    pub messages_created: IntCounter,
    /// Login attempts by kind (patient, device, clinician) and outcome (success, failure).
    pub logins: IntCounterVec,
}

impl Metrics {
    pub fn register(registry: &Registry) -> Result<Metrics, meridian_platform::prometheus::Error> {
        let messages_created = IntCounter::new("messaging_messages_created_total", "Messages stored")?;
        let logins = IntCounterVec::new(
            Opts::new("messaging_logins_total", "Login attempts (codes, PINs, authorisation codes, entry identifiers)"),
            &["kind", "outcome"],
        )?;
        registry.register(Box::new(messages_created.clone()))?;
        registry.register(Box::new(logins.clone()))?;
        Ok(Metrics { messages_created, logins })
    }

    pub fn login(&self, kind: &str, success: bool) {
        self.logins.with_label_values(&[kind, if success { "success" } else { "failure" }]).inc();
    }
}
