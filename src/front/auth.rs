//! HTTP Basic authentication against the WebDAV accounts of configured users.
//!
//! Like Cloudreve's own `/dav`: the user name is the Cloudreve user's e-mail
//! (case-insensitive), the password is one of that user's WebDAV account
//! passwords, and the matching account decides the root and the options.
//!
//! Storage rule: account passwords are kept only as argon2 PHC hashes. The
//! account table holds, per account, the id, name, root, options and that
//! hash, and no other function of the password; the plaintext returned by a
//! fetch is dropped as soon as it has been checked against (or hashed into)
//! the stored hash.
//!
//! To keep argon2 off the per-request path, a credential that argon2 has
//! verified is cached for `cache_ttl`, keyed by a keyed digest (HMAC-SHA256
//! under a random per-process key) of e-mail and password. The map is indexed
//! by one such digest and an entry is accepted only if a second digest
//! (under another key) matches the stored one in constant time
//! (`subtle`), so lookups leak nothing about the secret through timing;
//! argon2's own verification is constant-time. A credential not
//! in the cache is argon2-verified against the user's accounts (single-flight
//! per credential, bounded concurrency); if none matches, the user's accounts
//! are refetched (rate-limited) and the accounts that are new or whose
//! password changed are tried as well. So a right password costs argon2 once
//! per cache TTL, and a wrong one costs up to one argon2 run per account.
//!
//! With Redis ([`Authenticator::with_shared`]), several instances share one
//! view of the accounts: after each fetch an instance stores its list
//! (identity, options and the argon2 hash, never a password) under
//! `<prefix>accounts:<e-mail>` together with the fetch's start time, unless
//! a newer fetch is stored already, and announces a change on the channel
//! `<prefix>accounts`. Every instance listens there
//! ([`Authenticator::spawn_shared_listener`]) and adopts the stored list at
//! once, dropping the cached credentials of accounts that are gone or
//! changed: an account deleted upstream stops on all instances as soon as
//! one of them has seen it gone. Hashes are taken over unchanged, so
//! instances converge on the same hashes and a refresh that changes
//! nothing announces nothing. When Redis is unreachable each instance
//! keeps working on its own fetches (logged).

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
use crate::redis_state::RedisState;

/// The realm sent in every `WWW-Authenticate` challenge.
pub const REALM: &str = "cloudreve-dav";

/// The `WWW-Authenticate` value sent with every 401.
pub const CHALLENGE: &str = "Basic realm=\"cloudreve-dav\", charset=\"UTF-8\"";

pub use crate::shared::Principal;

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
    /// Argon2id parameters for the stored hashes. The default is the OWASP
    /// recommendation (m = 19 MiB, t = 2, p = 1); tests may lower it.
    pub argon2_params: argon2::Params,
    /// Upper bound of concurrent argon2 computations (hashing and verifying,
    /// on requests and on refresh; each takes `argon2_params.m_cost()` KiB of
    /// memory). This bounds the CPU and memory that wrong passwords can cost.
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
            // argon2 0.5 defaults: m = 19 MiB, t = 2, p = 1 (OWASP).
            argon2_params: argon2::Params::default(),
            max_concurrent_argon2: 4,
            fetch_timeout: Duration::from_secs(30),
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
    /// Argon2 verifications run for requests: one per account tried for a
    /// credential not in the cache, whether it matched or not.
    pub argon2_verifications: u64,
    /// Argon2 hashes computed (new or changed account passwords).
    pub argon2_hashes: u64,
    /// Argon2 verifications run on refresh, to tell whether a fetched
    /// password still matches the stored hash of its account.
    pub argon2_refresh_checks: u64,
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

/// One WebDAV account as kept in memory: identity, root and options, and the
/// argon2 PHC hash of its password. Nothing else derived from the password
/// may be stored here.
struct StoredAccount {
    principal: Arc<Principal>,
    phc: Arc<str>,
}

type AccountList = Arc<Vec<Arc<StoredAccount>>>;

struct UserState {
    email: String,
    accounts: RwLock<AccountList>,
    /// Single-flight gate for fetches; holds the time of the last fetch
    /// that an unknown password triggered.
    fetch_gate: tokio::sync::Mutex<Option<Instant>>,
}

