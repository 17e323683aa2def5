//! The federation's read audit is written in batches off the request path; a graceful stop
//! (SIGTERM, as Kubernetes sends) must still write every read it answered.

use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::BigInt;
use integration_tests::{EmptyDb, Running};

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_writes_every_queued_read_audit_entry() {
    let db = EmptyDb::new();
    let client = integration_tests::client();
    let mut service = Running::start("federation", &db.url, &[]);
    service.wait_for(&client, "/ready", Duration::from_secs(60)).await;
    let seeded = std::process::Command::new(integration_tests::binary("federation"))
        .arg("seed-demo")
        .env("DATABASE_URL", &db.url)
        .env("MODE", "dev")
        .output()
        .expect("seed-demo runs");
    assert!(seeded.status.success(), "{}", String::from_utf8_lossy(&seeded.stderr));

    const READS: i64 = 200;
    for _ in 0..READS {
        let res = client
            .get(service.url("/people/ESPGNU777ORG"))
            .basic_auth("ESPGNU777ORG", Some("gnusolidario"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    // At once: the last reads are still in the writer's queue.
    service.terminate();
    assert!(service.wait_exit(Duration::from_secs(35)), "exit status 0 after SIGTERM");

    let mut conn = PgConnection::establish(&db.url).unwrap();
    let written = diesel::sql_query(
        "SELECT count(*) AS n FROM federation.audit WHERE action = 'read' AND person = 'ESPGNU777ORG'",
    )
    .get_result::<Count>(&mut conn)
    .unwrap()
    .n;
    assert_eq!(written, READS, "every answered read is in the audit trail");
}
