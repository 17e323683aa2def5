//! Every route's success and refusal paths through the real App and a real Postgres.

mod common;

use std::time::Duration;

use actix_web::test;
use common::{Answer, Caller, device, peer};
use diesel::prelude::*;
use discovery::model::{Kind, Rank};
use discovery::poller::PollerConfig;
use discovery::servers::{self, NewServer};
use discovery::{SERVICE, State, configure};
use meridian_model::DeviceRole;
use meridian_platform::testing::{TestDb, test_platform};
use serde_json::{Value, json};
use uuid::Uuid;

macro_rules! app {
    ($db:expr) => {
        app!($db, &[("TRUST_CERT_HEADER", "true")])
    };
    ($db:expr, $vars:expr) => {{
        let platform = test_platform(&SERVICE, $db, $vars);
        let state = State::new(&platform, PollerConfig { timeout: Duration::from_secs(2), ..Default::default() });
        test::init_service(platform.app(move |cfg| {
            cfg.app_data(state.clone());
            configure(cfg);
        }))
        .await
    }};
}

macro_rules! call {
    ($app:expr, $req:expr) => {{
        let res = test::call_service(&$app, $req.to_request()).await;
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let bytes = test::read_body(res).await;
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, headers, body)
    }};
}

fn with_cert(req: test::TestRequest, caller: &Caller) -> test::TestRequest {
    req.insert_header(("mtls-certificate", caller.header.as_str()))
}

fn seed(db: &TestDb, name: Option<&str>, host: &str, kind: Kind, rank: Option<Rank>, listed: bool) -> Uuid {
    let input = NewServer {
        name: name.map(str::to_owned),
        host: host.to_owned(),
        kind,
        rank,
        listed: Some(listed),
        device_id: None,
    };
    servers::create(&mut db.conn(), input, None).unwrap().id
}

fn assert_problem(status: u16, headers: &actix_web::http::header::HeaderMap, body: &Value, expected: u16) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(headers.get("content-type").unwrap(), "application/problem+json");
    assert_eq!(body["status"], expected);
}

#[actix_rt::test]
async fn server_list_is_public_filtered_ordered_and_cached() {
    let db = TestDb::new(&SERVICE);
    let b = seed(&db, Some("Bravo"), "https://bravo.example.org/", Kind::Central, Some(Rank::Production), true);
    let a = seed(&db, Some("Alpha"), "https://alpha.example.org", Kind::Central, Some(Rank::Production), true);
    let c = seed(&db, Some("Aardvark"), "https://clone.example.org", Kind::Central, Some(Rank::Clone), true);
    let d = seed(&db, Some("Dev box"), "http://dev.example.org:3000/", Kind::Central, Some(Rank::Dev), true);
    seed(&db, None, "https://unnamed.example.org", Kind::Central, Some(Rank::Production), true);
    seed(&db, Some("Facility"), "https://facility.example.org", Kind::Facility, Some(Rank::Production), true);
    seed(&db, Some("Hidden"), "https://hidden.example.org", Kind::Central, Some(Rank::Production), false);
    let app = app!(&db);

    let (status, headers, body) = call!(app, test::TestRequest::get().uri("/servers"));
    assert_eq!(status, 200);
    assert_eq!(headers.get("x-version").unwrap(), env!("CARGO_PKG_VERSION"));
    assert!(headers.get("cache-control").unwrap().to_str().unwrap().contains("max-age"));
    let etag = headers.get("etag").unwrap().to_str().unwrap().to_owned();
    let list = body.as_array().unwrap();
    let ids: Vec<&str> = list.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [a, b, c, d].map(|u| u.to_string()).iter().map(String::as_str).collect::<Vec<_>>());
    for entry in list {
        let mut keys: Vec<&String> = entry.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["host", "id", "name", "rank"]);
    }
    assert_eq!(list[1], json!({"id": b, "name": "Bravo", "host": "https://bravo.example.org", "rank": "production"}));
    assert_eq!(list[3]["host"], "http://dev.example.org:3000");

    // Unchanged: 304 with the same tag, no body.
    let res = test::call_service(
        &app,
        test::TestRequest::get().uri("/servers").insert_header(("if-none-match", etag.as_str())).to_request(),
    )
    .await;
    assert_eq!(res.status(), 304);
    assert_eq!(res.headers().get("etag").unwrap().to_str().unwrap(), etag);
    assert!(test::read_body(res).await.is_empty());

    // A write through the API refreshes the snapshot at once.
    let admin = device(&db, DeviceRole::Admin);
    let (status, _, _) = call!(
        app,
        with_cert(test::TestRequest::post().uri("/servers"), &admin)
            .set_json(json!({"name": "Zulu", "host": "https://zulu.example.org", "kind": "central", "rank": "live"}))
    );
    assert_eq!(status, 201);
    let (status, headers, body) =
        call!(app, test::TestRequest::get().uri("/servers").insert_header(("if-none-match", etag.as_str())));
    assert_eq!(status, 200, "the tag no longer matches");
    assert_ne!(headers.get("etag").unwrap().to_str().unwrap(), etag);
    assert_eq!(body.as_array().unwrap()[2]["name"], "Zulu", "production servers first, by name");
}

