//! Who is calling.
//!
//! - [`cert`]: client certificates (proxy header or native TLS) and the devices they identify, with
//!   roles; owns the `auth` schema (`devices`, `device_connections`).
//! - [`basic`]: HTTP basic credentials.
//! - [`jwt`]: issuing and verifying JWTs with the algorithm pinned by configuration.
//! - [`password`]: slow hashes for passwords, PINs and codes, compared in constant time.
//!
//! Each is an actix extractor or a single call in a handler.

pub mod basic;
pub mod cert;
pub mod devices;
pub mod jwt;
pub mod password;
pub mod schema;

use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use meridian_platform::SchemaMigrations;

pub use basic::BasicCredentials;
pub use cert::{ClientCertificate, Device};
pub use jwt::{JwtKeys, has_scope};

/// The `auth` schema, migrated by every service that accepts client certificates.
pub const AUTH_MIGRATIONS: SchemaMigrations =
    SchemaMigrations { schema: "auth", migrations: embed_migrations!("../../migrations/auth") };

/// Used by this crate's own tests; `EmbeddedMigrations` is the type services embed theirs with.
pub type Migrations = EmbeddedMigrations;
