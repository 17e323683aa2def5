use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What a client-certificate device may do. `Admin` passes every check; there is no other
/// hierarchy (a `releaser` is not a `server`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeviceRole {
    Untrusted,
    Server,
    Releaser,
    Admin,
}

#[derive(Debug, thiserror::Error)]
#[error("unknown role {0:?} (expected untrusted, server, releaser or admin)")]
pub struct UnknownRole(pub String);

impl DeviceRole {
    pub const ALL: [DeviceRole; 4] = [Self::Untrusted, Self::Server, Self::Releaser, Self::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Untrusted => "untrusted",
            Self::Server => "server",
            Self::Releaser => "releaser",
            Self::Admin => "admin",
        }
    }

    /// Whether a device with this role may act as `required`.
    pub fn satisfies(self, required: DeviceRole) -> bool {
        self == Self::Admin || (self == required && self != Self::Untrusted)
    }
}

impl fmt::Display for DeviceRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DeviceRole {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_passes_every_check_and_nothing_else_is_a_hierarchy() {
        for role in DeviceRole::ALL {
            assert!(DeviceRole::Admin.satisfies(role));
        }
        assert!(DeviceRole::Server.satisfies(DeviceRole::Server));
        assert!(!DeviceRole::Releaser.satisfies(DeviceRole::Server));
        assert!(!DeviceRole::Server.satisfies(DeviceRole::Admin));
        assert!(!DeviceRole::Untrusted.satisfies(DeviceRole::Untrusted));
    }

    #[test]
    fn parses_round_trip() {
        for role in DeviceRole::ALL {
            assert_eq!(role.as_str().parse::<DeviceRole>().unwrap(), role);
        }
        assert!("root".parse::<DeviceRole>().is_err());
    }
}