#[actix_rt::test]
async fn creating_servers_needs_a_server_or_admin_device() {
    let db = TestDb::new(&SERVICE);
    let app = app!(&db);
    let body = json!({"name": "Fiji", "host": "https://fiji.example.org/", "kind": "central", "rank": "staging"});

    let (status, headers, problem) = call!(app, test::TestRequest::post().uri("/servers").set_json(&body));
    assert_problem(status, &headers, &problem, 401);

    // First contact: recorded untrusted, refused.
    let stranger = common::certificate();
    let (status, headers, problem) = call!(
        app,
        test::TestRequest::post()
            .uri("/servers")
            .insert_header(("mtls-certificate", common::encoded(&stranger)))
            .set_json(&body)
    );
    assert_problem(status, &headers, &problem, 403);
    let recorded = meridian_auth::ClientCertificate::from_header(&stranger).unwrap();
    assert_eq!(
        meridian_auth::devices::find(&mut db.conn(), &recorded.fingerprint).unwrap().role(),
        DeviceRole::Untrusted
    );

    let releaser = device(&db, DeviceRole::Releaser);
    let (status, headers, problem) =
        call!(app, with_cert(test::TestRequest::post().uri("/servers"), &releaser).set_json(&body));
    assert_problem(status, &headers, &problem, 403);

    // A server device, with its certificate as plain PEM: it owns what it creates.
    let server = device(&db, DeviceRole::Server);
    let (status, headers, created) = call!(
        app,
        test::TestRequest::post().uri("/servers").insert_header(("mtls-certificate", server.plain())).set_json(&body)
    );
    assert_eq!(status, 201, "{created}");
    assert_eq!(headers.get("x-version").unwrap(), env!("CARGO_PKG_VERSION"));
    assert_eq!(created["device_id"], server.id.to_string());
    assert_eq!(created["host"], "https://fiji.example.org");
    assert_eq!(created["rank"], "clone");
    assert_eq!(created["kind"], "central");

    // The same host again (trailing slash and case aside): 409.
    let (status, headers, problem) = call!(
        app,
        with_cert(test::TestRequest::post().uri("/servers"), &server)
            .set_json(json!({"host": "HTTPS://FIJI.example.org", "kind": "facility"}))
    );
    assert_problem(status, &headers, &problem, 409);

    // Choosing another owner is for admins only.
    let (status, headers, problem) = call!(
        app,
        with_cert(test::TestRequest::post().uri("/servers"), &server)
            .set_json(json!({"host": "https://other.example.org", "kind": "facility", "device_id": null}))
    );
    assert_problem(status, &headers, &problem, 403);
    let admin = device(&db, DeviceRole::Admin);
    let (status, _, created) = call!(
        app,
        with_cert(test::TestRequest::post().uri("/servers"), &admin)
            .set_json(json!({"host": "https://polled.example.org", "kind": "facility", "device_id": null}))
    );
    assert_eq!(status, 201);
    assert!(created["device_id"].is_null(), "an unowned server is polled");
    let (status, _, created) = call!(
        app,
        with_cert(test::TestRequest::post().uri("/servers"), &admin)
            .set_json(json!({"host": "https://admins.example.org", "kind": "central"}))
    );
    assert_eq!(status, 201);
    assert_eq!(created["device_id"], admin.id.to_string());

    // Validation: 422 by field; malformed JSON, unknown kind or rank, unknown fields: 400.
    let (status, headers, problem) = call!(
        app,
        with_cert(test::TestRequest::post().uri("/servers"), &admin)
            .set_json(json!({"name": "  ", "host": "fiji.example.org", "kind": "central"}))
    );
    assert_problem(status, &headers, &problem, 422);
    assert!(problem["errors"]["host"].is_array() && problem["errors"]["name"].is_array(), "{problem}");
    let (status, _, problem) = call!(
        app,
        with_cert(test::TestRequest::post().uri("/servers"), &admin)
            .set_json(json!({"name": "x".repeat(201), "host": "ftp://x.example.org", "kind": "central"}))
    );
    assert_eq!(status, 422, "{problem}");
    for bad in [
        json!({"host": "https://a.example.org", "kind": "hospital"}),
        json!({"host": "https://a.example.org", "kind": "central", "rank": "qa"}),
        json!({"host": "https://a.example.org", "kind": "central", "colour": "blue"}),
        json!({"kind": "central"}),
    ] {
        let (status, headers, problem) =
            call!(app, with_cert(test::TestRequest::post().uri("/servers"), &admin).set_json(&bad));
        assert_problem(status, &headers, &problem, 400);
    }
}

