//! Throttling of failed logins (brute-force protection).
//!
//! Policy (thresholds in [`LoginThrottle`], configurable): failures are
//! counted in fixed windows of `window` that start at a key's first failure.
//! A login attempt whose credentials are not already verified (cached) is
//! answered **429 with `Retry-After`** (seconds until the blocking window
//! ends), without checking the password, when
//! - its client address has `max_failures_per_address` failures (any user,
//!   and malformed credentials), or
//! - its (user, address) pair has `max_failures_per_user_address` failures, or
//! - its user has `max_failures_per_user` failures from all addresses
//!   together **and** this address has failed for this user at least once.
//!
//! So an attacker spread over many addresses gets at most one try per
//! address and window once the user's budget is spent, while the real owner,
//! who has not failed from their own address, is never slowed down by it. A
//! successful login clears the (user, address) count. Credentials that are
//! already verified (in the credential cache) are never throttled, so a
//! client that keeps a right password keeps working from a busy address.
//!
//! IPv6 clients are counted per /64 (one host typically owns a whole /64).
//! The client address is the TCP peer: `X-Forwarded-For` is not trusted.
//! Memory is bounded: each table holds at most [`MAX_ENTRIES`] keys; beyond
//! that, expired keys are dropped first, then the table is reset (logged).
//!
//! With Redis ([`Throttle::with_shared`]) the counts live there, so the
//! failures seen by all instances add up: each failure runs one script
//! that increments the address, pair and user counters
//! (`<prefix>throttle:a:…`, `…:p:…`, `…:u:…`; user names hashed) and sets a
//! counter's expiry to `window` when it is created; a check reads them in
//! one script. Failures are counted in memory as well, and a check falls
//! back to those per-instance counts while Redis cannot be reached
//! (logged).

use std::{
    collections::HashMap,
    hash::Hash,
    net::{IpAddr, Ipv6Addr},
    sync::Mutex,
    time::{Duration, Instant},
};

use crate::redis_state::{RedisState, digest_hex};

