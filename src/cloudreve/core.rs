//! The HTTP core: one pooled `reqwest::Client`, the base URL, envelope
//! decoding and the authenticated send-with-retry path.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::{Method, Response, StatusCode, header};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::{Error, ErrorCode, RawEnvelope, Result, decode_envelope};
use super::session::Session;
use super::types::{ExplorerConfig, LoginConfig};
use super::uri::build_query;

/// The API prefix added to the base URL.
pub const API_PREFIX: &str = "/api/v4";

/// Maximum number of body bytes kept for diagnostics of unexpected answers.
const DIAG_BODY_LIMIT: usize = 512;

/// Told about the client's traffic (for metrics). The client reports
/// through this and nothing else, so it depends on no other layer.
pub trait CallObserver: Send + Sync + std::fmt::Debug {
    /// A call to an API path ended with an HTTP status (`None`: no answer).
    fn call(&self, path: &str, status: Option<u16>);
    /// An answer to `operation` carried a non-zero `code`.
    fn api_error(&self, operation: &str, code: i64);
}

/// Options of a [`Client`].
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// TCP/TLS connect timeout.
    pub connect_timeout: Duration,
    /// Idle timeout between reads of one response (`None` = none).
    pub read_timeout: Option<Duration>,
    /// Total timeout of JSON API calls (not applied to streamed bodies).
    pub request_timeout: Option<Duration>,
    /// How long idle pooled connections are kept.
    pub pool_idle_timeout: Option<Duration>,
    /// Maximum idle pooled connections per host.
    pub pool_max_idle_per_host: usize,
    /// `User-Agent` header.
    pub user_agent: String,
    /// Refresh the access token this long before `access_expires`.
    pub refresh_margin: Duration,
    /// Rewrite scheme and host of Cloudreve-signed download URLs
    /// (`/api/v4/file/content/…`) to the base URL (the signature covers
    /// only the path). Useful when the server's site URL is not reachable.
    pub rewrite_download_host: bool,
    /// This client's id, sent as `X-Cr-Client-Id` on every call: Cloudreve's
    /// change feed (`GET /file/events`) does not send a listener the changes
    /// made with its own id. `None`: a random id per [`Client`].
    pub client_id: Option<uuid::Uuid>,
    /// Told about every call and every error code.
    pub observer: Option<Arc<dyn CallObserver>>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            connect_timeout: Duration::from_secs(10),
            read_timeout: Some(Duration::from_secs(120)),
            request_timeout: Some(Duration::from_secs(300)),
            pool_idle_timeout: Some(Duration::from_secs(90)),
            pool_max_idle_per_host: 32,
            user_agent: concat!("cloudreve-dav/", env!("CARGO_PKG_VERSION")).to_string(),
            refresh_margin: Duration::from_secs(120),
            rewrite_download_host: false,
            client_id: None,
            observer: None,
        }
    }
}

/// Unauthenticated Cloudreve client. Cheap to clone (an `Arc` inside); all
/// clones share one connection pool. Sign in with [`Client::sign_in`] to
/// get an authenticated [`Session`].
#[derive(Clone, Debug)]
pub struct Client {
    pub(crate) inner: Arc<ClientInner>,
}

#[derive(Debug)]
pub(crate) struct ClientInner {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
    pub(crate) opts: ClientOptions,
    pub(crate) client_id: String,
}

/// A request body.
pub(crate) enum ReqBody {
    /// No body.
    Empty,
    /// A JSON document (replayable).
    Json(Bytes),
    /// A streamed body of exactly `len` bytes.
    Stream(reqwest::Body, u64),
}

impl ReqBody {
    pub(crate) fn json<T: Serialize + ?Sized>(v: &T) -> Result<Self> {
        serde_json::to_vec(v)
            .map(|b| ReqBody::Json(Bytes::from(b)))
            .map_err(|e| Error::InvalidArgument(format!("cannot encode request: {e}")))
    }

    fn try_clone(&self) -> Option<Self> {
        match self {
            ReqBody::Empty => Some(ReqBody::Empty),
            ReqBody::Json(b) => Some(ReqBody::Json(b.clone())),
            ReqBody::Stream(..) => None,
        }
    }
}

