//! [`DavGateway`]: the front's [`DavService`], a per-request dav-server
//! handler over [`CloudreveFs`] and [`MemLockSystem`], plus the fixes the
//! crate needs around it:
//! * PROPFIND Depth 1 pre-flights the first listing page (an upstream
//!   failure is an error status, never an empty 207) and hands it to the
//!   file system (no second call); a later page failing cuts the response;
//! * GET/HEAD on a collection answers a small HTML index (dav-server: 405);
//! * statuses `FsError` cannot express (409/412/423/502/503 +
//!   `Retry-After`) are rewritten from the [`RequestCtx`];
//! * `getetag` values in PROPFIND answers are quoted like the `ETag` header;
//! * conditional headers dav-server gets wrong are adjusted first
//!   ([`conditions`]), and a PUT carrying only `Lock-Token` (Office) is
//!   given the `If` header it stands for when the token is the caller's
//!   lock on the resource;
//! * DELETE of a collection with a `Depth` other than infinity is refused
//!   (400, RFC 4918 §9.6.1; dav-server would delete it all);
//! * upstream lock conflicts of a PROPPATCH answer 423 naming the holder.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use dav_server::DavHandler;
use dav_server::davpath::DavPath;
use dav_server::fs::FsError;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::BodyExt;

use crate::cloudreve::{CrUri, Session};
use crate::shared::{BoxBody, DavService, Principal, full_body};

use super::conditions;
use super::ctx::RequestCtx;
use super::errors::{Outcome, classify};
use super::fs::{CloudreveFs, QuotaCache, lookup};
use super::html_index::collection_index;
use super::junk::{self, JunkAction, JunkPolicy};
use super::locks::{JsonFileStore, LockLimits, MemLockSystem, RedisLocks, RequestedTimeout};
use super::propfind;
use super::propfind_fixup::{PropFixer, requested};
use super::reserved::ReservedNames;
use super::response_body::GuardedBody;
use super::responses::{
    error_response, fs_status, locks_unavailable, masks_upstream_failure, text,
};
use super::times_and_checksums;
use super::upload_journal::UploadJournal;
use super::upstream_locks::{self, locked_response};

/// Finds the signed-in Cloudreve session of a configured user (by e-mail).
pub type SessionLookup = Arc<dyn Fn(&str) -> Option<Session> + Send + Sync>;

/// What DELETE does upstream (the configuration's setting).
pub use super::settings::DeleteMode;

/// Settings of the WebDAV layer.
#[derive(Debug, Clone)]
pub struct DavSettings {
    /// DELETE behaviour.
    pub delete_mode: DeleteMode,
    /// Directory for spooling PUT bodies of unknown length.
    pub spool_dir: PathBuf,
    /// Largest spooled body (bytes); above: 413.
    pub spool_max: u64,
    /// Listing page size asked from Cloudreve.
    pub page_size: u32,
    /// Read size of GET bodies.
    pub read_buf_size: usize,
    /// URL prefix of the WebDAV space (`""` = served at `/`).
    pub prefix: String,
    /// Gateway state directory (the lock table lives there); `None`:
    /// locks are kept in memory only.
    pub state_dir: Option<PathBuf>,
    /// The range lock timeouts are clamped to.
    pub lock_limits: LockLimits,
    /// The lock table shared in Redis (`--redis`); when set, `state_dir`
    /// holds no lock table.
    pub shared_locks: Option<RedisLocks>,
    /// Answer the common PROPFIND shapes with the gateway's own streaming
    /// writer ([`propfind`](super::propfind)); `false`: dav-server answers
    /// every PROPFIND (for comparisons).
    pub fast_propfind: bool,
    /// The journal of open upload sessions; opened in `state_dir` by
    /// [`DavGateway::try_new`] when `None`.
    pub upload_journal: Option<Arc<UploadJournal>>,
    /// What happens to junk files (`.DS_Store`, `._*`, …; see [`junk`]).
    pub junk: JunkPolicy,
    /// Names with characters Cloudreve refuses (see [`super::reserved`]).
    pub reserved_names: ReservedNames,
}

