//! The delivery worker: sends queued deliveries through SMTP, one claimed row per transaction.
//!
//! Each of `concurrency` slots is a thread with its own database connection. A slot opens a
//! transaction, claims the next due row (`FOR UPDATE SKIP LOCKED`), sends the message (on a small
//! Tokio runtime, with a time-out) and writes the outcome before committing. Other slots, and other
//! replicas, skip the locked row; if the process dies before the commit, Postgres releases the
//! lock and the row is due again. So a row is marked sent exactly when its send succeeded, and the
//! one case that can send twice is a crash (or a lost commit) between the SMTP server accepting
//! the message and the commit: at most one message per slot in flight. See docs/registration.md.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use meridian_platform::config::Rate;
use meridian_platform::prometheus::{IntCounterVec, Opts};

use crate::broadcasts::{self, Claimed};
use crate::mail::{self, MailContext, Mailer, Outgoing, SendError};
use crate::settings::{MailerSpec, WorkerSettings};

/// Spaces sends evenly at the configured rate, across every slot of a worker.
pub struct Pacer {
    interval: Option<Duration>,
    next: Mutex<Instant>,
}

impl Pacer {
    pub fn new(rate: Option<Rate>) -> Self {
        Pacer { interval: rate.map(|r| r.period / r.count), next: Mutex::new(Instant::now()) }
    }

    /// Waits for this caller's turn.
    pub fn wait(&self) {
        let Some(interval) = self.interval else { return };
        let slot = {
            let mut next = self.next.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let now = Instant::now();
            let slot = (*next).max(now);
            *next = slot + interval;
            slot
        };
        let now = Instant::now();
        if slot > now {
            std::thread::sleep(slot - now);
        }
    }
}

/// What one step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nothing was due.
    Idle,
    Sent,
    /// The recipient opted out after the broadcast was queued.
    Skipped,
    /// Refused permanently (or too many temporary refusals): marked failed.
    Failed,
    /// Refused temporarily: due again later.
    Retry,
    /// The server did not answer: the row was released untouched.
    Unavailable(String),
}

/// Everything a slot needs to send: the runtime the SMTP transport lives on, the transport, the
/// shared message context, the pacer and the retry policy.
pub struct Sender {
    runtime: tokio::runtime::Runtime,
    /// Always `Some` until dropped (the SMTP pool must be dropped inside the runtime).
    mailer: Option<Mailer>,
    ctx: MailContext,
    pacer: Pacer,
    settings: WorkerSettings,
}

impl Sender {
    pub fn new(spec: &MailerSpec, ctx: MailContext, settings: WorkerSettings) -> Result<Sender, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("registration-smtp")
            .enable_all()
            .build()
            .map_err(|e| format!("SMTP runtime: {e}"))?;
        let mailer = match spec {
            MailerSpec::Smtp(url) => {
                let _entered = runtime.enter();
                Mailer::smtp(url, settings.concurrency as u32, settings.send_timeout)?
            }
            MailerSpec::Outbox(dir) => Mailer::Outbox(dir.clone()),
        };
        Ok(Sender { runtime, mailer: Some(mailer), ctx, pacer: Pacer::new(settings.rate), settings })
    }

    fn send(&self, claimed: &Claimed) -> Result<(), SendError> {
        let message = mail::render(
            &self.ctx,
            &Outgoing {
                broadcast: claimed.broadcast_id,
                registration: claimed.registration_id,
                to: &claimed.email,
                title: &claimed.title,
                contents: &claimed.contents,
            },
        )
        .map_err(|message| SendError::Rejected { permanent: true, message })?;
        self.pacer.wait();
        let timeout = self.settings.send_timeout;
        let mailer = self.mailer.as_ref().expect("the mailer lives as long as the sender");
        self.runtime.block_on(async {
            match tokio::time::timeout(timeout, mailer.send(&message)).await {
                Ok(result) => result,
                Err(_) => Err(SendError::Unavailable(format!("no answer within {timeout:?}"))),
            }
        })
    }

    fn retry_delay(&self, attempts_before: i32) -> Duration {
        let factor = 2u32.saturating_pow(attempts_before.clamp(0, 16) as u32);
        self.settings.retry_base.saturating_mul(factor).min(Duration::from_secs(3600))
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        // Closing the SMTP pool spawns a task: it needs the runtime's context.
        let _entered = self.runtime.enter();
        self.mailer.take();
    }
}

/// Claims, sends and records one delivery, all in one transaction.
///
/// The row is marked `sent` before the message goes out, provisionally: the mark becomes durable
/// only with the commit after a successful send, and a failed send overwrites it in the same
/// transaction. So the only work left between the SMTP server's acceptance and the commit is the
/// commit itself, which is as narrow as the window (docs/registration.md) can be.
pub fn process_one(conn: &mut PgConnection, sender: &Sender) -> QueryResult<Step> {
    conn.transaction(|conn| {
        let Some(claimed) = broadcasts::claim_next(conn)? else { return Ok(Step::Idle) };
        let attempt = claimed.attempts + 1;
        if !claimed.active {
            broadcasts::finish(conn, claimed.id, "skipped", claimed.attempts, None)?;
            return Ok(Step::Skipped);
        }
        broadcasts::set_state(conn, claimed.id, true, attempt)?;
        match sender.send(&claimed) {
            Ok(()) => Ok(Step::Sent),
            Err(SendError::Rejected { permanent: true, message }) => {
                log::warn!("delivery {} to {} refused permanently: {message}", claimed.id, claimed.email);
                broadcasts::finish(conn, claimed.id, "failed", attempt, Some(&message))?;
                Ok(Step::Failed)
            }
            Err(SendError::Rejected { permanent: false, message }) => {
                if attempt >= sender.settings.max_attempts {
                    log::warn!(
                        "delivery {} to {} failed after {attempt} attempts: {message}",
                        claimed.id,
                        claimed.email
                    );
                    broadcasts::finish(conn, claimed.id, "failed", attempt, Some(&message))?;
                    Ok(Step::Failed)
                } else {
                    let delay = sender.retry_delay(claimed.attempts);
                    broadcasts::requeue(conn, claimed.id, attempt, delay, Some(&message))?;
                    Ok(Step::Retry)
                }
            }
            // Put back as it was (no attempt counted), due at once; the slot backs off instead.
            Err(SendError::Unavailable(message)) => {
                broadcasts::set_state(conn, claimed.id, false, claimed.attempts)?;
                Ok(Step::Unavailable(message))
            }
        }
    })
}

