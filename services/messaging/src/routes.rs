//! HTTP handlers: parse, authorise, call a domain function, shape the answer.

use std::net::IpAddr;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use meridian_model::PageQuery;
use meridian_platform::extract::Json;
use meridian_platform::{ApiError, ApiResult, Platform};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::activations::{self, ActivationSummary, Attempt, DeviceActivation, PatientActivation};
use crate::auth::{self, Caller, CallerKind, Metadata, scope};
use crate::directory::{self, Clinician, ClinicianPatch, Device, DevicePatch, NewClinician, NewDevice};
use crate::idempotency;
use crate::messages::{self, ListFilter, Message, MessagePatch, MessageRow, NewMessage};
use crate::state::State;

type Data = web::Data<Platform>;
type AppState = web::Data<State>;

fn client_ip(req: &HttpRequest, platform: &Platform) -> Option<IpAddr> {
    meridian_platform::net::client_ip(req, &platform.config.trusted_proxies)
}

// ---------------------------------------------------------------------------------------------
// Keys

/// The public keys tokens are signed with (empty with a shared secret).
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "tokens",
    responses((status = 200, description = "A JWK set", body = serde_json::Value, example = json!({"keys": []}))))]
pub async fn jwks(state: AppState) -> HttpResponse {
    HttpResponse::Ok().json(state.keys.jwks())
}

// ---------------------------------------------------------------------------------------------
// Messages

async fn create_message(
    req: &HttpRequest,
    platform: &Data,
    state: &AppState,
    caller: Caller,
    body: NewMessage,
    route: &'static str,
) -> ApiResult<HttpResponse> {
    caller.require(&[scope::WRITE_MESSAGE, scope::WRITE_MESSAGE_ALL])?;
    let key = idempotency::key_of(req)?;
    let fingerprint = idempotency::fingerprint(&body);
    if let Some(key) = &key
        && let Some(replay) =
            idempotency::lookup(platform, caller.key(), route, key.clone(), fingerprint.clone()).await?
    {
        return Ok(HttpResponse::build(replay.status).insert_header(("idempotent-replayed", "true")).json(replay.body));
    }
    let row = messages::new_row(&caller, body)?;
    if let Some(related) = row.related_message {
        let who = caller.clone();
        platform.db.run(move |conn| messages::check_related(conn, &who, related)).await?;
    }
    let stored = state.inserts.insert(row).await?;
    state.metrics.messages_created.inc();
    if let Some(key) = key {
        let value = serde_json::from_str(&stored.json).map_err(ApiError::internal)?;
        idempotency::store(platform, caller.key(), route, key, fingerprint, StatusCode::OK, value).await?;
    }
    Ok(message_response(stored))
}

/// A single message answered as stored: its `json` is serde's encoding of it, written with the row.
fn message_response(row: MessageRow) -> HttpResponse {
    HttpResponse::Ok().content_type(actix_web::http::header::ContentType::json()).body(row.json)
}

/// Send a message.
#[utoipa::path(post, path = "/dhos/v2/message", tag = "messages", request_body = NewMessage,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry return the first result")),
    responses((status = 200, body = Message), (status = 400, description = "Malformed or unknown keys"),
        (status = 401, description = "No token"), (status = 403, description = "Bad token or missing write:gdm_message"),
        (status = 422, description = "Invalid values")),
    security(("bearer" = [])))]
pub async fn post_message_v2(
    req: HttpRequest,
    platform: Data,
    state: AppState,
    caller: Caller,
    body: Json<NewMessage>,
) -> ApiResult<HttpResponse> {
    create_message(&req, &platform, &state, caller, body.into_inner(), "POST /dhos/v2/message").await
}

/// Send a message (deprecated: use `POST /dhos/v2/message`).
#[utoipa::path(post, path = "/dhos/v1/message", tag = "messages", request_body = NewMessage,
    responses((status = 200, body = Message, headers(("Deprecation" = String), ("Link" = String)))),
    security(("bearer" = [])))]