impl Default for DavSettings {
    fn default() -> Self {
        Self {
            delete_mode: DeleteMode::Trash,
            spool_dir: std::env::temp_dir(),
            spool_max: 4 * 1024 * 1024 * 1024,
            page_size: 1000,
            read_buf_size: 256 * 1024,
            prefix: String::new(),
            state_dir: None,
            lock_limits: LockLimits::default(),
            shared_locks: None,
            fast_propfind: true,
            upload_journal: None,
            junk: JunkPolicy::default(),
            reserved_names: ReservedNames::default(),
        }
    }
}

/// The WebDAV service over Cloudreve.
pub struct DavGateway {
    sessions: SessionLookup,
    settings: Arc<DavSettings>,
    locks: MemLockSystem,
    quota: Arc<QuotaCache>,
}

impl std::fmt::Debug for DavGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DavGateway")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl DavGateway {
    /// A gateway using `sessions` to find each user's Cloudreve session.
    /// With a `state_dir` whose lock table cannot be opened it logs the
    /// error and keeps locks in memory; [`DavGateway::try_new`] fails
    /// instead.
    pub fn new(sessions: SessionLookup, settings: DavSettings) -> Self {
        match Self::try_new(sessions.clone(), settings.clone()) {
            Ok(g) => g,
            Err(e) => {
                tracing::error!(error = %e, "lock table unusable; locks are kept in memory only");
                Self::with_locks(
                    sessions,
                    settings.clone(),
                    MemLockSystem::with_limits(settings.lock_limits),
                )
            }
        }
    }

    /// Like [`DavGateway::new`], failing when the state directory's lock
    /// table cannot be opened or read.
    pub fn try_new(sessions: SessionLookup, mut settings: DavSettings) -> std::io::Result<Self> {
        if settings.upload_journal.is_none()
            && let Some(dir) = &settings.state_dir
        {
            settings.upload_journal = Some(UploadJournal::open(dir).map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("upload journal in {}: {e}", dir.display()),
                )
            })?);
        }
        let locks = match (&settings.shared_locks, &settings.state_dir) {
            (Some(redis), _) => MemLockSystem::shared(redis.clone(), settings.lock_limits),
            (None, Some(dir)) => {
                let store = JsonFileStore::in_dir(dir).map_err(|e| {
                    std::io::Error::new(e.kind(), format!("state dir {}: {e}", dir.display()))
                })?;
                MemLockSystem::persistent(Arc::new(store), settings.lock_limits).map_err(|e| {
                    std::io::Error::new(e.kind(), format!("lock table in {}: {e}", dir.display()))
                })?
            }
            (None, None) => MemLockSystem::with_limits(settings.lock_limits),
        };
        Ok(Self::with_locks(sessions, settings, locks))
    }

    fn with_locks(sessions: SessionLookup, settings: DavSettings, locks: MemLockSystem) -> Self {
        Self {
            sessions,
            settings: Arc::new(settings),
            locks,
            quota: Arc::new(QuotaCache::default()),
        }
    }

    /// The journal of open upload sessions (with a state directory).
    pub fn upload_journal(&self) -> Option<&Arc<UploadJournal>> {
        self.settings.upload_journal.as_ref()
    }

    /// The lock store (for inspection).
    pub fn locks(&self) -> &MemLockSystem {
        &self.locks
    }

    /// UNLOCK with an upstream token (not one of the gateway's own locks)
    /// by the resource's owner: `DELETE /file/lock`. `None`: not such a
    /// request, dav-server handles it.
    async fn force_unlock(
        &self,
        ctx: &RequestCtx,
        ns: &str,
        lock_token: Option<String>,
    ) -> Option<Response<BoxBody>> {
        let raw = lock_token?;
        let token = raw.trim().trim_matches(|c| c == '<' || c == '>');
        match self.locks.has_token(ns, token).await {
            Ok(true) => return None,
            Ok(false) => {}
            Err(e) => {
                tracing::error!(error = %e, "UNLOCK: shared lock table unavailable");
                return Some(locks_unavailable());
            }
        }
        let upstream = upstream_locks::upstream_token(token)?;
        // Tokens are only ever revealed to the file's owner (UPSTREAM §4.9); an
        // account rooted in another user's share is not the owner.
        if ctx.root.fs() != "my" {
            return Some(text(
                StatusCode::FORBIDDEN,
                "only the owner can clear an upstream lock",
            ));
        }
        match ctx.session.force_unlock(&[upstream]).await {
            Ok(()) => {
                tracing::info!(user = %ctx.principal.email, token, "upstream lock force-unlocked");
                let mut r = Response::new(crate::shared::empty_body());
                *r.status_mut() = StatusCode::NO_CONTENT;
                Some(r)
            }
            Err(e) => {
                tracing::info!(token, error = %e, "force unlock refused upstream");
                let status = match classify(&e) {
                    // Outage or lost sign-in.
                    Outcome::Status(s @ StatusCode::SERVICE_UNAVAILABLE, _) => s,
                    // 40001: unknown or currently held token.
                    _ => StatusCode::CONFLICT,
                };
                Some(text(status, "the upstream lock could not be removed"))
            }
        }
    }

    fn dav_path(&self, raw: &str) -> Option<DavPath> {
        let mut p = DavPath::new(raw).ok()?;
        if !self.settings.prefix.is_empty() {
            p.set_prefix(&self.settings.prefix).ok()?;
        }
        Some(p)
    }

    fn destination(&self, req: &Request<BoxBody>) -> Option<DavPath> {
        let v = req.headers().get("destination")?.to_str().ok()?;
        let path = match v.parse::<http::Uri>() {
            Ok(u) if u.scheme().is_some() => u.path().to_string(),
            _ => v.to_string(),
        };
        self.dav_path(&path)
    }
}

