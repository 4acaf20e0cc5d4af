//! The hierarchical in-memory lock table (docs/UPSTREAM.md §4.9).

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// The application that owns a lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LockApp {
    /// Application type, e.g. `upload`, `dav`, `viewer`, `create`.
    pub kind: String,
    /// DAV owner XML, if any.
    pub inner_xml: Option<String>,
    /// Viewer id, if any.
    pub viewer_id: Option<String>,
}

impl LockApp {
    /// An application with only a type.
    pub(super) fn of(kind: &str) -> Self {
        Self {
            kind: kind.to_string(),
            inner_xml: None,
            viewer_id: None,
        }
    }
}

/// One lock in the table.
#[derive(Debug, Clone)]
pub(super) struct Lock {
    /// The lock token (UUID).
    pub token: String,
    /// Owner user id (namespace part 1).
    pub owner: u64,
    /// File system (namespace part 2).
    pub fs: String,
    /// Decoded owner-view path, e.g. `/a/b`.
    pub path: String,
    /// Whether the lock covers only the path itself.
    pub zero_depth: bool,
    /// 0 file, 1 folder.
    pub file_type: u8,
    /// Expiry; `None` means infinite.
    pub expires: Option<DateTime<Utc>>,
    /// Owning application.
    pub app: LockApp,
    /// Whether an in-flight request currently holds it.
    pub held: bool,
}

/// A lock request.
#[derive(Debug, Clone)]
pub(super) struct LockReq {
    /// Owner user id.
    pub owner: u64,
    /// File system.
    pub fs: String,
    /// Decoded path.
    pub path: String,
    /// Zero depth?
    pub zero_depth: bool,
    /// Object type (0 file, 1 folder).
    pub file_type: u8,
    /// Application.
    pub app: LockApp,
    /// Expiry (`None` = infinite).
    pub expires: Option<DateTime<Utc>>,
}

/// The lock table.
#[derive(Debug, Default)]
pub(super) struct LockTable {
    locks: Vec<Lock>,
}

/// Whether `a` is a strict ancestor of `b` (both absolute paths).
pub(super) fn is_ancestor(a: &str, b: &str) -> bool {
    if a == b {
        return false;
    }
    if a == "/" {
        return true;
    }
    b.len() > a.len() && b.starts_with(a) && b.as_bytes()[a.len()] == b'/'
}

impl LockTable {
    /// Drops expired locks.
    pub(super) fn collect(&mut self, now: DateTime<Utc>) {
        self.locks.retain(|l| l.expires.is_none_or(|e| e > now));
    }

    /// Locks that would conflict with a new lock.
    pub(super) fn conflicts(
        &self,
        owner: u64,
        fs: &str,
        path: &str,
        zero_depth: bool,
    ) -> Vec<&Lock> {
        self.locks
            .iter()
            .filter(|l| l.owner == owner && l.fs == fs)
            .filter(|l| {
                l.path == path
                    || (!l.zero_depth && is_ancestor(&l.path, path))
                    || (!zero_depth && is_ancestor(path, &l.path))
            })
            .collect()
    }

    /// Acquires all requests in order; on the first conflict, releases what was taken
    /// and returns the conflicting locks.
    pub(super) fn acquire_all(&mut self, reqs: &[LockReq]) -> Result<Vec<String>, Vec<Lock>> {
        let mut taken: Vec<String> = Vec::new();
        for r in reqs {
            let c: Vec<Lock> = self
                .conflicts(r.owner, &r.fs, &r.path, r.zero_depth)
                .into_iter()
                .cloned()
                .collect();
            if !c.is_empty() {
                for t in &taken {
                    self.remove(t);
                }
                return Err(c);
            }
            let token = uuid::Uuid::new_v4().to_string();
            self.locks.push(Lock {
                token: token.clone(),
                owner: r.owner,
                fs: r.fs.clone(),
                path: r.path.clone(),
                zero_depth: r.zero_depth,
                file_type: r.file_type,
                expires: r.expires,
                app: r.app.clone(),
                held: false,
            });
            taken.push(token);
        }
        Ok(taken)
    }

    /// Inserts a lock without conflict checks (test hook); returns its token.
    pub(super) fn insert_forced(&mut self, r: &LockReq) -> String {
        let token = uuid::Uuid::new_v4().to_string();
        self.locks.push(Lock {
            token: token.clone(),
            owner: r.owner,
            fs: r.fs.clone(),
            path: r.path.clone(),
            zero_depth: r.zero_depth,
            file_type: r.file_type,
            expires: r.expires,
            app: r.app.clone(),
            held: false,
        });
        token
    }

    /// Removes a lock by token; returns whether it existed.
    pub(super) fn remove(&mut self, token: &str) -> bool {
        let before = self.locks.len();
        self.locks.retain(|l| l.token != token);
        before != self.locks.len()
    }

