//! The HTTP contract against a real Postgres through the real App.

use std::collections::HashMap;

use actix_web::{test, web};
use base64::Engine;
use diesel::prelude::*;
use meridian_platform::Platform;
use meridian_platform::testing::{TestDb, test_platform};
use registration::settings::DEMO_PIN;
use registration::{AppState, SERVICE, Settings, configure, token};
use serde_json::{Value, json};

fn setup(db: &TestDb, overrides: &[(&str, &str)]) -> (Platform, web::Data<AppState>) {
    let platform = test_platform(&SERVICE, db, overrides);
    let settings = Settings::from_config(&platform.config).expect("test settings");
    let state = web::Data::new(AppState::new(&platform, settings).expect("state"));
    (platform, state)
}

macro_rules! app {
    ($platform:expr, $state:expr) => {{
        let state = $state.clone();
        test::init_service($platform.app(move |cfg| {
            cfg.app_data(state.clone());
            configure(cfg);
        }))
        .await
    }};
}

macro_rules! call {
    ($app:expr, $req:expr) => {{
        let res = test::call_service(&$app, $req.peer_addr("198.51.100.7:40000".parse().unwrap()).to_request()).await;
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let bytes = test::read_body(res).await;
        let body: Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, headers, body)
    }};
}

fn form(uri: &str, pairs: &[(&str, &str)]) -> test::TestRequest {
    test::TestRequest::post()
        .uri(uri)
        .insert_header(("content-type", "application/x-www-form-urlencoded"))
        .set_payload(serde_urlencoded::to_string(pairs).unwrap())
}

fn problem_code(headers: &actix_web::http::header::HeaderMap, body: &Value) -> String {
    assert_eq!(headers.get("content-type").unwrap(), "application/problem+json", "{body}");
    body["code"].as_str().unwrap_or("").to_owned()
}

#[actix_rt::test]
async fn registration_contract_statuses_and_bodies() {
    let db = TestDb::new(&SERVICE);
    let (platform, state) = setup(&db, &[]);
    let app = app!(platform, state);

    let (status, _, body) = call!(app, test::TestRequest::get().uri("/"));
    assert_eq!((status, body), (200, json!({"status": "up"})));

    // Form-encoded, as the EMR client sends it.
    let (status, _, body) = call!(
        app,
        form(
            "/api/registration",
            &[("email", " Ana.Perez@Clinic.EXAMPLE.org "), ("version", "7.0.1"), ("distribution", "docker")]
        )
    );
    assert_eq!(status, 201, "{body}");
    let product: uuid::Uuid = body["productId"].as_str().unwrap().parse().unwrap();
    assert_eq!(body.as_object().unwrap().len(), 1, "only productId: {body}");
    // JSON.
    let (status, _, body) = call!(
        app,
        test::TestRequest::post()
            .uri("/api/registration")
            .set_json(json!({"email": "json@example.org", "version": "6.1.0"}))
    );
    assert_eq!(status, 201, "{body}");
    // Query string.
    let (status, _, body) =
        call!(app, test::TestRequest::post().uri("/api/registration?email=query%40example.org&version=7.0.0"));
    assert_eq!(status, 201, "{body}");

    // The same address in another case: 409.
    let (status, headers, body) =
        call!(app, form("/api/registration", &[("email", "ANA.PEREZ@clinic.example.org"), ("version", "7.0.2")]));
    assert_eq!(status, 409);
    assert_eq!(problem_code(&headers, &body), "AlreadyRegistered");

    for bad in
        ["", "not-an-email", "a@b", "a..b@example.org", "x@exa mple.org", &format!("{}@example.org", "a".repeat(65))]
    {
        let (status, headers, body) = call!(app, form("/api/registration", &[("email", bad), ("version", "7.0.1")]));
        assert_eq!(status, 400, "{bad:?}: {body}");
        assert_eq!(problem_code(&headers, &body), "InvalidEmail", "{bad:?}");
    }
    let (status, headers, body) =
        call!(app, form("/api/registration", &[("email", "v@example.org"), ("version", &"9".repeat(65))]));
    assert_eq!(status, 400, "{body}");
    assert_eq!(problem_code(&headers, &body), "InvalidField");

    let (status, _, body) = call!(app, test::TestRequest::get().uri("/api/registration/unique"));
    assert_eq!((status, body), (200, json!({"count": 3})));

    // Stored normalised, with version, distribution and the client address.
    use registration::schema::registrations::dsl as r;
    let (email, version, distribution, ip): (String, String, Option<String>, Option<String>) = r::registrations
        .find(product)
        .select((r::email, r::version, r::distribution, r::client_ip))
        .first(&mut db.conn())
        .unwrap();
    assert_eq!(email, "Ana.Perez@clinic.example.org");
    assert_eq!(version, "7.0.1");
    assert_eq!(distribution.as_deref(), Some("docker"));
    assert_eq!(ip.as_deref(), Some("198.51.100.7"));
    // The database refuses a case-variant duplicate on its own, too.
    let dup = diesel::insert_into(r::registrations)
        .values((r::id.eq(uuid::Uuid::new_v4()), r::email.eq("ana.perez@CLINIC.example.org"), r::version.eq("1")))
        .execute(&mut db.conn());
    assert!(dup.is_err());
}

