//! Configuration from the environment, parsed once into a typed struct.
//!
//! Every service reads the same variables (the table in the README); a service's own settings are
//! prefixed with its name (`DISCOVERY_POLL_INTERVAL`) and read through [`Config::service_setting`].
//! In `MODE=prod` a missing secret or an insecure default is refused, naming the variable.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::net::IpNet;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Dev,
    Prod,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Plain,
    Json,
}

/// A request budget per client address: `count` requests per `period`, refilled continuously.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub period: Duration,
}

impl FromStr for Rate {
    type Err = String;

    /// `150/m`, `10/s`, `1000/h`; `off` disables the limit.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (count, unit) =
            s.trim().split_once('/').ok_or_else(|| format!("expected COUNT/UNIT such as 150/m, got {s:?}"))?;
        let count: u32 = count
            .trim()
            .parse()
            .ok()
            .filter(|c| *c > 0)
            .ok_or_else(|| format!("{count:?} is not a positive whole number"))?;
        let period = match unit.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            other => return Err(format!("unknown unit {other:?} (use s, m or h)")),
        };
        Ok(Rate { count, period })
    }
}

/// How JWTs are signed and checked. The algorithm is pinned here: a token signed any other way is
/// refused.
#[derive(Clone)]
pub enum JwtKeyConfig {
    /// RS256 with a PEM key pair (the private key is optional for services that only verify).
    Rsa { private_key_file: Option<PathBuf>, public_key_file: PathBuf },
    /// HMAC with a shared secret (HS256 unless `JWT_ALGORITHM=HS512`).
    Secret { secret: Secret, hs512: bool },
}

impl fmt::Debug for JwtKeyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rsa { private_key_file, public_key_file } => f
                .debug_struct("Rsa")
                .field("private_key_file", private_key_file)
                .field("public_key_file", public_key_file)
                .finish(),
            Self::Secret { hs512, .. } => f.debug_struct("Secret").field("hs512", hs512).finish_non_exhaustive(),
        }
    }
}

/// A secret value that never prints itself.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Clone)]
pub struct JwtConfig {
    pub keys: JwtKeyConfig,
    pub issuer: String,
    pub audience: String,
}

/// The development JWT secret: fine on a laptop, refused in production.
pub const DEV_JWT_SECRET: &str = "meridian-development-secret-do-not-use-in-production";
const MIN_SECRET_BYTES: usize = 32;

#[derive(Debug, Clone)]
pub struct Config {
    /// The service's name, also the prefix of its own variables.
    pub service: String,
    pub mode: Mode,
    pub database_url: String,
    pub database_pool_size: u32,
    pub bind: SocketAddr,
    pub log_level: String,
    pub log_format: LogFormat,
    pub run_migrations: bool,
    /// Origins allowed by CORS; `*` (dev only) allows any.
    pub hosts: Vec<String>,
    /// Requests per client address; `None` when `RATELIMIT_RATE=off`.
    pub rate_limit: Option<Rate>,
    /// Peers whose `X-Forwarded-For` / `X-Real-IP` are believed.
    pub trusted_proxies: Vec<IpNet>,
    pub trust_cert_header: bool,
    pub jwt: JwtConfig,
    pub smtp_url: Option<String>,
    pub mail_from: String,
    /// Largest JSON body accepted, in bytes.
    pub max_json_bytes: usize,
    /// Serve HTTPS (asking for client certificates) with this certificate chain and key.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Variables prefixed with the service's name, prefix removed.
    service_settings: HashMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
#[error("configuration: {variable}: {message}")]
pub struct ConfigError {
    pub variable: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(variable: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError { variable: variable.into(), message: message.into() }
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env(service: &str, default_port: u16) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> = std::env::vars().collect();
        Self::from_vars(service, default_port, &vars)
    }

