//! Client and process faults: a client that disconnects in the middle of a
//! PUT, a gateway killed with SIGKILL during an upload (the next start
//! cancels the upload sessions it had journaled), and SIGTERM (stop
//! accepting, let in-flight requests finish within the grace period, cut
//! and cancel the rest).

use std::path::Path;
use std::time::Duration;

use crate::faults_common::{EMAIL, GwProc, Upstream, eventually, fed_body, pattern};
use bytes::Bytes;
use cloudreve_dav::cloudreve::CrUri;

fn journal_len(state: &Path) -> usize {
    std::fs::read_dir(state.join("uploads"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
                .count()
        })
        .unwrap_or(0)
}

/// Starts a PUT of `len` bytes at `url` whose body the test feeds.
fn start_put(
    http: &reqwest::Client,
    url: String,
    password: &str,
    len: usize,
) -> (
    tokio::sync::mpsc::Sender<Bytes>,
    tokio::task::JoinHandle<reqwest::Result<reqwest::Response>>,
) {
    let (tx, body) = fed_body();
    let req = http
        .put(url)
        .basic_auth(EMAIL, Some(password))
        .header("content-length", len)
        .body(body)
        .send();
    (tx, tokio::spawn(req))
}

async fn missing(up: &Upstream, path: &str) -> bool {
    up.session
        .info(&CrUri::my_path(path).expect("uri"), false)
        .await
        .is_err_and(|e| e.is_not_found())
}

#[tokio::test]
async fn client_disconnect_mid_put_leaves_old_content_and_nothing_open() {
    let up = Upstream::start().await;
    crate::skip_on_real!(
        up,
        "shrinks the policy chunk size so the PUT is cut mid-upload, and counts the upload sessions and locks left open (not listable on a real server)"
    );
    up.emu().set_chunk_size(128 * 1024);
    let gw = up.gateway(|_| {}).await;
    assert_eq!(gw.put("/old.bin", "old").await, 201);
    let data = pattern(1_000_000, 9);

    for (path, known) in [
        ("/old.bin", true),
        ("/new.bin", true),
        ("/spooled.bin", false),
    ] {
        let (tx, body) = fed_body();
        let mut rb = gw.req("PUT", path).body(body);
        if known {
            rb = rb.header("content-length", data.len());
        }
        let put = tokio::spawn(rb.send());
        tx.send(Bytes::copy_from_slice(&data[..300_000]))
            .await
            .expect("feed");
        if known {
            assert!(
                eventually(async || up.emu().upload_sessions(EMAIL) == 1).await,
                "{path}: upload session opened"
            );
            assert_eq!(journal_len(&up.state_dir()), 1, "{path}: journaled");
        } else {
            // Spooled: nothing goes upstream before the body ends; wait
            // until the gateway has taken the bytes.
            assert!(
                eventually(async || {
                    std::fs::read_dir(up.dir.path().join("spool"))
                        .map(|d| d.count() == 1)
                        .unwrap_or(false)
                })
                .await,
                "{path}: spooling"
            );
        }
        // The client goes away: its connection closes mid-body.
        put.abort();
        let _ = put.await;
        drop(tx);
        assert!(
            eventually(async || up.leftovers() == (0, 0)).await,
            "{path}: upload sessions/locks left: {:?}",
            up.leftovers()
        );
        assert!(
            eventually(async || journal_len(&up.state_dir()) == 0).await,
            "{path}: journal emptied"
        );
    }
    assert_eq!(up.bytes("/old.bin").await.as_deref(), Some(&b"old"[..]));
    assert!(missing(&up, "/new.bin").await, "no placeholder left");
    assert!(missing(&up, "/spooled.bin").await, "no placeholder left");
    assert!(
        eventually(
            async || std::fs::read_dir(up.dir.path().join("spool")).is_ok_and(|d| d.count() == 0)
        )
        .await,
        "spool file removed"
    );
    gw.stop().await;
}

