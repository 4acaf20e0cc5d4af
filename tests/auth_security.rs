//! Authentication hardening of a full gateway against the emulator:
//! failed-login throttling per address and per user (429 + `Retry-After`)
//! that never locks out the owner from another address, and logs free of
//! passwords, Basic credentials and upstream tokens even at trace level.
//! (Loose permissions on secrets files: `config` unit tests and
//! `secrets_file_with_loose_permissions_is_refused_at_start` below.)

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::support::upstream::TestUpstream;
use base64::Engine as _;
use cloudreve_dav::cloudreve::{Client, CrUri};
use cloudreve_dav::config::{self, ServeArgs};
use cloudreve_dav::gateway;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_cloudreve-dav");
const EMAIL: &str = "sec@example.com";
const LOGIN_PASSWORD: &str = "Login-Passw0rd-3e9f1c";
const WAIT: Duration = Duration::from_secs(60);

struct Setup {
    dir: tempfile::TempDir,
    emu: TestUpstream,
    dav_password: String,
    port: u16,
}

fn private_file(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::write(path, text).expect("write");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

impl Setup {
    async fn new() -> Setup {
        let dir = tempfile::tempdir().expect("tempdir");
        let emu = TestUpstream::start(dir.path()).await;
        emu.add_user(EMAIL, LOGIN_PASSWORD).await;
        let session = Client::new(&emu.url())
            .expect("client")
            .sign_in(EMAIL, LOGIN_PASSWORD)
            .await
            .expect("sign in");
        let account = session
            .create_dav_account(&CrUri::my(), "sec", Default::default())
            .await
            .expect("account");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        Setup {
            dir,
            emu,
            dav_password: account.password,
            port,
        }
    }

    /// Writes the password file and a config file with `extra` keys.
    fn config(&self, extra: &str) -> PathBuf {
        let pw = self.dir.path().join("login.password");
        private_file(&pw, &format!("{LOGIN_PASSWORD}\n"));
        let path = self.dir.path().join("gw.toml");
        std::fs::write(
            &path,
            format!(
                "listen = \"127.0.0.1:{}\"\nupstream = \"{}\"\nstate_dir = {:?}\nspool_dir = {:?}\n{extra}\n[[users]]\nemail = \"{EMAIL}\"\npassword_file = {:?}\n",
                self.port,
                self.emu.url(),
                self.dir.path().join("state"),
                self.dir.path().join("spool"),
                pw,
            ),
        )
        .expect("write config");
        path
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }
}

/// A client whose connections come from `ip` (any 127.0.0.0/8 address
/// works on Linux loopback).
fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<IpAddr>().expect("ip"))
        .build()
        .expect("client")
}

async fn propfind(c: &reqwest::Client, url: &str, user: &str, password: &str) -> reqwest::Response {
    c.request(reqwest::Method::from_bytes(b"PROPFIND").expect("m"), url)
        .header("depth", "0")
        .basic_auth(user, Some(password))
        .send()
        .await
        .expect("request")
}

/// Status, and `Retry-After` when 429 (which must be 1..=600 seconds).
async fn attempt(c: &reqwest::Client, url: &str, user: &str, password: &str) -> u16 {
    let r = propfind(c, url, user, password).await;
    let status = r.status().as_u16();
    if status == 429 {
        let ra: u64 = r
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .expect("429 carries Retry-After in seconds");
        assert!((1..=600).contains(&ra), "Retry-After {ra}");
    }
    status
}

