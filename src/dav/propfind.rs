//! The gateway's own PROPFIND answer for the common request shapes — an
//! empty body or `<allprop/>`, `<propname/>`, and `<prop>` lists — at
//! Depth 0 and Depth 1.
//!
//! dav-server builds an `xmltree::Element` per property per entry and
//! serialises it through `xml-rs`, then the gateway rescans its output to
//! quote `getetag` and add the missing 404 propstats; over a folder of
//! 10,000 files that costs several times the upstream listing itself.
//! This module writes the multistatus directly from the listing pages, in
//! 64 KiB chunks, while the next page is already being fetched: the
//! response is never held whole in memory and at most two pages are.
//!
//! It answers the same properties with the same values as the
//! dav-server path (checked by `tests/dav_propfind_fast.rs`): quoted
//! `getetag`, kept client times (`kept`), dead properties from the
//! listing's metadata (`props`), `lockdiscovery` from the gateway's lock
//! table, quota properties, the `Win32*` set for Windows clients; and it
//! adds what the crate gets wrong: requested-but-absent properties get a
//! `404` propstat and a `<prop>` request gets only the properties it asked
//! for. Anything else (`<include>`, malformed or whitespace-only bodies,
//! paths that are not Cloudreve URIs) goes to dav-server.

use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use dav_server::davpath::DavPath;
use dav_server::fs::{DavProp, FsError};
use dav_server::ls::DavLock;
use http::{HeaderValue, Response, StatusCode, header};
use http_body::Frame;
use http_body_util::BodyExt as _;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_encode};
use tokio::sync::mpsc;

use crate::cloudreve::{CrUri, FileResponse, ListPage};
use crate::shared::BoxBody;

use super::ctx::RequestCtx;
use super::errors::map_err;
use super::file_meta::CrMeta;
use super::fs::{hidden, lookup, quota};
use super::locks::{UserLocks, applies_to};
use super::propfind_fixup::PropName;
use super::props;
use super::times_and_checksums;
use super::xml_text::{http_date, push_attr, push_text, rfc3339};

const DAV: &str = "DAV:";
const MS: &str = times_and_checksums::MS_NS;

/// Bytes collected before a chunk goes to the client.
const CHUNK: usize = 64 * 1024;

/// Characters left as they are in hrefs (the same set dav-server uses).
const HREF_KEEP: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// What a PROPFIND asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// An empty body or `<allprop/>`; `ms`: the client is Windows'
    /// (user agent contains `Microsoft`), which also gets the `Win32*`
    /// times and attributes.
    AllProp {
        /// Windows property set.
        ms: bool,
    },
    /// `<propname/>`.
    PropName,
    /// `<prop>` with these properties (at least one).
    Prop(Vec<PropName>),
}

/// The shape of a PROPFIND body, or `None` when it is not one this module
/// answers (dav-server then does, including its 400 for bad XML).
pub fn shape_of(body: &[u8], user_agent: &str) -> Option<Shape> {
    let ms = user_agent.contains("Microsoft");
    if body.is_empty() {
        return Some(Shape::AllProp { ms });
    }
    let root = xmltree::Element::parse(body).ok()?;
    if root.name != "propfind" || root.namespace.as_deref() != Some(DAV) {
        return None;
    }
    let mut elems = root.children.iter().filter_map(|c| c.as_element());
    if elems.clone().any(|e| e.name == "include") {
        return None;
    }
    let e = elems.find(|e| matches!(e.name.as_str(), "propname" | "prop" | "allprop"))?;
    if e.namespace.as_deref() != Some(DAV) {
        return None;
    }
    match e.name.as_str() {
        "allprop" => Some(Shape::AllProp { ms }),
        "propname" => Some(Shape::PropName),
        _ => {
            let v: Vec<PropName> = e
                .children
                .iter()
                .filter_map(|c| c.as_element())
                .map(|p| PropName {
                    ns: p.namespace.clone().unwrap_or_default(),
                    name: p.name.clone(),
                })
                .collect();
            (!v.is_empty()).then_some(Shape::Prop(v))
        }
    }
}