#[actix_rt::test]
async fn registrations_are_rate_limited_per_client_address() {
    let db = TestDb::new(&SERVICE);
    let (platform, state) = setup(&db, &[("REGISTRATION_REGISTER_RATE", "2/m")]);
    let app = app!(platform, state);
    for i in 0..2 {
        let (status, _, body) =
            call!(app, form("/api/registration", &[("email", &format!("r{i}@example.org")), ("version", "1")]));
        assert_eq!(status, 201, "{body}");
    }
    let (status, headers, body) =
        call!(app, form("/api/registration", &[("email", "r2@example.org"), ("version", "1")]));
    assert_eq!(status, 429, "{body}");
    assert!(headers.contains_key("retry-after"));
    // Another client address has its own budget.
    let res = test::call_service(
        &app,
        form("/api/registration", &[("email", "r3@example.org"), ("version", "1")])
            .peer_addr("203.0.113.9:5000".parse().unwrap())
            .to_request(),
    )
    .await;
    assert_eq!(res.status(), 201);
}

macro_rules! register {
    ($app:expr, $email:expr) => {{
        let (status, _, body) = call!($app, form("/api/registration", &[("email", $email), ("version", "7.0.3")]));
        assert_eq!(status, 201, "{body}");
        body["productId"].as_str().unwrap().parse::<uuid::Uuid>().unwrap()
    }};
}

fn admin_token(platform: &Platform, scope: &str) -> String {
    let keys = meridian_auth::JwtKeys::from_config(&platform.config.jwt).unwrap();
    keys.issue(&json!({
        "sub": "board-chair", "scope": scope, "iss": keys.issuer(), "aud": keys.audience(),
        "exp": chrono::Utc::now().timestamp() + 600,
    }))
    .unwrap()
}

