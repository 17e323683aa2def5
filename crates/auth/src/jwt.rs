//! JWTs: issued and verified with the algorithm pinned by configuration.
//!
//! RS256 when key files are configured (each key named by a `kid`; a previous public key may stay
//! active for verification during rotation), HS256 or HS512 with a shared secret otherwise. `exp`,
//! `iss` and `aud` are always checked; a token with another `alg` (including `none`) is refused.

use std::collections::HashMap;
use std::fs;
use std::sync::Arc;

use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, dev::Payload};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, decode_header, encode, jwk};
use meridian_platform::ApiError;
use meridian_platform::config::{JwtConfig, JwtKeyConfig};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {message}")]
    File { path: String, message: String },
}

/// Signing and verification keys, built once from configuration.
#[derive(Clone)]
pub struct JwtKeys {
    inner: Arc<Inner>,
}

struct Inner {
    algorithm: Algorithm,
    issuer: String,
    audience: String,
    /// The key new tokens are signed with, and its kid.
    signing: Option<(String, EncodingKey)>,
    /// Every key a token may be verified with, by kid.
    verifying: HashMap<String, DecodingKey>,
    jwks: jwk::JwkSet,
}

fn read(path: &std::path::Path) -> Result<Vec<u8>, KeyError> {
    fs::read(path).map_err(|e| KeyError::File { path: path.display().to_string(), message: e.to_string() })
}

fn bad_key(path: &std::path::Path, e: &jsonwebtoken::errors::Error) -> KeyError {
    KeyError::File { path: path.display().to_string(), message: format!("not a usable RSA PEM key: {e}") }
}

/// The JWK of an RSA public key in PEM (SubjectPublicKeyInfo).
fn public_jwk(pem: &[u8], kid: String) -> Result<jwk::Jwk, String> {
    use base64::Engine;
    use x509_parser::prelude::FromDer;
    use x509_parser::public_key::PublicKey;
    let (_, block) = x509_parser::pem::parse_x509_pem(pem).map_err(|e| format!("not PEM: {e}"))?;
    let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(&block.contents)
        .map_err(|e| format!("not a public key: {e}"))?;
    let PublicKey::RSA(rsa) = spki.parsed().map_err(|e| format!("unreadable public key: {e}"))? else {
        return Err("not an RSA public key".to_owned());
    };
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let unsigned = |bytes: &[u8]| {
        let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len().saturating_sub(1));
        b64.encode(&bytes[start..])
    };
    Ok(jwk::Jwk {
        common: jwk::CommonParameters {
            public_key_use: Some(jwk::PublicKeyUse::Signature),
            key_algorithm: Some(jwk::KeyAlgorithm::RS256),
            key_id: Some(kid),
            ..jwk::CommonParameters::default()
        },
        algorithm: jwk::AlgorithmParameters::RSA(jwk::RSAKeyParameters {
            key_type: jwk::RSAKeyType::RSA,
            n: unsigned(rsa.modulus),
            e: unsigned(rsa.exponent),
        }),
    })
}

/// A key id derived from the public key, so every replica names a key the same way.
fn kid_of(public_pem: &[u8]) -> String {
    hex::encode(&Sha256::digest(public_pem)[..8])
}

impl JwtKeys {
    pub fn from_config(config: &JwtConfig) -> Result<Self, KeyError> {
        Self::build(config, None)
    }

    /// Like `from_config`, with a previous public key still accepted (key rotation).
    pub fn with_previous_key(config: &JwtConfig, previous_public_key: &std::path::Path) -> Result<Self, KeyError> {
        Self::build(config, Some(previous_public_key))
    }

