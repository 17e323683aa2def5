//! The server-sent-event stream of new messages for one receiver.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use actix_web::web::Bytes;
use futures_util::Stream;
use meridian_platform::Platform;
use tokio::sync::broadcast::{self, error::RecvError};

use crate::auth::Caller;
use crate::messages::{self, MessageRow};
use crate::notify::Notice;
use crate::routes::KEEP_ALIVE;

struct Cursor {
    rx: broadcast::Receiver<Notice>,
    platform: Arc<Platform>,
    caller: Caller,
    receiver: String,
    started: bool,
    /// Messages missed before a reconnection (`Last-Event-ID`), sent first.
    backlog: VecDeque<MessageRow>,
    /// Their ids, so a live notice of the same message is not sent twice.
    replayed: HashSet<uuid::Uuid>,
}

/// One message as an event; its data is the message's stored JSON, as a GET answers it.
fn event(message: &MessageRow) -> Bytes {
    Bytes::from(format!("event: message\nid: {}\ndata: {}\n\n", message.uuid, message.json))
}

/// `event: message` for each new message to `receiver` the caller may see (after `backlog`, the
/// messages missed since the client's `Last-Event-ID`); a comment every [`KEEP_ALIVE`] keeps
/// proxies from closing an idle stream.
pub fn messages(
    rx: broadcast::Receiver<Notice>,
    platform: Arc<Platform>,
    caller: Caller,
    receiver: String,
    backlog: Vec<MessageRow>,
) -> impl Stream<Item = Result<Bytes, actix_web::Error>> {
    let replayed = backlog.iter().map(|m| m.uuid).collect();
    let cursor = Cursor { rx, platform, caller, receiver, started: false, backlog: backlog.into(), replayed };
    futures_util::stream::unfold(cursor, |mut cursor| async move {
        if !cursor.started {
            cursor.started = true;
            return Some((Ok(Bytes::from_static(b": connected\nretry: 3000\n\n")), cursor));
        }
        if let Some(message) = cursor.backlog.pop_front() {
            return Some((Ok(event(&message)), cursor));
        }
        loop {
            match tokio::time::timeout(KEEP_ALIVE, cursor.rx.recv()).await {
                Err(_) => return Some((Ok(Bytes::from_static(b": keep-alive\n\n")), cursor)),
                Ok(Err(RecvError::Closed)) => return None,
                Ok(Err(RecvError::Lagged(missed))) => {
                    log::warn!("an event stream fell behind by {missed} messages");
                }
                Ok(Ok(notice)) if notice.receiver == cursor.receiver && !cursor.replayed.contains(&notice.uuid) => {
                    let caller = cursor.caller.clone();
                    let found = cursor.platform.db.run(move |conn| messages::get(conn, &caller, notice.uuid)).await;
                    if let Ok(message) = found {
                        return Some((Ok(event(&message)), cursor));
                    }
                }
                Ok(Ok(_)) => {}
            }
        }
    })
}
