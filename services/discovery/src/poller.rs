//! The health poller: servers without an owning device are asked `GET {host}/api/public/ping`;
//! a response with a parseable `X-Version` header is a success.
//!
//! With several replicas exactly one polls: the one holding a Postgres advisory lock on a
//! dedicated connection. When that process dies its connection closes, the lock is released and
//! another replica takes it at its next attempt.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool};
use futures_util::StreamExt;
use meridian_platform::{ApiResult, Database};
use serde::Serialize;
use utoipa::ToSchema;

use crate::servers::{self, ServerRow};
use crate::statuses::{self, NewStatus};

/// The advisory lock the polling replica holds ("DISCPOLL").
pub const POLL_LOCK: i64 = 0x4449_5343_504F_4C4C;

#[derive(Debug, Clone)]
pub struct PollerConfig {
    /// Between two rounds (`DISCOVERY_POLL_INTERVAL`, seconds, default 60).
    pub interval: Duration,
    /// Per request (`DISCOVERY_POLL_TIMEOUT`, seconds, default 10).
    pub timeout: Duration,
    /// Requests in flight at once (`DISCOVERY_POLL_CONCURRENCY`, default 16).
    pub concurrency: usize,
    /// Statuses older than this are deleted (`DISCOVERY_STATUS_RETENTION_DAYS`, default 30).
    pub retention: chrono::Duration,
    /// Devices still untrusted this long after first contact are deleted (one week).
    pub untrusted_age: chrono::Duration,
}

impl Default for PollerConfig {
    fn default() -> Self {
        PollerConfig {
            interval: Duration::from_secs(60),
            timeout: Duration::from_secs(10),
            concurrency: 16,
            retention: chrono::Duration::days(30),
            untrusted_age: chrono::Duration::days(7),
        }
    }
}

impl PollerConfig {
    pub fn from_config(config: &meridian_platform::Config) -> Result<Self, meridian_platform::ConfigError> {
        let timeout_ms: u64 = config.service_setting("POLL_TIMEOUT_MS", 0)?;
        let timeout = if timeout_ms > 0 {
            Duration::from_millis(timeout_ms)
        } else {
            config.service_seconds("POLL_TIMEOUT", 10)?
        };
        let interval_ms: u64 = config.service_setting("POLL_INTERVAL_MS", 0)?;
        let interval = if interval_ms > 0 {
            Duration::from_millis(interval_ms)
        } else {
            config.service_seconds("POLL_INTERVAL", 60)?
        };
        if interval.is_zero() {
            return Err(config.setting_error("POLL_INTERVAL", "must be at least 1 second"));
        }
        let concurrency: usize = config.service_setting("POLL_CONCURRENCY", 16)?;
        let retention_days: i64 = config.service_setting("STATUS_RETENTION_DAYS", 30)?;
        if retention_days < 8 {
            return Err(
                config.setting_error("STATUS_RETENTION_DAYS", "must be at least 8 (the page shows 7-day uptime)")
            );
        }
        Ok(PollerConfig {
            interval,
            timeout: if timeout.is_zero() { Duration::from_secs(10) } else { timeout },
            concurrency: concurrency.clamp(1, 256),
            retention: chrono::Duration::days(retention_days),
            untrusted_age: chrono::Duration::days(7),
        })
    }
}

/// What one ping found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingOutcome {
    pub version: Option<String>,
    pub latency_ms: Option<i32>,
    /// `None` on success, else a short class: `timeout`, `dns`, `tls`, `connect` (refused, reset),
    /// `redirect` (to another host, or too many), `request`, `http_status` (an error status
    /// without a version), `no_version`, `bad_version`.
    pub error: Option<&'static str>,
    pub detail: Option<String>,
}

/// The result of one round.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct RoundSummary {
    /// Servers asked.
    pub polled: usize,
    /// Of which answered with a version.
    pub up: usize,
}

#[derive(Clone)]
pub struct Poller {
    client: reqwest::Client,
    pub config: PollerConfig,
    db: Database,
    rounds: Arc<AtomicU64>,
}

