//! Response helpers: conditional GETs, content negotiation, the pages' security policy.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};

use crate::catalogue::Cached;

/// The Content-Security-Policy of the HTML pages: nothing loads from anywhere, styles are inline,
/// QR codes are inline SVG.
pub const PAGE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Whether the request's `If-None-Match` names `etag` (weak comparison, `*` included).
pub fn not_modified(req: &HttpRequest, etag: &str) -> bool {
    req.headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

/// A JSON body with its entity tag and caching policy; 304 when the client holds it already.
pub fn cached_json(req: &HttpRequest, cached: &Cached, cache_control: &HeaderValue) -> HttpResponse {
    if not_modified(req, &cached.etag) {
        return HttpResponse::NotModified()
            .insert_header((header::ETAG, cached.etag.as_str()))
            .insert_header((header::CACHE_CONTROL, cache_control.clone()))
            .finish();
    }
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::ETAG, cached.etag.as_str()))
        .insert_header((header::CACHE_CONTROL, cache_control.clone()))
        .body(cached.body.clone())
}

/// Whether the client prefers HTML to JSON. Browsers list `text/html` first; API clients send
/// `application/json`, `*/*` or nothing, and get JSON. HTML wins only when `text/html` (or
/// `application/xhtml+xml`) is listed with a higher quality than `application/json`; wildcards
/// count for neither.
pub fn wants_html(req: &HttpRequest) -> bool {
    let Some(accept) = req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let (mut html, mut json) = (0.0_f32, 0.0_f32);
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let quality =
            parts.find_map(|p| p.trim().strip_prefix("q=").and_then(|q| q.trim().parse::<f32>().ok())).unwrap_or(1.0);
        match media.as_str() {
            "text/html" | "application/xhtml+xml" => html = html.max(quality),
            "application/json" => json = json.max(quality),
            _ => {}
        }
    }
    html > 0.0 && html > json
}

/// An HTML page with the pages' security policy.
pub fn html_page(status: actix_web::http::StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, PAGE_CSP))
        .insert_header((header::VARY, "Accept"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn accept(value: &str) -> bool {
        wants_html(&TestRequest::default().insert_header((header::ACCEPT, value)).to_http_request())
    }

    #[test]
    fn browsers_get_html_and_api_clients_json() {
        assert!(accept("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"));
        assert!(accept("text/html"));
        assert!(!accept("application/json"));
        assert!(!accept("*/*"));
        assert!(!accept("application/json, text/html;q=0.5"));
        assert!(accept("application/json;q=0.5, text/html"));
        assert!(!accept("text/html;q=0"));
        assert!(!wants_html(&TestRequest::default().to_http_request()));
    }

    #[test]
    fn if_none_match_accepts_lists_weak_tags_and_star() {
        let req = |v: &str| TestRequest::default().insert_header((header::IF_NONE_MATCH, v)).to_http_request();
        assert!(not_modified(&req("\"abc\""), "\"abc\""));
        assert!(not_modified(&req("\"x\", W/\"abc\""), "\"abc\""));
        assert!(not_modified(&req("*"), "\"abc\""));
        assert!(!not_modified(&req("\"abd\""), "\"abc\""));
        assert!(!not_modified(&TestRequest::default().to_http_request(), "\"abc\""));
    }
}
