//! `Idempotency-Key`: a retried POST gets the first response back instead of doing the work twice.

use actix_web::HttpRequest;
use actix_web::http::StatusCode;
use diesel::prelude::*;
use meridian_platform::{ApiError, ApiResult, Platform};
use sha2::{Digest, Sha256};

use crate::schema::idempotency_keys;

pub const HEADER: &str = "idempotency-key";
/// How long a first response is remembered.
pub const RETENTION_HOURS: i64 = 24;
const MAX_KEY_LEN: usize = 255;

/// The key a request carries, if any (400 when it is unusable).
pub fn key_of(req: &HttpRequest) -> ApiResult<Option<String>> {
    let Some(value) = req.headers().get(HEADER) else { return Ok(None) };
    let key = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= MAX_KEY_LEN)
        .ok_or_else(|| ApiError::bad_request("Idempotency-Key must be 1 to 255 visible characters"))?;
    Ok(Some(key.to_owned()))
}

pub fn fingerprint(body: &impl serde::Serialize) -> String {
    hex::encode(Sha256::digest(serde_json::to_vec(body).unwrap_or_default()))
}

/// A stored first response.
pub struct Replay {
    pub status: StatusCode,
    pub body: serde_json::Value,
}

/// The stored response for this key, or 422 when the key was used with another body.
pub async fn lookup(
    platform: &Platform,
    caller: String,
    route: &'static str,
    key: String,
    fingerprint: String,
) -> ApiResult<Option<Replay>> {
    let found: Option<(String, i32, serde_json::Value)> = platform
        .db
        .run(move |conn| {
            Ok(idempotency_keys::table
                .find((caller, route, key))
                .filter(idempotency_keys::created.gt(chrono::Utc::now() - chrono::Duration::hours(RETENTION_HOURS)))
                .select((idempotency_keys::fingerprint, idempotency_keys::status, idempotency_keys::body))
                .first(conn)
                .optional()?)
        })
        .await?;
    match found {
        None => Ok(None),
        Some((stored, _, _)) if stored != fingerprint => {
            Err(ApiError::invalid_field("Idempotency-Key", "this key was already used for a request with another body")
                .with_code("IdempotencyKeyReused"))
        }
        Some((_, status, body)) => Ok(Some(Replay {
            status: StatusCode::from_u16(u16::try_from(status).unwrap_or(200)).unwrap_or(StatusCode::OK),
            body,
        })),
    }
}

/// Remembers the first response for [`RETENTION_HOURS`] (a concurrent duplicate that lost the
/// race changes nothing).
pub async fn store(
    platform: &Platform,
    caller: String,
    route: &'static str,
    key: String,
    fingerprint: String,
    status: StatusCode,
    body: serde_json::Value,
) -> ApiResult<()> {
    platform
        .db
        .run(move |conn| {
            let expired = chrono::Utc::now() - chrono::Duration::hours(RETENTION_HOURS);
            // An expired record under this key makes way; a live one (a concurrent duplicate) stays.
            diesel::delete(
                idempotency_keys::table.find((&caller, route, &key)).filter(idempotency_keys::created.le(expired)),
            )
            .execute(conn)?;
            diesel::insert_into(idempotency_keys::table)
                .values((
                    idempotency_keys::caller.eq(&caller),
                    idempotency_keys::route.eq(route),
                    idempotency_keys::key.eq(&key),
                    idempotency_keys::fingerprint.eq(fingerprint),
                    idempotency_keys::status.eq(i32::from(status.as_u16())),
                    idempotency_keys::body.eq(body),
                ))
                .on_conflict_do_nothing()
                .execute(conn)?;
            // Now and then, forget expired records.
            if rand::random::<u8>() == 0 {
                diesel::delete(idempotency_keys::table.filter(idempotency_keys::created.lt(expired))).execute(conn)?;
            }
            Ok(())
        })
        .await
}
