//! One extractor for the replaced API's inputs: the EMR client posts form-encoded fields, other
//! callers send JSON or a query string. [`Fields`] reads whichever was sent (the body wins over
//! the query string for a field given in both) into flat text fields.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use meridian_platform::ApiError;

#[derive(Debug, Clone, Default)]
pub struct Fields(pub BTreeMap<String, String>);

impl Fields {
    /// A field's value, trimmed; absent or blank -> `None`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    /// The value as sent (not trimmed), for text where leading white space matters.
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// `true`/`1`/`yes`/`on` (any case) -> true; absent -> false.
    pub fn flag(&self, name: &str) -> Result<bool, ApiError> {
        match self.get(name).map(str::to_ascii_lowercase).as_deref() {
            None | Some("false" | "0" | "no" | "off") => Ok(false),
            Some("true" | "1" | "yes" | "on") => Ok(true),
            Some(other) => Err(ApiError::bad_request(format!("{name}: {other:?} is not true or false"))),
        }
    }

    fn from_pairs(pairs: Vec<(String, String)>, into: &mut BTreeMap<String, String>) {
        for (k, v) in pairs {
            into.insert(k, v);
        }
    }

    /// Parses a body of `content_type` over the query string's fields.
    pub fn parse(query: &str, content_type: Option<&str>, body: &[u8]) -> Result<Fields, ApiError> {
        let mut fields = BTreeMap::new();
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(query).map_err(|e| ApiError::bad_request(format!("bad query string: {e}")))?;
        Self::from_pairs(pairs, &mut fields);
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Fields(fields));
        }
        let mime = content_type.unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if mime == "application/json" || mime.ends_with("+json") {
            let value: serde_json::Value = meridian_platform::extract::from_slice(body)?;
            let serde_json::Value::Object(object) = value else {
                return Err(ApiError::bad_request("the JSON body must be an object"));
            };
            for (key, value) in object {
                let text = match value {
                    serde_json::Value::Null => continue,
                    serde_json::Value::String(s) => s,
                    serde_json::Value::Bool(b) => b.to_string(),
                    serde_json::Value::Number(n) => n.to_string(),
                    _ => {
                        return Err(ApiError {
                            errors: Some([(key.clone(), vec!["must be a string".to_owned()])].into()),
                            ..ApiError::bad_request(format!("{key}: must be a string"))
                        });
                    }
                };
                fields.insert(key, text);
            }
        } else if mime == "application/x-www-form-urlencoded" || mime.is_empty() {
            let pairs: Vec<(String, String)> =
                serde_urlencoded::from_bytes(body).map_err(|e| ApiError::bad_request(format!("bad form body: {e}")))?;
            Self::from_pairs(pairs, &mut fields);
        } else if mime == "multipart/form-data" {
            let boundary = content_type
                .unwrap_or("")
                .split(';')
                .filter_map(|p| p.trim().split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
                .map(|(_, v)| v.trim().trim_matches('"').to_owned())
                .filter(|b| !b.is_empty())
                .ok_or_else(|| ApiError::bad_request("multipart body without a boundary"))?;
            for (name, value) in multipart_text_fields(body, &boundary)? {
                fields.insert(name, value);
            }
        } else {
            return Err(ApiError::unsupported_media_type(format!(
                "{mime} is not accepted; send application/x-www-form-urlencoded or application/json"
            )));
        }
        Ok(Fields(fields))
    }
}

