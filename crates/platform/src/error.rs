//! The one error type every service returns; it renders as `application/problem+json` (RFC 9457).
//!
//! Clients learn what they did wrong; they never see SQL, a stack trace or a secret. Anything a
//! client did not cause is logged here with the request id, and the body carries only that id.

use std::collections::BTreeMap;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde::Serialize;

use crate::request_id;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// Field name -> what is wrong with it.
pub type FieldErrors = BTreeMap<String, Vec<String>>;

#[derive(Debug, Clone, thiserror::Error)]
#[error("{status} {title}: {detail}")]
pub struct ApiError {
    pub status: StatusCode,
    pub title: String,
    pub detail: String,
    /// Validation failures by field.
    pub errors: Option<FieldErrors>,
    /// A stable machine-readable name (some replaced systems' clients read one).
    pub code: Option<String>,
    /// Seconds a client should wait before retrying (429 and 503).
    pub retry_after: Option<Duration>,
    /// The `WWW-Authenticate` challenge sent with a 401.
    pub challenge: Option<String>,
    /// Extra members for the body (kept small; never secrets).
    pub extra: BTreeMap<String, serde_json::Value>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            detail: detail.into(),
            errors: None,
            code: None,
            retry_after: None,
            challenge: None,
            extra: BTreeMap::new(),
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail)
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, detail)
    }

    pub fn payload_too_large(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, detail)
    }

    pub fn unsupported_media_type(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, detail)
    }

    /// 422 with one message for one field.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self::validation(BTreeMap::from([(field.to_owned(), vec![message])]))
    }

    /// 422 with messages by field.
    pub fn validation(errors: FieldErrors) -> Self {
        let detail =
            errors.iter().map(|(field, msgs)| format!("{field}: {}", msgs.join("; "))).collect::<Vec<_>>().join(", ");
        ApiError { errors: Some(errors), ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, detail) }
    }

    pub fn too_many_requests(retry_after: Duration) -> Self {
        ApiError {
            retry_after: Some(retry_after),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, "too many requests; retry later")
        }
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        ApiError { retry_after: Some(Duration::from_secs(5)), ..Self::new(StatusCode::SERVICE_UNAVAILABLE, detail) }
    }

    /// A failure the client did not cause. The cause is logged, never sent.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        log::error!("internal error: {cause}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the server failed to handle this request; quote the request id when reporting it",
        )
    }

    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    /// Adds a `WWW-Authenticate` challenge (for a 401).
    pub fn with_challenge(mut self, challenge: impl Into<String>) -> Self {
        self.challenge = Some(challenge.into());
        self
    }

    pub fn with_title(mut self, title: impl Into<String>) -> Self {
        self.title = title.into();
        self
    }

    pub fn with_extra(mut self, key: &str, value: serde_json::Value) -> Self {
        self.extra.insert(key.to_owned(), value);
        self
    }
}

#[derive(Serialize)]
struct ProblemBody<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    title: &'a str,
    status: u16,
    detail: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<&'a FieldErrors>,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
    #[serde(flatten)]
    extra: &'a BTreeMap<String, serde_json::Value>,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let body = ProblemBody {
            kind: "about:blank",
            title: &self.title,
            status: self.status.as_u16(),
            detail: &self.detail,
            errors: self.errors.as_ref(),
            code: self.code.as_deref(),
            request_id: request_id::current(),
            extra: &self.extra,
        };
        let mut response = HttpResponse::build(self.status);
        response.insert_header((header::CONTENT_TYPE, PROBLEM_JSON));
        if let Some(wait) = self.retry_after {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            response.insert_header((header::RETRY_AFTER, HeaderValue::from(secs.max(1))));
        }
        if let Some(challenge) = self.challenge.as_deref().and_then(|c| HeaderValue::from_str(c).ok()) {
            response.insert_header((header::WWW_AUTHENTICATE, challenge));
        }
        response.body(serde_json::to_vec(&body).unwrap_or_default())
    }
}

impl From<DieselError> for ApiError {
    fn from(err: DieselError) -> Self {
        match err {
            DieselError::NotFound => ApiError::not_found("no such resource"),
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
                log::debug!("unique violation: {}", info.message());
                ApiError::conflict("a resource with the same unique fields already exists")
            }
            DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _) => {
                ApiError::conflict("the change refers to, or is referred to by, another resource")
            }
            DieselError::DatabaseError(DatabaseErrorKind::CheckViolation, info) => {
                log::debug!("check violation: {}", info.message());
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "a value is outside what is allowed")
            }
            DieselError::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                _,
            ) => ApiError::unavailable("the database connection was lost; retry"),
            DieselError::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => {
                ApiError::unavailable("a concurrent change conflicted; retry")
            }
            DieselError::DatabaseError(DatabaseErrorKind::Unknown, info)
                if info.message().contains("server closed the connection")
                    || info.message().contains("terminating connection")
                    || info.message().contains("connection") && info.message().contains("refused") =>
            {
                ApiError::unavailable("the database is unreachable; retry")
            }
            // Before migrations have run (a replica racing the migration Job) a table is missing:
            // the service is not ready, it is not broken.
            DieselError::DatabaseError(DatabaseErrorKind::Unknown, info)
                if info.message().starts_with("relation ") && info.message().ends_with("does not exist") =>
            {
                log::warn!("database not migrated yet: {}", info.message());
                ApiError::unavailable("the database is not migrated yet; retry")
            }
            other => ApiError::internal(format!("database: {other}")),
        }
    }
}

impl From<r2d2::Error> for ApiError {
    fn from(err: r2d2::Error) -> Self {
        log::warn!("database pool: {err}");
        ApiError::unavailable("the database is unreachable; retry")
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(err: actix_web::error::BlockingError) -> Self {
        ApiError::internal(format!("blocking task: {err}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::to_bytes;

    async fn body_of(err: &ApiError) -> serde_json::Value {
        let response = err.error_response();
        assert_eq!(response.headers().get(header::CONTENT_TYPE).unwrap(), PROBLEM_JSON);
        serde_json::from_slice(&to_bytes(response.into_body()).await.unwrap()).unwrap()
    }

    #[actix_rt::test]
    async fn validation_errors_list_fields() {
        let body = body_of(&ApiError::invalid_field("host", "must be an http(s) URL")).await;
        assert_eq!(body["status"], 422);
        assert_eq!(body["errors"]["host"][0], "must be an http(s) URL");
    }

    #[actix_rt::test]
    async fn internal_errors_hide_their_cause() {
        let body = body_of(&ApiError::internal("relation \"secret_table\" does not exist")).await;
        assert_eq!(body["status"], 500);
        assert!(!body.to_string().contains("secret_table"));
    }

    #[test]
    fn diesel_errors_map_to_statuses() {
        assert_eq!(ApiError::from(DieselError::NotFound).status, StatusCode::NOT_FOUND);
        assert_eq!(ApiError::from(DieselError::RollbackTransaction).status, StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn retry_after_is_sent_in_whole_seconds() {
        let response = ApiError::too_many_requests(Duration::from_millis(1500)).error_response();
        assert_eq!(response.headers().get(header::RETRY_AFTER).unwrap(), "2");
    }
}
