//! Conditional requests (issue 4, item 6): `If-Match` / `If-None-Match` on
//! PUT, DELETE, MOVE, COPY and PROPPATCH; the RFC 4918 `If` header with
//! lock tokens, entity tags, `Not` and tagged lists; Office's PUT carrying
//! only `Lock-Token`; concurrent writes by another Cloudreve client between
//! a client's GET and its conditional PUT (412, never a lost update).

use std::time::Duration;

use crate::dav_common::{EMAIL, Gw};
use bytes::Bytes;
use cloudreve_dav::cloudreve::CrUri;
use cloudreve_dav::emulator::{Fault, FaultKind, Gate, LockOwner, LockSpec, PolicyKind};

const LOCKINFO: &str = r#"<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner>office</D:owner></D:lockinfo>"#;

const PROPPATCH: &str = r#"<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:x-test:"><D:set><D:prop><Z:colour>blue</Z:colour></D:prop></D:set></D:propertyupdate>"#;

fn uri(path: &str) -> CrUri {
    CrUri::my_path(path).expect("uri")
}

/// The `ETag` header of `path` (quoted).
async fn etag(gw: &Gw, path: &str) -> String {
    let r = gw.req("HEAD", path).send().await.expect("head");
    assert_eq!(r.status(), 200, "HEAD {path}");
    r.headers()["etag"].to_str().expect("etag").to_string()
}

/// Writes `bytes` at `path` directly upstream, as another Cloudreve client.
async fn write_upstream(gw: &Gw, path: &str, bytes: &'static [u8]) -> String {
    // `/file/content`: create-or-overwrite, any storage policy.
    let body = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(bytes))]);
    let f = gw
        .session
        .put_content(&uri(path), None, body, bytes.len() as u64)
        .await
        .expect("upstream write");
    f.primary_entity.expect("entity")
}

async fn bytes_of(gw: &Gw, path: &str) -> Option<Vec<u8>> {
    gw.up.file_bytes(EMAIL, path).await
}

async fn status(r: reqwest::RequestBuilder) -> u16 {
    r.send().await.expect("request").status().as_u16()
}

async fn lock(gw: &Gw, path: &str) -> String {
    let r = gw
        .req("LOCK", path)
        .header("timeout", "Second-600")
        .body(LOCKINFO)
        .send()
        .await
        .expect("lock");
    assert!(r.status().is_success(), "LOCK {path}: {}", r.status());
    r.headers()["lock-token"]
        .to_str()
        .expect("token")
        .trim_matches(|c| c == '<' || c == '>')
        .to_string()
}

/// The required scenario: a client GETs a file (ETag E1), another
/// Cloudreve client writes new content, the client PUTs with
/// `If-Match: E1` → 412 and the other client's bytes stay.
#[tokio::test]
async fn concurrent_upstream_write_between_get_and_if_match_put_is_412() {
    let gw = Gw::start().await;
    assert_eq!(gw.put("/doc.txt", "original").await, 201);
    let r = gw.req("GET", "/doc.txt").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let old = r.headers()["etag"].to_str().unwrap().to_string();
    assert_eq!(r.bytes().await.unwrap(), "original");

    let newer = write_upstream(&gw, "/doc.txt", b"theirs").await;
    assert_ne!(old, format!("\"{newer}\""));

    let s = status(
        gw.req("PUT", "/doc.txt")
            .header("if-match", &old)
            .body("mine"),
    )
    .await;
    assert_eq!(s, 412);
    assert_eq!(bytes_of(&gw, "/doc.txt").await, Some(b"theirs".to_vec()));
    assert_eq!(
        etag(&gw, "/doc.txt").await,
        format!("\"{newer}\""),
        "no new version upstream"
    );
    // With the current ETag the write goes through.
    let cur = etag(&gw, "/doc.txt").await;
    let s = status(
        gw.req("PUT", "/doc.txt")
            .header("if-match", &cur)
            .body("mine"),
    )
    .await;
    assert_eq!(s, 204);
    assert_eq!(bytes_of(&gw, "/doc.txt").await, Some(b"mine".to_vec()));
    gw.stop().await;
}

