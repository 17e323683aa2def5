//! Client certificates and the devices they identify.
//!
//! The certificate comes from the `mtls-certificate` header (or `ssl-client-cert` when that one is
//! absent), PEM, optionally URL-encoded, and only when `TRUST_CERT_HEADER=true` (the proxy in
//! front strips the header from clients); or from the TLS connection itself when the service
//! terminates mutual TLS. The device's identity is the certificate's public key.

use std::future::Future;
use std::pin::Pin;

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use meridian_model::DeviceRole;
use meridian_platform::net::client_ip;
use meridian_platform::{ApiError, Platform};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::devices::{self, DeviceRecord};

pub const CERT_HEADERS: [&str; 2] = ["mtls-certificate", "ssl-client-cert"];

pub use meridian_platform::tls::PeerCertificate;

/// A client certificate reduced to what identifies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertificate {
    /// The DER SubjectPublicKeyInfo.
    pub public_key: Vec<u8>,
    /// SHA-256 of `public_key`, lower-case hex.
    pub fingerprint: String,
}

impl ClientCertificate {
    /// From DER certificate bytes.
    pub fn from_der(der: &[u8]) -> Result<Self, ApiError> {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|_| ApiError::bad_request("the client certificate is not a valid X.509 certificate"))?;
        let public_key = cert.public_key().raw.to_vec();
        Ok(ClientCertificate { fingerprint: fingerprint(&public_key), public_key })
    }

    /// From a header value: a PEM certificate, URL-encoded or not.
    pub fn from_header(value: &str) -> Result<Self, ApiError> {
        let decoded = if value.contains('%') {
            percent_encoding::percent_decode_str(value)
                .decode_utf8()
                .map_err(|_| ApiError::bad_request("the client certificate header is not valid URL-encoded UTF-8"))?
                .into_owned()
        } else {
            value.to_owned()
        };
        // Some proxies fold the PEM onto one line with spaces or tabs where newlines were.
        let pem = normalise_pem(&decoded);
        let (_, parsed) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
            .map_err(|_| ApiError::bad_request("the client certificate header does not hold a PEM certificate"))?;
        if parsed.label != "CERTIFICATE" {
            return Err(ApiError::bad_request(
                "the client certificate header holds a PEM block that is not a certificate",
            ));
        }
        Self::from_der(&parsed.contents)
    }

    /// The certificate presented with `req`, if any, honouring the header only when trusted.
    pub fn from_request(req: &HttpRequest, trust_header: bool) -> Result<Option<Self>, ApiError> {
        if let Some(peer) = req.conn_data::<PeerCertificate>() {
            return Self::from_der(&peer.0).map(Some);
        }
        if !trust_header {
            return Ok(None);
        }
        let header = CERT_HEADERS.iter().find_map(|name| req.headers().get(*name)).filter(|v| !v.is_empty());
        match header {
            None => Ok(None),
            Some(value) => {
                let text =
                    value.to_str().map_err(|_| ApiError::bad_request("the client certificate header is not text"))?;
                Self::from_header(text).map(Some)
            }
        }
    }
}

fn normalise_pem(text: &str) -> String {
    let text = text.trim();
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    match (text.find(BEGIN), text.find(END)) {
        (Some(b), Some(e)) if b < e => {
            let body: String = text[b + BEGIN.len()..e].split_whitespace().collect::<Vec<_>>().join("\n");
            format!("{BEGIN}\n{body}\n{END}\n")
        }
        _ => text.to_owned(),
    }
}

/// SHA-256 of a public key, lower-case hex: how operators name a device.
pub fn fingerprint(public_key: &[u8]) -> String {
    hex::encode(Sha256::digest(public_key))
}

/// An authenticated device with a role above `untrusted`.
///
/// Extracting it: no certificate -> 401; unparseable -> 400; first contact records the device as
/// `untrusted` and answers 403, as does any untrusted device. Every authenticated request records a
/// connection (time, client address, user agent).
#[derive(Debug, Clone)]
pub struct Device {
    pub id: Uuid,
    pub role: DeviceRole,
    pub fingerprint: String,
}

