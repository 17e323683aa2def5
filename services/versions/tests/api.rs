//! The versions API through the real App against a real Postgres.

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::{test, web};
use diesel::prelude::*;
use meridian_auth::{ClientCertificate, devices};
use meridian_model::DeviceRole;
use meridian_platform::testing::{TestDb, test_platform};
use serde_json::{Value, json};
use versions::schema::{artifacts, versions as versions_table};
use versions::{SERVICE, State, configure};

type Req = actix_http::Request;

async fn app(
    db: &TestDb,
) -> (impl Service<Req, Response = ServiceResponse<impl MessageBody>, Error = actix_web::Error>, web::Data<State>) {
    let platform = test_platform(&SERVICE, db, &[("TRUST_CERT_HEADER", "true")]);
    let state = web::Data::new(State::from_platform(&platform).unwrap());
    let data = state.clone();
    let service = test::init_service(platform.app(move |cfg| {
        cfg.app_data(data.clone());
        configure(cfg);
    }))
    .await;
    (service, state)
}

/// A fresh client certificate whose device has `role` (URL-encoded PEM, for the header), and the device id.
fn device(db: &TestDb, role: DeviceRole) -> (String, uuid::Uuid) {
    let key = rcgen::KeyPair::generate().unwrap();
    let pem = rcgen::CertificateParams::new(vec!["device.test".into()]).unwrap().self_signed(&key).unwrap().pem();
    let cert = ClientCertificate::from_header(&pem).unwrap();
    let mut conn = db.conn();
    let record = devices::find_or_record(&mut conn, &cert).unwrap();
    if role != DeviceRole::Untrusted {
        devices::set_role(&mut conn, record.id, role).unwrap();
    }
    (percent_encoding::utf8_percent_encode(&pem, percent_encoding::NON_ALPHANUMERIC).to_string(), record.id)
}

struct Reply {
    status: u16,
    headers: actix_web::http::header::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
    fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

async fn send<S, B>(app: &S, req: test::TestRequest) -> Reply
where
    S: Service<Req, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let res = test::call_service(app, req.to_request()).await;
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = test::read_body(res).await.to_vec();
    Reply { status, headers, body }
}

fn publish(cert: &str, version: &str, changelog: &str) -> test::TestRequest {
    test::TestRequest::post()
        .uri(&format!("/versions/{version}"))
        .insert_header(("mtls-certificate", cert.to_owned()))
        .insert_header(("content-type", "text/plain; charset=utf-8"))
        .set_payload(changelog.to_owned())
}

fn withdraw(cert: &str, version: &str) -> test::TestRequest {
    test::TestRequest::delete()
        .uri(&format!("/versions/{version}"))
        .insert_header(("mtls-certificate", cert.to_owned()))
}

fn add_artifact(cert: &str, path: &str, url: &str) -> test::TestRequest {
    test::TestRequest::post()
        .uri(&format!("/artifacts/{path}"))
        .insert_header(("mtls-certificate", cert.to_owned()))
        .set_payload(url.to_owned())
}

fn get(uri: &str) -> test::TestRequest {
    test::TestRequest::get().uri(uri)
}

fn labels(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| {
            let base = format!("{}.{}.{}", v["major"], v["minor"], v["patch"]);
            match v.get("pre_release").and_then(Value::as_str) {
                Some(pre) => format!("{base}-{pre}"),
                None => base,
            }
        })
        .collect()
}

#[actix_rt::test]
async fn update_for_follows_the_rule_over_http() {
    let db = TestDb::new(&SERVICE);
    let (app, _) = app(&db).await;
    let (releaser, _) = device(&db, DeviceRole::Releaser);
    let (admin, _) = device(&db, DeviceRole::Admin);
    for v in ["2.1.0", "2.1.1", "2.2.0", "2.3.0", "1.9.0", "3.0.0", "2.4.0-rc.1", "2.4.0-rc.2", "2.3.1"] {
        assert_eq!(send(&app, publish(&releaser, v, "notes")).await.status, 201, "{v}");
    }
    assert_eq!(send(&app, withdraw(&admin, "2.3.1")).await.status, 200);

    let cases: &[(&str, &[&str])] = &[
        ("2.1.0", &["2.1.1", "2.2.0", "2.3.0"]),
        ("v2.1.0", &["2.1.1", "2.2.0", "2.3.0"]),
        ("2.3.0", &[]),
        ("2.1.1", &["2.2.0", "2.3.0"]),
        ("2.0.0", &["2.1.1", "2.2.0", "2.3.0"]),
        ("1.0.0", &["1.9.0"]),
        ("0.0.0", &[]),
        ("9.0.0", &[]),
        ("2.9.0", &[]),
        ("2.4.0-rc.1", &["2.4.0-rc.2"]),
        ("2.4.0-rc.2", &[]),
        ("2.3.0-beta.1", &["2.3.0"]),
    ];
    for (current, expected) in cases {
        let reply = send(&app, get(&format!("/versions/update-for/{current}"))).await;
        assert_eq!(reply.status, 200, "{current}");
        assert_eq!(labels(&reply.json()), *expected, "update-for/{current}");
    }
    // the offered objects carry the full version shape
    let offered = send(&app, get("/versions/update-for/2.3.0-beta.1")).await.json();
    assert_eq!(offered[0]["changelog"], "notes");
    assert_eq!(offered[0]["published"], true);

    // withdrawing the newest patch of a line leaves the line's older published patch on offer
    assert_eq!(send(&app, withdraw(&admin, "2.1.1")).await.status, 200);
    assert_eq!(labels(&send(&app, get("/versions/update-for/2.0.0")).await.json()), ["2.1.0", "2.2.0", "2.3.0"]);

    for bad in ["banana", "2.1", "2.1.0.0", "%20"] {
        let reply = send(&app, get(&format!("/versions/update-for/{bad}"))).await;
        assert_eq!(reply.status, 422, "{bad}");
        assert_eq!(reply.header("content-type"), Some("application/problem+json"));
    }
}

