//! The contract-test harness: an [`Upstream`] is the test's upstream from
//! `support::upstream` (the emulator, or a real Cloudreve started for the
//! test when `CLOUDREVE_BIN` is set) with a fresh user. Every test works
//! below its own folder `cloudreve-dav-contract-<uuid>`.
//!
//! Raw `reqwest` helpers live here too; they are used only where the typed
//! client cannot express a request (malformed input, a missing
//! `Content-Length`, `redirect:true`, out-of-range page sizes…).

#![allow(dead_code)]

use std::time::Duration;

use cloudreve_dav::cloudreve::{Client, CrUri, CreateKind, Error, ErrorCode, Session};
use cloudreve_dav::emulator::Emulator;

use crate::support::upstream::TestUpstream;
use serde_json::Value;

/// Default password of harness users.
pub(crate) const PASSWORD: &str = "contract-password";

/// Upper bound for any single wait in a test.
pub(crate) const WAIT: Duration = Duration::from_secs(60);

/// One upstream server plus a signed-in session and a private work folder.
pub(crate) struct Upstream {
    /// The typed client.
    pub client: Client,
    /// The signed-in session of [`Upstream::email`].
    pub session: Session,
    /// The user's e-mail.
    pub email: String,
    /// The user's password.
    pub password: String,
    /// The private work folder of this test.
    pub base: CrUri,
    /// A plain HTTP client for raw requests (no redirects followed).
    pub http: reqwest::Client,
    up: Option<TestUpstream>,
    dir: tempfile::TempDir,
}

/// Builds the plain HTTP client used for raw requests.
pub(crate) fn raw_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(WAIT)
        .build()
        .expect("reqwest client")
}

impl Upstream {
    /// Starts the test's upstream (the emulator, or a real Cloudreve with
    /// `CLOUDREVE_BIN`: `support::upstream` decides) with a fresh user.
    pub(crate) async fn start() -> Upstream {
        let http = raw_client();
        let folder = format!("cloudreve-dav-contract-{}", uuid::Uuid::new_v4().simple());
        let dir = tempfile::tempdir().expect("tempdir");
        let up = TestUpstream::start(dir.path()).await;
        let email = format!("u{}@example.com", &folder[folder.len() - 8..]);
        up.add_user(&email, PASSWORD).await;
        let client = Client::new(&up.url()).expect("client");
        let session = client.sign_in(&email, PASSWORD).await.expect("sign in");
        let base = CrUri::my().join(&folder).expect("base uri");
        session
            .create(&base, CreateKind::Folder, true, None)
            .await
            .expect("create work folder");
        Upstream {
            client,
            session,
            email,
            password: PASSWORD.to_string(),
            base,
            http,
            up: Some(up),
            dir,
        }
    }

    fn up(&self) -> &TestUpstream {
        self.up.as_ref().expect("upstream running")
    }

    /// The emulator controls, or `None` against a real server.
    pub(crate) fn emulator(&self) -> Option<&Emulator> {
        self.up().emulator()
    }

    /// Restarts the emulator on the same address and data directory
    /// (locks and upload sessions are lost, files and tokens survive).
    pub(crate) async fn restart_emulator(&mut self) {
        let up = self.up.take().expect("upstream running");
        self.up = Some(up.restart_emulator(self.dir.path()).await);
    }

    /// True against a real server.
    pub(crate) fn is_real(&self) -> bool {
        self.up().is_real()
    }

    /// Base URL (no `/api/v4`).
    pub(crate) fn url(&self) -> String {
        self.client.base_url().to_string()
    }

    /// A URI below the work folder from a slash-separated decoded path.
    pub(crate) fn uri(&self, rel: &str) -> CrUri {
        let mut u = self.base.clone();
        for s in rel.split('/').filter(|s| !s.is_empty()) {
            u = u.join(s).expect("valid name");
        }
        u
    }

    /// The owner-view decoded path of a relative path (for emulator hooks).
    pub(crate) fn owner_path(&self, rel: &str) -> String {
        self.uri(rel).path()
    }

    /// Adds another user and signs them in.
    pub(crate) async fn extra_user(&self, tag: &str) -> (String, Session) {
        let email = format!("{tag}-{}@example.com", uuid::Uuid::new_v4().simple());
        self.up().add_user(&email, PASSWORD).await;
        let s = self
            .client
            .sign_in(&email, PASSWORD)
            .await
            .expect("sign in");
        (email, s)
    }

    /// Current access token of the main session.
    pub(crate) async fn access_token(&self) -> String {
        self.session.token().await.access_token
    }

    /// Full API URL of `path` (starting with `/`).
    pub(crate) fn api(&self, path: &str) -> String {
        format!("{}/api/v4{path}", self.url())
    }

    /// A raw request with the main session's bearer.
    pub(crate) async fn raw(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let t = self.access_token().await;
        self.http.request(method, self.api(path)).bearer_auth(t)
    }