#[tokio::test]
async fn if_none_match_star_and_if_match_on_put() {
    let gw = Gw::start().await;
    assert_eq!(gw.put("/a.txt", "one").await, 201);
    let e1 = etag(&gw, "/a.txt").await;
    // If-None-Match: * on an existing file → 412, content kept.
    let s = status(
        gw.req("PUT", "/a.txt")
            .header("if-none-match", "*")
            .body("x"),
    )
    .await;
    assert_eq!(s, 412);
    assert_eq!(bytes_of(&gw, "/a.txt").await, Some(b"one".to_vec()));
    // ... and creates a new one.
    let s = status(
        gw.req("PUT", "/new.txt")
            .header("if-none-match", "*")
            .body("n"),
    )
    .await;
    assert_eq!(s, 201);
    assert_eq!(bytes_of(&gw, "/new.txt").await, Some(b"n".to_vec()));
    // If-None-Match with the current tag → 412; with another → written.
    let s = status(
        gw.req("PUT", "/a.txt")
            .header("if-none-match", &e1)
            .body("x"),
    )
    .await;
    assert_eq!(s, 412);
    let s = status(
        gw.req("PUT", "/a.txt")
            .header("if-none-match", "\"other\"")
            .body("two"),
    )
    .await;
    assert_eq!(s, 204);
    assert_eq!(bytes_of(&gw, "/a.txt").await, Some(b"two".to_vec()));
    // Stale If-Match → 412, nothing changed upstream.
    let e2 = etag(&gw, "/a.txt").await;
    let s = status(gw.req("PUT", "/a.txt").header("if-match", &e1).body("x")).await;
    assert_eq!(s, 412);
    assert_eq!(bytes_of(&gw, "/a.txt").await, Some(b"two".to_vec()));
    assert_eq!(etag(&gw, "/a.txt").await, e2);
    // A list containing the current tag matches; a weak tag never does.
    let s = status(
        gw.req("PUT", "/a.txt")
            .header("if-match", format!("\"zzz\", {e2}"))
            .body("three"),
    )
    .await;
    assert_eq!(s, 204);
    let e3 = etag(&gw, "/a.txt").await;
    let s = status(
        gw.req("PUT", "/a.txt")
            .header("if-match", format!("W/{e3}"))
            .body("x"),
    )
    .await;
    assert_eq!(s, 412);
    // If-Match: * needs an existing resource.
    let s = status(
        gw.req("PUT", "/missing.txt")
            .header("if-match", "*")
            .body("x"),
    )
    .await;
    assert_eq!(s, 412);
    assert_eq!(bytes_of(&gw, "/missing.txt").await, None);
    let s = status(gw.req("PUT", "/a.txt").header("if-match", "*").body("four")).await;
    assert_eq!(s, 204);
    // The getetag property is the same quoted value as the header.
    let e4 = etag(&gw, "/a.txt").await;
    let (_, pf) = gw.propfind("/a.txt", "0").await;
    assert_eq!(
        crate::dav_common::values(&pf, "D:getetag"),
        vec![e4.clone()]
    );
    // An unquoted tag (some clients echo getetag without quotes) is not
    // an entity tag: it never matches.
    let s = status(
        gw.req("PUT", "/a.txt")
            .header("if-match", e4.trim_matches('"'))
            .body("x"),
    )
    .await;
    assert_eq!(s, 412);
    gw.stop().await;
}