#[actix_rt::test]
async fn the_list_is_every_version_newest_first_with_prereleases_kept() {
    let db = TestDb::new(&SERVICE);
    let (app, _) = app(&db).await;
    let (releaser, _) = device(&db, DeviceRole::Releaser);
    let (admin, _) = device(&db, DeviceRole::Admin);
    assert_eq!(send(&app, get("/versions")).await.json(), json!([]));
    for v in ["2.1.0", "v2.10.0", "2.2.0", "9.1.0-rc.1", "9.1.0-rc.10", "9.1.0-rc.2", "9.1.0", "0.1.0"] {
        assert_eq!(send(&app, publish(&releaser, v, "x")).await.status, 201, "{v}");
    }
    send(&app, withdraw(&admin, "2.2.0")).await;
    let list = send(&app, get("/versions")).await.json();
    assert_eq!(
        labels(&list),
        ["9.1.0", "9.1.0-rc.10", "9.1.0-rc.2", "9.1.0-rc.1", "2.10.0", "2.2.0", "2.1.0", "0.1.0"]
    );
    let first = list[0].as_object().unwrap();
    let mut keys: Vec<_> = first.keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
        ["changelog", "id", "major", "minor", "patch", "published"],
        "releases have the reference's shape"
    );
    assert_eq!(list[1]["pre_release"], "rc.10");
    assert_eq!(list[5]["published"], false, "withdrawn versions stay listed");

    let latest = send(&app, get("/versions/latest")).await;
    assert_eq!(latest.status, 200);
    assert_eq!(labels(&json!([latest.json()])), ["9.1.0"]);
}

#[actix_rt::test]
async fn changelogs_round_trip_byte_for_byte() {
    let db = TestDb::new(&SERVICE);
    let (app, _) = app(&db).await;
    let (releaser, _) = device(&db, DeviceRole::Releaser);
    let changelog =
        "## 2.1.0\r\n\r\n- Fixed sync   \r\n\t- tabbed  \n- Ünïcödé ✓ 日本語 🎉\r\n\r\n   trailing spaces   \n\n\n";
    let created = send(&app, publish(&releaser, "2.1.0", changelog)).await;
    assert_eq!(created.status, 201);
    assert_eq!(created.json()["changelog"], changelog);
    let list = send(&app, get("/versions")).await;
    assert_eq!(list.json()[0]["changelog"].as_str().unwrap().as_bytes(), changelog.as_bytes());
    let stored: String = versions_table::table.select(versions_table::changelog).first(&mut db.conn()).unwrap();
    assert_eq!(stored.as_bytes(), changelog.as_bytes());
    // an empty changelog is a changelog too
    assert_eq!(send(&app, publish(&releaser, "2.1.1", "")).await.json()["changelog"], "");
}

#[actix_rt::test]
async fn changelogs_are_limited_to_one_mebibyte_of_utf8() {
    let db = TestDb::new(&SERVICE);
    let (app, _) = app(&db).await;
    let (releaser, _) = device(&db, DeviceRole::Releaser);
    let exactly = "a".repeat(1024 * 1024);
    let reply = send(&app, publish(&releaser, "1.0.0", &exactly)).await;
    assert_eq!(reply.status, 201);
    let too_big = "a".repeat(1024 * 1024 + 1);
    let reply = send(&app, publish(&releaser, "1.0.1", &too_big)).await;
    assert_eq!(reply.status, 413);
    assert_eq!(reply.header("content-type"), Some("application/problem+json"));
    let not_utf8 = test::TestRequest::post()
        .uri("/versions/1.0.2")
        .insert_header(("mtls-certificate", releaser.clone()))
        .set_payload(vec![0xff, 0xfe, 0x41]);
    assert_eq!(send(&app, not_utf8).await.status, 422);
    assert_eq!(send(&app, publish(&releaser, "1.0.3", "nul\0byte")).await.status, 422);
    let list = send(&app, get("/versions")).await.json();
    assert_eq!(labels(&list), ["1.0.0"], "nothing refused was stored");
    assert_eq!(list[0]["changelog"].as_str().unwrap().len(), 1024 * 1024);
}

