//! `federation import <DATABASE_URL>`: loads a Thalamus database (tables `people`, `pols`,
//! `personal_docs`, `dus`, `institutions`, each with an `id` and a JSONB `data` column) into this
//! service's schema. Idempotent: a second run inserts nothing and changes nothing. Rows that cannot
//! be read are refused and listed with the reason, never silently dropped.

use std::fmt;

use base64::Engine;
use diesel::prelude::*;
use diesel::sql_types::{Array, Binary, Bool, Jsonb, Nullable, Text, Uuid as SqlUuid};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::audit::{self, AuditEvent};
use crate::policy::Policy;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TableReport {
    pub read: usize,
    pub inserted: usize,
    pub updated: usize,
    pub unchanged: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub table: &'static str,
    pub id: String,
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct Report {
    pub tables: Vec<(&'static str, TableReport)>,
    pub refused: Vec<Refused>,
}

impl Report {
    pub fn table(&self, name: &str) -> TableReport {
        self.tables.iter().find(|(t, _)| *t == name).map(|(_, r)| r.clone()).unwrap_or_default()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (table, r) in &self.tables {
            writeln!(
                f,
                "{table:<14} read {:>7}  inserted {:>7}  updated {:>7}  unchanged {:>7}",
                r.read, r.inserted, r.updated, r.unchanged
            )?;
        }
        writeln!(f, "refused: {}", self.refused.len())?;
        for r in &self.refused {
            writeln!(f, "  {} {}: {}", r.table, r.id, r.reason)?;
        }
        Ok(())
    }
}

#[derive(QueryableByName)]
struct SourceRow {
    #[diesel(sql_type = Nullable<Text>)]
    id: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    data: Option<String>,
}

#[derive(QueryableByName)]
struct Upserted {
    #[diesel(sql_type = Bool)]
    inserted: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot connect: {0}")]
    Connect(#[from] diesel::ConnectionError),
    #[error("database: {0}")]
    Query(#[from] diesel::result::Error),
}

/// What one row became.
enum Outcome {
    Inserted,
    Updated,
    Unchanged,
}

fn read_table(source: &mut PgConnection, table: &str) -> Result<Vec<SourceRow>, diesel::result::Error> {
    diesel::sql_query(format!("SELECT id::text AS id, data::text AS data FROM {table} ORDER BY id")).load(source)
}

/// Reads every table of `source_url` and writes it into `target` (this service's schema).
pub fn import(source_url: &str, target: &mut PgConnection, policy: &Policy) -> Result<Report, ImportError> {
    let mut source = PgConnection::establish(source_url)?;
    let mut report = Report::default();
    // Order matters: pages refer to people, documents to both.
    for table in ["people", "pols", "personal_docs", "dus", "institutions"] {
        let rows = match read_table(&mut source, table) {
            Ok(rows) => rows,
            Err(err) => {
                report.refused.push(Refused { table, id: "*".into(), reason: format!("table not readable: {err}") });
                continue;
            }
        };
        let mut counts = TableReport { read: rows.len(), ..TableReport::default() };
        let mut changed_people = Vec::new();
        target.transaction::<_, diesel::result::Error, _>(|conn| {
            for row in rows {
                let id = row.id.clone().unwrap_or_else(|| "(null)".to_owned());
                let result = parse_row(&row).and_then(|(id, data)| {
                    // Each row in its own savepoint: one bad row does not undo the others.
                    conn.transaction(|conn| import_row(conn, table, &id, data, policy))
                        .map_err(|e| match e {
                            RowError::Refused(reason) => reason,
                            RowError::Db(err) => format!("refused by the database: {err}"),
                        })
                        .map(|outcome| (id, outcome))
                });
                match result {
                    Ok((id, Outcome::Inserted)) => {
                        counts.inserted += 1;
                        if table == "people" {
                            changed_people.push(id);
                        }
                    }
                    Ok((id, Outcome::Updated)) => {
                        counts.updated += 1;
                        if table == "people" {
                            changed_people.push(id);
                        }
                    }
                    Ok((_, Outcome::Unchanged)) => counts.unchanged += 1,
                    Err(reason) => report.refused.push(Refused { table, id, reason }),
                }
            }
            for person in &changed_people {
                crate::auth::notify_change(conn, person)?;
            }
            if counts.inserted + counts.updated > 0 {
                audit::record(
                    conn,
                    &AuditEvent::new("import", "import", table_resource(table), None).with_detail(serde_json::json!({
                        "inserted": counts.inserted, "updated": counts.updated, "people": changed_people,
                    })),
                )?;
            }
            Ok(())
        })?;
        report.tables.push((table, counts));
    }
    Ok(report)
}

fn table_resource(table: &str) -> &'static str {
    match table {
        "people" => "people",
        "pols" => "pols",
        "personal_docs" => "personal_docs",
        "dus" => "domiciliary_units",
        _ => "institutions",
    }
}

fn parse_row(row: &SourceRow) -> Result<(String, Map<String, Value>), String> {
    let id = row.id.as_deref().map(str::trim).filter(|s| !s.is_empty()).ok_or("the id is empty")?;
    let data = row.data.as_deref().ok_or("the data column is null")?;
    match serde_json::from_str::<Value>(data) {
        Ok(Value::Object(map)) => Ok((id.to_owned(), map)),
        Ok(_) => Err("the data is not a JSON object".to_owned()),
        Err(e) => Err(format!("the data is not JSON: {e}")),
    }
}

enum RowError {
    Refused(String),
    Db(diesel::result::Error),
}

impl From<diesel::result::Error> for RowError {
    fn from(e: diesel::result::Error) -> Self {
        RowError::Db(e)
    }
}

fn refuse<T>(reason: impl Into<String>) -> Result<T, RowError> {
    Err(RowError::Refused(reason.into()))
}

fn outcome(rows: Vec<Upserted>) -> Outcome {
    match rows.first() {
        None => Outcome::Unchanged,
        Some(Upserted { inserted: true }) => Outcome::Inserted,
        Some(_) => Outcome::Updated,
    }
}

fn import_row(
    conn: &mut PgConnection,
    table: &str,
    id: &str,
    mut data: Map<String, Value>,
    policy: &Policy,
) -> Result<Outcome, RowError> {
    if let Some(Value::String(inner)) = data.remove("id")
        && !inner.trim().eq_ignore_ascii_case(id)
    {
        return refuse(format!("data.id {inner:?} contradicts the row id"));
    }
    match table {
        "people" => import_person(conn, id, data, policy),
        "pols" => import_page(conn, id, data),
        "personal_docs" => import_doc(conn, id, data),
        _ => {
            let target = if table == "dus" { "domiciliary_units" } else { "institutions" };
            if id.len() > 128 || id.contains('/') {
                return refuse("the id is longer than 128 characters or contains '/'");
            }
            let rows = diesel::sql_query(format!(
                "INSERT INTO {target} (id, data) VALUES ($1, $2)
                 ON CONFLICT (id) DO UPDATE SET data = EXCLUDED.data, updated_at = now()
                 WHERE {target}.data IS DISTINCT FROM EXCLUDED.data
                 RETURNING (xmax = 0) AS inserted"
            ))
            .bind::<Text, _>(id)
            .bind::<Jsonb, _>(Value::Object(data))
            .load::<Upserted>(conn)?;
            Ok(outcome(rows))
        }
    }
}

fn import_person(
    conn: &mut PgConnection,
    raw_id: &str,
    mut data: Map<String, Value>,
    policy: &Policy,
) -> Result<Outcome, RowError> {
    let Ok(id) = crate::people::normalise_id(raw_id) else {
        return refuse("not a federation id (letters, digits, '_', '.', '-')");
    };
    let password_hash = match data.remove("password") {
        None | Some(Value::Null) => None,
        Some(Value::String(p)) if meridian_auth::password::is_hash(&p) => Some(p),
        Some(Value::String(_)) => return refuse("the password is not a bcrypt or argon2 hash"),
        Some(_) => return refuse("the password is not a string"),
    };
    let roles: Vec<String> = match data.remove("roles") {
        None | Some(Value::Null) => vec!["end_user".to_owned()],
        Some(Value::Array(items)) => {
            let mut roles = Vec::new();
            for item in items {
                match item.as_str() {
                    Some(r) if policy.is_role(r) => roles.push(r.to_owned()),
                    _ => return refuse(format!("unknown role {item}")),
                }
            }
            if roles.is_empty() { vec!["end_user".to_owned()] } else { roles }
        }
        Some(_) => return refuse("roles is not an array"),
    };
    let active = match data.remove("active") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => b,
        Some(_) => return refuse("active is not a boolean"),
    };
    if let Some(Value::String(dob)) = data.get("dob")
        && chrono::NaiveDate::parse_from_str(dob, "%Y-%m-%d").is_err()
    {
        return refuse(format!("dob {dob:?} is not YYYY-MM-DD"));
    }
    let rows = diesel::sql_query(
        "INSERT INTO people (id, password_hash, roles, active, data) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (id) DO UPDATE SET password_hash = EXCLUDED.password_hash, roles = EXCLUDED.roles,
            active = EXCLUDED.active, data = EXCLUDED.data, updated_at = now(),
            credential_version = people.credential_version + 1
         WHERE (people.password_hash, people.roles, people.active, people.data)
               IS DISTINCT FROM (EXCLUDED.password_hash, EXCLUDED.roles, EXCLUDED.active, EXCLUDED.data)
         RETURNING (xmax = 0) AS inserted",
    )
    .bind::<Text, _>(&id)
    .bind::<Nullable<Text>, _>(password_hash)
    .bind::<Array<Text>, _>(roles)
    .bind::<Bool, _>(active)
    .bind::<Jsonb, _>(Value::Object(data))
    .load::<Upserted>(conn)?;
    Ok(outcome(rows))
}

fn person_of(data: &mut Map<String, Value>, fields: &[&str]) -> Result<String, RowError> {
    for field in fields {
        if let Some(Value::String(p)) = data.remove(*field) {
            return crate::people::normalise_id(&p)
                .or_else(|_| refuse(format!("{field} {p:?} is not a federation id")));
        }
    }
    refuse(format!("no person ({})", fields.join(" or ")))
}

fn import_page(conn: &mut PgConnection, raw_id: &str, mut data: Map<String, Value>) -> Result<Outcome, RowError> {
    let Ok(page) = Uuid::parse_str(raw_id) else {
        return refuse("the page id is not a UUID");
    };
    let book = person_of(&mut data, &["book", "federation_account"])?;
    if !crate::people::exists(conn, &book).map_err(|e| RowError::Refused(e.detail))? {
        return refuse(format!("the book's person {book} is not in the federation"));
    }
    let rows = diesel::sql_query(
        "INSERT INTO pols (id, book, data) VALUES ($1, $2, $3)
         ON CONFLICT (id) DO UPDATE SET book = EXCLUDED.book, data = EXCLUDED.data, updated_at = now()
         WHERE (pols.book, pols.data) IS DISTINCT FROM (EXCLUDED.book, EXCLUDED.data)
         RETURNING (xmax = 0) AS inserted",
    )
    .bind::<SqlUuid, _>(page)
    .bind::<Text, _>(book)
    .bind::<Jsonb, _>(Value::Object(data))
    .load::<Upserted>(conn)?;
    Ok(outcome(rows))
}

fn take_string(data: &mut Map<String, Value>, fields: &[&str]) -> Option<String> {
    fields.iter().find_map(|f| match data.remove(*f) {
        Some(Value::String(s)) => Some(s),
        _ => None,
    })
}

fn import_doc(conn: &mut PgConnection, raw_id: &str, mut data: Map<String, Value>) -> Result<Outcome, RowError> {
    let Ok(id) = Uuid::parse_str(raw_id) else {
        return refuse("the document id is not a UUID");
    };
    let person = person_of(&mut data, &["person", "book", "federation_account"])?;
    let page = match take_string(&mut data, &["page", "pol"]) {
        None => None,
        Some(p) => Some(Uuid::parse_str(&p).or_else(|_| refuse(format!("page {p:?} is not a UUID")))?),
    };
    let doc_type = take_string(&mut data, &["type", "document_type"]).unwrap_or_else(|| "document".to_owned());
    let extension = take_string(&mut data, &["extension"]).unwrap_or_else(|| "bin".to_owned());
    let extension = extension.trim_start_matches('.').to_owned();
    let description = take_string(&mut data, &["description"]).unwrap_or_default();
    let Some(encoded) = take_string(&mut data, &["content", "document"]) else {
        return refuse("no content");
    };
    let compact: String = encoded.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let Ok(content) = base64::engine::general_purpose::STANDARD.decode(compact.as_bytes()) else {
        return refuse("the content is not base64");
    };
    let actual = hex::encode(Sha256::digest(&content));
    if let Some(claimed) = take_string(&mut data, &["hash", "content_hash"])
        && claimed.trim().to_ascii_lowercase() != actual
    {
        return refuse("the hash does not match the content");
    }
    let rows = diesel::sql_query(
        "INSERT INTO personal_docs (id, person, page, doc_type, extension, description, sha256, content, data)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (id) DO UPDATE SET person = EXCLUDED.person, page = EXCLUDED.page, doc_type = EXCLUDED.doc_type,
            extension = EXCLUDED.extension, description = EXCLUDED.description, sha256 = EXCLUDED.sha256,
            content = EXCLUDED.content, data = EXCLUDED.data
         WHERE (personal_docs.person, personal_docs.page, personal_docs.doc_type, personal_docs.extension,
                personal_docs.description, personal_docs.sha256, personal_docs.data)
               IS DISTINCT FROM (EXCLUDED.person, EXCLUDED.page, EXCLUDED.doc_type, EXCLUDED.extension,
                EXCLUDED.description, EXCLUDED.sha256, EXCLUDED.data)
         RETURNING (xmax = 0) AS inserted",
    )
    .bind::<SqlUuid, _>(id)
    .bind::<Text, _>(person)
    .bind::<Nullable<SqlUuid>, _>(page)
    .bind::<Text, _>(doc_type)
    .bind::<Text, _>(extension)
    .bind::<Text, _>(description)
    .bind::<Text, _>(actual)
    .bind::<Binary, _>(content)
    .bind::<Jsonb, _>(Value::Object(data))
    .load::<Upserted>(conn)?;
    Ok(outcome(rows))
}

/// `federation import <URL>`: prints the report; exits 1 when rows were refused.
pub fn run(platform: &meridian_platform::Platform, source: &str) -> std::process::ExitCode {
    let policy = match crate::Federation::policy_from(&platform.config) {
        Ok(p) => p,
        Err(err) => {
            eprintln!("federation: {err}");
            return std::process::ExitCode::from(2);
        }
    };
    let mut conn = match crate::seed::connect(platform) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let result = import(source, &mut conn, &policy);
    crate::seed::settle_pool(platform);
    match result {
        Ok(report) => {
            print!("{report}");
            if report.refused.is_empty() { std::process::ExitCode::SUCCESS } else { std::process::ExitCode::from(1) }
        }
        Err(err) => {
            eprintln!("federation: import failed: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}