#[actix_rt::test]
async fn broadcast_contract_queues_for_every_active_registration() {
    let db = TestDb::new(&SERVICE);
    let (platform, state) = setup(&db, &[]);
    let app = app!(platform, state);
    for i in 0..3 {
        let (status, _, _) =
            call!(app, form("/api/registration", &[("email", &format!("b{i}@example.org")), ("version", "7")]));
        assert_eq!(status, 201);
    }

    let (status, headers, body) =
        call!(app, form("/api/registration/broadcast", &[("secretPin", "wrong"), ("title", "T"), ("contents", "C")]));
    assert_eq!(status, 401);
    assert_eq!(problem_code(&headers, &body), "InvalidSecretPin");
    let (status, headers, body) = call!(app, form("/api/registration/broadcast", &[("title", "T"), ("contents", "C")]));
    assert_eq!(status, 401);
    assert_eq!(problem_code(&headers, &body), "InvalidSecretPin");

    let long_title = "t".repeat(201);
    let long_contents = "c".repeat(100_001);
    for (title, contents) in [
        ("", "C"),
        ("T", ""),
        ("T", "   "),
        (long_title.as_str(), "C"),
        ("T", long_contents.as_str()),
        ("a\r\nBcc: x", "C"),
    ] {
        let (status, headers, body) = call!(
            app,
            form("/api/registration/broadcast", &[("secretPin", DEMO_PIN), ("title", title), ("contents", contents)])
        );
        assert_eq!(status, 400, "{title:?}: {body}");
        assert_eq!(problem_code(&headers, &body), "InvalidEmailMessage");
    }

    // dryRun renders, escaped, and queues nothing.
    let (status, _, body) = call!(
        app,
        test::TestRequest::post().uri("/api/registration/broadcast").set_json(json!({
            "secretPin": DEMO_PIN, "title": "<b>Hi</b>", "contents": "x <script>", "dryRun": true
        }))
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "dryRun");
    assert_eq!(body["recipients"], 3);
    assert!(body["html"].as_str().unwrap().contains("x &lt;script&gt;"));
    assert!(!body["html"].as_str().unwrap().contains("<script>"));

    let (status, _, body) = call!(
        app,
        form(
            "/api/registration/broadcast",
            &[("secretPin", DEMO_PIN), ("title", "Release 7.0.3"), ("contents", "Please update.")]
        )
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "sent");
    assert_eq!(body["recipients"], 3);
    let id = body["broadcastId"].as_str().unwrap().to_owned();

    // Status by PIN header, basic auth and admin JWT.
    let uri = format!("/api/registration/broadcast/{id}");
    let (status, _, body) = call!(app, test::TestRequest::get().uri(&uri).insert_header(("X-Secret-Pin", DEMO_PIN)));
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["queued"].clone(), body["sent"].clone(), body["failed"].clone()), (json!(3), json!(0), json!(0)));
    assert_eq!(body["sentBy"], "pin");
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("maria:{DEMO_PIN}"));
    let (status, _, _) =
        call!(app, test::TestRequest::get().uri(&uri).insert_header(("Authorization", format!("Basic {basic}"))));
    assert_eq!(status, 200);
    let token = admin_token(&platform, "admin");
    let (status, _, _) =
        call!(app, test::TestRequest::get().uri(&uri).insert_header(("Authorization", format!("Bearer {token}"))));
    assert_eq!(status, 200);
    let weak = admin_token(&platform, "read:other");
    let (status, _, _) =
        call!(app, test::TestRequest::get().uri(&uri).insert_header(("Authorization", format!("Bearer {weak}"))));
    assert_eq!(status, 403);
    let (status, _, _) = call!(app, test::TestRequest::get().uri(&uri));
    assert_eq!(status, 401);
    let (status, _, _) = call!(
        app,
        test::TestRequest::get()
            .uri(&format!("/api/registration/broadcast/{}", uuid::Uuid::new_v4()))
            .insert_header(("X-Secret-Pin", DEMO_PIN))
    );
    assert_eq!(status, 404);

    // A board member with a JWT broadcasts too; the list records who sent what.
    let (status, _, body) = call!(
        app,
        test::TestRequest::post()
            .uri("/api/registration/broadcast")
            .insert_header(("Authorization", format!("Bearer {token}")))
            .set_json(json!({"title": "Second", "contents": "More."}))
    );
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = call!(
        app,
        test::TestRequest::get().uri("/api/registration/broadcast").insert_header(("X-Secret-Pin", DEMO_PIN))
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["total"], 2);
    let senders: Vec<&str> = body["items"].as_array().unwrap().iter().map(|b| b["sentBy"].as_str().unwrap()).collect();
    assert_eq!(senders, ["jwt:board-chair", "pin"]);
    let rows: i64 = registration::schema::deliveries::table.count().get_result(&mut db.conn()).unwrap();
    assert_eq!(rows, 6, "one delivery per active registration per broadcast");
}

