//! Thin handlers: authenticate, authorise, parse, call a domain function, shape the response.

use actix_web::http::{Method, StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use meridian_model::PageQuery;
use meridian_platform::{ApiError, ApiResult, Platform};
use serde_json::Value;
use uuid::Uuid;

use crate::Federation;
use crate::audit::{self, AuditEvent};
use crate::auth::Caller;
use crate::people::{self, Search};
use crate::places::{self, Kind};
use crate::policy::{Resource, Scope};
use crate::{docs, pols};

/// Checks the policy: global access, or own access on the caller's own records (`owner`).
pub fn authorize(
    fed: &Federation,
    caller: &Caller,
    resource: Resource,
    method: &Method,
    owner: Option<&str>,
) -> ApiResult<()> {
    match fed.policy.access(&caller.roles, resource, method) {
        Some(Scope::Global) => Ok(()),
        Some(Scope::Own) if owner == Some(caller.id.as_str()) => Ok(()),
        _ => Err(ApiError::forbidden(format!(
            "{} may not {} {}{}",
            caller.id,
            method,
            resource.as_str(),
            owner.map(|o| format!(" of {o}")).unwrap_or_default()
        ))
        .with_code("Forbidden")),
    }
}

/// A JSON body read only when the handler asks, after authentication and authorisation, so that
/// a caller without credentials learns nothing from how their body is parsed (actix runs a
/// handler's extractors concurrently). Parsed with the lenient JSON configuration of the scope or
/// resource: any content type, the size limit, 400 for malformed JSON.
pub struct LaterJson {
    req: HttpRequest,
    payload: actix_web::dev::Payload,
}

impl actix_web::FromRequest for LaterJson {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        std::future::ready(Ok(LaterJson { req: req.clone(), payload: payload.take() }))
    }
}

impl LaterJson {
    pub async fn read(mut self) -> ApiResult<Value> {
        use actix_web::FromRequest;
        match meridian_platform::extract::Json::<Value>::from_request(&self.req, &mut self.payload).await {
            Ok(json) => Ok(json.into_inner()),
            Err(err) => {
                Err(err.as_error::<ApiError>().cloned().unwrap_or_else(|| ApiError::bad_request(err.to_string())))
            }
        }
    }
}

fn json_body(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status).content_type("application/json").body(body)
}

fn json_array(docs: &[String]) -> String {
    let mut out = String::with_capacity(docs.iter().map(|d| d.len() + 1).sum::<usize>() + 2);
    out.push('[');
    for (i, doc) in docs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(doc);
    }
    out.push(']');
    out
}

/// A flat array with `X-Total-Count` and, when more remain, a `Link: <...>; rel="next"`.
fn page_response(
    req: &HttpRequest,
    docs: &[String],
    total: i64,
    limit: i64,
    offset: i64,
    capped: bool,
) -> HttpResponse {
    let end = offset + docs.len() as i64;
    let mut res = HttpResponse::Ok();
    res.content_type("application/json").insert_header(("X-Total-Count", total.to_string()));
    if capped {
        res.insert_header(("X-Total-Count-Capped", "true"));
    }
    if docs.len() as i64 == limit && (end < total || capped) {
        let mut pairs: Vec<(String, String)> = serde_urlencoded::from_str::<Vec<(String, String)>>(req.query_string())
            .unwrap_or_default()
            .into_iter()
            .filter(|(k, _)| k != "limit" && k != "offset")
            .collect();
        pairs.push(("limit".into(), limit.to_string()));
        pairs.push(("offset".into(), end.to_string()));
        let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
        res.insert_header((header::LINK, format!("<{}?{query}>; rel=\"next\"", req.path())));
    }
    res.body(json_array(docs))
}

fn page_of(query: &PageQuery) -> (i64, i64) {
    (query.limit(), query.offset())
}

fn person_id(raw: &str) -> ApiResult<String> {
    people::normalise_id(raw)
}

// ---------------------------------------------------------------------------------------------
// login