impl Poller {
    pub fn new(db: Database, config: PollerConfig) -> Poller {
        meridian_platform::tls::install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .user_agent(concat!("meridian-discovery/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::custom(|attempt| {
                let origin = attempt.previous().first().and_then(|u| u.host_str().map(str::to_ascii_lowercase));
                if attempt.previous().len() > 5 {
                    attempt.error("too many redirects")
                } else if attempt.url().host_str().map(str::to_ascii_lowercase) == origin {
                    attempt.follow()
                } else {
                    attempt.error("redirect to another host refused")
                }
            }))
            .build()
            .expect("the HTTP client builds with the ring provider installed");
        Poller { client, config, db, rounds: Arc::new(AtomicU64::new(0)) }
    }

    /// How many rounds this poller has run (for tests and logs).
    pub fn rounds(&self) -> u64 {
        self.rounds.load(Ordering::Relaxed)
    }

    /// Asks one server for its version.
    pub async fn ping(&self, host: &str) -> PingOutcome {
        let url = format!("{}/api/public/ping", host.trim_end_matches('/'));
        let started = Instant::now();
        let failure = |class: &'static str, detail: String| PingOutcome {
            version: None,
            latency_ms: None,
            error: Some(class),
            detail: Some(detail),
        };
        let response = match self.client.get(&url).send().await {
            Ok(response) => response,
            Err(err) => {
                let chain = error_chain(&err).to_ascii_lowercase();
                let class = if err.is_timeout() {
                    "timeout"
                } else if err.is_redirect() {
                    "redirect"
                } else if err.is_connect() && chain.contains("dns error") {
                    "dns"
                } else if err.is_connect() && (chain.contains("certificate") || chain.contains("tls")) {
                    "tls"
                } else if err.is_connect() {
                    "connect"
                } else {
                    "request"
                };
                return failure(class, error_chain(&err));
            }
        };
        let latency_ms = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
        let status = response.status();
        match response.headers().get("x-version").map(|v| v.to_str().map(str::to_owned)) {
            Some(Ok(text)) => match text.parse::<meridian_model::Version>() {
                Ok(version) => PingOutcome {
                    version: Some(version.to_string()),
                    latency_ms: Some(latency_ms),
                    error: None,
                    detail: None,
                },
                Err(_) => PingOutcome {
                    latency_ms: Some(latency_ms),
                    ..failure("bad_version", format!("X-Version {:?} is not a semantic version", truncate(&text, 60)))
                },
            },
            Some(Err(_)) => {
                PingOutcome { latency_ms: Some(latency_ms), ..failure("bad_version", "X-Version is not text".into()) }
            }
            None if !status.is_success() => PingOutcome {
                latency_ms: Some(latency_ms),
                ..failure("http_status", format!("HTTP {} without X-Version", status.as_u16()))
            },
            None => PingOutcome { latency_ms: Some(latency_ms), ..failure("no_version", "no X-Version header".into()) },
        }
    }

    /// Pings `targets` with bounded concurrency and records a status for each.
    pub async fn poll_servers(&self, targets: Vec<ServerRow>) -> ApiResult<RoundSummary> {
        let outcomes: Vec<(ServerRow, PingOutcome)> = futures_util::stream::iter(targets)
            .map(|server| async move {
                let outcome = self.ping(&server.host).await;
                (server, outcome)
            })
            .buffer_unordered(self.config.concurrency)
            .collect()
            .await;
        let summary =
            RoundSummary { polled: outcomes.len(), up: outcomes.iter().filter(|(_, o)| o.error.is_none()).count() };
        let news: Vec<NewStatus> = outcomes
            .into_iter()
            .map(|(server, outcome)| {
                if let Some(class) = outcome.error {
                    log::debug!("poll {}: {class}: {}", server.host, outcome.detail.as_deref().unwrap_or(""));
                }
                NewStatus {
                    server_id: server.id,
                    version: outcome.version,
                    latency_ms: outcome.latency_ms,
                    error: outcome.error.map(str::to_owned),
                    extra: match outcome.detail {
                        Some(detail) => serde_json::json!({"detail": detail}),
                        None => serde_json::json!({}),
                    },
                    device_id: None,
                }
            })
            .collect();
        // A server deleted during the round: its statuses are refused by the foreign key; retry
        // the round's inserts one by one so the others are kept.
        let batch = news.clone();
        if self.db.run(move |conn| statuses::insert_many(conn, batch)).await.is_err() {
            for new in news {
                let _ = self.db.run(move |conn| statuses::insert(conn, new)).await;
            }
        }
        self.rounds.fetch_add(1, Ordering::Relaxed);
        Ok(summary)
    }

    /// One round over every server without an owning device.
    pub async fn poll_round(&self) -> ApiResult<RoundSummary> {
        let targets = self.db.run(servers::unowned).await?;
        let summary = self.poll_servers(targets).await?;
        log::info!("poll round: {} servers, {} up", summary.polled, summary.up);
        Ok(summary)
    }

    /// Deletes old statuses and devices never approved.
    pub async fn housekeeping(&self) -> ApiResult<(usize, usize)> {
        let (retention, untrusted_age) = (self.config.retention, self.config.untrusted_age);
        self.db
            .run(move |conn| {
                let statuses = statuses::prune(conn, retention)?;
                let devices = meridian_auth::devices::prune_untrusted(conn, untrusted_age)?;
                if statuses + devices > 0 {
                    log::info!("pruned {statuses} old statuses and {devices} untrusted devices");
                }
                Ok((statuses, devices))
            })
            .await
    }

    /// Runs the polling loop on a thread of its own until `stop` is set: each interval, the
    /// replica that holds (or takes) the lock polls and prunes; the others only retry the lock.
    pub fn spawn(&self, database_url: String, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
        let poller = self.clone();
        std::thread::Builder::new()
            .name("discovery-poller".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime for the poller");
                let mut leadership = Leadership::new(database_url);
                let mut housekept: Option<Instant> = None;
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let pause = if leadership.try_acquire() {
                        if let Err(err) = runtime.block_on(poller.poll_round()) {
                            log::warn!("poll round failed: {err}");
                        }
                        if housekept.is_none_or(|at| at.elapsed() >= Duration::from_secs(600)) {
                            match runtime.block_on(poller.housekeeping()) {
                                Ok(_) => housekept = Some(Instant::now()),
                                Err(err) => log::warn!("pruning failed: {err}"),
                            }
                        }
                        poller.config.interval.saturating_sub(started.elapsed())
                    } else {
                        // Not the poller: try the lock again soon so a dead poller is replaced quickly.
                        poller.config.interval.min(Duration::from_secs(5))
                    };
                    let until = Instant::now() + pause;
                    while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                        std::thread::sleep(Duration::from_millis(20).min(pause));
                    }
                }
                leadership.release();
            })
            .expect("spawn the poller thread")
    }
}

