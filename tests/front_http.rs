//! Drives the front layer through real HTTP on 127.0.0.1:0 with a stub
//! account source and a stub inner DAV service.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use base64::Engine as _;
use cloudreve_dav::{
    config::TlsPaths,
    front::{
        self, AccountSource, AuthSettings, Authenticator, BoxBody, DavService, Front,
        FrontSettings, Principal, RawAccount, SourceError, auth::CHALLENGE,
    },
};
use http::{Request, Response};
use http_body_util::BodyExt as _;
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::{Notify, mpsc, oneshot},
    task::JoinHandle,
};
use tokio_rustls::rustls;

const ALICE: &str = "alice@example.com";
const RW_PW: &str = "abcdefghijklmnopqrstuvwxyzabcdef";
const RO_PW: &str = "readonlyreadonlyreadonlyreadonly";
const WAIT: Duration = Duration::from_secs(10);

fn account(id: &str, password: &str, readonly: bool) -> RawAccount {
    RawAccount {
        id: id.into(),
        name: format!("acct-{id}"),
        uri: format!("cloudreve://my/{id}"),
        password: password.into(),
        readonly,
        proxy: false,
        disable_sys_files: false,
    }
}

#[derive(Default)]
struct StubSource {
    accounts: Mutex<Vec<RawAccount>>,
    fetches: AtomicUsize,
}

#[async_trait]
impl AccountSource for StubSource {
    async fn fetch_accounts(&self, email: &str) -> Result<Vec<RawAccount>, SourceError> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        assert_eq!(email, ALICE, "the source sees the configured spelling");
        Ok(self.accounts.lock().expect("lock").clone())
    }
}

struct StubDav {
    calls: AtomicUsize,
    entered: mpsc::UnboundedSender<()>,
    release: Notify,
}

#[async_trait]
impl DavService for StubDav {
    async fn handle(&self, req: Request<BoxBody>, principal: Arc<Principal>) -> Response<BoxBody> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if req.uri().path() == "/echo" {
            let body = req.into_body().collect().await.expect("body").to_bytes();
            return Response::new(front::full_body(body));
        }
        match req.uri().path() {
            "/panic" => panic!("stub panics on purpose"),
            "/slow" => {
                let _ = self.entered.send(());
                self.release.notified().await;
            }
            _ => {}
        }
        let text = format!(
            "{} {} {} {} ro={} auth={}",
            req.method(),
            req.uri().path(),
            principal.email,
            principal.account_id,
            principal.readonly,
            req.headers().contains_key("authorization"),
        );
        let mut resp = Response::new(front::full_body(text));
        if req.method() == "OPTIONS" {
            resp.headers_mut()
                .insert("dav", "1, 2, 3".parse().expect("hv"));
            resp.headers_mut()
                .insert("allow", "OPTIONS, GET, PUT, DELETE".parse().expect("hv"));
        }
        resp
    }
}

