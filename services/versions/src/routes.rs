//! HTTP handlers: parse, authorise, call the store or read the snapshot, answer.

use actix_web::http::StatusCode;
use actix_web::http::header::HeaderValue;
use actix_web::{HttpRequest, HttpResponse, web};
use meridian_auth::Device;
use meridian_model::DeviceRole;
use meridian_platform::{ApiError, ApiResult, Platform};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::catalogue::{Cached, Entry};
use crate::http::{cached_json, html_page, wants_html};
use crate::model::{Actor, Artifact, NewArtifact, VersionDetail, VersionView};
use crate::rules::{Selector, parse_selector, parse_version};
use crate::{State, pages, store};

fn no_version(selector: &str) -> ApiError {
    ApiError::not_found(format!("no version matches {selector}"))
}

fn resolve<'a>(snapshot: &'a crate::catalogue::Snapshot, selector: &str) -> ApiResult<&'a Entry> {
    let parsed = parse_selector(selector)?;
    snapshot.resolve(&parsed).ok_or_else(|| match parsed {
        Selector::Latest => ApiError::not_found("no release is published yet"),
        _ => no_version(selector),
    })
}

/// Every version, newest first by semver precedence (withdrawn ones included, `published: false`).
#[utoipa::path(get, path = "/versions", tag = "versions", responses(
    (status = 200, description = "Every version, newest first", body = [VersionView],
        headers(("ETag" = String), ("Cache-Control" = String))),
    (status = 304, description = "Unchanged since the ETag sent in If-None-Match"),
))]
pub async fn list_versions(
    req: HttpRequest,
    platform: web::Data<Platform>,
    state: web::Data<State>,
) -> ApiResult<HttpResponse> {
    let snapshot = state.catalogue.snapshot(&platform.db).await?;
    Ok(cached_json(&req, &snapshot.list, &state.cache_control))
}

/// The newest published release (pre-releases are not considered).
#[utoipa::path(get, path = "/versions/latest", tag = "versions", responses(
    (status = 200, body = VersionView), (status = 404, description = "Nothing published yet", content_type = "application/problem+json"),
))]
pub async fn latest(
    req: HttpRequest,
    platform: web::Data<Platform>,
    state: web::Data<State>,
) -> ApiResult<HttpResponse> {
    let snapshot = state.catalogue.snapshot(&platform.db).await?;
    let entry = resolve(&snapshot, "latest")?;
    Ok(cached_json(&req, &entry.json, &state.cache_control))
}

/// The updates for a server running `{version}`: same major only; for each minor line, the newest
/// published version newer than `{version}`, minor ascending. Pre-releases are offered only to a
/// server already on a pre-release of the same major.minor line.
#[utoipa::path(get, path = "/versions/update-for/{version}", tag = "versions",
    params(("version" = String, Path, description = "The version the server runs (a leading v is accepted)", example = "2.1.0")),
    responses(
        (status = 200, body = [VersionView], headers(("ETag" = String), ("Cache-Control" = String))),
        (status = 304, description = "Unchanged since the ETag sent in If-None-Match"),
        (status = 422, description = "Not a semantic version", content_type = "application/problem+json"),
))]
pub async fn update_for(
    req: HttpRequest,
    path: web::Path<String>,
    platform: web::Data<Platform>,
    state: web::Data<State>,
) -> ApiResult<HttpResponse> {
    let current = parse_version(&path)?;
    let snapshot = state.catalogue.snapshot(&platform.db).await?;
    Ok(cached_json(&req, &snapshot.updates_for(&current), &state.cache_control))
}

/// Publishes a version. The body is the changelog as raw text, stored byte for byte (at most 1 MiB).
#[utoipa::path(post, path = "/versions/{version}", tag = "versions",
    params(("version" = String, Path, description = "A semantic version; a leading v is accepted", example = "2.1.0")),
    request_body(content = String, content_type = "text/plain", description = "The changelog (Markdown), stored as sent"),
    responses(
        (status = 201, body = VersionView),
        (status = 401, description = "No client certificate", content_type = "application/problem+json"),
        (status = 403, description = "The device is not a releaser", content_type = "application/problem+json"),
        (status = 409, description = "The version exists (withdrawn or not)", content_type = "application/problem+json"),
        (status = 413, description = "The changelog is larger than 1 MiB", content_type = "application/problem+json"),
        (status = 422, description = "Not a semantic version, or the changelog is not UTF-8 text", content_type = "application/problem+json"),
    ),
    security(("client_certificate" = []))
)]
pub async fn publish(
    device: Device,
    path: web::Path<String>,
    body: web::Bytes,
    platform: web::Data<Platform>,
    state: web::Data<State>,
) -> ApiResult<HttpResponse> {
    device.require(DeviceRole::Releaser)?;
    let version = parse_version(&path)?;
    let changelog = String::from_utf8(body.to_vec())
        .map_err(|_| ApiError::invalid_field("changelog", "the changelog must be UTF-8 text"))?;
    if changelog.contains('\0') {
        return Err(ApiError::invalid_field("changelog", "the changelog must not contain NUL characters"));
    }
    let actor = Actor::from(&device);
    let row = platform.db.run(move |conn| store::publish(conn, &version, changelog, &actor)).await?;
    state.catalogue.refresh_after_write(&platform.db).await;
    Ok(HttpResponse::Created().json(row.view()))
}

