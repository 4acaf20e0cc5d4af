//! The body of dav-server's answers as the gateway sends them on: cut
//! with an error when the listing behind it broke, with the 404 propstats
//! dav-server leaves out added, and `getetag` values quoted.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::Frame;

use super::ctx::RequestCtx;
use super::propfind_fixup::PropFixer;

/// Quotes unquoted `<D:getetag>` values inside one chunk.
fn quote_etags(chunk: &Bytes) -> Bytes {
    const OPEN: &[u8] = b"<D:getetag>";
    const CLOSE: &[u8] = b"</D:getetag>";
    let b = &chunk[..];
    if !b.windows(OPEN.len()).any(|w| w == OPEN) {
        return chunk.clone();
    }
    let mut out = Vec::with_capacity(b.len() + 16);
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(OPEN) {
            let vstart = i + OPEN.len();
            if let Some(rel) = b[vstart..].windows(CLOSE.len()).position(|w| w == CLOSE) {
                let v = &b[vstart..vstart + rel];
                out.extend_from_slice(OPEN);
                if v.first() == Some(&b'"') || v.starts_with(b"W/") {
                    out.extend_from_slice(v);
                } else {
                    out.push(b'"');
                    out.extend_from_slice(v);
                    out.push(b'"');
                }
                out.extend_from_slice(CLOSE);
                i = vstart + rel + CLOSE.len();
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    Bytes::from(out)
}

/// The response body: dav-server's, cut with an error when the ctx says
/// the listing broke, with `getetag` quoting for PROPFIND.
pub(crate) struct GuardedBody {
    pub(crate) inner: dav_server::body::Body,
    pub(crate) ctx: Arc<RequestCtx>,
    pub(crate) fix_etags: bool,
    pub(crate) props: Option<PropFixer>,
    pub(crate) failed: bool,
}

impl http_body::Body for GuardedBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        if self.failed {
            return Poll::Ready(None);
        }
        if self.ctx.is_aborted() {
            self.failed = true;
            return Poll::Ready(Some(Err(std::io::Error::other(
                "upstream listing failed mid-response",
            ))));
        }
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(f))) => {
                let f = match f.into_data() {
                    Ok(mut d) => {
                        if let Some(p) = self.props.as_mut() {
                            d = p.fix(&d);
                        }
                        if self.fix_etags {
                            d = quote_etags(&d);
                        }
                        Frame::data(d)
                    }
                    Err(f) => f,
                };
                Poll::Ready(Some(Ok(f)))
            }
            Poll::Ready(None) if self.ctx.is_aborted() => {
                self.failed = true;
                Poll::Ready(Some(Err(std::io::Error::other(
                    "upstream listing failed mid-response",
                ))))
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_get_quoted() {
        let b = Bytes::from_static(b"<a><D:getetag>abc</D:getetag><D:getetag>\"q\"</D:getetag>");
        assert_eq!(
            &quote_etags(&b)[..],
            b"<a><D:getetag>\"abc\"</D:getetag><D:getetag>\"q\"</D:getetag>"
        );
    }
}
