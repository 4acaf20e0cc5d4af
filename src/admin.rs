//! The admin endpoints, on their own address (`admin_listen`), outside the
//! WebDAV namespace and without authentication (bind it to loopback or a
//! private network):
//!
//! - `GET /healthz`: 200 while the process serves;
//! - `GET /readyz`: 200 when the upstream answers `/site/ping`, else 503
//!   (the answer is cached for [`READY_CACHE`]);
//! - `GET /metrics`: [`crate::metrics`] in the Prometheus text format.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::cloudreve::Client;

/// How long a readiness answer is reused.
pub const READY_CACHE: Duration = Duration::from_secs(2);

/// Returns the number of live locks (read at each scrape); `None` when it
/// cannot be known now (shared lock table unreachable).
pub type LockCount =
    Arc<dyn Fn() -> futures::future::BoxFuture<'static, Option<usize>> + Send + Sync>;

struct AdminState {
    upstream: Client,
    locks: LockCount,
    ready: Mutex<Option<(Instant, Result<String, String>)>>,
}

/// Serves the admin endpoints on `listener` until the task is aborted.
pub fn spawn(listener: TcpListener, upstream: Client, locks: LockCount) -> JoinHandle<()> {
    let state = Arc::new(AdminState {
        upstream,
        locks,
        ready: Mutex::new(None),
    });
    let app = axum::Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state);
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "admin endpoints listening");
    }
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "admin server failed");
        }
    })
}

/// Binds `addr` and serves the admin endpoints; returns the bound address.
pub async fn start(
    addr: SocketAddr,
    upstream: Client,
    locks: LockCount,
) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on admin address {addr}: {e}"))?;
    let bound = listener.local_addr()?;
    Ok((bound, spawn(listener, upstream, locks)))
}

fn text(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

async fn healthz() -> Response {
    text(StatusCode::OK, "ok\n".into())
}

async fn readyz(State(state): State<Arc<AdminState>>) -> Response {
    let cached = state
        .ready
        .lock()
        .ok()
        .and_then(|g| g.clone())
        .filter(|(at, _)| at.elapsed() < READY_CACHE);
    let result = match cached {
        Some((_, r)) => r,
        None => {
            let r = match tokio::time::timeout(Duration::from_secs(5), state.upstream.ping()).await
            {
                Ok(Ok(version)) => Ok(version),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("no answer within 5 s".to_string()),
            };
            if let Err(e) = &r {
                tracing::warn!(error = %e, "readiness: upstream unreachable");
            }
            if let Ok(mut g) = state.ready.lock() {
                *g = Some((Instant::now(), r.clone()));
            }
            r
        }
    };
    match result {
        Ok(version) => text(StatusCode::OK, format!("ready: Cloudreve {version}\n")),
        Err(e) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: upstream unreachable: {e}\n"),
        ),
    }
}

async fn metrics(State(state): State<Arc<AdminState>>) -> Response {
    let m = crate::metrics::global();
    if let Some(n) = (state.locks)().await {
        m.set_active_locks(n);
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        m.encode(),
    )
        .into_response()
}
