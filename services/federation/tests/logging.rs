//! Failed and throttled logins are logged at warning level, naming the account, never the password.
//! (Its own test binary: it installs a capturing logger for the process.)

mod common;

use std::sync::Mutex;

use actix_web::test;
use common::*;

static RECORDS: Mutex<Vec<(log::Level, String)>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::Level::Info
    }

    fn log(&self, record: &log::Record) {
        if self.enabled(record.metadata()) {
            RECORDS.lock().unwrap().push((record.level(), record.args().to_string()));
        }
    }

    fn flush(&self) {}
}

#[actix_rt::test]
async fn failures_and_throttling_are_logged_at_warn_without_the_password() {
    log::set_logger(&Capture).unwrap();
    log::set_max_level(log::LevelFilter::Info);
    let h = harness(&[("FEDERATION_FAILURES_PER_ACCOUNT", "2/h")]);
    let app = test::init_service(h.platform.app(app_config(&h))).await;
    let secret = "correct-horse-battery-staple-guess";
    for _ in 0..2 {
        call(&app, "GET", "/login", Some((PATIENT.0, secret)), None).await.problem(401);
    }
    call(&app, "GET", "/login", Some((PATIENT.0, secret)), None).await.problem(429);

    let records = RECORDS.lock().unwrap().clone();
    let warnings: Vec<&String> =
        records.iter().filter(|(level, _)| *level == log::Level::Warn).map(|(_, m)| m).collect();
    assert!(
        warnings.iter().any(|m| m.contains("failed authentication") && m.contains(PATIENT.0)),
        "failures are warnings naming the account: {warnings:?}"
    );
    assert!(warnings.iter().any(|m| m.contains("throttled") && m.contains(PATIENT.0)), "{warnings:?}");
    assert!(records.iter().all(|(_, m)| !m.contains(secret)), "no log line holds the password: {records:?}");
}
