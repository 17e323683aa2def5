//! The Postgres pool bound to one schema, and the embedded-migrations runner.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use diesel::connection::{SimpleConnection, TransactionManager};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, ManageConnection, Pool, PooledConnection};
use diesel::sql_types::{BigInt, Text};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness};

use crate::error::{ApiError, ApiResult};

pub type DbPool = Pool<PgManager>;
pub type DbConn = PooledConnection<PgManager>;

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
///
/// `plan_cache_mode` stays `auto`: forcing generic plans saves the re-planning Postgres does when a
/// `LIMIT $n` makes the generic plan look dear (the message lists), but it also turned the
/// conversation list (`sender = $1 OR receiver = $1`) into a parallel sequential scan, six times
/// slower, because a generic plan cannot see that a party is rare.
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

/// A checkout skips its `SELECT 1` while the pool has seen a query succeed this recently.
const VOUCHED_FOR: Duration = Duration::from_secs(1);
/// After a lost connection, every checkout is tested again for this long.
const DISTRUST_AFTER_LOSS: Duration = Duration::from_secs(10);

/// What the pool knows about its server's health, shared by its connections. Testing every
/// checkout with `SELECT 1` doubles the round trips of a short request and, on a busy machine, the
/// context switches that make up its tail latency; so a checkout is tested only when no query has
/// succeeded within [`VOUCHED_FOR`] or a connection was lost within [`DISTRUST_AFTER_LOSS`]. A server
/// restart takes longer than a second, so its dead connections are still caught by the test; a
/// connection cut while the pool is busy fails one request with 503 and turns the tests back on.
struct Liveness {
    origin: Instant,
    /// Milliseconds since `origin` (+1, so 0 means never).
    last_success: AtomicU64,
    last_loss: AtomicU64,
}

impl Liveness {
    fn new() -> Arc<Self> {
        Arc::new(Liveness { origin: Instant::now(), last_success: AtomicU64::new(0), last_loss: AtomicU64::new(0) })
    }

    fn now(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX).saturating_add(1)
    }

    fn within(&self, stamp: &AtomicU64, window: Duration) -> bool {
        let at = stamp.load(Ordering::Relaxed);
        at != 0 && self.now().saturating_sub(at) < u64::try_from(window.as_millis()).unwrap_or(u64::MAX)
    }

    fn vouches(&self) -> bool {
        self.within(&self.last_success, VOUCHED_FOR) && !self.within(&self.last_loss, DISTRUST_AFTER_LOSS)
    }

    fn succeeded(&self) {
        self.last_success.store(self.now(), Ordering::Relaxed);
    }

    /// Marks `conn` broken (the pool drops it when it comes back) and distrusts the others for a while.
    fn lost(&self, conn: &mut PgConnection) {
        self.last_loss.store(self.now(), Ordering::Relaxed);
        diesel::connection::AnsiTransactionManager::transaction_manager_status_mut(conn).set_in_error();
    }
}

/// diesel's r2d2 manager, with checkout tests skipped while [`Liveness`] vouches for the server,
/// and connections found dead by [`Database::run`] dropped instead of returned to the pool.
pub struct PgManager {
    inner: ConnectionManager<PgConnection>,
    liveness: Arc<Liveness>,
}

impl ManageConnection for PgManager {
    type Connection = PgConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<PgConnection, Self::Error> {
        self.inner.connect()
    }

    fn is_valid(&self, conn: &mut PgConnection) -> Result<(), Self::Error> {
        if self.liveness.vouches() {
            return Ok(());
        }
        self.inner.is_valid(conn)?;
        self.liveness.succeeded();
        Ok(())
    }

    fn has_broken(&self, conn: &mut PgConnection) -> bool {
        self.inner.has_broken(conn)
    }
}

/// A pool whose every connection works in `schema`. It is built without connecting, so a service
/// starts while Postgres is still down; checkouts wait at most a few seconds and then fail (503).
pub fn build_pool(database_url: &str, schema: &'static str, size: u32) -> DbPool {
    pool_with(database_url, schema, size, Liveness::new())
}

fn pool_with(database_url: &str, schema: &'static str, size: u32, liveness: Arc<Liveness>) -> DbPool {
    let manager = PgManager { inner: ConnectionManager::new(database_url), liveness };
    Pool::builder()
        .max_size(size)
        // No eager connections: a short CLI command must not exit while a pool thread is inside libpq.
        .min_idle(Some(0))
        .connection_timeout(Duration::from_secs(3))
        .idle_timeout(Some(Duration::from_secs(300)))
        // diesel does not mark a connection that died with the server as broken; the manager's
        // test (see `Liveness`) keeps such connections out of requests.
        .test_on_check_out(true)
        .connection_customizer(Box::new(SearchPath { schema: checked_identifier(schema) }))
        .build_unchecked(manager)
}

