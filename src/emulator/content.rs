//! Signed download URLs (`POST /file/url`) and content serving with Range support.

use super::caller::current_user;
use super::crypt::EntityKey;
use super::envelope::{ApiError, aggregate, err, ok, parse_json, parse_query};
use super::ids::IdKind;
use super::instance::Inner;
use super::tree::{Target, check_batch, check_fs, parse_uri, resolve, run};
use axum::body::{Body, Bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::json;
use sha2::Sha256;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

fn mac(secret: &[u8], path: &str, exp: i64) -> Vec<u8> {
    match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mut m) => {
            m.update(format!("{path}:{exp}").as_bytes());
            m.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

/// Signs a decoded path: `base64url(hmac):exp`.
pub(super) fn sign_path(secret: &[u8], path: &str, exp: i64) -> String {
    format!("{}:{exp}", URL_SAFE.encode(mac(secret, path, exp)))
}

/// Checks a signature; errors are 40071 (bad) or 40005 (expired).
pub(super) fn check_sign(secret: &[u8], path: &str, sign: &str, now: i64) -> Result<(), ApiError> {
    let bad = || ApiError::new(40071, "Invalid sign");
    let (sig, exp) = sign.rsplit_once(':').ok_or_else(bad)?;
    let exp: i64 = exp.parse().map_err(|_| bad())?;
    if exp < now {
        return Err(ApiError::new(40005, "Signature expired"));
    }
    let sig = URL_SAFE.decode(sig).map_err(|_| bad())?;
    let mut m = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| bad())?;
    m.update(format!("{path}:{exp}").as_bytes());
    m.verify_slice(&sig).map_err(|_| bad())
}

#[derive(Deserialize)]
struct UrlReq {
    #[serde(default)]
    uris: Vec<String>,
    #[serde(default)]
    download: bool,
    #[serde(default)]
    redirect: bool,
    #[serde(default)]
    entity: String,
    #[serde(default)]
    skip_error: bool,
    #[serde(default)]
    archive: bool,
}

/// `POST /file/url`.
pub(super) async fn file_url(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    run(|| {
        let req: UrlReq = parse_json(&body)?;
        if req.uris.is_empty() {
            return Err(ApiError::binding("uris is required"));
        }
        check_batch(&req.uris)?;
        let user = current_user(&inner, &headers)?;
        if req.archive {
            return Err(ApiError::new(40007, "Group not allowed"));
        }
        // An entity id that does not decode names no entity: each URI then
        // fails with 40077 (4.18 does not refuse the request as a whole).
        let want = if req.entity.is_empty() {
            None
        } else {
            Some(
                inner
                    .ids
                    .decode(&req.entity, IdKind::Entity)
                    .unwrap_or(u64::MAX),
            )
        };
        let base = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(|h| format!("http://{h}"))
            .unwrap_or_else(|| inner.base_url.clone());
        let now = inner.clock.now();
        let st = inner.lock();
        let exp = now.timestamp() + st.settings.url_ttl;
        let mut urls = vec![];
        // Cloudreve 4.18 tries every URI and reports the failures together
        // as a 40081 aggregate, even when only one URI was asked for.
        let mut fails = vec![];
        for raw in &req.uris {
            let r = (|| -> Result<String, ApiError> {
                let u = parse_uri(raw)?;
                let uid = check_fs(&inner, user, &u)?;
                let id = match resolve(&st, uid, &u)? {
                    Target::My(id, _) | Target::TrashItem(_, id) => id,
                    Target::TrashRoot => return Err(ApiError::new(40077, "Entity not exist")),
                };
                let n = st.files.get(&id).ok_or_else(err::not_exist)?;
                if n.folder {
                    return Err(ApiError::new(40077, "Entity not exist"));
                }
                let eid = match want {
                    Some(e) if e != n.primary => {
                        return Err(ApiError::new(40077, "Entity not exist"));
                    }
                    _ => n.primary,
                };
                let name = super::tree::display_name(n);
                let ent = inner.ids.encode(eid, IdKind::Entity);
                let path = format!("/api/v4/file/content/{ent}/0/{name}");
                let escaped = format!(
                    "/api/v4/file/content/{ent}/0/{}",
                    super::uri::escape_segment(&name)
                );
                let sign = sign_path(&inner.secret(), &path, exp);
                let sign_q: String = url_query_escape(&sign);
                let dl = if req.download { "download=true&" } else { "" };
                Ok(format!("{base}{escaped}?{dl}sign={sign_q}"))
            })();
            match r {
                Ok(u) => urls.push(json!({"url": u})),
                Err(e) => {
                    urls.push(json!({"url": ""}));
                    fails.push((raw.clone(), e));
                }
            }
        }
        if !fails.is_empty() && !req.skip_error {
            return Err(aggregate(fails));
        }
        if req.redirect && urls.len() == 1 {
            let loc = urls[0]["url"].as_str().unwrap_or_default().to_string();
            return Ok((StatusCode::FOUND, [(header::LOCATION, loc)]).into_response());
        }
        Ok(ok(json!({"urls": urls, "expires": super::clock::fmt_time(
            &(now + chrono::Duration::seconds(exp - now.timestamp())))})))
    })
}

fn url_query_escape(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~:".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// One satisfiable byte range `(start, length)`.
pub(super) type ByteRange = (u64, u64);

/// Why a Range header could not be used.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum RangeError {
    /// Malformed header.
    Invalid,
    /// No range overlaps the content.
    NoOverlap,
}

/// Parses a `Range` header like Go's `net/http` `parseRange`.
pub(super) fn parse_range(s: &str, size: u64) -> Result<Vec<ByteRange>, RangeError> {
    let spec = s.strip_prefix("bytes=").ok_or(RangeError::Invalid)?;
    let mut out = vec![];
    let mut no_overlap = false;
    for ra in spec.split(',') {
        let ra = ra.trim();
        if ra.is_empty() {
            continue;
        }
        let (start, end) = ra.split_once('-').ok_or(RangeError::Invalid)?;
        let (start, end) = (start.trim(), end.trim());
        if start.is_empty() {
            if end.is_empty() || end.starts_with('-') {
                return Err(RangeError::Invalid);
            }
            let i: u64 = end.parse().map_err(|_| RangeError::Invalid)?;
            let i = i.min(size);
            if i == 0 {
                no_overlap = true;
                continue;
            }
            out.push((size - i, i));
        } else {
            let i: u64 = start.parse().map_err(|_| RangeError::Invalid)?;
            if i >= size {
                no_overlap = true;
                continue;
            }
            let len = if end.is_empty() {
                size - i
            } else {
                let e: u64 = end.parse().map_err(|_| RangeError::Invalid)?;
                if i > e {
                    return Err(RangeError::Invalid);
                }
                e.min(size - 1) - i + 1
            };
            out.push((i, len));
        }
    }
    if no_overlap && out.is_empty() {
        return Err(RangeError::NoOverlap);
    }
    Ok(out)
}

fn etag_matches(list: &str, etag: &str) -> bool {
    list.split(',').any(|t| {
        let t = t.trim();
        t == "*" || t.trim_start_matches("W/") == etag
    })
}

/// A MIME type from the extension.
pub(super) fn mime_of(name: &str) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "txt" | "md" | "log" => "text/plain; charset=utf-8",
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "xml" => "text/xml; charset=utf-8",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "mp4" => "video/mp4",
        "mp3" => "audio/mpeg",
        _ => "application/octet-stream",
    }
}

