//! WebDAV behaviour as a client sees it: real HTTP through the front layer
//! and the gateway, the emulator as upstream.

use crate::dav_common::{EMAIL, Gw, hrefs, values};
use crate::support::wait::eventually;
use cloudreve_dav::cloudreve::CrUri;
use cloudreve_dav::emulator::{Fault, FaultKind};
use http::Method;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

#[tokio::test]
async fn propfind_root_folders_and_files() {
    let gw = Gw::start().await;
    assert_eq!(gw.req("MKCOL", "/docs").send().await.unwrap().status(), 201);
    assert_eq!(gw.put("/docs/a b.txt", "hello").await, 201);
    assert_eq!(gw.put("/top.bin", vec![7u8; 1000]).await, 201);

    let (s, body) = gw.propfind("/", "0").await;
    assert_eq!(s, 207, "{body}");
    assert_eq!(hrefs(&body), vec!["/"]);

    let (s, body) = gw.propfind("/", "1").await;
    assert_eq!(s, 207, "{body}");
    let mut h = hrefs(&body);
    h.sort();
    assert_eq!(h, vec!["/", "/docs/", "/top.bin"]);
    assert!(
        body.contains("<D:getcontentlength>1000</D:getcontentlength>"),
        "{body}"
    );

    let (s, body) = gw.propfind("/docs/", "1").await;
    assert_eq!(s, 207);
    assert_eq!(hrefs(&body), vec!["/docs/", "/docs/a%20b.txt"]);
    let (s, body) = gw.propfind("/docs/a%20b.txt", "0").await;
    assert_eq!(s, 207);
    let etag = values(&body, "D:getetag").pop().expect("getetag");
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    let r = gw.req("HEAD", "/docs/a%20b.txt").send().await.unwrap();
    assert_eq!(r.headers()["etag"].to_str().unwrap(), etag);
    assert_eq!(r.headers()["content-length"], "5");

    let (s, _) = gw.propfind("/nope", "0").await;
    assert_eq!(s, 404);
    gw.stop().await;
}

#[tokio::test]
async fn depth1_listing_makes_no_per_entry_calls() {
    let gw = Gw::start().await;
    crate::skip_on_real!(
        gw.up,
        "sets the page size and injects faults to count calls"
    );
    gw.up.set_max_page_size(10);
    let dir = CrUri::my_path("/many").unwrap();
    for i in 0..25 {
        let u = dir.join(&format!("f{i:02}.txt")).unwrap();
        let body = futures::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from(format!(
            "file {i}"
        )))]);
        let n = format!("file {i}").len() as u64;
        gw.session.put_content(&u, None, body, n).await.unwrap();
    }
    // One /file/info call is expected: the folder's own entry (Cloudreve's
    // listing names the folder without its metadata). Any further one
    // (per-entry metadata) would now fail the request.
    gw.up.add_fault(Fault {
        method: None,
        path_prefix: "/api/v4/file/info".into(),
        kind: FaultKind::Latency(std::time::Duration::ZERO),
        times: Some(1),
    });
    gw.up.add_fault(Fault {
        method: None,
        path_prefix: "/api/v4/file/info".into(),
        kind: FaultKind::HttpStatus(500),
        times: None,
    });
    // Exactly three listing calls (25 entries, pages of 10) are allowed:
    // three pass-through faults, then every further listing call fails.
    for _ in 0..3 {
        gw.up.add_fault(Fault {
            method: Some(Method::GET),
            path_prefix: "/api/v4/file".into(),
            kind: FaultKind::Latency(std::time::Duration::ZERO),
            times: Some(1),
        });
    }
    gw.up.add_fault(Fault {
        method: Some(Method::GET),
        path_prefix: "/api/v4/file".into(),
        kind: FaultKind::HttpStatus(500),
        times: None,
    });
    let r = gw
        .req("PROPFIND", "/many/")
        .header("depth", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 207);
    let body = r
        .text()
        .await
        .expect("complete body within the call budget");
    assert_eq!(hrefs(&body).len(), 26, "{body}");
    assert!(body.contains("<D:getcontentlength>7</D:getcontentlength>"));
    gw.stop().await;
}

