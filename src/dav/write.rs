//! The upload `DavFile` (PUT, and LOCK on a new path).
//!
//! * Known length (`Content-Length` / `X-Expected-Entity-Length`): the bytes
//!   stream through a bounded channel into the client's chunked upload
//!   session (`entity_type: version`, so an existing file keeps its old
//!   content until the upload completes). The last byte is held back until
//!   `flush()` has verified the count: the upload can only complete there.
//! * Unknown length: spooled to a bounded temporary file, uploaded at
//!   `flush()`.
//! * A `DavFile` dropped without a successful `flush()` (client abort,
//!   short body) cancels the upload session: no placeholder, no lock.
//! * Policies refusing chunk uploads (40006) fall back to
//!   `PUT /file/content` (bounded by the server's `maxEditSize`: 413 above).
//! * Conditional writes ([`WriteGuard`]): a PUT whose `If-Match` named the
//!   current version passes that version on, so a write by another
//!   Cloudreve client after dav-server's check yields 412 instead of a lost
//!   update: `PUT /file/content?previous=<entity>` checks it server-side;
//!   an upload session checks it once the session holds its upload lock
//!   (see [`UploadOptions::previous`]). `If-None-Match: *` creates with
//!   `entity_type: ""`, so a file created meanwhile gives 412, not an
//!   overwrite. Remaining races: a file without content entity (created
//!   empty) on the `/file/content` path is re-checked just before the call
//!   (`previous` needs an entity), and `If-None-Match: *` cannot be kept
//!   there (`/file/content` always overwrites).

use std::io::SeekFrom;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use dav_server::fs::{DavFile, DavMetaData, FsError, FsFuture};
use futures::channel::mpsc;
use futures::{FutureExt as _, SinkExt as _};
use http::StatusCode;
use tokio::io::{AsyncSeekExt as _, AsyncWriteExt as _};
use tokio::task::JoinHandle;

use crate::cloudreve::{CrUri, Error, FileResponse, Previous, Session, UploadOptions};

use super::ctx::RequestCtx;
use super::errors::map_err;
use super::file_meta::CrMeta;
use super::times_and_checksums::{self, Expected};

/// Depth of the channel between `write_bytes` and the upload task (frames).
const CHANNEL_DEPTH: usize = 8;

type Frame = Result<Bytes, std::io::Error>;
type UploadTask = JoinHandle<Result<FileResponse, Error>>;

enum Mode {
    /// Streaming into an upload session of a known size.
    Stream {
        tx: Option<mpsc::Sender<Frame>>,
        task: Option<UploadTask>,
        held: Option<Bytes>,
    },
    /// Spooling to a temporary file (unknown size).
    Spool {
        file: Option<tokio::fs::File>,
        path: PathBuf,
    },
    /// Nothing to upload (size 0, lock-empty resource, or done).
    Idle,
}

/// What a conditional PUT requires of the upstream write.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteGuard {
    /// The version `If-Match` named (it was current when dav-server
    /// checked it); the write fails with 412 if it is no longer current.
    pub previous: Option<Previous>,
    /// `If-None-Match: *`: the file must not exist when the write lands.
    pub create_new: bool,
}

/// A file opened for writing.
pub struct WriteFile {
    ctx: Arc<RequestCtx>,
    uri: CrUri,
    declared: Option<u64>,
    written: u64,
    mode: Mode,
    result: Option<CrMeta>,
    failed: bool,
    /// `OC-Checksum` to verify (hashed while streaming).
    checksum: Option<Expected>,
    /// Conditions the upstream write must keep.
    guard: WriteGuard,
}

impl std::fmt::Debug for WriteFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteFile")
            .field("uri", &self.uri)
            .field("declared", &self.declared)
            .field("written", &self.written)
            .finish_non_exhaustive()
    }
}

fn opts(guard: &WriteGuard, ctx: &RequestCtx) -> UploadOptions {
    UploadOptions {
        overwrite: !guard.create_new,
        previous: guard.previous.clone(),
        observer: ctx
            .settings
            .upload_journal
            .as_ref()
            .map(|j| j.observer(&ctx.principal.email)),
        ..UploadOptions::default()
    }
}