#[async_trait]
impl DavService for DavGateway {
    async fn handle(&self, req: Request<BoxBody>, principal: Arc<Principal>) -> Response<BoxBody> {
        let Some(session) = (self.sessions)(&principal.email) else {
            tracing::warn!(user = %principal.email, "no upstream session for user");
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                "upstream session unavailable",
            );
        };
        let root = match CrUri::parse(&principal.root_uri) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(root = %principal.root_uri, error = %e, "bad account root");
                return text(StatusCode::BAD_GATEWAY, "account root is not usable");
            }
        };
        let method = req.method().clone();
        let depth = req
            .headers()
            .get("depth")
            .and_then(|v| v.to_str().ok())
            .map(|s| s.trim().to_ascii_lowercase());
        let raw_path = req.uri().path().to_string();
        let Some(path) = self.dav_path(&raw_path) else {
            return text(StatusCode::BAD_REQUEST, "bad path");
        };
        let mut req = req;
        adjust_conditions(req.headers_mut());
        let ns = format!("{}\n{}", principal.email, principal.root_uri);
        let ls = self.locks.for_user(ns.clone(), principal.email.clone());
        if method == Method::PUT
            && !req.headers().contains_key("if")
            && let Some(token) = conditions::lock_token(req.headers())
            && ls.holds(&path, &token).await
            && let Ok(v) = HeaderValue::from_str(&format!("(<{token}>)"))
        {
            tracing::debug!(token, "PUT with Lock-Token only: taken as its If header");
            req.headers_mut().insert("if", v);
        }
        let mut ctx = RequestCtx::new(
            principal.clone(),
            session,
            root,
            method.clone(),
            depth,
            None,
            None,
            self.settings.clone(),
            self.quota.clone(),
        );
        let dest_path = self.destination(&req);
        ctx.junk = JunkAction::resolve(self.settings.junk, &principal);
        if self.settings.reserved_names == ReservedNames::Refuse
            && let Some(r) = super::reserved::refuse(&method, &path, dest_path.as_ref(), ctx.junk)
        {
            return r;
        }
        // Names with more than one Unicode spelling: which object they mean.
        super::spelling::resolve(&ctx, &path).await;
        if let Some(d) = &dest_path {
            super::spelling::resolve(&ctx, d).await;
        }
        ctx.target = ctx.uri_of(&path);
        ctx.destination = dest_path.as_ref().and_then(|d| ctx.uri_of(d));
        ctx.if_match = conditions::if_match_tags(req.headers());
        if ctx.junk == JunkAction::Park {
            let base = self
                .settings
                .state_dir
                .as_deref()
                .unwrap_or(&self.settings.spool_dir);
            ctx.park = Some(junk::park_root(base, &principal));
        }
        let ns = format!("{}\n{}", principal.email, principal.root_uri);
        let target_junk = junk::path_is_junk(&path);
        let dest_junk = dest_path.as_ref().is_some_and(junk::path_is_junk);
        match (ctx.junk, &ctx.park) {
            (JunkAction::Reject, _)
                if dest_junk
                    || (target_junk
                        && (method == Method::PUT
                            || matches!(method.as_str(), "MKCOL" | "LOCK" | "PROPPATCH"))) =>
            {
                tracing::info!(method = %method, path = %raw_path, "junk file name refused");
                return junk::rejected();
            }
            (JunkAction::Park, Some(park)) if target_junk || dest_junk => {
                if dest_path.is_some() && target_junk != dest_junk {
                    tracing::info!(method = %method, path = %raw_path, "move/copy between parked junk and Cloudreve refused");
                    return text(
                        StatusCode::FORBIDDEN,
                        "junk files are kept by the gateway and cannot be copied or moved to or from other names",
                    );
                }
                let ls = self
                    .locks
                    .for_user(ns, principal.email.clone())
                    .with_requested_timeout(
                        req.headers()
                            .get("timeout")
                            .and_then(|v| v.to_str().ok())
                            .and_then(RequestedTimeout::parse),
                    );
                let probe = ls.clone();
                let r = junk::serve_parked(
                    park.clone(),
                    &self.settings.prefix,
                    &principal.email,
                    (&path, dest_path.as_ref()),
                    Box::new(ls),
                    req,
                )
                .await
                .map(|b| b.boxed_unsync());
                if probe.backend_failed() {
                    return locks_unavailable();
                }
                return r;
            }
            _ => {}
        }
        let (req, taken) = match kept_hints(&mut ctx, req).await {
            Ok(x) => x,
            Err(r) => return r,
        };
        let ctx = Arc::new(ctx);

        if (method == Method::GET || method == Method::HEAD)
            && let Some(uri) = ctx.target.clone()
        {
            match lookup(&ctx, &uri).await {
                Ok(f) if f.is_folder() => {
                    return collection_index(&ctx, &uri, &raw_path, method == Method::HEAD).await;
                }
                Ok(_) | Err(FsError::NotFound) => {}
                Err(e) => return error_response(&ctx, e),
            }
        }
        if method == Method::DELETE
            && ctx.depth.as_deref().is_some_and(|d| d != "infinity")
            && let Some(uri) = ctx.target.clone()
        {
            match lookup(&ctx, &uri).await {
                Ok(f) if f.is_folder() => {
                    tracing::info!(%uri, depth = ?ctx.depth, "DELETE of a collection without Depth: infinity");
                    return text(
                        StatusCode::BAD_REQUEST,
                        "DELETE of a collection needs Depth: infinity",
                    );
                }
                Ok(_) | Err(FsError::NotFound) => {}
                Err(e) => return error_response(&ctx, e),
            }
        }
        if method.as_str() == "PROPFIND"
            && ctx.depth.as_deref() == Some("1")
            && let Some(uri) = ctx.target.clone()
        {
            // Cloudreve's listing names its folder without the folder's
            // metadata (dead properties, kept times), so the folder's own
            // entry is asked for alongside, in parallel.
            let own_entry = async {
                if uri.is_root() {
                    None
                } else {
                    ctx.session.info(&uri, false).await.ok()
                }
            };
            let (listed, own) = tokio::join!(
                ctx.session.list_page(&uri, self.settings.page_size, None),
                own_entry
            );
            match listed {
                Ok(mut page) => {
                    if let Some(f) = own.filter(|f| f.is_folder()) {
                        page.parent = Some(f);
                    }
                    if let Some(p) = &page.parent {
                        ctx.remember(uri.clone(), p.clone());
                    }
                    ctx.set_first_page(uri, page);
                }
                // A file (or nothing): dav-server's metadata call decides.
                Err(e) if e.is_not_found() => {}
                Err(e) => {
                    let o = super::errors::classify_in("list", &e);
                    tracing::warn!(error = %e, "PROPFIND listing pre-flight failed");
                    let status = match o {
                        Outcome::Fs(f) => fs_status(f),
                        Outcome::Status(s, _) => s,
                    };
                    return text(status, "upstream listing failed");
                }
            }
        }

        if method.as_str() == "UNLOCK"
            && let Some(r) = self
                .force_unlock(
                    &ctx,
                    &ns,
                    req.headers()
                        .get("lock-token")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string),
                )
                .await
        {
            return r;
        }
        if method.as_str() == "LOCK"
            && let Some(uri) = ctx.target.clone()
            && let Err(c) = upstream_locks::probe(&ctx, &uri).await
        {
            tracing::info!(%uri, "LOCK refused: locked upstream");
            return locked_response(&ctx, &c, &raw_path, true);
        }
        let requested_timeout = req
            .headers()
            .get("timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(RequestedTimeout::parse);

        // PROPFIND bodies are small (dav-server buffers ≤ 64 KiB itself):
        // read it to learn the requested properties, then hand it on.
        let mut req = req;
        let mut wanted = None;
        if method.as_str() == "PROPFIND" {
            let (parts, body) = req.into_parts();
            let bytes = match http_body_util::Limited::new(body, 65536).collect().await {
                Ok(c) => c.to_bytes(),
                Err(_) => return text(StatusCode::PAYLOAD_TOO_LARGE, "request body too large"),
            };
            let ua = parts
                .headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            // Parked junk files are listed by `CloudreveFs::read_dir` only,
            // so a gateway that parks them answers through dav-server.
            if self.settings.fast_propfind
                && ctx.park.is_none()
                && let Some(uri) = ctx.target.clone()
                && let Some(shape) = propfind::shape_of(&bytes, ua)
            {
                let ls = self.locks.for_user(ns, principal.email.clone());
                return match propfind::respond(ctx.clone(), &path, uri, shape, ua, ls).await {
                    Ok(r) => r,
                    Err(e) => error_response(&ctx, e),
                };
            }
            wanted = requested(&bytes);
            req = Request::from_parts(parts, full_body(bytes));
        }
        let ls = ls.with_requested_timeout(requested_timeout);
        let probe = ls.clone();
        let mut cfg = DavHandler::builder()
            .filesystem(Box::new(CloudreveFs))
            .locksystem(Box::new(ls))
            .read_buf_size(self.settings.read_buf_size)
            .autoindex(false);
        if !self.settings.prefix.is_empty() {
            cfg = cfg.strip_prefix(self.settings.prefix.clone());
        }
        let handler = cfg.build_handler();
        let resp = handler
            .handle_guarded(req, principal.email.clone(), ctx.clone())
            .await;
        if probe.backend_failed() {
            return locks_unavailable();
        }
        let (mut parts, body) = resp.into_parts();
        if parts.status.is_success()
            && let Some(park) = &ctx.park
            && (method == Method::DELETE || method.as_str() == "MOVE")
        {
            junk::follow(park, &path, dest_path.as_ref());
        }
        if let Some(w) = ctx.wanted()
            && masks_upstream_failure(parts.status, w.status)
        {
            parts.status = w.status;
            if let Some(ra) = w.retry_after {
                parts
                    .headers
                    .insert(header::RETRY_AFTER, HeaderValue::from(ra.as_secs()));
            }
        }
        if parts.status == StatusCode::LOCKED
            && let Some(c) = ctx.conflicts()
        {
            let mut r = locked_response(&ctx, &c, &raw_path, method.as_str() == "LOCK");
            for h in [header::RETRY_AFTER] {
                if let Some(v) = parts.headers.get(&h) {
                    r.headers_mut().insert(h, v.clone());
                }
            }
            return r;
        }
        if method == Method::PUT && parts.status.is_success() && ctx.times_kept() {
            parts
                .headers
                .insert("x-oc-mtime", HeaderValue::from_static("accepted"));
        }
        if method.as_str() == "PROPPATCH" && parts.status == StatusCode::MULTI_STATUS {
            if let Some(c) = ctx.conflicts() {
                return locked_response(&ctx, &c, &raw_path, false);
            }
            if !ctx.times.is_empty() || !taken.is_empty() {
                let kept = keep_proppatch_times(&ctx, body, &taken).await;
                if let Some(c) = ctx.conflicts() {
                    return locked_response(&ctx, &c, &raw_path, false);
                }
                parts.headers.remove(header::CONTENT_LENGTH);
                return Response::from_parts(parts, full_body(kept));
            }
            let body = GuardedBody {
                inner: body,
                ctx: ctx.clone(),
                fix_etags: false,
                props: None,
                failed: false,
            };
            return Response::from_parts(parts, body.boxed_unsync());
        }
        let parts_is_207 = parts.status == StatusCode::MULTI_STATUS;
        let body = GuardedBody {
            inner: body,
            ctx: ctx.clone(),
            fix_etags: method.as_str() == "PROPFIND",
            props: (parts_is_207).then(|| wanted.map(PropFixer::new)).flatten(),
            failed: false,
        };
        Response::from_parts(parts, body.boxed_unsync())
    }
}

