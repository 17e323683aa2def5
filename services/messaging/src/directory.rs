//! Ward devices and the clinicians who may log in through them.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use meridian_platform::{ApiError, ApiResult};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::schema::{clinicians, devices};

#[derive(Debug, Clone, Queryable, Selectable, Insertable, Serialize, Deserialize, ToSchema)]
#[diesel(table_name = devices)]
#[schema(example = json!({"uuid": "0b0c7f8e-3f0e-4b7c-9a57-8a3c3f1f5e11", "created": "2026-12-01T09:00:00Z", "modified": "2026-12-01T09:00:00Z", "created_by": "admin-system", "location_id": "ward-7", "description": "Ward 7 entry tablet", "active": true}))]
pub struct Device {
    pub uuid: Uuid,
    pub created: DateTime<Utc>,
    pub modified: DateTime<Utc>,
    pub created_by: String,
    pub location_id: String,
    pub description: String,
    pub active: bool,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"location_id": "ward-7", "description": "Ward 7 entry tablet"}))]
pub struct NewDevice {
    pub location_id: String,
    pub description: String,
    #[serde(default)]
    pub active: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema, AsChangeset)]
#[diesel(table_name = devices)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"active": false}))]
pub struct DevicePatch {
    pub location_id: Option<String>,
    pub description: Option<String>,
    pub active: Option<bool>,
}

pub fn create_device(conn: &mut PgConnection, new: NewDevice, created_by: &str) -> ApiResult<Device> {
    if new.location_id.trim().is_empty() {
        return Err(ApiError::invalid_field("location_id", "must not be empty"));
    }
    let now = meridian_model::now();
    let device = Device {
        uuid: Uuid::new_v4(),
        created: now,
        modified: now,
        created_by: created_by.to_owned(),
        location_id: new.location_id,
        description: new.description,
        active: new.active.unwrap_or(true),
    };
    Ok(diesel::insert_into(devices::table).values(&device).returning(Device::as_returning()).get_result(conn)?)
}

pub fn get_device(conn: &mut PgConnection, id: Uuid) -> ApiResult<Device> {
    devices::table
        .find(id)
        .select(Device::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| ApiError::not_found(format!("no device {id}")))
}

pub fn list_devices(
    conn: &mut PgConnection,
    locations: Option<Vec<String>>,
    active: Option<bool>,
    limit: i64,
    offset: i64,
) -> ApiResult<Vec<Device>> {
    let mut query = devices::table.select(Device::as_select()).into_boxed();
    if let Some(locations) = locations {
        query = query.filter(devices::location_id.eq_any(locations));
    }
    if let Some(active) = active {
        query = query.filter(devices::active.eq(active));
    }
    Ok(query.order((devices::created.desc(), devices::uuid.desc())).limit(limit).offset(offset).load(conn)?)
}

pub fn patch_device(conn: &mut PgConnection, id: Uuid, patch: DevicePatch) -> ApiResult<Device> {
    if patch.location_id.is_none() && patch.description.is_none() && patch.active.is_none() {
        return Err(ApiError::bad_request("nothing to change: send location_id, description or active"));
    }
    if patch.location_id.as_deref().is_some_and(|l| l.trim().is_empty()) {
        return Err(ApiError::invalid_field("location_id", "must not be empty"));
    }
    diesel::update(devices::table.find(id))
        .set((&patch, devices::modified.eq(meridian_model::now())))
        .returning(Device::as_returning())
        .get_result(conn)
        .optional()?
        .ok_or_else(|| ApiError::not_found(format!("no device {id}")))
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, Serialize, Deserialize, ToSchema)]
#[diesel(table_name = clinicians)]
#[schema(example = json!({"clinician_id": "clinician-1", "created": "2026-12-01T09:00:00Z", "modified": "2026-12-01T09:00:00Z", "login_active": true, "products": [{"product_name": "SEND", "opened_date": "2026-01-01"}], "groups": ["SEND Clinician"], "locations": ["ward-7"], "send_entry_identifier": "3412", "contract_expiry_eod_date": "2027-12-31"}))]
pub struct Clinician {
    pub clinician_id: String,
    pub created: DateTime<Utc>,
    pub modified: DateTime<Utc>,
    pub login_active: bool,
    pub products: serde_json::Value,
    pub groups: serde_json::Value,
    pub locations: serde_json::Value,
    pub send_entry_identifier: Option<String>,
    pub contract_expiry_eod_date: Option<NaiveDate>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"clinician_id": "clinician-1", "login_active": true, "products": [{"product_name": "SEND", "opened_date": "2026-01-01"}], "groups": ["SEND Clinician"], "send_entry_identifier": "3412", "contract_expiry_eod_date": "2027-12-31"}))]
pub struct NewClinician {
    pub clinician_id: String,
    pub login_active: bool,
    #[serde(default)]
    pub products: Vec<serde_json::Value>,
    #[serde(default)]
    pub groups: Vec<String>,
    /// Locations the clinician works at (added to the device's location in its token).
    #[serde(default)]
    pub locations: Vec<String>,
    #[serde(default)]
    pub send_entry_identifier: Option<String>,
    #[serde(default)]
    pub contract_expiry_eod_date: Option<NaiveDate>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"login_active": false}))]
pub struct ClinicianPatch {
    pub login_active: Option<bool>,
    pub products: Option<Vec<serde_json::Value>>,
    pub groups: Option<Vec<String>>,
    pub locations: Option<Vec<String>>,
    pub send_entry_identifier: Option<String>,
    pub contract_expiry_eod_date: Option<NaiveDate>,
}

