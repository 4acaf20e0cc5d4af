//! The HTTP front layer: request hygiene, authentication, read-only
//! enforcement, panic isolation, request ids and access logging, in front of
//! an inner [`DavService`] (dav-server over Cloudreve).
//!
//! Before hyper parses a request, [`fragment_filter::FragmentFilter`] makes request
//! targets with a raw `#` unparsable, so hyper refuses them with 400.
//!
//! Order per request: [`guard::check_syntax`] (400/414/431/502, before
//! authentication) → the failed-login throttle ([`throttle`], 429 with
//! `Retry-After`, for credentials not already verified) → authentication
//! (401; unauthenticated OPTIONS is answered here) → [`guard::check_policy`]
//! (403 for PROPFIND without finite Depth) → read-only check (403) → XML
//! body screening ([`xmlbody`]: 400 for DTDs and entities, 413 above 64 KiB)
//! → the inner service. Everything from the syntax check on runs inside a
//! panic guard: a panic in our code or a dependency (dav-server) answers 500
//! for that request only, and a panic while a response body streams aborts
//! that response only.
//!
//! Logging: the `Authorization` header, passwords and tokens are never
//! logged; the access log names the user (e-mail) and account id only.
//!
//! Wiring (in `main`):
//!
//! ```ignore
//! let config = cloudreve_dav::config::load(&args)?;
//! let auth = Arc::new(Authenticator::new(source, emails, config::auth_settings(&config)));
//! let _refresher = auth.spawn_refresh_loop(); // first refresh runs at once
//! let front = Arc::new(Front::new(config::front_settings(&config), auth, dav));
//! let tls = config.tls.as_ref().map(front::load_tls).transpose()?;
//! let listener = tokio::net::TcpListener::bind(config.listen).await?;
//! front::serve(listener, tls, front, front::shutdown_signal()).await?;
//! ```

pub mod accounts;
pub mod auth;
pub mod counting;
pub mod fragment_filter;
pub mod guard;
pub mod server;
pub mod throttle;
pub mod xmlbody;

use std::{
    panic::AssertUnwindSafe,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use futures::FutureExt as _;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::BodyExt as _;
use tracing::Instrument as _;

pub use accounts::{AccountSource, RawAccount, SourceError};
pub use auth::{AuthError, AuthSettings, AuthStats, Authenticator};
pub use guard::Rejection;
pub use server::{TlsReloader, load_tls, serve, shutdown_signal, spawn_sighup_reload};

use throttle::LoginThrottle;

pub use crate::shared::{BoxBody, DavService, Principal, empty_body, full_body};

/// Settings of the front layer and its server.
#[derive(Debug, Clone)]
pub struct FrontSettings {
    /// Time a client may take to send a request head.
    pub header_read_timeout: Duration,
    /// Time in-flight requests get after a shutdown signal.
    pub shutdown_grace: Duration,
    /// Time a TLS handshake may take.
    pub tls_handshake_timeout: Duration,
    /// Upper bound of the summed request header size (431 above).
    pub max_header_bytes: usize,
    /// Limits of the failed-login throttle.
    pub login_throttle: LoginThrottle,
    /// Redis for the throttle counters shared by several instances.
    pub shared: Option<crate::redis_state::RedisState>,
}

impl Default for FrontSettings {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(30),
            tls_handshake_timeout: Duration::from_secs(10),
            max_header_bytes: guard::DEFAULT_MAX_HEADER_BYTES,
            login_throttle: LoginThrottle::default(),
            shared: None,
        }
    }
}

/// Methods listed in `Allow` for read-only principals.
pub const READ_ONLY_ALLOW: &str = "OPTIONS, GET, HEAD, PROPFIND";

/// Methods listed in `Allow` by the unauthenticated OPTIONS answer.
pub const FULL_ALLOW: &str =
    "OPTIONS, GET, HEAD, PUT, DELETE, PROPFIND, PROPPATCH, MKCOL, COPY, MOVE, LOCK, UNLOCK";

/// The front layer. Cheap to share behind an `Arc`.
pub struct Front {
    settings: FrontSettings,
    auth: Arc<Authenticator>,
    inner: Arc<dyn DavService>,
    throttle: throttle::Throttle,
    id_prefix: u32,
    next_id: AtomicU64,
}

