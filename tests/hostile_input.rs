//! Hostile input against a full gateway (front layer + dav-server over the
//! Cloudreve emulator): XML with DTDs and entities, oversized bodies and
//! headers, malformed WebDAV headers, bad bytes in paths, very long names and
//! deep paths. Each gets a 4xx, nothing reaches upstream, and the server
//! keeps serving (a normal request succeeds afterwards). A panic inside
//! dav-server answers 500 for that request only.

use std::sync::Arc;
use std::time::Duration;

use crate::dav_common::{DAV_PASSWORD, EMAIL, Gw};
use async_trait::async_trait;
use base64::Engine as _;
use cloudreve_dav::cloudreve::CrUri;
use cloudreve_dav::dav::DavGateway;
use cloudreve_dav::front::{BoxBody, DavService, Principal};
use http::{Request, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(30);

fn auth_header() -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{EMAIL}:{DAV_PASSWORD}"));
    format!("Basic {b64}")
}

/// A parsed raw response.
#[derive(Debug)]
struct Raw {
    status: u16,
    head: String,
    body: Vec<u8>,
}

/// Sends raw bytes (the request must ask for `Connection: close` or be
/// refused with a closing answer) and reads the answer to EOF.
async fn raw(gw: &Gw, bytes: &[u8]) -> Raw {
    let mut s = TcpStream::connect(gw.addr()).await.expect("connect");
    // The server may answer and close before the whole request is written.
    let _ = s.write_all(bytes).await;
    let mut out = Vec::new();
    tokio::time::timeout(WAIT, async {
        let mut buf = [0u8; 65536];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("the server answers and closes");
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, _) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let body_at = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(out.len(), |i| i + 4);
    Raw {
        status,
        head: head.to_owned(),
        body: out[body_at..].to_vec(),
    }
}

/// A request with credentials and `Connection: close`; `extra` are raw
/// header lines (each ending in CRLF).
fn request(method: &str, target: &[u8], extra: &[u8], body: &[u8]) -> Vec<u8> {
    let mut r = Vec::new();
    r.extend_from_slice(method.as_bytes());
    r.push(b' ');
    r.extend_from_slice(target);
    r.extend_from_slice(b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nAuthorization: ");
    r.extend_from_slice(auth_header().as_bytes());
    r.extend_from_slice(b"\r\n");
    r.extend_from_slice(extra);
    if !body.is_empty() {
        r.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    r.extend_from_slice(b"\r\n");
    r.extend_from_slice(body);
    r
}

/// The server still serves: a PROPFIND of the root and a GET of `/ok.txt`.
async fn still_serving(gw: &Gw) {
    let (s, _) = gw.propfind("/", "1").await;
    assert_eq!(s, 207, "PROPFIND after hostile input");
    let (s, body) = gw.get("/ok.txt").await;
    assert_eq!(
        (s, body.as_slice()),
        (200, &b"fine"[..]),
        "GET after hostile input"
    );
}

async fn started() -> Gw {
    let gw = Gw::start().await;
    assert_eq!(gw.put("/ok.txt", "fine").await, 201);
    gw
}

/// Names in the upstream root.
async fn upstream_names(gw: &Gw) -> Vec<String> {
    let (_, files) = gw
        .session
        .list_all(&CrUri::my(), 100)
        .await
        .expect("list upstream");
    let mut n: Vec<String> = files.into_iter().map(|f| f.name).collect();
    n.sort();
    n
}

const BILLION_LAUGHS: &str = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<D:propfind xmlns:D="DAV:"><D:prop><D:displayname>&lol9;</D:displayname></D:prop></D:propfind>"#;

#[tokio::test]
async fn xml_with_dtd_or_entities_is_refused_and_never_resolved() {
    let gw = started().await;
    let secret_dir = tempfile::tempdir().expect("tempdir");
    let secret = secret_dir.path().join("secret.txt");
    std::fs::write(&secret, "TOP-SECRET-MARKER").expect("write");
    // An HTTP entity target: resolving it would connect here.
    let trap = std::net::TcpListener::bind("127.0.0.1:0").expect("bind trap");
    trap.set_nonblocking(true).expect("nonblocking");
    let trap_url = format!("http://{}/x", trap.local_addr().expect("addr"));

    let file_xxe = format!(
        r#"<?xml version="1.0"?><!DOCTYPE p [<!ENTITY x SYSTEM "file://{}">]><D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><Z:note xmlns:Z="urn:z">&x;</Z:note></D:prop></D:set></D:propertyupdate>"#,
        secret.display()
    );
    let http_xxe = format!(
        r#"<?xml version="1.0"?><!DOCTYPE p SYSTEM "{trap_url}"><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>"#
    );
    let param_entity = format!(
        r#"<?xml version="1.0"?><!DOCTYPE p [<!ENTITY % r SYSTEM "{trap_url}"> %r;]><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>"#
    );
    let lowercase = r#"<?xml version="1.0"?><!doctype p [<!entity a "b">]><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>"#;
    let utf16: Vec<u8> = "\u{feff}<?xml version=\"1.0\" encoding=\"UTF-16\"?><!DOCTYPE a [<!ENTITY x \"y\">]><D:propfind xmlns:D=\"DAV:\"><D:allprop/></D:propfind>"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let cases: Vec<(&str, &str, Vec<u8>)> = vec![
        ("PROPFIND", "/", BILLION_LAUGHS.as_bytes().to_vec()),
        ("PROPPATCH", "/ok.txt", file_xxe.into_bytes()),
        ("PROPFIND", "/ok.txt", http_xxe.into_bytes()),
        ("LOCK", "/locked.txt", param_entity.into_bytes()),
        ("PROPFIND", "/", lowercase.as_bytes().to_vec()),
        ("PROPFIND", "/", utf16),
    ];
    for (method, path, body) in cases {
        let r = raw(
            &gw,
            &request(method, path.as_bytes(), b"Depth: 0\r\n", &body),
        )
        .await;
        assert_eq!(r.status, 400, "{method} {path} with a DTD: {}", r.head);
        assert!(
            !String::from_utf8_lossy(&r.body).contains("TOP-SECRET-MARKER"),
            "entity resolved"
        );
    }
    assert!(
        matches!(trap.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "an external entity was fetched"
    );
    // Nothing happened upstream: no lock, no new file, no property.
    assert!(gw.up.active_locks(EMAIL).is_empty());
    assert_eq!(upstream_names(&gw).await, vec!["ok.txt".to_owned()]);
    let r = gw
        .req("PROPFIND", "/ok.txt")
        .header("depth", "0")
        .body(r#"<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><Z:note xmlns:Z="urn:z"/></D:prop></D:propfind>"#)
        .send()
        .await
        .expect("propfind");
    assert_eq!(r.status(), 207);
    let text = r.text().await.expect("body");
    assert!(text.contains("404"), "the property was never set: {text}");
    still_serving(&gw).await;
    gw.stop().await;
}

#[tokio::test]
async fn oversized_bodies_and_headers_are_refused() {
    let gw = started().await;
    // XML body above 64 KiB, announced by Content-Length: refused unread.
    let mut big = br#"<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/>"#.to_vec();
    big.extend(std::iter::repeat_n(b' ', 70 * 1024));
    big.extend_from_slice(b"</D:propfind>");
    let r = raw(&gw, &request("PROPFIND", b"/", b"Depth: 0\r\n", &big)).await;
    assert_eq!(r.status, 413, "{}", r.head);
    // The same in chunks without a length: refused once past the limit.
    let mut chunked = Vec::new();
    for piece in big.chunks(4096) {
        chunked.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        chunked.extend_from_slice(piece);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let mut req = request(
        "PROPPATCH",
        b"/ok.txt",
        b"Transfer-Encoding: chunked\r\n",
        b"",
    );
    req.extend_from_slice(&chunked);
    let r = raw(&gw, &req).await;
    assert_eq!(r.status, 413, "{}", r.head);
    // A LOCK body above the limit.
    let r = raw(&gw, &request("LOCK", b"/ok.txt", b"", &big)).await;
    assert_eq!(r.status, 413, "{}", r.head);

    // Headers: one header over the front layer's 64 KiB sum...
    let line = format!("X-Big: {}\r\n", "a".repeat(70 * 1024));
    let r = raw(&gw, &request("GET", b"/ok.txt", line.as_bytes(), b"")).await;
    assert_eq!(r.status, 431, "{}", r.head);
    // ...one header over hyper's 256 KiB head buffer...
    let line = format!("X-Huge: {}\r\n", "a".repeat(300 * 1024));
    let r = raw(&gw, &request("GET", b"/ok.txt", line.as_bytes(), b"")).await;
    assert_eq!(r.status, 431, "{}", r.head);
    // ...and more header fields than hyper accepts.
    let many: String = (0..200).map(|i| format!("X-H{i}: v\r\n")).collect();
    let r = raw(&gw, &request("GET", b"/ok.txt", many.as_bytes(), b"")).await;
    assert_eq!(r.status, 431, "{}", r.head);
    // A request line with a 100 KiB target.
    let target = format!("/{}", "a/".repeat(50 * 1024));
    let r = raw(&gw, &request("GET", target.as_bytes(), b"", b"")).await;
    assert!(matches!(r.status, 414 | 431), "{}", r.head);
    still_serving(&gw).await;
    gw.stop().await;
}

#[tokio::test]
async fn malformed_webdav_headers_get_400() {
    let gw = started().await;
    let cases: &[(&str, &str, &str)] = &[
        ("GET", "/ok.txt", "If-Match: \"\r\n"),
        ("PUT", "/ok.txt", "If-None-Match: W/\"\r\n"),
        ("GET", "/ok.txt", "Range: bytes=0-1\r\nIf-Range: \"\r\n"),
        ("PUT", "/ok.txt", "If: (<urn:uuid:1\r\n"),
        ("PUT", "/ok.txt", "If: ([\"e\"\r\n"),
        ("PUT", "/ok.txt", "If: garbage\r\n"),
        ("PROPFIND", "/", "Depth: 2\r\n"),
        ("PROPFIND", "/", "Depth: 1\r\nDepth: 0\r\n"),
        ("LOCK", "/ok.txt", "Timeout: Second-abc\r\n"),
        ("LOCK", "/ok.txt", "Timeout: Minute-5\r\n"),
        (
            "LOCK",
            "/ok.txt",
            "Timeout: Second-99999999999999999999999\r\n",
        ),
        ("COPY", "/ok.txt", "Destination: ftp://localhost/x\r\n"),
        (
            "COPY",
            "/ok.txt",
            "Destination: http://localhost/a/../../x\r\n",
        ),
        ("MOVE", "/ok.txt", "Destination: /b%2fc\r\n"),
        (
            "MOVE",
            "/ok.txt",
            "Destination: /b.txt\r\nDestination: /c.txt\r\n",
        ),
        (
            "COPY",
            "/ok.txt",
            "Destination: /copy.txt\r\nOverwrite: f\r\n",
        ),
        (
            "COPY",
            "/ok.txt",
            "Destination: /copy.txt\r\nOverwrite: yes\r\n",
        ),
        ("GET", "/ok.txt", "Range: bytes=abc\r\n"),
        ("GET", "/ok.txt", "Range: bytes=5-1\r\n"),
        ("GET", "/ok.txt", "Range: bytes=-\r\n"),
        ("GET", "/ok.txt", "Range: bytes=0-1,,x\r\n"),
        ("UNLOCK", "/ok.txt", "Lock-Token: urn:uuid:1\r\n"),
        ("UNLOCK", "/ok.txt", "Lock-Token: <urn:uuid:1\r\n"),
    ];
    for (method, path, header) in cases {
        let r = raw(
            &gw,
            &request(method, path.as_bytes(), header.as_bytes(), b""),
        )
        .await;
        assert_eq!(r.status, 400, "{method} {path} {header:?}: {}", r.head);
    }
    let many_ranges: String = (0..100).map(|i| format!("{i}-{i},")).collect();
    let line = format!("Range: bytes={many_ranges}\r\n");
    let r = raw(&gw, &request("GET", b"/ok.txt", line.as_bytes(), b"")).await;
    assert_eq!(r.status, 400, "100 ranges: {}", r.head);
    // Nothing was copied, moved or locked.
    assert_eq!(upstream_names(&gw).await, vec!["ok.txt".to_owned()]);
    assert!(gw.up.active_locks(EMAIL).is_empty());
    // Well-formed values still work.
    let r = gw
        .req("GET", "/ok.txt")
        .header("range", "bytes=1-2")
        .send()
        .await
        .expect("range");
    assert_eq!(r.status(), 206);
    assert_eq!(r.bytes().await.expect("body").as_ref(), b"in");
    let r = gw
        .req("COPY", "/ok.txt")
        .header("destination", "/copy.txt")
        .header("overwrite", "F")
        .send()
        .await
        .expect("copy");
    assert_eq!(r.status(), 201);
    still_serving(&gw).await;
    gw.stop().await;
}

#[tokio::test]
async fn bad_bytes_long_names_and_deep_paths_get_4xx() {
    let gw = started().await;
    let long_name = "n".repeat(256);
    let long_utf8 = "%C3%A9".repeat(128); // 256 bytes decoded
    let deep = "/d".repeat(200);
    let cases: Vec<(String, Vec<u8>, u16)> = vec![
        (
            "invalid UTF-8, encoded".into(),
            b"/a%ff%fe.txt".to_vec(),
            400,
        ),
        ("invalid UTF-8, raw".into(), b"/a\xff\xfe.txt".to_vec(), 400),
        ("overlong UTF-8".into(), b"/%C0%AF".to_vec(), 400),
        ("encoded NUL".into(), b"/a%00b".to_vec(), 400),
        ("raw NUL".into(), b"/a\0b".to_vec(), 400),
        ("encoded control".into(), b"/a%01b".to_vec(), 400),
        ("encoded DEL".into(), b"/a%7fb".to_vec(), 400),
        ("encoded newline".into(), b"/a%0d%0ab".to_vec(), 400),
        ("raw tab".into(), b"/a\tb".to_vec(), 400),
        ("raw escape".into(), b"/a\x1bb".to_vec(), 400),
        (
            "name of 256 bytes".into(),
            format!("/{long_name}").into_bytes(),
            400,
        ),
        (
            "UTF-8 name of 256 bytes".into(),
            format!("/{long_utf8}").into_bytes(),
            400,
        ),
        ("200 levels".into(), deep.clone().into_bytes(), 414),
        (
            "path of 9 KiB".into(),
            format!("/{}", "x/".repeat(4600)).into_bytes(),
            414,
        ),
    ];
    for (what, target, want) in &cases {
        for method in ["PUT", "GET", "MKCOL", "PROPFIND"] {
            let r = raw(&gw, &request(method, target, b"Depth: 0\r\n", b"x")).await;
            assert_eq!(r.status, *want, "{method} with {what}: {}", r.head);
        }
    }
    // Long names in Destination and in a MOVE.
    let r = gw
        .req("MOVE", "/ok.txt")
        .header("destination", format!("/{long_name}"))
        .send()
        .await
        .expect("move");
    assert_eq!(r.status(), 400);
    // A name of exactly 255 bytes is fine (a folder: a file's content is
    // stored under `{uid}_{random8}_{name}` by the default local policy,
    // which leaves less room for a file name).
    let ok_name = "n".repeat(255);
    assert_eq!(
        gw.req("MKCOL", &format!("/{ok_name}"))
            .send()
            .await
            .expect("mkcol")
            .status(),
        201
    );
    assert_eq!(
        upstream_names(&gw).await,
        vec![ok_name.clone(), "ok.txt".to_owned()]
    );
    still_serving(&gw).await;
    gw.stop().await;
}

/// Test hook behind the front layer: a request carrying
/// `X-Test-Raw-If-Match` gets `If-Match: "` after the front layer checked
/// it, which makes dav-server 0.11 panic (slice index out of range in its
/// entity-tag parser). The front layer must turn that into a 500.
struct InjectBadIfMatch(Arc<DavGateway>);

#[async_trait]
impl DavService for InjectBadIfMatch {
    async fn handle(
        &self,
        mut req: Request<BoxBody>,
        principal: Arc<Principal>,
    ) -> Response<BoxBody> {
        if req.headers().contains_key("x-test-raw-if-match") {
            req.headers_mut()
                .insert("if-match", http::HeaderValue::from_static("\""));
        }
        self.0.handle(req, principal).await
    }
}

fn inject(gw: Arc<DavGateway>) -> Arc<dyn DavService> {
    Arc::new(InjectBadIfMatch(gw))
}

#[tokio::test]
async fn a_panic_in_dav_server_answers_500_for_that_request_only() {
    let gw = Gw::start_wrapped(inject).await;
    assert_eq!(gw.put("/ok.txt", "fine").await, 201);
    // A keep-alive connection that is mid-way through other work.
    let client = reqwest::Client::new();
    let (s, _) = gw.get("/ok.txt").await;
    assert_eq!(s, 200);
    for method in ["GET", "PUT"] {
        let mut rb = gw.req(method, "/ok.txt").header("x-test-raw-if-match", "1");
        if method == "PUT" {
            rb = rb.body("changed");
        }
        let r = rb.send().await.expect("answered");
        assert_eq!(r.status(), 500, "{method}: the panic becomes a 500");
        assert!(r.headers().contains_key("x-request-id"));
    }
    // The file is untouched and the server keeps serving, on new and old
    // connections alike.
    still_serving(&gw).await;
    let r = client
        .get(format!("{}/ok.txt", gw.url))
        .basic_auth(EMAIL, Some(DAV_PASSWORD))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200);
    assert_eq!(
        gw.up.file_bytes(EMAIL, "/ok.txt").await.as_deref(),
        Some(&b"fine"[..])
    );
    gw.stop().await;
}

#[tokio::test]
async fn move_or_copy_onto_the_root_is_refused_and_loses_nothing() {
    let gw = started().await;
    assert_eq!(gw.put("/b.txt", "keep").await, 201);
    for (method, dest) in [
        ("MOVE", "/"),
        ("COPY", "/"),
        ("MOVE", "//"),
        ("MOVE", "http://localhost/"),
    ] {
        let r = raw(
            &gw,
            &request(
                method,
                b"/ok.txt",
                format!("Destination: {dest}\r\nOverwrite: T\r\n").as_bytes(),
                b"",
            ),
        )
        .await;
        assert_eq!(r.status, 403, "{method} onto {dest}: {}", r.head);
    }
    assert_eq!(
        upstream_names(&gw).await,
        vec!["b.txt".to_owned(), "ok.txt".to_owned()]
    );
    still_serving(&gw).await;
    gw.stop().await;
}
