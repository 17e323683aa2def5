//! The server-sent-event stream of new messages for one receiver.

use std::sync::Arc;

use actix_web::web::Bytes;
use futures_util::Stream;
use meridian_platform::Platform;
use tokio::sync::broadcast::{self, error::RecvError};

use crate::auth::Caller;
use crate::messages;
use crate::notify::Notice;
use crate::routes::KEEP_ALIVE;

struct Cursor {
    rx: broadcast::Receiver<Notice>,
    platform: Arc<Platform>,
    caller: Caller,
    receiver: String,
    started: bool,
}

/// `event: message` for each new message to `receiver` the caller may see; a comment every
/// [`KEEP_ALIVE`] keeps proxies from closing an idle stream.
pub fn messages(
    rx: broadcast::Receiver<Notice>,
    platform: Arc<Platform>,
    caller: Caller,
    receiver: String,
) -> impl Stream<Item = Result<Bytes, actix_web::Error>> {
    let cursor = Cursor { rx, platform, caller, receiver, started: false };
    futures_util::stream::unfold(cursor, |mut cursor| async move {
        if !cursor.started {
            cursor.started = true;
            return Some((Ok(Bytes::from_static(b": connected\nretry: 3000\n\n")), cursor));
        }
        loop {
            match tokio::time::timeout(KEEP_ALIVE, cursor.rx.recv()).await {
                Err(_) => return Some((Ok(Bytes::from_static(b": keep-alive\n\n")), cursor)),
                Ok(Err(RecvError::Closed)) => return None,
                Ok(Err(RecvError::Lagged(missed))) => {
                    log::warn!("an event stream fell behind by {missed} messages");
                }
                Ok(Ok(notice)) if notice.receiver == cursor.receiver => {
                    let caller = cursor.caller.clone();
                    let found = cursor.platform.db.run(move |conn| messages::get(conn, &caller, notice.uuid)).await;
                    if let Ok(message) = found
                        && let Ok(json) = serde_json::to_string(&message)
                    {
                        let event = format!("event: message\nid: {}\ndata: {json}\n\n", message.uuid);
                        return Some((Ok(Bytes::from(event)), cursor));
                    }
                }
                Ok(Ok(_)) => {}
            }
        }
    })
}
