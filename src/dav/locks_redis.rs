//! [`RedisLocks`]: the WebDAV lock table kept in Redis, shared by every
//! gateway instance that points at the same Redis and key prefix.
//!
//! Layout: one string per namespace (user space), `<prefix>lock:<sha256 of
//! the namespace>`, holding the JSON list of its [`StoredLock`]s, expiring
//! (`PEXPIREAT`) a minute after its last lock; the set `<prefix>lock-index`
//! names the namespaces that hold locks (for `locks list` and metrics).
//!
//! A change reads the value, applies the same conflict rules as the
//! in-memory table to it, and writes the result with a compare-and-set
//! script that succeeds only if the value is still the one read (else the
//! change is retried on the new value). So two instances racing for one
//! path cannot both win, and every instance sees every change at once:
//! nothing is cached between requests.

use std::time::SystemTime;

use dav_server::ls::DavLock;
use redis::AsyncCommands as _;

use super::locks::{StoredLock, alive, unix_ms};
use crate::redis_state::{RedisState, digest_hex};

/// Attempts of one change under contention before it is given up.
const CAS_ATTEMPTS: usize = 64;

/// Sets KEYS[1] to ARGV[2] (deletes it when ARGV[2] is empty) only if it
/// still holds ARGV[1] (empty = absent); keeps the index set KEYS[2] in
/// step. Returns 1 when written, 0 when the value had changed.
const CAS: &str = r"
local cur = redis.call('GET', KEYS[1])
if cur == false then cur = '' end
if cur ~= ARGV[1] then return 0 end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
  redis.call('SREM', KEYS[2], KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[2])
  redis.call('PEXPIREAT', KEYS[1], ARGV[3])
  redis.call('SADD', KEYS[2], KEYS[1])
end
return 1
";

/// Why the shared lock table could not be used.
#[derive(Debug, thiserror::Error)]
pub enum LockBackendError {
    /// Redis did not answer (or refused the command).
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// A value that is not a lock list.
    #[error("unreadable lock list in Redis key {0}")]
    Corrupt(String),
    /// Too many concurrent changes of one namespace.
    #[error("lock table of one user space changed {CAS_ATTEMPTS} times during one update")]
    Contention,
}

/// The lock table in Redis (clone = same table).
#[derive(Debug, Clone)]
pub struct RedisLocks {
    state: RedisState,
    cas: redis::Script,
}

struct Loaded {
    raw: String,
    ns: Option<String>,
    live: Vec<DavLock>,
    pruned: bool,
}

impl RedisLocks {
    /// The table under `state`'s prefix.
    pub fn new(state: RedisState) -> Self {
        Self {
            state,
            cas: redis::Script::new(CAS),
        }
    }

    /// The Redis key of namespace `ns`.
    pub fn ns_key(&self, ns: &str) -> String {
        self.state.key(&format!("lock:{}", digest_hex(ns)))
    }

    fn index_key(&self) -> String {
        self.state.key("lock-index")
    }

    async fn load(&self, key: &str) -> Result<Loaded, LockBackendError> {
        let mut c = self.state.conn();
        let raw: Option<String> = c.get(key).await?;
        let raw = raw.unwrap_or_default();
        if raw.is_empty() {
            return Ok(Loaded {
                raw,
                ns: None,
                live: Vec::new(),
                pruned: false,
            });
        }
        let stored: Vec<StoredLock> = serde_json::from_str(&raw).map_err(|e| {
            tracing::error!(key, error = %e, "unreadable lock list in Redis");
            LockBackendError::Corrupt(key.to_string())
        })?;
        let now = SystemTime::now();
        let ns = stored.first().map(|s| s.ns.clone());
        let total = stored.len();
        let live: Vec<DavLock> = stored
            .iter()
            .filter_map(StoredLock::to_lock)
            .filter(|l| alive(l, now))
            .collect();
        Ok(Loaded {
            pruned: live.len() != total,
            raw,
            ns,
            live,
        })
    }

    /// Runs `f` on the live locks of namespace `ns` and, when it reports a
    /// change (`mutates` and the second value true), stores the result
    /// atomically; retried from a fresh read when another instance changed
    /// the namespace meanwhile.
    pub async fn transact<R, F>(&self, ns: &str, mutates: bool, f: F) -> Result<R, LockBackendError>
    where
        F: FnMut(&mut Vec<DavLock>) -> (R, bool) + Send,
        R: Send,
    {
        let key = self.ns_key(ns);
        self.transact_key(&key, Some(ns), mutates, f).await
    }

    async fn transact_key<R, F>(
        &self,
        key: &str,
        ns: Option<&str>,
        mutates: bool,
        mut f: F,
    ) -> Result<R, LockBackendError>
    where
        F: FnMut(&mut Vec<DavLock>) -> (R, bool) + Send,
        R: Send,
    {
        for _ in 0..CAS_ATTEMPTS {
            let Loaded {
                raw,
                ns: stored_ns,
                mut live,
                pruned,
            } = self.load(key).await?;
            let (r, changed) = f(&mut live);
            if !mutates || !(changed || pruned) {
                return Ok(r);
            }
            let Some(ns) = ns.map(str::to_string).or(stored_ns) else {
                return Ok(r);
            };
            let new = if live.is_empty() {
                String::new()
            } else {
                let all: Vec<StoredLock> =
                    live.iter().map(|l| StoredLock::from_lock(&ns, l)).collect();
                serde_json::to_string(&all)
                    .map_err(|_| LockBackendError::Corrupt(key.to_string()))?
            };
            let until = live
                .iter()
                .filter_map(|l| l.timeout_at)
                .map(unix_ms)
                .max()
                .unwrap_or(0)
                .saturating_add(60_000)
                .min(i64::MAX as u64);
            let mut c = self.state.conn();
            let written: i64 = self
                .cas
                .key(key)
                .key(self.index_key())
                .arg(&raw)
                .arg(&new)
                .arg(until)
                .invoke_async(&mut c)
                .await?;
            if written == 1 {
                return Ok(r);
            }
        }
        tracing::warn!(key, "lock update given up under contention");
        Err(LockBackendError::Contention)
    }

    /// Every live lock of every namespace.
    pub async fn list(&self) -> Result<Vec<StoredLock>, LockBackendError> {
        let mut c = self.state.conn();
        let keys: Vec<String> = c.smembers(self.index_key()).await?;
        let now = unix_ms(SystemTime::now());
        let mut out = Vec::new();
        for k in keys {
            let raw: Option<String> = c.get(&k).await?;
            let Some(raw) = raw else {
                // Expired as a whole: drop it from the index.
                let _: i64 = c.srem(self.index_key(), &k).await?;
                continue;
            };
            match serde_json::from_str::<Vec<StoredLock>>(&raw) {
                Ok(v) => out.extend(v.into_iter().filter(|l| l.expires_ms > now)),
                Err(e) => tracing::error!(key = %k, error = %e, "unreadable lock list in Redis"),
            }
        }
        Ok(out)
    }

    /// Removes the lock with `token` from whichever namespace holds it.
    pub async fn remove_token(&self, token: &str) -> Result<bool, LockBackendError> {
        let mut c = self.state.conn();
        let keys: Vec<String> = c.smembers(self.index_key()).await?;
        for k in keys {
            let found = self
                .transact_key(&k, None, true, |v| {
                    let before = v.len();
                    v.retain(|l| l.token != token);
                    let found = v.len() != before;
                    (found, found)
                })
                .await?;
            if found {
                return Ok(true);
            }
        }
        Ok(false)
    }
}