pub async fn post_message_v1(
    req: HttpRequest,
    platform: Data,
    state: AppState,
    caller: Caller,
    body: Json<NewMessage>,
) -> ApiResult<HttpResponse> {
    let mut response =
        create_message(&req, &platform, &state, caller, body.into_inner(), "POST /dhos/v1/message").await?;
    let headers = response.headers_mut();
    headers.insert(
        actix_web::http::header::HeaderName::from_static("deprecation"),
        actix_web::http::header::HeaderValue::from_static("true"),
    );
    headers.insert(
        actix_web::http::header::LINK,
        actix_web::http::header::HeaderValue::from_static("</dhos/v2/message>; rel=\"successor-version\""),
    );
    Ok(response)
}

/// One message.
#[utoipa::path(get, path = "/dhos/v1/message/{message_id}", tag = "messages",
    params(("message_id" = Uuid, Path)),
    responses((status = 200, body = Message), (status = 404, description = "No such message, or not visible to the caller")),
    security(("bearer" = [])))]
pub async fn get_message(platform: Data, caller: Caller, id: web::Path<Uuid>) -> ApiResult<HttpResponse> {
    caller.require(&[scope::READ_MESSAGE, scope::READ_MESSAGE_ALL, scope::READ_ANY_MESSAGE_ALL])?;
    let id = id.into_inner();
    Ok(message_response(platform.db.run(move |conn| messages::get(conn, &caller, id)).await?))
}

/// Mark a message retrieved, confirmed or cancelled, or relate it to another.
#[utoipa::path(patch, path = "/dhos/v1/message/{message_id}", tag = "messages", request_body = MessagePatch,
    params(("message_id" = Uuid, Path)),
    responses((status = 200, body = Message), (status = 400, description = "A field that may not be set"),
        (status = 404, description = "No such message"), (status = 409, description = "The state flow forbids the change")),
    security(("bearer" = [])))]
pub async fn patch_message(
    platform: Data,
    caller: Caller,
    id: web::Path<Uuid>,
    body: Json<MessagePatch>,
) -> ApiResult<HttpResponse> {
    caller.require(&[scope::WRITE_MESSAGE, scope::WRITE_MESSAGE_ALL])?;
    let id = id.into_inner();
    let body = body.into_inner();
    Ok(message_response(platform.db.run(move |conn| messages::patch(conn, &caller, id, body)).await?))
}

/// `?limit=&offset=`: newest first; `X-Next-Offset` and `Link: <...>; rel="next"` when more remain.
fn page_response(req: &HttpRequest, json: Vec<u8>, more: bool, page: PageQuery) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    if more {
        let next = page.offset() + page.limit();
        response.insert_header(("x-next-offset", next.to_string()));
        response.insert_header((
            actix_web::http::header::LINK,
            format!("<{}?limit={}&offset={next}>; rel=\"next\"", req.path(), page.limit()),
        ));
    }
    response.content_type(actix_web::http::header::ContentType::json()).body(json)
}

async fn list_messages(
    req: &HttpRequest,
    platform: &Data,
    caller: Caller,
    filter: ListFilter,
    page: PageQuery,
) -> ApiResult<HttpResponse> {
    caller.require(&[scope::READ_MESSAGE, scope::READ_MESSAGE_ALL, scope::READ_ANY_MESSAGE_ALL])?;
    let (limit, offset) = (page.limit(), page.offset());
    let (json, more) = platform.db.run(move |conn| messages::list(conn, &caller, &filter, limit, offset)).await?;
    Ok(page_response(req, json, more, page))
}

/// Messages a party sent.
#[utoipa::path(get, path = "/dhos/v1/sender/{sender_id}/message", tag = "messages", params(("sender_id" = String, Path), PageQuery),
    responses((status = 200, description = "Messages, newest first", body = [Message])),
    security(("bearer" = [])))]
pub async fn sender_messages(
    req: HttpRequest,
    platform: Data,
    caller: Caller,
    path: web::Path<String>,
    page: web::Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    let a = path.into_inner();
    list_messages(&req, &platform, caller, ListFilter { sender: Some(a), ..ListFilter::default() }, page.into_inner())
        .await
}

/// Messages a party received.
#[utoipa::path(get, path = "/dhos/v1/receiver/{receiver_id}/message", tag = "messages", params(("receiver_id" = String, Path), PageQuery),
    responses((status = 200, description = "Messages, newest first", body = [Message])),
    security(("bearer" = [])))]