/// The counter of delivery outcomes, registered in `registry`.
pub fn outcome_counter(registry: &meridian_platform::prometheus::Registry) -> Option<IntCounterVec> {
    let counter = IntCounterVec::new(
        Opts::new(
            "registration_deliveries_total",
            "Delivery attempts by outcome (sent, failed, retry, skipped, unavailable)",
        ),
        &["outcome"],
    )
    .ok()?;
    registry.register(Box::new(counter.clone())).ok()?;
    Some(counter)
}

/// A running worker; [`Worker::stop`] lets in-flight sends finish and joins every slot.
pub struct Worker {
    stop: Arc<AtomicBool>,
    owner: Option<JoinHandle<()>>,
}

const MAX_BACKOFF: Duration = Duration::from_secs(30);

fn sleep_unless_stopped(stop: &AtomicBool, total: Duration) {
    let deadline = Instant::now() + total;
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(100)));
    }
}

fn observe(metrics: Option<&IntCounterVec>, outcome: &str) {
    if let Some(metrics) = metrics {
        metrics.with_label_values(&[outcome]).inc();
    }
}

fn run_slot(
    index: usize,
    database_url: &str,
    schema: &str,
    sender: &Sender,
    stop: &AtomicBool,
    metrics: Option<&IntCounterVec>,
) {
    let mut conn: Option<PgConnection> = None;
    let mut backoff = Duration::from_millis(250);
    while !stop.load(Ordering::Relaxed) {
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match meridian_platform::db::connect(database_url, schema) {
                Ok(c) => conn.insert(c),
                Err(err) => {
                    log::warn!("delivery slot {index}: database unavailable ({err}); retrying in {backoff:?}");
                    sleep_unless_stopped(stop, backoff);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            },
        };
        let step = process_one(c, sender);
        if let Ok(step) = &step {
            let outcome = match step {
                Step::Idle => None,
                Step::Sent => Some("sent"),
                Step::Skipped => Some("skipped"),
                Step::Failed => Some("failed"),
                Step::Retry => Some("retry"),
                Step::Unavailable(_) => Some("unavailable"),
            };
            if let Some(outcome) = outcome {
                observe(metrics, outcome);
            }
        }
        match step {
            Ok(Step::Idle) => sleep_unless_stopped(stop, sender.settings.poll_interval),
            Ok(Step::Unavailable(message)) => {
                log::warn!("delivery slot {index}: SMTP unavailable ({message}); retrying in {backoff:?}");
                sleep_unless_stopped(stop, backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            Ok(_) => backoff = Duration::from_millis(250),
            Err(err) => {
                log::warn!("delivery slot {index}: database error ({err}); reconnecting in {backoff:?}");
                conn = None;
                sleep_unless_stopped(stop, backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

impl Worker {
    /// Starts `settings.concurrency` slots against `database_url`.
    pub fn start(
        database_url: String,
        schema: &'static str,
        spec: MailerSpec,
        ctx: MailContext,
        settings: WorkerSettings,
    ) -> Result<Worker, String> {
        Self::start_observed(database_url, schema, spec, ctx, settings, None)
    }

    /// Like [`Worker::start`], counting outcomes in `metrics` (label `outcome`).
    pub fn start_observed(
        database_url: String,
        schema: &'static str,
        spec: MailerSpec,
        ctx: MailContext,
        settings: WorkerSettings,
        metrics: Option<IntCounterVec>,
    ) -> Result<Worker, String> {
        let sender = Arc::new(Sender::new(&spec, ctx, settings)?);
        let stop = Arc::new(AtomicBool::new(false));
        let stop_ = stop.clone();
        // The owner thread holds the runtime until every slot has ended, so the runtime is never
        // dropped on an async thread.
        let owner = std::thread::Builder::new()
            .name("registration-worker".into())
            .spawn(move || {
                let slots: Vec<JoinHandle<()>> = (0..sender.settings.concurrency)
                    .map(|index| {
                        let (sender, stop, url) = (sender.clone(), stop_.clone(), database_url.clone());
                        let metrics = metrics.clone();
                        std::thread::Builder::new()
                            .name(format!("registration-slot-{index}"))
                            .spawn(move || run_slot(index, &url, schema, &sender, &stop, metrics.as_ref()))
                            .expect("spawn a delivery slot")
                    })
                    .collect();
                for slot in slots {
                    let _ = slot.join();
                }
                drop(sender);
            })
            .map_err(|e| format!("spawn the delivery worker: {e}"))?;
        Ok(Worker { stop, owner: Some(owner) })
    }

    /// Stops claiming, lets in-flight sends finish and waits for every slot.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(owner) = self.owner.take() {
            let _ = owner.join();
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