#[actix_rt::test]
async fn wrong_pins_are_throttled_per_client_address() {
    let db = TestDb::new(&SERVICE);
    let (platform, state) = setup(&db, &[("REGISTRATION_PIN_RATE", "3/m")]);
    let app = app!(platform, state);
    for _ in 0..3 {
        let (status, _, _) = call!(
            app,
            form("/api/registration/broadcast", &[("secretPin", "guess"), ("title", "T"), ("contents", "C")])
        );
        assert_eq!(status, 401);
    }
    for pin in ["guess", DEMO_PIN] {
        let (status, headers, body) =
            call!(app, form("/api/registration/broadcast", &[("secretPin", pin), ("title", "T"), ("contents", "C")]));
        assert_eq!(status, 429, "{body}");
        assert!(headers.contains_key("retry-after"));
    }
    // Another address is not locked out by this one's guesses.
    let res = test::call_service(
        &app,
        form("/api/registration/broadcast", &[("secretPin", DEMO_PIN), ("title", "T"), ("contents", "C")])
            .peer_addr("203.0.113.50:1".parse().unwrap())
            .to_request(),
    )
    .await;
    assert_eq!(res.status(), 200);
}

#[actix_rt::test]
async fn opt_out_reduces_the_count_and_re_registration_keeps_the_product_id() {
    let db = TestDb::new(&SERVICE);
    let (platform, state) = setup(&db, &[]);
    let key = state.settings.unsubscribe_key.clone();
    let app = app!(platform, state);
    let a = register!(app, "o'neil&co@example.org");
    let b = register!(app, "other@example.org");
    let token_a = token::sign(&key, a);

    let res = test::call_service(
        &app,
        test::TestRequest::get().uri(&format!("/api/registration/unsubscribe?token={token_a}")).to_request(),
    )
    .await;
    assert_eq!(res.status(), 200);
    let csp = res.headers().get("content-security-policy").unwrap().to_str().unwrap().to_owned();
    assert!(csp.contains("style-src 'sha256-") && !csp.contains("unsafe"), "{csp}");
    let html = String::from_utf8(test::read_body(res).await.to_vec()).unwrap();
    assert!(html.contains("o&#39;neil&amp;co@example.org"), "{html}");
    assert!(html.contains("<form method=\"post\""));

    // RFC 8058 one-click POST.
    let (status, _, _) = call!(
        app,
        form(&format!("/api/registration/unsubscribe?token={token_a}"), &[("List-Unsubscribe", "One-Click")])
    );
    assert_eq!(status, 200);
    let (_, _, body) = call!(app, test::TestRequest::get().uri("/api/registration/unique"));
    assert_eq!(body, json!({"count": 1}));
    // Using the link again changes nothing.
    let (status, _, body) =
        call!(app, test::TestRequest::post().uri(&format!("/api/registration/unsubscribe?token={token_a}")));
    assert_eq!(status, 200);
    assert!(body.as_str().unwrap().contains("Unsubscribed"));
    let (_, _, body) =
        call!(app, test::TestRequest::get().uri(&format!("/api/registration/unsubscribe?token={token_a}")));
    assert!(body.as_str().unwrap().contains("Already unsubscribed"));

    // Forged tokens: another id with a's tag, a token signed with another key, garbage.
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&token_a).unwrap();
    let mut moved = raw.clone();
    moved[..16].copy_from_slice(b.as_bytes());
    let moved = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(moved);
    let foreign = token::sign(b"some-other-key-that-is-32-bytes-long", b);
    for forged in [moved.as_str(), foreign.as_str(), "garbage", ""] {
        let (status, _, _) =
            call!(app, test::TestRequest::post().uri(&format!("/api/registration/unsubscribe?token={forged}")));
        assert_eq!(status, 400, "{forged:?}");
        let (status, _, _) =
            call!(app, test::TestRequest::get().uri(&format!("/api/registration/unsubscribe?token={forged}")));
        assert_eq!(status, 400, "{forged:?}");
    }
    let (_, _, body) = call!(app, test::TestRequest::get().uri("/api/registration/unique"));
    assert_eq!(body, json!({"count": 1}), "b is still subscribed");

    // Registering again after opting out: 201 with the same product id; counted again.
    let (status, _, body) =
        call!(app, form("/api/registration", &[("email", "O'NEIL&CO@EXAMPLE.ORG"), ("version", "7.1.0")]));
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["productId"], a.to_string());
    let (_, _, body) = call!(app, test::TestRequest::get().uri("/api/registration/unique"));
    assert_eq!(body, json!({"count": 2}));
    // And once active, registering again is a conflict.
    let (status, _, _) =
        call!(app, form("/api/registration", &[("email", "o'neil&co@example.org"), ("version", "7.1.0")]));
    assert_eq!(status, 409);
}

