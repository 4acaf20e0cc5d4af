//! [`MemLockSystem`]: the gateway's own `DavLockSystem` — an in-memory
//! table with real expiry, optionally persisted through a [`LockStore`]
//! (by default [`JsonFileStore`], a JSON file in the state directory) so
//! locks survive a gateway restart.
//!
//! * timeouts are clamped to the configured [`LockLimits`]; a missing
//!   `Timeout` gets the default, `Infinite` the cap (the raw request header
//!   is consulted: dav-server itself turns `Infinite` into 600 s);
//!   expired locks are purged on every call and dropped when loading;
//! * exclusive/shared scopes, depth 0/infinity conflict rules (a lock
//!   conflicts with locks on the same path, on ancestors with depth
//!   infinity and — for a depth-infinity lock — on descendants);
//! * tokens are `urn:uuid:` URIs; the `<owner>` XML is kept;
//! * namespaces: one table per user space (WebDAV paths of different users
//!   name different files); [`MemLockSystem::for_user`] gives the
//!   per-request view that also knows the principal, so UNLOCK and refresh
//!   are owner-checked (dav-server does not pass the principal to them);
//! * without Redis, the in-memory table is the source of truth while
//!   running; the store gets a full snapshot after every change (lock,
//!   unlock, refresh, delete);
//! * with Redis ([`MemLockSystem::shared`]), Redis is the source of truth
//!   and nothing is kept in memory: every call reads (and, for changes,
//!   atomically compare-and-sets) the namespace's list there
//!   ([`super::locks_redis`]), so all instances see one table. When Redis
//!   cannot be reached, lock, unlock, refresh and lock checks fail closed:
//!   the request's [`UserLocks::backend_failed`] is set and the gateway
//!   answers 503 with `Retry-After` instead of what dav-server made of the
//!   failure; lock discovery then reports no locks (reads keep working).

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dav_server::davpath::DavPath;
use dav_server::ls::{DavLock, DavLockSystem, LsFuture};
use futures::FutureExt as _;
use serde::{Deserialize, Serialize};

pub use super::locks_redis::{LockBackendError, RedisLocks};

/// Timeout of a lock requested without (a parsable) `Timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3600);
/// Upper bound of any lock timeout (default of [`LockLimits::max`]).
pub const MAX_TIMEOUT: Duration = Duration::from_secs(86400);

/// Name of the lock file inside the state directory.
pub const LOCK_FILE: &str = "locks.json";

/// The range lock timeouts are clamped to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockLimits {
    /// Smallest timeout granted.
    pub min: Duration,
    /// Largest timeout granted (also what `Timeout: Infinite` gets).
    pub max: Duration,
    /// Timeout of a lock requested without `Timeout` (clamped too).
    pub default: Duration,
}

impl Default for LockLimits {
    fn default() -> Self {
        Self {
            min: Duration::from_secs(1),
            max: MAX_TIMEOUT,
            default: DEFAULT_TIMEOUT,
        }
    }
}

impl LockLimits {
    fn clamp(&self, t: Duration) -> Duration {
        t.min(self.max).max(self.min.min(self.max))
    }
}

/// The `Timeout` header of the request, as the client sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestedTimeout {
    /// `Timeout: Infinite`.
    Infinite,
    /// `Timeout: Second-n`.
    Seconds(u64),
}

impl RequestedTimeout {
    /// Parses the first entry of a `Timeout` header value.
    pub fn parse(v: &str) -> Option<Self> {
        let first = v.split(',').next()?.trim();
        if first.eq_ignore_ascii_case("infinite") {
            return Some(Self::Infinite);
        }
        let n = first
            .get(..7)
            .filter(|p| p.eq_ignore_ascii_case("second-"))
            .and(first.get(7..))?;
        n.trim().parse().ok().map(Self::Seconds)
    }
}

