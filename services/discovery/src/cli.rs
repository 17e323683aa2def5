//! Operator subcommands: client identities, device approval, demo data.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use meridian_auth::ClientCertificate;
use meridian_auth::devices::{self, DeviceRecord};
use meridian_model::DeviceRole;
use meridian_platform::{ApiError, ApiResult, Platform};

use crate::model::{Kind, Rank};
use crate::servers::{self, NewServer};

/// The files `identity` writes.
pub struct Identity {
    pub cert_pem: String,
    pub key_pem: String,
    pub public_pem: String,
}

/// A fresh P-256 key and a self-signed certificate for it.
pub fn new_identity(common_name: &str) -> Result<Identity, rcgen::Error> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(rcgen::DnType::CommonName, common_name);
    let cert = params.self_signed(&key)?;
    Ok(Identity { cert_pem: cert.pem(), key_pem: key.serialize_pem(), public_pem: key.public_key_pem() })
}

/// Writes `identity.crt.pem`, `identity.key.pem` (mode 0600) and `identity.pub.pem` into `dir`.
pub fn write_identity(dir: &Path, identity: &Identity) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("identity.crt.pem"), &identity.cert_pem)?;
    let key_path = dir.join("identity.key.pem");
    std::fs::write(&key_path, &identity.key_pem)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600))?;
    }
    std::fs::write(dir.join("identity.pub.pem"), &identity.public_pem)?;
    Ok(())
}

/// `discovery identity [--out DIR]`.
pub fn identity(out: &Path) -> ExitCode {
    let result = new_identity("meridian-device")
        .map_err(|e| e.to_string())
        .and_then(|identity| write_identity(out, &identity).map(|()| identity).map_err(|e| e.to_string()));
    match result {
        Ok(identity) => {
            let fingerprint =
                ClientCertificate::from_header(&identity.cert_pem).map(|c| c.fingerprint).unwrap_or_default();
            println!("wrote {0}/identity.crt.pem, {0}/identity.key.pem, {0}/identity.pub.pem", out.display());
            println!("key fingerprint: {fingerprint}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("discovery identity: {err}");
            ExitCode::FAILURE
        }
    }
}

/// How a device is named on the command line.
#[derive(Debug, Clone)]
pub enum DeviceRef {
    /// An id or a fingerprint (prefix).
    Name(String),
    /// A certificate file: the device holding its key (recorded if it never connected).
    Cert(PathBuf),
}

fn resolve(conn: &mut diesel::PgConnection, reference: &DeviceRef) -> ApiResult<DeviceRecord> {
    match reference {
        DeviceRef::Name(name) => devices::find(conn, name),
        DeviceRef::Cert(path) => {
            let pem =
                std::fs::read_to_string(path).map_err(|e| ApiError::bad_request(format!("{}: {e}", path.display())))?;
            devices::find_or_record(conn, &ClientCertificate::from_header(&pem)?)
        }
    }
}

/// Sets a device's role; returns the updated record.
pub fn set_device_role(platform: &Platform, reference: &DeviceRef, role: DeviceRole) -> ApiResult<DeviceRecord> {
    let mut conn = platform.db.pool().get()?;
    let record = resolve(&mut conn, reference)?;
    devices::set_role(&mut conn, record.id, role)
}

fn report(result: ApiResult<String>) -> ExitCode {
    match result {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("discovery: {}", err.detail);
            ExitCode::FAILURE
        }
    }
}

pub fn devices_list(platform: &Platform) -> ExitCode {
    report((|| {
        let mut conn = platform.db.pool().get()?;
        let list = devices::list(&mut conn, 1)?;
        let mut text =
            format!("{:<36}  {:<9}  {:<16}  {:<20}  {:<20}", "id", "role", "fingerprint", "first seen", "last seen");
        for d in list {
            let _ = write!(
                text,
                "\n{:<36}  {:<9}  {:<16}  {:<20}  {:<20}",
                d.id,
                d.role.as_str(),
                &d.fingerprint[..16],
                d.created_at.format("%Y-%m-%d %H:%M:%S"),
                d.last_seen_at.format("%Y-%m-%d %H:%M:%S")
            );
        }
        Ok(text)
    })())
}