#[tokio::test]
async fn failed_listing_is_an_error_never_an_empty_folder() {
    let gw = Gw::start().await;
    crate::skip_on_real!(gw.up, "injects upstream faults");
    assert_eq!(gw.req("MKCOL", "/d").send().await.unwrap().status(), 201);
    for i in 0..15 {
        assert_eq!(gw.put(&format!("/d/{i}"), "x").await, 201);
    }
    gw.up.set_max_page_size(5);
    // The folder's own entry (`/file/info`, asked alongside the listing)
    // always answers; the faults below hit listing calls only.
    gw.up.add_fault(Fault {
        method: Some(Method::GET),
        path_prefix: "/api/v4/file/info".into(),
        kind: FaultKind::Latency(std::time::Duration::ZERO),
        times: None,
    });
    // First page fails: an error status.
    gw.up.add_fault(Fault {
        method: Some(Method::GET),
        path_prefix: "/api/v4/file".into(),
        kind: FaultKind::HttpStatus(503),
        times: Some(1),
    });
    let (s, body) = gw.propfind("/d/", "1").await;
    assert!(s >= 500, "status {s}: {body}");
    // A later page fails: the response is cut, never a complete 207.
    gw.up.add_fault(Fault {
        method: Some(Method::GET),
        path_prefix: "/api/v4/file".into(),
        kind: FaultKind::Latency(std::time::Duration::ZERO),
        times: Some(1),
    });
    gw.up.add_fault(Fault {
        method: Some(Method::GET),
        path_prefix: "/api/v4/file".into(),
        kind: FaultKind::HttpStatus(500),
        times: Some(1),
    });
    let r = gw
        .req("PROPFIND", "/d/")
        .header("depth", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 207);
    assert!(
        r.bytes().await.is_err(),
        "a truncated listing must not end cleanly"
    );
    // And afterwards all is well again.
    let (s, body) = gw.propfind("/d/", "1").await;
    assert_eq!(s, 207);
    assert_eq!(hrefs(&body).len(), 16);
    gw.stop().await;
}

#[tokio::test]
async fn get_head_ranges_conditionals_and_empty_files() {
    let gw = Gw::start().await;
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(gw.put("/f.bin", data.clone()).await, 201);
    let (s, b) = gw.get("/f.bin").await;
    assert_eq!(s, 200);
    assert_eq!(b, data);

    let r = gw
        .req("GET", "/f.bin")
        .header("range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["content-range"], "bytes 10-19/100000");
    assert_eq!(&r.bytes().await.unwrap()[..], &data[10..20]);
    let r = gw
        .req("GET", "/f.bin")
        .header("range", "bytes=99990-")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(&r.bytes().await.unwrap()[..], &data[99990..]);
    let r = gw
        .req("GET", "/f.bin")
        .header("range", "bytes=200000-")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 416);

    let r = gw.req("HEAD", "/f.bin").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"], "100000");
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    let r = gw
        .req("GET", "/f.bin")
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);

    assert_eq!(gw.put("/empty", Vec::new()).await, 201);
    let (s, b) = gw.get("/empty").await;
    assert_eq!((s, b.len()), (200, 0));
    // A file created without an entity (size 0) is answered locally.
    gw.session
        .create(
            &CrUri::my_path("/made").unwrap(),
            cloudreve_dav::cloudreve::CreateKind::File,
            false,
            None,
        )
        .await
        .unwrap();
    let (s, b) = gw.get("/made").await;
    assert_eq!((s, b.len()), (200, 0));

    // GET on a collection: an HTML index.
    assert_eq!(gw.req("MKCOL", "/c").send().await.unwrap().status(), 201);
    assert_eq!(
        gw.put("/c/%3Cx%3E&y", "1").await,
        400,
        "Cloudreve refuses <>: refused before it is asked"
    );
    assert_eq!(gw.put("/c/x&y'z", "1").await, 201);
    let r = gw.req("GET", "/c/").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let t = r.text().await.unwrap();
    assert!(t.contains(">x&amp;y&#39;z</a>"), "{t}");
    assert!(t.contains("href=\"/c/x%26y%27z\""), "{t}");
    gw.stop().await;
}