/// A lock as persisted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredLock {
    /// Namespace (user space).
    pub ns: String,
    /// Token (`urn:uuid:…`).
    pub token: String,
    /// URL-encoded path including the prefix.
    pub path: String,
    /// The WebDAV prefix of `path` (`""` when none).
    #[serde(default)]
    pub prefix: String,
    /// Principal that took the lock.
    #[serde(default)]
    pub principal: Option<String>,
    /// `<owner>` element, serialized.
    #[serde(default)]
    pub owner_xml: Option<String>,
    /// Granted timeout (seconds).
    pub timeout_secs: u64,
    /// Expiry (milliseconds since the Unix epoch).
    pub expires_ms: u64,
    /// Shared (else exclusive).
    pub shared: bool,
    /// Depth infinity (else 0).
    pub deep: bool,
}

pub(crate) fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl StoredLock {
    /// The persisted form of `l` in namespace `ns`.
    pub fn from_lock(ns: &str, l: &DavLock) -> Self {
        let owner_xml = l.owner.as_ref().and_then(|o| {
            let mut buf = Vec::new();
            let cfg = xmltree::EmitterConfig::new().write_document_declaration(false);
            o.write_with_config(&mut buf, cfg).ok()?;
            String::from_utf8(buf).ok()
        });
        StoredLock {
            ns: ns.to_string(),
            token: l.token.clone(),
            path: l.path.with_prefix().as_url_string(),
            prefix: l.path.prefix().to_string(),
            principal: l.principal.clone(),
            owner_xml,
            timeout_secs: l.timeout.map(|t| t.as_secs()).unwrap_or(0),
            expires_ms: l.timeout_at.map(unix_ms).unwrap_or(u64::MAX),
            shared: l.shared,
            deep: l.deep,
        }
    }

    /// Back to a `DavLock` (`None` when the path does not parse).
    pub fn to_lock(&self) -> Option<DavLock> {
        let mut path = DavPath::new(&self.path).ok()?;
        if !self.prefix.is_empty() {
            path.set_prefix(&self.prefix).ok()?;
        }
        let owner = match &self.owner_xml {
            Some(x) => Some(Box::new(xmltree::Element::parse(x.as_bytes()).ok()?)),
            None => None,
        };
        Some(DavLock {
            token: self.token.clone(),
            path: Box::new(path),
            principal: self.principal.clone(),
            owner,
            timeout_at: (self.expires_ms != u64::MAX)
                .then(|| UNIX_EPOCH + Duration::from_millis(self.expires_ms)),
            timeout: Some(Duration::from_secs(self.timeout_secs)),
            shared: self.shared,
            deep: self.deep,
        })
    }
}

/// Where the lock table is persisted.
pub trait LockStore: std::fmt::Debug + Send + Sync {
    /// All persisted locks (expired ones included; the caller drops them).
    fn load(&self) -> std::io::Result<Vec<StoredLock>>;
    /// Replaces the persisted set with `locks`.
    fn save(&self, locks: &[StoredLock]) -> std::io::Result<()>;
}