impl Client {
    /// Creates a client for `base_url` (e.g. `http://127.0.0.1:5212`) with
    /// default options. `/api/v4` is added by the client.
    pub fn new(base_url: &str) -> Result<Self> {
        Self::with_options(base_url, ClientOptions::default())
    }

    /// Creates a client with explicit options.
    pub fn with_options(base_url: &str, opts: ClientOptions) -> Result<Self> {
        let base = base_url.trim_end_matches('/').to_string();
        let base = base.strip_suffix(API_PREFIX).unwrap_or(&base).to_string();
        let parsed = reqwest::Url::parse(&base)
            .map_err(|e| Error::InvalidArgument(format!("bad base url {base_url:?}: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Error::InvalidArgument(format!(
                "base url must be http(s): {base_url:?}"
            )));
        }
        let mut b = reqwest::Client::builder()
            .connect_timeout(opts.connect_timeout)
            .pool_max_idle_per_host(opts.pool_max_idle_per_host)
            .pool_idle_timeout(opts.pool_idle_timeout)
            .user_agent(opts.user_agent.clone())
            .redirect(reqwest::redirect::Policy::none());
        if let Some(t) = opts.read_timeout {
            b = b.read_timeout(t);
        }
        let http = b.build()?;
        let client_id = opts
            .client_id
            .unwrap_or_else(uuid::Uuid::new_v4)
            .to_string();
        Ok(Client {
            inner: Arc::new(ClientInner {
                http,
                base,
                opts,
                client_id,
            }),
        })
    }

    /// The base URL without the API prefix.
    pub fn base_url(&self) -> &str {
        &self.inner.base
    }

    /// The options in use.
    pub fn options(&self) -> &ClientOptions {
        &self.inner.opts
    }

    /// The id this client sends as `X-Cr-Client-Id`.
    pub fn client_id(&self) -> &str {
        &self.inner.client_id
    }

    /// The shared `reqwest` client.
    pub fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// Full URL of an API path with a form-encoded query.
    pub(crate) fn api_url(&self, path: &str, query: &[(&str, String)]) -> String {
        let mut url = format!("{}{}{}", self.inner.base, API_PREFIX, path);
        if !query.is_empty() {
            url.push('?');
            url.push_str(&build_query(query));
        }
        url
    }

    /// Sends one request to an API path. JSON calls get the configured
    /// total timeout; streamed bodies do not.
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: ReqBody,
        bearer: Option<&str>,
    ) -> Result<Response> {
        let streamed = matches!(body, ReqBody::Stream(..));
        let mut rb = self.request(method, path, query, body, bearer);
        if !streamed && let Some(t) = self.inner.opts.request_timeout {
            rb = rb.timeout(t);
        }
        self.send_built(rb, path).await
    }

    /// Sends a request built by [`Client::request`], counting it.
    pub(crate) async fn send_built(
        &self,
        rb: reqwest::RequestBuilder,
        path: &str,
    ) -> Result<Response> {
        let result = rb.send().await;
        if let Some(o) = &self.inner.opts.observer {
            o.call(path, result.as_ref().ok().map(|r| r.status().as_u16()));
        }
        Ok(result?)
    }

    /// Passes `r` through, telling the observer about an error code.
    pub(crate) fn noted<T>(&self, operation: &str, r: Result<T>) -> Result<T> {
        if let (Err(Error::Api(e)), Some(o)) = (&r, &self.inner.opts.observer) {
            o.api_error(operation, e.code);
        }
        r
    }

    /// One request to an API path with the headers every call carries
    /// (correlation id, client id, bearer), and no timeout of its own.
    pub(crate) fn request(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: ReqBody,
        bearer: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let url = self.api_url(path, query);
        let cid = uuid::Uuid::new_v4().to_string();
        tracing::trace!(%method, path, correlation_id = %cid, "cloudreve request");
        let mut rb = self
            .inner
            .http
            .request(method, &url)
            .header("X-Cr-Correlation-Id", &cid)
            .header("X-Cr-Client-Id", &self.inner.client_id)
            .header(header::ACCEPT, "application/json");
        if let Some(t) = bearer {
            rb = rb.bearer_auth(t);
        }
        match body {
            ReqBody::Empty => rb,
            ReqBody::Json(b) => rb
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::CONTENT_LENGTH, b.len())
                .body(b),
            ReqBody::Stream(b, len) => rb
                .header(header::CONTENT_TYPE, "application/octet-stream")
                .header(header::CONTENT_LENGTH, len)
                .body(b),
        }
    }

    /// Reads a JSON route's answer into a raw envelope (any code).
    pub(crate) async fn read_raw_envelope(resp: Response, context: &str) -> Result<RawEnvelope> {
        let resp = check_status(resp, context).await?;
        let body = resp.bytes().await?;
        serde_json::from_slice(&body).map_err(|e| super::error::not_an_envelope(&body, context, e))
    }

    /// Reads a JSON route's answer straight into `T` (one pass over the
    /// body, no intermediate `serde_json::Value` tree); non-zero codes
    /// become errors.
    pub(crate) async fn read_typed<T: DeserializeOwned>(
        resp: Response,
        context: &str,
    ) -> Result<T> {
        let resp = check_status(resp, context).await?;
        let body = resp.bytes().await?;
        decode_typed(&body, context)
    }

    /// Unauthenticated call returning decoded `data`.
    pub(crate) async fn call_anon<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: ReqBody,
        context: &str,
    ) -> Result<T> {
        let resp = self.send(method, path, query, body, None).await?;
        self.noted(context, Self::read_typed(resp, context).await)
    }

    /// `GET /site/ping`: the server version string (e.g. `4.0.0`).
    pub async fn ping(&self) -> Result<String> {
        self.call_anon(Method::GET, "/site/ping", &[], ReqBody::Empty, "ping")
            .await
    }

    /// `GET /site/config/{section}` as raw JSON.
    pub async fn site_config(&self, section: &str) -> Result<serde_json::Value> {
        if section.is_empty() || section.contains(['/', '?', '#']) {
            return Err(Error::InvalidArgument(format!("bad section {section:?}")));
        }
        let v: Option<serde_json::Value> = self
            .call_anon(
                Method::GET,
                &format!("/site/config/{section}"),
                &[],
                ReqBody::Empty,
                "site_config",
            )
            .await?;
        Ok(v.unwrap_or(serde_json::Value::Null))
    }

    /// `GET /site/config/login`, typed.
    pub async fn login_config(&self) -> Result<LoginConfig> {
        let v = self.site_config("login").await?;
        if v.is_null() {
            return Ok(LoginConfig::default());
        }
        serde_json::from_value(v).map_err(|e| Error::decode("site_config login", e))
    }

    /// `GET /site/config/explorer`, typed.
    pub async fn explorer_config(&self) -> Result<ExplorerConfig> {
        let v = self.site_config("explorer").await?;
        if v.is_null() {
            return Ok(ExplorerConfig::default());
        }
        serde_json::from_value(v).map_err(|e| Error::decode("site_config explorer", e))
    }
}

