//! The Postgres pool bound to one schema, and the embedded-migrations runner.

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, PooledConnection};
use diesel::sql_types::{BigInt, Text};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness};

use crate::error::{ApiError, ApiResult};

pub type DbPool = Pool<ConnectionManager<PgConnection>>;
pub type DbConn = PooledConnection<ConnectionManager<PgConnection>>;

/// One schema's embedded migrations. A service lists the schemas it needs in order (the shared
/// `auth` schema first where it uses one, then its own).
pub struct SchemaMigrations {
    pub schema: &'static str,
    pub migrations: EmbeddedMigrations,
}

/// Every migration run in the database takes this one advisory lock, so replicas (and services
/// sharing the `auth` schema) starting together apply each migration exactly once.
const MIGRATION_LOCK: i64 = 0x4D45_5249_4449_414E; // "MERIDIAN"

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("cannot connect to the database: {0}")]
    Connect(#[from] diesel::ConnectionError),
    #[error("database error: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("migration of schema {schema} failed: {message}")]
    Migration { schema: String, message: String },
}

/// Postgres identifiers we create are our own constants; still, refuse anything that would need quoting.
fn checked_identifier(name: &str) -> &str {
    assert!(
        !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
        "schema name {name:?} must be lower-case letters, digits and underscores"
    );
    name
}

#[derive(Debug)]
struct SearchPath {
    schema: &'static str,
}

/// Every connection works in its schema, with bounded statement and lock waits.
fn configure_session(conn: &mut PgConnection, schema: &str) -> QueryResult<()> {
    conn.batch_execute(&format!(
        "SET search_path TO {}, public; SET statement_timeout = '30s'; SET lock_timeout = '10s'",
        checked_identifier(schema)
    ))
}

impl CustomizeConnection<PgConnection, diesel::r2d2::Error> for SearchPath {
    fn on_acquire(&self, conn: &mut PgConnection) -> Result<(), diesel::r2d2::Error> {
        configure_session(conn, self.schema).map_err(diesel::r2d2::Error::QueryError)
    }
}

/// A connection of its own (outside the pool) set up exactly like a pooled one, for work that
/// holds a connection across awaits (a queue worker keeping its row locks while it sends).
pub fn connect(database_url: &str, schema: &str) -> Result<PgConnection, MigrateError> {
    let mut conn = PgConnection::establish(database_url)?;
    configure_session(&mut conn, schema)?;
    Ok(conn)
}

/// A pool whose every connection works in `schema`. It is built without connecting, so a service
/// starts while Postgres is still down; checkouts wait at most a few seconds and then fail (503).
pub fn build_pool(database_url: &str, schema: &'static str, size: u32) -> DbPool {
    Pool::builder()
        .max_size(size)
        // No eager connections: a short CLI command must not exit while a pool thread is inside libpq.
        .min_idle(Some(0))
        .connection_timeout(Duration::from_secs(3))
        .idle_timeout(Some(Duration::from_secs(300)))
        // A `SELECT 1` before each checkout costs a round trip, but diesel does not always mark a
        // connection that died with the server as broken: without the test it would stay pooled.
        .test_on_check_out(true)
        .connection_customizer(Box::new(SearchPath { schema: checked_identifier(schema) }))
        .build_unchecked(ConnectionManager::new(database_url))
}

/// Applies pending migrations for each schema in order, under the advisory lock. Safe to run from
/// many processes at once.
pub fn migrate(database_url: &str, schemas: &[SchemaMigrations]) -> Result<(), MigrateError> {
    let mut conn = PgConnection::establish(database_url)?;
    diesel::sql_query("SELECT pg_advisory_lock($1)").bind::<BigInt, _>(MIGRATION_LOCK).execute(&mut conn)?;
    let result = migrate_locked(&mut conn, schemas);
    let unlock =
        diesel::sql_query("SELECT pg_advisory_unlock($1)").bind::<BigInt, _>(MIGRATION_LOCK).execute(&mut conn);
    result?;
    unlock?;
    Ok(())
}

