//! HTTP handlers: parse, authorise, call a domain function, map the result.

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::{HttpRequest, HttpResponse, web};
use meridian_auth::JwtKeys;
use meridian_model::{Page, PageQuery};
use meridian_platform::ratelimit::RateLimiter;
use meridian_platform::{ApiError, Platform};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::{self, Gate};
use crate::broadcasts::{self, BroadcastStatus};
use crate::fields::Fields;
use crate::mail::{self, MailContext};
use crate::registrations::{self, NewRegistration, Registered};
use crate::settings::Settings;
use crate::usage::{self, InstallCount};
use crate::{email, token};

/// The active-registration count, kept for a moment: `GET /api/registration/unique` is public and
/// counting is a scan. This process forgets it whenever it changes a registration, so its own
/// clients always read their writes; other replicas' changes show within [`COUNT_TTL`].
#[derive(Default)]
pub struct CountCache(Mutex<CountState>);

#[derive(Default)]
struct CountState {
    /// The count and when the query that produced it started.
    value: Option<(Instant, i64)>,
    /// When this process last changed a registration.
    changed_at: Option<Instant>,
}

pub const COUNT_TTL: Duration = Duration::from_secs(1);

impl CountCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, CountState> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn get(&self) -> Option<i64> {
        self.lock().value.filter(|(at, _)| at.elapsed() < COUNT_TTL).map(|(_, n)| n)
    }

    /// Keeps a count whose query started at `started`, unless a change came after that start.
    fn set(&self, started: Instant, count: i64) {
        let mut state = self.lock();
        if state.changed_at.is_none_or(|changed| started > changed) {
            state.value = Some((started, count));
        }
    }

    /// Called after this process changed a registration (and committed).
    pub fn forget(&self) {
        let mut state = self.lock();
        state.value = None;
        state.changed_at = Some(Instant::now());
    }
}

/// What handlers share beside the platform.
pub struct AppState {
    pub settings: Settings,
    pub jwt: JwtKeys,
    pub mail: MailContext,
    pub register_limiter: Option<RateLimiter<IpAddr>>,
    pub pin_limiter: RateLimiter<IpAddr>,
    pub count: CountCache,
}

impl AppState {
    pub fn new(platform: &Platform, settings: Settings) -> Result<AppState, String> {
        let jwt = JwtKeys::from_config(&platform.config.jwt).map_err(|e| e.to_string())?;
        let mail = MailContext::new(&settings.mail_from, &settings.public_url, &settings.unsubscribe_key)?;
        Ok(AppState {
            register_limiter: settings.register_rate.map(RateLimiter::new),
            pin_limiter: RateLimiter::new(settings.pin_rate),
            count: CountCache::default(),
            jwt,
            mail,
            settings,
        })
    }

    fn gate(&self) -> Gate<'_> {
        Gate { pin_hash: &self.settings.pin_hash, jwt: &self.jwt, pin_limiter: &self.pin_limiter }
    }
}

fn client_ip(req: &HttpRequest, platform: &Platform) -> Option<IpAddr> {
    meridian_platform::net::client_ip(req, &platform.config.trusted_proxies)
}

#[derive(Serialize, ToSchema)]
#[schema(example = json!({"status": "up"}))]
pub struct Up {
    status: &'static str,
}

/// The replaced service's health answer.
#[utoipa::path(get, path = "/", tag = "registration", responses((status = 200, body = Up)))]
pub async fn up() -> HttpResponse {
    HttpResponse::Ok().json(Up { status: "up" })
}

/// Fields of `POST /api/registration` (form-encoded, query string or JSON).
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)] // documents the request; the handler reads `Fields`
pub struct RegistrationRequest {
    #[schema(example = "admin@clinic.example.org")]
    email: String,
    #[schema(example = "7.0.3")]
    version: String,
    #[schema(example = "docker")]
    distribution: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"productId": "3f0e8f7e-1c9a-4f7e-9d8a-2b7c1e0f5a6d"}))]
pub struct ProductId {
    product_id: Uuid,
}

const MAX_VERSION: usize = 64;
const MAX_DISTRIBUTION: usize = 128;

fn short_field(fields: &Fields, name: &str, max: usize) -> Result<Option<String>, ApiError> {
    match fields.get(name) {
        Some(v) if v.chars().count() > max || v.chars().any(char::is_control) => Err(ApiError {
            errors: Some([(name.to_owned(), vec![format!("at most {max} characters on one line")])].into()),
            ..ApiError::bad_request(format!("{name} must be at most {max} characters on one line"))
                .with_code("InvalidField")
        }),
        v => Ok(v.map(str::to_owned)),
    }
}

