//! Person records: JSONB documents with Thalamus's field names, plus the columns access control
//! needs (password hash, roles, active). No function here returns the hash.

use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Jsonb, Nullable, Text};
use meridian_platform::db::Statement;
use meridian_platform::{ApiError, ApiResult};
use serde_json::{Map, Value};

use crate::audit::{self, AuditEvent};
use crate::auth::{Caller, notify_change};
use crate::policy::Policy;

/// The record as clients see it: the document plus id, roles and active; never the hash.
pub const RECORD: &str =
    "(data || jsonb_build_object('id', id, 'roles', to_jsonb(roles), 'active', active))::text AS doc";

/// bcrypt reads only this many bytes; longer passwords are refused rather than truncated.
pub const MAX_PASSWORD_BYTES: usize = meridian_auth::password::BCRYPT_MAX_BYTES;

#[derive(QueryableByName)]
pub struct Doc {
    #[diesel(sql_type = Text)]
    pub doc: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// A federation id as stored: trimmed, upper case, letters, digits, `_`, `.` or `-`.
pub fn normalise_id(raw: &str) -> ApiResult<String> {
    let id = raw.trim().to_ascii_uppercase();
    let valid = !id.is_empty()
        && id.len() <= 64
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && id.as_bytes()[0].is_ascii_alphanumeric();
    if valid { Ok(id) } else { Err(ApiError::not_found(format!("no person {raw:?}"))) }
}

/// A body split into the stored document and the fields with their own rules.
#[derive(Debug, Default)]
pub struct PersonInput {
    pub data: Map<String, Value>,
    /// A new password as sent (already a bcrypt hash, or clear text to hash).
    pub password: Option<String>,
    pub roles: Option<Vec<String>>,
    pub active: Option<bool>,
}

/// Checks a POST/PATCH body for person `id`.
pub fn parse_input(body: Value, id: &str, policy: &Policy) -> ApiResult<PersonInput> {
    let Value::Object(mut data) = body else {
        return Err(ApiError::invalid_field("body", "must be a JSON object"));
    };
    if let Some(given) = data.remove("id") {
        let same = given.as_str().is_some_and(|g| g.trim().eq_ignore_ascii_case(id));
        if !same {
            return Err(ApiError::invalid_field("id", format!("contradicts the id in the URL ({id})")));
        }
    }
    let password = match data.remove("password") {
        None => None,
        Some(Value::String(p)) if p.is_empty() => return Err(ApiError::invalid_field("password", "must not be empty")),
        Some(Value::String(p)) if p.len() > MAX_PASSWORD_BYTES => {
            return Err(ApiError::invalid_field(
                "password",
                format!("must be at most {MAX_PASSWORD_BYTES} bytes (bcrypt reads no more)"),
            ));
        }
        Some(Value::String(p)) => Some(p),
        Some(_) => return Err(ApiError::invalid_field("password", "must be a string")),
    };
    let roles = match data.remove("roles") {
        None => None,
        Some(Value::Array(items)) => {
            let mut roles = Vec::new();
            for item in items {
                let Some(role) = item.as_str() else {
                    return Err(ApiError::invalid_field("roles", "must be an array of role names"));
                };
                if !policy.is_role(role) {
                    let known = policy.role_names().collect::<Vec<_>>().join(", ");
                    return Err(ApiError::invalid_field("roles", format!("unknown role {role:?} (known: {known})")));
                }
                if !roles.iter().any(|r| r == role) {
                    roles.push(role.to_owned());
                }
            }
            if roles.is_empty() {
                return Err(ApiError::invalid_field("roles", "must name at least one role"));
            }
            Some(roles)
        }
        Some(_) => return Err(ApiError::invalid_field("roles", "must be an array of role names")),
    };
    let active = match data.remove("active") {
        None => None,
        Some(Value::Bool(b)) => Some(b),
        Some(_) => return Err(ApiError::invalid_field("active", "must be true or false")),
    };
    for field in ["name", "lastname"] {
        if let Some(v) = data.get(field)
            && !(v.is_string() || v.is_null())
        {
            return Err(ApiError::invalid_field(field, "must be a string"));
        }
    }
    if let Some(dob) = data.get("dob") {
        let valid = match dob {
            Value::Null => true,
            Value::String(s) => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok(),
            _ => false,
        };
        if !valid {
            return Err(ApiError::invalid_field("dob", "must be a date as YYYY-MM-DD"));
        }
    }
    Ok(PersonInput { data, password, roles, active })
}

/// The stored form of a new password: bcrypt hashes (from Thalamus nodes) as they are, anything
/// else argon2id. CPU-bound.
pub fn hash_password(password: &str) -> String {
    if meridian_auth::password::is_bcrypt(password) {
        password.to_owned()
    } else {
        meridian_auth::password::hash(password)
    }
}

fn same_roles(a: &[String], b: &[String]) -> bool {
    a.len() == b.len() && a.iter().all(|r| b.contains(r))
}

/// One record (a statement kept prepared: this is the hot read path).
pub fn get(conn: &mut PgConnection, id: &str) -> ApiResult<Option<String>> {
    let found = Statement::new(format!("SELECT {RECORD} FROM people WHERE id = "))
        .text(id)
        .get_result::<Doc>(conn)
        .optional()?;
    Ok(found.map(|d| d.doc))
}

pub fn exists(conn: &mut PgConnection, id: &str) -> ApiResult<bool> {
    Ok(diesel::select(
        diesel::dsl::sql::<Bool>("EXISTS (SELECT 1 FROM people WHERE id = ").bind::<Text, _>(id).sql(")"),
    )
    .get_result(conn)?)
}

/// Search filters: prefixes of name, lastname and id (case-insensitive), exact dob.
#[derive(Debug, Default, Clone, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Search {
    /// Name prefix, case-insensitive.
    pub name: Option<String>,
    /// Last name prefix, case-insensitive.
    pub lastname: Option<String>,
    /// Date of birth, YYYY-MM-DD.
    pub dob: Option<String>,
    /// Federation id prefix.
    pub id: Option<String>,
    /// How many records (1 to 500, default 100).
    pub limit: Option<i64>,
    /// How many records to skip.
    pub offset: Option<i64>,
}

