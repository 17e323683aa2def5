//! Servers: the domain functions behind `/servers`.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use meridian_platform::{ApiError, ApiResult, FieldErrors};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::model::{Kind, Rank, double_option, validate_host, validate_name};
use crate::schema::servers;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = servers)]
pub struct ServerRow {
    pub id: Uuid,
    pub name: Option<String>,
    pub host: String,
    pub kind: String,
    pub rank: Option<String>,
    pub listed: bool,
    pub device_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ServerRow {
    pub fn rank(&self) -> Option<Rank> {
        self.rank.as_deref().and_then(|r| r.parse().ok())
    }

    pub fn kind(&self) -> Kind {
        self.kind.parse().unwrap_or(Kind::Central)
    }
}

/// A server as its owner and administrators see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"id": "8a0c3ad4-4d71-4c8e-9d1e-3f1b6a0b2c11", "name": "Fiji Central", "host": "https://central.fiji.example.org", "kind": "central", "rank": "production", "listed": true, "device_id": "0e5b1a4e-8f0a-4b39-a5c4-2d5c1e9f7a10", "created_at": "2026-12-01T10:00:00Z", "updated_at": "2026-12-01T10:00:00Z"}))]
pub struct Server {
    pub id: Uuid,
    pub name: Option<String>,
    pub host: String,
    pub kind: Kind,
    pub rank: Option<Rank>,
    pub listed: bool,
    /// The device that reports this server's status; `null` when the service polls it.
    pub device_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<ServerRow> for Server {
    fn from(row: ServerRow) -> Self {
        Server {
            rank: row.rank(),
            kind: row.kind(),
            id: row.id,
            name: row.name,
            host: row.host,
            listed: row.listed,
            device_id: row.device_id,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// One entry of the public list, exactly the fields the mobile app reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(example = json!({"id": "8a0c3ad4-4d71-4c8e-9d1e-3f1b6a0b2c11", "name": "Fiji Central", "host": "https://central.fiji.example.org", "rank": "production"}))]
pub struct PublicServer {
    pub id: Uuid,
    pub name: String,
    pub host: String,
    pub rank: Option<Rank>,
}

/// `POST /servers`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Fiji Central", "host": "https://central.fiji.example.org", "kind": "central", "rank": "live"}))]
pub struct NewServer {
    pub name: Option<String>,
    pub host: String,
    pub kind: Kind,
    /// `production`, `clone`, `demo`, `test` or `dev` (aliases `live`, `prod`, `staging`).
    #[schema(value_type = Option<String>)]
    pub rank: Option<Rank>,
    /// Whether the mobile app lists it (default true).
    pub listed: Option<bool>,
    /// Administrators only: the owning device; `null` for a server the service polls. Absent: the
    /// calling device owns the server.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<Uuid>)]
    pub device_id: Option<Option<Uuid>>,
}

/// `PATCH /servers`: `id` plus the fields to change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"id": "8a0c3ad4-4d71-4c8e-9d1e-3f1b6a0b2c11", "rank": "clone"}))]
pub struct ServerChange {
    pub id: Uuid,
    pub name: Option<String>,
    pub host: Option<String>,
    pub kind: Option<Kind>,
    #[schema(value_type = Option<String>)]
    pub rank: Option<Rank>,
    pub listed: Option<bool>,
    /// Administrators only: another owning device, or `null` to have the service poll it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<Uuid>)]
    pub device_id: Option<Option<Uuid>>,
}

impl ServerChange {
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.host.is_none()
            && self.kind.is_none()
            && self.rank.is_none()
            && self.listed.is_none()
            && self.device_id.is_none()
    }
}

/// `DELETE /servers`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerId {
    pub id: Uuid,
}

// diesel's changeset: outer None leaves the column alone, Some(None) sets it to NULL.
#[allow(clippy::option_option)]
#[derive(AsChangeset, Default)]
#[diesel(table_name = servers)]
struct Changes {
    name: Option<String>,
    host: Option<String>,
    kind: Option<String>,
    rank: Option<String>,
    listed: Option<bool>,
    device_id: Option<Option<Uuid>>,
    updated_at: Option<DateTime<Utc>>,
}

fn check(errors: &mut FieldErrors, field: &str, result: Result<String, String>) -> Option<String> {
    match result {
        Ok(value) => Some(value),
        Err(message) => {
            errors.entry(field.to_owned()).or_default().push(message);
            None
        }
    }
}

fn host_conflict() -> ApiError {
    ApiError::conflict("a server with this host already exists").with_code("DuplicateHost")
}

fn map_unique(err: diesel::result::Error) -> ApiError {
    match err {
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _) => host_conflict(),
        other => other.into(),
    }
}

/// Creates a server owned by `owner` (or by nobody: then it is polled).
pub fn create(conn: &mut PgConnection, input: NewServer, owner: Option<Uuid>) -> ApiResult<Server> {
    let mut errors = FieldErrors::new();
    let name = input.name.as_deref().and_then(|n| check(&mut errors, "name", validate_name(n)));
    let host = check(&mut errors, "host", validate_host(&input.host));
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let row: ServerRow = diesel::insert_into(servers::table)
        .values((
            servers::name.eq(name),
            servers::host.eq(host.unwrap_or_default()),
            servers::kind.eq(input.kind.as_str()),
            servers::rank.eq(input.rank.map(Rank::as_str)),
            servers::listed.eq(input.listed.unwrap_or(true)),
            servers::device_id.eq(owner),
        ))
        .returning(ServerRow::as_returning())
        .get_result(conn)
        .map_err(map_unique)?;
    log::info!("server {} ({}) created", row.id, row.host);
    Ok(row.into())
}

pub fn find(conn: &mut PgConnection, id: Uuid) -> ApiResult<ServerRow> {
    servers::table
        .find(id)
        .select(ServerRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| ApiError::not_found(format!("no server {id}")))
}

/// Applies a change already authorised by the caller.
pub fn update(conn: &mut PgConnection, change: ServerChange) -> ApiResult<Server> {
    if change.is_empty() {
        return Err(ApiError::invalid_field("id", "the change is empty: give at least one field besides id"));
    }
    let mut errors = FieldErrors::new();
    let name = change.name.as_deref().and_then(|n| check(&mut errors, "name", validate_name(n)));
    let host = change.host.as_deref().and_then(|h| check(&mut errors, "host", validate_host(h)));
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let changes = Changes {
        name,
        host,
        kind: change.kind.map(|k| k.as_str().to_owned()),
        rank: change.rank.map(|r| r.as_str().to_owned()),
        listed: change.listed,
        device_id: change.device_id,
        updated_at: Some(Utc::now()),
    };
    let row: ServerRow = diesel::update(servers::table.find(change.id))
        .set(changes)
        .returning(ServerRow::as_returning())
        .get_result(conn)
        .optional()
        .map_err(map_unique)?
        .ok_or_else(|| ApiError::not_found(format!("no server {}", change.id)))?;
    Ok(row.into())
}

pub fn delete(conn: &mut PgConnection, id: Uuid) -> ApiResult<Server> {
    let row: ServerRow = diesel::delete(servers::table.find(id))
        .returning(ServerRow::as_returning())
        .get_result(conn)
        .optional()?
        .ok_or_else(|| ApiError::not_found(format!("no server {id}")))?;
    log::info!("server {} ({}) deleted", row.id, row.host);
    Ok(row.into())
}

/// Every server, for the status page and the poller.
pub fn all(conn: &mut PgConnection) -> ApiResult<Vec<ServerRow>> {
    Ok(servers::table.select(ServerRow::as_select()).order(servers::host).load(conn)?)
}

/// The servers nobody reports for: the poller's work.
pub fn unowned(conn: &mut PgConnection) -> ApiResult<Vec<ServerRow>> {
    Ok(servers::table
        .filter(servers::device_id.is_null())
        .select(ServerRow::as_select())
        .order(servers::host)
        .load(conn)?)
}

/// The public list: listed central servers with a name, by rank (unranked last) then name.
pub fn public_list(conn: &mut PgConnection) -> ApiResult<Vec<PublicServer>> {
    let rows: Vec<ServerRow> = servers::table
        .filter(servers::listed.eq(true))
        .filter(servers::kind.eq("central"))
        .filter(servers::name.is_not_null())
        .select(ServerRow::as_select())
        .load(conn)?;
    let mut list: Vec<PublicServer> = rows
        .into_iter()
        .map(|row| PublicServer {
            rank: row.rank(),
            id: row.id,
            name: row.name.unwrap_or_default(),
            host: row.host.trim_end_matches('/').to_owned(),
        })
        .collect();
    list.sort_by(|a, b| (a.rank.is_none(), a.rank, &a.name, a.id).cmp(&(b.rank.is_none(), b.rank, &b.name, b.id)));
    Ok(list)
}