pub async fn receiver_messages(
    req: HttpRequest,
    platform: Data,
    caller: Caller,
    path: web::Path<String>,
    page: web::Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    let a = path.into_inner();
    list_messages(&req, &platform, caller, ListFilter { receiver: Some(a), ..ListFilter::default() }, page.into_inner())
        .await
}

/// Active messages a party sent (not confirmed yet, or confirmed call-backs; never cancelled ones).
#[utoipa::path(get, path = "/dhos/v1/sender/{sender_id}/active/message", tag = "messages", params(("sender_id" = String, Path), PageQuery),
    responses((status = 200, description = "Messages, newest first", body = [Message])),
    security(("bearer" = [])))]
pub async fn sender_active_messages(
    req: HttpRequest,
    platform: Data,
    caller: Caller,
    path: web::Path<String>,
    page: web::Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    let a = path.into_inner();
    list_messages(
        &req,
        &platform,
        caller,
        ListFilter { sender: Some(a), active: true, ..ListFilter::default() },
        page.into_inner(),
    )
    .await
}

/// Active messages a party received (not confirmed yet, or confirmed call-backs; never cancelled ones).
#[utoipa::path(get, path = "/dhos/v1/receiver/{receiver_id}/active/message", tag = "messages", params(("receiver_id" = String, Path), PageQuery),
    responses((status = 200, description = "Messages, newest first", body = [Message])),
    security(("bearer" = [])))]
pub async fn receiver_active_messages(
    req: HttpRequest,
    platform: Data,
    caller: Caller,
    path: web::Path<String>,
    page: web::Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    let a = path.into_inner();
    list_messages(
        &req,
        &platform,
        caller,
        ListFilter { receiver: Some(a), active: true, ..ListFilter::default() },
        page.into_inner(),
    )
    .await
}

/// Messages from one party to another.
#[utoipa::path(get, path = "/dhos/v1/sender/{sender_id}/receiver/{receiver_id}/message", tag = "messages", params(("sender_id" = String, Path), ("receiver_id" = String, Path), PageQuery),
    responses((status = 200, description = "Messages, newest first", body = [Message])),
    security(("bearer" = [])))]
pub async fn pair_messages(
    req: HttpRequest,
    platform: Data,
    caller: Caller,
    path: web::Path<(String, String)>,
    page: web::Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    let (a, b) = path.into_inner();
    list_messages(
        &req,
        &platform,
        caller,
        ListFilter { sender: Some(a), receiver: Some(b), ..ListFilter::default() },
        page.into_inner(),
    )
    .await
}

/// Active messages from one party to another (filtered by both parties).
#[utoipa::path(get, path = "/dhos/v1/sender/{sender_id}/receiver/{receiver_id}/active/message", tag = "messages", params(("sender_id" = String, Path), ("receiver_id" = String, Path), PageQuery),
    responses((status = 200, description = "Messages, newest first", body = [Message])),
    security(("bearer" = [])))]
pub async fn pair_active_messages(
    req: HttpRequest,
    platform: Data,
    caller: Caller,
    path: web::Path<(String, String)>,
    page: web::Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    let (a, b) = path.into_inner();
    list_messages(
        &req,
        &platform,
        caller,
        ListFilter { sender: Some(a), receiver: Some(b), active: true, ..ListFilter::default() },
        page.into_inner(),
    )
    .await
}

/// Call-backs a party received that are neither confirmed nor cancelled.
#[utoipa::path(get, path = "/dhos/v1/receiver/{receiver_id}/active/callback/message", tag = "messages", params(("receiver_id" = String, Path), PageQuery),
    responses((status = 200, description = "Messages, newest first", body = [Message])),
    security(("bearer" = [])))]
pub async fn receiver_open_callbacks(
    req: HttpRequest,
    platform: Data,
    caller: Caller,
    path: web::Path<String>,
    page: web::Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    let a = path.into_inner();
    list_messages(
        &req,
        &platform,
        caller,
        ListFilter { receiver: Some(a), open_callbacks: true, ..ListFilter::default() },
        page.into_inner(),
    )
    .await
}

/// A party's whole conversation (sent or received); alerts are left out for patient callers.
#[utoipa::path(get, path = "/dhos/v1/sender_or_receiver/{party_id}/message", tag = "messages", params(PageQuery),
    responses((status = 200, description = "Messages, newest first", body = [Message])),
    security(("bearer" = [])))]
