//! Who may broadcast and read broadcast reports: board members with the broadcast PIN (a body
//! field, the `X-Secret-Pin` header, or the password of HTTP basic credentials), or a caller with
//! an admin JWT (scope `admin`). Wrong PINs are throttled per client address.

use std::net::IpAddr;

use actix_web::http::header;
use actix_web::{HttpRequest, web};
use meridian_auth::jwt::has_scope;
use meridian_auth::{BasicCredentials, JwtKeys};
use meridian_platform::ratelimit::RateLimiter;
use meridian_platform::{ApiError, Platform};
use serde::Deserialize;

pub const PIN_HEADER: &str = "x-secret-pin";
pub const ADMIN_SCOPE: &str = "admin";

/// The claims this service reads from an admin token (signature, `exp`, `iss`, `aud` are checked
/// by [`JwtKeys::verify`]).
#[derive(Debug, Deserialize)]
struct AdminClaims {
    sub: Option<String>,
    #[serde(default)]
    scope: String,
}

/// The state authorisation needs.
pub struct Gate<'a> {
    pub pin_hash: &'a str,
    pub jwt: &'a JwtKeys,
    pub pin_limiter: &'a RateLimiter<IpAddr>,
}

fn invalid_pin() -> ApiError {
    ApiError::unauthorized("the secret PIN is not valid")
        .with_code("InvalidSecretPin")
        .with_challenge("Basic realm=\"meridian registration\", charset=\"UTF-8\"")
}

fn client_key(req: &HttpRequest, platform: &Platform) -> IpAddr {
    meridian_platform::net::client_ip(req, &platform.config.trusted_proxies).unwrap_or(IpAddr::from([0u8, 0, 0, 0]))
}

/// Authorises a board member; returns who they are, as recorded with a broadcast. `body_pin` is
/// the `secretPin` field of the request body, where the endpoint has one.
pub async fn authorise(
    req: &HttpRequest,
    platform: &Platform,
    gate: &Gate<'_>,
    body_pin: Option<&str>,
) -> Result<String, ApiError> {
    let authorization = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(token) = authorization.and_then(|a| {
        a.split_once(' ').filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer")).map(|(_, t)| t.trim())
    }) {
        let claims: AdminClaims = gate.jwt.verify(token)?;
        if !has_scope(&claims.scope, ADMIN_SCOPE) {
            return Err(ApiError::forbidden("the token lacks the admin scope"));
        }
        return Ok(format!("jwt:{}", claims.sub.as_deref().unwrap_or("unknown")));
    }
    let (pin, who) = if let Some(pin) = body_pin {
        (pin.to_owned(), "pin".to_owned())
    } else if let Some(pin) = req.headers().get(PIN_HEADER).and_then(|v| v.to_str().ok()) {
        (pin.to_owned(), "pin".to_owned())
    } else if let Some(basic) = authorization.filter(|a| a.len() > 6 && a[..6].eq_ignore_ascii_case("basic ")) {
        let credentials = BasicCredentials::parse(basic)?;
        let name: String = credentials.username.chars().filter(|c| !c.is_control()).take(100).collect();
        (credentials.password, if name.is_empty() { "pin".to_owned() } else { format!("pin:{name}") })
    } else {
        return Err(invalid_pin().with_title("Unauthorized").with_extra("hint", serde_json::json!(
            "send secretPin, the X-Secret-Pin header, basic credentials with the PIN as password, or an admin bearer token"
        )));
    };
    let ip = client_key(req, platform);
    // Every attempt spends budget before the (slow) verification, so parallel guesses cannot
    // outrun the count; a right PIN gives the address its budget back.
    gate.pin_limiter.hit(&ip).map_err(|wait| ApiError {
        detail: "too many wrong PINs from this address; wait before trying again".into(),
        ..ApiError::too_many_requests(wait).with_code("TooManyAttempts")
    })?;
    let hash = gate.pin_hash.to_owned();
    let ok = web::block(move || meridian_auth::password::verify(&pin, &hash)).await?;
    if ok {
        gate.pin_limiter.reset(&ip);
        return Ok(who);
    }
    log::warn!("wrong broadcast PIN from {ip}");
    Err(invalid_pin())
}