    fn build(config: &JwtConfig, previous: Option<&std::path::Path>) -> Result<Self, KeyError> {
        let mut verifying = HashMap::new();
        let mut jwks = jwk::JwkSet { keys: Vec::new() };
        let (algorithm, signing) = match &config.keys {
            JwtKeyConfig::Secret { secret, hs512 } => {
                let algorithm = if *hs512 { Algorithm::HS512 } else { Algorithm::HS256 };
                let kid = "hmac".to_owned();
                verifying.insert(kid.clone(), DecodingKey::from_secret(secret.expose().as_bytes()));
                (algorithm, Some((kid, EncodingKey::from_secret(secret.expose().as_bytes()))))
            }
            JwtKeyConfig::Rsa { private_key_file, public_key_file } => {
                let public = read(public_key_file)?;
                let kid = kid_of(&public);
                verifying
                    .insert(kid.clone(), DecodingKey::from_rsa_pem(&public).map_err(|e| bad_key(public_key_file, &e))?);
                let signing = match private_key_file {
                    Some(path) => {
                        let key = EncodingKey::from_rsa_pem(&read(path)?).map_err(|e| bad_key(path, &e))?;
                        let mut public_jwk =
                            jwk::Jwk::from_encoding_key(&key, Algorithm::RS256).map_err(|e| bad_key(path, &e))?;
                        public_jwk.common.key_id = Some(kid.clone());
                        jwks.keys.push(public_jwk);
                        Some((kid, key))
                    }
                    None => None,
                };
                if let Some(path) = previous {
                    let pem = read(path)?;
                    let previous_kid = kid_of(&pem);
                    verifying
                        .insert(previous_kid.clone(), DecodingKey::from_rsa_pem(&pem).map_err(|e| bad_key(path, &e))?);
                    // Published too, so other verifiers keep accepting tokens signed before the rotation.
                    jwks.keys.push(
                        public_jwk(&pem, previous_kid)
                            .map_err(|message| KeyError::File { path: path.display().to_string(), message })?,
                    );
                }
                (Algorithm::RS256, signing)
            }
        };
        Ok(JwtKeys {
            inner: Arc::new(Inner {
                algorithm,
                issuer: config.issuer.clone(),
                audience: config.audience.clone(),
                signing,
                verifying,
                jwks,
            }),
        })
    }

    pub fn algorithm(&self) -> Algorithm {
        self.inner.algorithm
    }

    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    pub fn audience(&self) -> &str {
        &self.inner.audience
    }

    /// The public signing keys as a JWK set (empty with a shared secret, which is never published).
    pub fn jwks(&self) -> &jwk::JwkSet {
        &self.inner.jwks
    }

    /// Signs `claims`, which must carry `exp` (and normally `iss`, `aud`, `iat`).
    pub fn issue<C: Serialize>(&self, claims: &C) -> Result<String, ApiError> {
        let (kid, key) =
            self.inner.signing.as_ref().ok_or_else(|| ApiError::internal("no JWT signing key is configured"))?;
        let mut header = Header::new(self.inner.algorithm);
        header.kid = Some(kid.clone());
        encode(&header, claims, key).map_err(ApiError::internal)
    }

    /// Verifies signature, algorithm, `exp`, `iss` and `aud`, and decodes the claims. Every refusal
    /// is a 403 (the caller presented a token, it is just not good).
    pub fn verify<C: DeserializeOwned>(&self, token: &str) -> Result<C, ApiError> {
        let refused = |why: &str| ApiError::forbidden(format!("the token is not valid: {why}"));
        let header = decode_header(token).map_err(|_| refused("malformed"))?;
        if header.alg != self.inner.algorithm {
            return Err(refused("signed with an algorithm this service does not accept"));
        }
        let key = match header.kid.as_deref() {
            Some(kid) => self.inner.verifying.get(kid).ok_or_else(|| refused("signed with an unknown key"))?,
            None if self.inner.verifying.len() == 1 => self.inner.verifying.values().next().expect("one key"),
            None => return Err(refused("no key id")),
        };
        let mut validation = Validation::new(self.inner.algorithm);
        validation.set_issuer(&[&self.inner.issuer]);
        validation.set_audience(&[&self.inner.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = 30;
        decode::<C>(token, key, &validation).map(|data| data.claims).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            match e.kind() {
                ErrorKind::ExpiredSignature => refused("expired"),
                ErrorKind::InvalidIssuer => refused("wrong issuer"),
                ErrorKind::InvalidAudience => refused("wrong audience"),
                ErrorKind::InvalidSignature => refused("bad signature"),
                ErrorKind::MissingRequiredClaim(claim) => refused(&format!("missing {claim}")),
                _ => refused("unreadable claims"),
            }
        })
    }
}

