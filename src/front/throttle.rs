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

use std::{
    collections::HashMap,
    hash::Hash,
    net::{IpAddr, Ipv6Addr},
    sync::Mutex,
    time::{Duration, Instant},
};

use crate::config::LoginThrottle;

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
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &LoginThrottle {
        &self.limits
    }

    /// `Err(retry_after)` when an attempt from `ip` (for `user`, if the
    /// credentials named one) must be refused without checking it.
    pub fn check(&self, ip: IpAddr, user: Option<&str>) -> Result<(), Duration> {
        self.check_at(ip, user, Instant::now())
    }

    fn check_at(&self, ip: IpAddr, user: Option<&str>, now: Instant) -> Result<(), Duration> {
        let Ok(t) = self.tables.lock() else {
            return Ok(());
        };
        let addr = address_key(ip);
        let l = &self.limits;
        let wait = |w: Window| w.ends.saturating_duration_since(now);
        if let Some(w) = t.by_addr.live(&addr, now)
            && w.count >= l.max_failures_per_address
        {
            return Err(wait(w));
        }
        if let Some(user) = user {
            let u = user_key(user);
            if let Some(p) = t.by_pair.live(&(u.clone(), addr), now) {
                if p.count >= l.max_failures_per_user_address {
                    return Err(wait(p));
                }
                if let Some(w) = t.by_user.live(&u, now)
                    && w.count >= l.max_failures_per_user
                {
                    return Err(wait(p));
                }
            }
        }
        Ok(())
    }

    /// Records a failed attempt (`user` is `None` for malformed credentials).
    pub fn failed(&self, ip: IpAddr, user: Option<&str>) {
        self.failed_at(ip, user, Instant::now());
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
    pub fn succeeded(&self, ip: IpAddr, user: &str) {
        if let Ok(mut t) = self.tables.lock() {
            t.by_pair.map.remove(&(user_key(user), address_key(ip)));
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

    #[test]
    fn user_budget_slows_only_failing_addresses() {
        let t = Throttle::new(limits());
        let now = Instant::now();
        for i in 0..5 {
            t.failed_at(ip(&format!("10.0.1.{i}")), Some("u@x"), now);
        }
        // Every address that failed once is now throttled for this user...
        assert!(t.check_at(ip("10.0.1.0"), Some("u@x"), now).is_err());
        // ...the owner's address, which never failed, is not.
        assert!(t.check_at(ip("192.168.1.5"), Some("u@x"), now).is_ok());
        t.succeeded(ip("10.0.1.0"), "u@x");
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