/// Live properties of an `allprop` answer, in dav-server's order.
const ALLPROP: &[&str] = &[
    "creationdate",
    "displayname",
    "getcontentlanguage",
    "getcontentlength",
    "getcontenttype",
    "getetag",
    "getlastmodified",
    "lockdiscovery",
    "resourcetype",
    "supportedlock",
];

/// What Windows gets on top of [`ALLPROP`].
const MS_ALLPROP: &[&str] = &[
    "Win32CreationTime",
    "Win32FileAttributes",
    "Win32LastAccessTime",
    "Win32LastModifiedTime",
];

/// What a `propname` answer lists on top of [`ALLPROP`] (DAV: namespace).
const PROPNAME_EXTRA: &[&str] = &["quota-available-bytes", "quota-used-bytes"];

/// Everything the entries of one answer share.
struct Props {
    shape: Shape,
    /// The principal (`current-user-principal`).
    principal: String,
    /// macOS Finder: zero-padded `quota-used-bytes`.
    webdavfs: bool,
    /// `(used, total)` of the user, when the answer needs it and it is known.
    quota: Option<(u64, Option<u64>)>,
    /// The live locks of the account (only when `lockdiscovery` is wanted).
    locks: Vec<DavLock>,
    /// Reused buffer for the `200` propstat of one entry.
    ok: Vec<u8>,
}

/// One resource to describe.
struct Res<'a> {
    /// Encoded href, with the URL prefix; collections end with `/`.
    href: &'a str,
    /// Decoded path below the WebDAV root, without a trailing `/`
    /// (`/` for the root): the lock table's key.
    key: &'a str,
    /// Last path segment (`""` for the root).
    name: &'a str,
    /// The WebDAV root itself (its quota is the user's).
    root: bool,
    f: &'a FileResponse,
}

/// `<D:name>text</D:name>` (or the empty element for `propname`).
fn dav_text(out: &mut Vec<u8>, name: &str, text: Option<&str>) {
    out.push(b'<');
    out.extend_from_slice(b"D:");
    out.extend_from_slice(name.as_bytes());
    match text {
        None => out.extend_from_slice(b"/>"),
        Some(t) => {
            out.push(b'>');
            push_text(out, t);
            out.extend_from_slice(b"</D:");
            out.extend_from_slice(name.as_bytes());
            out.push(b'>');
        }
    }
}

/// `<Z:name>text</Z:name>` (Windows namespace, declared on the root).
fn ms_text(out: &mut Vec<u8>, name: &str, text: Option<&str>) {
    out.extend_from_slice(b"<Z:");
    out.extend_from_slice(name.as_bytes());
    match text {
        None => out.extend_from_slice(b"/>"),
        Some(t) => {
            out.push(b'>');
            push_text(out, t);
            out.extend_from_slice(b"</Z:");
            out.extend_from_slice(name.as_bytes());
            out.push(b'>');
        }
    }
}

/// `<name xmlns="ns"/>`.
fn empty_elem(out: &mut Vec<u8>, ns: &str, name: &str) {
    out.push(b'<');
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b" xmlns=\"");
    push_attr(out, ns);
    out.extend_from_slice(b"\"/>");
}

/// Writes a stored element (dead property, lock owner) without an XML
/// declaration; `false` when it does not parse.
fn write_xml(out: &mut Vec<u8>, xml: &[u8]) -> bool {
    let Ok(e) = xmltree::Element::parse(xml) else {
        return false;
    };
    write_elem(out, &e)
}

fn write_elem(out: &mut Vec<u8>, e: &xmltree::Element) -> bool {
    let cfg = xmltree::EmitterConfig::new()
        .write_document_declaration(false)
        .perform_indent(false);
    let mut b = Vec::new();
    if e.write_with_config(&mut b, cfg).is_ok() {
        out.extend_from_slice(&b);
        true
    } else {
        false
    }
}

