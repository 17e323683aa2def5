//! The poller against real local HTTP servers, and the one-poller-per-database lock.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Answer, closed_port, peer};
use diesel::prelude::*;
use discovery::SERVICE;
use discovery::model::{Kind, Rank};
use discovery::poller::{Leadership, Poller, PollerConfig};
use discovery::schema::statuses;
use discovery::servers::{self, NewServer};
use meridian_platform::testing::{TestDb, test_platform};
use uuid::Uuid;

fn poller(db: &TestDb, timeout: Duration) -> Poller {
    let platform = test_platform(&SERVICE, db, &[]);
    Poller::new(platform.db.clone(), PollerConfig { timeout, concurrency: 2, ..Default::default() })
}

fn seed(db: &TestDb, host: &str, owner: Option<Uuid>) -> Uuid {
    let input = NewServer {
        name: Some(host.to_owned()),
        host: host.to_owned(),
        kind: Kind::Central,
        rank: Some(Rank::Production),
        listed: Some(true),
        device_id: None,
    };
    servers::create(&mut db.conn(), input, owner).unwrap().id
}

/// Waits (bounded) until `done` holds.
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[actix_rt::test]
async fn pings_are_classified() {
    let db = TestDb::new(&SERVICE);
    let poller = poller(&db, Duration::from_millis(500));

    let good = peer(Answer::Version("v2.14.1")).await;
    let outcome = poller.ping(&format!("{}/", good.url)).await;
    assert_eq!(outcome.error, None);
    assert_eq!(outcome.version.as_deref(), Some("2.14.1"));
    assert!(outcome.latency_ms.is_some());

    let cases = [
        (Answer::NoVersion, "no_version"),
        (Answer::Version("banana"), "bad_version"),
        (Answer::Status(503), "http_status"),
        (Answer::Slow(Duration::from_secs(5)), "timeout"),
    ];
    for (answer, class) in cases {
        let server = peer(answer.clone()).await;
        let outcome = poller.ping(&server.url).await;
        assert_eq!(outcome.error, Some(class), "{answer:?}: {outcome:?}");
        assert!(outcome.version.is_none());
    }
    let outcome = poller.ping(&format!("http://127.0.0.1:{}", closed_port())).await;
    assert_eq!(outcome.error, Some("connect"), "{outcome:?}");

    // Redirects: followed on the same host, refused to another (localhost is another host name).
    let same = peer(Answer::Redirect(format!("{}/api/public/ping", good.url))).await;
    let outcome = poller.ping(&same.url).await;
    assert_eq!(outcome.error, None, "{outcome:?}");
    let elsewhere = peer(Answer::Redirect(format!("http://localhost:{}/api/public/ping", good.port))).await;
    let hits_before = good.hits.load(Ordering::SeqCst);
    let outcome = poller.ping(&elsewhere.url).await;
    assert_eq!(outcome.error, Some("redirect"), "{outcome:?}");
    assert_eq!(good.hits.load(Ordering::SeqCst), hits_before, "the other host was never asked");
}

#[actix_rt::test]
async fn rounds_poll_unowned_servers_with_bounded_concurrency() {
    let db = TestDb::new(&SERVICE);
    let slow = peer(Answer::Slow(Duration::from_millis(150))).await;
    for path in ["a", "b", "c", "d", "e", "f"] {
        seed(&db, &format!("{}/{path}", slow.url), None);
    }
    let down = seed(&db, &format!("http://127.0.0.1:{}", closed_port()), None);
    let owner = common::device(&db, meridian_model::DeviceRole::Server);
    let pushed = peer(Answer::Version("1.0.0")).await;
    let owned = seed(&db, &pushed.url, Some(owner.id));

    let summary = poller(&db, Duration::from_secs(5)).poll_round().await.unwrap();
    assert_eq!((summary.polled, summary.up), (7, 6));
    assert_eq!(slow.hits.load(Ordering::SeqCst), 6);
    assert!(slow.max_in_flight.load(Ordering::SeqCst) <= 2, "at most `concurrency` requests at once");
    assert_eq!(pushed.hits.load(Ordering::SeqCst), 0, "servers that push are not polled");

    let mut conn = db.conn();
    let owned_count: i64 = statuses::table.filter(statuses::server_id.eq(owned)).count().get_result(&mut conn).unwrap();
    assert_eq!(owned_count, 0);
    let (error, extra): (Option<String>, serde_json::Value) = statuses::table
        .filter(statuses::server_id.eq(down))
        .select((statuses::error, statuses::extra))
        .first(&mut conn)
        .unwrap();
    assert_eq!(error.as_deref(), Some("connect"));
    assert!(extra["detail"].is_string());
}