#[actix_rt::test]
async fn every_write_refuses_the_wrong_roles() {
    let db = TestDb::new(&SERVICE);
    let (app, _) = app(&db).await;
    let (untrusted, _) = device(&db, DeviceRole::Untrusted);
    let (server, _) = device(&db, DeviceRole::Server);
    let (releaser, _) = device(&db, DeviceRole::Releaser);
    let (admin, _) = device(&db, DeviceRole::Admin);
    let url = "https://dl.example.org/a.apk";

    // publish: releaser (or admin)
    assert_eq!(send(&app, get("/versions/1.0.0").method(actix_web::http::Method::POST)).await.status, 401);
    assert_eq!(send(&app, publish(&untrusted, "1.0.0", "x")).await.status, 403);
    assert_eq!(send(&app, publish(&server, "1.0.0", "x")).await.status, 403);
    assert_eq!(send(&app, publish(&releaser, "1.0.0", "x")).await.status, 201);
    assert_eq!(send(&app, publish(&admin, "1.0.1", "x")).await.status, 201);

    // withdraw: admin only
    assert_eq!(send(&app, test::TestRequest::delete().uri("/versions/1.0.0")).await.status, 401);
    assert_eq!(send(&app, withdraw(&untrusted, "1.0.0")).await.status, 403);
    assert_eq!(send(&app, withdraw(&server, "1.0.0")).await.status, 403);
    assert_eq!(send(&app, withdraw(&releaser, "1.0.0")).await.status, 403);
    assert_eq!(send(&app, withdraw(&admin, "1.0.0")).await.status, 200);

    // artifacts: releaser (or admin)
    let anonymous = test::TestRequest::post().uri("/artifacts/1.0.1/mobile/android").set_payload(url);
    assert_eq!(send(&app, anonymous).await.status, 401);
    assert_eq!(send(&app, add_artifact(&untrusted, "1.0.1/mobile/android", url)).await.status, 403);
    assert_eq!(send(&app, add_artifact(&server, "1.0.1/mobile/android", url)).await.status, 403);
    assert_eq!(send(&app, add_artifact(&releaser, "1.0.1/mobile/android", url)).await.status, 201);
    assert_eq!(send(&app, add_artifact(&admin, "1.0.1/mobile/ios", url)).await.status, 201);

    let list = send(&app, get("/versions")).await.json();
    assert_eq!(labels(&list), ["1.0.1", "1.0.0"], "refused writes left nothing behind");
    assert_eq!(list[1]["published"], false);
}

#[actix_rt::test]
async fn every_write_records_the_device_that_made_it() {
    let db = TestDb::new(&SERVICE);
    let (app, _) = app(&db).await;
    let (releaser, releaser_id) = device(&db, DeviceRole::Releaser);
    let (admin, admin_id) = device(&db, DeviceRole::Admin);
    send(&app, publish(&releaser, "2.0.0", "x")).await;
    send(&app, add_artifact(&releaser, "2.0.0/server/linux", "https://dl.example.org/s")).await;
    send(&app, withdraw(&admin, "2.0.0")).await;
    let mut conn = db.conn();
    let (created_by, withdrawn_by, withdrawn_at): (
        uuid::Uuid,
        Option<uuid::Uuid>,
        Option<chrono::DateTime<chrono::Utc>>,
    ) = versions_table::table
        .select((versions_table::created_by, versions_table::withdrawn_by, versions_table::withdrawn_at))
        .first(&mut conn)
        .unwrap();
    assert_eq!(created_by, releaser_id);
    assert_eq!(withdrawn_by, Some(admin_id));
    assert!(withdrawn_at.is_some());
    let artifact_by: uuid::Uuid = artifacts::table.select(artifacts::created_by).first(&mut conn).unwrap();
    assert_eq!(artifact_by, releaser_id);
}

