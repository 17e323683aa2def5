//! Meridian `versions`: released versions, their downloadable artifacts, and which updates a
//! server in the field should take. Compatible with the Tamanu meta server's versions API.
//!
//! Reads are served from an in-memory snapshot ([`catalogue`]); writes go to Postgres and reload it.

pub mod catalogue;
pub mod demo;
pub mod http;
pub mod model;
pub mod openapi;
pub mod pages;
pub mod routes;
pub mod rules;
pub mod schema;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header::HeaderValue;
use actix_web::web;
use diesel_migrations::embed_migrations;
use meridian_platform::{ConfigError, Platform, SchemaMigrations, ServiceDef};

pub use catalogue::Catalogue;
pub use routes::configure;

pub const SCHEMA: &str = "versions";

pub static SERVICE: ServiceDef = ServiceDef {
    name: "versions",
    version: env!("CARGO_PKG_VERSION"),
    default_port: 8082,
    schema: SCHEMA,
    migrations: &[
        meridian_auth::AUTH_MIGRATIONS,
        SchemaMigrations { schema: SCHEMA, migrations: embed_migrations!("../../migrations/versions") },
    ],
    openapi: || <openapi::ApiDoc as utoipa::OpenApi>::openapi(),
};

/// What the handlers share: the snapshot and the caching policy of the lists.
pub struct State {
    pub catalogue: Arc<Catalogue>,
    /// `Cache-Control` of the JSON lists (`VERSIONS_CACHE_MAX_AGE`).
    pub cache_control: HeaderValue,
    /// How often a process checks for writes made through other replicas (`VERSIONS_REFRESH_INTERVAL`).
    pub refresh_interval: Duration,
}

impl State {
    pub fn from_platform(platform: &Platform) -> Result<Self, ConfigError> {
        let config = &platform.config;
        let max_age: u32 = config.service_setting("CACHE_MAX_AGE", 30)?;
        let refresh_interval = config.service_seconds("REFRESH_INTERVAL", 5)?;
        if refresh_interval.is_zero() {
            return Err(config.setting_error("REFRESH_INTERVAL", "must be at least 1 second"));
        }
        let cache_control = HeaderValue::from_str(&format!("public, max-age={max_age}, must-revalidate"))
            .expect("digits make a valid header");
        let catalogue = match catalogue::SnapshotMetrics::register(platform.registry()) {
            Ok(metrics) => Catalogue::with_metrics(metrics),
            Err(err) => {
                log::warn!("snapshot metrics not registered: {err}");
                Catalogue::new()
            }
        };
        Ok(State { catalogue: Arc::new(catalogue), cache_control, refresh_interval })
    }
}

pub async fn serve(platform: Platform) -> std::io::Result<()> {
    let state = web::Data::new(State::from_platform(&platform).map_err(std::io::Error::other)?);
    state.catalogue.clone().spawn_poller(platform.db.clone(), state.refresh_interval);
    platform
        .serve(move |cfg| {
            cfg.app_data(state.clone());
            configure(cfg);
        })
        .await
}