/// Checks the caller's credentials: `true` when they are valid (the portal's login check).
#[utoipa::path(get, path = "/login", tag = "federation", security(("basic" = [])), responses(
    (status = 200, description = "Valid credentials", body = bool, example = json!(true)),
    (status = 401, description = "Missing or wrong credentials", content_type = "application/problem+json"),
    (status = 429, description = "Too many failures for this account or address", content_type = "application/problem+json"),
))]
pub async fn login(_caller: Caller) -> HttpResponse {
    json_body(StatusCode::OK, "true".to_owned())
}

// ---------------------------------------------------------------------------------------------
// people

/// Lists or searches people (global access): a flat array ordered by id.
#[utoipa::path(get, path = "/people", tag = "federation", params(Search), security(("basic" = [])), responses(
    (status = 200, description = "People; `X-Total-Count` holds the total (counted up to 1000, then `X-Total-Count-Capped: true`), `Link` the next page",
     body = [Object], example = json!([{"id": "ESPGNU777ORG", "name": "Ana", "lastname": "Betz", "dob": "1985-10-04", "roles": ["end_user"], "active": true}])),
    (status = 401, description = "Missing or wrong credentials"),
    (status = 403, description = "No global read access to people"),
))]
pub async fn people_list(
    req: HttpRequest,
    caller: Caller,
    platform: web::Data<Platform>,
    fed: web::Data<Federation>,
    query: web::Query<Search>,
) -> ApiResult<HttpResponse> {
    authorize(&fed, &caller, Resource::People, req.method(), None)?;
    let search = query.into_inner();
    let page = PageQuery { limit: search.limit, offset: search.offset };
    let (limit, offset) = page_of(&page);
    let sink = fed.audit.clone();
    let actor = caller.id.clone();
    let filters =
        serde_json::json!({"name": search.name, "lastname": search.lastname, "dob": search.dob, "id": search.id});
    let listing = platform
        .db
        .run(move |conn| {
            let listing = people::list(conn, &search, limit, offset)?;
            if !listing.ids.is_empty() {
                sink.send(
                    AuditEvent::new(&actor, "list", "people", None)
                        .with_detail(serde_json::json!({"query": filters, "ids": listing.ids})),
                );
            }
            Ok(listing)
        })
        .await?;
    Ok(page_response(&req, &listing.docs, listing.total, limit, offset, listing.capped))
}

/// One person's record (never a password hash).
#[utoipa::path(get, path = "/people/{id}", tag = "federation", params(("id" = String, Path, description = "Federation id", example = "ESPGNU777ORG")),
    security(("basic" = [])), responses(
    (status = 200, description = "The record, with Thalamus's field names and any field a node sent", body = Object,
     example = json!({"id": "ESPGNU777ORG", "name": "Ana", "lastname": "Betz", "gender": "f", "dob": "1985-10-04", "roles": ["end_user"], "active": true})),
    (status = 401, description = "Missing or wrong credentials"),
    (status = 403, description = "Not allowed to read this record"),
    (status = 404, description = "No such person"),
))]
pub async fn person_get(
    req: HttpRequest,
    caller: Caller,
    platform: web::Data<Platform>,
    fed: web::Data<Federation>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let id = person_id(&path)?;
    authorize(&fed, &caller, Resource::People, req.method(), Some(&id))?;
    let sink = fed.audit.clone();
    let doc = platform
        .db
        .run(move |conn| {
            let doc = people::get(conn, &id)?.ok_or_else(|| ApiError::not_found(format!("no person {id}")))?;
            sink.send(AuditEvent::new(&caller.id, "read", "people", Some(&id)));
            Ok(doc)
        })
        .await?;
    Ok(json_body(StatusCode::OK, doc))
}

async fn hash_if_any(password: Option<String>) -> ApiResult<Option<String>> {
    Ok(match password {
        Some(p) => Some(web::block(move || people::hash_password(&p)).await?),
        None => None,
    })
}

