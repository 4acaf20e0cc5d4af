//! Runs Debian's litmus 0.13 (suites `basic`, `copymove`, `props`, `locks`,
//! `http`) against the gateway, wired as in production, in front of the
//! test's upstream (the emulator, or a real Cloudreve with `CLOUDREVE_BIN`),
//! through `litmus/run.sh`, which installs litmus when it is missing. The
//! run must pass every test with zero warnings.

use std::process::Stdio;
use std::time::Duration;

use crate::support::stack::{EMAIL, Stack};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn litmus_all_suites_pass_with_no_warnings() {
    // One real client at a time (see tests/areas/clients.rs).
    let _turn = crate::client_common::SERIAL.lock().await;
    let stack = Stack::start().await;
    let (_, password) = stack.account("/litmus-root", false).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/litmus/run.sh");
    let run = tokio::process::Command::new("bash")
        .arg(script)
        .env("LITMUS_URL", stack.webdav_url())
        .env("LITMUS_USER", EMAIL)
        .env("LITMUS_PASSWORD", &password)
        .env("LITMUS_SUITES", "basic copymove props locks http")
        .stdin(Stdio::null())
        .output();
    let output = tokio::time::timeout(Duration::from_secs(600), run)
        .await
        .expect("litmus finishes within 10 minutes")
        .expect("litmus/run.sh starts");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    stack.stop().await;
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        output.status.success(),
        "litmus/run.sh failed ({}): see the output above",
        output.status
    );
    for suite in ["basic", "copymove", "props", "locks", "http"] {
        assert!(
            stdout.contains(&format!("summary for `{suite}'")),
            "no summary for suite {suite}"
        );
    }
}
