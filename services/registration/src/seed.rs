//! `registration seed-demo`: a few registrations and the demo broadcast PIN (dev mode only).

use std::process::ExitCode;

use diesel::prelude::*;
use meridian_platform::Platform;
use uuid::Uuid;

use crate::schema::registrations;
use crate::settings::{DEMO_PIN, Settings};

const DEMO: [(&str, &str, &str, Option<&str>); 3] = [
    ("0d7c2f1e-5a4b-4c3d-9e8f-000000000001", "admin@clinic-norte.example.org", "7.0.3", Some("docker")),
    ("0d7c2f1e-5a4b-4c3d-9e8f-000000000002", "it@hospital-sur.example.org", "7.0.2", Some("debian")),
    ("0d7c2f1e-5a4b-4c3d-9e8f-000000000003", "director@centro-salud.example.org", "6.1.0", None),
];

/// Inserts the demo registrations that are missing; returns how many were added.
pub fn insert_demo(conn: &mut PgConnection) -> QueryResult<usize> {
    let mut added = 0;
    for (id, email, version, distribution) in DEMO {
        added += diesel::insert_into(registrations::table)
            .values((
                registrations::id.eq(id.parse::<Uuid>().expect("demo ids are UUIDs")),
                registrations::email.eq(email),
                registrations::version.eq(version),
                registrations::distribution.eq(distribution),
                registrations::client_ip.eq("127.0.0.1"),
            ))
            .on_conflict_do_nothing()
            .execute(conn)?;
    }
    Ok(added)
}

pub fn demo(platform: &Platform) -> ExitCode {
    if platform.config.is_prod() {
        eprintln!("registration seed-demo: refused in prod mode (demo data and a demo PIN do not belong there)");
        return ExitCode::from(2);
    }
    let settings = match Settings::from_config(&platform.config) {
        Ok(s) => s,
        Err(err) => {
            eprintln!("registration: {err}");
            return ExitCode::from(2);
        }
    };
    if let Err(err) = platform.migrate() {
        eprintln!("registration seed-demo: {err}");
        return ExitCode::FAILURE;
    }
    let added = match platform
        .db
        .pool()
        .get()
        .map_err(|e| e.to_string())
        .and_then(|mut conn| conn.transaction(|conn| insert_demo(conn)).map_err(|e| e.to_string()))
    {
        Ok(n) => n,
        Err(err) => {
            eprintln!("registration seed-demo: {err}");
            return ExitCode::FAILURE;
        }
    };
    let url = &settings.public_url;
    println!("registration: {added} demo registrations added ({} in the demo set)", DEMO.len());
    match settings.demo_pin {
        Some(pin) => println!("  broadcast PIN (dev default): {pin}"),
        None => println!(
            "  broadcast PIN: the one hashed in REGISTRATION_BROADCAST_PIN_HASH (the demo PIN {DEMO_PIN:?} applies only without it)"
        ),
    }
    println!("  count:      curl {url}/api/registration/unique");
    println!("  register:   curl -d email=you@example.org -d version=7.0.3 {url}/api/registration");
    println!(
        "  broadcast:  curl -d secretPin={DEMO_PIN} -d title=Hello -d contents=Hi {url}/api/registration/broadcast"
    );
    println!("  reports:    curl -H 'X-Secret-Pin: {DEMO_PIN}' {url}/api/registration/broadcast");
    match &settings.mailer {
        crate::settings::MailerSpec::Outbox(dir) => println!("  mail goes to {}/ (no SMTP_URL)", dir.display()),
        crate::settings::MailerSpec::Smtp(_) => println!("  mail goes to SMTP_URL"),
    }
    ExitCode::SUCCESS
}