pub fn devices_approve(platform: &Platform, reference: &DeviceRef, role: DeviceRole) -> ExitCode {
    report(
        set_device_role(platform, reference, role)
            .map(|d| format!("device {} ({}) is now {}", d.id, d.fingerprint, d.role)),
    )
}

pub fn devices_revoke(platform: &Platform, reference: &DeviceRef) -> ExitCode {
    report(
        set_device_role(platform, reference, DeviceRole::Untrusted)
            .map(|d| format!("device {} ({}) is revoked (untrusted)", d.id, d.fingerprint)),
    )
}

/// The demo servers: a few of each rank, polled (no owning device).
pub const DEMO_SERVERS: &[(&str, &str, Rank)] = &[
    ("Demo Production A", "https://central-a.demo.meridian.invalid", Rank::Production),
    ("Demo Production B", "https://central-b.demo.meridian.invalid", Rank::Production),
    ("Demo Clone", "https://clone.demo.meridian.invalid", Rank::Clone),
    ("Demo Showcase", "https://showcase.demo.meridian.invalid", Rank::Demo),
    ("Demo Test", "https://test.demo.meridian.invalid", Rank::Test),
    ("Demo Dev", "https://dev.demo.meridian.invalid", Rank::Dev),
];

/// Idempotent: migrates, inserts missing demo servers, makes (once) and approves an admin identity
/// under `dir/discovery-admin/`. Returns what to print.
pub fn seed_demo(platform: &Platform, dir: &Path) -> Result<String, String> {
    let dir = &dir.join("discovery-admin");
    platform.migrate().map_err(|e| e.to_string())?;
    let mut conn = platform.db.pool().get().map_err(|e| e.to_string())?;
    let mut created = 0;
    for (name, host, rank) in DEMO_SERVERS {
        let input = NewServer {
            name: Some((*name).to_owned()),
            host: (*host).to_owned(),
            kind: Kind::Central,
            rank: Some(*rank),
            listed: Some(true),
            device_id: None,
        };
        match servers::create(&mut conn, input, None) {
            Ok(_) => created += 1,
            Err(err) if err.status == 409 => {}
            Err(err) => return Err(err.detail),
        }
    }
    let cert_path = dir.join("identity.crt.pem");
    if !cert_path.is_file() {
        let identity = new_identity("meridian-demo-admin").map_err(|e| e.to_string())?;
        write_identity(dir, &identity).map_err(|e| e.to_string())?;
    }
    let device =
        set_device_role(platform, &DeviceRef::Cert(cert_path.clone()), DeviceRole::Admin).map_err(|e| e.detail)?;
    let port = platform.config.bind.port();
    Ok(format!(
        "discovery demo: {created} demo servers added ({} in all); admin device {} ({})\n\
         With TRUST_CERT_HEADER=true the certificate works from curl:\n  \
         curl -H \"mtls-certificate: $(tr '\\n' ' ' < {cert})\" http://127.0.0.1:{port}/devices\n  \
         curl http://127.0.0.1:{port}/servers\n  open http://127.0.0.1:{port}/status",
        DEMO_SERVERS.len(),
        device.id,
        &device.fingerprint[..16],
        cert = cert_path.display(),
    ))
}

/// `seed-bench`: `count` listed central servers across the ranks (idempotent); returns how many
/// were added.
pub fn seed_bench(platform: &Platform, count: usize) -> Result<usize, String> {
    platform.migrate().map_err(|e| e.to_string())?;
    let mut conn = platform.db.pool().get().map_err(|e| e.to_string())?;
    let mut added = 0;
    for n in 1..=count {
        let input = NewServer {
            name: Some(format!("Bench server {n:04}")),
            host: format!("https://bench-{n:04}.bench.meridian.invalid"),
            kind: Kind::Central,
            rank: Some(Rank::ALL[n % Rank::ALL.len()]),
            listed: Some(true),
            device_id: None,
        };
        match servers::create(&mut conn, input, None) {
            Ok(_) => added += 1,
            Err(err) if err.status == 409 => {}
            Err(err) => return Err(err.detail),
        }
    }
    Ok(added)
}
