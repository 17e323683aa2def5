//! The durable queue against a real Postgres and a real SMTP server (the sink `make test` starts:
//! `SMTP_URL`, and `SMTP_SINK_DIR` where it stores `<n>-<recipient>.eml`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::prelude::*;
use meridian_platform::testing::TestDb;
use registration::broadcasts::{self, BroadcastStatus};
use registration::mail::MailContext;
use registration::registrations::{self, NewRegistration, Registered};
use registration::settings::{MailerSpec, WorkerSettings};
use registration::worker::{self, Sender, Step, Worker};
use registration::{SCHEMA, SERVICE, token};
use uuid::Uuid;

const KEY: &[u8] = b"test-unsubscribe-key-0123456789abcdef";

fn smtp_url() -> String {
    std::env::var("SMTP_URL").expect("SMTP_URL must name the test SMTP sink (run the tests with `make test`)")
}

fn sink_dir() -> PathBuf {
    PathBuf::from(std::env::var("SMTP_SINK_DIR").expect("SMTP_SINK_DIR must name the sink's directory"))
}

fn ctx() -> MailContext {
    MailContext::new("Meridian board <board@meridian.example.org>", "https://registry.example.org", KEY).unwrap()
}

fn settings(concurrency: usize) -> WorkerSettings {
    WorkerSettings {
        enabled: true,
        concurrency,
        rate: None,
        send_timeout: Duration::from_secs(10),
        poll_interval: Duration::from_millis(50),
        max_attempts: 3,
        retry_base: Duration::from_secs(1),
    }
}

/// Registers `n` fresh addresses (unique across test runs, so sink files never collide).
fn recipients(db: &TestDb, n: usize) -> Vec<(Uuid, String)> {
    let run = Uuid::new_v4().simple().to_string();
    let mut conn = db.conn();
    (0..n)
        .map(|i| {
            let email = format!("t{}-{i}@example.org", &run[..12]);
            let new =
                NewRegistration { email: email.clone(), version: "7.0.3".into(), distribution: None, client_ip: None };
            match registrations::register(&mut conn, &new).unwrap() {
                Registered::New(id) => (id, email),
                other => panic!("{other:?}"),
            }
        })
        .collect()
}

fn enqueue(db: &TestDb, title: &str) -> Uuid {
    let mut conn = db.conn();
    conn.transaction(|conn| broadcasts::enqueue(conn, title, "Please **update** now.\n\nThanks & <bye>", "pin", None))
        .unwrap()
        .0
}

fn status(db: &TestDb, id: Uuid) -> BroadcastStatus {
    broadcasts::status(&mut db.conn(), id).unwrap()
}

fn pending(db: &TestDb) -> i64 {
    broadcasts::pending(&mut db.conn()).unwrap()
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The messages the sink stored for `recipient`.
fn received(recipient: &str) -> Vec<String> {
    let suffix = format!("-{recipient}.eml");
    let mut files: Vec<String> = std::fs::read_dir(sink_dir())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name().to_string_lossy().ends_with(&suffix) && !e.file_name().to_string_lossy().starts_with('.')
        })
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    files.sort();
    files
}

fn start(db: &TestDb, spec: MailerSpec, concurrency: usize) -> Worker {
    Worker::start(db.url.clone(), SCHEMA, spec, ctx(), settings(concurrency)).unwrap()
}

fn header<'a>(message: &'a str, name: &str) -> Option<&'a str> {
    let prefix = format!("{name}: ");
    message.lines().find_map(|line| line.strip_prefix(prefix.as_str()))
}

#[test]
fn every_message_is_delivered_once_with_opt_out_headers_and_both_parts() {
    let db = TestDb::new(&SERVICE);
    let to = recipients(&db, 20);
    let id = enqueue(&db, "Security release 7.0.3");
    let worker = start(&db, MailerSpec::Smtp(smtp_url()), 4);
    wait_for("every delivery", Duration::from_secs(60), || pending(&db) == 0);
    worker.stop();

    let s = status(&db, id);
    assert_eq!((s.recipients, s.sent, s.queued, s.failed), (20, 20, 0, 0));
    for (registration, email) in &to {
        let messages = received(email);
        assert_eq!(messages.len(), 1, "{email} received {} copies", messages.len());
        let m = &messages[0];
        assert_eq!(header(m, "Subject"), Some("Security release 7.0.3"));
        assert_eq!(header(m, "List-Unsubscribe-Post"), Some("List-Unsubscribe=One-Click"));
        let link = header(m, "List-Unsubscribe").expect("List-Unsubscribe header");
        let token = link.trim_matches(['<', '>']).split("token=").nth(1).unwrap();
        assert_eq!(token::verify(KEY, token), Some(*registration), "the link names this recipient");
        assert!(m.contains("multipart/alternative"));
        assert!(m.contains("text/plain") && m.contains("text/html"));
        assert!(m.contains("&lt;bye&gt;"), "the board's text is escaped in the HTML part");
        assert!(header(m, "Message-ID").unwrap().contains(&registration.simple().to_string()));
    }
}

