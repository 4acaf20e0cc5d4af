//! Observability as a monitoring system sees it: the admin address's
//! `/healthz`, `/readyz` and `/metrics` (counters moved by exactly what the
//! clients did), and JSON logs with a request id on every line of a request
//! and Cloudreve's correlation id on upstream errors.

use std::collections::HashMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

const BIN: &str = env!("CARGO_BIN_EXE_cloudreve-dav");
const WAIT: Duration = Duration::from_secs(60);

/// Starts the binary; returns it, its first stdout line as JSON and its
/// stderr lines.
async fn start(
    args: &[&str],
    env: &[(&str, &str)],
) -> (Child, Value, mpsc::UnboundedReceiver<String>) {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("binary starts");
    let (tx, rx) = mpsc::unbounded_channel();
    let mut err = BufReader::new(child.stderr.take().unwrap()).lines();
    tokio::spawn(async move {
        while let Ok(Some(l)) = err.next_line().await {
            let _ = tx.send(l);
        }
    });
    if args[0] == "serve" {
        // `serve` prints nothing on stdout; its logs tell when it is ready.
        return (child, Value::Null, rx);
    }
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(WAIT, out.next_line())
        .await
        .expect("ready within a minute")
        .unwrap()
        .unwrap_or_default();
    let v = serde_json::from_str(&line).unwrap_or(Value::Null);
    (child, v, rx)
}