fn mime_of(name: &str) -> &'static str {
    match name.rsplit_once('.') {
        Some((_, ext)) => mime_guess::from_ext(ext)
            .first_raw()
            .unwrap_or("application/octet-stream"),
        None => "application/octet-stream",
    }
}

/// The quoted entity tag (already quoted or weak tags are kept).
fn quoted(etag: &str) -> String {
    if etag.starts_with('"') || etag.starts_with("W/") {
        etag.to_string()
    } else {
        format!("\"{etag}\"")
    }
}

impl Props {
    /// Writes live property `(ns, name)` of `r` into `out`; `false` when
    /// the resource has no such property.
    fn live(
        &self,
        ns: &str,
        name: &str,
        r: &Res<'_>,
        m: &CrMeta,
        content: bool,
        out: &mut Vec<u8>,
    ) -> bool {
        let text = |out: &mut Vec<u8>, v: &str| dav_text(out, name, content.then_some(v));
        match ns {
            DAV => match name {
                "creationdate" => match m.created.or(m.modified) {
                    Some(t) => text(out, &rfc3339(t)),
                    None => return false,
                },
                "getetag" => text(out, &quoted(&m.etag)),
                "getcontentlength" if !m.dir => text(out, &m.size.to_string()),
                "getcontenttype" => text(
                    out,
                    if m.dir {
                        "httpd/unix-directory"
                    } else {
                        mime_of(r.name)
                    },
                ),
                "getlastmodified" => match m.modified {
                    Some(t) => text(out, &http_date(t)),
                    None => return false,
                },
                "resourcetype" => {
                    if m.dir && content {
                        out.extend_from_slice(b"<D:resourcetype><D:collection/></D:resourcetype>");
                    } else {
                        out.extend_from_slice(b"<D:resourcetype/>");
                    }
                }
                "current-user-principal" if !matches!(self.shape, Shape::PropName) => {
                    out.extend_from_slice(b"<D:current-user-principal><D:href>");
                    push_text(out, &self.principal);
                    out.extend_from_slice(b"</D:href></D:current-user-principal>");
                }
                "supportedlock" => {
                    if content {
                        out.extend_from_slice(
                            b"<D:supportedlock>\
                              <D:lockentry><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockentry>\
                              <D:lockentry><D:lockscope><D:shared/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockentry>\
                              </D:supportedlock>",
                        );
                    } else {
                        out.extend_from_slice(b"<D:supportedlock/>");
                    }
                }
                "lockdiscovery" => {
                    if !content {
                        out.extend_from_slice(b"<D:lockdiscovery/>");
                        return true;
                    }
                    let mut any = false;
                    for l in self.locks.iter().filter(|l| applies_to(l, r.key)) {
                        if !any {
                            out.extend_from_slice(b"<D:lockdiscovery>");
                            any = true;
                        }
                        active_lock(out, l);
                    }
                    if any {
                        out.extend_from_slice(b"</D:lockdiscovery>");
                    } else {
                        out.extend_from_slice(b"<D:lockdiscovery/>");
                    }
                }
                "quota-available-bytes" | "quota-used-bytes" => {
                    let Some((used_all, total)) = self.quota else {
                        return false;
                    };
                    let used = if r.root { used_all } else { m.size };
                    if name == "quota-used-bytes" {
                        let v = if self.webdavfs {
                            format!("{used:014}")
                        } else {
                            used.to_string()
                        };
                        text(out, &v);
                    } else {
                        let Some(total) = total else { return false };
                        text(out, &total.saturating_sub(used).to_string());
                    }
                }
                _ => return false,
            },
            MS => {
                let v = match name {
                    "Win32CreationTime" => m.created.or(m.modified).map(http_date),
                    "Win32LastModifiedTime" => m.modified.map(http_date),
                    "Win32FileAttributes" => {
                        let mut attr = if m.dir { 0x10u32 } else { 0x20 };
                        if r.name.starts_with('.') {
                            attr |= 0x02;
                        }
                        Some(format!("{attr:08x}"))
                    }
                    _ => None,
                };
                let Some(v) = v else { return false };
                ms_text(out, name, content.then_some(v.as_str()));
            }
            _ => return false,
        }
        true
    }

