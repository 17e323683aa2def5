//! Rows as stored and the JSON shapes clients read.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::schema::{artifacts, versions};

/// A version row as the snapshot needs it.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = versions)]
pub struct VersionRow {
    pub id: Uuid,
    pub major: i32,
    pub minor: i32,
    pub patch: i32,
    pub pre_release: String,
    pub published: bool,
    pub changelog: String,
    pub created_at: DateTime<Utc>,
}

impl VersionRow {
    /// Its semver value (the columns are checked by the database and were parsed on the way in).
    pub fn semver(&self) -> semver::Version {
        let mut version = semver::Version::new(self.major as u64, self.minor as u64, self.patch as u64);
        if !self.pre_release.is_empty() {
            version.pre = semver::Prerelease::new(&self.pre_release).unwrap_or(semver::Prerelease::EMPTY);
        }
        version
    }

    pub fn view(&self) -> VersionView {
        VersionView {
            id: self.id,
            major: self.major,
            minor: self.minor,
            patch: self.patch,
            pre_release: (!self.pre_release.is_empty()).then(|| self.pre_release.clone()),
            published: self.published,
            changelog: self.changelog.clone(),
        }
    }
}

/// A version as clients read it (the replaced system's field names), plus `pre_release` for
/// pre-releases.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"id": "0b9ed8a4-0b5c-4d43-9a4b-0d8f1c1d2a31", "major": 2, "minor": 1, "patch": 0,
    "published": true, "changelog": "- Faster sync\r\n- Fixed the login screen"}))]
pub struct VersionView {
    pub id: Uuid,
    pub major: i32,
    pub minor: i32,
    pub patch: i32,
    /// The pre-release label (`rc.1` for `2.2.0-rc.1`); absent for releases.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pre_release: Option<String>,
    /// False once withdrawn.
    pub published: bool,
    /// Exactly as published.
    pub changelog: String,
}

/// A version with its artifacts (`GET /versions/{version}` for API clients).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VersionDetail {
    #[serde(flatten)]
    pub version: VersionView,
    pub artifacts: Vec<Artifact>,
}

/// A downloadable build of a version.
#[derive(Debug, Clone, Queryable, Selectable, Serialize, Deserialize, ToSchema)]
#[diesel(table_name = artifacts)]
#[schema(example = json!({"id": "5f0c3a0e-8f6b-4f7e-9d55-5f2b8a9a7c10", "version_id": "0b9ed8a4-0b5c-4d43-9a4b-0d8f1c1d2a31",
    "artifact_type": "mobile", "platform": "android", "download_url": "https://downloads.example.org/tamanu-2.1.0.apk",
    "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "size": 48_213_004}))]
pub struct Artifact {
    pub id: Uuid,
    pub version_id: Uuid,
    pub artifact_type: String,
    pub platform: String,
    pub download_url: String,
    /// SHA-256 of the file, lower-case hex, when the releaser gave it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sha256: Option<String>,
    /// Size of the file in bytes, when the releaser gave it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub size: Option<i64>,
}

/// Who made a write: the device's id and key fingerprint.
#[derive(Debug, Clone)]
pub struct Actor {
    pub id: Uuid,
    pub fingerprint: String,
}

impl From<&meridian_auth::Device> for Actor {
    fn from(device: &meridian_auth::Device) -> Self {
        Actor { id: device.id, fingerprint: device.fingerprint.clone() }
    }
}

/// A new artifact, validated.
#[derive(Debug, Clone)]
pub struct NewArtifact {
    pub artifact_type: String,
    pub platform: String,
    pub download_url: String,
    pub sha256: Option<String>,
    pub size: Option<i64>,
}
