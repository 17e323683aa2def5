//! Pages of life: each person has one book; a page is a JSONB document with a UUID id. Every
//! query names the book, so a page is only ever found in its own book.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Jsonb, Text, Uuid as SqlUuid};
use meridian_platform::{ApiError, ApiResult};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::people::Doc;

const RECORD: &str = "(data || jsonb_build_object('id', id, 'book', book))::text AS doc";

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Checks a page body: an object whose `id` and `book`, when present, agree with the URL.
pub fn parse_page(body: Value, book: &str, page: Uuid) -> ApiResult<Map<String, Value>> {
    let Value::Object(mut data) = body else {
        return Err(ApiError::invalid_field("body", "must be a JSON object"));
    };
    if let Some(given) = data.remove("id") {
        let same = given.as_str().and_then(|s| Uuid::parse_str(s).ok()) == Some(page);
        if !same {
            return Err(ApiError::invalid_field("id", format!("contradicts the page id in the URL ({page})")));
        }
    }
    if let Some(given) = data.remove("book") {
        let same = given.as_str().is_some_and(|s| s.trim().eq_ignore_ascii_case(book));
        if !same {
            return Err(ApiError::invalid_field("book", format!("contradicts the person in the URL ({book})")));
        }
    }
    if let Some(date) = data.get("page_date")
        && !(date.is_string() || date.is_null())
    {
        return Err(ApiError::invalid_field("page_date", "must be a string"));
    }
    Ok(data)
}

pub fn list(conn: &mut PgConnection, book: &str, limit: i64, offset: i64) -> ApiResult<(Vec<String>, i64)> {
    let docs = diesel::sql_query(format!(
        "SELECT {RECORD} FROM pols WHERE book = $1 ORDER BY created_at, id LIMIT $2 OFFSET $3"
    ))
    .bind::<Text, _>(book)
    .bind::<BigInt, _>(limit)
    .bind::<BigInt, _>(offset)
    .load::<Doc>(conn)?;
    let total = diesel::sql_query("SELECT count(*) AS n FROM pols WHERE book = $1")
        .bind::<Text, _>(book)
        .get_result::<Count>(conn)?
        .n;
    Ok((docs.into_iter().map(|d| d.doc).collect(), total))
}

pub fn get(conn: &mut PgConnection, book: &str, page: Uuid) -> ApiResult<String> {
    diesel::sql_query(format!("SELECT {RECORD} FROM pols WHERE id = $1 AND book = $2"))
        .bind::<SqlUuid, _>(page)
        .bind::<Text, _>(book)
        .get_result::<Doc>(conn)
        .optional()?
        .map(|d| d.doc)
        .ok_or_else(|| not_in_book(book, page))
}

pub fn exists(conn: &mut PgConnection, book: &str, page: Uuid) -> ApiResult<bool> {
    Ok(diesel::sql_query("SELECT count(*) AS n FROM pols WHERE id = $1 AND book = $2")
        .bind::<SqlUuid, _>(page)
        .bind::<Text, _>(book)
        .get_result::<Count>(conn)?
        .n
        > 0)
}

fn not_in_book(book: &str, page: Uuid) -> ApiError {
    ApiError::not_found(format!("no page {page} in the book of {book}"))
}

pub fn create(conn: &mut PgConnection, book: &str, page: Uuid, data: Map<String, Value>) -> ApiResult<String> {
    if !crate::people::exists(conn, book)? {
        return Err(ApiError::not_found(format!("no person {book}")));
    }
    diesel::sql_query(format!("INSERT INTO pols (id, book, data) VALUES ($1, $2, $3) RETURNING {RECORD}"))
        .bind::<SqlUuid, _>(page)
        .bind::<Text, _>(book)
        .bind::<Jsonb, _>(Value::Object(data))
        .get_result::<Doc>(conn)
        .map(|d| d.doc)
        .map_err(|e| match ApiError::from(e) {
            err if err.status == 409 => {
                ApiError::conflict(format!("page {page} already exists")).with_code("AlreadyExists")
            }
            err => err,
        })
}

pub fn patch(conn: &mut PgConnection, book: &str, page: Uuid, data: Map<String, Value>) -> ApiResult<String> {
    diesel::sql_query(format!(
        "UPDATE pols SET data = data || $3, updated_at = now() WHERE id = $1 AND book = $2 RETURNING {RECORD}"
    ))
    .bind::<SqlUuid, _>(page)
    .bind::<Text, _>(book)
    .bind::<Jsonb, _>(Value::Object(data))
    .get_result::<Doc>(conn)
    .optional()?
    .map(|d| d.doc)
    .ok_or_else(|| not_in_book(book, page))
}

pub fn delete(conn: &mut PgConnection, book: &str, page: Uuid) -> ApiResult<()> {
    let n = diesel::sql_query("DELETE FROM pols WHERE id = $1 AND book = $2")
        .bind::<SqlUuid, _>(page)
        .bind::<Text, _>(book)
        .execute(conn)?;
    if n == 0 { Err(not_in_book(book, page)) } else { Ok(()) }
}