pub async fn conversation(
    req: HttpRequest,
    platform: Data,
    caller: Caller,
    party: web::Path<String>,
    page: web::Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    let filter = ListFilter {
        either: Some(party.into_inner()),
        exclude_alerts: caller.kind == CallerKind::Patient,
        ..ListFilter::default()
    };
    list_messages(&req, &platform, caller, filter, page.into_inner()).await
}

/// For each patient id: its newest open call-back (patients without one are left out).
#[utoipa::path(post, path = "/dhos/v1/active/callback/message", tag = "messages",
    request_body(content = Vec<String>, example = json!(["patient-1", "patient-2"])),
    responses((status = 200, description = "patient id -> open call-back", body = std::collections::BTreeMap<String, Message>)),
    security(("bearer" = [])))]
pub async fn open_callbacks(platform: Data, caller: Caller, body: Json<Vec<String>>) -> ApiResult<HttpResponse> {
    caller.require(&[scope::READ_MESSAGE, scope::READ_MESSAGE_ALL, scope::READ_ANY_MESSAGE_ALL])?;
    let ids = body.into_inner();
    let map = platform.db.run(move |conn| messages::open_callbacks_by_patient(conn, &caller, ids)).await?;
    Ok(HttpResponse::Ok().json(map))
}

/// Server-sent events: each new message to this receiver, as `event: message` with the message's
/// uuid as the event id; a reconnecting client's `Last-Event-ID` first replays what it missed.
#[utoipa::path(get, path = "/dhos/v1/receiver/{receiver_id}/message/stream", tag = "messages",
    params(("Last-Event-ID" = Option<Uuid>, Header, description = "The last message received before a reconnection")),
    responses((status = 200, description = "text/event-stream of messages", content_type = "text/event-stream")),
    security(("bearer" = [])))]
pub async fn receiver_stream(
    req: HttpRequest,
    platform: Data,
    state: AppState,
    caller: Caller,
    receiver: web::Path<String>,
) -> ApiResult<HttpResponse> {
    caller.require(&[scope::READ_MESSAGE, scope::READ_MESSAGE_ALL, scope::READ_ANY_MESSAGE_ALL])?;
    let receiver = receiver.into_inner();
    if caller.visible_parties().is_some_and(|p| !p.contains(&receiver)) {
        return Err(ApiError::not_found(format!("no receiver {receiver} visible to this caller")));
    }
    // Subscribe before reading the backlog, so nothing falls between the two.
    let rx = state.notifier.subscribe();
    let last_event =
        req.headers().get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| Uuid::parse_str(v.trim()).ok());
    let backlog = match last_event {
        Some(after) => {
            let (who, to) = (caller.clone(), receiver.clone());
            platform.db.run(move |conn| messages::received_since(conn, &who, &to, after)).await?
        }
        None => Vec::new(),
    };
    let stream = crate::stream::messages(rx, platform.into_inner(), caller, receiver, backlog);
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("cache-control", "no-cache"))
        .insert_header(("x-accel-buffering", "no"))
        .streaming(stream))
}

// ---------------------------------------------------------------------------------------------
// Patient activations

/// Create a patient activation (or a new PIN for the unused one).
#[utoipa::path(post, path = "/dhos/v1/patient/{patient_id}/activation", tag = "activations",
    responses((status = 200, body = PatientActivation)), security(("bearer" = [])))]
pub async fn create_patient_activation(
    platform: Data,
    state: AppState,
    caller: Caller,
    patient: web::Path<String>,
) -> ApiResult<HttpResponse> {
    caller.require(&[scope::WRITE_ACTIVATION])?;
    let patient = patient.into_inner();
    let created_by = caller.id.clone();
    let state = state.into_inner();
    let activation =
        platform.db.run(move |conn| activations::create_patient(conn, &state.settings, &patient, &created_by)).await?;
    Ok(HttpResponse::Ok().insert_header(("cache-control", "no-store")).json(activation))
}

/// Completed activations of a patient.
#[utoipa::path(get, path = "/dhos/v1/patient/{patient_id}/activation", tag = "activations",
    responses((status = 200, body = [ActivationSummary])), security(("bearer" = [])))]
