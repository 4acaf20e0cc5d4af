//! The whole gateway (front + dav + client) in front of the test's upstream
//! (emulator, or a real Cloudreve with `CLOUDREVE_BIN`), as a
//! WebDAV client sees it: accounts learnt from Cloudreve, account scope,
//! read-only accounts and path traversal.

use std::time::Duration;

use crate::support::stack::{EMAIL, Stack};
use cloudreve_dav::cloudreve::CrUri;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A request: method, path, extra headers.
type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);

/// Sends one raw HTTP/1.1 request (so paths reach the server byte for
/// byte) and returns the status code.
async fn raw(
    addr: std::net::SocketAddr,
    method: &str,
    target: &str,
    password: &str,
    extra: &[(&str, &str)],
) -> u16 {
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{EMAIL}:{password}"));
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Basic {auth}\r\nContent-Length: 0\r\nConnection: close\r\n"
    );
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut buf))
        .await
        .expect("response within 30 s")
        .ok();
    let text = String::from_utf8_lossy(&buf);
    text.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_account_works_at_first_request_and_deleted_one_stops() {
    let stack = Stack::start().await;
    let http = reqwest::Client::new();
    let url = stack.gateway.url();
    let (id, password) = stack.account("/", false).await;

    // The gateway fetched the accounts at start, before this one existed.
    // Its password is unknown, which triggers a refetch (the periodic and
    // start-up fetches do not count against the refetch's rate limit): the
    // new account is admitted at the first request.
    let r = http
        .request(reqwest::Method::from_bytes(b"PROPFIND").unwrap(), &url)
        .header("Depth", "0")
        .basic_auth(EMAIL, Some(&password))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 207, "new account admitted at once");

    stack.session.delete_dav_account(&id).await.unwrap();
    stack.gateway.front().authenticator().refresh_all().await;
    let r = http
        .request(reqwest::Method::from_bytes(b"PROPFIND").unwrap(), &url)
        .header("Depth", "0")
        .basic_auth(EMAIL, Some(&password))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401, "deleted account refused");
    assert!(r.headers().contains_key("www-authenticate"));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_account_gets_403_for_every_mutating_method() {
    let stack = Stack::start().await;
    let (_, rw) = stack.account("/", false).await;
    let (_, ro) = stack.account("/", true).await;
    stack.gateway.front().authenticator().refresh_all().await;
    let addr = stack.gateway.addr();
    assert_eq!(raw(addr, "PUT", "/keep.txt", &rw, &[]).await, 201);
    assert_eq!(raw(addr, "MKCOL", "/dir", &rw, &[]).await, 201);
    let dest = format!("http://{addr}/other.txt");
    let lock_body_free = [("Timeout", "Second-60")];
    let cases: [Case; 8] = [
        ("PUT", "/keep.txt", &[]),
        ("DELETE", "/keep.txt", &[]),
        ("MKCOL", "/newdir", &[]),
        ("COPY", "/keep.txt", &[("Destination", dest.as_str())]),
        ("MOVE", "/keep.txt", &[("Destination", dest.as_str())]),
        ("PROPPATCH", "/keep.txt", &[]),
        ("LOCK", "/keep.txt", &lock_body_free),
        ("UNLOCK", "/keep.txt", &[("Lock-Token", "<urn:uuid:x>")]),
    ];
    for (method, path, extra) in cases {
        assert_eq!(
            raw(addr, method, path, &ro, extra).await,
            403,
            "{method} by a read-only account"
        );
    }
    // Reads still work, and nothing changed upstream.
    assert_eq!(raw(addr, "GET", "/keep.txt", &ro, &[]).await, 200);
    assert_eq!(
        raw(addr, "PROPFIND", "/", &ro, &[("Depth", "1")]).await,
        207
    );
    let names: Vec<String> = stack
        .session
        .list_all(&CrUri::my(), 100)
        .await
        .unwrap()
        .1
        .into_iter()
        .map(|f| f.name)
        .collect();
    assert!(names.contains(&"keep.txt".to_string()));
    assert!(names.contains(&"dir".to_string()));
    assert!(!names.contains(&"other.txt".to_string()));
    assert!(!names.contains(&"newdir".to_string()));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_scope_cannot_be_escaped() {
    let stack = Stack::start().await;
    // A secret outside the account's root, and the account on /inside.
    let secret = CrUri::my_path("/outside/secret.txt").unwrap();
    let body = futures::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from_static(
        b"secret",
    ))]);
    stack
        .session
        .put_content(&secret, None, body, 6)
        .await
        .unwrap();
    let (_, pw) = stack.account("/inside", false).await;
    stack.gateway.front().authenticator().refresh_all().await;
    let addr = stack.gateway.addr();

    // Inside works and is the root.
    assert_eq!(raw(addr, "PUT", "/mine.txt", &pw, &[]).await, 201);
    assert!(
        stack
            .session
            .info(&CrUri::my_path("/inside/mine.txt").unwrap(), false)
            .await
            .is_ok()
    );

    for target in [
        "/../outside/secret.txt",
        "/%2e%2e/outside/secret.txt",
        "/%2E%2E/outside/secret.txt",
        "/..%2foutside%2fsecret.txt",
        "/x/..%2f..%2foutside/secret.txt",
        "/..\\outside\\secret.txt",
        "/%5c..%5coutside%5csecret.txt",
        "/secret.txt%00",
        "/a/./../../outside/secret.txt",
    ] {
        for method in ["GET", "DELETE"] {
            let status = raw(addr, method, target, &pw, &[]).await;
            assert!(
                (400..500).contains(&status),
                "{method} {target} must be refused with 4xx, got {status}"
            );
        }
    }
    for dest in [
        format!("http://{addr}/../outside/stolen.txt"),
        format!("http://{addr}/%2e%2e/outside/stolen.txt"),
        "/../outside/stolen.txt".to_string(),
    ] {
        for method in ["COPY", "MOVE"] {
            let status = raw(addr, method, "/mine.txt", &pw, &[("Destination", &dest)]).await;
            assert!(
                (400..500).contains(&status),
                "{method} to {dest} must be refused with 4xx, got {status}"
            );
        }
    }
    // Nothing outside was touched or created.
    let outside: Vec<String> = stack
        .session
        .list_all(&CrUri::my_path("/outside").unwrap(), 100)
        .await
        .unwrap()
        .1
        .into_iter()
        .map(|f| f.name)
        .collect();
    assert_eq!(outside, vec!["secret.txt".to_string()]);
    assert_eq!(
        stack
            .up
            .file_bytes(EMAIL, "/outside/secret.txt")
            .await
            .as_deref(),
        Some(&b"secret"[..])
    );
    stack.stop().await;
}