fn migrate_locked(conn: &mut PgConnection, schemas: &[SchemaMigrations]) -> Result<(), MigrateError> {
    for set in schemas {
        let schema = checked_identifier(set.schema);
        conn.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}; SET search_path TO {schema}, public"))?;
        let applied = conn
            .run_pending_migrations(Borrowed(&set.migrations))
            .map_err(|e| MigrateError::Migration { schema: schema.to_owned(), message: e.to_string() })?;
        for version in applied {
            log::info!("schema {schema}: applied migration {version}");
        }
    }
    conn.batch_execute("RESET search_path")?;
    Ok(())
}

/// `EmbeddedMigrations` is neither `Copy` nor `Clone`, and the runner takes a source by value.
struct Borrowed<'a>(&'a EmbeddedMigrations);

impl diesel::migration::MigrationSource<diesel::pg::Pg> for Borrowed<'_> {
    fn migrations(&self) -> diesel::migration::Result<Vec<Box<dyn diesel::migration::Migration<diesel::pg::Pg>>>> {
        diesel::migration::MigrationSource::<diesel::pg::Pg>::migrations(self.0)
    }
}

#[derive(QueryableByName)]
struct AppliedVersion {
    #[diesel(sql_type = Text)]
    version: String,
}

/// Whether every embedded migration of every schema has been applied.
pub fn migrations_applied(
    conn: &mut PgConnection,
    schemas: &[SchemaMigrations],
) -> Result<bool, diesel::result::Error> {
    use diesel::migration::MigrationSource;
    for set in schemas {
        let schema = checked_identifier(set.schema);
        let exists: bool = diesel::select(diesel::dsl::sql::<diesel::sql_types::Bool>(&format!(
            "to_regclass('{schema}.__diesel_schema_migrations') IS NOT NULL"
        )))
        .get_result(conn)?;
        if !exists {
            return Ok(false);
        }
        let applied: Vec<String> =
            diesel::sql_query(format!("SELECT version FROM {schema}.__diesel_schema_migrations"))
                .load::<AppliedVersion>(conn)?
                .into_iter()
                .map(|row| row.version)
                .collect();
        let embedded = MigrationSource::<diesel::pg::Pg>::migrations(&set.migrations)
            .map_err(diesel::result::Error::QueryBuilderError)?;
        if embedded.iter().any(|m| !applied.contains(&m.name().version().to_string())) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The service's handle on its database: blocking diesel work runs on actix's blocking pool, never
/// on an async worker.
#[derive(Clone)]
pub struct Database {
    pool: DbPool,
}

impl Database {
    pub fn new(pool: DbPool) -> Self {
        Database { pool }
    }

    pub fn pool(&self) -> &DbPool {
        &self.pool
    }

    /// Runs `work` with a pooled connection off the async workers.
    pub async fn run<T, F>(&self, work: F) -> ApiResult<T>
    where
        F: FnOnce(&mut PgConnection) -> ApiResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        actix_web::web::block(move || {
            let mut conn = pool.get()?;
            work(&mut conn).map_err(|err| connection_lost(&mut conn, err))
        })
        .await?
    }

    /// Like [`Database::run`], inside one transaction that commits only when `work` succeeds.
    pub async fn transaction<T, F>(&self, work: F) -> ApiResult<T>
    where
        F: FnOnce(&mut PgConnection) -> ApiResult<T> + Send + 'static,
        T: Send + 'static,
    {
        self.run(move |conn| conn.transaction(work)).await
    }
}

/// A server error may really be a connection that died under the work (libpq does not always say
/// so recognisably): when the connection no longer answers, tell the client to retry (503). The
/// pool's checkout test then drops the connection.
fn connection_lost(conn: &mut PgConnection, err: ApiError) -> ApiError {
    if err.status.is_server_error() && diesel::sql_query("SELECT 1").execute(conn).is_err() {
        return ApiError::unavailable("the database connection was lost; retry");
    }
    err
}

impl From<MigrateError> for ApiError {
    fn from(err: MigrateError) -> Self {
        log::warn!("migrations: {err}");
        ApiError::unavailable("the database is not ready")
    }
}
