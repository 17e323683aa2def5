//! Demo and benchmark data.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use meridian_platform::ApiResult;

/// A demo person: (id, password, roles, name, lastname, gender, dob).
pub type DemoPerson =
    (&'static str, &'static str, &'static [&'static str], &'static str, &'static str, &'static str, &'static str);

/// The demo federation.
pub const DEMO_PEOPLE: [DemoPerson; 3] = [
    ("ITAPYT999HON", "gnusolidario", &["health_professional", "end_user"], "Cameron", "Cordara", "m", "1975-03-12"),
    ("ESPGNU777ORG", "gnusolidario", &["end_user"], "Ana", "Betz", "f", "1985-10-04"),
    ("ARGBUE111FAV", "freedom", &["root"], "Root", "Federation", "u", "1970-01-01"),
];

/// Two pages of life of ESPGNU777ORG (fixed ids, so seeding twice changes nothing).
pub const DEMO_PAGES: [(&str, &str); 2] = [
    (
        "6f1c1d8e-2a4b-4c6d-8e0f-1a2b3c4d5e6f",
        r#"{"page_date": "2026-03-14T10:20:00Z", "page_type": "medical", "medical_context": "health_condition",
            "health_condition_code": "J45", "health_condition_text": "Asthma", "summary": "Asthma diagnosed",
            "info": "Salbutamol as needed", "node": "GNU-SOLIDARIO-HOSPITAL"}"#,
    ),
    (
        "7a2d2e9f-3b5c-4d7e-9f10-2b3c4d5e6f70",
        r#"{"page_date": "2026-09-02T08:00:00Z", "page_type": "medical", "medical_context": "immunization",
            "summary": "Influenza vaccine", "info": "Seasonal dose, left arm", "node": "GNU-SOLIDARIO-HOSPITAL"}"#,
    ),
];

/// bcrypt cost of seeded hashes (Thalamus-style hashes; argon2id is used for new passwords).
const DEMO_BCRYPT_COST: u32 = 10;

