//! Cloudreve's change feed, `GET /file/events` (4.11+, docs/UPSTREAM.md
//! §4.10): a server-sent-event stream of what changed below a folder.
//!
//! The feed is keyed by the client id every call of this client carries
//! ([`Client::client_id`](super::Client::client_id)): Cloudreve leaves out
//! changes made with that id, and a listener that reconnects with it gets
//! what it missed (`resumed`). Paths in the events are plain (unescaped),
//! relative to the watched folder, and start with `/`.

use bytes::{Buf, BytesMut};
use futures::StreamExt;
use reqwest::{Method, StatusCode, header};

use super::core::{ReqBody, check_status};
use super::error::{Error, ErrorCode, Result, decode_envelope};
use super::reader::ByteStream;
use super::session::Session;
use super::uri::CrUri;

/// The longest frame accepted; a longer one means the answer is not the feed.
const MAX_FRAME: usize = 1 << 20;

/// What happened to a file or folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeKind {
    /// It appeared (created, uploaded, copied, moved in, restored).
    Create,
    /// Its content changed.
    Modify,
    /// It was renamed or moved within the watched folder (`to` is set).
    Rename,
    /// It went away (trash, delete, moved out).
    Delete,
    /// A kind this client does not know (a newer server).
    Other(String),
}

/// One change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    /// What happened.
    pub kind: ChangeKind,
    /// The object's id.
    pub file_id: String,
    /// Its path relative to the watched folder (the old path of a rename).
    pub from: String,
    /// The new path of a rename.
    pub to: Option<String>,
}

/// One item of the feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedItem {
    /// The feed started afresh: nothing from before is pending.
    Subscribed,
    /// The feed continued where this client id left it: missed changes follow.
    Resumed,
    /// A change.
    Change(FileChange),
    /// The server's periodic sign of life (every 30 s).
    KeepAlive,
}

/// An open feed; read it with [`ChangeFeed::next`].
pub struct ChangeFeed {
    body: ByteStream,
    buf: BytesMut,
}

impl std::fmt::Debug for ChangeFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeFeed")
            .field("buffered", &self.buf.len())
            .finish()
    }
}

#[derive(serde::Deserialize)]
struct WireChange {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    file_id: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

impl ChangeFeed {
    /// The next item; `None` when the server ended the stream.
    pub async fn next(&mut self) -> Result<Option<FeedItem>> {
        loop {
            while let Some(frame) = self.take_frame() {
                if let Some(item) = parse_frame(&frame)? {
                    return Ok(Some(item));
                }
            }
            if self.buf.len() > MAX_FRAME {
                return Err(Error::decode("events", "a frame longer than 1 MiB"));
            }
            match self.body.next().await {
                Some(chunk) => self.buf.extend_from_slice(&chunk?),
                None => return Ok(None),
            }
        }
    }

    /// One whole frame (up to its blank line), if buffered.
    fn take_frame(&mut self) -> Option<Vec<u8>> {
        let end = self.buf.windows(2).position(|w| w == b"\n\n")?;
        let frame = self.buf[..end].to_vec();
        self.buf.advance(end + 2);
        Some(frame)
    }
}

/// Reads one frame: `event:` and `data:` lines (a space after the colon is
/// optional). `None` for frames this client ignores.
fn parse_frame(frame: &[u8]) -> Result<Option<FeedItem>> {
    let text = String::from_utf8_lossy(frame);
    let mut event = "message";
    let mut data = String::new();
    for line in text.split('\n').map(|l| l.trim_end_matches('\r')) {
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => event = value,
            "data" => {
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(value);
            }
            _ => {}
        }
    }
    Ok(match event {
        "subscribed" => Some(FeedItem::Subscribed),
        "resumed" => Some(FeedItem::Resumed),
        "keep-alive" => Some(FeedItem::KeepAlive),
        "event" => {
            let w: WireChange =
                serde_json::from_str(&data).map_err(|e| Error::decode("events: change", e))?;
            let kind = match w.kind.as_str() {
                "create" => ChangeKind::Create,
                "modify" => ChangeKind::Modify,
                "rename" => ChangeKind::Rename,
                "delete" => ChangeKind::Delete,
                _ => ChangeKind::Other(w.kind),
            };
            Some(FeedItem::Change(FileChange {
                kind,
                file_id: w.file_id,
                from: w.from,
                to: (!w.to.is_empty()).then_some(w.to),
            }))
        }
        _ => None,
    })
}

impl Session {
    /// Opens the change feed of `folder` (its whole subtree). Errors as
    /// Cloudreve answers them: 40016 when `folder` is not a folder, 40019
    /// when the site switched the feed off, 404-like HTML on servers before
    /// 4.11.
    pub async fn watch(&self, folder: &CrUri) -> Result<ChangeFeed> {
        let query = [("uri", folder.to_string())];
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (token, generation) = self.access_token().await?;
            let rb = self
                .client()
                .request(
                    Method::GET,
                    "/file/events",
                    &query,
                    ReqBody::Empty,
                    Some(&token),
                )
                .header(header::ACCEPT, "text/event-stream");
            let resp = self.client().send_built(rb, "/file/events").await?;
            let is_feed = resp.status() == StatusCode::OK
                && resp
                    .headers()
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.starts_with("text/event-stream"));
            if is_feed {
                return Ok(ChangeFeed {
                    body: Box::pin(resp.bytes_stream().map(|r| r.map_err(Error::from))),
                    buf: BytesMut::new(),
                });
            }
            let resp = check_status(resp, "events").await?;
            let body = resp.bytes().await?;
            match self
                .client()
                .noted("events", decode_envelope(&body, "events"))
            {
                Err(e) if e.is(ErrorCode::CheckLogin) && attempt < 2 => {
                    self.refresh_after_401(generation).await?;
                }
                Err(e) => return Err(e),
                Ok(_) => {
                    return Err(Error::decode("events", "a JSON answer instead of the feed"));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_read_as_gin_writes_them() {
        assert_eq!(
            parse_frame(b"event:subscribed\ndata:<nil>").expect("parse"),
            Some(FeedItem::Subscribed)
        );
        assert_eq!(
            parse_frame(b"event: keep-alive\r\ndata: <nil>\r").expect("parse"),
            Some(FeedItem::KeepAlive)
        );
        let c = parse_frame(
            br#"event:event
data:{"type":"rename","file_id":"V1Cp","from":"/a b.txt","to":"/d/c%.txt"}"#,
        )
        .expect("parse");
        assert_eq!(
            c,
            Some(FeedItem::Change(FileChange {
                kind: ChangeKind::Rename,
                file_id: "V1Cp".into(),
                from: "/a b.txt".into(),
                to: Some("/d/c%.txt".into()),
            }))
        );
        assert_eq!(parse_frame(b": comment").expect("parse"), None);
        assert!(parse_frame(b"event:event\ndata:{").is_err());
    }
}