/// Creates a person. The id in the URL is upper-cased; `roles` defaults to `["end_user"]`; a
/// password that already is a bcrypt hash is stored as it is, anything else is hashed (argon2id).
#[utoipa::path(post, path = "/people/{id}", tag = "federation", params(("id" = String, Path, description = "Federation id")),
    request_body(content = Object, description = "The record (any content type)", example = json!({"name": "Ana", "lastname": "Betz", "dob": "1985-10-04", "gender": "f", "password": "a long passphrase"})),
    security(("basic" = [])), responses(
    (status = 201, description = "Created; the record without the hash", body = Object),
    (status = 400, description = "Malformed JSON"),
    (status = 403, description = "Not allowed (e.g. granting roles without being root)"),
    (status = 409, description = "The person exists"),
    (status = 422, description = "Not an object, an id contradicting the URL, a password over 72 bytes, an unknown role"),
))]
pub async fn person_post(
    req: HttpRequest,
    caller: Caller,
    platform: web::Data<Platform>,
    fed: web::Data<Federation>,
    path: web::Path<String>,
    body: LaterJson,
) -> ApiResult<HttpResponse> {
    let id = person_id(&path).map_err(|_| ApiError::invalid_field("id", "must be letters, digits, '_', '.' or '-'"))?;
    authorize(&fed, &caller, Resource::People, req.method(), Some(&id))?;
    let mut input = people::parse_input(body.read().await?, &id, &fed.policy)?;
    let hash = hash_if_any(input.password.take()).await?;
    let location = format!("/people/{id}");
    let doc = platform.db.transaction(move |conn| people::create(conn, &caller, &id, input, hash)).await?;
    Ok(HttpResponse::Created().content_type("application/json").insert_header((header::LOCATION, location)).body(doc))
}

/// Shallow-merges the body into the record. A password is hashed; roles and `active` change only
/// by root and never on one's own account.
#[utoipa::path(patch, path = "/people/{id}", tag = "federation", params(("id" = String, Path, description = "Federation id")),
    request_body(content = Object, example = json!({"profession": "teacher", "password": "a new passphrase"})),
    security(("basic" = [])), responses(
    (status = 200, description = "The updated record", body = Object),
    (status = 403, description = "Not allowed (someone else's record, or roles/active without being root, or one's own roles)"),
    (status = 404, description = "No such person"),
    (status = 422, description = "Invalid fields"),
))]
pub async fn person_patch(
    req: HttpRequest,
    caller: Caller,
    platform: web::Data<Platform>,
    fed: web::Data<Federation>,
    path: web::Path<String>,
    body: LaterJson,
) -> ApiResult<HttpResponse> {
    let id = person_id(&path)?;
    authorize(&fed, &caller, Resource::People, req.method(), Some(&id))?;
    let mut input = people::parse_input(body.read().await?, &id, &fed.policy)?;
    let hash = hash_if_any(input.password.take()).await?;
    let target = id.clone();
    let patched = platform.db.transaction(move |conn| people::patch(conn, &caller, &id, input, hash)).await?;
    if patched.credentials_changed {
        fed.auth.invalidate(&target);
    }
    Ok(json_body(StatusCode::OK, patched.doc))
}

/// Deletes a person, their book and documents (root only; audited).
#[utoipa::path(delete, path = "/people/{id}", tag = "federation", params(("id" = String, Path, description = "Federation id")),
    security(("basic" = [])), responses(
    (status = 204, description = "Deleted"),
    (status = 403, description = "Only root deletes people"),
    (status = 404, description = "No such person"),
))]
pub async fn person_delete(
    req: HttpRequest,
    caller: Caller,
    platform: web::Data<Platform>,
    fed: web::Data<Federation>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let id = person_id(&path)?;
    authorize(&fed, &caller, Resource::People, req.method(), Some(&id))?;
    if !caller.is_root() {
        return Err(ApiError::forbidden("only root deletes people").with_code("Forbidden"));
    }
    let target = id.clone();
    platform.db.transaction(move |conn| people::delete(conn, &caller, &id)).await?;
    fed.auth.invalidate(&target);
    Ok(HttpResponse::NoContent().finish())
}

