//! The values this service speaks: ranks, kinds, and the validation of what clients send.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How far a server is from real patients, in display order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Rank {
    Production,
    Clone,
    Demo,
    Test,
    Dev,
}

impl Rank {
    pub const ALL: [Rank; 5] = [Rank::Production, Rank::Clone, Rank::Demo, Rank::Test, Rank::Dev];

    pub fn as_str(self) -> &'static str {
        match self {
            Rank::Production => "production",
            Rank::Clone => "clone",
            Rank::Demo => "demo",
            Rank::Test => "test",
            Rank::Dev => "dev",
        }
    }

    /// A heading for the status page.
    pub fn title(self) -> &'static str {
        match self {
            Rank::Production => "Production",
            Rank::Clone => "Clone",
            Rank::Demo => "Demo",
            Rank::Test => "Test",
            Rank::Dev => "Development",
        }
    }
}

impl fmt::Display for Rank {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Rank {
    type Err = String;

    /// Accepts the stored names and the aliases older clients send: `live` and `prod` for
    /// production, `staging` for clone.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "production" | "prod" | "live" => Ok(Rank::Production),
            "clone" | "staging" => Ok(Rank::Clone),
            "demo" => Ok(Rank::Demo),
            "test" => Ok(Rank::Test),
            "dev" | "development" => Ok(Rank::Dev),
            other => Err(format!(
                "unknown rank {other:?} (expected production, clone, demo, test or dev; live, prod and staging are accepted)"
            )),
        }
    }
}

impl<'de> Deserialize<'de> for Rank {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Central servers are what the mobile app connects to; facility servers sync with a central one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Central,
    Facility,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Central => "central",
            Kind::Facility => "facility",
        }
    }
}

impl FromStr for Kind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "central" => Ok(Kind::Central),
            "facility" => Ok(Kind::Facility),
            other => Err(format!("unknown kind {other:?} (expected central or facility)")),
        }
    }
}

pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_HOST_CHARS: usize = 2048;

/// A server name: trimmed, non-empty, at most [`MAX_NAME_CHARS`] characters, no control characters.
pub fn validate_name(name: &str) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(format!("must be at most {MAX_NAME_CHARS} characters"));
    }
    if name.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(name.to_owned())
}

/// A host: an absolute http(s) URL with a host name, no credentials, query or fragment; stored
/// without a trailing slash.
pub fn validate_host(host: &str) -> Result<String, String> {
    let host = host.trim();
    if host.len() > MAX_HOST_CHARS {
        return Err(format!("must be at most {MAX_HOST_CHARS} characters"));
    }
    let url = reqwest::Url::parse(host).map_err(|e| format!("must be an absolute http(s) URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be an http or https URL".into());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("must name a host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query or fragment".into());
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// `Some(None)` when a JSON field is present and null, `Some(Some(v))` when present with a value,
/// `None` (with `#[serde(default)]`) when absent.
pub fn double_option<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_aliases() {
        assert_eq!("live".parse::<Rank>().unwrap(), Rank::Production);
        assert_eq!("PROD".parse::<Rank>().unwrap(), Rank::Production);
        assert_eq!("staging".parse::<Rank>().unwrap(), Rank::Clone);
        assert!("qa".parse::<Rank>().is_err());
        assert!(Rank::Production < Rank::Clone && Rank::Test < Rank::Dev);
    }

    #[test]
    fn hosts_are_normalised_and_checked() {
        assert_eq!(validate_host("https://central.example.org/").unwrap(), "https://central.example.org");
        assert_eq!(validate_host("http://10.0.0.1:3000/tamanu/").unwrap(), "http://10.0.0.1:3000/tamanu");
        for bad in ["central.example.org", "ftp://x.org", "https://", "https://u:p@x.org", "https://x.org/?a=1", ""] {
            assert!(validate_host(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_are_bounded() {
        assert_eq!(validate_name("  Fiji  ").unwrap(), "Fiji");
        assert!(validate_name(" ").is_err());
        assert!(validate_name(&"x".repeat(201)).is_err());
        assert!(validate_name("a\nb").is_err());
    }
}
