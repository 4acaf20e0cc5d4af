//! [`MemLockSystem`]: an in-memory `DavLockSystem` with real expiry.
//!
//! * timeouts default to [`DEFAULT_TIMEOUT`] and are capped at
//!   [`MAX_TIMEOUT`]; expired locks are purged on every call;
//! * exclusive/shared scopes, depth 0/infinity conflict rules (a lock
//!   conflicts with locks on the same path, on ancestors with depth
//!   infinity and — for a depth-infinity lock — on descendants);
//! * tokens are `urn:uuid:` URIs; the `<owner>` XML is kept;
//! * namespaces: one table per user space (WebDAV paths of different users
//!   name different files); [`MemLockSystem::for_user`] gives the
//!   per-request view that also knows the principal, so UNLOCK is
//!   owner-checked (dav-server does not pass the principal to `unlock`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use dav_server::davpath::DavPath;
use dav_server::ls::{DavLock, DavLockSystem, LsFuture};
use futures::FutureExt as _;

/// Timeout of a lock requested without (a parsable) `Timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3600);
/// Upper bound of any lock timeout.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(86400);

type Table = HashMap<String, Vec<DavLock>>;

/// The shared lock store (clone = same store).
#[derive(Debug, Clone, Default)]
pub struct MemLockSystem {
    table: Arc<Mutex<Table>>,
}

impl MemLockSystem {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The view of namespace `ns` (e.g. user + account root) for a request
    /// made by `principal`.
    pub fn for_user(&self, ns: String, principal: String) -> UserLocks {
        UserLocks {
            table: self.table.clone(),
            ns,
            principal,
        }
    }

    /// Number of live locks in all namespaces (for tests and metrics).
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
}

/// A per-request view of one namespace.
#[derive(Debug, Clone)]
pub struct UserLocks {
    table: Arc<Mutex<Table>>,
    ns: String,
    principal: String,
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

fn alive(l: &DavLock, now: SystemTime) -> bool {
    l.timeout_at.is_none_or(|t| t > now)
}

/// `l` covers (applies to) `path`.
fn covers(l: &DavLock, path: &str) -> bool {
    let lp = key(&l.path);
    lp == path || (l.deep && within(path, &lp))
}

fn clamp(t: Option<Duration>) -> Duration {
    t.unwrap_or(DEFAULT_TIMEOUT)
        .min(MAX_TIMEOUT)
        .max(Duration::from_secs(1))
}

impl UserLocks {
    fn with<R>(&self, f: impl FnOnce(&mut Vec<DavLock>) -> R) -> R {
        let mut t = match self.table.lock() {
            Ok(t) => t,
            Err(p) => p.into_inner(),
        };
        let now = SystemTime::now();
        t.retain(|_, v| {
            v.retain(|l| alive(l, now));
            !v.is_empty()
        });
        let v = t.entry(self.ns.clone()).or_default();
        let r = f(v);
        if v.is_empty() {
            t.remove(&self.ns);
        }
        r
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
        let r = self.with(|v| {
            for l in v.iter() {
                let lp = key(&l.path);
                let overlaps = covers(l, &p) || (deep && within(&lp, &p));
                if overlaps && !(shared && l.shared) {
                    return Err(l.clone());
                }
            }
            let timeout = clamp(timeout);
            let lock = DavLock {
                token: format!("urn:uuid:{}", uuid::Uuid::new_v4()),
                path: Box::new(path.clone()),
                principal: principal
                    .map(str::to_string)
                    .or(Some(self.principal.clone())),
                owner: owner.map(|o| Box::new(o.clone())),
                timeout_at: Some(SystemTime::now() + timeout),
                timeout: Some(timeout),
                shared,
                deep,
            };
            v.push(lock.clone());
            Ok(lock)
        });
        futures::future::ready(r).boxed()
    }

    fn unlock(&'_ self, path: &DavPath, token: &str) -> LsFuture<'_, Result<(), ()>> {
        let p = key(path);
        let me = self.principal.clone();
        let r = self.with(|v| {
            let Some(i) = v.iter().position(|l| l.token == token) else {
                return Err(());
            };
            let l = &v[i];
            if !covers(l, &p) || l.principal.as_deref().is_some_and(|o| o != me) {
                return Err(());
            }
            v.remove(i);
            Ok(())
        });
        futures::future::ready(r).boxed()
    }

    fn refresh(
        &'_ self,
        path: &DavPath,
        token: &str,
        timeout: Option<Duration>,
    ) -> LsFuture<'_, Result<DavLock, ()>> {
        let p = key(path);
        let r = self.with(|v| {
            let l = v.iter_mut().find(|l| l.token == token).ok_or(())?;
            if !covers(l, &p) {
                return Err(());
            }
            let t = clamp(timeout);
            l.timeout = Some(t);
            l.timeout_at = Some(SystemTime::now() + t);
            Ok(l.clone())
        });
        futures::future::ready(r).boxed()
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
        let r = self.with(|v| {
            for l in v.iter() {
                let lp = key(&l.path);
                let applies = covers(l, &p) || (deep && within(&lp, &p));
                if !applies {
                    continue;
                }
                let has_token = submitted_tokens.contains(&l.token);
                let same_owner = ignore_principal
                    || l.principal.is_none()
                    || l.principal.as_deref() == principal;
                if !(has_token && same_owner) {
                    return Err(l.clone());
                }
            }
            Ok(())
        });
        futures::future::ready(r).boxed()
    }

    fn discover(&'_ self, path: &DavPath) -> LsFuture<'_, Vec<DavLock>> {
        let p = key(path);
        let r = self.with(|v| v.iter().filter(|l| covers(l, &p)).cloned().collect());
        futures::future::ready(r).boxed()
    }

    fn delete(&'_ self, path: &DavPath) -> LsFuture<'_, Result<(), ()>> {
        let p = key(path);
        self.with(|v| v.retain(|l| !within(&key(&l.path), &p)));
        futures::future::ready(Ok(())).boxed()
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
}