    /// Releases many tokens (ignoring unknown ones).
    pub(super) fn release(&mut self, tokens: &[String]) {
        self.locks.retain(|l| !tokens.contains(&l.token));
    }

    /// All-or-nothing unlock; fails if any token is unknown or held.
    pub(super) fn unlock(&mut self, tokens: &[String]) -> bool {
        let ok = tokens
            .iter()
            .all(|t| self.locks.iter().any(|l| &l.token == t && !l.held));
        if ok {
            self.release(tokens);
        }
        ok
    }

    /// Whether a token is present.
    pub(super) fn contains(&self, token: &str) -> bool {
        self.locks.iter().any(|l| l.token == token)
    }

    /// Marks a token held or not.
    #[cfg(test)]
    pub(super) fn set_held(&mut self, token: &str, held: bool) {
        for l in &mut self.locks {
            if l.token == token {
                l.held = held;
            }
        }
    }

    /// Drops every lock (restart).
    pub(super) fn clear(&mut self) {
        self.locks.clear();
    }

    /// Locks owned by a user.
    pub(super) fn of_owner(&self, owner: u64) -> Vec<Lock> {
        self.locks
            .iter()
            .filter(|l| l.owner == owner)
            .cloned()
            .collect()
    }
}

/// The `data` payload of a 40073 conflict (owner view).
pub(super) fn conflict_payload(conflicts: &[Lock]) -> Value {
    Value::Array(
        conflicts
            .iter()
            .map(|l| {
                let mut app = json!({ "type": l.app.kind });
                if let Some(x) = &l.app.inner_xml {
                    app["inner_xml"] = json!(x);
                }
                if let Some(v) = &l.app.viewer_id {
                    app["viewer_id"] = json!(v);
                }
                let fs = if l.fs == "trash" { "trash" } else { "my" };
                json!({
                    "path": super::uri::emit_path(fs, &l.path),
                    "token": l.token,
                    "owner": { "application": app },
                    "type": l.file_type,
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(path: &str, zero: bool) -> LockReq {
        LockReq {
            owner: 1,
            fs: "my".into(),
            path: path.into(),
            zero_depth: zero,
            file_type: 0,
            app: LockApp::of("upload"),
            expires: None,
        }
    }

    #[test]
    fn conflict_rules() {
        let mut t = LockTable::default();
        let a = t.acquire_all(&[req("/a/b", false)]).expect("first");
        // Rule 1: same path.
        assert!(t.acquire_all(&[req("/a/b", true)]).is_err());
        // Rule 2: infinite ancestor.
        assert!(t.acquire_all(&[req("/a/b/c", true)]).is_err());
        // Rule 3: infinite new lock with a locked descendant.
        assert!(t.acquire_all(&[req("/a", false)]).is_err());
        assert!(t.acquire_all(&[req("/", false)]).is_err());
        // Zero-depth on the ancestor is fine.
        let z = t.acquire_all(&[req("/a", true)]).expect("zero");
        // Siblings and prefix-alikes do not conflict.
        let s = t.acquire_all(&[req("/a/bb", false)]).expect("sibling");
        // Other owner does not conflict.
        let mut other = req("/a/b", false);
        other.owner = 2;
        assert!(t.acquire_all(&[other]).is_ok());
        // Zero-depth ancestor lock does not cover children.
        t.release(&a);
        assert!(t.acquire_all(&[req("/a/x", false)]).is_ok());
        // But an infinite lock on /a conflicts with the zero-depth one on /a.
        assert!(t.acquire_all(&[req("/a", false)]).is_err());
        t.release(&z);
        t.release(&s);
        // Batches conflict with themselves and roll back.
        let mut t2 = LockTable::default();
        assert!(
            t2.acquire_all(&[req("/x", false), req("/x/y", false)])
                .is_err()
        );
        assert!(t2.of_owner(1).is_empty());
    }

    #[test]
    fn unlock_all_or_nothing() {
        let mut t = LockTable::default();
        let a = t.acquire_all(&[req("/a", false)]).expect("a");
        assert!(!t.unlock(&[a[0].clone(), "nope".into()]));
        assert!(t.contains(&a[0]));
        t.set_held(&a[0], true);
        assert!(!t.unlock(&a));
        t.set_held(&a[0], false);
        assert!(t.unlock(&a));
        assert!(!t.contains(&a[0]));
    }

    #[test]
    fn payload_shape() {
        let mut t = LockTable::default();
        t.acquire_all(&[req("/dir/a b.txt", false)]).expect("lock");
        let c = t.conflicts(1, "my", "/dir", false);
        let v = conflict_payload(&c.into_iter().cloned().collect::<Vec<_>>());
        assert_eq!(v[0]["path"], "cloudreve://my/dir/a%20b.txt");
        assert_eq!(v[0]["owner"]["application"]["type"], "upload");
        assert!(v[0]["token"].is_string());
    }
}
