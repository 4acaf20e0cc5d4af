//! The download `DavFile`: lazy (HEAD never opens the body), ranged from
//! the current seek position, and strict about premature ends (dav-server
//! would pad a short read with zeros).

use std::io::SeekFrom;
use std::sync::Arc;

use bytes::Bytes;
use dav_server::fs::{DavFile, DavMetaData, FsError, FsFuture};
use futures::{FutureExt as _, StreamExt as _};

use crate::cloudreve::{ByteStream, CrUri};

use super::ctx::RequestCtx;
use super::errors::map_err;
use super::file_meta::CrMeta;

/// A file opened for reading.
pub struct ReadFile {
    ctx: Arc<RequestCtx>,
    uri: CrUri,
    meta: CrMeta,
    /// Logical read position.
    pos: u64,
    /// The open body and the position of its next byte.
    /// (A `Mutex` only to make the reader `Sync`; always reached through
    /// `&mut self`, so never contended.)
    stream: Option<(std::sync::Mutex<ByteStream>, u64)>,
    /// Bytes received but not yet returned (start at `pos`).
    pending: Bytes,
    /// A signed download URL fetched at open time (GET), so that upstream
    /// failures become a status before dav-server commits a 200.
    url: Option<String>,
}

impl std::fmt::Debug for ReadFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadFile")
            .field("uri", &self.uri)
            .field("pos", &self.pos)
            .finish_non_exhaustive()
    }
}

impl ReadFile {
    /// A lazy reader of `uri` described by `meta`.
    pub fn new(ctx: Arc<RequestCtx>, uri: CrUri, meta: CrMeta) -> Self {
        Self {
            ctx,
            uri,
            meta,
            pos: 0,
            stream: None,
            pending: Bytes::new(),
            url: None,
        }
    }

    /// Fetches the signed URL now (one upstream call; no body transfer).
    pub async fn prepare(&mut self) -> Result<(), FsError> {
        if self.meta.size == 0 {
            return Ok(());
        }
        let u = self
            .ctx
            .session
            .download_url(
                &self.uri,
                self.meta.entity.as_deref(),
                crate::cloudreve::DownloadUrlOptions {
                    no_cache: true,
                    download: false,
                },
            )
            .await
            .map_err(|e| map_err(&self.ctx, "download_url", &e))?;
        self.url = Some(u.url);
        Ok(())
    }

    async fn open_at(&mut self) -> Result<(), FsError> {
        let range = (self.pos > 0).then_some((self.pos, None));
        let r = match self.url.take() {
            Some(url) => self.ctx.session.open_read(&url, range).await,
            None => {
                self.ctx
                    .session
                    .open_read_uri(&self.uri, self.meta.entity.as_deref(), range)
                    .await
            }
        }
        .map_err(|e| map_err(&self.ctx, "open_read", &e))?;
        let start = match (&r.content_range, r.status) {
            (Some(cr), 206) => cr.start,
            (_, 200) => 0,
            _ => {
                tracing::warn!(uri = %self.uri, status = r.status, "unexpected download status");
                self.ctx.want(http::StatusCode::BAD_GATEWAY, None);
                return Err(FsError::GeneralFailure);
            }
        };
        if start != self.pos && start != 0 {
            tracing::warn!(uri = %self.uri, start, pos = self.pos, "download started at the wrong offset");
            self.ctx.want(http::StatusCode::BAD_GATEWAY, None);
            return Err(FsError::GeneralFailure);
        }
        self.stream = Some((std::sync::Mutex::new(r.into_stream()), start));
        Ok(())
    }

    async fn read(&mut self, count: usize) -> Result<Bytes, FsError> {
        if count == 0 || self.pos >= self.meta.size {
            return Ok(Bytes::new());
        }
        let want = count.min((self.meta.size - self.pos).min(usize::MAX as u64) as usize);
        if !self.pending.is_empty() {
            let n = want.min(self.pending.len());
            let out = self.pending.split_to(n);
            self.pos += n as u64;
            return Ok(out);
        }
        if self.stream.is_none() {
            self.open_at().await?;
        }
        loop {
            let Some((stream, spos)) = self.stream.as_mut() else {
                return Err(FsError::GeneralFailure);
            };
            let Ok(stream) = stream.get_mut() else {
                return Err(FsError::GeneralFailure);
            };
            match stream.next().await {
                Some(Ok(mut chunk)) => {
                    let cstart = *spos;
                    *spos += chunk.len() as u64;
                    if *spos <= self.pos {
                        continue; // before the wanted position (a 200 answer)
                    }
                    if cstart < self.pos {
                        let _ = chunk.split_to((self.pos - cstart) as usize);
                    }
                    if chunk.is_empty() {
                        continue;
                    }
                    let n = want.min(chunk.len());
                    let out = chunk.split_to(n);
                    self.pending = chunk;
                    self.pos += n as u64;
                    return Ok(out);
                }
                Some(Err(e)) => {
                    self.stream = None;
                    return Err(map_err(&self.ctx, "read", &e));
                }
                None => {
                    // Premature end: never let dav-server pad with zeros.
                    tracing::warn!(uri = %self.uri, pos = self.pos, size = self.meta.size, "download ended early");
                    self.stream = None;
                    self.ctx.want(http::StatusCode::BAD_GATEWAY, None);
                    return Err(FsError::GeneralFailure);
                }
            }
        }
    }
}

impl DavFile for ReadFile {
    fn metadata(&mut self) -> FsFuture<'_, Box<dyn DavMetaData>> {
        let m: Box<dyn DavMetaData> = Box::new(self.meta.clone());
        futures::future::ready(Ok(m)).boxed()
    }

    fn write_buf(&mut self, _buf: Box<dyn bytes::Buf + Send>) -> FsFuture<'_, ()> {
        futures::future::ready(Err(FsError::Forbidden)).boxed()
    }

    fn write_bytes(&mut self, _buf: Bytes) -> FsFuture<'_, ()> {
        futures::future::ready(Err(FsError::Forbidden)).boxed()
    }

    fn read_bytes(&mut self, count: usize) -> FsFuture<'_, Bytes> {
        self.read(count).boxed()
    }

    fn seek(&mut self, pos: SeekFrom) -> FsFuture<'_, u64> {
        let size = self.meta.size as i128;
        let new = match pos {
            SeekFrom::Start(p) => p as i128,
            SeekFrom::End(d) => size + d as i128,
            SeekFrom::Current(d) => self.pos as i128 + d as i128,
        };
        let r = if new < 0 {
            Err(FsError::GeneralFailure)
        } else {
            let new = new as u64;
            if new != self.pos {
                self.pending = Bytes::new();
                self.stream = None;
                self.pos = new;
            }
            Ok(new)
        };
        futures::future::ready(r).boxed()
    }

    fn flush(&mut self) -> FsFuture<'_, ()> {
        futures::future::ready(Ok(())).boxed()
    }
}
