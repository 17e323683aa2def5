//! Broadcasts and their deliveries: the durable queue.
//!
//! Queuing a broadcast writes the broadcast and one `deliveries` row per active registration in
//! one transaction. The worker (`worker.rs`) claims one row at a time with `FOR UPDATE SKIP
//! LOCKED`, sends it, and records the outcome in the transaction that holds the claim.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Int4, Int8, Text, Uuid as SqlUuid};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::schema::{broadcasts, deliveries};

pub const MAX_TITLE_CHARS: usize = 200;
pub const MAX_CONTENTS_CHARS: usize = 100_000;

/// Checks a title and contents; the message is the `InvalidEmailMessage` detail.
pub fn validate_message(title: &str, contents: &str) -> Result<(), String> {
    let title_chars = title.chars().count();
    if title_chars == 0 {
        return Err("the title is empty".into());
    }
    if title_chars > MAX_TITLE_CHARS {
        return Err(format!("the title is longer than {MAX_TITLE_CHARS} characters"));
    }
    if title.chars().any(char::is_control) {
        return Err("the title must be one line without control characters".into());
    }
    let contents_chars = contents.chars().count();
    if contents.trim().is_empty() {
        return Err("the contents are empty".into());
    }
    if contents_chars > MAX_CONTENTS_CHARS {
        return Err(format!("the contents are longer than {MAX_CONTENTS_CHARS} characters"));
    }
    if contents.chars().any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t') {
        return Err("the contents contain control characters".into());
    }
    Ok(())
}

/// Records a broadcast and a queued delivery for every active registration, in the caller's
/// transaction. Returns the broadcast id and the number of recipients.
pub fn enqueue(
    conn: &mut PgConnection,
    title: &str,
    contents: &str,
    sent_by: &str,
    client_ip: Option<&str>,
) -> QueryResult<(Uuid, i64)> {
    let id = Uuid::new_v4();
    diesel::insert_into(broadcasts::table)
        .values((
            broadcasts::id.eq(id),
            broadcasts::title.eq(title),
            broadcasts::contents.eq(contents),
            broadcasts::sent_by.eq(sent_by),
            broadcasts::client_ip.eq(client_ip),
            broadcasts::recipients.eq(0),
        ))
        .execute(conn)?;
    let recipients = diesel::sql_query(
        "INSERT INTO deliveries (broadcast_id, registration_id, email) \
         SELECT $1, id, email FROM registrations WHERE active ORDER BY created_at, id",
    )
    .bind::<SqlUuid, _>(id)
    .execute(conn)?;
    diesel::update(broadcasts::table.find(id)).set(broadcasts::recipients.eq(recipients as i32)).execute(conn)?;
    Ok((id, recipients as i64))
}

/// A broadcast and where its deliveries stand.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BroadcastStatus {
    pub id: Uuid,
    pub title: String,
    pub sent_by: String,
    pub created_at: DateTime<Utc>,
    pub recipients: i64,
    /// Not delivered yet (including those waiting to retry).
    pub queued: i64,
    pub sent: i64,
    /// Refused permanently, or temporarily too many times.
    pub failed: i64,
    /// Not sent because the recipient opted out after the broadcast was queued.
    pub skipped: i64,
}

#[derive(QueryableByName)]
struct StatusRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = Text)]
    title: String,
    #[diesel(sql_type = Text)]
    sent_by: String,
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    created_at: DateTime<Utc>,
    #[diesel(sql_type = Int4)]
    recipients: i32,
    #[diesel(sql_type = BigInt)]
    queued: i64,
    #[diesel(sql_type = BigInt)]
    sent: i64,
    #[diesel(sql_type = BigInt)]
    failed: i64,
    #[diesel(sql_type = BigInt)]
    skipped: i64,
}

impl From<StatusRow> for BroadcastStatus {
    fn from(r: StatusRow) -> Self {
        BroadcastStatus {
            id: r.id,
            title: r.title,
            sent_by: r.sent_by,
            created_at: r.created_at,
            recipients: i64::from(r.recipients),
            queued: r.queued,
            sent: r.sent,
            failed: r.failed,
            skipped: r.skipped,
        }
    }
}

const STATUS_SELECT: &str = "SELECT b.id, b.title, b.sent_by, b.created_at, b.recipients, \
    count(*) FILTER (WHERE d.state = 'queued') AS queued, \
    count(*) FILTER (WHERE d.state = 'sent') AS sent, \
    count(*) FILTER (WHERE d.state = 'failed') AS failed, \
    count(*) FILTER (WHERE d.state = 'skipped') AS skipped \
    FROM broadcasts b LEFT JOIN deliveries d ON d.broadcast_id = b.id";

