//! Registrations: register (or re-register after an opt-out), count, unsubscribe.

use diesel::prelude::*;
use diesel::sql_types::{Bool, Nullable, Text, Uuid as SqlUuid};
use uuid::Uuid;

use crate::schema::registrations;

pub struct NewRegistration {
    /// Already normalised.
    pub email: String,
    pub version: String,
    pub distribution: Option<String>,
    pub client_ip: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    /// A new registration with a new product id.
    New(Uuid),
    /// An address that had opted out registered again; it keeps its product id.
    Reactivated(Uuid),
    /// The address is registered and active.
    AlreadyRegistered,
}

#[derive(QueryableByName)]
struct Upserted {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = Bool)]
    inserted: bool,
}

/// One statement, so two clients racing with the same address cannot both win: the unique index
/// on `lower(email)` decides, and only an opted-out row is reactivated.
pub fn register(conn: &mut PgConnection, new: &NewRegistration) -> QueryResult<Registered> {
    let row: Option<Upserted> = diesel::sql_query(
        "INSERT INTO registrations (id, email, version, distribution, client_ip) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT ((lower(email))) DO UPDATE SET active = true, unsubscribed_at = NULL, updated_at = now(), \
           version = EXCLUDED.version, distribution = EXCLUDED.distribution, client_ip = EXCLUDED.client_ip \
         WHERE NOT registrations.active \
         RETURNING id, (xmax = 0) AS inserted",
    )
    .bind::<SqlUuid, _>(Uuid::new_v4())
    .bind::<Text, _>(&new.email)
    .bind::<Text, _>(&new.version)
    .bind::<Nullable<Text>, _>(new.distribution.as_deref())
    .bind::<Nullable<Text>, _>(new.client_ip.as_deref())
    .get_result(conn)
    .optional()?;
    Ok(match row {
        Some(Upserted { id, inserted: true }) => Registered::New(id),
        Some(Upserted { id, inserted: false }) => Registered::Reactivated(id),
        None => Registered::AlreadyRegistered,
    })
}

pub fn active_count(conn: &mut PgConnection) -> QueryResult<i64> {
    registrations::table.filter(registrations::active).count().get_result(conn)
}

/// The address and whether it still receives mail.
pub fn find(conn: &mut PgConnection, id: Uuid) -> QueryResult<Option<(String, bool)>> {
    registrations::table.find(id).select((registrations::email, registrations::active)).first(conn).optional()
}

/// Opts a registration out. `Some(true)` when it was active, `Some(false)` when it had already
/// opted out, `None` when there is no such registration.
pub fn unsubscribe(conn: &mut PgConnection, id: Uuid) -> QueryResult<Option<bool>> {
    let now = chrono::Utc::now();
    let changed = diesel::update(registrations::table.find(id).filter(registrations::active))
        .set((
            registrations::active.eq(false),
            registrations::unsubscribed_at.eq(Some(now)),
            registrations::updated_at.eq(now),
        ))
        .execute(conn)?;
    if changed == 1 {
        return Ok(Some(true));
    }
    Ok(find(conn, id)?.map(|_| false))
}
