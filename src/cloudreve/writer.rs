//! Uploads (docs/UPSTREAM.md §5.4–§5.7): upload sessions, chunk transfer and a high-level
//! streaming writer that cancels its session on any failure or drop.
//!
//! An [`UploadObserver`] is told about every session the writer opens and
//! settles (e.g. to journal them, so that sessions a crash left open can be
//! cancelled later). A chunk refused because the access token expired on
//! the server (401, or 40011 for a token that turned anonymous) is re-sent
//! once after a token refresh, from a bounded replay buffer of the chunk's
//! bytes ([`REPLAY_MAX`]); a longer chunk already partly consumed fails.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures::{SinkExt, Stream, StreamExt};
use reqwest::Method;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::cipher::{AES_256_CTR, ContentCipher};
use super::core::ReqBody;
use super::error::{ApiError, Error, ErrorCode, Result};
use super::session::Session;
use super::types::{EntityType, FileResponse, UploadSession};
use super::uri::CrUri;

/// Size of the pieces read from an upload source.
const READ_BUF: usize = 64 * 1024;
/// Pieces buffered between the source and the HTTP body.
const CHANNEL_DEPTH: usize = 4;
/// Bytes of a chunk kept so that the chunk can be re-sent after a token
/// refresh (beyond it, a chunk refused for an expired token fails).
pub const REPLAY_MAX: u64 = 1024 * 1024;

/// Pauses before the further attempts of [`Session::cancel_retrying`]
/// (about 7.7 s in all): a failed upload is answered only once its session
/// is cancelled, so that its placeholder and lock are gone by then, unless
/// the upstream keeps failing that long.
const CANCEL_RETRY_PAUSES: [std::time::Duration; 5] = [
    std::time::Duration::from_millis(200),
    std::time::Duration::from_millis(500),
    std::time::Duration::from_secs(1),
    std::time::Duration::from_secs(2),
    std::time::Duration::from_secs(4),
];
/// Pauses of the background attempts that follow when every attempt of
/// [`Session::cancel_retrying`] failed (about 15 min in all); the session
/// stays journaled until one succeeds.
const CANCEL_BACKGROUND_PAUSES: [std::time::Duration; 6] = [
    std::time::Duration::from_secs(10),
    std::time::Duration::from_secs(30),
    std::time::Duration::from_secs(60),
    std::time::Duration::from_secs(120),
    std::time::Duration::from_secs(300),
    std::time::Duration::from_secs(400),
];
/// Metadata naming the upload session pending on a file.
const UPLOAD_SESSION_KEY: &str = "sys:upload_session_id";

/// True when a failed call may still have been applied upstream (the
/// answer was lost or the server failed after acting).
fn outcome_unknown(e: &Error) -> bool {
    match e {
        Error::Transport(_) | Error::Decode { .. } => true,
        Error::UnexpectedStatus { status, .. } => *status >= 500,
        _ => false,
    }
}

/// Told about the upload sessions [`Session::upload`] opens and settles.
pub trait UploadObserver: Send + Sync + std::fmt::Debug {
    /// A session was created and is about to be used.
    fn opened(&self, session_id: &str, uri: &CrUri);
    /// The session completed, was cancelled, or is known to be gone.
    fn closed(&self, session_id: &str);
}

/// One chunk of an upload plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkSpec {
    /// Chunk index.
    pub index: u64,
    /// Offset of the chunk in the file.
    pub offset: u64,
    /// Length of the chunk.
    pub len: u64,
}

/// Splits `size` bytes into chunks of `chunk_size` (0 ⇒ one chunk). A
/// zero-size upload still has one empty chunk.
pub fn chunk_plan(size: u64, chunk_size: u64) -> Vec<ChunkSpec> {
    if size == 0 || chunk_size == 0 || chunk_size >= size {
        return vec![ChunkSpec {
            index: 0,
            offset: 0,
            len: size,
        }];
    }
    let n = size.div_ceil(chunk_size);
    (0..n)
        .map(|i| {
            let offset = i * chunk_size;
            ChunkSpec {
                index: i,
                offset,
                len: chunk_size.min(size - offset),
            }
        })
        .collect()
}

/// Shared verdict of a [`LengthChecked`] stream.
#[derive(Clone, Default)]
pub(crate) struct LengthState(Arc<Mutex<Option<(u64, u64)>>>);

