//! Domiciliary units and institutions: JSONB documents keyed by a text id.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Jsonb, Text};
use meridian_platform::{ApiError, ApiResult};
use serde_json::{Map, Value};

use crate::people::Doc;
use crate::policy::Resource;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    DomiciliaryUnits,
    Institutions,
}

impl Kind {
    pub fn table(self) -> &'static str {
        match self {
            Kind::DomiciliaryUnits => "domiciliary_units",
            Kind::Institutions => "institutions",
        }
    }

    pub fn resource(self) -> Resource {
        match self {
            Kind::DomiciliaryUnits => Resource::DomiciliaryUnits,
            Kind::Institutions => Resource::Institutions,
        }
    }

    pub fn path(self) -> &'static str {
        match self {
            Kind::DomiciliaryUnits => "/domiciliary-units",
            Kind::Institutions => "/institutions",
        }
    }
}

const RECORD: &str = "(data || jsonb_build_object('id', id))::text AS doc";

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

pub fn check_id(raw: &str) -> ApiResult<String> {
    let id = raw.trim();
    if id.is_empty() || id.len() > 128 || id.chars().any(|c| c.is_control() || c == '/') {
        return Err(ApiError::invalid_field("id", "must be 1 to 128 characters without '/'"));
    }
    Ok(id.to_owned())
}

/// Checks a body; returns the id (from the URL, the body, or a fresh UUID) and the document.
pub fn parse(body: Value, url_id: Option<&str>) -> ApiResult<(String, Map<String, Value>)> {
    let Value::Object(mut data) = body else {
        return Err(ApiError::invalid_field("body", "must be a JSON object"));
    };
    let body_id = match data.remove("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(check_id(&s)?),
        Some(_) => return Err(ApiError::invalid_field("id", "must be a string")),
    };
    let id = match (url_id, body_id) {
        (Some(u), Some(b)) if u != b => {
            return Err(ApiError::invalid_field("id", format!("contradicts the id in the URL ({u})")));
        }
        (Some(u), _) => u.to_owned(),
        (None, Some(b)) => b,
        (None, None) => uuid::Uuid::new_v4().to_string(),
    };
    Ok((id, data))
}

pub fn list(conn: &mut PgConnection, kind: Kind, limit: i64, offset: i64) -> ApiResult<(Vec<String>, i64)> {
    let table = kind.table();
    let docs = diesel::sql_query(format!("SELECT {RECORD} FROM {table} ORDER BY id LIMIT $1 OFFSET $2"))
        .bind::<BigInt, _>(limit)
        .bind::<BigInt, _>(offset)
        .load::<Doc>(conn)?;
    let total = diesel::sql_query(format!("SELECT count(*) AS n FROM {table}")).get_result::<Count>(conn)?.n;
    Ok((docs.into_iter().map(|d| d.doc).collect(), total))
}

pub fn get(conn: &mut PgConnection, kind: Kind, id: &str) -> ApiResult<String> {
    diesel::sql_query(format!("SELECT {RECORD} FROM {} WHERE id = $1", kind.table()))
        .bind::<Text, _>(id)
        .get_result::<Doc>(conn)
        .optional()?
        .map(|d| d.doc)
        .ok_or_else(|| ApiError::not_found(format!("no {} {id}", kind.table())))
}

pub fn create(conn: &mut PgConnection, kind: Kind, id: &str, data: Map<String, Value>) -> ApiResult<String> {
    diesel::sql_query(format!("INSERT INTO {} (id, data) VALUES ($1, $2) RETURNING {RECORD}", kind.table()))
        .bind::<Text, _>(id)
        .bind::<Jsonb, _>(Value::Object(data))
        .get_result::<Doc>(conn)
        .map(|d| d.doc)
        .map_err(|e| match ApiError::from(e) {
            err if err.status == 409 => ApiError::conflict(format!("{id} already exists")).with_code("AlreadyExists"),
            err => err,
        })
}

pub fn patch(conn: &mut PgConnection, kind: Kind, id: &str, data: Map<String, Value>) -> ApiResult<String> {
    diesel::sql_query(format!(
        "UPDATE {} SET data = data || $2, updated_at = now() WHERE id = $1 RETURNING {RECORD}",
        kind.table()
    ))
    .bind::<Text, _>(id)
    .bind::<Jsonb, _>(Value::Object(data))
    .get_result::<Doc>(conn)
    .optional()?
    .map(|d| d.doc)
    .ok_or_else(|| ApiError::not_found(format!("no {} {id}", kind.table())))
}
