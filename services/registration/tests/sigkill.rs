//! The real binary killed with SIGKILL in the middle of a broadcast, then started again: every
//! message is delivered, and the only copies sent twice are the ones in flight at the kill (at most
//! one per send slot; see docs/registration.md, "The one window").

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use meridian_platform::testing::TestDb;
use registration::registrations::{self, NewRegistration, Registered};
use registration::{SERVICE, broadcasts};
use uuid::Uuid;

const SLOTS: usize = 4;

fn spawn(db: &TestDb) -> Child {
    Command::new(env!("CARGO_BIN_EXE_registration"))
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &db.url)
        .env("DATABASE_POOL_SIZE", "2")
        .env("BIND", "127.0.0.1:0")
        .env("RUN_MIGRATIONS", "false")
        .env("SMTP_URL", std::env::var("SMTP_URL").expect("SMTP_URL must name the test SMTP sink"))
        .env("MAIL_FROM", "Board <board@meridian.example.org>")
        .env("REGISTRATION_SEND_CONCURRENCY", SLOTS.to_string())
        .env("REGISTRATION_SEND_RATE", "40/s")
        .env("REGISTRATION_POLL_INTERVAL_MS", "50")
        .env("LOG_LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the registration binary")
}

fn copies(dir: &PathBuf, email: &str) -> usize {
    let suffix = format!("-{email}.eml");
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.ends_with(&suffix) && !name.starts_with('.')
        })
        .count()
}

#[test]
fn sigkill_mid_broadcast_then_restart_delivers_everything() {
    let sink = PathBuf::from(std::env::var("SMTP_SINK_DIR").expect("SMTP_SINK_DIR must name the sink's directory"));
    let db = TestDb::new(&SERVICE);
    let run = &Uuid::new_v4().simple().to_string()[..10];
    let mut conn = db.conn();
    let emails: Vec<String> = (0..60)
        .map(|i| {
            let email = format!("k{run}-{i}@example.org");
            let new =
                NewRegistration { email: email.clone(), version: "7".into(), distribution: None, client_ip: None };
            assert!(matches!(registrations::register(&mut conn, &new).unwrap(), Registered::New(_)));
            email
        })
        .collect();
    let (broadcast, _) = conn.transaction(|c| broadcasts::enqueue(c, "Kill test", "Contents.", "pin", None)).unwrap();

    let mut first = spawn(&db);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let sent = broadcasts::status(&mut conn, broadcast).unwrap().sent;
        if sent >= 15 {
            break;
        }
        assert!(Instant::now() < deadline, "the first process sent only {sent}");
        std::thread::sleep(Duration::from_millis(20));
    }
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    let at_kill = broadcasts::status(&mut conn, broadcast).unwrap();
    assert!(at_kill.queued > 0, "killed mid-broadcast: {} still queued", at_kill.queued);

    let mut second = spawn(&db);
    let deadline = Instant::now() + Duration::from_secs(60);
    while broadcasts::pending(&mut conn).unwrap() > 0 {
        assert!(Instant::now() < deadline, "the restarted process did not finish");
        std::thread::sleep(Duration::from_millis(50));
    }
    second.kill().unwrap();
    second.wait().unwrap();

    let status = broadcasts::status(&mut conn, broadcast).unwrap();
    assert_eq!((status.sent, status.failed, status.queued), (60, 0, 0));
    let counts: Vec<usize> = emails.iter().map(|e| copies(&sink, e)).collect();
    assert!(counts.iter().all(|c| *c >= 1), "every recipient got the message: {counts:?}");
    let duplicates: usize = counts.iter().map(|c| c - 1).sum();
    eprintln!(
        "killed with {} sent and {} queued; duplicates after restart: {duplicates}",
        at_kill.sent, at_kill.queued
    );
    assert!(duplicates <= SLOTS, "at most one copy per slot in flight is sent twice, got {duplicates}: {counts:?}");
}
