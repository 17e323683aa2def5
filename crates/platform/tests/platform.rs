//! The platform against a real Postgres: error shapes, readiness through an outage, migrations.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix_web::{HttpResponse, test, web};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_migrations::embed_migrations;
use meridian_platform::db::Statement;
use meridian_platform::extract::Json;
use meridian_platform::testing::{TestDb, test_config, test_platform, with_database};
use meridian_platform::{ApiError, Platform, SchemaMigrations, ServiceDef};
use serde::Deserialize;

static SERVICE: ServiceDef = ServiceDef {
    name: "platformtest",
    version: "1.2.3",
    default_port: 0,
    schema: "platformtest",
    migrations: &[SchemaMigrations {
        schema: "platformtest",
        migrations: embed_migrations!("tests/fixture_migrations"),
    }],
    openapi: utoipa::openapi::OpenApi::default,
};

diesel::table! {
    widgets (id) {
        id -> Int4,
        name -> Text,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewWidget {
    name: String,
}

async fn create(platform: web::Data<Platform>, body: Json<NewWidget>) -> Result<HttpResponse, ApiError> {
    let name = body.into_inner().name;
    let id: i32 = platform
        .db
        .run(move |conn| {
            Ok(diesel::insert_into(widgets::table)
                .values(widgets::name.eq(name))
                .returning(widgets::id)
                .get_result(conn)?)
        })
        .await?;
    Ok(HttpResponse::Created().json(serde_json::json!({"id": id})))
}

async fn fetch(platform: web::Data<Platform>, id: web::Path<i32>) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let name: String =
        platform.db.run(move |conn| Ok(widgets::table.find(id).select(widgets::name).first(conn)?)).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"id": id, "name": name})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Order {
    #[allow(dead_code)]
    name: String,
    #[allow(dead_code)]
    items: Vec<Item>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Item {
    #[allow(dead_code)]
    sku: String,
    #[allow(dead_code)]
    count: u32,
}

async fn order(_body: Json<Order>) -> HttpResponse {
    HttpResponse::NoContent().finish()
}

fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/widgets").post(create))
        .service(web::resource("/widgets/{id}").get(fetch))
        .service(web::resource("/orders").post(order))
        .service(
            web::resource("/lenient/orders").app_data(meridian_platform::extract::lenient_json_config(64)).post(order),
        );
}

async fn problem(
    app: &impl actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
    >,
    req: test::TestRequest,
    status: u16,
) -> serde_json::Value {
    let res = test::call_service(app, req.to_request()).await;
    assert_eq!(res.status().as_u16(), status);
    assert_eq!(res.headers().get("content-type").unwrap(), "application/problem+json");
    assert!(res.headers().contains_key("x-request-id"));
    let body: serde_json::Value = serde_json::from_slice(&test::read_body(res).await).unwrap();
    assert_eq!(body["status"], status);
    body
}

#[actix_rt::test]
async fn errors_are_problem_json_with_the_right_status() {
    let db = TestDb::new(&SERVICE);
    let app = test::init_service(test_platform(&SERVICE, &db, &[("MAX_JSON_BYTES", "1024")]).app(routes)).await;

    let created = test::TestRequest::post().uri("/widgets").set_json(serde_json::json!({"name": "gear"})).to_request();
    assert_eq!(test::call_service(&app, created).await.status(), 201);

    let body = problem(
        &app,
        test::TestRequest::post()
            .uri("/widgets")
            .insert_header(("content-type", "application/json"))
            .set_payload("{\"name\": "),
        400,
    )
    .await;
    assert!(body["detail"].as_str().unwrap().contains("malformed JSON"));
    let body =
        problem(&app, test::TestRequest::post().uri("/widgets").set_json(serde_json::json!({"nam": "x"})), 400).await;
    assert!(body["errors"]["nam"].is_array(), "the offending field is named: {body}");
    problem(&app, test::TestRequest::get().uri("/widgets/999"), 404).await;
    problem(&app, test::TestRequest::get().uri("/nowhere"), 404).await;
    problem(&app, test::TestRequest::post().uri("/widgets").set_json(serde_json::json!({"name": "gear"})), 409).await;
    problem(
        &app,
        test::TestRequest::post().uri("/widgets").set_json(serde_json::json!({"name": "x".repeat(2000)})),
        413,
    )
    .await;
    problem(
        &app,
        test::TestRequest::post().uri("/widgets").insert_header(("content-type", "text/plain")).set_payload("{}"),
        415,
    )
    .await;
    problem(&app, test::TestRequest::delete().uri("/widgets/1"), 405).await;
    let body =
        problem(&app, test::TestRequest::post().uri("/widgets").set_json(serde_json::json!({"name": ""})), 422).await;
    assert!(!body.to_string().contains("widgets_name_check"), "no SQL detail leaks: {body}");
}

