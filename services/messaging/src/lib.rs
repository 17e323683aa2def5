//! Meridian messaging: clinician-patient messages, one-time activations and the JWTs they lead to
//! (the Polaris messages and activation-auth APIs, merged).

pub mod activations;
pub mod auth;
pub mod cli;
pub mod codes;
pub mod directory;
pub mod idempotency;
pub mod inserts;
pub mod messages;
pub mod metrics;
pub mod notify;
pub mod openapi;
pub mod routes;
pub mod schema;
pub mod state;
pub mod stream;

use actix_web::web;
use diesel_migrations::embed_migrations;
use meridian_platform::{Platform, SchemaMigrations, ServiceDef};

pub use state::State;

pub const SCHEMA: &str = "messaging";

pub static SERVICE: ServiceDef = ServiceDef {
    name: "messaging",
    version: env!("CARGO_PKG_VERSION"),
    default_port: 8085,
    schema: SCHEMA,
    migrations: &[SchemaMigrations { schema: SCHEMA, migrations: embed_migrations!("../../migrations/messaging") }],
    openapi: || <openapi::ApiDoc as utoipa::OpenApi>::openapi(),
};

/// Every route of the service. The caller adds `web::Data<State>` as app data.
pub fn configure(cfg: &mut web::ServiceConfig) {
    use routes as r;
    // The router tries patterns in order: the busiest routes come first.
    cfg.route("/dhos/v2/message", web::post().to(r::post_message_v2))
        .route("/dhos/v1/receiver/{r}/active/message", web::get().to(r::receiver_active_messages))
        .route("/.well-known/jwks.json", web::get().to(r::jwks))
        .route("/dhos/v1/message", web::post().to(r::post_message_v1))
        .service(web::resource("/dhos/v1/message/{id}").get(r::get_message).patch(r::patch_message))
        .route("/dhos/v1/sender/{s}/message", web::get().to(r::sender_messages))
        .route("/dhos/v1/sender/{s}/active/message", web::get().to(r::sender_active_messages))
        .route("/dhos/v1/sender/{s}/receiver/{r}/message", web::get().to(r::pair_messages))
        .route("/dhos/v1/sender/{s}/receiver/{r}/active/message", web::get().to(r::pair_active_messages))
        .route("/dhos/v1/receiver/{r}/message", web::get().to(r::receiver_messages))
        .route("/dhos/v1/receiver/{r}/message/stream", web::get().to(r::receiver_stream))
        .route("/dhos/v1/receiver/{r}/active/callback/message", web::get().to(r::receiver_open_callbacks))
        .route("/dhos/v1/sender_or_receiver/{p}/message", web::get().to(r::conversation))
        .route("/dhos/v1/active/callback/message", web::post().to(r::open_callbacks))
        .service(
            web::resource("/dhos/v1/patient/{id}/activation")
                .post(r::create_patient_activation)
                .get(r::list_patient_activations),
        )
        .route("/dhos/v1/patient/{id}/jwt", web::get().to(r::patient_jwt))
        .route("/dhos/v1/activation/{code}", web::post().to(r::redeem_activation))
        .service(web::resource("/dhos/v1/device").post(r::create_device).get(r::list_devices))
        .service(web::resource("/dhos/v1/device/{id}").get(r::get_device).patch(r::patch_device))
        .route("/dhos/v1/device/{id}/activation", web::post().to(r::create_device_activation))
        .route("/dhos/v1/device/{id}/jwt", web::get().to(r::device_jwt))
        .route("/dhos/v1/clinician", web::post().to(r::create_clinician))
        .route("/dhos/v1/clinician/jwt", web::get().to(r::clinician_jwt))
        .route("/dhos/v1/clinician/{id}", web::patch().to(r::patch_clinician));
}

/// Serves until shut down.
pub async fn serve(platform: Platform) -> std::io::Result<()> {
    let state = State::new(&platform).map_err(|e| std::io::Error::other(e.to_string()))?;
    let state = web::Data::new(state);
    // Start listening for new messages now, so the first stream misses nothing.
    drop(state.notifier.subscribe());
    platform
        .serve(move |cfg| {
            cfg.app_data(state.clone());
            configure(cfg);
        })
        .await
}
