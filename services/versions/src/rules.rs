//! Version parsing, selectors and the update rule. Pure functions: no database, no HTTP.

use meridian_platform::ApiError;
use semver::{Version, VersionReq};

/// Parses a version as a releaser or a server writes it: a leading `v` is accepted, build metadata
/// is refused (semver ignores it for ordering, so two versions differing only by it would collide),
/// and each number must fit the database's integer column.
pub fn parse_version(input: &str) -> Result<Version, ApiError> {
    let version =
        input.parse::<meridian_model::Version>().map_err(|e| ApiError::invalid_field("version", e.to_string()))?.0;
    if !version.build.is_empty() {
        return Err(ApiError::invalid_field(
            "version",
            format!("{input:?} carries build metadata (+{}); publish it without", version.build),
        ));
    }
    for (name, n) in [("major", version.major), ("minor", version.minor), ("patch", version.patch)] {
        if i32::try_from(n).is_err() {
            return Err(ApiError::invalid_field("version", format!("the {name} number {n} is too large")));
        }
    }
    Ok(version)
}

/// How a reader names a version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// One exact version (withdrawn ones included).
    Exact(Version),
    /// The newest published release (pre-releases excluded).
    Latest,
    /// The newest published version matching a range.
    Range(VersionReq),
}

/// Reads a version or a range. A bare partial version names a line: `2.27` is `=2.27` (any
/// 2.27.x) and `2` is any 2.x.y, where semver's own default would be a caret (`^2.27`, i.e.
/// everything below 3). Operators (`~2.27.1`, `^2`, `>=2.1, <2.5`, `2.27.*`) keep their semver meaning.
pub fn parse_selector(input: &str) -> Result<Selector, ApiError> {
    let trimmed = input.trim();
    if trimmed.eq_ignore_ascii_case("latest") {
        return Ok(Selector::Latest);
    }
    let bare = trimmed.strip_prefix(['v', 'V']).filter(|rest| rest.starts_with(|c: char| c.is_ascii_digit()));
    if semver::Version::parse(bare.unwrap_or(trimmed)).is_ok() {
        return parse_version(trimmed).map(Selector::Exact);
    }
    let text = bare.unwrap_or(trimmed);
    let partial = !text.is_empty() && text.chars().all(|c| c.is_ascii_digit() || c == '.');
    let req_text = if partial { format!("={text}") } else { text.to_owned() };
    VersionReq::parse(&req_text).map(Selector::Range).map_err(|e| {
        ApiError::invalid_field("version", format!("{input:?} is neither a version nor a version range: {e}"))
    })
}

/// What the update rule needs to know about a version.
pub trait Candidate {
    fn version(&self) -> &Version;
    fn published(&self) -> bool;
}

