//! Content (docs/UPSTREAM.md §5.1–§5.3): `PUT /file/content`,
//! `POST /file/url` + the content route; `GET /user/capacity` (§2.5).

use std::time::Duration;

use cloudreve_dav::cloudreve::{CreateKind, DownloadUrlOptions, Error, MetadataPatch};
use reqwest::{Method, StatusCode, header};
use serde_json::json;

use crate::emulator_or_skip;
use crate::files::trash_item;
use crate::harness::*;

// ---------------------------------------------------------------- PUT content

#[tokio::test]
async fn put_content_creates_with_parents_and_overwrites() {
    let up = Upstream::start().await;
    let f = up.put("p/q/r.txt", b"first").await;
    assert_eq!(f.size, 5);
    assert!(f.metadata.is_none(), "metadata is null in the PUT answer");
    assert!(
        up.session
            .info(&up.uri("p/q"), false)
            .await
            .expect("i")
            .is_folder()
    );
    up.session
        .patch_metadata(
            &[up.uri("p/q/r.txt")],
            &[MetadataPatch::set("dav:urn:x|keep", "{}")],
        )
        .await
        .expect("patch");
    let g = up.put("p/q/r.txt", b"second!").await;
    assert_eq!(g.id, f.id, "same file");
    assert_eq!(g.size, 7);
    assert_ne!(g.primary_entity, f.primary_entity, "new version");
    assert_eq!(up.get("p/q/r.txt").await, b"second!");
    let i = up
        .session
        .info(&up.uri("p/q/r.txt"), false)
        .await
        .expect("info");
    assert_eq!(i.meta("dav:urn:x|keep"), Some("{}"), "metadata preserved");
    // Identical bytes still give a new entity.
    let h = up.put("p/q/r.txt", b"second!").await;
    assert_ne!(h.primary_entity, g.primary_entity);
    // A folder target is a clash.
    expect_code(put_bytes(&up.session, &up.uri("p/q"), b"x").await, 40004);
    up.finish().await;
}

async fn raw_put(
    up: &Upstream,
    rel: &str,
    chunks: Vec<&'static [u8]>,
    headers: &[(&str, &str)],
) -> serde_json::Value {
    let q = format!("/file/content?uri={}", up.uri(rel).to_query_value());
    let stream = futures::stream::iter(
        chunks
            .into_iter()
            .map(|c| Ok::<_, std::io::Error>(bytes::Bytes::from_static(c))),
    );
    // A streamed body: chunked transfer, no Content-Length.
    let mut rb = up
        .raw(Method::PUT, &q)
        .await
        .body(reqwest::Body::wrap_stream(stream));
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    let resp = rb.send().await.expect("send");
    assert_eq!(resp.status(), 200);
    resp.json().await.expect("json")
}

#[tokio::test]
async fn put_content_length_rules() {
    let up = Upstream::start().await;
    // No length at all: an EMPTY file is written, silently.
    let v = raw_put(&up, "nolen.txt", vec![b"abc", b"def"], &[]).await;
    assert_eq!(code_of(&v), 0, "{v}");
    assert_eq!(v["data"]["size"], 0, "{v}");
    assert_eq!(
        v["data"].get("metadata"),
        Some(&serde_json::Value::Null),
        "{v}"
    );
    let i = up
        .session
        .info(&up.uri("nolen.txt"), false)
        .await
        .expect("info");
    assert_eq!(i.size, 0);
    // Chunked plus X-Expected-Entity-Length: that many bytes.
    let v = raw_put(
        &up,
        "xlen.txt",
        vec![b"abc", b"def"],
        &[("X-Expected-Entity-Length", "6")],
    )
    .await;
    assert_eq!(code_of(&v), 0, "{v}");
    assert_eq!(up.get("xlen.txt").await, b"abcdef");
    // A non-numeric length is a parameter error.
    let v = raw_put(
        &up,
        "badlen.txt",
        vec![b"abc"],
        &[("X-Expected-Entity-Length", "three")],
    )
    .await;
    assert_eq!(code_of(&v), 40001, "{v}");
    // The client always sends Content-Length; a lying source is caught.
    let r = up
        .session
        .put_content(
            &up.uri("short.txt"),
            None,
            futures::stream::once(async {
                Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"ab"))
            }),
            5,
        )
        .await;
    assert!(matches!(r, Err(Error::SourceLength { .. })), "{r:?}");
    up.finish().await;
}

