//! The public server list served from memory.
//!
//! `GET /servers` is the mobile app's hot path: it is answered from a serialised snapshot with an
//! ETag, rebuilt after every write in this process and, in every replica, when Postgres notifies
//! the `discovery_servers_changed` channel (a trigger on `servers` sends it), with a periodic
//! rebuild as a safety net should a notification be missed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use actix_web::web::Bytes;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use meridian_platform::{ApiResult, Database};

use crate::servers::{self, PublicServer};

pub const CHANNEL: &str = "discovery_servers_changed";

/// The serialised list and its entity tag.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub body: Bytes,
    pub etag: String,
    pub count: usize,
}

impl Snapshot {
    pub fn new(list: &[PublicServer]) -> Snapshot {
        let body = serde_json::to_vec(list).expect("server lists serialise");
        Snapshot {
            etag: meridian_platform::conditional::strong_etag(&body),
            body: Bytes::from(body),
            count: list.len(),
        }
    }
}

/// The current snapshot, shared by every worker.
#[derive(Clone, Default)]
pub struct ServerList {
    current: Arc<RwLock<Option<Arc<Snapshot>>>>,
}

impl ServerList {
    pub fn get(&self) -> Option<Arc<Snapshot>> {
        self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    fn set(&self, snapshot: Snapshot) {
        *self.current.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Arc::new(snapshot));
    }

    /// Rebuilds from the database (blocking).
    pub fn refresh_blocking(&self, conn: &mut PgConnection) -> ApiResult<Arc<Snapshot>> {
        let snapshot = Snapshot::new(&servers::public_list(conn)?);
        self.set(snapshot);
        Ok(self.get().expect("just set"))
    }

    /// Rebuilds from the database.
    pub async fn refresh(&self, db: &Database) -> ApiResult<Arc<Snapshot>> {
        let list = self.clone();
        db.run(move |conn| list.refresh_blocking(conn)).await
    }

    /// The snapshot, loading it first if none was built yet.
    pub async fn current(&self, db: &Database) -> ApiResult<Arc<Snapshot>> {
        match self.get() {
            Some(snapshot) => Ok(snapshot),
            None => self.refresh(db).await,
        }
    }

    /// Listens for change notifications on a dedicated connection (a thread of its own) and
    /// rebuilds on each, and every `safety_interval` regardless. Reconnects after failures.
    pub fn spawn_listener(
        &self,
        database_url: String,
        pool: meridian_platform::db::DbPool,
        safety_interval: Duration,
        stop: Arc<AtomicBool>,
    ) -> std::thread::JoinHandle<()> {
        let list = self.clone();
        std::thread::Builder::new()
            .name("discovery-listen".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Err(err) = list.listen(&database_url, &pool, safety_interval, &stop) {
                        log::warn!("server list listener: {err}; reconnecting in 5 s");
                        let until = std::time::Instant::now() + Duration::from_secs(5);
                        while !stop.load(Ordering::Relaxed) && std::time::Instant::now() < until {
                            std::thread::sleep(Duration::from_millis(50));
                        }
                    }
                }
            })
            .expect("spawn the listener thread")
    }

    fn listen(
        &self,
        database_url: &str,
        pool: &meridian_platform::db::DbPool,
        safety_interval: Duration,
        stop: &AtomicBool,
    ) -> Result<(), String> {
        let mut listener = PgConnection::establish(database_url).map_err(|e| e.to_string())?;
        listener.batch_execute(&format!("LISTEN {CHANNEL}")).map_err(|e| e.to_string())?;
        let rebuild = |list: &ServerList| -> Result<(), String> {
            let mut conn = pool.get().map_err(|e| e.to_string())?;
            list.refresh_blocking(&mut conn).map(|_| ()).map_err(|e| e.detail)
        };
        rebuild(self)?;
        let mut last = std::time::Instant::now();
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(200));
            let mut changed = false;
            for notification in listener.notifications_iter() {
                notification.map_err(|e| e.to_string())?;
                changed = true;
            }
            if changed || last.elapsed() >= safety_interval {
                // A notification-less connection failure surfaces here, not in the iterator.
                listener.batch_execute("SELECT 1").map_err(|e| e.to_string())?;
                rebuild(self)?;
                last = std::time::Instant::now();
            }
        }
        Ok(())
    }
}