/// Fails on any HTTP status but 200 for JSON routes.
pub(crate) async fn check_status(resp: Response, context: &str) -> Result<Response> {
    if resp.status() == StatusCode::OK {
        return Ok(resp);
    }
    Err(unexpected_status(resp, context).await)
}

/// Builds an [`Error::UnexpectedStatus`] from a response (reads a bounded
/// prefix of its body).
pub(crate) async fn unexpected_status(resp: Response, context: &str) -> Error {
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = read_prefix(resp, DIAG_BODY_LIMIT).await;
    tracing::warn!(context, status, body = %body, "cloudreve unexpected HTTP status");
    Error::UnexpectedStatus {
        status,
        body,
        location,
    }
}

/// Reads at most `limit` bytes of a body as lossy text.
async fn read_prefix(mut resp: Response, limit: usize) -> String {
    let mut buf = Vec::new();
    while buf.len() < limit {
        match resp.chunk().await {
            Ok(Some(c)) => buf.extend_from_slice(&c),
            _ => break,
        }
    }
    buf.truncate(limit);
    String::from_utf8_lossy(&buf).into_owned()
}

/// An envelope whose `data` is decoded as `T` directly.
#[derive(serde::Deserialize)]
struct TypedEnvelope<T> {
    #[serde(default)]
    code: i64,
    #[serde(default = "Option::default")]
    data: Option<T>,
}

