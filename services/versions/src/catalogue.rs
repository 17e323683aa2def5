//! The in-memory snapshot every read is served from.
//!
//! The whole catalogue (versions and artifacts) is small, read constantly by servers in the field
//! and written rarely, so each process keeps it in memory with the list's JSON already serialised.
//! A write reloads the snapshot of the process that made it; every process also polls the
//! generation counter (one row) and reloads when another replica changed something.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use actix_web::web::Bytes;
use meridian_platform::conditional::strong_etag;
use meridian_platform::prometheus::{self, IntCounter, IntGauge, Registry};
use meridian_platform::{ApiResult, Database};
use semver::Version;

use crate::model::{Artifact, VersionRow, VersionView};
use crate::rules::{self, Candidate, Selector};
use crate::store;

/// One version in the snapshot.
#[derive(Debug)]
pub struct Entry {
    pub version: Version,
    pub row: VersionRow,
    pub view: VersionView,
    /// Sorted by type, then platform.
    pub artifacts: Vec<Artifact>,
    /// `view` as JSON, ready to join into lists.
    pub json: Cached,
    /// `artifacts` as a JSON array.
    pub artifacts_json: Cached,
}

impl Candidate for Entry {
    fn version(&self) -> &Version {
        &self.version
    }
    fn published(&self) -> bool {
        self.row.published
    }
}

/// A serialised body and its entity tag, with a gzip copy when it is worth one.
#[derive(Debug, Clone)]
pub struct Cached {
    pub body: Bytes,
    pub etag: String,
    /// The body gzip-compressed, and that representation's tag (`"<tag>-gz"`).
    pub gzip: Option<(Bytes, String)>,
}

/// Bodies smaller than this are sent as they are.
const GZIP_FROM_BYTES: usize = 1024;

impl Cached {
    pub fn new(body: Vec<u8>) -> Self {
        Cached { etag: strong_etag(&body), body: Bytes::from(body), gzip: None }
    }

    /// Like [`Cached::new`], compressing the body once now for every client that accepts gzip.
    pub fn compressed(body: Vec<u8>) -> Self {
        let mut cached = Self::new(body);
        if cached.body.len() >= GZIP_FROM_BYTES {
            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            let zipped = std::io::Write::write_all(&mut encoder, &cached.body).and_then(|()| encoder.finish());
            if let Ok(zipped) = zipped {
                let tag = format!("{}-gz\"", cached.etag.trim_end_matches('"'));
                cached.gzip = Some((Bytes::from(zipped), tag));
            }
        }
        cached
    }
}

/// Joins pre-serialised JSON values into a JSON array.
fn json_array<'a>(items: impl Iterator<Item = &'a Bytes>) -> Vec<u8> {
    let mut body = Vec::with_capacity(256);
    body.push(b'[');
    for (i, item) in items.enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(item);
    }
    body.push(b']');
    body
}

#[derive(Debug)]
pub struct Snapshot {
    pub generation: i64,
    /// Newest first, by semver precedence.
    pub entries: Vec<Entry>,
    /// `GET /versions`.
    pub list: Cached,
    index: HashMap<Version, usize>,
    /// Answers of update-for already computed from this snapshot, by the asking version. Servers
    /// in the field run few distinct versions, so nearly every request is a hit.
    updates: RwLock<HashMap<Version, Arc<Cached>>>,
    /// The `GET /` page, rendered on first request (Markdown for every changelog is not free).
    index_page: std::sync::OnceLock<Bytes>,
}

/// At most this many update-for answers are kept per snapshot (arbitrary versions asked by
/// clients must not grow memory without bound).
const MAX_CACHED_UPDATES: usize = 4096;

impl Snapshot {
    pub fn build(generation: i64, rows: Vec<VersionRow>, artifacts: Vec<Artifact>) -> Snapshot {
        let mut by_version: HashMap<uuid::Uuid, Vec<Artifact>> = HashMap::new();
        for artifact in artifacts {
            by_version.entry(artifact.version_id).or_default().push(artifact);
        }
        let mut entries: Vec<Entry> = rows
            .into_iter()
            .map(|row| {
                let view = row.view();
                let mut artifacts = by_version.remove(&row.id).unwrap_or_default();
                artifacts.sort_by(|a, b| (&a.artifact_type, &a.platform).cmp(&(&b.artifact_type, &b.platform)));
                Entry {
                    version: row.semver(),
                    json: Cached::new(serde_json::to_vec(&view).expect("a version serialises")),
                    artifacts_json: Cached::new(serde_json::to_vec(&artifacts).expect("artifacts serialise")),
                    view,
                    row,
                    artifacts,
                }
            })
            .collect();
        entries.sort_by(|a, b| b.version.cmp(&a.version));
        let list = Cached::compressed(json_array(entries.iter().map(|e| &e.json.body)));
        let index = entries.iter().enumerate().map(|(i, e)| (e.version.clone(), i)).collect();
        Snapshot {
            generation,
            entries,
            list,
            index,
            updates: RwLock::default(),
            index_page: std::sync::OnceLock::new(),
        }
    }

