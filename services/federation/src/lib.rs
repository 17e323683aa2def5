//! Meridian federation: the people hub of a health federation. Speaks GNU Health Thalamus's API
//! (HTTP basic auth, JSON person records, pages of life, personal documents, domiciliary units,
//! institutions) so existing nodes keep working, and fixes what Thalamus gets wrong: access rules
//! on roles, pages checked against their book, no hash in any response, throttled guessing, an
//! audit trail, problem+json errors, and a verified-credential cache instead of bcrypt per request.

pub mod audit;
pub mod auth;
pub mod docs;
pub mod import;
pub mod openapi;
pub mod password_form;
pub mod people;
pub mod places;
pub mod policy;
pub mod pols;
pub mod routes;
pub mod seed;

use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use diesel_migrations::embed_migrations;
use meridian_platform::config::Rate;
use meridian_platform::{ConfigError, Platform, SchemaMigrations, ServiceDef};

use crate::audit::AuditSink;
use crate::auth::{AuthSettings, Authenticator};
use crate::places::Kind;
use crate::policy::Policy;

pub const SCHEMA: &str = "federation";

pub static SERVICE: ServiceDef = ServiceDef {
    name: "federation",
    version: env!("CARGO_PKG_VERSION"),
    default_port: 8083,
    schema: SCHEMA,
    migrations: &[SchemaMigrations { schema: SCHEMA, migrations: embed_migrations!("../../migrations/federation") }],
    openapi: || <openapi::ApiDoc as utoipa::OpenApi>::openapi(),
};

/// The service's shared state (app data beside the platform).
pub struct Federation {
    pub policy: Policy,
    pub auth: Arc<Authenticator>,
    pub audit: AuditSink,
    pub max_doc_bytes: usize,
    pub json_limit: usize,
}

/// Longest time a verified credential may be reused.
pub const MAX_CACHE_TTL_SECS: u64 = 300;

impl Federation {
    /// The policy from `FEDERATION_ROLES_FILE`, or the built-in default.
    pub fn policy_from(config: &meridian_platform::Config) -> Result<Policy, ConfigError> {
        match config.service_setting_opt("ROLES_FILE") {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| config.setting_error("ROLES_FILE", format!("{path}: {e}")))?;
                Policy::parse(&text).map_err(|e| config.setting_error("ROLES_FILE", e))
            }
            None => Ok(Policy::builtin()),
        }
    }

    /// Reads the service's settings (`FEDERATION_*`) and starts the audit writer.
    pub fn new(platform: &Platform) -> Result<Federation, ConfigError> {
        let config = &platform.config;
        let policy = Self::policy_from(config)?;
        let ttl = config.service_seconds("CREDENTIAL_CACHE_TTL", 60)?;
        if ttl > Duration::from_secs(MAX_CACHE_TTL_SECS) {
            return Err(config.setting_error(
                "CREDENTIAL_CACHE_TTL",
                format!("at most {MAX_CACHE_TTL_SECS} seconds (0 disables the cache)"),
            ));
        }
        let rate = |name: &str, default: &str| -> Result<Rate, ConfigError> {
            config
                .service_setting_opt(name)
                .unwrap_or(default)
                .parse::<Rate>()
                .map_err(|e| config.setting_error(name, e))
        };
        let settings = AuthSettings {
            ttl,
            max_entries: config.service_setting("CREDENTIAL_CACHE_SIZE", 10_000usize)?,
            failures_per_account: rate("FAILURES_PER_ACCOUNT", "5/m")?,
            failures_per_address: rate("FAILURES_PER_ADDRESS", "30/m")?,
        };
        let max_doc_bytes = config.service_setting("MAX_DOCUMENT_BYTES", 8 * 1024 * 1024usize)?;
        let auth = Authenticator::new(&settings);
        auth.register_metrics(platform.registry());
        Ok(Federation {
            policy,
            auth: Arc::new(auth),
            audit: AuditSink::start(platform.db.pool().clone()),
            max_doc_bytes,
            json_limit: config.max_json_bytes,
        })
    }
}

/// Registers the state, the lenient JSON configuration (Thalamus clients send JSON without a
/// Content-Type) and the routes: what `serve` and the tests mount.
pub fn configure_with(state: web::Data<Federation>) -> impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static {
    move |cfg| {
        cfg.app_data(state.clone()).app_data(meridian_platform::extract::lenient_json_config(state.json_limit));
        configure_docs(cfg, state.max_doc_bytes);
        configure(cfg);
    }
}