#[test]
fn opted_out_recipients_are_skipped() {
    let db = TestDb::new(&SERVICE);
    let to = recipients(&db, 3);
    let id = enqueue(&db, "Skip test");
    assert_eq!(registrations::unsubscribe(&mut db.conn(), to[1].0).unwrap(), Some(true));
    let worker = start(&db, MailerSpec::Smtp(smtp_url()), 2);
    wait_for("every delivery", Duration::from_secs(30), || pending(&db) == 0);
    worker.stop();
    let s = status(&db, id);
    assert_eq!((s.sent, s.skipped), (2, 1));
    assert_eq!(received(&to[0].1).len(), 1);
    assert!(received(&to[1].1).is_empty());
    assert_eq!(received(&to[2].1).len(), 1);
}

/// A worker sends some messages, then dies (its connection closes) while holding a claimed,
/// not-yet-sent row; a fresh worker delivers every remaining message, and nobody receives two.
#[test]
fn a_worker_killed_mid_broadcast_is_completed_by_a_fresh_one_without_duplicates() {
    let db = TestDb::new(&SERVICE);
    let to = recipients(&db, 12);
    let id = enqueue(&db, "Crash test");

    let sender = Sender::new(&MailerSpec::Smtp(smtp_url()), ctx(), settings(1)).unwrap();
    let mut doomed = meridian_platform::db::connect(&db.url, SCHEMA).unwrap();
    for _ in 0..5 {
        assert_eq!(worker::process_one(&mut doomed, &sender).unwrap(), Step::Sent);
    }
    // The doomed worker claims the next row and is killed before it sends or commits.
    AnsiTransactionManager::begin_transaction(&mut doomed).unwrap();
    let in_flight = broadcasts::claim_next(&mut doomed).unwrap().expect("a row to claim");

    // A fresh worker starts meanwhile: it skips the locked row and sends the rest.
    let fresh = start(&db, MailerSpec::Smtp(smtp_url()), 2);
    wait_for("the unlocked rows", Duration::from_secs(30), || pending(&db) == 1);
    assert!(received(&in_flight.email).is_empty(), "the claimed row is not sent twice while claimed");

    drop(doomed); // the process dies: Postgres rolls back and releases the claim
    wait_for("the released row", Duration::from_secs(30), || pending(&db) == 0);
    fresh.stop();
    drop(sender);

    let s = status(&db, id);
    assert_eq!((s.sent, s.queued, s.failed), (12, 0, 0));
    for (_, email) in &to {
        assert_eq!(received(email).len(), 1, "{email}");
    }
}

#[test]
fn two_workers_on_one_database_never_send_a_message_twice() {
    let db = TestDb::new(&SERVICE);
    let to = recipients(&db, 40);
    let id = enqueue(&db, "Two replicas");
    let a = start(&db, MailerSpec::Smtp(smtp_url()), 3);
    let b = start(&db, MailerSpec::Smtp(smtp_url()), 3);
    wait_for("every delivery", Duration::from_secs(60), || pending(&db) == 0);
    a.stop();
    b.stop();
    let s = status(&db, id);
    assert_eq!((s.sent, s.queued, s.failed), (40, 0, 0));
    for (_, email) in &to {
        assert_eq!(received(email).len(), 1, "{email}");
    }
}

#[test]
fn deliveries_wait_while_smtp_is_down_and_resume_when_it_returns() {
    let db = TestDb::new(&SERVICE);
    let to = recipients(&db, 5);
    let id = enqueue(&db, "Outage test");
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let down = start(&db, MailerSpec::Smtp(format!("smtp://127.0.0.1:{closed}")), 2);
    std::thread::sleep(Duration::from_millis(1500));
    down.stop();
    let s = status(&db, id);
    assert_eq!((s.queued, s.sent, s.failed), (5, 0, 0), "nothing lost, nothing failed while the server is down");
    let attempts: Vec<i32> = registration::schema::deliveries::table
        .select(registration::schema::deliveries::attempts)
        .load(&mut db.conn())
        .unwrap();
    assert!(attempts.iter().all(|a| *a == 0), "an outage does not count against a delivery: {attempts:?}");

    let up = start(&db, MailerSpec::Smtp(smtp_url()), 2);
    wait_for("every delivery", Duration::from_secs(30), || pending(&db) == 0);
    up.stop();
    assert_eq!(status(&db, id).sent, 5);
    for (_, email) in &to {
        assert_eq!(received(email).len(), 1, "{email}");
    }
}