/// The default pool size: two connections per CPU this process may use. More connections than
/// that only add runnable threads (a blocking thread and a Postgres backend each) competing for
/// the same cores, which shows as tail latency long before it adds throughput.
pub fn default_pool_size() -> u32 {
    std::thread::available_parallelism().map_or(2, |n| u32::try_from(n.get()).unwrap_or(u32::MAX / 2)).max(1) * 2
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
    liveness: Arc<Liveness>,
}

impl Database {
    /// A pool of at most `size` connections working in `schema`, built without connecting.
    pub fn new(database_url: &str, schema: &'static str, size: u32) -> Self {
        let liveness = Liveness::new();
        Database { pool: pool_with(database_url, schema, size, liveness.clone()), liveness }
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
        let database = self.clone();
        actix_web::web::block(move || database.run_here(work)).await?
    }

    /// Runs `work` with a pooled connection on the calling thread, which must be one that may
    /// block (a thread of the service's own, never an async worker).
    pub fn run_here<T>(&self, work: impl FnOnce(&mut PgConnection) -> ApiResult<T>) -> ApiResult<T> {
        let mut conn = self.pool.get()?;
        match work(&mut conn) {
            Err(err) if err.status.is_server_error() && diesel::sql_query("SELECT 1").execute(&mut conn).is_err() => {
                // libpq does not always report a connection that died under the work
                // recognisably: when it no longer answers, tell the client to retry.
                self.liveness.lost(&mut conn);
                Err(ApiError::unavailable("the database connection was lost; retry"))
            }
            Err(err) => Err(err),
            Ok(value) => {
                self.liveness.succeeded();
                Ok(value)
            }
        }
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

impl From<MigrateError> for ApiError {
    fn from(err: MigrateError) -> Self {
        log::warn!("migrations: {err}");
        ApiError::unavailable("the database is not ready")
    }
}

/// One bind of a [`Statement`].
#[derive(Debug, Clone)]
enum Bind {
    Text(String),
    TextArray(Vec<String>),
    BigInt(i64),
}

#[derive(Debug, Clone)]
enum Part {
    Sql(String),
    Bind(Bind),
}

/// SQL text assembled at run time (a search whose filters vary) that diesel still keeps prepared
/// per connection, keyed by its text: unlike `sql_query`, a repeated query is parsed and planned
/// once. Binds are pushed in order with [`Statement::text`], [`Statement::texts`] and
/// [`Statement::bigint`], which write the `$n` placeholders. Rows load into `QueryableByName` types,
/// as with `sql_query`, or, after [`Statement::typed`], into `Queryable` ones read by position
/// (cheaper for wide rows: no column lookup by name per field).
#[must_use]
pub struct Statement<ST = diesel::sql_types::Untyped> {
    parts: Vec<Part>,
    sql_type: std::marker::PhantomData<ST>,
}

impl Statement {
    pub fn new(sql: impl Into<String>) -> Self {
        Statement { parts: vec![Part::Sql(sql.into())], sql_type: std::marker::PhantomData }
    }
}

impl<ST> Statement<ST> {
    pub fn sql(mut self, sql: impl Into<String>) -> Self {
        self.parts.push(Part::Sql(sql.into()));
        self
    }

    pub fn text(mut self, value: impl Into<String>) -> Self {
        self.parts.push(Part::Bind(Bind::Text(value.into())));
        self
    }

    /// A `text[]` bind, for `= ANY(...)`.
    pub fn texts(mut self, values: Vec<String>) -> Self {
        self.parts.push(Part::Bind(Bind::TextArray(values)));
        self
    }

    pub fn bigint(mut self, value: i64) -> Self {
        self.parts.push(Part::Bind(Bind::BigInt(value)));
        self
    }

    /// Declares the SQL types of the selected columns, in order (e.g.
    /// `diesel::dsl::SqlTypeOf<diesel::dsl::AsSelect<Row, Pg>>`), so rows load by position.
    pub fn typed<T>(self) -> Statement<T> {
        Statement { parts: self.parts, sql_type: std::marker::PhantomData }
    }
}

impl<ST> diesel::query_builder::QueryId for Statement<ST> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<ST> diesel::query_builder::QueryFragment<diesel::pg::Pg> for Statement<ST> {
    fn walk_ast<'b>(&'b self, mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>) -> QueryResult<()> {
        for part in &self.parts {
            match part {
                Part::Sql(sql) => out.push_sql(sql),
                Part::Bind(Bind::Text(value)) => out.push_bind_param::<Text, _>(value)?,
                Part::Bind(Bind::TextArray(values)) => {
                    out.push_bind_param::<diesel::sql_types::Array<Text>, _>(values)?;
                }
                Part::Bind(Bind::BigInt(value)) => out.push_bind_param::<BigInt, _>(value)?,
            }
        }
        Ok(())
    }
}

impl<ST> diesel::query_builder::Query for Statement<ST> {
    type SqlType = ST;
}

impl<ST> RunQueryDsl<PgConnection> for Statement<ST> {}