pub async fn list_patient_activations(
    platform: Data,
    caller: Caller,
    patient: web::Path<String>,
) -> ApiResult<HttpResponse> {
    caller.require(&[scope::READ_ACTIVATION])?;
    let patient = patient.into_inner();
    let list = platform.db.run(move |conn| activations::completed_for_patient(conn, &patient)).await?;
    Ok(HttpResponse::Ok().json(list))
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OtpBody {
    #[schema(example = "K7QX")]
    pub otp: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ActivationQuery {
    /// `send_entry` for a ward device's code; absent for a patient's code and PIN.
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuthorisationCode {
    pub authorisation_code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patient_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
}

fn check_limit(state: &State, ip: Option<IpAddr>) -> ApiResult<()> {
    if let (Some(limiter), Some(ip)) = (&state.login_limiter, ip) {
        limiter.check(&ip).map_err(ApiError::too_many_requests)?;
    }
    Ok(())
}

fn count_failure(state: &State, ip: Option<IpAddr>) {
    if let (Some(limiter), Some(ip)) = (&state.login_limiter, ip) {
        let _ = limiter.hit(&ip);
    }
}

/// Trade an activation code (with the PIN, for patients) for a one-time authorisation code.
#[utoipa::path(post, path = "/dhos/v1/activation/{activation_code}", tag = "activations",
    params(ActivationQuery), request_body(content = Option<OtpBody>, description = "Patients: the PIN"),
    responses((status = 200, body = AuthorisationCode), (status = 401, description = "Wrong PIN"),
        (status = 403, description = "Locked after too many wrong PINs, or an inactive device"),
        (status = 404, description = "No usable activation with this code"), (status = 429, description = "Too many failures")))]
pub async fn redeem_activation(
    req: HttpRequest,
    platform: Data,
    state: AppState,
    code: web::Path<String>,
    query: web::Query<ActivationQuery>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let ip = client_ip(&req, &platform);
    check_limit(&state, ip)?;
    let kind = match query.kind.as_deref() {
        None | Some("" | "patient") => activations::PATIENT,
        Some("send_entry" | "device") => activations::DEVICE,
        Some(other) => return Err(ApiError::bad_request(format!("unknown activation type {other:?}"))),
    };
    let otp = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let parsed: OtpBody = meridian_platform::extract::from_slice(&body)?;
        Some(parsed.otp)
    };
    if kind == activations::PATIENT && otp.is_none() {
        return Err(ApiError::bad_request("the body must carry the PIN as {\"otp\": \"...\"}"));
    }
    let code = code.into_inner();
    let st = state.clone().into_inner();
    let ip_text = ip.map(|i| i.to_string());
    let attempt = platform
        .db
        .run(move |conn| {
            let attempt = activations::attempt(conn, &st.settings, kind, &code, otp.as_deref(), |conn, id| {
                Ok(Uuid::parse_str(id)
                    .ok()
                    .and_then(|id| directory::get_device(conn, id).ok())
                    .is_some_and(|d| d.active))
            })?;
            let (subject, success, reason) = match &attempt {
                Attempt::Accepted { subject_id, .. } => (Some(subject_id.as_str()), true, "activation accepted"),
                Attempt::Unknown => (None, false, "unknown, used or expired activation code"),
                Attempt::WrongPin { subject_id } => (Some(subject_id.as_str()), false, "wrong PIN"),
                Attempt::Locked { subject_id } => (Some(subject_id.as_str()), false, "activation locked"),
                Attempt::Refused { subject_id, reason } => (Some(subject_id.as_str()), false, *reason),
            };
            activations::audit(conn, kind, subject, success, reason, ip_text)?;
            Ok(attempt)
        })
        .await?;
    state.metrics.login(kind, matches!(attempt, Attempt::Accepted { .. }));
    match attempt {
        Attempt::Accepted { kind, subject_id, authorisation_code } => {
            if let (Some(limiter), Some(ip)) = (&state.login_limiter, ip) {
                limiter.reset(&ip);
            }
            let (patient_id, device_id) =
                if kind == activations::PATIENT { (Some(subject_id), None) } else { (None, Some(subject_id)) };
            Ok(HttpResponse::Ok().insert_header(("cache-control", "no-store")).json(AuthorisationCode {
                authorisation_code,
                patient_id,
                device_id,
            }))
        }
        Attempt::Unknown => {
            count_failure(&state, ip);
            Err(ApiError::not_found("no usable activation with this code (unknown, used or expired)"))
        }
        Attempt::WrongPin { .. } => {
            count_failure(&state, ip);
            Err(ApiError::unauthorized("the PIN is not correct").with_code("WrongPin"))
        }
        Attempt::Locked { .. } => {
            count_failure(&state, ip);
            Err(ApiError::forbidden("too many wrong PINs: this activation is locked; ask for a new PIN")
                .with_code("ActivationLocked"))
        }
        Attempt::Refused { reason, .. } => Err(ApiError::forbidden(reason)),
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Jwt {
    pub jwt: String,
}

fn authorisation_header(req: &HttpRequest) -> ApiResult<String> {
    req.headers()
        .get("x-authorisation-code")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(ToOwned::to_owned)
        .ok_or_else(|| ApiError::unauthorized("the x-authorisation-code header is required"))
}

/// Redeems an authorisation code for `kind`/`subject`, auditing, throttling; then `check` may refuse.
async fn redeem(
    req: &HttpRequest,
    platform: &Data,
    state: &AppState,
    kind: &'static str,
    subject: String,
) -> ApiResult<()> {
    let code = authorisation_header(req)?;
    let ip = client_ip(req, platform);
    check_limit(state, ip)?;
    let ip_text = ip.map(|i| i.to_string());
    let ok = platform
        .db
        .run(move |conn| {
            let ok = activations::redeem_authorisation_code(conn, kind, &subject, &code)?;
            let reason = if ok { "authorisation code redeemed" } else { "bad authorisation code" };
            activations::audit(conn, kind, Some(&subject), ok, reason, ip_text)?;
            Ok(ok)
        })
        .await?;
    state.metrics.login(kind, ok);
    if ok {
        Ok(())
    } else {
        count_failure(state, ip);
        Err(ApiError::unauthorized("the authorisation code is unknown, used, expired or not for this subject"))
    }
}

/// Trade a patient's authorisation code (header `x-authorisation-code`) for a patient JWT.
#[utoipa::path(get, path = "/dhos/v1/patient/{patient_id}/jwt", tag = "activations",
    params(("x-authorisation-code" = String, Header)),
    responses((status = 200, body = Jwt), (status = 401, description = "Missing or bad authorisation code")))]