#[core::prelude::v1::test]
fn only_one_holder_of_the_polling_lock() {
    let db = TestDb::new(&SERVICE);
    let mut a = Leadership::new(db.url.clone());
    let mut b = Leadership::new(db.url.clone());
    assert!(a.try_acquire());
    assert!(!b.try_acquire());
    assert!(a.try_acquire(), "still held");
    a.release();
    assert!(b.try_acquire(), "taken over once released");
    assert!(!a.try_acquire());

    // The holder dies (its connection is killed): the other takes over.
    let killed: Vec<bool> = diesel::dsl::sql::<diesel::sql_types::Bool>(
        "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .load(&mut db.conn())
    .unwrap();
    assert_eq!(killed, [true]);
    eventually("the survivor takes the lock", || a.try_acquire());
    assert!(!b.try_acquire(), "the dead holder reconnects as a follower");
}

#[core::prelude::v1::test]
fn two_instances_on_one_database_exactly_one_polls_and_another_takes_over() {
    let db = TestDb::new(&SERVICE);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let target = runtime.block_on(async {
        let target = peer(Answer::Version("3.0.0")).await;
        seed(&db, &target.url, None);
        target
    });
    // Keep the peer's accept loop running while the pollers work.
    let stop_peer = Arc::new(AtomicBool::new(false));
    let peer_thread = {
        let stop = stop_peer.clone();
        std::thread::spawn(move || {
            runtime.block_on(async move {
                while !stop.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            });
        })
    };

    let make = || {
        let platform = test_platform(&SERVICE, &db, &[]);
        Poller::new(
            platform.db.clone(),
            PollerConfig {
                interval: Duration::from_millis(100),
                timeout: Duration::from_secs(2),
                ..Default::default()
            },
        )
    };
    let (first, second) = (make(), make());
    let (stop_first, stop_second) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    let first_thread = first.spawn(db.url.clone(), stop_first.clone());
    let second_thread = second.spawn(db.url.clone(), stop_second.clone());

    eventually("several rounds", || first.rounds() + second.rounds() >= 4);
    let (leader, follower, stop_leader, leader_thread, stop_follower, follower_thread) = if first.rounds() > 0 {
        (&first, &second, stop_first, first_thread, stop_second, second_thread)
    } else {
        (&second, &first, stop_second, second_thread, stop_first, first_thread)
    };
    assert_eq!(follower.rounds(), 0, "exactly one instance polls");
    assert!(target.hits.load(Ordering::SeqCst) >= 4);

    // The poller stops (its lock connection closes): the other takes over.
    stop_leader.store(true, Ordering::Relaxed);
    leader_thread.join().unwrap();
    let leader_rounds = leader.rounds();
    eventually("the other instance takes over", || follower.rounds() >= 2);
    assert_eq!(leader.rounds(), leader_rounds);

    stop_follower.store(true, Ordering::Relaxed);
    follower_thread.join().unwrap();
    stop_peer.store(true, Ordering::Relaxed);
    peer_thread.join().unwrap();
}

#[actix_rt::test]
async fn housekeeping_prunes_old_statuses_and_untrusted_devices() {
    let db = TestDb::new(&SERVICE);
    let id = seed(&db, "https://old.example.org", None);
    let mut conn = db.conn();
    for days in [1, 29, 31, 90] {
        diesel::insert_into(statuses::table)
            .values((
                statuses::server_id.eq(id),
                statuses::created_at.eq(chrono::Utc::now() - chrono::Duration::days(days)),
                statuses::version.eq("1.0.0"),
            ))
            .execute(&mut conn)
            .unwrap();
    }
    let stale = meridian_auth::ClientCertificate::from_header(&common::certificate()).unwrap();
    let stale = meridian_auth::devices::find_or_record(&mut conn, &stale).unwrap();
    diesel::update(meridian_auth::schema::devices::table.find(stale.id))
        .set(meridian_auth::schema::devices::created_at.eq(chrono::Utc::now() - chrono::Duration::days(8)))
        .execute(&mut conn)
        .unwrap();
    let fresh = common::device(&db, meridian_model::DeviceRole::Untrusted);

    let (statuses_pruned, devices_pruned) = poller(&db, Duration::from_secs(1)).housekeeping().await.unwrap();
    assert_eq!((statuses_pruned, devices_pruned), (2, 1));
    let left: i64 = statuses::table.count().get_result(&mut conn).unwrap();
    assert_eq!(left, 2);
    let hours: i64 = diesel::dsl::sql::<diesel::sql_types::BigInt>("SELECT count(*) FROM status_hourly")
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(hours, 2, "the hourly counts are pruned with the statuses");
    assert!(meridian_auth::devices::find(&mut conn, &stale.id.to_string()).is_err());
    assert!(meridian_auth::devices::find(&mut conn, &fresh.id.to_string()).is_ok());
}

#[core::prelude::v1::test]
fn configuration_is_read_from_the_environment() {
    let db = TestDb::new(&SERVICE);
    let platform = test_platform(
        &SERVICE,
        &db,
        &[
            ("DISCOVERY_POLL_INTERVAL", "5"),
            ("DISCOVERY_POLL_CONCURRENCY", "3"),
            ("DISCOVERY_STATUS_RETENTION_DAYS", "14"),
        ],
    );
    let config = PollerConfig::from_config(&platform.config).unwrap();
    assert_eq!(config.interval, Duration::from_secs(5));
    assert_eq!(config.timeout, Duration::from_secs(10));
    assert_eq!(config.concurrency, 3);
    assert_eq!(config.retention, chrono::Duration::days(14));
    let bad = test_platform(&SERVICE, &db, &[("DISCOVERY_STATUS_RETENTION_DAYS", "2")]);
    assert!(PollerConfig::from_config(&bad.config).is_err());
}

#[actix_rt::test]
async fn https_is_verified_and_an_unknown_issuer_is_a_tls_error() {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let db = TestDb::new(&SERVICE);
    let poller = poller(&db, Duration::from_secs(5));
    // A real TLS server with a self-signed certificate nobody trusts.
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".into()]).unwrap().self_signed(&key).unwrap();
    let tls = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    let server = actix_web::HttpServer::new(|| {
        actix_web::App::new().route(
            "/api/public/ping",
            actix_web::web::get()
                .to(|| async { actix_web::HttpResponse::Ok().insert_header(("X-Version", "1.2.3")).finish() }),
        )
    })
    .workers(1)
    .bind_rustls_0_23(("127.0.0.1", 0), tls)
    .unwrap();
    let port = server.addrs()[0].port();
    let running = server.run();
    let handle = running.handle();
    actix_rt::spawn(running);

    let outcome = poller.ping(&format!("https://127.0.0.1:{port}")).await;
    assert_eq!(outcome.error, Some("tls"), "{outcome:?}");
    assert!(outcome.detail.unwrap().to_lowercase().contains("certificate"));
    handle.stop(false).await;
}
