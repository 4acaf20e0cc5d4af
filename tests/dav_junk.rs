//! The junk-file policy (issue 5 item 6): hide, park, reject, and `auto`
//! following the account's "disable system files" option. Never a 405.

use crate::dav_common::{EMAIL, Gw, hrefs};
use cloudreve_dav::cloudreve::CrUri;
use cloudreve_dav::dav::junk::JunkPolicy;

const JUNK: [&str; 6] = [
    "/.DS_Store",
    "/._photo.jpg",
    "/Thumbs.db",
    "/desktop.ini",
    "/~$report.docx",
    "/.~lock.report.odt%23",
];

async fn upstream_names(gw: &Gw) -> Vec<String> {
    let (_, list) = gw.session.list_all(&CrUri::my(), 100).await.unwrap();
    let mut v: Vec<String> = list.into_iter().map(|f| f.name).collect();
    v.sort();
    v
}

async fn listed(gw: &Gw) -> Vec<String> {
    let (s, body) = gw.propfind("/", "1").await;
    assert_eq!(s, 207, "{body}");
    let mut v = hrefs(&body);
    v.sort();
    v
}

fn decoded(p: &str) -> String {
    percent_encoding::percent_decode_str(p)
        .decode_utf8()
        .unwrap()
        .trim_start_matches('/')
        .to_string()
}

#[tokio::test]
async fn hide_stores_upstream_but_does_not_list() {
    let gw = Gw::start_with(|s| s.junk = JunkPolicy::Hide).await;
    assert_eq!(gw.put("/photo.jpg", "jpeg").await, 201);
    for j in JUNK {
        assert_eq!(gw.put(j, "junk").await, 201, "PUT {j}");
    }
    let mut want: Vec<String> = JUNK.iter().map(|j| decoded(j)).collect();
    want.push("photo.jpg".into());
    want.sort();
    assert_eq!(upstream_names(&gw).await, want);
    assert_eq!(listed(&gw).await, ["/", "/photo.jpg"]);
    for j in JUNK {
        let (s, b) = gw.get(j).await;
        assert_eq!((s, &b[..]), (200, &b"junk"[..]), "GET {j}");
        assert_eq!(gw.put(j, "junk2").await, 204, "overwrite {j}");
        let r = gw.req("DELETE", j).send().await.unwrap();
        assert_eq!(r.status(), 204, "DELETE {j}");
    }
    assert_eq!(upstream_names(&gw).await, ["photo.jpg"]);
    gw.stop().await;
}

