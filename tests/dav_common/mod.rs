//! Test harness: the test's upstream (emulator, or a real Cloudreve with
//! `CLOUDREVE_BIN`; see `support::upstream`) + signed-in client session +
//! DavGateway behind the real front layer, on 127.0.0.1:0.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use cloudreve_dav::cloudreve::{Client, CrUri, Session};
use cloudreve_dav::dav::{DavGateway, DavSettings};
use cloudreve_dav::front::{
    self, AccountSource, AuthSettings, Authenticator, BoxBody, DavService, Front, FrontSettings,
    Principal, RawAccount, SourceError,
};

/// Wraps the gateway's WebDAV service before the front layer sees it
/// (test hooks that act after the front layer's checks).
pub(crate) type Wrap = fn(Arc<DavGateway>) -> Arc<dyn DavService>;
use crate::support::upstream::TestUpstream;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The test user.
pub(crate) const EMAIL: &str = "dav@example.com";
/// Cloudreve password of the test user.
pub(crate) const CR_PASSWORD: &str = "cloudreve-password-1";
/// WebDAV account password.
pub(crate) const DAV_PASSWORD: &str = "davpassworddavpassworddavpassword";

struct Accounts {
    root: String,
    sys_off: bool,
}

#[async_trait]
impl AccountSource for Accounts {
    async fn fetch_accounts(&self, email: &str) -> Result<Vec<RawAccount>, SourceError> {
        if !email.eq_ignore_ascii_case(EMAIL) {
            return Err(SourceError::UnknownUser(email.into()));
        }
        Ok(vec![RawAccount {
            id: "acct1".into(),
            name: "test".into(),
            uri: self.root.clone(),
            password: DAV_PASSWORD.into(),
            readonly: false,
            proxy: true,
            disable_sys_files: self.sys_off,
        }])
    }
}

/// A running gateway.
pub(crate) struct Gw {
    /// Base URL, e.g. `http://127.0.0.1:PORT` (no trailing slash).
    pub url: String,
    /// The upstream (emulator controls through it, see `skip_on_real!`).
    pub up: TestUpstream,
    /// A client session of the test user (for arranging and inspecting).
    pub session: Session,
    /// An HTTP client.
    pub http: reqwest::Client,
    /// The gateway (lock inspection).
    pub gateway: Arc<DavGateway>,
    /// The spool directory.
    pub spool: std::path::PathBuf,
    /// The gateway state directory (lock table).
    pub state: std::path::PathBuf,
    /// Every authenticated request the gateway handled, in order.
    pub requests: Arc<RequestLog>,
    settings: DavSettings,
    root_uri: String,
    sys_off: bool,
    wrap: Option<Wrap>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    _dir: tempfile::TempDir,
}

impl Gw {
    /// Starts everything with default settings.
    pub(crate) async fn start() -> Gw {
        Self::start_with(|_| {}).await
    }

    /// Starts everything; `tweak` may change the settings.
    pub(crate) async fn start_with(tweak: impl FnOnce(&mut DavSettings)) -> Gw {
        Self::start_full(tweak, None, false).await
    }

    /// Starts everything; the account has Cloudreve's "disable system
    /// files" option on.
    pub(crate) async fn start_sys_files_disabled(tweak: impl FnOnce(&mut DavSettings)) -> Gw {
        Self::start_full(tweak, None, true).await
    }

    /// Starts everything with the account rooted at `/{root}` upstream.
    pub(crate) async fn start_rooted(root: &str) -> Gw {
        Self::start_full(|_| {}, Some(root), false).await
    }

    /// Starts everything with the WebDAV service wrapped by `wrap`.
    pub(crate) async fn start_wrapped(wrap: Wrap) -> Gw {
        Self::start_full_wrapped(|_| {}, None, false, Some(wrap)).await
    }

    async fn start_full(
        tweak: impl FnOnce(&mut DavSettings),
        root: Option<&str>,
        sys_off: bool,
    ) -> Gw {
        Self::start_full_wrapped(tweak, root, sys_off, None).await
    }

