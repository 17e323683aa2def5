//! New-message announcements across replicas: every insert is followed by `pg_notify`; one
//! listener thread per process LISTENs on a dedicated connection and fans the notices out to the
//! server-sent-event streams of this process.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::thread::JoinHandle;
use std::time::Duration;

use diesel::pg::PgConnection;
use diesel::prelude::*;
use serde::Deserialize;
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::messages::CHANNEL;

#[derive(Debug, Clone, Deserialize)]
pub struct Notice {
    pub uuid: Uuid,
    pub receiver: String,
}

pub struct Notifier {
    database_url: String,
    sender: broadcast::Sender<Notice>,
    started: Once,
    /// Tells the listener thread to stop (set when the notifier is dropped).
    stop: Arc<AtomicBool>,
    listener: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Notifier {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(handle) = self.listener.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take() {
            let _ = handle.join();
        }
    }
}

impl Notifier {
    pub fn new(database_url: String) -> Self {
        let (sender, _) = broadcast::channel(1024);
        Notifier {
            database_url,
            sender,
            started: Once::new(),
            stop: Arc::new(AtomicBool::new(false)),
            listener: Mutex::new(None),
        }
    }

    /// A receiver of every new message's notice; starts the listener on first use.
    pub fn subscribe(&self) -> broadcast::Receiver<Notice> {
        let receiver = self.sender.subscribe();
        self.started.call_once(|| {
            let url = self.database_url.clone();
            let sender = self.sender.clone();
            let stop = self.stop.clone();
            let handle = std::thread::Builder::new()
                .name("messaging-listen".into())
                .spawn(move || listen_until_stopped(&url, &sender, &stop))
                .expect("spawn the LISTEN thread");
            *self.listener.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(handle);
        });
        receiver
    }
}

const POLL: Duration = Duration::from_millis(100);

fn listen_until_stopped(url: &str, sender: &broadcast::Sender<Notice>, stop: &AtomicBool) {
    let mut wait = Duration::from_millis(500);
    while !stop.load(Ordering::Acquire) {
        match listen(url, sender, stop) {
            Ok(()) => return,
            Err(err) => {
                log::warn!("LISTEN {CHANNEL}: {err}; reconnecting in {wait:?}");
                let until = std::time::Instant::now() + wait;
                while std::time::Instant::now() < until && !stop.load(Ordering::Acquire) {
                    std::thread::sleep(POLL);
                }
                wait = (wait * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// Polls the connection for notices until stopped; returns an error when the database fails (the
/// caller reconnects).
fn listen(url: &str, sender: &broadcast::Sender<Notice>, stop: &AtomicBool) -> Result<(), String> {
    let mut conn = PgConnection::establish(url).map_err(|e| e.to_string())?;
    diesel::sql_query(format!("LISTEN {CHANNEL}")).execute(&mut conn).map_err(|e| e.to_string())?;
    let mut idle = 0u32;
    while !stop.load(Ordering::Acquire) {
        let mut got = false;
        for notification in conn.notifications_iter() {
            let notification = notification.map_err(|e| e.to_string())?;
            got = true;
            match serde_json::from_str::<Notice>(&notification.payload) {
                Ok(notice) => {
                    let _ = sender.send(notice);
                }
                Err(err) => log::warn!("unreadable notice on {CHANNEL}: {err}"),
            }
        }
        if got {
            idle = 0;
        } else {
            idle += 1;
            // A cheap round trip now and then notices a dead connection.
            if idle.is_multiple_of(100) {
                diesel::sql_query("SELECT 1").execute(&mut conn).map_err(|e| e.to_string())?;
            }
            std::thread::sleep(POLL);
        }
    }
    Ok(())
}
