//! Activations: patient apps (code + PIN), ward devices (code), and the authorisation codes both
//! trade for a JWT. Every secret is stored as a SHA-256 lookup key plus an argon2id hash, used once,
//! and expires; wrong PINs count against the activation and lock it.

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use meridian_auth::password;
use meridian_platform::ApiResult;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::codes;
use crate::schema::{activations, authorisation_codes, login_audit};
use crate::state::Settings;

pub const PATIENT: &str = "patient";
pub const DEVICE: &str = "device";

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = activations)]
pub struct ActivationRow {
    pub uuid: Uuid,
    pub kind: String,
    pub subject_id: String,
    pub created: DateTime<Utc>,
    pub created_by: String,
    pub expires_at: DateTime<Utc>,
    pub code_lookup: String,
    pub code_hash: String,
    pub otp_hash: Option<String>,
    pub otp_serial: i32,
    pub failed_attempts: i32,
    pub completed: Option<DateTime<Utc>>,
}

/// What a clinician hands to a patient.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"otp": "K7QX", "activation_code": "ZP4MEXH2QK9RTBV3YCW8NJ6DAGS5UF", "expires_at": "2026-12-06T09:00:00Z"}))]
pub struct PatientActivation {
    /// The one-time PIN (4 characters).
    pub otp: String,
    /// The activation code (30 characters).
    pub activation_code: String,
    pub expires_at: DateTime<Utc>,
}

/// A completed activation (no secrets).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ActivationSummary {
    pub uuid: Uuid,
    pub created: DateTime<Utc>,
    pub created_by: String,
    pub completed: Option<DateTime<Utc>>,
    pub expires_at: DateTime<Utc>,
}

/// What an administrator types into a ward device.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"code": "QX7PKM2ZHV", "expires_at": "2026-12-06T09:00:00Z"}))]
pub struct DeviceActivation {
    pub code: String,
    pub expires_at: DateTime<Utc>,
}

fn chrono_duration(d: std::time::Duration) -> ChronoDuration {
    ChronoDuration::from_std(d).unwrap_or(ChronoDuration::days(3650))
}

fn code_for(settings: &Settings, id: Uuid) -> String {
    codes::derive(&settings.code_secret, "activation-code", id, 0, codes::ACTIVATION_CODE_LENGTH)
}

fn pin_for(settings: &Settings, id: Uuid, serial: i32) -> String {
    codes::derive(&settings.code_secret, "activation-pin", id, serial, codes::PIN_LENGTH)
}

fn device_code_for(settings: &Settings, id: Uuid) -> String {
    codes::derive(&settings.code_secret, "device-code", id, 0, codes::DEVICE_CODE_LENGTH)
}

/// Creates a patient activation, or, while one is still unused, keeps its code and issues a new
/// PIN (which also clears its failure count and restarts its expiry).
pub fn create_patient(
    conn: &mut PgConnection,
    settings: &Settings,
    patient_id: &str,
    created_by: &str,
) -> ApiResult<PatientActivation> {
    let now = meridian_model::now();
    let expires_at = now + chrono_duration(settings.activation_ttl);
    conn.transaction(|conn| {
        let open: Option<ActivationRow> = activations::table
            .filter(activations::kind.eq(PATIENT))
            .filter(activations::subject_id.eq(patient_id))
            .filter(activations::completed.is_null())
            .filter(activations::expires_at.gt(now))
            .order(activations::created.desc())
            .select(ActivationRow::as_select())
            .for_update()
            .first(conn)
            .optional()?;
        if let Some(row) = open {
            let serial = row.otp_serial + 1;
            let otp = pin_for(settings, row.uuid, serial);
            diesel::update(activations::table.find(row.uuid))
                .set((
                    activations::otp_hash.eq(password::hash(&otp)),
                    activations::otp_serial.eq(serial),
                    activations::failed_attempts.eq(0),
                    activations::expires_at.eq(expires_at),
                ))
                .execute(conn)?;
            return Ok(PatientActivation { otp, activation_code: code_for(settings, row.uuid), expires_at });
        }
        let id = Uuid::new_v4();
        let code = code_for(settings, id);
        let otp = pin_for(settings, id, 0);
        let row = ActivationRow {
            uuid: id,
            kind: PATIENT.to_owned(),
            subject_id: patient_id.to_owned(),
            created: now,
            created_by: created_by.to_owned(),
            expires_at,
            code_lookup: codes::lookup(&code),
            code_hash: password::hash(&code),
            otp_hash: Some(password::hash(&otp)),
            otp_serial: 0,
            failed_attempts: 0,
            completed: None,
        };
        diesel::insert_into(activations::table).values(&row).execute(conn)?;
        Ok(PatientActivation { otp, activation_code: code, expires_at })
    })
}