#[actix_rt::test]
async fn json_body_errors_name_the_field_by_its_path() {
    let db = TestDb::new(&SERVICE);
    let app = test::init_service(test_platform(&SERVICE, &db, &[("MAX_JSON_BYTES", "1024")]).app(routes)).await;
    let post = |body: serde_json::Value| test::TestRequest::post().uri("/orders").set_json(body);
    let ok = serde_json::json!({"name": "n", "items": [{"sku": "a", "count": 1}]});
    assert_eq!(test::call_service(&app, post(ok).to_request()).await.status(), 204);

    // A value of the wrong type: detail and `errors` keyed by the path, as validation errors are.
    let body = problem(&app, post(serde_json::json!({"name": 5, "items": []})), 400).await;
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.starts_with("name: invalid type: integer `5`, expected a string"), "{body}");
    assert_eq!(body["errors"], serde_json::json!({"name": ["invalid type: integer `5`, expected a string"]}));

    // Nested and in arrays.
    let wrong = serde_json::json!({"name": "n", "items": [{"sku": "a", "count": 1}, {"sku": "b", "count": -2}]});
    let body = problem(&app, post(wrong), 400).await;
    assert_eq!(body["errors"]["items[1].count"][0], "invalid value: integer `-2`, expected u32", "{body}");

    // Missing fields: keyed by the missing field under its parent.
    let body = problem(&app, post(serde_json::json!({"items": []})), 400).await;
    assert_eq!(body["errors"]["name"][0], "missing field `name`", "{body}");
    let body = problem(&app, post(serde_json::json!({"name": "n", "items": [{"count": 1}]})), 400).await;
    assert_eq!(body["errors"]["items[0].sku"][0], "missing field `sku`", "{body}");

    // Unknown fields: keyed by the unknown field.
    let body = problem(&app, post(serde_json::json!({"name": "n", "items": [], "colour": "red"})), 400).await;
    assert!(body["errors"]["colour"][0].as_str().unwrap().starts_with("unknown field `colour`"), "{body}");
    let body =
        problem(&app, post(serde_json::json!({"name": "n", "items": [{"sku": "a", "count": 1, "x": 0}]})), 400).await;
    assert!(body["errors"]["items[0].x"].is_array(), "{body}");

    // Not the expected shape at all, or not JSON: no field to name, still a 400 with the position.
    let body = problem(&app, post(serde_json::json!("an order")), 400).await;
    assert!(body.get("errors").is_none(), "{body}");
    let malformed = |payload: &'static str| {
        test::TestRequest::post()
            .uri("/orders")
            .insert_header(("content-type", "application/json"))
            .set_payload(payload)
    };
    for payload in ["{\"name\": ", "{\"name\": \"n\", \"items\": []} x", ""] {
        let body = problem(&app, malformed(payload), 400).await;
        assert!(body["detail"].as_str().unwrap().starts_with("malformed JSON body"), "{payload}: {body}");
        assert!(body.get("errors").is_none(), "{body}");
    }

    // The JsonConfig in force still decides size and content type.
    let big = serde_json::json!({"name": "x".repeat(100), "items": []});
    problem(&app, test::TestRequest::post().uri("/lenient/orders").set_json(big), 413).await;
    let plain = test::TestRequest::post()
        .uri("/lenient/orders")
        .insert_header(("content-type", "text/plain"))
        .set_payload(r#"{"name": 1, "items": []}"#);
    assert!(problem(&app, plain, 400).await["errors"]["name"].is_array());
    let plain =
        test::TestRequest::post().uri("/orders").insert_header(("content-type", "text/plain")).set_payload("{}");
    problem(&app, plain, 415).await;
}

