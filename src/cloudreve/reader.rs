//! Downloads (docs/UPSTREAM.md §5.2, §5.3): signed URL → streamed body with range
//! support, error-envelope detection and short-body detection.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use reqwest::{StatusCode, header};
use tokio::io::AsyncRead;

use super::core::{Client, unexpected_status};
use super::error::{Error, Result, decode_envelope};
use super::files::DownloadUrlOptions;
use super::session::Session;
use super::uri::CrUri;

/// A stream of body bytes.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes>> + Send>>;

/// Largest JSON body sniffed for an error envelope.
const SNIFF_LIMIT: usize = 1 << 20;
/// Maximum redirects followed for a download.
const MAX_REDIRECTS: usize = 5;

/// A parsed `Content-Range: bytes start-end/total` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentRange {
    /// First byte (inclusive).
    pub start: u64,
    /// Last byte (inclusive).
    pub end: u64,
    /// Full length, if known (`*` → `None`).
    pub total: Option<u64>,
}

impl ContentRange {
    /// Parses `bytes a-b/t`.
    pub fn parse(s: &str) -> Option<Self> {
        let rest = s.trim().strip_prefix("bytes")?.trim_start();
        let (range, total) = rest.split_once('/')?;
        let (a, b) = range.split_once('-')?;
        let start = a.trim().parse().ok()?;
        let end = b.trim().parse().ok()?;
        let total = match total.trim() {
            "*" => None,
            t => Some(t.parse().ok()?),
        };
        (end >= start).then_some(ContentRange { start, end, total })
    }
}

/// An open download.
pub struct Reader {
    /// HTTP status (200 or 206).
    pub status: u16,
    /// Length of this body (`Content-Length`).
    pub content_length: Option<u64>,
    /// Length of the whole entity (from `Content-Range`, or the body length
    /// of a 200).
    pub total_length: Option<u64>,
    /// The `Content-Range` of a 206.
    pub content_range: Option<ContentRange>,
    /// `Etag` header as sent (quoted).
    pub etag: Option<String>,
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// `Last-Modified`.
    pub last_modified: Option<String>,
    body: ByteStream,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("status", &self.status)
            .field("content_length", &self.content_length)
            .field("total_length", &self.total_length)
            .field("content_range", &self.content_range)
            .field("etag", &self.etag)
            .finish_non_exhaustive()
    }
}

impl Reader {
    /// The body as a byte stream. Ends with [`Error::ShortBody`] when the
    /// connection ends before `Content-Length` bytes.
    pub fn into_stream(self) -> ByteStream {
        self.body
    }

    /// The body as an `AsyncRead` (errors become `io::Error`s).
    pub fn into_async_read(self) -> impl AsyncRead + Send + Unpin {
        tokio_util::io::StreamReader::new(self.body.map(|r| r.map_err(std::io::Error::other)))
    }

    /// Reads the whole body into memory (for small files and tests only).
    pub async fn bytes(self) -> Result<Bytes> {
        let mut out = bytes::BytesMut::new();
        let mut s = self.body;
        while let Some(c) = s.next().await {
            out.extend_from_slice(&c?);
        }
        Ok(out.freeze())
    }
}

/// Counts bytes and fails when the stream ends short of `expected`.
struct Counted<S> {
    inner: S,
    expected: Option<u64>,
    received: u64,
    finished: bool,
}

impl<S> Stream for Counted<S>
where
    S: Stream<Item = reqwest::Result<Bytes>> + Unpin,
{
    type Item = Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.finished {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(b))) => {
                self.received += b.len() as u64;
                if let Some(exp) = self.expected
                    && self.received > exp
                {
                    self.finished = true;
                    return Poll::Ready(Some(Err(Error::decode(
                        "download",
                        format!("body longer than Content-Length {exp}"),
                    ))));
                }
                Poll::Ready(Some(Ok(b)))
            }
            Poll::Ready(Some(Err(e))) => {
                self.finished = true;
                Poll::Ready(Some(Err(Error::Transport(e))))
            }
            Poll::Ready(None) => {
                self.finished = true;
                match self.expected {
                    Some(exp) if self.received < exp => Poll::Ready(Some(Err(Error::ShortBody {
                        expected: exp,
                        received: self.received,
                    }))),
                    _ => Poll::Ready(None),
                }
            }
        }
    }
}

fn header_str(resp: &reqwest::Response, name: header::HeaderName) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

impl Client {
    /// Resolves a download URL against the base URL (relative URLs) and
    /// optionally rewrites the host of Cloudreve-signed URLs.
    fn resolve_download_url(&self, url: &str) -> Result<reqwest::Url> {
        let base = reqwest::Url::parse(self.base_url())
            .map_err(|e| Error::InvalidArgument(format!("base url: {e}")))?;
        let mut u = base
            .join(url)
            .map_err(|e| Error::InvalidArgument(format!("bad download url {url:?}: {e}")))?;
        if self.options().rewrite_download_host && u.path().contains("/api/v4/file/content/") {
            let _ = u.set_scheme(base.scheme());
            let _ = u.set_host(base.host_str());
            let _ = u.set_port(base.port());
        }
        Ok(u)
    }

