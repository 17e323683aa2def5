//! Slow hashes for secrets: argon2id for everything we hash; bcrypt (`$2a$`, `$2b$`, `$2y$`) from
//! migrated data still verifies. Both are CPU-bound: call them off the async workers.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng};
use argon2::{Algorithm, Argon2, Params, Version};

/// bcrypt only reads the first 72 bytes; longer secrets are refused rather than truncated.
pub const BCRYPT_MAX_BYTES: usize = 72;

fn argon2() -> Argon2<'static> {
    // OWASP's second argon2id profile: 19 MiB, 2 passes, 1 lane.
    Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters"),
    )
}

/// An argon2id PHC string for `secret`.
pub fn hash(secret: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    argon2().hash_password(secret.as_bytes(), &salt).expect("argon2 hashing with valid parameters").to_string()
}

/// Whether `secret` matches `stored` (argon2 PHC or bcrypt); unknown formats never match. Both
/// libraries compare in constant time.
pub fn verify(secret: &str, stored: &str) -> bool {
    if is_bcrypt(stored) {
        return bcrypt::verify(secret, stored).unwrap_or(false);
    }
    match PasswordHash::new(stored) {
        Ok(parsed) => argon2().verify_password(secret.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// Spends the time of one verification, so that an unknown user costs what a wrong password does.
pub fn verify_dummy(secret: &str) {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let stored = DUMMY.get_or_init(|| hash("meridian-timing-equaliser"));
    let _ = verify(secret, stored);
}

pub fn is_bcrypt(value: &str) -> bool {
    let b = value.as_bytes();
    value.len() == 60 && b.starts_with(b"$2") && matches!(b[2], b'a' | b'b' | b'y') && b[3] == b'$'
}

/// Whether a stored value is a hash this module can verify.
pub fn is_hash(value: &str) -> bool {
    is_bcrypt(value) || value.starts_with("$argon2")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2_round_trip() {
        let stored = hash("correct horse");
        assert!(stored.starts_with("$argon2id$"));
        assert!(verify("correct horse", &stored));
        assert!(!verify("wrong horse", &stored));
        assert_ne!(stored, hash("correct horse"), "salted");
    }

    #[test]
    fn bcrypt_from_migrated_data_verifies() {
        let stored = bcrypt::hash("gnusolidario", 4).unwrap();
        assert!(is_bcrypt(&stored));
        assert!(verify("gnusolidario", &stored));
        assert!(!verify("freedom", &stored));
        let y = stored.replacen("$2b$", "$2y$", 1);
        assert!(verify("gnusolidario", &y));
    }

    #[test]
    fn garbage_never_matches() {
        assert!(!verify("", ""));
        assert!(!verify("x", "plaintext"));
        assert!(!is_hash("plaintext"));
    }
}