/// Withdraws a version: it stays listed with `published: false` and is offered to no one.
#[utoipa::path(delete, path = "/versions/{version}", tag = "versions",
    params(("version" = String, Path, example = "2.1.1")),
    responses(
        (status = 200, body = VersionView),
        (status = 401, description = "No client certificate", content_type = "application/problem+json"),
        (status = 403, description = "The device is not an admin", content_type = "application/problem+json"),
        (status = 404, description = "No such version", content_type = "application/problem+json"),
        (status = 422, description = "Not a semantic version", content_type = "application/problem+json"),
    ),
    security(("client_certificate" = []))
)]
pub async fn withdraw(
    device: Device,
    path: web::Path<String>,
    platform: web::Data<Platform>,
    state: web::Data<State>,
) -> ApiResult<HttpResponse> {
    device.require(DeviceRole::Admin)?;
    let version = parse_version(&path)?;
    let actor = Actor::from(&device);
    let row = platform.db.run(move |conn| store::withdraw(conn, &version, &actor)).await?;
    state.catalogue.refresh_after_write(&platform.db).await;
    Ok(HttpResponse::Ok().json(row.view()))
}

/// One version with its artifacts. `{version}` is a version, `latest` or a range (`2.27`,
/// `~2.27.1`, `^2`: the newest published match). JSON for API clients; browsers (an Accept header
/// preferring text/html) get the artifacts page.
#[utoipa::path(get, path = "/versions/{version}", tag = "versions",
    params(("version" = String, Path, description = "A version, `latest`, or a range", example = "2.1")),
    responses(
        (status = 200, description = "The version with its artifacts as JSON, or the artifacts page when the Accept header prefers HTML",
            content((VersionDetail = "application/json"), (String = "text/html"))),
        (status = 404, description = "No such version", content_type = "application/problem+json"),
        (status = 422, description = "Neither a version nor a range", content_type = "application/problem+json"),
))]
pub async fn show_version(
    req: HttpRequest,
    path: web::Path<String>,
    platform: web::Data<Platform>,
    state: web::Data<State>,
) -> ApiResult<HttpResponse> {
    let snapshot = state.catalogue.snapshot(&platform.db).await?;
    if wants_html(&req) {
        return Ok(match resolve(&snapshot, &path) {
            Ok(entry) => html_page(StatusCode::OK, pages::version_page(entry)),
            Err(err) => html_page(err.status, pages::error_page(&err)),
        });
    }
    let entry = resolve(&snapshot, &path)?;
    let detail = VersionDetail { version: entry.view.clone(), artifacts: entry.artifacts.clone() };
    let body = serde_json::to_vec(&detail).map_err(ApiError::internal)?;
    let mut response = cached_json(&req, &Cached::new(body), &state.cache_control);
    // The same URL is a page for browsers: caches must key on Accept.
    response.headers_mut().append(actix_web::http::header::VARY, HeaderValue::from_static("Accept"));
    Ok(response)
}

/// Optional filters of `GET /versions/{version}/artifacts`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ArtifactFilter {
    /// Only artifacts of this type (case-insensitive), e.g. `mobile`.
    pub artifact_type: Option<String>,
    /// Only artifacts for this platform (case-insensitive), e.g. `android`.
    pub platform: Option<String>,
}

impl ArtifactFilter {
    fn is_empty(&self) -> bool {
        self.artifact_type.is_none() && self.platform.is_none()
    }

    fn admits(&self, artifact: &Artifact) -> bool {
        let matches =
            |wanted: &Option<String>, value: &str| wanted.as_ref().is_none_or(|w| w.eq_ignore_ascii_case(value));
        matches(&self.artifact_type, &artifact.artifact_type) && matches(&self.platform, &artifact.platform)
    }
}

