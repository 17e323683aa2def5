//! `registration`: installations register an address with the maintainers; the board broadcasts
//! announcements to every active registration through a durable queue over SMTP; recipients opt
//! out with one click; newer clients send monthly usage reports.

pub mod auth;
pub mod broadcasts;
pub mod email;
pub mod fields;
pub mod mail;
pub mod openapi;
pub mod pages;
pub mod registrations;
pub mod routes;
pub mod schema;
pub mod seed;
pub mod settings;
pub mod token;
pub mod usage;
pub mod worker;

use actix_web::web;
use diesel_migrations::embed_migrations;
use meridian_platform::{Platform, SchemaMigrations, ServiceDef};

pub use routes::AppState;
pub use settings::Settings;

pub const SCHEMA: &str = "registration";

/// Largest usage report accepted.
pub const MAX_USAGE_BYTES: usize = 1024 * 1024;

pub static SERVICE: ServiceDef = ServiceDef {
    name: "registration",
    version: env!("CARGO_PKG_VERSION"),
    default_port: 8084,
    schema: SCHEMA,
    migrations: &[SchemaMigrations { schema: SCHEMA, migrations: embed_migrations!("../../migrations/registration") }],
    openapi: || <openapi::ApiDoc as utoipa::OpenApi>::openapi(),
};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/").route(web::get().to(routes::up)))
        .service(web::resource("/api/registration").route(web::post().to(routes::register)))
        .service(web::resource("/api/registration/unique").route(web::get().to(routes::unique)))
        .service(
            web::resource("/api/registration/broadcast")
                .route(web::post().to(routes::broadcast))
                .route(web::get().to(routes::broadcast_list)),
        )
        .service(web::resource("/api/registration/broadcast/{id}").route(web::get().to(routes::broadcast_status)))
        .service(
            web::resource("/api/registration/unsubscribe")
                .route(web::get().to(routes::unsubscribe_page))
                .route(web::post().to(routes::unsubscribe)),
        )
        .service(
            web::resource("/api/usage")
                .app_data(meridian_platform::extract::lenient_json_config(MAX_USAGE_BYTES))
                .route(web::post().to(routes::usage_report)),
        )
        .service(web::resource("/api/usage/summary").route(web::get().to(routes::usage_summary)));
}

/// The worker's message context and settings from the service settings.
pub fn start_worker(platform: &Platform, settings: &Settings) -> Result<worker::Worker, String> {
    let ctx = mail::MailContext::new(&settings.mail_from, &settings.public_url, &settings.unsubscribe_key)?;
    worker::Worker::start_observed(
        platform.config.database_url.clone(),
        SCHEMA,
        settings.mailer.clone(),
        ctx,
        settings.worker.clone(),
        worker::outcome_counter(platform.registry()),
    )
}

pub async fn serve(platform: Platform) -> std::io::Result<()> {
    let settings = Settings::from_config(&platform.config).map_err(std::io::Error::other)?;
    if let Some(pin) = settings.demo_pin {
        log::warn!("dev mode: the broadcast PIN is the demo PIN {pin:?} (set REGISTRATION_BROADCAST_PIN_HASH)");
    }
    if let settings::MailerSpec::Outbox(dir) = &settings.mailer {
        log::warn!("dev mode without SMTP_URL: mail is written to {}", dir.display());
    }
    let worker = if settings.worker.enabled {
        Some(start_worker(&platform, &settings).map_err(std::io::Error::other)?)
    } else {
        None
    };
    let state = web::Data::new(AppState::new(&platform, settings).map_err(std::io::Error::other)?);
    let result = platform
        .serve(move |cfg| {
            cfg.app_data(state.clone());
            configure(cfg);
        })
        .await;
    if let Some(worker) = worker {
        // Let in-flight sends finish and record their outcome.
        let _ = web::block(move || worker.stop()).await;
    }
    result
}
