//! HTTP Basic authentication against the WebDAV accounts of configured users.
//!
//! Like Cloudreve's own `/dav`: the user name is the Cloudreve user's e-mail
//! (case-insensitive), the password is one of that user's WebDAV account
//! passwords, and the matching account decides the root and the options.
//!
//! Storage: per configured user, the accounts with an argon2 hash of their
//! password (plaintext is dropped right after a fetch) plus a keyed digest
//! (HMAC-SHA256 under a random per-process key) of e-mail and password. The
//! digest detects unchanged passwords on refresh (no re-hash), indexes the
//! account a request claims, and keys the cache of verified credentials, so
//! argon2 runs once per credential and cache TTL rather than per request, and
//! a wrong password never costs an argon2 run.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, RwLock, Weak,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use argon2::{
    Argon2, PasswordHash, PasswordHasher, PasswordVerifier,
    password_hash::{SaltString, rand_core::OsRng},
};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use http::HeaderValue;
use rand::RngCore;
use sha2::Sha256;

use super::accounts::{AccountSource, RawAccount};
use crate::config::Config;

/// The realm sent in every `WWW-Authenticate` challenge.
pub const REALM: &str = "cloudreve-dav";

/// The `WWW-Authenticate` value sent with every 401.
pub const CHALLENGE: &str = "Basic realm=\"cloudreve-dav\", charset=\"UTF-8\"";

/// The authenticated identity of a request: one WebDAV account of one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user's e-mail, spelled as configured.
    pub email: String,
    /// Cloudreve id of the WebDAV account that matched.
    pub account_id: String,
    /// Display name of the account.
    pub account_name: String,
    /// Root of the account, e.g. `cloudreve://my/Documents`.
    pub root_uri: String,
    /// Read-only account: every mutating method is refused.
    pub readonly: bool,
    /// Downloads are streamed through the gateway (Cloudreve's "proxy" option).
    pub proxy: bool,
    /// Uploads of names starting with `.` are refused.
    pub disable_sys_files: bool,
}

/// Tunables of the [`Authenticator`].
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// Interval of the periodic account refresh.
    pub refresh_interval: Duration,
    /// Lifetime of a verified credential in the cache (zero disables the cache).
    pub cache_ttl: Duration,
    /// Minimum time between two fetches of one user's accounts that are
    /// triggered by an unknown password.
    pub unknown_password_refetch: Duration,
    /// Argon2 parameters for the stored hashes.
    pub argon2_params: argon2::Params,
    /// Upper bound of concurrent argon2 computations (each takes
    /// `argon2_params.m_cost()` KiB of memory).
    pub max_concurrent_argon2: usize,
    /// Time one account fetch may take before it is abandoned.
    pub fetch_timeout: Duration,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            refresh_interval: Duration::from_secs(60),
            cache_ttl: Duration::from_secs(300),
            unknown_password_refetch: Duration::from_secs(5),
            argon2_params: argon2::Params::default(),
            max_concurrent_argon2: 4,
            fetch_timeout: Duration::from_secs(30),
        }
    }
}

impl AuthSettings {
    /// Settings taken from the gateway configuration.
    pub fn from_config(config: &Config) -> Self {
        Self {
            refresh_interval: config.account_refresh,
            cache_ttl: config.credential_cache_ttl,
            fetch_timeout: config.timeouts.upstream,
            ..Self::default()
        }
    }
}

/// Why a request is not authenticated. All variants answer 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header.
    #[error("no credentials")]
    Missing,
    /// An `Authorization` header that is not well-formed Basic.
    #[error("malformed credentials")]
    Malformed,
    /// Unknown user or wrong password.
    #[error("invalid credentials")]
    Invalid,
}

/// Counters for tests and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuthStats {
    /// Argon2 verifications run (cache misses with a matching account).
    pub argon2_verifications: u64,
    /// Argon2 hashes computed (new or changed account passwords).
    pub argon2_hashes: u64,
    /// Account fetches attempted (periodic and triggered).
    pub fetches: u64,
}

