//! Shared test helpers: a fresh database, the real App, tokens and a JSON call helper.
#![allow(dead_code)]

use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::header::HeaderMap;
use actix_web::{test, web};
use meridian_platform::Platform;
use meridian_platform::testing::{TestDb, test_platform};
use messaging::auth::{self, Metadata};
use messaging::{SERVICE, State, configure};
use serde_json::Value;

/// Fields drop in order: the platform's pool closes before its database is dropped.
pub struct Ctx {
    pub platform: Platform,
    pub state: web::Data<State>,
    pub db: TestDb,
}

pub fn ctx(overrides: &[(&str, &str)]) -> Ctx {
    let db = TestDb::new(&SERVICE);
    let mut vars = vec![("MESSAGING_LOGIN_RATE", "off")];
    vars.extend_from_slice(overrides);
    let platform = test_platform(&SERVICE, &db, &vars);
    let state = web::Data::new(State::new(&platform).expect("messaging state"));
    Ctx { platform, state, db }
}

impl Ctx {
    pub async fn app(
        &self,
    ) -> impl Service<actix_http::Request, Response = ServiceResponse<impl MessageBody>, Error = actix_web::Error> {
        let state = self.state.clone();
        test::init_service(self.platform.app(move |cfg| {
            cfg.app_data(state.clone());
            configure(cfg);
        }))
        .await
    }

    fn token(&self, metadata: Metadata, scope: &str) -> String {
        auth::issue(&self.state.keys, metadata, scope, Duration::from_secs(600)).unwrap()
    }

    pub fn patient(&self, id: &str) -> String {
        self.token(
            Metadata { patient_id: Some(id.into()), ..Metadata::default() },
            "read:gdm_message write:gdm_message",
        )
    }

    pub fn clinician(&self, id: &str, locations: &[&str]) -> String {
        self.token(
            Metadata {
                clinician_id: Some(id.into()),
                locations: Some(locations.iter().map(|l| (*l).to_owned()).collect()),
                ..Metadata::default()
            },
            "read:gdm_message write:gdm_message read:gdm_activation write:gdm_activation",
        )
    }

    pub fn device(&self, id: &str, location: &str) -> String {
        self.token(
            Metadata { device_id: Some(id.into()), locations: Some(vec![location.into()]), ..Metadata::default() },
            "read:gdm_message write:gdm_message read:send_entry_identifier",
        )
    }

    pub fn system(&self, scope: &str) -> String {
        self.token(Metadata { system_id: Some("test-system".into()), ..Metadata::default() }, scope)
    }
}

pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

/// Sends a request; `body` is JSON when given.
pub async fn call<S, B>(
    app: &S,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> Reply
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let mut req = test::TestRequest::default().method(method.parse().unwrap()).uri(uri);
    if let Some(token) = token {
        req = req.insert_header(("authorization", format!("Bearer {token}")));
    }
    for (k, v) in headers {
        req = req.insert_header((*k, *v));
    }
    if let Some(body) = body {
        req = req.set_json(body);
    }
    let res = test::call_service(app, req.to_request()).await;
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let bytes = test::read_body(res).await;
    let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(Value::Null) };
    Reply { status, headers, body }
}

pub fn message(sender: &str, sender_type: &str, receiver: &str, receiver_type: &str, kind: i32) -> Value {
    serde_json::json!({
        "sender": sender, "sender_type": sender_type, "receiver": receiver, "receiver_type": receiver_type,
        "message_type": {"value": kind}, "content": format!("{kind} from {sender} to {receiver}"),
    })
}

pub fn ids(body: &Value) -> Vec<String> {
    body.as_array().expect("a JSON array").iter().map(|m| m["uuid"].as_str().unwrap().to_owned()).collect()
}
