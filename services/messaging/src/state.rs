//! The service's own state, built once in `serve` (or a test) and shared as app data.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use meridian_auth::JwtKeys;
use meridian_platform::config::Rate;
use meridian_platform::ratelimit::RateLimiter;
use meridian_platform::{ConfigError, Platform};

use crate::inserts::Inserts;
use crate::metrics::Metrics;
use crate::notify::Notifier;

/// Development-only secret for deriving activation codes; prod refuses it.
const DEV_CODE_SECRET: &str = "meridian-messaging-development-code-secret";
const MIN_SECRET_BYTES: usize = 32;

pub const DEFAULT_PATIENT_SCOPES: &str = "read:gdm_message write:gdm_message read:gdm_patient";
pub const DEFAULT_CLINICIAN_SCOPES: &str = "read:gdm_message write:gdm_message read:gdm_patient \
read:gdm_activation write:gdm_activation read:send_device";
pub const DEFAULT_DEVICE_SCOPES: &str = "read:send_entry_identifier read:gdm_message write:gdm_message";
pub const DEFAULT_CLINICIAN_GROUPS: &str = "SEND Clinician,SEND Superclinician,GDM Clinician,GDM Superclinician";

/// Settings read from `MESSAGING_*` variables (documented in docs/messaging.md).
#[derive(Debug, Clone)]
pub struct Settings {
    pub patient_token_ttl: Duration,
    pub clinician_token_ttl: Duration,
    pub device_token_ttl: Duration,
    pub activation_ttl: Duration,
    pub authorisation_code_ttl: Duration,
    pub max_pin_failures: i32,
    pub patient_scopes: String,
    pub clinician_scopes: String,
    pub device_scopes: String,
    pub clinician_groups: Vec<String>,
    pub code_secret: String,
    pub login_rate: Option<Rate>,
}

impl Settings {
    pub fn from_platform(platform: &Platform) -> Result<Settings, ConfigError> {
        let c = &platform.config;
        let code_secret = match c.service_setting_opt("CODE_SECRET") {
            Some(s) if c.is_prod() && (s.len() < MIN_SECRET_BYTES || s == DEV_CODE_SECRET) => {
                return Err(c.setting_error("CODE_SECRET", "must be at least 32 random bytes in prod mode"));
            }
            Some(s) => s.to_owned(),
            None if c.is_prod() => return Err(c.setting_error("CODE_SECRET", "must be set in prod mode")),
            None => DEV_CODE_SECRET.to_owned(),
        };
        let login_rate = match c.service_setting("LOGIN_RATE", "20/m".to_owned())?.as_str() {
            "off" | "none" => None,
            text => Some(text.parse::<Rate>().map_err(|e| c.setting_error("LOGIN_RATE", e))?),
        };
        let max_pin_failures: i32 = c.service_setting("MAX_PIN_FAILURES", 10)?;
        if max_pin_failures < 1 {
            return Err(c.setting_error("MAX_PIN_FAILURES", "must be at least 1"));
        }
        Ok(Settings {
            patient_token_ttl: c.service_seconds("PATIENT_TOKEN_TTL", 15 * 60)?,
            clinician_token_ttl: c.service_seconds("CLINICIAN_TOKEN_TTL", 15 * 60)?,
            device_token_ttl: c.service_seconds("DEVICE_TOKEN_TTL", 24 * 3600)?,
            activation_ttl: c.service_seconds("ACTIVATION_TTL", 5 * 24 * 3600)?,
            authorisation_code_ttl: c.service_seconds("AUTHORISATION_CODE_TTL", 10 * 60)?,
            max_pin_failures,
            patient_scopes: c.service_setting("PATIENT_SCOPES", DEFAULT_PATIENT_SCOPES.to_owned())?,
            clinician_scopes: c.service_setting("CLINICIAN_SCOPES", DEFAULT_CLINICIAN_SCOPES.to_owned())?,
            device_scopes: c.service_setting("DEVICE_SCOPES", DEFAULT_DEVICE_SCOPES.to_owned())?,
            clinician_groups: c
                .service_setting("CLINICIAN_GROUPS", DEFAULT_CLINICIAN_GROUPS.to_owned())?
                .split(',')
                .map(|g| g.trim().to_owned())
                .filter(|g| !g.is_empty())
                .collect(),
            code_secret,
            login_rate,
        })
    }
}

/// Everything the handlers share beside the platform.
pub struct State {
    pub keys: JwtKeys,
    pub settings: Settings,
    /// Failed guesses at PINs and codes, per client address.
    pub login_limiter: Option<RateLimiter<IpAddr>>,
    pub notifier: Arc<Notifier>,
    pub metrics: Metrics,
    /// Where new messages are stored (batched).
    pub inserts: Inserts,
}

#[derive(Debug)]
pub struct StateError(pub String);

impl std::fmt::Display for StateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl State {
    pub fn new(platform: &Platform) -> Result<State, StateError> {
        // During a key rotation the previous public key still verifies the tokens it signed.
        let keys = match platform.config.service_setting_opt("JWT_PREVIOUS_PUBLIC_KEY_FILE") {
            Some(previous) => JwtKeys::with_previous_key(&platform.config.jwt, std::path::Path::new(previous)),
            None => JwtKeys::from_config(&platform.config.jwt),
        }
        .map_err(|e| StateError(e.to_string()))?;
        let settings = Settings::from_platform(platform).map_err(|e| StateError(e.to_string()))?;
        let login_limiter = settings.login_rate.map(RateLimiter::new);
        let metrics = Metrics::register(platform.registry()).map_err(|e| StateError(format!("metrics: {e}")))?;
        Ok(State {
            keys,
            settings,
            login_limiter,
            notifier: Arc::new(Notifier::new(platform.config.database_url.clone())),
            metrics,
            inserts: Inserts::start(platform.db.clone()).map_err(|e| StateError(format!("insert thread: {e}")))?,
        })
    }
}