/// Parses an `Authorization: Basic ...` header into (user, password).
///
/// Returns `None` for any other scheme, bad base64, a missing colon or non-UTF-8.
pub fn parse_basic(value: &HeaderValue) -> Option<(String, String)> {
    let text = value.to_str().ok()?.trim();
    let (scheme, rest) = text.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let rest = rest.trim();
    if rest.len() > 4096 {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(rest))
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    if user.is_empty() {
        return None;
    }
    Some((user.to_owned(), password.to_owned()))
}

type Digest = [u8; 32];

struct StoredAccount {
    principal: Arc<Principal>,
    phc: Arc<str>,
    digest: Digest,
}

struct UserState {
    email: String,
    accounts: RwLock<Arc<Vec<Arc<StoredAccount>>>>,
    /// Single-flight gate for fetches; holds the time of the last attempt.
    fetch_gate: tokio::sync::Mutex<Option<Instant>>,
}

impl UserState {
    fn find(&self, digest: &Digest) -> Option<Arc<StoredAccount>> {
        let list = self.accounts.read().map(|g| g.clone()).unwrap_or_default();
        list.iter().find(|a| a.digest == *digest).cloned()
    }
}

struct CacheEntry {
    user: String,
    principal: Arc<Principal>,
    expires: Instant,
}

/// Verifies Basic credentials against the WebDAV accounts of configured users.
pub struct Authenticator {
    source: Arc<dyn AccountSource>,
    users: HashMap<String, UserState>,
    settings: AuthSettings,
    key: Digest,
    cache: Mutex<HashMap<Digest, CacheEntry>>,
    argon2_slots: tokio::sync::Semaphore,
    in_flight: Mutex<HashMap<Digest, Arc<tokio::sync::Mutex<()>>>>,
    verifications: AtomicU64,
    hashes: AtomicU64,
    fetches: AtomicU64,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// Creates an authenticator for the given user e-mails. No accounts are
    /// known until [`refresh_all`](Self::refresh_all) runs or an unknown
    /// password triggers a fetch.
    pub fn new(
        source: Arc<dyn AccountSource>,
        emails: impl IntoIterator<Item = String>,
        settings: AuthSettings,
    ) -> Self {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        let users = emails
            .into_iter()
            .map(|email| {
                (
                    email.to_lowercase(),
                    UserState {
                        email,
                        accounts: RwLock::new(Arc::new(Vec::new())),
                        fetch_gate: tokio::sync::Mutex::new(None),
                    },
                )
            })
            .collect();
        Self {
            source,
            users,
            key,
            cache: Mutex::new(HashMap::new()),
            argon2_slots: tokio::sync::Semaphore::new(settings.max_concurrent_argon2.max(1)),
            in_flight: Mutex::new(HashMap::new()),
            verifications: AtomicU64::new(0),
            hashes: AtomicU64::new(0),
            fetches: AtomicU64::new(0),
            settings,
        }
    }

    /// An authenticator for the users of `config`, with settings from it.
    pub fn from_config(source: Arc<dyn AccountSource>, config: &Config) -> Self {
        Self::new(
            source,
            config.users.iter().map(|u| u.email.clone()),
            AuthSettings::from_config(config),
        )
    }

    /// The settings in force.
    pub fn settings(&self) -> &AuthSettings {
        &self.settings
    }

    /// Counters (argon2 runs, fetches).
    pub fn stats(&self) -> AuthStats {
        AuthStats {
            argon2_verifications: self.verifications.load(Ordering::Relaxed),
            argon2_hashes: self.hashes.load(Ordering::Relaxed),
            fetches: self.fetches.load(Ordering::Relaxed),
        }
    }

    /// Authenticates an `Authorization` header value (or its absence).
    pub async fn authenticate_header(
        &self,
        value: Option<&HeaderValue>,
    ) -> Result<Arc<Principal>, AuthError> {
        let value = value.ok_or(AuthError::Missing)?;
        let (user, password) = parse_basic(value).ok_or(AuthError::Malformed)?;
        self.authenticate(&user, &password).await
    }