#[test]
fn dev_outbox_writes_eml_files() {
    let db = TestDb::new(&SERVICE);
    let to = recipients(&db, 2);
    enqueue(&db, "Outbox test");
    let dir = std::env::temp_dir().join(format!("registration-outbox-{}", Uuid::new_v4().simple()));
    let worker = start(&db, MailerSpec::Outbox(dir.clone()), 1);
    wait_for("every delivery", Duration::from_secs(30), || pending(&db) == 0);
    worker.stop();
    let names: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    for (_, email) in &to {
        assert!(names.iter().any(|n| n.ends_with(&format!("-{email}.eml"))), "{email} in {names:?}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// A scripted SMTP server: refuses recipients whose address contains `perm` with 550, those with
/// `temp` with 451 every time, those with `flaky` with 451 the first time only; accepts the rest.
/// Returns its port and the recipients whose messages it accepted.
fn scripted_smtp() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
    let accepted_ = accepted.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let (accepted, seen) = (accepted_.clone(), seen.clone());
            std::thread::spawn(move || {
                let mut writer = stream.try_clone().unwrap();
                let mut reader = BufReader::new(stream);
                let mut rcpt = String::new();
                let _ = writer.write_all(b"220 scripted ESMTP\r\n");
                let mut line = String::new();
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let upper = line.to_ascii_uppercase();
                    let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                        b"250-scripted\r\n250 8BITMIME\r\n"
                    } else if upper.starts_with("RCPT TO:") {
                        line[8..].trim().trim_matches(['<', '>']).clone_into(&mut rcpt);
                        if rcpt.contains("perm") {
                            b"550 5.1.1 no such user\r\n"
                        } else if rcpt.contains("temp")
                            || (rcpt.contains("flaky") && seen.lock().unwrap().insert(rcpt.clone()))
                        {
                            b"451 4.3.0 try again later\r\n"
                        } else {
                            b"250 OK\r\n"
                        }
                    } else if upper.starts_with("DATA") {
                        let _ = writer.write_all(b"354 go ahead\r\n");
                        loop {
                            line.clear();
                            if reader.read_line(&mut line).unwrap_or(0) == 0 || line == ".\r\n" {
                                break;
                            }
                        }
                        accepted.lock().unwrap().push(rcpt.clone());
                        b"250 OK queued\r\n"
                    } else if upper.starts_with("QUIT") {
                        let _ = writer.write_all(b"221 bye\r\n");
                        return;
                    } else {
                        b"250 OK\r\n"
                    };
                    if writer.write_all(reply).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, accepted)
}

#[test]
fn temporary_refusals_are_retried_and_permanent_ones_fail() {
    let db = TestDb::new(&SERVICE);
    let mut conn = db.conn();
    let mut ids = std::collections::HashMap::new();
    for name in ["ok", "perm", "temp", "flaky"] {
        let email = format!("{name}-{}@example.org", &Uuid::new_v4().simple().to_string()[..8]);
        let new = NewRegistration { email: email.clone(), version: "7".into(), distribution: None, client_ip: None };
        let Registered::New(id) = registrations::register(&mut conn, &new).unwrap() else { panic!() };
        ids.insert(name, (id, email));
    }
    let broadcast = enqueue(&db, "Refusals");
    let (port, accepted) = scripted_smtp();
    let worker = Worker::start(
        db.url.clone(),
        SCHEMA,
        MailerSpec::Smtp(format!("smtp://127.0.0.1:{port}")),
        ctx(),
        WorkerSettings { retry_base: Duration::from_millis(100), ..settings(2) },
    )
    .unwrap();
    wait_for("every delivery to finish", Duration::from_secs(30), || pending(&db) == 0);
    worker.stop();

    use registration::schema::deliveries::dsl as d;
    let row = |name: &str| -> (String, i32, Option<String>) {
        d::deliveries
            .filter(d::registration_id.eq(ids[name].0))
            .select((d::state, d::attempts, d::last_error))
            .first(&mut db.conn())
            .unwrap()
    };
    assert_eq!(row("ok").0, "sent");
    let (state, attempts, error) = row("perm");
    assert_eq!((state.as_str(), attempts), ("failed", 1), "5xx fails at once");
    assert!(error.unwrap().contains("550"));
    let (state, attempts, error) = row("temp");
    assert_eq!((state.as_str(), attempts), ("failed", 3), "4xx is retried up to max_attempts");
    assert!(error.unwrap().contains("451"));
    let (state, attempts, _) = row("flaky");
    assert_eq!((state.as_str(), attempts), ("sent", 2), "a 4xx then success is sent");
    let s = status(&db, broadcast);
    assert_eq!((s.sent, s.failed, s.queued), (2, 2, 0));
    let mut got = accepted.lock().unwrap().clone();
    got.sort();
    let mut want = vec![ids["ok"].1.clone(), ids["flaky"].1.clone()];
    want.sort();
    assert_eq!(got, want, "each accepted exactly once");
}