impl LengthState {
    /// The recorded mismatch, if any.
    pub(crate) fn error(&self) -> Option<Error> {
        let g = self.0.lock().ok()?;
        g.map(|(expected, actual)| Error::SourceLength { expected, actual })
    }

    fn record(&self, expected: u64, actual: u64) {
        if let Ok(mut g) = self.0.lock() {
            *g = Some((expected, actual));
        }
    }
}

/// A body stream that must yield exactly `len` bytes; otherwise it fails
/// (aborting the request) and records the mismatch.
pub(crate) struct LengthChecked<S> {
    inner: Pin<Box<S>>,
    expected: u64,
    seen: u64,
    done: bool,
    state: LengthState,
}

impl<S> LengthChecked<S> {
    pub(crate) fn new(inner: S, expected: u64) -> Self {
        LengthChecked {
            inner: Box::pin(inner),
            expected,
            seen: 0,
            done: false,
            state: LengthState::default(),
        }
    }

    pub(crate) fn state(&self) -> LengthState {
        self.state.clone()
    }
}

impl<S, E> Stream for LengthChecked<S>
where
    S: Stream<Item = std::result::Result<Bytes, E>>,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Item = std::result::Result<Bytes, Box<dyn std::error::Error + Send + Sync>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        match self.inner.as_mut().poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(b))) => {
                self.seen += b.len() as u64;
                if self.seen > self.expected {
                    self.done = true;
                    self.state.record(self.expected, self.seen);
                    return Poll::Ready(Some(Err("body longer than announced".into())));
                }
                Poll::Ready(Some(Ok(b)))
            }
            Poll::Ready(Some(Err(e))) => {
                self.done = true;
                Poll::Ready(Some(Err(e.into())))
            }
            Poll::Ready(None) => {
                self.done = true;
                if self.seen < self.expected {
                    self.state.record(self.expected, self.seen);
                    return Poll::Ready(Some(Err("body shorter than announced".into())));
                }
                Poll::Ready(None)
            }
        }
    }
}

/// Parameters of `PUT /file/upload`.
#[derive(Debug, Clone, Default)]
pub struct UploadRequest {
    /// Target URI.
    pub uri: Option<CrUri>,
    /// Total size in bytes.
    pub size: u64,
    /// Policy hashid (from the parent listing's `storage_policy.id`).
    pub policy_id: String,
    /// Client mtime in milliseconds; in 4.18 it becomes the file's
    /// `updated_at` when the upload completes (UPSTREAM §5.4).
    pub last_modified_ms: Option<i64>,
    /// MIME type.
    pub mime_type: Option<String>,
    /// New file, or create-or-overwrite (`Version`).
    pub entity_type: EntityType,
    /// Metadata applied on completion.
    pub metadata: Option<HashMap<String, String>>,
}

#[derive(Serialize)]
struct CreateSessionReq<'a> {
    uri: String,
    size: u64,
    policy_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_modified: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mime_type: Option<&'a str>,
    #[serde(skip_serializing_if = "str::is_empty")]
    entity_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<&'a HashMap<String, String>>,
    /// Offered always: a policy that encrypts then hands out a key (and a
    /// server before 4.10 ignores the field).
    encryption_supported: [&'a str; 1],
}

#[derive(Serialize)]
struct CancelReq<'a> {
    id: &'a str,
    uri: String,
}

/// Options of the high-level [`Session::upload`].
#[derive(Debug, Clone, Default)]
pub struct UploadOptions {
    /// Policy id; looked up from the nearest existing ancestor's listing
    /// when `None`.
    pub policy_id: Option<String>,
    /// Overwrite an existing file (`entity_type: "version"`).
    pub overwrite: bool,
    /// Client mtime in milliseconds.
    pub last_modified_ms: Option<i64>,
    /// MIME type.
    pub mime_type: Option<String>,
    /// Metadata applied on completion.
    pub metadata: Option<HashMap<String, String>>,
    /// Optimistic concurrency for an overwrite: the version the caller
    /// expects to replace. It is not sent as the session's `previous`
    /// (accepted since 4.11, docs/UPSTREAM.md §5.4) but checked client-side
    /// once the session exists: from then on the session's upload lock
    /// keeps every other writer out until completion, so a version that
    /// still matches cannot change before ours lands. A mismatch cancels
    /// the session and fails with 40076 ([`Error::is_stale_version`]).
    pub previous: Option<Previous>,
    /// Told about the session opened for this upload.
    pub observer: Option<Arc<dyn UploadObserver>>,
}

