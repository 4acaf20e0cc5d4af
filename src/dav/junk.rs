//! Junk files: the metadata files desktop systems sprinkle over every
//! share (`.DS_Store`, AppleDouble `._*`, `Thumbs.db`, `desktop.ini`,
//! Office owner files `~$*`, LibreOffice lock files `.~lock.*#`, and the
//! macOS volume probes such as `.localized` or `.metadata_never_index`).
//!
//! What the gateway does with them is the [`JunkPolicy`] of the
//! configuration, resolved per account into a [`JunkAction`]:
//! * `hide` — written to Cloudreve as usual, but left out of listings
//!   (still readable, writable and deletable by exact name);
//! * `park` — kept by the gateway in its state directory, per user and
//!   account, never sent to Cloudreve; listed next to the folder's real
//!   members, readable, lockable, deletable; answered without any upstream
//!   call (so Finder's probes are cheap);
//! * `reject` — every write of such a name is refused with 403 (reads and
//!   deletes go upstream as usual). Never a 405: clients treat that as
//!   "method unsupported" for the whole share.
//!
//! `auto` (the default) parks junk for accounts whose Cloudreve option
//! "disable system files" is on and leaves it alone otherwise.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::SystemTime;

use dav_server::DavHandler;
use dav_server::davpath::DavPath;
use dav_server::fs::{
    DavDirEntry, DavFile, DavFileSystem, DavMetaData, DavProp, FsFuture, FsStream, OpenOptions,
    ReadDirMeta,
};
use dav_server::localfs::LocalFs;
use futures::FutureExt as _;
use http::{Method, Request, Response, StatusCode};
use sha2::{Digest as _, Sha256};
use unicode_normalization::UnicodeNormalization as _;

pub use super::settings::JunkPolicy;
use crate::shared::{BoxBody, Principal};

use super::file_meta::{CrEntry, CrMeta};

/// Bytes percent-encoded in a rewritten path segment.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// What happens to junk names for one account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JunkAction {
    /// Junk is treated like any other name.
    #[default]
    Off,
    /// Stored upstream, not listed.
    Hide,
    /// Kept in the gateway, never sent upstream.
    Park,
    /// Writes refused with 403.
    Reject,
}

impl JunkAction {
    /// The action for `principal` under `policy`.
    pub fn resolve(policy: JunkPolicy, principal: &Principal) -> Self {
        match policy {
            JunkPolicy::Auto if principal.disable_sys_files => Self::Park,
            JunkPolicy::Auto | JunkPolicy::Off => Self::Off,
            JunkPolicy::Hide => Self::Hide,
            JunkPolicy::Park => Self::Park,
            JunkPolicy::Reject => Self::Reject,
        }
    }

    /// True when upstream entries with junk names are left out of listings.
    pub fn hides_upstream(self) -> bool {
        matches!(self, Self::Hide | Self::Park)
    }
}

/// True for a junk file name (one path segment).
pub fn is_junk(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    (name.starts_with("._") && name.len() > 2)
        || (name.starts_with("~$") && name.len() > 2)
        || (name.starts_with(".~lock.") && name.ends_with('#'))
        || matches!(
            lower.as_str(),
            ".ds_store"
                | "thumbs.db"
                | "ehthumbs.db"
                | "desktop.ini"
                | ".localized"
                | ".metadata_never_index"
                | ".metadata_never_index_unless_rootfs"
                | ".metadata_direct_scope_only"
                | ".ql_disablethumbnails"
                | ".ql_disablecache"
                | ".com.apple.timemachine.donotpresent"
        )
}

/// True when the last segment of the (decoded) `path` is a junk name.
pub fn path_is_junk(path: &DavPath) -> bool {
    std::str::from_utf8(path.file_name_bytes()).is_ok_and(is_junk)
}

