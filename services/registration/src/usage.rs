//! Usage reports: newer EMR clients post a monthly document of usage events per installation.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use meridian_platform::{ApiError, FieldErrors};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::schema::usage_reports;

pub const MAX_RECORDS: usize = 5000;
const MAX_SHORT: usize = 128;
const MAX_LONG: usize = 2048;

/// A validated report, ready to store.
#[derive(Debug, Clone)]
pub struct UsageReport {
    pub site_id: Uuid,
    pub reporting_interval: String,
    pub version: String,
    pub distribution: Option<String>,
    pub environment: Option<String>,
    pub locale: Option<String>,
    pub time_zone: Option<String>,
    pub records: usize,
    pub document: Value,
}

/// Text, or a number written as text (clients differ); `None` when absent or null.
fn text_of(value: Option<&Value>) -> Result<Option<String>, &'static str> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_owned()).filter(|s| !s.is_empty())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err("must be a string"),
    }
}

fn valid_interval(text: &str) -> bool {
    text.len() == 6 && text.bytes().all(|b| b.is_ascii_digit()) && matches!(text[4..].parse::<u32>(), Ok(1..=12))
}

/// Validates the document; every problem is reported by field path (422).
pub fn validate(site_id: Uuid, document: Value) -> Result<UsageReport, ApiError> {
    let mut errors = FieldErrors::new();
    let mut fail = |field: String, message: &str| errors.entry(field).or_default().push(message.to_owned());
    let Value::Object(root) = &document else {
        return Err(ApiError::bad_request("the body must be a JSON object with usageRecords and localeData"));
    };
    let mut records = 0;
    match root.get("usageRecords") {
        Some(Value::Array(list)) if list.len() > MAX_RECORDS => {
            fail("usageRecords".into(), &format!("at most {MAX_RECORDS} records per report"));
        }
        Some(Value::Array(list)) => {
            records = list.len();
            for (i, record) in list.iter().enumerate() {
                let Value::Object(record) = record else {
                    fail(format!("usageRecords[{i}]"), "must be an object");
                    continue;
                };
                match text_of(record.get("event_type")) {
                    Ok(Some(t)) if t.len() <= MAX_SHORT => {}
                    Ok(Some(_)) => fail(format!("usageRecords[{i}].event_type"), "is too long"),
                    Ok(None) => fail(format!("usageRecords[{i}].event_type"), "is required"),
                    Err(e) => fail(format!("usageRecords[{i}].event_type"), e),
                }
                for (field, max) in [
                    ("event_label", MAX_LONG),
                    ("event_url", MAX_LONG),
                    ("event_target", MAX_LONG),
                    ("first_event", 64),
                    ("last_event", 64),
                ] {
                    match text_of(record.get(field)) {
                        Ok(Some(t)) if t.len() > max => fail(format!("usageRecords[{i}].{field}"), "is too long"),
                        Ok(_) => {}
                        Err(e) => fail(format!("usageRecords[{i}].{field}"), e),
                    }
                }
                let count = match record.get("count") {
                    Some(Value::Number(n)) => n.as_u64(),
                    Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
                    _ => None,
                };
                if count.is_none_or(|c| c > i64::MAX as u64) {
                    fail(format!("usageRecords[{i}].count"), "must be a whole number, 0 or more");
                }
            }
        }
        Some(_) => fail("usageRecords".into(), "must be an array"),
        None => fail("usageRecords".into(), "is required"),
    }
    let empty = serde_json::Map::new();
    let locale_data = match root.get("localeData") {
        Some(Value::Object(map)) => map,
        Some(_) => {
            fail("localeData".into(), "must be an object");
            &empty
        }
        None => {
            fail("localeData".into(), "is required");
            &empty
        }
    };
    let mut field = |name: &str, max: usize, required: bool| -> Option<String> {
        match text_of(locale_data.get(name)) {
            Ok(Some(t)) if t.chars().count() > max => {
                fail(format!("localeData.{name}"), "is too long");
                None
            }
            Ok(Some(t)) => Some(t),
            Ok(None) => {
                if required && !locale_data.is_empty() {
                    fail(format!("localeData.{name}"), "is required");
                }
                None
            }
            Err(e) => {
                fail(format!("localeData.{name}"), e);
                None
            }
        }
    };
    let interval = field("reporting_interval", 6, true);
    let version = field("version", 64, true);
    let distribution = field("distribution", 128, false);
    let environment = field("environment", 128, false);
    let locale = field("locale", 64, false);
    let time_zone = field("time_zone", 64, false);
    let site_uuid = field("site_uuid", 64, false);
    if let Some(interval) = &interval
        && !valid_interval(interval)
    {
        fail("localeData.reporting_interval".into(), "must be YYYYMM");
    }
    if let Some(site) = &site_uuid
        && site.parse::<Uuid>().ok() != Some(site_id)
    {
        fail("localeData.site_uuid".into(), "does not match SiteID");
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    Ok(UsageReport {
        site_id,
        reporting_interval: interval.unwrap_or_default(),
        version: version.unwrap_or_default(),
        distribution,
        environment,
        locale,
        time_zone,
        records,
        document,
    })
}

/// Stores a report; a report for the same site and month replaces the earlier one.
pub fn store(conn: &mut PgConnection, report: &UsageReport, client_ip: Option<&str>) -> QueryResult<i64> {
    let values = (
        usage_reports::site_id.eq(report.site_id),
        usage_reports::reporting_interval.eq(&report.reporting_interval),
        usage_reports::version.eq(&report.version),
        usage_reports::distribution.eq(&report.distribution),
        usage_reports::environment.eq(&report.environment),
        usage_reports::locale.eq(&report.locale),
        usage_reports::time_zone.eq(&report.time_zone),
        usage_reports::records.eq(report.records as i32),
        usage_reports::document.eq(&report.document),
        usage_reports::client_ip.eq(client_ip),
        usage_reports::received_at.eq(chrono::Utc::now()),
    );
    diesel::insert_into(usage_reports::table)
        .values(values)
        .on_conflict((usage_reports::site_id, usage_reports::reporting_interval))
        .do_update()
        .set(values)
        .returning(usage_reports::id)
        .get_result(conn)
}

/// Installations reporting, by month and version.
#[derive(Debug, Clone, Serialize, ToSchema, QueryableByName)]
#[serde(rename_all = "camelCase")]
pub struct InstallCount {
    /// `YYYYMM`.
    #[diesel(sql_type = Text)]
    pub month: String,
    #[diesel(sql_type = Text)]
    pub version: String,
    #[diesel(sql_type = BigInt)]
    pub installs: i64,
}

pub fn summary(conn: &mut PgConnection, months: i64) -> QueryResult<Vec<InstallCount>> {
    diesel::sql_query(
        "SELECT reporting_interval AS month, version, count(DISTINCT site_id) AS installs FROM usage_reports \
         WHERE reporting_interval IN (SELECT DISTINCT reporting_interval FROM usage_reports ORDER BY 1 DESC LIMIT $1) \
         GROUP BY 1, 2 ORDER BY 1 DESC, 3 DESC, 2",
    )
    .bind::<BigInt, _>(months)
    .load(conn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Value {
        json!({
            "usageRecords": [{"event_type": "login", "event_label": "x", "event_url": "/a", "event_target": "",
                "first_event": "2026-11-01 10:00:00", "last_event": "2026-11-30 10:00:00", "count": 12}],
            "localeData": {"site_uuid": "6f1c2b9e-8d4a-4c55-9f43-2f0b1a3c4d5e", "reporting_interval": "202611",
                "reporting_date": "2026-12-01", "time_zone": "UTC", "locale": "en", "version": "7.0.3",
                "environment": "production", "distribution": "docker", "extra": {"anything": 1}}
        })
    }

    #[test]
    fn accepts_a_good_report() {
        let site: Uuid = "6f1c2b9e-8d4a-4c55-9f43-2f0b1a3c4d5e".parse().unwrap();
        let report = validate(site, doc()).unwrap();
        assert_eq!(report.reporting_interval, "202611");
        assert_eq!(report.version, "7.0.3");
        assert_eq!(report.records, 1);
    }

    #[test]
    fn names_every_bad_field() {
        let site: Uuid = "6f1c2b9e-8d4a-4c55-9f43-2f0b1a3c4d5e".parse().unwrap();
        let mut bad = doc();
        bad["usageRecords"][0]["count"] = json!(-1);
        bad["localeData"]["reporting_interval"] = json!("202613");
        bad["localeData"]["site_uuid"] = json!(Uuid::new_v4().to_string());
        let err = validate(site, bad).unwrap_err();
        assert_eq!(err.status, 422);
        let errors = err.errors.unwrap();
        assert!(errors.contains_key("usageRecords[0].count"));
        assert!(errors.contains_key("localeData.reporting_interval"));
        assert!(errors.contains_key("localeData.site_uuid"));
        assert_eq!(validate(site, json!([1])).unwrap_err().status, 400);
        assert!(validate(site, json!({})).unwrap_err().errors.unwrap().contains_key("localeData"));
    }
}
