//! Health observations: pushed by servers, made by the poller, summarised for the status page.

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Int4, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use meridian_model::{Page, PageQuery};
use meridian_platform::ApiResult;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::schema::statuses;

/// A server counts as up while its latest success is this recent (and newer than its latest error).
pub const UP_WINDOW: Duration = Duration::minutes(5);

/// One observation of a server's health.
#[derive(Debug, Clone, Serialize, Queryable, QueryableByName, Selectable, ToSchema)]
#[diesel(table_name = statuses)]
#[schema(example = json!({"id": "4d0f6f5e-1b8e-4f43-9a55-5a9e1c3b7d21", "server_id": "8a0c3ad4-4d71-4c8e-9d1e-3f1b6a0b2c11", "created_at": "2026-12-01T10:00:00Z", "version": "2.14.1", "latency_ms": 42, "error": null, "extra": {}, "device_id": null}))]
pub struct Status {
    pub id: Uuid,
    pub server_id: Uuid,
    pub created_at: DateTime<Utc>,
    /// The version the server reported; `null` on an error.
    pub version: Option<String>,
    /// Round trip of the poll; `null` for a pushed status.
    pub latency_ms: Option<i32>,
    /// `null` on success; otherwise a short error class (`timeout`, `connect`, `no_version`, ...).
    pub error: Option<String>,
    /// What the server sent with a pushed status, or the poller's details.
    pub extra: serde_json::Value,
    /// The device that pushed it; `null` when polled.
    pub device_id: Option<Uuid>,
}

/// What to record.
#[derive(Debug, Clone)]
pub struct NewStatus {
    pub server_id: Uuid,
    pub version: Option<String>,
    pub latency_ms: Option<i32>,
    pub error: Option<String>,
    pub extra: serde_json::Value,
    pub device_id: Option<Uuid>,
}

pub fn insert(conn: &mut PgConnection, new: NewStatus) -> ApiResult<Status> {
    Ok(diesel::insert_into(statuses::table)
        .values((
            statuses::server_id.eq(new.server_id),
            statuses::version.eq(new.version),
            statuses::latency_ms.eq(new.latency_ms),
            statuses::error.eq(new.error),
            statuses::extra.eq(new.extra),
            statuses::device_id.eq(new.device_id),
        ))
        .returning(Status::as_returning())
        .get_result(conn)?)
}

pub fn insert_many(conn: &mut PgConnection, news: Vec<NewStatus>) -> ApiResult<usize> {
    let rows: Vec<_> = news
        .into_iter()
        .map(|new| {
            (
                statuses::server_id.eq(new.server_id),
                statuses::version.eq(new.version),
                statuses::latency_ms.eq(new.latency_ms),
                statuses::error.eq(new.error),
                statuses::extra.eq(new.extra),
                statuses::device_id.eq(new.device_id),
            )
        })
        .collect();
    if rows.is_empty() {
        return Ok(0);
    }
    Ok(diesel::insert_into(statuses::table).values(rows).execute(conn)?)
}

/// The newest status of every server that has one: one index probe per server (a `DISTINCT ON`
/// over the whole table reads every status).
pub fn latest(conn: &mut PgConnection) -> ApiResult<Vec<Status>> {
    Ok(diesel::sql_query(
        "SELECT l.id, l.server_id, l.created_at, l.version, l.latency_ms, l.error, l.extra, l.device_id
         FROM servers s
         CROSS JOIN LATERAL (
             SELECT * FROM statuses WHERE server_id = s.id ORDER BY created_at DESC LIMIT 1) l
         ORDER BY l.server_id",
    )
    .load(conn)?)
}

/// One server's history, newest first.
pub fn history(conn: &mut PgConnection, server_id: Uuid, query: PageQuery) -> ApiResult<Page<Status>> {
    let total: i64 = statuses::table.filter(statuses::server_id.eq(server_id)).count().get_result(conn)?;
    let items = statuses::table
        .filter(statuses::server_id.eq(server_id))
        .order(statuses::created_at.desc())
        .limit(query.limit())
        .offset(query.offset())
        .select(Status::as_select())
        .load(conn)?;
    Ok(Page::new(items, total, query))
}

