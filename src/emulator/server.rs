//! The axum router, fault injection, the common response headers and the accept loop.

use super::caller::current_user;
use super::envelope::{ApiError, CID};
use super::faults::FaultKind;
use super::instance::Inner;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post, put};
use futures::StreamExt;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

/// Unknown routes. Cloudreve serves its web front end for every path
/// outside the ones its backend owns (`/api`, `/dav`, `/f/`, `/s/`,
/// `/manifest.json`): a wrong base URL gets an HTML page with 200, not a
/// 404. Inside them, gin's plain-text 404.
async fn not_found(uri: axum::http::Uri) -> Response {
    let p = uri.path();
    let backend = ["/api", "/dav", "/f/", "/s/"]
        .iter()
        .any(|pre| p.starts_with(pre))
        || p == "/manifest.json";
    if !backend {
        return (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            "<!doctype html><html><head><title>Cloudreve</title></head><body></body></html>",
        )
            .into_response();
    }
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain")],
        "404 page not found",
    )
        .into_response()
}

/// Marker: abort the connection instead of answering.
#[derive(Debug, Clone, Copy)]
pub(super) struct DropMarker;

async fn fault_layer(State(inner): State<Arc<Inner>>, req: Request, next: Next) -> Response {
    let kind = {
        let mut f = inner.faults.lock().unwrap_or_else(|p| p.into_inner());
        super::faults::take(&mut f, req.method(), req.uri().path())
    };
    match kind {
        None => next.run(req).await,
        Some(FaultKind::Latency(d)) => {
            tokio::time::sleep(d).await;
            next.run(req).await
        }
        Some(FaultKind::Hold(gate)) => {
            gate.pass().await;
            next.run(req).await
        }
        Some(FaultKind::HttpStatus(s)) => StatusCode::from_u16(s)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            .into_response(),
        Some(FaultKind::CodeMinusOne) => ApiError::new(-1, "").into_resp(),
        Some(FaultKind::DropConnection) => {
            let mut r = Response::new(Body::empty());
            r.extensions_mut().insert(DropMarker);
            r
        }
        Some(FaultKind::DropAfterBytes(n)) => {
            let resp = next.run(req).await;
            let (parts, body) = resp.into_parts();
            let limited = body.into_data_stream().scan(n, |left, chunk| {
                let item = match chunk {
                    Err(e) => Some(Err(std::io::Error::other(e.to_string()))),
                    Ok(_) if *left == 0 => None,
                    Ok(c) => {
                        let take = (*left).min(c.len() as u64);
                        *left -= take;
                        Some(Ok(c.slice(..take as usize)))
                    }
                };
                futures::future::ready(item)
            });
            // Give the server a moment to flush what was sent, then abort.
            let stream = limited.chain(futures::stream::once(async {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                Err::<Bytes, _>(std::io::Error::other("injected drop"))
            }));
            Response::from_parts(parts, Body::from_stream(stream))
        }
    }
}

async fn refresh_bearer_layer(
    State(inner): State<Arc<Inner>>,
    req: Request,
    next: Next,
) -> Response {
    // A refresh token used as the bearer fails on every matched route.
    if let Err(e) = current_user(&inner, req.headers())
        && e.code == 40020
    {
        return e.into_resp();
    }
    next.run(req).await
}

async fn common_layer(req: Request, next: Next) -> Response {
    let cid = req
        .headers()
        .get("x-cr-correlation-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| uuid::Uuid::parse_str(s).ok())
        .map(|u| u.to_string());
    let mut resp = CID.scope(cid, next.run(req)).await;
    set_cache(resp.headers_mut());
    resp
}

fn set_cache(h: &mut HeaderMap) {
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-cache"),
        );
    }
}

/// Builds the router.
pub(super) fn router(inner: Arc<Inner>) -> Router {
    use super::{content, dav_accounts as dav, files, metadata, site, upload};
    let api = Router::new()
        .route("/site/ping", get(site::ping))
        .route("/site/config/{section}", get(site::site_config))
        .route(
            "/session/token",
            post(super::auth::login).delete(super::auth::sign_out),
        )
        .route("/session/token/2fa", post(super::auth::login_2fa))
        .route("/session/prepare", get(super::auth::prepare))
        .route("/session/token/refresh", post(super::auth::refresh))
        .route("/user/me", get(site::me))
        .route("/user/capacity", get(site::capacity))
        .route("/file", get(files::list).delete(files::delete))
        .route("/file/info", get(files::info))
        .route("/file/create", post(files::create))
        .route("/file/rename", post(files::rename))
        .route("/file/move", post(files::move_copy))
        .route("/file/restore", post(files::restore))
        .route("/file/url", post(content::file_url))
        .route("/file/content", put(upload::put_content))
        .route(
            "/file/content/{entity}/{speed}/{name}",
            get(content::serve).head(content::serve),
        )
        .route("/file/metadata", patch(metadata::patch))
        .route("/file/events", get(super::feed::subscribe))
        .route("/file/lock", delete(metadata::unlock))
        .route("/file/upload", put(upload::create).delete(upload::cancel))
        .route("/file/upload/{sid}/{index}", post(upload::chunk))
        .route("/devices/dav", get(dav::list).put(dav::create))
        .route("/devices/dav/{id}", patch(dav::update).delete(dav::remove))
        .route_layer(middleware::from_fn_with_state(
            inner.clone(),
            refresh_bearer_layer,
        ));
    Router::new()
        .nest("/api/v4", api)
        .fallback(not_found)
        .method_not_allowed_fallback(not_found)
        .layer(axum::extract::DefaultBodyLimit::max(64 << 20))
        .layer(middleware::from_fn(common_layer))
        .layer(middleware::from_fn_with_state(inner.clone(), fault_layer))
        .with_state(inner)
}

/// Serves connections until `stop` flips to true; waits (bounded) for open connections.
pub(super) async fn serve(listener: TcpListener, app: Router, mut stop: watch::Receiver<bool>) {
    let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => break,
        };
        let Ok((stream, _)) = accepted else {
            // Back off briefly on accept errors (e.g. too many open files).
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            continue;
        };
        let app = app.clone();
        let mut stop = stop.clone();
        let alive = alive_tx.clone();
        tokio::spawn(async move {
            let _alive = alive;
            let svc =
                hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let app = app.clone();
                    async move {
                        use tower::ServiceExt;
                        let resp = match app.oneshot(req.map(Body::new)).await {
                            Ok(r) => r,
                            Err(never) => match never {},
                        };
                        if resp.extensions().get::<DropMarker>().is_some() {
                            Err(std::io::Error::other("injected connection drop"))
                        } else {
                            Ok(resp)
                        }
                    }
                });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => return,
                _ = stop.changed() => {}
            }
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), conn).await;
        });
    }
    drop(alive_tx);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(6), alive_rx.recv()).await;
}