#[actix_rt::test]
async fn patching_servers_owner_or_admin() {
    let db = TestDb::new(&SERVICE);
    let app = app!(&db);
    let owner = device(&db, DeviceRole::Server);
    let other = device(&db, DeviceRole::Server);
    let admin = device(&db, DeviceRole::Admin);
    let (_, _, created) = call!(
        app,
        with_cert(test::TestRequest::post().uri("/servers"), &owner)
            .set_json(json!({"name": "Tonga", "host": "https://tonga.example.org", "kind": "central", "rank": "test"}))
    );
    let id = created["id"].as_str().unwrap().to_owned();
    seed(&db, Some("Taken"), "https://taken.example.org", Kind::Central, None, true);

    let (status, _, changed) = call!(
        app,
        with_cert(test::TestRequest::patch().uri("/servers"), &owner)
            .set_json(json!({"id": id, "rank": "prod", "name": "Tonga Central"}))
    );
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["rank"], "production");
    assert_eq!(changed["name"], "Tonga Central");

    let (status, headers, problem) = call!(
        app,
        with_cert(test::TestRequest::patch().uri("/servers"), &other).set_json(json!({"id": id, "listed": false}))
    );
    assert_problem(status, &headers, &problem, 403);
    let (status, headers, problem) = call!(
        app,
        with_cert(test::TestRequest::patch().uri("/servers"), &owner)
            .set_json(json!({"id": id, "device_id": other.id}))
    );
    assert_problem(status, &headers, &problem, 403);
    let (status, headers, problem) =
        call!(app, with_cert(test::TestRequest::patch().uri("/servers"), &owner).set_json(json!({"id": id})));
    assert_problem(status, &headers, &problem, 422);
    let (status, headers, problem) = call!(
        app,
        with_cert(test::TestRequest::patch().uri("/servers"), &admin)
            .set_json(json!({"id": Uuid::new_v4(), "listed": false}))
    );
    assert_problem(status, &headers, &problem, 404);
    let (status, headers, problem) = call!(
        app,
        with_cert(test::TestRequest::patch().uri("/servers"), &owner)
            .set_json(json!({"id": id, "host": "https://taken.example.org/"}))
    );
    assert_problem(status, &headers, &problem, 409);
    let (status, headers, problem) = call!(
        app,
        with_cert(test::TestRequest::patch().uri("/servers"), &owner).set_json(json!({"id": id, "host": "nope"}))
    );
    assert_problem(status, &headers, &problem, 422);

    // An admin may hand the server to the poller.
    let (status, _, changed) = call!(
        app,
        with_cert(test::TestRequest::patch().uri("/servers"), &admin).set_json(json!({"id": id, "device_id": null}))
    );
    assert_eq!(status, 200);
    assert!(changed["device_id"].is_null());
    assert_eq!(changed["name"], "Tonga Central", "untouched fields stay");
}

