//! Devices in the `auth` schema: recognised by public key, promoted by an administrator.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use meridian_model::DeviceRole;
use meridian_platform::{ApiError, ApiResult};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::cert::ClientCertificate;
use crate::schema::{device_connections, devices};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = devices)]
pub struct DeviceRecord {
    pub id: Uuid,
    pub fingerprint: String,
    pub role: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

impl DeviceRecord {
    pub fn role(&self) -> DeviceRole {
        // The CHECK constraint keeps the column to known roles.
        self.role.parse().unwrap_or(DeviceRole::Untrusted)
    }
}

/// A recorded connection, for administrators.
#[derive(Debug, Clone, Serialize, Queryable, Selectable, ToSchema)]
#[diesel(table_name = device_connections)]
pub struct DeviceConnection {
    pub created_at: DateTime<Utc>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// A device as administrators see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeviceView {
    pub id: Uuid,
    pub role: DeviceRole,
    /// SHA-256 of the public key (SubjectPublicKeyInfo), hex.
    pub fingerprint: String,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub recent_connections: Vec<DeviceConnection>,
}

/// Finds (or records, as untrusted) the device holding `cert`'s key, and records this connection.
pub fn authenticate(
    conn: &mut PgConnection,
    cert: &ClientCertificate,
    ip: Option<String>,
    user_agent: Option<String>,
) -> ApiResult<DeviceRecord> {
    conn.transaction(|conn| {
        let now = Utc::now();
        let record: DeviceRecord = diesel::insert_into(devices::table)
            .values((devices::key_data.eq(&cert.public_key), devices::fingerprint.eq(&cert.fingerprint)))
            .on_conflict(devices::key_data)
            .do_update()
            .set(devices::last_seen_at.eq(now))
            .returning(DeviceRecord::as_returning())
            .get_result(conn)?;
        diesel::insert_into(device_connections::table)
            .values((
                device_connections::device_id.eq(record.id),
                device_connections::ip.eq(ip),
                device_connections::user_agent.eq(user_agent),
            ))
            .execute(conn)?;
        Ok(record)
    })
}

/// A device named by id or by key fingerprint (a prefix of at least 8 hex digits will do when it
/// is unambiguous).
pub fn find(conn: &mut PgConnection, reference: &str) -> ApiResult<DeviceRecord> {
    let reference = reference.trim().to_ascii_lowercase();
    if let Ok(id) = reference.parse::<Uuid>() {
        return devices::table
            .find(id)
            .select(DeviceRecord::as_select())
            .first(conn)
            .map_err(|_| no_such_device(&reference));
    }
    if reference.len() < 8 || !reference.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::invalid_field(
            "device",
            "give a device id or at least 8 hex digits of its key fingerprint",
        ));
    }
    let mut found: Vec<DeviceRecord> = devices::table
        .filter(devices::fingerprint.like(format!("{reference}%")))
        .select(DeviceRecord::as_select())
        .limit(2)
        .load(conn)?;
    match found.len() {
        0 => Err(no_such_device(&reference)),
        1 => Ok(found.remove(0)),
        _ => {
            Err(ApiError::conflict(format!("fingerprint prefix {reference} matches several devices; give more digits")))
        }
    }
}

fn no_such_device(reference: &str) -> ApiError {
    ApiError::not_found(format!("no device {reference}"))
}

/// The device holding `cert`'s key, recording it as untrusted when it is new (for the CLI's
/// `--cert`: approve a device before it has ever connected).
pub fn find_or_record(conn: &mut PgConnection, cert: &ClientCertificate) -> ApiResult<DeviceRecord> {
    diesel::insert_into(devices::table)
        .values((devices::key_data.eq(&cert.public_key), devices::fingerprint.eq(&cert.fingerprint)))
        .on_conflict(devices::key_data)
        .do_update()
        .set(devices::updated_at.eq(devices::updated_at))
        .returning(DeviceRecord::as_returning())
        .get_result(conn)
        .map_err(Into::into)
}

pub fn set_role(conn: &mut PgConnection, id: Uuid, role: DeviceRole) -> ApiResult<DeviceRecord> {
    let record = diesel::update(devices::table.find(id))
        .set((devices::role.eq(role.as_str()), devices::updated_at.eq(Utc::now())))
        .returning(DeviceRecord::as_returning())
        .get_result(conn)
        .optional()?
        .ok_or_else(|| no_such_device(&id.to_string()))?;
    log::info!("device {id} ({}) now has role {role}", record.fingerprint);
    Ok(record)
}

/// A device as administrators see it, with its `connections` most recent connections.
pub fn view(conn: &mut PgConnection, record: DeviceRecord, connections: i64) -> ApiResult<DeviceView> {
    let recent_connections = device_connections::table
        .filter(device_connections::device_id.eq(record.id))
        .order(device_connections::created_at.desc())
        .limit(connections)
        .select(DeviceConnection::as_select())
        .load(conn)?;
    Ok(DeviceView {
        id: record.id,
        role: record.role(),
        fingerprint: record.fingerprint,
        created_at: record.created_at,
        last_seen_at: record.last_seen_at,
        recent_connections,
    })
}

/// Every device with its most recent connections, newest first.
pub fn list(conn: &mut PgConnection, connections_per_device: i64) -> ApiResult<Vec<DeviceView>> {
    let records: Vec<DeviceRecord> =
        devices::table.order(devices::last_seen_at.desc()).select(DeviceRecord::as_select()).load(conn)?;
    records.into_iter().map(|record| view(conn, record, connections_per_device)).collect()
}

/// Removes devices still untrusted `age` after they first connected; returns how many.
pub fn prune_untrusted(conn: &mut PgConnection, age: chrono::Duration) -> ApiResult<usize> {
    let cutoff = Utc::now() - age;
    Ok(diesel::delete(devices::table.filter(devices::role.eq("untrusted")).filter(devices::created_at.lt(cutoff)))
        .execute(conn)?)
}