/// Cloudreve 4.13's upgrade reset `secret_key`, which invalidated every
/// token and signed URL: the gateway signs in again on its own, and WebDAV
/// clients see no error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_key_reset_upstream_is_invisible_to_clients() {
    let mut stack = Stack::start().await;
    let (_, pw) = stack.account("/", false).await;
    stack.gateway.front().authenticator().refresh_all().await;
    let addr = stack.gateway.addr();
    let http = reqwest::Client::new();
    let url = |p: &str| format!("http://{addr}{p}");
    let r = http
        .put(url("/before.txt"))
        .basic_auth(EMAIL, Some(&pw))
        .body("before")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    stack.up.reset_secret_key().await;

    let r = http
        .get(url("/before.txt"))
        .basic_auth(EMAIL, Some(&pw))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap(), &b"before"[..]);
    let r = http
        .put(url("/after.txt"))
        .basic_auth(EMAIL, Some(&pw))
        .body("after")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(
        raw(addr, "PROPFIND", "/", &pw, &[("Depth", "1")]).await,
        207
    );
    assert_eq!(
        stack.up.file_bytes(EMAIL, "/after.txt").await.as_deref(),
        Some(&b"after"[..])
    );
    // New accounts are still learnt (the account list is fetched with the
    // renewed session too).
    let (_, pw2) = stack.account("/", true).await;
    assert_eq!(
        raw(addr, "PROPFIND", "/", &pw2, &[("Depth", "0")]).await,
        207
    );
    stack.stop().await;
}

/// Answers every request on a loopback port with `content_type` and
/// `body` (an upstream that is not a supported Cloudreve).
async fn fixed_server(content_type: &'static str, body: &'static str) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}")
}