#[actix_rt::test]
async fn versions_are_unique_semver_and_withdrawal_keeps_them() {
    let db = TestDb::new(&SERVICE);
    let (app, _) = app(&db).await;
    let (releaser, _) = device(&db, DeviceRole::Releaser);
    let (admin, _) = device(&db, DeviceRole::Admin);
    assert_eq!(send(&app, publish(&releaser, "v2.1.0", "first")).await.status, 201);
    let again = send(&app, publish(&releaser, "2.1.0", "second")).await;
    assert_eq!(again.status, 409);
    assert_eq!(again.json()["code"], "VersionExists");
    for bad in ["2.1", "banana", "2.1.0+build.7", "99999999999.0.0"] {
        let reply = send(&app, publish(&releaser, bad, "x")).await;
        assert_eq!(reply.status, 422, "{bad}");
        assert!(reply.json()["errors"]["version"].is_array());
    }
    assert_eq!(send(&app, withdraw(&admin, "2.9.9")).await.status, 404);
    assert_eq!(send(&app, withdraw(&admin, "nope")).await.status, 422);
    let withdrawn = send(&app, withdraw(&admin, "v2.1.0")).await;
    assert_eq!(withdrawn.status, 200);
    assert_eq!(withdrawn.json()["published"], false);
    assert_eq!(send(&app, withdraw(&admin, "2.1.0")).await.status, 200, "withdrawing twice is harmless");
    assert_eq!(send(&app, publish(&releaser, "2.1.0", "again")).await.status, 409, "withdrawn versions still exist");
    let list = send(&app, get("/versions")).await.json();
    assert_eq!(list[0]["changelog"], "first");
    assert_eq!(list[0]["published"], false);
    let count: i64 = versions_table::table.count().get_result(&mut db.conn()).unwrap();
    assert_eq!(count, 1);
}

#[actix_rt::test]
async fn artifacts_are_unique_validated_and_sorted() {
    let db = TestDb::new(&SERVICE);
    let (app, _) = app(&db).await;
    let (releaser, _) = device(&db, DeviceRole::Releaser);
    send(&app, publish(&releaser, "2.1.0", "x")).await;
    send(&app, publish(&releaser, "2.2.0", "x")).await;
    for (path, url) in [
        ("2.1.0/server/windows", "https://dl.example.org/s.msi"),
        ("2.1.0/mobile/ios", "https://dl.example.org/m.ipa"),
        ("2.1.0/desktop/macos", "https://dl.example.org/d.dmg"),
        ("2.1.0/mobile/android", "https://dl.example.org/m.apk\n"),
        ("2.1.0/server/linux", "https://dl.example.org/s.tar"),
        ("v2.2.0/mobile/android", "https://dl.example.org/m22.apk"),
    ] {
        assert_eq!(send(&app, add_artifact(&releaser, path, url)).await.status, 201, "{path}");
    }
    let repeat = send(&app, add_artifact(&releaser, "2.1.0/mobile/ios", "https://dl.example.org/other.ipa")).await;
    assert_eq!(repeat.status, 409);
    assert_eq!(repeat.json()["code"], "ArtifactExists");
    assert_eq!(send(&app, add_artifact(&releaser, "2.9.0/mobile/ios", "https://dl.example.org/x")).await.status, 404);
    for (path, url) in [
        ("2.1.0/mobile/web", "http://dl.example.org/plain"),
        ("2.1.0/mobile/web", "not a url"),
        ("2.1.0/mobile/web", ""),
        ("2.1.0/mobile/web", "https://"),
        ("2.1.0/mobile/we%20b", "https://dl.example.org/x"),
        ("nope/mobile/web", "https://dl.example.org/x"),
    ] {
        assert_eq!(send(&app, add_artifact(&releaser, path, url)).await.status, 422, "{path} {url}");
    }

    let list = send(&app, get("/versions/2.1.0/artifacts")).await;
    assert_eq!(list.status, 200);
    let list = list.json();
    let order: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|a| format!("{}/{}", a["artifact_type"], a["platform"]).replace('"', ""))
        .collect();
    assert_eq!(order, ["desktop/macos", "mobile/android", "mobile/ios", "server/linux", "server/windows"]);
    assert_eq!(list[1]["download_url"], "https://dl.example.org/m.apk", "surrounding whitespace is trimmed");
    let mut keys: Vec<_> = list[0].as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, ["artifact_type", "download_url", "id", "platform", "version_id"]);
    let versions = send(&app, get("/versions")).await.json();
    assert_eq!(list[0]["version_id"], versions[1]["id"]);
    assert_eq!(send(&app, get("/versions/2.9.0/artifacts")).await.status, 404);
    let mobile = send(&app, get("/versions/2.1.0/artifacts?artifact_type=mobile")).await.json();
    assert_eq!(mobile.as_array().unwrap().len(), 2);
    assert_eq!(mobile[0]["platform"], "android");
    let ios = send(&app, get("/versions/2.1.0/artifacts?artifact_type=MOBILE&platform=ios")).await.json();
    assert_eq!(ios.as_array().unwrap().len(), 1);
    assert_eq!(ios[0]["download_url"], "https://dl.example.org/m.ipa");
    assert_eq!(
        send(&app, get("/versions/2.1.0/artifacts?platform=windows")).await.json()[0]["artifact_type"],
        "server"
    );
    assert_eq!(send(&app, get("/versions/2.1.0/artifacts?platform=beos")).await.json(), json!([]));
    assert_eq!(send(&app, get("/versions/2.1/artifacts")).await.json().as_array().unwrap().len(), 5, "a range");

    // sha256 and size: by query string, or in a JSON body
    let hash = "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08";
    let by_query =
        add_artifact(&releaser, &format!("2.2.0/desktop/linux?sha256={hash}&size=1234"), "https://dl.example.org/l");
    let created = send(&app, by_query).await;
    assert_eq!(created.status, 201);
    assert_eq!(created.json()["sha256"], hash.to_lowercase());
    assert_eq!(created.json()["size"], 1234);
    let by_json = test::TestRequest::post()
        .uri("/artifacts/2.2.0/desktop/windows")
        .insert_header(("mtls-certificate", releaser.clone()))
        .set_json(json!({"download_url": "https://dl.example.org/w.msi", "sha256": hash.to_lowercase(), "size": 99}));
    let created = send(&app, by_json).await;
    assert_eq!(created.status, 201);
    assert_eq!(created.json()["size"], 99);
    let bad_hash = add_artifact(&releaser, "2.2.0/desktop/freebsd?sha256=abc", "https://dl.example.org/f");
    assert_eq!(send(&app, bad_hash).await.status, 422);
    let bad_size = add_artifact(&releaser, "2.2.0/desktop/freebsd?size=-1", "https://dl.example.org/f");
    assert_eq!(send(&app, bad_size).await.status, 422);
    let unknown_field = test::TestRequest::post()
        .uri("/artifacts/2.2.0/desktop/haiku")
        .insert_header(("mtls-certificate", releaser.clone()))
        .set_json(json!({"download_url": "https://dl.example.org/h", "colour": "red"}));
    assert_eq!(send(&app, unknown_field).await.status, 400);
    let listed = send(&app, get("/versions/2.2.0/artifacts")).await.json();
    assert_eq!(listed.as_array().unwrap().len(), 3);
    assert_eq!(listed[0]["platform"], "linux");
    assert!(listed[2].get("sha256").is_none(), "absent when not given");
}