/// The version an overwrite expects to replace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Previous {
    /// The file's id (a file deleted and re-created is another file).
    pub id: String,
    /// Its `primary_entity`; `None` for a file without content entity
    /// (created empty).
    pub entity: Option<String>,
}

impl Previous {
    /// True when `f` is still the expected version.
    pub fn matches(&self, f: &FileResponse) -> bool {
        let entity = f.primary_entity.as_deref().filter(|e| !e.is_empty());
        f.id == self.id && entity == self.entity.as_deref()
    }

    /// The 40076 answer of a stale version (client-side check).
    pub fn stale_error(uri: &CrUri) -> Error {
        Error::Api(Box::new(ApiError {
            code: ErrorCode::StaleVersion.as_i64(),
            kind: ErrorCode::StaleVersion,
            msg: format!("{uri} changed since the expected version (client-side check)"),
            correlation_id: None,
            error: None,
            lock_conflicts: Vec::new(),
            aggregated: None,
        }))
    }
}

/// True when a cancel's outcome means the session no longer exists upstream:
/// cancelled now, or the session or its file unknown there. Any other
/// failure (transport, 5xx, an untyped `code: -1`…) leaves it possibly open.
pub fn cancel_settled(r: &Result<()>) -> bool {
    match r {
        Ok(()) => true,
        Err(e) => e.is_not_found() || e.is(ErrorCode::UploadSessionExpired),
    }
}

/// Goes on cancelling a session in the background after
/// [`Session::cancel_retrying`] gave up; tells `observer` once it is
/// settled (else it stays journaled for the next start).
fn cancel_in_background(
    session: Session,
    id: String,
    uri: CrUri,
    observer: Option<Arc<dyn UploadObserver>>,
) {
    let Ok(h) = tokio::runtime::Handle::try_current() else {
        return;
    };
    h.spawn(async move {
        for pause in CANCEL_BACKGROUND_PAUSES {
            tokio::time::sleep(pause).await;
            let r = session.cancel_upload(&id, &uri).await;
            if cancel_settled(&r) {
                tracing::info!(session_id = %id, %uri, "upload session cancelled in the background");
                if let Some(o) = &observer {
                    o.closed(&id);
                }
                return;
            }
        }
        tracing::warn!(session_id = %id, %uri, "upload session still not cancelled; left to the journal");
    });
}

/// Cancels an upload session when dropped while armed.
struct CancelGuard {
    session: Session,
    id: String,
    uri: CrUri,
    armed: bool,
    observer: Option<Arc<dyn UploadObserver>>,
}

impl CancelGuard {
    /// The session is settled (completed or cancelled): disarm and tell.
    fn settle(&mut self) {
        self.armed = false;
        if let Some(o) = &self.observer {
            o.closed(&self.id);
        }
    }
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Ok(h) = tokio::runtime::Handle::try_current() {
            let s = self.session.clone();
            let id = std::mem::take(&mut self.id);
            let uri = self.uri.clone();
            let observer = self.observer.take();
            h.spawn(async move {
                let r = s.cancel_retrying(&id, &uri).await;
                if let Err(e) = &r {
                    tracing::warn!(error = %e, session_id = %id, "cancelling dropped upload failed");
                }
                if !cancel_settled(&r) {
                    cancel_in_background(s, id, uri, observer);
                } else if let Some(o) = observer {
                    o.closed(&id);
                }
            });
        } else {
            tracing::warn!(session_id = %self.id, "upload dropped outside a runtime; session not cancelled");
        }
    }
}

impl Session {
    /// `PUT /file/upload`: creates an upload session.
    pub async fn create_upload_session(&self, req: &UploadRequest) -> Result<UploadSession> {
        let uri = req
            .uri
            .as_ref()
            .ok_or_else(|| Error::InvalidArgument("upload request without uri".into()))?;
        let body = ReqBody::json(&CreateSessionReq {
            uri: uri.to_string(),
            size: req.size,
            policy_id: &req.policy_id,
            last_modified: req.last_modified_ms,
            mime_type: req.mime_type.as_deref(),
            entity_type: req.entity_type.as_str(),
            metadata: req.metadata.as_ref(),
            encryption_supported: [AES_256_CTR],
        })?;
        self.call(
            Method::PUT,
            "/file/upload",
            &[],
            body,
            "create_upload_session",
        )
        .await
    }

