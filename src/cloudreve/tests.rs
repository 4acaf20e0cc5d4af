//! Behaviour tests against a tiny in-test fake (not an emulator): token
//! single-flight refresh, re-sign-in, 2FA, download error detection and the
//! upload writer's chunking/cancel behaviour.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use chrono::Utc;
use serde_json::{Value, json};

use super::*;

#[derive(Default)]
struct Fake {
    refreshes: AtomicUsize,
    logins: AtomicUsize,
    /// Access tokens accepted (others get code 401).
    valid_prefix: Mutex<String>,
    /// Access lifetime (seconds) of issued tokens.
    access_ttl: Mutex<i64>,
    /// Refresh answers 40020 when set.
    refresh_dead: Mutex<bool>,
    chunks: Mutex<Vec<(u64, usize, Option<String>)>>,
    cancels: AtomicUsize,
    put_lengths: Mutex<Vec<Option<String>>>,
}

fn ok(data: Value) -> Response {
    axum::Json(json!({"code":0,"data":data,"msg":""})).into_response()
}

fn code(c: i64, msg: &str) -> Response {
    axum::Json(json!({"code":c,"msg":msg,"correlation_id":"cid-1"})).into_response()
}

fn token(prefix: &str, n: usize, ttl: i64) -> Value {
    let now = Utc::now();
    json!({
        "access_token": format!("{prefix}{n}"),
        "refresh_token": format!("r{n}"),
        "access_expires": (now + chrono::Duration::seconds(ttl)).to_rfc3339(),
        "refresh_expires": (now + chrono::Duration::days(14)).to_rfc3339(),
    })
}

fn authed(f: &Fake, h: &HeaderMap) -> bool {
    let want = f.valid_prefix.lock().unwrap().clone();
    h.get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| t.starts_with(&want))
}

async fn login(State(f): State<Arc<Fake>>, body: Bytes) -> Response {
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let n = f.logins.fetch_add(1, Ordering::SeqCst);
    match v["email"].as_str() {
        Some("2fa@x.org") => {
            axum::Json(json!({"code":203,"data":"2fa-session","msg":""})).into_response()
        }
        Some("u@x.org") if v["password"] == "pw" => {
            let ttl = *f.access_ttl.lock().unwrap();
            ok(
                json!({"user":{"id":"u1","nickname":"U","created_at":"2025-01-01T00:00:00Z"},
                      "token": token("login", n, ttl)}),
            )
        }
        _ => code(40080, "Incorrect password or email address"),
    }
}

async fn refresh(State(f): State<Arc<Fake>>) -> Response {
    let n = f.refreshes.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(50)).await;
    if *f.refresh_dead.lock().unwrap() {
        return code(40020, "Failed to issue token pair");
    }
    ok(token("fresh", n, 3600))
}

async fn capacity(State(f): State<Arc<Fake>>, h: HeaderMap) -> Response {
    if !authed(&f, &h) {
        return code(401, "Login required");
    }
    ok(json!({"total":100,"used":130}))
}

async fn list(
    State(f): State<Arc<Fake>>,
    h: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if !authed(&f, &h) {
        return code(401, "Login required");
    }
    let uri = q.get("uri").cloned().unwrap_or_default();
    if uri.starts_with("cloudreve://my/paged") {
        // Two pages; the URI must arrive exactly as escaped by the client.
        if uri != "cloudreve://my/paged/a%20b%2Bc%25%23" {
            return code(40016, "Path not exist");
        }
        let (next, name) = match q.get("next_page_token").map(String::as_str) {
            None => ("t1", "first"),
            Some("t1") => ("", "second"),
            _ => return code(-1, ""),
        };
        return ok(json!({"files":[{"type":0,"id":"x","name":name,"size":1}],
              "parent":{"type":1,"id":"p","name":"a b+c%#"},
              "pagination":{"page":0,"page_size":1,"is_cursor":true,"next_token":next},
              "storage_policy":{"id":"pol","type":"local"}}));
    }
    let kind = if uri.starts_with("cloudreve://my/s3") {
        "s3"
    } else {
        "local"
    };
    ok(
        json!({"files":[],"parent":{"type":1,"id":"r","name":"","path":"cloudreve://my/"},
              "pagination":{"page":0,"page_size":1,"is_cursor":true},
              "storage_policy":{"id":"pol","name":"Default","type":kind,"max_size":0}}),
    )
}