/// Registers an installation's address. Fields: `email`, `version`, optional `distribution`.
#[utoipa::path(post, path = "/api/registration", tag = "registration",
    request_body(content = RegistrationRequest, content_type = "application/x-www-form-urlencoded",
        description = "Form-encoded (the EMR client), JSON, or the same fields in the query string"),
    responses(
        (status = 201, body = ProductId, description = "Registered, or registered again after opting out (same product id)"),
        (status = 400, description = "code InvalidEmail", content_type = "application/problem+json"),
        (status = 409, description = "code AlreadyRegistered", content_type = "application/problem+json"),
        (status = 429, description = "Too many registrations from this address", content_type = "application/problem+json"),
    ))]
pub async fn register(
    req: HttpRequest,
    platform: web::Data<Platform>,
    state: web::Data<AppState>,
    fields: Fields,
) -> Result<HttpResponse, ApiError> {
    let ip = client_ip(&req, &platform);
    if let (Some(limiter), Some(ip)) = (&state.register_limiter, ip) {
        limiter.hit(&ip).map_err(|wait| ApiError {
            detail: "too many registrations from this address; retry later".into(),
            ..ApiError::too_many_requests(wait).with_code("TooManyRegistrations")
        })?;
    }
    let address = email::normalise(fields.raw("email").unwrap_or(""))
        .map_err(|e| ApiError::bad_request(e.to_string()).with_title("Invalid email").with_code("InvalidEmail"))?;
    let new = NewRegistration {
        email: address,
        version: short_field(&fields, "version", MAX_VERSION)?.unwrap_or_default(),
        distribution: short_field(&fields, "distribution", MAX_DISTRIBUTION)?,
        client_ip: ip.map(|ip| ip.to_string()),
    };
    let registered = platform.db.run(move |conn| Ok(registrations::register(conn, &new)?)).await?;
    state.count.forget();
    match registered {
        Registered::New(id) | Registered::Reactivated(id) => {
            Ok(HttpResponse::Created().json(ProductId { product_id: id }))
        }
        Registered::AlreadyRegistered => Err(ApiError::conflict("this address is already registered")
            .with_title("Already registered")
            .with_code("AlreadyRegistered")),
    }
}

#[derive(Serialize, ToSchema)]
#[schema(example = json!({"count": 42}))]
pub struct Count {
    count: i64,
}

/// Active registrations (opted-out addresses are not counted).
#[utoipa::path(get, path = "/api/registration/unique", tag = "registration", responses((status = 200, body = Count)))]
pub async fn unique(platform: web::Data<Platform>, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if let Some(count) = state.count.get() {
        return Ok(HttpResponse::Ok().json(Count { count }));
    }
    let taken_at = Instant::now();
    let count = platform.db.run(|conn| Ok(registrations::active_count(conn)?)).await?;
    state.count.set(taken_at, count);
    Ok(HttpResponse::Ok().json(Count { count }))
}

/// Fields of `POST /api/registration/broadcast` (form-encoded or JSON).
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // documents the request; the handler reads `Fields`
pub struct BroadcastRequest {
    /// The board's PIN (or send an admin bearer token instead).
    secret_pin: Option<String>,
    #[schema(example = "Security release 7.0.3")]
    title: String,
    /// Plain text; blank lines separate paragraphs, `**bold**` is bold in the HTML part.
    #[schema(example = "Please update to 7.0.3.")]
    contents: String,
    /// Render the message and count recipients without queuing anything.
    dry_run: Option<bool>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"status": "sent", "broadcastId": "0b6f3a52-1f9e-4c1b-8a7e-5d2c9e1f0a3b", "recipients": 1200}))]
pub struct BroadcastQueued {
    /// `sent` (the replaced API's word): queued for every active registration.
    status: &'static str,
    broadcast_id: Uuid,
    recipients: i64,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BroadcastPreview {
    /// `dryRun`: nothing was queued.
    status: &'static str,
    recipients: i64,
    subject: String,
    text: String,
    html: String,
}

/// Queues a broadcast to every active registration and returns at once; the worker delivers it.
#[utoipa::path(post, path = "/api/registration/broadcast", tag = "broadcast",
    request_body(content = BroadcastRequest, content_type = "application/x-www-form-urlencoded", description = "Form-encoded or JSON"),
    responses(
        (status = 200, body = BroadcastQueued, description = "Queued (or, with dryRun, a BroadcastPreview)"),
        (status = 400, description = "code InvalidEmailMessage: empty or oversized title or contents", content_type = "application/problem+json"),
        (status = 401, description = "code InvalidSecretPin", content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong PINs from this address", content_type = "application/problem+json"),
    ))]
