//! Reads and writes in the `versions` schema. Every write bumps the catalogue generation in the
//! same transaction, so every replica can tell its snapshot is stale.

use chrono::Utc;
use diesel::prelude::*;
use meridian_platform::{ApiError, ApiResult};
use semver::Version;
use uuid::Uuid;

use crate::model::{Actor, Artifact, NewArtifact, VersionRow};
use crate::schema::{artifacts, catalogue_state, versions};

/// The largest changelog accepted, in bytes.
pub const MAX_CHANGELOG_BYTES: usize = 1024 * 1024;

fn bump_generation(conn: &mut PgConnection) -> ApiResult<i64> {
    Ok(diesel::update(catalogue_state::table)
        .set(catalogue_state::generation.eq(catalogue_state::generation + 1))
        .returning(catalogue_state::generation)
        .get_result(conn)?)
}

/// The current generation (cheap: one row).
pub fn generation(conn: &mut PgConnection) -> ApiResult<i64> {
    Ok(catalogue_state::table.select(catalogue_state::generation).first(conn)?)
}

fn columns(version: &Version) -> (i32, i32, i32, String) {
    // parse_version has checked that each number fits.
    (version.major as i32, version.minor as i32, version.patch as i32, version.pre.as_str().to_owned())
}

fn find_id(conn: &mut PgConnection, version: &Version) -> ApiResult<Uuid> {
    let (major, minor, patch, pre) = columns(version);
    versions::table
        .filter(versions::major.eq(major))
        .filter(versions::minor.eq(minor))
        .filter(versions::patch.eq(patch))
        .filter(versions::pre_release.eq(pre))
        .select(versions::id)
        .first(conn)
        .optional()?
        .ok_or_else(|| ApiError::not_found(format!("no version {version}")))
}

/// Publishes `version` with `changelog` (stored as given). 409 when it exists, withdrawn or not.
pub fn publish(conn: &mut PgConnection, version: &Version, changelog: String, actor: &Actor) -> ApiResult<VersionRow> {
    if changelog.len() > MAX_CHANGELOG_BYTES {
        return Err(ApiError::payload_too_large(format!("a changelog is at most {MAX_CHANGELOG_BYTES} bytes")));
    }
    let (major, minor, patch, pre) = columns(version);
    conn.transaction(|conn| {
        let row = diesel::insert_into(versions::table)
            .values((
                versions::major.eq(major),
                versions::minor.eq(minor),
                versions::patch.eq(patch),
                versions::pre_release.eq(pre),
                versions::changelog.eq(changelog),
                versions::created_by.eq(actor.id),
                versions::created_by_fingerprint.eq(&actor.fingerprint),
            ))
            .on_conflict_do_nothing()
            .returning(VersionRow::as_returning())
            .get_result(conn)
            .optional()?
            .ok_or_else(|| {
                ApiError::conflict(format!("version {version} already exists")).with_code("VersionExists")
            })?;
        bump_generation(conn)?;
        log::info!("version {version} published by device {} ({})", actor.id, actor.fingerprint);
        Ok(row)
    })
}

/// Withdraws `version`: it stays in the table, unpublished. Withdrawing it again changes nothing.
pub fn withdraw(conn: &mut PgConnection, version: &Version, actor: &Actor) -> ApiResult<VersionRow> {
    conn.transaction(|conn| {
        let id = find_id(conn, version)?;
        let changed = diesel::update(versions::table.find(id).filter(versions::published.eq(true)))
            .set((
                versions::published.eq(false),
                versions::withdrawn_at.eq(Utc::now()),
                versions::withdrawn_by.eq(actor.id),
                versions::withdrawn_by_fingerprint.eq(&actor.fingerprint),
            ))
            .execute(conn)?;
        if changed > 0 {
            bump_generation(conn)?;
            log::info!("version {version} withdrawn by device {} ({})", actor.id, actor.fingerprint);
        }
        Ok(versions::table.find(id).select(VersionRow::as_select()).first(conn)?)
    })
}

/// Adds an artifact to `version`. 404 for an unknown version, 409 when the version already has an
/// artifact of that type for that platform.
pub fn add_artifact(
    conn: &mut PgConnection,
    version: &Version,
    artifact: NewArtifact,
    actor: &Actor,
) -> ApiResult<Artifact> {
    conn.transaction(|conn| {
        let version_id = find_id(conn, version)?;
        let (kind, platform) = (artifact.artifact_type.clone(), artifact.platform.clone());
        let row = diesel::insert_into(artifacts::table)
            .values((
                artifacts::version_id.eq(version_id),
                artifacts::artifact_type.eq(artifact.artifact_type),
                artifacts::platform.eq(artifact.platform),
                artifacts::download_url.eq(artifact.download_url),
                artifacts::sha256.eq(artifact.sha256),
                artifacts::size.eq(artifact.size),
                artifacts::created_by.eq(actor.id),
                artifacts::created_by_fingerprint.eq(&actor.fingerprint),
            ))
            .on_conflict_do_nothing()
            .returning(Artifact::as_returning())
            .get_result(conn)
            .optional()?
            .ok_or_else(|| {
                ApiError::conflict(format!("version {version} already has a {kind} artifact for {platform}"))
                    .with_code("ArtifactExists")
            })?;
        bump_generation(conn)?;
        log::info!("artifact {kind}/{platform} of {version} added by device {} ({})", actor.id, actor.fingerprint);
        Ok(row)
    })
}

/// Everything the snapshot holds, read consistently (one repeatable-read transaction).
pub fn load(conn: &mut PgConnection) -> ApiResult<(i64, Vec<VersionRow>, Vec<Artifact>)> {
    conn.build_transaction().repeatable_read().read_only().run(|conn| {
        let generation = generation(conn)?;
        let rows = versions::table.select(VersionRow::as_select()).load(conn)?;
        let artifacts = artifacts::table
            .order((artifacts::artifact_type, artifacts::platform))
            .select(Artifact::as_select())
            .load(conn)?;
        Ok((generation, rows, artifacts))
    })
}
