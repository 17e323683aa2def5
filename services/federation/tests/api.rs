//! The federation API through the real App against a real Postgres: Thalamus compatibility and
//! each item of "what the original gets wrong".

mod common;

use actix_web::test;
use common::*;
use diesel::prelude::*;
use diesel::sql_types::{Nullable, Text};

#[derive(QueryableByName)]
struct StoredHash {
    #[diesel(sql_type = Nullable<Text>)]
    password_hash: Option<String>,
}

fn stored_hash(h: &Harness, id: &str) -> Option<String> {
    diesel::sql_query("SELECT password_hash FROM people WHERE id = $1")
        .bind::<Text, _>(id)
        .get_result::<StoredHash>(&mut h.db.conn())
        .unwrap()
        .password_hash
}

#[actix_rt::test]
async fn login_answers_true_for_valid_credentials_and_401_with_challenge_otherwise() {
    let h = harness(&[]);
    let app = test::init_service(h.platform.app(app_config(&h))).await;
    let ok = call(&app, "GET", "/login", Some(PATIENT), None).await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json(), serde_json::json!(true));
    // The login is case-insensitive (federation ids are upper case).
    assert_eq!(call(&app, "GET", "/login", Some(("espgnu777org", PATIENT.1)), None).await.status, 200);

    let wrong = call(&app, "GET", "/login", Some((PATIENT.0, "nope")), None).await;
    wrong.problem(401);
    assert!(wrong.header("www-authenticate").unwrap().starts_with("Basic"));
    let unknown = call(&app, "GET", "/login", Some(("NOBODY000000", "nope")), None).await;
    let body = unknown.problem(401);
    // An unknown account answers exactly like a wrong password (no enumeration by the answer).
    assert_eq!(body["detail"], wrong.json()["detail"]);
    call(&app, "GET", "/login", None, None).await.problem(401);
    let metrics = call(&app, "GET", "/metrics", None, None).await.text();
    assert!(
        metrics.contains("federation_authentications_total{result=\"failed\"") && metrics.contains("result=\"cached\""),
        "{metrics}"
    );
}

#[actix_rt::test]
async fn authenticated_but_not_allowed_is_403_not_401() {
    let h = harness(&[]);
    let app = test::init_service(h.platform.app(app_config(&h))).await;
    // An end user reads their own record, not someone else's.
    assert_eq!(call(&app, "GET", "/people/ESPGNU777ORG", Some(PATIENT), None).await.status, 200);
    call(&app, "GET", "/people/ARGOTH222XYZ", Some(PATIENT), None).await.problem(403);
    call(&app, "GET", "/people", Some(PATIENT), None).await.problem(403);
    call(&app, "GET", "/people/ESPGNU777ORG/audit", Some(DOCTOR), None).await.problem(403);
}

#[actix_rt::test]
async fn repeated_failures_are_throttled_per_account_and_per_address() {
    let h = harness(&[("FEDERATION_FAILURES_PER_ACCOUNT", "3/h"), ("FEDERATION_FAILURES_PER_ADDRESS", "5/h")]);
    let app = test::init_service(h.platform.app(app_config(&h))).await;
    for _ in 0..3 {
        call(&app, "GET", "/login", Some((PATIENT.0, "guess")), None).await.problem(401);
    }
    // The account is locked for a while, even with the right password.
    let locked = call(&app, "GET", "/login", Some(PATIENT), None).await;
    locked.problem(429);
    assert!(locked.header("retry-after").unwrap().parse::<u64>().unwrap() >= 1);
    // Other accounts from the same address still work until the address budget is spent.
    assert_eq!(call(&app, "GET", "/login", Some(DOCTOR), None).await.status, 200);
    call(&app, "GET", "/login", Some(("NOBODY000001", "x")), None).await.problem(401);
    call(&app, "GET", "/login", Some(("NOBODY000002", "x")), None).await.problem(401);
    call(&app, "GET", "/login", Some(DOCTOR), None).await.problem(429);
}

