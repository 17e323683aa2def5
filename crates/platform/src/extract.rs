//! Extractor configuration: malformed input becomes a 400 problem naming what was wrong.

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError, UrlencodedError};
use actix_web::web;

use crate::error::ApiError;

/// JSON bodies: 400 naming the field and position, 413 past `limit`, 415 for another content type.
pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default().limit(limit).error_handler(|err, _req| json_error(err).into())
}

/// The same, for services whose clients send JSON without a JSON content type.
pub fn lenient_json_config(limit: usize) -> web::JsonConfig {
    json_config(limit).content_type_required(false)
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

/// A serde_json error as a client-facing 400: what and where, with the field when serde names it.
pub fn deserialize_error(e: &serde_json::Error) -> ApiError {
    let message = e.to_string();
    let field = message
        .split('`')
        .nth(1)
        .filter(|_| message.starts_with("missing field") || message.starts_with("unknown field"))
        .map(ToOwned::to_owned);
    let err = ApiError::bad_request(format!("malformed JSON body: {message}"));
    match field {
        Some(field) => ApiError { errors: Some([(field, vec![message])].into_iter().collect()), ..err },
        None => err,
    }
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