struct Harness {
    addr: SocketAddr,
    auth: Arc<Authenticator>,
    source: Arc<StubSource>,
    stub: Arc<StubDav>,
    entered: mpsc::UnboundedReceiver<()>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

fn fast_settings() -> AuthSettings {
    AuthSettings {
        refresh_interval: Duration::from_secs(3600),
        cache_ttl: Duration::from_secs(300),
        unknown_password_refetch: Duration::from_secs(3600),
        argon2_params: argon2::Params::new(1024, 1, 1, None).expect("params"),
        ..AuthSettings::default()
    }
}

async fn start_with(
    settings: AuthSettings,
    tls: Option<tokio_rustls::TlsAcceptor>,
    initial_refresh: bool,
) -> Harness {
    let source = Arc::new(StubSource::default());
    *source.accounts.lock().expect("lock") =
        vec![account("rw1", RW_PW, false), account("ro1", RO_PW, true)];
    let auth = Arc::new(Authenticator::new(
        source.clone(),
        [ALICE.to_owned()],
        settings,
    ));
    if initial_refresh {
        auth.refresh_all().await;
    }
    let (tx, entered) = mpsc::unbounded_channel();
    let stub = Arc::new(StubDav {
        calls: AtomicUsize::new(0),
        entered: tx,
        release: Notify::new(),
    });
    let front = Arc::new(Front::new(
        FrontSettings {
            shutdown_grace: WAIT,
            // These tests send storms of wrong passwords from one address;
            // the throttle has its own tests (auth_security.rs).
            login_throttle: cloudreve_dav::config::LoginThrottle {
                max_failures_per_address: 1_000_000,
                max_failures_per_user_address: 1_000_000,
                max_failures_per_user: 1_000_000,
                ..Default::default()
            },
            ..FrontSettings::default()
        },
        auth.clone(),
        stub.clone(),
    ));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(front::serve(listener, tls, front, async move {
        let _ = stopped.await;
    }));
    Harness {
        addr,
        auth,
        source,
        stub,
        entered,
        shutdown: Some(stop),
        task,
    }
}

async fn start() -> Harness {
    start_with(fast_settings(), None, true).await
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn raw_request(method: &str, target: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    let mut s = format!("{method} {target} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    for (k, v) in headers {
        s.push_str(&format!("{k}: {v}\r\n"));
    }
    s.push_str("Content-Length: 0\r\n\r\n");
    s.into_bytes()
}

fn parse(raw: &[u8]) -> Resp {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").expect("complete response head");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Resp {
        status,
        headers,
        body: body.to_owned(),
    }
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, raw: &[u8]) -> Resp {
    s.write_all(raw).await.expect("write");
    let mut buf = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut buf))
        .await
        .expect("response in time")
        .expect("read");
    parse(&buf)
}

async fn send(addr: SocketAddr, method: &str, target: &str, headers: &[(&str, &str)]) -> Resp {
    let s = TcpStream::connect(addr).await.expect("connect");
    exchange(s, &raw_request(method, target, headers)).await
}

async fn get_as(addr: SocketAddr, user: &str, password: &str) -> Resp {
    let auth = basic(user, password);
    send(addr, "GET", "/x", &[("Authorization", &auth)]).await
}

#[tokio::test]
async fn no_credentials_gets_401_with_challenge() {
    let h = start().await;
    let r = send(h.addr, "GET", "/", &[]).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some(CHALLENGE));
    assert!(r.header("x-request-id").is_some());
    assert_eq!(h.stub.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn bad_credentials_get_401_with_challenge() {
    let h = start().await;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let cases = [
        basic(ALICE, "wrong"),
        basic("bob@example.com", RW_PW),
        "Basic !!!not-base64".to_owned(),
        format!("Basic {}", b64(b"no-colon")),
        format!("Basic {}", b64(b"alice@example.com\xff:x")),
        "Bearer token".to_owned(),
    ];
    for auth in cases {
        let r = send(h.addr, "GET", "/", &[("Authorization", &auth)]).await;
        assert_eq!(r.status, 401, "{auth}");
        assert_eq!(r.header("www-authenticate"), Some(CHALLENGE));
    }
    assert_eq!(h.stub.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn right_password_reaches_inner_with_principal() {
    let h = start().await;
    let r = get_as(h.addr, ALICE, RW_PW).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, "GET /x alice@example.com rw1 ro=false auth=false");
    // Case-insensitive e-mail; the principal keeps the configured spelling.
    let r = get_as(h.addr, "Alice@EXAMPLE.com", RO_PW).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, "GET /x alice@example.com ro1 ro=true auth=false");
    // Raw UTF-8 in the target is percent-encoded before the inner service sees it.
    let auth = basic(ALICE, RW_PW);
    let r = send(h.addr, "GET", "/caf\u{e9}", &[("Authorization", &auth)]).await;
    assert_eq!(r.status, 200);
    assert!(r.body.starts_with("GET /caf%C3%A9 "), "{}", r.body);
}

#[tokio::test]
async fn argon2_runs_once_per_credential() {
    let h = start().await;
    assert_eq!(h.auth.stats().argon2_hashes, 2);
    assert_eq!(h.auth.stats().argon2_refresh_checks, 0);
    for _ in 0..5 {
        assert_eq!(get_as(h.addr, ALICE, RW_PW).await.status, 200);
    }
    assert_eq!(get_as(h.addr, "ALICE@example.com", RW_PW).await.status, 200);
    // rw1 is tried first and matches: one argon2 run for six requests.
    assert_eq!(h.auth.stats().argon2_verifications, 1);
    // The second account costs a run against rw1 and one against ro1, once.
    for _ in 0..3 {
        assert_eq!(get_as(h.addr, ALICE, RO_PW).await.status, 200);
    }
    assert_eq!(h.auth.stats().argon2_verifications, 3);
    // A wrong password triggers one refetch (the start-up fetch does not
    // count against the gap), which finds the same passwords: each is
    // checked against its hash and none is re-hashed. The password is tried
    // against both accounts and answered 401 with the challenge.
    let r = get_as(h.addr, ALICE, "nope").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some(CHALLENGE));
    assert_eq!(h.source.fetches.load(Ordering::SeqCst), 2);
    assert_eq!(h.auth.stats().argon2_refresh_checks, 2);
    assert_eq!(h.auth.stats().argon2_hashes, 2);
    let after_first_wrong = h.auth.stats().argon2_verifications;
    // Two runs; the refetch brought nothing new, so no second try.
    assert_eq!(after_first_wrong, 5);
    // A second wrong password inside the gap costs two runs and no fetch.
    assert_eq!(get_as(h.addr, ALICE, "nope2").await.status, 401);
    assert_eq!(h.source.fetches.load(Ordering::SeqCst), 2);
    assert_eq!(h.auth.stats().argon2_verifications, after_first_wrong + 2);
    // A periodic refresh with unchanged passwords checks each against its
    // hash, re-hashes nothing and keeps the cache.
    h.auth.refresh_all().await;
    assert_eq!(h.auth.stats().argon2_refresh_checks, 4);
    assert_eq!(h.auth.stats().argon2_hashes, 2);
    assert_eq!(get_as(h.addr, ALICE, RW_PW).await.status, 200);
    assert_eq!(get_as(h.addr, ALICE, RO_PW).await.status, 200);
    assert_eq!(
        h.auth.stats().argon2_verifications,
        after_first_wrong + 2,
        "cached"
    );
}

