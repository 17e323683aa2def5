//! The App builder every service uses, and the endpoints every service answers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use actix_cors::Cors;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode, header};
use actix_web::middleware::{DefaultHeaders, ErrorHandlerResponse, ErrorHandlers, from_fn};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, ResponseError, web};
use actix_web_prom::{PrometheusMetrics, PrometheusMetricsBuilder};
use diesel::RunQueryDsl;
use serde::Serialize;
use utoipa::ToSchema;

use crate::config::Config;
use crate::db::{self, Database, SchemaMigrations};
use crate::error::{ApiError, ApiResult};
use crate::ratelimit::{self, ClientLimiter};
use crate::request_id::{self, TrustedProxies};

/// What a service tells the platform about itself.
pub struct ServiceDef {
    /// Binary and service name; also the prefix of its own environment variables.
    pub name: &'static str,
    /// `env!("CARGO_PKG_VERSION")` of the service crate.
    pub version: &'static str,
    pub default_port: u16,
    /// The schema its pool works in.
    pub schema: &'static str,
    /// Every schema it migrates, in order.
    pub migrations: &'static [SchemaMigrations],
    /// Its OpenAPI document (the platform adds the common endpoints).
    pub openapi: fn() -> utoipa::openapi::OpenApi,
}

/// Version information answered by `GET /version`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VersionInfo {
    pub service: &'static str,
    pub version: &'static str,
    pub git_commit: &'static str,
    pub build_time: &'static str,
}

/// A running service's shared context: configuration, database, metrics. Cloned into every worker
/// and available to handlers as `web::Data<Platform>`.
#[derive(Clone)]
pub struct Platform {
    pub def: &'static ServiceDef,
    pub config: Arc<Config>,
    pub db: Database,
    metrics: PrometheusMetrics,
    openapi_json: Arc<String>,
    limiter: Option<web::Data<ClientLimiter>>,
    migrated: Arc<AtomicBool>,
}

const SHUTDOWN_GRACE_SECS: u64 = 30;

