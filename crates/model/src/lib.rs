//! Types that more than one Meridian service speaks.
//!
//! Nothing here touches the database or HTTP: these are plain values with their parsing rules, so
//! every service agrees on what a page, a version or a role is.

mod pagination;
mod role;
mod version;

pub use pagination::{MAX_PAGE_SIZE, Page, PageQuery};
pub use role::{DeviceRole, UnknownRole};
pub use version::{Version, VersionError};

/// A UTC instant; serialised as RFC 3339.
pub type Timestamp = chrono::DateTime<chrono::Utc>;

/// The current instant, truncated to microseconds (what Postgres stores), so a value read back
/// compares equal to the value written.
pub fn now() -> Timestamp {
    use chrono::{SubsecRound, Utc};
    Utc::now().trunc_subsecs(6)
}
