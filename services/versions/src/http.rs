//! Response helpers: conditional GETs, content negotiation, the pages' security policy.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};
use meridian_platform::conditional;

use crate::catalogue::Cached;

/// The Content-Security-Policy of the HTML pages: nothing loads from anywhere, styles are inline,
/// QR codes are inline SVG.
pub const PAGE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Whether the client accepts a gzip-encoded body.
pub fn accepts_gzip(req: &HttpRequest) -> bool {
    req.headers().get_all(header::ACCEPT_ENCODING).filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(
        |coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| matches!(p.trim(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        },
    )
}

/// A JSON body with its entity tag and caching policy, gzip-encoded when it has a compressed copy
/// and the client accepts it; 304 when the client holds either representation already.
pub fn cached_json(req: &HttpRequest, cached: &Cached, cache_control: &HeaderValue) -> HttpResponse {
    // The other representation's tag: a client holding either has the content.
    let (body, etag, other, gzip) = match &cached.gzip {
        Some((zipped, tag)) if accepts_gzip(req) => (zipped, tag.as_str(), Some(cached.etag.as_str()), true),
        Some((_, tag)) => (&cached.body, cached.etag.as_str(), Some(tag.as_str()), false),
        None => (&cached.body, cached.etag.as_str(), None, false),
    };
    let mut response = HttpResponse::Ok();
    response.insert_header((header::CACHE_CONTROL, cache_control.clone()));
    if other.is_some() {
        response.insert_header((header::VARY, "Accept-Encoding"));
    }
    conditional::respond(req, etag, other.as_slice(), response, |ok| {
        if gzip {
            ok.insert_header((header::CONTENT_ENCODING, "gzip"));
        }
        ok.content_type("application/json").body(body.clone())
    })
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
pub fn html_page(
    status: actix_web::http::StatusCode,
    body: impl actix_web::body::MessageBody + 'static,
) -> HttpResponse {
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
}