impl UserState {
    fn snapshot(&self) -> AccountList {
        self.accounts.read().map(|g| g.clone()).unwrap_or_default()
    }

    /// Whether `account` (this very version of it) is in the current list.
    fn holds(&self, account: &Arc<StoredAccount>) -> bool {
        self.snapshot().iter().any(|a| Arc::ptr_eq(a, account))
    }
}

/// A credential that argon2 has verified, valid until `expires` or until a
/// refresh replaces or removes its account.
struct CacheEntry {
    /// Second keyed digest of the credential, compared in constant time.
    check: Digest,
    user: String,
    account: Arc<StoredAccount>,
    expires: Instant,
}

/// The shared outcome of one verification of a credential not in the cache.
type Flight = Arc<tokio::sync::OnceCell<Result<Arc<Principal>, AuthError>>>;

/// Membership in the flight of one credential. The last member out (or the
/// first one after the outcome is known) removes the flight from the map.
struct FlightGuard<'a> {
    map: &'a Mutex<HashMap<Digest, Flight>>,
    digest: Digest,
    flight: Option<Flight>,
}

impl<'a> FlightGuard<'a> {
    fn join(map: &'a Mutex<HashMap<Digest, Flight>>, digest: Digest) -> Self {
        let flight = match map.lock() {
            Ok(mut m) => m.entry(digest).or_default().clone(),
            Err(_) => Flight::default(),
        };
        Self {
            map,
            digest,
            flight: Some(flight),
        }
    }

    fn flight(&self) -> &Flight {
        self.flight
            .as_ref()
            .unwrap_or_else(|| unreachable!("taken only on drop"))
    }
}

impl Drop for FlightGuard<'_> {
    fn drop(&mut self) {
        let Ok(mut map) = self.map.lock() else { return };
        let Some(flight) = self.flight.take() else {
            return;
        };
        // Clones and drops of a flight happen under the map lock, so the
        // count is exact: 2 means the map's and this one.
        if map
            .get(&self.digest)
            .is_some_and(|f| Arc::ptr_eq(f, &flight))
            && (flight.initialized() || Arc::strong_count(&flight) <= 2)
        {
            map.remove(&self.digest);
        }
        drop(flight);
    }
}

#[derive(Default)]
struct Counters {
    verifications: AtomicU64,
    hashes: AtomicU64,
    refresh_checks: AtomicU64,
    fetches: AtomicU64,
}

/// Verifies Basic credentials against the WebDAV accounts of configured users.
pub struct Authenticator {
    source: Arc<dyn AccountSource>,
    users: HashMap<String, UserState>,
    settings: AuthSettings,
    /// Key of the credential digests that index the cache.
    key: Digest,
    /// Key of the credential digests that cache entries are checked against.
    check_key: Digest,
    cache: Mutex<HashMap<Digest, CacheEntry>>,
    /// Permits for argon2 runs; a permit moves into the blocking task, so a
    /// cancelled request cannot free its slot while argon2 still runs.
    argon2_slots: Arc<tokio::sync::Semaphore>,
    in_flight: Mutex<HashMap<Digest, Flight>>,
    counters: Arc<Counters>,
    shared: Option<SharedAccounts>,
}

/// One account as stored in Redis: no password, only its argon2 hash.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct SharedAccount {
    id: String,
    name: String,
    uri: String,
    readonly: bool,
    proxy: bool,
    disable_sys_files: bool,
    phc: String,
}

/// Stores HASH KEYS[1] {data = ARGV[1], at = ARGV[2]} unless its `at` is
/// newer (then -1); publishes ARGV[3] on channel KEYS[2] when `data`
/// changed (1), else 0.
const PUBLISH_ACCOUNTS: &str = r"
local at = tonumber(redis.call('HGET', KEYS[1], 'at') or '0')
if tonumber(ARGV[2]) < at then return -1 end
local cur = redis.call('HGET', KEYS[1], 'data')
redis.call('HSET', KEYS[1], 'data', ARGV[1], 'at', ARGV[2])
if cur ~= ARGV[1] then
  redis.call('PUBLISH', KEYS[2], ARGV[3])
  return 1
end
return 0
";