#[actix_rt::test]
async fn one_click_unsubscribe_accepts_multipart_and_right_pins_are_not_throttled() {
    let db = TestDb::new(&SERVICE);
    let (platform, state) = setup(&db, &[("REGISTRATION_PIN_RATE", "2/m")]);
    let key = state.settings.unsubscribe_key.clone();
    let app = app!(platform, state);
    let id = register!(app, "multipart@example.org");
    // RFC 8058 allows the one-click POST as multipart/form-data.
    let body =
        "--b0undary\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--b0undary--\r\n";
    let (status, _, _) = call!(
        app,
        test::TestRequest::post()
            .uri(&format!("/api/registration/unsubscribe?token={}", token::sign(&key, id)))
            .insert_header(("content-type", "multipart/form-data; boundary=b0undary"))
            .set_payload(body)
    );
    assert_eq!(status, 200);
    let (_, _, body) = call!(app, test::TestRequest::get().uri("/api/registration/unique"));
    assert_eq!(body, json!({"count": 0}));
    // A board member polling with the right PIN is never locked out by the wrong-PIN budget.
    for _ in 0..4 {
        let (status, _, _) = call!(
            app,
            test::TestRequest::get().uri("/api/registration/broadcast").insert_header(("X-Secret-Pin", DEMO_PIN))
        );
        assert_eq!(status, 200);
    }
}

#[actix_rt::test]
async fn usage_reports_are_validated_stored_and_summarised() {
    let db = TestDb::new(&SERVICE);
    let (platform, state) = setup(&db, &[]);
    let app = app!(platform, state);
    let site = uuid::Uuid::new_v4();
    let doc = |version: &str, interval: &str, site: uuid::Uuid| {
        json!({
            "usageRecords": [
                {"event_type": "login", "event_label": "Login", "event_url": "/interface/login", "event_target": "",
                 "first_event": "2026-11-01 08:00:00", "last_event": "2026-11-30 18:00:00", "count": 120},
                {"event_type": "report", "event_label": "x", "event_url": "", "event_target": "", "count": "3"}
            ],
            "localeData": {"site_uuid": site.to_string(), "reporting_interval": interval, "reporting_date": "2026-12-01",
                "time_zone": "America/Bogota", "locale": "es", "version": version, "environment": "production",
                "distribution": "docker", "php_version": "8.2"}
        })
    };
    // Without a JSON content type, too (clients vary).
    let (status, _, body) = call!(
        app,
        test::TestRequest::post()
            .uri(&format!("/api/usage?SiteID={site}"))
            .set_payload(doc("7.0.3", "202611", site).to_string())
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "stored");
    assert_eq!(body["records"], 2);
    // Resending the month replaces it; another site and month add up.
    let (status, _, _) = call!(
        app,
        test::TestRequest::post().uri(&format!("/api/usage?SiteID={site}")).set_json(doc("7.0.3", "202611", site))
    );
    assert_eq!(status, 200);
    let other = uuid::Uuid::new_v4();
    let (status, _, _) = call!(
        app,
        test::TestRequest::post().uri(&format!("/api/usage?SiteID={other}")).set_json(doc("7.0.2", "202611", other))
    );
    assert_eq!(status, 200);
    let (status, _, _) = call!(
        app,
        test::TestRequest::post().uri(&format!("/api/usage?SiteID={site}")).set_json(doc("7.0.3", "202610", site))
    );
    assert_eq!(status, 200);

    let (status, _, _) =
        call!(app, test::TestRequest::post().uri("/api/usage?SiteID=nope").set_json(doc("7", "202611", site)));
    assert_eq!(status, 400);
    let (status, _, body) = call!(
        app,
        test::TestRequest::post().uri(&format!("/api/usage?SiteID={other}")).set_json(doc("7", "2026-11", site))
    );
    assert_eq!(status, 422, "{body}");
    assert!(body["errors"]["localeData.reporting_interval"].is_array());
    assert!(body["errors"]["localeData.site_uuid"].is_array());
    let (status, _, _) = call!(
        app,
        test::TestRequest::post()
            .uri(&format!("/api/usage?SiteID={site}"))
            .set_json(json!({"usageRecords": vec![json!({"event_type": "x", "count": 1}); 5001], "localeData": {}}))
    );
    assert!(status == 413 || status == 422, "{status}");

    let (status, _, _) = call!(app, test::TestRequest::get().uri("/api/usage/summary"));
    assert_eq!(status, 401);
    let (status, _, body) =
        call!(app, test::TestRequest::get().uri("/api/usage/summary").insert_header(("X-Secret-Pin", DEMO_PIN)));
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["installs"],
        json!([
            {"month": "202611", "version": "7.0.2", "installs": 1},
            {"month": "202611", "version": "7.0.3", "installs": 1},
            {"month": "202610", "version": "7.0.3", "installs": 1},
        ])
    );
}