#[tokio::test]
async fn put_content_max_edit_size_40049() {
    let up = Upstream::start().await;
    let emu = emulator_or_skip!(up);
    emu.set_max_edit_size(10);
    up.put("ten.bin", &[7u8; 10]).await;
    expect_code(
        put_bytes(&up.session, &up.uri("eleven.bin"), &[7u8; 11]).await,
        40049,
    );
    assert_eq!(up.names("").await, vec!["ten.bin"]);
    up.finish().await;
}

#[tokio::test]
async fn put_content_previous_version_check() {
    let up = Upstream::start().await;
    let v1 = up.put("v.txt", b"one").await.primary_entity.expect("pe");
    let v2 = put_prev(&up.session, &up.uri("v.txt"), Some(&v1), b"two")
        .await
        .expect("matching previous")
        .primary_entity
        .expect("pe");
    assert_ne!(v1, v2);
    expect_code(
        put_prev(&up.session, &up.uri("v.txt"), Some(&v1), b"three").await,
        40076,
    );
    expect_code(
        put_prev(
            &up.session,
            &up.uri("v.txt"),
            Some("not-a-hashid!"),
            b"three",
        )
        .await,
        40001,
    );
    assert_eq!(up.get("v.txt").await, b"two");
    up.finish().await;
}

// ---------------------------------------------------------------- download URL

#[tokio::test]
async fn url_folder_40077_missing_40016_and_expires() {
    let up = Upstream::start().await;
    up.mkdir("dir").await;
    up.put("f.txt", b"x").await;
    let o = DownloadUrlOptions::default();
    expect_code(
        up.session.download_url(&up.uri("dir"), None, o).await,
        40077,
    );
    expect_code(
        up.session.download_url(&up.uri("nope"), None, o).await,
        40016,
    );
    let u = up
        .session
        .download_url(&up.uri("f.txt"), None, o)
        .await
        .expect("url");
    let exp = u.expires.expect("expires");
    let now = chrono::Utc::now();
    assert!(exp > now, "{exp}");
    assert!(u.url.contains("/api/v4/file/content/"), "{}", u.url);
    assert!(u.url.contains("sign="), "{}", u.url);
    up.finish().await;
}

#[tokio::test]
async fn url_redirect_gives_302() {
    let up = Upstream::start().await;
    up.put("r.txt", b"redirected").await;
    let resp = up
        .raw(Method::POST, "/file/url")
        .await
        .json(&json!({"uris":[up.uri("r.txt").to_string()], "redirect": true}))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), StatusCode::FOUND);
    let loc = resp
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .expect("Location")
        .to_string();
    let r = up.client.open_url(&loc, None).await.expect("follow");
    assert_eq!(&r.bytes().await.expect("body")[..], b"redirected");
    up.finish().await;
}