    /// `POST /file/upload/{session_id}/{index}` with a streamed body of
    /// exactly `len` bytes.
    pub async fn upload_chunk<S, E>(
        &self,
        session_id: &str,
        index: u64,
        body: S,
        len: u64,
    ) -> Result<()>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send + 'static,
        E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
    {
        let sid = super::uri::escape_segment(session_id);
        let checked = LengthChecked::new(body, len);
        let state = checked.state();
        let res: Result<Option<serde_json::Value>> = self
            .call_stream(
                Method::POST,
                &format!("/file/upload/{sid}/{index}"),
                &[],
                reqwest::Body::wrap_stream(checked),
                len,
                "upload_chunk",
            )
            .await;
        match state.error() {
            Some(e) => Err(e),
            None => res.map(drop),
        }
    }

    /// `DELETE /file/upload`: cancels a session, removing its placeholder
    /// and releasing its lock.
    pub async fn cancel_upload(&self, session_id: &str, uri: &CrUri) -> Result<()> {
        let body = ReqBody::json(&CancelReq {
            id: session_id,
            uri: uri.to_string(),
        })?;
        self.call_value(Method::DELETE, "/file/upload", &[], body, "cancel_upload")
            .await
            .map(drop)
    }

    /// The new version's info once an upload completed, tried again (same
    /// pauses as cancels) on failure. Its final failure is reported as an
    /// upstream failure (HTTP 502 status), never as a refusal: the content
    /// was written.
    async fn info_after_upload(&self, uri: &CrUri) -> Result<FileResponse> {
        let mut r = self.info(uri, false).await;
        for pause in CANCEL_RETRY_PAUSES {
            if r.is_ok() {
                break;
            }
            tokio::time::sleep(pause).await;
            r = self.info(uri, false).await;
        }
        r.map_err(|e| Error::UnexpectedStatus {
            status: 502,
            body: format!("upload completed, reading the new version failed: {e}"),
            location: None,
        })
    }

    /// [`Session::cancel_upload`], tried again (after 0.2, 0.5, 1, 2 and
    /// 4 s) while the outcome leaves the session possibly open.
    pub async fn cancel_retrying(&self, session_id: &str, uri: &CrUri) -> Result<()> {
        let mut r = self.cancel_upload(session_id, uri).await;
        for pause in CANCEL_RETRY_PAUSES {
            if cancel_settled(&r) {
                break;
            }
            tokio::time::sleep(pause).await;
            r = self.cancel_upload(session_id, uri).await;
        }
        r
    }

    /// After a session creation whose outcome is unknown (the answer was
    /// lost), cancels the session it may have opened: the target then
    /// carries `sys:upload_session_id`. Otherwise its upload lock would
    /// block the file until the session expires (a day by default).
    async fn cancel_orphan(&self, uri: &CrUri) {
        // The lookup may fail for the same passing reason the creation did:
        // retry it with the cancel's pauses before giving up.
        let mut looked = self.info(uri, false).await;
        for pause in CANCEL_RETRY_PAUSES {
            if looked.is_ok() || looked.as_ref().is_err_and(|e| e.is_not_found()) {
                break;
            }
            tokio::time::sleep(pause).await;
            looked = self.info(uri, false).await;
        }
        let sid = match looked {
            Ok(f) => f
                .metadata
                .and_then(|m| m.get(UPLOAD_SESSION_KEY).cloned())
                .filter(|s| !s.is_empty()),
            Err(e) => {
                tracing::warn!(%uri, error = %e, "cannot look up the upload session a failed creation may have left open");
                None
            }
        };
        let Some(sid) = sid else { return };
        let r = self.cancel_retrying(&sid, uri).await;
        match &r {
            Ok(()) => {
                tracing::warn!(%uri, session_id = %sid, "cancelled the upload session a failed creation left open")
            }
            Err(e) => {
                tracing::warn!(%uri, session_id = %sid, error = %e, "cannot cancel the upload session a failed creation left open")
            }
        }
        if !cancel_settled(&r) {
            cancel_in_background(self.clone(), sid, uri.clone(), None);
        }
    }