/// Reads (count, milliseconds left) of every key in KEYS.
const READ_COUNTS: &str = r"
local out = {}
for i = 1, #KEYS do
  out[#out + 1] = tonumber(redis.call('GET', KEYS[i]) or '0')
  out[#out + 1] = redis.call('PTTL', KEYS[i])
end
return out
";

/// Increments every key in KEYS; a new key expires after ARGV[1] ms.
const CHARGE: &str = r"
for i = 1, #KEYS do
  if redis.call('INCR', KEYS[i]) == 1 then
    redis.call('PEXPIRE', KEYS[i], ARGV[1])
  end
end
return 0
";

/// The counters in Redis.
#[derive(Debug)]
struct Shared {
    state: RedisState,
    read: redis::Script,
    charge: redis::Script,
}

impl Shared {
    /// Keys of the address, and with a user, the pair and the user.
    fn keys(&self, addr: IpAddr, user: Option<&str>) -> Vec<String> {
        let mut k = vec![self.state.key(&format!("throttle:a:{addr}"))];
        if let Some(u) = user {
            k.push(self.state.key(&format!(
                "throttle:p:{}",
                digest_hex(&format!("{u}\n{addr}"))
            )));
            k.push(self.state.key(&format!("throttle:u:{}", digest_hex(u))));
        }
        k
    }
}

/// Most keys per table.
pub const MAX_ENTRIES: usize = 100_000;

/// The address a request came from, put into the request's extensions by
/// the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub std::net::SocketAddr);

#[derive(Debug, Clone, Copy)]
struct Window {
    count: u32,
    ends: Instant,
}

#[derive(Debug)]
struct Table<K> {
    map: HashMap<K, Window>,
    name: &'static str,
}

impl<K: Hash + Eq> Table<K> {
    fn new(name: &'static str) -> Self {
        Self {
            map: HashMap::new(),
            name,
        }
    }

    /// The live window of `key`, if any.
    fn live(&self, key: &K, now: Instant) -> Option<Window> {
        self.map.get(key).copied().filter(|w| w.ends > now)
    }

    fn charge(&mut self, key: K, now: Instant, window: Duration) {
        if self.map.len() >= MAX_ENTRIES && !self.map.contains_key(&key) {
            self.map.retain(|_, w| w.ends > now);
            if self.map.len() >= MAX_ENTRIES {
                tracing::warn!(table = self.name, "login throttle table full; resetting it");
                self.map.clear();
            }
        }
        let w = self.map.entry(key).or_insert(Window {
            count: 0,
            ends: now + window,
        });
        if w.ends <= now {
            *w = Window {
                count: 0,
                ends: now + window,
            };
        }
        w.count = w.count.saturating_add(1);
    }
}

#[derive(Debug)]
struct Tables {
    by_addr: Table<IpAddr>,
    by_pair: Table<(String, IpAddr)>,
    by_user: Table<String>,
}

/// Counts failed logins and decides whether an attempt is throttled.
#[derive(Debug)]
pub struct Throttle {
    limits: LoginThrottle,
    tables: Mutex<Tables>,
    shared: Option<Shared>,
}

/// A live window as (failures, time left).
type Live = Option<(u32, Duration)>;

/// The policy of the module documentation on the live windows of an
/// attempt's address, (user, address) pair and user.
fn decide(l: &LoginThrottle, addr: Live, pair: Live, user: Live) -> Result<(), Duration> {
    if let Some((n, left)) = addr
        && n >= l.max_failures_per_address
    {
        return Err(left);
    }
    if let Some((n, left)) = pair {
        if n >= l.max_failures_per_user_address {
            return Err(left);
        }
        if let Some((u, _)) = user
            && u >= l.max_failures_per_user
        {
            return Err(left);
        }
    }
    Ok(())
}

/// The key an address is counted under: IPv4 (also IPv4-mapped IPv6) as is,
/// other IPv6 addresses by their /64 prefix.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// The key a user name is counted under (lower case, bounded length).
fn user_key(user: &str) -> String {
    let lower = user.to_lowercase();
    let mut end = lower.len().min(256);
    while !lower.is_char_boundary(end) {
        end -= 1;
    }
    lower[..end].to_owned()
}

impl Throttle {
    /// A throttle with these limits.
    pub fn new(limits: LoginThrottle) -> Self {
        Self {
            limits,
            tables: Mutex::new(Tables {
                by_addr: Table::new("address"),
                by_pair: Table::new("user and address"),
                by_user: Table::new("user"),
            }),
            shared: None,
        }
    }

    /// Counts in Redis as well, shared with the other instances using
    /// `state` (see the module documentation).
    pub fn with_shared(mut self, state: RedisState) -> Self {
        self.shared = Some(Shared {
            state,
            read: redis::Script::new(READ_COUNTS),
            charge: redis::Script::new(CHARGE),
        });
        self
    }

    /// The limits in force.
    pub fn limits(&self) -> &LoginThrottle {
        &self.limits
    }

    /// `Err(retry_after)` when an attempt from `ip` (for `user`, if the
    /// credentials named one) must be refused without checking it.
    pub async fn check(&self, ip: IpAddr, user: Option<&str>) -> Result<(), Duration> {
        if let Some(shared) = &self.shared {
            let addr = address_key(ip);
            let u = user.map(user_key);
            let mut inv = shared.read.prepare_invoke();
            for k in shared.keys(addr, u.as_deref()) {
                inv.key(k);
            }
            let mut c = shared.state.conn();
            match inv.invoke_async::<Vec<i64>>(&mut c).await {
                Ok(v) => {
                    let live = |i: usize| -> Live {
                        let n = *v.get(2 * i)?;
                        let left = *v.get(2 * i + 1)?;
                        (n > 0 && left > 0).then(|| {
                            (
                                u32::try_from(n).unwrap_or(u32::MAX),
                                Duration::from_millis(left as u64).max(Duration::from_secs(1)),
                            )
                        })
                    };
                    return decide(&self.limits, live(0), live(1), live(2));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "shared login throttle unavailable; using this instance's counts")
                }
            }
        }
        self.check_at(ip, user, Instant::now())
    }

    fn check_at(&self, ip: IpAddr, user: Option<&str>, now: Instant) -> Result<(), Duration> {
        let Ok(t) = self.tables.lock() else {
            return Ok(());
        };
        let addr = address_key(ip);
        let live = |w: Option<Window>| w.map(|w| (w.count, w.ends.saturating_duration_since(now)));
        let a = live(t.by_addr.live(&addr, now));
        let (p, u) = match user {
            Some(user) => {
                let u = user_key(user);
                (
                    live(t.by_pair.live(&(u.clone(), addr), now)),
                    live(t.by_user.live(&u, now)),
                )
            }
            None => (None, None),
        };
        decide(&self.limits, a, p, u)
    }

    /// Records a failed attempt (`user` is `None` for malformed credentials).
    pub async fn failed(&self, ip: IpAddr, user: Option<&str>) {
        self.failed_at(ip, user, Instant::now());
        if let Some(shared) = &self.shared {
            let u = user.map(user_key);
            let mut inv = shared.charge.prepare_invoke();
            for k in shared.keys(address_key(ip), u.as_deref()) {
                inv.key(k);
            }
            inv.arg(self.limits.window.as_millis().max(1) as u64);
            let mut c = shared.state.conn();
            if let Err(e) = inv.invoke_async::<i64>(&mut c).await {
                tracing::warn!(error = %e, "cannot count a failed login in Redis");
            }
        }
    }

    fn failed_at(&self, ip: IpAddr, user: Option<&str>, now: Instant) {
        let Ok(mut t) = self.tables.lock() else {
            return;
        };
        let addr = address_key(ip);
        let window = self.limits.window;
        t.by_addr.charge(addr, now, window);
        if let Some(user) = user {
            let u = user_key(user);
            t.by_pair.charge((u.clone(), addr), now, window);
            t.by_user.charge(u, now, window);
        }
    }

    /// Records a successful login: clears the (user, address) count.
    pub async fn succeeded(&self, ip: IpAddr, user: &str) {
        if let Ok(mut t) = self.tables.lock() {
            t.by_pair.map.remove(&(user_key(user), address_key(ip)));
        }
        if let Some(shared) = &self.shared {
            let keys = shared.keys(address_key(ip), Some(&user_key(user)));
            let mut c = shared.state.conn();
            let r: redis::RedisResult<i64> =
                redis::cmd("DEL").arg(&keys[1]).query_async(&mut c).await;
            if let Err(e) = r {
                tracing::warn!(error = %e, "cannot clear a login count in Redis");
            }
        }
    }
}

/// Limits of the failed-login throttle (see `front::throttle` for the policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginThrottle {
    /// Length of a counting window, from a key's first failure.
    pub window: Duration,
    /// Failures from one client address (any user) before it gets 429.
    pub max_failures_per_address: u32,
    /// Failures of one user from one address before that pair gets 429.
    pub max_failures_per_user_address: u32,
    /// Failures of one user from all addresses after which every address
    /// that failed for this user gets 429 (addresses that never failed
    /// for this user are not affected).
    pub max_failures_per_user: u32,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(600),
            max_failures_per_address: 50,
            max_failures_per_user_address: 10,
            max_failures_per_user: 100,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> LoginThrottle {
        LoginThrottle {
            window: Duration::from_secs(60),
            max_failures_per_address: 10,
            max_failures_per_user_address: 3,
            max_failures_per_user: 5,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn pair_limit_blocks_that_address_only_and_expires() {
        let t = Throttle::new(limits());
        let now = Instant::now();
        let a = ip("10.0.0.1");
        for _ in 0..3 {
            assert!(t.check_at(a, Some("u@x"), now).is_ok());
            t.failed_at(a, Some("U@x"), now);
        }
        let wait = t.check_at(a, Some("u@x"), now).expect_err("throttled");
        assert_eq!(wait, Duration::from_secs(60));
        assert!(t.check_at(ip("10.0.0.2"), Some("u@x"), now).is_ok());
        assert!(t.check_at(a, Some("other@x"), now).is_ok());
        let later = now + Duration::from_secs(61);
        assert!(t.check_at(a, Some("u@x"), later).is_ok());
    }

    #[tokio::test]
    async fn user_budget_slows_only_failing_addresses() {
        let t = Throttle::new(limits());
        let now = Instant::now();
        for i in 0..5 {
            t.failed_at(ip(&format!("10.0.1.{i}")), Some("u@x"), now);
        }
        // Every address that failed once is now throttled for this user...
        assert!(t.check_at(ip("10.0.1.0"), Some("u@x"), now).is_err());
        // ...the owner's address, which never failed, is not.
        assert!(t.check_at(ip("192.168.1.5"), Some("u@x"), now).is_ok());
        t.succeeded(ip("10.0.1.0"), "u@x").await;
        assert!(t.check_at(ip("10.0.1.0"), Some("u@x"), now).is_ok());
    }

    #[test]
    fn address_limit_covers_all_users_and_ipv6_prefixes() {
        let t = Throttle::new(limits());
        let now = Instant::now();
        for i in 0..10 {
            t.failed_at(
                ip(&format!("2001:db8::{i:x}")),
                Some(&format!("u{i}@x")),
                now,
            );
        }
        assert!(t.check_at(ip("2001:db8::ffff"), None, now).is_err());
        assert!(t.check_at(ip("2001:db8:0:1::1"), None, now).is_ok());
        assert_eq!(address_key(ip("::ffff:10.1.2.3")), ip("10.1.2.3"));
    }
}
