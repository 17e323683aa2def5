//! Thin handlers: parse, authorise, call a domain function, map the result.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use meridian_auth::Device;
use meridian_auth::devices::{self, DeviceView};
use meridian_model::{DeviceRole, Page, PageQuery};
use meridian_platform::conditional;
use meridian_platform::extract::{self, Json};
use meridian_platform::{ApiError, ApiResult, Platform};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::State;
use crate::poller::RoundSummary;
use crate::servers::{self, NewServer, PublicServer, Server, ServerChange, ServerId};
use crate::statuses::{self, NewStatus, Status};

const SERVERS_CACHE_CONTROL: &str = "public, max-age=10";

/// The servers the mobile app offers: listed central servers with a name, by rank then name.
#[utoipa::path(get, path = "/servers", tag = "servers",
    params(("If-None-Match" = Option<String>, Header, description = "An ETag from an earlier answer")),
    responses(
        (status = 200, description = "The list; exactly the fields the Tamanu mobile app reads", body = Vec<PublicServer>,
            headers(("ETag" = String), ("Cache-Control" = String), ("X-Version" = String))),
        (status = 304, description = "Unchanged since the ETag given")))]
pub async fn list_servers(
    req: HttpRequest,
    platform: web::Data<Platform>,
    state: web::Data<State>,
) -> ApiResult<HttpResponse> {
    let snapshot = state.list.current(&platform.db).await?;
    let mut response = HttpResponse::Ok();
    response.insert_header((header::CACHE_CONTROL, SERVERS_CACHE_CONTROL));
    Ok(conditional::respond(&req, &snapshot.etag, &[], response, |ok| {
        ok.content_type("application/json").body(snapshot.body.clone())
    }))
}

/// Rebuilds this replica's list after a write (other replicas hear the database's notification).
async fn refresh_list(platform: &Platform, state: &State) {
    if let Err(err) = state.list.refresh(&platform.db).await {
        log::warn!("server list refresh failed: {err}");
    }
}

/// Registers a server; the calling device owns it (reports its status).
#[utoipa::path(post, path = "/servers", tag = "servers", request_body = NewServer,
    responses(
        (status = 201, body = Server),
        (status = 401, description = "No client certificate", content_type = "application/problem+json"),
        (status = 403, description = "Neither a server nor an admin device", content_type = "application/problem+json"),
        (status = 409, description = "A server with this host exists", content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", content_type = "application/problem+json")))]
pub async fn create_server(
    device: Device,
    platform: web::Data<Platform>,
    state: web::Data<State>,
    body: Json<NewServer>,
) -> ApiResult<HttpResponse> {
    device.require(DeviceRole::Server)?;
    let input = body.into_inner();
    let owner = match input.device_id {
        None => Some(device.id),
        Some(other) if device.is_admin() => other,
        Some(_) => return Err(ApiError::forbidden("only an admin device may choose another owner")),
    };
    let server = platform.db.transaction(move |conn| servers::create(conn, input, owner)).await?;
    refresh_list(&platform, &state).await;
    Ok(HttpResponse::Created().json(server))
}

/// Changes a server: its owning device or an admin; only an admin changes the owner.
#[utoipa::path(patch, path = "/servers", tag = "servers", request_body = ServerChange,
    responses(
        (status = 200, body = Server),
        (status = 403, description = "Not the owner, nor an admin", content_type = "application/problem+json"),
        (status = 404, description = "No such server", content_type = "application/problem+json"),
        (status = 409, description = "Another server has this host", content_type = "application/problem+json"),
        (status = 422, description = "Empty change or invalid fields", content_type = "application/problem+json")))]
pub async fn update_server(
    device: Device,
    platform: web::Data<Platform>,
    state: web::Data<State>,
    body: Json<ServerChange>,
) -> ApiResult<HttpResponse> {
    device.require(DeviceRole::Server)?;
    let change = body.into_inner();
    if change.is_empty() {
        return Err(ApiError::invalid_field("id", "the change is empty: give at least one field besides id"));
    }
    if change.device_id.is_some() && !device.is_admin() {
        return Err(ApiError::forbidden("only an admin device may change a server's owner"));
    }
    let server = platform
        .db
        .transaction(move |conn| {
            let current = servers::find(conn, change.id)?;
            if !device.is_admin() && current.device_id != Some(device.id) {
                return Err(ApiError::forbidden("this device does not own this server"));
            }
            servers::update(conn, change)
        })
        .await?;
    refresh_list(&platform, &state).await;
    Ok(HttpResponse::Ok().json(server))
}

/// Removes a server and its statuses (admin).
#[utoipa::path(delete, path = "/servers", tag = "servers", request_body = ServerId,
    responses(
        (status = 200, description = "The deleted server", body = Server),
        (status = 403, description = "Not an admin device", content_type = "application/problem+json"),
        (status = 404, description = "No such server", content_type = "application/problem+json")))]
pub async fn delete_server(
    device: Device,
    platform: web::Data<Platform>,
    state: web::Data<State>,
    body: Json<ServerId>,
) -> ApiResult<HttpResponse> {
    device.require(DeviceRole::Admin)?;
    let id = body.into_inner().id;
    let server = platform.db.transaction(move |conn| servers::delete(conn, id)).await?;
    refresh_list(&platform, &state).await;
    Ok(HttpResponse::Ok().json(server))
}