#[tokio::test]
async fn if_match_on_delete_move_copy_and_proppatch() {
    let gw = Gw::start().await;
    assert_eq!(gw.put("/f.txt", "one").await, 201);
    let stale = etag(&gw, "/f.txt").await;
    write_upstream(&gw, "/f.txt", b"two").await;
    let cur = etag(&gw, "/f.txt").await;
    let dest = format!("{}/g.txt", gw.url);

    // DELETE
    let s = status(gw.req("DELETE", "/f.txt").header("if-match", &stale)).await;
    assert_eq!(s, 412);
    assert_eq!(bytes_of(&gw, "/f.txt").await, Some(b"two".to_vec()));
    let s = status(gw.req("DELETE", "/f.txt").header("if-none-match", "*")).await;
    assert_eq!(s, 412);
    assert_eq!(bytes_of(&gw, "/f.txt").await, Some(b"two".to_vec()));

    // MOVE / COPY: the tags are the source's.
    for m in ["MOVE", "COPY"] {
        let s = status(
            gw.req(m, "/f.txt")
                .header("destination", &dest)
                .header("if-match", &stale),
        )
        .await;
        assert_eq!(s, 412, "{m}");
        assert_eq!(bytes_of(&gw, "/g.txt").await, None, "{m}");
        assert_eq!(bytes_of(&gw, "/f.txt").await, Some(b"two".to_vec()), "{m}");
        let s = status(
            gw.req(m, "/f.txt")
                .header("destination", &dest)
                .header("if-none-match", &cur),
        )
        .await;
        assert_eq!(s, 412, "{m}");
        assert_eq!(bytes_of(&gw, "/g.txt").await, None, "{m}");
    }

    // PROPPATCH
    let s = status(
        gw.req("PROPPATCH", "/f.txt")
            .header("if-match", &stale)
            .body(PROPPATCH),
    )
    .await;
    assert_eq!(s, 412);
    let f = gw.session.info(&uri("/f.txt"), true).await.unwrap();
    assert!(
        !f.metadata
            .unwrap_or_default()
            .keys()
            .any(|k| k.contains("colour")),
        "no property stored"
    );
    let s = status(
        gw.req("PROPPATCH", "/f.txt")
            .header("if-match", &cur)
            .body(PROPPATCH),
    )
    .await;
    assert_eq!(s, 207);
    let f = gw.session.info(&uri("/f.txt"), true).await.unwrap();
    assert!(
        f.metadata
            .unwrap_or_default()
            .keys()
            .any(|k| k.contains("colour")),
        "property stored"
    );

    // With the current tag each of them goes through.
    let s = status(
        gw.req("COPY", "/f.txt")
            .header("destination", &dest)
            .header("if-match", &cur),
    )
    .await;
    assert_eq!(s, 201);
    assert_eq!(bytes_of(&gw, "/g.txt").await, Some(b"two".to_vec()));
    let h = format!("{}/h.txt", gw.url);
    let s = status(
        gw.req("MOVE", "/g.txt")
            .header("destination", &h)
            .header("if-match", &cur),
    )
    .await;
    assert_eq!(s, 201, "a copy keeps the version");
    let s = status(gw.req("DELETE", "/f.txt").header("if-match", &cur)).await;
    assert_eq!(s, 204);
    assert_eq!(bytes_of(&gw, "/f.txt").await, None);
    gw.stop().await;
}

#[tokio::test]
async fn get_and_head_conditionals() {
    let gw = Gw::start().await;
    assert_eq!(gw.put("/c.txt", "content").await, 201);
    let e = etag(&gw, "/c.txt").await;
    let s = status(gw.req("GET", "/c.txt").header("if-none-match", &e)).await;
    assert_eq!(s, 304);
    // If-None-Match uses the weak comparison (RFC 9110 §13.1.2).
    let s = status(
        gw.req("GET", "/c.txt")
            .header("if-none-match", format!("W/{e}")),
    )
    .await;
    assert_eq!(s, 304);
    let s = status(gw.req("HEAD", "/c.txt").header("if-none-match", "*")).await;
    assert_eq!(s, 304);
    let s = status(gw.req("GET", "/c.txt").header("if-match", "\"nope\"")).await;
    assert_eq!(s, 412);
    let r = gw
        .req("GET", "/c.txt")
        .header("if-match", &e)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap(), "content");
    gw.stop().await;
}

