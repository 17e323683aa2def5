//! Who is calling: HTTP basic credentials checked against the person's password hash, behind a
//! short-lived verified-credential cache and failure throttles.
//!
//! The cache is keyed by HMAC-SHA256(process key, user ":" password), so it never holds a password
//! or anything that would verify one outside this process. An entry lives at most
//! `FEDERATION_CREDENTIAL_CACHE_TTL` seconds and is dropped at once when the person's password,
//! roles or active flag change: locally by the writer, and in every other replica through Postgres
//! `NOTIFY federation_credentials, '<id>'` (sent in the changing transaction, so on commit) received
//! by [`spawn_listener`]. A verification racing with a change never repopulates the cache with the
//! old answer: inserts are refused when an invalidation happened since the lookup started.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use diesel::prelude::*;
use diesel::sql_types::{Array, Bool, Nullable, Text};
use hmac::{Hmac, Mac};
use meridian_auth::BasicCredentials;
use meridian_auth::basic::challenge;
use meridian_platform::config::Rate;
use meridian_platform::ratelimit::RateLimiter;
use meridian_platform::{ApiError, ApiResult, Platform};
use sha2::Sha256;

use crate::Federation;

/// The Postgres channel credential changes are announced on.
pub const CHANNEL: &str = "federation_credentials";

/// An authenticated person.
#[derive(Debug, Clone)]
pub struct Caller {
    pub id: String,
    pub roles: Arc<[String]>,
}

impl Caller {
    pub fn is_root(&self) -> bool {
        self.roles.iter().any(|r| r == "root")
    }
}

struct Entry {
    user: String,
    roles: Arc<[String]>,
    active: bool,
    at: Instant,
    /// Set by the one request that re-verifies this entry past half its lifetime.
    refreshing: AtomicBool,
}

pub struct Authenticator {
    key: [u8; 32],
    ttl: Duration,
    max_entries: usize,
    cache: RwLock<HashMap<[u8; 32], Arc<Entry>>>,
    /// One verification at a time per cache key: concurrent requests with the same uncached
    /// credentials wait for the first instead of each running bcrypt.
    gates: std::sync::Mutex<HashMap<[u8; 32], Arc<tokio::sync::Mutex<()>>>>,
    /// Incremented by every invalidation.
    epoch: AtomicU64,
    by_account: RateLimiter<String>,
    by_address: RateLimiter<IpAddr>,
    /// The bcrypt cost of the last real hash verified (0: argon2): an unknown account is checked
    /// against a dummy of the same kind, so its answer takes as long as a wrong password's.
    timing_cost: AtomicU32,
    /// `federation_authentications_total{result}`: cached, verified, failed, throttled.
    outcomes: meridian_platform::prometheus::IntCounterVec,
}

/// The bcrypt cost of a stored hash (`$2b$12$...` -> 12), or 0 for anything else.
fn bcrypt_cost(stored: &str) -> u32 {
    if meridian_auth::password::is_bcrypt(stored) { stored[4..6].parse().unwrap_or(0) } else { 0 }
}

/// Spends the time of verifying a hash like the last real one: bcrypt of the same cost, or
/// argon2id (`meridian_auth::password::verify_dummy`).
fn verify_dummy_like(password: &str, cost: u32) {
    static DUMMIES: std::sync::OnceLock<std::sync::Mutex<HashMap<u32, String>>> = std::sync::OnceLock::new();
    if !(4..=31).contains(&cost) {
        meridian_auth::password::verify_dummy(password);
        return;
    }
    let dummy = {
        let mut dummies =
            DUMMIES.get_or_init(Default::default).lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        dummies
            .entry(cost)
            .or_insert_with(|| bcrypt::hash("meridian-timing-equaliser", cost).unwrap_or_default())
            .clone()
    };
    let _ = bcrypt::verify(password, &dummy);
}

/// Credentials presented by one request, with their cache key and the client's address.
struct Attempt {
    user: String,
    password: String,
    key: [u8; 32],
    address: Option<IpAddr>,
}

pub struct AuthSettings {
    pub ttl: Duration,
    pub max_entries: usize,
    pub failures_per_account: Rate,
    pub failures_per_address: Rate,
}

