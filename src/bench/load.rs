//! Closed-loop load: `clients` tasks each issue requests back to back for a
//! fixed duration; latencies, errors and the request rate are collected.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::stats::percentile;

/// Outcome of a load run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LoadResult {
    /// Requests completed (successes and errors).
    pub requests: u64,
    /// Failed requests.
    pub errors: u64,
    /// Wall time, seconds.
    pub secs: f64,
    /// Requests per second.
    pub rps: f64,
    /// Median latency, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile latency, milliseconds.
    pub p99_ms: f64,
    /// The first error seen, if any.
    pub first_error: Option<String>,
}

/// Runs `op(client, iteration)` from `clients` concurrent tasks for
/// `duration`.
pub async fn run<F, Fut>(clients: usize, duration: Duration, op: F) -> LoadResult
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let op = Arc::new(op);
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::with_capacity(clients);
    for c in 0..clients {
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0u64;
            let mut first = None;
            let mut i = 0u64;
            while Instant::now() < deadline {
                let t = Instant::now();
                let r = op(c, i).await;
                lat.push(t.elapsed());
                if let Err(e) = r {
                    errors += 1;
                    first.get_or_insert_with(|| format!("{e:#}"));
                }
                i += 1;
            }
            (lat, errors, first)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    for t in tasks {
        if let Ok((lat, e, f)) = t.await {
            all.extend(lat);
            errors += e;
            if first_error.is_none() {
                first_error = f;
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let requests = all.len() as u64;
    LoadResult {
        requests,
        errors,
        secs,
        rps: requests as f64 / secs,
        p50_ms: percentile(&mut all, 50.0).as_secs_f64() * 1e3,
        p99_ms: percentile(&mut all, 99.0).as_secs_f64() * 1e3,
        first_error,
    }
}
