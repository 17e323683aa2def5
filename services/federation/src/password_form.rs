//! `GET|POST /password/{id}`: an HTML form where a person changes their own password.
//!
//! CSRF: the form carries a token = HMAC-SHA256(key = the person's current stored hash,
//! "password-form:" id ":" expiry), with the expiry beside it. Another site cannot read it (same
//! origin policy) so it cannot forge the POST, even when the browser sends cached basic
//! credentials. The key lives only in the database, so every replica checks the token, and it
//! changes with the password, so a token works once.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use diesel::prelude::*;
use diesel::sql_types::{Nullable, Text};
use hmac::{Hmac, Mac};
use meridian_platform::{ApiError, ApiResult, Platform};
use serde::Deserialize;
use sha2::Sha256;

use crate::Federation;
use crate::auth::Caller;
use crate::people::{self, MAX_PASSWORD_BYTES};

const TOKEN_LIFETIME_SECS: i64 = 15 * 60;
pub const MIN_PASSWORD_CHARS: usize = 8;

#[derive(QueryableByName)]
struct Stored {
    #[diesel(sql_type = Nullable<Text>)]
    password_hash: Option<String>,
}

fn token(stored_hash: &str, id: &str, expiry: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(stored_hash.as_bytes()).expect("HMAC takes any key length");
    mac.update(format!("password-form:{id}:{expiry}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn token_valid(stored_hash: &str, id: &str, given: &str, now: i64) -> bool {
    let Some((expiry, mac)) = given.split_once(':') else { return false };
    let Ok(expiry) = expiry.parse::<i64>() else { return false };
    if expiry < now {
        return false;
    }
    let expected = token(stored_hash, id, expiry);
    subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), mac.as_bytes()).into()
}

async fn stored_hash(platform: &Platform, id: String) -> ApiResult<String> {
    platform
        .db
        .run(move |conn| {
            diesel::sql_query("SELECT password_hash FROM people WHERE id = $1")
                .bind::<Text, _>(&id)
                .get_result::<Stored>(conn)
                .optional()?
                .and_then(|s| s.password_hash)
                .ok_or_else(|| ApiError::not_found(format!("no person {id}")))
        })
        .await
}

fn page(status: actix_web::http::StatusCode, title: &str, body: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title></head>\n\
             <body><main><h1>{title}</h1>\n{body}</main></body></html>\n"
        ))
}

fn form(id: &str, csrf: &str, message: &str) -> String {
    format!(
        "{message}<form method=\"post\" action=\"/password/{id}\">\n\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\n\
         <p><label>New password <input type=\"password\" name=\"password\" autocomplete=\"new-password\" \
         minlength=\"{MIN_PASSWORD_CHARS}\" maxlength=\"{MAX_PASSWORD_BYTES}\" required></label></p>\n\
         <p><label>Repeat it <input type=\"password\" name=\"confirm\" autocomplete=\"new-password\" required></label></p>\n\
         <p><button type=\"submit\">Change password</button></p>\n</form>\n"
    )
}

fn own_only(caller: &Caller, raw: &str) -> ApiResult<String> {
    let id = people::normalise_id(raw)?;
    if caller.id != id {
        return Err(ApiError::forbidden("a password is changed only by its owner").with_code("Forbidden"));
    }
    Ok(id)
}

fn fresh_form(stored: &str, id: &str, message: &str) -> String {
    let expiry = chrono::Utc::now().timestamp() + TOKEN_LIFETIME_SECS;
    form(id, &format!("{expiry}:{}", token(stored, id, expiry)), message)
}

/// The form (for the person themself), with its CSRF token.
#[utoipa::path(get, path = "/password/{id}", tag = "federation", params(("id" = String, Path)), security(("basic" = [])),
    responses((status = 200, description = "An HTML form", content_type = "text/html"), (status = 401), (status = 403, description = "Someone else's password")))]
pub async fn show(caller: Caller, platform: web::Data<Platform>, path: web::Path<String>) -> ApiResult<HttpResponse> {
    let id = own_only(&caller, &path)?;
    let stored = stored_hash(&platform, id.clone()).await?;
    Ok(page(actix_web::http::StatusCode::OK, &format!("Password of {id}"), &fresh_form(&stored, &id, "")))
}

#[derive(Deserialize)]
pub struct PasswordForm {
    csrf: String,
    password: String,
    confirm: String,
}

/// Sets the new password when the CSRF token is valid and both entries agree.
#[utoipa::path(post, path = "/password/{id}", tag = "federation", params(("id" = String, Path)), security(("basic" = [])),
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "csrf, password, confirm"),
    responses((status = 200, description = "Changed (HTML)", content_type = "text/html"),
        (status = 403, description = "Missing, expired or forged CSRF token"),
        (status = 422, description = "The entries differ, or the password is too short or too long (HTML form again)", content_type = "text/html")))]
pub async fn change(
    _req: HttpRequest,
    caller: Caller,
    platform: web::Data<Platform>,
    fed: web::Data<Federation>,
    path: web::Path<String>,
    form: web::Form<PasswordForm>,
) -> ApiResult<HttpResponse> {
    let id = own_only(&caller, &path)?;
    let form = form.into_inner();
    let stored = stored_hash(&platform, id.clone()).await?;
    if !token_valid(&stored, &id, &form.csrf, chrono::Utc::now().timestamp()) {
        return Err(ApiError::forbidden("the form expired or did not come from this site; reload it")
            .with_code("CsrfTokenInvalid"));
    }
    let problem = if form.password != form.confirm {
        Some("The two entries differ.")
    } else if form.password.chars().count() < MIN_PASSWORD_CHARS {
        Some("The password is too short (at least 8 characters).")
    } else if form.password.len() > MAX_PASSWORD_BYTES {
        Some("The password is too long (at most 72 bytes).")
    } else {
        None
    };
    if let Some(problem) = problem {
        let message = format!("<p role=\"alert\">{problem}</p>\n");
        return Ok(page(
            actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
            &format!("Password of {id}"),
            &fresh_form(&stored, &id, &message),
        ));
    }
    let password = form.password;
    let hash = web::block(move || meridian_auth::password::hash(&password)).await?;
    let target = id.clone();
    platform.db.transaction(move |conn| people::set_password(conn, &target, &target, &hash)).await?;
    fed.auth.invalidate(&id);
    Ok(page(actix_web::http::StatusCode::OK, "Password changed", "<p>Your password has been changed.</p>\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_bind_hash_person_and_time() {
        let t = format!("{}:{}", 2000, token("hash-a", "ESPGNU777ORG", 2000));
        assert!(token_valid("hash-a", "ESPGNU777ORG", &t, 1000));
        assert!(!token_valid("hash-a", "ESPGNU777ORG", &t, 2001), "expired");
        assert!(!token_valid("hash-b", "ESPGNU777ORG", &t, 1000), "the password changed");
        assert!(!token_valid("hash-a", "ARGBUE111FAV", &t, 1000), "another person");
        assert!(!token_valid("hash-a", "ESPGNU777ORG", "garbage", 1000));
    }
}