    /// The storage policy id for uploads below `uri`: taken from the
    /// listing of the nearest existing ancestor folder.
    pub async fn policy_id_for(&self, uri: &CrUri) -> Result<String> {
        let mut dir = uri.parent();
        while let Some(d) = dir {
            match self.list_page(&d, 1, None).await {
                Ok(p) => {
                    return p
                        .storage_policy
                        .map(|sp| sp.id)
                        .filter(|id| !id.is_empty())
                        .ok_or_else(|| Error::decode("list", "no storage_policy in listing"));
                }
                Err(e) if e.is_not_found() => dir = d.parent(),
                Err(e) => return Err(e),
            }
        }
        Err(Error::InvalidArgument(format!("cannot upload to {uri}")))
    }

    /// Uploads `size` bytes read from `source` to `uri` through an upload
    /// session, chunk by chunk, streaming each chunk (bounded buffer, no
    /// whole-chunk allocation). On any failure — or if this future is
    /// dropped — the session is cancelled. Returns the new file's info.
    ///
    /// A policy refusing chunks gives code 40006
    /// ([`Error::is_policy_not_allowed`]): fall back to
    /// [`Session::put_content`].
    pub async fn upload<R>(
        &self,
        uri: &CrUri,
        size: u64,
        source: &mut R,
        opts: UploadOptions,
    ) -> Result<FileResponse>
    where
        R: AsyncRead + Unpin + Send + ?Sized,
    {
        let policy_id = match opts.policy_id {
            Some(p) => p,
            None => self.policy_id_for(uri).await?,
        };
        let req = UploadRequest {
            uri: Some(uri.clone()),
            size,
            policy_id,
            last_modified_ms: opts.last_modified_ms,
            mime_type: opts.mime_type,
            entity_type: if opts.overwrite {
                EntityType::Version
            } else {
                EntityType::New
            },
            metadata: opts.metadata,
        };
        let previous = opts.previous;
        let observer = opts.observer;
        let sess = match self.create_upload_session(&req).await {
            Ok(s) => s,
            Err(e) => {
                if outcome_unknown(&e) {
                    self.cancel_orphan(uri).await;
                }
                return Err(e);
            }
        };
        if let Some(o) = &observer {
            o.opened(&sess.session_id, uri);
        }
        let mut guard = CancelGuard {
            session: self.clone(),
            id: sess.session_id.clone(),
            uri: uri.clone(),
            armed: true,
            observer,
        };
        let sent = match sess.storage_policy.as_ref() {
            // The server would refuse the first chunk with 40006; do not
            // stream a chunk for nothing.
            Some(sp) if !sp.kind.is_empty() && !sp.accepts_chunks() => {
                Err(Error::Api(Box::new(ApiError {
                    code: ErrorCode::PolicyNotAllowed.as_i64(),
                    kind: ErrorCode::PolicyNotAllowed,
                    msg: format!(
                        "storage policy type {:?} does not accept chunk uploads (client-side check)",
                        sp.kind
                    ),
                    correlation_id: None,
                    error: None,
                    lock_conflicts: Vec::new(),
                    aggregated: None,
                })))
            }
            _ => match self.check_previous(uri, previous.as_ref()).await {
                Ok(()) => match sess
                    .encrypt_metadata
                    .as_ref()
                    .map(ContentCipher::from_metadata)
                {
                    Some(Err(e)) => Err(e),
                    Some(Ok(c)) => self.send_all_chunks(&sess, size, source, Some(&c)).await,
                    None => self.send_all_chunks(&sess, size, source, None).await,
                },
                Err(e) => Err(e),
            },
        };
        match sent {
            Ok(()) => {
                guard.settle();
                self.info_after_upload(uri).await
            }
            Err(e) => {
                // The guard stays armed while cancelling, so a drop during
                // the cancel request still cancels.
                let r = self.cancel_retrying(&sess.session_id, uri).await;
                if let Err(ce) = &r {
                    tracing::warn!(error = %ce, session_id = %sess.session_id, "cancelling failed upload failed");
                }
                if cancel_settled(&r) {
                    guard.settle();
                } else {
                    // Goes on in the background; journaled until settled.
                    guard.armed = false;
                    cancel_in_background(
                        self.clone(),
                        sess.session_id.clone(),
                        uri.clone(),
                        guard.observer.take(),
                    );
                }
                Err(e)
            }
        }
    }