pub async fn patient_jwt(
    req: HttpRequest,
    platform: Data,
    state: AppState,
    patient: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let patient = patient.into_inner();
    redeem(&req, &platform, &state, activations::PATIENT, patient.clone()).await?;
    let jwt = auth::issue(
        &state.keys,
        Metadata { patient_id: Some(patient), ..Metadata::default() },
        &state.settings.patient_scopes,
        state.settings.patient_token_ttl,
    )?;
    Ok(HttpResponse::Ok().insert_header(("cache-control", "no-store")).json(Jwt { jwt }))
}

// ---------------------------------------------------------------------------------------------
// Devices

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeviceQuery {
    /// Comma-separated location ids.
    pub location_id: Option<String>,
    pub active: Option<bool>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// Register a ward device.
#[utoipa::path(post, path = "/dhos/v1/device", tag = "devices", request_body = NewDevice,
    responses((status = 200, body = Device)), security(("bearer" = [])))]
pub async fn create_device(platform: Data, caller: Caller, body: Json<NewDevice>) -> ApiResult<HttpResponse> {
    caller.require(&[scope::WRITE_DEVICE])?;
    let body = body.into_inner();
    let device = platform.db.run(move |conn| directory::create_device(conn, body, &caller.id)).await?;
    Ok(HttpResponse::Ok().json(device))
}

/// Ward devices, filtered by `location_id=a,b` and `active`.
#[utoipa::path(get, path = "/dhos/v1/device", tag = "devices", params(DeviceQuery),
    responses((status = 200, body = [Device])), security(("bearer" = [])))]