/// The parking directory of one user's account below `base` (the state
/// directory): `base/parked/<hash of e-mail and account root>`.
pub fn park_root(base: &Path, principal: &Principal) -> PathBuf {
    let mut h = Sha256::new();
    h.update(principal.email.to_lowercase().as_bytes());
    h.update(b"\n");
    h.update(principal.root_uri.as_bytes());
    let d = h.finalize();
    let hexed: String = d[..12].iter().map(|b| format!("{b:02x}")).collect();
    base.join("parked").join(hexed)
}

/// The local path of a (prefix-stripped) WebDAV path inside `root`, each
/// segment in NFC (like upstream names); `None` for undecodable paths or
/// `..` segments.
pub fn local_path(root: &Path, path: &DavPath) -> Option<PathBuf> {
    let s = std::str::from_utf8(path.as_bytes()).ok()?;
    let mut p = root.to_path_buf();
    for seg in s.split('/').filter(|s| !s.is_empty()) {
        if seg == "." || seg == ".." || seg.contains('\0') {
            return None;
        }
        p.push(seg.nfc().collect::<String>());
    }
    Some(p)
}

/// Parked files directly inside the folder `dir` (a local path), as
/// listing entries.
pub fn parked_entries(dir: &Path) -> Vec<CrEntry> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in rd.flatten() {
        let Ok(m) = e.metadata() else { continue };
        let Some(name) = e.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if !m.is_file() || !is_junk(&name) {
            continue;
        }
        out.push(CrEntry {
            name,
            meta: local_meta(&m),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn local_meta(m: &std::fs::Metadata) -> CrMeta {
    let modified = m.modified().ok();
    let stamp = modified
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map(|d| d.as_micros())
        .unwrap_or(0);
    CrMeta {
        dir: false,
        size: m.len(),
        modified,
        created: modified,
        etag: format!("parked-{:x}-{stamp:x}", m.len()),
        entity: None,
    }
}

/// After a successful DELETE or MOVE of the non-junk `from` (a folder,
/// possibly), the parked files below it follow: removed, or moved to `to`.
pub fn follow(root: &Path, from: &DavPath, to: Option<&DavPath>) {
    let Some(src) = local_path(root, from) else {
        return;
    };
    if src == root || !src.is_dir() {
        return;
    }
    let r = match to.and_then(|t| local_path(root, t)) {
        Some(dst) => dst
            .parent()
            .map(std::fs::create_dir_all)
            .unwrap_or(Ok(()))
            .and_then(|()| {
                let _ = std::fs::remove_dir_all(&dst);
                std::fs::rename(&src, &dst)
            }),
        None => std::fs::remove_dir_all(&src),
    };
    if let Err(e) = r {
        tracing::warn!(path = %src.display(), error = %e, "parked files did not follow their folder");
    }
}

/// Largest parked file. Junk files are small (a `.DS_Store` is a few KiB,
/// an AppleDouble file carries extended attributes and resource forks);
/// the cap keeps the gateway's disk from becoming a free store.
pub const PARK_MAX_FILE: u64 = 64 * 1024 * 1024;

/// `prefix` + `path` percent-encoded, every segment in NFC.
fn nfc_target(prefix: &str, path: &DavPath) -> Option<String> {
    let decoded = std::str::from_utf8(path.as_bytes()).ok()?;
    let enc: Vec<String> = decoded
        .split('/')
        .map(|seg| {
            let n: String = seg.nfc().collect();
            percent_encoding::utf8_percent_encode(&n, SEGMENT).to_string()
        })
        .collect();
    Some(format!("{prefix}{}", enc.join("/")))
}

fn status_only(status: StatusCode, text: &'static str) -> Response<dav_server::body::Body> {
    let mut r = Response::new(dav_server::body::Body::from(text));
    *r.status_mut() = status;
    r
}

/// Serves a request whose target (or destination) is a junk name from the
/// parking directory `root` with dav-server's local file system; `locks`
/// is the gateway's lock system, so tokens work across both. Writes first
/// create the parent folders locally; names follow the NFC rule of
/// upstream names; files above [`PARK_MAX_FILE`] are refused with 413.
pub async fn serve_parked(
    root: PathBuf,
    prefix: &str,
    principal: &str,
    (path, dest): (&DavPath, Option<&DavPath>),
    locks: Box<dyn dav_server::ls::DavLockSystem>,
    req: Request<BoxBody>,
) -> Response<dav_server::body::Body> {
    let m = req.method().clone();
    let writes =
        m == Method::PUT || matches!(m.as_str(), "LOCK" | "PROPPATCH" | "MKCOL" | "COPY" | "MOVE");
    let declared = ["content-length", "x-expected-entity-length"]
        .iter()
        .filter_map(|h| {
            req.headers()
                .get(*h)?
                .to_str()
                .ok()?
                .trim()
                .parse::<u64>()
                .ok()
        })
        .max();
    if m == Method::PUT && declared.is_some_and(|n| n > PARK_MAX_FILE) {
        tracing::info!(path = %path, "parked file too large");
        return status_only(StatusCode::PAYLOAD_TOO_LARGE, "junk file too large\n");
    }
    if writes {
        for p in std::iter::once(path).chain(dest) {
            if let Some(parent) = local_path(&root, p).as_deref().and_then(Path::parent)
                && let Err(e) = tokio::fs::create_dir_all(parent).await
            {
                tracing::warn!(path = %parent.display(), error = %e, "parking directory unusable");
                return status_only(StatusCode::INSUFFICIENT_STORAGE, "parking failed\n");
            }
        }
    }
    let (mut parts, body) = req.into_parts();
    if let Some(t) = nfc_target(prefix, path).and_then(|t| t.parse::<http::Uri>().ok()) {
        parts.uri = t;
    }
    if let Some(d) = dest.and_then(|d| nfc_target(prefix, d))
        && let Ok(v) = http::HeaderValue::from_str(&d)
    {
        parts.headers.insert("destination", v);
    }
    // Count the body; past the cap it fails, and the answer is 413.
    let over = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(AtomicU64::new(0));
    let (o2, s2) = (over.clone(), seen.clone());
    let body = http_body_util::BodyExt::boxed_unsync(CappedBody {
        inner: body,
        seen: s2,
        over: o2,
    });
    let req = Request::from_parts(parts, body);
    tracing::debug!(method = %m, path = %path, "junk name served from the parking directory");
    let mut cfg = DavHandler::builder()
        .filesystem(Box::new(ParkFs {
            inner: LocalFs::new(&root, false, false, false),
        }))
        .locksystem(locks)
        .principal(principal)
        .autoindex(false);
    if !prefix.is_empty() {
        cfg = cfg.strip_prefix(prefix.to_string());
    }
    let resp = cfg.build_handler().handle(req).await;
    if over.load(Ordering::SeqCst) {
        if let Some(local) = local_path(&root, path) {
            let _ = tokio::fs::remove_file(local).await;
        }
        tracing::info!(path = %path, bytes = seen.load(Ordering::SeqCst), "parked file too large");
        return status_only(StatusCode::PAYLOAD_TOO_LARGE, "junk file too large\n");
    }
    resp
}

/// A request body that fails once more than [`PARK_MAX_FILE`] bytes passed.
struct CappedBody {
    inner: BoxBody,
    seen: Arc<AtomicU64>,
    over: Arc<AtomicBool>,
}

impl http_body::Body for CappedBody {
    type Data = bytes::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, std::io::Error>>> {
        let p = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        if let std::task::Poll::Ready(Some(Ok(f))) = &p
            && let Some(d) = f.data_ref()
        {
            let n = self.seen.fetch_add(d.len() as u64, Ordering::SeqCst) + d.len() as u64;
            if n > PARK_MAX_FILE {
                self.over.store(true, Ordering::SeqCst);
                return std::task::Poll::Ready(Some(Err(std::io::Error::other(
                    "parked file too large",
                ))));
            }
        }
        p
    }
}

/// The response to a write of a junk name under [`JunkAction::Reject`].
pub fn rejected() -> Response<BoxBody> {
    let mut r = Response::new(crate::shared::full_body(
        "this file name is refused by the server's junk-file policy\n",
    ));
    *r.status_mut() = StatusCode::FORBIDDEN;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// dav-server's local file system, accepting (and dropping) dead
/// properties: Windows PROPPATCHes `Win32*` times on every file it writes
/// and takes a refusal as a failed copy.
#[derive(Clone)]
struct ParkFs {
    inner: Box<LocalFs>,
}

impl DavFileSystem for ParkFs {
    fn open<'a>(
        &'a self,
        path: &'a DavPath,
        options: OpenOptions,
    ) -> FsFuture<'a, Box<dyn DavFile>> {
        self.inner.open(path, options)
    }
    fn read_dir<'a>(
        &'a self,
        path: &'a DavPath,
        meta: ReadDirMeta,
    ) -> FsFuture<'a, FsStream<Box<dyn DavDirEntry>>> {
        self.inner.read_dir(path, meta)
    }
    fn metadata<'a>(&'a self, path: &'a DavPath) -> FsFuture<'a, Box<dyn DavMetaData>> {
        self.inner.metadata(path)
    }
    fn create_dir<'a>(&'a self, path: &'a DavPath) -> FsFuture<'a, ()> {
        self.inner.create_dir(path)
    }
    fn remove_dir<'a>(&'a self, path: &'a DavPath) -> FsFuture<'a, ()> {
        self.inner.remove_dir(path)
    }
    fn remove_file<'a>(&'a self, path: &'a DavPath) -> FsFuture<'a, ()> {
        self.inner.remove_file(path)
    }
    fn rename<'a>(&'a self, from: &'a DavPath, to: &'a DavPath) -> FsFuture<'a, ()> {
        self.inner.rename(from, to)
    }
    fn copy<'a>(&'a self, from: &'a DavPath, to: &'a DavPath) -> FsFuture<'a, ()> {
        self.inner.copy(from, to)
    }
    fn have_props<'a>(
        &'a self,
        _path: &'a DavPath,
    ) -> std::pin::Pin<Box<dyn Future<Output = bool> + Send + 'a>> {
        Box::pin(futures::future::ready(true))
    }
    fn patch_props<'a>(
        &'a self,
        _path: &'a DavPath,
        patch: Vec<(bool, DavProp)>,
    ) -> FsFuture<'a, Vec<(StatusCode, DavProp)>> {
        let out = patch
            .into_iter()
            .map(|(_, p)| (StatusCode::OK, p))
            .collect();
        futures::future::ready(Ok(out)).boxed()
    }
    fn get_props<'a>(&'a self, _path: &'a DavPath, _c: bool) -> FsFuture<'a, Vec<DavProp>> {
        futures::future::ready(Ok(Vec::new())).boxed()
    }
    fn get_prop<'a>(&'a self, _path: &'a DavPath, _prop: DavProp) -> FsFuture<'a, Vec<u8>> {
        futures::future::ready(Err(dav_server::fs::FsError::NotFound)).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn junk_names() {
        for n in [
            ".DS_Store",
            "._report.docx",
            "Thumbs.db",
            "desktop.ini",
            "Desktop.ini",
            "~$report.docx",
            ".~lock.report.odt#",
            ".localized",
            ".metadata_never_index",
        ] {
            assert!(is_junk(n), "{n}");
        }
        for n in [
            "._",
            "~$",
            ".gitignore",
            "report.docx",
            ".~lock.report.odt",
            "DS_Store",
            "folder.jpg",
            "Backups.backupdb",
        ] {
            assert!(!is_junk(n), "{n}");
        }
    }

    #[test]
    fn local_paths_stay_inside_and_are_nfc() {
        let root = Path::new("/park");
        let p = DavPath::new("/a/Cafe%CC%81/._x").expect("path");
        assert_eq!(
            local_path(root, &p).expect("local"),
            PathBuf::from("/park/a/Caf\u{e9}/._x")
        );
    }
}
