//! The certificate and device extractors against a real Postgres.

use actix_web::{HttpResponse, test, web};
use diesel::prelude::*;
use meridian_auth::cert::OptionalDevice;
use meridian_auth::{AUTH_MIGRATIONS, Device, devices};
use meridian_model::DeviceRole;
use meridian_platform::testing::{TestDb, test_platform};
use meridian_platform::{ApiError, ServiceDef};

static SERVICE: ServiceDef = ServiceDef {
    name: "authtest",
    version: "0.0.0",
    default_port: 0,
    schema: "auth",
    migrations: &[AUTH_MIGRATIONS],
    openapi: utoipa::openapi::OpenApi::default,
};

fn certificate() -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    rcgen::CertificateParams::new(vec!["device.test".into()]).unwrap().self_signed(&key).unwrap().pem()
}

fn encoded(pem: &str) -> String {
    percent_encoding::utf8_percent_encode(pem, percent_encoding::NON_ALPHANUMERIC).to_string()
}

async fn server_only(device: Device) -> Result<HttpResponse, ApiError> {
    device.require(DeviceRole::Server)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"id": device.id})))
}

async fn whoever(device: OptionalDevice) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"device": device.0.map(|d| d.id)}))
}

fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/server-only", web::get().to(server_only)).route("/whoever", web::get().to(whoever));
}

#[actix_rt::test]
async fn first_contact_is_recorded_untrusted_and_refused_then_approved_device_passes() {
    let db = TestDb::new(&SERVICE);
    let platform = test_platform(&SERVICE, &db, &[("TRUST_CERT_HEADER", "true")]);
    let app = test::init_service(platform.app(routes)).await;
    let pem = certificate();

    let req = test::TestRequest::get()
        .uri("/server-only")
        .peer_addr("198.51.100.20:4000".parse().unwrap())
        .insert_header(("mtls-certificate", encoded(&pem)))
        .insert_header(("user-agent", "tamanu-central/2.3"))
        .to_request();
    let res = test::call_service(&app, req).await;
    assert_eq!(res.status(), 403);
    assert_eq!(res.headers().get("content-type").unwrap(), "application/problem+json");

    let mut conn = db.conn();
    let fingerprint = meridian_auth::ClientCertificate::from_header(&pem).unwrap().fingerprint;
    let record = devices::find(&mut conn, &fingerprint[..12]).unwrap();
    assert_eq!(record.role(), DeviceRole::Untrusted);
    let listed = devices::list(&mut conn, 5).unwrap();
    assert_eq!(listed[0].recent_connections[0].ip.as_deref(), Some("198.51.100.20"));
    assert_eq!(listed[0].recent_connections[0].user_agent.as_deref(), Some("tamanu-central/2.3"));

    devices::set_role(&mut conn, record.id, DeviceRole::Releaser).unwrap();
    let req = test::TestRequest::get()
        .uri("/server-only")
        .insert_header(("mtls-certificate", pem.replace('\n', " ")))
        .to_request();
    assert_eq!(test::call_service(&app, req).await.status(), 403, "a releaser is not a server");

    devices::set_role(&mut conn, record.id, DeviceRole::Server).unwrap();
    let req =
        test::TestRequest::get().uri("/server-only").insert_header(("ssl-client-cert", encoded(&pem))).to_request();
    let body: serde_json::Value = test::call_and_read_body_json(&app, req).await;
    assert_eq!(body["id"], record.id.to_string());

    devices::set_role(&mut conn, record.id, DeviceRole::Admin).unwrap();
    let req =
        test::TestRequest::get().uri("/server-only").insert_header(("mtls-certificate", encoded(&pem))).to_request();
    assert_eq!(test::call_service(&app, req).await.status(), 200, "admin passes every role check");

    let connections: i64 = meridian_auth::schema::device_connections::table.count().get_result(&mut conn).unwrap();
    assert_eq!(connections, 4, "every authenticated request is recorded");
}

#[actix_rt::test]
async fn missing_malformed_and_untrusted_headers() {
    let db = TestDb::new(&SERVICE);
    let trusting = test::init_service(test_platform(&SERVICE, &db, &[("TRUST_CERT_HEADER", "true")]).app(routes)).await;
    let res = test::call_service(&trusting, test::TestRequest::get().uri("/server-only").to_request()).await;
    assert_eq!(res.status(), 401);
    let req =
        test::TestRequest::get().uri("/server-only").insert_header(("mtls-certificate", "not%20a%20cert")).to_request();
    assert_eq!(test::call_service(&trusting, req).await.status(), 400);
    let body: serde_json::Value =
        test::call_and_read_body_json(&trusting, test::TestRequest::get().uri("/whoever").to_request()).await;
    assert!(body["device"].is_null());

    // A spoofed header is ignored when the header is not trusted: as if no certificate was sent.
    let wary = test::init_service(test_platform(&SERVICE, &db, &[]).app(routes)).await;
    let req = test::TestRequest::get()
        .uri("/server-only")
        .insert_header(("mtls-certificate", encoded(&certificate())))
        .to_request();
    assert_eq!(test::call_service(&wary, req).await.status(), 401);
    let count: i64 = meridian_auth::schema::devices::table.count().get_result(&mut db.conn()).unwrap();
    assert_eq!(count, 0, "nothing is recorded from an untrusted header");
}

#[actix_rt::test]
async fn untrusted_devices_are_pruned_after_a_week() {
    let db = TestDb::new(&SERVICE);
    let mut conn = db.conn();
    let cert = meridian_auth::ClientCertificate::from_header(&certificate()).unwrap();
    let old = devices::find_or_record(&mut conn, &cert).unwrap();
    diesel::update(meridian_auth::schema::devices::table.find(old.id))
        .set(meridian_auth::schema::devices::created_at.eq(chrono::Utc::now() - chrono::Duration::days(8)))
        .execute(&mut conn)
        .unwrap();
    let approved_cert = meridian_auth::ClientCertificate::from_header(&certificate()).unwrap();
    let approved = devices::find_or_record(&mut conn, &approved_cert).unwrap();
    devices::set_role(&mut conn, approved.id, DeviceRole::Server).unwrap();
    assert_eq!(devices::prune_untrusted(&mut conn, chrono::Duration::days(7)).unwrap(), 1);
    assert!(devices::find(&mut conn, &old.id.to_string()).is_err());
    assert!(devices::find(&mut conn, &approved.id.to_string()).is_ok());
}
