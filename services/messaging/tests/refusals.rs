//! Every protected route: 401 without a token, 403 with a valid token lacking the scope.

mod common;

use common::{call, ctx};
use diesel::connection::SimpleConnection;
use serde_json::json;

#[actix_rt::test]
async fn every_protected_route_needs_a_token_and_its_scope() {
    let ctx = ctx(&[]);
    let app = ctx.app().await;
    let id = uuid::Uuid::new_v4();
    let msg = json!({"sender": "s", "sender_type": "patient", "receiver": "r", "receiver_type": "patient",
        "message_type": {"value": 0}, "content": "x"});
    let routes: Vec<(&str, String, Option<serde_json::Value>)> = vec![
        ("POST", "/dhos/v2/message".into(), Some(msg.clone())),
        ("POST", "/dhos/v1/message".into(), Some(msg)),
        ("GET", format!("/dhos/v1/message/{id}"), None),
        ("PATCH", format!("/dhos/v1/message/{id}"), Some(json!({"retrieved": "2026-12-01T10:00:00Z"}))),
        ("GET", "/dhos/v1/sender/a/message".into(), None),
        ("GET", "/dhos/v1/receiver/a/message".into(), None),
        ("GET", "/dhos/v1/sender/a/active/message".into(), None),
        ("GET", "/dhos/v1/receiver/a/active/message".into(), None),
        ("GET", "/dhos/v1/sender/a/receiver/b/message".into(), None),
        ("GET", "/dhos/v1/sender/a/receiver/b/active/message".into(), None),
        ("GET", "/dhos/v1/receiver/a/active/callback/message".into(), None),
        ("GET", "/dhos/v1/sender_or_receiver/a/message".into(), None),
        ("GET", "/dhos/v1/receiver/a/message/stream".into(), None),
        ("POST", "/dhos/v1/active/callback/message".into(), Some(json!(["a"]))),
        ("POST", "/dhos/v1/patient/a/activation".into(), None),
        ("GET", "/dhos/v1/patient/a/activation".into(), None),
        ("POST", "/dhos/v1/device".into(), Some(json!({"location_id": "w", "description": "d"}))),
        ("GET", "/dhos/v1/device".into(), None),
        ("GET", format!("/dhos/v1/device/{id}"), None),
        ("PATCH", format!("/dhos/v1/device/{id}"), Some(json!({"active": false}))),
        ("POST", format!("/dhos/v1/device/{id}/activation"), None),
        ("POST", "/dhos/v1/clinician".into(), Some(json!({"clinician_id": "c", "login_active": true}))),
        ("PATCH", "/dhos/v1/clinician/c".into(), Some(json!({"login_active": false}))),
        ("GET", "/dhos/v1/clinician/jwt?send_entry_identifier=1".into(), None),
    ];
    // A real token whose scope grants nothing this service checks.
    let useless = ctx.system("read:gdm_bg_reading");
    for (method, uri, body) in routes {
        let r = call(&app, method, &uri, None, body.clone(), &[]).await;
        assert_eq!(r.status, 401, "{method} {uri} without a token");
        assert_eq!(r.headers.get("content-type").unwrap(), "application/problem+json");
        let r = call(&app, method, &uri, Some(&useless), body.clone(), &[]).await;
        assert_eq!(r.status, 403, "{method} {uri} without the scope");
        let r = call(&app, method, &uri, Some("garbage"), body, &[]).await;
        assert_eq!(r.status, 403, "{method} {uri} with a garbage token");
    }
}

#[core::prelude::v1::test]
fn migration_down_and_up_again() {
    let ctx = ctx(&[]);
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations/messaging/2026-12-01-000001_messaging");
    let down = std::fs::read_to_string(format!("{dir}/down.sql")).unwrap();
    let up = std::fs::read_to_string(format!("{dir}/up.sql")).unwrap();
    let mut conn = ctx.db.conn();
    conn.batch_execute(&down).unwrap();
    conn.batch_execute(&up).unwrap();
    conn.batch_execute(&down).unwrap();
    conn.batch_execute(&up).unwrap();
}
