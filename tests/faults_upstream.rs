//! Upstream faults as a WebDAV client sees them: an unreachable or failing
//! Cloudreve gives 502/503/504 with `Retry-After` and changes nothing; a
//! download cut upstream aborts the client's response; an access token
//! that expires in the middle of an upload or a paged listing is refreshed
//! transparently; a slow upstream hits the configured timeout.

use std::time::Duration;

use crate::faults_common::{EMAIL, Upstream, eventually, fed_body, pattern};
use bytes::Bytes;
use cloudreve_dav::cloudreve::CrUri;
use cloudreve_dav::emulator::{Fault, FaultKind};
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
    assert_eq!(up.bytes("/a.txt").await.as_deref(), Some(&b"old"[..]));
    assert_eq!(up.bytes("/b.txt").await.as_deref(), Some(&b"bee"[..]));
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
    crate::skip_on_real!(
        up,
        "injects upstream 5xx and `code: -1` answers on each route"
    );
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
        up.emu().add_fault(f);
        let r = rb.send().await.expect(what);
        up.emu().clear_faults();
        assert_retryable(&r, what);
    }
    assert_eq!(up.bytes("/a.txt").await.as_deref(), Some(&b"old"[..]));
    assert_eq!(up.bytes("/m.txt").await.as_deref(), Some(&b"move me"[..]));
    assert!(up.bytes("/dir-m.txt").await.is_none());
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
    crate::skip_on_real!(
        up,
        "injects a download cut upstream mid-body and before the head"
    );
    let gw = up.gateway(|_| {}).await;
    let data = pattern(1_000_000, 3);
    assert_eq!(gw.put("/big.bin", data.clone()).await, 201);

    for (what, kind) in [
        ("cut after 200000 bytes", FaultKind::DropAfterBytes(200_000)),
        ("cut before the head", FaultKind::DropConnection),
    ] {
        up.emu().add_fault(fault(
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
        up.emu().clear_faults();
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
    crate::skip_on_real!(
        up,
        "shrinks the policy chunk size and moves the emulator's clock two hours ahead mid-upload"
    );
    up.emu().set_chunk_size(64 * 1024);
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
        eventually(async || up.emu().upload_sessions(EMAIL) == 1).await,
        "upload session opened"
    );
    // Two hours later the gateway's access token is dead upstream.
    up.emu().advance_clock(Duration::from_secs(7200));
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
    assert_eq!(up.bytes("/long.bin").await.as_deref(), Some(&data[..]));
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
    crate::skip_on_real!(
        up,
        "shrinks the listing page size, injects listing latency and moves the emulator's clock mid-listing"
    );
    up.emu().set_max_page_size(10);
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
    up.emu().add_fault(fault(
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
    up.emu().advance_clock(Duration::from_secs(7200));
    let body = r.text().await.expect("whole listing");
    up.emu().clear_faults();
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
    crate::skip_on_real!(up, "injects upstream latency beyond the gateway's timeout");
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
    up.emu().add_fault(fault(
        None,
        "/api/v4/file",
        FaultKind::Latency(Duration::from_secs(4)),
        None,
    ));
    // `Connection: close`: the test client keeps no idle connection (and the
    // gateway no connection task) alive after the answers, so what the task
    // count below sees is only what the timed-out upstream calls left behind
    // (an idle keep-alive connection would live until the gateway's 30 s
    // header-read timeout).
    let mut all = Vec::new();
    for i in 0..8 {
        let rb = if i % 2 == 0 {
            gw.req("PROPFIND", "/").header("depth", "1")
        } else {
            gw.req("GET", "/a.txt")
        };
        all.push(tokio::spawn(rb.header("connection", "close").send()));
    }
    for h in all {
        let r = h.await.expect("join").expect("answer");
        assert_eq!(r.status().as_u16(), 504, "slow upstream");
        assert_retryable(&r, "slow upstream");
    }
    up.emu().clear_faults();
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
    assert_eq!(up.bytes("/a.txt").await.as_deref(), Some(&b"old"[..]));
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
    crate::skip_on_real!(up, "injects a failing upload chunk and failing cancels");
    up.emu().set_chunk_size(64 * 1024);
    let gw = up.gateway(|_| {}).await;
    // The second chunk fails; the next four cancels fail too.
    up.emu().add_fault(fault(
        Some(Method::POST),
        "/api/v4/file/upload/",
        FaultKind::Latency(Duration::ZERO),
        Some(1),
    ));
    up.emu().add_fault(fault(
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
        up.emu().add_fault(fault(
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
    assert_eq!(up.emu().pending_faults(), 0, "every cancel fault was met");
    assert_eq!(
        up.bytes("/new.bin").await,
        None,
        "placeholder left at the answer"
    );
    assert_eq!(up.leftovers(), (0, 0), "session/lock left at the answer");
    gw.stop().await;
}

/// dav-server takes a failed destination lookup for "no destination": a
/// MOVE or COPY must then not go on and fail at the end (Cloudreve 40004,
/// shown as 405) or overwrite despite `Overwrite: F`. A 500 is injected
/// on each lookup of the request in turn: every answer is either a success
/// with the right outcome or a retryable error that changed nothing.
#[tokio::test]
async fn a_failed_lookup_in_move_or_copy_is_retryable_and_changes_nothing() {
    let up = Upstream::start().await;
    crate::skip_on_real!(
        up,
        "injects a 500 on each file lookup of a MOVE or COPY in turn"
    );
    let gw = up.gateway(|_| {}).await;
    for method in ["MOVE", "COPY"] {
        for overwrite in ["T", "F"] {
            for skip in 0..5u32 {
                let what = format!("{method} Overwrite {overwrite}, lookup {skip} failing");
                up.emu().clear_faults();
                gw.req("DELETE", "/mc").send().await.expect("delete");
                assert_eq!(
                    gw.req("MKCOL", "/mc").send().await.expect("mkcol").status(),
                    201
                );
                assert_eq!(gw.put("/mc/src.txt", "source").await, 201);
                assert_eq!(gw.put("/mc/dst.txt", "destination").await, 201);
                if skip > 0 {
                    up.emu().add_fault(fault(
                        Some(Method::GET),
                        "/api/v4/file/info",
                        FaultKind::Latency(Duration::ZERO),
                        Some(skip),
                    ));
                }
                up.emu().add_fault(fault(
                    Some(Method::GET),
                    "/api/v4/file/info",
                    FaultKind::HttpStatus(500),
                    Some(1),
                ));
                let r = gw
                    .req(method, "/mc/src.txt")
                    .header("destination", format!("{}/mc/dst.txt", gw.url))
                    .header("overwrite", overwrite)
                    .send()
                    .await
                    .expect("request");
                let s = r.status().as_u16();
                let (src, dst) = (up.bytes("/mc/src.txt").await, up.bytes("/mc/dst.txt").await);
                let unchanged = src.as_deref() == Some(&b"source"[..])
                    && dst.as_deref() == Some(&b"destination"[..]);
                match s {
                    201 | 204 => {
                        assert_eq!(overwrite, "T", "{what}: overwrote with {s}");
                        assert_eq!(dst.as_deref(), Some(&b"source"[..]), "{what}: destination");
                        let want_src = (method == "COPY").then_some(&b"source"[..]);
                        assert_eq!(src.as_deref(), want_src, "{what}: source");
                    }
                    412 => {
                        assert_eq!(overwrite, "F", "{what}: 412");
                        assert!(unchanged, "{what}: 412 changed something");
                    }
                    _ => {
                        assert_retryable(&r, &what);
                        assert!(unchanged, "{what}: {s} changed something: {src:?} {dst:?}");
                    }
                }
                if up.emu().pending_faults() > 0 {
                    // Fewer lookups than `skip`: later values add nothing.
                    break;
                }
            }
        }
    }
    gw.stop().await;
}

/// The names in an upstream folder, sorted.
async fn names(up: &Upstream, path: &str) -> Vec<String> {
    let mut uri = CrUri::my();
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        uri = uri.join(seg).expect("uri");
    }
    let (_, files) = up.session.list_all(&uri, 1000).await.expect("list");
    let mut n: Vec<String> = files.into_iter().map(|f| f.name).collect();
    n.sort();
    n
}

/// `Overwrite: T` replaces the destination in the copy or move itself, so
/// a failure at any later step never loses it. Each mutating upstream
/// call of the request fails in turn, once refused (500) and once applied
/// with its answer lost (connection cut): the client gets a success with
/// the right outcome, or a retryable error with both files as they were
/// (a lost answer may complete the operation instead). No hidden
/// set-aside or staging object stays behind.
#[tokio::test]
async fn a_failed_step_of_an_overwriting_move_or_copy_keeps_the_destination() {
    let up = Upstream::start().await;
    crate::skip_on_real!(
        up,
        "injects a failure on each mutating upstream call of a MOVE or COPY in turn"
    );
    let gw = up.gateway(|_| {}).await;
    let cases = [
        ("MOVE", "/mc/dst.txt"),
        ("MOVE", "/mc/sub/dst.txt"),
        ("MOVE", "/mc/sub/src.txt"),
        ("COPY", "/mc/dst.txt"),
        ("COPY", "/mc/sub/dst.txt"),
        ("COPY", "/mc/sub/src.txt"),
    ];
    for (method, dest) in cases {
        for (kind_name, kind) in [
            ("refused", FaultKind::HttpStatus(500)),
            ("answer lost", FaultKind::DropAfterBytes(0)),
        ] {
            for verb in [Method::POST, Method::DELETE] {
                for skip in 0..8u32 {
                    let what = format!("{method} to {dest}, {verb} call {skip} {kind_name}");
                    up.emu().clear_faults();
                    gw.req("DELETE", "/mc").send().await.expect("delete");
                    for dir in ["/mc", "/mc/sub"] {
                        let r = gw.req("MKCOL", dir).send().await.expect("mkcol");
                        assert_eq!(r.status(), 201, "{what}: MKCOL {dir}");
                    }
                    assert_eq!(gw.put("/mc/src.txt", "source").await, 201);
                    assert_eq!(gw.put(dest, "destination").await, 201);
                    if skip > 0 {
                        up.emu().add_fault(fault(
                            Some(verb.clone()),
                            "/api/v4/file",
                            FaultKind::Latency(Duration::ZERO),
                            Some(skip),
                        ));
                    }
                    up.emu().add_fault(fault(
                        Some(verb.clone()),
                        "/api/v4/file",
                        kind.clone(),
                        Some(1),
                    ));
                    let r = gw
                        .req(method, "/mc/src.txt")
                        .header("destination", format!("{}{dest}", gw.url))
                        .header("overwrite", "T")
                        .send()
                        .await
                        .expect("request");
                    let s = r.status().as_u16();
                    let pending = up.emu().pending_faults();
                    up.emu().clear_faults();
                    let (src, dst) = (up.bytes("/mc/src.txt").await, up.bytes(dest).await);
                    let done = dst.as_deref() == Some(&b"source"[..])
                        && src.as_deref() == (method == "COPY").then_some(&b"source"[..]);
                    let unchanged = src.as_deref() == Some(&b"source"[..])
                        && dst.as_deref() == Some(&b"destination"[..]);
                    if matches!(s, 201 | 204) {
                        assert!(done, "{what}: {s} but {src:?} {dst:?}");
                    } else {
                        assert_retryable(&r, &what);
                        assert!(
                            unchanged || (kind_name == "answer lost" && done),
                            "{what}: {s} and {src:?} {dst:?}"
                        );
                    }
                    let mut want = vec!["sub".to_string()];
                    if !done || method == "COPY" {
                        want.push("src.txt".into());
                    }
                    if dest == "/mc/dst.txt" {
                        want.push("dst.txt".into());
                    }
                    want.sort();
                    assert_eq!(names(&up, "/mc").await, want, "{what}: /mc");
                    let in_sub: Vec<String> = dest
                        .strip_prefix("/mc/sub/")
                        .map(|n| vec![n.to_string()])
                        .unwrap_or_default();
                    assert_eq!(names(&up, "/mc/sub").await, in_sub, "{what}: /mc/sub");
                    let hidden: Vec<String> = names(&up, "/")
                        .await
                        .into_iter()
                        .filter(|n| n.starts_with('.'))
                        .collect();
                    assert!(hidden.is_empty(), "{what}: left at the root: {hidden:?}");
                    if pending > 0 {
                        break; // fewer calls than `skip`
                    }
                }
            }
        }
    }
    gw.stop().await;
}

/// When the upstream keeps refusing to put a replaced destination back
/// after a failed `Overwrite: T` MOVE, the answer is retryable, the
/// set-aside object never shows in a listing, and the gateway puts it back
/// in the background once the upstream works again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_destination_that_cannot_be_put_back_at_once_returns_in_the_background() {
    let up = Upstream::start().await;
    crate::skip_on_real!(
        up,
        "injects failures on every mutating upstream call after the destination is set aside"
    );
    let gw = up.gateway(|_| {}).await;
    let r = gw.req("MKCOL", "/pb").send().await.expect("mkcol");
    assert_eq!(r.status(), 201);
    assert_eq!(gw.put("/pb/src.txt", "source").await, 201);
    assert_eq!(gw.put("/pb/dst.txt", "destination").await, 201);
    // The first call (setting the destination aside) goes through; every
    // later mutating call fails, the put-back's three attempts included.
    up.emu().add_fault(fault(
        Some(Method::POST),
        "/api/v4/file",
        FaultKind::Latency(Duration::ZERO),
        Some(1),
    ));
    up.emu().add_fault(fault(
        Some(Method::POST),
        "/api/v4/file",
        FaultKind::HttpStatus(500),
        None,
    ));
    let r = gw
        .req("MOVE", "/pb/src.txt")
        .header("destination", format!("{}/pb/dst.txt", gw.url))
        .header("overwrite", "T")
        .send()
        .await
        .expect("move");
    assert_retryable(&r, "MOVE with the put-back failing");
    let upstream = names(&up, "/pb").await;
    assert_eq!(
        upstream.len(),
        2,
        "src.txt and the set-aside object: {upstream:?}"
    );
    assert!(upstream.iter().any(|n| n == "src.txt"), "{upstream:?}");
    assert!(
        upstream.iter().any(|n| n.starts_with(".cdav-replaced-")),
        "{upstream:?}"
    );
    let r = gw
        .req("PROPFIND", "/pb/")
        .header("depth", "1")
        .send()
        .await
        .expect("propfind");
    assert_eq!(r.status(), 207);
    let listing = r.text().await.expect("body");
    assert!(listing.contains("src.txt"), "{listing}");
    assert!(
        !listing.contains("cdav-replaced"),
        "set-aside object listed: {listing}"
    );
    assert!(!listing.contains("dst.txt"), "{listing}");

    up.emu().clear_faults();
    assert!(
        eventually(async || names(&up, "/pb").await == ["dst.txt", "src.txt"]).await,
        "not put back: {:?}",
        names(&up, "/pb").await
    );
    assert_eq!(
        up.bytes("/pb/dst.txt").await.as_deref(),
        Some(&b"destination"[..])
    );
    assert_eq!(
        up.bytes("/pb/src.txt").await.as_deref(),
        Some(&b"source"[..])
    );
    gw.stop().await;
}
