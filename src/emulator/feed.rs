//! `GET /file/events`: a listener's change feed as server-sent events
//! (`subscribed`/`resumed`, then `event` frames when the hub's debounce
//! lets them go, and `keep-alive` every 30 s).

use super::caller::require_user;
use super::envelope::{ApiError, parse_query};
use super::events::origin;
use super::ids::IdKind;
use super::instance::Inner;
use super::tree::{Target, parse_uri, resolve, run};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Uri, header};
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// How often an idle stream sends `event:keep-alive`.
const KEEP_ALIVE: Duration = Duration::from_secs(30);

#[derive(Deserialize)]
struct EventsQuery {
    #[serde(default)]
    uri: String,
}

/// One server-sent event, framed as gin writes it (no space after colons).
fn frame(event: &str, data: &str) -> Bytes {
    Bytes::from(format!("event:{event}\ndata:{data}\n\n"))
}

/// Marks the listener offline when its stream is dropped (the client went).
struct Connection {
    inner: Arc<Inner>,
    key: (u64, String),
    number: u64,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.inner.lock().events.disconnect(&self.key, self.number);
    }
}

/// What the stream needs between frames.
struct Stream {
    conn: Connection,
    wake: Arc<Notify>,
    keep_alive: tokio::time::Interval,
    queue: VecDeque<Bytes>,
}

impl Stream {
    async fn next_frame(&mut self) -> Bytes {
        loop {
            if let Some(b) = self.queue.pop_front() {
                return b;
            }
            let due = self.conn.inner.lock().events.due(&self.conn.key);
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                    let batch = self.conn.inner.lock().events.take_due(&self.conn.key, Instant::now());
                    for p in batch {
                        let data = json!({
                            "type": p.kind.wire(),
                            "file_id": self.conn.inner.ids.encode(p.file, IdKind::File),
                            "from": p.from,
                            "to": p.to,
                        });
                        self.queue.push_back(frame("event", &data.to_string()));
                    }
                }
                _ = self.keep_alive.tick() => self.queue.push_back(frame("keep-alive", "<nil>")),
            }
        }
    }
}

/// `GET /file/events?uri=…`.
pub(super) async fn subscribe(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    q: Uri,
) -> Response {
    run(|| {
        let uid = require_user(&inner, &headers)?;
        let mut st = inner.lock();
        if !st.settings.events_enabled {
            return Err(ApiError::new(40019, "This feature is not enabled"));
        }
        let query: EventsQuery = parse_query(q.query())?;
        if query.uri.is_empty() {
            return Err(ApiError::binding(
                "Key: 'ExplorerEventService.Uri' Error:Field validation for 'Uri' failed on the 'required' tag",
            ));
        }
        let u = parse_uri(&query.uri).map_err(|_| ApiError::new(40001, "Unknown uri"))?;
        let unavailable = || ApiError::new(40016, "Requested uri not available");
        let folder = match resolve(&st, uid, &u) {
            Ok(Target::My(id, _)) if st.files.get(&id).is_some_and(|n| n.folder) => id,
            _ => return Err(unavailable()),
        };
        let client = match origin(&headers) {
            None => return Err(ApiError::new(40001, "Client ID is required")),
            Some(c) if c.is_empty() => return Err(ApiError::new(40001, "Client ID is required")),
            Some(c) => c,
        };
        if uuid::Uuid::parse_str(&client).is_err() {
            return Err(ApiError::new(40001, "Invalid client ID"));
        }
        let debounce = st.settings.event_debounce;
        let key = (folder, client);
        let (resumed, number, wake) = st.events.connect(key.clone(), debounce);
        drop(st);
        let first = frame(if resumed { "resumed" } else { "subscribed" }, "<nil>");
        let stream = Stream {
            conn: Connection {
                inner: inner.clone(),
                key,
                number,
            },
            wake,
            keep_alive: tokio::time::interval_at(Instant::now() + KEEP_ALIVE, KEEP_ALIVE),
            queue: VecDeque::from([first]),
        };
        let body = futures::stream::unfold(stream, |mut s| async move {
            let b = s.next_frame().await;
            Some((Ok::<Bytes, std::convert::Infallible>(b), s))
        });
        let mut resp = Response::new(Body::from_stream(body));
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream;charset=utf-8"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        h.insert("x-accel-buffering", HeaderValue::from_static("no"));
        Ok(resp)
    })
}