#[tokio::test]
async fn changed_password_is_rehashed_and_old_one_refused_after_refresh() {
    let h = start().await;
    assert_eq!(get_as(h.addr, ALICE, RW_PW).await.status, 200);
    let new_pw = "changedchangedchangedchangedchan";
    for a in h.source.accounts.lock().expect("lock").iter_mut() {
        if a.id == "rw1" {
            a.password = new_pw.into();
        }
    }
    // Cached until the refresh notices.
    assert_eq!(get_as(h.addr, ALICE, RW_PW).await.status, 200);
    h.auth.refresh_all().await;
    assert_eq!(h.auth.stats().argon2_refresh_checks, 2);
    assert_eq!(h.auth.stats().argon2_hashes, 3, "only rw1 is re-hashed");
    assert_eq!(get_as(h.addr, ALICE, RW_PW).await.status, 401);
    let r = get_as(h.addr, ALICE, new_pw).await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains(" rw1 "), "{}", r.body);
    // The untouched account keeps working.
    assert_eq!(get_as(h.addr, ALICE, RO_PW).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_use_of_a_credential_verifies_once() {
    let h = start().await;
    let mut jobs = Vec::new();
    for _ in 0..16 {
        let addr = h.addr;
        jobs.push(tokio::spawn(async move {
            get_as(addr, ALICE, RW_PW).await.status
        }));
    }
    for j in jobs {
        assert_eq!(j.await.expect("join"), 200);
    }
    assert_eq!(h.auth.stats().argon2_verifications, 1);
}

#[tokio::test]
async fn periodic_refresh_drops_deleted_accounts() {
    let settings = AuthSettings {
        refresh_interval: Duration::from_millis(100),
        ..fast_settings()
    };
    let h = start_with(settings, None, false).await;
    let loop_task = h.auth.spawn_refresh_loop();
    // The first refresh runs at once; wait for it through the auth result.
    let ok = tokio::time::timeout(WAIT, async {
        loop {
            if h.auth.authenticate(ALICE, RW_PW).await.is_ok() {
                break;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(ok.is_ok(), "first refresh never happened");
    let before = h.source.fetches.load(Ordering::SeqCst);
    h.source.accounts.lock().expect("lock").clear();
    let gone = tokio::time::timeout(WAIT, async {
        loop {
            if h.auth.authenticate(ALICE, RW_PW).await.is_err() {
                break;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(gone.is_ok(), "deleted account still accepted");
    assert!(h.source.fetches.load(Ordering::SeqCst) > before);
    loop_task.abort();
}

#[tokio::test]
async fn new_account_is_picked_up_on_unknown_password() {
    let settings = AuthSettings {
        unknown_password_refetch: Duration::ZERO,
        ..fast_settings()
    };
    let h = start_with(settings, None, true).await;
    assert_eq!(h.source.fetches.load(Ordering::SeqCst), 1);
    let new_pw = "newnewnewnewnewnewnewnewnewnewne";
    h.source
        .accounts
        .lock()
        .expect("lock")
        .push(account("new1", new_pw, false));
    let r = get_as(h.addr, ALICE, new_pw).await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains(" new1 "), "{}", r.body);
    assert_eq!(h.source.fetches.load(Ordering::SeqCst), 2);
    // rw1 and ro1 before the refetch, then only the new account.
    assert_eq!(h.auth.stats().argon2_verifications, 3);
    assert_eq!(h.auth.stats().argon2_refresh_checks, 2);
    // Cached from now on.
    assert_eq!(get_as(h.addr, ALICE, new_pw).await.status, 200);
    assert_eq!(h.auth.stats().argon2_verifications, 3);
}

#[tokio::test]
async fn new_account_waits_for_the_refetch_window() {
    let settings = AuthSettings {
        unknown_password_refetch: Duration::from_millis(300),
        ..fast_settings()
    };
    let h = start_with(settings, None, true).await;
    let new_pw = "newnewnewnewnewnewnewnewnewnewne";
    h.source
        .accounts
        .lock()
        .expect("lock")
        .push(account("new1", new_pw, false));
    // The start-up fetch does not close the window: the new account's first
    // use refetches and is admitted.
    let r = get_as(h.addr, ALICE, new_pw).await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains(" new1 "), "{}", r.body);
    assert_eq!(h.source.fetches.load(Ordering::SeqCst), 2);
    // A second account created right after waits for the window.
    let newer_pw = "newernewernewernewernewernewerne";
    h.source
        .accounts
        .lock()
        .expect("lock")
        .push(account("new2", newer_pw, false));
    assert_eq!(get_as(h.addr, ALICE, newer_pw).await.status, 401);
    assert_eq!(h.source.fetches.load(Ordering::SeqCst), 2);
    // The window is a span of time, so the test lets it pass.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let r = get_as(h.addr, ALICE, newer_pw).await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains(" new2 "), "{}", r.body);
    assert_eq!(h.source.fetches.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn wrong_password_storm_fetches_at_most_once_per_window() {
    // No initial refresh: the first unknown password is due for a fetch.
    let h = start_with(fast_settings(), None, false).await;
    let mut jobs = Vec::new();
    for i in 0..20 {
        let addr = h.addr;
        jobs.push(tokio::spawn(async move {
            get_as(addr, ALICE, &format!("wrong{i}")).await.status
        }));
    }
    for j in jobs {
        assert_eq!(j.await.expect("join"), 401);
    }
    assert_eq!(h.source.fetches.load(Ordering::SeqCst), 1);
    // The one fetch loaded the accounts, so the right password works at once.
    assert_eq!(get_as(h.addr, ALICE, RW_PW).await.status, 200);
    assert_eq!(h.source.fetches.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn deleted_account_stops_after_refresh() {
    let h = start().await;
    assert_eq!(get_as(h.addr, ALICE, RW_PW).await.status, 200);
    h.source
        .accounts
        .lock()
        .expect("lock")
        .retain(|a| a.id != "rw1");
    // Still cached until the refresh notices.
    assert_eq!(get_as(h.addr, ALICE, RW_PW).await.status, 200);
    h.auth.refresh_all().await;
    assert_eq!(get_as(h.addr, ALICE, RW_PW).await.status, 401);
    assert_eq!(get_as(h.addr, ALICE, RO_PW).await.status, 200);
}

#[tokio::test]
async fn changed_options_are_applied_after_refresh() {
    let h = start().await;
    assert!(get_as(h.addr, ALICE, RW_PW).await.body.contains("ro=false"));
    for a in h.source.accounts.lock().expect("lock").iter_mut() {
        if a.id == "rw1" {
            a.readonly = true;
        }
    }
    h.auth.refresh_all().await;
    assert!(get_as(h.addr, ALICE, RW_PW).await.body.contains("ro=true"));
    assert_eq!(
        h.auth.stats().argon2_hashes,
        2,
        "password unchanged: no re-hash"
    );
}

#[tokio::test]
async fn options_without_credentials_passes() {
    let h = start().await;
    let r = send(h.addr, "OPTIONS", "/", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("dav"), Some("1, 2"));
    assert_eq!(r.header("ms-author-via"), Some("DAV"));
    assert!(r.header("www-authenticate").is_none());
    let r = send(h.addr, "OPTIONS", "*", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("dav"), Some("1, 2"));
    // A wrong password on OPTIONS does not turn into a 401 either.
    let auth = basic(ALICE, "wrong");
    let r = send(h.addr, "OPTIONS", "/", &[("Authorization", &auth)]).await;
    assert_eq!(r.status, 200);
    assert_eq!(h.stub.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn read_only_account_is_refused_every_mutating_method() {
    let h = start().await;
    let auth = basic(ALICE, RO_PW);
    for m in [
        "PUT",
        "DELETE",
        "MKCOL",
        "COPY",
        "MOVE",
        "PROPPATCH",
        "LOCK",
        "UNLOCK",
        "PATCH",
        "POST",
    ] {
        let r = send(h.addr, m, "/f", &[("Authorization", &auth)]).await;
        assert_eq!(r.status, 403, "{m}");
    }
    assert_eq!(h.stub.calls.load(Ordering::SeqCst), 0);
    let r = send(h.addr, "GET", "/f", &[("Authorization", &auth)]).await;
    assert_eq!(r.status, 200);
    let r = send(h.addr, "OPTIONS", "/", &[("Authorization", &auth)]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("dav"), Some("1"));
    assert_eq!(r.header("allow"), Some(front::READ_ONLY_ALLOW));
    // A read-write account gets the inner service's answer untouched.
    let rw = basic(ALICE, RW_PW);
    let r = send(h.addr, "OPTIONS", "/", &[("Authorization", &rw)]).await;
    assert_eq!(r.header("dav"), Some("1, 2, 3"));
    let r = send(h.addr, "PUT", "/f", &[("Authorization", &rw)]).await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn traversal_and_bad_encoding_get_400_and_never_reach_inner() {
    let h = start().await;
    let auth = basic(ALICE, RW_PW);
    for target in [
        "/../x",
        "/a/../../x",
        "/%2e%2e/x",
        "/%2E%2e/x",
        "/./x",
        "/a%2fb",
        "/a\\b",
        "/a%5cb",
        "/%00",
        "/a%0d%0ab",
        "/%zz",
        "/%c3",
        "http://test/x",
    ] {
        let r = send(h.addr, "GET", target, &[("Authorization", &auth)]).await;
        assert_eq!(r.status, 400, "{target}");
    }
    // Destination gets the same treatment.
    for dest in ["/../x", "http://test/a%2fb", "/a%5cb"] {
        let r = send(
            h.addr,
            "MOVE",
            "/a",
            &[("Authorization", &auth), ("Destination", dest)],
        )
        .await;
        assert_eq!(r.status, 400, "{dest}");
    }
    let r = send(
        h.addr,
        "MOVE",
        "/a",
        &[
            ("Authorization", &auth),
            ("Destination", "http://elsewhere/b"),
        ],
    )
    .await;
    assert_eq!(r.status, 502);
    assert_eq!(h.stub.calls.load(Ordering::SeqCst), 0);
}

/// Splits a stream of responses (each with `Content-Length`).
fn parse_all(raw: &[u8]) -> Vec<Resp> {
    let mut out = Vec::new();
    let mut rest = raw;
    while !rest.is_empty() {
        let head_len = rest
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("complete response head")
            + 4;
        let head = parse(&rest[..head_len]);
        let len: usize = head
            .header("content-length")
            .expect("content-length")
            .parse()
            .expect("length");
        out.push(parse(&rest[..head_len + len]));
        rest = &rest[head_len + len..];
    }
    out
}

#[tokio::test]
async fn fragment_in_request_target_gets_400_and_never_reaches_inner() {
    let h = start().await;
    let auth = basic(ALICE, RW_PW);
    for (method, target) in [
        ("DELETE", "/x/#frag"),
        ("DELETE", "/litmus/frag/#ment"),
        ("PROPFIND", "/#frag"),
        ("GET", "/#"),
        ("GET", "/a?x#y"),
        ("GET", "http://test/a#b"),
    ] {
        let r = send(
            h.addr,
            method,
            target,
            &[("Authorization", &auth), ("Depth", "0")],
        )
        .await;
        assert_eq!(r.status, 400, "{method} {target}");
    }
    // Without credentials too: nothing is looked at before the 400.
    assert_eq!(send(h.addr, "DELETE", "/x/#frag", &[]).await.status, 400);
    assert_eq!(h.stub.calls.load(Ordering::SeqCst), 0);
    // An encoded `#` is an ordinary path character.
    let r = send(h.addr, "GET", "/a%23b", &[("Authorization", &auth)]).await;
    assert_eq!(r.status, 200);
    assert!(r.body.starts_with("GET /a%23b "), "{}", r.body);
}

/// hyper answers the refused request with 400 and closes the connection:
/// requests pipelined after it are never answered.
#[tokio::test]
async fn fragment_request_closes_a_keep_alive_connection() {
    let h = start().await;
    let auth = basic(ALICE, RW_PW);
    let keep = |method: &str, target: &str| {
        format!("{method} {target} HTTP/1.1\r\nHost: test\r\nAuthorization: {auth}\r\n\r\n")
    };
    let raw = [
        keep("GET", "/x"),
        keep("DELETE", "/x/#frag"),
        keep("GET", "/y"),
    ]
    .concat();
    let mut s = TcpStream::connect(h.addr).await.expect("connect");
    s.write_all(raw.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut buf))
        .await
        .expect("connection closed in time")
        .expect("read");
    let resps = parse_all(&buf);
    let statuses: Vec<u16> = resps.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 400]);
    assert!(resps[0].body.starts_with("GET /x "));
    assert_eq!(h.stub.calls.load(Ordering::SeqCst), 1);
}

/// Bodies that look like requests with fragments arrive byte-exact, and the
/// framing stays in step for the requests that follow on the connection.
#[tokio::test]
async fn bodies_with_fragments_and_fake_requests_arrive_byte_exact() {
    let h = start().await;
    let auth = basic(ALICE, RW_PW);
    let body = "a#b\r\n\r\nDELETE /#x HTTP/1.1\r\nContent-Length: 0\r\n\r\n#";
    let mut raw = format!(
        "PUT /echo HTTP/1.1\r\nHost: test\r\nAuthorization: {auth}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    raw.push_str(&format!(
        "PUT /echo HTTP/1.1\r\nHost: test\r\nAuthorization: {auth}\r\nTransfer-Encoding: chunked\r\n\r\n\
         3;x=#\r\na#b\r\n{:x}\r\n{}\r\n0\r\nX-T: #\r\n\r\n",
        body.len() - 3,
        &body[3..],
    ));
    raw.push_str(
        &String::from_utf8(raw_request("GET", "/x", &[("Authorization", &auth)])).expect("ascii"),
    );
    let mut s = TcpStream::connect(h.addr).await.expect("connect");
    s.write_all(raw.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut buf))
        .await
        .expect("connection closed in time")
        .expect("read");
    let resps = parse_all(&buf);
    let statuses: Vec<u16> = resps.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 200, 200]);
    assert_eq!(resps[0].body, body);
    assert_eq!(resps[1].body, body);
    assert!(resps[2].body.starts_with("GET /x "));
    assert_eq!(h.stub.calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn panicking_inner_gives_500_and_server_keeps_serving() {
    let h = start().await;
    let r = send(
        h.addr,
        "GET",
        "/panic",
        &[("Authorization", &basic(ALICE, RW_PW))],
    )
    .await;
    assert_eq!(r.status, 500);
    assert_eq!(get_as(h.addr, ALICE, RW_PW).await.status, 200);
}

#[tokio::test]
async fn headers_that_panic_dav_server_get_400() {
    let h = start().await;
    let auth = basic(ALICE, RW_PW);
    for (name, value) in [
        ("If-Match", "\""),
        ("If-None-Match", "\""),
        ("If", "(<urn:uuid:x"),
        ("If", "([\"etag\""),
        ("Depth", "2"),
    ] {
        let r = send(
            h.addr,
            "PUT",
            "/f",
            &[("Authorization", &auth), (name, value)],
        )
        .await;
        assert_eq!(r.status, 400, "{name}: {value}");
    }
    assert_eq!(h.stub.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn propfind_needs_finite_depth() {
    let h = start().await;
    let auth = basic(ALICE, RW_PW);
    for depth in [None, Some("infinity")] {
        let mut headers = vec![("Authorization", auth.as_str())];
        if let Some(d) = depth {
            headers.push(("Depth", d));
        }
        let r = send(h.addr, "PROPFIND", "/", &headers).await;
        assert_eq!(r.status, 403, "{depth:?}");
        assert!(r.body.contains("<D:propfind-finite-depth/>"), "{}", r.body);
    }
    for d in ["0", "1"] {
        let r = send(
            h.addr,
            "PROPFIND",
            "/",
            &[("Authorization", &auth), ("Depth", d)],
        )
        .await;
        assert_eq!(r.status, 200, "{d}");
    }
    // Unauthenticated PROPFIND without Depth is a 401, not a 403.
    assert_eq!(send(h.addr, "PROPFIND", "/", &[]).await.status, 401);
}

#[tokio::test]
async fn tls_with_self_signed_certificate() {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
    let dir = tempfile::tempdir().expect("tempdir");
    let paths = TlsPaths {
        cert: dir.path().join("cert.pem"),
        key: dir.path().join("key.pem"),
    };
    std::fs::write(&paths.cert, ck.cert.pem()).expect("write cert");
    std::fs::write(&paths.key, ck.signing_key.serialize_pem()).expect("write key");
    let acceptor = front::load_tls(&paths).expect("load tls");
    let h = start_with(fast_settings(), Some(acceptor), true).await;

    let mut roots = rustls::RootCertStore::empty();
    roots.add(ck.cert.der().clone()).expect("root");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(h.addr).await.expect("connect");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let tls = connector.connect(name, tcp).await.expect("handshake");
    let auth = basic(ALICE, RW_PW);
    let r = exchange(tls, &raw_request("GET", "/x", &[("Authorization", &auth)])).await;
    assert_eq!(r.status, 200);
    assert!(r.body.starts_with("GET /x alice@example.com rw1"));

    // The fragment filter works inside TLS too.
    let tcp = TcpStream::connect(h.addr).await.expect("connect");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let tls = connector.connect(name, tcp).await.expect("handshake");
    let raw = raw_request("DELETE", "/x/#frag", &[("Authorization", &auth)]);
    assert_eq!(exchange(tls, &raw).await.status, 400);
    assert_eq!(h.stub.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn graceful_shutdown_lets_in_flight_request_finish() {
    let mut h = start().await;
    let addr = h.addr;
    let slow = tokio::spawn(async move {
        send(
            addr,
            "GET",
            "/slow",
            &[("Authorization", &basic(ALICE, RW_PW))],
        )
        .await
    });
    tokio::time::timeout(WAIT, h.entered.recv())
        .await
        .expect("request reached the stub in time")
        .expect("channel open");
    // An idle keep-alive connection must not hold up the shutdown.
    let mut idle = TcpStream::connect(addr).await.expect("connect idle");
    h.shutdown.take().expect("sender").send(()).expect("signal");
    assert!(!h.task.is_finished());
    h.stub.release.notify_one();
    let r = tokio::time::timeout(WAIT, slow)
        .await
        .expect("slow response in time")
        .expect("join");
    assert_eq!(r.status, 200);
    assert!(r.body.starts_with("GET /slow"));
    tokio::time::timeout(WAIT, h.task)
        .await
        .expect("server stopped in time")
        .expect("join")
        .expect("serve ok");
    // The idle connection was closed, and nothing listens any more.
    let mut buf = [0u8; 1];
    let n = tokio::time::timeout(WAIT, idle.read(&mut buf))
        .await
        .expect("idle closed in time")
        .unwrap_or(0);
    assert_eq!(n, 0);
    assert!(TcpStream::connect(addr).await.is_err());
}
