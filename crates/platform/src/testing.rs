//! The test harness: a fresh, migrated database per test, cloned from a template so a test costs
//! milliseconds, dropped when the test ends.
//!
//! `DATABASE_URL` names a database on a server where the user may create databases (`make test`
//! starts one under `.data/` and sets it).

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Mutex, OnceLock};

use diesel::connection::SimpleConnection;
use diesel::migration::MigrationSource;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::BigInt;

use crate::app::{Platform, ServiceDef};
use crate::config::Config;
use crate::db::{self, DbPool};

/// A database of its own for one test.
pub struct TestDb {
    pub url: String,
    name: String,
    admin_url: String,
    pool: DbPool,
}

/// The server the tests run against.
pub fn base_url() -> String {
    std::env::var("DATABASE_URL").expect("DATABASE_URL must name a Postgres database the tests may create databases beside (run the tests with `make test`)")
}

/// `url` with its database name replaced.
pub fn with_database(url: &str, database: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (url, None),
    };
    let scheme_end = head.find("://").map_or(0, |i| i + 3);
    let base = match head[scheme_end..].find('/') {
        Some(slash) => &head[..scheme_end + slash],
        None => head,
    };
    match query {
        Some(q) => format!("{base}/{database}?{q}"),
        None => format!("{base}/{database}"),
    }
}

/// Named after the migrations it holds: their names, and their SQL as it is in the workspace's
/// `migrations/<schema>/` (so editing an up.sql while iterating gets a fresh template, not a stale
/// one built from the previous text; the old ones stay until `make clean-db`).
fn template_name(def: &ServiceDef) -> String {
    let mut hasher = DefaultHasher::new();
    for set in def.migrations {
        set.schema.hash(&mut hasher);
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations").join(set.schema);
        for migration in
            MigrationSource::<diesel::pg::Pg>::migrations(&set.migrations).expect("embedded migrations load")
        {
            let name = migration.name().to_string();
            for file in ["up.sql", "down.sql"] {
                std::fs::read(dir.join(&name).join(file)).unwrap_or_default().hash(&mut hasher);
            }
            name.hash(&mut hasher);
        }
    }
    format!("meridian_tpl_{}_{:x}", def.name, hasher.finish())
}

const TEMPLATE_LOCK: i64 = 0x7465_6d70_6c61_7465; // "template"

fn ensure_template(admin_url: &str, def: &ServiceDef) -> String {
    static READY: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let name = template_name(def);
    let ready = READY.get_or_init(Default::default);
    let mut ready = ready.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if ready.contains(&name) {
        return name;
    }
    let mut admin = PgConnection::establish(admin_url).expect("connect to the test Postgres");
    diesel::sql_query("SELECT pg_advisory_lock($1)").bind::<BigInt, _>(TEMPLATE_LOCK).execute(&mut admin).unwrap();
    let exists: i64 = diesel::dsl::sql::<BigInt>(&format!("SELECT count(*) FROM pg_database WHERE datname = '{name}'"))
        .get_result(&mut admin)
        .unwrap();
    if exists == 0 {
        let building = format!("{name}_building");
        admin.batch_execute(&format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)")).unwrap();
        admin.batch_execute(&format!("CREATE DATABASE {building}")).unwrap();
        db::migrate(&with_database(admin_url, &building), def.migrations)
            .expect("migrations apply to a fresh database");
        admin.batch_execute(&format!("ALTER DATABASE {building} RENAME TO {name}")).unwrap();
    }
    diesel::sql_query("SELECT pg_advisory_unlock($1)").bind::<BigInt, _>(TEMPLATE_LOCK).execute(&mut admin).unwrap();
    ready.insert(name.clone());
    name
}

impl TestDb {
    /// A fresh database holding `def`'s migrated schemas.
    pub fn new(def: &ServiceDef) -> TestDb {
        let admin_url = base_url();
        let template = ensure_template(&admin_url, def);
        let name = format!("meridian_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::establish(&admin_url).expect("connect to the test Postgres");
        admin
            .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {template}"))
            .expect("clone the template database");
        let url = with_database(&admin_url, &name);
        let pool = db::build_pool(&url, def.schema, 4);
        TestDb { url, name, admin_url, pool }
    }

    /// A pooled connection in the service's schema, for arranging and inspecting data.
    pub fn conn(&self) -> db::DbConn {
        self.pool.get().expect("a connection to the test database")
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Ok(mut admin) = PgConnection::establish(&self.admin_url) {
            let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
        }
    }
}

/// Development configuration pointing at `db`, with the rate limit off, plus `overrides`.
pub fn test_config(def: &ServiceDef, db: &TestDb, overrides: &[(&str, &str)]) -> Config {
    let mut vars: HashMap<String, String> = HashMap::from([
        ("DATABASE_URL".to_owned(), db.url.clone()),
        ("DATABASE_POOL_SIZE".to_owned(), "4".to_owned()),
        ("RATELIMIT_RATE".to_owned(), "off".to_owned()),
        ("RUN_MIGRATIONS".to_owned(), "false".to_owned()),
    ]);
    for (k, v) in overrides {
        vars.insert((*k).to_owned(), (*v).to_owned());
    }
    Config::from_vars(def.name, def.default_port, &vars).expect("test configuration is valid")
}

/// A platform on `db` (already migrated by the template).
pub fn test_platform(def: &'static ServiceDef, db: &TestDb, overrides: &[(&str, &str)]) -> Platform {
    Platform::new(def, test_config(def, db, overrides))
}