/// Who read or changed this person's records, newest first (root).
#[utoipa::path(get, path = "/people/{id}/audit", tag = "federation", params(("id" = String, Path, description = "Federation id"), PageQuery),
    security(("basic" = [])), responses(
    (status = 200, description = "Audit entries", body = [audit::AuditEntry],
     example = json!([{"id": 7, "at": "2026-12-01T10:00:00Z", "actor": "ARGBUE111FAV", "action": "roles", "resource": "people", "person": "ESPGNU777ORG", "detail": {"from": ["end_user"], "to": ["end_user", "health_professional"]}}])),
    (status = 403, description = "Not root"),
))]
pub async fn person_audit(
    req: HttpRequest,
    caller: Caller,
    platform: web::Data<Platform>,
    fed: web::Data<Federation>,
    path: web::Path<String>,
    query: web::Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    let id = person_id(&path)?;
    authorize(&fed, &caller, Resource::Audit, req.method(), None)?;
    let (limit, offset) = page_of(&query);
    let entries = platform.db.run(move |conn| Ok(audit::for_person(conn, &id, limit, offset)?)).await?;
    Ok(HttpResponse::Ok().json(entries))
}

// ---------------------------------------------------------------------------------------------
// pages of life

/// A person's book: their pages of life, oldest first.
#[utoipa::path(get, path = "/pols/{person}", tag = "federation", params(("person" = String, Path), PageQuery),
    security(("basic" = [])), responses(
    (status = 200, description = "Pages", body = [Object], example = json!([{"id": "0b6d7a1e-6b0a-4c53-9a7c-1d2f3e4a5b6c", "book": "ESPGNU777ORG", "page_date": "2026-11-02T09:30:00Z", "page_type": "medical", "medical_context": "health_condition", "health_condition_code": "E11", "health_condition_text": "Type 2 diabetes", "summary": "Diagnosis", "info": "", "node": "HOSPITAL-1"}])),
    (status = 403, description = "Not allowed"), (status = 404, description = "No such person"),
))]
pub async fn pols_list(
    req: HttpRequest,
    caller: Caller,
    platform: web::Data<Platform>,
    fed: web::Data<Federation>,
    path: web::Path<String>,
    query: web::Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    let book = person_id(&path)?;
    authorize(&fed, &caller, Resource::Pols, req.method(), Some(&book))?;
    let (limit, offset) = page_of(&query);
    let sink = fed.audit.clone();
    let (docs, total) = platform
        .db
        .run(move |conn| {
            if !people::exists(conn, &book)? {
                return Err(ApiError::not_found(format!("no person {book}")));
            }
            let listed = pols::list(conn, &book, limit, offset)?;
            sink.send(AuditEvent::new(&caller.id, "read", "pols", Some(&book)));
            Ok(listed)
        })
        .await?;
    Ok(page_response(&req, &docs, total, limit, offset, false))
}

fn page_path(path: &(String, Uuid)) -> ApiResult<(String, Uuid)> {
    Ok((person_id(&path.0)?, path.1))
}

/// One page, only from its own book (a page of another book is 404).
#[utoipa::path(get, path = "/pols/{person}/{page}", tag = "federation", params(("person" = String, Path), ("page" = Uuid, Path)),
    security(("basic" = [])), responses((status = 200, body = Object), (status = 403), (status = 404, description = "No such page in this book")))]
pub async fn pol_get(
    req: HttpRequest,
    caller: Caller,
    platform: web::Data<Platform>,
    fed: web::Data<Federation>,
    path: web::Path<(String, Uuid)>,
) -> ApiResult<HttpResponse> {
    let (book, page) = page_path(&path)?;
    authorize(&fed, &caller, Resource::Pols, req.method(), Some(&book))?;
    let sink = fed.audit.clone();
    let doc = platform
        .db
        .run(move |conn| {
            let doc = pols::get(conn, &book, page)?;
            sink.send(
                AuditEvent::new(&caller.id, "read", "pols", Some(&book)).with_detail(serde_json::json!({"page": page})),
            );
            Ok(doc)
        })
        .await?;
    Ok(json_body(StatusCode::OK, doc))
}