    /// Reads configuration from a map of variables (the environment, or a test's own map).
    pub fn from_vars(service: &str, default_port: u16, vars: &HashMap<String, String>) -> Result<Config, ConfigError> {
        let get = |name: &str| vars.get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let parse = |name: &str, default: &str| -> Result<String, ConfigError> {
            Ok(get(name).unwrap_or_else(|| default.to_owned()))
        };

        let mode = match parse("MODE", "dev")?.to_ascii_lowercase().as_str() {
            "dev" | "development" => Mode::Dev,
            "prod" | "production" => Mode::Prod,
            other => return Err(ConfigError::new("MODE", format!("{other:?} is neither dev nor prod"))),
        };
        let prod = mode == Mode::Prod;

        let database_url = match get("DATABASE_URL") {
            Some(url) => url,
            None if prod => return Err(ConfigError::new("DATABASE_URL", "must be set in prod mode")),
            None => "postgres://localhost/meridian".to_owned(),
        };
        let database_pool_size =
            parse_as::<u32>(&get, "DATABASE_POOL_SIZE", &crate::db::default_pool_size().to_string())?;
        if database_pool_size == 0 {
            return Err(ConfigError::new("DATABASE_POOL_SIZE", "must be at least 1"));
        }
        let bind = parse_as::<SocketAddr>(&get, "BIND", &format!("127.0.0.1:{default_port}"))?;
        let log_level = parse("LOG_LEVEL", "info")?;
        let log_format = match parse("LOG_FORMAT", "plain")?.as_str() {
            "plain" => LogFormat::Plain,
            "json" => LogFormat::Json,
            other => return Err(ConfigError::new("LOG_FORMAT", format!("{other:?} is neither plain nor json"))),
        };
        let run_migrations = parse_bool(&get, "RUN_MIGRATIONS", !prod)?;

        let hosts: Vec<String> = get("HOSTS")
            .map(|h| {
                h.split(',').map(|s| s.trim().trim_end_matches('/').to_owned()).filter(|s| !s.is_empty()).collect()
            })
            .unwrap_or_default();
        if prod && hosts.iter().any(|h| h == "*") {
            return Err(ConfigError::new("HOSTS", "`*` (any origin) is refused in prod mode"));
        }

        let rate_limit = match parse("RATELIMIT_RATE", "300/m")?.as_str() {
            "off" | "none" => None,
            text => Some(text.parse::<Rate>().map_err(|e| ConfigError::new("RATELIMIT_RATE", e))?),
        };

        let trusted_proxies = match get("TRUSTED_PROXIES") {
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| s.parse::<IpNet>().map_err(|e| ConfigError::new("TRUSTED_PROXIES", e)))
                .collect::<Result<Vec<_>, _>>()?,
            // In dev the local ingress (nginx on loopback) is the only proxy.
            None if prod => Vec::new(),
            None => vec![IpNet::loopback_v4(), IpNet::new(IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]), 128)],
        };
        let trust_cert_header = parse_bool(&get, "TRUST_CERT_HEADER", false)?;

        let jwt = jwt_config(&get, service, prod)?;

        let smtp_url = get("SMTP_URL");
        let mail_from = parse("MAIL_FROM", "Meridian <no-reply@localhost>")?;
        if prod && get("MAIL_FROM").is_none() && smtp_url.is_some() {
            return Err(ConfigError::new("MAIL_FROM", "must be set in prod mode when SMTP_URL is set"));
        }
        let max_json_bytes = parse_as::<usize>(&get, "MAX_JSON_BYTES", "262144")?;
        let tls = match (get("TLS_CERT_FILE"), get("TLS_KEY_FILE")) {
            (Some(cert), Some(key)) => Some((PathBuf::from(cert), PathBuf::from(key))),
            (None, None) => None,
            (Some(_), None) => return Err(ConfigError::new("TLS_KEY_FILE", "must be set with TLS_CERT_FILE")),
            (None, Some(_)) => return Err(ConfigError::new("TLS_CERT_FILE", "must be set with TLS_KEY_FILE")),
        };

        let prefix = format!("{}_", service.to_ascii_uppercase());
        let service_settings =
            vars.iter().filter_map(|(k, v)| k.strip_prefix(&prefix).map(|rest| (rest.to_owned(), v.clone()))).collect();

        Ok(Config {
            service: service.to_owned(),
            mode,
            database_url,
            database_pool_size,
            bind,
            log_level,
            log_format,
            run_migrations,
            hosts,
            rate_limit,
            trusted_proxies,
            trust_cert_header,
            jwt,
            smtp_url,
            mail_from,
            max_json_bytes,
            tls,
            service_settings,
        })
    }

    pub fn is_prod(&self) -> bool {
        self.mode == Mode::Prod
    }

    /// A service's own setting, `<SERVICE>_<NAME>` in the environment, or `default`.
    pub fn service_setting<T>(&self, name: &str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        match self.service_settings.get(name).map(|v| v.trim()).filter(|v| !v.is_empty()) {
            None => Ok(default),
            Some(text) => text.parse().map_err(|e| self.setting_error(name, format!("{text:?}: {e}"))),
        }
    }

    /// A service's own setting that has no default.
    pub fn service_setting_opt(&self, name: &str) -> Option<&str> {
        self.service_settings.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    /// A duration setting in seconds.
    pub fn service_seconds(&self, name: &str, default_secs: u64) -> Result<Duration, ConfigError> {
        self.service_setting(name, default_secs).map(Duration::from_secs)
    }

    /// An error naming one of this service's own variables.
    pub fn setting_error(&self, name: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::new(format!("{}_{name}", self.service.to_ascii_uppercase()), message)
    }

    /// Sets a service setting (tests and embedding).
    pub fn set_service_setting(&mut self, name: &str, value: impl Into<String>) {
        self.service_settings.insert(name.to_owned(), value.into());
    }
}

