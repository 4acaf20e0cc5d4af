//! Shared state in Redis (`--redis URL`), so that several gateway instances
//! behind one load balancer act as one:
//!
//! * WebDAV locks: the lock table of each user space is one Redis value,
//!   changed only by an atomic compare-and-set script
//!   ([`crate::dav::locks_redis`]); Redis is the source of truth, no
//!   instance keeps a copy;
//! * WebDAV accounts: the account list each instance fetched last is
//!   published (argon2 hashes only, never a password) with a pub/sub
//!   notice; the others adopt it at once ([`crate::front::auth`]);
//! * the failed-login throttle: shared counters ([`crate::front::throttle`]).
//!
//! Every key starts with a configurable prefix, so two deployments can
//! share one Redis. Commands time out after [`RESPONSE_TIMEOUT`]; the
//! connection is re-established in the background after a failure.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use sha2::Digest as _;

/// Key prefix used when none is configured.
pub const DEFAULT_PREFIX: &str = "cloudreve-dav:";

/// Time one Redis command may take before it counts as failed.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// A connection to the shared Redis (clone = same connection).
#[derive(Clone)]
pub struct RedisState {
    client: redis::Client,
    conn: ConnectionManager,
    prefix: Arc<str>,
}

impl std::fmt::Debug for RedisState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password: never printed.
        f.debug_struct("RedisState")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// `url` without its password (for messages and logs).
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<redis URL>".into();
    };
    match rest.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://***@{host}"),
        None => url.to_string(),
    }
}

/// Lower-case hex SHA-256 of `s` (keeps keys short and free of odd bytes).
pub fn digest_hex(s: &str) -> String {
    sha2::Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl RedisState {
    /// Connects to `url` (`redis://[user:password@]host:port[/db]`) and
    /// checks the connection with a `PING`.
    pub async fn connect(url: &str, prefix: &str) -> anyhow::Result<Self> {
        let shown = redacted(url);
        let client =
            redis::Client::open(url).map_err(|e| anyhow::anyhow!("bad Redis URL {shown}: {e}"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(RESPONSE_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let conn = tokio::time::timeout(
            RESPONSE_TIMEOUT * 3,
            client.get_connection_manager_with_config(config),
        )
        .await
        .map_err(|_| anyhow::anyhow!("Redis {shown}: no connection within 6 s"))?
        .map_err(|e| anyhow::anyhow!("cannot connect to Redis {shown}: {e}"))?;
        let me = Self {
            client,
            conn,
            prefix: Arc::from(prefix),
        };
        me.ping()
            .await
            .map_err(|e| anyhow::anyhow!("Redis {shown} does not answer PING: {e}"))?;
        tracing::info!(redis = %shown, prefix, "shared state in Redis");
        Ok(me)
    }

    /// `prefix` + `rest`.
    pub fn key(&self, rest: &str) -> String {
        format!("{}{rest}", self.prefix)
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A handle on the shared, self-reconnecting connection.
    pub fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// The client (for dedicated connections such as pub/sub).
    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    /// `PING`.
    pub async fn ping(&self) -> redis::RedisResult<()> {
        let mut c = self.conn();
        let _: String = redis::cmd("PING").query_async(&mut c).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_password() {
        assert_eq!(
            redacted("redis://:s3cret@10.0.0.1:6379/2"),
            "redis://***@10.0.0.1:6379/2"
        );
        assert_eq!(redacted("redis://127.0.0.1:1"), "redis://127.0.0.1:1");
        assert_eq!(digest_hex("a").len(), 64);
    }
}