/// Writes a new page into the person's book.
#[utoipa::path(post, path = "/pols/{person}/{page}", tag = "federation", params(("person" = String, Path), ("page" = Uuid, Path)),
    request_body(content = Object, example = json!({"page_date": "2026-11-02T09:30:00Z", "page_type": "medical", "medical_context": "health_condition", "health_condition_code": "E11", "health_condition_text": "Type 2 diabetes", "summary": "Diagnosis", "info": "", "node": "HOSPITAL-1"})),
    security(("basic" = [])), responses((status = 201, body = Object), (status = 403), (status = 404, description = "No such person"), (status = 409, description = "The page exists"), (status = 422)))]
pub async fn pol_post(
    req: HttpRequest,
    caller: Caller,
    platform: web::Data<Platform>,
    fed: web::Data<Federation>,
    path: web::Path<(String, Uuid)>,
    body: LaterJson,
) -> ApiResult<HttpResponse> {
    let (book, page) = page_path(&path)?;
    authorize(&fed, &caller, Resource::Pols, req.method(), Some(&book))?;
    let data = pols::parse_page(body.read().await?, &book, page)?;
    let sink = fed.audit.clone();
    let location = format!("/pols/{book}/{page}");
    let doc = platform
        .db
        .run(move |conn| {
            let doc = pols::create(conn, &book, page, data)?;
            sink.send(
                AuditEvent::new(&caller.id, "create", "pols", Some(&book))
                    .with_detail(serde_json::json!({"page": page})),
            );
            Ok(doc)
        })
        .await?;
    Ok(HttpResponse::Created().content_type("application/json").insert_header((header::LOCATION, location)).body(doc))
}

/// Shallow-merges the body into a page of the person's book.
#[utoipa::path(patch, path = "/pols/{person}/{page}", tag = "federation", params(("person" = String, Path), ("page" = Uuid, Path)),
    request_body(content = Object, example = json!({"summary": "Reviewed"})),
    security(("basic" = [])), responses((status = 200, body = Object), (status = 403), (status = 404), (status = 422)))]
pub async fn pol_patch(
    req: HttpRequest,
    caller: Caller,
    platform: web::Data<Platform>,
    fed: web::Data<Federation>,
    path: web::Path<(String, Uuid)>,
    body: LaterJson,
) -> ApiResult<HttpResponse> {
    let (book, page) = page_path(&path)?;
    authorize(&fed, &caller, Resource::Pols, req.method(), Some(&book))?;
    let data = pols::parse_page(body.read().await?, &book, page)?;
    let fields: Vec<String> = data.keys().cloned().collect();
    let sink = fed.audit.clone();
    let doc = platform
        .db
        .run(move |conn| {
            let doc = pols::patch(conn, &book, page, data)?;
            sink.send(
                AuditEvent::new(&caller.id, "update", "pols", Some(&book))
                    .with_detail(serde_json::json!({"page": page, "fields": fields})),
            );
            Ok(doc)
        })
        .await?;
    Ok(json_body(StatusCode::OK, doc))
}

/// Removes a page from the person's book.
#[utoipa::path(delete, path = "/pols/{person}/{page}", tag = "federation", params(("person" = String, Path), ("page" = Uuid, Path)),
    security(("basic" = [])), responses((status = 204), (status = 403), (status = 404)))]