/// The text fields of a `multipart/form-data` body (what PHP's curl sends when given an array).
/// File parts are refused: no field here is a file.
fn multipart_text_fields(body: &[u8], boundary: &str) -> Result<Vec<(String, String)>, ApiError> {
    let malformed = || ApiError::bad_request("malformed multipart body");
    let text = std::str::from_utf8(body).map_err(|_| ApiError::bad_request("the multipart body is not UTF-8"))?;
    let delimiter = format!("--{boundary}");
    let mut parts = text.split(delimiter.as_str());
    parts.next(); // the preamble
    let mut out = Vec::new();
    for part in parts {
        if part.starts_with("--") {
            break; // the closing delimiter
        }
        let part = part.strip_prefix("\r\n").ok_or_else(malformed)?;
        let (headers, value) = part.split_once("\r\n\r\n").ok_or_else(malformed)?;
        let value = value.strip_suffix("\r\n").unwrap_or(value);
        let disposition = headers
            .split("\r\n")
            .find(|h| h.to_ascii_lowercase().starts_with("content-disposition:"))
            .ok_or_else(malformed)?;
        if disposition.contains("filename=") {
            return Err(ApiError::bad_request("file uploads are not accepted here"));
        }
        let name = disposition
            .split(';')
            .find_map(|p| p.trim().strip_prefix("name="))
            .map(|n| n.trim_matches('"').to_owned())
            .ok_or_else(malformed)?;
        out.push((name, value.to_owned()));
    }
    Ok(out)
}

impl FromRequest for Fields {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let query = req.query_string().to_owned();
        let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            let body = body.await.map_err(|e| {
                if e.as_response_error().status_code() == actix_web::http::StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::payload_too_large("the body is too large")
                } else {
                    ApiError::bad_request(format!("the body could not be read: {e}"))
                }
            })?;
            Fields::parse(&query, content_type.as_deref(), &body)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_form_json_and_query() {
        let f = Fields::parse("", Some("application/x-www-form-urlencoded"), b"email=a%40b.org&version=7.0.1").unwrap();
        assert_eq!(f.get("email"), Some("a@b.org"));
        let f = Fields::parse(
            "",
            Some("application/json; charset=utf-8"),
            br#"{"email":"a@b.org","dryRun":true,"n":3,"x":null}"#,
        )
        .unwrap();
        assert_eq!(f.get("email"), Some("a@b.org"));
        assert!(f.flag("dryRun").unwrap());
        assert_eq!(f.get("n"), Some("3"));
        assert_eq!(f.get("x"), None);
        let f = Fields::parse("email=q%40b.org&version=1", None, b"").unwrap();
        assert_eq!(f.get("email"), Some("q@b.org"));
        let f =
            Fields::parse("email=q%40b.org", Some("application/x-www-form-urlencoded"), b"email=body%40b.org").unwrap();
        assert_eq!(f.get("email"), Some("body@b.org"), "the body wins");
    }

    #[test]
    fn reads_multipart_text_fields() {
        let body = "--XyZ\r\nContent-Disposition: form-data; name=\"email\"\r\n\r\nm@example.org\r\n\
--XyZ\r\nContent-Disposition: form-data; name=\"version\"\r\n\r\n7.0.3\r\n--XyZ--\r\n";
        let f = Fields::parse("", Some("multipart/form-data; boundary=XyZ"), body.as_bytes()).unwrap();
        assert_eq!(f.get("email"), Some("m@example.org"));
        assert_eq!(f.get("version"), Some("7.0.3"));
        let file = "--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x\"\r\n\r\ndata\r\n--b--\r\n";
        assert_eq!(
            Fields::parse("", Some("multipart/form-data; boundary=b"), file.as_bytes()).unwrap_err().status,
            400
        );
        assert_eq!(Fields::parse("", Some("multipart/form-data"), b"x").unwrap_err().status, 400);
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        assert_eq!(Fields::parse("", Some("application/json"), b"[1]").unwrap_err().status, 400);
        assert_eq!(Fields::parse("", Some("application/json"), b"{\"email\": [1]}").unwrap_err().status, 400);
        assert_eq!(Fields::parse("", Some("application/json"), b"{bad").unwrap_err().status, 400);
        assert_eq!(Fields::parse("", Some("text/csv"), b"a,b").unwrap_err().status, 415);
        assert!(Fields::parse("", None, b"dryRun=maybe").unwrap().flag("dryRun").is_err());
    }
}
