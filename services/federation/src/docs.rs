//! Personal documents: binary content (base64 in JSON) attached to a person or to one page of
//! their book, with a type, an extension, a description and a SHA-256 hash the server checks.

use base64::Engine;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Binary, Jsonb, Nullable, Text, Uuid as SqlUuid};
use meridian_platform::{ApiError, ApiResult};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::people::Doc;

const META: &str = "data || jsonb_build_object('id', id, 'person', person, 'page', page, 'type', doc_type,
    'extension', extension, 'description', description, 'hash', sha256, 'size', octet_length(content),
    'created', created_at)";

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(Debug)]
pub struct NewDoc {
    pub id: Uuid,
    pub page: Option<Uuid>,
    pub doc_type: String,
    pub extension: String,
    pub description: String,
    pub sha256: String,
    pub content: Vec<u8>,
    pub data: Map<String, Value>,
}

fn required_string(data: &mut Map<String, Value>, field: &str) -> ApiResult<String> {
    match data.remove(field) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s),
        _ => Err(ApiError::invalid_field(field, "is required (a non-empty string)")),
    }
}

/// Checks a document body. `url_page` is the page named in the URL, if any; a `page` in the body
/// must agree with it.
pub fn parse_doc(body: Value, url_page: Option<Uuid>, max_bytes: usize) -> ApiResult<NewDoc> {
    let Value::Object(mut data) = body else {
        return Err(ApiError::invalid_field("body", "must be a JSON object"));
    };
    let id = match data.remove("id") {
        None | Some(Value::Null) => Uuid::new_v4(),
        Some(v) => v
            .as_str()
            .and_then(|s| Uuid::parse_str(s).ok())
            .ok_or_else(|| ApiError::invalid_field("id", "must be a UUID"))?,
    };
    let body_page = match data.remove("page") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_str()
                .and_then(|s| Uuid::parse_str(s).ok())
                .ok_or_else(|| ApiError::invalid_field("page", "must be a page id (UUID)"))?,
        ),
    };
    let page = match (url_page, body_page) {
        (Some(u), Some(b)) if u != b => {
            return Err(ApiError::invalid_field("page", format!("contradicts the page in the URL ({u})")));
        }
        (u, b) => u.or(b),
    };
    data.remove("person");
    let doc_type = required_string(&mut data, "type")?;
    let extension = required_string(&mut data, "extension")?.trim_start_matches('.').to_owned();
    if extension.len() > 16 || !extension.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(ApiError::invalid_field("extension", "must be 1 to 16 letters or digits"));
    }
    let description = match data.remove("description") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s,
        Some(_) => return Err(ApiError::invalid_field("description", "must be a string")),
    };
    let encoded = required_string(&mut data, "content")?;
    let compact: String = encoded.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let content = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|_| ApiError::invalid_field("content", "must be base64 (RFC 4648, with padding)"))?;
    if content.len() > max_bytes {
        return Err(ApiError::payload_too_large(format!("documents are limited to {max_bytes} bytes")));
    }
    let claimed = required_string(&mut data, "hash")?.trim().to_ascii_lowercase();
    let actual = hex::encode(Sha256::digest(&content));
    if claimed != actual {
        return Err(ApiError::invalid_field("hash", "does not match the SHA-256 of the content"));
    }
    data.remove("size");
    data.remove("created");
    Ok(NewDoc { id, page, doc_type, extension, description, sha256: actual, content, data })
}

pub fn create(conn: &mut PgConnection, person: &str, doc: NewDoc) -> ApiResult<String> {
    if !crate::people::exists(conn, person)? {
        return Err(ApiError::not_found(format!("no person {person}")));
    }
    if let Some(page) = doc.page
        && !crate::pols::exists(conn, person, page)?
    {
        return Err(ApiError::not_found(format!("no page {page} in the book of {person}")));
    }
    let id = doc.id;
    diesel::sql_query(format!(
        "INSERT INTO personal_docs (id, person, page, doc_type, extension, description, sha256, content, data)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING ({META})::text AS doc"
    ))
    .bind::<SqlUuid, _>(doc.id)
    .bind::<Text, _>(person)
    .bind::<Nullable<SqlUuid>, _>(doc.page)
    .bind::<Text, _>(doc.doc_type)
    .bind::<Text, _>(doc.extension)
    .bind::<Text, _>(doc.description)
    .bind::<Text, _>(doc.sha256)
    .bind::<Binary, _>(doc.content)
    .bind::<Jsonb, _>(Value::Object(doc.data))
    .get_result::<Doc>(conn)
    .map(|d| d.doc)
    .map_err(|e| match ApiError::from(e) {
        err if err.status == 409 => {
            ApiError::conflict(format!("document {id} already exists")).with_code("AlreadyExists")
        }
        err => err,
    })
}

/// Metadata of `person`'s documents (of one page when `page` is given), oldest first.
pub fn list(
    conn: &mut PgConnection,
    person: &str,
    page: Option<Uuid>,
    limit: i64,
    offset: i64,
) -> ApiResult<(Vec<String>, i64)> {
    let docs = diesel::sql_query(format!(
        "SELECT ({META})::text AS doc FROM personal_docs
         WHERE person = $1 AND ($2::uuid IS NULL OR page = $2) ORDER BY created_at, id LIMIT $3 OFFSET $4"
    ))
    .bind::<Text, _>(person)
    .bind::<Nullable<SqlUuid>, _>(page)
    .bind::<BigInt, _>(limit)
    .bind::<BigInt, _>(offset)
    .load::<Doc>(conn)?;
    let total = diesel::sql_query(
        "SELECT count(*) AS n FROM personal_docs WHERE person = $1 AND ($2::uuid IS NULL OR page = $2)",
    )
    .bind::<Text, _>(person)
    .bind::<Nullable<SqlUuid>, _>(page)
    .get_result::<Count>(conn)?
    .n;
    Ok((docs.into_iter().map(|d| d.doc).collect(), total))
}

/// One document with its content (base64), if it is `person`'s.
pub fn get(conn: &mut PgConnection, person: &str, id: Uuid) -> ApiResult<Option<String>> {
    Ok(diesel::sql_query(format!(
        "SELECT ({META} || jsonb_build_object('content', translate(encode(content, 'base64'), E'\\n', '')))::text AS doc
         FROM personal_docs WHERE id = $1 AND person = $2"
    ))
    .bind::<SqlUuid, _>(id)
    .bind::<Text, _>(person)
    .get_result::<Doc>(conn)
    .optional()?
    .map(|d| d.doc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_verified() {
        let content = base64::engine::general_purpose::STANDARD.encode(b"%PDF-1.4 hello");
        let hash = hex::encode(Sha256::digest(b"%PDF-1.4 hello"));
        let ok = serde_json::json!({"type": "lab", "extension": "pdf", "content": content, "hash": hash, "x": 1});
        let doc = parse_doc(ok, None, 1024).unwrap();
        assert_eq!(doc.content, b"%PDF-1.4 hello");
        assert!(doc.data.contains_key("x"));
        let bad = serde_json::json!({"type": "lab", "extension": "pdf", "content": content, "hash": "00"});
        assert_eq!(parse_doc(bad, None, 1024).unwrap_err().status, 422);
        let garbage = serde_json::json!({"type": "lab", "extension": "pdf", "content": "***", "hash": hash});
        assert_eq!(parse_doc(garbage, None, 1024).unwrap_err().status, 422);
    }
}
