//! Shared test helpers: a fresh database with people, the real App, requests with basic auth.
#![allow(dead_code)]

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::HeaderMap;
use actix_web::{test, web};
use base64::Engine;
use diesel::prelude::*;
use diesel::sql_types::{Array, Jsonb, Text};
use federation::{Federation, SERVICE, configure_with};
use meridian_platform::Platform;
use meridian_platform::testing::{TestDb, test_platform};

pub struct Harness {
    pub db: TestDb,
    pub platform: Platform,
    pub state: web::Data<Federation>,
}

pub const ROOT: (&str, &str) = ("ARGBUE111FAV", "freedom");
pub const DOCTOR: (&str, &str) = ("ITAPYT999HON", "gnusolidario");
pub const PATIENT: (&str, &str) = ("ESPGNU777ORG", "gnusolidario");
pub const OTHER: (&str, &str) = ("ARGOTH222XYZ", "other-secret");

/// A database with the demo people (cheap bcrypt hashes) and one more end user.
pub fn harness(overrides: &[(&str, &str)]) -> Harness {
    let db = TestDb::new(&SERVICE);
    let platform = test_platform(&SERVICE, &db, overrides);
    let state = web::Data::new(Federation::new(&platform).expect("valid federation settings"));
    let mut conn = db.conn();
    add_person(&mut conn, ROOT.0, ROOT.1, &["root"], serde_json::json!({"name": "Root", "lastname": "Federation"}));
    add_person(
        &mut conn,
        DOCTOR.0,
        DOCTOR.1,
        &["health_professional", "end_user"],
        serde_json::json!({"name": "Cameron", "lastname": "Cordara", "dob": "1975-03-12"}),
    );
    add_person(
        &mut conn,
        PATIENT.0,
        PATIENT.1,
        &["end_user"],
        serde_json::json!({"name": "Ana", "lastname": "Betz", "dob": "1985-10-04", "gender": "f"}),
    );
    add_person(&mut conn, OTHER.0, OTHER.1, &["end_user"], serde_json::json!({"name": "Otto", "lastname": "Other"}));
    Harness { db, platform, state }
}

/// A person with a bcrypt (cost 4) hash, as migrated Thalamus data would have.
pub fn add_person(conn: &mut PgConnection, id: &str, password: &str, roles: &[&str], data: serde_json::Value) {
    let hash = bcrypt::hash(password, 4).unwrap();
    let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
    diesel::sql_query("INSERT INTO people (id, password_hash, roles, data) VALUES ($1, $2, $3, $4)")
        .bind::<Text, _>(id)
        .bind::<Text, _>(hash)
        .bind::<Array<Text>, _>(roles)
        .bind::<Jsonb, _>(data)
        .execute(conn)
        .unwrap();
}

pub fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).map(|v| v.to_str().unwrap().to_owned())
    }

    /// Asserts a problem+json error with this status.
    pub fn problem(&self, status: u16) -> serde_json::Value {
        assert_eq!(self.status.as_u16(), status, "{}", self.text());
        assert_eq!(self.header("content-type").as_deref(), Some("application/problem+json"), "{}", self.text());
        let body = self.json();
        assert_eq!(body["status"], status);
        body
    }
}

/// Sends a request: `auth` as (user, password); `body` raw, sent WITHOUT a content type (as
/// Thalamus clients do).
pub async fn call<S, B>(app: &S, method: &str, uri: &str, auth: Option<(&str, &str)>, body: Option<&str>) -> Reply
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let mut req = test::TestRequest::default()
        .method(method.parse().unwrap())
        .uri(uri)
        .peer_addr("198.51.100.10:40000".parse().unwrap());
    if let Some((user, password)) = auth {
        req = req.insert_header(("authorization", basic(user, password)));
    }
    if let Some(body) = body {
        req = req.set_payload(body.to_owned());
    }
    let res = test::call_service(app, req.to_request()).await;
    let status = res.status();
    let headers = res.headers().clone();
    let body = test::read_body(res).await.to_vec();
    Reply { status, headers, body }
}

/// Fails when any text in a reply looks like a password hash.
pub fn assert_no_hash(reply: &Reply) {
    let text = reply.text();
    assert!(!text.contains("$2b$") && !text.contains("$2y$") && !text.contains("$argon2"), "hash leaked: {text}");
    assert!(!text.contains("password_hash"), "hash column leaked: {text}");
}

/// Waits (bounded) until `check` holds; the audit writer and the change listener are asynchronous.
pub async fn eventually<F, Fut>(mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..100 {
        if check().await {
            return true;
        }
        actix_rt::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    false
}

pub fn app_config(h: &Harness) -> impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static {
    configure_with(h.state.clone())
}
