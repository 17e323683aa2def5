//! `federation import` against a real Thalamus-shaped source database.

mod common;

use actix_web::test;
use base64::Engine;
use common::*;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use meridian_platform::testing::{base_url, with_database};
use sha2::Digest;

/// A Thalamus database: five tables of (id, JSONB data), good rows and bad ones. Dropped on drop.
struct Source {
    url: String,
    name: String,
}

impl Source {
    fn new() -> Source {
        let name = format!("thalamus_src_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::establish(&base_url()).unwrap();
        admin.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        let url = with_database(&base_url(), &name);
        let mut conn = PgConnection::establish(&url).unwrap();
        conn.batch_execute(
            "CREATE TABLE people (id varchar PRIMARY KEY, data jsonb);
             CREATE TABLE pols (id varchar PRIMARY KEY, data jsonb);
             CREATE TABLE personal_docs (id varchar PRIMARY KEY, data jsonb);
             CREATE TABLE dus (id varchar PRIMARY KEY, data jsonb);
             CREATE TABLE institutions (id varchar PRIMARY KEY, data jsonb);",
        )
        .unwrap();
        let bcrypt_hash = bcrypt::hash("gnusolidario", 4).unwrap();
        let person = |id: &str, extra: serde_json::Value| {
            let mut data = serde_json::json!({"id": id, "name": "Imported", "lastname": id, "dob": "1980-05-06",
                "gender": "f", "password": bcrypt_hash, "roles": ["end_user"], "active": true,
                "creation_info": {"user": "admin", "node": "thalamus"}});
            for (k, v) in extra.as_object().unwrap() {
                data[k] = v.clone();
            }
            data
        };
        let content = b"scanned consent form";
        let doc = serde_json::json!({"book": "IMPORT000001", "type": "consent", "extension": "png",
            "description": "consent", "content": base64::engine::general_purpose::STANDARD.encode(content),
            "hash": hex::encode(sha2::Sha256::digest(content))});
        let mut bad_doc = doc.clone();
        bad_doc["hash"] = serde_json::json!("ab".repeat(32));
        let rows: Vec<(&str, String, String)> = vec![
            (
                "people",
                "IMPORT000001".into(),
                person("IMPORT000001", serde_json::json!({"node_field": 42})).to_string(),
            ),
            (
                "people",
                "IMPORT000002".into(),
                person("IMPORT000002", serde_json::json!({"roles": ["health_professional"]})).to_string(),
            ),
            ("people", "BADJSON00001".into(), "[1, 2, 3]".into()),
            (
                "people",
                "CLEARPW00001".into(),
                person("CLEARPW00001", serde_json::json!({"password": "in clear"})).to_string(),
            ),
            (
                "people",
                "BADROLE00001".into(),
                person("BADROLE00001", serde_json::json!({"roles": ["emperor"]})).to_string(),
            ),
            (
                "pols",
                "9d0e1f20-3a4b-4c5d-8e6f-708192a3b4c5".into(),
                serde_json::json!({"book": "IMPORT000001", "page_type": "medical", "summary": "imported"}).to_string(),
            ),
            ("pols", "not-a-uuid".into(), serde_json::json!({"book": "IMPORT000001"}).to_string()),
            (
                "pols",
                "0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d".into(),
                serde_json::json!({"book": "GHOST0000001"}).to_string(),
            ),
            ("personal_docs", "1e2d3c4b-5a69-4788-9766-554433221100".into(), doc.to_string()),
            ("personal_docs", "2e2d3c4b-5a69-4788-9766-554433221100".into(), bad_doc.to_string()),
            ("dus", "DU-1".into(), serde_json::json!({"address_city": "Buenos Aires"}).to_string()),
            ("institutions", "INST-1".into(), serde_json::json!({"name": "GNU Solidario Hospital"}).to_string()),
        ];
        for (table, id, data) in rows {
            diesel::sql_query(format!("INSERT INTO {table} (id, data) VALUES ($1, $2::jsonb)"))
                .bind::<diesel::sql_types::Text, _>(id)
                .bind::<diesel::sql_types::Text, _>(data)
                .execute(&mut conn)
                .unwrap();
        }
        Source { url, name }
    }
}

impl Drop for Source {
    fn drop(&mut self) {
        if let Ok(mut admin) = PgConnection::establish(&base_url()) {
            let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
        }
    }
}

#[actix_rt::test]
async fn import_is_idempotent_reports_counts_and_lists_refused_rows() {
    let source = Source::new();
    let h = harness(&[]);
    let policy = federation::policy::Policy::builtin();
    let mut conn = h.db.conn();

    let first = federation::import::import(&source.url, &mut conn, &policy).unwrap();
    assert_eq!(first.table("people").read, 5);
    assert_eq!(first.table("people").inserted, 2);
    assert_eq!(first.table("pols").inserted, 1);
    assert_eq!(first.table("personal_docs").inserted, 1);
    assert_eq!(first.table("dus").inserted, 1);
    assert_eq!(first.table("institutions").inserted, 1);
    let refused: Vec<(&str, &str)> = first.refused.iter().map(|r| (r.table, r.id.as_str())).collect();
    for expected in [
        ("people", "BADJSON00001"),
        ("people", "CLEARPW00001"),
        ("people", "BADROLE00001"),
        ("pols", "not-a-uuid"),
        ("pols", "0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d"),
        ("personal_docs", "2e2d3c4b-5a69-4788-9766-554433221100"),
    ] {
        assert!(refused.contains(&expected), "{expected:?} refused and listed: {refused:?}");
    }
    assert_eq!(first.refused.len(), 6);
    let printed = first.to_string();
    assert!(printed.contains("BADJSON00001") && printed.contains("not a JSON object"), "{printed}");

    // A second run changes nothing.
    let second = federation::import::import(&source.url, &mut conn, &policy).unwrap();
    for table in ["people", "pols", "personal_docs", "dus", "institutions"] {
        let t = second.table(table);
        assert_eq!((t.inserted, t.updated), (0, 0), "{table}");
        assert_eq!(t.unchanged, first.table(table).inserted, "{table}");
    }

    // Imported people log in with their Thalamus (bcrypt) passwords; fields are kept, hashes never shown.
    let app = test::init_service(h.platform.app(app_config(&h))).await;
    let me = call(&app, "GET", "/people/IMPORT000001", Some(("IMPORT000001", "gnusolidario")), None).await;
    assert_eq!(me.status, 200, "{}", me.text());
    assert_no_hash(&me);
    assert_eq!(me.json()["node_field"], 42);
    assert_eq!(me.json()["creation_info"]["node"], "thalamus");
    let hp = call(&app, "GET", "/people", Some(("IMPORT000002", "gnusolidario")), None).await;
    assert_eq!(hp.status, 200, "roles are imported");
    let book = call(&app, "GET", "/pols/IMPORT000001", Some(("IMPORT000001", "gnusolidario")), None).await.json();
    assert_eq!(book[0]["summary"], "imported");
    let docs = call(&app, "GET", "/personal_docs/IMPORT000001", Some(("IMPORT000001", "gnusolidario")), None).await;
    assert_eq!(docs.json().as_array().unwrap().len(), 1);
    let du = call(&app, "GET", "/domiciliary-units/DU-1", Some(ROOT), None).await.json();
    assert_eq!(du["address_city"], "Buenos Aires");
}
