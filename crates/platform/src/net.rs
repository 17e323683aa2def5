//! Who the client is: the peer address, or the forwarded one when the peer is a trusted proxy.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use actix_web::HttpRequest;
use actix_web::dev::ServiceRequest;

/// An address block such as `10.0.0.0/8` or `::1/128`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    pub fn new(addr: IpAddr, prefix: u8) -> Self {
        IpNet { addr, prefix }
    }

    pub fn loopback_v4() -> Self {
        IpNet::new(IpAddr::from([127, 0, 0, 0]), 8)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for IpNet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| format!("{s:?} is not an IP address or CIDR block"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => {
                p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| format!("{s:?} has a bad prefix length"))?
            }
        };
        Ok(IpNet { addr: canonical(addr), prefix })
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`) compare as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// The client's address. Forwarding headers are believed only when the direct peer is one of the
/// trusted proxies; then the right-most address in `X-Forwarded-For` that is not itself a trusted
/// proxy is the client (addresses further left are whatever the client chose to send).
pub fn client_ip(req: &HttpRequest, trusted_proxies: &[IpNet]) -> Option<IpAddr> {
    let peer = canonical(req.peer_addr()?.ip());
    if !trusted_proxies.iter().any(|net| net.contains(peer)) {
        return Some(peer);
    }
    let headers = req.headers();
    if let Some(forwarded) = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        let chain: Vec<IpAddr> =
            forwarded.split(',').filter_map(|s| s.trim().parse::<IpAddr>().ok()).map(canonical).collect();
        if let Some(client) = chain.iter().rev().find(|ip| !trusted_proxies.iter().any(|net| net.contains(**ip))) {
            return Some(*client);
        }
        if let Some(first) = chain.first() {
            return Some(*first);
        }
    }
    if let Some(real) = headers.get("x-real-ip").and_then(|v| v.to_str().ok()).and_then(|s| s.trim().parse().ok()) {
        return Some(canonical(real));
    }
    Some(peer)
}

pub(crate) fn service_client_ip(req: &ServiceRequest, trusted_proxies: &[IpNet]) -> Option<IpAddr> {
    client_ip(req.request(), trusted_proxies)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn cidr_matching() {
        let net: IpNet = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.0.9".parse().unwrap()));
        assert!("0.0.0.0/0".parse::<IpNet>().unwrap().contains("8.8.8.8".parse().unwrap()));
        assert!("1.2.3.4/33".parse::<IpNet>().is_err());
    }

    #[test]
    fn forwarded_headers_from_untrusted_peers_are_ignored() {
        let req = TestRequest::default()
            .peer_addr("203.0.113.7:5000".parse().unwrap())
            .insert_header(("x-real-ip", "1.1.1.1"))
            .insert_header(("x-forwarded-for", "2.2.2.2"))
            .to_http_request();
        assert_eq!(client_ip(&req, &nets(&["127.0.0.0/8"])), Some("203.0.113.7".parse().unwrap()));
    }

    #[test]
    fn trusted_proxy_yields_rightmost_untrusted_forwarded_address() {
        let req = TestRequest::default()
            .peer_addr("10.0.0.2:5000".parse().unwrap())
            .insert_header(("x-forwarded-for", "6.6.6.6, 198.51.100.4, 10.0.0.9"))
            .to_http_request();
        assert_eq!(client_ip(&req, &nets(&["10.0.0.0/8"])), Some("198.51.100.4".parse().unwrap()));

        let real = TestRequest::default()
            .peer_addr("10.0.0.2:5000".parse().unwrap())
            .insert_header(("x-real-ip", "198.51.100.5"))
            .to_http_request();
        assert_eq!(client_ip(&real, &nets(&["10.0.0.0/8"])), Some("198.51.100.5".parse().unwrap()));
    }
}