/// `len` bytes of a blob from `start`, decrypted when it is stored encrypted.
async fn file_stream(
    path: std::path::PathBuf,
    start: u64,
    len: u64,
    key: Option<EntityKey>,
) -> std::io::Result<impl futures::Stream<Item = std::io::Result<Bytes>> + Send + 'static> {
    let mut f = tokio::fs::File::open(path).await?;
    f.seek(std::io::SeekFrom::Start(start)).await?;
    let mut open = key.map(|k| k.at(start));
    Ok(
        tokio_util::io::ReaderStream::with_capacity(f.take(len), 64 * 1024).map(move |r| {
            r.map(|b| match open.as_mut() {
                Some(k) => k.apply(&b),
                None => b,
            })
        }),
    )
}

/// Entity id, size, download flag, modification time and key of a served blob.
type Served = (u64, u64, bool, Option<DateTime<Utc>>, Option<EntityKey>);

#[derive(Deserialize)]
struct ServeQ {
    sign: Option<String>,
    download: Option<String>,
}

/// `GET/HEAD /file/content/{entity}/{speed}/{name}`.
pub(super) async fn serve(
    State(inner): State<Arc<Inner>>,
    path: Result<Path<(String, String, String)>, PathRejection>,
    method: Method,
    headers: HeaderMap,
    q: Uri,
) -> Response {
    let Ok(Path((entity, speed, name))) = path else {
        return ApiError::binding("invalid path").into_resp();
    };
    let pre = (|| -> Result<Served, ApiError> {
        let sq: ServeQ = parse_query(q.query())?;
        let sign = sq
            .sign
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::new(403, "Sign required"))?;
        let path = format!("/api/v4/file/content/{entity}/{speed}/{name}");
        check_sign(&inner.secret(), &path, &sign, inner.clock.now().timestamp())?;
        let eid = inner
            .ids
            .decode(&entity, IdKind::Entity)
            .ok_or_else(|| ApiError::new(40001, "Invalid entity id"))?;
        let (size, modified, key) = if eid == 0 {
            (0, None, None)
        } else {
            inner
                .lock()
                .entities
                .get(&eid)
                .map(|e| (e.size, Some(e.created_at), e.key.clone()))
                .ok_or_else(|| ApiError::new(40077, "Entity not exist"))?
        };
        Ok((
            eid,
            size.max(0) as u64,
            sq.download.as_deref() == Some("true"),
            modified,
            key,
        ))
    })();
    let (eid, size, download, modified, key) = match pre {
        Ok(x) => x,
        Err(e) => return e.into_resp(),
    };
    let etag = format!("\"{entity}\"");
    let mut h = HeaderMap::new();
    let hv = |s: &str| HeaderValue::from_str(s).unwrap_or(HeaderValue::from_static(""));
    h.insert(header::ETAG, hv(&etag));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    // The content route answers cross-origin requests (those with an
    // `Origin`) for any origin; plain requests get no CORS headers.
    if headers.contains_key(header::ORIGIN) {
        h.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(
                "Content-Range,Accept-Ranges,Content-Length,Content-Disposition,Etag",
            ),
        );
    }
    if method == Method::GET {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("sandbox"),
        );
    }
    if download {
        let d = format!(
            "attachment; filename=\"{}\"; filename*=UTF-8''{}",
            super::uri::escape_segment(&name),
            super::uri::escape_segment(&name)
        );
        h.insert(header::CONTENT_DISPOSITION, hv(&d));
    }
    let modified = modified.map(|m| m.timestamp());
    if let Some(m) = modified
        && let Some(t) = DateTime::<Utc>::from_timestamp(m, 0)
    {
        h.insert(
            header::LAST_MODIFIED,
            hv(&t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()),
        );
    }
    let header_time = |name: header::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| DateTime::parse_from_rfc2822(v).ok())
            .map(|t| t.timestamp())
    };
    // Preconditions in Go's order.
    match headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()) {
        Some(im) if !etag_matches(im, &etag) => {
            return (StatusCode::PRECONDITION_FAILED, h).into_response();
        }
        Some(_) => {}
        None => {
            if let (Some(m), Some(t)) = (modified, header_time(header::IF_UNMODIFIED_SINCE))
                && m > t
            {
                return (StatusCode::PRECONDITION_FAILED, h).into_response();
            }
        }
    }
    match headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
    {
        Some(inm) if etag_matches(inm, &etag) => {
            return (StatusCode::NOT_MODIFIED, h).into_response();
        }
        Some(_) => {}
        None => {
            if let (Some(m), Some(t)) = (modified, header_time(header::IF_MODIFIED_SINCE))
                && m <= t
            {
                return (StatusCode::NOT_MODIFIED, h).into_response();
            }
        }
    }
    let mut ranges: Vec<ByteRange> = vec![];
    if let Some(r) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        let if_range_ok = headers
            .get(header::IF_RANGE)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|ir| ir.trim() == etag);
        if if_range_ok {
            match parse_range(r, size) {
                Ok(rs) => ranges = rs,
                Err(e) => {
                    if e == RangeError::NoOverlap {
                        h.insert(header::CONTENT_RANGE, hv(&format!("bytes */{size}")));
                    }
                    h.insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("text/plain; charset=utf-8"),
                    );
                    return (StatusCode::RANGE_NOT_SATISFIABLE, h, "invalid range\n")
                        .into_response();
                }
            }
            if ranges.iter().map(|r| r.1).sum::<u64>() > size {
                ranges.clear();
            }
        }
    }
    let blob = inner.blob_path(eid);
    if eid != 0 && !blob.exists() {
        return (StatusCode::NOT_FOUND, "Entity data does not exist.").into_response();
    }
    let ctype = mime_of(&name);
    let head = method == Method::HEAD;
    let (status, start, len) = match ranges.as_slice() {
        [] => (StatusCode::OK, 0, size),
        [(s, l)] => {
            h.insert(
                header::CONTENT_RANGE,
                hv(&format!("bytes {s}-{}/{size}", s + l - 1)),
            );
            (StatusCode::PARTIAL_CONTENT, *s, *l)
        }
        many => return multipart(blob, many.to_vec(), size, ctype, h, head, key).await,
    };
    h.insert(header::CONTENT_TYPE, hv(ctype));
    h.insert(header::CONTENT_LENGTH, hv(&len.to_string()));
    if head || len == 0 || eid == 0 {
        return (status, h, Body::empty()).into_response();
    }
    match file_stream(blob, start, len, key).await {
        Ok(s) => (status, h, Body::from_stream(s)).into_response(),
        Err(_) => (StatusCode::NOT_FOUND, "Entity data does not exist.").into_response(),
    }
}