/// Whether a space-separated scope string grants `needed`.
pub fn has_scope(scopes: &str, needed: &str) -> bool {
    scopes.split_whitespace().any(|s| s == needed)
}

/// The raw bearer token of a request; missing or not a bearer token -> 401.
#[derive(Clone)]
pub struct BearerToken(pub String);

impl FromRequest for BearerToken {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().split_once(' '))
            .filter(|(scheme, token)| scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty())
            .map(|(_, token)| BearerToken(token.trim().to_owned()));
        std::future::ready(
            token.ok_or_else(|| ApiError::unauthorized("a bearer token is required").with_challenge("Bearer")),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meridian_platform::config::Secret;
    use serde::Deserialize;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Claims {
        iss: String,
        aud: String,
        exp: i64,
        scope: String,
    }

    fn config(secret: &str) -> JwtConfig {
        JwtConfig {
            keys: JwtKeyConfig::Secret { secret: Secret::new(secret), hs512: false },
            issuer: "meridian".into(),
            audience: "meridian-messaging".into(),
        }
    }

    fn claims(exp_offset: i64) -> Claims {
        Claims {
            iss: "meridian".into(),
            aud: "meridian-messaging".into(),
            exp: chrono::Utc::now().timestamp() + exp_offset,
            scope: "read:gdm_message write:gdm_message".into(),
        }
    }

    fn keys() -> JwtKeys {
        JwtKeys::from_config(&config("a-test-secret-that-is-long-enough-000")).unwrap()
    }

    #[test]
    fn round_trip() {
        let keys = keys();
        let token = keys.issue(&claims(60)).unwrap();
        assert_eq!(keys.verify::<Claims>(&token).unwrap(), claims(60));
    }

    #[test]
    fn expired_tokens_are_refused() {
        let keys = keys();
        let token = keys.issue(&claims(-3600)).unwrap();
        assert!(keys.verify::<Claims>(&token).unwrap_err().detail.contains("expired"));
    }

    #[test]
    fn wrong_audience_and_issuer_are_refused() {
        let keys = keys();
        let mut c = claims(60);
        c.aud = "someone-else".into();
        assert!(keys.verify::<Claims>(&keys.issue(&c).unwrap()).unwrap_err().detail.contains("audience"));
        let mut c = claims(60);
        c.iss = "evil".into();
        assert!(keys.verify::<Claims>(&keys.issue(&c).unwrap()).unwrap_err().detail.contains("issuer"));
    }

    #[test]
    fn other_secret_is_a_bad_signature() {
        let other = JwtKeys::from_config(&config("another-secret-entirely-000000000000")).unwrap();
        let token = other.issue(&claims(60)).unwrap();
        assert_eq!(keys().verify::<Claims>(&token).unwrap_err().status, 403);
    }

    #[test]
    fn alg_none_and_other_algorithms_are_refused() {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let body = b64.encode(serde_json::to_vec(&claims(60)).unwrap());
        let none = format!("{}.{body}.", b64.encode(br#"{"alg":"none","typ":"JWT"}"#));
        let err = keys().verify::<Claims>(&none).unwrap_err();
        assert_eq!(err.status, 403);

        let hs512 = JwtKeys::from_config(&JwtConfig {
            keys: JwtKeyConfig::Secret { secret: Secret::new("a-test-secret-that-is-long-enough-000"), hs512: true },
            ..config("")
        })
        .unwrap();
        let token = hs512.issue(&claims(60)).unwrap();
        assert!(keys().verify::<Claims>(&token).unwrap_err().detail.contains("algorithm"));
    }

    #[test]
    fn missing_exp_is_refused() {
        #[derive(Serialize)]
        struct NoExp {
            iss: &'static str,
            aud: &'static str,
        }
        let keys = keys();
        let token = keys.issue(&NoExp { iss: "meridian", aud: "meridian-messaging" }).unwrap();
        assert_eq!(keys.verify::<Claims>(&token).unwrap_err().status, 403);
    }

    #[test]
    fn garbage_is_refused() {
        assert_eq!(keys().verify::<Claims>("not.a.token").unwrap_err().status, 403);
    }

    #[test]
    fn scopes() {
        assert!(has_scope("read:a write:b", "write:b"));
        assert!(!has_scope("read:a write:bc", "write:b"));
    }
}