pub async fn pol_delete(
    req: HttpRequest,
    caller: Caller,
    platform: web::Data<Platform>,
    fed: web::Data<Federation>,
    path: web::Path<(String, Uuid)>,
) -> ApiResult<HttpResponse> {
    let (book, page) = page_path(&path)?;
    authorize(&fed, &caller, Resource::Pols, req.method(), Some(&book))?;
    let sink = fed.audit.clone();
    platform
        .db
        .run(move |conn| {
            pols::delete(conn, &book, page)?;
            sink.send(
                AuditEvent::new(&caller.id, "delete", "pols", Some(&book))
                    .with_detail(serde_json::json!({"page": page})),
            );
            Ok(())
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

// ---------------------------------------------------------------------------------------------
// personal documents

/// A person's documents (metadata, without content).
#[utoipa::path(get, path = "/personal_docs/{person}", tag = "federation", params(("person" = String, Path), PageQuery),
    security(("basic" = [])), responses((status = 200, body = [Object], example = json!([{"id": "5f0c2b8e-3c1d-4e5f-8a9b-0c1d2e3f4a5b", "person": "ESPGNU777ORG", "page": null, "type": "lab_report", "extension": "pdf", "description": "Blood count", "hash": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "size": 4, "created": "2026-12-01T10:00:00Z"}])), (status = 403), (status = 404)))]
pub async fn docs_list(
    req: HttpRequest,
    caller: Caller,
    platform: web::Data<Platform>,
    fed: web::Data<Federation>,
    path: web::Path<String>,
    query: web::Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    let person = person_id(&path)?;
    authorize(&fed, &caller, Resource::PersonalDocs, req.method(), Some(&person))?;
    let (limit, offset) = page_of(&query);
    let sink = fed.audit.clone();
    let (docs, total) = platform
        .db
        .run(move |conn| {
            if !people::exists(conn, &person)? {
                return Err(ApiError::not_found(format!("no person {person}")));
            }
            let listed = docs::list(conn, &person, None, limit, offset)?;
            sink.send(AuditEvent::new(&caller.id, "read", "personal_docs", Some(&person)));
            Ok(listed)
        })
        .await?;
    Ok(page_response(&req, &docs, total, limit, offset, false))
}

async fn create_doc(
    caller: Caller,
    platform: &Platform,
    fed: &Federation,
    person: String,
    page: Option<Uuid>,
    body: Value,
) -> ApiResult<HttpResponse> {
    let max = fed.max_doc_bytes;
    let doc = web::block(move || docs::parse_doc(body, page, max)).await??;
    let sink = fed.audit.clone();
    let location_person = person.clone();
    let id = doc.id;
    let created = platform
        .db
        .run(move |conn| {
            let created = docs::create(conn, &person, doc)?;
            sink.send(
                AuditEvent::new(&caller.id, "create", "personal_docs", Some(&person))
                    .with_detail(serde_json::json!({"document": id})),
            );
            Ok(created)
        })
        .await?;
    Ok(HttpResponse::Created()
        .content_type("application/json")
        .insert_header((header::LOCATION, format!("/personal_docs/{location_person}/{id}")))
        .body(created))
}

/// Attaches a document to a person (or to a page, with `page` in the body). `content` is base64;
/// `hash` the hex SHA-256 of the decoded content, checked by the server.
#[utoipa::path(post, path = "/personal_docs/{person}", tag = "federation", params(("person" = String, Path)),
    request_body(content = Object, example = json!({"type": "lab_report", "extension": "pdf", "description": "Blood count", "content": "dGVzdA==", "hash": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"})),
    security(("basic" = [])), responses((status = 201, body = Object), (status = 403), (status = 404), (status = 413), (status = 422, description = "Missing fields, bad base64 or a hash that does not match")))]
pub async fn docs_post(
    req: HttpRequest,
    caller: Caller,
    platform: web::Data<Platform>,
    fed: web::Data<Federation>,
    path: web::Path<String>,
    body: LaterJson,
) -> ApiResult<HttpResponse> {
    let person = person_id(&path)?;
    authorize(&fed, &caller, Resource::PersonalDocs, req.method(), Some(&person))?;
    create_doc(caller, &platform, &fed, person, None, body.read().await?).await
}

/// A document with its content (when the id is a document of this person), or the documents of
/// a page of this person's book (when the id is such a page).
#[utoipa::path(get, path = "/personal_docs/{person}/{id}", tag = "federation", params(("person" = String, Path), ("id" = Uuid, Path, description = "A document id or a page id")),
    security(("basic" = [])), responses((status = 200, body = Object), (status = 403), (status = 404)))]
