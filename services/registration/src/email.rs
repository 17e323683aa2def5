//! Email address validation and normalisation.
//!
//! Accepted: `local@domain` where the local part is an RFC 5322 dot-atom (no quoted strings, no
//! comments) of at most 64 octets and the domain is a host name of at least two labels (letters,
//! digits, hyphens; each label 1 to 63 octets, not starting or ending with a hyphen, the last one
//! not all digits), at most 254 octets in all (RFC 5321's path limit). ASCII only: internationalised
//! addresses (RFC 6531) are refused rather than half-supported.
//!
//! Normalised: surrounding white space removed, the domain in lower case. The local part keeps its
//! case (it is the receiving server's business), but uniqueness is case-insensitive in the database.

pub const MAX_ADDRESS: usize = 254;
pub const MAX_LOCAL: usize = 64;
pub const MAX_LABEL: usize = 63;

/// Why an address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidEmail {
    #[error("an email address is required")]
    Missing,
    #[error("the address is longer than {MAX_ADDRESS} characters")]
    TooLong,
    #[error("the address must have the form name@domain")]
    Shape,
    #[error("the part before @ is not valid (letters, digits and !#$%&'*+/=?^_`{{|}}~.- only, at most {MAX_LOCAL})")]
    Local,
    #[error("the domain is not a valid host name with a top-level domain")]
    Domain,
}

fn atext(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+/=?^_`{|}~-".contains(&c)
}

fn valid_local(local: &str) -> bool {
    !local.is_empty()
        && local.len() <= MAX_LOCAL
        && local.split('.').all(|atom| !atom.is_empty() && atom.bytes().all(atext))
}

fn valid_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && domain.len() <= 253
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= MAX_LABEL
                && label.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
        && labels.last().is_some_and(|tld| tld.len() >= 2 && !tld.bytes().all(|c| c.is_ascii_digit()))
}

/// Validates `raw` and returns the normalised address.
pub fn normalise(raw: &str) -> Result<String, InvalidEmail> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(InvalidEmail::Missing);
    }
    if trimmed.len() > MAX_ADDRESS {
        return Err(InvalidEmail::TooLong);
    }
    let (local, domain) = trimmed.rsplit_once('@').ok_or(InvalidEmail::Shape)?;
    if local.is_empty() || domain.is_empty() {
        return Err(InvalidEmail::Shape);
    }
    if !valid_local(local) {
        return Err(InvalidEmail::Local);
    }
    let domain = domain.to_ascii_lowercase();
    if !valid_domain(&domain) {
        return Err(InvalidEmail::Domain);
    }
    Ok(format!("{local}@{domain}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_normalises() {
        assert_eq!(normalise("  Ana.Perez@Example.ORG ").unwrap(), "Ana.Perez@example.org");
        assert_eq!(normalise("a+tag@sub.example.co").unwrap(), "a+tag@sub.example.co");
        assert_eq!(normalise("o'neil@xn--bcher-kva.example").unwrap(), "o'neil@xn--bcher-kva.example");
    }

    #[test]
    fn refuses_bad_addresses() {
        for bad in [
            "",
            "   ",
            "plain",
            "@example.org",
            "a@",
            "a@b@example.org",
            "a..b@example.org",
            ".a@example.org",
            "a.@example.org",
            "a b@example.org",
            "\"quoted\"@example.org",
            "a@localhost",
            "a@example",
            "a@-example.org",
            "a@example-.org",
            "a@exa_mple.org",
            "a@example.123",
            "a@example..org",
            "a@example.org.",
            "<a@example.org>",
            "a@example.org\r\nBcc: x@example.org",
            "ñ@example.org",
            "a@exámple.org",
        ] {
            assert!(normalise(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn lengths_are_bounded() {
        let local = "a".repeat(MAX_LOCAL);
        assert!(normalise(&format!("{local}@example.org")).is_ok());
        assert_eq!(normalise(&format!("{local}a@example.org")), Err(InvalidEmail::Local));
        let label = "b".repeat(MAX_LABEL);
        assert!(normalise(&format!("a@{label}.org")).is_ok());
        assert_eq!(normalise(&format!("a@{label}b.org")), Err(InvalidEmail::Domain));
        let long = format!("a@{}.org", vec!["c".repeat(60); 5].join("."));
        assert_eq!(normalise(&long), Err(InvalidEmail::TooLong));
    }
}
