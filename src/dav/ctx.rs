//! [`RequestCtx`]: everything one WebDAV request carries into the file
//! system (the `C` of `GuardedFileSystem<C>`, shared as `Arc<RequestCtx>`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dav_server::davpath::DavPath;
use http::{Method, StatusCode};

use crate::cloudreve::{CrUri, FileResponse, ListPage, LockConflict, Session};
use crate::shared::Principal;

use super::fs::QuotaCache;
use super::reserved::{self, ReservedNames};
use super::service::DavSettings;

/// A response status the file system wants but `FsError` cannot express
/// (409, 412, 423, 502, 503); the gateway rewrites the response with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WantedStatus {
    /// The status to answer.
    pub status: StatusCode,
    /// `Retry-After` seconds, for 503.
    pub retry_after: Option<Duration>,
}

/// Per-request context: identity, upstream session, request hints and a
/// metadata cache filled by listings (so a Depth-1 PROPFIND makes no
/// upstream call per entry).
pub struct RequestCtx {
    /// The authenticated principal.
    pub principal: Arc<Principal>,
    /// The user's Cloudreve session.
    pub session: Session,
    /// The account root (`/` of the WebDAV space).
    pub root: CrUri,
    /// The request method.
    pub method: Method,
    /// The raw `Depth` header (trimmed), if any.
    pub depth: Option<String>,
    /// The request target as a Cloudreve URI (when it maps to one).
    pub target: Option<CrUri>,
    /// The `Destination` (COPY/MOVE) as a Cloudreve URI.
    pub destination: Option<CrUri>,
    /// Gateway settings.
    pub settings: Arc<DavSettings>,
    pub(crate) quota: Arc<QuotaCache>,
    /// `X-OC-Mtime` of a PUT (kept once the upload completes).
    pub oc_mtime: Option<std::time::SystemTime>,
    /// Times a PROPPATCH sets (kept with its dead properties).
    pub times: super::times_and_checksums::Times,
    /// What happens to junk names for this account.
    pub junk: super::junk::JunkAction,
    /// The account's parking directory (junk kept by the gateway).
    pub park: Option<std::path::PathBuf>,
    /// Set once `oc_mtime` / `times` are stored upstream.
    pub(crate) times_kept: AtomicBool,
    /// The strong entity tags of `If-Match` (unquoted); `None` when absent
    /// or `*`.
    pub if_match: Option<Vec<String>>,
    cache: Mutex<HashMap<CrUri, Option<FileResponse>>>,
    first_page: Mutex<Option<(CrUri, ListPage)>>,
    wanted: Mutex<Option<WantedStatus>>,
    /// A COPY/MOVE destination whose deletion (`Overwrite: T`) is put off
    /// until the copy or move itself runs (see `fs::with_replaced`).
    replace: Mutex<Option<CrUri>>,
    conflicts: Mutex<Option<Vec<LockConflict>>>,
    aborted: AtomicBool,
    /// Requested paths (decoded, without trailing slash) that name an
    /// upstream object spelled in another Unicode form (`spelling.rs`),
    /// with the object's URI.
    spellings: Mutex<Vec<(String, CrUri)>>,
}

impl std::fmt::Debug for RequestCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestCtx")
            .field("user", &self.principal.email)
            .field("root", &self.root)
            .field("method", &self.method)
            .finish_non_exhaustive()
    }
}