async fn multipart(
    blob: std::path::PathBuf,
    ranges: Vec<ByteRange>,
    size: u64,
    ctype: &str,
    mut h: HeaderMap,
    head: bool,
    key: Option<EntityKey>,
) -> Response {
    let boundary = uuid::Uuid::new_v4().simple().to_string();
    let mut parts: Vec<(Bytes, ByteRange)> = vec![];
    let mut total = 0u64;
    for (i, (s, l)) in ranges.iter().enumerate() {
        let lead = if i == 0 { "" } else { "\r\n" };
        let hdr = format!(
            "{lead}--{boundary}\r\nContent-Range: bytes {s}-{}/{size}\r\nContent-Type: {ctype}\r\n\r\n",
            s + l - 1
        );
        total += hdr.len() as u64 + l;
        parts.push((Bytes::from(hdr), (*s, *l)));
    }
    let tail = Bytes::from(format!("\r\n--{boundary}--\r\n"));
    total += tail.len() as u64;
    if let Ok(v) = HeaderValue::from_str(&format!("multipart/byteranges; boundary={boundary}")) {
        h.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&total.to_string()) {
        h.insert(header::CONTENT_LENGTH, v);
    }
    if head {
        return (StatusCode::PARTIAL_CONTENT, h, Body::empty()).into_response();
    }
    let stream = futures::stream::iter(parts)
        .then(move |(hdr, (s, l))| {
            let blob = blob.clone();
            let key = key.clone();
            async move {
                let head = futures::stream::once(async move { Ok::<Bytes, std::io::Error>(hdr) });
                match file_stream(blob, s, l, key).await {
                    Ok(fs) => head.chain(fs).boxed(),
                    Err(e) => head
                        .chain(futures::stream::once(async move { Err(e) }))
                        .boxed(),
                }
            }
        })
        .flatten()
        .chain(futures::stream::once(async move { Ok(tail) }));
    (StatusCode::PARTIAL_CONTENT, h, Body::from_stream(stream)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_like_go() {
        assert_eq!(parse_range("bytes=0-9", 100), Ok(vec![(0, 10)]));
        assert_eq!(parse_range("bytes=90-", 100), Ok(vec![(90, 10)]));
        assert_eq!(parse_range("bytes=-10", 100), Ok(vec![(90, 10)]));
        assert_eq!(parse_range("bytes=-1000", 100), Ok(vec![(0, 100)]));
        assert_eq!(parse_range("bytes=50-1000", 100), Ok(vec![(50, 50)]));
        assert_eq!(parse_range("bytes=100-", 100), Err(RangeError::NoOverlap));
        assert_eq!(parse_range("bytes=5-1", 100), Err(RangeError::Invalid));
        assert_eq!(parse_range("items=0-1", 100), Err(RangeError::Invalid));
        assert_eq!(parse_range("bytes=x-1", 100), Err(RangeError::Invalid));
        assert_eq!(parse_range("bytes=0-1,5-6", 100), Ok(vec![(0, 2), (5, 2)]));
        assert_eq!(parse_range("bytes=0-1,200-300", 100), Ok(vec![(0, 2)]));
        assert_eq!(parse_range("bytes=-0", 0), Err(RangeError::NoOverlap));
        assert_eq!(parse_range("bytes=0-", 0), Err(RangeError::NoOverlap));
        assert_eq!(parse_range("bytes=-5", 0), Err(RangeError::NoOverlap));
    }

    #[test]
    fn signatures() {
        let s = sign_path(b"k", "/p", 100);
        assert!(check_sign(b"k", "/p", &s, 50).is_ok());
        assert_eq!(
            check_sign(b"k", "/p", &s, 101).map_err(|e| e.code),
            Err(40005)
        );
        assert_eq!(
            check_sign(b"k", "/q", &s, 50).map_err(|e| e.code),
            Err(40071)
        );
        assert_eq!(
            check_sign(b"k", "/p", "garbage", 50).map_err(|e| e.code),
            Err(40071)
        );
    }
}