    pub fn exact(&self, version: &Version) -> Option<&Entry> {
        self.index.get(version).map(|&i| &self.entries[i])
    }

    /// The version a selector names: an exact version (withdrawn or not), or the newest published
    /// one matching `latest` or a range.
    pub fn resolve(&self, selector: &Selector) -> Option<&Entry> {
        match selector {
            Selector::Exact(version) => self.exact(version),
            Selector::Latest => self.entries.iter().find(|e| e.row.published && e.version.pre.is_empty()),
            Selector::Range(req) => self.entries.iter().find(|e| e.row.published && req.matches(&e.version)),
        }
    }

    /// The index page of this snapshot, rendered once.
    pub fn index_page(&self) -> Bytes {
        self.index_page.get_or_init(|| Bytes::from(crate::pages::index_page(self))).clone()
    }

    /// The updates for a server running `current`, as a JSON array.
    pub fn updates_for(&self, current: &Version) -> Arc<Cached> {
        if let Some(hit) = self.updates.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(current) {
            return hit.clone();
        }
        let answer = Arc::new(Cached::new(json_array(
            rules::updates_for(current, &self.entries).into_iter().map(|e| &e.json.body),
        )));
        let mut cache = self.updates.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len() < MAX_CACHED_UPDATES {
            cache.insert(current.clone(), answer.clone());
        }
        answer
    }
}

/// What the snapshot tells Prometheus.
#[derive(Clone)]
pub struct SnapshotMetrics {
    generation: IntGauge,
    versions: IntGauge,
    reloads: IntCounter,
}

impl SnapshotMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let metrics = SnapshotMetrics {
            generation: IntGauge::new(
                "meridian_versions_snapshot_generation",
                "Catalogue generation of the snapshot this process serves",
            )?,
            versions: IntGauge::new("meridian_versions_snapshot_versions", "Versions in the snapshot")?,
            reloads: IntCounter::new(
                "meridian_versions_snapshot_reloads_total",
                "Snapshot reloads (after a write here or a change seen by the poller)",
            )?,
        };
        registry.register(Box::new(metrics.generation.clone()))?;
        registry.register(Box::new(metrics.versions.clone()))?;
        registry.register(Box::new(metrics.reloads.clone()))?;
        Ok(metrics)
    }
}

/// The current snapshot, shared by every worker of a process.
#[derive(Default)]
pub struct Catalogue {
    current: RwLock<Option<Arc<Snapshot>>>,
    metrics: Option<SnapshotMetrics>,
}

impl Catalogue {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_metrics(metrics: SnapshotMetrics) -> Self {
        Catalogue { current: RwLock::default(), metrics: Some(metrics) }
    }

    /// The snapshot held now, if one was loaded.
    pub fn held(&self) -> Option<Arc<Snapshot>> {
        self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Installs `snapshot` unless a newer one is already held (a slow reload must not undo a
    /// faster one that saw a later write).
    pub fn install(&self, snapshot: Snapshot) -> Arc<Snapshot> {
        let mut current = self.current.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        match current.as_ref() {
            Some(held) if held.generation > snapshot.generation => held.clone(),
            _ => {
                if let Some(metrics) = &self.metrics {
                    metrics.generation.set(snapshot.generation);
                    metrics.versions.set(snapshot.entries.len() as i64);
                    metrics.reloads.inc();
                }
                let snapshot = Arc::new(snapshot);
                *current = Some(snapshot.clone());
                snapshot
            }
        }
    }

    /// Reloads from the database.
    pub async fn reload(&self, db: &Database) -> ApiResult<Arc<Snapshot>> {
        let (generation, rows, artifacts) = db.run(store::load).await?;
        let snapshot = actix_web::web::block(move || Snapshot::build(generation, rows, artifacts)).await?;
        Ok(self.install(snapshot))
    }

    /// The snapshot to answer from: the one held, or a fresh load when none is (at start-up).
    pub async fn snapshot(&self, db: &Database) -> ApiResult<Arc<Snapshot>> {
        match self.held() {
            Some(snapshot) => Ok(snapshot),
            None => self.reload(db).await,
        }
    }

    /// After a write: reload so this process answers with it at once. The write already
    /// succeeded, so a failed reload is only logged (the poller catches up).
    pub async fn refresh_after_write(&self, db: &Database) {
        if let Err(err) = self.reload(db).await {
            log::warn!("the snapshot could not be reloaded after a write: {err}");
        }
    }

    /// Reloads when the database's generation differs from the one held.
    pub async fn poll_once(&self, db: &Database) -> ApiResult<bool> {
        let generation = db.run(store::generation).await?;
        if self.held().is_some_and(|s| s.generation == generation) {
            return Ok(false);
        }
        self.reload(db).await?;
        Ok(true)
    }

    /// Polls every `interval` for changes made through other replicas, until the process ends.
    pub fn spawn_poller(self: Arc<Self>, db: Database, interval: Duration) {
        actix_web::rt::spawn(async move {
            loop {
                if let Err(err) = self.poll_once(&db).await {
                    log::debug!("snapshot poll failed: {err}");
                }
                actix_web::rt::time::sleep(interval).await;
            }
        });
    }
}
