//! The binary's own subcommands: `token`, `seed-demo`, `seed-bench`.

use std::process::ExitCode;
use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use meridian_platform::Platform;
use uuid::Uuid;

use crate::schema::{clinicians, devices};
use crate::{activations, auth, state::State};

/// Every scope this service checks, for the demo system token.
pub const ALL_SCOPES: &str = "read:gdm_message read:gdm_message_all write:gdm_message write:gdm_message_all \
read:gdm_activation write:gdm_activation read:send_device write:send_device write:send_clinician";

pub const DEMO_DEVICE: Uuid = Uuid::from_u128(0x0000_0000_0000_4000_8000_0000_0000_d001);
pub const DEMO_CLINICIAN: &str = "demo-clinician";
pub const DEMO_ENTRY_IDENTIFIER: &str = "1234";
pub const DEMO_PATIENT: &str = "demo-patient";
pub const DEMO_LOCATION: &str = "demo-ward";

fn rfc3339(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn fail(what: &str, err: impl std::fmt::Display) -> ExitCode {
    eprintln!("messaging: {what}: {err}");
    ExitCode::FAILURE
}

/// Prints a JWT for a system caller.
pub fn token(platform: &Platform, system_id: &str, scope: &str, ttl: u64) -> ExitCode {
    let keys = match meridian_auth::JwtKeys::from_config(&platform.config.jwt) {
        Ok(k) => k,
        Err(e) => return fail("JWT keys", e),
    };
    if system_id.trim().is_empty() {
        return fail("--system-id", "must not be empty");
    }
    match auth::system_token(&keys, system_id, scope, Duration::from_secs(ttl)) {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(e) => fail("token", e.detail),
    }
}

/// Applies migrations and inserts the demo data (idempotent), then prints credentials.
pub fn seed_demo(platform: &Platform) -> ExitCode {
    if let Err(e) = platform.migrate() {
        return fail("migrations", e);
    }
    let state = match State::new(platform) {
        Ok(s) => s,
        Err(e) => return fail("configuration", e),
    };
    let mut conn = match platform.db.pool().get() {
        Ok(c) => c,
        Err(e) => return fail("database", e),
    };
    let result = (|| -> meridian_platform::ApiResult<_> {
        let now = meridian_model::now();
        diesel::insert_into(clinicians::table)
            .values((
                clinicians::clinician_id.eq(DEMO_CLINICIAN),
                clinicians::created.eq(now),
                clinicians::modified.eq(now),
                clinicians::login_active.eq(true),
                clinicians::products.eq(serde_json::json!([{"product_name": "SEND"}, {"product_name": "GDM"}])),
                clinicians::groups.eq(serde_json::json!(["SEND Clinician", "GDM Clinician"])),
                clinicians::locations.eq(serde_json::json!([DEMO_LOCATION])),
                clinicians::send_entry_identifier.eq(DEMO_ENTRY_IDENTIFIER),
            ))
            .on_conflict_do_nothing()
            .execute(&mut conn)?;
        diesel::insert_into(devices::table)
            .values((
                devices::uuid.eq(DEMO_DEVICE),
                devices::created.eq(now),
                devices::modified.eq(now),
                devices::created_by.eq("seed-demo"),
                devices::location_id.eq(DEMO_LOCATION),
                devices::description.eq("Demo ward entry tablet"),
                devices::active.eq(true),
            ))
            .on_conflict_do_nothing()
            .execute(&mut conn)?;
        let device_code = match activations::current_device_code(&mut conn, &state.settings, DEMO_DEVICE)? {
            Some(code) => code,
            None => activations::create_device(&mut conn, &state.settings, DEMO_DEVICE, "seed-demo")?,
        };
        let patient = match activations::current_patient_secrets(&mut conn, &state.settings, DEMO_PATIENT)? {
            Some(p) => p,
            None => activations::create_patient(&mut conn, &state.settings, DEMO_PATIENT, "seed-demo")?,
        };
        let system = auth::system_token(&state.keys, "demo-system", ALL_SCOPES, Duration::from_secs(24 * 3600))?;
        Ok((device_code, patient, system))
    })();
    match result {
        Ok((device, patient, system)) => {
            let base = format!("http://{}", platform.config.bind);
            println!("messaging demo ({base}):");
            println!("  system token (24 h, every scope): {system}");
            println!(
                "  clinician {DEMO_CLINICIAN}: send_entry_identifier {DEMO_ENTRY_IDENTIFIER}, location {DEMO_LOCATION}"
            );
            println!(
                "  device {DEMO_DEVICE} at {DEMO_LOCATION}: activation code {} (until {})",
                device.code,
                rfc3339(device.expires_at)
            );
            println!("    curl -X POST '{base}/dhos/v1/activation/{}?type=send_entry'", device.code);
            println!(
                "  patient {DEMO_PATIENT}: activation code {} PIN {} (until {})",
                patient.activation_code,
                patient.otp,
                rfc3339(patient.expires_at)
            );
            println!(
                "    curl -X POST {base}/dhos/v1/activation/{} -H 'content-type: application/json' -d '{{\"otp\": \"{}\"}}'",
                patient.activation_code, patient.otp
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail("seeding", e.detail),
    }
}

/// Inserts `count` benchmark messages (skipped when they are already there): the first tenth is one
/// patient's conversation with `bench-ward-0`, the rest spread over 1,000 patients and 10 wards.
pub fn seed_bench(platform: &Platform, count: i64) -> ExitCode {
    if let Err(e) = platform.migrate() {
        return fail("migrations", e);
    }
    let mut conn = match platform.db.pool().get() {
        Ok(c) => c,
        Err(e) => return fail("database", e),
    };
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let existing = diesel::sql_query("SELECT count(*) AS n FROM messages WHERE created_by = $1")
        .bind::<Text, _>("seed-bench")
        .get_result::<Count>(&mut conn);
    let existing = match existing {
        Ok(c) => c.n,
        Err(e) => return fail("counting", e),
    };
    if existing >= count {
        println!("{existing} benchmark messages already present");
        return ExitCode::SUCCESS;
    }
    let sql = "INSERT INTO messages (uuid, created, modified, created_by, sender, sender_type, receiver, \
        receiver_type, message_type, content, confirmed, confirmed_text, confirmed_by) \
        SELECT gen_random_uuid(), now() - i * interval '1 second', now() - i * interval '1 second', 'seed-bench', \
          CASE WHEN i <= $1 / 10 THEN 'bench-patient-chatty' ELSE 'bench-patient-' || (i % 1000) END, 'patient', \
          'bench-ward-' || CASE WHEN i <= $1 / 10 THEN 0 ELSE i % 10 END, 'location', \
          (ARRAY[0, 1, 2, 3, 5, 5])[1 + i % 6], 'benchmark message ' || i, \
          CASE WHEN i % 3 = 0 THEN now() END, CASE WHEN i % 3 = 0 THEN to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') END, \
          CASE WHEN i % 3 = 0 THEN 'bench-clinician' END \
        FROM generate_series($2 + 1, $1) AS i";
    match diesel::sql_query(sql).bind::<BigInt, _>(count).bind::<BigInt, _>(existing).execute(&mut conn) {
        Ok(n) => {
            let _ = diesel::sql_query("ANALYZE messages").execute(&mut conn);
            println!("inserted {n} benchmark messages ({count} in all)");
            ExitCode::SUCCESS
        }
        Err(e) => fail("inserting", e),
    }
}
