use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A semantic version as clients write it: a leading `v` is accepted and dropped.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(pub semver::Version);

#[derive(Debug, thiserror::Error)]
#[error("{input:?} is not a semantic version (expected MAJOR.MINOR.PATCH): {reason}")]
pub struct VersionError {
    pub input: String,
    pub reason: String,
}

impl FromStr for Version {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let trimmed = s.trim();
        let bare = trimmed.strip_prefix(['v', 'V']).unwrap_or(trimmed);
        semver::Version::parse(bare)
            .map(Version)
            .map_err(|e| VersionError { input: s.to_owned(), reason: e.to_string() })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for Version {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_leading_v_and_keeps_prereleases() {
        assert_eq!("v2.1.0".parse::<Version>().unwrap().to_string(), "2.1.0");
        assert_eq!("9.1.0-rc.1".parse::<Version>().unwrap().to_string(), "9.1.0-rc.1");
        assert!("2.1".parse::<Version>().is_err());
        assert!("banana".parse::<Version>().is_err());
    }

    #[test]
    fn orders_by_semver_rules() {
        let rc: Version = "9.1.0-rc.1".parse().unwrap();
        let release: Version = "9.1.0".parse().unwrap();
        assert!(rc < release);
    }
}
