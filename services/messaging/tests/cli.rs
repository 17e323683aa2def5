//! The binary's own subcommands against a real database.

mod common;

use diesel::prelude::*;

fn run(db_url: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_messaging"))
        .args(args)
        .env("DATABASE_URL", db_url)
        .env("LOG_LEVEL", "warn")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[derive(QueryableByName, PartialEq, Debug)]
struct Counts {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    clinicians: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    devices: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    activations: i64,
}

fn counts(ctx: &common::Ctx) -> Counts {
    diesel::sql_query(
        "SELECT (SELECT count(*) FROM clinicians) AS clinicians, (SELECT count(*) FROM devices) AS devices, \
         (SELECT count(*) FROM activations) AS activations",
    )
    .get_result(&mut ctx.db.conn())
    .unwrap()
}

#[actix_rt::test]
async fn seed_demo_is_idempotent_and_its_credentials_work() {
    let ctx = common::ctx(&[]);
    let first = run(&ctx.db.url, &["seed-demo"]);
    let after_first = counts(&ctx);
    assert_eq!(after_first, Counts { clinicians: 1, devices: 1, activations: 2 });
    let second = run(&ctx.db.url, &["seed-demo"]);
    assert_eq!(counts(&ctx), after_first, "a second run changes nothing");
    let without_token = |s: &str| s.lines().filter(|l| !l.contains("system token")).collect::<Vec<_>>().join("\n");
    assert_eq!(without_token(&first), without_token(&second), "the same codes and PIN are printed again");

    // The printed patient code and PIN work.
    let line = first.lines().find(|l| l.contains("patient demo-patient")).unwrap();
    let words: Vec<&str> = line.split_whitespace().collect();
    let code = words[words.iter().position(|w| *w == "code").unwrap() + 1];
    let pin = words[words.iter().position(|w| *w == "PIN").unwrap() + 1];
    let app = ctx.app().await;
    let r = common::call(
        &app,
        "POST",
        &format!("/dhos/v1/activation/{code}"),
        None,
        Some(serde_json::json!({"otp": pin})),
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[core::prelude::v1::test]
fn seed_bench_inserts_once() {
    let ctx = common::ctx(&[]);
    assert!(run(&ctx.db.url, &["seed-bench", "--messages", "2000"]).contains("inserted 2000"));
    assert!(run(&ctx.db.url, &["seed-bench", "--messages", "2000"]).contains("already present"));
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let n: N = diesel::sql_query("SELECT count(*) AS n FROM messages WHERE sender = 'bench-patient-chatty'")
        .get_result(&mut ctx.db.conn())
        .unwrap();
    assert_eq!(n.n, 200);
}
