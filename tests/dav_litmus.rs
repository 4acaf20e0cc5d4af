//! Runs litmus (`apt-get install litmus`) against a gateway on
//! 127.0.0.1:0: `cargo test --test dav_litmus -- --ignored --nocapture`.
//! Suites from `LITMUS_TESTS` (default `basic copymove props locks http`).

mod dav_common;

use dav_common::{DAV_PASSWORD, EMAIL, Gw};

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the litmus binary"]
async fn litmus() {
    let gw = Gw::start().await;
    let tests =
        std::env::var("LITMUS_TESTS").unwrap_or_else(|_| "basic copymove props locks http".into());
    let out = tokio::process::Command::new("litmus")
        .env("TESTS", &tests)
        .arg(format!("{}/", gw.url))
        .arg(EMAIL)
        .arg(DAV_PASSWORD)
        .output()
        .await
        .expect("run litmus");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    println!("{text}{}", String::from_utf8_lossy(&out.stderr));
    gw.stop().await;
    assert!(out.status.success(), "litmus failed");
    // The only tolerated warning: `delete_fragment` — the `http` crate drops
    // a `#fragment` from the request-target before any of our code runs.
    let warnings = text.matches("WARNING:").count();
    let fragment = text
        .matches("WARNING: DELETE removed collection resource with Request-URI including fragment")
        .count();
    assert_eq!(warnings, fragment, "unexpected litmus warnings");
}