#[actix_rt::test]
async fn lists_carry_etags_and_answer_304_until_a_write() {
    let db = TestDb::new(&SERVICE);
    let (app, _) = app(&db).await;
    let (releaser, _) = device(&db, DeviceRole::Releaser);
    send(&app, publish(&releaser, "2.1.0", "x")).await;
    for uri in ["/versions", "/versions/update-for/2.0.0", "/versions/2.1.0/artifacts", "/versions/latest"] {
        let first = send(&app, get(uri)).await;
        assert_eq!(first.status, 200, "{uri}");
        let etag = first.header("etag").expect("an ETag").to_owned();
        assert!(first.header("cache-control").unwrap().contains("max-age="), "{uri}");
        let again = send(&app, get(uri).insert_header(("if-none-match", etag.clone()))).await;
        assert_eq!(again.status, 304, "{uri}");
        assert!(again.body.is_empty());
        assert_eq!(again.header("etag"), Some(etag.as_str()));
        let weak = send(&app, get(uri).insert_header(("if-none-match", format!("\"other\", W/{etag}")))).await;
        assert_eq!(weak.status, 304, "{uri}");
        let stale = send(&app, get(uri).insert_header(("if-none-match", "\"other\""))).await;
        assert_eq!(stale.status, 200, "{uri}");
    }
    let before = send(&app, get("/versions")).await.header("etag").unwrap().to_owned();
    send(&app, publish(&releaser, "2.1.1", "y")).await;
    let after = send(&app, get("/versions").insert_header(("if-none-match", before.clone()))).await;
    assert_eq!(after.status, 200, "a write changes the list and its tag");
    assert_ne!(after.header("etag").unwrap(), before);
    assert_eq!(labels(&after.json()), ["2.1.1", "2.1.0"]);
}