#[tokio::test]
async fn if_header_with_entity_tags_not_and_tagged_lists() {
    let gw = Gw::start().await;
    assert_eq!(gw.put("/i.txt", "one").await, 201);
    assert_eq!(gw.put("/other.txt", "o").await, 201);
    let e = etag(&gw, "/i.txt").await;
    let eo = etag(&gw, "/other.txt").await;
    let abs = format!("{}/i.txt", gw.url);
    let abs_other = format!("{}/other.txt", gw.url);

    let put =
        |ifh: String, body: &'static str| gw.req("PUT", "/i.txt").header("if", ifh).body(body);
    // Untagged entity tag.
    assert_eq!(status(put("([\"stale\"])".into(), "x")).await, 412);
    assert_eq!(bytes_of(&gw, "/i.txt").await, Some(b"one".to_vec()));
    assert_eq!(status(put(format!("([{e}])"), "two")).await, 204);
    let e = etag(&gw, "/i.txt").await;
    // Not.
    assert_eq!(status(put(format!("(Not [{e}])"), "x")).await, 412);
    assert_eq!(status(put("(Not [\"stale\"])".into(), "three")).await, 204);
    let e = etag(&gw, "/i.txt").await;
    // Lists are ORed, conditions in a list ANDed.
    assert_eq!(
        status(put(format!("([\"stale\"] [{e}])"), "x")).await,
        412,
        "AND"
    );
    assert_eq!(
        status(put(format!("([\"stale\"]) ([{e}])"), "four")).await,
        204,
        "OR"
    );
    let e = etag(&gw, "/i.txt").await;
    // Tagged lists: absolute URL and absolute path, on the target and on
    // another resource.
    assert_eq!(
        status(put(format!("<{abs}> ([\"stale\"])"), "x")).await,
        412
    );
    assert_eq!(status(put("</i.txt> ([\"stale\"])".into(), "x")).await, 412);
    assert_eq!(status(put(format!("</i.txt> ([{e}])"), "five")).await, 204);
    let e = etag(&gw, "/i.txt").await;
    assert_eq!(status(put(format!("<{abs}> ([{e}])"), "six")).await, 204);
    assert_eq!(
        status(put(format!("<{abs_other}> ([{e}])"), "x")).await,
        412,
        "the other resource's tag differs"
    );
    assert_eq!(
        status(put(format!("<{abs_other}> ([{eo}])"), "seven")).await,
        204
    );
    assert_eq!(bytes_of(&gw, "/i.txt").await, Some(b"seven".to_vec()));
    // The DAV:no-lock token never matches; Not of it always does.
    assert_eq!(status(put("(<DAV:no-lock>)".into(), "x")).await, 412);
    assert_eq!(
        status(put("(Not <DAV:no-lock>)".into(), "eight")).await,
        204
    );
    assert_eq!(bytes_of(&gw, "/i.txt").await, Some(b"eight".to_vec()));
    // An If-header condition on DELETE.
    let e = etag(&gw, "/i.txt").await;
    let s = status(gw.req("DELETE", "/i.txt").header("if", "([\"stale\"])")).await;
    assert_eq!(s, 412);
    let s = status(gw.req("DELETE", "/i.txt").header("if", format!("([{e}])"))).await;
    assert_eq!(s, 204);
    gw.stop().await;
}

