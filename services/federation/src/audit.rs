//! The audit trail: who read or changed which person's records.
//!
//! Changes to roles, the active flag and deletions are written in the changing transaction
//! ([`record`]). Reads and ordinary changes go through [`AuditSink`]: a bounded queue drained by a
//! writer thread that inserts in batches, so the hot read path costs no extra round trip or commit.
//! The queue applies back-pressure when full (senders run on the blocking pool, never on an async
//! worker), so entries are not dropped while the process runs, and a graceful stop waits for the
//! queue to be written ([`AuditSink::flush`]). A killed process loses what was still queued
//! (normally the last [`GATHER`] of reads).

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Jsonb, Nullable, Text, Timestamptz};
use meridian_platform::db::DbPool;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub actor: String,
    pub action: &'static str,
    pub resource: &'static str,
    pub person: Option<String>,
    pub detail: serde_json::Value,
}

impl AuditEvent {
    pub fn new(actor: &str, action: &'static str, resource: &'static str, person: Option<&str>) -> Self {
        AuditEvent {
            actor: actor.to_owned(),
            action,
            resource,
            person: person.map(ToOwned::to_owned),
            detail: serde_json::json!({}),
        }
    }

    pub fn with_detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = detail;
        self
    }
}

/// Writes one entry now, on `conn` (inside the caller's transaction).
pub fn record(conn: &mut PgConnection, event: &AuditEvent) -> QueryResult<()> {
    diesel::sql_query("INSERT INTO audit (actor, action, resource, person, detail) VALUES ($1, $2, $3, $4, $5)")
        .bind::<Text, _>(&event.actor)
        .bind::<Text, _>(event.action)
        .bind::<Text, _>(event.resource)
        .bind::<Nullable<Text>, _>(event.person.as_deref())
        .bind::<Jsonb, _>(&event.detail)
        .execute(conn)?;
    Ok(())
}

/// What the writer thread receives: entries, and requests to confirm that everything queued
/// before them is written.
enum Queued {
    Event(AuditEvent),
    Flush(SyncSender<()>),
}

#[derive(Clone)]
pub struct AuditSink {
    sender: SyncSender<Queued>,
}

const QUEUE: usize = 10_000;
const BATCH: usize = 500;
/// How long the writer gathers entries after the first of a batch. Without it, a writer that
/// keeps up writes a statement per handful of reads, and Postgres spends its time parsing and
/// planning inserts instead of answering reads.
const GATHER: Duration = Duration::from_millis(50);

impl AuditSink {
    /// Starts the writer thread on `pool`.
    pub fn start(pool: DbPool) -> AuditSink {
        let (sender, receiver) = sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("federation-audit".to_owned())
            .spawn(move || writer(&pool, &receiver))
            .expect("spawn the audit writer");
        AuditSink { sender }
    }

    /// Queues an entry; blocks while the queue is full (call from blocking code).
    pub fn send(&self, event: AuditEvent) {
        if self.sender.send(Queued::Event(event)).is_err() {
            log::error!("the audit writer has stopped; an audit entry could not be queued");
        }
    }

    /// Waits (at most `timeout`) until every entry queued so far is written: at shutdown, so that
    /// a graceful stop loses no audit entry. Returns whether it was.
    pub fn flush(&self, timeout: Duration) -> bool {
        let (done, written) = sync_channel(1);
        self.sender.send(Queued::Flush(done)).is_ok() && written.recv_timeout(timeout).is_ok()
    }
}

fn writer(pool: &DbPool, receiver: &Receiver<Queued>) {
    while let Ok(first) = receiver.recv() {
        let mut batch = Vec::new();
        let mut flushes = Vec::new();
        let until = Instant::now() + GATHER;
        let mut next = Some(first);
        while let Some(queued) = next.take() {
            match queued {
                Queued::Event(event) => batch.push(event),
                // Written with this batch; no point gathering longer.
                Queued::Flush(done) => {
                    flushes.push(done);
                    break;
                }
            }
            if batch.len() < BATCH {
                next = receiver.recv_timeout(until.saturating_duration_since(Instant::now())).ok();
            }
        }
        write_batch(pool, &batch);
        for done in flushes {
            let _ = done.send(());
        }
    }
}

/// Writes `batch`, retrying until the database takes it.
fn write_batch(pool: &DbPool, batch: &[AuditEvent]) {
    if batch.is_empty() {
        return;
    }
    let mut wait = Duration::from_millis(100);
    while let Err(err) = pool.get().map_err(|e| e.to_string()).and_then(|mut conn| insert_batch(&mut conn, batch)) {
        log::warn!("audit: {} entries not written yet ({err}); retrying in {wait:?}", batch.len());
        std::thread::sleep(wait);
        wait = (wait * 2).min(Duration::from_secs(5));
    }
}

fn insert_batch(conn: &mut PgConnection, batch: &[AuditEvent]) -> Result<(), String> {
    let rows: Vec<serde_json::Value> = batch
        .iter()
        .map(|e| {
            serde_json::json!({
                "actor": e.actor, "action": e.action, "resource": e.resource,
                "person": e.person, "detail": e.detail,
            })
        })
        .collect();
    diesel::sql_query(
        "INSERT INTO audit (actor, action, resource, person, detail)
         SELECT r->>'actor', r->>'action', r->>'resource', r->>'person', r->'detail'
         FROM jsonb_array_elements($1) AS r",
    )
    .bind::<Jsonb, _>(serde_json::Value::Array(rows))
    .execute(conn)
    .map(|_| ())
    .map_err(|e| e.to_string())
}

/// One audit entry as `GET /people/{id}/audit` shows it.
#[derive(Debug, Serialize, QueryableByName, ToSchema)]
pub struct AuditEntry {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Timestamptz)]
    pub at: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    pub actor: String,
    #[diesel(sql_type = Text)]
    pub action: String,
    #[diesel(sql_type = Text)]
    pub resource: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub person: Option<String>,
    #[diesel(sql_type = Jsonb)]
    pub detail: serde_json::Value,
}

/// Entries about `person` (including lists that returned them), newest first, and their count.
pub fn for_person(conn: &mut PgConnection, person: &str, limit: i64, offset: i64) -> QueryResult<Vec<AuditEntry>> {
    diesel::sql_query(
        "SELECT id, at, actor, action, resource, person, detail FROM audit
         WHERE person = $1 OR (detail -> 'ids') ? $1
         ORDER BY id DESC LIMIT $2 OFFSET $3",
    )
    .bind::<Text, _>(person)
    .bind::<BigInt, _>(limit)
    .bind::<BigInt, _>(offset)
    .load(conn)
}
