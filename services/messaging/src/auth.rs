//! Tokens: the claims Meridian shares with the Polaris references, issuing them, and the `Caller`
//! extractor that every protected route takes.

use std::future::{Ready, ready};
use std::time::Duration;

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use meridian_auth::JwtKeys;
use meridian_auth::jwt::{BearerToken, has_scope};
use meridian_platform::{ApiError, ApiResult};
use serde::{Deserialize, Serialize};

use crate::state::State;

/// Scopes, as constants so a typo is a compile error.
pub mod scope {
    pub const READ_MESSAGE: &str = "read:gdm_message";
    pub const READ_MESSAGE_ALL: &str = "read:gdm_message_all";
    pub const READ_ANY_MESSAGE_ALL: &str = "read:message_all";
    pub const WRITE_MESSAGE: &str = "write:gdm_message";
    pub const WRITE_MESSAGE_ALL: &str = "write:gdm_message_all";
    pub const READ_ACTIVATION: &str = "read:gdm_activation";
    pub const WRITE_ACTIVATION: &str = "write:gdm_activation";
    pub const READ_DEVICE: &str = "read:send_device";
    pub const WRITE_DEVICE: &str = "write:send_device";
    pub const WRITE_CLINICIAN: &str = "write:send_clinician";
    pub const READ_ENTRY_IDENTIFIER: &str = "read:send_entry_identifier";
}

/// Who the token speaks for. Exactly one identity is present.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Metadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clinician_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referring_device_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locations: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    #[serde(default)]
    pub scope: String,
    pub metadata: Metadata,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallerKind {
    Patient,
    Clinician,
    Device,
    System,
}

/// The verified caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub kind: CallerKind,
    /// The patient, clinician, device or system id.
    pub id: String,
    pub scopes: String,
    pub locations: Vec<String>,
    pub referring_device_id: Option<String>,
}

impl Caller {
    pub fn from_claims(claims: Claims) -> ApiResult<Caller> {
        let m = claims.metadata;
        let ids = [
            (CallerKind::Patient, m.patient_id),
            (CallerKind::Clinician, m.clinician_id),
            (CallerKind::Device, m.device_id),
            (CallerKind::System, m.system_id),
        ];
        let mut present = ids.into_iter().filter_map(|(kind, id)| id.filter(|i| !i.is_empty()).map(|i| (kind, i)));
        let (kind, id) =
            present.next().ok_or_else(|| ApiError::forbidden("the token is not valid: metadata names no caller"))?;
        if present.next().is_some() {
            return Err(ApiError::forbidden("the token is not valid: metadata names more than one caller"));
        }
        Ok(Caller {
            kind,
            id,
            scopes: claims.scope,
            locations: m.locations.unwrap_or_default(),
            referring_device_id: m.referring_device_id,
        })
    }

    pub fn has(&self, needed: &str) -> bool {
        has_scope(&self.scopes, needed)
    }

    /// 403 unless the token grants at least one of `any`.
    pub fn require(&self, any: &[&str]) -> ApiResult<()> {
        if any.iter().any(|s| self.has(s)) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!("the token lacks the scope {}", any.join(" or ")))
                .with_code("MissingScope"))
        }
    }

    /// The party ids whose messages this caller may see, or `None` for everything.
    pub fn visible_parties(&self) -> Option<Vec<String>> {
        if self.kind == CallerKind::System || self.has(scope::READ_MESSAGE_ALL) || self.has(scope::READ_ANY_MESSAGE_ALL)
        {
            return None;
        }
        Some(self.own_parties())
    }

    /// The parties this caller is or acts for: itself (patients, clinicians) and its locations.
    pub fn own_parties(&self) -> Vec<String> {
        let mut parties = Vec::with_capacity(1 + self.locations.len());
        if matches!(self.kind, CallerKind::Patient | CallerKind::Clinician) {
            parties.push(self.id.clone());
        }
        parties.extend(self.locations.iter().cloned());
        parties
    }

    /// A stable key for this caller (idempotency records, audit).
    pub fn key(&self) -> String {
        let kind = match self.kind {
            CallerKind::Patient => "patient",
            CallerKind::Clinician => "clinician",
            CallerKind::Device => "device",
            CallerKind::System => "system",
        };
        format!("{kind}:{}", self.id)
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let result = (|| {
            let token = BearerToken::from_request(req, payload).into_inner()?;
            let state = req
                .app_data::<web::Data<State>>()
                .ok_or_else(|| ApiError::internal("messaging state is not configured"))?;
            let claims: Claims = state.keys.verify(&token.0)?;
            Caller::from_claims(claims)
        })();
        ready(result)
    }
}

/// Signs a token for `metadata` with `scope`, valid for `ttl`.
pub fn issue(keys: &JwtKeys, metadata: Metadata, scope: &str, ttl: Duration) -> ApiResult<String> {
    let now = chrono::Utc::now().timestamp();
    let claims = Claims {
        iss: keys.issuer().to_owned(),
        aud: keys.audience().to_owned(),
        iat: now,
        exp: now + i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2),
        scope: scope.to_owned(),
        metadata,
    };
    keys.issue(&claims)
}

pub fn system_token(keys: &JwtKeys, system_id: &str, scope: &str, ttl: Duration) -> ApiResult<String> {
    issue(keys, Metadata { system_id: Some(system_id.to_owned()), ..Metadata::default() }, scope, ttl)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(metadata: Metadata) -> Claims {
        Claims { iss: "i".into(), aud: "a".into(), exp: 0, iat: 0, scope: "read:gdm_message".into(), metadata }
    }

    #[test]
    fn exactly_one_identity() {
        assert!(Caller::from_claims(claims(Metadata::default())).is_err());
        let two = Metadata { patient_id: Some("p".into()), system_id: Some("s".into()), ..Metadata::default() };
        assert_eq!(Caller::from_claims(claims(two)).unwrap_err().status, 403);
        let one = Metadata { device_id: Some("d".into()), locations: Some(vec!["L".into()]), ..Metadata::default() };
        let caller = Caller::from_claims(claims(one)).unwrap();
        assert_eq!(caller.kind, CallerKind::Device);
        assert_eq!(caller.visible_parties(), Some(vec!["L".to_owned()]));
    }

    #[test]
    fn system_and_all_scopes_see_everything() {
        let system = Caller::from_claims(claims(Metadata { system_id: Some("s".into()), ..Metadata::default() }));
        assert_eq!(system.unwrap().visible_parties(), None);
        let mut c = claims(Metadata { clinician_id: Some("c".into()), ..Metadata::default() });
        c.scope = "read:gdm_message_all".into();
        assert_eq!(Caller::from_claims(c).unwrap().visible_parties(), None);
    }
}