#[tokio::test]
async fn if_header_with_lock_tokens() {
    let gw = Gw::start().await;
    assert_eq!(gw.put("/l.txt", "one").await, 201);
    let token = lock(&gw, "/l.txt").await;
    let e = etag(&gw, "/l.txt").await;
    let put = |ifh: String| gw.req("PUT", "/l.txt").header("if", ifh).body("x");

    // No token: 423. A wrong token: the If header fails (412).
    assert_eq!(gw.put("/l.txt", "x").await, 423);
    assert_eq!(
        status(put(
            "(<urn:uuid:00000000-0000-4000-8000-000000000000>)".into()
        ))
        .await,
        412
    );
    // Token and a stale entity tag: 412; with the current one: written.
    assert_eq!(status(put(format!("(<{token}> [\"stale\"])"))).await, 412);
    assert_eq!(bytes_of(&gw, "/l.txt").await, Some(b"one".to_vec()));
    assert_eq!(status(put(format!("(<{token}> [{e}])"))).await, 204);
    // Tagged with the resource, and the Not <DAV:no-lock> idiom.
    let abs = format!("{}/l.txt", gw.url);
    assert_eq!(status(put(format!("<{abs}> (<{token}>)"))).await, 204);
    assert_eq!(
        status(put(format!("(<{token}>) (Not <DAV:no-lock>)"))).await,
        204
    );
    assert_eq!(status(put(format!("</l.txt> (<{token}>)"))).await, 204);
    // Not <token> alone: the list is false (the token matches) → 412.
    assert_eq!(status(put(format!("(Not <{token}>)"))).await, 412);

    // A token on an unlocked resource does not match (RFC 4918 §10.4.8).
    assert_eq!(gw.put("/free.txt", "f").await, 201);
    let s = status(
        gw.req("PUT", "/free.txt")
            .header("if", format!("(<{token}>)"))
            .body("y"),
    )
    .await;
    assert_eq!(s, 412);
    assert_eq!(bytes_of(&gw, "/free.txt").await, Some(b"f".to_vec()));
    gw.stop().await;
}

#[tokio::test]
async fn office_put_with_only_lock_token_is_accepted_for_its_lock() {
    let gw = Gw::start().await;
    assert_eq!(gw.put("/o.docx", "v1").await, 201);
    let token = lock(&gw, "/o.docx").await;
    let s = status(
        gw.req("PUT", "/o.docx")
            .header("lock-token", format!("<{token}>"))
            .body("v2"),
    )
    .await;
    assert_eq!(s, 204);
    assert_eq!(bytes_of(&gw, "/o.docx").await, Some(b"v2".to_vec()));
    // Without the Coded-URL brackets the header is malformed (RFC 4918
    // §10.5): 400 from the front layer, nothing written.
    let s = status(
        gw.req("PUT", "/o.docx")
            .header("lock-token", token.as_str())
            .body("bare"),
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(bytes_of(&gw, "/o.docx").await, Some(b"v2".to_vec()));
    let s = status(
        gw.req("PUT", "/o.docx")
            .header("lock-token", format!("<{token}>"))
            .body("v3"),
    )
    .await;
    assert_eq!(s, 204);
    // A wrong token: still locked.
    let s = status(
        gw.req("PUT", "/o.docx")
            .header(
                "lock-token",
                "<urn:uuid:00000000-0000-4000-8000-000000000000>",
            )
            .body("x"),
    )
    .await;
    assert_eq!(s, 423);
    // The token of a lock on another resource.
    assert_eq!(gw.put("/p.docx", "p").await, 201);
    let other = lock(&gw, "/p.docx").await;
    let s = status(
        gw.req("PUT", "/o.docx")
            .header("lock-token", format!("<{other}>"))
            .body("x"),
    )
    .await;
    assert_eq!(s, 423);
    assert_eq!(bytes_of(&gw, "/o.docx").await, Some(b"v3".to_vec()));

    // A lock of another principal on the same space, named by its token.
    use dav_server::ls::DavLockSystem as _;
    let ns = format!("{}\n{}", EMAIL, CrUri::my());
    let theirs = gw
        .gateway
        .locks()
        .for_user(ns, "someone-else@example.com".into());
    let path = dav_server::davpath::DavPath::new("/q.docx").unwrap();
    assert_eq!(gw.put("/q.docx", "q").await, 201);
    let l = theirs
        .lock(
            &path,
            Some("someone-else@example.com"),
            None,
            Some(Duration::from_secs(600)),
            false,
            false,
        )
        .await
        .expect("their lock");
    let s = status(
        gw.req("PUT", "/q.docx")
            .header("lock-token", format!("<{}>", l.token))
            .body("x"),
    )
    .await;
    assert_eq!(s, 423);
    assert_eq!(bytes_of(&gw, "/q.docx").await, Some(b"q".to_vec()));
    gw.stop().await;
}

#[tokio::test]
async fn delete_of_a_collection_needs_depth_infinity() {
    let gw = Gw::start().await;
    assert_eq!(status(gw.req("MKCOL", "/d")).await, 201);
    assert_eq!(gw.put("/d/x.txt", "x").await, 201);
    for d in ["0", "1"] {
        let s = status(gw.req("DELETE", "/d").header("depth", d)).await;
        assert_eq!(s, 400, "Depth {d}");
        assert_eq!(bytes_of(&gw, "/d/x.txt").await, Some(b"x".to_vec()));
    }
    // A file with Depth 0 is deleted (the header means nothing there).
    let s = status(gw.req("DELETE", "/d/x.txt").header("depth", "0")).await;
    assert_eq!(s, 204);
    let s = status(gw.req("DELETE", "/d").header("depth", "infinity")).await;
    assert_eq!(s, 204);
    gw.stop().await;
}

#[tokio::test]
async fn proppatch_on_an_upstream_locked_file_is_423_naming_the_holder() {
    let gw = Gw::start().await;
    crate::skip_on_real!(gw.up, "injects a Cloudreve lock held by the web editor");
    assert_eq!(gw.put("/w.txt", "w").await, 201);
    let up = gw.up.inject_lock(
        EMAIL,
        "/w.txt",
        LockSpec {
            owner: LockOwner::Viewer {
                viewer_id: "monaco".into(),
            },
            zero_depth: true,
            ttl: Some(Duration::from_secs(1800)),
        },
    );
    let r = gw
        .req("PROPPATCH", "/w.txt")
        .body(PROPPATCH)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 423);
    let body = r.text().await.unwrap();
    assert!(body.contains("<D:lock-token-submitted>"), "{body}");
    assert!(body.contains("Cloudreve web editor"), "{body}");
    assert!(body.contains(&up), "{body}");
    gw.stop().await;
}