fn parse_as<T>(get: &impl Fn(&str) -> Option<String>, name: &str, default: &str) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    let text = get(name).unwrap_or_else(|| default.to_owned());
    text.parse().map_err(|e| ConfigError::new(name, format!("{text:?}: {e}")))
}

fn parse_bool(get: &impl Fn(&str) -> Option<String>, name: &str, default: bool) -> Result<bool, ConfigError> {
    match get(name).map(|v| v.to_ascii_lowercase()) {
        None => Ok(default),
        Some(v) if ["1", "true", "yes", "on"].contains(&v.as_str()) => Ok(true),
        Some(v) if ["0", "false", "no", "off"].contains(&v.as_str()) => Ok(false),
        Some(v) => Err(ConfigError::new(name, format!("{v:?} is not true or false"))),
    }
}

fn jwt_config(get: &impl Fn(&str) -> Option<String>, service: &str, prod: bool) -> Result<JwtConfig, ConfigError> {
    let issuer = get("JWT_ISSUER").unwrap_or_else(|| "meridian".to_owned());
    let audience = get("JWT_AUDIENCE").unwrap_or_else(|| format!("meridian-{service}"));
    let keys = match (get("JWT_PRIVATE_KEY_FILE"), get("JWT_PUBLIC_KEY_FILE"), get("JWT_SECRET")) {
        (private, Some(public), _) => {
            for (var, path) in [("JWT_PUBLIC_KEY_FILE", Some(&public)), ("JWT_PRIVATE_KEY_FILE", private.as_ref())] {
                if let Some(path) = path
                    && !std::path::Path::new(path).is_file()
                {
                    return Err(ConfigError::new(var, format!("{path}: no such file")));
                }
            }
            JwtKeyConfig::Rsa { private_key_file: private.map(PathBuf::from), public_key_file: PathBuf::from(public) }
        }
        (Some(_), None, _) => {
            return Err(ConfigError::new("JWT_PUBLIC_KEY_FILE", "must be set with JWT_PRIVATE_KEY_FILE"));
        }
        (None, None, secret) => {
            let secret = match secret {
                Some(s) if prod && (s.len() < MIN_SECRET_BYTES || s == DEV_JWT_SECRET) => {
                    return Err(ConfigError::new(
                        "JWT_SECRET",
                        format!(
                            "must be at least {MIN_SECRET_BYTES} random bytes and not the development secret in prod mode"
                        ),
                    ));
                }
                Some(s) => s,
                None if prod => {
                    return Err(ConfigError::new("JWT_SECRET", "must be set in prod mode (or JWT_PUBLIC_KEY_FILE)"));
                }
                None => DEV_JWT_SECRET.to_owned(),
            };
            let hs512 = match get("JWT_ALGORITHM").as_deref() {
                None | Some("HS256") => false,
                Some("HS512") => true,
                Some(other) => {
                    return Err(ConfigError::new(
                        "JWT_ALGORITHM",
                        format!("{other:?}: use HS256 or HS512 with JWT_SECRET"),
                    ));
                }
            };
            JwtKeyConfig::Secret { secret: Secret::new(secret), hs512 }
        }
    };
    Ok(JwtConfig { keys, issuer, audience })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn dev_defaults_start_without_any_variable() {
        let config = Config::from_vars("discovery", 8081, &HashMap::new()).unwrap();
        assert_eq!(config.mode, Mode::Dev);
        assert_eq!(config.bind.port(), 8081);
        assert!(config.run_migrations);
        assert!(matches!(config.jwt.keys, JwtKeyConfig::Secret { .. }));
    }

    #[test]
    fn prod_refuses_missing_database_url() {
        let err = Config::from_vars("discovery", 8081, &vars(&[("MODE", "prod"), ("JWT_SECRET", &"x".repeat(40))]))
            .unwrap_err();
        assert_eq!(err.variable, "DATABASE_URL");
    }

    #[test]
    fn prod_refuses_missing_or_weak_jwt_secret() {
        let base = [("MODE", "prod"), ("DATABASE_URL", "postgres://db/meridian")];
        let err = Config::from_vars("messaging", 8085, &vars(&base)).unwrap_err();
        assert_eq!(err.variable, "JWT_SECRET");
        for weak in ["short", DEV_JWT_SECRET] {
            let mut v = vars(&base);
            v.insert("JWT_SECRET".into(), weak.into());
            assert_eq!(Config::from_vars("messaging", 8085, &v).unwrap_err().variable, "JWT_SECRET");
        }
        let mut v = vars(&base);
        v.insert("JWT_SECRET".into(), "k".repeat(48));
        let config = Config::from_vars("messaging", 8085, &v).unwrap();
        assert!(!config.run_migrations, "prod runs migrations from the Job, not at start");
        assert!(config.trusted_proxies.is_empty());
    }

    #[test]
    fn prod_refuses_any_origin() {
        let v = vars(&[
            ("MODE", "prod"),
            ("DATABASE_URL", "postgres://db/m"),
            ("JWT_SECRET", &"s".repeat(40)),
            ("HOSTS", "*"),
        ]);
        assert_eq!(Config::from_vars("versions", 8082, &v).unwrap_err().variable, "HOSTS");
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (name, value) in [
            ("BIND", "nowhere"),
            ("RATELIMIT_RATE", "fast"),
            ("LOG_FORMAT", "xml"),
            ("RUN_MIGRATIONS", "maybe"),
            ("TRUSTED_PROXIES", "10.0.0.0/99"),
        ] {
            let err = Config::from_vars("versions", 8082, &vars(&[(name, value)])).unwrap_err();
            assert_eq!(err.variable, name, "{name}={value}");
        }
    }

    #[test]
    fn service_settings_are_prefixed() {
        let config =
            Config::from_vars("discovery", 8081, &vars(&[("DISCOVERY_POLL_INTERVAL", "5"), ("VERSIONS_X", "1")]))
                .unwrap();
        assert_eq!(config.service_seconds("POLL_INTERVAL", 60).unwrap(), Duration::from_secs(5));
        assert_eq!(config.service_setting_opt("X"), None);
        let err = Config::from_vars("discovery", 8081, &vars(&[("DISCOVERY_POLL_INTERVAL", "soon")]))
            .unwrap()
            .service_seconds("POLL_INTERVAL", 60)
            .unwrap_err();
        assert_eq!(err.variable, "DISCOVERY_POLL_INTERVAL");
    }

    #[test]
    fn rates_parse() {
        assert_eq!("150/m".parse::<Rate>().unwrap(), Rate { count: 150, period: Duration::from_secs(60) });
        assert!("0/m".parse::<Rate>().is_err());
        assert!("150".parse::<Rate>().is_err());
    }
}