async fn create_session(State(_f): State<Arc<Fake>>, body: Bytes) -> Response {
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if v["policy_id"] != "pol" {
        return code(40001, "unknown policy id");
    }
    let kind = if v["uri"]
        .as_str()
        .unwrap_or("")
        .starts_with("cloudreve://my/s3")
    {
        "s3"
    } else {
        "local"
    };
    ok(
        json!({"session_id":"s1","chunk_size":4,"expires":1,"uri":v["uri"],"upload_id":"",
              "storage_policy":{"id":"pol","type":kind}}),
    )
}

async fn chunk(
    State(f): State<Arc<Fake>>,
    Path((_id, idx)): Path<(String, u64)>,
    h: HeaderMap,
    body: Bytes,
) -> Response {
    let cl = h
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    f.chunks.lock().unwrap().push((idx, body.len(), cl));
    axum::Json(json!({"code":0,"msg":""})).into_response()
}

async fn cancel(State(f): State<Arc<Fake>>) -> Response {
    f.cancels.fetch_add(1, Ordering::SeqCst);
    axum::Json(json!({"code":0,"msg":""})).into_response()
}

async fn info() -> Response {
    ok(
        json!({"type":0,"id":"f","name":"a b.txt","size":10,"primary_entity":"e1",
              "path":"cloudreve://my/a%20b.txt","metadata":null}),
    )
}

async fn put_content(State(f): State<Arc<Fake>>, h: HeaderMap, body: Bytes) -> Response {
    let cl = h
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    f.put_lengths.lock().unwrap().push(cl);
    ok(
        json!({"type":0,"id":"f","name":"x","size":body.len(),"primary_entity":"e2","metadata":null}),
    )
}

async fn content_plain() -> Response {
    (StatusCode::OK, [("content-type", "text/plain")], "hello").into_response()
}

async fn content_expired() -> Response {
    code(40005, "Signature expired")
}

async fn content_ok() -> Response {
    (
        StatusCode::OK,
        [("etag", "\"e1\""), ("content-type", "application/json")],
        "{\"code\":40005}",
    )
        .into_response()
}

async fn start(f: Arc<Fake>) -> String {
    let app = Router::new()
        .route("/api/v4/session/token", post(login))
        .route("/api/v4/session/token/refresh", post(refresh))
        .route("/api/v4/user/capacity", get(capacity))
        .route("/api/v4/file", get(list))
        .route("/api/v4/file/info", get(info))
        .route("/api/v4/file/content", put(put_content))
        .route("/api/v4/file/upload", put(create_session).delete(cancel))
        .route("/api/v4/file/upload/{id}/{idx}", post(chunk))
        .route("/api/v4/file/content/expired/0/x", get(content_expired))
        .route("/api/v4/file/content/ok/0/x", get(content_ok))
        .route("/api/v4/file/content/plain/0/x", get(content_plain))
        .with_state(f);
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    format!("http://{addr}")
}

