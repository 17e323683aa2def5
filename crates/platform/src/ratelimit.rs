//! A keyed rate limiter (generic cell rate algorithm): a budget of `count` events per `period`,
//! refilled continuously. It limits requests per client address, and services use the same type to
//! throttle guesses at secrets (record a failure with [`RateLimiter::hit`], test with
//! [`RateLimiter::check`] before trying).

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;

use crate::config::Rate;
use crate::error::ApiError;
use crate::net::service_client_ip;
use crate::request_id::TrustedProxies;

pub struct RateLimiter<K> {
    /// Time between two events at the sustained rate.
    interval: Duration,
    /// How far ahead of now the schedule may run: the burst.
    tolerance: Duration,
    /// Per key: the time at which the key's budget will be full again.
    state: Mutex<HashMap<K, Instant>>,
}

const PRUNE_AT: usize = 100_000;

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    pub fn new(rate: Rate) -> Self {
        let interval = rate.period / rate.count;
        RateLimiter { interval, tolerance: rate.period.saturating_sub(interval), state: Mutex::new(HashMap::new()) }
    }

    /// Spends one event of `key`'s budget, or says how long until one is available.
    pub fn hit(&self, key: &K) -> Result<(), Duration> {
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if state.len() >= PRUNE_AT {
            state.retain(|_, full_at| *full_at > now);
        }
        let full_at = state.get(key).copied().unwrap_or(now).max(now);
        let ahead = full_at - now;
        if ahead > self.tolerance {
            return Err(ahead.saturating_sub(self.tolerance));
        }
        state.insert(key.clone(), full_at + self.interval);
        Ok(())
    }

    /// Whether `key` has budget left, without spending any.
    pub fn check(&self, key: &K) -> Result<(), Duration> {
        let now = Instant::now();
        let state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match state.get(key) {
            Some(full_at) => {
                let ahead = full_at.saturating_duration_since(now);
                if ahead > self.tolerance { Err(ahead.saturating_sub(self.tolerance)) } else { Ok(()) }
            }
            None => Ok(()),
        }
    }

    /// Forgets `key` (after a success, say).
    pub fn reset(&self, key: &K) {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(key);
    }
}

/// The per-client-address request limiter, as app data.
pub type ClientLimiter = RateLimiter<IpAddr>;

pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody + 'static>>, actix_web::Error> {
    if let Some(limiter) = req.app_data::<web::Data<ClientLimiter>>() {
        let proxies = req.app_data::<web::Data<TrustedProxies>>().map(|p| p.0.clone()).unwrap_or_default();
        if let Some(ip) = service_client_ip(&req, &proxies)
            && let Err(wait) = limiter.hit(&ip)
        {
            log::warn!("rate limit exceeded by {ip}");
            let response = actix_web::ResponseError::error_response(&ApiError::too_many_requests(wait));
            return Ok(req.into_response(response).map_into_right_body());
        }
    }
    next.call(req).await.map(ServiceResponse::map_into_left_body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_a_burst_then_refuses_with_a_wait() {
        let limiter = RateLimiter::new(Rate { count: 3, period: Duration::from_secs(60) });
        for _ in 0..3 {
            limiter.hit(&"a").unwrap();
        }
        let wait = limiter.hit(&"a").unwrap_err();
        assert!(wait > Duration::from_secs(15) && wait <= Duration::from_secs(20), "{wait:?}");
        assert!(limiter.check(&"a").is_err());
        assert!(limiter.hit(&"b").is_ok(), "keys are independent");
        limiter.reset(&"a");
        assert!(limiter.check(&"a").is_ok());
    }

    #[test]
    fn refills_over_time() {
        let limiter = RateLimiter::new(Rate { count: 2, period: Duration::from_millis(100) });
        limiter.hit(&1).unwrap();
        limiter.hit(&1).unwrap();
        assert!(limiter.hit(&1).is_err());
        std::thread::sleep(Duration::from_millis(60));
        assert!(limiter.hit(&1).is_ok());
    }
}