    /// Authenticates an e-mail (case-insensitive) and a WebDAV account password.
    pub async fn authenticate(
        &self,
        email: &str,
        password: &str,
    ) -> Result<Arc<Principal>, AuthError> {
        let lower = email.to_lowercase();
        let Some(user) = self.users.get(&lower) else {
            return Err(AuthError::Invalid);
        };
        let digest = self.digest(&lower, password);
        if let Some(p) = self.cached(&digest) {
            return Ok(p);
        }
        if let Some(account) = user.find(&digest) {
            return self.verify(user, &lower, account, password, digest).await;
        }
        // Unknown password: maybe an account created a moment ago.
        self.refresh_user(user, Some(self.settings.unknown_password_refetch))
            .await;
        match user.find(&digest) {
            Some(account) => self.verify(user, &lower, account, password, digest).await,
            None => Err(AuthError::Invalid),
        }
    }

    /// Fetches the accounts of every configured user now (concurrently).
    pub async fn refresh_all(&self) {
        let jobs = self.users.values().map(|u| self.refresh_user(u, None));
        futures::future::join_all(jobs).await;
    }

    /// Spawns the periodic refresh: one [`refresh_all`](Self::refresh_all)
    /// immediately, then one per `refresh_interval`. The task ends when the
    /// authenticator is dropped.
    pub fn spawn_refresh_loop(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let weak: Weak<Self> = Arc::downgrade(self);
        let period = self
            .settings
            .refresh_interval
            .max(Duration::from_millis(100));
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(period);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let Some(this) = weak.upgrade() else { break };
                this.refresh_all().await;
            }
        })
    }

    fn digest(&self, lower_email: &str, password: &str) -> Digest {
        // HMAC accepts keys of any length; this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(lower_email.as_bytes());
        mac.update(&[0]);
        mac.update(password.as_bytes());
        mac.finalize().into_bytes().into()
    }

    fn cached(&self, digest: &Digest) -> Option<Arc<Principal>> {
        let cache = self.cache.lock().ok()?;
        let entry = cache.get(digest)?;
        (entry.expires > Instant::now()).then(|| entry.principal.clone())
    }

    async fn verify(
        &self,
        user: &UserState,
        lower: &str,
        account: Arc<StoredAccount>,
        password: &str,
        digest: Digest,
    ) -> Result<Arc<Principal>, AuthError> {
        // Single flight per credential: concurrent first uses wait for one
        // verification and then hit the cache.
        let gate = match self.in_flight.lock() {
            Ok(mut map) => map.entry(digest).or_default().clone(),
            Err(_) => Arc::new(tokio::sync::Mutex::new(())),
        };
        let result = {
            let _turn = gate.lock().await;
            match self.cached(&digest) {
                Some(p) => Ok(p),
                None => {
                    self.verify_now(user, lower, account, password, digest)
                        .await
                }
            }
        };
        if let Ok(mut map) = self.in_flight.lock()
            && map.get(&digest).is_some_and(|g| Arc::ptr_eq(g, &gate))
            && Arc::strong_count(&gate) <= 2
        {
            map.remove(&digest);
        }
        result
    }

    async fn verify_now(
        &self,
        user: &UserState,
        lower: &str,
        account: Arc<StoredAccount>,
        password: &str,
        digest: Digest,
    ) -> Result<Arc<Principal>, AuthError> {
        let Ok(_slot) = self.argon2_slots.acquire().await else {
            return Err(AuthError::Invalid);
        };
        self.verifications.fetch_add(1, Ordering::Relaxed);
        let phc = account.phc.clone();
        let password = password.to_owned();
        let ok = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&phc).is_ok_and(|h| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
        })
        .await
        .unwrap_or(false);
        if !ok {
            return Err(AuthError::Invalid);
        }
        // Cache only if the account is still current (a refresh may have raced).
        let still_current = user
            .find(&digest)
            .is_some_and(|a| Arc::ptr_eq(&a, &account));
        if still_current
            && !self.settings.cache_ttl.is_zero()
            && let Ok(mut cache) = self.cache.lock()
        {
            let now = Instant::now();
            if cache.len() >= 4096 {
                cache.retain(|_, e| e.expires > now);
            }
            cache.insert(
                digest,
                CacheEntry {
                    user: lower.to_owned(),
                    principal: account.principal.clone(),
                    expires: now + self.settings.cache_ttl,
                },
            );
        }
        Ok(account.principal.clone())
    }

    /// Fetches one user's accounts, single-flight. With `min_gap`, skips the
    /// fetch if the last attempt is more recent than that.
    async fn refresh_user(&self, user: &UserState, min_gap: Option<Duration>) {
        let mut gate = user.fetch_gate.lock().await;
        if let (Some(gap), Some(last)) = (min_gap, *gate)
            && last.elapsed() < gap
        {
            return;
        }
        *gate = Some(Instant::now());
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let fetch = self.source.fetch_accounts(&user.email);
        match tokio::time::timeout(self.settings.fetch_timeout, fetch).await {
            Ok(Ok(raw)) => self.apply(user, raw).await,
            Ok(Err(e)) => {
                tracing::warn!(user = %user.email, error = %e, "cannot refresh WebDAV accounts; keeping the previous list");
            }
            Err(_) => {
                tracing::warn!(user = %user.email, "WebDAV account fetch timed out; keeping the previous list");
            }
        }
    }

    async fn apply(&self, user: &UserState, raw: Vec<RawAccount>) {
        let lower = user.email.to_lowercase();
        let old = user.accounts.read().map(|g| g.clone()).unwrap_or_default();
        let mut new = Vec::with_capacity(raw.len());
        for acc in raw {
            let digest = self.digest(&lower, &acc.password);
            let principal = Arc::new(Principal {
                email: user.email.clone(),
                account_id: acc.id.clone(),
                account_name: acc.name.clone(),
                root_uri: acc.uri.clone(),
                readonly: acc.readonly,
                proxy: acc.proxy,
                disable_sys_files: acc.disable_sys_files,
            });
            let reuse = old
                .iter()
                .find(|a| a.principal.account_id == acc.id && a.digest == digest);
            let stored = match reuse {
                Some(prev) if *prev.principal == *principal => prev.clone(),
                Some(prev) => Arc::new(StoredAccount {
                    principal,
                    phc: prev.phc.clone(),
                    digest,
                }),
                None => match self.hash(acc.password).await {
                    Some(phc) => Arc::new(StoredAccount {
                        principal,
                        phc,
                        digest,
                    }),
                    None => {
                        tracing::error!(account = %acc.id, "cannot hash a WebDAV account password; account skipped");
                        continue;
                    }
                },
            };
            new.push(stored);
        }
        let new = Arc::new(new);
        if let Ok(mut slot) = user.accounts.write() {
            *slot = new.clone();
        }
        if let Ok(mut cache) = self.cache.lock() {
            cache.retain(|digest, e| {
                e.user != lower
                    || new
                        .iter()
                        .any(|a| a.digest == *digest && Arc::ptr_eq(&a.principal, &e.principal))
            });
        }
    }

    async fn hash(&self, password: String) -> Option<Arc<str>> {
        let _slot = self.argon2_slots.acquire().await.ok()?;
        self.hashes.fetch_add(1, Ordering::Relaxed);
        let params = self.settings.argon2_params.clone();
        tokio::task::spawn_blocking(move || {
            let salt = SaltString::generate(&mut OsRng);
            let argon = Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
            argon
                .hash_password(password.as_bytes(), &salt)
                .ok()
                .map(|h| Arc::from(h.to_string()))
        })
        .await
        .ok()
        .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hv(s: &str) -> HeaderValue {
        HeaderValue::from_str(s).expect("header")
    }

    fn b64(s: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn basic_parsing() {
        assert_eq!(
            parse_basic(&hv(&format!("Basic {}", b64(b"a@x:p:q")))),
            Some(("a@x".into(), "p:q".into()))
        );
        assert_eq!(
            parse_basic(&hv(&format!("bAsIc  {}", b64(b"a@x:")))),
            Some(("a@x".into(), String::new()))
        );
        assert_eq!(parse_basic(&hv("Basic !!!")), None);
        assert_eq!(
            parse_basic(&hv(&format!("Basic {}", b64(b"nocolon")))),
            None
        );
        assert_eq!(parse_basic(&hv(&format!("Basic {}", b64(b":p")))), None);
        assert_eq!(
            parse_basic(&hv(&format!("Basic {}", b64(b"a\xff:p")))),
            None
        );
        assert_eq!(parse_basic(&hv("Bearer abc")), None);
        assert_eq!(parse_basic(&hv("Basic")), None);
    }
}