#[actix_rt::test]
async fn deleting_servers_is_for_admins() {
    let db = TestDb::new(&SERVICE);
    let app = app!(&db);
    let id = seed(&db, Some("Samoa"), "https://samoa.example.org", Kind::Central, Some(Rank::Demo), true);
    let server = device(&db, DeviceRole::Server);
    let admin = device(&db, DeviceRole::Admin);

    let (status, headers, problem) =
        call!(app, test::TestRequest::delete().uri("/servers").set_json(json!({"id": id})));
    assert_problem(status, &headers, &problem, 401);
    let (status, headers, problem) =
        call!(app, with_cert(test::TestRequest::delete().uri("/servers"), &server).set_json(json!({"id": id})));
    assert_problem(status, &headers, &problem, 403);
    let (status, headers, problem) = call!(
        app,
        with_cert(test::TestRequest::delete().uri("/servers"), &admin).set_json(json!({"id": Uuid::new_v4()}))
    );
    assert_problem(status, &headers, &problem, 404);

    let (_, _, list) = call!(app, test::TestRequest::get().uri("/servers"));
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (status, _, deleted) =
        call!(app, with_cert(test::TestRequest::delete().uri("/servers"), &admin).set_json(json!({"id": id})));
    assert_eq!(status, 200);
    assert_eq!(deleted["id"], id.to_string());
    let (_, _, list) = call!(app, test::TestRequest::get().uri("/servers"));
    assert_eq!(list, json!([]));
}

#[actix_rt::test]
async fn servers_push_statuses_and_clients_read_them() {
    let db = TestDb::new(&SERVICE);
    let app = app!(&db);
    let owner = device(&db, DeviceRole::Server);
    let other = device(&db, DeviceRole::Server);
    let admin = device(&db, DeviceRole::Admin);
    let (_, _, created) = call!(
        app,
        with_cert(test::TestRequest::post().uri("/servers"), &owner)
            .set_json(json!({"name": "Nauru", "host": "https://nauru.example.org", "kind": "central"}))
    );
    let id = created["id"].as_str().unwrap().to_owned();
    let uri = format!("/status/{id}");

    let (status, headers, stored) = call!(
        app,
        with_cert(test::TestRequest::post().uri(&uri), &owner)
            .insert_header(("x-version", "2.14.1"))
            .set_json(json!({"uptime": 1234, "timezone": "Pacific/Nauru"}))
    );
    assert_eq!(status, 200, "{stored}");
    assert_eq!(headers.get("x-version").unwrap(), env!("CARGO_PKG_VERSION"));
    assert_eq!(stored["server_id"], id);
    assert_eq!(stored["version"], "2.14.1");
    assert_eq!(stored["extra"], json!({"uptime": 1234, "timezone": "Pacific/Nauru"}));
    assert!(stored["error"].is_null() && stored["latency_ms"].is_null());
    assert_eq!(stored["device_id"], owner.id.to_string());

    // No body at all: extra is empty. An admin may report too.
    let (status, _, stored) =
        call!(app, with_cert(test::TestRequest::post().uri(&uri), &admin).insert_header(("x-version", "v2.15.0")));
    assert_eq!(status, 200);
    assert_eq!(stored["extra"], json!({}));
    assert_eq!(stored["version"], "2.15.0");

    let (status, headers, problem) = call!(app, with_cert(test::TestRequest::post().uri(&uri), &owner));
    assert_problem(status, &headers, &problem, 400);
    assert!(headers.get("x-version").is_none(), "only successful responses carry X-Version");
    let (status, headers, problem) =
        call!(app, with_cert(test::TestRequest::post().uri(&uri), &owner).insert_header(("x-version", "2.14")));
    assert_problem(status, &headers, &problem, 400);
    let (status, headers, problem) = call!(
        app,
        with_cert(test::TestRequest::post().uri(&uri), &owner)
            .insert_header(("x-version", "2.14.1"))
            .insert_header(("content-type", "application/json"))
            .set_payload("{not json")
    );
    assert_problem(status, &headers, &problem, 400);
    let (status, headers, problem) =
        call!(app, with_cert(test::TestRequest::post().uri(&uri), &other).insert_header(("x-version", "2.14.1")));
    assert_problem(status, &headers, &problem, 403);
    let (status, headers, problem) = call!(
        app,
        with_cert(test::TestRequest::post().uri(&format!("/status/{}", Uuid::new_v4())), &owner)
            .insert_header(("x-version", "2.14.1"))
    );
    assert_problem(status, &headers, &problem, 404);
    let (status, headers, problem) =
        call!(app, test::TestRequest::post().uri(&uri).insert_header(("x-version", "2.14.1")));
    assert_problem(status, &headers, &problem, 401);

    // Latest per server, and the history page by page.
    let quiet = seed(&db, Some("Quiet"), "https://quiet.example.org", Kind::Central, None, true);
    let (status, _, latest) = call!(app, test::TestRequest::get().uri("/statuses"));
    assert_eq!(status, 200);
    let latest = latest.as_array().unwrap();
    assert_eq!(latest.len(), 1, "servers without a status are absent");
    assert_eq!(latest[0]["version"], "2.15.0");

    let (status, _, page) = call!(app, test::TestRequest::get().uri(&format!("/servers/{id}/statuses?limit=1")));
    assert_eq!(status, 200);
    assert_eq!(page["total"], 2);
    assert_eq!(page["items"][0]["version"], "2.15.0");
    assert_eq!(page["next_offset"], 1);
    let (_, _, page) = call!(app, test::TestRequest::get().uri(&format!("/servers/{id}/statuses?limit=1&offset=1")));
    assert_eq!(page["items"][0]["version"], "2.14.1");
    assert!(page.get("next_offset").is_none());
    let (_, _, page) = call!(app, test::TestRequest::get().uri(&format!("/servers/{quiet}/statuses")));
    assert_eq!(page["total"], 0);
    let (status, headers, problem) =
        call!(app, test::TestRequest::get().uri(&format!("/servers/{}/statuses", Uuid::new_v4())));
    assert_problem(status, &headers, &problem, 404);
    let (status, headers, problem) = call!(app, test::TestRequest::get().uri("/servers/not-a-uuid/statuses"));
    assert_problem(status, &headers, &problem, 404);
}

