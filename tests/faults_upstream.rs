//! Upstream faults as a WebDAV client sees them: an unreachable or failing
//! Cloudreve gives 502/503/504 with `Retry-After` and changes nothing; a
//! download cut upstream aborts the client's response; an access token
//! that expires in the middle of an upload or a paged listing is refreshed
//! transparently; a slow upstream hits the configured timeout.

mod faults_common;

use std::time::Duration;

use bytes::Bytes;
use cloudreve_dav::cloudreve::CrUri;
use cloudreve_dav::emulator::{Fault, FaultKind};
use faults_common::{EMAIL, Upstream, eventually, fed_body, pattern};
use reqwest::Method;

fn fault(method: Option<Method>, prefix: &str, kind: FaultKind, times: Option<u32>) -> Fault {
    Fault {
        method,
        path_prefix: prefix.to_string(),
        kind,
        times,
    }
}

/// Asserts a retryable upstream-failure answer.
fn assert_retryable(r: &reqwest::Response, what: &str) {
    let s = r.status().as_u16();
    assert!(
        matches!(s, 502..=504),
        "{what}: expected 502/503/504, got {s}"
    );
    assert!(
        r.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .is_some(),
        "{what}: {s} without a numeric Retry-After"
    );
}

#[tokio::test]
async fn unreachable_upstream_gives_retryable_errors_and_writes_nothing() {
    let up = Upstream::start().await;
    let gw = up.gateway(|_| {}).await;
    assert_eq!(gw.put("/a.txt", "old").await, 201);
    assert_eq!(gw.put("/b.txt", "bee").await, 201);

    up.proxy.down().await;
    let cases: Vec<(&str, reqwest::RequestBuilder)> = vec![
        ("PROPFIND", gw.req("PROPFIND", "/").header("depth", "1")),
        ("GET", gw.req("GET", "/a.txt")),
        (
            "PUT known length",
            gw.req("PUT", "/a.txt").body(vec![b'n'; 100_000]),
        ),
        ("PUT new", gw.req("PUT", "/new.txt").body("new")),
        ("MKCOL", gw.req("MKCOL", "/dir")),
        ("DELETE", gw.req("DELETE", "/b.txt")),
        (
            "MOVE",
            gw.req("MOVE", "/b.txt")
                .header("destination", format!("{}/c.txt", gw.url)),
        ),
        (
            "COPY",
            gw.req("COPY", "/b.txt")
                .header("destination", format!("{}/d.txt", gw.url)),
        ),
    ];
    for (what, rb) in cases {
        let r = rb.send().await.expect(what);
        assert_retryable(&r, what);
    }
    up.proxy.up().await;

    // Nothing changed upstream, nothing left open.
    assert_eq!(up.bytes("/a.txt").as_deref(), Some(&b"old"[..]));
    assert_eq!(up.bytes("/b.txt").as_deref(), Some(&b"bee"[..]));
    for p in ["/new.txt", "/dir", "/c.txt", "/d.txt"] {
        assert!(
            up.session
                .info(&CrUri::my_path(p).expect("uri"), false)
                .await
                .is_err_and(|e| e.is_not_found()),
            "{p} must not exist"
        );
    }
    assert!(
        eventually(async || up.leftovers() == (0, 0)).await,
        "upload sessions/locks left: {:?}",
        up.leftovers()
    );
    // And the gateway serves again.
    let r = gw.req("GET", "/a.txt").send().await.expect("get");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(&r.bytes().await.expect("body")[..], b"old");
    gw.stop().await;
}