#[core::prelude::v1::test]
fn bodies_in_memory_are_read_the_same_way() {
    use meridian_platform::extract::from_slice;
    let err = from_slice::<Order>(br#"{"name": "n", "items": [{"sku": 1, "count": 1}]}"#).err().unwrap();
    assert_eq!(err.status, 400);
    assert_eq!(err.errors.unwrap()["items[0].sku"], ["invalid type: integer `1`, expected a string"]);
    let err = from_slice::<Order>(br#"{"name": "n", "items": []} []"#).err().unwrap();
    assert!(err.detail.starts_with("malformed JSON body: trailing characters"), "{}", err.detail);
    assert!(from_slice::<Order>(b" {\"name\": \"n\", \"items\": []}\n").is_ok());
}

#[actix_rt::test]
async fn common_endpoints_and_headers() {
    let db = TestDb::new(&SERVICE);
    let app = test::init_service(test_platform(&SERVICE, &db, &[]).app(routes)).await;
    for path in ["/running", "/ready", "/version", "/metrics", "/openapi.json"] {
        let res = test::call_service(&app, test::TestRequest::get().uri(path).to_request()).await;
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(res.headers().get("x-content-type-options").unwrap(), "nosniff");
        assert_eq!(res.headers().get("x-frame-options").unwrap(), "DENY");
    }
    let head = test::TestRequest::default().method(actix_web::http::Method::HEAD).uri("/widgets/999").to_request();
    assert_eq!(test::call_service(&app, head).await.status(), 404, "HEAD is routed like GET");
    let head = test::TestRequest::default().method(actix_web::http::Method::HEAD).uri("/version").to_request();
    assert_eq!(test::call_service(&app, head).await.status(), 200);
    let version: serde_json::Value =
        test::call_and_read_body_json(&app, test::TestRequest::get().uri("/version").to_request()).await;
    assert_eq!(version["version"], "1.2.3");
    let openapi: serde_json::Value =
        test::call_and_read_body_json(&app, test::TestRequest::get().uri("/openapi.json").to_request()).await;
    assert!(openapi["openapi"].as_str().unwrap().starts_with("3.1"));
    assert!(openapi["paths"]["/ready"].is_object());
    let res = test::call_service(
        &app,
        test::TestRequest::get().uri("/running").insert_header(("x-request-id", "abc-123")).to_request(),
    )
    .await;
    assert_eq!(res.headers().get("x-request-id").unwrap(), "abc-123");
    let res = test::call_service(
        &app,
        test::TestRequest::get().uri("/running").insert_header(("x-request-id", "bad id!")).to_request(),
    )
    .await;
    assert_ne!(res.headers().get("x-request-id").unwrap(), "bad id!");
}

#[actix_rt::test]
async fn rate_limit_answers_429_with_retry_after_per_client() {
    let db = TestDb::new(&SERVICE);
    let app = test::init_service(test_platform(&SERVICE, &db, &[("RATELIMIT_RATE", "2/m")]).app(routes)).await;
    let from = |ip: &str| test::TestRequest::get().uri("/widgets/1").peer_addr(format!("{ip}:1000").parse().unwrap());
    for _ in 0..2 {
        assert_eq!(test::call_service(&app, from("203.0.113.1").to_request()).await.status(), 404);
    }
    let res = test::call_service(&app, from("203.0.113.1").to_request()).await;
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
    assert_eq!(
        test::call_service(&app, from("203.0.113.2").to_request()).await.status(),
        404,
        "another client is not limited"
    );
    assert_eq!(
        test::call_service(&app, from("203.0.113.1").uri("/running").to_request()).await.status(),
        200,
        "probes are never limited"
    );
}

/// A TCP proxy in front of Postgres that the test can cut, to simulate the database going away.
async fn start_proxy(target: SocketAddr, open: Arc<AtomicBool>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    actix_rt::spawn(async move {
        loop {
            let (mut client, _) = listener.accept().await.unwrap();
            let open = open.clone();
            actix_rt::spawn(async move {
                if !open.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(mut server) = tokio::net::TcpStream::connect(target).await else { return };
                let (mut cr, mut cw) = client.split();
                let (mut sr, mut sw) = server.split();
                let watch = async {
                    while open.load(Ordering::SeqCst) {
                        actix_rt::time::sleep(Duration::from_millis(50)).await;
                    }
                };
                tokio::select! {
                    _ = tokio::io::copy(&mut cr, &mut sw) => {}
                    _ = tokio::io::copy(&mut sr, &mut cw) => {}
                    () = watch => {}
                }
            });
        }
    });
    addr
}

/// Polls `/ready` for up to five seconds.
async fn becomes_ready(
    app: &impl actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
    >,
) -> bool {
    for _ in 0..50 {
        if test::call_service(app, test::TestRequest::get().uri("/ready").to_request()).await.status() == 200 {
            return true;
        }
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

fn host_port(url: &str) -> SocketAddr {
    let rest = url.split("://").nth(1).unwrap();
    let authority = rest.split('/').next().unwrap();
    let host_port = authority.rsplit('@').next().unwrap();
    host_port.parse().expect("the test DATABASE_URL uses a numeric host:port")
}

#[actix_rt::test]
async fn ready_is_503_while_postgres_is_unreachable_and_200_when_it_returns() {
    let db = TestDb::new(&SERVICE);
    let open = Arc::new(AtomicBool::new(false));
    let proxy = start_proxy(host_port(&db.url), open.clone()).await;
    let user = db.url.split("://").nth(1).unwrap().split('@').next().unwrap().to_owned();
    let proxied = with_database(&format!("postgres://{user}@{proxy}/x"), db.name());
    let mut config = test_config(&SERVICE, &db, &[]);
    config.database_url = proxied;
    let app = test::init_service(Platform::new(&SERVICE, config).app(routes)).await;

    let res = test::call_service(&app, test::TestRequest::get().uri("/ready").to_request()).await;
    assert_eq!(res.status(), 503, "down at start");
    assert!(res.headers().contains_key("retry-after"));
    assert_eq!(test::call_service(&app, test::TestRequest::get().uri("/running").to_request()).await.status(), 200);
    problem(&app, test::TestRequest::get().uri("/widgets/1"), 503).await;

    open.store(true, Ordering::SeqCst);
    assert!(becomes_ready(&app).await, "ready once the database answers");

    open.store(false, Ordering::SeqCst);
    actix_rt::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        test::call_service(&app, test::TestRequest::get().uri("/ready").to_request()).await.status(),
        503,
        "down again"
    );
    open.store(true, Ordering::SeqCst);
    assert!(becomes_ready(&app).await, "reconnects after the outage");
}

/// Checkouts skip their test while queries keep succeeding; a connection cut under a busy pool
/// then fails at most one request (503, retry), and the pool stops trusting its connections.
#[actix_rt::test]
async fn a_connection_cut_while_busy_fails_at_most_one_request() {
    let db = TestDb::new(&SERVICE);
    let open = Arc::new(AtomicBool::new(true));
    let proxy = start_proxy(host_port(&db.url), open.clone()).await;
    let user = db.url.split("://").nth(1).unwrap().split('@').next().unwrap().to_owned();
    let mut config = test_config(&SERVICE, &db, &[]);
    config.database_url = with_database(&format!("postgres://{user}@{proxy}/x"), db.name());
    let app = test::init_service(Platform::new(&SERVICE, config).app(routes)).await;
    assert!(becomes_ready(&app).await);
    let created = test::call_service(
        &app,
        test::TestRequest::post().uri("/widgets").set_json(serde_json::json!({"name": "w"})).to_request(),
    )
    .await;
    assert_eq!(created.status(), 201);
    let id = test::read_body_json::<serde_json::Value, _>(created).await["id"].as_i64().unwrap();

    // A blip shorter than the pool's trust window: the pooled connection dies, new ones work.
    open.store(false, Ordering::SeqCst);
    actix_rt::time::sleep(Duration::from_millis(150)).await;
    open.store(true, Ordering::SeqCst);

    let uri = format!("/widgets/{id}");
    let first = test::call_service(&app, test::TestRequest::get().uri(&uri).to_request()).await.status();
    assert!(first == 200 || first == 503, "the first request after the cut answers 200 or 503, not {first}");
    for _ in 0..5 {
        let status = test::call_service(&app, test::TestRequest::get().uri(&uri).to_request()).await.status();
        assert_eq!(status, 200, "later requests get live connections");
    }
}

#[core::prelude::v1::test]
fn migrations_applied_concurrently_apply_once_without_error() {
    let admin = meridian_platform::testing::base_url();
    let name = format!("meridian_test_concurrent_{}", uuid::Uuid::new_v4().simple());
    let mut conn = PgConnection::establish(&admin).unwrap();
    diesel::connection::SimpleConnection::batch_execute(&mut conn, &format!("CREATE DATABASE {name}")).unwrap();
    let url = with_database(&admin, &name);
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || meridian_platform::db::migrate(&url, SERVICE.migrations))
        })
        .collect();
    for handle in handles {
        handle.join().unwrap().expect("every concurrent run succeeds");
    }
    let mut db = PgConnection::establish(&url).unwrap();
    let applied: i64 =
        diesel::dsl::sql::<diesel::sql_types::BigInt>("SELECT count(*) FROM platformtest.__diesel_schema_migrations")
            .get_result(&mut db)
            .unwrap();
    assert_eq!(applied, 1);
    assert!(meridian_platform::db::migrations_applied(&mut db, SERVICE.migrations).unwrap());
    drop(db);
    diesel::connection::SimpleConnection::batch_execute(&mut conn, &format!("DROP DATABASE {name} WITH (FORCE)"))
        .unwrap();
}

