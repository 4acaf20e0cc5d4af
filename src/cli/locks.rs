//! `cloudreve-dav locks list|unlock`: the gateway's persisted WebDAV locks
//! (the state directory's lock table) and Cloudreve's own locks (force
//! unlock with a token shown in a 423 answer, docs/UPSTREAM.md §4.9).
//!
//! Without Redis, the lock table is read and written as a file: a running
//! gateway keeps its own copy in memory and rewrites the file on its next
//! lock change, so remove gateway locks while the gateway is stopped (or
//! restart it afterwards). With `redis` configured, the shared table in
//! Redis is used: changes take effect on every running instance at once.

use std::sync::Arc;

use anyhow::{Context as _, bail};

use crate::config::Config;
use crate::dav::locks::{JsonFileStore, LockLimits, MemLockSystem, RedisLocks};
use crate::dav::upstream_locks::upstream_token;

async fn open(config: &Config) -> anyhow::Result<MemLockSystem> {
    if let Some(r) = &config.redis {
        let state = crate::redis_state::RedisState::connect(r.url.expose(), &r.prefix).await?;
        let limits = LockLimits {
            min: config.lock_timeouts.0,
            max: config.lock_timeouts.1,
            ..LockLimits::default()
        };
        return Ok(MemLockSystem::shared(RedisLocks::new(state), limits));
    }
    let store = JsonFileStore::in_dir(&config.state_dir)
        .with_context(|| format!("state dir {}", config.state_dir.display()))?;
    let limits = LockLimits {
        min: config.lock_timeouts.0,
        max: config.lock_timeouts.1,
        ..LockLimits::default()
    };
    MemLockSystem::persistent(Arc::new(store), limits)
        .with_context(|| format!("lock table in {} unreadable", config.state_dir.display()))
}

/// One line per live gateway lock: token, user space, path, scope, depth,
/// seconds left, principal, owner XML.
pub async fn list(config: &Config) -> anyhow::Result<Vec<String>> {
    let ls = open(config).await?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    Ok(ls
        .list()
        .await
        .context("shared lock table")?
        .into_iter()
        .map(|l| {
            let left = l.expires_ms.saturating_sub(now) / 1000;
            format!(
                "{}\t{}\t{}\t{}\tdepth={}\t{}s\t{}\t{}",
                l.token,
                l.ns.replace('\n', " "),
                l.path,
                if l.shared { "shared" } else { "exclusive" },
                if l.deep { "infinity" } else { "0" },
                left,
                l.principal.unwrap_or_default(),
                l.owner_xml.unwrap_or_default()
            )
        })
        .collect())
}

/// Removes a gateway lock by token, or force-unlocks an upstream lock
/// (`opaquelocktoken:<uuid>` or a bare UUID) as `user` (default: the
/// first configured user). Returns what was done.
pub async fn unlock(config: &Config, token: &str, user: Option<&str>) -> anyhow::Result<String> {
    let token = token.trim().trim_matches(|c| c == '<' || c == '>');
    let ls = open(config).await?;
    if ls.remove_token(token).await.context("shared lock table")? {
        return Ok(format!("removed gateway lock {token}"));
    }
    let Some(up) = upstream_token(token) else {
        bail!("no gateway lock with token {token} (and it is not an upstream token)");
    };
    let email = match user {
        Some(u) => u.to_string(),
        None => config
            .users
            .first()
            .map(|u| u.email.clone())
            .context("no users configured")?,
    };
    let sessions = crate::gateway::sign_in_users(config).await?;
    let session = sessions
        .get(&email)
        .with_context(|| format!("user {email} is not configured"))?;
    session
        .force_unlock(std::slice::from_ref(&up))
        .await
        .with_context(|| format!("Cloudreve refused to unlock {up} (unknown or in use)"))?;
    Ok(format!("force-unlocked upstream lock {up} as {email}"))
}