#[actix_rt::test]
async fn device_administration_is_for_admins() {
    let db = TestDb::new(&SERVICE);
    let app = app!(&db);
    let admin = device(&db, DeviceRole::Admin);
    let server = device(&db, DeviceRole::Server);
    let releaser = device(&db, DeviceRole::Releaser);

    for caller in [&server, &releaser] {
        let (status, headers, problem) = call!(app, with_cert(test::TestRequest::get().uri("/devices"), caller));
        assert_problem(status, &headers, &problem, 403);
        let (status, headers, problem) = call!(
            app,
            with_cert(test::TestRequest::patch().uri(&format!("/devices/{}", caller.id)), caller)
                .set_json(json!({"role": "admin"}))
        );
        assert_problem(status, &headers, &problem, 403);
    }
    let (status, headers, problem) = call!(app, test::TestRequest::get().uri("/devices"));
    assert_problem(status, &headers, &problem, 401);

    let (status, _, list) =
        call!(app, with_cert(test::TestRequest::get().uri("/devices"), &admin).insert_header(("user-agent", "curl/8")));
    assert_eq!(status, 200);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 3);
    let me = list.iter().find(|d| d["id"] == admin.id.to_string()).unwrap();
    assert_eq!(me["role"], "admin");
    assert_eq!(me["fingerprint"].as_str().unwrap().len(), 64);
    assert_eq!(me["recent_connections"][0]["user_agent"], "curl/8");

    let (status, _, changed) = call!(
        app,
        with_cert(test::TestRequest::patch().uri(&format!("/devices/{}", releaser.id)), &admin)
            .set_json(json!({"role": "server"}))
    );
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["role"], "server");
    let (status, _, _) = call!(
        app,
        with_cert(test::TestRequest::post().uri("/servers"), &releaser)
            .set_json(json!({"host": "https://promoted.example.org", "kind": "facility"}))
    );
    assert_eq!(status, 201, "the promoted device may now register servers");

    let (status, headers, problem) = call!(
        app,
        with_cert(test::TestRequest::patch().uri(&format!("/devices/{}", Uuid::new_v4())), &admin)
            .set_json(json!({"role": "server"}))
    );
    assert_problem(status, &headers, &problem, 404);
    let (status, headers, problem) = call!(
        app,
        with_cert(test::TestRequest::patch().uri(&format!("/devices/{}", server.id)), &admin)
            .set_json(json!({"role": "root"}))
    );
    assert_problem(status, &headers, &problem, 400);
}

