//! The service's own settings (`REGISTRATION_*`), read once from the platform configuration.
//! In prod mode a missing secret is refused, naming its variable.

use std::path::PathBuf;
use std::time::Duration;

use meridian_platform::config::{Config, ConfigError, Rate};

/// The broadcast PIN the dev-mode default hash is made from; printed by `seed-demo`. Never accepted
/// in prod mode (prod has no default hash).
pub const DEMO_PIN: &str = "meridian-demo-pin";
/// The dev-mode unsubscribe key; prod refuses to start without its own.
pub const DEV_UNSUBSCRIBE_KEY: &str = "meridian-registration-development-unsubscribe-key";
const MIN_KEY_BYTES: usize = 32;

#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Whether `serve` runs the delivery worker (`REGISTRATION_WORKER`, default true).
    pub enabled: bool,
    /// Sends in flight at once; each holds one database connection (`REGISTRATION_SEND_CONCURRENCY`).
    pub concurrency: usize,
    /// Sends per period across this process (`REGISTRATION_SEND_RATE`, e.g. `400/s`, or `off`).
    pub rate: Option<Rate>,
    /// Longest one SMTP send may take (`REGISTRATION_SEND_TIMEOUT`, seconds).
    pub send_timeout: Duration,
    /// Pause when the queue is empty (`REGISTRATION_POLL_INTERVAL_MS`).
    pub poll_interval: Duration,
    /// Temporary (4xx) refusals tolerated before a delivery is marked failed (`REGISTRATION_MAX_ATTEMPTS`).
    pub max_attempts: i32,
    /// First retry delay after a 4xx; doubles each attempt, at most an hour (`REGISTRATION_RETRY_BASE`, seconds).
    pub retry_base: Duration,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            enabled: true,
            concurrency: 16,
            rate: Some(Rate { count: 400, period: Duration::from_secs(1) }),
            send_timeout: Duration::from_secs(30),
            poll_interval: Duration::from_millis(250),
            max_attempts: 8,
            retry_base: Duration::from_secs(30),
        }
    }
}

/// Where mail goes.
#[derive(Debug, Clone)]
pub enum MailerSpec {
    /// `SMTP_URL` (`smtp://host:port`, `smtps://user:pass@host`, ...).
    Smtp(String),
    /// Dev mode without `SMTP_URL`: one `.eml` file per message in this directory.
    Outbox(PathBuf),
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// argon2 (or bcrypt) hash of the board's broadcast PIN.
    pub pin_hash: String,
    /// The PIN behind the default hash (dev mode without `REGISTRATION_BROADCAST_PIN_HASH` only).
    pub demo_pin: Option<&'static str>,
    /// HMAC key of unsubscribe tokens.
    pub unsubscribe_key: Vec<u8>,
    /// Base URL of this service as recipients reach it, for unsubscribe links.
    pub public_url: String,
    /// Registrations per client address; `None` disables.
    pub register_rate: Option<Rate>,
    /// Wrong PINs per client address before 429.
    pub pin_rate: Rate,
    pub mailer: MailerSpec,
    pub mail_from: String,
    pub worker: WorkerSettings,
}

fn rate_setting(config: &Config, name: &str, default: Option<Rate>) -> Result<Option<Rate>, ConfigError> {
    match config.service_setting_opt(name) {
        None => Ok(default),
        Some("off" | "none") => Ok(None),
        Some(text) => text.parse::<Rate>().map(Some).map_err(|e| config.setting_error(name, e)),
    }
}

impl Settings {
    pub fn from_config(config: &Config) -> Result<Settings, ConfigError> {
        let prod = config.is_prod();
        let (pin_hash, demo_pin) = match config.service_setting_opt("BROADCAST_PIN_HASH") {
            Some(hash) if meridian_auth::password::is_hash(hash) => (hash.to_owned(), None),
            Some(_) => {
                return Err(config.setting_error(
                    "BROADCAST_PIN_HASH",
                    "must be an argon2 (or bcrypt) hash; make one with `registration pin-hash`",
                ));
            }
            None if prod => {
                return Err(config.setting_error(
                    "BROADCAST_PIN_HASH",
                    "must be set in prod mode (make one with `registration pin-hash`)",
                ));
            }
            None => (meridian_auth::password::hash(DEMO_PIN), Some(DEMO_PIN)),
        };
        let unsubscribe_key = match config.service_setting_opt("UNSUBSCRIBE_KEY") {
            Some(key) if prod && (key.len() < MIN_KEY_BYTES || key == DEV_UNSUBSCRIBE_KEY) => {
                return Err(config.setting_error(
                    "UNSUBSCRIBE_KEY",
                    format!("must be at least {MIN_KEY_BYTES} random bytes and not the development key in prod mode"),
                ));
            }
            Some(key) => key.as_bytes().to_vec(),
            None if prod => return Err(config.setting_error("UNSUBSCRIBE_KEY", "must be set in prod mode")),
            None => DEV_UNSUBSCRIBE_KEY.as_bytes().to_vec(),
        };
        let public_url = match config.service_setting_opt("PUBLIC_URL") {
            Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
                url.trim_end_matches('/').to_owned()
            }
            Some(_) => return Err(config.setting_error("PUBLIC_URL", "must be an http(s) URL")),
            None if prod => {
                return Err(config.setting_error("PUBLIC_URL", "must be set in prod mode (unsubscribe links use it)"));
            }
            None => format!("http://{}", config.bind),
        };
        // Spam protection is on by default; an explicit RATELIMIT_RATE=off (benchmarks) turns the
        // default off too, unless REGISTRATION_REGISTER_RATE says otherwise.
        let register_default = config.rate_limit.map(|_| Rate { count: 30, period: Duration::from_secs(3600) });
        let register_rate = rate_setting(config, "REGISTER_RATE", register_default)?;
        let pin_rate = rate_setting(config, "PIN_RATE", Some(Rate { count: 5, period: Duration::from_secs(60) }))?
            .ok_or_else(|| config.setting_error("PIN_RATE", "PIN guesses are always throttled"))?;
        let mailer = match &config.smtp_url {
            Some(url) => MailerSpec::Smtp(url.clone()),
            None if prod => {
                return Err(ConfigError::new("SMTP_URL", "must be set in prod mode (broadcasts are sent through it)"));
            }
            None => MailerSpec::Outbox(PathBuf::from(config.service_setting("OUTBOX_DIR", ".data/outbox".to_owned())?)),
        };
        if config.mail_from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(ConfigError::new("MAIL_FROM", format!("{:?} is not a mailbox", config.mail_from)));
        }
        let defaults = WorkerSettings::default();
        let worker = WorkerSettings {
            enabled: config.service_setting("WORKER", true)?,
            concurrency: config.service_setting("SEND_CONCURRENCY", defaults.concurrency)?.clamp(1, 64),
            rate: rate_setting(config, "SEND_RATE", defaults.rate)?,
            send_timeout: config.service_seconds("SEND_TIMEOUT", defaults.send_timeout.as_secs())?,
            poll_interval: Duration::from_millis(config.service_setting("POLL_INTERVAL_MS", 250u64)?),
            max_attempts: config.service_setting("MAX_ATTEMPTS", defaults.max_attempts)?.max(1),
            retry_base: config.service_seconds("RETRY_BASE", defaults.retry_base.as_secs())?,
        };
        Ok(Settings {
            pin_hash,
            demo_pin,
            unsubscribe_key,
            public_url,
            register_rate,
            pin_rate,
            mailer,
            mail_from: config.mail_from.clone(),
            worker,
        })
    }
}