#[tokio::test]
async fn sigkill_mid_upload_then_restart_cancels_the_journaled_session() {
    let up = Upstream::start().await;
    crate::skip_on_real!(
        up,
        "shrinks the policy chunk size so the gateway dies mid-upload, and checks the upload session and lock it left open (not listable on a real server)"
    );
    up.emu().set_chunk_size(128 * 1024);
    up.session
        .put_content(
            &CrUri::my_path("/doc.bin").expect("uri"),
            None,
            futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b"old"))]),
            3,
        )
        .await
        .expect("arrange");
    let state = up.state_dir();
    let spool = up.dir.path().join("spool");
    let http = reqwest::Client::new();
    let data = pattern(1_000_000, 4);

    let mut gw = GwProc::spawn(&up.upstream.url(), &state, &spool, &[]).await;
    let (tx, put) = start_put(
        &http,
        format!("{}/doc.bin", gw.url),
        &up.dav_password,
        data.len(),
    );
    tx.send(Bytes::copy_from_slice(&data[..400_000]))
        .await
        .expect("feed");
    assert!(
        eventually(async || up.emu().upload_sessions(EMAIL) == 1).await,
        "upload session opened"
    );
    assert!(
        eventually(async || journal_len(&state) == 1).await,
        "session journaled"
    );

    gw.signal("KILL");
    let status = tokio::time::timeout(Duration::from_secs(30), gw.child.wait())
        .await
        .expect("dies")
        .expect("wait");
    assert!(!status.success(), "killed: {status}");
    assert!(put.await.expect("join").is_err(), "the client's PUT is cut");
    drop(tx);
    // The kill left the session (and its upload lock) open upstream, and
    // the old content in place.
    assert_eq!(up.emu().upload_sessions(EMAIL), 1);
    assert!(
        up.emu()
            .active_locks(EMAIL)
            .iter()
            .any(|l| l.app_type == "upload"),
        "upload lock held: {:?}",
        up.emu().active_locks(EMAIL)
    );
    assert_eq!(up.bytes("/doc.bin").await.as_deref(), Some(&b"old"[..]));
    assert_eq!(journal_len(&state), 1, "the journal survived the kill");

    // The next start cancels it.
    let gw2 = GwProc::spawn(&up.upstream.url(), &state, &spool, &[]).await;
    assert!(
        eventually(async || up.leftovers() == (0, 0)).await,
        "leftovers after restart: {:?}",
        up.leftovers()
    );
    assert!(
        eventually(async || journal_len(&state) == 0).await,
        "journal cleared"
    );
    assert_eq!(up.bytes("/doc.bin").await.as_deref(), Some(&b"old"[..]));
    // The file is writable again (no upload lock in the way), once the
    // new process has learnt the WebDAV accounts.
    assert!(
        eventually(async || {
            http.request(
                reqwest::Method::from_bytes(b"PROPFIND").expect("m"),
                &gw2.url,
            )
            .basic_auth(EMAIL, Some(&up.dav_password))
            .header("depth", "0")
            .send()
            .await
            .is_ok_and(|r| r.status().as_u16() == 207)
        })
        .await,
        "restarted gateway serves"
    );
    let r = http
        .put(format!("{}/doc.bin", gw2.url))
        .basic_auth(EMAIL, Some(&up.dav_password))
        .body("new")
        .send()
        .await
        .expect("put");
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(up.bytes("/doc.bin").await.as_deref(), Some(&b"new"[..]));
    gw2.signal("TERM");
    let mut child = gw2.child;
    let _ = tokio::time::timeout(Duration::from_secs(30), child.wait()).await;
}

#[tokio::test]
async fn sigterm_finishes_inflight_requests_then_cuts_and_cancels_the_rest() {
    let up = Upstream::start().await;
    crate::skip_on_real!(
        up,
        "shrinks the policy chunk size and counts the uploads in flight and left open (upload sessions are not listable on a real server)"
    );
    up.emu().set_chunk_size(128 * 1024);
    for p in ["/a.bin", "/b.bin"] {
        up.session
            .put_content(
                &CrUri::my_path(p).expect("uri"),
                None,
                futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b"old"))]),
                3,
            )
            .await
            .expect("arrange");
    }
    let state = up.state_dir();
    let spool = up.dir.path().join("spool");
    let http = reqwest::Client::new();
    let data = pattern(500_000, 6);
    let mut gw = GwProc::spawn(
        &up.upstream.url(),
        &state,
        &spool,
        &[("CLOUDREVE_DAV_SHUTDOWN_GRACE_SECS", "4")],
    )
    .await;
    let addr = gw.url.trim_start_matches("http://").to_string();
    let (tx_a, put_a) = start_put(
        &http,
        format!("{}/a.bin", gw.url),
        &up.dav_password,
        data.len(),
    );
    let (tx_b, put_b) = start_put(
        &http,
        format!("{}/b.bin", gw.url),
        &up.dav_password,
        data.len(),
    );
    for tx in [&tx_a, &tx_b] {
        tx.send(Bytes::copy_from_slice(&data[..200_000]))
            .await
            .expect("feed");
    }
    assert!(
        eventually(async || up.emu().upload_sessions(EMAIL) == 2).await,
        "two uploads in flight"
    );

    gw.signal("TERM");
    // It stops accepting…
    assert!(
        eventually(async || tokio::net::TcpStream::connect(&addr).await.is_err()).await,
        "still accepting after SIGTERM"
    );
    // …lets the request that goes on finish…
    for part in data[200_000..].chunks(100_000) {
        tx_a.send(Bytes::copy_from_slice(part))
            .await
            .expect("feed a");
    }
    drop(tx_a);
    let a = put_a.await.expect("join").expect("a answered");
    assert!(
        a.status().is_success(),
        "in-flight PUT finished: {}",
        a.status()
    );
    // …and cuts the one that stalls once the grace period is over.
    let b = put_b.await.expect("join");
    assert!(
        b.as_ref().map_or(true, |r| !r.status().is_success()),
        "the stalled PUT cannot succeed"
    );
    drop(tx_b);
    let status = tokio::time::timeout(Duration::from_secs(60), gw.child.wait())
        .await
        .expect("exits")
        .expect("wait");
    assert!(status.success(), "clean exit: {status}");

    assert_eq!(up.bytes("/a.bin").await.as_deref(), Some(&data[..]));
    assert_eq!(up.bytes("/b.bin").await.as_deref(), Some(&b"old"[..]));
    assert_eq!(up.leftovers(), (0, 0), "the cut upload was cancelled");
    assert_eq!(journal_len(&state), 0);
}
