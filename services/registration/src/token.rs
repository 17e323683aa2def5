//! Unsubscribe tokens: the registration id and an HMAC-SHA256 over it, base64url.
//!
//! A token names exactly one registration and cannot be made without the key, so it can neither
//! be forged nor edited to point at another address. It does not expire: an old email's link keeps
//! working, and using it twice changes nothing.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

type HmacSha256 = Hmac<Sha256>;

/// Separates these MACs from any other use of the same key.
const PURPOSE: &[u8] = b"meridian/registration/unsubscribe/v1\0";
const TAG_BYTES: usize = 32;

fn mac(key: &[u8], id: Uuid) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(PURPOSE);
    mac.update(id.as_bytes());
    mac
}

pub fn sign(key: &[u8], id: Uuid) -> String {
    let mut bytes = id.as_bytes().to_vec();
    bytes.extend_from_slice(&mac(key, id).finalize().into_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The registration a token names, when its MAC is right (compared in constant time).
pub fn verify(key: &[u8], token: &str) -> Option<Uuid> {
    let bytes = URL_SAFE_NO_PAD.decode(token.trim()).ok()?;
    if bytes.len() != 16 + TAG_BYTES {
        return None;
    }
    let id = Uuid::from_slice(&bytes[..16]).ok()?;
    mac(key, id).verify_slice(&bytes[16..]).ok()?;
    Some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let key = b"k".repeat(32);
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let token = sign(&key, a);
        assert_eq!(verify(&key, &token), Some(a));
        assert_eq!(verify(b"another key entirely, 32 bytes..", &token), None, "key matters");
        // Another id with this token's tag: refused.
        let mut bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        bytes[..16].copy_from_slice(b.as_bytes());
        assert_eq!(verify(&key, &URL_SAFE_NO_PAD.encode(&bytes)), None);
        // A flipped tag bit: refused.
        let mut bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        bytes[40] ^= 1;
        assert_eq!(verify(&key, &URL_SAFE_NO_PAD.encode(&bytes)), None);
        for junk in ["", "abc", "!!!!", &token[..token.len() - 2]] {
            assert_eq!(verify(&key, junk), None, "{junk:?}");
        }
    }
}