#[derive(QueryableByName)]
struct StoredCredential {
    #[diesel(sql_type = Nullable<Text>)]
    password_hash: Option<String>,
    #[diesel(sql_type = Array<Text>)]
    roles: Vec<String>,
    #[diesel(sql_type = Bool)]
    active: bool,
}

impl Authenticator {
    pub fn new(settings: &AuthSettings) -> Authenticator {
        Authenticator {
            key: rand::random(),
            ttl: settings.ttl,
            max_entries: settings.max_entries.max(1),
            cache: RwLock::new(HashMap::new()),
            gates: std::sync::Mutex::new(HashMap::new()),
            epoch: AtomicU64::new(0),
            by_account: RateLimiter::new(settings.failures_per_account),
            by_address: RateLimiter::new(settings.failures_per_address),
            timing_cost: AtomicU32::new(0),
            outcomes: meridian_platform::prometheus::IntCounterVec::new(
                meridian_platform::prometheus::Opts::new(
                    "federation_authentications_total",
                    "Basic authentications by outcome (cached, verified, failed, throttled)",
                ),
                &["result"],
            )
            .expect("a valid metric definition"),
        }
    }

    /// Registers the authentication counters (once per registry; a second state on the same
    /// registry, as in tests, keeps its counters unregistered).
    pub fn register_metrics(&self, registry: &meridian_platform::prometheus::Registry) {
        if let Err(err) = registry.register(Box::new(self.outcomes.clone())) {
            log::debug!("authentication metrics not registered: {err}");
        }
    }

    fn count(&self, result: &str) {
        self.outcomes.with_label_values(&[result]).inc();
    }

    fn cache_key(&self, user: &str, password: &str) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        // user ":" password, with the user's length in front so no two pairs share a key.
        mac.update(&(user.len() as u64).to_be_bytes());
        mac.update(user.as_bytes());
        mac.update(b":");
        mac.update(password.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Drops every cached credential of `user` (after a password, role or active change).
    pub fn invalidate(&self, user: &str) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.cache.write().unwrap_or_else(std::sync::PoisonError::into_inner).retain(|_, e| e.user != user);
    }

    /// Drops everything (the change listener lost its connection and may have missed news).
    pub fn invalidate_all(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.cache.write().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    }

    /// How many times a password was checked against its stored hash (cache misses and refreshes).
    pub fn verifications(&self) -> u64 {
        self.outcomes.with_label_values(&["verified"]).get() + self.outcomes.with_label_values(&["failed"]).get()
    }

    pub fn cached_entries(&self) -> usize {
        self.cache.read().unwrap_or_else(std::sync::PoisonError::into_inner).len()
    }

    fn lookup(&self, key: &[u8; 32]) -> Option<Arc<Entry>> {
        let cache = self.cache.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        cache.get(key).filter(|e| e.at.elapsed() < self.ttl).cloned()
    }

    fn gate(&self, key: [u8; 32]) -> Arc<tokio::sync::Mutex<()>> {
        self.gates.lock().unwrap_or_else(std::sync::PoisonError::into_inner).entry(key).or_default().clone()
    }

    /// Forgets `key`'s gate once nobody else holds it.
    fn release(&self, key: &[u8; 32], gate: Arc<tokio::sync::Mutex<()>>) {
        let mut gates = self.gates.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // The map's reference and ours: nobody is waiting.
        if Arc::strong_count(&gate) <= 2 {
            gates.remove(key);
        }
    }

    /// The cached answer for `key`, or a verification. Under steady use an entry never expires:
    /// past half its lifetime, one request re-verifies it while the others keep using it, so no
    /// burst of requests ever waits for bcrypt together. A miss is verified once however many
    /// requests carry the same credentials at that moment.
    async fn cached_or_verified(&self, attempt: Attempt, platform: &Platform) -> ApiResult<Arc<Entry>> {
        let key = attempt.key;
        if let Some(entry) = self.lookup(&key) {
            self.count("cached");
            if entry.at.elapsed() < self.ttl / 2 || entry.refreshing.swap(true, Ordering::AcqRel) {
                return Ok(entry);
            }
            let refreshed = self.verify(attempt, platform).await;
            if refreshed.is_err() {
                entry.refreshing.store(false, Ordering::Release);
            }
            return refreshed;
        }
        let gate = self.gate(key);
        let verified = {
            let _turn = gate.lock().await;
            match self.lookup(&key) {
                Some(entry) => {
                    self.count("cached");
                    Ok(entry)
                }
                None => self.verify(attempt, platform).await,
            }
        };
        self.release(&key, gate);
        verified
    }