/// Holds the next upstream `method path…` request of the gateway at a gate.
fn hold(gw: &Gw, method: http::Method, path: &str) -> Gate {
    let gate = Gate::new();
    gw.up.add_fault(Fault {
        method: Some(method),
        path_prefix: path.to_string(),
        kind: FaultKind::Hold(gate.clone()),
        times: Some(1),
    });
    gate
}

/// Waits (bounded) until the gateway's request is held at `gate`.
async fn arrived(gate: &Gate) {
    tokio::time::timeout(Duration::from_secs(30), gate.arrived())
        .await
        .expect("the gateway's upstream request reaches the gate");
}

fn body(bytes: &'static [u8], chunked: bool) -> reqwest::Body {
    if chunked {
        reqwest::Body::wrap_stream(futures::stream::iter([Ok::<_, std::io::Error>(
            Bytes::from_static(bytes),
        )]))
    } else {
        reqwest::Body::from(bytes)
    }
}

/// Another client writes after dav-server's `If-Match` check but before
/// the gateway's upload session exists: the check made once the session
/// holds its upload lock sees the new version → 412, the session is
/// cancelled, the other client's bytes stay. Known length (streamed) and
/// unknown length (spooled) alike.
#[tokio::test]
async fn write_racing_the_upload_session_is_412() {
    let gw = Gw::start().await;
    crate::skip_on_real!(gw.up, "injects an upstream fault to time the race");
    for (path, chunked) in [("/race-sized.txt", false), ("/race-chunked.txt", true)] {
        assert_eq!(gw.put(path, "original").await, 201);
        let old = etag(&gw, path).await;
        let gate = hold(&gw, http::Method::PUT, "/api/v4/file/upload");
        let put = tokio::spawn(
            gw.req("PUT", path)
                .header("if-match", &old)
                .body(body(b"mine", chunked))
                .send(),
        );
        arrived(&gate).await;
        write_upstream(&gw, path, b"theirs").await;
        gate.open();
        let r = put.await.unwrap().unwrap();
        assert_eq!(r.status(), 412, "{path}");
        assert_eq!(
            bytes_of(&gw, path).await,
            Some(b"theirs".to_vec()),
            "{path}"
        );
        assert_eq!(gw.up.upload_sessions(EMAIL), 0, "session cancelled");
        assert!(gw.up.active_locks(EMAIL).is_empty(), "no upload lock left");
    }
    gw.stop().await;
}