    /// The [`UploadOptions::previous`] check, made while the session holds
    /// its lock.
    async fn check_previous(&self, uri: &CrUri, previous: Option<&Previous>) -> Result<()> {
        let Some(p) = previous else { return Ok(()) };
        let f = self.info(uri, false).await?;
        if p.matches(&f) {
            Ok(())
        } else {
            tracing::info!(%uri, expected = ?p, found = ?f.primary_entity, "upload target changed");
            Err(Previous::stale_error(uri))
        }
    }

    /// Like [`Session::upload`] with a byte stream as source.
    pub async fn upload_stream<S, E>(
        &self,
        uri: &CrUri,
        size: u64,
        source: S,
        opts: UploadOptions,
    ) -> Result<FileResponse>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send,
        E: Into<std::io::Error>,
    {
        let s = source.map(|r| r.map_err(Into::into));
        let mut reader = tokio_util::io::StreamReader::new(Box::pin(s));
        self.upload(uri, size, &mut reader, opts).await
    }

    async fn send_all_chunks<R>(
        &self,
        sess: &UploadSession,
        size: u64,
        source: &mut R,
        cipher: Option<&ContentCipher>,
    ) -> Result<()>
    where
        R: AsyncRead + Unpin + Send + ?Sized,
    {
        for c in chunk_plan(size, sess.chunk_size) {
            self.pump_chunk(&sess.session_id, c, source, cipher).await?;
        }
        Ok(())
    }

    /// Streams one chunk; re-sends it once when the server refused it for
    /// an expired token and every byte read so far is in the replay buffer.
    async fn pump_chunk<R>(
        &self,
        session_id: &str,
        c: ChunkSpec,
        source: &mut R,
        cipher: Option<&ContentCipher>,
    ) -> Result<()>
    where
        R: AsyncRead + Unpin + Send + ?Sized,
    {
        let mut replay = Replay::default();
        let mut left = c.len;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let r = self
                .chunk_attempt(session_id, c, source, &mut replay, &mut left, cipher)
                .await;
            match r {
                Err(e)
                    if attempt == 1
                        && !replay.overflow
                        && (e.is(ErrorCode::CheckLogin)
                            || e.is(ErrorCode::UploadSessionExpired)) =>
                {
                    // A 401 already refreshed the token; a 40011 may be a
                    // token the server now treats as anonymous.
                    if e.is(ErrorCode::UploadSessionExpired) {
                        self.refresh().await?;
                    }
                    tracing::info!(session_id, index = c.index, error = %e, "chunk refused for the token; re-sending after refresh");
                }
                r => return r,
            }
        }
    }

    /// One attempt at a chunk: a pump feeds the replayed bytes, then reads
    /// the rest of the chunk from the source into a small channel that
    /// feeds the request body. With a cipher, what goes out is encrypted
    /// from the chunk's offset (the replay buffer keeps plaintext).
    async fn chunk_attempt<R>(
        &self,
        session_id: &str,
        c: ChunkSpec,
        source: &mut R,
        replay: &mut Replay,
        left: &mut u64,
        cipher: Option<&ContentCipher>,
    ) -> Result<()>
    where
        R: AsyncRead + Unpin + Send + ?Sized,
    {
        let mut keystream = cipher.map(|k| k.at(c.offset));
        let mut seal = move |b: Bytes| match keystream.as_mut() {
            Some(k) => k.apply(&b),
            None => b,
        };
        let (mut tx, rx) = futures::channel::mpsc::channel::<
            std::result::Result<Bytes, std::io::Error>,
        >(CHANNEL_DEPTH);
        let pump = async move {
            for b in replay.kept.clone() {
                if tx.send(Ok(seal(b))).await.is_err() {
                    return Ok(());
                }
            }
            while *left > 0 {
                let want = (*left).min(READ_BUF as u64) as usize;
                let mut buf = BytesMut::zeroed(want);
                let n = match source.read(&mut buf[..]).await {
                    Ok(0) => {
                        let e = Error::SourceLength {
                            expected: c.offset + c.len,
                            actual: c.offset + c.len - *left,
                        };
                        let _ = tx
                            .send(Err(std::io::Error::other("upload source ended early")))
                            .await;
                        return Err(e);
                    }
                    Ok(n) => n,
                    Err(e) => {
                        let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                        return Err(Error::Io(e));
                    }
                };
                buf.truncate(n);
                *left -= n as u64;
                let b = buf.freeze();
                replay.keep(&b);
                if tx.send(Ok(seal(b))).await.is_err() {
                    // The request ended (failed); its error is reported.
                    return Ok(());
                }
            }
            Ok(())
        };
        let req = self.upload_chunk(session_id, c.index, rx, c.len);
        let pump = std::pin::pin!(pump);
        let req = std::pin::pin!(req);
        match futures::future::select(req, pump).await {
            futures::future::Either::Left((req_res, pump)) => {
                if req_res.is_ok() {
                    // The server got every byte; the pump is done or about to be.
                    pump.await?;
                }
                req_res
            }
            futures::future::Either::Right((pump_res, req)) => {
                let req_res = req.await;
                pump_res?;
                req_res
            }
        }
    }
}