pub async fn list_devices(platform: Data, caller: Caller, query: web::Query<DeviceQuery>) -> ApiResult<HttpResponse> {
    caller.require(&[scope::READ_DEVICE])?;
    let q = query.into_inner();
    let page = PageQuery { limit: q.limit, offset: q.offset };
    let locations = q
        .location_id
        .map(|l| l.split(',').map(str::trim).filter(|s| !s.is_empty()).map(ToOwned::to_owned).collect::<Vec<_>>());
    let active = q.active;
    let (limit, offset) = (page.limit(), page.offset());
    let list = platform.db.run(move |conn| directory::list_devices(conn, locations, active, limit, offset)).await?;
    Ok(HttpResponse::Ok().json(list))
}

/// One ward device.
#[utoipa::path(get, path = "/dhos/v1/device/{device_id}", tag = "devices",
    responses((status = 200, body = Device), (status = 404)), security(("bearer" = [])))]
pub async fn get_device(platform: Data, caller: Caller, id: web::Path<Uuid>) -> ApiResult<HttpResponse> {
    caller.require(&[scope::READ_DEVICE])?;
    let id = id.into_inner();
    Ok(HttpResponse::Ok().json(platform.db.run(move |conn| directory::get_device(conn, id)).await?))
}

/// Change a ward device (location, description, active).
#[utoipa::path(patch, path = "/dhos/v1/device/{device_id}", tag = "devices", request_body = DevicePatch,
    responses((status = 200, body = Device), (status = 404)), security(("bearer" = [])))]
pub async fn patch_device(
    platform: Data,
    caller: Caller,
    id: web::Path<Uuid>,
    body: Json<DevicePatch>,
) -> ApiResult<HttpResponse> {
    caller.require(&[scope::WRITE_DEVICE])?;
    let id = id.into_inner();
    let body = body.into_inner();
    Ok(HttpResponse::Ok().json(platform.db.run(move |conn| directory::patch_device(conn, id, body)).await?))
}

/// A new activation code for a ward device (older unused codes stop working).
#[utoipa::path(post, path = "/dhos/v1/device/{device_id}/activation", tag = "devices",
    responses((status = 200, body = DeviceActivation), (status = 403, description = "The device is inactive"), (status = 404)),
    security(("bearer" = [])))]
pub async fn create_device_activation(
    platform: Data,
    state: AppState,
    caller: Caller,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    caller.require(&[scope::WRITE_DEVICE])?;
    let id = id.into_inner();
    let state = state.into_inner();
    let activation = platform
        .db
        .run(move |conn| {
            if !directory::get_device(conn, id)?.active {
                return Err(ApiError::forbidden("the device is not active"));
            }
            activations::create_device(conn, &state.settings, id, &caller.id)
        })
        .await?;
    Ok(HttpResponse::Ok().insert_header(("cache-control", "no-store")).json(activation))
}

/// Trade a device's authorisation code (header `x-authorisation-code`) for a device JWT.
#[utoipa::path(get, path = "/dhos/v1/device/{device_id}/jwt", tag = "devices",
    params(("x-authorisation-code" = String, Header)),
    responses((status = 200, body = Jwt), (status = 401), (status = 403, description = "The device is inactive")))]
pub async fn device_jwt(
    req: HttpRequest,
    platform: Data,
    state: AppState,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    redeem(&req, &platform, &state, activations::DEVICE, id.to_string()).await?;
    let device = platform.db.run(move |conn| directory::get_device(conn, id)).await?;
    if !device.active {
        return Err(ApiError::forbidden("the device is not active"));
    }
    let jwt = auth::issue(
        &state.keys,
        Metadata {
            device_id: Some(device.uuid.to_string()),
            locations: Some(vec![device.location_id]),
            ..Metadata::default()
        },
        &state.settings.device_scopes,
        state.settings.device_token_ttl,
    )?;
    Ok(HttpResponse::Ok().insert_header(("cache-control", "no-store")).json(Jwt { jwt }))
}

// ---------------------------------------------------------------------------------------------
// Clinicians

/// Register a clinician who may log in through ward devices.
#[utoipa::path(post, path = "/dhos/v1/clinician", tag = "clinicians", request_body = NewClinician,
    responses((status = 201, body = Clinician), (status = 409, description = "Already exists")), security(("bearer" = [])))]