/// `PUT /file/content` keeping `guard.previous`: as `previous` when the
/// version has an entity, else by a check right before the call.
async fn put_content_guarded<S>(
    session: &Session,
    uri: &CrUri,
    guard: &WriteGuard,
    body: S,
    n: u64,
) -> Result<FileResponse, Error>
where
    S: futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
{
    let previous = match &guard.previous {
        Some(Previous {
            entity: Some(e), ..
        }) => Some(e.as_str()),
        Some(p) => {
            let f = session.info(uri, false).await?;
            if !p.matches(&f) {
                return Err(Previous::stale_error(uri));
            }
            None
        }
        None => None,
    };
    session.put_content(uri, previous, body, n).await
}

/// Uploads `n` bytes from a channel; falls back to `PUT /file/content` when
/// the policy refuses chunks (nothing was consumed from the channel then).
fn spawn_stream_upload(
    session: Session,
    uri: CrUri,
    n: u64,
    mut rx: mpsc::Receiver<Frame>,
    guard: WriteGuard,
    opts: UploadOptions,
) -> UploadTask {
    tokio::spawn(async move {
        match session.upload_stream(&uri, n, &mut rx, opts).await {
            Err(e) if e.is_policy_not_allowed() => {
                tracing::info!(%uri, "policy refuses chunks; falling back to /file/content");
                put_content_guarded(&session, &uri, &guard, rx, n).await
            }
            r => r,
        }
    })
}

impl WriteFile {
    /// A writer for `uri`; `declared` is the announced body length,
    /// `checksum` the client's `OC-Checksum` (verified before the upload
    /// can complete; another algorithm than SHA1/MD5/SHA256 is ignored),
    /// `guard` what the upstream write must keep of the request's
    /// conditions.
    pub async fn open(
        ctx: Arc<RequestCtx>,
        uri: CrUri,
        declared: Option<u64>,
        checksum: Option<&str>,
        guard: WriteGuard,
    ) -> Result<Self, FsError> {
        let checksum = checksum.and_then(Expected::parse);
        let mode = match declared {
            Some(0) => Mode::Idle,
            Some(n) => {
                let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
                let task = spawn_stream_upload(
                    ctx.session.clone(),
                    uri.clone(),
                    n,
                    rx,
                    guard.clone(),
                    opts(&guard, &ctx),
                );
                Mode::Stream {
                    tx: Some(tx),
                    task: Some(task),
                    held: None,
                }
            }
            None => {
                let dir = ctx.settings.spool_dir.clone();
                let path = dir.join(format!("cloudreve-dav-{}.spool", uuid::Uuid::new_v4()));
                let file = tokio::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create_new(true)
                    .open(&path)
                    .await
                    .map_err(|e| {
                        tracing::error!(path = %path.display(), error = %e, "cannot create spool file");
                        FsError::InsufficientStorage
                    })?;
                Mode::Spool {
                    file: Some(file),
                    path,
                }
            }
        };
        Ok(Self {
            ctx,
            uri,
            declared,
            written: 0,
            mode,
            result: None,
            failed: false,
            checksum,
            guard,
        })
    }

    /// A writer that has nothing to do (the lock-empty resource was created).
    pub fn done(ctx: Arc<RequestCtx>, uri: CrUri, f: &FileResponse) -> Self {
        Self {
            ctx,
            uri,
            declared: Some(0),
            written: 0,
            mode: Mode::Idle,
            result: Some(CrMeta::from_file(f)),
            failed: false,
            checksum: None,
            guard: WriteGuard::default(),
        }
    }

    fn fail(&mut self, status: Option<StatusCode>) -> FsError {
        self.failed = true;
        if let Some(s) = status {
            self.ctx.want(s, None);
        }
        self.abort();
        FsError::GeneralFailure
    }

    /// Cancels whatever is in flight (the upload task sees a source error
    /// and cancels its session itself).
    fn abort(&mut self) {
        match &mut self.mode {
            Mode::Stream { tx, held, .. } => {
                held.take();
                if let Some(mut t) = tx.take() {
                    let _ = t.try_send(Err(std::io::Error::other("upload aborted")));
                }
            }
            Mode::Spool { file, path } => {
                file.take();
                let _ = std::fs::remove_file(&*path);
            }
            Mode::Idle => {}
        }
    }

    async fn task_error(&mut self) -> FsError {
        let task = match &mut self.mode {
            Mode::Stream { task, tx, .. } => {
                tx.take();
                task.take()
            }
            _ => None,
        };
        self.failed = true;
        match task {
            Some(t) => match t.await {
                Ok(Err(e)) => self.upload_err(&e),
                Ok(Ok(_)) => {
                    // Completed without our last byte: cannot happen.
                    self.ctx.want(StatusCode::BAD_GATEWAY, None);
                    FsError::GeneralFailure
                }
                Err(_) => FsError::GeneralFailure,
            },
            None => FsError::GeneralFailure,
        }
    }