#[tokio::test]
async fn content_route_range_conditional_head_etag() {
    let up = Upstream::start().await;
    let f = up.put("c.bin", b"0123456789").await;
    let pe = f.primary_entity.expect("pe");
    let url = up
        .session
        .download_url(
            &up.uri("c.bin"),
            None,
            DownloadUrlOptions {
                no_cache: true,
                download: true,
            },
        )
        .await
        .expect("url")
        .url;
    // No JWT: a plain client.
    let resp = up.http.get(&url).send().await.expect("get");
    assert_eq!(resp.status(), 200);
    let h = resp.headers().clone();
    let etag = format!("\"{pe}\"");
    assert_eq!(
        h.get(header::ETAG).and_then(|v| v.to_str().ok()),
        Some(etag.as_str())
    );
    assert_eq!(
        h.get(header::ACCEPT_RANGES).and_then(|v| v.to_str().ok()),
        Some("bytes")
    );
    assert!(
        h.get(header::CONTENT_DISPOSITION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("attachment")),
        "{h:?}"
    );
    assert_eq!(&resp.bytes().await.expect("body")[..], b"0123456789");
    // Range through the client.
    let r = up
        .client
        .open_url(&url, Some((2, Some(5))))
        .await
        .expect("range");
    assert_eq!(r.status, 206);
    let cr = r.content_range.expect("content-range");
    assert_eq!((cr.start, cr.end, cr.total), (2, 5, Some(10)));
    assert_eq!(r.etag.as_deref(), Some(etag.as_str()));
    assert_eq!(&r.bytes().await.expect("body")[..], b"2345");
    let r = up
        .client
        .open_url(&url, Some((7, None)))
        .await
        .expect("open range");
    assert_eq!(&r.bytes().await.expect("body")[..], b"789");
    // Unsatisfiable.
    let resp = up
        .http
        .get(&url)
        .header(header::RANGE, "bytes=100-200")
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), 416);
    match up.client.open_url(&url, Some((100, Some(200)))).await {
        Err(Error::UnexpectedStatus { status: 416, .. }) => {}
        other => panic!("expected 416, got {other:?}"),
    }
    // Conditional.
    let resp = up
        .http
        .get(&url)
        .header(header::IF_NONE_MATCH, &etag)
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), 304);
    let resp = up
        .http
        .head(&url)
        .header(header::IF_NONE_MATCH, &etag)
        .send()
        .await
        .expect("head");
    assert_eq!(resp.status(), 304);
    // HEAD.
    let resp = up.http.head(&url).send().await.expect("head");
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()),
        Some("10")
    );
    assert_eq!(
        resp.headers()
            .get(header::ETAG)
            .and_then(|v| v.to_str().ok()),
        Some(etag.as_str())
    );
    assert!(resp.bytes().await.expect("body").is_empty());
    up.finish().await;
}

fn tamper(url: &str) -> String {
    // Flip the first character of the signature.
    let i = url.find("sign=").expect("sign") + 5;
    let mut b = url.as_bytes().to_vec();
    b[i] = if b[i] == b'A' { b'B' } else { b'A' };
    String::from_utf8(b).expect("utf8")
}

#[tokio::test]
async fn content_route_tampered_sign_40071_missing_sign_403() {
    let up = Upstream::start().await;
    up.put("t.txt", b"x").await;
    let url = up
        .session
        .download_url(&up.uri("t.txt"), None, DownloadUrlOptions::default())
        .await
        .expect("url")
        .url;
    let bad = tamper(&url);
    let resp = up.http.get(&bad).send().await.expect("get");
    assert_eq!(
        resp.status(),
        200,
        "pre-handler failures are JSON envelopes"
    );
    assert!(resp.headers().get(header::ETAG).is_none());
    let v: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(code_of(&v), 40071, "{v}");
    expect_code(
        up.client.open_url(&bad, None).await.map(|r| r.status),
        40071,
    );
    // Another name in the path with the same sign.
    let (path, query) = url.split_once('?').expect("query");
    let other = format!("{}/other.txt?{query}", &path[..path.rfind('/').expect("/")]);
    expect_code(
        up.client.open_url(&other, None).await.map(|r| r.status),
        40071,
    );
    expect_code(up.client.open_url(path, None).await.map(|r| r.status), 403);
    up.finish().await;
}