#[tokio::test]
async fn put_chunked_without_length_stores_every_byte() {
    let gw = Gw::start().await;
    crate::skip_on_real!(gw.up, "shrinks the policy chunk size");
    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = (0..50)
        .map(|i| Ok(bytes::Bytes::from(vec![i as u8; 10_000])))
        .collect();
    let body = reqwest::Body::wrap_stream(futures::stream::iter(chunks));
    assert_eq!(gw.put("/chunked.bin", body).await, 201);
    let stored = gw
        .up
        .file_bytes(EMAIL, "/chunked.bin")
        .await
        .expect("stored");
    assert_eq!(stored.len(), 500_000);
    assert!(
        stored
            .chunks(10_000)
            .enumerate()
            .all(|(i, c)| c.iter().all(|b| *b == i as u8))
    );
    // Overwrite through a small chunk size upload (several upstream chunks).
    gw.up.set_chunk_size(64 * 1024);
    let data = vec![9u8; 300_000];
    assert_eq!(gw.put("/chunked.bin", data.clone()).await, 204);
    assert_eq!(gw.up.file_bytes(EMAIL, "/chunked.bin").await.unwrap(), data);
    assert_eq!(gw.up.upload_sessions(EMAIL), 0);
    gw.stop().await;
}

#[tokio::test]
async fn aborted_overwrite_keeps_old_content_and_leaves_nothing_behind() {
    let gw = Gw::start().await;
    crate::skip_on_real!(
        gw.up,
        "shrinks the policy chunk size and counts upload sessions"
    );
    assert_eq!(gw.put("/keep.txt", "old content").await, 201);
    gw.up.set_chunk_size(64 * 1024);
    // Declares 1 MiB, sends 300 KiB, then disconnects.
    let mut s = tokio::net::TcpStream::connect(gw.addr()).await.unwrap();
    let auth = base64_auth();
    let head = format!(
        "PUT /keep.txt HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nContent-Length: 1048576\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&vec![1u8; 300 * 1024]).await.unwrap();
    s.flush().await.unwrap();
    drop(s);
    assert!(
        eventually(
            async || gw.up.upload_sessions(EMAIL) == 0 && gw.up.active_locks(EMAIL).is_empty()
        )
        .await,
        "upload session or lock left behind: {:?}",
        gw.up.active_locks(EMAIL)
    );
    assert_eq!(
        gw.up.file_bytes(EMAIL, "/keep.txt").await.unwrap(),
        b"old content"
    );
    let (st, b) = gw.get("/keep.txt").await;
    assert_eq!((st, &b[..]), (200, &b"old content"[..]));

    // A new file aborted mid-way leaves no placeholder.
    let mut s = tokio::net::TcpStream::connect(gw.addr()).await.unwrap();
    let head = format!(
        "PUT /new.txt HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nContent-Length: 200000\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&vec![1u8; 100_000]).await.unwrap();
    drop(s);
    assert!(eventually(async || gw.up.upload_sessions(EMAIL) == 0).await);
    let (st, _) = gw.propfind("/new.txt", "0").await;
    assert!(eventually(async || gw.up.file_bytes(EMAIL, "/new.txt").await.is_none()).await);
    assert_eq!(st, 404);

    // Over-quota: a clear 507, old content intact.
    gw.up.set_quota(EMAIL, 100_000);
    let st = gw.put("/keep.txt", vec![0u8; 200_000]).await;
    assert_eq!(st, 507);
    assert_eq!(
        gw.up.file_bytes(EMAIL, "/keep.txt").await.unwrap(),
        b"old content"
    );
    assert_eq!(gw.up.upload_sessions(EMAIL), 0);
    gw.stop().await;
}

fn base64_auth() -> String {
    use base64::Engine as _;
    let raw = format!("{EMAIL}:{}", crate::dav_common::DAV_PASSWORD);
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

#[tokio::test]
async fn mkcol_statuses() {
    let gw = Gw::start().await;
    assert_eq!(gw.req("MKCOL", "/m").send().await.unwrap().status(), 201);
    assert_eq!(gw.req("MKCOL", "/m").send().await.unwrap().status(), 405);
    assert_eq!(gw.req("MKCOL", "/x/y").send().await.unwrap().status(), 409);
    assert_eq!(gw.put("/x/y.txt", "z").await, 409);
    gw.stop().await;
}

#[tokio::test]
async fn delete_goes_to_trash_as_one_item() {
    let gw = Gw::start().await;
    assert_eq!(gw.req("MKCOL", "/t").send().await.unwrap().status(), 201);
    assert_eq!(
        gw.req("MKCOL", "/t/sub").send().await.unwrap().status(),
        201
    );
    for i in 0..5 {
        assert_eq!(gw.put(&format!("/t/sub/{i}"), "x").await, 201);
    }
    assert_eq!(gw.put("/t/f", "x").await, 201);
    assert_eq!(gw.req("DELETE", "/t").send().await.unwrap().status(), 204);
    assert_eq!(gw.trash_len().await, 1);
    assert_eq!(gw.propfind("/t", "0").await.0, 404);
    assert_eq!(gw.put("/single", "x").await, 201);
    assert_eq!(
        gw.req("DELETE", "/single").send().await.unwrap().status(),
        204
    );
    assert_eq!(gw.trash_len().await, 2);
    assert_eq!(
        gw.req("DELETE", "/single").send().await.unwrap().status(),
        404
    );
    gw.stop().await;
}

#[tokio::test]
async fn copy_and_move() {
    let gw = Gw::start().await;
    for d in ["/a", "/b", "/a/sub"] {
        assert_eq!(gw.req("MKCOL", d).send().await.unwrap().status(), 201);
    }
    assert_eq!(gw.put("/a/x.txt", "xx").await, 201);
    assert_eq!(gw.put("/a/sub/deep.txt", "deep").await, 201);
    assert_eq!(gw.put("/b/y.txt", "yy").await, 201);
    let dest = |p: &str| format!("{}{}", gw.url, p);

    // Same-folder copy.
    let r = gw
        .req("COPY", "/a/x.txt")
        .header("destination", dest("/a/x2.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(gw.get("/a/x2.txt").await.1, b"xx");
    assert_eq!(gw.get("/a/x.txt").await.1, b"xx");
    // Overwrite: F on an existing destination.
    let r = gw
        .req("COPY", "/a/x.txt")
        .header("destination", dest("/b/y.txt"))
        .header("overwrite", "F")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 412);
    assert_eq!(gw.get("/b/y.txt").await.1, b"yy");
    // Overwrite: T.
    let r = gw
        .req("COPY", "/a/x.txt")
        .header("destination", dest("/b/y.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(gw.get("/b/y.txt").await.1, b"xx");
    crate::skip_on_real!(gw.up, "the rest injects upstream faults");
    // Cross-folder copy, same name.
    let r = gw
        .req("COPY", "/a/x.txt")
        .header("destination", dest("/b/x.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // Collection copy: one upstream copy (+ one move out of staging), not
    // one per member: a third /file/move call would fail.
    for _ in 0..2 {
        gw.up.add_fault(Fault {
            method: Some(Method::POST),
            path_prefix: "/api/v4/file/move".into(),
            kind: FaultKind::Latency(std::time::Duration::ZERO),
            times: Some(1),
        });
    }
    gw.up.add_fault(Fault {
        method: Some(Method::POST),
        path_prefix: "/api/v4/file/move".into(),
        kind: FaultKind::HttpStatus(500),
        times: None,
    });
    let r = gw
        .req("COPY", "/a/")
        .header("destination", dest("/c/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    gw.up.clear_faults();
    assert_eq!(gw.get("/c/sub/deep.txt").await.1, b"deep");
    assert_eq!(gw.get("/c/x2.txt").await.1, b"xx");
    let r = gw
        .req("COPY", "/a/")
        .header("destination", dest("/d0/"))
        .header("depth", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let (_, body) = gw.propfind("/d0/", "1").await;
    assert_eq!(hrefs(&body), vec!["/d0/"]);

    // Rename-on-move across folders.
    let r = gw
        .req("MOVE", "/a/x2.txt")
        .header("destination", dest("/b/renamed.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(gw.get("/b/renamed.txt").await.1, b"xx");
    assert_eq!(gw.get("/a/x2.txt").await.0, 404);
    // Move in place (rename) and over an existing file.
    let r = gw
        .req("MOVE", "/b/renamed.txt")
        .header("destination", dest("/b/y.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = gw
        .req("MOVE", "/b/y.txt")
        .header("destination", dest("/b/x.txt"))
        .header("overwrite", "F")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 412);
    // Collection move with a new name.
    let r = gw
        .req("MOVE", "/c/")
        .header("destination", dest("/b/c2/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(gw.get("/b/c2/sub/deep.txt").await.1, b"deep");
    // Failures half-way are rolled back: a same-folder copy whose final
    // move fails leaves no copy; a rename-on-move whose move fails leaves
    // the source under its name.
    let fail_second_move = || {
        gw.up.add_fault(Fault {
            method: Some(Method::POST),
            path_prefix: "/api/v4/file/move".into(),
            kind: FaultKind::Latency(std::time::Duration::ZERO),
            times: Some(1),
        });
        gw.up.add_fault(Fault {
            method: Some(Method::POST),
            path_prefix: "/api/v4/file/move".into(),
            kind: FaultKind::HttpStatus(500),
            times: Some(1),
        });
    };
    fail_second_move();
    let r = gw
        .req("COPY", "/b/x.txt")
        .header("destination", dest("/b/x3.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(gw.get("/b/x3.txt").await.0, 404);
    assert_eq!(gw.get("/b/x.txt").await.1, b"xx");
    gw.up.clear_faults();
    gw.up.add_fault(Fault {
        method: Some(Method::POST),
        path_prefix: "/api/v4/file/move".into(),
        kind: FaultKind::HttpStatus(500),
        times: Some(1),
    });
    let r = gw
        .req("MOVE", "/b/x.txt")
        .header("destination", dest("/a/moved.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(gw.get("/b/x.txt").await.1, b"xx");
    assert_eq!(gw.get("/a/moved.txt").await.0, 404);
    gw.up.clear_faults();
    // No staging leftovers.
    let (_, root) = gw.session.list_all(&CrUri::my(), 100).await.unwrap();
    assert!(
        root.iter()
            .all(|f| !f.name.starts_with(".cloudreve-dav") && !f.name.starts_with(".cdav"))
    );
    gw.stop().await;
}

#[tokio::test]
async fn locks_protect_and_expire_cleanly() {
    let gw = Gw::start().await;
    let body = r#"<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner>me</D:owner></D:lockinfo>"#;
    let r = gw
        .req("LOCK", "/locked.txt")
        .header("timeout", "Second-100")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let token = r.headers()["lock-token"].to_str().unwrap().to_string();
    assert!(token.starts_with("<urn:uuid:"));
    // The lock-empty resource exists.
    assert_eq!(gw.up.file_bytes(EMAIL, "/locked.txt").await, Some(vec![]));
    assert_eq!(gw.put("/locked.txt", "x").await, 423);
    let r = gw
        .req("PUT", "/locked.txt")
        .header("if", format!("({token})"))
        .body("mine")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (_, pf) = gw.propfind("/locked.txt", "0").await;
    assert!(pf.contains("urn:uuid:"), "{pf}");
    let r = gw
        .req("UNLOCK", "/locked.txt")
        .header("lock-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(gw.put("/locked.txt", "free").await, 204);
    assert_eq!(gw.gateway.locks().count(), 0);
    gw.stop().await;
}

#[tokio::test]
async fn upstream_outage_is_503_with_retry_after() {
    let gw = Gw::start().await;
    crate::skip_on_real!(gw.up, "injects upstream faults");
    assert_eq!(gw.put("/f", "x").await, 201);
    gw.up.add_fault(Fault {
        method: None,
        path_prefix: "/api/v4/file/info".into(),
        kind: FaultKind::HttpStatus(503),
        times: None,
    });
    let r = gw
        .req("PROPFIND", "/f")
        .header("depth", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    gw.up.clear_faults();
    // A raw socket read keeps the test honest about the connection.
    let mut s = tokio::net::TcpStream::connect(gw.addr()).await.unwrap();
    s.write_all(
        format!(
            "GET /f HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nConnection: close\r\n\r\n",
            base64_auth()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    assert!(out.starts_with(b"HTTP/1.1 200"));
    gw.stop().await;
}

#[tokio::test]
async fn policy_refusing_chunks_falls_back_to_content_put() {
    let gw = Gw::start().await;
    crate::skip_on_real!(gw.up, "switches the storage policy and its edit-size limit");
    gw.up
        .set_policy_type(cloudreve_dav::emulator::PolicyKind::S3);
    let data = vec![5u8; 70_000];
    assert_eq!(gw.put("/s3.bin", data.clone()).await, 201);
    assert_eq!(gw.up.file_bytes(EMAIL, "/s3.bin").await.unwrap(), data);
    // Unknown length too (spooled).
    let body = reqwest::Body::wrap_stream(futures::stream::iter(vec![
        Ok::<_, std::io::Error>(bytes::Bytes::from(vec![1u8; 1000])),
        Ok(bytes::Bytes::from(vec![2u8; 1000])),
    ]));
    assert_eq!(gw.put("/s3.bin", body).await, 204);
    assert_eq!(
        gw.up.file_bytes(EMAIL, "/s3.bin").await.unwrap().len(),
        2000
    );
    // Over maxEditSize: a clear 413, old content intact.
    gw.up.set_max_edit_size(10_000);
    assert_eq!(gw.put("/s3.bin", vec![0u8; 20_000]).await, 413);
    assert_eq!(
        gw.up.file_bytes(EMAIL, "/s3.bin").await.unwrap().len(),
        2000
    );
    assert_eq!(gw.up.upload_sessions(EMAIL), 0);
    assert!(gw.up.active_locks(EMAIL).is_empty());
    gw.stop().await;
}

#[tokio::test]
async fn spool_limit_and_permanent_delete() {
    let gw = Gw::start_with(|s| {
        s.spool_max = 10_000;
        s.delete_mode = cloudreve_dav::dav::DeleteMode::Permanent;
    })
    .await;
    let body = reqwest::Body::wrap_stream(futures::stream::iter(
        (0..5).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![1u8; 4000]))),
    ));
    assert_eq!(gw.put("/spooled", body).await, 413);
    assert!(gw.up.file_bytes(EMAIL, "/spooled").await.is_none());
    let spool_empty = || {
        std::fs::read_dir(&gw.spool)
            .map(|d| d.count() == 0)
            .unwrap_or(false)
    };
    assert!(
        eventually(async || spool_empty()).await,
        "spool file left behind"
    );
    assert_eq!(gw.put("/p", "x").await, 201);
    assert_eq!(gw.req("DELETE", "/p").send().await.unwrap().status(), 204);
    assert_eq!(gw.trash_len().await, 0);
    // Declared length, shorter body (X-Expected-Entity-Length): 400, no file.
    let body = reqwest::Body::wrap_stream(futures::stream::iter(vec![Ok::<_, std::io::Error>(
        bytes::Bytes::from(vec![1u8; 100]),
    )]));
    let r = gw
        .req("PUT", "/short")
        .header("x-expected-entity-length", "500")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(eventually(async || gw.up.upload_sessions(EMAIL) == 0).await);
    assert!(eventually(async || gw.up.file_bytes(EMAIL, "/short").await.is_none()).await);
    gw.stop().await;
}

#[tokio::test]
async fn head_never_fetches_and_get_failures_are_statuses() {
    let gw = Gw::start().await;
    assert_eq!(gw.put("/h.bin", vec![3u8; 5000]).await, 201);
    crate::skip_on_real!(gw.up, "the rest makes every download fail upstream");
    // Any download attempt fails upstream from now on.
    gw.up.add_fault(Fault {
        method: None,
        path_prefix: "/api/v4/file/url".into(),
        kind: FaultKind::HttpStatus(500),
        times: None,
    });
    gw.up.add_fault(Fault {
        method: None,
        path_prefix: "/api/v4/file/content".into(),
        kind: FaultKind::HttpStatus(500),
        times: None,
    });
    let r = gw.req("HEAD", "/h.bin").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"], "5000");
    let r = gw.req("GET", "/h.bin").send().await.unwrap();
    assert_eq!(
        r.status(),
        503,
        "an upstream failure is not a 200 with a broken body"
    );
    assert!(r.headers().contains_key("retry-after"));
    gw.up.clear_faults();
    // The signed URL works but the body is cut: the client sees an error,
    // never zero padding.
    gw.up.add_fault(Fault {
        method: Some(Method::GET),
        path_prefix: "/api/v4/file/content".into(),
        kind: FaultKind::DropAfterBytes(1000),
        times: Some(1),
    });
    let r = gw.req("GET", "/h.bin").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.is_err());
    gw.stop().await;
}

#[tokio::test]
async fn account_rooted_in_a_subfolder() {
    let gw = Gw::start_rooted("/Shared/dav").await;
    let (s, body) = gw.propfind("/", "1").await;
    assert_eq!(s, 207, "{body}");
    assert_eq!(hrefs(&body), vec!["/"]);
    assert_eq!(gw.put("/f.txt", "rooted").await, 201);
    assert_eq!(
        gw.up.file_bytes(EMAIL, "/Shared/dav/f.txt").await.unwrap(),
        b"rooted"
    );
    let r = gw
        .req("COPY", "/f.txt")
        .header("destination", format!("{}/g.txt", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let (_, body) = gw.propfind("/", "1").await;
    let mut h = hrefs(&body);
    h.sort();
    assert_eq!(h, vec!["/", "/f.txt", "/g.txt"]);
    assert_eq!(gw.req("DELETE", "/").send().await.unwrap().status(), 403);
    // Nothing outside the root is reachable.
    let (s, _) = gw.propfind("/Shared", "0").await;
    assert_eq!(s, 404);
    gw.stop().await;
}

#[tokio::test]
async fn quota_properties_and_dead_properties() {
    let gw = Gw::start().await;
    crate::skip_on_real!(gw.up, "sets a per-user quota");
    gw.up.set_quota(EMAIL, 1_000_000);
    assert_eq!(gw.put("/q.bin", vec![0u8; 1000]).await, 201);
    let r = gw
        .req("PROPFIND", "/")
        .header("depth", "0")
        .body(r#"<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:quota-available-bytes/><D:quota-used-bytes/></D:prop></D:propfind>"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 207);
    let body = r.text().await.unwrap();
    let used: u64 = values(&body, "D:quota-used-bytes")[0].parse().unwrap();
    let avail: u64 = values(&body, "D:quota-available-bytes")[0].parse().unwrap();
    assert_eq!(used + avail, 1_000_000, "{body}");
    assert!(used >= 1000);

    // A dead property is stored in Cloudreve's own /dav format.
    let r = gw
        .req("PROPPATCH", "/q.bin")
        .body(r#"<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:x="urn:x"><D:set><D:prop><x:color>red</x:color></D:prop></D:set></D:propertyupdate>"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 207);
    let f = gw
        .session
        .info(&CrUri::my_path("/q.bin").unwrap(), false)
        .await
        .unwrap();
    assert_eq!(
        f.meta("dav:urn:x|color"),
        Some(r#"{"i":"cmVk"}"#),
        "{:?}",
        f.metadata
    );
    let r = gw
        .req("PROPFIND", "/")
        .header("depth", "1")
        .body(r#"<?xml version="1.0"?><D:propfind xmlns:D="DAV:" xmlns:x="urn:x"><D:prop><x:color/></D:prop></D:propfind>"#)
        .send()
        .await
        .unwrap();
    let body = r.text().await.unwrap();
    assert_eq!(body.matches(">red<").count(), 1, "exactly once: {body}");
    gw.stop().await;
}

/// Clients that create the same folder at the same moment (rclone and
/// davfs2 create parents in parallel) get one 201 and 405s, never a 423
/// from Cloudreve's short-lived create lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_mkcols_of_one_folder_are_201_and_405() {
    let gw = Gw::start().await;
    for round in 0..8 {
        let path = format!("/race{round}");
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let req = gw.req("MKCOL", &path);
            tasks.push(tokio::spawn(async move {
                req.send().await.expect("mkcol").status().as_u16()
            }));
        }
        let mut statuses = Vec::new();
        for t in tasks {
            statuses.push(t.await.expect("task"));
        }
        statuses.sort();
        assert_eq!(statuses, vec![201, 405, 405, 405], "{path}");
    }
    gw.stop().await;
}

/// Names with characters Cloudreve refuses (`\ : * ? " < > |`) are refused
/// by default with 400 and a body naming the character, before anything
/// reaches Cloudreve.
#[tokio::test]
async fn reserved_characters_are_refused_naming_the_character() {
    let gw = Gw::start().await;
    let r = gw.req("PUT", "/a:b.txt").body("x").send().await.unwrap();
    assert_eq!(r.status(), 400);
    let body = r.text().await.unwrap();
    assert!(
        body.contains("':'") && body.contains("reserved_names"),
        "{body}"
    );
    let r = gw.req("MKCOL", "/what%3F").send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("'?'"));
    assert_eq!(gw.put("/ok.txt", "x").await, 201);
    for m in ["COPY", "MOVE"] {
        let r = gw
            .req(m, "/ok.txt")
            .header("destination", format!("{}/st%2Ar.txt", gw.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{m}");
        assert!(r.text().await.unwrap().contains("'*'"), "{m}");
    }
    // A read of such a name is simply not found.
    assert_eq!(gw.get("/a:b.txt").await.0, 404);
    let mut names = gw.up.child_names(EMAIL, "/").await.unwrap();
    names.sort();
    assert_eq!(names, ["ok.txt"]);
    gw.stop().await;
}

/// With `reserved_names = "map"` those characters are stored as full-width
/// look-alikes and shown as themselves; a name that really contains a
/// look-alike stays a different file.
#[tokio::test]
async fn reserved_characters_map_to_look_alikes_when_asked() {
    use cloudreve_dav::dav::reserved::ReservedNames;
    let gw = Gw::start_with(|s| s.reserved_names = ReservedNames::Map).await;
    assert_eq!(gw.put("/a:b%3F.txt", "colon").await, 201);
    assert_eq!(gw.put("/a%EF%BC%9Ab%3F.txt", "look-alike").await, 201);
    assert_eq!(
        gw.req("MKCOL", "/x%7Cy").send().await.unwrap().status(),
        201
    );
    let mut names = gw.up.child_names(EMAIL, "/").await.unwrap();
    names.sort();
    assert_eq!(names, ["a‛：b？.txt", "a：b？.txt", "x｜y"]);

    let (s, body) = gw.propfind("/", "1").await;
    assert_eq!(s, 207);
    assert_eq!(
        crate::dav_common::decoded_hrefs(&body),
        ["/", "/a:b?.txt", "/a：b?.txt", "/x|y/"]
    );
    let (s, b) = gw.get("/a:b%3F.txt").await;
    assert_eq!((s, &b[..]), (200, &b"colon"[..]));
    let (s, b) = gw.get("/a%EF%BC%9Ab%3F.txt").await;
    assert_eq!((s, &b[..]), (200, &b"look-alike"[..]));
    // MOVE into the folder under another reserved name.
    let r = gw
        .req("MOVE", "/a:b%3F.txt")
        .header("destination", format!("{}/x%7Cy/%3Cin%3E.txt", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(
        gw.up.file_bytes(EMAIL, "/x｜y/＜in＞.txt").await.as_deref(),
        Some(&b"colon"[..])
    );
    let (s, body) = gw.propfind("/x%7Cy/", "1").await;
    assert_eq!(s, 207);
    assert!(
        hrefs(&body).iter().any(|h| h.ends_with("/%3Cin%3E.txt")),
        "{body}"
    );
    gw.stop().await;
}
