//! The command line as a user runs it: `demo` and `emulator` print their
//! JSON line when ready, serve, and stop on SIGTERM; `demo --data` keeps
//! files and credentials across runs.

use crate::support::upstream::TestUpstream;

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_cloudreve-dav");
const WAIT: Duration = Duration::from_secs(60);

/// Starts the binary and returns it with the first stdout line parsed as JSON.
async fn start(args: &[&str]) -> (Child, Value) {
    let mut child = Command::new(BIN)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("binary starts");
    let stdout = child.stdout.take().expect("stdout piped");
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(WAIT, lines.next_line())
        .await
        .expect("JSON line within a minute")
        .expect("stdout readable")
        .expect("one line before exit");
    let value: Value = serde_json::from_str(&line).expect("the first line is JSON");
    // Nothing else may follow on stdout.
    tokio::spawn(async move {
        if let Ok(Some(extra)) = lines.next_line().await {
            panic!("unexpected second stdout line: {extra}");
        }
    });
    (child, value)
}

/// Sends SIGTERM and waits for a clean exit.
async fn terminate(mut child: Child) {
    let pid = child.id().expect("running").to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let exit = tokio::time::timeout(WAIT, child.wait())
        .await
        .expect("exits after SIGTERM")
        .expect("wait works");
    assert!(exit.success(), "clean exit after SIGTERM, got {exit}");
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
}

async fn dav(
    client: &reqwest::Client,
    method: &str,
    url: &str,
    user: &str,
    pass: &str,
    body: Option<&'static str>,
) -> reqwest::Response {
    let mut req = client
        .request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url)
        .basic_auth(user, Some(pass));
    if method == "PROPFIND" {
        req = req.header("Depth", "1");
    }
    if let Some(b) = body {
        req = req.body(b);
    }
    req.send().await.expect("request sent")
}

#[tokio::test]
async fn demo_prints_one_json_line_and_serves_both_accounts() {
    let (child, info) = start(&["demo", "--listen", "127.0.0.1:0"]).await;
    for key in [
        "webdav_url",
        "upstream_url",
        "username",
        "password",
        "readonly_password",
        "login_password",
    ] {
        assert!(!s(&info, key).is_empty(), "{key} empty");
    }
    let url = s(&info, "webdav_url");
    assert!(url.starts_with("http://127.0.0.1:") && url.ends_with('/'));
    let user = s(&info, "username");
    let rw = s(&info, "password");
    let ro = s(&info, "readonly_password");
    assert_ne!(rw, ro);
    let http = reqwest::Client::new();

    let r = dav(&http, "PROPFIND", url, user, rw, None).await;
    assert_eq!(r.status().as_u16(), 207);
    let file = format!("{url}hello.txt");
    let r = dav(&http, "PUT", &file, user, rw, Some("hello")).await;
    assert_eq!(r.status().as_u16(), 201);
    let r = dav(&http, "GET", &file, user, ro, None).await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.text().await.unwrap(), "hello");
    let r = dav(&http, "PUT", &file, user, ro, Some("no")).await;
    assert_eq!(r.status().as_u16(), 403, "read-only account cannot write");
    let r = dav(&http, "GET", &file, user, "wrong-password", None).await;
    assert_eq!(r.status().as_u16(), 401);
    assert!(r.headers().contains_key("www-authenticate"));

    terminate(child).await;
}

#[tokio::test]
async fn demo_data_dir_keeps_files_and_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let (child, first) = start(&["demo", "--listen", "127.0.0.1:0", "--data", data]).await;
    let http = reqwest::Client::new();
    let url = s(&first, "webdav_url").to_string();
    let user = s(&first, "username").to_string();
    let rw = s(&first, "password").to_string();
    let r = dav(
        &http,
        "PUT",
        &format!("{url}kept.txt"),
        &user,
        &rw,
        Some("kept"),
    )
    .await;
    assert_eq!(r.status().as_u16(), 201);
    terminate(child).await;

    let (child, second) = start(&["demo", "--listen", "127.0.0.1:0", "--data", data]).await;
    for key in ["password", "readonly_password", "login_password"] {
        assert_eq!(s(&first, key), s(&second, key), "{key} kept across runs");
    }
    let url = s(&second, "webdav_url");
    let r = dav(&http, "GET", &format!("{url}kept.txt"), &user, &rw, None).await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.text().await.unwrap(), "kept");
    terminate(child).await;
}

#[tokio::test]
async fn emulator_prints_upstream_url_and_signs_in_cli_users() {
    let dir = tempfile::tempdir().unwrap();
    let (child, info) = start(&[
        "emulator",
        "--listen",
        "127.0.0.1:0",
        "--data",
        dir.path().to_str().unwrap(),
        "--user",
        "alice@example.com:alice-password",
    ])
    .await;
    let upstream = s(&info, "upstream_url");
    let client = cloudreve_dav::cloudreve::Client::new(upstream).unwrap();
    assert!(!client.ping().await.unwrap().is_empty());
    let session = client
        .sign_in("alice@example.com", "alice-password")
        .await
        .expect("CLI user signs in");
    // CLI users have the WebDAV group permission: they can make accounts.
    let account = session
        .create_dav_account(
            &cloudreve_dav::cloudreve::CrUri::my(),
            "cli",
            Default::default(),
        )
        .await
        .expect("WebDAV account created");
    assert_eq!(account.password.len(), 32);
    terminate(child).await;
}

#[tokio::test]
async fn serve_reads_toml_and_secret_file_serves_tls_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = TestUpstream::start(dir.path()).await;
    emulator
        .add_user("srv@example.com", "srv-login-password")
        .await;
    let session = cloudreve_dav::cloudreve::Client::new(&emulator.url())
        .unwrap()
        .sign_in("srv@example.com", "srv-login-password")
        .await
        .unwrap();
    let account = session
        .create_dav_account(
            &cloudreve_dav::cloudreve::CrUri::my(),
            "serve",
            Default::default(),
        )
        .await
        .unwrap();

    // The sign-in password comes from a file; nothing secret is on the
    // command line.
    let secret = dir.path().join("login.password");
    std::fs::write(&secret, "srv-login-password\n").unwrap();
    // Secrets files must not be readable by group or others.
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let config = dir.path().join("cloudreve-dav.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\nupstream = \"{}\"\ntls_cert = {:?}\ntls_key = {:?}\n\n[[users]]\nemail = \"srv@example.com\"\npassword_file = {:?}\n",
            emulator.url(),
            cert,
            key,
            secret
        ),
    )
    .unwrap();

    let mut child = Command::new(BIN)
        .args(["serve", "--config", config.to_str().unwrap()])
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Ready when it logs that it is serving.
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    tokio::time::timeout(WAIT, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("serving WebDAV") {
                return;
            }
        }
        panic!("serve exited before it was ready");
    })
    .await
    .expect("serve ready within a minute");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_der(ck.cert.der()).unwrap())
        .resolve(
            "localhost",
            std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        )
        .build()
        .unwrap();
    let url = format!("https://localhost:{port}/");
    let r = dav(
        &http,
        "PROPFIND",
        &url,
        "srv@example.com",
        &account.password,
        None,
    )
    .await;
    assert_eq!(r.status().as_u16(), 207, "PROPFIND over TLS");
    let r = dav(&http, "PROPFIND", &url, "srv@example.com", "nope", None).await;
    assert_eq!(r.status().as_u16(), 401);

    terminate(child).await;
    emulator.shutdown().await;
}
