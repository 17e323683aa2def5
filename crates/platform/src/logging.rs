//! Log lines, plain or JSON, each carrying the id of the request it was written for.

use std::io::Write;

use crate::config::{Config, LogFormat};
use crate::request_id;

/// Installs the logger once; later calls (tests) do nothing.
pub fn init(config: &Config) {
    let format = config.log_format;
    let mut builder = env_logger::Builder::new();
    builder.parse_filters(&config.log_level);
    builder.format(move |buf, record| {
        let id = request_id::current();
        let ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        match format {
            LogFormat::Plain => writeln!(
                buf,
                "{ts} {:<5} {} [{}] {}",
                record.level(),
                record.target(),
                id.as_deref().unwrap_or("-"),
                record.args()
            ),
            LogFormat::Json => {
                let line = serde_json::json!({
                    "ts": ts,
                    "level": record.level().as_str(),
                    "target": record.target(),
                    "request_id": id,
                    "message": record.args().to_string(),
                });
                writeln!(buf, "{line}")
            }
        }
    });
    let _ = builder.try_init();
}