/// Cloudreve older than 4.0 (or a URL that is not Cloudreve's site root)
/// is refused before anyone signs in, with a message that says why.
#[tokio::test]
async fn an_unsupported_upstream_is_refused_at_start() {
    use cloudreve_dav::config::{self, ServeArgs};
    let cases = [
        (
            "application/json",
            r#"{"code":0,"data":"3.8.3","msg":""}"#,
            "older than 4.0.0",
        ),
        (
            "text/html",
            "<!doctype html><html><body>a web page</body></html>",
            "HTML page",
        ),
    ];
    for (ct, body, want) in cases {
        let url = fixed_server(ct, body).await;
        let args = ServeArgs {
            upstream: Some(url.clone()),
            ..ServeArgs::default()
        };
        let config = config::load_with_env(&args, &|key: &str| match key {
            "CLOUDREVE_DAV_USER_EMAIL" => Some(EMAIL.to_string()),
            "CLOUDREVE_DAV_USER_PASSWORD" => Some("x".to_string()),
            _ => None,
        })
        .unwrap();
        let err = cloudreve_dav::gateway::sign_in_users(&config)
            .await
            .err()
            .expect("refused");
        assert!(err.to_string().contains(want), "{err:#}");
    }
}

/// A storage policy with encryption on (4.10): what the gateway uploads is
/// stored encrypted (Cloudreve leaves that to the uploading client, which
/// gets the key in the upload session, docs/UPSTREAM.md §5.7), and comes
/// back whole through the gateway, ranges included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_and_downloads_work_on_an_encrypting_policy() {
    let stack = Stack::start().await;
    stack.up.set_policy_encryption(true).await;
    let policy = stack
        .session
        .list_page(&CrUri::my(), 1, None)
        .await
        .unwrap()
        .storage_policy
        .expect("policy in the listing");
    assert!(policy.encryption, "{policy:?}");
    let (_, pw) = stack.account("/", false).await;
    stack.gateway.front().authenticator().refresh_all().await;
    let addr = stack.gateway.addr();
    let http = reqwest::Client::new();
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let r = http
        .put(format!("http://{addr}/enc.bin"))
        .basic_auth(EMAIL, Some(&pw))
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = http
        .get(format!("http://{addr}/enc.bin"))
        .basic_auth(EMAIL, Some(&pw))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.unwrap() == data[..], "whole body differs");
    let r = http
        .get(format!("http://{addr}/enc.bin"))
        .basic_auth(EMAIL, Some(&pw))
        .header("Range", "bytes=1000-1999")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert!(
        r.bytes().await.unwrap() == data[1000..2000],
        "range differs"
    );
    assert_eq!(
        stack.up.file_size(EMAIL, "/enc.bin").await,
        Some(data.len() as u64)
    );
    // Encrypted at rest: Cloudreve says so, and the stored bytes are not
    // the content.
    let info = stack
        .session
        .info(&CrUri::my_path("/enc.bin").unwrap(), true)
        .await
        .unwrap();
    let entities = info.extended_info.map(|x| x.entities).unwrap_or_default();
    assert_eq!(
        entities.first().and_then(|e| e.encrypted_with.as_deref()),
        Some("aes-256-ctr"),
        "{entities:?}"
    );
    let stored = stack
        .up
        .stored_bytes(EMAIL, "/enc.bin")
        .expect("stored blob");
    assert_eq!(stored.len(), data.len());
    assert!(stored != data, "stored in clear");
    // A second, chunked upload over it (several chunks, each encrypted
    // from its own offset) reads back whole too.
    stack.up.set_policy_chunk_size(1 << 20).await;
    let data2: Vec<u8> = (0..2_500_000u32).map(|i| (i * 13 % 241) as u8).collect();
    let r = http
        .put(format!("http://{addr}/enc.bin"))
        .basic_auth(EMAIL, Some(&pw))
        .body(data2.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = http
        .get(format!("http://{addr}/enc.bin"))
        .basic_auth(EMAIL, Some(&pw))
        .header("Range", "bytes=1048570-1048600")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert!(
        r.bytes().await.unwrap() == data2[1_048_570..1_048_601],
        "range across chunks differs"
    );
    assert_eq!(
        stack.up.file_bytes(EMAIL, "/enc.bin").await.as_deref(),
        Some(&data2[..])
    );
    stack.stop().await;
}
