//! The unsubscribe pages: small, self-contained HTML with inline CSS allowed by a hash in the
//! Content-Security-Policy (nothing else: no scripts, no external resources).

use std::sync::OnceLock;

use actix_web::HttpResponse;
use actix_web::http::{StatusCode, header};
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::mail::escape_html;

const CSS: &str = "body{margin:0;background:#f4f5f7;font-family:Helvetica,Arial,sans-serif;color:#1f2328;line-height:1.5}\
main{max-width:32em;margin:4em auto;padding:2em;background:#fff;border:1px solid #d0d7de;border-radius:8px}\
h1{font-size:1.4em;margin:0 0 .75em}\
button{font:inherit;padding:.5em 1.25em;border:0;border-radius:6px;background:#cf222e;color:#fff;cursor:pointer}\
.muted{color:#57606a;font-size:.9em}";

fn csp() -> &'static str {
    static CSP: OnceLock<String> = OnceLock::new();
    CSP.get_or_init(|| {
        let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(CSS.as_bytes()));
        format!(
            "default-src 'none'; style-src 'sha256-{hash}'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        )
    })
}

fn page(status: StatusCode, title: &str, body_html: &str) -> HttpResponse {
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{title}</title>\
<style>{CSS}</style></head>\n<body><main>\n<h1>{title}</h1>\n{body_html}\n</main></body></html>\n",
        title = escape_html(title)
    );
    HttpResponse::build(status)
        .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header((header::CONTENT_SECURITY_POLICY, csp()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(html)
}

/// "Unsubscribe this address?" with a button that POSTs the same token.
pub fn confirm(email: &str, token: &str, already: bool) -> HttpResponse {
    if already {
        return page(
            StatusCode::OK,
            "Already unsubscribed",
            &format!("<p><strong>{}</strong> no longer receives these emails.</p>", escape_html(email)),
        );
    }
    page(
        StatusCode::OK,
        "Unsubscribe?",
        &format!(
            "<p>Stop sending announcements to <strong>{email}</strong>?</p>\n\
<form method=\"post\" action=\"unsubscribe?token={token}\">\
<input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\
<button type=\"submit\">Unsubscribe</button></form>\n\
<p class=\"muted\">You can register the installation again at any time.</p>",
            email = escape_html(email),
            token = escape_html(token),
        ),
    )
}

pub fn done(email: &str) -> HttpResponse {
    page(
        StatusCode::OK,
        "Unsubscribed",
        &format!("<p><strong>{}</strong> will receive no more announcements.</p>", escape_html(email)),
    )
}

pub fn invalid_link() -> HttpResponse {
    page(
        StatusCode::BAD_REQUEST,
        "This link is not valid",
        "<p>The unsubscribe link is incomplete or was changed. Open the link from the email again.</p>",
    )
}
