//! `seed-demo` (what `make run` shows) and `seed-bench` (the benchmark data set). Both apply the
//! migrations first and are idempotent: running them twice changes nothing.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use diesel::prelude::*;
use meridian_auth::{ClientCertificate, devices};
use meridian_model::DeviceRole;
use meridian_platform::{ApiError, ApiResult, Platform};
use uuid::Uuid;

use crate::model::{Actor, NewArtifact};
use crate::rules::parse_version;
use crate::schema::{artifacts, catalogue_state, versions};
use crate::store;

#[derive(Debug, Clone, clap::Args)]
pub struct SeedDemoArgs {
    /// Where the demo releaser's key and certificate are written (kept when already there).
    #[arg(long, default_value = ".data/demo")]
    pub out: PathBuf,
}

#[derive(Debug, Clone, clap::Args)]
pub struct SeedBenchArgs {
    /// How many versions.
    #[arg(long, default_value_t = 500)]
    pub versions: usize,
    /// Artifacts per version (at most 10).
    #[arg(long, default_value_t = 10)]
    pub artifacts_per_version: usize,
}

const DEMO_VERSIONS: &[(&str, &str, bool)] = &[
    ("1.9.4", "## Fixes\r\n\r\n- Sync no longer stalls on large patient records.\r\n", true),
    (
        "2.1.0",
        "## Highlights\n\n- New **vaccination** schedule screen\n- Faster start-up on older tablets\n\n## Fixes\n\n- Lab requests keep their notes  \n- Dates show in the facility's time zone\n",
        true,
    ),
    ("2.1.1", "- Fixed a crash when scanning a QR code on Android 9\n- Translations: Tok Pisin, Bislama\n", true),
    (
        "2.2.0",
        "## Reports\n\n| Report | Change |\n|---|---|\n| Weekly outbreak | adds age bands |\n| Stock | new |\n\nNote: `<b>` tags in a changelog are shown as text.\n",
        true,
    ),
    ("2.2.1", "- Withdrawn: the stock report double-counted returns.\n", false),
    (
        "2.3.0",
        "## Highlights\n\n- Offline-first referrals\n- Ünïcödé everywhere: ✓ ✗ → ☺\n\nSee the [release notes](https://example.org/tamanu/2.3.0).\n",
        true,
    ),
    ("2.4.0-rc.1", "Release candidate: appointment reminders by SMS.\n", true),
];

const DEMO_ARTIFACTS: &[(&str, &str)] = &[
    ("desktop", "windows"),
    ("desktop", "macos"),
    ("mobile", "android"),
    ("mobile", "ios"),
    ("server", "linux-x86_64"),
];

const BENCH_ARTIFACTS: &[(&str, &str)] = &[
    ("central", "linux-aarch64"),
    ("central", "linux-x86_64"),
    ("desktop", "linux"),
    ("desktop", "macos"),
    ("desktop", "windows"),
    ("facility", "linux-x86_64"),
    ("facility", "windows"),
    ("mobile", "android"),
    ("mobile", "ios"),
    ("server", "windows"),
];

fn fail(what: &str, err: impl std::fmt::Display) -> ExitCode {
    eprintln!("versions: {what}: {err}");
    ExitCode::FAILURE
}