    fn store(&self, key: [u8; 32], entry: Arc<Entry>, epoch_at_lookup: u64) {
        let mut cache = self.cache.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        // Checked under the write lock: an invalidation takes the same lock after bumping the epoch.
        if self.epoch.load(Ordering::SeqCst) != epoch_at_lookup {
            return;
        }
        if cache.len() >= self.max_entries {
            let ttl = self.ttl;
            cache.retain(|_, e| e.at.elapsed() < ttl);
            if cache.len() >= self.max_entries {
                let excess: Vec<[u8; 32]> = cache.keys().take(cache.len() / 4 + 1).copied().collect();
                for k in excess {
                    cache.remove(&k);
                }
            }
        }
        cache.insert(key, entry);
    }

    /// Checks the request's basic credentials: 401 (with a challenge) when they are missing or
    /// wrong, 429 when this account or address failed too often, 403 for an inactive account.
    pub async fn authenticate(&self, req: &HttpRequest, platform: &Platform) -> ApiResult<Caller> {
        let credentials = match req.headers().get(header::AUTHORIZATION).map(|v| v.to_str()) {
            None => return Err(challenge("credentials are required")),
            Some(Err(_)) => return Err(challenge("malformed Authorization header")),
            Some(Ok(value)) => BasicCredentials::parse(value)?,
        };
        let user = credentials.username.trim().to_ascii_uppercase();
        let address = meridian_platform::net::client_ip(req, &platform.config.trusted_proxies);
        if let Err(wait) = self.by_account.check(&user) {
            self.count("throttled");
            log::warn!("authentication throttled for account {user} (too many failures)");
            return Err(ApiError::too_many_requests(wait).with_code("TooManyFailures"));
        }
        if let Some(ip) = address
            && let Err(wait) = self.by_address.check(&ip)
        {
            self.count("throttled");
            log::warn!("authentication throttled for address {ip} (too many failures)");
            return Err(ApiError::too_many_requests(wait).with_code("TooManyFailures"));
        }

        let key = self.cache_key(&user, &credentials.password);
        let attempt = Attempt { user, password: credentials.password, key, address };
        let entry = self.cached_or_verified(attempt, platform).await?;
        if !entry.active {
            return Err(ApiError::forbidden("this account is not active").with_code("Inactive"));
        }
        Ok(Caller { id: entry.user.clone(), roles: entry.roles.clone() })
    }

    /// The slow path: the stored hash, verified off the async workers; the answer is cached.
    async fn verify(&self, attempt: Attempt, platform: &Platform) -> ApiResult<Arc<Entry>> {
        let Attempt { user, password, key, address } = attempt;
        let epoch = self.epoch.load(Ordering::SeqCst);
        let lookup_user = user.clone();
        let stored = platform
            .db
            .run(move |conn| {
                Ok(diesel::sql_query("SELECT password_hash, roles, active FROM people WHERE id = $1")
                    .bind::<Text, _>(lookup_user)
                    .get_result::<StoredCredential>(conn)
                    .optional()?)
            })
            .await?;

        let dummy_cost = self.timing_cost.load(Ordering::Relaxed);
        let (verified, cost) = web::block(move || {
            if let Some(StoredCredential { password_hash: Some(hash), roles, active }) = stored {
                let ok = meridian_auth::password::verify(&password, &hash);
                (ok.then_some((roles, active)), Some(bcrypt_cost(&hash)))
            } else {
                // Unknown people and people without a password cost what a wrong password does.
                verify_dummy_like(&password, dummy_cost);
                (None, None)
            }
        })
        .await?;
        if let Some(cost) = cost {
            self.timing_cost.store(cost, Ordering::Relaxed);
        }
        let Some((roles, active)) = verified else {
            let _ = self.by_account.hit(&user);
            if let Some(ip) = address {
                let _ = self.by_address.hit(&ip);
            }
            let shown_ip = address.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
            self.count("failed");
            log::warn!("failed authentication for account {user} from {shown_ip}");
            return Err(challenge("invalid credentials"));
        };
        let entry = Arc::new(Entry {
            user: user.clone(),
            roles: roles.into(),
            active,
            at: Instant::now(),
            refreshing: AtomicBool::new(false),
        });
        self.count("verified");
        self.store(key, entry.clone(), epoch);
        Ok(entry)
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let platform = req
                .app_data::<web::Data<Platform>>()
                .cloned()
                .ok_or_else(|| ApiError::internal("the platform is not registered as app data"))?;
            let federation = req
                .app_data::<web::Data<Federation>>()
                .cloned()
                .ok_or_else(|| ApiError::internal("the federation state is not registered as app data"))?;
            federation.auth.authenticate(&req, &platform).await
        })
    }
}