pub async fn doc_get(
    req: HttpRequest,
    caller: Caller,
    platform: web::Data<Platform>,
    fed: web::Data<Federation>,
    path: web::Path<(String, Uuid)>,
    query: web::Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    let (person, id) = page_path(&path)?;
    authorize(&fed, &caller, Resource::PersonalDocs, req.method(), Some(&person))?;
    let (limit, offset) = page_of(&query);
    let sink = fed.audit.clone();
    let found = platform
        .db
        .run(move |conn| {
            let found = if let Some(doc) = docs::get(conn, &person, id)? {
                Either::One(doc)
            } else if pols::exists(conn, &person, id)? {
                let (items, total) = docs::list(conn, &person, Some(id), limit, offset)?;
                Either::Page(items, total)
            } else {
                return Err(ApiError::not_found(format!("no document or page {id} of {person}")));
            };
            sink.send(
                AuditEvent::new(&caller.id, "read", "personal_docs", Some(&person))
                    .with_detail(serde_json::json!({"id": id})),
            );
            Ok(found)
        })
        .await?;
    Ok(match found {
        Either::One(doc) => json_body(StatusCode::OK, doc),
        Either::Page(items, total) => page_response(&req, &items, total, limit, offset, false),
    })
}

enum Either {
    One(String),
    Page(Vec<String>, i64),
}

/// Attaches a document to a page of the person's book.
#[utoipa::path(post, path = "/personal_docs/{person}/{page}", tag = "federation", params(("person" = String, Path), ("page" = Uuid, Path)),
    request_body(content = Object), security(("basic" = [])),
    responses((status = 201, body = Object), (status = 403), (status = 404, description = "No such page in this book"), (status = 422)))]
pub async fn doc_post(
    req: HttpRequest,
    caller: Caller,
    platform: web::Data<Platform>,
    fed: web::Data<Federation>,
    path: web::Path<(String, Uuid)>,
    body: LaterJson,
) -> ApiResult<HttpResponse> {
    let (person, page) = page_path(&path)?;
    authorize(&fed, &caller, Resource::PersonalDocs, req.method(), Some(&person))?;
    create_doc(caller, &platform, &fed, person, Some(page), body.read().await?).await
}

// ---------------------------------------------------------------------------------------------
// domiciliary units and institutions (the kind comes from the resource's app data)

fn place_scope(fed: &Federation, caller: &Caller, kind: Kind, method: &Method) -> ApiResult<()> {
    // These records belong to nobody: only global access counts.
    authorize(fed, caller, kind.resource(), method, None)
}

/// Lists domiciliary units (the same shape serves `/institutions`).
#[utoipa::path(get, path = "/domiciliary-units", tag = "federation", params(PageQuery), security(("basic" = [])),
    responses((status = 200, body = [Object], example = json!([{"id": "DU-ESP-0001", "address_street": "Calle Mayor", "address_street_number": 7, "address_city": "Las Palmas", "address_country": "ES"}])), (status = 403)))]
pub async fn places_list(
    req: HttpRequest,
    caller: Caller,
    platform: web::Data<Platform>,
    fed: web::Data<Federation>,
    kind: web::Data<Kind>,
    query: web::Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    let kind = **kind;
    place_scope(&fed, &caller, kind, req.method())?;
    let (limit, offset) = page_of(&query);
    let (docs, total) = platform.db.run(move |conn| places::list(conn, kind, limit, offset)).await?;
    Ok(page_response(&req, &docs, total, limit, offset, false))
}

/// Creates a domiciliary unit with the `id` in the body (or a fresh UUID).
#[utoipa::path(post, path = "/domiciliary-units", tag = "federation", request_body(content = Object, example = json!({"id": "DU-ESP-0001", "address_city": "Las Palmas"})),
    security(("basic" = [])), responses((status = 201, body = Object), (status = 403), (status = 409), (status = 422)))]