#[tokio::test]
async fn upstream_5xx_and_code_minus_one_give_retryable_errors() {
    let up = Upstream::start().await;
    let gw = up.gateway(|_| {}).await;
    assert_eq!(gw.put("/a.txt", "old").await, 201);
    assert_eq!(gw.put("/m.txt", "move me").await, 201);

    let cases = [
        (
            "PROPFIND on 500",
            fault(
                Some(Method::GET),
                "/api/v4/file",
                FaultKind::HttpStatus(500),
                None,
            ),
            gw.req("PROPFIND", "/").header("depth", "1"),
        ),
        (
            "PROPFIND on code -1",
            fault(
                Some(Method::GET),
                "/api/v4/file",
                FaultKind::CodeMinusOne,
                None,
            ),
            gw.req("PROPFIND", "/").header("depth", "1"),
        ),
        (
            "GET on 503",
            fault(
                Some(Method::POST),
                "/api/v4/file/url",
                FaultKind::HttpStatus(503),
                None,
            ),
            gw.req("GET", "/a.txt"),
        ),
        (
            "PUT with failing chunks",
            fault(
                Some(Method::POST),
                "/api/v4/file/upload/",
                FaultKind::HttpStatus(502),
                None,
            ),
            gw.req("PUT", "/a.txt").body(vec![b'x'; 300_000]),
        ),
        (
            "PUT with a failing session",
            fault(
                Some(Method::PUT),
                "/api/v4/file/upload",
                FaultKind::HttpStatus(500),
                None,
            ),
            gw.req("PUT", "/a.txt").body("new"),
        ),
        (
            "MOVE (rename) on code -1",
            fault(
                Some(Method::POST),
                "/api/v4/file/rename",
                FaultKind::CodeMinusOne,
                None,
            ),
            gw.req("MOVE", "/m.txt")
                .header("destination", format!("{}/dir-m.txt", gw.url)),
        ),
        (
            "DELETE on 500",
            fault(
                Some(Method::DELETE),
                "/api/v4/file",
                FaultKind::HttpStatus(500),
                None,
            ),
            gw.req("DELETE", "/m.txt"),
        ),
    ];
    for (what, f, rb) in cases {
        up.emu.add_fault(f);
        let r = rb.send().await.expect(what);
        up.emu.clear_faults();
        assert_retryable(&r, what);
    }
    assert_eq!(up.bytes("/a.txt").as_deref(), Some(&b"old"[..]));
    assert_eq!(up.bytes("/m.txt").as_deref(), Some(&b"move me"[..]));
    assert!(up.bytes("/dir-m.txt").is_none());
    assert!(
        eventually(async || up.leftovers() == (0, 0)).await,
        "upload sessions/locks left: {:?}",
        up.leftovers()
    );
    gw.stop().await;
}

#[tokio::test]
async fn download_cut_upstream_aborts_the_response() {
    let up = Upstream::start().await;
    let gw = up.gateway(|_| {}).await;
    let data = pattern(1_000_000, 3);
    assert_eq!(gw.put("/big.bin", data.clone()).await, 201);

    for (what, kind) in [
        ("cut after 200000 bytes", FaultKind::DropAfterBytes(200_000)),
        ("cut before the head", FaultKind::DropConnection),
    ] {
        up.emu.add_fault(fault(
            Some(Method::GET),
            "/api/v4/file/content/",
            kind,
            Some(1),
        ));
        let r = gw.req("GET", "/big.bin").send().await.expect(what);
        let status = r.status().as_u16();
        if status == 200 {
            // Headers went out before the cut: the body must not look complete.
            assert_eq!(r.content_length(), Some(1_000_000), "{what}");
            let mut r = r;
            let mut got = 0usize;
            let outcome = loop {
                match r.chunk().await {
                    Ok(Some(c)) => {
                        assert_eq!(&c[..], &data[got..got + c.len()], "{what}: bytes differ");
                        got += c.len();
                    }
                    Ok(None) => break Ok(()),
                    Err(e) => break Err(e),
                }
            };
            assert!(
                outcome.is_err(),
                "{what}: body ended cleanly after {got} bytes"
            );
            assert!(got < data.len(), "{what}");
        } else {
            assert_retryable(&r, what);
        }
        up.emu.clear_faults();
    }
    // Once the faults are gone the file is served whole again.
    let r = gw.req("GET", "/big.bin").send().await.expect("get");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.bytes().await.expect("body").len(), data.len());
    gw.stop().await;
}

#[tokio::test]
async fn token_expiry_mid_upload_is_refreshed_transparently() {
    let up = Upstream::start().await;
    up.emu.set_chunk_size(64 * 1024);
    let gw = up.gateway(|_| {}).await;
    assert_eq!(gw.put("/long.bin", "old").await, 201);
    let data = pattern(600_000, 5);
    let refreshes = gw.session.refresh_count();

    let (tx, body) = fed_body();
    let req = gw
        .req("PUT", "/long.bin")
        .header("content-length", data.len())
        .body(body)
        .send();
    let put = tokio::spawn(req);
    tx.send(Bytes::copy_from_slice(&data[..150_000]))
        .await
        .expect("feed");
    assert!(
        eventually(async || up.emu.upload_sessions(EMAIL) == 1).await,
        "upload session opened"
    );
    // Two hours later the gateway's access token is dead upstream.
    up.emu.advance_clock(Duration::from_secs(7200));
    for part in data[150_000..].chunks(50_000) {
        tx.send(Bytes::copy_from_slice(part)).await.expect("feed");
    }
    drop(tx);
    let r = put.await.expect("join").expect("put");
    assert!(
        r.status().is_success(),
        "PUT across a token expiry: {}",
        r.status()
    );
    assert_eq!(up.bytes("/long.bin").as_deref(), Some(&data[..]));
    assert!(
        gw.session.refresh_count() > refreshes,
        "the token was refreshed"
    );
    assert_eq!(up.leftovers(), (0, 0));
    gw.stop().await;
}