/// A server reports its own health: `X-Version` is required; a JSON body is kept as `extra`.
#[utoipa::path(post, path = "/status/{server_id}", tag = "statuses",
    params(("server_id" = Uuid, Path), ("X-Version" = String, Header, description = "The server's semantic version")),
    request_body(content = Option<serde_json::Value>, description = "Anything the server wants recorded (optional)"),
    responses(
        (status = 200, description = "The stored status", body = Status),
        (status = 400, description = "Missing or malformed X-Version, or malformed JSON", content_type = "application/problem+json"),
        (status = 403, description = "Not the owning device, nor an admin", content_type = "application/problem+json"),
        (status = 404, description = "No such server", content_type = "application/problem+json")))]
pub async fn post_status(
    req: HttpRequest,
    device: Device,
    platform: web::Data<Platform>,
    server_id: web::Path<Uuid>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let server_id = server_id.into_inner();
    let version = match req.headers().get("x-version").map(|v| v.to_str()) {
        None => return Err(ApiError::bad_request("the X-Version header is required").with_code("MissingVersion")),
        Some(Err(_)) => return Err(ApiError::bad_request("the X-Version header is not text").with_code("BadVersion")),
        Some(Ok(text)) => text
            .parse::<meridian_model::Version>()
            .map_err(|e| ApiError::bad_request(format!("X-Version: {e}")).with_code("BadVersion"))?,
    };
    let extra = if body.iter().all(u8::is_ascii_whitespace) {
        serde_json::json!({})
    } else {
        extract::from_slice::<serde_json::Value>(&body)?
    };
    let status = platform
        .db
        .transaction(move |conn| {
            let server = servers::find(conn, server_id)?;
            if !device.is_admin() && server.device_id != Some(device.id) {
                return Err(ApiError::forbidden(
                    "only the device that owns this server (or an admin) reports its status",
                ));
            }
            statuses::insert(
                conn,
                NewStatus {
                    server_id,
                    version: Some(version.to_string()),
                    latency_ms: None,
                    error: None,
                    extra,
                    device_id: Some(device.id),
                },
            )
        })
        .await?;
    Ok(HttpResponse::Ok().json(status))
}

/// The latest status of every server.
#[utoipa::path(get, path = "/statuses", tag = "statuses", responses((status = 200, body = Vec<Status>)))]
pub async fn latest_statuses(platform: web::Data<Platform>) -> ApiResult<HttpResponse> {
    let list = platform.db.run(statuses::latest).await?;
    Ok(HttpResponse::Ok().json(list))
}

/// One server's status history, newest first.
#[utoipa::path(get, path = "/servers/{id}/statuses", tag = "statuses",
    params(("id" = Uuid, Path), PageQuery),
    responses(
        (status = 200, body = inline(Page<Status>)),
        (status = 404, description = "No such server", content_type = "application/problem+json")))]
pub async fn server_statuses(
    platform: web::Data<Platform>,
    id: web::Path<Uuid>,
    query: web::Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    let (id, query) = (id.into_inner(), query.into_inner());
    let page = platform
        .db
        .run(move |conn| {
            servers::find(conn, id)?;
            statuses::history(conn, id, query)
        })
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// Polls every server without an owning device now (admin).
#[utoipa::path(post, path = "/reload", tag = "statuses",
    responses(
        (status = 200, body = RoundSummary),
        (status = 403, description = "Not an admin device", content_type = "application/problem+json")))]
pub async fn reload(device: Device, state: web::Data<State>) -> ApiResult<HttpResponse> {
    device.require(DeviceRole::Admin)?;
    let summary = state.poller.poll_round().await?;
    Ok(HttpResponse::Ok().json(summary))
}

/// Every device with its key fingerprint and recent connections (admin).
#[utoipa::path(get, path = "/devices", tag = "devices",
    responses(
        (status = 200, body = Vec<DeviceView>),
        (status = 403, description = "Not an admin device", content_type = "application/problem+json")))]
pub async fn list_devices(device: Device, platform: web::Data<Platform>) -> ApiResult<HttpResponse> {
    device.require(DeviceRole::Admin)?;
    let list = platform.db.run(|conn| devices::list(conn, 5)).await?;
    Ok(HttpResponse::Ok().json(list))
}

/// `PATCH /devices/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"role": "server"}))]
pub struct RoleChange {
    pub role: DeviceRole,
}

/// Sets a device's role (admin).
#[utoipa::path(patch, path = "/devices/{id}", tag = "devices", params(("id" = Uuid, Path)), request_body = RoleChange,
    responses(
        (status = 200, body = DeviceView),
        (status = 403, description = "Not an admin device", content_type = "application/problem+json"),
        (status = 404, description = "No such device", content_type = "application/problem+json")))]
pub async fn update_device(
    device: Device,
    platform: web::Data<Platform>,
    id: web::Path<Uuid>,
    body: Json<RoleChange>,
) -> ApiResult<HttpResponse> {
    device.require(DeviceRole::Admin)?;
    let (id, role) = (id.into_inner(), body.into_inner().role);
    let view = platform
        .db
        .run(move |conn| {
            let record = devices::set_role(conn, id, role)?;
            devices::view(conn, record, 5)
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// The status page.
#[utoipa::path(get, path = "/status", tag = "statuses",
    responses((status = 200, description = "Every server's health as an HTML page", content_type = "text/html")))]
pub async fn status_page(platform: web::Data<Platform>, state: web::Data<State>) -> ApiResult<HttpResponse> {
    let cached = state
        .page
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .as_ref()
        .filter(|(at, _)| at.elapsed() < crate::page::CACHE_FOR)
        .map(|(_, html)| html.clone());
    let html = if let Some(html) = cached {
        html
    } else {
        let rows = platform.db.run(statuses::health).await?;
        let html = web::Bytes::from(crate::page::render(&rows, chrono::Utc::now(), platform.def.version)?);
        *state.page.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some((std::time::Instant::now(), html.clone()));
        html
    };
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, crate::page::content_security_policy()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(html))
}