pub async fn broadcast(
    req: HttpRequest,
    platform: web::Data<Platform>,
    state: web::Data<AppState>,
    fields: Fields,
) -> Result<HttpResponse, ApiError> {
    let sent_by = auth::authorise(&req, &platform, &state.gate(), fields.raw("secretPin")).await?;
    let title = fields.get("title").unwrap_or("").to_owned();
    let contents = fields.raw("contents").unwrap_or("").trim_end().to_owned();
    broadcasts::validate_message(&title, &contents).map_err(|detail| {
        ApiError::bad_request(detail).with_title("Invalid email message").with_code("InvalidEmailMessage")
    })?;
    if fields.flag("dryRun")? {
        let recipients = platform.db.run(|conn| Ok(registrations::active_count(conn)?)).await?;
        let url = state.mail.unsubscribe_url(Uuid::nil());
        return Ok(HttpResponse::Ok().json(BroadcastPreview {
            status: "dryRun",
            recipients,
            text: mail::render_text(&contents, &url),
            html: mail::render_html(&title, &contents, &url),
            subject: title,
        }));
    }
    let ip = client_ip(&req, &platform).map(|ip| ip.to_string());
    let who = sent_by.clone();
    let (id, recipients) = platform
        .db
        .transaction(move |conn| Ok(broadcasts::enqueue(conn, &title, &contents, &who, ip.as_deref())?))
        .await?;
    log::info!("broadcast {id} queued by {sent_by} for {recipients} recipients");
    Ok(HttpResponse::Ok().json(BroadcastQueued { status: "sent", broadcast_id: id, recipients }))
}

/// One broadcast: queued, sent, failed and skipped counts. Board PIN (`X-Secret-Pin` or basic
/// auth password) or an admin JWT.
#[utoipa::path(get, path = "/api/registration/broadcast/{id}", tag = "broadcast",
    params(("id" = Uuid, Path, description = "The broadcast id returned when it was queued")),
    responses(
        (status = 200, body = BroadcastStatus),
        (status = 401, content_type = "application/problem+json"),
        (status = 404, content_type = "application/problem+json"),
    ),
    security(("pin" = []), ("basic" = []), ("bearer" = [])))]
pub async fn broadcast_status(
    req: HttpRequest,
    platform: web::Data<Platform>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    auth::authorise(&req, &platform, &state.gate(), None).await?;
    let id = id.into_inner();
    let status = platform
        .db
        .run(move |conn| {
            broadcasts::status(conn, id).map_err(|e| match e {
                diesel::result::Error::NotFound => ApiError::not_found("no such broadcast"),
                e => e.into(),
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(status))
}

/// Past broadcasts, newest first, with their counts.
#[utoipa::path(get, path = "/api/registration/broadcast", tag = "broadcast", params(PageQuery),
    responses((status = 200, body = Page<BroadcastStatus>), (status = 401, content_type = "application/problem+json")),
    security(("pin" = []), ("basic" = []), ("bearer" = [])))]
pub async fn broadcast_list(
    req: HttpRequest,
    platform: web::Data<Platform>,
    state: web::Data<AppState>,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    auth::authorise(&req, &platform, &state.gate(), None).await?;
    let page = page.into_inner();
    let (items, total) = platform.db.run(move |conn| Ok(broadcasts::list(conn, page.limit(), page.offset())?)).await?;
    Ok(HttpResponse::Ok().json(Page::new(items, total, page)))
}

#[derive(Deserialize, IntoParams)]
pub struct TokenQuery {
    /// The signed token from the email's link.
    token: Option<String>,
}

/// The confirmation page behind an email's unsubscribe link.
#[utoipa::path(get, path = "/api/registration/unsubscribe", tag = "opt-out", params(TokenQuery),
    responses((status = 200, content_type = "text/html"), (status = 400, content_type = "text/html")))]
pub async fn unsubscribe_page(
    platform: web::Data<Platform>,
    state: web::Data<AppState>,
    query: web::Query<TokenQuery>,
) -> Result<HttpResponse, ApiError> {
    let token = query.into_inner().token.unwrap_or_default();
    let Some(id) = token::verify(&state.settings.unsubscribe_key, &token) else {
        return Ok(crate::pages::invalid_link());
    };
    match platform.db.run(move |conn| Ok(registrations::find(conn, id)?)).await? {
        Some((email, active)) => Ok(crate::pages::confirm(&email, &token, !active)),
        None => Ok(crate::pages::invalid_link()),
    }
}

