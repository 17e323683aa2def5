//! Operator subcommands: identities, device approval, demo data.

mod common;

use diesel::prelude::*;
use discovery::SERVICE;
use discovery::cli::{self, DeviceRef};
use meridian_auth::ClientCertificate;
use meridian_model::DeviceRole;
use meridian_platform::testing::{TestDb, test_platform};

fn scratch_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("discovery-{name}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[core::prelude::v1::test]
fn identity_writes_a_p256_key_and_certificate() {
    let dir = scratch_dir("identity");
    let identity = cli::new_identity("test-device").unwrap();
    cli::write_identity(&dir, &identity).unwrap();
    let cert = std::fs::read_to_string(dir.join("identity.crt.pem")).unwrap();
    let key = std::fs::read_to_string(dir.join("identity.key.pem")).unwrap();
    let public = std::fs::read_to_string(dir.join("identity.pub.pem")).unwrap();
    assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(key.contains("PRIVATE KEY"));
    assert!(public.starts_with("-----BEGIN PUBLIC KEY-----"));
    let parsed = ClientCertificate::from_header(&cert).unwrap();
    // A P-256 SubjectPublicKeyInfo is 91 bytes.
    assert_eq!(parsed.public_key.len(), 91);
    let again = cli::new_identity("test-device").unwrap();
    assert_ne!(ClientCertificate::from_header(&again.cert_pem).unwrap(), parsed, "each identity is fresh");
    std::fs::remove_dir_all(dir).unwrap();
}

#[core::prelude::v1::test]
fn devices_are_approved_and_revoked_by_id_fingerprint_or_certificate() {
    let db = TestDb::new(&SERVICE);
    let platform = test_platform(&SERVICE, &db, &[]);
    let dir = scratch_dir("devices");
    let identity = cli::new_identity("never-connected").unwrap();
    cli::write_identity(&dir, &identity).unwrap();

    // A certificate that never connected is recorded and approved.
    let record =
        cli::set_device_role(&platform, &DeviceRef::Cert(dir.join("identity.crt.pem")), DeviceRole::Server).unwrap();
    assert_eq!(record.role(), DeviceRole::Server);
    let by_prefix =
        cli::set_device_role(&platform, &DeviceRef::Name(record.fingerprint[..12].to_owned()), DeviceRole::Admin)
            .unwrap();
    assert_eq!((by_prefix.id, by_prefix.role()), (record.id, DeviceRole::Admin));
    let revoked =
        cli::set_device_role(&platform, &DeviceRef::Name(record.id.to_string()), DeviceRole::Untrusted).unwrap();
    assert_eq!(revoked.role(), DeviceRole::Untrusted);
    assert!(cli::set_device_role(&platform, &DeviceRef::Name("deadbeefdeadbeef".into()), DeviceRole::Admin).is_err());
    assert!(cli::set_device_role(&platform, &DeviceRef::Name("abc".into()), DeviceRole::Admin).is_err());
    std::fs::remove_dir_all(dir).unwrap();
}

#[core::prelude::v1::test]
fn seed_demo_is_idempotent() {
    let db = TestDb::new(&SERVICE);
    let platform = test_platform(&SERVICE, &db, &[]);
    let dir = scratch_dir("demo");
    let first = cli::seed_demo(&platform, &dir).unwrap();
    assert!(first.contains("mtls-certificate"), "{first}");
    let cert = std::fs::read_to_string(dir.join("discovery-admin/identity.crt.pem")).unwrap();
    let second = cli::seed_demo(&platform, &dir).unwrap();
    assert!(second.contains("0 demo servers added"), "{second}");
    assert_eq!(
        std::fs::read_to_string(dir.join("discovery-admin/identity.crt.pem")).unwrap(),
        cert,
        "the identity is kept"
    );

    let mut conn = db.conn();
    let count: i64 = discovery::schema::servers::table.count().get_result(&mut conn).unwrap();
    assert_eq!(count as usize, cli::DEMO_SERVERS.len());
    let ranks: std::collections::BTreeSet<String> = discovery::schema::servers::table
        .select(discovery::schema::servers::rank)
        .load::<Option<String>>(&mut conn)
        .unwrap()
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(ranks.len(), 5, "every rank is represented");
    let fingerprint = ClientCertificate::from_header(&cert).unwrap().fingerprint;
    assert_eq!(meridian_auth::devices::find(&mut conn, &fingerprint).unwrap().role(), DeviceRole::Admin);
    let devices: i64 = meridian_auth::schema::devices::table.count().get_result(&mut conn).unwrap();
    assert_eq!(devices, 1);
    std::fs::remove_dir_all(dir).unwrap();
}