fn fake(valid_prefix: &str, ttl: i64) -> Arc<Fake> {
    let f = Fake::default();
    *f.valid_prefix.lock().unwrap() = valid_prefix.to_string();
    *f.access_ttl.lock().unwrap() = ttl;
    Arc::new(f)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn single_flight_refresh_on_401() {
    // Login tokens are rejected (as if expired): every request sees 401.
    let f = fake("fresh", 3600);
    let base = start(f.clone()).await;
    let s = Client::new(&base)
        .unwrap()
        .sign_in("u@x.org", "pw")
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move { s.capacity().await }));
    }
    for t in tasks {
        let c = t.await.unwrap().unwrap();
        assert_eq!(c.available(), 0);
    }
    assert_eq!(f.refreshes.load(Ordering::SeqCst), 1);
    assert_eq!(s.refresh_count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn single_flight_proactive_refresh() {
    // Access tokens live 10 s, below the 120 s margin: refresh before use.
    let f = fake("", 10);
    let base = start(f.clone()).await;
    let s = Client::new(&base)
        .unwrap()
        .sign_in("u@x.org", "pw")
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move { s.capacity().await }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(f.refreshes.load(Ordering::SeqCst), 1);
    assert!(s.token().await.access_token.starts_with("fresh"));
}

#[tokio::test]
async fn dead_refresh_signs_in_again_or_fails_typed() {
    let f = fake("login", 3600);
    *f.refresh_dead.lock().unwrap() = true;
    let base = start(f.clone()).await;
    let client = Client::new(&base).unwrap();
    let s = client.sign_in("u@x.org", "pw").await.unwrap();
    s.refresh().await.unwrap();
    assert_eq!(f.logins.load(Ordering::SeqCst), 2);
    assert!(s.capacity().await.is_ok());
    // Without a password: a typed "sign in again".
    let e = client.session_from_refresh_token("r0").await.unwrap_err();
    assert!(matches!(e, Error::SignInRequired), "{e:?}");
    let s2 = client.session_from_token(s.token().await);
    assert!(matches!(s2.refresh().await, Err(Error::SignInRequired)));
    // The dead session fails fast, without hitting the server again.
    let before = f.refreshes.load(Ordering::SeqCst);
    assert!(matches!(s2.capacity().await, Err(Error::SignInRequired)));
    assert_eq!(f.refreshes.load(Ordering::SeqCst), before);
}

#[tokio::test]
async fn sign_in_errors() {
    let f = fake("login", 3600);
    let base = start(f).await;
    let client = Client::new(&format!("{base}/")).unwrap();
    match client.sign_in("2fa@x.org", "pw").await {
        Err(Error::TwoFactorRequired { session_id }) => assert_eq!(session_id, "2fa-session"),
        other => panic!("{other:?}"),
    }
    let e = client.sign_in("u@x.org", "nope").await.unwrap_err();
    assert!(e.is_invalid_credentials());
    assert_eq!(e.api().unwrap().correlation_id.as_deref(), Some("cid-1"));
    // Unknown route: HTTP 404 text.
    let e = client.ping().await.unwrap_err();
    assert!(
        matches!(e, Error::UnexpectedStatus { status: 404, .. }),
        "{e:?}"
    );
}

#[tokio::test]
async fn download_error_envelope_and_etag() {
    let f = fake("", 3600);
    let base = start(f).await;
    let client = Client::new(&base).unwrap();
    let e = client
        .open_url("/api/v4/file/content/expired/0/x", None)
        .await
        .unwrap_err();
    assert!(e.is(ErrorCode::SignExpired), "{e:?}");
    // With an Etag, a JSON body is content.
    let r = client
        .open_url(&format!("{base}/api/v4/file/content/ok/0/x"), None)
        .await
        .unwrap();
    assert_eq!(r.etag.as_deref(), Some("\"e1\""));
    assert_eq!(r.status, 200);
    assert_eq!(&r.bytes().await.unwrap()[..], b"{\"code\":40005}");
    // Without an Etag, a non-envelope body is still content.
    let r = client
        .open_url("/api/v4/file/content/plain/0/x", Some((0, None)))
        .await
        .unwrap();
    assert_eq!(r.content_length, Some(5));
    assert_eq!(&r.bytes().await.unwrap()[..], b"hello");
}

#[tokio::test]
async fn download_short_body_is_error() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut c, _) = l.accept().await.unwrap();
        let mut buf = [0u8; 2048];
        let _ = c.read(&mut buf).await;
        let _ = c
            .write_all(b"HTTP/1.1 200 OK\r\nEtag: \"e\"\r\nContent-Length: 10\r\n\r\nabc")
            .await;
        let _ = c.shutdown().await;
    });
    let client = Client::new(&format!("http://{addr}")).unwrap();
    let r = client.open_url("/x", None).await.unwrap();
    assert_eq!(r.content_length, Some(10));
    assert!(r.bytes().await.is_err());
}

