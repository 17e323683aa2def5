//! What every Meridian service runs on.
//!
//! - [`Config`]: the environment, parsed once.
//! - [`Platform`]: the App builder (request id, access log, security headers, CORS, rate limit,
//!   metrics, `/running` `/ready` `/version` `/metrics` `/openapi.json`), serving and shutdown.
//! - [`db`]: the pool bound to a schema, migrations under an advisory lock.
//! - [`ApiError`]: the one error type, rendered as problem+json.
//! - [`extract`]: JSON bodies whose errors name the field; [`conditional`]: ETags and 304s.
//! - `testing` (feature `test-harness`): a fresh database per test.

pub mod app;
pub mod cli;
pub mod conditional;
pub mod config;
pub mod db;
pub mod error;
pub mod extract;
pub mod logging;
pub mod net;
pub mod ratelimit;
pub mod request_id;
#[cfg(feature = "test-harness")]
pub mod testing;
pub mod tls;

pub use app::{Platform, ServiceDef, VersionInfo};
pub use config::{Config, ConfigError, Mode};
pub use db::{Database, SchemaMigrations};
pub use error::{ApiError, ApiResult, FieldErrors};

// Services register their own metrics in the platform's registry with this crate's version.
pub use prometheus;