/// The current code and PIN of a patient's open activation, recomputed (seed-demo prints them).
pub fn current_patient_secrets(
    conn: &mut PgConnection,
    settings: &Settings,
    patient_id: &str,
) -> ApiResult<Option<PatientActivation>> {
    let open: Option<ActivationRow> = activations::table
        .filter(activations::kind.eq(PATIENT))
        .filter(activations::subject_id.eq(patient_id))
        .filter(activations::completed.is_null())
        .filter(activations::expires_at.gt(meridian_model::now()))
        .order(activations::created.desc())
        .select(ActivationRow::as_select())
        .first(conn)
        .optional()?;
    Ok(open.map(|row| PatientActivation {
        otp: pin_for(settings, row.uuid, row.otp_serial),
        activation_code: code_for(settings, row.uuid),
        expires_at: row.expires_at,
    }))
}

pub fn completed_for_patient(conn: &mut PgConnection, patient_id: &str) -> ApiResult<Vec<ActivationSummary>> {
    let rows: Vec<ActivationRow> = activations::table
        .filter(activations::kind.eq(PATIENT))
        .filter(activations::subject_id.eq(patient_id))
        .filter(activations::completed.is_not_null())
        .order(activations::created.desc())
        .select(ActivationRow::as_select())
        .limit(meridian_model::MAX_PAGE_SIZE)
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|r| ActivationSummary {
            uuid: r.uuid,
            created: r.created,
            created_by: r.created_by,
            completed: r.completed,
            expires_at: r.expires_at,
        })
        .collect())
}

/// A new activation for a device; any older unused one stops working.
pub fn create_device(
    conn: &mut PgConnection,
    settings: &Settings,
    device_id: Uuid,
    created_by: &str,
) -> ApiResult<DeviceActivation> {
    let now = meridian_model::now();
    let expires_at = now + chrono_duration(settings.activation_ttl);
    conn.transaction(|conn| {
        diesel::update(
            activations::table
                .filter(activations::kind.eq(DEVICE))
                .filter(activations::subject_id.eq(device_id.to_string()))
                .filter(activations::completed.is_null())
                .filter(activations::expires_at.gt(now)),
        )
        .set(activations::expires_at.eq(now))
        .execute(conn)?;
        let id = Uuid::new_v4();
        let code = device_code_for(settings, id);
        let row = ActivationRow {
            uuid: id,
            kind: DEVICE.to_owned(),
            subject_id: device_id.to_string(),
            created: now,
            created_by: created_by.to_owned(),
            expires_at,
            code_lookup: codes::lookup(&code),
            code_hash: password::hash(&code),
            otp_hash: None,
            otp_serial: 0,
            failed_attempts: 0,
            completed: None,
        };
        diesel::insert_into(activations::table).values(&row).execute(conn)?;
        Ok(DeviceActivation { code, expires_at })
    })
}