    /// Appends one `<D:response>` for `r`.
    fn response(&mut self, out: &mut Vec<u8>, r: &Res<'_>) {
        let m = CrMeta::from_file(r.f);
        let mut ok = std::mem::take(&mut self.ok);
        ok.clear();
        out.extend_from_slice(b"<D:response><D:href>");
        out.extend_from_slice(r.href.as_bytes());
        out.extend_from_slice(b"</D:href>");
        let mut missing: Vec<&PropName> = Vec::new();
        match &self.shape {
            Shape::AllProp { ms } => {
                for name in ALLPROP {
                    self.live(DAV, name, r, &m, true, &mut ok);
                }
                if *ms {
                    for name in MS_ALLPROP {
                        self.live(MS, name, r, &m, true, &mut ok);
                    }
                }
                for p in dead_props(r.f) {
                    write_dead(&mut ok, &p);
                }
            }
            Shape::PropName => {
                for name in ALLPROP.iter().chain(PROPNAME_EXTRA) {
                    self.live(DAV, name, r, &m, false, &mut ok);
                }
                for p in dead_props(r.f) {
                    empty_elem(&mut ok, p.namespace.as_deref().unwrap_or(""), &p.name);
                }
            }
            Shape::Prop(wanted) => {
                let mut dead: Option<Vec<DavProp>> = None;
                for w in wanted {
                    if self.live(&w.ns, &w.name, r, &m, true, &mut ok) {
                        continue;
                    }
                    let dead = dead.get_or_insert_with(|| dead_props(r.f));
                    match dead
                        .iter()
                        .find(|p| p.name == w.name && p.namespace.as_deref().unwrap_or("") == w.ns)
                    {
                        Some(p) => write_dead(&mut ok, p),
                        None => missing.push(w),
                    }
                }
            }
        }
        if !ok.is_empty() {
            out.extend_from_slice(b"<D:propstat><D:prop>");
            out.extend_from_slice(&ok);
            out.extend_from_slice(b"</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>");
        }
        if !missing.is_empty() {
            out.extend_from_slice(b"<D:propstat><D:prop>");
            for w in missing {
                empty_elem(out, &w.ns, &w.name);
            }
            out.extend_from_slice(
                b"</D:prop><D:status>HTTP/1.1 404 Not Found</D:status></D:propstat>",
            );
        }
        out.extend_from_slice(b"</D:response>");
        self.ok = ok;
    }
}

/// The dead properties of `f` with their values (stored ones and the kept
/// `oc:checksums`).
fn dead_props(f: &FileResponse) -> Vec<DavProp> {
    if f.metadata.as_ref().is_none_or(|m| m.is_empty()) {
        return Vec::new();
    }
    let mut v = props::props_of(f, true);
    v.extend(times_and_checksums::checksums_prop(f, true));
    v
}

/// A dead property as dav-server writes it: its stored element, or the
/// empty element when the stored XML does not parse.
fn write_dead(out: &mut Vec<u8>, p: &DavProp) {
    let done = p.xml.as_deref().is_some_and(|x| write_xml(out, x));
    if !done {
        empty_elem(out, p.namespace.as_deref().unwrap_or(""), &p.name);
    }
}

fn active_lock(out: &mut Vec<u8>, l: &DavLock) {
    out.extend_from_slice(b"<D:activelock><D:lockscope>");
    out.extend_from_slice(if l.shared {
        b"<D:shared/>"
    } else {
        b"<D:exclusive/>"
    });
    out.extend_from_slice(b"</D:lockscope><D:locktype><D:write/></D:locktype><D:depth>");
    out.extend_from_slice(if l.deep { b"Infinity" } else { b"0" });
    out.extend_from_slice(b"</D:depth><D:timeout>");
    match l.timeout {
        None => out.extend_from_slice(b"Infinite"),
        Some(d) => out.extend_from_slice(format!("Second-{}", d.as_secs()).as_bytes()),
    }
    out.extend_from_slice(b"</D:timeout><D:locktoken><D:href>");
    push_text(out, &l.token);
    out.extend_from_slice(b"</D:href></D:locktoken><D:lockroot><D:href>");
    push_text(out, &l.path.with_prefix().as_url_string());
    out.extend_from_slice(b"</D:href></D:lockroot>");
    if let Some(o) = &l.owner {
        write_elem(out, o);
    }
    out.extend_from_slice(b"</D:activelock>");
}