    async fn write(&mut self, buf: Bytes) -> Result<(), FsError> {
        if self.failed {
            return Err(FsError::GeneralFailure);
        }
        if buf.is_empty() {
            return Ok(());
        }
        let len = buf.len() as u64;
        if let Some(n) = self.declared
            && self.written + len > n
        {
            return Err(self.fail(Some(StatusCode::BAD_REQUEST)));
        }
        self.written += len;
        if let Some(c) = self.checksum.as_mut() {
            c.update(&buf);
        }
        let max = self.ctx.settings.spool_max;
        let done = self.declared == Some(self.written);
        match &mut self.mode {
            Mode::Stream { tx, held, .. } => {
                let Some(sender) = tx.as_mut() else {
                    return Err(FsError::GeneralFailure);
                };
                let mut frames: Vec<Bytes> = Vec::with_capacity(2);
                if let Some(h) = held.take() {
                    frames.push(h);
                }
                let mut buf = buf;
                if done {
                    let last = buf.split_off(buf.len() - 1);
                    *held = Some(last);
                }
                if !buf.is_empty() {
                    frames.push(buf);
                }
                for f in frames {
                    if sender.send(Ok(f)).await.is_err() {
                        return Err(self.task_error().await);
                    }
                }
                Ok(())
            }
            Mode::Spool { file, .. } => {
                if self.written > max {
                    tracing::info!(uri = %self.uri, max, "spooled upload over the limit");
                    return Err({
                        self.failed = true;
                        self.abort();
                        FsError::TooLarge
                    });
                }
                let Some(f) = file.as_mut() else {
                    return Err(FsError::GeneralFailure);
                };
                if let Err(e) = f.write_all(&buf).await {
                    tracing::error!(error = %e, "spool write failed");
                    self.failed = true;
                    self.abort();
                    return Err(FsError::InsufficientStorage);
                }
                Ok(())
            }
            Mode::Idle => Err(self.fail(Some(StatusCode::BAD_REQUEST))),
        }
    }

    async fn commit(&mut self) -> Result<(), FsError> {
        if self.result.is_some() {
            return Ok(());
        }
        if self.failed {
            return Err(FsError::GeneralFailure);
        }
        if let Some(n) = self.declared
            && n != self.written
        {
            tracing::info!(uri = %self.uri, declared = n, written = self.written, "short upload body");
            return Err(self.fail(Some(StatusCode::BAD_REQUEST)));
        }
        if let Some(c) = &self.checksum
            && !c.matches()
        {
            // The last byte is still held back: the upload cannot
            // complete, the old content stays.
            tracing::info!(uri = %self.uri, expected = %c.value, "OC-Checksum mismatch");
            return Err(self.fail(Some(StatusCode::BAD_REQUEST)));
        }
        let session = self.ctx.session.clone();
        let uri = self.uri.clone();
        let res = match std::mem::replace(&mut self.mode, Mode::Idle) {
            Mode::Idle => {
                // Size 0: an empty upload.
                let (tx, rx) = mpsc::channel(1);
                drop(tx);
                spawn_stream_upload(
                    session,
                    uri,
                    0,
                    rx,
                    self.guard.clone(),
                    opts(&self.guard, &self.ctx),
                )
                .await
                .map_err(|_| Error::InvalidArgument("upload task failed".into()))
                .and_then(|r| r)
            }
            Mode::Stream { tx, task, held } => {
                let Some(mut tx) = tx else {
                    return Err(FsError::GeneralFailure);
                };
                if let Some(h) = held
                    && tx.send(Ok(h)).await.is_err()
                {
                    self.mode = Mode::Stream {
                        tx: None,
                        task,
                        held: None,
                    };
                    return Err(self.task_error().await);
                }
                drop(tx);
                match task {
                    Some(t) => t
                        .await
                        .map_err(|_| Error::InvalidArgument("upload task failed".into()))
                        .and_then(|r| r),
                    None => return Err(FsError::GeneralFailure),
                }
            }
            Mode::Spool { file, path } => {
                let r = upload_spool(
                    &session,
                    &uri,
                    file,
                    self.written,
                    &self.guard,
                    opts(&self.guard, &self.ctx),
                )
                .await;
                let _ = tokio::fs::remove_file(&path).await;
                r
            }
        };
        self.ctx.forget_all();
        match res {
            Ok(f) => {
                let mut meta = CrMeta::from_file(&f);
                if self.keep(&f).await {
                    meta.modified = self.ctx.oc_mtime.or(meta.modified);
                }
                self.result = Some(meta);
                Ok(())
            }
            Err(e) => {
                self.failed = true;
                Err(self.upload_err(&e))
            }
        }
    }