/// The outcome of presenting an activation code (and PIN).
#[derive(Debug)]
pub enum Attempt {
    /// The code and PIN were right: a fresh authorisation code for the subject.
    Accepted { kind: String, subject_id: String, authorisation_code: String },
    /// No usable activation with this code (unknown, expired, used, or of the other kind).
    Unknown,
    /// The PIN was wrong; the attempt was counted.
    WrongPin { subject_id: String },
    /// Too many wrong PINs.
    Locked { subject_id: String },
    /// The activation exists but its subject may not log in (an inactive device).
    Refused { subject_id: String, reason: &'static str },
}

/// Presents an activation code of `kind` with `otp` (patients only). Counts failures, marks the
/// activation used and issues an authorisation code, in one transaction that always commits.
pub fn attempt(
    conn: &mut PgConnection,
    settings: &Settings,
    kind: &str,
    code: &str,
    otp: Option<&str>,
    device_active: impl FnOnce(&mut PgConnection, &str) -> ApiResult<bool>,
) -> ApiResult<Attempt> {
    let now = meridian_model::now();
    conn.transaction(|conn| {
        let row: Option<ActivationRow> = activations::table
            .filter(activations::code_lookup.eq(codes::lookup(code)))
            .select(ActivationRow::as_select())
            .for_update()
            .first(conn)
            .optional()?;
        let Some(row) = row else {
            password::verify_dummy(code);
            return Ok(Attempt::Unknown);
        };
        if row.kind != kind
            || row.completed.is_some()
            || row.expires_at <= now
            || !password::verify(&codes::normalise(code), &row.code_hash)
        {
            return Ok(Attempt::Unknown);
        }
        if row.failed_attempts >= settings.max_pin_failures {
            return Ok(Attempt::Locked { subject_id: row.subject_id });
        }
        if kind == PATIENT {
            let right = match (otp, &row.otp_hash) {
                (Some(otp), Some(stored)) => password::verify(&codes::normalise(otp), stored),
                _ => false,
            };
            if !right {
                diesel::update(activations::table.find(row.uuid))
                    .set(activations::failed_attempts.eq(activations::failed_attempts + 1))
                    .execute(conn)?;
                return Ok(Attempt::WrongPin { subject_id: row.subject_id });
            }
        } else if !device_active(conn, &row.subject_id)? {
            return Ok(Attempt::Refused { subject_id: row.subject_id, reason: "the device is not active" });
        }
        diesel::update(activations::table.find(row.uuid)).set(activations::completed.eq(now)).execute(conn)?;
        let authorisation_code = codes::random(codes::AUTHORISATION_CODE_LENGTH);
        diesel::insert_into(authorisation_codes::table)
            .values((
                authorisation_codes::uuid.eq(Uuid::new_v4()),
                authorisation_codes::activation_id.eq(row.uuid),
                authorisation_codes::kind.eq(&row.kind),
                authorisation_codes::subject_id.eq(&row.subject_id),
                authorisation_codes::created.eq(now),
                authorisation_codes::expires_at.eq(now + chrono_duration(settings.authorisation_code_ttl)),
                authorisation_codes::code_lookup.eq(codes::lookup(&authorisation_code)),
                authorisation_codes::code_hash.eq(password::hash(&authorisation_code)),
            ))
            .execute(conn)?;
        Ok(Attempt::Accepted { kind: row.kind, subject_id: row.subject_id, authorisation_code })
    })
}

type CodeRow = (Uuid, String, String, DateTime<Utc>, Option<DateTime<Utc>>, String);

/// Spends an authorisation code issued for `subject_id` of `kind`; whether it was good.
pub fn redeem_authorisation_code(conn: &mut PgConnection, kind: &str, subject_id: &str, code: &str) -> ApiResult<bool> {
    let now = meridian_model::now();
    conn.transaction(|conn| {
        let row: Option<CodeRow> = authorisation_codes::table
            .filter(authorisation_codes::code_lookup.eq(codes::lookup(code)))
            .select((
                authorisation_codes::uuid,
                authorisation_codes::kind,
                authorisation_codes::subject_id,
                authorisation_codes::expires_at,
                authorisation_codes::used,
                authorisation_codes::code_hash,
            ))
            .for_update()
            .first(conn)
            .optional()?;
        let Some((id, row_kind, row_subject, expires_at, used, hash)) = row else {
            password::verify_dummy(code);
            return Ok(false);
        };
        let subject_matches: bool = subtle::ConstantTimeEq::ct_eq(row_subject.as_bytes(), subject_id.as_bytes()).into();
        if row_kind != kind
            || !subject_matches
            || used.is_some()
            || expires_at <= now
            || !password::verify(&codes::normalise(code), &hash)
        {
            return Ok(false);
        }
        diesel::update(authorisation_codes::table.find(id)).set(authorisation_codes::used.eq(now)).execute(conn)?;
        Ok(true)
    })
}

/// Records a login attempt.
pub fn audit(
    conn: &mut PgConnection,
    kind: &str,
    subject_id: Option<&str>,
    success: bool,
    reason: &str,
    client_ip: Option<String>,
) -> ApiResult<()> {
    diesel::insert_into(login_audit::table)
        .values((
            login_audit::kind.eq(kind),
            login_audit::subject_id.eq(subject_id),
            login_audit::success.eq(success),
            login_audit::reason.eq(reason),
            login_audit::client_ip.eq(client_ip),
        ))
        .execute(conn)?;
    Ok(())
}

/// The code of a device's open activation, recomputed (seed-demo prints it).
pub fn current_device_code(
    conn: &mut PgConnection,
    settings: &Settings,
    device_id: Uuid,
) -> ApiResult<Option<DeviceActivation>> {
    let open: Option<ActivationRow> = activations::table
        .filter(activations::kind.eq(DEVICE))
        .filter(activations::subject_id.eq(device_id.to_string()))
        .filter(activations::completed.is_null())
        .filter(activations::expires_at.gt(meridian_model::now()))
        .order(activations::created.desc())
        .select(ActivationRow::as_select())
        .first(conn)
        .optional()?;
    Ok(open.map(|row| DeviceActivation { code: device_code_for(settings, row.uuid), expires_at: row.expires_at }))
}