/// Counting stops here: past it the total is reported as at least this many.
pub const COUNT_CAP: i64 = 1_000;

/// The upper bound of the prefix range `[p, p + U+10FFFF)` under the C collation.
fn prefix_end(prefix: &str) -> String {
    format!("{prefix}\u{10FFFF}")
}

pub struct Listing {
    pub ids: Vec<String>,
    pub docs: Vec<String>,
    /// Exact unless `capped`, when there are more than [`COUNT_CAP`] and this is [`COUNT_CAP`].
    pub total: i64,
    pub capped: bool,
}

#[derive(QueryableByName)]
struct IdDoc {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Text)]
    doc: String,
}

/// One search condition on an indexed column.
enum Filter {
    Prefix(&'static str, String),
    Equals(&'static str, String),
}

/// `statement` followed by the search's WHERE clause (nothing when there are no filters).
fn filtered(mut statement: Statement, filters: &[Filter]) -> Statement {
    for (i, filter) in filters.iter().enumerate() {
        statement = statement.sql(if i == 0 { " WHERE " } else { " AND " });
        statement = match filter {
            Filter::Prefix(column, value) => statement
                .sql(format!("{column} >= "))
                .text(value.clone())
                .sql(format!(" AND {column} < "))
                .text(prefix_end(value)),
            Filter::Equals(column, value) => statement.sql(format!("{column} = ")).text(value.clone()),
        };
    }
    statement
}

pub fn list(conn: &mut PgConnection, search: &Search, limit: i64, offset: i64) -> ApiResult<Listing> {
    let mut filters = Vec::new();
    if let Some(name) = search.name.as_deref().filter(|s| !s.is_empty()) {
        filters.push(Filter::Prefix("name_key", name.to_lowercase()));
    }
    if let Some(lastname) = search.lastname.as_deref().filter(|s| !s.is_empty()) {
        filters.push(Filter::Prefix("lastname_key", lastname.to_lowercase()));
    }
    if let Some(id) = search.id.as_deref().filter(|s| !s.is_empty()) {
        filters.push(Filter::Prefix("id", id.trim().to_ascii_uppercase()));
    }
    if let Some(dob) = search.dob.as_deref().filter(|s| !s.is_empty()) {
        if chrono::NaiveDate::parse_from_str(dob, "%Y-%m-%d").is_err() {
            return Err(ApiError::invalid_field("dob", "must be a date as YYYY-MM-DD"));
        }
        filters.push(Filter::Equals("dob_key", dob.to_owned()));
    }
    // The page of ids first, the documents after: building a document costs more than comparing
    // ids, so only the rows returned pay for it. Both statements stay prepared per filter shape.
    let rows: Vec<IdDoc> =
        filtered(Statement::new(format!("SELECT id, {RECORD} FROM (SELECT id FROM people")), &filters)
            .sql(" ORDER BY id LIMIT ")
            .bigint(limit)
            .sql(" OFFSET ")
            .bigint(offset)
            .sql(") AS page JOIN people USING (id) ORDER BY id")
            .load(conn)?;
    // A short page (that is not past the end) already tells the total: no second query.
    let total = if (rows.len() as i64) < limit && (!rows.is_empty() || offset == 0) {
        offset + rows.len() as i64
    } else {
        filtered(Statement::new("SELECT count(*) AS n FROM (SELECT 1 FROM people"), &filters)
            .sql(format!(" LIMIT {} ) AS matching", COUNT_CAP + 1))
            .get_result::<Count>(conn)?
            .n
    };
    let capped = total > COUNT_CAP;
    let total = total.min(COUNT_CAP);
    let (ids, docs) = rows.into_iter().map(|r| (r.id, r.doc)).unzip();
    Ok(Listing { ids, docs, total, capped })
}

/// Creates person `id`. Only root grants roles other than `end_user`, or creates an inactive
/// account; nobody but root creates a root account.
pub fn create(
    conn: &mut PgConnection,
    caller: &Caller,
    id: &str,
    input: PersonInput,
    password_hash: Option<String>,
) -> ApiResult<String> {
    let roles = input.roles.unwrap_or_else(|| vec!["end_user".to_owned()]);
    let active = input.active.unwrap_or(true);
    if !caller.is_root() {
        if roles.iter().any(|r| r == "root") {
            return Err(ApiError::forbidden("only root may create a root account").with_code("RolesForbidden"));
        }
        if roles != ["end_user"] {
            return Err(ApiError::forbidden("only root grants roles").with_code("RolesForbidden"));
        }
        if !active {
            return Err(ApiError::forbidden("only root sets the active flag").with_code("ActiveForbidden"));
        }
    }
    let doc = diesel::sql_query(format!(
        "INSERT INTO people (id, password_hash, roles, active, data) VALUES ($1, $2, $3, $4, $5) RETURNING {RECORD}"
    ))
    .bind::<Text, _>(id)
    .bind::<Nullable<Text>, _>(password_hash)
    .bind::<Array<Text>, _>(&roles)
    .bind::<Bool, _>(active)
    .bind::<Jsonb, _>(Value::Object(input.data))
    .get_result::<Doc>(conn)
    .map_err(|e| match ApiError::from(e) {
        err if err.status == 409 => {
            ApiError::conflict(format!("person {id} already exists")).with_code("AlreadyExists")
        }
        err => err,
    })?
    .doc;
    audit::record(conn, &AuditEvent::new(&caller.id, "create", "people", Some(id)))?;
    if roles != ["end_user"] {
        audit::record(
            conn,
            &AuditEvent::new(&caller.id, "roles", "people", Some(id))
                .with_detail(serde_json::json!({"from": null, "to": roles})),
        )?;
    }
    if !active {
        audit::record(
            conn,
            &AuditEvent::new(&caller.id, "active", "people", Some(id))
                .with_detail(serde_json::json!({"from": null, "to": false})),
        )?;
    }
    Ok(doc)
}

#[derive(QueryableByName)]
struct Current {
    #[diesel(sql_type = Array<Text>)]
    roles: Vec<String>,
    #[diesel(sql_type = Bool)]
    active: bool,
}

/// The result of a PATCH: the record, and whether credentials changed (the cache must drop them).
pub struct Patched {
    pub doc: String,
    pub credentials_changed: bool,
}

/// Shallow-merges `input` into person `id`. Roles and the active flag change only by root, and
/// never on the caller's own record; such changes are audited with their old and new values. A
/// password changes only by its owner or root; a root account changes only by root.
pub fn patch(
    conn: &mut PgConnection,
    caller: &Caller,
    id: &str,
    input: PersonInput,
    password_hash: Option<String>,
) -> ApiResult<Patched> {
    let current = diesel::sql_query("SELECT roles, active FROM people WHERE id = $1 FOR UPDATE")
        .bind::<Text, _>(id)
        .get_result::<Current>(conn)
        .optional()?
        .ok_or_else(|| ApiError::not_found(format!("no person {id}")))?;
    if !caller.is_root() && current.roles.iter().any(|r| r == "root") {
        return Err(ApiError::forbidden("only root changes a root account").with_code("Forbidden"));
    }
    if password_hash.is_some() && caller.id != id && !caller.is_root() {
        // Otherwise anyone with write access to people could take over any account.
        return Err(ApiError::forbidden("a password is changed by its owner or by root").with_code("Forbidden"));
    }
    let new_roles = input.roles.filter(|r| !same_roles(r, &current.roles));
    let new_active = input.active.filter(|a| *a != current.active);
    for (changing, what) in [(new_roles.is_some(), "roles"), (new_active.is_some(), "the active flag")] {
        if !changing {
            continue;
        }
        if caller.id == id {
            return Err(ApiError::forbidden(format!("nobody changes {what} of their own account"))
                .with_code("OwnRolesForbidden"));
        }
        if !caller.is_root() {
            return Err(ApiError::forbidden(format!("only root changes {what}")).with_code("RolesForbidden"));
        }
    }
    let credentials_changed = password_hash.is_some() || new_roles.is_some() || new_active.is_some();
    let doc = diesel::sql_query(format!(
        "UPDATE people SET data = data || $2,
            password_hash = COALESCE($3, password_hash),
            roles = COALESCE($4, roles),
            active = COALESCE($5, active),
            credential_version = credential_version + CASE WHEN $6 THEN 1 ELSE 0 END,
            updated_at = now()
         WHERE id = $1 RETURNING {RECORD}"
    ))
    .bind::<Text, _>(id)
    .bind::<Jsonb, _>(Value::Object(input.data.clone()))
    .bind::<Nullable<Text>, _>(password_hash.as_deref())
    .bind::<Nullable<Array<Text>>, _>(new_roles.as_ref())
    .bind::<Nullable<Bool>, _>(new_active)
    .bind::<Bool, _>(credentials_changed)
    .get_result::<Doc>(conn)?
    .doc;
    let fields: Vec<&String> = input.data.keys().collect();
    audit::record(
        conn,
        &AuditEvent::new(&caller.id, "update", "people", Some(id)).with_detail(serde_json::json!({"fields": fields})),
    )?;
    if let Some(roles) = &new_roles {
        audit::record(
            conn,
            &AuditEvent::new(&caller.id, "roles", "people", Some(id))
                .with_detail(serde_json::json!({"from": current.roles, "to": roles})),
        )?;
    }
    if let Some(active) = new_active {
        audit::record(
            conn,
            &AuditEvent::new(&caller.id, "active", "people", Some(id))
                .with_detail(serde_json::json!({"from": current.active, "to": active})),
        )?;
    }
    if password_hash.is_some() {
        audit::record(conn, &AuditEvent::new(&caller.id, "password", "people", Some(id)))?;
    }
    if credentials_changed {
        notify_change(conn, id)?;
    }
    Ok(Patched { doc, credentials_changed })
}

/// Deletes person `id` with their book and documents (root only; checked by the caller).
pub fn delete(conn: &mut PgConnection, caller: &Caller, id: &str) -> ApiResult<()> {
    let deleted = diesel::sql_query("DELETE FROM people WHERE id = $1").bind::<Text, _>(id).execute(conn)?;
    if deleted == 0 {
        return Err(ApiError::not_found(format!("no person {id}")));
    }
    audit::record(conn, &AuditEvent::new(&caller.id, "delete", "people", Some(id)))?;
    notify_change(conn, id)?;
    Ok(())
}

/// Sets a new password (the HTML form), bumping the credential version.
pub fn set_password(conn: &mut PgConnection, actor: &str, id: &str, password_hash: &str) -> ApiResult<()> {
    let updated = diesel::sql_query(
        "UPDATE people SET password_hash = $2, credential_version = credential_version + 1, updated_at = now()
         WHERE id = $1",
    )
    .bind::<Text, _>(id)
    .bind::<Text, _>(password_hash)
    .execute(conn)?;
    if updated == 0 {
        return Err(ApiError::not_found(format!("no person {id}")));
    }
    audit::record(conn, &AuditEvent::new(actor, "password", "people", Some(id)))?;
    notify_change(conn, id)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_rules() {
        let policy = Policy::builtin();
        let ok = parse_input(
            serde_json::json!({"id": "espgnu777org", "name": "Ana", "password": "x", "roles": ["end_user"], "extra": 1}),
            "ESPGNU777ORG",
            &policy,
        )
        .unwrap();
        assert!(!ok.data.contains_key("password") && !ok.data.contains_key("id") && ok.data.contains_key("extra"));
        let status = |body: Value| parse_input(body, "ESPGNU777ORG", &policy).unwrap_err().status.as_u16();
        assert_eq!(status(serde_json::json!([1, 2])), 422);
        assert_eq!(status(serde_json::json!({"id": "OTHER"})), 422);
        assert_eq!(status(serde_json::json!({"password": "x".repeat(73)})), 422);
        assert_eq!(status(serde_json::json!({"roles": ["emperor"]})), 422);
        assert_eq!(status(serde_json::json!({"dob": "1 May 1990"})), 422);
        assert_eq!(status(serde_json::json!({"active": "yes"})), 422);
        assert!(parse_input(serde_json::json!({"password": "x".repeat(72)}), "A", &policy).is_ok());
    }

    #[test]
    fn ids_are_upper_cased_and_checked() {
        assert_eq!(normalise_id(" espgnu777org ").unwrap(), "ESPGNU777ORG");
        assert!(normalise_id("../etc").is_err());
        assert!(normalise_id("").is_err());
    }
}