impl Device {
    /// 403 unless this device may act as `role` (admin may act as anything).
    pub fn require(&self, role: DeviceRole) -> Result<(), ApiError> {
        if self.role.satisfies(role) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!("this needs the {role} role; this device is {}", self.role)))
        }
    }

    /// 403 unless this device may act as one of `roles`.
    pub fn require_any(&self, roles: &[DeviceRole]) -> Result<(), ApiError> {
        if roles.iter().any(|r| self.role.satisfies(*r)) {
            Ok(())
        } else {
            let names: Vec<_> = roles.iter().map(|r| r.as_str()).collect();
            Err(ApiError::forbidden(format!(
                "this needs one of the roles {}; this device is {}",
                names.join(", "),
                self.role
            )))
        }
    }

    pub fn is_admin(&self) -> bool {
        self.role == DeviceRole::Admin
    }
}

impl From<DeviceRecord> for Device {
    fn from(record: DeviceRecord) -> Self {
        Device { id: record.id, role: record.role(), fingerprint: record.fingerprint }
    }
}

impl FromRequest for Device {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let platform = req
                .app_data::<web::Data<Platform>>()
                .ok_or_else(|| ApiError::internal("Device extractor used outside a platform App"))?
                .clone();
            let cert = ClientCertificate::from_request(&req, platform.config.trust_cert_header)?
                .ok_or_else(|| ApiError::unauthorized("a client certificate is required"))?;
            let ip = client_ip(&req, &platform.config.trusted_proxies).map(|ip| ip.to_string());
            let user_agent = req
                .headers()
                .get(actix_web::http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(|ua| ua.chars().take(512).collect::<String>());
            let record = platform.db.run(move |conn| devices::authenticate(conn, &cert, ip, user_agent)).await?;
            let device = Device::from(record);
            if device.role == DeviceRole::Untrusted {
                log::info!("untrusted device {} ({}) was refused", device.id, device.fingerprint);
                return Err(ApiError::forbidden(format!(
                    "device {} is not trusted yet; an administrator must approve key {}",
                    device.id, device.fingerprint
                )));
            }
            Ok(device)
        })
    }
}

/// Like [`Device`], but a request without a certificate yields `None` instead of 401.
pub struct OptionalDevice(pub Option<Device>);

impl FromRequest for OptionalDevice {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let trust = req.app_data::<web::Data<Platform>>().is_some_and(|p| p.config.trust_cert_header);
        let present = req.conn_data::<PeerCertificate>().is_some()
            || (trust && CERT_HEADERS.iter().any(|h| req.headers().get(*h).is_some_and(|v| !v.is_empty())));
        if !present {
            return Box::pin(async { Ok(OptionalDevice(None)) });
        }
        let device = Device::from_request(req, payload);
        Box::pin(async move { device.await.map(|d| OptionalDevice(Some(d))) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn make_cert() -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        rcgen::CertificateParams::new(vec!["device.test".into()]).unwrap().self_signed(&key).unwrap().pem()
    }

    #[test]
    fn plain_and_url_encoded_pem_identify_the_same_key() {
        let pem = make_cert();
        let plain = ClientCertificate::from_header(&pem).unwrap();
        let encoded: String =
            percent_encoding::utf8_percent_encode(&pem, percent_encoding::NON_ALPHANUMERIC).to_string();
        assert_eq!(ClientCertificate::from_header(&encoded).unwrap(), plain);
        let folded = pem.replace('\n', " ");
        assert_eq!(ClientCertificate::from_header(&folded).unwrap(), plain);
        assert_eq!(plain.fingerprint.len(), 64);
    }

    #[test]
    fn malformed_pem_is_a_bad_request() {
        for bad in ["", "hello", "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n", "%ZZ"] {
            assert_eq!(ClientCertificate::from_header(bad).unwrap_err().status, 400, "{bad:?}");
        }
    }

    #[test]
    fn header_is_ignored_unless_trusted() {
        let pem = make_cert();
        let req = actix_web::test::TestRequest::default()
            .insert_header(("mtls-certificate", pem.replace('\n', " ")))
            .to_http_request();
        assert!(ClientCertificate::from_request(&req, false).unwrap().is_none());
        assert!(ClientCertificate::from_request(&req, true).unwrap().is_some());
        let fallback = actix_web::test::TestRequest::default()
            .insert_header(("ssl-client-cert", pem.replace('\n', "\t")))
            .to_http_request();
        assert!(ClientCertificate::from_request(&fallback, true).unwrap().is_some());
    }
}
