//! What every binary does beside its own subcommands: load configuration, log, serve, migrate.

use std::process::ExitCode;

use clap::Subcommand;

use crate::app::{Platform, ServiceDef};
use crate::config::Config;

/// Subcommands every service binary has.
#[derive(Debug, Clone, Subcommand)]
pub enum CommonCommand {
    /// Serve HTTP (the default without a subcommand). Applies migrations first when RUN_MIGRATIONS is true.
    Serve,
    /// Apply pending database migrations, then exit (the Kubernetes migration Job runs this).
    Migrate,
}

/// The environment variables every service reads, for `--help`.
pub const ENVIRONMENT_HELP: &str = "\
Environment (every service):
  MODE                dev | prod (prod refuses missing secrets and insecure defaults)   [dev]
  DATABASE_URL        postgres://user:password@host:port/database                        [postgres://localhost/meridian]
  DATABASE_POOL_SIZE  connections in this process's pool                                 [2 per CPU]
  BIND                address:port to listen on                                          [127.0.0.1:<service port>]
  LOG_LEVEL           env_logger filter, e.g. info or warn,access=info                   [info]
  LOG_FORMAT          plain | json                                                       [plain]
  RUN_MIGRATIONS      apply migrations at start                                          [true in dev, false in prod]
  HOSTS               comma-separated origins allowed by CORS (* for any, dev only)      [none]
  RATELIMIT_RATE      requests per client address, e.g. 150/m, or off                    [300/m]
  TRUSTED_PROXIES     comma-separated CIDRs whose X-Forwarded-For is believed            [loopback in dev, none in prod]
  TRUST_CERT_HEADER   accept client certificates from the mtls-certificate header        [false]
  JWT_SECRET          HMAC secret for JWTs (32+ bytes in prod), or instead:
  JWT_PRIVATE_KEY_FILE, JWT_PUBLIC_KEY_FILE   RS256 key pair (PEM)
  JWT_ISSUER, JWT_AUDIENCE                    expected iss and aud                       [meridian, meridian-<service>]
  SMTP_URL            smtp://host:port or smtps://user:pass@host                         [none]
  MAIL_FROM           sender address                                                     [Meridian <no-reply@localhost>]
  MAX_JSON_BYTES      largest JSON body accepted                                         [262144]
  TLS_CERT_FILE, TLS_KEY_FILE                 serve HTTPS and accept client certificates (mutual TLS)";

/// Loads configuration from the environment and starts logging; prints the error and gives the
/// exit code when the configuration is refused.
pub fn load(def: &'static ServiceDef) -> Result<Platform, ExitCode> {
    match Config::from_env(def.name, def.default_port) {
        Ok(config) => {
            crate::logging::init(&config);
            Ok(Platform::new(def, config))
        }
        Err(err) => {
            eprintln!("{}: {err}", def.name);
            Err(ExitCode::from(2))
        }
    }
}

/// Runs `migrate` (and exits) for the common subcommand.
pub fn migrate(platform: &Platform) -> ExitCode {
    match platform.migrate() {
        Ok(()) => {
            log::info!("{}: migrations applied", platform.def.name);
            ExitCode::SUCCESS
        }
        Err(err) => {
            log::error!("{}: {err}", platform.def.name);
            ExitCode::FAILURE
        }
    }
}

/// Turns the end of `serve` into an exit code.
pub fn exit(result: std::io::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            log::error!("server stopped: {err}");
            ExitCode::FAILURE
        }
    }
}