/// Parses the Prometheus text into `series{labels}` → value.
fn scrape_text(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

async fn scrape(http: &reqwest::Client, admin: &str) -> HashMap<String, f64> {
    let r = http.get(format!("{admin}metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    scrape_text(&r.text().await.unwrap())
}

fn get(m: &HashMap<String, f64>, key: &str) -> f64 {
    m.get(key).copied().unwrap_or(0.0)
}

fn sum_prefix(m: &HashMap<String, f64>, prefix: &str) -> f64 {
    m.iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .map(|(_, v)| v)
        .sum()
}

#[tokio::test]
async fn metrics_count_requests_bytes_auth_failures_locks_and_upstream_calls() {
    let (mut child, info, _logs) = start(&["demo", "--listen", "127.0.0.1:0"], &[]).await;
    let admin = info["admin_url"]
        .as_str()
        .expect("admin_url in the JSON line")
        .to_string();
    let url = info["webdav_url"].as_str().unwrap().to_string();
    let user = info["username"].as_str().unwrap().to_string();
    let pass = info["password"].as_str().unwrap().to_string();
    assert_ne!(
        admin.trim_end_matches('/'),
        url.trim_end_matches('/'),
        "admin is off the WebDAV address"
    );
    let http = reqwest::Client::new();

    let h = http.get(format!("{admin}healthz")).send().await.unwrap();
    assert_eq!(h.status(), 200);
    let r = http.get(format!("{admin}readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "ready: Cloudreve 4.18.0\n");
    // The admin paths are not in the WebDAV namespace.
    let r = http
        .get(format!("{url}metrics"))
        .basic_auth(&user, Some(&pass))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    let before = scrape(&http, &admin).await;
    let mut sent = 0usize;
    let mut received = 0usize;
    let file = format!("{url}metered.txt");
    let body = "twelve bytes";
    let r = http
        .put(&file)
        .basic_auth(&user, Some(&pass))
        .body(body)
        .send()
        .await
        .unwrap();
    sent += body.len();
    assert_eq!(r.status(), 201);
    received += r.bytes().await.unwrap().len();
    for _ in 0..2 {
        let r = http
            .get(&file)
            .basic_auth(&user, Some(&pass))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let b = r.bytes().await.unwrap();
        assert_eq!(&b[..], body.as_bytes());
        received += b.len();
    }
    let r = http
        .get(&file)
        .basic_auth(&user, Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    received += r.bytes().await.unwrap().len();
    let lock_body = "<?xml version=\"1.0\"?><D:lockinfo xmlns:D=\"DAV:\"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>";
    let r = http
        .request(reqwest::Method::from_bytes(b"LOCK").unwrap(), &file)
        .basic_auth(&user, Some(&pass))
        .header("Timeout", "Second-600")
        .body(lock_body)
        .send()
        .await
        .unwrap();
    sent += lock_body.len();
    assert_eq!(r.status(), 200);
    received += r.bytes().await.unwrap().len();

    let after = scrape(&http, &admin).await;
    let delta = |k: &str| get(&after, k) - get(&before, k);
    assert_eq!(
        delta("cloudreve_dav_requests_total{method=\"PUT\",status=\"201\"}"),
        1.0
    );
    assert_eq!(
        delta("cloudreve_dav_requests_total{method=\"GET\",status=\"200\"}"),
        2.0
    );
    assert_eq!(
        delta("cloudreve_dav_requests_total{method=\"GET\",status=\"401\"}"),
        1.0
    );
    assert_eq!(
        delta("cloudreve_dav_requests_total{method=\"LOCK\",status=\"200\"}"),
        1.0
    );
    assert_eq!(
        delta("cloudreve_dav_request_duration_seconds_count{method=\"GET\"}"),
        3.0
    );
    assert_eq!(
        delta("cloudreve_dav_auth_failures_total{reason=\"invalid\"}"),
        1.0
    );
    assert_eq!(delta("cloudreve_dav_request_body_bytes_total"), sent as f64);
    assert_eq!(
        delta("cloudreve_dav_response_body_bytes_total"),
        received as f64
    );
    assert_eq!(get(&after, "cloudreve_dav_active_locks"), 1.0);
    let calls = |m: &HashMap<String, f64>| sum_prefix(m, "cloudreve_dav_upstream_calls_total{");
    assert!(calls(&after) > calls(&before), "upstream calls counted");
    assert!(
        after.keys().any(
            |k| k.starts_with("cloudreve_dav_upstream_calls_total{endpoint=\"/file/")
                && k.contains("code=\"200\"")
        ),
        "file endpoints with their status: {after:?}"
    );
    let _ = child.start_kill();
}

/// Waits for a log line (a JSON object) matching `pred`.
async fn wait_log(
    rx: &mut mpsc::UnboundedReceiver<String>,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = tokio::time::timeout(left, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("no log line: {what}"))
            .unwrap_or_else(|| panic!("stderr closed before: {what}"));
        if let Ok(v) = serde_json::from_str::<Value>(&line)
            && pred(&v)
        {
            return v;
        }
    }
}

fn request_id_of(v: &Value) -> Option<&str> {
    v.get("span")
        .filter(|s| s["name"] == "request")?
        .get("id")?
        .as_str()
}

#[tokio::test]
async fn readyz_follows_the_upstream_and_json_logs_carry_request_and_correlation_ids() {
    let data = tempfile::tempdir().unwrap();
    let email = "obs@example.com";
    let (mut emu, e, _emu_logs) = start(
        &[
            "emulator",
            "--listen",
            "127.0.0.1:0",
            "--data",
            data.path().to_str().unwrap(),
            "--user",
            &format!("{email}:pw-obs"),
        ],
        &[],
    )
    .await;
    let upstream = e["upstream_url"].as_str().unwrap().to_string();
    let session = cloudreve_dav::cloudreve::Client::new(&upstream)
        .unwrap()
        .sign_in(email, "pw-obs")
        .await
        .unwrap();
    let account = session
        .create_dav_account(
            &cloudreve_dav::cloudreve::CrUri::my(),
            "obs",
            Default::default(),
        )
        .await
        .unwrap();
    let state = tempfile::tempdir().unwrap();
    let (mut gw, _, mut logs) = start(
        &[
            "serve",
            "--upstream",
            &upstream,
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--state-dir",
            state.path().to_str().unwrap(),
        ],
        &[
            ("CLOUDREVE_DAV_USER_EMAIL", email),
            ("CLOUDREVE_DAV_USER_PASSWORD", "pw-obs"),
            ("RUST_LOG", "info,cloudreve_dav::cloudreve=debug"),
        ],
    )
    .await;
    let ready = wait_log(&mut logs, "serving WebDAV", |v| {
        v["fields"]["message"] == "serving WebDAV"
    })
    .await;
    let url = ready["fields"]["url"].as_str().unwrap().to_string();
    let admin = ready["fields"]["admin"].as_str().unwrap().to_string();
    let http = reqwest::Client::new();
    assert_eq!(
        http.get(format!("{admin}readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // A request for a missing file: every line it logs carries its request id,
    // and the upstream error line carries Cloudreve's correlation id.
    // The account list is read in the background after start-up.
    let deadline = Instant::now() + WAIT;
    let r = loop {
        let r = http
            .get(format!("{url}missing/nothing.txt"))
            .basic_auth(email, Some(&account.password))
            .send()
            .await
            .unwrap();
        if r.status() != 401 || Instant::now() > deadline {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(r.status(), 404);
    let rid = r.headers()["x-request-id"].to_str().unwrap().to_string();
    let upstream_err = wait_log(&mut logs, "upstream error line", |v| {
        v["fields"]["message"] == "cloudreve upstream error"
    })
    .await;
    assert_eq!(
        request_id_of(&upstream_err),
        Some(rid.as_str()),
        "{upstream_err}"
    );
    let cid = upstream_err["fields"]["correlation_id"]
        .as_str()
        .unwrap_or_default();
    assert!(!cid.is_empty(), "correlation id logged: {upstream_err}");
    let access = wait_log(&mut logs, "access line", |v| v["target"] == "access").await;
    assert_eq!(request_id_of(&access), Some(rid.as_str()), "{access}");
    assert_eq!(access["fields"]["status"], 404);

    // Upstream gone: /readyz turns 503 (within the cache time), /healthz stays 200.
    emu.kill().await.unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        let r = http.get(format!("{admin}readyz")).send().await.unwrap();
        if r.status() == 503 {
            assert!(r.text().await.unwrap().contains("upstream unreachable"));
            break;
        }
        assert!(Instant::now() < deadline, "/readyz never turned 503");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        http.get(format!("{admin}healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let _ = gw.start_kill();
}