/// A version's artifacts, sorted by type then platform, optionally filtered by type and platform.
/// `{version}` as for `GET /versions/{version}`.
#[utoipa::path(get, path = "/versions/{version}/artifacts", tag = "artifacts",
    params(("version" = String, Path, example = "2.1.0"), ArtifactFilter),
    responses(
        (status = 200, body = [Artifact], headers(("ETag" = String), ("Cache-Control" = String))),
        (status = 404, description = "No such version", content_type = "application/problem+json"),
        (status = 422, description = "Neither a version nor a range", content_type = "application/problem+json"),
))]
pub async fn list_artifacts(
    req: HttpRequest,
    path: web::Path<String>,
    filter: web::Query<ArtifactFilter>,
    platform: web::Data<Platform>,
    state: web::Data<State>,
) -> ApiResult<HttpResponse> {
    let snapshot = state.catalogue.snapshot(&platform.db).await?;
    let entry = resolve(&snapshot, &path)?;
    if filter.is_empty() {
        return Ok(cached_json(&req, &entry.artifacts_json, &state.cache_control));
    }
    let admitted: Vec<&Artifact> = entry.artifacts.iter().filter(|a| filter.admits(a)).collect();
    let body = serde_json::to_vec(&admitted).map_err(ApiError::internal)?;
    Ok(cached_json(&req, &Cached::new(body), &state.cache_control))
}

/// The mobile builds (artifact type `mobile`) of the newest published version matching
/// `{range}`, each with a QR code of its download link, for phones to scan.
#[utoipa::path(get, path = "/versions/{range}/mobile", tag = "pages",
    params(("range" = String, Path, description = "A version, `latest`, or a range", example = "~2.27")),
    responses(
        (status = 200, description = "The page", content_type = "text/html"),
        (status = 404, description = "No published version matches", content_type = "text/html"),
))]
pub async fn mobile(
    path: web::Path<String>,
    platform: web::Data<Platform>,
    state: web::Data<State>,
) -> ApiResult<HttpResponse> {
    let snapshot = state.catalogue.snapshot(&platform.db).await?;
    let found = parse_selector(&path).and_then(|selector| {
        let selector = match selector {
            // an exact version here means "that release", but only while it is published
            Selector::Exact(v) => Selector::Range(semver::VersionReq {
                comparators: vec![semver::Comparator {
                    op: semver::Op::Exact,
                    major: v.major,
                    minor: Some(v.minor),
                    patch: Some(v.patch),
                    pre: v.pre,
                }],
            }),
            other => other,
        };
        snapshot.resolve(&selector).ok_or_else(|| no_version(&path))
    });
    Ok(match found {
        Ok(entry) => html_page(StatusCode::OK, pages::mobile_page(&path, entry)),
        Err(err) => html_page(err.status, pages::error_page(&err)),
    })
}

/// Every version with its changelog, for people.
#[utoipa::path(get, path = "/", tag = "pages", responses((status = 200, description = "The versions page", content_type = "text/html")))]
pub async fn index(platform: web::Data<Platform>, state: web::Data<State>) -> ApiResult<HttpResponse> {
    let snapshot = state.catalogue.snapshot(&platform.db).await?;
    // Rendering every changelog takes a while with hundreds of versions: off the async workers,
    // once per snapshot.
    let page = web::block(move || snapshot.index_page()).await?;
    Ok(html_page(StatusCode::OK, page))
}

/// `sha256` and `size` of an artifact, in the query string.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ArtifactQuery {
    /// SHA-256 of the file, hex.
    pub sha256: Option<String>,
    /// Size of the file in bytes.
    pub size: Option<i64>,
}

/// The JSON form of an artifact's body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ArtifactBody {
    /// Where to download it; https only.
    pub download_url: String,
    pub sha256: Option<String>,
    pub size: Option<i64>,
}

fn check_name(field: &str, value: &str) -> ApiResult<String> {
    let ok = (1..=64).contains(&value.len())
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(value.to_owned())
    } else {
        Err(ApiError::invalid_field(field, "use 1 to 64 letters, digits, dots, dashes or underscores"))
    }
}

/// Checks a download link: https, a host, no spaces or control characters, at most 2048 bytes.
pub fn check_download_url(raw: &str) -> ApiResult<String> {
    let url = raw.trim();
    let refuse = |why: &str| Err(ApiError::invalid_field("download_url", why.to_owned()));
    if url.len() > 2048 {
        return refuse("the URL is longer than 2048 bytes");
    }
    if !url.get(..8).is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://")) {
        return refuse("the download URL must be an https:// URL");
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return refuse("the URL must not contain spaces or control characters");
    }
    if url[8..].split(['/', '?', '#']).next().is_none_or(str::is_empty) {
        return refuse("the URL has no host");
    }
    Ok(url.to_owned())
}

fn check_sha256(value: Option<String>) -> ApiResult<Option<String>> {
    value
        .map(|hash| {
            let hash = hash.trim().to_ascii_lowercase();
            if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                Ok(hash)
            } else {
                Err(ApiError::invalid_field("sha256", "a SHA-256 is 64 hex digits"))
            }
        })
        .transpose()
}