// `db::Statement`: kept prepared per connection (which `sql_query` never is), binds in order.

#[derive(QueryableByName, Debug, PartialEq)]
struct Row {
    #[diesel(sql_type = Text)]
    label: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct Prepared {
    #[diesel(sql_type = BigInt)]
    prepared: i64,
}

fn prepared_like(conn: &mut PgConnection, marker: &str) -> i64 {
    diesel::sql_query("SELECT count(*) AS prepared FROM pg_prepared_statements WHERE statement LIKE $1")
        .bind::<Text, _>(format!("%{marker}%"))
        .get_result::<Prepared>(conn)
        .unwrap()
        .prepared
}

#[core::prelude::v1::test]
fn statements_bind_in_order_and_stay_prepared() {
    let db = TestDb::new(&SERVICE);
    let mut conn = db.conn();
    for (label, n) in [("a", 1), ("b", 2), ("c", 3)] {
        let row: Row = Statement::new("SELECT ")
            .text(label)
            .sql("::text AS label, ")
            .bigint(n)
            .sql(" * 10 AS n /* statement-marker */")
            .get_result(&mut conn)
            .unwrap();
        assert_eq!(row, Row { label: label.to_owned(), n: n * 10 });
    }
    assert_eq!(prepared_like(&mut conn, "statement-marker"), 1, "one prepared statement, reused");

    diesel::insert_into(widgets::table).values(widgets::name.eq("kept")).execute(&mut conn).unwrap();
    diesel::insert_into(widgets::table).values(widgets::name.eq("dropped")).execute(&mut conn).unwrap();
    // Typed: rows read by position; a `text[]` bind for `= ANY(...)`.
    for _ in 0..3 {
        let rows: Vec<(i32, String)> = Statement::new("SELECT id, name FROM widgets WHERE name = ANY(")
            .texts(vec!["kept".to_owned(), "absent".to_owned()])
            .sql(") /* typed-marker */")
            .typed::<(diesel::sql_types::Integer, Text)>()
            .load(&mut conn)
            .unwrap();
        assert_eq!(rows.into_iter().map(|(_, name)| name).collect::<Vec<_>>(), ["kept"]);
    }
    assert_eq!(prepared_like(&mut conn, "typed-marker"), 1, "a typed statement is prepared too");
}