impl Platform {
    /// Builds the context without touching the database (it may not be up yet).
    pub fn new(def: &'static ServiceDef, config: Config) -> Self {
        let metrics = PrometheusMetricsBuilder::new("meridian")
            .endpoint("/metrics")
            .mask_unmatched_patterns("UNMATCHED")
            .const_labels(std::iter::once(("service".to_owned(), def.name.to_owned())).collect())
            .build()
            .expect("the metrics registry is fresh, so registration cannot collide");
        let mut openapi = (def.openapi)();
        openapi.merge(common_openapi());
        openapi.info.title = format!("Meridian {}", def.name);
        def.version.clone_into(&mut openapi.info.version);
        let openapi_json = Arc::new(serde_json::to_string_pretty(&openapi).expect("OpenAPI documents serialise"));
        let limiter = config.rate_limit.map(|rate| web::Data::new(ClientLimiter::new(rate)));
        let db = Database::new(&config.database_url, def.schema, config.database_pool_size);
        Platform {
            def,
            config: Arc::new(config),
            db,
            metrics,
            openapi_json,
            limiter,
            migrated: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The Prometheus registry, for a service's own gauges and counters.
    pub fn registry(&self) -> &prometheus::Registry {
        &self.metrics.registry
    }

    /// The service's OpenAPI document as served.
    pub fn openapi_json(&self) -> &str {
        &self.openapi_json
    }

    pub fn version_info(&self) -> VersionInfo {
        VersionInfo {
            service: self.def.name,
            version: self.def.version,
            git_commit: option_env!("MERIDIAN_GIT_COMMIT").unwrap_or("unknown"),
            build_time: option_env!("MERIDIAN_BUILD_TIME").unwrap_or("unknown"),
        }
    }

    /// Applies pending migrations now (blocking).
    pub fn migrate(&self) -> Result<(), db::MigrateError> {
        db::migrate(&self.config.database_url, self.def.migrations)?;
        self.migrated.store(true, Ordering::Release);
        Ok(())
    }

    /// Applies migrations in the background, retrying until the database answers, so the service
    /// can start (and answer `/running`) before Postgres does.
    pub fn spawn_migrations(&self) {
        let platform = self.clone();
        std::thread::spawn(move || {
            let mut wait = std::time::Duration::from_millis(500);
            loop {
                match platform.migrate() {
                    Ok(()) => return,
                    Err(err) => {
                        log::warn!("migrations not applied yet ({err}); retrying in {wait:?}");
                        std::thread::sleep(wait);
                        wait = (wait * 2).min(std::time::Duration::from_secs(10));
                    }
                }
            }
        });
    }

    /// Readiness: the database answers and every migration is applied.
    pub async fn check_ready(&self) -> ApiResult<()> {
        let migrated = self.migrated.clone();
        let schemas = self.def.migrations;
        self.db
            .run(move |conn| {
                diesel::sql_query("SELECT 1").execute(conn)?;
                if !migrated.load(Ordering::Acquire) {
                    if !db::migrations_applied(conn, schemas)? {
                        return Err(ApiError::unavailable("migrations are not applied yet"));
                    }
                    migrated.store(true, Ordering::Release);
                }
                Ok(())
            })
            .await
    }

    /// The App: common endpoints and middleware around the service's own routes.
    pub fn app<F>(
        &self,
        configure: F,
    ) -> App<
        impl ServiceFactory<
            ServiceRequest,
            Config = (),
            Response = ServiceResponse<impl MessageBody + 'static + use<F>>,
            Error = actix_web::Error,
            InitError = (),
        >
        + 'static
        + use<F>,
    >
    where
        F: FnOnce(&mut web::ServiceConfig),
    {
        let config = &self.config;
        // DefaultHeaders adds a header only when the response lacks it: an HTML page sets its own
        // Content-Security-Policy (hashes of its inline script and style) and that one is kept.
        let mut security = DefaultHeaders::new()
            .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            .add((header::X_FRAME_OPTIONS, "DENY"))
            .add((header::REFERRER_POLICY, "no-referrer"))
            .add((header::CONTENT_SECURITY_POLICY, "default-src 'none'; frame-ancestors 'none'"));
        if config.is_prod() {
            security = security.add((header::STRICT_TRANSPORT_SECURITY, "max-age=63072000; includeSubDomains"));
        }
        let mut app = App::new()
            .app_data(web::Data::new(self.clone()))
            .app_data(web::Data::new(TrustedProxies(config.trusted_proxies.clone())))
            .app_data(crate::extract::json_config(config.max_json_bytes))
            .app_data(crate::extract::query_config())
            .app_data(crate::extract::path_config())
            .app_data(crate::extract::form_config(config.max_json_bytes))
            .app_data(web::PayloadConfig::new(config.max_json_bytes));
        if let Some(limiter) = &self.limiter {
            app = app.app_data(limiter.clone());
        }
        app.service(web::resource("/running").route(web::get().to(running)))
            .service(web::resource("/ready").route(web::get().to(ready)))
            .service(web::resource("/version").route(web::get().to(version)))
            .service(web::resource("/openapi.json").route(web::get().to(openapi)))
            .service(web::scope("").wrap(from_fn(ratelimit::middleware)).configure(configure))
            .default_service(web::to(not_found))
            .wrap(ErrorHandlers::new().default_handler(problem_for_bare_errors))
            .wrap(cors(config))
            .wrap(security)
            .wrap(self.metrics.clone())
            .wrap(from_fn(head_as_get))
            .wrap(from_fn(request_id::middleware))
    }

    /// Serves until SIGTERM/SIGINT; in-flight requests get `SHUTDOWN_GRACE_SECS` to finish.
    pub async fn serve<F>(self, configure: F) -> std::io::Result<()>
    where
        F: Fn(&mut web::ServiceConfig) + Clone + Send + 'static,
    {
        if self.config.run_migrations {
            self.spawn_migrations();
        }
        let bind = self.config.bind;
        let platform = self.clone();
        let server = HttpServer::new(move || platform.app(configure.clone()))
            .on_connect(crate::tls::on_connect)
            .shutdown_timeout(SHUTDOWN_GRACE_SECS);
        let server = if let Some((cert, key)) = &self.config.tls {
            let tls = crate::tls::server_config(cert, key).map_err(std::io::Error::other)?;
            log::info!(
                "{} {} listening on https://{bind} (client certificates accepted)",
                self.def.name,
                self.def.version
            );
            server.bind_rustls_0_23(bind, tls)?
        } else {
            log::info!("{} {} listening on http://{bind}", self.def.name, self.def.version);
            server.bind(bind)?
        };
        server.run().await
    }
}

/// HEAD is answered by the GET route of the same path, so every GET resource supports it. The
/// HTTP codec already knows the request was HEAD and sends headers without the body.
async fn head_as_get(
    mut req: ServiceRequest,
    next: actix_web::middleware::Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, actix_web::Error> {
    if req.method() == Method::HEAD {
        req.head_mut().method = Method::GET;
    }
    next.call(req).await
}

fn cors(config: &Config) -> Cors {
    let cors = Cors::default()
        .allowed_methods([Method::GET, Method::POST, Method::PATCH, Method::PUT, Method::DELETE, Method::HEAD])
        // Services read headers of their own (Idempotency-Key, x-authorisation-code, X-Version...);
        // which origins may call is what CORS restricts here.
        .allow_any_header()
        .expose_headers([
            header::HeaderName::from_static(request_id::HEADER),
            header::ETAG,
            header::RETRY_AFTER,
            header::LINK,
            header::HeaderName::from_static("x-total-count"),
            header::HeaderName::from_static("x-next-offset"),
            header::HeaderName::from_static("x-version"),
            header::HeaderName::from_static("deprecation"),
            header::HeaderName::from_static("idempotent-replayed"),
        ])
        .max_age(3600);
    if config.hosts.iter().any(|h| h == "*") {
        return cors.allow_any_origin();
    }
    config.hosts.iter().fold(cors, |cors, origin| cors.allowed_origin(origin))
}

/// Error responses produced by actix itself (405, unmatched extractors, oversized bodies) come
/// without a body; give them the same problem+json shape as ours.
#[allow(clippy::unnecessary_wraps)] // the signature ErrorHandlers expects
fn problem_for_bare_errors<B: MessageBody + 'static>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let already_described = res
        .response()
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|ct| ct.to_str().is_ok_and(|ct| ct.contains("json") || ct.starts_with("text/html")));
    if already_described {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let detail = match status {
        StatusCode::METHOD_NOT_ALLOWED => "this method is not allowed on this resource".to_owned(),
        StatusCode::PAYLOAD_TOO_LARGE => "the request body is too large".to_owned(),
        StatusCode::NOT_FOUND => "no such resource".to_owned(),
        other => other.canonical_reason().unwrap_or("error").to_lowercase(),
    };
    let (req, original) = res.into_parts();
    let mut problem = ApiError::new(status, detail).error_response();
    for (name, value) in original.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            problem.headers_mut().insert(name.clone(), value.clone());
        }
    }
    Ok(ErrorHandlerResponse::Response(ServiceResponse::new(req, problem).map_into_right_body()))
}