pub async fn places_post(
    req: HttpRequest,
    caller: Caller,
    platform: web::Data<Platform>,
    fed: web::Data<Federation>,
    kind: web::Data<Kind>,
    body: LaterJson,
) -> ApiResult<HttpResponse> {
    let kind = **kind;
    place_scope(&fed, &caller, kind, req.method())?;
    let (id, data) = places::parse(body.read().await?, None)?;
    place_create(&platform, kind, id, data).await
}

async fn place_create(
    platform: &Platform,
    kind: Kind,
    id: String,
    data: serde_json::Map<String, Value>,
) -> ApiResult<HttpResponse> {
    let location = format!("{}/{id}", kind.path());
    let doc = platform.db.run(move |conn| places::create(conn, kind, &id, data)).await?;
    Ok(HttpResponse::Created().content_type("application/json").insert_header((header::LOCATION, location)).body(doc))
}

/// One domiciliary unit (the same shape serves `/institutions/{id}`).
#[utoipa::path(get, path = "/domiciliary-units/{id}", tag = "federation", params(("id" = String, Path)), security(("basic" = [])),
    responses((status = 200, body = Object), (status = 403), (status = 404)))]
pub async fn place_get(
    req: HttpRequest,
    caller: Caller,
    platform: web::Data<Platform>,
    fed: web::Data<Federation>,
    kind: web::Data<Kind>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let kind = **kind;
    place_scope(&fed, &caller, kind, req.method())?;
    let id = places::check_id(&path).map_err(|_| ApiError::not_found("no such record"))?;
    let doc = platform.db.run(move |conn| places::get(conn, kind, &id)).await?;
    Ok(json_body(StatusCode::OK, doc))
}

/// Creates a domiciliary unit with the id in the URL.
#[utoipa::path(post, path = "/domiciliary-units/{id}", tag = "federation", params(("id" = String, Path)), request_body(content = Object),
    security(("basic" = [])), responses((status = 201, body = Object), (status = 403), (status = 409), (status = 422)))]
pub async fn place_post(
    req: HttpRequest,
    caller: Caller,
    platform: web::Data<Platform>,
    fed: web::Data<Federation>,
    kind: web::Data<Kind>,
    path: web::Path<String>,
    body: LaterJson,
) -> ApiResult<HttpResponse> {
    let kind = **kind;
    place_scope(&fed, &caller, kind, req.method())?;
    let url_id = places::check_id(&path)?;
    let (id, data) = places::parse(body.read().await?, Some(&url_id))?;
    place_create(&platform, kind, id, data).await
}

/// Shallow-merges the body into a domiciliary unit.
#[utoipa::path(patch, path = "/domiciliary-units/{id}", tag = "federation", params(("id" = String, Path)), request_body(content = Object),
    security(("basic" = [])), responses((status = 200, body = Object), (status = 403), (status = 404), (status = 422)))]
pub async fn place_patch(
    req: HttpRequest,
    caller: Caller,
    platform: web::Data<Platform>,
    fed: web::Data<Federation>,
    kind: web::Data<Kind>,
    path: web::Path<String>,
    body: LaterJson,
) -> ApiResult<HttpResponse> {
    let kind = **kind;
    place_scope(&fed, &caller, kind, req.method())?;
    let url_id = places::check_id(&path).map_err(|_| ApiError::not_found("no such record"))?;
    let (id, data) = places::parse(body.read().await?, Some(&url_id))?;
    let doc = platform.db.run(move |conn| places::patch(conn, kind, &id, data)).await?;
    Ok(json_body(StatusCode::OK, doc))
}

// ---------------------------------------------------------------------------------------------
// OPTIONS

/// `OPTIONS` on any route: the methods it accepts (no credentials needed; it reveals no data).
pub fn options_route(allow: &'static str) -> actix_web::Route {
    web::route()
        .method(Method::OPTIONS)
        .to(move || async move { HttpResponse::NoContent().insert_header((header::ALLOW, allow)).finish() })
}

/// The largest body a document upload may have (base64 plus JSON around it).
pub fn doc_json_limit(max_doc_bytes: usize) -> usize {
    max_doc_bytes / 3 * 4 + 64 * 1024
}