/// Deletes statuses (and hourly counts) older than `retention`; returns how many statuses.
pub fn prune(conn: &mut PgConnection, retention: Duration) -> ApiResult<usize> {
    let cutoff = Utc::now() - retention;
    diesel::sql_query("DELETE FROM status_hourly WHERE hour < $1").bind::<Timestamptz, _>(cutoff).execute(conn)?;
    Ok(diesel::delete(statuses::table.filter(statuses::created_at.lt(cutoff))).execute(conn)?)
}

/// A server with what the status page and the gauges show about it.
#[derive(Debug, Clone, QueryableByName)]
pub struct HealthRow {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = Nullable<Text>)]
    pub name: Option<String>,
    #[diesel(sql_type = Text)]
    pub host: String,
    #[diesel(sql_type = Text)]
    pub kind: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub rank: Option<String>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    pub device_id: Option<Uuid>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub success_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Text>)]
    pub version: Option<String>,
    #[diesel(sql_type = Nullable<Int4>)]
    pub latency_ms: Option<i32>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub error_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Text>)]
    pub error: Option<String>,
    #[diesel(sql_type = BigInt)]
    pub ok_24h: i64,
    #[diesel(sql_type = BigInt)]
    pub total_24h: i64,
    #[diesel(sql_type = BigInt)]
    pub ok_7d: i64,
    #[diesel(sql_type = BigInt)]
    pub total_7d: i64,
}

impl HealthRow {
    /// Up: the latest success is newer than the latest error and younger than [`UP_WINDOW`].
    pub fn is_up(&self, now: DateTime<Utc>) -> bool {
        is_up(self.success_at, self.error_at, now)
    }

    pub fn server_rank(&self) -> Option<crate::model::Rank> {
        self.rank.as_deref().and_then(|r| r.parse().ok())
    }
}

/// The "up" rule on its own, so it can be tested without a database.
pub fn is_up(success_at: Option<DateTime<Utc>>, error_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    match success_at {
        None => false,
        Some(success) => now - success < UP_WINDOW && error_at.is_none_or(|error| success > error),
    }
}

/// Every server with its latest success, latest error and uptime over 24 hours and 7 days (from
/// the hourly counts a trigger keeps, so the windows are whole hours: the hour that contains the
/// window's start is left out).
pub fn health(conn: &mut PgConnection) -> ApiResult<Vec<HealthRow>> {
    Ok(diesel::sql_query(
        "SELECT s.id, s.name, s.host, s.kind, s.rank, s.device_id,
                ok.created_at AS success_at, ok.version, ok.latency_ms,
                bad.created_at AS error_at, bad.error,
                COALESCE(u.ok_24h, 0) AS ok_24h, COALESCE(u.total_24h, 0) AS total_24h,
                COALESCE(u.ok_7d, 0) AS ok_7d, COALESCE(u.total_7d, 0) AS total_7d
         FROM servers s
         LEFT JOIN LATERAL (
             SELECT created_at, version, latency_ms FROM statuses
             WHERE server_id = s.id AND error IS NULL ORDER BY created_at DESC LIMIT 1) ok ON true
         LEFT JOIN LATERAL (
             SELECT created_at, error FROM statuses
             WHERE server_id = s.id AND error IS NOT NULL ORDER BY created_at DESC LIMIT 1) bad ON true
         LEFT JOIN LATERAL (
             SELECT sum(ok) FILTER (WHERE hour > now() - interval '24 hours')::int8 AS ok_24h,
                    sum(total) FILTER (WHERE hour > now() - interval '24 hours')::int8 AS total_24h,
                    sum(ok)::int8 AS ok_7d,
                    sum(total)::int8 AS total_7d
             FROM status_hourly WHERE server_id = s.id AND hour > now() - interval '7 days') u ON true
         ORDER BY s.name NULLS LAST, s.host",
    )
    .load(conn)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn up_needs_a_recent_success_newer_than_the_latest_error() {
        let now = Utc::now();
        let ago = |mins| Some(now - Duration::minutes(mins));
        assert!(is_up(ago(1), None, now));
        assert!(is_up(ago(1), ago(2), now));
        assert!(!is_up(ago(2), ago(1), now), "an error after the success");
        assert!(!is_up(ago(6), None, now), "a never-failing server goes down when it stops reporting");
        assert!(!is_up(None, None, now));
        assert!(!is_up(None, ago(1), now));
    }
}