/// Rewrites the conditional headers dav-server 0.11 would misread (see
/// [`conditions`]).
fn adjust_conditions(h: &mut http::HeaderMap) {
    if let Some(v) = h.get("if").and_then(|v| v.to_str().ok())
        && let Some(fixed) = conditions::absolute_if_tags(v)
        && let Ok(v) = HeaderValue::from_str(&fixed)
    {
        h.insert("if", v);
    }
    let inm: Vec<String> = h
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| conditions::weak_if_none_match(v).unwrap_or_else(|| v.to_string()))
        .collect();
    if !inm.is_empty()
        && let Ok(v) = HeaderValue::from_str(&inm.join(", "))
    {
        h.insert(header::IF_NONE_MATCH, v);
    }
}

/// Reads the time hints of a request into `ctx`: `X-OC-Mtime` on PUT, the
/// times a PROPPATCH sets (whose body may be rewritten, see
/// [`times_and_checksums::take_times`]). Returns the request to hand on and the
/// properties taken out of a PROPPATCH body.
async fn kept_hints(
    ctx: &mut RequestCtx,
    req: Request<BoxBody>,
) -> Result<(Request<BoxBody>, Vec<(String, String)>), Response<BoxBody>> {
    if req.method() == Method::PUT {
        ctx.oc_mtime = req
            .headers()
            .get("x-oc-mtime")
            .and_then(|v| v.to_str().ok())
            .and_then(times_and_checksums::parse_time);
        return Ok((req, Vec::new()));
    }
    if req.method().as_str() != "PROPPATCH" {
        return Ok((req, Vec::new()));
    }
    let (parts, body) = req.into_parts();
    let bytes = match http_body_util::Limited::new(body, 65536).collect().await {
        Ok(c) => c.to_bytes(),
        Err(_) => {
            return Err(text(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body too large",
            ));
        }
    };
    let tp = times_and_checksums::take_times(&bytes);
    ctx.times = tp.times;
    let body = tp.body.map(Bytes::from).unwrap_or(bytes);
    Ok((Request::from_parts(parts, full_body(body)), tp.taken))
}