/// The demo releaser's certificate: read from `dir`, or made there.
fn releaser_identity(dir: &Path) -> std::io::Result<(PathBuf, PathBuf, String)> {
    let key_path = dir.join("versions-releaser.key.pem");
    let cert_path = dir.join("versions-releaser.crt.pem");
    if !(key_path.exists() && cert_path.exists()) {
        std::fs::create_dir_all(dir)?;
        let key = rcgen::KeyPair::generate().map_err(std::io::Error::other)?;
        let cert = rcgen::CertificateParams::new(vec!["versions-releaser.demo".to_owned()])
            .and_then(|params| params.self_signed(&key))
            .map_err(std::io::Error::other)?;
        write_private(&key_path, &key.serialize_pem())?;
        std::fs::write(&cert_path, cert.pem())?;
    }
    let pem = std::fs::read_to_string(&cert_path)?;
    Ok((key_path, cert_path, pem))
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    std::fs::write(path, contents)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

/// Publishes `version` unless it exists; returns whether it did.
fn ensure_version(conn: &mut PgConnection, text: &str, changelog: &str, actor: &Actor) -> ApiResult<bool> {
    let version = parse_version(text)?;
    match store::publish(conn, &version, changelog.to_owned(), actor) {
        Ok(_) => Ok(true),
        Err(err) if err.status == 409 => Ok(false),
        Err(err) => Err(err),
    }
}

pub fn seed_demo_data(conn: &mut PgConnection, actor: &Actor) -> ApiResult<usize> {
    let mut added = 0;
    for (text, changelog, published) in DEMO_VERSIONS {
        let version = parse_version(text)?;
        added += usize::from(ensure_version(conn, text, changelog, actor)?);
        if !published {
            store::withdraw(conn, &version, actor)?;
        }
        for (kind, platform) in DEMO_ARTIFACTS {
            let extension = match *platform {
                "windows" => "msi",
                "macos" => "dmg",
                "android" => "apk",
                "ios" => "ipa",
                _ => "tar.zst",
            };
            let artifact = NewArtifact {
                artifact_type: (*kind).to_owned(),
                platform: (*platform).to_owned(),
                download_url: format!("https://downloads.example.org/tamanu/{text}/tamanu-{kind}-{text}.{extension}"),
                sha256: None,
                size: Some(40_000_000 + (text.len() * 1_000_003) as i64),
            };
            match store::add_artifact(conn, &version, artifact, actor) {
                Ok(_) => added += 1,
                Err(err) if err.status == 409 => {}
                Err(err) => return Err(err),
            }
        }
    }
    Ok(added)
}

pub fn seed_demo(platform: &Platform, args: &SeedDemoArgs) -> ExitCode {
    if let Err(err) = platform.migrate() {
        return fail("migrations", err);
    }
    let (key_path, cert_path, pem) = match releaser_identity(&args.out) {
        Ok(found) => found,
        Err(err) => return fail("the demo releaser identity", err),
    };
    let result = (|| -> ApiResult<(Actor, usize)> {
        let mut conn = platform.db.pool().get()?;
        let cert = ClientCertificate::from_header(&pem)?;
        let device = devices::find_or_record(&mut conn, &cert)?;
        let device = if device.role() == DeviceRole::Releaser {
            device
        } else {
            devices::set_role(&mut conn, device.id, DeviceRole::Releaser)?
        };
        let actor = Actor { id: device.id, fingerprint: device.fingerprint };
        let added = seed_demo_data(&mut conn, &actor)?;
        Ok((actor, added))
    })();
    let (actor, added) = match result {
        Ok(done) => done,
        Err(err) => return fail("seeding the demo data", err),
    };
    let url = format!("http://{}", platform.config.bind);
    println!(
        "versions demo: {added} rows added ({} versions, {} artifacts each)",
        DEMO_VERSIONS.len(),
        DEMO_ARTIFACTS.len()
    );
    println!("  page:          {url}/");
    println!("  list:          curl {url}/versions");
    println!("  updates:       curl {url}/versions/update-for/2.1.0");
    println!("  mobile (QR):   {url}/versions/2.3/mobile");
    println!("  releaser:      device {} (key {})", actor.id, actor.fingerprint);
    println!("    certificate  {}", cert_path.display());
    println!("    key          {}", key_path.display());
    println!("  publish (needs TRUST_CERT_HEADER=true, as make run sets):");
    println!(
        "    curl -X POST --data-binary 'Notes' -H \"mtls-certificate: $(jq -sRr @uri {})\" {url}/versions/2.5.0",
        cert_path.display()
    );
    ExitCode::SUCCESS
}

pub fn seed_bench_data(conn: &mut PgConnection, count: usize, per_version: usize) -> ApiResult<usize> {
    let bench = Uuid::nil();
    let per_version = per_version.min(BENCH_ARTIFACTS.len());
    conn.transaction(|conn| {
        let rows: Vec<_> = (0..count)
            .map(|i| {
                let (major, minor, patch) = (1 + (i / 100) as i32, ((i % 100) / 5) as i32, (i % 5) as i32);
                (
                    versions::major.eq(major),
                    versions::minor.eq(minor),
                    versions::patch.eq(patch),
                    versions::changelog.eq(format!("- Release {major}.{minor}.{patch}\n- Fixes and improvements\n")),
                    versions::created_by.eq(bench),
                    versions::created_by_fingerprint.eq("seed-bench"),
                )
            })
            .collect();
        let mut added = 0;
        for chunk in rows.chunks(1000) {
            added += diesel::insert_into(versions::table).values(chunk).on_conflict_do_nothing().execute(conn)?;
        }
        let all: Vec<(Uuid, i32, i32, i32)> = versions::table
            .filter(versions::created_by.eq(bench))
            .select((versions::id, versions::major, versions::minor, versions::patch))
            .load(conn)?;
        let artifact_rows: Vec<_> = all
            .iter()
            .flat_map(|(id, major, minor, patch)| {
                BENCH_ARTIFACTS[..per_version].iter().map(move |(kind, platform)| {
                    (
                        artifacts::version_id.eq(*id),
                        artifacts::artifact_type.eq(*kind),
                        artifacts::platform.eq(*platform),
                        artifacts::download_url.eq(format!(
                            "https://downloads.example.org/bench/{major}.{minor}.{patch}/{kind}-{platform}"
                        )),
                        artifacts::created_by.eq(bench),
                        artifacts::created_by_fingerprint.eq("seed-bench"),
                    )
                })
            })
            .collect();
        for chunk in artifact_rows.chunks(1000) {
            added += diesel::insert_into(artifacts::table).values(chunk).on_conflict_do_nothing().execute(conn)?;
        }
        if added > 0 {
            diesel::update(catalogue_state::table)
                .set(catalogue_state::generation.eq(catalogue_state::generation + 1))
                .execute(conn)?;
        }
        Ok::<_, ApiError>(added)
    })
}

pub fn seed_bench(platform: &Platform, args: &SeedBenchArgs) -> ExitCode {
    if let Err(err) = platform.migrate() {
        return fail("migrations", err);
    }
    let result = platform
        .db
        .pool()
        .get()
        .map_err(ApiError::from)
        .and_then(|mut conn| seed_bench_data(&mut conn, args.versions, args.artifacts_per_version));
    match result {
        Ok(added) => {
            println!("versions bench data: {added} rows added");
            ExitCode::SUCCESS
        }
        Err(err) => fail("seeding the bench data", err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_versions_parse_and_seed_bench_versions_are_distinct() {
        for (text, _, _) in DEMO_VERSIONS {
            parse_version(text).unwrap();
        }
        let triples: std::collections::HashSet<_> = (0..500).map(|i| (1 + i / 100, (i % 100) / 5, i % 5)).collect();
        assert_eq!(triples.len(), 500);
    }
}