    async fn start_full_wrapped(
        tweak: impl FnOnce(&mut DavSettings),
        root: Option<&str>,
        sys_off: bool,
        wrap: Option<Wrap>,
    ) -> Gw {
        let dir = tempfile::tempdir().expect("tempdir");
        let up = TestUpstream::start(dir.path()).await;
        up.add_user(EMAIL, CR_PASSWORD).await;
        let client = Client::new(&up.url()).expect("client");
        let session = client.sign_in(EMAIL, CR_PASSWORD).await.expect("sign in");
        let root_uri = match root {
            Some(r) => {
                let u = CrUri::my_path(r).expect("root");
                session
                    .create(
                        &u,
                        cloudreve_dav::cloudreve::CreateKind::Folder,
                        false,
                        None,
                    )
                    .await
                    .expect("create root");
                u
            }
            None => CrUri::my(),
        };
        let spool = dir.path().join("spool");
        std::fs::create_dir_all(&spool).expect("spool dir");
        let state = dir.path().join("state");
        let mut settings = DavSettings {
            spool_dir: spool.clone(),
            state_dir: Some(state.clone()),
            ..DavSettings::default()
        };
        tweak(&mut settings);
        let requests = Arc::new(RequestLog::default());
        let (gateway, url, stop, task) = serve(
            &session,
            &settings,
            &root_uri.to_string(),
            &requests,
            sys_off,
            wrap,
        )
        .await;
        Gw {
            url,
            up,
            session,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("http"),
            gateway,
            spool,
            state,
            requests,
            settings,
            root_uri: root_uri.to_string(),
            sys_off,
            wrap,
            stop: Some(stop),
            task: Some(task),
            _dir: dir,
        }
    }

    /// Stops the gateway (not the emulator) and starts a new one with the
    /// same settings and state directory, on a new port.
    pub(crate) async fn restart_gateway(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
        let (gateway, url, stop, task) = serve(
            &self.session,
            &self.settings,
            &self.root_uri,
            &self.requests,
            self.sys_off,
            self.wrap,
        )
        .await;
        self.gateway = gateway;
        self.url = url;
        self.stop = Some(stop);
        self.task = Some(task);
    }