    /// A raw JSON call; asserts HTTP 200 and returns the envelope.
    pub(crate) async fn raw_json(
        &self,
        method: reqwest::Method,
        path_and_query: &str,
        body: Option<Value>,
        bearer: Option<&str>,
    ) -> Value {
        let mut rb = self.http.request(method, self.api(path_and_query));
        if let Some(b) = bearer {
            rb = rb.bearer_auth(b);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let resp = rb.send().await.expect("send");
        assert_eq!(resp.status(), 200, "HTTP status of {path_and_query}");
        resp.json().await.expect("json envelope")
    }

    /// [`Upstream::raw_json`] with the main session's bearer.
    pub(crate) async fn raw_authed(
        &self,
        method: reqwest::Method,
        path_and_query: &str,
        body: Option<Value>,
    ) -> Value {
        let t = self.access_token().await;
        self.raw_json(method, path_and_query, body, Some(&t)).await
    }

    /// Writes a small file through `PUT /file/content`.
    pub(crate) async fn put(
        &self,
        rel: &str,
        data: &[u8],
    ) -> cloudreve_dav::cloudreve::FileResponse {
        put_bytes(&self.session, &self.uri(rel), data)
            .await
            .expect("put_content")
    }

    /// Creates a folder (mkdir -p).
    pub(crate) async fn mkdir(&self, rel: &str) -> cloudreve_dav::cloudreve::FileResponse {
        self.session
            .create(&self.uri(rel), CreateKind::Folder, false, None)
            .await
            .expect("create folder")
    }

    /// Downloads a whole file through a fresh signed URL.
    pub(crate) async fn get(&self, rel: &str) -> Vec<u8> {
        self.session
            .open_read_uri(&self.uri(rel), None, None)
            .await
            .expect("open_read")
            .bytes()
            .await
            .expect("body")
            .to_vec()
    }

    /// Names of the work folder's (or a sub-folder's) children, all pages.
    pub(crate) async fn names(&self, rel: &str) -> Vec<String> {
        let (_, files) = self
            .session
            .list_all(&self.uri(rel), 0)
            .await
            .expect("list");
        files.into_iter().map(|f| f.name).collect()
    }

    /// Stops the upstream (a real server's data goes with it).
    pub(crate) async fn finish(mut self) {
        if let Some(up) = self.up.take() {
            up.shutdown().await;
        }
    }
}

/// `PUT /file/content` of an in-memory body.
pub(crate) async fn put_bytes(
    s: &Session,
    uri: &CrUri,
    data: &[u8],
) -> cloudreve_dav::cloudreve::Result<cloudreve_dav::cloudreve::FileResponse> {
    put_prev(s, uri, None, data).await
}

/// `PUT /file/content` with a `previous` version.
pub(crate) async fn put_prev(
    s: &Session,
    uri: &CrUri,
    previous: Option<&str>,
    data: &[u8],
) -> cloudreve_dav::cloudreve::Result<cloudreve_dav::cloudreve::FileResponse> {
    let b = bytes::Bytes::copy_from_slice(data);
    let len = b.len() as u64;
    s.put_content(
        uri,
        previous,
        futures::stream::once(async move { Ok::<_, std::io::Error>(b) }),
        len,
    )
    .await
}

/// Asserts that `r` failed with envelope code `code` and returns the error.
#[track_caller]
pub(crate) fn expect_code<T: std::fmt::Debug>(r: Result<T, Error>, code: i64) -> Error {
    match r {
        Ok(v) => panic!("expected code {code}, got success: {v:?}"),
        Err(e) => {
            let got = e.api().map(|a| a.code);
            assert_eq!(got, Some(code), "expected code {code}, got {e:?}");
            e
        }
    }
}

/// Asserts a 40081 error whose single/only entry for `uri` has `code`.
#[track_caller]
pub(crate) fn expect_aggregated(e: &Error, uri: &CrUri, code: i64) {
    assert!(
        e.is(ErrorCode::BatchOperationNotFullyCompleted),
        "expected 40081, got {e:?}"
    );
    let agg = e.aggregated().expect("aggregated_error");
    let entry = agg
        .get_uri(uri)
        .unwrap_or_else(|| panic!("no aggregated entry for {uri} in {agg:?}"));
    assert_eq!(entry.code, code, "aggregated code for {uri}: {entry:?}");
}

/// The `code` of a raw envelope.
pub(crate) fn code_of(v: &Value) -> i64 {
    v["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("no code in {v}"))
}

/// Skips the rest of a test against a real server.
#[macro_export]
macro_rules! emulator_or_skip {
    ($up:expr) => {
        match $up.emulator() {
            Some(e) => e,
            None => {
                eprintln!("skipped (real server): needs emulator controls");
                $up.finish().await;
                return;
            }
        }
    };
}

pub(crate) use crate::support::rng::Prng;

/// Small deterministic test content of `n` bytes.
pub(crate) fn sample(n: usize, seed: u64) -> Vec<u8> {
    crate::support::rng::bytes(seed, n)
}