pub fn status(conn: &mut PgConnection, id: Uuid) -> QueryResult<BroadcastStatus> {
    diesel::sql_query(format!("{STATUS_SELECT} WHERE b.id = $1 GROUP BY b.id"))
        .bind::<SqlUuid, _>(id)
        .get_result::<StatusRow>(conn)
        .map(Into::into)
}

/// Newest first.
pub fn list(conn: &mut PgConnection, limit: i64, offset: i64) -> QueryResult<(Vec<BroadcastStatus>, i64)> {
    let total = broadcasts::table.count().get_result(conn)?;
    let rows = diesel::sql_query(format!(
        "{STATUS_SELECT} WHERE b.id IN (SELECT id FROM broadcasts ORDER BY created_at DESC, id LIMIT $1 OFFSET $2) \
         GROUP BY b.id ORDER BY b.created_at DESC, b.id"
    ))
    .bind::<BigInt, _>(limit)
    .bind::<BigInt, _>(offset)
    .load::<StatusRow>(conn)?;
    Ok((rows.into_iter().map(Into::into).collect(), total))
}

/// A delivery claimed by this transaction.
#[derive(Debug, Clone, QueryableByName)]
pub struct Claimed {
    #[diesel(sql_type = Int8)]
    pub id: i64,
    #[diesel(sql_type = SqlUuid)]
    pub broadcast_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    pub registration_id: Uuid,
    #[diesel(sql_type = Text)]
    pub email: String,
    #[diesel(sql_type = Int4)]
    pub attempts: i32,
    #[diesel(sql_type = Text)]
    pub title: String,
    #[diesel(sql_type = Text)]
    pub contents: String,
    /// Whether the recipient still wants mail.
    #[diesel(sql_type = Bool)]
    pub active: bool,
}

/// Claims the next due delivery: the row stays locked until the caller's transaction ends, and
/// every other worker skips it meanwhile. Must run inside a transaction.
pub fn claim_next(conn: &mut PgConnection) -> QueryResult<Option<Claimed>> {
    // migrations/registration/2026-12-01-000002_claim_function: the join of deliveries, broadcasts
    // and registrations, due rows oldest first, LIMIT 1 FOR UPDATE OF deliveries SKIP LOCKED.
    diesel::sql_query("SELECT * FROM claim_next_delivery()").get_result(conn).optional()
}

fn truncate(message: &str) -> String {
    message.chars().take(1000).collect()
}

/// Marks a claimed delivery finished (`sent`, `failed` or `skipped`) after `attempts` attempts.
pub fn finish(conn: &mut PgConnection, id: i64, state: &str, attempts: i32, error: Option<&str>) -> QueryResult<()> {
    diesel::update(deliveries::table.find(id))
        .set((
            deliveries::state.eq(state),
            deliveries::finished_at.eq(Some(Utc::now())),
            deliveries::last_error.eq(error.map(truncate)),
            deliveries::attempts.eq(attempts),
        ))
        .execute(conn)?;
    Ok(())
}

/// Marks a claimed delivery `sent` after `attempts` attempts, or puts it back (`queued`) with
/// `attempts` attempts, due at once; the last error is left as it was.
pub fn set_state(conn: &mut PgConnection, id: i64, sent: bool, attempts: i32) -> QueryResult<()> {
    diesel::update(deliveries::table.find(id))
        .set((
            deliveries::state.eq(if sent { "sent" } else { "queued" }),
            deliveries::finished_at.eq(sent.then(Utc::now)),
            deliveries::attempts.eq(attempts),
        ))
        .execute(conn)?;
    Ok(())
}

/// Puts a claimed delivery back in the queue, due after `delay`, having had `attempts` attempts.
pub fn requeue(
    conn: &mut PgConnection,
    id: i64,
    attempts: i32,
    delay: std::time::Duration,
    error: Option<&str>,
) -> QueryResult<()> {
    let at = Utc::now() + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::hours(1));
    diesel::update(deliveries::table.find(id))
        .set((
            deliveries::state.eq("queued"),
            deliveries::finished_at.eq(None::<chrono::DateTime<Utc>>),
            deliveries::next_attempt_at.eq(at),
            deliveries::last_error.eq(error.map(truncate)),
            deliveries::attempts.eq(attempts),
        ))
        .execute(conn)?;
    Ok(())
}

/// Deliveries not finished yet, over every broadcast.
pub fn pending(conn: &mut PgConnection) -> QueryResult<i64> {
    deliveries::table.filter(deliveries::state.eq("queued")).count().get_result(conn)
}
