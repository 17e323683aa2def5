//! The binary's operator subcommands, run as a process against a test database.

use std::process::Command;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use meridian_platform::testing::{TestDb, base_url, with_database};

fn federation(db: &TestDb, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_federation"))
        .args(args)
        .env("DATABASE_URL", &db.url)
        .env("LOG_LEVEL", "warn")
        .output()
        .expect("run the federation binary")
}

#[core::prelude::v1::test]
fn seed_demo_prints_the_credentials_and_is_idempotent() {
    let db = TestDb::new(&federation::SERVICE);
    let first = federation(&db, &["seed-demo"]);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let out = String::from_utf8_lossy(&first.stdout);
    assert!(out.contains("(5 rows added)") && out.contains("ARGBUE111FAV / freedom"), "{out}");
    let second = federation(&db, &["seed-demo"]);
    assert!(String::from_utf8_lossy(&second.stdout).contains("(0 rows added)"));
}

#[core::prelude::v1::test]
fn import_reports_counts_and_refused_rows_with_a_failing_status() {
    let db = TestDb::new(&federation::SERVICE);
    let name = format!("thalamus_cli_{}", uuid::Uuid::new_v4().simple());
    let mut admin = PgConnection::establish(&base_url()).unwrap();
    admin.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
    let source = with_database(&base_url(), &name);
    let hash = bcrypt::hash("pw", 4).unwrap();
    PgConnection::establish(&source)
        .unwrap()
        .batch_execute(&format!(
            "CREATE TABLE people (id varchar PRIMARY KEY, data jsonb);
             CREATE TABLE pols (id varchar PRIMARY KEY, data jsonb);
             CREATE TABLE personal_docs (id varchar PRIMARY KEY, data jsonb);
             CREATE TABLE dus (id varchar PRIMARY KEY, data jsonb);
             CREATE TABLE institutions (id varchar PRIMARY KEY, data jsonb);
             INSERT INTO people VALUES ('CLIGOOD00001', '{{\"name\": \"Good\", \"password\": \"{hash}\"}}'),
                                       ('CLIBAD000001', '\"just a string\"');"
        ))
        .unwrap();
    let run = federation(&db, &["import", &source]);
    let out = String::from_utf8_lossy(&run.stdout).into_owned();
    assert_eq!(run.status.code(), Some(1), "refused rows make the exit status 1: {out}");
    assert!(out.contains("people") && out.contains("inserted       1"), "{out}");
    assert!(out.contains("CLIBAD000001: the data is not a JSON object"), "{out}");
    let again = federation(&db, &["import", &source]);
    assert!(String::from_utf8_lossy(&again.stdout).contains("unchanged       1"));
    let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
}