/// A JSON file, replaced atomically (temporary file + fsync + rename).
#[derive(Debug, Clone)]
pub struct JsonFileStore {
    path: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct LockFile {
    version: u32,
    locks: Vec<StoredLock>,
}

impl JsonFileStore {
    /// The store `dir/locks.json` (the directory is created).
    pub fn in_dir(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(Self {
            path: dir.join(LOCK_FILE),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl LockStore for JsonFileStore {
    fn load(&self) -> std::io::Result<Vec<StoredLock>> {
        match std::fs::read(&self.path) {
            Ok(b) => {
                let f: LockFile = serde_json::from_slice(&b)
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
                Ok(f.locks)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    fn save(&self, locks: &[StoredLock]) -> std::io::Result<()> {
        let body = serde_json::to_vec_pretty(&LockFile {
            version: 1,
            locks: locks.to_vec(),
        })
        .map_err(std::io::Error::other)?;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let tmp = dir.join(format!(".{LOCK_FILE}.{}.tmp", std::process::id()));
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&body)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &self.path)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

type Table = HashMap<String, Vec<DavLock>>;

/// The shared lock store (clone = same store).
#[derive(Debug, Clone, Default)]
pub struct MemLockSystem {
    table: Arc<Mutex<Table>>,
    store: Option<Arc<dyn LockStore>>,
    redis: Option<RedisLocks>,
    limits: LockLimits,
}

impl MemLockSystem {
    /// An empty, memory-only store with default limits.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store persisted through `store` (its live locks are loaded now).
    pub fn persistent(store: Arc<dyn LockStore>, limits: LockLimits) -> std::io::Result<Self> {
        let now = SystemTime::now();
        let mut table = Table::new();
        let mut dropped = 0usize;
        for s in store.load()? {
            match s.to_lock() {
                Some(l) if alive(&l, now) => table.entry(s.ns.clone()).or_default().push(l),
                _ => dropped += 1,
            }
        }
        let n: usize = table.values().map(Vec::len).sum();
        tracing::info!(loaded = n, dropped, "lock table loaded");
        let me = Self {
            table: Arc::new(Mutex::new(table)),
            store: Some(store),
            redis: None,
            limits,
        };
        if dropped > 0 {
            let t = me
                .table
                .lock()
                .map_err(|_| std::io::Error::other("poisoned"))?;
            me.persist(&t);
        }
        Ok(me)
    }

    /// A store whose table lives in Redis (shared by every instance using
    /// the same Redis and key prefix); nothing is kept in memory.
    pub fn shared(redis: RedisLocks, limits: LockLimits) -> Self {
        Self {
            redis: Some(redis),
            limits,
            ..Self::default()
        }
    }

    /// True when the table lives in Redis.
    pub fn is_shared(&self) -> bool {
        self.redis.is_some()
    }

    /// A memory-only store with `limits`.
    pub fn with_limits(limits: LockLimits) -> Self {
        Self {
            limits,
            ..Self::default()
        }
    }

    /// The timeout range.
    pub fn limits(&self) -> LockLimits {
        self.limits
    }

    fn persist(&self, t: &Table) {
        let Some(store) = &self.store else { return };
        let all: Vec<StoredLock> = t
            .iter()
            .flat_map(|(ns, v)| v.iter().map(move |l| StoredLock::from_lock(ns, l)))
            .collect();
        if let Err(e) = store.save(&all) {
            tracing::error!(error = %e, "cannot persist the lock table");
        }
    }

    /// The view of namespace `ns` (e.g. user + account root) for a request
    /// made by `principal`.
    pub fn for_user(&self, ns: String, principal: String) -> UserLocks {
        UserLocks {
            sys: self.clone(),
            ns,
            principal,
            requested: None,
            failed: Arc::default(),
        }
    }

    /// Number of live locks in the in-memory table, all namespaces (always
    /// 0 with Redis: see [`MemLockSystem::live_count`]).
    pub fn count(&self) -> usize {
        let now = SystemTime::now();
        self.table
            .lock()
            .map(|t| {
                t.values()
                    .map(|v| v.iter().filter(|l| alive(l, now)).count())
                    .sum()
            })
            .unwrap_or(0)
    }

    /// Number of live locks in all namespaces, wherever the table lives
    /// (for metrics).
    pub async fn live_count(&self) -> Result<usize, LockBackendError> {
        match &self.redis {
            Some(r) => Ok(r.list().await?.len()),
            None => Ok(self.count()),
        }
    }

    /// True when `token` is a live gateway lock of namespace `ns`.
    pub async fn has_token(&self, ns: &str, token: &str) -> Result<bool, LockBackendError> {
        let now = SystemTime::now();
        if let Some(r) = &self.redis {
            return r
                .transact(ns, false, |v| (v.iter().any(|l| l.token == token), false))
                .await;
        }
        Ok(self
            .table
            .lock()
            .map(|t| {
                t.get(ns)
                    .is_some_and(|v| v.iter().any(|l| l.token == token && alive(l, now)))
            })
            .unwrap_or(false))
    }

    /// All live locks, with their namespaces.
    pub async fn list(&self) -> Result<Vec<StoredLock>, LockBackendError> {
        if let Some(r) = &self.redis {
            return r.list().await;
        }
        let now = SystemTime::now();
        Ok(self
            .table
            .lock()
            .map(|t| {
                t.iter()
                    .flat_map(|(ns, v)| {
                        v.iter()
                            .filter(|l| alive(l, now))
                            .map(move |l| StoredLock::from_lock(ns, l))
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Removes the lock with `token` from any namespace (administrative
    /// unlock); true when one was removed.
    pub async fn remove_token(&self, token: &str) -> Result<bool, LockBackendError> {
        if let Some(r) = &self.redis {
            return r.remove_token(token).await;
        }
        let mut t = match self.table.lock() {
            Ok(t) => t,
            Err(p) => p.into_inner(),
        };
        let mut found = false;
        for v in t.values_mut() {
            let before = v.len();
            v.retain(|l| l.token != token);
            found |= v.len() != before;
        }
        t.retain(|_, v| !v.is_empty());
        if found {
            self.persist(&t);
        }
        Ok(found)
    }
}

/// A per-request view of one namespace.
#[derive(Debug, Clone)]
pub struct UserLocks {
    sys: MemLockSystem,
    ns: String,
    principal: String,
    requested: Option<RequestedTimeout>,
    /// Set when the shared table could not be used during this request.
    failed: Arc<AtomicBool>,
}

fn key(p: &DavPath) -> String {
    let b = p.as_bytes();
    let s = String::from_utf8_lossy(b);
    let t = s.trim_end_matches('/');
    if t.is_empty() {
        "/".to_string()
    } else {
        t.to_string()
    }
}

/// `a` is `b` or below it.
fn within(a: &str, b: &str) -> bool {
    a == b || b == "/" || (a.starts_with(b) && a.as_bytes().get(b.len()) == Some(&b'/'))
}

pub(crate) fn alive(l: &DavLock, now: SystemTime) -> bool {
    l.timeout_at.is_none_or(|t| t > now)
}

/// The conflict reported for a token that names no lock on `path`.
fn no_such_lock(path: &DavPath) -> DavLock {
    DavLock {
        token: String::new(),
        path: Box::new(path.clone()),
        principal: None,
        owner: None,
        timeout_at: None,
        timeout: None,
        shared: false,
        deep: false,
    }
}

/// `l` applies to the resource at `path` (decoded, below the WebDAV root,
/// without a trailing `/`; `/` for the root).
pub fn applies_to(l: &DavLock, path: &str) -> bool {
    covers(l, path)
}

/// `l` covers (applies to) `path`.
fn covers(l: &DavLock, path: &str) -> bool {
    let lp = key(&l.path);
    lp == path || (l.deep && within(path, &lp))
}

impl UserLocks {
    /// This view, taking the request's raw `Timeout` header into account
    /// (`Infinite` → the cap; dav-server alone would give 600 s).
    pub fn with_requested_timeout(mut self, t: Option<RequestedTimeout>) -> Self {
        self.requested = t;
        self
    }

    /// True when the shared (Redis) lock table could not be used for a
    /// lock, unlock, refresh or lock check of this request (or of a clone
    /// of this view): the answer must then be 503, whatever dav-server
    /// made of the failure.
    pub fn backend_failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }

    fn timeout(&self, from_dav: Option<Duration>) -> Duration {
        let lim = &self.sys.limits;
        let t = match self.requested {
            Some(RequestedTimeout::Infinite) => lim.max,
            Some(RequestedTimeout::Seconds(n)) => Duration::from_secs(n),
            None => from_dav.unwrap_or(lim.default),
        };
        lim.clamp(t)
    }

    fn with_mem<R>(&self, mutates: bool, f: impl FnOnce(&mut Vec<DavLock>) -> (R, bool)) -> R {
        let mut t = match self.sys.table.lock() {
            Ok(t) => t,
            Err(p) => p.into_inner(),
        };
        let now = SystemTime::now();
        t.retain(|_, v| {
            v.retain(|l| alive(l, now));
            !v.is_empty()
        });
        let v = t.entry(self.ns.clone()).or_default();
        let (r, changed) = f(v);
        if v.is_empty() {
            t.remove(&self.ns);
        }
        if mutates && changed {
            self.sys.persist(&t);
        }
        r
    }

    /// Runs `f` on this namespace's live locks, in memory or in Redis.
    /// With Redis unreachable: logs, marks the request failed when
    /// `fail_closed`, and returns `on_error`.
    async fn with<R: Send>(
        &self,
        what: &'static str,
        mutates: bool,
        fail_closed: bool,
        on_error: R,
        f: impl FnMut(&mut Vec<DavLock>) -> (R, bool) + Send,
    ) -> R {
        let Some(redis) = &self.sys.redis else {
            return self.with_mem(mutates, f);
        };
        match redis.transact(&self.ns, mutates, f).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, op = what, "shared lock table unavailable");
                if fail_closed {
                    self.failed.store(true, Ordering::Relaxed);
                }
                on_error
            }
        }
    }

    /// The live locks of this namespace, in one table look-up (a listing
    /// then matches each member with [`applies_to`]). Empty when the
    /// shared table is unreachable (logged).
    pub async fn snapshot(&self) -> Vec<DavLock> {
        self.with("snapshot", false, false, Vec::new(), |v| (v.clone(), false))
            .await
    }

    fn is_mine(&self, l: &DavLock) -> bool {
        l.principal.as_deref().is_none_or(|o| o == self.principal)
    }

    /// True when `token` names a live lock of this principal covering
    /// `path` (a `Lock-Token` header standing in for an `If` header).
    pub async fn holds(&self, path: &DavPath, token: &str) -> bool {
        let p = key(path);
        self.with("holds", false, false, false, |v| {
            (
                v.iter()
                    .any(|l| l.token == token && covers(l, &p) && self.is_mine(l)),
                false,
            )
        })
        .await
    }
}

impl DavLockSystem for UserLocks {
    fn lock(
        &'_ self,
        path: &DavPath,
        principal: Option<&str>,
        owner: Option<&xmltree::Element>,
        timeout: Option<Duration>,
        shared: bool,
        deep: bool,
    ) -> LsFuture<'_, Result<DavLock, DavLock>> {
        let p = key(path);
        let timeout = self.timeout(timeout);
        let path = path.clone();
        let principal = principal
            .map(str::to_string)
            .or(Some(self.principal.clone()));
        let owner = owner.map(|o| Box::new(o.clone()));
        async move {
            let fail = Err(no_such_lock(&path));
            self.with("lock", true, true, fail, |v| {
                for l in v.iter() {
                    let lp = key(&l.path);
                    let overlaps = covers(l, &p) || (deep && within(&lp, &p));
                    if overlaps && !(shared && l.shared) {
                        return (Err(l.clone()), false);
                    }
                }
                let lock = DavLock {
                    token: format!("urn:uuid:{}", uuid::Uuid::new_v4()),
                    path: Box::new(path.clone()),
                    principal: principal.clone(),
                    owner: owner.clone(),
                    timeout_at: Some(SystemTime::now() + timeout),
                    timeout: Some(timeout),
                    shared,
                    deep,
                };
                v.push(lock.clone());
                (Ok(lock), true)
            })
            .await
        }
        .boxed()
    }

    fn unlock(&'_ self, path: &DavPath, token: &str) -> LsFuture<'_, Result<(), ()>> {
        let p = key(path);
        let token = token.to_string();
        async move {
            self.with("unlock", true, true, Err(()), |v| {
                let Some(i) = v.iter().position(|l| l.token == token) else {
                    return (Err(()), false);
                };
                let l = &v[i];
                if !covers(l, &p) || !self.is_mine(l) {
                    return (Err(()), false);
                }
                v.remove(i);
                (Ok(()), true)
            })
            .await
        }
        .boxed()
    }

    fn refresh(
        &'_ self,
        path: &DavPath,
        token: &str,
        timeout: Option<Duration>,
    ) -> LsFuture<'_, Result<DavLock, ()>> {
        let p = key(path);
        let t = self.timeout(timeout);
        let token = token.to_string();
        async move {
            self.with("refresh", true, true, Err(()), |v| {
                let Some(l) = v.iter_mut().find(|l| l.token == token) else {
                    return (Err(()), false);
                };
                if !covers(l, &p) || !self.is_mine(l) {
                    return (Err(()), false);
                }
                l.timeout = Some(t);
                l.timeout_at = Some(SystemTime::now() + t);
                (Ok(l.clone()), true)
            })
            .await
        }
        .boxed()
    }

    fn check(
        &'_ self,
        path: &DavPath,
        principal: Option<&str>,
        ignore_principal: bool,
        deep: bool,
        submitted_tokens: &[String],
    ) -> LsFuture<'_, Result<(), DavLock>> {
        let p = key(path);
        let path = path.clone();
        let principal = principal.map(str::to_string);
        let submitted_tokens = submitted_tokens.to_vec();
        async move {
            let fail = Err(no_such_lock(&path));
            self.with("check", false, true, fail, |v| {
                (
                    check_in(
                        v,
                        &p,
                        &path,
                        principal.as_deref(),
                        ignore_principal,
                        deep,
                        &submitted_tokens,
                    ),
                    false,
                )
            })
            .await
        }
        .boxed()
    }

    fn discover(&'_ self, path: &DavPath) -> LsFuture<'_, Vec<DavLock>> {
        let p = key(path);
        async move {
            self.with("discover", false, false, Vec::new(), |v| {
                (v.iter().filter(|l| covers(l, &p)).cloned().collect(), false)
            })
            .await
        }
        .boxed()
    }

    fn delete(&'_ self, path: &DavPath) -> LsFuture<'_, Result<(), ()>> {
        let p = key(path);
        async move {
            // The resource is gone already: a failure here is only logged
            // (its locks then expire on their own).
            self.with("delete", true, false, (), |v| {
                let before = v.len();
                v.retain(|l| !within(&key(&l.path), &p));
                ((), v.len() != before)
            })
            .await;
            Ok(())
        }
        .boxed()
    }
}

/// The lock check of [`DavLockSystem::check`] on the live locks `v`.
fn check_in(
    v: &[DavLock],
    p: &str,
    path: &DavPath,
    principal: Option<&str>,
    ignore_principal: bool,
    deep: bool,
    submitted_tokens: &[String],
) -> Result<(), DavLock> {
    if ignore_principal {
        // dav-server evaluating one state token of an `If` header:
        // true when it names a lock on the resource (RFC 4918
        // §10.4.8), also on an otherwise unlocked one.
        let mut on_path = v.iter().filter(|l| covers(l, p));
        if on_path.clone().any(|l| submitted_tokens.contains(&l.token)) {
            return Ok(());
        }
        let conflict = on_path.next().cloned();
        return Err(conflict.unwrap_or_else(|| no_such_lock(path)));
    }
    let submitted = |l: &DavLock| {
        submitted_tokens.contains(&l.token)
            && (l.principal.is_none() || l.principal.as_deref() == principal)
    };
    // Shared locks on one resource: holding one of them is enough
    // (RFC 4918 §6.1); per locked resource, the first unheld one.
    let mut shared: HashMap<String, Option<&DavLock>> = HashMap::new();
    for l in v.iter() {
        let lp = key(&l.path);
        let applies = covers(l, p) || (deep && within(&lp, p));
        if !applies {
            continue;
        }
        if l.shared {
            let e = shared.entry(lp).or_insert(Some(l));
            if submitted(l) {
                *e = None;
            }
        } else if !submitted(l) {
            return Err(l.clone());
        }
    }
    match shared.into_values().flatten().next() {
        Some(l) => Err(l.clone()),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> DavPath {
        DavPath::new(s).expect("path")
    }

    async fn lock(
        ls: &UserLocks,
        path: &str,
        shared: bool,
        deep: bool,
    ) -> Result<DavLock, DavLock> {
        ls.lock(&p(path), Some("u"), None, None, shared, deep).await
    }

    #[tokio::test]
    async fn if_tokens_shared_locks_and_lock_token_holding() {
        let store = MemLockSystem::new();
        let ls = store.for_user("ns".into(), "u".into());
        let other = store.for_user("ns".into(), "v".into());
        let t = |l: &DavLock| vec![l.token.clone()];
        // If-header evaluation (ignore_principal): a token matches only a
        // lock covering the path; on an unlocked path nothing matches.
        let a = lock(&ls, "/a/", false, true).await.expect("lock /a");
        ls.check(&p("/a/f"), None, true, false, &t(&a))
            .await
            .expect("token of the covering lock");
        assert!(ls.check(&p("/b"), None, true, false, &t(&a)).await.is_err());
        assert!(
            ls.check(&p("/a/f"), None, true, false, &["urn:uuid:x".into()])
                .await
                .is_err()
        );
        // Shared locks on one resource: one held token is enough, and it
        // must be the caller's.
        let s1 = lock(&ls, "/s", true, false).await.expect("shared 1");
        let s2 = other
            .lock(&p("/s"), Some("v"), None, None, true, false)
            .await
            .expect("shared 2");
        ls.check(&p("/s"), Some("u"), false, false, &t(&s1))
            .await
            .expect("own shared token");
        other
            .check(&p("/s"), Some("v"), false, false, &t(&s2))
            .await
            .expect("the other holder's own token");
        assert!(
            ls.check(&p("/s"), Some("u"), false, false, &t(&s2))
                .await
                .is_err(),
            "another principal's shared token"
        );
        assert!(
            ls.check(&p("/s"), Some("u"), false, false, &[])
                .await
                .is_err()
        );
        // holds: the caller's live lock covering the path.
        assert!(ls.holds(&p("/a/f"), &a.token).await);
        assert!(!ls.holds(&p("/b"), &a.token).await);
        assert!(!other.holds(&p("/a/f"), &a.token).await);
        assert!(!ls.holds(&p("/a/f"), "urn:uuid:x").await);
    }

    #[tokio::test]
    async fn conflict_rules() {
        let store = MemLockSystem::new();
        let ls = store.for_user("ns".into(), "u".into());
        let a = lock(&ls, "/a/", false, true).await.expect("lock /a");
        assert!(a.token.starts_with("urn:uuid:"));
        assert_eq!(a.timeout, Some(DEFAULT_TIMEOUT));
        // Below a deep exclusive lock: conflict.
        assert!(lock(&ls, "/a/b", false, false).await.is_err());
        // A sibling: fine; a deep lock on the parent of a locked member: conflict.
        lock(&ls, "/c", false, false).await.expect("lock /c");
        assert!(lock(&ls, "/", false, true).await.is_err());
        // Depth-0 lock on the parent does not cover members.
        let d = lock(&ls, "/d/", false, false).await.expect("lock /d");
        lock(&ls, "/d/x", false, false)
            .await
            .expect("member of depth-0 lock");
        // Shared + shared is fine; shared + exclusive is not.
        lock(&ls, "/s", true, false).await.expect("shared 1");
        lock(&ls, "/s", true, false).await.expect("shared 2");
        assert!(lock(&ls, "/s", false, false).await.is_err());
        // check: token needed below a deep lock, not beside it.
        assert!(
            ls.check(&p("/a/b"), Some("u"), false, false, &[])
                .await
                .is_err()
        );
        ls.check(
            &p("/a/b"),
            Some("u"),
            false,
            false,
            std::slice::from_ref(&a.token),
        )
        .await
        .expect("token accepted");
        assert!(
            ls.check(
                &p("/a/b"),
                Some("other"),
                false,
                false,
                std::slice::from_ref(&a.token)
            )
            .await
            .is_err(),
            "another principal's token"
        );
        ls.check(&p("/zzz"), Some("u"), false, false, &[])
            .await
            .expect("unlocked");
        // discover: covering locks only.
        assert_eq!(ls.discover(&p("/a/b/c")).await.len(), 1);
        assert_eq!(ls.discover(&p("/d/x")).await.len(), 1);
        // Other namespaces are independent.
        let other = store.for_user("ns2".into(), "v".into());
        lock(&other, "/a/", false, true).await.expect("other ns");
        // unlock: owner only.
        let foreign = store.for_user("ns".into(), "intruder".into());
        assert!(foreign.unlock(&p("/d/"), &d.token).await.is_err());
        ls.unlock(&p("/d/"), &d.token).await.expect("unlock");
        // delete removes the subtree's locks.
        ls.delete(&p("/a/")).await.expect("delete");
        assert!(ls.discover(&p("/a/b")).await.is_empty());
    }

    #[tokio::test]
    async fn timeouts_are_capped_and_expired_locks_vanish() {
        let store = MemLockSystem::new();
        let ls = store.for_user("ns".into(), "u".into());
        let l = ls
            .lock(
                &p("/x"),
                Some("u"),
                None,
                Some(Duration::from_secs(10 * 86400)),
                false,
                false,
            )
            .await
            .expect("lock");
        assert_eq!(l.timeout, Some(MAX_TIMEOUT));
        let r = ls
            .refresh(&p("/x"), &l.token, Some(Duration::from_secs(60)))
            .await
            .expect("refresh");
        assert_eq!(r.timeout, Some(Duration::from_secs(60)));
        // Let it expire (move its deadline into the past).
        {
            let mut t = store.table.lock().expect("table");
            for v in t.values_mut() {
                for l in v.iter_mut() {
                    l.timeout_at = Some(SystemTime::now() - Duration::from_secs(1));
                }
            }
        }
        assert_eq!(store.count(), 0);
        ls.lock(&p("/x"), Some("u"), None, None, false, false)
            .await
            .expect("relock after expiry");
        assert!(ls.refresh(&p("/x"), &l.token, None).await.is_err());
    }

    #[tokio::test]
    async fn persisted_locks_survive_a_new_store() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store: Arc<dyn LockStore> = Arc::new(JsonFileStore::in_dir(dir.path()).expect("store"));
        let limits = LockLimits {
            min: Duration::from_secs(30),
            max: Duration::from_secs(7200),
            default: Duration::from_secs(600),
        };
        let a = MemLockSystem::persistent(store.clone(), limits).expect("open");
        let mut path = DavPath::new("/dav/a%20b/c.txt").expect("path");
        path.set_prefix("/dav").expect("prefix");
        let owner = xmltree::Element::parse(
            &b"<D:owner xmlns:D=\"DAV:\"><D:href>mailto:me@example.com</D:href></D:owner>"[..],
        )
        .expect("owner");
        let ls = a
            .for_user("ns".into(), "u".into())
            .with_requested_timeout(Some(RequestedTimeout::Infinite));
        let l = ls
            .lock(&path, Some("u"), Some(&owner), None, false, true)
            .await
            .expect("lock");
        assert_eq!(l.timeout, Some(Duration::from_secs(7200)), "Infinite → cap");
        // An expired entry in the file is dropped on load.
        let mut all = store.load().expect("load");
        let mut dead = all[0].clone();
        dead.token = "urn:uuid:dead".into();
        dead.expires_ms = unix_ms(SystemTime::now()) - 1000;
        all.push(dead);
        store.save(&all).expect("save");
        drop(a);

        let b = MemLockSystem::persistent(store.clone(), limits).expect("reopen");
        assert_eq!(b.count(), 1);
        assert!(b.has_token("ns", &l.token).await.expect("has_token"));
        assert!(!b.has_token("ns", "urn:uuid:dead").await.expect("has_token"));
        assert_eq!(store.load().expect("load").len(), 1, "expired entry pruned");
        let ls = b.for_user("ns".into(), "u".into());
        let found = ls.discover(&path).await;
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].path.with_prefix().as_url_string(),
            "/dav/a%20b/c.txt"
        );
        assert_eq!(found[0].owner.as_deref(), Some(&owner));
        assert!(found[0].deep && !found[0].shared);
        // Timeout clamping: too small → min; refresh by another principal fails.
        let other = b.for_user("ns".into(), "intruder".into());
        assert!(other.refresh(&path, &l.token, None).await.is_err());
        let r = ls
            .clone()
            .with_requested_timeout(Some(RequestedTimeout::Seconds(5)))
            .refresh(&path, &l.token, None)
            .await
            .expect("refresh");
        assert_eq!(r.timeout, Some(Duration::from_secs(30)));
        ls.unlock(&path, &l.token).await.expect("unlock");
        let c = MemLockSystem::persistent(store, limits).expect("reopen");
        assert_eq!(c.count(), 0, "unlock persisted");
    }

    #[test]
    fn timeout_header_parses() {
        assert_eq!(
            RequestedTimeout::parse("Infinite, Second-4100000000"),
            Some(RequestedTimeout::Infinite)
        );
        assert_eq!(
            RequestedTimeout::parse("Second-120"),
            Some(RequestedTimeout::Seconds(120))
        );
        assert_eq!(RequestedTimeout::parse("bogus"), None);
    }
}
