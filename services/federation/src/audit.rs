//! The audit trail: who read or changed which person's records.
//!
//! Changes to roles, the active flag and deletions are written in the changing transaction
//! ([`record`]). Reads and ordinary changes go through [`AuditSink`]: a bounded queue drained by a
//! writer thread that inserts in batches, so the hot read path costs no extra round trip or commit.
//! The queue applies back-pressure when full (senders run on the blocking pool, never on an async
//! worker), so entries are not dropped while the process runs.

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

#[derive(Clone)]
pub struct AuditSink {
    sender: SyncSender<AuditEvent>,
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
        if self.sender.send(event).is_err() {
            log::error!("the audit writer has stopped; an audit entry could not be queued");
        }
    }
}

fn writer(pool: &DbPool, receiver: &Receiver<AuditEvent>) {
    while let Ok(first) = receiver.recv() {
        let mut batch = vec![first];
        let until = Instant::now() + GATHER;
        while batch.len() < BATCH {
            match receiver.recv_timeout(until.saturating_duration_since(Instant::now())) {
                Ok(event) => batch.push(event),
                Err(_) => break,
            }
        }
        let mut wait = Duration::from_millis(100);
        loop {
            match pool.get().map_err(|e| e.to_string()).and_then(|mut conn| insert_batch(&mut conn, &batch)) {
                Ok(()) => break,
                Err(err) => {
                    log::warn!("audit: {} entries not written yet ({err}); retrying in {wait:?}", batch.len());
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
            }
        }
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