/// Finishes a PROPPATCH that sets times: keeps them upstream when
/// dav-server's dead-property call did not already (only Win32 times or
/// `lastmodified`), and reports them in the 207.
async fn keep_proppatch_times(
    ctx: &RequestCtx,
    body: dav_server::body::Body,
    taken: &[(String, String)],
) -> String {
    let bytes = match BodyExt::collect(body).await {
        Ok(c) => c.to_bytes(),
        Err(e) => {
            tracing::warn!(error = %e, "PROPPATCH answer unreadable");
            Bytes::new()
        }
    };
    let text_body = String::from_utf8_lossy(&bytes).into_owned();
    let mut failed = None;
    if times_and_checksums::all_ok(&text_body) && !ctx.times.is_empty() && !ctx.times_kept() {
        let r = match ctx.target.clone() {
            Some(uri) if uri != ctx.root => match lookup(ctx, &uri).await {
                Ok(f) => {
                    let entity = f.primary_entity.unwrap_or_default();
                    ctx.session
                        .patch_metadata(std::slice::from_ref(&uri), &ctx.times.patches(&entity))
                        .await
                        .map_err(|e| {
                            tracing::info!(%uri, error = %e, "keeping PROPPATCH times failed");
                            if e.is_locked() {
                                ctx.record_conflicts(e.lock_conflicts());
                            }
                            match classify(&e) {
                                Outcome::Fs(f) => fs_status(f),
                                Outcome::Status(s, _) => s,
                            }
                        })
                }
                Err(e) => Err(fs_status(e)),
            },
            // Cloudreve stores no metadata on the root.
            _ => Err(StatusCode::FORBIDDEN),
        };
        ctx.forget_all();
        match r {
            Ok(()) => ctx.set_times_kept(),
            Err(s) => failed = Some(s.as_u16()),
        }
    }
    times_and_checksums::fix_response(&text_body, taken, failed)
}
