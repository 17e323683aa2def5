//! Shared test helpers: certificates, devices with roles, and local HTTP peers for the poller.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use meridian_auth::{ClientCertificate, devices};
use meridian_model::DeviceRole;
use meridian_platform::testing::TestDb;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

pub fn certificate() -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    rcgen::CertificateParams::new(vec!["device.test".into()]).unwrap().self_signed(&key).unwrap().pem()
}

pub fn encoded(pem: &str) -> String {
    percent_encoding::utf8_percent_encode(pem, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// A device with `role`: its certificate, URL-encoded (as proxies send it), and its id.
pub struct Caller {
    pub pem: String,
    pub header: String,
    pub id: Uuid,
}

impl Caller {
    /// The same certificate, plain PEM folded onto one line (as some proxies send it).
    pub fn plain(&self) -> String {
        self.pem.replace('\n', " ")
    }
}

pub fn device(db: &TestDb, role: DeviceRole) -> Caller {
    let pem = certificate();
    let mut conn = db.conn();
    let record = devices::find_or_record(&mut conn, &ClientCertificate::from_header(&pem).unwrap()).unwrap();
    devices::set_role(&mut conn, record.id, role).unwrap();
    Caller { header: encoded(&pem), pem, id: record.id }
}

/// How a local peer answers `GET /api/public/ping`.
#[derive(Debug, Clone)]
pub enum Answer {
    Version(&'static str),
    NoVersion,
    Status(u16),
    /// Waits this long, then answers with a version.
    Slow(Duration),
    /// 302 to this absolute URL.
    Redirect(String),
}

/// A real HTTP server on 127.0.0.1 counting requests and the most it had in flight at once.
pub struct Peer {
    pub url: String,
    pub port: u16,
    pub hits: Arc<AtomicUsize>,
    pub max_in_flight: Arc<AtomicUsize>,
}

pub async fn peer(answer: Answer) -> Peer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let max_in_flight = Arc::new(AtomicUsize::new(0));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let (h, m) = (hits.clone(), max_in_flight.clone());
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else { return };
            let (answer, hits, max, in_flight) = (answer.clone(), h.clone(), m.clone(), in_flight.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut read = 0;
                while !buf[..read].windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf[read..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => read += n,
                    }
                }
                hits.fetch_add(1, Ordering::SeqCst);
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                max.fetch_max(now, Ordering::SeqCst);
                let head = match answer {
                    Answer::Version(v) => format!("HTTP/1.1 200 OK\r\nX-Version: {v}\r\n"),
                    Answer::NoVersion => "HTTP/1.1 200 OK\r\n".to_owned(),
                    Answer::Status(code) => format!("HTTP/1.1 {code} Whatever\r\n"),
                    Answer::Slow(wait) => {
                        tokio::time::sleep(wait).await;
                        "HTTP/1.1 200 OK\r\nX-Version: 1.0.0\r\n".to_owned()
                    }
                    Answer::Redirect(to) => format!("HTTP/1.1 302 Found\r\nLocation: {to}\r\n"),
                };
                in_flight.fetch_sub(1, Ordering::SeqCst);
                let _ =
                    socket.write_all(format!("{head}Content-Length: 0\r\nConnection: close\r\n\r\n").as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    Peer { url: format!("http://127.0.0.1:{port}"), port, hits, max_in_flight }
}

/// A port nothing listens on.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}