async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found(format!("no route for {} {}", req.method(), req.path())))
}

/// Liveness: the process answers. No dependency is checked (a database outage must not make
/// Kubernetes restart every pod).
#[utoipa::path(get, path = "/running", tag = "health", responses((status = 200, description = "The process is alive", body = serde_json::Value, example = json!({"status": "running"}))))]
async fn running() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "running"}))
}

/// Readiness: the database answers and migrations are applied.
#[utoipa::path(get, path = "/ready", tag = "health", responses(
    (status = 200, description = "Ready for traffic", body = serde_json::Value, example = json!({"status": "ready"})),
    (status = 503, description = "The database is unreachable or not migrated", content_type = "application/problem+json")
))]
async fn ready(platform: web::Data<Platform>) -> Result<HttpResponse, ApiError> {
    platform.check_ready().await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"status": "ready"})))
}

/// What is running: service, version, git commit and build time.
#[utoipa::path(get, path = "/version", tag = "health", responses((status = 200, body = VersionInfo)))]
async fn version(platform: web::Data<Platform>) -> HttpResponse {
    HttpResponse::Ok().json(platform.version_info())
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "health", responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")))]
async fn openapi(platform: web::Data<Platform>) -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(platform.openapi_json.as_str().to_owned())
}

/// Prometheus metrics (served by the metrics middleware; documented here).
#[utoipa::path(get, path = "/metrics", tag = "health", responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain")))]
#[allow(dead_code)]
fn metrics_doc() {}

#[derive(utoipa::OpenApi)]
#[openapi(paths(running, ready, version, openapi, metrics_doc))]
struct CommonApi;

fn common_openapi() -> utoipa::openapi::OpenApi {
    <CommonApi as utoipa::OpenApi>::openapi()
}