/// Unsubscribes: the page's button, and RFC 8058 one-click (`List-Unsubscribe=One-Click`).
#[utoipa::path(post, path = "/api/registration/unsubscribe", tag = "opt-out", params(TokenQuery),
    responses((status = 200, content_type = "text/html"), (status = 400, content_type = "text/html")))]
pub async fn unsubscribe(
    platform: web::Data<Platform>,
    state: web::Data<AppState>,
    fields: Fields,
) -> Result<HttpResponse, ApiError> {
    let Some(id) = fields.get("token").and_then(|t| token::verify(&state.settings.unsubscribe_key, t)) else {
        return Ok(crate::pages::invalid_link());
    };
    let result = platform
        .db
        .run(move |conn| {
            let changed = registrations::unsubscribe(conn, id)?;
            Ok((changed, registrations::find(conn, id)?))
        })
        .await?;
    state.count.forget();
    match result {
        (Some(changed), Some((email, _))) => {
            if changed {
                log::info!("registration {id} unsubscribed");
            }
            Ok(crate::pages::done(&email))
        }
        _ => Ok(crate::pages::invalid_link()),
    }
}

#[derive(Deserialize, IntoParams)]
pub struct SiteQuery {
    /// The installation's id.
    #[serde(rename = "SiteID")]
    #[param(rename = "SiteID")]
    site_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"status": "stored", "siteId": "6f1c2b9e-8d4a-4c55-9f43-2f0b1a3c4d5e", "reportingInterval": "202611", "records": 12}))]
pub struct UsageStored {
    status: &'static str,
    site_id: Uuid,
    reporting_interval: String,
    records: usize,
}

/// Stores an installation's monthly usage report (a resent month replaces the earlier report).
#[utoipa::path(post, path = "/api/usage", tag = "usage", params(SiteQuery),
    request_body(content = serde_json::Value, content_type = "application/json",
        description = "{usageRecords: [{event_type, event_label, event_url, event_target, first_event, last_event, count}], localeData: {site_uuid, reporting_interval (YYYYMM), reporting_date, time_zone, locale, version, environment, distribution, ...}}"),
    responses(
        (status = 200, body = UsageStored),
        (status = 400, content_type = "application/problem+json"),
        (status = 413, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, by path", content_type = "application/problem+json"),
    ))]
pub async fn usage_report(
    req: HttpRequest,
    platform: web::Data<Platform>,
    query: web::Query<SiteQuery>,
    body: meridian_platform::extract::Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    let site_id =
        query.into_inner().site_id.and_then(|s| s.trim().parse::<Uuid>().ok()).ok_or_else(|| {
            ApiError::bad_request("SiteID must be the installation's UUID").with_code("InvalidSiteID")
        })?;
    let report = usage::validate(site_id, body.into_inner())?;
    let ip = client_ip(&req, &platform).map(|ip| ip.to_string());
    let stored = UsageStored {
        status: "stored",
        site_id,
        reporting_interval: report.reporting_interval.clone(),
        records: report.records,
    };
    platform.db.run(move |conn| Ok(usage::store(conn, &report, ip.as_deref())?)).await?;
    Ok(HttpResponse::Ok().json(stored))
}

#[derive(Deserialize, IntoParams)]
pub struct SummaryQuery {
    /// How many of the latest months (1 to 120, default 12).
    months: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct UsageSummary {
    installs: Vec<InstallCount>,
}

/// Installations reporting, by month and version (admin).
#[utoipa::path(get, path = "/api/usage/summary", tag = "usage", params(SummaryQuery),
    responses((status = 200, body = UsageSummary), (status = 401, content_type = "application/problem+json")),
    security(("pin" = []), ("basic" = []), ("bearer" = [])))]
pub async fn usage_summary(
    req: HttpRequest,
    platform: web::Data<Platform>,
    state: web::Data<AppState>,
    query: web::Query<SummaryQuery>,
) -> Result<HttpResponse, ApiError> {
    auth::authorise(&req, &platform, &state.gate(), None).await?;
    let months = query.months.unwrap_or(12).clamp(1, 120);
    let installs = platform.db.run(move |conn| Ok(usage::summary(conn, months)?)).await?;
    Ok(HttpResponse::Ok().json(UsageSummary { installs }))
}