#[actix_rt::test]
async fn openapi_lists_every_path() {
    let db = TestDb::new(&SERVICE);
    let (platform, state) = setup(&db, &[]);
    let app = app!(platform, state);
    let (status, _, body) = call!(app, test::TestRequest::get().uri("/openapi.json"));
    assert_eq!(status, 200);
    for path in [
        "/",
        "/api/registration",
        "/api/registration/unique",
        "/api/registration/broadcast",
        "/api/registration/broadcast/{id}",
        "/api/registration/unsubscribe",
        "/api/usage",
        "/api/usage/summary",
    ] {
        assert!(body["paths"][path].is_object(), "{path} missing");
    }
}

#[core::prelude::v1::test]
fn prod_mode_refuses_missing_secrets_naming_the_variable() {
    use meridian_platform::Config;
    let base: HashMap<String, String> = [
        ("MODE", "prod"),
        ("DATABASE_URL", "postgres://db/meridian"),
        ("JWT_SECRET", "a-production-secret-that-is-long-enough-0123"),
        ("SMTP_URL", "smtp://mail.example.org:25"),
        ("MAIL_FROM", "Board <board@example.org>"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let settings = |extra: &[(&str, &str)]| {
        let mut vars = base.clone();
        for (k, v) in extra {
            vars.insert((*k).to_owned(), (*v).to_owned());
        }
        Settings::from_config(&Config::from_vars("registration", 8084, &vars).unwrap())
    };
    assert_eq!(settings(&[]).unwrap_err().variable, "REGISTRATION_BROADCAST_PIN_HASH");
    assert_eq!(
        settings(&[("REGISTRATION_BROADCAST_PIN_HASH", "1234")]).unwrap_err().variable,
        "REGISTRATION_BROADCAST_PIN_HASH"
    );
    let hash = meridian_auth::password::hash("board pin");
    assert_eq!(
        settings(&[("REGISTRATION_BROADCAST_PIN_HASH", &hash)]).unwrap_err().variable,
        "REGISTRATION_UNSUBSCRIBE_KEY"
    );
    assert_eq!(
        settings(&[
            ("REGISTRATION_BROADCAST_PIN_HASH", &hash),
            ("REGISTRATION_UNSUBSCRIBE_KEY", registration::settings::DEV_UNSUBSCRIBE_KEY)
        ])
        .unwrap_err()
        .variable,
        "REGISTRATION_UNSUBSCRIBE_KEY"
    );
    let key = "k".repeat(40);
    assert_eq!(
        settings(&[("REGISTRATION_BROADCAST_PIN_HASH", &hash), ("REGISTRATION_UNSUBSCRIBE_KEY", &key)])
            .unwrap_err()
            .variable,
        "REGISTRATION_PUBLIC_URL"
    );
    let ok = settings(&[
        ("REGISTRATION_BROADCAST_PIN_HASH", &hash),
        ("REGISTRATION_UNSUBSCRIBE_KEY", &key),
        ("REGISTRATION_PUBLIC_URL", "https://registry.example.org"),
    ])
    .unwrap();
    assert!(ok.demo_pin.is_none());
}
