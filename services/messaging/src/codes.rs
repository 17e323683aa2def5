//! PINs, activation codes and authorisation codes.
//!
//! Activation codes and PINs are derived from a server secret (`MESSAGING_CODE_SECRET`) and the
//! activation's id, so a repeated request can hand the same code out again without the database
//! ever holding it: the database stores only a SHA-256 lookup key and an argon2id hash.
//! Authorisation codes are random. Everything a person types is case-insensitive.

use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// 31 symbols without look-alikes (no 0/O, 1/I/L). A byte's low five bits pick one; the 32nd value
/// is rejected, so every symbol is equally likely.
pub const ALPHABET: &[u8; 31] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";

pub const PIN_LENGTH: usize = 4;
pub const ACTIVATION_CODE_LENGTH: usize = 30;
pub const DEVICE_CODE_LENGTH: usize = 10;
pub const AUTHORISATION_CODE_LENGTH: usize = 32;

fn symbol(byte: u8) -> Option<char> {
    ALPHABET.get(usize::from(byte & 31)).map(|b| char::from(*b))
}

/// A code of `len` symbols derived from `secret`, `purpose`, `id` and `serial`.
pub fn derive(secret: &str, purpose: &str, id: Uuid, serial: i32, len: usize) -> String {
    let mut out = String::with_capacity(len);
    let mut block = 0u32;
    while out.len() < len {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
        mac.update(purpose.as_bytes());
        mac.update(id.as_bytes());
        mac.update(&serial.to_be_bytes());
        mac.update(&block.to_be_bytes());
        for byte in mac.finalize().into_bytes() {
            if out.len() == len {
                break;
            }
            if let Some(c) = symbol(byte) {
                out.push(c);
            }
        }
        block += 1;
    }
    out
}

/// A random code of `len` symbols.
pub fn random(len: usize) -> String {
    let mut rng = rand::rng();
    let mut out = String::with_capacity(len);
    while out.len() < len {
        if let Some(c) = symbol(rng.random::<u8>()) {
            out.push(c);
        }
    }
    out
}

/// What a person typed, in the form codes are hashed in.
pub fn normalise(code: &str) -> String {
    code.trim().to_ascii_uppercase()
}

/// The SHA-256 lookup key of a (normalised) code.
pub fn lookup(code: &str) -> String {
    hex::encode(Sha256::digest(normalise(code).as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_codes_are_stable_and_use_the_alphabet() {
        let id = Uuid::new_v4();
        let a = derive("s", "code", id, 0, ACTIVATION_CODE_LENGTH);
        assert_eq!(a, derive("s", "code", id, 0, ACTIVATION_CODE_LENGTH));
        assert_ne!(a, derive("s", "code", id, 1, ACTIVATION_CODE_LENGTH));
        assert_ne!(a, derive("t", "code", id, 0, ACTIVATION_CODE_LENGTH));
        assert_eq!(a.len(), ACTIVATION_CODE_LENGTH);
        for c in a.chars().chain(random(200).chars()) {
            assert!(ALPHABET.contains(&(c as u8)), "{c}");
            assert!(!"0O1IL".contains(c));
        }
    }

    #[test]
    fn lookups_ignore_case_and_spaces() {
        assert_eq!(lookup(" ab2c "), lookup("AB2C"));
        assert_ne!(lookup("AB2C"), lookup("AB2D"));
    }
}
