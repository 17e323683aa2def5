//! Starts the real service binaries against a fresh database, each on an ephemeral port, and stops
//! them (SIGTERM, then SIGKILL) when dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use diesel::Connection;
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use meridian_platform::testing::{base_url, with_database};

/// An HTTP client for talking to the services.
pub fn client() -> reqwest::Client {
    meridian_platform::tls::install_crypto_provider();
    reqwest::Client::new()
}

/// The directory holding the workspace's binaries (`target/debug`), next to this test executable.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let dir = exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>/deps/<test>");
    let path = dir.join(name);
    if !path.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--bin", name])
            .status()
            .expect("cargo can be run to build a missing binary");
        assert!(status.success(), "building {name} failed");
    }
    path
}

/// An empty database of its own, dropped with the value.
pub struct EmptyDb {
    pub url: String,
    name: String,
}

impl EmptyDb {
    pub fn new() -> Self {
        let name = format!("meridian_it_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::establish(&base_url()).expect("connect to the test Postgres");
        admin.batch_execute(&format!("CREATE DATABASE {name}")).expect("create a test database");
        EmptyDb { url: with_database(&base_url(), &name), name }
    }
}

impl Default for EmptyDb {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for EmptyDb {
    fn drop(&mut self) {
        if let Ok(mut admin) = PgConnection::establish(&base_url()) {
            let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
        }
    }
}

/// A running service binary.
pub struct Running {
    pub name: String,
    pub base: String,
    child: Child,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("an ephemeral port").local_addr().expect("its address").port()
}

impl Running {
    /// Starts `name serve` on a free port with `env` on top of a development configuration.
    pub fn start(name: &str, database_url: &str, env: &[(&str, &str)]) -> Running {
        let port = free_port();
        let mut command = Command::new(binary(name));
        command
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", database_url)
            .env("BIND", format!("127.0.0.1:{port}"))
            .env("RUN_MIGRATIONS", "true")
            .env("RATELIMIT_RATE", "off")
            .env("LOG_LEVEL", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            command.env(k, v);
        }
        let child = command.spawn().unwrap_or_else(|e| panic!("start {name}: {e}"));
        Running { name: name.to_owned(), base: format!("http://127.0.0.1:{port}"), child }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Waits until `path` answers 200.
    pub async fn wait_for(&self, client: &reqwest::Client, path: &str, limit: Duration) {
        let started = Instant::now();
        loop {
            if let Ok(res) = client.get(self.url(path)).send().await
                && res.status() == 200
            {
                return;
            }
            assert!(started.elapsed() < limit, "{} did not answer 200 on {path} within {limit:?}", self.name);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sends SIGTERM (graceful shutdown).
    pub fn terminate(&self) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().expect("kill runs");
        assert!(status.success());
    }

    /// Waits for the process to exit and returns whether it exited successfully.
    pub fn wait_exit(&mut self, limit: Duration) -> bool {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("the child can be polled") {
                return status.success();
            }
            assert!(started.elapsed() < limit, "{} did not exit within {limit:?}", self.name);
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