#[actix_rt::test]
async fn certificate_header_is_ignored_unless_trusted_and_forwarded_addresses_need_a_trusted_proxy() {
    let db = TestDb::new(&SERVICE);
    let admin = device(&db, DeviceRole::Admin);
    let wary = app!(&db, &[]);
    let (status, headers, problem) = call!(wary, with_cert(test::TestRequest::get().uri("/devices"), &admin));
    assert_problem(status, &headers, &problem, 401);

    let app = app!(&db, &[("TRUST_CERT_HEADER", "true"), ("TRUSTED_PROXIES", "10.0.0.0/8")]);
    let (status, _, _) = call!(
        app,
        with_cert(test::TestRequest::get().uri("/devices"), &admin)
            .peer_addr("203.0.113.5:4000".parse().unwrap())
            .insert_header(("x-real-ip", "1.1.1.1"))
            .insert_header(("x-forwarded-for", "2.2.2.2"))
    );
    assert_eq!(status, 200);
    let (status, _, _) = call!(
        app,
        with_cert(test::TestRequest::get().uri("/devices"), &admin)
            .peer_addr("10.0.0.3:4000".parse().unwrap())
            .insert_header(("x-forwarded-for", "198.51.100.7"))
    );
    assert_eq!(status, 200);
    let ips: Vec<Option<String>> = meridian_auth::schema::device_connections::table
        .filter(meridian_auth::schema::device_connections::device_id.eq(admin.id))
        .order(meridian_auth::schema::device_connections::id)
        .select(meridian_auth::schema::device_connections::ip)
        .load(&mut db.conn())
        .unwrap();
    assert_eq!(ips, [Some("203.0.113.5".to_owned()), Some("198.51.100.7".to_owned())]);
}

#[actix_rt::test]
async fn reload_polls_now_and_is_for_admins() {
    let db = TestDb::new(&SERVICE);
    let app = app!(&db);
    let healthy = peer(Answer::Version("2.16.0")).await;
    let id = seed(&db, Some("Polled"), &healthy.url, Kind::Central, Some(Rank::Production), true);
    let server = device(&db, DeviceRole::Server);
    let admin = device(&db, DeviceRole::Admin);

    let (status, headers, problem) = call!(app, with_cert(test::TestRequest::post().uri("/reload"), &server));
    assert_problem(status, &headers, &problem, 403);
    let (status, _, summary) = call!(app, with_cert(test::TestRequest::post().uri("/reload"), &admin));
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary, json!({"polled": 1, "up": 1}));
    let (_, _, latest) = call!(app, test::TestRequest::get().uri("/statuses"));
    assert_eq!(latest[0]["server_id"], id.to_string());
    assert_eq!(latest[0]["version"], "2.16.0");
    assert!(latest[0]["latency_ms"].is_number());
}

#[actix_rt::test]
async fn openapi_lists_every_route() {
    let db = TestDb::new(&SERVICE);
    let app = app!(&db);
    let (status, _, doc) = call!(app, test::TestRequest::get().uri("/openapi.json"));
    assert_eq!(status, 200);
    for path in [
        "/servers",
        "/status/{server_id}",
        "/statuses",
        "/servers/{id}/statuses",
        "/reload",
        "/devices",
        "/devices/{id}",
        "/status",
    ] {
        assert!(doc["paths"][path].is_object(), "{path}");
    }
}

#[core::prelude::v1::test]
fn replicas_refresh_their_lists_when_postgres_notifies() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let db = TestDb::new(&SERVICE);
    let platform = test_platform(&SERVICE, &db, &[]);
    let other_replica = discovery::snapshot::ServerList::default();
    let stop = Arc::new(AtomicBool::new(false));
    // A safety interval of an hour: only the notification can explain a refresh.
    let listener = other_replica.spawn_listener(
        db.url.clone(),
        platform.db.pool().clone(),
        Duration::from_secs(3600),
        stop.clone(),
    );
    let wait_for = |count: usize| {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while other_replica.get().is_none_or(|s| s.count != count) {
            assert!(std::time::Instant::now() < deadline, "the list never reached {count} servers");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_for(0);
    let id = seed(&db, Some("Kiribati"), "https://kiribati.example.org", Kind::Central, Some(Rank::Test), true);
    wait_for(1);
    servers::delete(&mut db.conn(), id).unwrap();
    wait_for(0);
    stop.store(true, Ordering::Relaxed);
    listener.join().unwrap();
}

#[actix_rt::test]
async fn unknown_routes_and_methods_are_problems() {
    let db = TestDb::new(&SERVICE);
    let app = app!(&db);
    let (status, headers, problem) = call!(app, test::TestRequest::get().uri("/nowhere"));
    assert_problem(status, &headers, &problem, 404);
    let (status, headers, problem) = call!(app, test::TestRequest::put().uri("/servers"));
    assert_problem(status, &headers, &problem, 405);
    let (status, headers, _) = call!(app, test::TestRequest::get().uri("/statuses"));
    assert_eq!(status, 200);
    assert_eq!(headers.get("x-version").unwrap(), env!("CARGO_PKG_VERSION"));
}
