//! Extractor configuration: malformed input becomes a 400 problem naming what was wrong.
//!
//! JSON bodies are read with [`Json`] (or, for a body already in memory, [`from_slice`]) rather than
//! `web::Json`: the same configuration (size limit, content type, the 400/413/415 problems), but a body
//! of the wrong shape is answered with the path of the offending field, `errors` keyed by it.

use std::ops::{Deref, DerefMut};

use actix_web::dev::Payload;
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError, UrlencodedError};
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::{FutureExt, Map};
use serde::de::DeserializeOwned;
use serde_json::error::Category;
use serde_json::value::RawValue;

use crate::error::{ApiError, ApiResult};

/// JSON bodies: 400 naming the field and position, 413 past `limit`, 415 for another content type.
pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default().limit(limit).error_handler(|err, _req| json_error(err).into())
}

/// The same, for services whose clients send JSON without a JSON content type.
pub fn lenient_json_config(limit: usize) -> web::JsonConfig {
    json_config(limit).content_type_required(false)
}

/// A JSON request body deserialised into `T`: use it where `web::Json` would go.
///
/// The body is read under the `web::JsonConfig` in force (the platform's [`json_config`], or a scope's
/// [`lenient_json_config`]), so size, content type and syntax errors are answered exactly as there;
/// then `T` is deserialised tracking the path, so a value of the wrong type, a missing or an unknown
/// field is a 400 whose `errors` names the field (`"items[0].name"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Json<T>(pub T);

impl<T> Json<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> Deref for Json<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> DerefMut for Json<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

type RawJson = web::Json<Box<RawValue>>;
type Typed<T> = Result<Json<T>, actix_web::Error>;

impl<T: DeserializeOwned> FromRequest for Json<T> {
    type Error = actix_web::Error;
    type Future = Map<<RawJson as FromRequest>::Future, fn(Result<RawJson, actix_web::Error>) -> Typed<T>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        // Checked and buffered once by actix (well-formed JSON within the limit); typed here.
        RawJson::from_request(req, payload).map(|raw| Ok(Json(from_slice(raw?.get().as_bytes())?)))
    }
}

/// Deserialises a JSON body already in memory; errors are the same 400s as [`Json`]'s.
pub fn from_slice<T: DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().iter().next().is_some().then(|| e.path().to_string());
        body_error(path, e.inner())
    })?;
    de.end().map_err(|e| deserialize_error(&e))?;
    Ok(value)
}

pub fn json_error(err: JsonPayloadError) -> ApiError {
    match err {
        JsonPayloadError::OverflowKnownLength { length, limit } => {
            ApiError::payload_too_large(format!("the body is {length} bytes; at most {limit} are accepted"))
        }
        JsonPayloadError::Overflow { limit } => {
            ApiError::payload_too_large(format!("the body is larger than the {limit} bytes accepted"))
        }
        JsonPayloadError::ContentType => ApiError::unsupported_media_type("send the body as application/json"),
        JsonPayloadError::Deserialize(e) => deserialize_error(&e),
        JsonPayloadError::Serialize(e) => ApiError::internal(e),
        other => ApiError::bad_request(format!("the body could not be read: {other}")),
    }
}

/// A serde_json error without the path (from `web::Json`) as a 400: keyed by the field only when
/// serde names it (a missing or unknown top-level field).
fn deserialize_error(e: &serde_json::Error) -> ApiError {
    body_error(None, e)
}

/// A 400 for a body that is not JSON (what and where), or not of the expected shape: then, when the
/// field is known, detail `"<path>: <what> at line L column C"` and `errors: {"<path>": ["<what>"]}`.
fn body_error(path: Option<String>, e: &serde_json::Error) -> ApiError {
    let malformed = || ApiError::bad_request(format!("malformed JSON body: {e}"));
    if e.classify() != Category::Data {
        return malformed();
    }
    let message = e.to_string();
    let position = format!(" at line {} column {}", e.line(), e.column());
    let what = message.strip_suffix(&position).unwrap_or(&message).to_owned();
    // serde names a missing field from its parent (the path ends at the parent) and an unknown one
    // from the field itself (the path already ends with it, when known).
    let named = |prefix: &str| what.strip_prefix(prefix).and_then(|rest| rest.split('`').next()).map(str::to_owned);
    let key = match (path, named("missing field `"), named("unknown field `")) {
        (Some(parent), Some(field), _) => format!("{parent}.{field}"),
        (None, Some(field), _) | (None, None, Some(field)) => field,
        (Some(path), None, _) => path,
        (None, None, None) => return malformed(),
    };
    ApiError { errors: Some([(key.clone(), vec![what])].into()), ..ApiError::bad_request(format!("{key}: {message}")) }
}

pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _req| {
        let detail = match err {
            QueryPayloadError::Deserialize(e) => format!("bad query string: {e}"),
            other => format!("bad query string: {other}"),
        };
        ApiError::bad_request(detail).into()
    })
}

pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err, _req| {
        let detail = match err {
            PathError::Deserialize(e) => format!("bad path parameter: {e}"),
            other => format!("bad path parameter: {other}"),
        };
        ApiError::not_found(detail).into()
    })
}

pub fn form_config(limit: usize) -> web::FormConfig {
    web::FormConfig::default().limit(limit).error_handler(|err, _req| {
        match err {
            UrlencodedError::Overflow { size, limit } => {
                ApiError::payload_too_large(format!("the body is {size} bytes; at most {limit} are accepted"))
            }
            UrlencodedError::ContentType => {
                ApiError::unsupported_media_type("send the body as application/x-www-form-urlencoded")
            }
            other => ApiError::bad_request(format!("bad form body: {other}")),
        }
        .into()
    })
}
