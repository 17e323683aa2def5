//! The real binary: `serve` with its background work (migrations, poller, list listener, gauges).

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Answer, peer};
use discovery::SERVICE;
use discovery::model::{Kind, Rank};
use discovery::servers::{self, NewServer};
use meridian_platform::testing::TestDb;

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn get(client: &reqwest::Client, url: &str) -> Option<(u16, String)> {
    let res = client.get(url).send().await.ok()?;
    let status = res.status().as_u16();
    Some((status, res.text().await.ok()?))
}

/// Polls `check` (bounded) while the runtime keeps serving the local peer.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check().await {
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[actix_rt::test]
async fn serve_polls_refreshes_and_exports_gauges() {
    let db = TestDb::new(&SERVICE);
    let healthy = peer(Answer::Version("2.14.1")).await;
    let port = common::closed_port();
    let child = Command::new(env!("CARGO_BIN_EXE_discovery"))
        .arg("serve")
        .env_clear()
        .env("DATABASE_URL", &db.url)
        .env("BIND", format!("127.0.0.1:{port}"))
        .env("RATELIMIT_RATE", "off")
        .env("LOG_LEVEL", "warn")
        .env("DISCOVERY_POLL_INTERVAL_MS", "200")
        .env("DISCOVERY_GAUGES_REFRESH_SECONDS", "1")
        .env("DISCOVERY_LIST_REFRESH_SECONDS", "3600")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the discovery binary");
    let _running = Running(child);
    let base = format!("http://127.0.0.1:{port}");
    meridian_platform::tls::install_crypto_provider();
    let client = reqwest::Client::new();
    eventually("ready", || async { get(&client, &format!("{base}/ready")).await.is_some_and(|(s, _)| s == 200) }).await;

    // Added behind the service's back: the listener hears the notification, the poller polls it.
    let input = NewServer {
        name: Some("Behind the back".into()),
        host: healthy.url.clone(),
        kind: Kind::Central,
        rank: Some(Rank::Production),
        listed: Some(true),
        device_id: None,
    };
    let id = servers::create(&mut db.conn(), input, None).unwrap().id.to_string();
    eventually("the list shows the new server", || async {
        get(&client, &format!("{base}/servers")).await.is_some_and(|(_, body)| body.contains(&id))
    })
    .await;
    eventually("the poller records a success", || async {
        get(&client, &format!("{base}/statuses")).await.is_some_and(|(_, body)| body.contains("\"version\":\"2.14.1\""))
    })
    .await;
    eventually("the gauge says up", || async {
        get(&client, &format!("{base}/metrics")).await.is_some_and(|(_, body)| {
            body.lines().any(|l| l.starts_with("discovery_server_up{") && l.contains(&id) && l.ends_with(" 1"))
        })
    })
    .await;
    let (status, page) = get(&client, &format!("{base}/status")).await.unwrap();
    assert_eq!(status, 200);
    assert!(page.contains("Production runs <b>2.14</b>"), "{page}");
}