/// The account lists shared in Redis.
struct SharedAccounts {
    state: RedisState,
    publish: redis::Script,
}

impl SharedAccounts {
    fn key(&self, lower: &str) -> String {
        self.state.key(&format!("accounts:{lower}"))
    }

    fn channel(&self) -> String {
        self.state.key("accounts")
    }

    async fn load(&self, lower: &str) -> redis::RedisResult<Option<Vec<SharedAccount>>> {
        let mut c = self.state.conn();
        let data: Option<String> = redis::cmd("HGET")
            .arg(self.key(lower))
            .arg("data")
            .query_async(&mut c)
            .await?;
        Ok(data.and_then(|d| match serde_json::from_str(&d) {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::error!(user = lower, error = %e, "unreadable account list in Redis; ignored");
                None
            }
        }))
    }
}

fn unix_ms_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
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
        let mut check_key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut check_key);
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
            check_key,
            cache: Mutex::new(HashMap::new()),
            argon2_slots: Arc::new(tokio::sync::Semaphore::new(
                settings.max_concurrent_argon2.max(1),
            )),
            in_flight: Mutex::new(HashMap::new()),
            counters: Arc::default(),
            settings,
            shared: None,
        }
    }

    /// Shares the account lists with the other instances using `state`
    /// (see the module documentation); start the listener with
    /// [`spawn_shared_listener`](Self::spawn_shared_listener).
    pub fn with_shared(mut self, state: RedisState) -> Self {
        self.shared = Some(SharedAccounts {
            state,
            publish: redis::Script::new(PUBLISH_ACCOUNTS),
        });
        self
    }

    /// Listens for account changes announced by other instances and adopts
    /// them (after every (re)subscription it also adopts every stored list,
    /// to catch up on notices it missed). `None` without Redis. The task
    /// ends when the authenticator is dropped or the handle aborted.
    pub fn spawn_shared_listener(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        use futures::StreamExt as _;
        let shared = self.shared.as_ref()?;
        let client = shared.state.client().clone();
        let channel = shared.channel();
        let weak: Weak<Self> = Arc::downgrade(self);
        Some(tokio::spawn(async move {
            loop {
                match client.get_async_pubsub().await {
                    Ok(mut ps) => match ps.subscribe(&channel).await {
                        Ok(()) => {
                            let Some(this) = weak.upgrade() else { break };
                            this.adopt_all().await;
                            drop(this);
                            let mut messages = ps.on_message();
                            while let Some(msg) = messages.next().await {
                                let Some(this) = weak.upgrade() else { return };
                                let lower: String = msg.get_payload().unwrap_or_default();
                                this.adopt_shared(&lower).await;
                            }
                            tracing::warn!("Redis account notices interrupted; resubscribing");
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot subscribe to Redis account notices")
                        }
                    },
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot reach Redis for account notices")
                    }
                }
                if weak.strong_count() == 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }))
    }

    /// Adopts the stored lists of every configured user.
    async fn adopt_all(&self) {
        for lower in self.users.keys() {
            self.adopt_shared(lower).await;
        }
    }

    /// Adopts the list stored in Redis for the user `lower`, if any.
    async fn adopt_shared(&self, lower: &str) {
        let (Some(shared), Some(user)) = (&self.shared, self.users.get(lower)) else {
            return;
        };
        match shared.load(lower).await {
            Ok(Some(list)) => self.adopt(user, list),
            Ok(None) => {}
            Err(e) => tracing::warn!(user = lower, error = %e, "cannot read shared accounts"),
        }
    }

    /// Installs a list taken from Redis, keeping the accounts (and their
    /// cached credentials) that are the same in identity, options and hash.
    fn adopt(&self, user: &UserState, list: Vec<SharedAccount>) {
        let old = user.snapshot();
        let new: Vec<Arc<StoredAccount>> = list
            .into_iter()
            .map(|a| {
                let principal = Principal {
                    email: user.email.clone(),
                    account_id: a.id,
                    account_name: a.name,
                    root_uri: a.uri,
                    readonly: a.readonly,
                    proxy: a.proxy,
                    disable_sys_files: a.disable_sys_files,
                };
                match old
                    .iter()
                    .find(|o| *o.principal == principal && *o.phc == *a.phc)
                {
                    Some(o) => o.clone(),
                    None => Arc::new(StoredAccount {
                        principal: Arc::new(principal),
                        phc: Arc::from(a.phc),
                    }),
                }
            })
            .collect();
        let same =
            new.len() == old.len() && new.iter().zip(old.iter()).all(|(a, b)| Arc::ptr_eq(a, b));
        if !same {
            tracing::info!(user = %user.email, accounts = new.len(), "account list taken over from another instance");
            self.install(user, Arc::new(new));
        }
    }

    /// Stores `list` (fetched at `at`, ms since the epoch) for the other
    /// instances; adopts the stored one instead when it is newer.
    async fn publish(&self, user: &UserState, list: &[Arc<StoredAccount>], at: u64) {
        let Some(shared) = &self.shared else { return };
        let lower = user.email.to_lowercase();
        let body: Vec<SharedAccount> = list
            .iter()
            .map(|a| SharedAccount {
                id: a.principal.account_id.clone(),
                name: a.principal.account_name.clone(),
                uri: a.principal.root_uri.clone(),
                readonly: a.principal.readonly,
                proxy: a.principal.proxy,
                disable_sys_files: a.principal.disable_sys_files,
                phc: a.phc.to_string(),
            })
            .collect();
        let Ok(json) = serde_json::to_string(&body) else {
            return;
        };
        let mut c = shared.state.conn();
        let r: redis::RedisResult<i64> = shared
            .publish
            .key(shared.key(&lower))
            .key(shared.channel())
            .arg(json)
            .arg(at)
            .arg(&lower)
            .invoke_async(&mut c)
            .await;
        match r {
            Ok(-1) => self.adopt_shared(&lower).await,
            Ok(1) => tracing::debug!(user = %user.email, "account list shared"),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(user = %user.email, error = %e, "cannot share the account list in Redis")
            }
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> &AuthSettings {
        &self.settings
    }

    /// Counters (argon2 runs, fetches).
    pub fn stats(&self) -> AuthStats {
        let c = &self.counters;
        AuthStats {
            argon2_verifications: c.verifications.load(Ordering::Relaxed),
            argon2_hashes: c.hashes.load(Ordering::Relaxed),
            argon2_refresh_checks: c.refresh_checks.load(Ordering::Relaxed),
            fetches: c.fetches.load(Ordering::Relaxed),
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
        let digest = self.digest(&self.key, &lower, password);
        let check = self.digest(&self.check_key, &lower, password);
        if let Some(p) = self.cached(&digest, &check) {
            return Ok(p);
        }
        // Single flight per credential: concurrent first uses share one
        // verification (and its outcome, right or wrong).
        let guard = FlightGuard::join(&self.in_flight, digest);
        guard
            .flight()
            .get_or_init(|| async {
                // A flight that ended just before this one may have cached it.
                if let Some(p) = self.cached(&digest, &check) {
                    return Ok(p);
                }
                self.verify_uncached(user, &lower, password, (digest, check))
                    .await
            })
            .await
            .clone()
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

    /// Whether `email` and `password` are a credential verified and still
    /// cached (such credentials are never throttled).
    pub fn is_cached(&self, email: &str, password: &str) -> bool {
        let lower = email.to_lowercase();
        let digest = self.digest(&self.key, &lower, password);
        let check = self.digest(&self.check_key, &lower, password);
        self.cached(&digest, &check).is_some()
    }

    /// A keyed digest of a credential (cache index or check value). Never
    /// stored with an account.
    fn digest(&self, key: &Digest, lower_email: &str, password: &str) -> Digest {
        // HMAC accepts keys of any length; this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(lower_email.as_bytes());
        mac.update(&[0]);
        mac.update(password.as_bytes());
        mac.finalize().into_bytes().into()
    }

    fn cached(&self, digest: &Digest, check: &Digest) -> Option<Arc<Principal>> {
        use subtle::ConstantTimeEq as _;
        let cache = self.cache.lock().ok()?;
        let entry = cache.get(digest)?;
        let same: bool = entry.check.ct_eq(check).into();
        (same && entry.expires > Instant::now()).then(|| entry.account.principal.clone())
    }

    /// Verifies a credential that is not in the cache: argon2 against the
    /// user's accounts; on no match, a rate-limited refetch and argon2
    /// against the accounts that are new or whose password changed.
    ///
    /// Brute-force throttling happens before this, in the front layer
    /// (`front::throttle`, per client address and user), and only for
    /// credentials not in the cache; `max_concurrent_argon2` bounds the cost.
    async fn verify_uncached(
        &self,
        user: &UserState,
        lower: &str,
        password: &str,
        digest: (Digest, Digest),
    ) -> Result<Arc<Principal>, AuthError> {
        let tried = user.snapshot();
        if let Some(account) = self.verify_against(&tried, password).await {
            return Ok(self.remember(user, lower, digest, account));
        }
        // No match: maybe an account created or changed a moment ago.
        self.refresh_user(user, Some(self.settings.unknown_password_refetch))
            .await;
        let fresh: Vec<_> = user
            .snapshot()
            .iter()
            .filter(|a| !tried.iter().any(|t| t.phc == a.phc))
            .cloned()
            .collect();
        match self.verify_against(&fresh, password).await {
            Some(account) => Ok(self.remember(user, lower, digest, account)),
            None => Err(AuthError::Invalid),
        }
    }

    /// Argon2-verifies `password` against `accounts` in turn, in one argon2
    /// slot, and returns the first account that matches.
    async fn verify_against(
        &self,
        accounts: &[Arc<StoredAccount>],
        password: &str,
    ) -> Option<Arc<StoredAccount>> {
        if accounts.is_empty() {
            return None;
        }
        let slot = self.argon2_slots.clone().acquire_owned().await.ok()?;
        let hashes: Vec<Arc<str>> = accounts.iter().map(|a| a.phc.clone()).collect();
        let password = password.to_owned();
        let counters = self.counters.clone();
        let hit = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            hashes.iter().position(|phc| {
                counters.verifications.fetch_add(1, Ordering::Relaxed);
                argon2_matches(password.as_bytes(), phc)
            })
        })
        .await
        .ok()
        .flatten()?;
        accounts.get(hit).cloned()
    }

    /// Caches a verified credential, unless a refresh has replaced or removed
    /// its account meanwhile, and returns the account's principal.
    fn remember(
        &self,
        user: &UserState,
        lower: &str,
        (digest, check): (Digest, Digest),
        account: Arc<StoredAccount>,
    ) -> Arc<Principal> {
        if !self.settings.cache_ttl.is_zero()
            && let Ok(mut cache) = self.cache.lock()
            // Checked under the cache lock: `apply` publishes the new list
            // before it prunes the cache, so a stale entry either fails this
            // check or is pruned.
            && user.holds(&account)
        {
            let now = Instant::now();
            if cache.len() >= 4096 {
                cache.retain(|_, e| e.expires > now);
            }
            cache.insert(
                digest,
                CacheEntry {
                    check,
                    user: lower.to_owned(),
                    account: account.clone(),
                    expires: now + self.settings.cache_ttl,
                },
            );
        }
        account.principal.clone()
    }

    /// Fetches one user's accounts, single-flight. With `min_gap` (a fetch
    /// triggered by an unknown password), skips the fetch if the last
    /// triggered fetch is more recent than that. Periodic and start-up
    /// fetches (`None`) do not count against the gap: a password created a
    /// moment after one of them still gets its own fetch at once.
    async fn refresh_user(&self, user: &UserState, min_gap: Option<Duration>) {
        let mut gate = user.fetch_gate.lock().await;
        if let Some(gap) = min_gap {
            if let Some(last) = *gate
                && last.elapsed() < gap
            {
                return;
            }
            *gate = Some(Instant::now());
        }
        self.counters.fetches.fetch_add(1, Ordering::Relaxed);
        let started = unix_ms_now();
        let fetch = self.source.fetch_accounts(&user.email);
        match tokio::time::timeout(self.settings.fetch_timeout, fetch).await {
            Ok(Ok(raw)) => {
                let list = self.apply(user, raw).await;
                self.publish(user, &list, started).await;
            }
            Ok(Err(e)) => {
                tracing::warn!(user = %user.email, error = %e, "cannot refresh WebDAV accounts; keeping the previous list");
            }
            Err(_) => {
                tracing::warn!(user = %user.email, "WebDAV account fetch timed out; keeping the previous list");
            }
        }
    }

    /// Replaces a user's account list with a fetched one and drops the cache
    /// entries of accounts that are gone or changed (password or options).
    /// Returns the new list.
    async fn apply(&self, user: &UserState, raw: Vec<RawAccount>) -> AccountList {
        let old = user.snapshot();
        let mut new = Vec::with_capacity(raw.len());
        for acc in raw {
            let RawAccount {
                id,
                name,
                uri,
                password,
                readonly,
                proxy,
                disable_sys_files,
            } = acc;
            let prev = old.iter().find(|a| a.principal.account_id == id);
            let principal = Arc::new(Principal {
                email: user.email.clone(),
                account_id: id,
                account_name: name,
                root_uri: uri,
                readonly,
                proxy,
                disable_sys_files,
            });
            // The plaintext moves into the argon2 task and is dropped there.
            let Some(phc) = self.settle(prev.map(|p| p.phc.clone()), password).await else {
                tracing::error!(account = %principal.account_id, "cannot hash a WebDAV account password; account skipped");
                continue;
            };
            let stored = match prev {
                Some(p) if Arc::ptr_eq(&p.phc, &phc) && *p.principal == *principal => p.clone(),
                _ => Arc::new(StoredAccount { principal, phc }),
            };
            new.push(stored);
        }
        let new = Arc::new(new);
        self.install(user, new.clone());
        new
    }

    /// Publishes `new` as the user's list, then drops the cache entries of
    /// accounts not in it.
    fn install(&self, user: &UserState, new: AccountList) {
        let lower = user.email.to_lowercase();
        if let Ok(mut slot) = user.accounts.write() {
            *slot = new.clone();
        }
        if let Ok(mut cache) = self.cache.lock() {
            cache.retain(|_, e| e.user != lower || new.iter().any(|a| Arc::ptr_eq(a, &e.account)));
        }
    }

    /// The hash to store for a fetched password: `prev` itself if the
    /// password still matches it (argon2 verification), else a fresh hash.
    /// `None` if hashing failed.
    async fn settle(&self, prev: Option<Arc<str>>, password: String) -> Option<Arc<str>> {
        let slot = self.argon2_slots.clone().acquire_owned().await.ok()?;
        let params = self.settings.argon2_params.clone();
        let counters = self.counters.clone();
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            if let Some(phc) = prev {
                counters.refresh_checks.fetch_add(1, Ordering::Relaxed);
                if argon2_matches(password.as_bytes(), &phc) {
                    return Some(phc);
                }
            }
            counters.hashes.fetch_add(1, Ordering::Relaxed);
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

/// Whether `password` matches the argon2 PHC string `phc` (its own parameters).
fn argon2_matches(password: &[u8], phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| Argon2::default().verify_password(password, &h).is_ok())
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

    #[test]
    fn production_argon2_defaults_are_owasp() {
        let p = AuthSettings::default().argon2_params;
        assert_eq!((p.m_cost(), p.t_cost(), p.p_cost()), (19 * 1024, 2, 1));
    }

    /// A source whose fetches wait until released.
    struct GatedSource {
        accounts: Vec<RawAccount>,
        release: tokio::sync::Semaphore,
        fetches: AtomicU64,
    }

    #[async_trait::async_trait]
    impl AccountSource for GatedSource {
        async fn fetch_accounts(
            &self,
            _email: &str,
        ) -> Result<Vec<RawAccount>, super::super::accounts::SourceError> {
            self.fetches.fetch_add(1, Ordering::SeqCst);
            let _go = self.release.acquire().await;
            Ok(self.accounts.clone())
        }
    }

    fn raw(id: &str, password: &str) -> RawAccount {
        RawAccount {
            id: id.into(),
            name: id.into(),
            uri: format!("cloudreve://my/{id}"),
            password: password.into(),
            readonly: false,
            proxy: false,
            disable_sys_files: false,
        }
    }

    #[tokio::test]
    async fn burst_of_one_new_credential_shares_one_verification() {
        let source = Arc::new(GatedSource {
            accounts: vec![raw("a", "first-password"), raw("b", "second-password")],
            release: tokio::sync::Semaphore::new(0),
            fetches: AtomicU64::new(0),
        });
        let settings = AuthSettings {
            unknown_password_refetch: Duration::ZERO,
            argon2_params: argon2::Params::new(1024, 1, 1, None).expect("params"),
            ..AuthSettings::default()
        };
        let auth = Arc::new(Authenticator::new(
            source.clone(),
            ["u@x".to_owned()],
            settings,
        ));
        for password in ["wrong-password", "second-password"] {
            let before = auth.stats().argon2_verifications;
            let jobs: Vec<_> = (0..8)
                .map(|_| {
                    let auth = auth.clone();
                    tokio::spawn(async move { auth.authenticate("u@x", password).await })
                })
                .collect();
            // On this single-threaded runtime every job runs until it waits:
            // the first in the fetch, the others on its flight.
            tokio::time::sleep(Duration::from_millis(50)).await;
            source.release.add_permits(1);
            let mut outcomes = Vec::new();
            for j in jobs {
                outcomes.push(j.await.expect("join").map(|p| p.account_id.clone()));
            }
            let runs = auth.stats().argon2_verifications - before;
            match password {
                "wrong-password" => {
                    assert!(outcomes.iter().all(|o| *o == Err(AuthError::Invalid)));
                    assert_eq!(runs, 2, "one run per account, shared by the burst");
                }
                _ => {
                    assert!(outcomes.iter().all(|o| o.as_deref() == Ok("b")));
                    // The first fetch loaded the accounts; this flight tries
                    // both known ones and matches the second.
                    assert_eq!(runs, 2);
                }
            }
            assert!(auth.in_flight.lock().expect("lock").is_empty());
        }
        assert_eq!(auth.stats().argon2_hashes, 2);
        // The right one is cached now; the wrong one is not.
        auth.authenticate("u@x", "second-password")
            .await
            .expect("cached");
        assert_eq!(auth.stats().argon2_verifications, 4);
    }

    /// A source whose account list the test changes.
    struct ListSource {
        accounts: Mutex<Vec<RawAccount>>,
        fetches: AtomicU64,
    }

    #[async_trait::async_trait]
    impl AccountSource for ListSource {
        async fn fetch_accounts(
            &self,
            _email: &str,
        ) -> Result<Vec<RawAccount>, super::super::accounts::SourceError> {
            self.fetches.fetch_add(1, Ordering::SeqCst);
            Ok(self.accounts.lock().expect("lock").clone())
        }
    }

    #[tokio::test]
    async fn unknown_password_refetches_right_after_a_periodic_fetch_but_not_twice_in_the_gap() {
        let source = Arc::new(ListSource {
            accounts: Mutex::new(vec![raw("a", "first-password")]),
            fetches: AtomicU64::new(0),
        });
        let settings = AuthSettings {
            unknown_password_refetch: Duration::from_secs(3600),
            argon2_params: argon2::Params::new(1024, 1, 1, None).expect("params"),
            ..AuthSettings::default()
        };
        let auth = Authenticator::new(source.clone(), ["u@x".to_owned()], settings);
        auth.refresh_all().await;
        assert_eq!(source.fetches.load(Ordering::SeqCst), 1);

        // Created after the periodic fetch: its first use refetches.
        source
            .accounts
            .lock()
            .expect("lock")
            .push(raw("b", "second-password"));
        let p = auth.authenticate("u@x", "second-password").await;
        assert_eq!(p.map(|p| p.account_id.clone()), Ok("b".into()));
        assert_eq!(source.fetches.load(Ordering::SeqCst), 2);

        // Another periodic fetch does not reset the gap of triggered ones.
        auth.refresh_all().await;
        source
            .accounts
            .lock()
            .expect("lock")
            .push(raw("c", "third-password"));
        let p = auth.authenticate("u@x", "third-password").await;
        assert_eq!(p.map(|p| p.account_id.clone()), Err(AuthError::Invalid));
        assert_eq!(
            source.fetches.load(Ordering::SeqCst),
            3,
            "no refetch within the gap"
        );
    }
}