/// Policies without chunk uploads go through `PUT /file/content`: the
/// `If-Match` version is sent as `previous`, so a write landing between
/// dav-server's check and that call gives 40076 → 412. Without `If-Match`
/// the same interleaving overwrites (the gate really orders the writes).
#[tokio::test]
async fn file_content_path_passes_the_version_as_previous() {
    let gw = Gw::start().await;
    crate::skip_on_real!(gw.up, "switches the storage policy type");
    gw.up.set_policy_type(PolicyKind::S3);
    assert_eq!(gw.put("/p.txt", "original").await, 201);
    let old = etag(&gw, "/p.txt").await;

    let gate = hold(&gw, http::Method::PUT, "/api/v4/file/content");
    let put = tokio::spawn(
        gw.req("PUT", "/p.txt")
            .header("if-match", &old)
            .body("mine")
            .send(),
    );
    arrived(&gate).await;
    let theirs = write_upstream(&gw, "/p.txt", b"theirs").await;
    gate.open();
    let r = put.await.unwrap().unwrap();
    assert_eq!(r.status(), 412);
    assert_eq!(bytes_of(&gw, "/p.txt").await, Some(b"theirs".to_vec()));
    assert_eq!(etag(&gw, "/p.txt").await, format!("\"{theirs}\""));

    let gate = hold(&gw, http::Method::PUT, "/api/v4/file/content");
    let put = tokio::spawn(gw.req("PUT", "/p.txt").body("unconditional").send());
    arrived(&gate).await;
    write_upstream(&gw, "/p.txt", b"other").await;
    gate.open();
    let r = put.await.unwrap().unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        bytes_of(&gw, "/p.txt").await,
        Some(b"unconditional".to_vec())
    );
    gw.stop().await;
}

/// `If-None-Match: *` and a file created upstream after dav-server's
/// check: the upload creates a *new* file (`entity_type: ""`), which
/// fails → 412, the other client's file stays.
#[tokio::test]
async fn create_racing_if_none_match_star_is_412() {
    let gw = Gw::start().await;
    crate::skip_on_real!(gw.up, "injects an upstream fault to time the race");
    let gate = hold(&gw, http::Method::PUT, "/api/v4/file/upload");
    let put = tokio::spawn(
        gw.req("PUT", "/n.txt")
            .header("if-none-match", "*")
            .body("mine")
            .send(),
    );
    arrived(&gate).await;
    write_upstream(&gw, "/n.txt", b"theirs").await;
    gate.open();
    let r = put.await.unwrap().unwrap();
    assert_eq!(r.status(), 412);
    assert_eq!(bytes_of(&gw, "/n.txt").await, Some(b"theirs".to_vec()));
    assert_eq!(gw.up.upload_sessions(EMAIL), 0);
    gw.stop().await;
}

/// A file without content (LOCK on a new path creates it empty) has an
/// ETag too; `If-Match` with it is kept through the upload.
#[tokio::test]
async fn if_match_on_a_file_created_empty() {
    let gw = Gw::start().await;
    let token = lock(&gw, "/empty.docx").await;
    let e = etag(&gw, "/empty.docx").await;
    let s = status(
        gw.req("PUT", "/empty.docx")
            .header("if", format!("(<{token}>)"))
            .header("if-match", "\"stale\"")
            .body("x"),
    )
    .await;
    assert_eq!(s, 412);
    let s = status(
        gw.req("PUT", "/empty.docx")
            .header("if", format!("(<{token}>)"))
            .header("if-match", &e)
            .body("content"),
    )
    .await;
    assert_eq!(s, 204);
    assert_eq!(
        bytes_of(&gw, "/empty.docx").await,
        Some(b"content".to_vec())
    );
    gw.stop().await;
}