/// The updates offered to a server running `current`, in ascending order: within the same major
/// only, for each minor line the newest published version newer than `current`.
///
/// Withdrawn versions are skipped one by one, so withdrawing a line's newest patch leaves its older
/// published patches on offer. Pre-releases are offered only to a server already running a
/// pre-release of the same `major.minor` line; everyone else sees releases only.
pub fn updates_for<'a, C: Candidate>(current: &Version, all: &'a [C]) -> Vec<&'a C> {
    let mut best: std::collections::BTreeMap<u64, &'a C> = std::collections::BTreeMap::new();
    for candidate in all {
        let v = candidate.version();
        if !candidate.published() || v.major != current.major || v <= current {
            continue;
        }
        let same_prerelease_line = current.minor == v.minor && !current.pre.is_empty();
        if !v.pre.is_empty() && !same_prerelease_line {
            continue;
        }
        best.entry(v.minor)
            .and_modify(|held| {
                if v > held.version() {
                    *held = candidate;
                }
            })
            .or_insert(candidate);
    }
    best.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct V(Version, bool);

    impl Candidate for V {
        fn version(&self) -> &Version {
            &self.0
        }
        fn published(&self) -> bool {
            self.1
        }
    }

    fn catalogue(spec: &str) -> Vec<V> {
        spec.split_whitespace()
            .map(|item| match item.strip_suffix('!') {
                Some(withdrawn) => V(Version::parse(withdrawn).unwrap(), false),
                None => V(Version::parse(item).unwrap(), true),
            })
            .collect()
    }

    fn offered(current: &str, spec: &str) -> String {
        let all = catalogue(spec);
        updates_for(&Version::parse(current).unwrap(), &all)
            .iter()
            .map(|c| c.0.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// (catalogue; `!` marks a withdrawn version, current version, expected updates)
    const CASES: &[(&str, &str, &str)] = &[
        ("2.1.0 2.1.1 2.2.0 2.3.0", "2.1.0", "2.1.1 2.2.0 2.3.0"),
        ("2.1.0 2.1.1 2.2.0 2.3.0", "2.3.0", ""),
        ("2.1.0 2.1.1 2.2.0 2.3.0", "2.1.1", "2.2.0 2.3.0"),
        // the newest patch of each line only
        ("2.1.0 2.1.1 2.1.2 2.2.0 2.2.5 2.2.3", "2.1.0", "2.1.2 2.2.5"),
        // other majors are never offered
        ("1.9.0 2.1.0 2.2.0 3.0.0 3.1.0", "2.1.0", "2.2.0"),
        ("1.9.0 2.1.0 3.0.0", "1.0.0", "1.9.0"),
        // a withdrawn newest patch does not hide the line's older published patches
        ("2.1.0 2.1.1 2.1.2! 2.2.0", "2.1.0", "2.1.1 2.2.0"),
        ("2.1.0 2.2.0 2.2.1!", "2.1.0", "2.2.0"),
        ("2.1.0 2.2.0! 2.2.1!", "2.1.0", ""),
        // newer than anything published
        ("2.1.0 2.2.0", "2.9.9", ""),
        ("2.1.0 2.2.0", "7.0.0", ""),
        // the lowest version there is
        ("0.0.1 0.1.0 0.1.3 1.0.0", "0.0.0", "0.0.1 0.1.3"),
        ("2.0.0 2.0.1 2.1.0", "2.0.0", "2.0.1 2.1.0"),
        // a version that was never published still gets updates
        ("2.1.0 2.3.0", "2.2.7", "2.3.0"),
        // pre-releases: never offered to a release...
        ("2.1.0 2.2.0-rc.1 2.3.0-beta.1", "2.1.0", ""),
        ("2.1.0 2.1.1-rc.1", "2.1.0", ""),
        // ...offered to a pre-release of the same line, and releases win once out
        ("2.2.0-rc.1 2.2.0-rc.2", "2.2.0-rc.1", "2.2.0-rc.2"),
        ("2.2.0-rc.1 2.2.0-rc.2 2.2.0", "2.2.0-rc.1", "2.2.0"),
        ("2.2.0-rc.1 2.2.0 2.2.1-rc.1", "2.2.0-rc.1", "2.2.1-rc.1"),
        // ...but not another line's pre-releases
        ("2.2.0-rc.1 2.3.0-rc.1 2.3.0-rc.2 2.4.0", "2.2.0-rc.1", "2.4.0"),
        // semver ordering of pre-release labels (numeric identifiers compare as numbers)
        ("2.2.0-rc.2 2.2.0-rc.10", "2.2.0-rc.1", "2.2.0-rc.10"),
        ("2.2.0-alpha 2.2.0-beta", "2.2.0-alpha", "2.2.0-beta"),
        // a withdrawn pre-release is not offered either
        ("2.2.0-rc.1 2.2.0-rc.2!", "2.2.0-rc.1", ""),
        // nothing published at all
        ("", "2.1.0", ""),
    ];

    #[test]
    fn update_rule_table() {
        for (spec, current, expected) in CASES {
            assert_eq!(offered(current, spec), *expected, "catalogue [{spec}], current {current}");
        }
    }

    #[test]
    fn versions_parse_with_a_leading_v_and_refuse_build_metadata_and_huge_numbers() {
        assert_eq!(parse_version("v2.1.0").unwrap().to_string(), "2.1.0");
        assert_eq!(parse_version("9.1.0-rc.1").unwrap().pre.as_str(), "rc.1");
        for bad in ["2.1", "banana", "", "2.1.0+build.5", "2.4294967296.0", "2147483648.0.0"] {
            assert_eq!(parse_version(bad).unwrap_err().status, 422, "{bad:?}");
        }
    }

    #[test]
    fn selectors() {
        let range = |s: &str| match parse_selector(s).unwrap() {
            Selector::Range(req) => req,
            other => panic!("{s} gave {other:?}"),
        };
        let v = |s: &str| Version::parse(s).unwrap();
        assert_eq!(parse_selector("v2.27.1").unwrap(), Selector::Exact(v("2.27.1")));
        assert_eq!(parse_selector("latest").unwrap(), Selector::Latest);
        assert!(range("2.27").matches(&v("2.27.9")));
        assert!(!range("2.27").matches(&v("2.28.0")));
        assert!(range("v2").matches(&v("2.99.0")));
        assert!(!range("2").matches(&v("3.0.0")));
        assert!(range("~2.27.1").matches(&v("2.27.4")));
        assert!(!range("~2.27.1").matches(&v("2.27.0")));
        assert!(range("~2.27").matches(&v("2.27.0")));
        assert!(range("^2").matches(&v("2.3.0")));
        assert!(!range("^2").matches(&v("3.0.0")));
        assert!(range(">=2.1, <2.5").matches(&v("2.4.0")));
        for bad in ["banana", "2.x.y.z", "~", ""] {
            assert_eq!(parse_selector(bad).unwrap_err().status, 422, "{bad:?}");
        }
    }
}