impl std::fmt::Debug for Front {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Front")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Front {
    /// Ties the settings, the authenticator and the inner service together.
    pub fn new(
        settings: FrontSettings,
        auth: Arc<Authenticator>,
        inner: Arc<dyn DavService>,
    ) -> Self {
        let mut t = throttle::Throttle::new(settings.login_throttle);
        if let Some(state) = &settings.shared {
            t = t.with_shared(state.clone());
        }
        Self {
            throttle: t,
            settings,
            auth,
            inner,
            id_prefix: rand::random(),
            next_id: AtomicU64::new(1),
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> &FrontSettings {
        &self.settings
    }

    /// The authenticator.
    pub fn authenticator(&self) -> &Arc<Authenticator> {
        &self.auth
    }

    /// Handles one request: never panics, always answers. Adds `X-Request-Id`
    /// and writes one access-log line (target `access`) when the response
    /// head is ready (streamed bodies may still be in flight).
    pub async fn handle(&self, req: Request<BoxBody>) -> Response<BoxBody> {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        let rid = format!("{:08x}-{n:x}", self.id_prefix);
        let span = tracing::info_span!("request", id = %rid);
        async move {
            let start = Instant::now();
            let metrics = crate::metrics::global();
            let req = req.map(|body| {
                counting::CountingBody::new(body, counting::Direction::In).boxed_unsync()
            });
            let method = req.method().clone();
            let path = req.uri().path().to_owned();
            let mut user: Option<Arc<Principal>> = None;
            let outcome = AssertUnwindSafe(self.dispatch(req, &mut user))
                .catch_unwind()
                .await;
            let resp = outcome.unwrap_or_else(|panic| {
                let msg = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "non-string panic payload".to_owned());
                tracing::error!(panic = %msg, "request handler panicked");
                simple(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n")
            });
            let mut resp = resp.map(|body| CatchPanicBody { inner: body }.boxed_unsync());
            if let Ok(v) = HeaderValue::from_str(&rid) {
                resp.headers_mut().insert("x-request-id", v);
            }
            tracing::info!(
                target: "access",
                method = %method,
                path = %path,
                status = resp.status().as_u16(),
                ms = start.elapsed().as_millis() as u64,
                user = user.as_ref().map(|p| p.email.as_str()).unwrap_or("-"),
                account = user.as_ref().map(|p| p.account_id.as_str()).unwrap_or("-"),
            );
            metrics.request(
                &method,
                resp.status().as_u16(),
                start.elapsed().as_secs_f64(),
            );
            resp.map(|body| {
                counting::CountingBody::new(body, counting::Direction::Out).boxed_unsync()
            })
        }
        .instrument(span)
        .await
    }

    async fn dispatch(
        &self,
        mut req: Request<BoxBody>,
        user: &mut Option<Arc<Principal>>,
    ) -> Response<BoxBody> {
        if req.method() == Method::OPTIONS && req.uri() == "*" {
            return options_response();
        }
        if let Err(rej) = guard::normalize(&mut req)
            .and_then(|()| guard::check_syntax(&req, self.settings.max_header_bytes))
        {
            tracing::warn!(reason = rej.reason(), uri = %req.uri(), method = %req.method(), "request rejected");
            return rejection_response(rej);
        }
        let is_options = req.method() == Method::OPTIONS;
        let peer = req
            .extensions()
            .get::<throttle::ClientAddr>()
            .map_or(std::net::IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
        let credentials = req
            .headers()
            .get(header::AUTHORIZATION)
            .map(auth::parse_basic);
        let result = match &credentials {
            None => Err(AuthError::Missing),
            Some(None) => {
                if let Err(wait) = self.throttle.check(peer, None).await {
                    return throttled(wait, is_options);
                }
                self.throttle.failed(peer, None).await;
                Err(AuthError::Malformed)
            }
            Some(Some((name, password))) => {
                if !self.auth.is_cached(name, password)
                    && let Err(wait) = self.throttle.check(peer, Some(name)).await
                {
                    tracing::warn!(%peer, user = ?name, "login throttled after repeated failures");
                    return throttled(wait, is_options);
                }
                let r = self.auth.authenticate(name, password).await;
                match &r {
                    Ok(_) => self.throttle.succeeded(peer, name).await,
                    Err(_) => self.throttle.failed(peer, Some(name)).await,
                }
                r
            }
        };
        drop(credentials);
        let principal = match result {
            Ok(p) => p,
            Err(_) if is_options => return options_response(),
            Err(e) => {
                crate::metrics::global().auth_failure(match e {
                    AuthError::Missing => "missing",
                    AuthError::Malformed => "malformed",
                    AuthError::Invalid => "invalid",
                });
                if e != AuthError::Missing {
                    tracing::info!(reason = %e, %peer, "authentication failed");
                }
                return unauthorized();
            }
        };
        *user = Some(principal.clone());
        if let Err(rej) = guard::check_policy(&req) {
            tracing::info!(reason = rej.reason(), "request refused");
            return rejection_response(rej);
        }
        if principal.readonly && guard::is_mutating(req.method()) {
            tracing::info!("mutating method refused for a read-only account");
            return simple(StatusCode::FORBIDDEN, "read-only account\n");
        }
        req.headers_mut().remove(header::AUTHORIZATION);
        let req = match xmlbody::screen(req).await {
            Ok(r) => r,
            Err(rej) => {
                tracing::warn!(reason = rej.reason(), "XML request body refused");
                return rejection_response(rej);
            }
        };
        let readonly = principal.readonly;
        let mut resp = self.inner.handle(req, principal).await;
        if is_options && readonly {
            let h = resp.headers_mut();
            h.insert(header::ALLOW, HeaderValue::from_static(READ_ONLY_ALLOW));
            h.insert("dav", HeaderValue::from_static("1"));
        }
        resp
    }
}

fn simple(status: StatusCode, text: &'static str) -> Response<BoxBody> {
    let mut resp = Response::new(full_body(text));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// Asks hyper to close the connection after this response.
fn closing(mut resp: Response<BoxBody>) -> Response<BoxBody> {
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

fn unauthorized() -> Response<BoxBody> {
    let mut resp = simple(StatusCode::UNAUTHORIZED, "authentication required\n");
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(auth::CHALLENGE),
    );
    resp
}

/// 429 with `Retry-After` (whole seconds, at least 1). An OPTIONS request
/// still gets the unauthenticated OPTIONS answer.
fn throttled(wait: Duration, is_options: bool) -> Response<BoxBody> {
    if is_options {
        return options_response();
    }
    let mut resp = simple(
        StatusCode::TOO_MANY_REQUESTS,
        "too many failed logins; try again later\n",
    );
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
    resp
}

/// A response body whose polling cannot unwind into the connection: a panic
/// while producing a frame (e.g. in dav-server's body stream) ends the body
/// with an error, so hyper aborts this response only.
struct CatchPanicBody {
    inner: BoxBody,
}

impl http_body::Body for CatchPanicBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        let inner = std::pin::Pin::new(&mut self.inner);
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.poll_frame(cx))) {
            Ok(p) => p,
            Err(_) => {
                tracing::error!("response body panicked; aborting the response");
                self.inner = empty_body();
                std::task::Poll::Ready(Some(Err(std::io::Error::other("response body panicked"))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

fn options_response() -> Response<BoxBody> {
    let mut resp = Response::new(empty_body());
    let h = resp.headers_mut();
    h.insert("dav", HeaderValue::from_static("1, 2"));
    h.insert("ms-author-via", HeaderValue::from_static("DAV"));
    h.insert(header::ALLOW, HeaderValue::from_static(FULL_ALLOW));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    resp
}

const FINITE_DEPTH_BODY: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:error xmlns:D=\"DAV:\"><D:propfind-finite-depth/></D:error>\n";

fn rejection_response(rej: Rejection) -> Response<BoxBody> {
    match rej {
        Rejection::FiniteDepth => {
            let mut resp = Response::new(full_body(FINITE_DEPTH_BODY));
            *resp.status_mut() = StatusCode::FORBIDDEN;
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/xml; charset=utf-8"),
            );
            resp
        }
        Rejection::BadRequest(_) => closing(simple(StatusCode::BAD_REQUEST, "bad request\n")),
        Rejection::HeadersTooLarge => closing(simple(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "request headers too large\n",
        )),
        Rejection::UriTooLong => closing(simple(
            StatusCode::URI_TOO_LONG,
            "request path too long or too deep\n",
        )),
        Rejection::PayloadTooLarge => closing(simple(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body too large\n",
        )),
        Rejection::Forbidden(_) => simple(StatusCode::FORBIDDEN, "forbidden\n"),
        Rejection::ForeignDestination => simple(
            StatusCode::BAD_GATEWAY,
            "destination is on another server\n",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body that yields one frame, then panics when polled again.
    struct PanicsAfterOne {
        sent: bool,
    }

    impl http_body::Body for PanicsAfterOne {
        type Data = Bytes;
        type Error = std::io::Error;

        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
            if self.sent {
                panic!("body stream failed");
            }
            self.sent = true;
            std::task::Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::from_static(
                b"first",
            )))))
        }
    }

    #[tokio::test]
    async fn a_panic_while_the_body_streams_ends_that_body_with_an_error() {
        let mut body = CatchPanicBody {
            inner: PanicsAfterOne { sent: false }.boxed_unsync(),
        };
        let first = body.frame().await.expect("a frame").expect("data");
        assert_eq!(
            first.into_data().expect("data"),
            Bytes::from_static(b"first")
        );
        let err = body
            .frame()
            .await
            .expect("the panic is reported")
            .expect_err("as an error, so hyper aborts the response");
        assert_eq!(err.to_string(), "response body panicked");
        assert!(body.frame().await.is_none(), "and the body then ends");
        assert!(http_body::Body::is_end_stream(&body));
    }
}
