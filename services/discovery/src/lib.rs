//! Meridian discovery: which servers exist (the mobile app's server list), how healthy they are
//! (pushed and polled statuses), and a status page. Compatible with the Tamanu meta server's API.

pub mod cli;
pub mod metrics;
pub mod model;
pub mod openapi;
pub mod page;
pub mod poller;
pub mod routes;
pub mod schema;
pub mod servers;
pub mod snapshot;
pub mod statuses;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::{Next, from_fn};
use actix_web::web;
use diesel_migrations::embed_migrations;
use meridian_platform::{Platform, SchemaMigrations, ServiceDef};

pub const SCHEMA: &str = "discovery";

pub static SERVICE: ServiceDef = ServiceDef {
    name: "discovery",
    version: env!("CARGO_PKG_VERSION"),
    default_port: 8081,
    schema: SCHEMA,
    migrations: &[
        meridian_auth::AUTH_MIGRATIONS,
        SchemaMigrations { schema: SCHEMA, migrations: embed_migrations!("../../migrations/discovery") },
    ],
    openapi: || <openapi::ApiDoc as utoipa::OpenApi>::openapi(),
};

/// What the handlers share beside the platform.
#[derive(Clone)]
pub struct State {
    pub list: snapshot::ServerList,
    pub poller: poller::Poller,
    /// The last rendered status page and when: served again for [`page::CACHE_FOR`], so a busy
    /// page costs the database one query every few seconds.
    pub page: Arc<std::sync::Mutex<Option<(std::time::Instant, web::Bytes)>>>,
}

impl State {
    pub fn new(platform: &Platform, config: poller::PollerConfig) -> web::Data<State> {
        web::Data::new(State {
            list: snapshot::ServerList::default(),
            poller: poller::Poller::new(platform.db.clone(), config),
            page: Arc::default(),
        })
    }
}

/// `X-Version: <meridian version>` on every successful response, as the replaced server sent.
async fn version_header(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let mut res = next.call(req).await?;
    if res.status().is_success() || res.status().is_redirection() {
        res.headers_mut()
            .insert(HeaderName::from_static("x-version"), HeaderValue::from_static(env!("CARGO_PKG_VERSION")));
    }
    Ok(res)
}

/// Routes, each wrapped with the `X-Version` header. (Resource by resource rather than one catch-all
/// scope, so the routes compose with other services' in one App.)
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/servers")
            .wrap(from_fn(version_header))
            .get(routes::list_servers)
            .post(routes::create_server)
            .patch(routes::update_server)
            .delete(routes::delete_server),
    )
    .service(web::resource("/servers/{id}/statuses").wrap(from_fn(version_header)).get(routes::server_statuses))
    .service(web::resource("/status/{server_id}").wrap(from_fn(version_header)).post(routes::post_status))
    .service(web::resource("/statuses").wrap(from_fn(version_header)).get(routes::latest_statuses))
    .service(web::resource("/status").wrap(from_fn(version_header)).get(routes::status_page))
    .service(web::resource("/reload").wrap(from_fn(version_header)).post(routes::reload))
    .service(web::resource("/devices").wrap(from_fn(version_header)).get(routes::list_devices))
    .service(web::resource("/devices/{id}").wrap(from_fn(version_header)).patch(routes::update_device));
}

/// Serves HTTP with the server-list listener, the poller (when this replica holds the lock) and
/// the gauges running beside it.
pub async fn serve(platform: Platform) -> std::io::Result<()> {
    let config = poller::PollerConfig::from_config(&platform.config).map_err(std::io::Error::other)?;
    let state = State::new(&platform, config);
    let safety: u64 = platform.config.service_setting("LIST_REFRESH_SECONDS", 30).map_err(std::io::Error::other)?;
    let stop = Arc::new(AtomicBool::new(false));
    state.list.spawn_listener(
        platform.config.database_url.clone(),
        platform.db.pool().clone(),
        Duration::from_secs(safety.max(1)),
        stop.clone(),
    );
    if platform.config.service_setting("POLL", true).map_err(std::io::Error::other)? {
        state.poller.spawn(platform.config.database_url.clone(), stop.clone());
    }
    let gauges = metrics::Gauges::register(platform.registry()).map_err(std::io::Error::other)?;
    let gauge_every = platform
        .config
        .service_seconds("GAUGES_REFRESH_SECONDS", 15)
        .map_err(std::io::Error::other)?
        .max(Duration::from_secs(1));
    let db = platform.db.clone();
    actix_web::rt::spawn(async move {
        loop {
            match db.run(statuses::health).await {
                Ok(rows) => gauges.update(&rows, chrono::Utc::now()),
                Err(err) => log::debug!("gauges not updated: {err}"),
            }
            actix_web::rt::time::sleep(gauge_every).await;
        }
    });
    let result = platform
        .serve(move |cfg| {
            cfg.app_data(state.clone());
            configure(cfg);
        })
        .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    result
}