#[actix_rt::test]
async fn ranges_and_latest_are_read_wherever_a_version_is() {
    let db = TestDb::new(&SERVICE);
    let (app, _) = app(&db).await;
    let (releaser, _) = device(&db, DeviceRole::Releaser);
    let (admin, _) = device(&db, DeviceRole::Admin);
    assert_eq!(send(&app, get("/versions/latest")).await.status, 404);
    for v in ["2.26.3", "2.27.0", "2.27.1", "2.27.4", "2.28.0-rc.1", "3.0.0"] {
        send(&app, publish(&releaser, v, "x")).await;
    }
    send(&app, withdraw(&admin, "2.27.4")).await;
    let resolved = |reply: Reply| labels(&json!([reply.json()]))[0].clone();
    assert_eq!(resolved(send(&app, get("/versions/2.27")).await), "2.27.1");
    assert_eq!(resolved(send(&app, get("/versions/~2.27.0")).await), "2.27.1");
    assert_eq!(resolved(send(&app, get("/versions/%5E2")).await), "2.27.1");
    assert_eq!(resolved(send(&app, get("/versions/2")).await), "2.27.1");
    assert_eq!(resolved(send(&app, get("/versions/latest")).await), "3.0.0");
    assert_eq!(resolved(send(&app, get("/versions/2.27.4")).await), "2.27.4", "an exact version, withdrawn or not");
    assert_eq!(resolved(send(&app, get("/versions/v2.26.3")).await), "2.26.3");
    let detail = send(&app, get("/versions/2.27.1")).await;
    assert!(detail.header("vary").unwrap().starts_with("Accept"));
    assert!(detail.json()["artifacts"].is_array());
    assert_eq!(send(&app, get("/versions/2.29")).await.status, 404);
    assert_eq!(send(&app, get("/versions/2.27.9")).await.status, 404);
    assert_eq!(send(&app, get("/versions/banana")).await.status, 422);
}

#[actix_rt::test]
async fn each_replica_catches_up_with_writes_made_through_another() {
    let db = TestDb::new(&SERVICE);
    let (first, _) = app(&db).await;
    let (second, second_state) = app(&db).await;
    let (releaser, _) = device(&db, DeviceRole::Releaser);
    assert_eq!(send(&second, get("/versions")).await.json(), json!([]));
    send(&first, publish(&releaser, "2.1.0", "x")).await;
    assert_eq!(labels(&send(&first, get("/versions")).await.json()), ["2.1.0"], "the writer sees its write at once");
    assert_eq!(send(&second, get("/versions")).await.json(), json!([]), "the other serves its snapshot");
    let platform = test_platform(&SERVICE, &db, &[]);
    assert!(second_state.catalogue.poll_once(&platform.db).await.unwrap(), "the generation moved");
    assert_eq!(labels(&send(&second, get("/versions")).await.json()), ["2.1.0"]);
    assert!(!second_state.catalogue.poll_once(&platform.db).await.unwrap(), "nothing new");
    let metrics = send(&second, get("/metrics")).await;
    let text = String::from_utf8(metrics.body).unwrap();
    assert!(text.contains("meridian_versions_snapshot_versions 1"), "{text}");
    assert!(text.contains("meridian_versions_snapshot_reloads_total 2"), "start-up load, then the poll: {text}");
}

#[actix_rt::test]
async fn the_openapi_document_lists_every_path() {
    let db = TestDb::new(&SERVICE);
    let (app, _) = app(&db).await;
    let doc = send(&app, get("/openapi.json")).await.json();
    for path in [
        "/",
        "/versions",
        "/versions/latest",
        "/versions/update-for/{version}",
        "/versions/{version}",
        "/versions/{version}/artifacts",
        "/versions/{range}/mobile",
        "/artifacts/{version}/{artifact_type}/{platform}",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is documented");
    }
    assert!(doc["paths"]["/versions/{version}"]["post"].is_object());
    assert!(doc["paths"]["/versions/{version}"]["delete"].is_object());
}

/// No script, no stylesheet or image from anywhere, no frame, no remote font: a page is whole.
/// Escaped text never holds a literal `<`, so scanning tags finds exactly the markup.
fn assert_self_contained(html: &str) {
    assert!(html.to_ascii_lowercase().starts_with("<!doctype html>"));
    for tag in html.split('<').skip(1).map(|rest| rest.split('>').next().unwrap().to_ascii_lowercase()) {
        let name = tag.split([' ', '\n', '/']).next().unwrap_or("");
        let forbidden =
            ["script", "img", "link", "iframe", "object", "embed", "source", "video", "audio", "base", "image", "use"];
        assert!(!forbidden.contains(&name), "<{tag}> in the page");
        for attribute in [" src=", "srcset=", "url(", "xlink:href", "style="] {
            assert!(!tag.contains(attribute), "{attribute} in <{tag}>");
        }
        if let Some(href) = tag.split("href=\"").nth(1) {
            assert!(href.starts_with('/') || href.starts_with('#') || href.starts_with("https://"), "<{tag}>");
        }
    }
    let style = html.split("<style>").nth(1).and_then(|s| s.split("</style>").next()).unwrap_or("");
    assert!(!style.contains("url(") && !style.contains("@import"), "the inline style loads nothing");
}

