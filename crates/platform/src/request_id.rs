//! Every request gets an id (the caller's `X-Request-Id` when it is sane, else a fresh UUID); it is
//! echoed on the response, printed on every log line written while handling the request, and put
//! in error bodies. The access log line is written here too.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web;

use crate::net::{IpNet, service_client_ip};

pub const HEADER: &str = "x-request-id";

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being handled by this task, if any.
pub fn current() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

fn sane(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

/// Trusted proxies as app data, for the access log and the rate limiter.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(pub Vec<IpNet>);

pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, actix_web::Error> {
    let id = req
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| sane(v))
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), ToOwned::to_owned);
    let started = Instant::now();
    let proxies = req.app_data::<web::Data<TrustedProxies>>().map(|p| p.0.clone()).unwrap_or_default();
    let client = service_client_ip(&req, &proxies).map_or_else(|| "-".to_owned(), |ip| ip.to_string());
    let method = req.method().clone();
    let path = req.path().to_owned();

    REQUEST_ID
        .scope(id.clone(), async move {
            let mut response = next.call(req).await?;
            let status = response.status();
            log::info!(
                target: "access",
                "{client} \"{method} {path}\" {status} {:.1}ms",
                started.elapsed().as_secs_f64() * 1000.0,
                status = status.as_u16()
            );
            if let Ok(value) = HeaderValue::from_str(&id) {
                response.headers_mut().insert(HeaderName::from_static(HEADER), value);
            }
            Ok(response)
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::sane;

    #[test]
    fn only_plain_ids_are_echoed() {
        assert!(sane("3f2a-11_x.y:z"));
        assert!(!sane(""));
        assert!(!sane("a b"));
        assert!(!sane("line\nbreak"));
        assert!(!sane(&"x".repeat(129)));
    }
}