/// Adds an artifact to a version. The body is the download URL as text (with `sha256` and `size`
/// optionally in the query string), or JSON `{"download_url", "sha256", "size"}` sent as
/// application/json.
#[utoipa::path(post, path = "/artifacts/{version}/{artifact_type}/{platform}", tag = "artifacts",
    params(
        ("version" = String, Path, example = "2.1.0"),
        ("artifact_type" = String, Path, example = "mobile"),
        ("platform" = String, Path, example = "android"),
        ArtifactQuery,
    ),
    request_body(content = String, content_type = "text/plain", description = "The download URL (https), or an ArtifactBody as application/json"),
    responses(
        (status = 201, body = Artifact),
        (status = 401, description = "No client certificate", content_type = "application/problem+json"),
        (status = 403, description = "The device is not a releaser", content_type = "application/problem+json"),
        (status = 404, description = "No such version", content_type = "application/problem+json"),
        (status = 409, description = "The version already has this type for this platform", content_type = "application/problem+json"),
        (status = 422, description = "Invalid version, names, URL, hash or size", content_type = "application/problem+json"),
    ),
    security(("client_certificate" = []))
)]
pub async fn add_artifact(
    req: HttpRequest,
    device: Device,
    path: web::Path<(String, String, String)>,
    query: web::Query<ArtifactQuery>,
    body: web::Bytes,
    platform: web::Data<Platform>,
    state: web::Data<State>,
) -> ApiResult<HttpResponse> {
    device.require(DeviceRole::Releaser)?;
    let (version, artifact_type, artifact_platform) = path.into_inner();
    let version = parse_version(&version)?;
    let is_json = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.trim_start().to_ascii_lowercase().starts_with("application/json"));
    let query = query.into_inner();
    let (url, sha256, size) = if is_json {
        let parsed: ArtifactBody = meridian_platform::extract::from_slice(&body)?;
        (parsed.download_url, parsed.sha256.or(query.sha256), parsed.size.or(query.size))
    } else {
        let text = std::str::from_utf8(&body)
            .map_err(|_| ApiError::invalid_field("download_url", "the body must be the download URL as text"))?;
        (text.to_owned(), query.sha256, query.size)
    };
    if size.is_some_and(|s| s < 0) {
        return Err(ApiError::invalid_field("size", "a size is a number of bytes, 0 or more"));
    }
    let artifact = NewArtifact {
        artifact_type: check_name("artifact_type", &artifact_type)?,
        platform: check_name("platform", &artifact_platform)?,
        download_url: check_download_url(&url)?,
        sha256: check_sha256(sha256)?,
        size,
    };
    let actor = Actor::from(&device);
    let row = platform.db.run(move |conn| store::add_artifact(conn, &version, artifact, &actor)).await?;
    state.catalogue.refresh_after_write(&platform.db).await;
    Ok(HttpResponse::Created().json(row))
}

/// The largest request body `POST /versions/{version}` accepts.
pub const MAX_CHANGELOG_BODY: usize = store::MAX_CHANGELOG_BYTES;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/").route(web::get().to(index)))
        .service(web::resource("/versions").route(web::get().to(list_versions)))
        .service(web::resource("/versions/latest").route(web::get().to(latest)))
        .service(web::resource("/versions/update-for/{version}").route(web::get().to(update_for)))
        .service(web::resource("/versions/{version}/artifacts").route(web::get().to(list_artifacts)))
        .service(web::resource("/versions/{range}/mobile").route(web::get().to(mobile)))
        .service(
            web::resource("/versions/{version}")
                .app_data(web::PayloadConfig::new(MAX_CHANGELOG_BODY))
                .route(web::get().to(show_version))
                .route(web::post().to(publish))
                .route(web::delete().to(withdraw)),
        )
        .service(web::resource("/artifacts/{version}/{artifact_type}/{platform}").route(web::post().to(add_artifact)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_urls_must_be_https_with_a_host() {
        assert_eq!(check_download_url(" https://dl.example.org/a.apk\n").unwrap(), "https://dl.example.org/a.apk");
        assert!(check_download_url("HTTPS://dl.example.org/a").is_ok());
        for bad in ["http://dl.example.org/a", "https://", "https:///path", "ftp://x", "https://a b", "javascript:x"] {
            assert_eq!(check_download_url(bad).unwrap_err().status, 422, "{bad:?}");
        }
    }

    #[test]
    fn names_and_hashes() {
        assert!(check_name("platform", "linux-x86_64").is_ok());
        assert!(check_name("platform", "").is_err());
        assert!(check_name("platform", "a/b").is_err());
        assert_eq!(check_sha256(Some("AB".repeat(32))).unwrap().unwrap(), "ab".repeat(32));
        assert!(check_sha256(Some("xyz".into())).is_err());
    }
}
