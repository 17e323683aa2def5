//! HTTP basic credentials (`Authorization: Basic base64(user:password)`).

use std::fmt;
use std::future::{Ready, ready};

use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, dev::Payload};
use base64::Engine;
use meridian_platform::ApiError;

pub struct BasicCredentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for BasicCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicCredentials").field("username", &self.username).finish_non_exhaustive()
    }
}

const CHALLENGE: &str = "Basic realm=\"meridian\", charset=\"UTF-8\"";

/// 401 with the basic challenge, so browsers and clients know to send credentials.
pub fn challenge(detail: impl Into<String>) -> ApiError {
    ApiError::unauthorized(detail).with_challenge(CHALLENGE)
}

impl BasicCredentials {
    pub fn parse(value: &str) -> Result<Self, ApiError> {
        let (scheme, encoded) =
            value.trim().split_once(' ').ok_or_else(|| challenge("malformed Authorization header"))?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err(challenge("use HTTP basic authentication"));
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|_| challenge("the basic credentials are not valid base64"))?;
        let text = String::from_utf8(decoded).map_err(|_| challenge("the basic credentials are not UTF-8"))?;
        let (username, password) = text.split_once(':').ok_or_else(|| challenge("the basic credentials lack a ':'"))?;
        Ok(BasicCredentials { username: username.to_owned(), password: password.to_owned() })
    }
}

impl FromRequest for BasicCredentials {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(match req.headers().get(header::AUTHORIZATION).map(|v| v.to_str()) {
            None => Err(challenge("credentials are required")),
            Some(Err(_)) => Err(challenge("malformed Authorization header")),
            Some(Ok(value)) => Self::parse(value),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        let ok = BasicCredentials::parse("Basic RVNQR05VNzc3T1JHOmdudTpzb2xpZGFyaW8=").unwrap();
        assert_eq!(ok.username, "ESPGNU777ORG");
        assert_eq!(ok.password, "gnu:solidario", "only the first colon separates");
        for bad in ["Bearer abc", "Basic !!!", "Basic", "Basic bm9jb2xvbg=="] {
            let err = BasicCredentials::parse(bad).unwrap_err();
            assert_eq!(err.status, 401, "{bad}");
            assert!(err.challenge.is_some());
        }
        assert!(!format!("{ok:?}").contains("solidario"), "Debug never prints the password");
    }
}