    /// Maps an upload failure; with `If-None-Match: *` a file that
    /// appeared meanwhile (40004) is a failed precondition.
    fn upload_err(&self, e: &Error) -> FsError {
        if self.guard.create_new && e.is_conflict_exists() {
            tracing::info!(uri = %self.uri, "If-None-Match: * but the file appeared upstream");
            self.ctx.want(StatusCode::PRECONDITION_FAILED, None);
            return FsError::GeneralFailure;
        }
        map_err(&self.ctx, "upload", e)
    }
}

impl WriteFile {
    /// Keeps the client's `X-OC-Mtime` and verified checksum for the new
    /// version `f`; true when the mtime was kept. A failure here leaves
    /// the content written (the upload did complete) and is logged.
    async fn keep(&self, f: &FileResponse) -> bool {
        let entity = f.primary_entity.clone().unwrap_or_default();
        let mut patches = times_and_checksums::Times {
            mtime: self.ctx.oc_mtime,
            ctime: None,
        }
        .patches(&entity);
        if let Some(c) = &self.checksum {
            patches.push(times_and_checksums::patch(
                times_and_checksums::CHECKSUM,
                &entity,
                &c.kept_value(),
            ));
        }
        if patches.is_empty() {
            return false;
        }
        match self
            .ctx
            .session
            .patch_metadata(std::slice::from_ref(&self.uri), &patches)
            .await
        {
            Ok(()) => {
                if self.ctx.oc_mtime.is_some() {
                    self.ctx.set_times_kept();
                }
                self.ctx.oc_mtime.is_some()
            }
            Err(e) => {
                tracing::warn!(uri = %self.uri, error = %e, "keeping mtime/checksum failed");
                false
            }
        }
    }
}

async fn upload_spool(
    session: &Session,
    uri: &CrUri,
    file: Option<tokio::fs::File>,
    n: u64,
    guard: &WriteGuard,
    opts: UploadOptions,
) -> Result<FileResponse, Error> {
    let mut f = file.ok_or_else(|| Error::InvalidArgument("spool file gone".into()))?;
    f.flush().await?;
    f.seek(SeekFrom::Start(0)).await?;
    match session.upload(uri, n, &mut f, opts).await {
        Err(e) if e.is_policy_not_allowed() => {
            f.seek(SeekFrom::Start(0)).await?;
            let s = tokio_util::io::ReaderStream::new(f);
            put_content_guarded(session, uri, guard, s, n).await
        }
        r => r,
    }
}

impl Drop for WriteFile {
    fn drop(&mut self) {
        if self.result.is_none() {
            self.abort();
        }
    }
}

impl DavFile for WriteFile {
    fn metadata(&mut self) -> FsFuture<'_, Box<dyn DavMetaData>> {
        let r = match &self.result {
            Some(m) => Ok(Box::new(m.clone()) as Box<dyn DavMetaData>),
            None => Ok(Box::new(CrMeta {
                dir: false,
                size: self.written,
                modified: Some(std::time::SystemTime::now()),
                created: None,
                etag: format!("pending-{}", self.written),
                entity: None,
            }) as Box<dyn DavMetaData>),
        };
        futures::future::ready(r).boxed()
    }

    fn write_buf(&mut self, mut buf: Box<dyn bytes::Buf + Send>) -> FsFuture<'_, ()> {
        let b = buf.copy_to_bytes(buf.remaining());
        self.write(b).boxed()
    }

    fn write_bytes(&mut self, buf: Bytes) -> FsFuture<'_, ()> {
        self.write(buf).boxed()
    }

    fn read_bytes(&mut self, _count: usize) -> FsFuture<'_, Bytes> {
        futures::future::ready(Err(FsError::Forbidden)).boxed()
    }

    fn seek(&mut self, pos: SeekFrom) -> FsFuture<'_, u64> {
        // Partial updates (Content-Range PUT, sabredav PATCH) are not
        // supported by Cloudreve's API.
        let r = match pos {
            SeekFrom::Start(p) if p == self.written => Ok(p),
            _ => Err(FsError::NotImplemented),
        };
        futures::future::ready(r).boxed()
    }

    fn flush(&mut self) -> FsFuture<'_, ()> {
        self.commit().boxed()
    }
}