    /// A second gateway over the same emulator, session and state
    /// directory (it loads the lock table as it is now), with `tweak`ed
    /// settings; to compare two configurations on the same data.
    pub(crate) async fn extra_gateway(&self, tweak: impl FnOnce(&mut DavSettings)) -> ExtraGw {
        let mut settings = self.settings.clone();
        tweak(&mut settings);
        let (_, url, stop, task) = serve(
            &self.session,
            &settings,
            &self.root_uri,
            &self.requests,
            self.sys_off,
            self.wrap,
        )
        .await;
        ExtraGw {
            url,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// The address `host:port`.
    pub(crate) fn addr(&self) -> String {
        self.url.trim_start_matches("http://").to_string()
    }

    /// A request with credentials.
    pub(crate) fn req(&self, method: &str, path: &str) -> reqwest::RequestBuilder {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        self.http
            .request(m, format!("{}{}", self.url, path))
            .basic_auth(EMAIL, Some(DAV_PASSWORD))
    }

    /// PUT `body` at `path`; returns the status.
    pub(crate) async fn put(&self, path: &str, body: impl Into<reqwest::Body>) -> u16 {
        self.req("PUT", path)
            .body(body)
            .send()
            .await
            .expect("put")
            .status()
            .as_u16()
    }

    /// GET `path`: status and body.
    pub(crate) async fn get(&self, path: &str) -> (u16, Vec<u8>) {
        let r = self.req("GET", path).send().await.expect("get");
        let s = r.status().as_u16();
        (s, r.bytes().await.expect("body").to_vec())
    }

    /// PROPFIND with `depth`; status and body text.
    pub(crate) async fn propfind(&self, path: &str, depth: &str) -> (u16, String) {
        let r = self
            .req("PROPFIND", path)
            .header("depth", depth)
            .send()
            .await
            .expect("propfind");
        let s = r.status().as_u16();
        (s, r.text().await.unwrap_or_default())
    }

    /// Names of the trash items.
    pub(crate) async fn trash_len(&self) -> usize {
        self.session
            .list_all(&CrUri::root("trash"), 100)
            .await
            .map(|(_, f)| f.len())
            .unwrap_or(0)
    }

    /// Stops the server and the upstream.
    pub(crate) async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
        self.up.shutdown().await;
    }
}

/// A gateway started by [`Gw::extra_gateway`].
pub(crate) struct ExtraGw {
    /// Base URL (no trailing slash).
    pub url: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl ExtraGw {
    /// Stops it.
    pub(crate) async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

type Served = (
    Arc<DavGateway>,
    String,
    oneshot::Sender<()>,
    JoinHandle<std::io::Result<()>>,
);

/// A request as the gateway's WebDAV layer saw it (after authentication;
/// 401s and unauthenticated `OPTIONS` are answered by the front layer and
/// not recorded).
#[derive(Debug, Clone)]
pub(crate) struct SeenRequest {
    /// Method.
    pub method: String,
    /// Request path (percent-encoded, as sent).
    pub path: String,
    /// Response status.
    pub status: u16,
    /// Request headers (lower-case names), except `Authorization`.
    pub headers: Vec<(String, String)>,
}

impl SeenRequest {
    /// The value of request header `name` (lower case).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The requests a gateway handled, for tests that drive real clients.
#[derive(Debug, Default)]
pub(crate) struct RequestLog(Mutex<Vec<SeenRequest>>);

impl RequestLog {
    /// A copy of everything recorded so far.
    pub(crate) fn all(&self) -> Vec<SeenRequest> {
        self.0.lock().expect("request log").clone()
    }

    /// How many requests were recorded so far.
    pub(crate) fn len(&self) -> usize {
        self.0.lock().expect("request log").len()
    }

    /// Whether nothing was recorded yet.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The requests recorded after the first `from`.
    pub(crate) fn since(&self, from: usize) -> Vec<SeenRequest> {
        self.all().into_iter().skip(from).collect()
    }
}

/// Counts of `(method, status)` pairs, sorted, e.g. `PUT 201 x3`.
pub(crate) fn request_mix(reqs: &[SeenRequest]) -> Vec<String> {
    let mut counts = std::collections::BTreeMap::<(String, u16), usize>::new();
    for r in reqs {
        *counts.entry((r.method.clone(), r.status)).or_default() += 1;
    }
    counts
        .into_iter()
        .map(|((m, s), n)| format!("{m} {s} x{n}"))
        .collect()
}

struct Recording {
    inner: Arc<dyn DavService>,
    log: Arc<RequestLog>,
}

#[async_trait]
impl DavService for Recording {
    async fn handle(
        &self,
        req: http::Request<BoxBody>,
        principal: Arc<Principal>,
    ) -> http::Response<BoxBody> {
        let method = req.method().to_string();
        let path = req.uri().path().to_string();
        let headers = req
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let resp = self.inner.handle(req, principal).await;
        self.log.0.lock().expect("request log").push(SeenRequest {
            method,
            path,
            status: resp.status().as_u16(),
            headers,
        });
        resp
    }
}

async fn serve(
    session: &Session,
    settings: &DavSettings,
    root_uri: &str,
    log: &Arc<RequestLog>,
    sys_off: bool,
    wrap: Option<Wrap>,
) -> Served {
    let s2 = session.clone();
    let gateway = Arc::new(
        DavGateway::try_new(
            Arc::new(move |email: &str| email.eq_ignore_ascii_case(EMAIL).then(|| s2.clone())),
            settings.clone(),
        )
        .expect("gateway"),
    );
    let auth = Arc::new(Authenticator::new(
        Arc::new(Accounts {
            root: root_uri.to_string(),
            sys_off,
        }),
        [EMAIL.to_owned()],
        AuthSettings {
            refresh_interval: Duration::from_secs(3600),
            cache_ttl: Duration::from_secs(300),
            unknown_password_refetch: Duration::from_secs(3600),
            argon2_params: argon2::Params::new(1024, 1, 1, None).expect("params"),
            ..AuthSettings::default()
        },
    ));
    auth.refresh_all().await;
    let front = Arc::new(Front::new(
        FrontSettings {
            shutdown_grace: Duration::from_secs(5),
            ..FrontSettings::default()
        },
        auth,
        Arc::new(Recording {
            inner: match wrap {
                Some(w) => w(gateway.clone()),
                None => gateway.clone(),
            },
            log: log.clone(),
        }),
    ));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(front::serve(listener, None, front, async move {
        let _ = stopped.await;
    }));
    (gateway, format!("http://{addr}"), stop, task)
}

/// `href`s of a multistatus body.
pub(crate) fn hrefs(body: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(i) = rest.find("<D:href>") {
        let r = &rest[i + 8..];
        let Some(j) = r.find("</D:href>") else { break };
        out.push(r[..j].to_string());
        rest = &r[j..];
    }
    out
}

/// The hrefs of a multistatus body, percent-decoded, sorted.
pub(crate) fn decoded_hrefs(body: &str) -> Vec<String> {
    let mut out: Vec<String> = hrefs(body)
        .iter()
        .map(|h| {
            percent_encoding::percent_decode_str(h)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    out.sort();
    out
}

/// Values of element `tag` (e.g. `D:getetag`) in a multistatus body.
pub(crate) fn values(body: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(i) = rest.find(&open) {
        let r = &rest[i + open.len()..];
        let Some(j) = r.find(&close) else { break };
        out.push(r[..j].to_string());
        rest = &r[j..];
    }
    out
}