fn page(uri: &str) -> test::TestRequest {
    get(uri).insert_header(("accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"))
}

fn assert_html_with_csp(reply: &Reply) {
    assert_eq!(reply.header("content-type"), Some("text/html; charset=utf-8"));
    let csp = reply.header("content-security-policy").unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("style-src 'unsafe-inline'"), "{csp}");
    assert!(!csp.contains("script-src"), "{csp}");
    assert_self_contained(&reply.text());
}

#[actix_rt::test]
async fn the_index_page_renders_every_state_safely() {
    let db = TestDb::new(&SERVICE);
    let (app, _) = app(&db).await;
    let (releaser, _) = device(&db, DeviceRole::Releaser);
    let (admin, _) = device(&db, DeviceRole::Admin);

    let empty = send(&app, get("/")).await;
    assert_eq!(empty.status, 200);
    assert_html_with_csp(&empty);
    assert!(empty.text().contains("No version has been published yet"));

    let hostile = "## Fixes\n\n- **bold** fix\n\n<script>alert('x')</script>\n\n<img src=\"https://evil.example.org/t.png\">\n\n\
                   ![tracker](https://evil.example.org/pixel.gif) [bad](javascript:alert(1))\n";
    send(&app, publish(&releaser, "2.1.0", hostile)).await;
    send(&app, publish(&releaser, "2.2.0", "Pulled.")).await;
    send(&app, publish(&releaser, "2.3.0-rc.1", "Candidate & <friends>")).await;
    send(&app, add_artifact(&releaser, "2.1.0/mobile/android", "https://dl.example.org/a.apk")).await;
    send(&app, withdraw(&admin, "2.2.0")).await;

    let reply = send(&app, get("/")).await;
    assert_eq!(reply.status, 200);
    assert_html_with_csp(&reply);
    let html = reply.text();
    let (rc, withdrawn, first) =
        (html.find("2.3.0-rc.1").unwrap(), html.find("<span>2.2.0").unwrap(), html.find("<span>2.1.0").unwrap());
    assert!(rc < withdrawn && withdrawn < first, "newest first");
    assert_eq!(html.matches("badge withdrawn").count(), 1);
    assert_eq!(html.matches("badge published").count(), 2);
    assert!(html.contains("<strong>bold</strong>"), "Markdown is rendered");
    assert!(html.contains("&lt;script&gt;"), "raw HTML is shown as text");
    assert!(!html.contains("javascript:"));
    assert!(html.contains("Candidate &amp; &lt;friends&gt;"));
    assert!(html.contains("href=\"/versions/2.1.0\""), "a link to the artifacts");
    assert!(html.contains("1 artifact<"));
}

#[actix_rt::test]
async fn a_version_is_a_page_for_browsers_and_json_for_clients() {
    let db = TestDb::new(&SERVICE);
    let (app, _) = app(&db).await;
    let (releaser, _) = device(&db, DeviceRole::Releaser);
    let (admin, _) = device(&db, DeviceRole::Admin);
    send(&app, publish(&releaser, "2.1.0", "- first\n")).await;
    send(&app, publish(&releaser, "2.2.0", "- second\n")).await;
    let apk = "https://dl.example.org/tamanu-2.1.0.apk?token=a&b=<c>";
    send(&app, add_artifact(&releaser, "2.1.0/mobile/android?size=48213004", apk)).await;
    send(&app, add_artifact(&releaser, "2.1.0/desktop/windows", "https://dl.example.org/t.msi")).await;
    send(&app, withdraw(&admin, "2.2.0")).await;

    let reply = send(&app, page("/versions/2.1.0")).await;
    assert_eq!(reply.status, 200);
    assert_html_with_csp(&reply);
    let html = reply.text();
    assert!(html.contains("href=\"https://dl.example.org/tamanu-2.1.0.apk?token=a&#38;b=&#60;c&#62;\""), "{html}");
    assert!(html.contains("href=\"https://dl.example.org/t.msi\""));
    assert!(html.contains("46.0 MiB"));
    assert!(html.contains("href=\"/versions/2.1.0/mobile\""));
    assert!(html.find("desktop").unwrap() < html.find("mobile").unwrap(), "sorted by type");

    let withdrawn = send(&app, page("/versions/2.2.0")).await;
    assert_eq!(withdrawn.status, 200);
    assert_html_with_csp(&withdrawn);
    assert!(withdrawn.text().contains("badge withdrawn"));
    assert!(withdrawn.text().contains("No artifact has been published"));

    let missing = send(&app, page("/versions/7.0.0")).await;
    assert_eq!(missing.status, 404);
    assert_html_with_csp(&missing);

    for accept in [None, Some("application/json"), Some("*/*"), Some("application/json, text/html;q=0.1")] {
        let mut req = get("/versions/2.1.0");
        if let Some(accept) = accept {
            req = req.insert_header(("accept", accept));
        }
        let reply = send(&app, req).await;
        assert_eq!(reply.header("content-type"), Some("application/json"), "{accept:?}");
        assert_eq!(reply.json()["artifacts"].as_array().unwrap().len(), 2);
    }
}

