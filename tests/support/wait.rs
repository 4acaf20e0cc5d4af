//! The one way tests wait for an effect that has no signal of its own
//! (a cancel the gateway sends from a spawned task, a file a crashed
//! upload leaves to be cleaned up): re-check a condition, bounded.

use std::time::Duration;

/// How long [`eventually`] keeps trying.
pub(crate) const LIMIT: Duration = Duration::from_secs(30);

/// Re-checks `cond` every 10 ms until it holds (true) or [`LIMIT`] passed
/// (false, after one last check).
pub(crate) async fn eventually(mut cond: impl AsyncFnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + LIMIT;
    while tokio::time::Instant::now() < deadline {
        if cond().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cond().await
}