/// Decodes a full envelope body into `T` in one pass. Error envelopes (and
/// bodies `T` does not fit) go through [`decode_envelope`], which yields
/// the typed API error or the decode error.
pub(crate) fn decode_typed<T: DeserializeOwned>(body: &[u8], context: &str) -> Result<T> {
    match serde_json::from_slice::<TypedEnvelope<T>>(body) {
        Ok(TypedEnvelope {
            code: 0,
            data: Some(d),
        }) => Ok(d),
        Ok(TypedEnvelope {
            code: 0,
            data: None,
        }) => from_data(None, context),
        _ => from_data(decode_envelope(body, context)?, context),
    }
}

/// Decodes envelope `data` into `T` (absent `data` decodes from `null`).
pub(crate) fn from_data<T: DeserializeOwned>(
    data: Option<serde_json::Value>,
    context: &str,
) -> Result<T> {
    let v = data.unwrap_or(serde_json::Value::Null);
    serde_json::from_value(v).map_err(|e| Error::decode(format!("{context}: data"), e))
}

impl Session {
    /// Authenticated call with replayable body: refreshes proactively and,
    /// on code 401, refreshes once (single-flight) and retries once.
    pub(crate) async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: ReqBody,
        context: &str,
    ) -> Result<T> {
        self.call_with(method, path, query, body, context, decode_typed)
            .await
    }

    /// Like [`Session::call`] but returns raw `data`.
    pub(crate) async fn call_value(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: ReqBody,
        context: &str,
    ) -> Result<Option<serde_json::Value>> {
        self.call_with(method, path, query, body, context, decode_envelope)
            .await
    }

    /// The retrying call behind [`Session::call`] and
    /// [`Session::call_value`]; `decode` reads the answer's body.
    async fn call_with<T>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: ReqBody,
        context: &str,
        decode: fn(&[u8], &str) -> Result<T>,
    ) -> Result<T> {
        let mut body = Some(body);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (token, generation) = self.access_token().await?;
            let cur = body.take().unwrap_or(ReqBody::Empty);
            let retry_body = cur.try_clone();
            let resp = self
                .client()
                .send(method.clone(), path, query, cur, Some(&token))
                .await?;
            let answer = match check_status(resp, context).await {
                Ok(resp) => resp
                    .bytes()
                    .await
                    .map_err(Error::from)
                    .and_then(|b| decode(&b, context)),
                Err(e) => Err(e),
            };
            let answer = self.client().noted(context, answer);
            match answer {
                Err(e) if e.is(ErrorCode::CheckLogin) => {
                    self.refresh_after_401(generation).await?;
                    match retry_body {
                        Some(b) if attempt < 2 => {
                            body = Some(b);
                            continue;
                        }
                        _ => return Err(e),
                    }
                }
                other => return other,
            }
        }
    }

    /// Authenticated call with a streamed body (not replayable): a 401 still
    /// refreshes the session so that the caller's retry succeeds.
    pub(crate) async fn call_stream<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: reqwest::Body,
        len: u64,
        context: &str,
    ) -> Result<T> {
        let (token, generation) = self.access_token().await?;
        let resp = self
            .client()
            .send(
                method,
                path,
                query,
                ReqBody::Stream(body, len),
                Some(&token),
            )
            .await?;
        match self
            .client()
            .noted(context, Client::read_typed(resp, context).await)
        {
            Err(e) if e.is(ErrorCode::CheckLogin) => {
                self.refresh_after_401(generation).await?;
                Err(e)
            }
            other => other,
        }
    }
}