pub fn create_clinician(conn: &mut PgConnection, new: NewClinician) -> ApiResult<Clinician> {
    if new.clinician_id.trim().is_empty() {
        return Err(ApiError::invalid_field("clinician_id", "must not be empty"));
    }
    if new.send_entry_identifier.as_deref().is_some_and(|s| s.trim().is_empty()) {
        return Err(ApiError::invalid_field("send_entry_identifier", "must not be empty"));
    }
    let now = meridian_model::now();
    let clinician = Clinician {
        clinician_id: new.clinician_id,
        created: now,
        modified: now,
        login_active: new.login_active,
        products: serde_json::Value::Array(new.products),
        groups: serde_json::json!(new.groups),
        locations: serde_json::json!(new.locations),
        send_entry_identifier: new.send_entry_identifier,
        contract_expiry_eod_date: new.contract_expiry_eod_date,
    };
    diesel::insert_into(clinicians::table)
        .values(&clinician)
        .returning(Clinician::as_returning())
        .get_result(conn)
        .map_err(|e| match e {
            diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _) => {
                ApiError::conflict("a clinician with this id or send_entry_identifier already exists")
                    .with_code("AlreadyExists")
            }
            other => other.into(),
        })
}

pub fn patch_clinician(conn: &mut PgConnection, id: &str, patch: ClinicianPatch) -> ApiResult<Clinician> {
    conn.transaction(|conn| {
        let mut c: Clinician = clinicians::table
            .find(id)
            .select(Clinician::as_select())
            .for_update()
            .first(conn)
            .optional()?
            .ok_or_else(|| ApiError::not_found(format!("no clinician {id}")))?;
        if let Some(v) = patch.login_active {
            c.login_active = v;
        }
        if let Some(v) = patch.products {
            c.products = serde_json::Value::Array(v);
        }
        if let Some(v) = patch.groups {
            c.groups = serde_json::json!(v);
        }
        if let Some(v) = patch.locations {
            c.locations = serde_json::json!(v);
        }
        if let Some(v) = patch.send_entry_identifier {
            if v.trim().is_empty() {
                return Err(ApiError::invalid_field("send_entry_identifier", "must not be empty"));
            }
            c.send_entry_identifier = Some(v);
        }
        if let Some(v) = patch.contract_expiry_eod_date {
            c.contract_expiry_eod_date = Some(v);
        }
        c.modified = meridian_model::now();
        Ok(diesel::update(clinicians::table.find(id))
            .set((
                clinicians::modified.eq(c.modified),
                clinicians::login_active.eq(c.login_active),
                clinicians::products.eq(&c.products),
                clinicians::groups.eq(&c.groups),
                clinicians::locations.eq(&c.locations),
                clinicians::send_entry_identifier.eq(&c.send_entry_identifier),
                clinicians::contract_expiry_eod_date.eq(c.contract_expiry_eod_date),
            ))
            .returning(Clinician::as_returning())
            .get_result(conn)?)
    })
}

pub fn clinician_by_entry_identifier(conn: &mut PgConnection, identifier: &str) -> ApiResult<Option<Clinician>> {
    Ok(clinicians::table
        .filter(clinicians::send_entry_identifier.eq(identifier))
        .select(Clinician::as_select())
        .first(conn)
        .optional()?)
}

/// Why a clinician may not log in today, if they may not.
pub fn login_refusal(c: &Clinician, clinician_groups: &[String], today: NaiveDate) -> Option<&'static str> {
    if !c.login_active {
        return Some("the clinician's login is not active");
    }
    if c.contract_expiry_eod_date.is_some_and(|eod| today > eod) {
        return Some("the clinician's contract has expired");
    }
    let in_group = c.groups.as_array().is_some_and(|groups| {
        groups.iter().filter_map(|g| g.as_str()).any(|g| clinician_groups.iter().any(|allowed| allowed == g))
    });
    if !in_group {
        return Some("the clinician is not in a clinician group");
    }
    None
}

pub fn json_strings(value: &serde_json::Value) -> Vec<String> {
    value.as_array().map(|a| a.iter().filter_map(|v| v.as_str().map(ToOwned::to_owned)).collect()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clinician() -> Clinician {
        Clinician {
            clinician_id: "c".into(),
            created: Utc::now(),
            modified: Utc::now(),
            login_active: true,
            products: serde_json::json!([]),
            groups: serde_json::json!(["SEND Clinician"]),
            locations: serde_json::json!([]),
            send_entry_identifier: Some("1".into()),
            contract_expiry_eod_date: NaiveDate::from_ymd_opt(2026, 12, 1),
        }
    }

    #[test]
    fn login_rules() {
        let groups = vec!["SEND Clinician".to_owned()];
        let day = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        assert_eq!(login_refusal(&clinician(), &groups, day), None, "the expiry day itself is still valid");
        assert!(login_refusal(&clinician(), &groups, day.succ_opt().unwrap()).unwrap().contains("contract"));
        let mut c = clinician();
        c.login_active = false;
        assert!(login_refusal(&c, &groups, day).unwrap().contains("active"));
        let mut c = clinician();
        c.groups = serde_json::json!(["Patient"]);
        assert!(login_refusal(&c, &groups, day).unwrap().contains("group"));
    }
}
