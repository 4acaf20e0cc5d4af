//! Runs Debian's litmus 0.13 (suites `basic`, `copymove`, `props`, `locks`,
//! `http`) against a
//! fresh `demo` (the gateway in front of the embedded emulator) through
//! `litmus/run.sh`, which installs litmus when it is missing. The run must
//! pass every test with zero warnings.

use std::process::Stdio;
use std::time::Duration;

use cloudreve_dav::demo;
use tokio::net::TcpListener;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn litmus_all_suites_pass_with_no_warnings() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let demo = demo::start(None, listener, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("demo starts");
    let info = demo.info.clone();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/litmus/run.sh");
    let run = tokio::process::Command::new("bash")
        .arg(script)
        .env("LITMUS_URL", &info.webdav_url)
        .env("LITMUS_USER", &info.username)
        .env("LITMUS_PASSWORD", &info.password)
        .env("LITMUS_SUITES", "basic copymove props locks http")
        .stdin(Stdio::null())
        .output();
    let output = tokio::time::timeout(Duration::from_secs(600), run)
        .await
        .expect("litmus finishes within 10 minutes")
        .expect("litmus/run.sh starts");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    demo.shutdown().await.expect("demo stops");
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
