//! Native mutual TLS: the device is identified from the certificate presented in the handshake,
//! with no proxy header involved.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use meridian_auth::{AUTH_MIGRATIONS, Device, devices};
use meridian_model::DeviceRole;
use meridian_platform::testing::{TestDb, test_platform};
use meridian_platform::{ApiError, ServiceDef};

static SERVICE: ServiceDef = ServiceDef {
    name: "mtlstest",
    version: "0.0.0",
    default_port: 0,
    schema: "auth",
    migrations: &[AUTH_MIGRATIONS],
    openapi: utoipa::openapi::OpenApi::default,
};

async fn whoami(device: Device) -> Result<HttpResponse, ApiError> {
    device.require(DeviceRole::Server)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"fingerprint": device.fingerprint})))
}

fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/whoami", web::get().to(whoami));
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[actix_rt::test]
async fn the_handshake_certificate_identifies_the_device() {
    meridian_platform::tls::install_crypto_provider();
    let dir = std::env::temp_dir().join(format!("meridian-mtls-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let server_key = rcgen::KeyPair::generate().unwrap();
    let server_cert =
        rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap().self_signed(&server_key).unwrap();
    std::fs::write(dir.join("server.crt"), server_cert.pem()).unwrap();
    std::fs::write(dir.join("server.key"), server_key.serialize_pem()).unwrap();

    let db = TestDb::new(&SERVICE);
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let platform = test_platform(
        &SERVICE,
        &db,
        &[
            ("BIND", bind.as_str()),
            ("TLS_CERT_FILE", dir.join("server.crt").to_str().unwrap()),
            ("TLS_KEY_FILE", dir.join("server.key").to_str().unwrap()),
        ],
    );
    actix_rt::spawn(platform.serve(routes));

    let client_key = rcgen::KeyPair::generate().unwrap();
    let client_cert = rcgen::CertificateParams::new(vec!["device".into()]).unwrap().self_signed(&client_key).unwrap();
    let identity =
        reqwest::Identity::from_pem(format!("{}{}", client_cert.pem(), client_key.serialize_pem()).as_bytes()).unwrap();
    let with_cert = reqwest::Client::builder().danger_accept_invalid_certs(true).identity(identity).build().unwrap();
    let without_cert = reqwest::Client::builder().danger_accept_invalid_certs(true).build().unwrap();
    let url = format!("https://localhost:{port}/whoami");

    let mut first = None;
    for _ in 0..100 {
        if let Ok(res) = with_cert.get(&url).send().await {
            first = Some(res.status().as_u16());
            break;
        }
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(first, Some(403), "first contact: recorded as untrusted");
    assert_eq!(without_cert.get(&url).send().await.unwrap().status(), 401, "no certificate in the handshake");

    let fingerprint = meridian_auth::ClientCertificate::from_der(client_cert.der()).unwrap().fingerprint;
    let mut conn = db.conn();
    let record = devices::find(&mut conn, &fingerprint).unwrap();
    devices::set_role(&mut conn, record.id, DeviceRole::Server).unwrap();
    let body: serde_json::Value = with_cert.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(body["fingerprint"], fingerprint);
    std::fs::remove_dir_all(dir).unwrap();
}
