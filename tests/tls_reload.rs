//! `serve` re-reads its TLS certificate on SIGHUP: new connections see the
//! new certificate, and invalid files keep the old one (with a log line).

use crate::support::upstream::TestUpstream;

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc;

const BIN: &str = env!("CARGO_BIN_EXE_cloudreve-dav");
const WAIT: Duration = Duration::from_secs(60);

/// The DER certificate a fresh TLS connection to `url` is shown.
async fn peer_cert(url: &str) -> Vec<u8> {
    let http = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .tls_info(true)
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let r = http
        .request(reqwest::Method::OPTIONS, url)
        .send()
        .await
        .expect("TLS request");
    assert_eq!(r.status(), 200);
    r.extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|i| i.peer_certificate())
        .expect("peer certificate")
        .to_vec()
}

fn sighup(pid: u32) {
    let ok = std::process::Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .expect("kill runs")
        .success();
    assert!(ok);
}

async fn wait_log(rx: &mut mpsc::UnboundedReceiver<String>, message: &str) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = tokio::time::timeout(left, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("no log line {message:?}"))
            .unwrap_or_else(|| panic!("serve exited before logging {message:?}"));
        if let Ok(v) = serde_json::from_str::<Value>(&line)
            && v["fields"]["message"] == message
        {
            return v;
        }
    }
}

#[tokio::test]
async fn sighup_swaps_the_certificate_and_keeps_it_when_files_are_bad() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = TestUpstream::start(dir.path()).await;
    emulator.add_user("tls@example.com", "tls-pw").await;

    let a = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let b = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, a.cert.pem()).unwrap();
    std::fs::write(&key, a.signing_key.serialize_pem()).unwrap();

    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
        .arg("--upstream")
        .arg(emulator.url())
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .env("CLOUDREVE_DAV_USER_EMAIL", "tls@example.com")
        .env("CLOUDREVE_DAV_USER_PASSWORD", "tls-pw")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    let (tx, mut logs) = mpsc::unbounded_channel();
    let mut err = BufReader::new(child.stderr.take().unwrap()).lines();
    tokio::spawn(async move {
        while let Ok(Some(l)) = err.next_line().await {
            let _ = tx.send(l);
        }
    });
    let ready = wait_log(&mut logs, "serving WebDAV").await;
    let url = ready["fields"]["url"].as_str().unwrap().to_string();
    assert!(url.starts_with("https://"), "{url}");
    assert_eq!(
        peer_cert(&url).await,
        a.cert.der().to_vec(),
        "starts with A"
    );

    // Invalid files: the reload fails, is logged, and A stays.
    std::fs::write(&cert, "not a certificate").unwrap();
    sighup(pid);
    let failed = wait_log(
        &mut logs,
        "TLS reload failed; keeping the current certificate",
    )
    .await;
    assert_eq!(failed["level"], "ERROR");
    assert_eq!(peer_cert(&url).await, a.cert.der().to_vec(), "A kept");

    // A key that does not belong to the certificate is refused too.
    std::fs::write(&cert, b.cert.pem()).unwrap();
    sighup(pid);
    wait_log(
        &mut logs,
        "TLS reload failed; keeping the current certificate",
    )
    .await;
    assert_eq!(peer_cert(&url).await, a.cert.der().to_vec(), "A kept");

    // B with its key: new connections see B.
    std::fs::write(&key, b.signing_key.serialize_pem()).unwrap();
    sighup(pid);
    let deadline = Instant::now() + WAIT;
    loop {
        if peer_cert(&url).await == b.cert.der().to_vec() {
            break;
        }
        assert!(Instant::now() < deadline, "certificate B never served");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_log(&mut logs, "TLS certificate reloaded").await;
    assert!(child.try_wait().unwrap().is_none(), "still serving");
    let _ = child.start_kill();
    emulator.shutdown().await;
}