/// Announces a credential change of `person` to every replica; call inside the changing
/// transaction (Postgres delivers it on commit).
pub fn notify_change(conn: &mut PgConnection, person: &str) -> QueryResult<()> {
    diesel::sql_query("SELECT pg_notify($1, $2)").bind::<Text, _>(CHANNEL).bind::<Text, _>(person).execute(conn)?;
    Ok(())
}

/// Listens for credential changes made by other replicas, on a thread with its own connection
/// (never a pooled one). Polls the socket every `poll`; on a lost connection it drops the whole
/// cache (news may have been missed) and reconnects.
/// The thread ends once the authenticator is dropped.
pub fn spawn_listener(database_url: String, auth: &Arc<Authenticator>, poll: Duration) {
    let auth = Arc::downgrade(auth);
    std::thread::Builder::new()
        .name("federation-listen".to_owned())
        .spawn(move || {
            let mut wait = Duration::from_millis(200);
            loop {
                match listen(&database_url, &auth, poll) {
                    Ok(()) => return,
                    Err(err) => {
                        let Some(auth) = auth.upgrade() else { return };
                        auth.invalidate_all();
                        log::warn!("credential change listener: {err}; reconnecting in {wait:?}");
                        std::thread::sleep(wait);
                        wait = (wait * 2).min(Duration::from_secs(10));
                    }
                }
            }
        })
        .expect("spawn the listener thread");
}

/// Returns `Ok` when the authenticator is gone (the service stopped).
fn listen(database_url: &str, auth: &std::sync::Weak<Authenticator>, poll: Duration) -> Result<(), String> {
    let mut conn = PgConnection::establish(database_url).map_err(|e| e.to_string())?;
    diesel::sql_query(format!("LISTEN {CHANNEL}")).execute(&mut conn).map_err(|e| e.to_string())?;
    // Anything cached before LISTEN took effect may be stale.
    match auth.upgrade() {
        Some(auth) => auth.invalidate_all(),
        None => return Ok(()),
    }
    let mut last_ping = Instant::now();
    loop {
        let Some(auth) = auth.upgrade() else { return Ok(()) };
        for notification in conn.notifications_iter() {
            let notification = notification.map_err(|e| e.to_string())?;
            auth.invalidate(&notification.payload);
        }
        drop(auth);
        if last_ping.elapsed() > Duration::from_secs(5) {
            diesel::sql_query("SELECT 1").execute(&mut conn).map_err(|e| e.to_string())?;
            last_ping = Instant::now();
        }
        std::thread::sleep(poll);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bcrypt_costs_are_read_from_hashes() {
        assert_eq!(bcrypt_cost(&bcrypt::hash("x", 5).unwrap()), 5);
        assert_eq!(bcrypt_cost("$argon2id$v=19$m=19456,t=2,p=1$abc$def"), 0);
        // Any cost works as a dummy, including argon2's.
        verify_dummy_like("x", 4);
        verify_dummy_like("x", 0);
    }
}
