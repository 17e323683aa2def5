//! The real binaries, side by side on one database, as the ingress and the probes see them.

use std::time::Duration;

use integration_tests::{EmptyDb, Running};

const SERVICES: [&str; 5] = ["discovery", "versions", "federation", "registration", "messaging"];

/// Every binary starts on an empty database, migrates its schemas (discovery and versions both
/// migrate the shared `auth` schema, at the same time) and answers the common endpoints.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_starts_migrates_and_answers_the_common_endpoints() {
    let db = EmptyDb::new();
    let client = integration_tests::client();
    let running: Vec<Running> = SERVICES.iter().map(|name| Running::start(name, &db.url, &[])).collect();
    for service in &running {
        service.wait_for(&client, "/ready", Duration::from_secs(60)).await;
        let version: serde_json::Value =
            client.get(service.url("/version")).send().await.unwrap().json().await.unwrap();
        assert_eq!(version["service"], service.name.as_str());
        let openapi: serde_json::Value =
            client.get(service.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
        assert!(openapi["paths"].as_object().unwrap().len() > 5, "{} documents its routes", service.name);
        let metrics = client.get(service.url("/metrics")).send().await.unwrap().text().await.unwrap();
        assert!(metrics.contains("meridian_http_requests_total"), "{} exports request metrics", service.name);
        let missing = client.get(service.url("/no/such/route")).send().await.unwrap();
        assert_eq!(missing.status(), 404);
        assert_eq!(missing.headers()["content-type"], "application/problem+json");
        assert!(missing.headers().contains_key("x-request-id"));
    }
}

/// SIGTERM: the process stops accepting, finishes what is in flight, and exits cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_shuts_down_gracefully() {
    let db = EmptyDb::new();
    let client = integration_tests::client();
    let mut service = Running::start("versions", &db.url, &[]);
    service.wait_for(&client, "/ready", Duration::from_secs(60)).await;
    service.terminate();
    assert!(service.wait_exit(Duration::from_secs(35)), "exit status 0 after SIGTERM");
    assert!(client.get(service.url("/running")).send().await.is_err(), "no longer accepting connections");
}

/// A service started before its database exists answers liveness at once and becomes ready when
/// the database appears (Kubernetes start order).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_before_the_database_and_becomes_ready_when_it_appears() {
    let client = integration_tests::client();
    let missing = meridian_platform::testing::with_database(
        &meridian_platform::testing::base_url(),
        &format!("meridian_it_later_{}", uuid::Uuid::new_v4().simple()),
    );
    let service = Running::start("discovery", &missing, &[]);
    service.wait_for(&client, "/running", Duration::from_secs(30)).await;
    assert_eq!(client.get(service.url("/ready")).send().await.unwrap().status(), 503);

    let name = missing.rsplit('/').next().unwrap().to_owned();
    {
        use diesel::Connection;
        use diesel::connection::SimpleConnection;
        let mut admin = diesel::PgConnection::establish(&meridian_platform::testing::base_url()).unwrap();
        admin.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
    }
    service.wait_for(&client, "/ready", Duration::from_secs(60)).await;
    drop(service);
    use diesel::Connection;
    use diesel::connection::SimpleConnection;
    let mut admin = diesel::PgConnection::establish(&meridian_platform::testing::base_url()).unwrap();
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).unwrap();
}