#[actix_rt::test]
async fn the_mobile_page_shows_a_qr_code_per_mobile_build() {
    let db = TestDb::new(&SERVICE);
    let (app, _) = app(&db).await;
    let (releaser, _) = device(&db, DeviceRole::Releaser);
    let (admin, _) = device(&db, DeviceRole::Admin);
    for v in ["2.26.0", "2.27.0", "2.27.1", "2.27.2", "2.28.0"] {
        send(&app, publish(&releaser, v, "x")).await;
        send(&app, add_artifact(&releaser, &format!("{v}/mobile/android"), &format!("https://dl.example.org/{v}.apk")))
            .await;
        send(&app, add_artifact(&releaser, &format!("{v}/mobile/ios"), &format!("https://dl.example.org/{v}.ipa")))
            .await;
        send(
            &app,
            add_artifact(&releaser, &format!("{v}/desktop/windows"), &format!("https://dl.example.org/{v}.msi")),
        )
        .await;
    }
    send(&app, withdraw(&admin, "2.27.2")).await;

    for range in ["2.27", "~2.27", "%5E2.27.0", "~2.27.1"] {
        let reply = send(&app, get(&format!("/versions/{range}/mobile"))).await;
        assert_eq!(reply.status, 200, "{range}");
        assert_html_with_csp(&reply);
        let html = reply.text();
        if range == "%5E2.27.0" {
            assert!(html.contains("https://dl.example.org/2.28.0.apk"), "^2.27.0 reaches 2.28.0");
            continue;
        }
        assert!(html.contains("https://dl.example.org/2.27.1.apk"), "{range}: the newest published match");
        assert!(html.contains("https://dl.example.org/2.27.1.ipa"));
        assert!(!html.contains("2.27.2"), "withdrawn versions are skipped");
        assert!(!html.contains(".msi"), "only mobile builds");
        assert_eq!(html.matches("<svg").count(), 2, "one QR code per link");
    }

    send(&app, publish(&releaser, "3.0.0", "desktop only")).await;
    send(&app, add_artifact(&releaser, "3.0.0/desktop/windows", "https://dl.example.org/3.msi")).await;
    let none = send(&app, get("/versions/3/mobile")).await;
    assert_eq!(none.status, 200);
    assert_html_with_csp(&none);
    assert!(none.text().contains("has no mobile build"));
    assert_eq!(none.text().matches("<svg").count(), 0);

    let unmatched = send(&app, get("/versions/4.1/mobile")).await;
    assert_eq!(unmatched.status, 404);
    assert_html_with_csp(&unmatched);
    let bad = send(&app, get("/versions/banana/mobile")).await;
    assert_eq!(bad.status, 422);
    assert_html_with_csp(&bad);
}

#[actix_rt::test]
async fn the_list_is_sent_gzipped_to_clients_that_accept_it() {
    use std::io::Read;
    let db = TestDb::new(&SERVICE);
    let (app, _) = app(&db).await;
    let (releaser, _) = device(&db, DeviceRole::Releaser);
    for minor in 0..20 {
        send(&app, publish(&releaser, &format!("2.{minor}.0"), "- a changelog line long enough to compress\n")).await;
    }
    let plain = send(&app, get("/versions")).await;
    assert!(plain.header("content-encoding").is_none());
    let zipped = send(&app, get("/versions").insert_header(("accept-encoding", "gzip, deflate, br"))).await;
    assert_eq!(zipped.status, 200);
    assert_eq!(zipped.header("content-encoding"), Some("gzip"));
    assert!(zipped.header("vary").unwrap().contains("Accept-Encoding"));
    assert!(zipped.body.len() < plain.body.len());
    let mut unzipped = Vec::new();
    flate2::read::GzDecoder::new(&zipped.body[..]).read_to_end(&mut unzipped).unwrap();
    assert_eq!(unzipped, plain.body, "the same document");
    let (plain_tag, zipped_tag) = (plain.header("etag").unwrap(), zipped.header("etag").unwrap());
    assert_ne!(plain_tag, zipped_tag, "each representation has its own tag");
    for tag in [plain_tag, zipped_tag] {
        let again = send(&app, get("/versions").insert_header(("if-none-match", tag.to_owned()))).await;
        assert_eq!(again.status, 304);
    }
    let refused = send(&app, get("/versions").insert_header(("accept-encoding", "gzip;q=0"))).await;
    assert!(refused.header("content-encoding").is_none());
}
