//! The binary's operator subcommands and its refusal to start in prod mode without its secrets.

use std::io::Write;
use std::process::{Command, Stdio};

fn binary() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_registration"));
    command.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
    command
}

#[test]
fn pin_hash_reads_stdin_and_prints_a_hash_that_verifies() {
    let mut child = binary().arg("pin-hash").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"board pin 2026\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let hash = String::from_utf8(out.stdout).unwrap();
    let hash = hash.trim();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(meridian_auth::password::verify("board pin 2026", hash));
    assert!(!meridian_auth::password::verify("board pin 2026\n", hash), "the newline is not part of the PIN");

    let empty = binary().arg("pin-hash").stdin(Stdio::null()).output().unwrap();
    assert_eq!(empty.status.code(), Some(2));
}

#[test]
fn prod_mode_refuses_to_serve_without_the_pin_hash_naming_the_variable() {
    let out = binary()
        .arg("serve")
        .env("MODE", "prod")
        .env("DATABASE_URL", "postgres://127.0.0.1:1/none")
        .env("JWT_SECRET", "a-production-secret-that-is-long-enough-0123")
        .env("SMTP_URL", "smtp://127.0.0.1:1")
        .env("MAIL_FROM", "Board <board@example.org>")
        .env("LOG_LEVEL", "off")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("REGISTRATION_BROADCAST_PIN_HASH"), "{stderr}");
}

#[test]
fn seed_demo_is_refused_in_prod_mode() {
    let out = binary()
        .arg("seed-demo")
        .env("MODE", "prod")
        .env("DATABASE_URL", "postgres://127.0.0.1:1/none")
        .env("JWT_SECRET", "a-production-secret-that-is-long-enough-0123")
        .env("LOG_LEVEL", "off")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("prod"));
}