fn wants(shape: &Shape, ns: &str, names: &[&str]) -> bool {
    match shape {
        Shape::Prop(v) => v
            .iter()
            .any(|p| p.ns == ns && names.contains(&p.name.as_str())),
        _ => false,
    }
}

/// The streamed answer body: chunks from the producer task.
struct ChunkBody {
    rx: mpsc::Receiver<Result<Bytes, std::io::Error>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ChunkBody {
    fn drop(&mut self) {
        // The client went away (or the answer is complete): stop listing.
        self.task.abort();
    }
}

impl http_body::Body for ChunkBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        self.rx.poll_recv(cx).map(|o| o.map(|r| r.map(Frame::data)))
    }
}

/// Aborts a spawned page fetch when dropped.
struct Prefetch(tokio::task::JoinHandle<crate::cloudreve::Result<ListPage>>);

impl Drop for Prefetch {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Answers a PROPFIND of `path` (`uri` upstream) with Depth `0` or `1`
/// (from the ctx). `Err` carries the status for an error answer (the
/// target is missing or the upstream failed before anything was sent).
pub async fn respond(
    ctx: Arc<RequestCtx>,
    path: &DavPath,
    uri: CrUri,
    shape: Shape,
    user_agent: &str,
    locks: UserLocks,
) -> Result<Response<BoxBody>, FsError> {
    let depth1 = ctx.depth.as_deref() == Some("1");
    // The pre-flighted first page (Depth 1 on a folder), else a lookup.
    let first = if depth1 {
        ctx.take_first_page(&uri)
    } else {
        None
    };
    // A listing's own folder entry lacks metadata unless the pre-flight
    // replaced it with the folder's full entry.
    let target = match first
        .as_ref()
        .and_then(|p| p.parent.clone())
        .filter(|f| super::ctx::entry_is_complete(&uri, f))
    {
        Some(f) => f,
        None => lookup(&ctx, &uri).await?,
    };
    let listing = match first {
        Some(p) if target.is_folder() => Some(p),
        None if depth1 && target.is_folder() => Some(
            ctx.session
                .list_page(&uri, ctx.settings.page_size, None)
                .await
                .map_err(|e| map_err(&ctx, "list", &e))?,
        ),
        _ => None,
    };

    let mut resp = Response::new(crate::shared::empty_body());
    *resp.status_mut() = StatusCode::MULTI_STATUS;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));

    let mut href = path.with_prefix().as_url_string();
    let mut key = String::from_utf8_lossy(path.as_bytes()).into_owned();
    if target.is_folder() && !key.ends_with('/') {
        // As dav-server: a collection's href ends with `/`, and the
        // answer says where the collection lives.
        href.push('/');
        key.push('/');
        if let Ok(v) = HeaderValue::from_str(&href) {
            resp.headers_mut().insert(header::CONTENT_LOCATION, v);
        }
    }
    let root = key == "/";
    let key = match key.trim_end_matches('/') {
        "" => "/".to_string(),
        k => k.to_string(),
    };
    let name = key.rsplit('/').next().unwrap_or("").to_string();

    let needs_quota = matches!(shape, Shape::PropName)
        || wants(&shape, DAV, &["quota-available-bytes", "quota-used-bytes"]);
    let quota = if needs_quota {
        quota(&ctx).await.ok()
    } else {
        None
    };
    let needs_locks =
        matches!(shape, Shape::AllProp { .. }) || wants(&shape, DAV, &["lockdiscovery"]);
    let ms_ns = matches!(shape, Shape::AllProp { ms: true })
        || matches!(&shape, Shape::Prop(v) if v.iter().any(|p| p.ns == MS));
    let mut props = Props {
        shape,
        principal: ctx.principal.email.clone(),
        webdavfs: user_agent.contains("WebDAVFS"),
        quota,
        locks: if needs_locks {
            locks.snapshot().await
        } else {
            Vec::new()
        },
        ok: Vec::new(),
    };

    let mut out = Vec::with_capacity(CHUNK + 8192);
    out.extend_from_slice(
        b"<?xml version=\"1.0\" encoding=\"utf-8\"?><D:multistatus xmlns:D=\"DAV:\"",
    );
    if ms_ns {
        out.extend_from_slice(b" xmlns:Z=\"urn:schemas-microsoft-com:\"");
    }
    out.push(b'>');
    props.response(
        &mut out,
        &Res {
            href: &href,
            key: &key,
            name: &name,
            root,
            f: &target,
        },
    );
    let Some(first) = listing else {
        out.extend_from_slice(b"</D:multistatus>");
        let (parts, _) = resp.into_parts();
        return Ok(Response::from_parts(parts, crate::shared::full_body(out)));
    };

    let (tx, rx) = mpsc::channel(4);
    let base = Base {
        href,
        key: if key == "/" { String::new() } else { key },
    };
    let task = tokio::spawn(produce(ctx, uri, first, base, props, out, tx));
    let (parts, _) = resp.into_parts();
    Ok(Response::from_parts(
        parts,
        ChunkBody { rx, task }.boxed_unsync(),
    ))
}