#[actix_rt::test]
async fn no_response_ever_contains_a_password_hash() {
    let h = harness(&[]);
    let app = test::init_service(h.platform.app(app_config(&h))).await;
    let created = call(
        &app,
        "POST",
        "/people/newper000001",
        Some(DOCTOR),
        Some(r#"{"name": "Nia", "lastname": "New", "password": "first pass", "node_specific": {"x": 1}}"#),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.text());
    assert_no_hash(&created);
    let record = created.json();
    assert_eq!(record["id"], "NEWPER000001", "the id is upper-cased");
    assert_eq!(record["roles"], serde_json::json!(["end_user"]), "roles default to end_user");
    assert_eq!(record["node_specific"]["x"], 1, "unknown fields are kept");
    assert!(record.get("password").is_none());

    for uri in ["/people/NEWPER000001", "/people?limit=500", "/people?name=ni"] {
        let reply = call(&app, "GET", uri, Some(DOCTOR), None).await;
        assert_eq!(reply.status, 200);
        assert_no_hash(&reply);
    }
    let patched = call(
        &app,
        "PATCH",
        "/people/NEWPER000001",
        Some(("NEWPER000001", "first pass")),
        Some(r#"{"password": "second pass"}"#),
    )
    .await;
    assert_eq!(patched.status, 200);
    assert_no_hash(&patched);
}

#[actix_rt::test]
async fn passwords_are_hashed_bcrypt_hashes_kept_and_long_ones_refused() {
    let h = harness(&[]);
    let app = test::init_service(h.platform.app(app_config(&h))).await;
    // A clear password sent in PATCH is hashed, never stored in clear.
    let reply = call(&app, "PATCH", "/people/ESPGNU777ORG", Some(PATIENT), Some(r#"{"password": "new secret"}"#)).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let stored = stored_hash(&h, "ESPGNU777ORG").unwrap();
    assert!(stored.starts_with("$argon2id$"), "{stored}");
    assert!(!stored.contains("new secret"));
    assert_eq!(call(&app, "GET", "/login", Some((PATIENT.0, "new secret")), None).await.status, 200);

    // A bcrypt hash (from a Thalamus node) is stored as it is, and verifies.
    let bcrypt_hash = bcrypt::hash("node made", 4).unwrap().replacen("$2b$", "$2y$", 1);
    let body = serde_json::json!({"name": "Hash", "password": bcrypt_hash}).to_string();
    assert_eq!(call(&app, "POST", "/people/HASHED000001", Some(DOCTOR), Some(&body)).await.status, 201);
    assert_eq!(stored_hash(&h, "HASHED000001").unwrap(), bcrypt_hash);
    assert_eq!(call(&app, "GET", "/login", Some(("HASHED000001", "node made")), None).await.status, 200);

    // Over bcrypt's 72 bytes: 422, not 500 (on POST and on PATCH).
    let long = serde_json::json!({"password": "x".repeat(73)}).to_string();
    let refused = call(&app, "POST", "/people/LONGPW000001", Some(DOCTOR), Some(&long)).await.problem(422);
    assert!(refused["errors"]["password"].is_array());
    call(&app, "PATCH", "/people/ESPGNU777ORG", Some((PATIENT.0, "new secret")), Some(&long)).await.problem(422);
}

#[actix_rt::test]
async fn nobody_changes_their_own_roles_and_only_root_grants_roles_or_active_audited() {
    let h = harness(&[]);
    let app = test::init_service(h.platform.app(app_config(&h))).await;
    // An end user cannot promote themselves.
    let own = r#"{"roles": ["end_user", "health_professional"]}"#;
    call(&app, "PATCH", "/people/ESPGNU777ORG", Some(PATIENT), Some(own)).await.problem(403);
    // Not even root changes root's own roles or deactivates itself.
    call(&app, "PATCH", "/people/ARGBUE111FAV", Some(ROOT), Some(r#"{"roles": ["end_user"]}"#)).await.problem(403);
    call(&app, "PATCH", "/people/ARGBUE111FAV", Some(ROOT), Some(r#"{"active": false}"#)).await.problem(403);
    // A health professional grants nothing.
    call(&app, "PATCH", "/people/ESPGNU777ORG", Some(DOCTOR), Some(own)).await.problem(403);
    call(&app, "PATCH", "/people/ESPGNU777ORG", Some(DOCTOR), Some(r#"{"active": false}"#)).await.problem(403);
    // Sending the current roles back unchanged is not a change (clients PATCH whole records).
    let same = call(
        &app,
        "PATCH",
        "/people/ESPGNU777ORG",
        Some(PATIENT),
        Some(r#"{"roles": ["end_user"], "profession": "nurse"}"#),
    )
    .await;
    assert_eq!(same.status, 200, "{}", same.text());

    // Root grants, and the change is audited with old and new values.
    let granted = call(&app, "PATCH", "/people/ESPGNU777ORG", Some(ROOT), Some(own)).await;
    assert_eq!(granted.status, 200, "{}", granted.text());
    assert_eq!(granted.json()["roles"], serde_json::json!(["end_user", "health_professional"]));
    let off = call(&app, "PATCH", "/people/ARGOTH222XYZ", Some(ROOT), Some(r#"{"active": false}"#)).await;
    assert_eq!(off.json()["active"], false);
    call(&app, "GET", "/login", Some(OTHER), None).await.problem(403);

    let trail = call(&app, "GET", "/people/ESPGNU777ORG/audit", Some(ROOT), None).await.json();
    let roles = trail.as_array().unwrap().iter().find(|e| e["action"] == "roles").expect("roles change audited");
    assert_eq!(roles["actor"], "ARGBUE111FAV");
    assert_eq!(roles["detail"]["from"], serde_json::json!(["end_user"]));
    let trail = call(&app, "GET", "/people/ARGOTH222XYZ/audit", Some(ROOT), None).await.json();
    assert!(trail.as_array().unwrap().iter().any(|e| e["action"] == "active" && e["detail"]["to"] == false));
}

#[actix_rt::test]
async fn a_health_professional_cannot_create_root_or_grant_roles_on_creation() {
    let h = harness(&[]);
    let app = test::init_service(h.platform.app(app_config(&h))).await;
    call(&app, "POST", "/people/EVILRT000001", Some(DOCTOR), Some(r#"{"roles": ["root"], "password": "x"}"#))
        .await
        .problem(403);
    call(&app, "POST", "/people/EVILHP000001", Some(DOCTOR), Some(r#"{"roles": ["health_professional"]}"#))
        .await
        .problem(403);
    call(&app, "POST", "/people/EVILIN000001", Some(DOCTOR), Some(r#"{"active": false}"#)).await.problem(403);
    call(&app, "GET", "/people/EVILRT000001", Some(ROOT), None).await.problem(404);
    // Root may.
    let made =
        call(&app, "POST", "/people/NEWROOT00001", Some(ROOT), Some(r#"{"roles": ["root"], "password": "p"}"#)).await;
    assert_eq!(made.status, 201, "{}", made.text());
    // End users create nobody.
    call(&app, "POST", "/people/SELFMADE0001", Some(PATIENT), Some(r#"{"name": "x"}"#)).await.problem(403);
}

#[actix_rt::test]
async fn bad_input_is_always_a_4xx_problem() {
    let h = harness(&[]);
    let app = test::init_service(h.platform.app(app_config(&h))).await;
    call(&app, "POST", "/people/BADJSON00001", Some(DOCTOR), Some("{not json")).await.problem(400);
    // Credentials are checked before the body is read: strangers learn nothing from parsing.
    call(&app, "POST", "/people/BADJSON00001", Some((DOCTOR.0, "wrong")), Some("{not json")).await.problem(401);
    call(&app, "POST", "/people/BADJSON00001", Some(PATIENT), Some("{not json")).await.problem(403);
    let too_big = format!("{{\"x\": \"{}\"}}", "a".repeat(300 * 1024));
    call(&app, "PATCH", "/people/ESPGNU777ORG", Some(DOCTOR), Some(&too_big)).await.problem(413);
    call(&app, "POST", "/people/BADJSON00001", Some(DOCTOR), Some("[1, 2]")).await.problem(422);
    call(&app, "PATCH", "/people/ESPGNU777ORG", Some(DOCTOR), Some(r#"["a"]"#)).await.problem(422);
    let contradiction =
        call(&app, "POST", "/people/BADJSON00001", Some(DOCTOR), Some(r#"{"id": "SOMEONE00001"}"#)).await;
    assert!(contradiction.problem(422)["errors"]["id"].is_array());
    call(&app, "PATCH", "/people/ESPGNU777ORG", Some(DOCTOR), Some(r#"{"id": "SOMEONE00001"}"#)).await.problem(422);
    let duplicate = call(&app, "POST", "/people/ESPGNU777ORG", Some(DOCTOR), Some(r#"{"name": "again"}"#)).await;
    duplicate.problem(409);
    call(&app, "GET", "/people/UNKNOWN00001", Some(DOCTOR), None).await.problem(404);
    call(&app, "PATCH", "/people/UNKNOWN00001", Some(DOCTOR), Some("{}")).await.problem(404);
    call(&app, "GET", "/pols/ESPGNU777ORG/not-a-uuid", Some(DOCTOR), None).await.problem(404);
    call(&app, "POST", "/people/BADDOB000001", Some(DOCTOR), Some(r#"{"dob": "12/31/1990"}"#)).await.problem(422);
    call(&app, "POST", "/people/BADROLE00001", Some(ROOT), Some(r#"{"roles": ["emperor"]}"#)).await.problem(422);
    call(&app, "PUT", "/people/ESPGNU777ORG", Some(DOCTOR), Some("{}")).await.problem(405);

    // HEAD answers like GET (the HTTP layer drops the body on the wire); OPTIONS lists the methods.
    let head = call(&app, "HEAD", "/people/ESPGNU777ORG", Some(DOCTOR), None).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-type").as_deref(), Some("application/json"));
    call(&app, "HEAD", "/people/ESPGNU777ORG", None, None).await.problem(401);
    let options = call(&app, "OPTIONS", "/people/ESPGNU777ORG", None, None).await;
    assert_eq!(options.status, 204);
    assert!(options.header("allow").unwrap().contains("PATCH"));
    for uri in ["/login", "/people", "/pols/X", "/personal_docs/X", "/domiciliary-units", "/institutions/X"] {
        assert_eq!(call(&app, "OPTIONS", uri, None, None).await.status, 204, "{uri}");
    }
}

#[actix_rt::test]
async fn post_is_201_and_delete_is_204_root_only_and_audited() {
    let h = harness(&[]);
    let app = test::init_service(h.platform.app(app_config(&h))).await;
    let made =
        call(&app, "POST", "/people/GONE00000001", Some(DOCTOR), Some(r#"{"name": "Gone", "password": "pw"}"#)).await;
    assert_eq!(made.status, 201);
    assert_eq!(made.header("location").as_deref(), Some("/people/GONE00000001"));
    call(&app, "DELETE", "/people/GONE00000001", Some(DOCTOR), None).await.problem(403);
    call(&app, "DELETE", "/people/GONE00000001", Some(("GONE00000001", "pw")), None).await.problem(403);
    let deleted = call(&app, "DELETE", "/people/GONE00000001", Some(ROOT), None).await;
    assert_eq!(deleted.status, 204);
    call(&app, "GET", "/people/GONE00000001", Some(ROOT), None).await.problem(404);
    call(&app, "DELETE", "/people/GONE00000001", Some(ROOT), None).await.problem(404);
    // The deleted person's credentials stop working at once.
    call(&app, "GET", "/login", Some(("GONE00000001", "pw")), None).await.problem(401);
    let trail = call(&app, "GET", "/people/GONE00000001/audit", Some(ROOT), None).await.json();
    let delete = trail.as_array().unwrap().iter().find(|e| e["action"] == "delete").expect("delete audited");
    assert_eq!(delete["actor"], "ARGBUE111FAV");
}

#[actix_rt::test]
async fn lists_are_flat_arrays_with_pagination_and_search() {
    let h = harness(&[]);
    let mut conn = h.db.conn();
    for i in 0..7 {
        add_person(
            &mut conn,
            &format!("URYMVD{i:06}"),
            "pw",
            &["end_user"],
            serde_json::json!({"name": format!("Maria{i}"), "lastname": "Silva", "dob": if i % 2 == 0 { "1990-01-01" } else { "1991-02-02" }}),
        );
    }
    let app = test::init_service(h.platform.app(app_config(&h))).await;
    let first = call(&app, "GET", "/people?lastname=silva&limit=3", Some(DOCTOR), None).await;
    assert_eq!(first.status, 200);
    let items = first.json();
    assert_eq!(items.as_array().unwrap().len(), 3);
    assert_eq!(items[0]["id"], "URYMVD000000");
    assert_eq!(first.header("x-total-count").as_deref(), Some("7"));
    let link = first.header("link").unwrap();
    assert!(link.contains("offset=3") && link.contains("lastname=silva") && link.contains("rel=\"next\""), "{link}");
    let last = call(&app, "GET", "/people?lastname=silva&limit=3&offset=6", Some(DOCTOR), None).await;
    assert_eq!(last.json().as_array().unwrap().len(), 1);
    assert!(last.header("link").is_none());

    let by_name = call(&app, "GET", "/people?name=MARIA3", Some(DOCTOR), None).await.json();
    assert_eq!(by_name.as_array().unwrap().len(), 1);
    let by_dob = call(&app, "GET", "/people?dob=1990-01-01&lastname=Sil", Some(DOCTOR), None).await;
    assert_eq!(by_dob.header("x-total-count").as_deref(), Some("4"));
    let by_prefix = call(&app, "GET", "/people?id=urymvd00000", Some(DOCTOR), None).await;
    assert_eq!(by_prefix.header("x-total-count").as_deref(), Some("7"));
    let huge = call(&app, "GET", "/people?limit=100000", Some(DOCTOR), None).await;
    assert_eq!(huge.json().as_array().unwrap().len(), 11, "clamped, not refused");
    call(&app, "GET", "/people?dob=yesterday", Some(DOCTOR), None).await.problem(422);
}

#[actix_rt::test]
async fn json_without_content_type_is_accepted_and_unknown_fields_kept() {
    let h = harness(&[]);
    let app = test::init_service(h.platform.app(app_config(&h))).await;
    // `call` sends no Content-Type at all.
    let reply =
        call(&app, "PATCH", "/people/ESPGNU777ORG", Some(PATIENT), Some(r#"{"ethnicity": "x", "fed_extra": [1]}"#))
            .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let record = call(&app, "GET", "/people/ESPGNU777ORG", Some(PATIENT), None).await.json();
    assert_eq!(record["fed_extra"], serde_json::json!([1]));
    assert_eq!(record["name"], "Ana", "shallow merge keeps other fields");
    // With a text/plain content type too.
    let req = test::TestRequest::patch()
        .uri("/people/ESPGNU777ORG")
        .insert_header(("authorization", basic(PATIENT.0, PATIENT.1)))
        .insert_header(("content-type", "text/plain"))
        .set_payload(r#"{"education": "university"}"#)
        .to_request();
    assert_eq!(test::call_service(&app, req).await.status(), 200);
}

#[actix_rt::test]
async fn pages_are_checked_against_their_book() {
    let h = harness(&[]);
    let app = test::init_service(h.platform.app(app_config(&h))).await;
    let page_b = "0f0e0d0c-0b0a-4909-8807-060504030201";
    let body = r#"{"page_date": "2026-11-02T09:30:00Z", "page_type": "medical", "summary": "other's page"}"#;
    let made = call(&app, "POST", &format!("/pols/ARGOTH222XYZ/{page_b}"), Some(OTHER), Some(body)).await;
    assert_eq!(made.status, 201, "{}", made.text());
    assert_eq!(made.json()["book"], "ARGOTH222XYZ");

    // The patient asks for the other person's page through their own book: 404, for every method.
    let through_own = format!("/pols/ESPGNU777ORG/{page_b}");
    call(&app, "GET", &through_own, Some(PATIENT), None).await.problem(404);
    call(&app, "PATCH", &through_own, Some(PATIENT), Some(r#"{"summary": "hijack"}"#)).await.problem(404);
    call(&app, "DELETE", &through_own, Some(PATIENT), None).await.problem(404);
    // And through the other book: 403.
    call(&app, "GET", &format!("/pols/ARGOTH222XYZ/{page_b}"), Some(PATIENT), None).await.problem(403);
    // A health professional also never finds a page in the wrong book.
    call(&app, "GET", &through_own, Some(DOCTOR), None).await.problem(404);
    let fine = call(&app, "GET", &format!("/pols/ARGOTH222XYZ/{page_b}"), Some(DOCTOR), None).await;
    assert_eq!(fine.json()["summary"], "other's page");

    // Own book: create, list, patch, delete; book and id must agree with the URL.
    let mine = "11111111-2222-4333-8444-555555555555";
    let uri = format!("/pols/ESPGNU777ORG/{mine}");
    call(&app, "POST", &uri, Some(PATIENT), Some(r#"{"book": "ARGOTH222XYZ"}"#)).await.problem(422);
    call(&app, "POST", &uri, Some(PATIENT), Some(&format!(r#"{{"id": "{page_b}"}}"#))).await.problem(422);
    assert_eq!(call(&app, "POST", &uri, Some(PATIENT), Some(body)).await.status, 201);
    call(&app, "POST", &uri, Some(PATIENT), Some(body)).await.problem(409);
    let book = call(&app, "GET", "/pols/ESPGNU777ORG", Some(PATIENT), None).await;
    assert_eq!(book.json().as_array().unwrap().len(), 1);
    let patched = call(&app, "PATCH", &uri, Some(PATIENT), Some(r#"{"summary": "mine"}"#)).await.json();
    assert_eq!(patched["summary"], "mine");
    assert_eq!(patched["page_type"], "medical");
    assert_eq!(call(&app, "DELETE", &uri, Some(PATIENT), None).await.status, 204);
    call(&app, "GET", "/pols/NOBODY000000", Some(DOCTOR), None).await.problem(404);
}

#[actix_rt::test]
async fn personal_documents_verify_their_hash_and_stay_with_their_person() {
    use base64::Engine;
    use sha2::Digest;
    let h = harness(&[]);
    let app = test::init_service(h.platform.app(app_config(&h))).await;
    let content = b"%PDF-1.4 a tiny lab report";
    let encoded = base64::engine::general_purpose::STANDARD.encode(content);
    let hash = hex::encode(sha2::Sha256::digest(content));
    let doc = serde_json::json!({"type": "lab_report", "extension": "pdf", "description": "Blood count",
        "content": encoded, "hash": hash, "lab": "central"});
    let made = call(&app, "POST", "/personal_docs/ESPGNU777ORG", Some(PATIENT), Some(&doc.to_string())).await;
    assert_eq!(made.status, 201, "{}", made.text());
    let id = made.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(made.json()["size"], content.len());

    let fetched = call(&app, "GET", &format!("/personal_docs/ESPGNU777ORG/{id}"), Some(PATIENT), None).await.json();
    assert_eq!(fetched["content"], encoded);
    assert_eq!(fetched["hash"], hash);
    assert_eq!(fetched["lab"], "central");
    let listed = call(&app, "GET", "/personal_docs/ESPGNU777ORG", Some(PATIENT), None).await.json();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(listed[0].get("content").is_none());

    // A wrong hash is refused; someone else's documents are not reachable.
    let mut bad = doc.clone();
    bad["hash"] = serde_json::json!("0".repeat(64));
    call(&app, "POST", "/personal_docs/ESPGNU777ORG", Some(PATIENT), Some(&bad.to_string())).await.problem(422);
    call(&app, "GET", &format!("/personal_docs/ARGOTH222XYZ/{id}"), Some(DOCTOR), None).await.problem(404);
    call(&app, "GET", "/personal_docs/ESPGNU777ORG", Some(OTHER), None).await.problem(403);

    // Attached to a page of the person's book, listed under that page.
    let page = "22222222-3333-4444-8555-666666666666";
    assert_eq!(call(&app, "POST", &format!("/pols/ESPGNU777ORG/{page}"), Some(PATIENT), Some("{}")).await.status, 201);
    let on_page =
        call(&app, "POST", &format!("/personal_docs/ESPGNU777ORG/{page}"), Some(PATIENT), Some(&doc.to_string())).await;
    assert_eq!(on_page.status, 201, "{}", on_page.text());
    assert_eq!(on_page.json()["page"], page);
    let page_docs = call(&app, "GET", &format!("/personal_docs/ESPGNU777ORG/{page}"), Some(PATIENT), None).await.json();
    assert_eq!(page_docs.as_array().unwrap().len(), 1);
    // A page of another book is not a place to attach documents.
    let other_page = "33333333-4444-4555-8666-777777777777";
    assert_eq!(
        call(&app, "POST", &format!("/pols/ARGOTH222XYZ/{other_page}"), Some(OTHER), Some("{}")).await.status,
        201
    );
    call(&app, "POST", &format!("/personal_docs/ESPGNU777ORG/{other_page}"), Some(PATIENT), Some(&doc.to_string()))
        .await
        .problem(404);
}

#[actix_rt::test]
async fn domiciliary_units_and_institutions() {
    let h = harness(&[]);
    let app = test::init_service(h.platform.app(app_config(&h))).await;
    for base in ["/domiciliary-units", "/institutions"] {
        let made =
            call(&app, "POST", base, Some(DOCTOR), Some(r#"{"id": "HOME-1", "address_city": "Las Palmas"}"#)).await;
        assert_eq!(made.status, 201, "{}", made.text());
        let by_url =
            call(&app, "POST", &format!("{base}/HOME-2"), Some(DOCTOR), Some(r#"{"address_city": "Gijon"}"#)).await;
        assert_eq!(by_url.json()["id"], "HOME-2");
        call(&app, "POST", &format!("{base}/HOME-2"), Some(DOCTOR), Some("{}")).await.problem(409);
        call(&app, "POST", &format!("{base}/HOME-3"), Some(DOCTOR), Some(r#"{"id": "HOME-4"}"#)).await.problem(422);
        let patched =
            call(&app, "PATCH", &format!("{base}/HOME-1"), Some(DOCTOR), Some(r#"{"zip": "35001"}"#)).await.json();
        assert_eq!(patched["address_city"], "Las Palmas");
        assert_eq!(patched["zip"], "35001");
        let list = call(&app, "GET", base, Some(PATIENT), None).await;
        assert_eq!(list.json().as_array().unwrap().len(), 2);
        assert_eq!(list.header("x-total-count").as_deref(), Some("2"));
        call(&app, "POST", base, Some(PATIENT), Some(r#"{"id": "X"}"#)).await.problem(403);
        call(&app, "GET", &format!("{base}/NOPE"), Some(PATIENT), None).await.problem(404);
    }
}

#[actix_rt::test]
async fn the_audit_log_records_who_read_and_changed_a_record() {
    let h = harness(&[]);
    let app = test::init_service(h.platform.app(app_config(&h))).await;
    assert_eq!(call(&app, "GET", "/people/ESPGNU777ORG", Some(DOCTOR), None).await.status, 200);
    assert_eq!(call(&app, "GET", "/people?lastname=betz", Some(DOCTOR), None).await.status, 200);
    let patched = call(&app, "PATCH", "/people/ESPGNU777ORG", Some(DOCTOR), Some(r#"{"profession": "chef"}"#)).await;
    assert_eq!(patched.status, 200);
    let found = eventually(|| async {
        let trail = call(&app, "GET", "/people/ESPGNU777ORG/audit", Some(ROOT), None).await.json();
        let entries = trail.as_array().unwrap();
        let by_doctor = |action: &str| entries.iter().any(|e| e["action"] == action && e["actor"] == "ITAPYT999HON");
        by_doctor("read") && by_doctor("list") && by_doctor("update")
    })
    .await;
    assert!(found, "reads, lists and updates by the doctor appear in the audit trail");
}

#[actix_rt::test]
async fn a_changed_password_is_refused_immediately_despite_the_cache() {
    let h = harness(&[("FEDERATION_CREDENTIAL_CACHE_TTL", "300")]);
    let app = test::init_service(h.platform.app(app_config(&h))).await;
    assert_eq!(call(&app, "GET", "/login", Some(PATIENT), None).await.status, 200);
    assert!(h.state.auth.cached_entries() >= 1, "the verified credential is cached");
    let changed =
        call(&app, "PATCH", "/people/ESPGNU777ORG", Some(PATIENT), Some(r#"{"password": "brand new"}"#)).await;
    assert_eq!(changed.status, 200);
    call(&app, "GET", "/login", Some(PATIENT), None).await.problem(401);
    assert_eq!(call(&app, "GET", "/login", Some((PATIENT.0, "brand new")), None).await.status, 200);

    // Roles too: a revoked role stops working at once.
    assert_eq!(call(&app, "GET", "/people", Some(DOCTOR), None).await.status, 200);
    let revoked = call(&app, "PATCH", "/people/ITAPYT999HON", Some(ROOT), Some(r#"{"roles": ["end_user"]}"#)).await;
    assert_eq!(revoked.status, 200);
    call(&app, "GET", "/people", Some(DOCTOR), None).await.problem(403);
}

/// Many requests arriving together with the same uncached credentials cost one bcrypt check,
/// not one each (a burst after a restart would otherwise stall every one of them).
#[actix_rt::test]
async fn concurrent_requests_with_uncached_credentials_verify_once() {
    let h = harness(&[("FEDERATION_CREDENTIAL_CACHE_TTL", "300")]);
    let app = test::init_service(h.platform.app(app_config(&h))).await;
    let before = h.state.auth.verifications();
    let replies =
        futures_util::future::join_all((0..8).map(|_| call(&app, "GET", "/login", Some(PATIENT), None))).await;
    assert!(replies.iter().all(|r| r.status == 200));
    assert_eq!(h.state.auth.verifications() - before, 1, "one verification served all eight");
    // Wrong passwords are never shared: each is checked (and counted towards the throttle).
    let wrong =
        futures_util::future::join_all((0..3).map(|_| call(&app, "GET", "/login", Some((PATIENT.0, "nope")), None)))
            .await;
    assert!(wrong.iter().all(|r| r.status == 401));
    assert_eq!(h.state.auth.verifications() - before, 4);
}

#[actix_rt::test]
async fn another_replica_drops_its_cached_credentials_on_notify() {
    let h = harness(&[("FEDERATION_CREDENTIAL_CACHE_TTL", "300")]);
    // Replica B: its own state and cache, the same database, a change listener.
    let state_b = actix_web::web::Data::new(federation::Federation::new(&h.platform).unwrap());
    federation::auth::spawn_listener(h.db.url.clone(), &state_b.auth, std::time::Duration::from_millis(10));
    let app_a = test::init_service(h.platform.app(app_config(&h))).await;
    let app_b = test::init_service(h.platform.app(federation::configure_with(state_b.clone()))).await;
    // Give the listener time to LISTEN (it clears the cache when it starts).
    assert!(eventually(|| async { true }).await);
    actix_rt::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(call(&app_b, "GET", "/login", Some(PATIENT), None).await.status, 200);
    assert_eq!(state_b.auth.cached_entries(), 1);

    let changed =
        call(&app_a, "PATCH", "/people/ESPGNU777ORG", Some(PATIENT), Some(r#"{"password": "rotated"}"#)).await;
    assert_eq!(changed.status, 200);
    assert!(eventually(|| async { state_b.auth.cached_entries() == 0 }).await, "B dropped the entry on NOTIFY");
    call(&app_b, "GET", "/login", Some(PATIENT), None).await.problem(401);
    assert_eq!(call(&app_b, "GET", "/login", Some((PATIENT.0, "rotated")), None).await.status, 200);
}

#[actix_rt::test]
async fn the_service_recovers_after_its_database_connections_are_killed() {
    let h = harness(&[]);
    let app = test::init_service(h.platform.app(app_config(&h))).await;
    assert_eq!(call(&app, "GET", "/people/ESPGNU777ORG", Some(PATIENT), None).await.status, 200);
    // What a Postgres restart does to open connections.
    let mut admin = diesel::PgConnection::establish(&meridian_platform::testing::base_url()).unwrap();
    diesel::sql_query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind::<Text, _>(h.db.name())
    .execute(&mut admin)
    .unwrap();
    // A request that meets a dead connection is a 503 with Retry-After (never a 500); the pool drops
    // that connection, and the following requests run on fresh ones.
    let mut ok_in_a_row = 0;
    for _ in 0..30 {
        let reply = call(&app, "GET", "/people/ESPGNU777ORG", Some(PATIENT), None).await;
        if reply.status == 200 {
            ok_in_a_row += 1;
            if ok_in_a_row == 5 {
                break;
            }
        } else {
            reply.problem(503);
            assert!(reply.header("retry-after").is_some());
            ok_in_a_row = 0;
        }
    }
    assert_eq!(ok_in_a_row, 5, "the service works again after the connections died");
}

#[actix_rt::test]
async fn seed_demo_is_idempotent_and_its_people_log_in() {
    let db = meridian_platform::testing::TestDb::new(&federation::SERVICE);
    let platform = meridian_platform::testing::test_platform(&federation::SERVICE, &db, &[]);
    let mut conn = db.conn();
    assert_eq!(federation::seed::seed_demo(&mut conn).unwrap(), 5);
    assert_eq!(federation::seed::seed_demo(&mut conn).unwrap(), 0, "a second run changes nothing");
    let state = actix_web::web::Data::new(federation::Federation::new(&platform).unwrap());
    let app = test::init_service(platform.app(federation::configure_with(state))).await;
    for (id, password, ..) in federation::seed::DEMO_PEOPLE {
        assert_eq!(call(&app, "GET", "/login", Some((id, password)), None).await.status, 200, "{id}");
    }
    let book = call(&app, "GET", "/pols/ESPGNU777ORG", Some(("ESPGNU777ORG", "gnusolidario")), None).await;
    assert_eq!(book.json().as_array().unwrap().len(), 2);
    let hash = diesel::sql_query("SELECT password_hash FROM people WHERE id = 'ARGBUE111FAV'")
        .get_result::<StoredHash>(&mut conn)
        .unwrap()
        .password_hash
        .unwrap();
    assert!(hash.starts_with("$2b$"), "demo hashes are bcrypt, as Thalamus stores them");
}

#[actix_rt::test]
async fn a_roles_file_replaces_the_builtin_policy() {
    let dir = std::env::temp_dir().join(format!("federation-roles-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("roles.json");
    // End users may read everyone's records under this (deliberately loose) policy.
    std::fs::write(
        &file,
        r#"{"end_user": [{"resources": ["people"], "methods": ["GET"], "scope": "global"}],
            "root": [{"resources": ["*"], "methods": ["*"], "scope": "global"}]}"#,
    )
    .unwrap();
    let h = harness(&[("FEDERATION_ROLES_FILE", file.to_str().unwrap())]);
    let app = test::init_service(h.platform.app(app_config(&h))).await;
    assert_eq!(call(&app, "GET", "/people/ARGOTH222XYZ", Some(PATIENT), None).await.status, 200);
    call(&app, "PATCH", "/people/ESPGNU777ORG", Some(PATIENT), Some("{}")).await.problem(403);
    std::fs::write(&file, r#"{"root": [{"resources": ["peeple"], "methods": ["GET"], "scope": "global"}]}"#).unwrap();
    let bad = meridian_platform::testing::test_platform(
        &federation::SERVICE,
        &h.db,
        &[("FEDERATION_ROLES_FILE", file.to_str().unwrap())],
    );
    let err = federation::Federation::new(&bad).err().expect("a typo in the policy is refused");
    assert_eq!(err.variable, "FEDERATION_ROLES_FILE");
    std::fs::remove_dir_all(dir).unwrap();
}

#[actix_rt::test]
async fn the_openapi_document_lists_every_route() {
    let h = harness(&[]);
    let doc: serde_json::Value = serde_json::from_str(h.platform.openapi_json()).unwrap();
    for path in [
        "/login",
        "/people",
        "/people/{id}",
        "/people/{id}/audit",
        "/pols/{person}",
        "/pols/{person}/{page}",
        "/personal_docs/{person}",
        "/personal_docs/{person}/{id}",
        "/domiciliary-units",
        "/domiciliary-units/{id}",
        "/institutions",
        "/institutions/{id}",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} is documented");
    }
}

#[actix_rt::test]
async fn the_password_form_changes_a_password_only_with_a_valid_csrf_token() {
    let h = harness(&[]);
    let app = test::init_service(h.platform.app(app_config(&h))).await;
    let form = call(&app, "GET", "/password/ESPGNU777ORG", Some(PATIENT), None).await;
    assert_eq!(form.status, 200);
    assert!(form.header("content-type").unwrap().starts_with("text/html"));
    let html = form.text();
    let csrf = html.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    call(&app, "GET", "/password/ARGOTH222XYZ", Some(PATIENT), None).await.problem(403);

    let post = |body: String| {
        test::TestRequest::post()
            .uri("/password/ESPGNU777ORG")
            .insert_header(("authorization", basic(PATIENT.0, PATIENT.1)))
            .insert_header(("content-type", "application/x-www-form-urlencoded"))
            .set_payload(body)
            .to_request()
    };
    // Forged or missing token: refused.
    let forged = test::call_service(&app, post("csrf=123:abc&password=longenough1&confirm=longenough1".into())).await;
    assert_eq!(forged.status(), 403);
    // Entries that differ: the form again, 422.
    let differ = test::call_service(&app, post(format!("csrf={csrf}&password=longenough1&confirm=longenough2"))).await;
    assert_eq!(differ.status(), 422);
    let ok = test::call_service(&app, post(format!("csrf={csrf}&password=longenough1&confirm=longenough1"))).await;
    assert_eq!(ok.status(), 200);
    call(&app, "GET", "/login", Some(PATIENT), None).await.problem(401);
    assert_eq!(call(&app, "GET", "/login", Some((PATIENT.0, "longenough1")), None).await.status, 200);
    let trail = call(&app, "GET", "/people/ESPGNU777ORG/audit", Some(ROOT), None).await.json();
    assert!(trail.as_array().unwrap().iter().any(|e| e["action"] == "password"));
}

#[actix_rt::test]
async fn seed_bench_generates_searchable_people_idempotently() {
    let h = harness(&[]);
    let mut conn = h.db.conn();
    assert_eq!(federation::seed::seed_bench(&mut conn, 40).unwrap(), 40);
    assert_eq!(federation::seed::seed_bench(&mut conn, 40).unwrap(), 0);
    let app = test::init_service(h.platform.app(app_config(&h))).await;
    let found = call(&app, "GET", "/people?id=BEN00000000", Some(DOCTOR), None).await;
    assert_eq!(found.header("x-total-count").as_deref(), Some("9"));
    let one = call(&app, "GET", "/people/BEN000000007", Some(("BEN000000007", "bench")), None).await.json();
    assert!(one["lastname"].is_string() && one["dob"].is_string());

    // Totals are counted up to a cap, and say so beyond it.
    assert_eq!(federation::seed::seed_bench(&mut conn, 1001).unwrap(), 961);
    let many = call(&app, "GET", "/people?id=BEN&limit=10", Some(DOCTOR), None).await;
    assert_eq!(many.header("x-total-count").as_deref(), Some("1000"));
    assert_eq!(many.header("x-total-count-capped").as_deref(), Some("true"));
    assert!(many.header("link").unwrap().contains("offset=10"));
    let exact = call(&app, "GET", "/people?id=BEN000000&limit=10", Some(DOCTOR), None).await;
    assert_eq!(exact.header("x-total-count").as_deref(), Some("999"), "BEN000000001..BEN000000999");
    assert!(exact.header("x-total-count-capped").is_none(), "below the cap the total is exact");
}

#[actix_rt::test]
async fn write_access_to_people_does_not_mean_taking_over_accounts() {
    let h = harness(&[]);
    let app = test::init_service(h.platform.app(app_config(&h))).await;
    // A health professional may edit a patient's record, but not set their password...
    let edited = call(&app, "PATCH", "/people/ESPGNU777ORG", Some(DOCTOR), Some(r#"{"profession": "baker"}"#)).await;
    assert_eq!(edited.status, 200);
    call(&app, "PATCH", "/people/ESPGNU777ORG", Some(DOCTOR), Some(r#"{"password": "taken over"}"#)).await.problem(403);
    // ...nor touch a root account at all.
    call(&app, "PATCH", "/people/ARGBUE111FAV", Some(DOCTOR), Some(r#"{"password": "taken over"}"#)).await.problem(403);
    call(&app, "PATCH", "/people/ARGBUE111FAV", Some(DOCTOR), Some(r#"{"name": "Mallory"}"#)).await.problem(403);
    assert_eq!(call(&app, "GET", "/login", Some(ROOT), None).await.status, 200);
    // Root may reset a password.
    let reset = call(&app, "PATCH", "/people/ESPGNU777ORG", Some(ROOT), Some(r#"{"password": "reset by root"}"#)).await;
    assert_eq!(reset.status, 200);
    assert_eq!(call(&app, "GET", "/login", Some((PATIENT.0, "reset by root")), None).await.status, 200);
}