#[tokio::test]
async fn content_route_expired_sign_is_http_200_json_40005() {
    let up = Upstream::start().await;
    let emu = emulator_or_skip!(up);
    up.put("e.txt", b"x").await;
    let url = up
        .session
        .download_url(&up.uri("e.txt"), None, DownloadUrlOptions::default())
        .await
        .expect("url")
        .url;
    emu.advance_clock(Duration::from_secs(2 * 3600));
    let resp = up.http.get(&url).send().await.expect("get");
    assert_eq!(resp.status(), 200);
    let v: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(code_of(&v), 40005, "{v}");
    expect_code(
        up.client.open_url(&url, None).await.map(|r| r.status),
        40005,
    );
    up.finish().await;
}

#[tokio::test]
async fn url_pins_the_version() {
    let up = Upstream::start().await;
    let v1 = up.put("pin.txt", b"version one").await;
    let o = DownloadUrlOptions {
        no_cache: true,
        download: false,
    };
    let old = up
        .session
        .download_url(&up.uri("pin.txt"), None, o)
        .await
        .expect("url")
        .url;
    let v2 = up.put("pin.txt", b"version two!").await;
    let new = up
        .session
        .download_url(&up.uri("pin.txt"), None, o)
        .await
        .expect("url")
        .url;
    assert_ne!(old, new);
    let r = up.client.open_url(&new, None).await.expect("new");
    assert_eq!(
        r.etag,
        Some(format!("\"{}\"", v2.primary_entity.clone().expect("pe")))
    );
    assert_eq!(&r.bytes().await.expect("body")[..], b"version two!");
    // The old URL serves the old version or nothing, never the new bytes.
    match up.client.open_url(&old, None).await {
        Ok(r) => {
            assert_eq!(
                r.etag,
                Some(format!("\"{}\"", v1.primary_entity.expect("pe")))
            );
            assert_eq!(&r.bytes().await.expect("body")[..], b"version one");
        }
        Err(e) => assert!(e.is_not_found(), "{e:?}"),
    }
    up.finish().await;
}

// ---------------------------------------------------------------- capacity

#[tokio::test]
async fn capacity_used_includes_trash() {
    let up = Upstream::start().await;
    let u0 = up.session.capacity().await.expect("cap").used;
    up.put("q.bin", &[1u8; 1000]).await;
    let u1 = up.session.capacity().await.expect("cap").used;
    if !up.is_real() {
        assert_eq!(u1, u0 + 1000);
    }
    up.session
        .delete(&[up.uri("q.bin")], false, false)
        .await
        .expect("delete");
    let u2 = up.session.capacity().await.expect("cap").used;
    if !up.is_real() {
        assert_eq!(u2, u1, "trash still counts");
    }
    let t = trash_item(&up, &up.uri("q.bin")).await.expect("trash");
    up.session
        .delete(&[t.uri().expect("u")], false, true)
        .await
        .expect("purge");
    if !up.is_real() {
        assert_eq!(up.session.capacity().await.expect("cap").used, u0);
    }
    up.finish().await;
}

#[tokio::test]
async fn capacity_over_quota_gives_40051() {
    let up = Upstream::start().await;
    let emu = emulator_or_skip!(up);
    up.put("small.bin", &[1u8; 40]).await;
    let used = up.session.capacity().await.expect("cap").used;
    emu.set_quota(&up.email, used + 50);
    assert_eq!(up.session.capacity().await.expect("cap").total, used + 50);
    expect_code(
        put_bytes(&up.session, &up.uri("big.bin"), &[1u8; 60]).await,
        40051,
    );
    let mut src: &[u8] = &[1u8; 60];
    expect_code(
        up.session
            .upload(&up.uri("big2.bin"), 60, &mut src, Default::default())
            .await,
        40051,
    );
    up.session
        .create(&up.uri("dst"), CreateKind::Folder, true, None)
        .await
        .expect("mkdir");
    up.session
        .move_or_copy(&[up.uri("small.bin")], &up.uri("dst"), true)
        .await
        .expect("first copy fits");
    up.mkdir("dst2").await;
    expect_code(
        up.session
            .move_or_copy(&[up.uri("small.bin")], &up.uri("dst2"), true)
            .await,
        40051,
    );
    assert!(up.names("dst2").await.is_empty());
    up.finish().await;
}