/// Href and lock key of the listed collection.
struct Base {
    /// Encoded href ending with `/`.
    href: String,
    /// Decoded path without trailing `/` (`""` for the root).
    key: String,
}

/// Writes the members of `uri`, page by page, into the channel; the next
/// page is fetched while the current one is written.
async fn produce(
    ctx: Arc<RequestCtx>,
    uri: CrUri,
    first: ListPage,
    base: Base,
    mut props: Props,
    mut out: Vec<u8>,
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
) {
    let mut page = first;
    let mut href = String::with_capacity(base.href.len() + 256);
    let mut key = String::with_capacity(base.key.len() + 256);
    loop {
        let token = page.next_token().map(str::to_string);
        let prefetch = token.clone().map(|t| {
            let (c, u) = (ctx.clone(), uri.clone());
            Prefetch(tokio::spawn(async move {
                c.session
                    .list_page(&u, c.settings.page_size, Some(&t))
                    .await
            }))
        });
        for f in std::mem::take(&mut page.files) {
            if hidden(&ctx, &uri, &f) {
                continue;
            }
            let name = ctx.client_name(&f.name);
            href.clear();
            href.push_str(&base.href);
            href.extend(percent_encode(name.as_bytes(), HREF_KEEP));
            if f.is_folder() {
                href.push('/');
            }
            key.clear();
            key.push_str(&base.key);
            key.push('/');
            key.push_str(&name);
            props.response(
                &mut out,
                &Res {
                    href: &href,
                    key: &key,
                    name: &name,
                    root: false,
                    f: &f,
                },
            );
            if out.len() >= CHUNK {
                let chunk = Bytes::from(std::mem::replace(
                    &mut out,
                    Vec::with_capacity(CHUNK + 8192),
                ));
                if tx.send(Ok(chunk)).await.is_err() {
                    return;
                }
            }
        }
        let (Some(p), Some(token)) = (prefetch, token) else {
            break;
        };
        let mut p = p;
        let next = match (&mut p.0).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "listing task failed");
                let _ = tx.send(Ok(Bytes::from(out))).await;
                let _ = tx
                    .send(Err(std::io::Error::other("listing task failed")))
                    .await;
                return;
            }
        };
        match next {
            Ok(p) => {
                // The same token again would loop forever: stop there.
                let again = p.next_token() == Some(token.as_str());
                page = p;
                if again {
                    page.pagination.next_token = None;
                }
            }
            Err(e) => {
                // The 207 is committed: cut the response rather than end
                // it as if the folder were complete.
                map_err(&ctx, "list(next page)", &e);
                tracing::warn!(%uri, error = %e, "listing failed mid-PROPFIND; cutting the answer");
                let _ = tx.send(Ok(Bytes::from(out))).await;
                let _ = tx
                    .send(Err(std::io::Error::other(
                        "upstream listing failed mid-response",
                    )))
                    .await;
                return;
            }
        }
    }
    out.extend_from_slice(b"</D:multistatus>");
    let _ = tx.send(Ok(Bytes::from(out))).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert_eq!(shape_of(b"", "x"), Some(Shape::AllProp { ms: false }));
        assert_eq!(
            shape_of(b"", "Microsoft-WebDAV-MiniRedir/10"),
            Some(Shape::AllProp { ms: true })
        );
        // Whitespace only: dav-server's 400.
        assert_eq!(shape_of(b" \n", "x"), None);
        assert_eq!(
            shape_of(
                br#"<D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>"#,
                "x"
            ),
            Some(Shape::AllProp { ms: false })
        );
        assert_eq!(
            shape_of(
                br#"<D:propfind xmlns:D="DAV:"><D:propname/></D:propfind>"#,
                "x"
            ),
            Some(Shape::PropName)
        );
        let p = shape_of(
            br#"<?xml version="1.0"?><propfind xmlns="DAV:"><prop><getetag/><x:a xmlns:x="urn:x"/></prop></propfind>"#,
            "x",
        );
        assert_eq!(
            p,
            Some(Shape::Prop(vec![
                PropName {
                    ns: "DAV:".into(),
                    name: "getetag".into()
                },
                PropName {
                    ns: "urn:x".into(),
                    name: "a".into()
                },
            ]))
        );
        for odd in [
            &br#"<D:propfind xmlns:D="DAV:"><D:allprop/><D:include><D:x/></D:include></D:propfind>"#[..],
            br#"<D:propfind xmlns:D="DAV:"><D:prop/></D:propfind>"#,
            br#"<propfind><allprop/></propfind>"#,
            br#"<D:propfind xmlns:D="DAV:"><D:bogus/></D:propfind>"#,
            b"<D:propfind xmlns:D=\"DAV:\"><D:prop>",
        ] {
            assert_eq!(shape_of(odd, "x"), None, "{}", String::from_utf8_lossy(odd));
        }
    }

    #[test]
    fn escaping_and_etags() {
        let mut o = Vec::new();
        push_text(&mut o, "a&b<c>\"d'");
        assert_eq!(o, b"a&amp;b&lt;c&gt;\"d'");
        o.clear();
        push_attr(&mut o, "a&b<c>\"d'");
        assert_eq!(o, b"a&amp;b&lt;c&gt;&quot;d'");
        assert_eq!(quoted("abc"), "\"abc\"");
        assert_eq!(quoted("\"abc\""), "\"abc\"");
        assert_eq!(quoted("W/\"abc\""), "W/\"abc\"");
        assert_eq!(mime_of("a.txt"), "text/plain");
        assert_eq!(mime_of("noext"), "application/octet-stream");
        assert_eq!(mime_of("x.unknownext"), "application/octet-stream");
    }

    #[test]
    fn hrefs_keep_what_dav_server_keeps() {
        let enc: String = percent_encode("a b#%&+é~-_.".as_bytes(), HREF_KEEP).collect();
        assert_eq!(enc, "a%20b%23%25%26%2B%C3%A9~-_.");
        let p = DavPath::new("/a%20b/%C3%A9%23").expect("path");
        let mut ours = String::from("/");
        ours.extend(percent_encode("a b".as_bytes(), HREF_KEEP));
        ours.push('/');
        ours.extend(percent_encode("é#".as_bytes(), HREF_KEEP));
        assert_eq!(p.with_prefix().as_url_string(), ours);
    }
}