    /// Opens a download URL (signed Cloudreve URL or presigned storage URL;
    /// no JWT is sent). `range` is `(start, Some(end_inclusive))` or
    /// `(start, None)` for "to the end".
    pub async fn open_url(&self, url: &str, range: Option<(u64, Option<u64>)>) -> Result<Reader> {
        let mut target = self.resolve_download_url(url)?;
        let mut hops = 0;
        let resp = loop {
            let mut rb = self.http().get(target.clone());
            if let Some((start, end)) = range {
                let v = match end {
                    Some(e) => format!("bytes={start}-{e}"),
                    None => format!("bytes={start}-"),
                };
                rb = rb.header(header::RANGE, v);
            }
            let resp = rb.send().await?;
            if resp.status().is_redirection()
                && hops < MAX_REDIRECTS
                && let Some(loc) = header_str(&resp, header::LOCATION)
            {
                target = target
                    .join(&loc)
                    .map_err(|e| Error::decode("download redirect", e))?;
                hops += 1;
                continue;
            }
            break resp;
        };
        let status = resp.status();
        if status != StatusCode::OK && status != StatusCode::PARTIAL_CONTENT {
            return Err(unexpected_status(resp, "download").await);
        }
        let etag = header_str(&resp, header::ETAG);
        let content_type = header_str(&resp, header::CONTENT_TYPE);
        let last_modified = header_str(&resp, header::LAST_MODIFIED);
        let content_length = resp.content_length();
        let content_range =
            header_str(&resp, header::CONTENT_RANGE).and_then(|s| ContentRange::parse(&s));
        if status == StatusCode::PARTIAL_CONTENT && content_range.is_none() {
            return Err(Error::decode(
                "download",
                "206 without a single-range Content-Range",
            ));
        }
        let total_length = match (status, content_range) {
            (StatusCode::PARTIAL_CONTENT, Some(cr)) => cr.total,
            _ => content_length,
        };

        let mut stream = resp.bytes_stream().boxed();
        let mut prefix: Option<Bytes> = None;
        if status == StatusCode::OK
            && etag.is_none()
            && content_length.is_none_or(|l| l <= SNIFF_LIMIT as u64)
        {
            // A successful Cloudreve serve always sets `Etag`; a 200 without
            // it whose (small) body is a JSON envelope with a non-zero code
            // is an API error, whatever its Content-Type. Other bodies are
            // passed through (at most SNIFF_LIMIT bytes are buffered).
            let mut buf = bytes::BytesMut::new();
            let mut ended = false;
            while buf.len() <= SNIFF_LIMIT {
                match stream.next().await {
                    Some(Ok(c)) => buf.extend_from_slice(&c),
                    Some(Err(e)) => return Err(Error::Transport(e)),
                    None => {
                        ended = true;
                        break;
                    }
                }
            }
            let buf = buf.freeze();
            if ended
                && let Ok(v) = serde_json::from_slice::<serde_json::Value>(&buf)
                && v.get("code")
                    .and_then(|c| c.as_i64())
                    .is_some_and(|c| c != 0)
            {
                self.noted("download", decode_envelope(&buf, "download"))?;
            }
            prefix = Some(buf);
        }
        let rest = Counted {
            inner: stream,
            expected: content_length,
            received: prefix.as_ref().map_or(0, |p| p.len() as u64),
            finished: false,
        };
        let body: ByteStream = match prefix {
            Some(p) if !p.is_empty() => {
                Box::pin(futures::stream::once(async move { Ok(p) }).chain(rest))
            }
            _ => Box::pin(rest),
        };
        Ok(Reader {
            status: status.as_u16(),
            content_length,
            total_length,
            content_range,
            etag,
            content_type,
            last_modified,
            body,
        })
    }
}

impl Session {
    /// Opens a download. `url_or_uri` is either a Cloudreve URI
    /// (`cloudreve://…`, a fresh URL is requested with `no_cache`) or a URL
    /// from [`Session::download_url`].
    pub async fn open_read(
        &self,
        url_or_uri: &str,
        range: Option<(u64, Option<u64>)>,
    ) -> Result<Reader> {
        if url_or_uri
            .get(..12)
            .is_some_and(|p| p.eq_ignore_ascii_case("cloudreve://"))
        {
            let uri = CrUri::parse(url_or_uri)?;
            return self.open_read_uri(&uri, None, range).await;
        }
        self.client().open_url(url_or_uri, range).await
    }

    /// Opens a download of `uri` (optionally a specific version `entity`).
    pub async fn open_read_uri(
        &self,
        uri: &CrUri,
        entity: Option<&str>,
        range: Option<(u64, Option<u64>)>,
    ) -> Result<Reader> {
        let u = self
            .download_url(
                uri,
                entity,
                DownloadUrlOptions {
                    no_cache: true,
                    download: false,
                },
            )
            .await?;
        self.client().open_url(&u.url, range).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_parse() {
        assert_eq!(
            ContentRange::parse("bytes 0-9/100"),
            Some(ContentRange {
                start: 0,
                end: 9,
                total: Some(100)
            })
        );
        assert_eq!(ContentRange::parse("bytes 5-5/*").unwrap().total, None);
        assert!(ContentRange::parse("bytes */100").is_none());
        assert!(ContentRange::parse("bytes 9-1/100").is_none());
        assert!(ContentRange::parse("items 0-1/2").is_none());
    }

    #[tokio::test]
    async fn counted_detects_short_body() {
        let s = futures::stream::iter(vec![Ok::<_, reqwest::Error>(Bytes::from_static(b"abc"))]);
        let mut c = Counted {
            inner: s,
            expected: Some(5),
            received: 0,
            finished: false,
        };
        assert_eq!(c.next().await.unwrap().unwrap(), Bytes::from_static(b"abc"));
        assert!(matches!(
            c.next().await,
            Some(Err(Error::ShortBody {
                expected: 5,
                received: 3
            }))
        ));
        assert!(c.next().await.is_none());
    }
}