fn truncate(text: &str, chars: usize) -> String {
    text.chars().take(chars).collect()
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    truncate(&text, 300)
}

/// The polling lock, held on a connection of its own.
pub struct Leadership {
    database_url: String,
    conn: Option<PgConnection>,
}

#[derive(QueryableByName)]
struct Locked {
    #[diesel(sql_type = Bool)]
    locked: bool,
}

impl Leadership {
    pub fn new(database_url: String) -> Leadership {
        Leadership { database_url, conn: None }
    }

    /// Whether this process holds the lock now: checks the held connection is alive, or connects
    /// and tries to take the lock.
    pub fn try_acquire(&mut self) -> bool {
        if let Some(conn) = self.conn.as_mut() {
            if diesel::sql_query("SELECT 1").execute(conn).is_ok() {
                return true;
            }
            log::warn!("lost the polling lock's connection");
            self.conn = None;
        }
        let mut conn = match PgConnection::establish(&self.database_url) {
            Ok(conn) => conn,
            Err(err) => {
                log::warn!("poller cannot connect: {err}");
                return false;
            }
        };
        let locked = diesel::sql_query("SELECT pg_try_advisory_lock($1) AS locked")
            .bind::<BigInt, _>(POLL_LOCK)
            .get_result::<Locked>(&mut conn)
            .is_ok_and(|row| row.locked);
        if locked {
            log::info!("this replica now polls");
            self.conn = Some(conn);
        }
        locked
    }

    pub fn is_held(&self) -> bool {
        self.conn.is_some()
    }

    /// Gives the lock up at once. (A process that dies releases it too, when Postgres notices
    /// its connection closed.)
    pub fn release(&mut self) {
        if let Some(mut conn) = self.conn.take() {
            let _ = diesel::sql_query("SELECT pg_advisory_unlock($1)").bind::<BigInt, _>(POLL_LOCK).execute(&mut conn);
        }
    }
}
