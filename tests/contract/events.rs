//! The change feed, `GET /file/events` (docs/UPSTREAM.md §4.10): what a
//! listener is told about changes below its folder, merged per file, with
//! its own client id's changes left out, and what it missed while away.

use std::time::Duration;

use cloudreve_dav::cloudreve::{
    ChangeFeed, ChangeKind, Client, ErrorCode, FeedItem, FileChange, Session,
};
use reqwest::{Method, header};

use crate::emulator_or_skip;
use crate::harness::*;

/// How long a test waits for one feed item: the debounce (5 s) plus slack.
const FEED_WAIT: Duration = Duration::from_secs(30);

async fn next_item(feed: &mut ChangeFeed) -> FeedItem {
    tokio::time::timeout(FEED_WAIT, feed.next())
        .await
        .expect("a feed item in time")
        .expect("feed readable")
        .expect("feed open")
}

/// The next `n` changes (keep-alives skipped), as (kind, from, to).
async fn changes(feed: &mut ChangeFeed, n: usize) -> Vec<(ChangeKind, String, Option<String>)> {
    let mut out = Vec::new();
    while out.len() < n {
        match next_item(feed).await {
            FeedItem::Change(FileChange { kind, from, to, .. }) => out.push((kind, from, to)),
            FeedItem::KeepAlive => {}
            other => panic!("unexpected feed item {other:?}"),
        }
    }
    out.sort_by(|a, b| a.1.cmp(&b.1));
    out
}

/// The same user signed in through a second client, so with another client
/// id: to the feed, another writer (as the web UI would be).
async fn other_writer(up: &Upstream) -> Session {
    Client::new(&up.url())
        .expect("client")
        .sign_in(&up.email, &up.password)
        .await
        .expect("sign in")
}

#[tokio::test]
async fn feed_reports_other_clients_changes_merged_relative_and_unescaped() {
    let up = Upstream::start().await;
    for f in ["a.txt", "gone.txt", "old.txt", "dir/keep.txt"] {
        up.put(f, b"1").await;
    }
    let mut feed = up.session.watch(&up.base).await.expect("watch");
    assert_eq!(next_item(&mut feed).await, FeedItem::Subscribed);

    let w = other_writer(&up).await;
    // Renamed, then moved within the folder: one rename from the first to
    // the last place.
    w.rename(&up.uri("a.txt"), "b.txt").await.expect("rename");
    w.move_or_copy(&[up.uri("b.txt")], &up.uri("dir"), false)
        .await
        .expect("move");
    // The feed's own client id: left out.
    up.put("mine.txt", b"own").await;
    w.delete(&[up.uri("gone.txt")], false, false)
        .await
        .expect("delete");
    put_bytes(&w, &up.uri("old.txt"), b"22")
        .await
        .expect("overwrite");
    put_bytes(&w, &up.uri("n é#%.txt"), b"3")
        .await
        .expect("new");
    // Created and deleted within the delay: never reported.
    put_bytes(&w, &up.uri("tmp.txt"), b"4").await.expect("tmp");
    w.delete(&[up.uri("tmp.txt")], false, false)
        .await
        .expect("delete tmp");
    put_bytes(&w, &up.uri("dir/deep.txt"), b"5")
        .await
        .expect("deep");

    let got = changes(&mut feed, 5).await;
    assert_eq!(
        got,
        vec![
            (
                ChangeKind::Rename,
                "/a.txt".into(),
                Some("/dir/b.txt".into())
            ),
            (ChangeKind::Create, "/dir/deep.txt".into(), None),
            (ChangeKind::Delete, "/gone.txt".into(), None),
            (ChangeKind::Create, "/n é#%.txt".into(), None),
            (ChangeKind::Modify, "/old.txt".into(), None),
        ]
    );
    drop(feed);
    up.finish().await;
}

#[tokio::test]
async fn feed_keeps_what_a_listener_missed_and_resumes_with_it() {
    let up = Upstream::start().await;
    up.mkdir("watched").await;
    let watched = up.uri("watched");
    let mut feed = up.session.watch(&watched).await.expect("watch");
    assert_eq!(next_item(&mut feed).await, FeedItem::Subscribed);
    drop(feed);

    let w = other_writer(&up).await;
    put_bytes(&w, &up.uri("watched/while away.txt"), b"x")
        .await
        .expect("put");
    w.create(
        &up.uri("watched/sub"),
        cloudreve_dav::cloudreve::CreateKind::Folder,
        false,
        None,
    )
    .await
    .expect("mkdir");
    // Outside the watched folder: not reported.
    put_bytes(&w, &up.uri("outside.txt"), b"y")
        .await
        .expect("put");

    let mut feed = up.session.watch(&watched).await.expect("watch again");
    assert_eq!(next_item(&mut feed).await, FeedItem::Resumed);
    assert_eq!(
        changes(&mut feed, 2).await,
        vec![
            (ChangeKind::Create, "/sub".into(), None),
            (ChangeKind::Create, "/while away.txt".into(), None),
        ]
    );
    drop(feed);
    up.finish().await;
}

#[tokio::test]
async fn feed_refuses_missing_client_ids_and_non_folders() {
    let up = Upstream::start().await;
    up.put("f.txt", b"1").await;
    let q = |rel: &str| format!("/file/events?uri={}", up.uri(rel).to_query_value());
    let code = |r: reqwest::Response| async move {
        assert_eq!(r.status(), 200);
        code_of(&r.json().await.expect("envelope"))
    };
    let uuid = uuid::Uuid::new_v4().to_string();
    let r = up
        .raw(Method::GET, &q(""))
        .await
        .send()
        .await
        .expect("send");
    assert_eq!(code(r).await, 40001, "no X-Cr-Client-Id");
    let r = up.raw(Method::GET, &q("")).await;
    let r = r
        .header("X-Cr-Client-Id", "not-a-uuid")
        .send()
        .await
        .expect("send");
    assert_eq!(code(r).await, 40001, "a client id that is not a UUID");
    for rel in ["f.txt", "missing"] {
        let r = up.raw(Method::GET, &q(rel)).await;
        let r = r
            .header("X-Cr-Client-Id", &uuid)
            .send()
            .await
            .expect("send");
        assert_eq!(code(r).await, 40016, "{rel}");
    }
    let e = up
        .session
        .watch(&up.uri("f.txt"))
        .await
        .expect_err("a file");
    assert!(e.is(ErrorCode::ParentNotExist), "{e}");

    // A folder: the stream's headers and first frame, byte for byte.
    let r = up.raw(Method::GET, &q("")).await;
    let mut r = r
        .header("X-Cr-Client-Id", &uuid)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    let ct = r
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    assert!(
        ct.is_some_and(|v| v.starts_with("text/event-stream")),
        "{ct:?}"
    );
    assert_eq!(
        r.headers()
            .get(header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok()),
        Some("no-cache")
    );
    let mut first = Vec::new();
    while !first.ends_with(b"\n\n") {
        let chunk = tokio::time::timeout(FEED_WAIT, r.chunk())
            .await
            .expect("first frame in time")
            .expect("read")
            .expect("more");
        first.extend_from_slice(&chunk);
    }
    assert_eq!(first, b"event:subscribed\ndata:<nil>\n\n");
    up.finish().await;
}

#[tokio::test]
async fn feed_switched_off_answers_40019() {
    let up = Upstream::start().await;
    let emu = emulator_or_skip!(up);
    emu.set_events_enabled(false);
    let e = up.session.watch(&up.base).await.expect_err("switched off");
    assert!(e.is(ErrorCode::FeatureNotEnabled), "{e}");
    up.finish().await;
}