pub async fn create_clinician(platform: Data, caller: Caller, body: Json<NewClinician>) -> ApiResult<HttpResponse> {
    caller.require(&[scope::WRITE_CLINICIAN])?;
    let body = body.into_inner();
    let clinician = platform.db.run(move |conn| directory::create_clinician(conn, body)).await?;
    Ok(HttpResponse::Created().json(clinician))
}

/// Change a clinician.
#[utoipa::path(patch, path = "/dhos/v1/clinician/{clinician_id}", tag = "clinicians", request_body = ClinicianPatch,
    responses((status = 200, body = Clinician), (status = 404)), security(("bearer" = [])))]
pub async fn patch_clinician(
    platform: Data,
    caller: Caller,
    id: web::Path<String>,
    body: Json<ClinicianPatch>,
) -> ApiResult<HttpResponse> {
    caller.require(&[scope::WRITE_CLINICIAN])?;
    let id = id.into_inner();
    let body = body.into_inner();
    Ok(HttpResponse::Ok().json(platform.db.run(move |conn| directory::patch_clinician(conn, &id, body)).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EntryQuery {
    pub send_entry_identifier: String,
}

/// A ward device logs a clinician in by their entry identifier: a clinician JWT.
#[utoipa::path(get, path = "/dhos/v1/clinician/jwt", tag = "clinicians", params(EntryQuery),
    responses((status = 200, body = Jwt), (status = 403, description = "Inactive, contract expired, or not in a clinician group"),
        (status = 404, description = "No clinician with this identifier")),
    security(("bearer" = [])))]
pub async fn clinician_jwt(
    req: HttpRequest,
    platform: Data,
    state: AppState,
    caller: Caller,
    query: web::Query<EntryQuery>,
) -> ApiResult<HttpResponse> {
    caller.require(&[scope::READ_ENTRY_IDENTIFIER])?;
    if caller.kind != CallerKind::Device {
        return Err(ApiError::forbidden("only a ward device's token can log a clinician in"));
    }
    let ip = client_ip(&req, &platform);
    check_limit(&state, ip)?;
    let identifier = query.into_inner().send_entry_identifier;
    let device_id = caller.id.clone();
    let groups = state.settings.clinician_groups.clone();
    let ip_text = ip.map(|i| i.to_string());
    let outcome: Result<Clinician, (StatusCode, &'static str)> = platform
        .db
        .run(move |conn| {
            let device_active = Uuid::parse_str(&device_id)
                .ok()
                .and_then(|id| directory::get_device(conn, id).ok())
                .is_some_and(|d| d.active);
            let clinician = directory::clinician_by_entry_identifier(conn, &identifier)?;
            let outcome = match clinician {
                _ if !device_active => Err((StatusCode::FORBIDDEN, "the device is not active")),
                None => Err((StatusCode::NOT_FOUND, "no clinician with this entry identifier")),
                Some(c) => match directory::login_refusal(&c, &groups, chrono::Utc::now().date_naive()) {
                    Some(reason) => Err((StatusCode::FORBIDDEN, reason)),
                    None => Ok(c),
                },
            };
            let subject = outcome.as_ref().ok().map(|c| c.clinician_id.clone());
            let reason = match &outcome {
                Ok(_) => "clinician logged in through a device",
                Err((_, reason)) => reason,
            };
            activations::audit(conn, "clinician", subject.as_deref(), outcome.is_ok(), reason, ip_text)?;
            Ok(outcome)
        })
        .await?;
    state.metrics.login("clinician", outcome.is_ok());
    let clinician = outcome.map_err(|(status, reason)| {
        count_failure(&state, ip);
        ApiError::new(status, reason)
    })?;
    let mut locations = directory::json_strings(&clinician.locations);
    for l in &caller.locations {
        if !locations.contains(l) {
            locations.push(l.clone());
        }
    }
    let jwt = auth::issue(
        &state.keys,
        Metadata {
            clinician_id: Some(clinician.clinician_id),
            referring_device_id: Some(caller.id.clone()),
            locations: Some(locations),
            ..Metadata::default()
        },
        &state.settings.clinician_scopes,
        state.settings.clinician_token_ttl,
    )?;
    Ok(HttpResponse::Ok().insert_header(("cache-control", "no-store")).json(Jwt { jwt }))
}

pub(crate) const KEEP_ALIVE: Duration = Duration::from_secs(15);