/// The bytes of the current chunk read so far, while they fit [`REPLAY_MAX`].
#[derive(Default)]
struct Replay {
    kept: Vec<Bytes>,
    len: u64,
    overflow: bool,
}

impl Replay {
    fn keep(&mut self, b: &Bytes) {
        if self.overflow {
            return;
        }
        self.len += b.len() as u64;
        if self.len > REPLAY_MAX {
            self.overflow = true;
            self.kept.clear();
        } else {
            self.kept.push(b.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_math() {
        const MB25: u64 = 25 * 1024 * 1024;
        assert_eq!(
            chunk_plan(0, MB25),
            vec![ChunkSpec {
                index: 0,
                offset: 0,
                len: 0
            }]
        );
        assert_eq!(
            chunk_plan(0, 0),
            vec![ChunkSpec {
                index: 0,
                offset: 0,
                len: 0
            }]
        );
        assert_eq!(
            chunk_plan(10, 0),
            vec![ChunkSpec {
                index: 0,
                offset: 0,
                len: 10
            }]
        );
        assert_eq!(
            chunk_plan(10, 10),
            vec![ChunkSpec {
                index: 0,
                offset: 0,
                len: 10
            }]
        );
        assert_eq!(chunk_plan(10, 100).len(), 1);
        let p = chunk_plan(2 * MB25 + 1, MB25);
        assert_eq!(p.len(), 3);
        assert_eq!(
            p[2],
            ChunkSpec {
                index: 2,
                offset: 2 * MB25,
                len: 1
            }
        );
        let p = chunk_plan(3 * MB25, MB25);
        assert_eq!(p.len(), 3);
        assert!(p.iter().all(|c| c.len == MB25));
        for (size, cs) in [
            (1u64, 1u64),
            (7, 3),
            (1000, 7),
            (u32::MAX as u64 + 5, 1 << 20),
        ] {
            let p = chunk_plan(size, cs);
            assert_eq!(p.iter().map(|c| c.len).sum::<u64>(), size);
            for (i, c) in p.iter().enumerate() {
                assert_eq!(c.index, i as u64);
                assert_eq!(c.offset, i as u64 * cs);
                assert!(c.len > 0 && c.len <= cs);
            }
        }
    }

    #[tokio::test]
    async fn length_checked_detects_mismatch() {
        let s = futures::stream::iter(vec![Ok::<_, std::io::Error>(Bytes::from_static(b"abc"))]);
        let mut c = LengthChecked::new(s, 4);
        let st = c.state();
        assert!(c.next().await.unwrap().is_ok());
        assert!(c.next().await.unwrap().is_err());
        assert!(matches!(
            st.error(),
            Some(Error::SourceLength {
                expected: 4,
                actual: 3
            })
        ));
        let s = futures::stream::iter(vec![Ok::<_, std::io::Error>(Bytes::from_static(b"abc"))]);
        let mut c = LengthChecked::new(s, 3);
        assert!(c.next().await.unwrap().is_ok());
        assert!(c.next().await.is_none());
        assert!(c.state().error().is_none());
    }
}