/// Inserts the demo people and pages when missing; returns how many rows were added.
pub fn seed_demo(conn: &mut PgConnection) -> ApiResult<usize> {
    let mut added = 0;
    for (id, password, roles, name, lastname, gender, dob) in DEMO_PEOPLE {
        let exists = crate::people::exists(conn, id)?;
        if exists {
            continue;
        }
        let hash = bcrypt::hash(password, DEMO_BCRYPT_COST).map_err(meridian_platform::ApiError::internal)?;
        let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
        let data = serde_json::json!({"name": name, "lastname": lastname, "gender": gender, "dob": dob,
            "marital_status": "s", "education": "", "profession": "", "ethnicity": ""});
        added += diesel::sql_query(
            "INSERT INTO people (id, password_hash, roles, data) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind::<Text, _>(id)
        .bind::<Text, _>(hash)
        .bind::<diesel::sql_types::Array<Text>, _>(roles)
        .bind::<diesel::sql_types::Jsonb, _>(data)
        .execute(conn)?;
    }
    for (page, data) in DEMO_PAGES {
        let page = uuid::Uuid::parse_str(page).expect("demo page ids are UUIDs");
        let data: serde_json::Value = serde_json::from_str(data).expect("demo pages are JSON");
        added += diesel::sql_query(
            "INSERT INTO pols (id, book, data) VALUES ($1, 'ESPGNU777ORG', $2) ON CONFLICT DO NOTHING",
        )
        .bind::<diesel::sql_types::Uuid, _>(page)
        .bind::<diesel::sql_types::Jsonb, _>(data)
        .execute(conn)?;
    }
    Ok(added)
}

/// Benchmark people `BEN000000001`... (password `bench`), generated inside Postgres; idempotent.
pub fn seed_bench(conn: &mut PgConnection, people: i64) -> ApiResult<usize> {
    // Already there (the last one exists): nothing to do, and no minute spent finding out.
    let last = format!("BEN{people:09}");
    if people > 0 && crate::people::exists(conn, &last)? {
        return Ok(0);
    }
    let hash = bcrypt::hash("bench", DEMO_BCRYPT_COST).map_err(meridian_platform::ApiError::internal)?;
    let added = diesel::sql_query(
        "INSERT INTO people (id, password_hash, roles, data)
         SELECT 'BEN' || lpad(i::text, 9, '0'), $1, '{end_user}',
                jsonb_build_object(
                  'name', (ARRAY['Ana','Luis','Maria','Jose','Carmen','Pedro','Lucia','Diego','Elena','Pablo',
                                 'Sofia','Mateo','Valeria','Hugo','Julia','Martin'])[1 + i % 16] || (i % 997),
                  'lastname', (ARRAY['Garcia','Lopez','Martinez','Sanchez','Perez','Gomez','Fernandez','Diaz',
                                     'Moreno','Romero','Alonso','Navarro','Torres','Ruiz','Vargas','Castro'])[1 + (i / 16) % 16]
                              || (i % 1009),
                  'gender', CASE WHEN i % 2 = 0 THEN 'f' ELSE 'm' END,
                  'dob', to_char(date '1930-01-01' + (i % 32000)::int, 'YYYY-MM-DD'),
                  'marital_status', 's', 'education', '', 'profession', '', 'ethnicity', '')
         FROM generate_series(1, $2) AS i
         ON CONFLICT (id) DO NOTHING",
    )
    .bind::<Text, _>(hash)
    .bind::<BigInt, _>(people)
    .execute(conn)?;
    // Fresh statistics, and a visibility map so that searches can use index-only scans.
    diesel::sql_query("VACUUM (ANALYZE) people").execute(conn)?;
    Ok(added)
}

/// A connection of its own for an operator command (migrations applied first), in the service's
/// schema. Not a pooled one: the pool refills itself on background threads, and a process that
/// exits while one of them is inside libpq can abort (seen as a krb5 assertion).
pub fn connect(platform: &meridian_platform::Platform) -> Result<PgConnection, std::process::ExitCode> {
    use diesel::connection::SimpleConnection;
    if let Err(err) = platform.migrate() {
        eprintln!("federation: {err}");
        return Err(std::process::ExitCode::FAILURE);
    }
    let mut conn = PgConnection::establish(&platform.config.database_url).map_err(|err| {
        eprintln!("federation: database: {err}");
        std::process::ExitCode::FAILURE
    })?;
    conn.batch_execute(&format!("SET search_path TO {}, public; SET statement_timeout = 0", crate::SCHEMA)).map_err(
        |err| {
            eprintln!("federation: database: {err}");
            std::process::ExitCode::FAILURE
        },
    )?;
    Ok(conn)
}

/// Waits (at most a few seconds) until the pool's start-up connection attempt is over, so that no
/// background thread is inside libpq when the process exits.
pub fn settle_pool(platform: &meridian_platform::Platform) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while platform.db.pool().state().connections == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// `federation seed-demo`.
pub fn run_seed_demo(platform: &meridian_platform::Platform) -> std::process::ExitCode {
    let mut conn = match connect(platform) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let result = seed_demo(&mut conn);
    settle_pool(platform);
    match result {
        Ok(added) => {
            let base = format!("http://{}", platform.config.bind);
            println!("federation demo data ready ({added} rows added)");
            for (id, password, roles, ..) in DEMO_PEOPLE {
                println!("  {id} / {password}  ({})", roles.join(", "));
            }
            println!("  try: curl -u ESPGNU777ORG:gnusolidario {base}/people/ESPGNU777ORG");
            println!("       curl -u ESPGNU777ORG:gnusolidario {base}/pols/ESPGNU777ORG");
            std::process::ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("federation: seed-demo failed: {}", err.detail);
            std::process::ExitCode::FAILURE
        }
    }
}

/// `federation seed-bench --people N`.
pub fn run_seed_bench(platform: &meridian_platform::Platform, people: i64) -> std::process::ExitCode {
    let mut conn = match connect(platform) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let result = seed_bench(&mut conn, people);
    settle_pool(platform);
    match result {
        Ok(added) => {
            println!("benchmark people ready: {added} added (BEN000000001.., password bench)");
            std::process::ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("federation: seed-bench failed: {}", err.detail);
            std::process::ExitCode::FAILURE
        }
    }
}