fn configure_docs(cfg: &mut web::ServiceConfig, max_doc_bytes: usize) {
    use routes::{doc_get, doc_post, docs_list, docs_post, options_route};
    let limit = routes::doc_json_limit(max_doc_bytes);
    cfg.service(
        web::resource("/personal_docs/{person}")
            .app_data(meridian_platform::extract::lenient_json_config(limit))
            .app_data(web::PayloadConfig::new(limit))
            .route(web::get().to(docs_list))
            .route(web::post().to(docs_post))
            .route(options_route("GET, HEAD, POST, OPTIONS")),
    )
    .service(
        web::resource("/personal_docs/{person}/{id}")
            .app_data(meridian_platform::extract::lenient_json_config(limit))
            .app_data(web::PayloadConfig::new(limit))
            .route(web::get().to(doc_get))
            .route(web::post().to(doc_post))
            .route(options_route("GET, HEAD, POST, OPTIONS")),
    );
}

/// The routes (personal documents are added by [`configure_with`], which knows their size limit).
pub fn configure(cfg: &mut web::ServiceConfig) {
    use routes::{
        login, options_route, people_list, person_audit, person_delete, person_get, person_patch, person_post,
        place_get, place_patch, place_post, places_list, places_post, pol_delete, pol_get, pol_patch, pol_post,
        pols_list,
    };
    cfg.service(web::resource("/login").route(web::get().to(login)).route(options_route("GET, HEAD, OPTIONS")))
        .service(web::resource("/people").route(web::get().to(people_list)).route(options_route("GET, HEAD, OPTIONS")))
        .service(
            web::resource("/people/{id}")
                .route(web::get().to(person_get))
                .route(web::post().to(person_post))
                .route(web::patch().to(person_patch))
                .route(web::delete().to(person_delete))
                .route(options_route("GET, HEAD, POST, PATCH, DELETE, OPTIONS")),
        )
        .service(
            web::resource("/people/{id}/audit")
                .route(web::get().to(person_audit))
                .route(options_route("GET, HEAD, OPTIONS")),
        )
        .service(
            web::resource("/pols/{person}").route(web::get().to(pols_list)).route(options_route("GET, HEAD, OPTIONS")),
        )
        .service(
            web::resource("/pols/{person}/{page}")
                .route(web::get().to(pol_get))
                .route(web::post().to(pol_post))
                .route(web::patch().to(pol_patch))
                .route(web::delete().to(pol_delete))
                .route(options_route("GET, HEAD, POST, PATCH, DELETE, OPTIONS")),
        );
    cfg.service(
        web::resource("/password/{id}")
            .route(web::get().to(password_form::show))
            .route(web::post().to(password_form::change))
            .route(options_route("GET, HEAD, POST, OPTIONS")),
    );
    for kind in [Kind::DomiciliaryUnits, Kind::Institutions] {
        let data = web::Data::new(kind);
        cfg.service(
            web::resource(kind.path())
                .app_data(data.clone())
                .route(web::get().to(places_list))
                .route(web::post().to(places_post))
                .route(options_route("GET, HEAD, POST, OPTIONS")),
        )
        .service(
            web::resource(format!("{}/{{id}}", kind.path()))
                .app_data(data)
                .route(web::get().to(place_get))
                .route(web::post().to(place_post))
                .route(web::patch().to(place_patch))
                .route(options_route("GET, HEAD, POST, PATCH, OPTIONS")),
        );
    }
}

/// Serves until shut down: builds the state, starts the credential change listener, serves.
pub async fn serve(platform: Platform) -> std::io::Result<()> {
    let state = Federation::new(&platform).map_err(std::io::Error::other)?;
    let poll = platform.config.service_setting("LISTEN_POLL_MS", 50u64).map_err(std::io::Error::other)?;
    auth::spawn_listener(platform.config.database_url.clone(), &state.auth, Duration::from_millis(poll));
    let audit = state.audit.clone();
    let state = web::Data::new(state);
    let served = platform.serve(configure_with(state)).await;
    // Requests have finished: write what they queued before the process exits.
    let flushed = web::block(move || audit.flush(Duration::from_secs(10))).await;
    if !matches!(flushed, Ok(true)) {
        log::error!("the audit queue could not be written within 10 s of shutdown");
    }
    served
}
