//! Conditional GET (RFC 9110 §8.8.3, §13.1.2): a strong entity tag for a body, and `304 Not Modified`
//! when the client already holds the representation it names.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};
use sha2::{Digest, Sha256};

/// A strong entity tag for a body: the first 128 bits of its SHA-256, in hex, quoted.
pub fn strong_etag(body: &[u8]) -> String {
    format!("\"{}\"", hex::encode(&Sha256::digest(body)[..16]))
}

/// Whether the request's `If-None-Match` matches `etag`: `*`, or a list (over one or several header
/// lines) naming it, compared weakly (`W/"x"` matches `"x"`). A malformed member ends the list.
pub fn if_none_match(req: &HttpRequest, etag: &str) -> bool {
    let etag = opaque(etag);
    req.headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|value| value.to_str().ok())
        .any(|value| list_matches(value, etag))
}

/// Answers a GET (or HEAD) of the representation tagged `etag`.
///
/// `response` holds the headers both answers carry (`Cache-Control`, `Vary`: a 304 repeats them,
/// RFC 9110 §15.4.5). It becomes `304 Not Modified` with the ETag and no body when the request's
/// `If-None-Match` matches `etag` or one of `also` (the tags of the same content in another coding,
/// which the client may hold); else `200 OK` with the ETag, finished by `ok` (content type, coding, body).
pub fn respond(
    req: &HttpRequest,
    etag: &str,
    also: &[&str],
    mut response: HttpResponseBuilder,
    ok: impl FnOnce(&mut HttpResponseBuilder) -> HttpResponse,
) -> HttpResponse {
    response.insert_header((header::ETAG, etag));
    if if_none_match(req, etag) || also.iter().any(|tag| if_none_match(req, tag)) {
        return response.status(StatusCode::NOT_MODIFIED).finish();
    }
    ok(response.status(StatusCode::OK))
}

/// An entity tag without its weak indicator: what a weak comparison compares.
fn opaque(etag: &str) -> &str {
    etag.strip_prefix("W/").unwrap_or(etag)
}

/// `If-None-Match = "*" / #entity-tag`, `entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE`.
fn list_matches(value: &str, etag: &str) -> bool {
    let mut rest = value;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            return false;
        }
        if let Some(after) = rest.strip_prefix('*') {
            return after.trim_start_matches([' ', '\t']).is_empty() || after.starts_with([' ', '\t', ',']);
        }
        let tag = opaque(rest);
        let Some(end) = tag.strip_prefix('"').and_then(|inner| inner.find('"')) else {
            return false;
        };
        let (candidate, after) = tag.split_at(end + 2);
        if candidate == etag {
            return true;
        }
        rest = after.trim_start_matches([' ', '\t']);
        if !(rest.is_empty() || rest.starts_with(',')) {
            return false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    const TAG: &str = "\"abc\"";

    fn matches(values: &[&str], etag: &str) -> bool {
        let mut req = TestRequest::default();
        for value in values {
            req = req.append_header((header::IF_NONE_MATCH, *value));
        }
        if_none_match(&req.to_http_request(), etag)
    }

    #[test]
    fn strong_etags_are_quoted_hex_of_the_body() {
        let tag = strong_etag(b"hello");
        assert_eq!(tag, "\"2cf24dba5fb0a30e26e83b2ac5b9e29e\"");
        assert_ne!(strong_etag(b"hello!"), tag);
        assert_eq!(strong_etag(b""), "\"e3b0c44298fc1c149afbf4c8996fb924\"");
    }

    #[test]
    fn a_tag_matches_itself_and_no_other() {
        assert!(matches(&[TAG], TAG));
        assert!(!matches(&["\"abd\""], TAG));
        assert!(!matches(&["\"ab\""], TAG));
        assert!(!matches(&["abc"], TAG), "an unquoted tag is malformed");
        assert!(!matches(&[], TAG), "no header: no match");
        assert!(!matches(&[""], TAG));
    }

    #[test]
    fn comparison_is_weak() {
        assert!(matches(&["W/\"abc\""], TAG));
        assert!(matches(&[TAG], "W/\"abc\""));
        assert!(matches(&["W/\"abc\""], "W/\"abc\""));
        assert!(!matches(&["w/\"abc\""], TAG), "the weak indicator is case-sensitive");
    }

    #[test]
    fn star_matches_any_representation() {
        assert!(matches(&["*"], TAG));
        assert!(matches(&[" * "], TAG));
        assert!(!matches(&["*abc"], TAG));
    }

    #[test]
    fn lists_over_one_or_several_lines() {
        assert!(matches(&["\"x\", \"abc\""], TAG));
        assert!(matches(&["\"x\",W/\"abc\",\"y\""], TAG));
        assert!(matches(&["\"x\" ,\t\"abc\""], TAG));
        assert!(matches(&["\"x\"", "\"abc\""], TAG));
        assert!(matches(&[", ,\"abc\","], TAG), "empty members are skipped");
        assert!(!matches(&["\"x\", \"y\""], TAG));
        assert!(matches(&["\"a,b\", \"abc\""], TAG), "a comma inside a tag is part of it");
        assert!(matches(&["\"a,b\""], "\"a,b\""));
        assert!(!matches(&["\"x\" junk, \"abc\""], TAG), "a malformed member ends the list");
        assert!(!matches(&["\"abc"], TAG));
    }

    #[actix_rt::test]
    async fn respond_answers_304_with_the_shared_headers_and_no_body() {
        let get = |inm: Option<&str>| {
            let req = TestRequest::default();
            match inm {
                Some(value) => req.insert_header((header::IF_NONE_MATCH, value)),
                None => req,
            }
            .to_http_request()
        };
        let answer = |req: &HttpRequest, also: &[&str]| {
            let mut shared = HttpResponse::Ok();
            shared.insert_header((header::CACHE_CONTROL, "public, max-age=10"));
            respond(req, TAG, also, shared, |ok| ok.content_type("application/json").body("[]"))
        };

        let fresh = answer(&get(None), &[]);
        assert_eq!(fresh.status(), 200);
        assert_eq!(fresh.headers().get(header::ETAG).unwrap(), TAG);
        assert_eq!(fresh.headers().get(header::CACHE_CONTROL).unwrap(), "public, max-age=10");
        assert_eq!(actix_web::body::to_bytes(fresh.into_body()).await.unwrap(), "[]");

        let held = answer(&get(Some("W/\"abc\"")), &[]);
        assert_eq!(held.status(), 304);
        assert_eq!(held.headers().get(header::ETAG).unwrap(), TAG);
        assert_eq!(held.headers().get(header::CACHE_CONTROL).unwrap(), "public, max-age=10");
        assert!(held.headers().get(header::CONTENT_TYPE).is_none());
        assert!(actix_web::body::to_bytes(held.into_body()).await.unwrap().is_empty());

        assert_eq!(answer(&get(Some("\"abc-gz\"")), &["\"abc-gz\""]).status(), 304, "another coding held");
        assert_eq!(answer(&get(Some("\"other\"")), &["\"abc-gz\""]).status(), 200);
    }
}