#[tokio::test]
async fn park_keeps_junk_in_the_gateway() {
    let gw = Gw::start_with(|s| s.junk = JunkPolicy::Park).await;
    assert_eq!(gw.req("MKCOL", "/a").send().await.unwrap().status(), 201);
    for j in JUNK {
        assert_eq!(gw.put(j, "junk").await, 201, "PUT {j}");
        assert_eq!(gw.put(&format!("/a{j}"), "deep").await, 201, "PUT /a{j}");
    }
    assert_eq!(upstream_names(&gw).await, ["a"]);
    // Listed: the folder, its upstream member and the six parked files.
    let got = listed(&gw).await;
    assert_eq!(got.len(), JUNK.len() + 2, "{got:?}");
    assert!(got.contains(&"/a/".to_string()), "{got:?}");
    assert!(got.contains(&"/.DS_Store".to_string()), "{got:?}");
    for j in JUNK {
        let (s, b) = gw.get(j).await;
        assert_eq!((s, &b[..]), (200, &b"junk"[..]), "GET {j}");
        let r = gw.req("HEAD", j).send().await.unwrap();
        assert_eq!(r.status(), 200, "HEAD {j}");
        assert_eq!(r.headers()["content-length"], "4");
    }
    let (s, b) = gw.get("/a/.DS_Store").await;
    assert_eq!((s, &b[..]), (200, &b"deep"[..]));
    // Renames among junk names stay in the gateway; a rename to or from an
    // ordinary name is refused (403, never 405).
    let r = gw
        .req("MOVE", "/~$report.docx")
        .header("destination", format!("{}/~$other.docx", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(gw.get("/~$other.docx").await.0, 200);
    let r = gw
        .req("MOVE", "/Thumbs.db")
        .header("destination", format!("{}/thumbs.txt", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // Deletes.
    for j in ["/.DS_Store", "/desktop.ini"] {
        assert_eq!(gw.req("DELETE", j).send().await.unwrap().status(), 204);
        assert_eq!(gw.get(j).await.0, 404);
    }
    // A moved folder takes its parked files along.
    let r = gw
        .req("MOVE", "/a")
        .header("destination", format!("{}/b", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let (s, b) = gw.get("/b/.DS_Store").await;
    assert_eq!((s, &b[..]), (200, &b"deep"[..]));
    assert_eq!(gw.get("/a/.DS_Store").await.0, 404);
    assert_eq!(upstream_names(&gw).await, ["b"]);
    // Parked files survive a gateway restart (they live in the state dir).
    let mut gw = gw;
    gw.restart_gateway().await;
    assert_eq!(gw.get("/._photo.jpg").await.0, 200);
    gw.stop().await;
}

#[tokio::test]
async fn reject_refuses_writes_with_403() {
    let gw = Gw::start_with(|s| s.junk = JunkPolicy::Reject).await;
    for j in JUNK {
        assert_eq!(gw.put(j, "junk").await, 403, "PUT {j}");
        let r = gw
            .req("LOCK", j)
            .body(r#"<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>"#)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "LOCK {j}");
        assert_eq!(
            gw.req("MKCOL", j).send().await.unwrap().status(),
            403,
            "MKCOL {j}"
        );
    }
    assert_eq!(gw.put("/ok.txt", "x").await, 201);
    let r = gw
        .req("COPY", "/ok.txt")
        .header("destination", format!("{}/.DS_Store", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(upstream_names(&gw).await, ["ok.txt"]);
    // Reads are plain 404s.
    assert_eq!(gw.get("/.DS_Store").await.0, 404);
    gw.stop().await;
}

#[tokio::test]
async fn auto_parks_only_for_accounts_without_system_files() {
    let gw = Gw::start_with(|s| s.junk = JunkPolicy::Auto).await;
    assert_eq!(gw.put("/.DS_Store", "x").await, 201);
    assert_eq!(gw.put("/.gitignore", "x").await, 201);
    assert_eq!(upstream_names(&gw).await, [".DS_Store", ".gitignore"]);
    gw.stop().await;

    let gw = Gw::start_sys_files_disabled(|s| s.junk = JunkPolicy::Auto).await;
    assert_eq!(gw.put("/.DS_Store", "x").await, 201);
    // Other dot files are ordinary files (Cloudreve's own option refuses
    // every dot file with 405; clients then give up on the whole copy).
    assert_eq!(gw.put("/.gitignore", "x").await, 201);
    assert_eq!(upstream_names(&gw).await, [".gitignore"]);
    assert!(gw.up.file_bytes(EMAIL, "/.DS_Store").await.is_none());
    assert_eq!(listed(&gw).await, ["/", "/.DS_Store", "/.gitignore"]);
    gw.stop().await;
}

#[tokio::test]
async fn parked_files_are_capped_and_moves_create_local_folders() {
    use base64::Engine as _;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let gw = Gw::start_with(|s| s.junk = JunkPolicy::Park).await;
    // A declared length above the cap: refused before any byte is read.
    let auth = base64::engine::general_purpose::STANDARD
        .encode(format!("{EMAIL}:{}", crate::dav_common::DAV_PASSWORD));
    let mut tcp = tokio::net::TcpStream::connect(gw.addr()).await.unwrap();
    tcp.write_all(
        format!(
            "PUT /._big HTTP/1.1\r\nHost: {}\r\nAuthorization: Basic {auth}\r\nContent-Length: 100000000\r\nConnection: close\r\n\r\n",
            gw.addr()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut head = [0u8; 12];
    tcp.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 413");
    drop(tcp);
    // A chunked body that grows past the cap: 413, nothing kept.
    let chunk = bytes::Bytes::from(vec![7u8; 1 << 20]);
    let chunks =
        futures::stream::iter((0..65).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
    let r = gw
        .req("PUT", "/._big")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(gw.get("/._big").await.0, 404);
    // A parked MOVE into a folder that has no parked files yet.
    assert_eq!(gw.req("MKCOL", "/d").send().await.unwrap().status(), 201);
    assert_eq!(gw.put("/~$a.docx", "owner").await, 201);
    let r = gw
        .req("MOVE", "/~$a.docx")
        .header("destination", format!("{}/d/~$b.docx", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let (s, b) = gw.get("/d/~$b.docx").await;
    assert_eq!((s, &b[..]), (200, &b"owner"[..]));
    assert_eq!(upstream_names(&gw).await, ["d"]);
    gw.stop().await;
}