#[tokio::test]
async fn failed_logins_are_throttled_without_locking_out_the_owner() {
    let s = Setup::new().await;
    let cfg_path = s.config(
        "login_failure_window_secs = 600\nlogin_max_failures_per_user_address = 3\nlogin_max_failures_per_address = 8\nlogin_max_failures_per_user = 5\n",
    );
    let cfg = config::load_with_env(
        &ServeArgs {
            config: Some(cfg_path),
            ..ServeArgs::default()
        },
        &|_| None,
    )
    .expect("config");
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", s.port))
        .await
        .expect("bind");
    let gw = gateway::start(&cfg, listener).await.expect("gateway");
    let url = s.url();
    let good = s.dav_password.as_str();

    // Attacker A: three wrong passwords, then refused without a check,
    // even with the right password.
    let a = client_from("127.0.0.11");
    for i in 0..3 {
        assert_eq!(attempt(&a, &url, EMAIL, &format!("guess-{i}")).await, 401);
    }
    assert_eq!(attempt(&a, &url, EMAIL, "guess-3").await, 429);
    assert_eq!(attempt(&a, &url, EMAIL, good).await, 429);

    // Attackers B1, B2 fail once each: the user's budget (5) is spent, so
    // every address that failed for this user is slowed down...
    let b1 = client_from("127.0.0.21");
    let b2 = client_from("127.0.0.22");
    assert_eq!(attempt(&b1, &url, EMAIL, "guess-b1").await, 401);
    assert_eq!(attempt(&b2, &url, EMAIL, "guess-b2").await, 401);
    assert_eq!(attempt(&b1, &url, EMAIL, "guess-b1-again").await, 429);
    // ...a fresh address gets one try per window...
    let b3 = client_from("127.0.0.23");
    assert_eq!(attempt(&b3, &url, EMAIL, "guess-b3").await, 401);
    assert_eq!(attempt(&b3, &url, EMAIL, "guess-b3-again").await, 429);
    // ...and the owner, from an address that never failed, gets in.
    let owner = client_from("127.0.0.12");
    assert_eq!(attempt(&owner, &url, EMAIL, good).await, 207);
    assert_eq!(attempt(&owner, &url, EMAIL, good).await, 207);
    // Once verified (cached), the right credentials pass even from a
    // throttled address (and that success restarts the address's count).
    assert_eq!(attempt(&a, &url, EMAIL, good).await, 207);
    assert_eq!(attempt(&a, &url, EMAIL, "guess-4").await, 401);

    // Per address: A fails for other user names until its own budget (8)
    // is spent; then even a never-tried user name is refused.
    let a2 = client_from("127.0.0.13");
    for i in 0..8 {
        assert_eq!(
            attempt(&a2, &url, &format!("user{i}@example.com"), "x").await,
            401
        );
    }
    assert_eq!(attempt(&a2, &url, "fresh@example.com", "x").await, 429);
    // Malformed credentials count against the address too.
    let c = client_from("127.0.0.31");
    for _ in 0..8 {
        let r = c
            .request(reqwest::Method::GET, &url)
            .header("authorization", "Basic %%%")
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), 401);
    }
    let r = c
        .request(reqwest::Method::GET, &url)
        .header("authorization", "Basic %%%")
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 429);
    // The owner is still fine.
    assert_eq!(attempt(&owner, &url, EMAIL, good).await, 207);
    gw.shutdown().await.expect("shutdown");
    s.emu.shutdown().await;
}

/// Reads a child's stderr into a shared buffer; returns it and a flag
/// watcher for a line containing `ready`.
fn capture(
    stderr: tokio::process::ChildStderr,
) -> (
    std::sync::Arc<std::sync::Mutex<String>>,
    tokio::sync::oneshot::Receiver<()>,
    tokio::task::JoinHandle<()>,
) {
    let buf = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let (tx, rx) = tokio::sync::oneshot::channel();
    let b = buf.clone();
    let task = tokio::spawn(async move {
        let mut tx = Some(tx);
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("serving WebDAV")
                && let Some(t) = tx.take()
            {
                let _ = t.send(());
            }
            let mut g = b.lock().expect("lock");
            g.push_str(&line);
            g.push('\n');
        }
    });
    (buf, rx, task)
}