#[tokio::test]
async fn token_expiry_mid_listing_is_refreshed_transparently() {
    let up = Upstream::start().await;
    up.emu.set_max_page_size(10);
    for i in 0..35 {
        up.session
            .put_content(
                &CrUri::my_path(&format!("/f{i:02}.txt")).expect("uri"),
                None,
                futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b"x"))]),
                1,
            )
            .await
            .expect("arrange");
    }
    let gw = up.gateway(|_| {}).await;
    let refreshes = gw.session.refresh_count();
    // Every listing page waits a while upstream (its token is checked
    // after the wait), so the clock moves while page 2 is pending.
    up.emu.add_fault(fault(
        Some(Method::GET),
        "/api/v4/file",
        FaultKind::Latency(Duration::from_millis(1500)),
        None,
    ));
    let r = gw
        .req("PROPFIND", "/")
        .header("depth", "1")
        .send()
        .await
        .expect("propfind");
    assert_eq!(r.status().as_u16(), 207);
    up.emu.advance_clock(Duration::from_secs(7200));
    let body = r.text().await.expect("whole listing");
    up.emu.clear_faults();
    let n = body.matches("<D:href>").count();
    assert_eq!(n, 36, "root + 35 files");
    for i in 0..35 {
        assert!(body.contains(&format!("/f{i:02}.txt</D:href>")), "f{i:02}");
    }
    assert!(
        gw.session.refresh_count() > refreshes,
        "a page was fetched after the expiry and the token refreshed"
    );
    gw.stop().await;
}

#[tokio::test]
async fn slow_upstream_hits_the_timeout_with_504_and_recovers() {
    let up = Upstream::start().await;
    let gw = up
        .gateway(|a| {
            a.upstream_timeout_secs = Some(1);
            a.upstream_connect_timeout_secs = Some(1);
        })
        .await;
    assert_eq!(gw.put("/a.txt", "old").await, 201);
    let tasks_before = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    up.emu.add_fault(fault(
        None,
        "/api/v4/file",
        FaultKind::Latency(Duration::from_secs(4)),
        None,
    ));
    let mut all = Vec::new();
    for i in 0..8 {
        let rb = if i % 2 == 0 {
            gw.req("PROPFIND", "/").header("depth", "1")
        } else {
            gw.req("GET", "/a.txt")
        };
        all.push(tokio::spawn(rb.send()));
    }
    for h in all {
        let r = h.await.expect("join").expect("answer");
        assert_eq!(r.status().as_u16(), 504, "slow upstream");
        assert_retryable(&r, "slow upstream");
    }
    up.emu.clear_faults();
    // Nothing is left running in the gateway once the upstream calls ended.
    assert!(
        eventually(async || {
            tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks()
                <= tasks_before + 2
        })
        .await,
        "tasks: {} before, {} after",
        tasks_before,
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
    );
    assert_eq!(up.bytes("/a.txt").as_deref(), Some(&b"old"[..]));
    assert!(
        eventually(async || up.leftovers() == (0, 0)).await,
        "leftovers {:?}",
        up.leftovers()
    );
    let r = gw.req("GET", "/a.txt").send().await.expect("get");
    assert_eq!(r.status().as_u16(), 200);
    gw.stop().await;
}

/// A failed upload whose cancel fails several times in a row (the faults
/// waiting on the cancel route) is answered only once the cancel went
/// through: at the answer, no placeholder, upload session or lock is left.
#[tokio::test]
async fn failed_new_upload_is_answered_after_a_cancel_that_failed_repeatedly() {
    let up = Upstream::start().await;
    up.emu.set_chunk_size(64 * 1024);
    let gw = up.gateway(|_| {}).await;
    // The second chunk fails; the next four cancels fail too.
    up.emu.add_fault(fault(
        Some(Method::POST),
        "/api/v4/file/upload/",
        FaultKind::Latency(Duration::ZERO),
        Some(1),
    ));
    up.emu.add_fault(fault(
        Some(Method::POST),
        "/api/v4/file/upload/",
        FaultKind::HttpStatus(500),
        Some(1),
    ));
    for kind in [
        FaultKind::DropConnection,
        FaultKind::HttpStatus(502),
        FaultKind::CodeMinusOne,
        FaultKind::HttpStatus(500),
    ] {
        up.emu.add_fault(fault(
            Some(Method::DELETE),
            "/api/v4/file/upload",
            kind,
            Some(1),
        ));
    }
    let r = gw
        .req("PUT", "/new.bin")
        .body(pattern(200_000, 7))
        .send()
        .await
        .expect("put");
    assert_retryable(&r, "PUT with a failing chunk and failing cancels");
    assert_eq!(up.emu.pending_faults(), 0, "every cancel fault was met");
    assert_eq!(up.bytes("/new.bin"), None, "placeholder left at the answer");
    assert_eq!(up.leftovers(), (0, 0), "session/lock left at the answer");
    gw.stop().await;
}