#[tokio::test]
async fn upload_chunks_and_cancel() {
    let f = fake("", 3600);
    let base = start(f.clone()).await;
    let s = Client::new(&base)
        .unwrap()
        .sign_in("u@x.org", "pw")
        .await
        .unwrap();
    let uri = CrUri::my().join("a b.txt").unwrap();
    let mut src: &[u8] = b"0123456789";
    let fr = s
        .upload(&uri, 10, &mut src, UploadOptions::default())
        .await
        .unwrap();
    assert_eq!(fr.primary_entity.as_deref(), Some("e1"));
    let chunks = f.chunks.lock().unwrap().clone();
    assert_eq!(
        chunks,
        vec![
            (0, 4, Some("4".into())),
            (1, 4, Some("4".into())),
            (2, 2, Some("2".into()))
        ]
    );
    assert_eq!(f.cancels.load(Ordering::SeqCst), 0);

    // A source shorter than announced: error, and the session is cancelled.
    let mut short: &[u8] = b"012345";
    let e = s
        .upload(&uri, 10, &mut short, UploadOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::SourceLength { .. }), "{e:?}");
    assert_eq!(f.cancels.load(Ordering::SeqCst), 1);

    // put_content always sends Content-Length.
    let body = futures::stream::iter(vec![
        Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"hello ")),
        Ok(bytes::Bytes::from_static(b"world")),
    ]);
    let fr = s.put_content(&uri, Some("e1"), body, 11).await.unwrap();
    assert_eq!(fr.size, 11);
    assert_eq!(
        f.put_lengths.lock().unwrap().clone(),
        vec![Some("11".to_string())]
    );
}

#[tokio::test]
async fn list_follows_cursor_with_double_encoded_uri() {
    use futures::StreamExt;
    let f = fake("", 3600);
    let base = start(f).await;
    let s = Client::new(&base)
        .unwrap()
        .sign_in("u@x.org", "pw")
        .await
        .unwrap();
    let dir = CrUri::my().join("paged").unwrap().join("a b+c%#").unwrap();
    let pages: Vec<_> = s.list(&dir, 1).collect().await;
    assert_eq!(pages.len(), 2);
    let names: Vec<String> = pages
        .into_iter()
        .flat_map(|p| p.unwrap().files.into_iter().map(|f| f.name))
        .collect();
    assert_eq!(names, ["first", "second"]);
    let (head, files) = s.list_all(&dir, 1).await.unwrap();
    assert_eq!(files.len(), 2);
    assert_eq!(head.storage_policy.unwrap().id, "pol");
}

#[tokio::test]
async fn upload_cancelled_on_drop_and_policy_refusal() {
    let f = fake("", 3600);
    let base = start(f.clone()).await;
    let s = Client::new(&base)
        .unwrap()
        .sign_in("u@x.org", "pw")
        .await
        .unwrap();
    let uri = CrUri::my().join("slow.bin").unwrap();
    // A source that never produces: the upload future is dropped mid-chunk.
    let (_w, mut r) = tokio::io::duplex(16);
    let res = tokio::time::timeout(
        Duration::from_millis(200),
        s.upload(&uri, 10, &mut r, UploadOptions::default()),
    )
    .await;
    assert!(res.is_err());
    for _ in 0..50 {
        if f.cancels.load(Ordering::SeqCst) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(f.cancels.load(Ordering::SeqCst), 1);

    // A non-relay S3 policy: typed 40006 and the session is cancelled.
    let uri = CrUri::my().join("s3").unwrap().join("x.bin").unwrap();
    let mut src: &[u8] = b"0123456789";
    let e = s
        .upload(&uri, 10, &mut src, UploadOptions::default())
        .await
        .unwrap_err();
    assert!(e.is_policy_not_allowed(), "{e:?}");
    assert_eq!(f.cancels.load(Ordering::SeqCst), 2);
    assert!(f.chunks.lock().unwrap().is_empty());
}