impl RequestCtx {
    /// A fresh context.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        principal: Arc<Principal>,
        session: Session,
        root: CrUri,
        method: Method,
        depth: Option<String>,
        target: Option<CrUri>,
        destination: Option<CrUri>,
        settings: Arc<DavSettings>,
        quota: Arc<QuotaCache>,
    ) -> Self {
        Self {
            principal,
            session,
            root,
            method,
            depth,
            target,
            destination,
            settings,
            quota,
            oc_mtime: None,
            times: super::times_and_checksums::Times::default(),
            junk: super::junk::JunkAction::Off,
            park: None,
            times_kept: AtomicBool::new(false),
            if_match: None,
            cache: Mutex::new(HashMap::new()),
            first_page: Mutex::new(None),
            wanted: Mutex::new(None),
            replace: Mutex::new(None),
            conflicts: Mutex::new(None),
            aborted: AtomicBool::new(false),
            spellings: Mutex::new(Vec::new()),
        }
    }

    /// Maps a dav-server path (prefix already stripped) to a Cloudreve URI
    /// below the account root. `None` for undecodable or invalid names.
    ///
    /// Names are taken as spelled, so every name a listing shows reaches
    /// its object whatever its Unicode form. A path the request resolved to
    /// another spelling (`spelling::resolve`: a name macOS sends decomposed
    /// for an object stored composed, or one to create) maps through that,
    /// and so do the paths below it.
    pub fn uri_of(&self, path: &DavPath) -> Option<CrUri> {
        let s = std::str::from_utf8(path.as_bytes()).ok()?;
        let (mut u, rest) = self
            .spelled(s)
            .unwrap_or_else(|| (self.root.clone(), s.to_string()));
        for seg in rest.split('/').filter(|s| !s.is_empty()) {
            u = u.join(&self.upstream_name(seg)).ok()?;
        }
        Some(u)
    }

    /// The upstream spelling of a name a client sent (reserved characters
    /// mapped when the settings say so, see `reserved.rs`).
    pub fn upstream_name<'a>(&self, name: &'a str) -> std::borrow::Cow<'a, str> {
        match self.settings.reserved_names {
            ReservedNames::Map => reserved::to_upstream(name),
            ReservedNames::Refuse => std::borrow::Cow::Borrowed(name),
        }
    }

    /// The name a client is shown for an upstream name.
    pub fn client_name<'a>(&self, name: &'a str) -> std::borrow::Cow<'a, str> {
        match self.settings.reserved_names {
            ReservedNames::Map => reserved::to_client(name),
            ReservedNames::Refuse => std::borrow::Cow::Borrowed(name),
        }
    }

    /// [`RequestCtx::client_name`] of an owned name: the same `String` back
    /// when nothing is mapped (listings call this once per entry).
    pub fn into_client_name(&self, name: String) -> String {
        match self.client_name(&name) {
            std::borrow::Cow::Owned(mapped) => mapped,
            std::borrow::Cow::Borrowed(_) => name,
        }
    }

    /// The longest resolved spelling covering `path`, if any: its URI and
    /// the rest of the path below it.
    fn spelled(&self, path: &str) -> Option<(CrUri, String)> {
        let trimmed = path.trim_end_matches('/');
        let s = self.spellings.lock().ok()?;
        s.iter()
            .filter_map(|(requested, uri)| {
                let rest = trimmed.strip_prefix(requested.as_str())?;
                (rest.is_empty() || rest.starts_with('/'))
                    .then(|| (requested.len(), uri.clone(), rest.to_string()))
            })
            .max_by_key(|(len, ..)| *len)
            .map(|(_, uri, rest)| (uri, rest))
    }

    /// Records that `path` (decoded) means `uri` for the rest of the request.
    pub(crate) fn spell(&self, path: &str, uri: CrUri) {
        if let Ok(mut s) = self.spellings.lock() {
            s.push((path.trim_end_matches('/').to_string(), uri));
        }
    }

    /// A cached lookup: `Some(Some(f))` found, `Some(None)` known missing,
    /// `None` unknown.
    pub fn cached(&self, uri: &CrUri) -> Option<Option<FileResponse>> {
        self.cache.lock().ok()?.get(uri).cloned()
    }

    /// Caches `f` as the metadata of `uri`.
    /// An entry without its metadata (the folder entry of a listing) is not
    /// cached: its dead properties and kept times would be missing.
    pub fn remember(&self, uri: CrUri, f: FileResponse) {
        if !entry_is_complete(&uri, &f) {
            return;
        }
        if let Ok(mut c) = self.cache.lock() {
            c.insert(uri, Some(f));
        }
    }

    /// Caches that `uri` does not exist (until the next mutation).
    pub fn remember_missing(&self, uri: CrUri) {
        if let Ok(mut c) = self.cache.lock() {
            c.insert(uri, None);
        }
    }

    /// Records that `uri`, the destination of this COPY/MOVE, is to be
    /// replaced (dav-server asked to delete it first).
    pub(crate) fn defer_replace(&self, uri: CrUri) {
        if let Ok(mut r) = self.replace.lock() {
            *r = Some(uri);
        }
    }

    /// Takes the deferred replacement if it is the one of `uri`.
    pub(crate) fn take_replace(&self, uri: &CrUri) -> bool {
        let Ok(mut r) = self.replace.lock() else {
            return false;
        };
        if r.as_ref() == Some(uri) {
            *r = None;
            return true;
        }
        false
    }

    /// Drops every cached entry (after a mutation).
    pub fn forget_all(&self) {
        if let Ok(mut c) = self.cache.lock() {
            c.clear();
        }
    }

    /// Stores the pre-flighted first listing page of `uri`.
    pub(crate) fn set_first_page(&self, uri: CrUri, page: ListPage) {
        if let Ok(mut p) = self.first_page.lock() {
            *p = Some((uri, page));
        }
    }

    /// Takes the pre-flighted first page, if it is the one of `uri`.
    pub(crate) fn take_first_page(&self, uri: &CrUri) -> Option<ListPage> {
        let mut p = self.first_page.lock().ok()?;
        if p.as_ref().is_some_and(|(u, _)| u == uri) {
            return p.take().map(|(_, page)| page);
        }
        None
    }

    /// Records a wanted response status (first one wins).
    pub fn want(&self, status: StatusCode, retry_after: Option<Duration>) {
        if let Ok(mut w) = self.wanted.lock()
            && w.is_none()
        {
            *w = Some(WantedStatus {
                status,
                retry_after,
            });
        }
    }

    /// Records the upstream lock conflicts of a 40073 (first one wins).
    pub fn record_conflicts(&self, c: &[LockConflict]) {
        if let Ok(mut w) = self.conflicts.lock()
            && w.is_none()
        {
            *w = Some(c.to_vec());
        }
    }

    /// The recorded upstream lock conflicts (`None`: no 40073 seen).
    pub fn conflicts(&self) -> Option<Vec<LockConflict>> {
        self.conflicts.lock().ok().and_then(|w| w.clone())
    }

    /// The wanted status, if any.
    pub fn wanted(&self) -> Option<WantedStatus> {
        self.wanted.lock().ok().and_then(|w| *w)
    }

    /// Marks the response as broken (a listing failed after the 207 was
    /// committed): the gateway cuts the connection instead of ending it.
    pub fn abort(&self) {
        self.aborted.store(true, Ordering::SeqCst);
    }

    /// True once [`RequestCtx::abort`] was called.
    pub fn is_aborted(&self) -> bool {
        self.aborted.load(Ordering::SeqCst)
    }

    /// Records that the client's times were stored upstream.
    pub fn set_times_kept(&self) {
        self.times_kept.store(true, Ordering::SeqCst);
    }

    /// True once the client's times were stored upstream.
    pub fn times_kept(&self) -> bool {
        self.times_kept.load(Ordering::SeqCst)
    }

    /// True when the request's `Depth` header is `0`.
    pub fn depth_zero(&self) -> bool {
        self.depth.as_deref() == Some("0")
    }
}

/// Whether `f`, what Cloudreve said of `uri`, carries the entry's metadata.
/// A listing names its own folder with `metadata: null` (docs/UPSTREAM.md
/// §4.2); the drive root has no metadata to carry.
pub(crate) fn entry_is_complete(uri: &CrUri, f: &FileResponse) -> bool {
    f.metadata.is_some() || uri.is_root()
}