/// `s` without ANSI colour sequences (`ESC [ ... letter`).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[tokio::test]
async fn trace_logs_never_hold_passwords_credentials_or_tokens() {
    let s = Setup::new().await;
    crate::skip_on_real!(
        s.emu,
        "moves the upstream clock to force token refreshes and reads every token it issued"
    );
    let cfg = s.config("");
    let mut child = Command::new(BIN)
        .args(["serve", "--config", cfg.to_str().expect("utf8")])
        .env("RUST_LOG", "trace")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("serve starts");
    let (log, ready, reader) = capture(child.stderr.take().expect("stderr"));
    tokio::time::timeout(WAIT, ready)
        .await
        .expect("ready within a minute")
        .expect("serve logged that it is ready");
    let url = s.url();
    let http = reqwest::Client::new();
    let good = s.dav_password.clone();
    let wrong = ["Wr0ng-Passw0rd-a1b2c3", "An0ther-Wr0ng-d4e5f6"];

    assert_eq!(propfind(&http, &url, EMAIL, &good).await.status(), 207);
    for w in wrong {
        assert_eq!(propfind(&http, &url, EMAIL, w).await.status(), 401);
    }
    assert_eq!(
        propfind(&http, &url, "nobody@example.com", wrong[0])
            .await
            .status(),
        401
    );
    let put = |path: &str, body: Vec<u8>| {
        http.put(format!("{url}{path}"))
            .basic_auth(EMAIL, Some(&good))
            .body(body)
            .send()
    };
    assert_eq!(
        put("small.txt", b"hello".to_vec())
            .await
            .expect("put")
            .status(),
        201
    );
    assert_eq!(
        put("big.bin", vec![7u8; 3 * 1024 * 1024])
            .await
            .expect("put")
            .status(),
        201
    );
    // Expire the gateway's upstream access token: the next requests make
    // it refresh (and use the new token).
    let issued_before = s.emu.issued_tokens().len();
    s.emu.advance_clock(Duration::from_secs(3 * 3600));
    assert_eq!(
        put("after.txt", b"again".to_vec())
            .await
            .expect("put")
            .status(),
        201
    );
    let r = http
        .get(format!("{url}small.txt"))
        .basic_auth(EMAIL, Some(&good))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.expect("body").as_ref(), b"hello");
    assert!(
        s.emu.issued_tokens().len() > issued_before,
        "the gateway refreshed its upstream token"
    );

    // Stop the gateway and collect everything it wrote.
    let pid = child.id().expect("running").to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
    tokio::time::timeout(WAIT, child.wait())
        .await
        .expect("exits")
        .expect("wait");
    tokio::time::timeout(WAIT, reader)
        .await
        .expect("stderr drained")
        .expect("reader");
    let text = strip_ansi(&log.lock().expect("lock"));
    if std::env::var_os("SHOW_LOG").is_some() {
        eprintln!("{text}");
    }

    // The log is a real trace log of this run...
    assert!(text.contains("TRACE"), "trace-level lines present");
    assert!(text.contains("status=207") && text.contains("status=401"));
    assert!(text.contains(EMAIL), "the access log names the user");
    // ...and holds none of the secrets.
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let mut secrets: Vec<(String, String)> = vec![
        ("WebDAV password".into(), good.clone()),
        ("Cloudreve login password".into(), LOGIN_PASSWORD.into()),
        ("Basic credentials".into(), b64(&format!("{EMAIL}:{good}"))),
    ];
    for w in wrong {
        secrets.push(("wrong password".into(), w.into()));
        secrets.push((
            "wrong Basic credentials".into(),
            b64(&format!("{EMAIL}:{w}")),
        ));
    }
    let tokens = s.emu.issued_tokens();
    assert!(tokens.len() >= 4, "sign-in and refresh tokens recorded");
    for t in tokens {
        // The whole token and its signature (the part that matters).
        let sig = t.rsplit('.').next().unwrap_or(&t).to_owned();
        secrets.push(("upstream token".into(), t.clone()));
        if sig.len() >= 16 {
            secrets.push(("upstream token signature".into(), sig));
        }
    }
    for (what, secret) in &secrets {
        assert!(
            !text.contains(secret.as_str()),
            "the log holds a {what}: {}",
            text.lines()
                .find(|l| l.contains(secret.as_str()))
                .unwrap_or_default()
        );
    }
    assert!(
        !text.to_ascii_lowercase().contains("authorization: basic"),
        "an Authorization header was logged"
    );
    s.emu.shutdown().await;
}

#[tokio::test]
async fn secrets_file_with_loose_permissions_is_refused_at_start() {
    use std::os::unix::fs::PermissionsExt as _;
    let s = Setup::new().await;
    let cfg = s.config("");
    let pw = s.dir.path().join("login.password");
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let out = tokio::time::timeout(
        WAIT,
        Command::new(BIN)
            .args(["serve", "--config", cfg.to_str().expect("utf8")])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .output(),
    )
    .await
    .expect("exits at once")
    .expect("runs");
    assert!(!out.status.success(), "serve refused to start");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("login.password") && err.contains("0644") && err.contains("chmod 600"),
        "clear error: {err}"
    );
    // Nothing listens.
    assert!(std::net::TcpStream::connect(("127.0.0.1", s.port)).is_err());
    s.emu.shutdown().await;
}
