//! macOS Finder (WebDAVFS) replay (issue 5 items 5 and 7): mounting,
//! the volume probes, a copy of a file with a decomposed (NFD) name and its
//! AppleDouble companion through a lock and chunked PUTs with
//! `X-Expected-Entity-Length`, `.DS_Store`, a rename with `Overwrite: F`.
//! Finder cannot run here; every response it depends on is asserted.

use crate::dav_common::{EMAIL, Gw, hrefs, values};
use bytes::Bytes;
use cloudreve_dav::cloudreve::CrUri;
use cloudreve_dav::dav::junk::JunkPolicy;

const UA: &str = "WebDAVFS/3.0.0 (03008000) Darwin/22.6.0 (arm64)";
/// "Résumé.txt" as macOS sends it (decomposed) and as Windows sends it.
const NFD: &str = "Re\u{301}sume\u{301}.txt";
const NFC: &str = "R\u{e9}sum\u{e9}.txt";

fn enc(name: &str) -> String {
    percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn mac(gw: &Gw, method: &str, path: &str) -> reqwest::RequestBuilder {
    gw.req(method, path).header("user-agent", UA)
}

/// A body sent with `Transfer-Encoding: chunked` (no length), in pieces.
fn chunked(data: &[u8]) -> reqwest::Body {
    let pieces: Vec<Result<Bytes, std::io::Error>> = data
        .chunks(7)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    reqwest::Body::wrap_stream(futures::stream::iter(pieces))
}

/// Finder's chunked PUT (`X-Expected-Entity-Length`), optionally under a lock.
async fn finder_put(gw: &Gw, path: &str, data: &[u8], token: Option<&str>) -> u16 {
    let mut r = mac(gw, "PUT", path)
        .header("x-expected-entity-length", data.len().to_string())
        .body(chunked(data));
    if let Some(t) = token {
        r = r.header("if", format!("(<{t}>)"));
    }
    r.send().await.unwrap().status().as_u16()
}

async fn lock_new(gw: &Gw, path: &str) -> String {
    let r = mac(gw, "LOCK", path)
        .header("depth", "0")
        .header("timeout", "Second-600")
        .body(r#"<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner><D:href>http://www.apple.com/webdav_fs/</D:href></D:owner></D:lockinfo>"#)
        .send()
        .await
        .unwrap();
    assert!(
        matches!(r.status().as_u16(), 200 | 201),
        "LOCK {path}: {}",
        r.status()
    );
    r.headers()["lock-token"]
        .to_str()
        .unwrap()
        .trim_matches(|c| c == '<' || c == '>')
        .to_string()
}

async fn unlock(gw: &Gw, path: &str, token: &str) {
    let r = mac(gw, "UNLOCK", path)
        .header("lock-token", format!("<{token}>"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "UNLOCK {path}");
}

async fn names(gw: &Gw, folder: &str) -> Vec<String> {
    let (_, list) = gw
        .session
        .list_all(&CrUri::my_path(folder).unwrap(), 100)
        .await
        .unwrap();
    let mut v: Vec<String> = list.into_iter().map(|f| f.name).collect();
    v.sort();
    v
}

#[tokio::test]
async fn finder_mounts_probes_and_reads_quota() {
    let gw = Gw::start().await;
    let r = gw
        .http
        .request(reqwest::Method::OPTIONS, format!("{}/", gw.url))
        .header("user-agent", UA)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["dav"].to_str().unwrap().contains('2'));
    let r = mac(&gw, "PROPFIND", "/")
        .header("depth", "0")
        .body(r#"<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:prop><D:getlastmodified/><D:getcontentlength/><D:creationdate/><D:resourcetype/><D:quota-available-bytes/><D:quota-used-bytes/></D:prop></D:propfind>"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 207);
    let body = r.text().await.unwrap();
    assert!(
        body.contains("<D:collection/>") || body.contains("<D:collection></D:collection>"),
        "{body}"
    );
    // dav-server zero-pads this for WebDAVFS (a Finder display quirk).
    let used = values(&body, "D:quota-used-bytes");
    assert_eq!(used.len(), 1, "{body}");
    assert_eq!(used[0].parse::<u64>().unwrap(), 0, "{body}");
    assert!(
        values(&body, "D:quota-available-bytes")[0]
            .parse::<u64>()
            .unwrap()
            > 0
    );
    // The volume probes, answered 404.
    for probe in [
        "/.localized",
        "/._.",
        "/.DS_Store",
        "/.metadata_never_index",
        "/.metadata_never_index_unless_rootfs",
        "/.ql_disablethumbnails",
        "/Backups.backupdb",
    ] {
        let r = mac(&gw, "PROPFIND", probe)
            .header("depth", "0")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "PROPFIND {probe}");
    }
    gw.stop().await;
}

#[tokio::test]
async fn finder_copies_a_decomposed_name_with_its_appledouble_file() {
    // Junk policy off: AppleDouble files are ordinary files upstream.
    let gw = Gw::start_with(|s| s.junk = JunkPolicy::Off).await;
    assert_eq!(
        mac(&gw, "MKCOL", "/Fotos").send().await.unwrap().status(),
        201
    );
    let data: Vec<u8> = (0..100_000u32).map(|i| (i * 31 % 251) as u8).collect();
    let path = format!("/Fotos/{}", enc(NFD));
    let token = lock_new(&gw, &path).await;
    assert_eq!(finder_put(&gw, &path, &data, Some(&token)).await, 204);
    unlock(&gw, &path, &token).await;
    let adouble = format!("/Fotos/._{}", enc(NFD));
    let meta = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        ";
    assert_eq!(finder_put(&gw, &adouble, meta, None).await, 201);

    // One file per name upstream, in NFC, with every byte.
    assert_eq!(
        names(&gw, "/Fotos").await,
        [format!("._{NFC}"), NFC.to_string()]
    );
    assert_eq!(
        gw.up
            .file_bytes(EMAIL, &format!("/Fotos/{NFC}"))
            .await
            .unwrap(),
        data
    );
    // Either form reads the same file.
    for form in [NFD, NFC] {
        let (s, b) = gw.get(&format!("/Fotos/{}", enc(form))).await;
        assert_eq!(s, 200, "{form:?}");
        assert_eq!(b, data, "{form:?}");
    }
    let (s, b) = gw.get(&adouble).await;
    assert_eq!((s, &b[..]), (200, &meta[..]));

    // Rename with Overwrite: F, onto a taken name and a free one.
    let r = mac(&gw, "MOVE", &path)
        .header("destination", format!("{}/Fotos/._{}", gw.url, enc(NFC)))
        .header("overwrite", "F")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 412);
    let r = mac(&gw, "MOVE", &path)
        .header("destination", format!("{}/Fotos/CV.txt", gw.url))
        .header("overwrite", "F")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(
        names(&gw, "/Fotos").await,
        [format!("._{NFC}"), "CV.txt".to_string()]
    );
    gw.stop().await;
}

#[tokio::test]
async fn nfd_and_nfc_writes_reach_one_cloudreve_file() {
    let gw = Gw::start().await;
    assert_eq!(gw.put(&format!("/{}", enc(NFD)), "mac").await, 201);
    assert_eq!(gw.put(&format!("/{}", enc(NFC)), "windows").await, 204);
    assert_eq!(names(&gw, "/").await, [NFC]);
    assert_eq!(
        gw.up.file_bytes(EMAIL, &format!("/{NFC}")).await.unwrap(),
        b"windows"
    );
    // A folder named in NFD holds what is written below its NFC name.
    let dir_nfd = enc("Cafe\u{301}");
    let dir_nfc = enc("Caf\u{e9}");
    assert_eq!(
        gw.req("MKCOL", &format!("/{dir_nfd}"))
            .send()
            .await
            .unwrap()
            .status(),
        201
    );
    assert_eq!(
        gw.req("MKCOL", &format!("/{dir_nfc}"))
            .send()
            .await
            .unwrap()
            .status(),
        405
    );
    assert_eq!(gw.put(&format!("/{dir_nfc}/a.txt"), "a").await, 201);
    let (s, b) = gw.get(&format!("/{dir_nfd}/a.txt")).await;
    assert_eq!((s, &b[..]), (200, &b"a"[..]));
    // COPY and MOVE destinations are normalized too.
    let r = gw
        .req("COPY", &format!("/{dir_nfc}/a.txt"))
        .header("destination", format!("{}/{dir_nfd}/{}", gw.url, enc(NFD)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(
        names(&gw, "/Caf\u{e9}").await,
        [NFC.to_string(), "a.txt".to_string()]
    );
    gw.stop().await;
}

#[tokio::test]
async fn finder_junk_is_parked_for_accounts_without_system_files() {
    // Cloudreve's "disable system files": `.DS_Store` and AppleDouble files
    // stay in the gateway; Finder still reads them back.
    let gw = Gw::start_sys_files_disabled(|s| s.junk = JunkPolicy::Auto).await;
    assert_eq!(
        mac(&gw, "MKCOL", "/Fotos").send().await.unwrap().status(),
        201
    );
    let path = format!("/Fotos/{}", enc(NFD));
    let token = lock_new(&gw, &path).await;
    assert_eq!(finder_put(&gw, &path, b"photo", Some(&token)).await, 204);
    unlock(&gw, &path, &token).await;
    let adouble = format!("/Fotos/._{}", enc(NFD));
    let token = lock_new(&gw, &adouble).await;
    assert_eq!(
        finder_put(&gw, &adouble, b"appledouble", Some(&token)).await,
        204
    );
    unlock(&gw, &adouble, &token).await;
    assert_eq!(
        finder_put(&gw, "/Fotos/.DS_Store", b"dsstore", None).await,
        201
    );

    assert_eq!(names(&gw, "/Fotos").await, [NFC]);
    let (s, body) = gw.propfind("/Fotos/", "1").await;
    assert_eq!(s, 207);
    let mut listed = hrefs(&body);
    listed.sort();
    assert_eq!(
        listed,
        [
            "/Fotos/".to_string(),
            "/Fotos/.DS_Store".to_string(),
            format!("/Fotos/._{}", enc(NFC)).replace("%2E", "."),
            format!("/Fotos/{}", enc(NFC)).replace("%2E", "."),
        ],
        "{body}"
    );
    assert_eq!(
        values(&body, "D:getcontentlength")
            .iter()
            .filter(|v| *v == "11")
            .count(),
        1,
        "{body}"
    );
    let (s, b) = gw.get(&adouble).await;
    assert_eq!((s, &b[..]), (200, &b"appledouble"[..]));
    let (s, b) = gw.get("/Fotos/.DS_Store").await;
    assert_eq!((s, &b[..]), (200, &b"dsstore"[..]));
    // Deleting the folder takes its parked files along.
    assert_eq!(
        mac(&gw, "DELETE", "/Fotos").send().await.unwrap().status(),
        204
    );
    assert_eq!(
        mac(&gw, "MKCOL", "/Fotos").send().await.unwrap().status(),
        201
    );
    assert_eq!(gw.get("/Fotos/.DS_Store").await.0, 404);
    gw.stop().await;
}

/// Writes `data` at `path` through the direct API, as the web UI would
/// (with the name exactly as given, in whatever Unicode form).
async fn upstream_put(gw: &Gw, path: &str, data: &'static [u8]) {
    gw.session
        .put_content(
            &CrUri::my_path(path).unwrap(),
            None,
            futures::stream::once(async move { Ok::<_, std::io::Error>(Bytes::from_static(data)) }),
            data.len() as u64,
        )
        .await
        .unwrap();
}

/// A name stored decomposed upstream (uploaded from a Mac through the web
/// UI) is listed as it is, and every method reaches it through that href;
/// the composed spelling reaches it too, there being no other.
#[tokio::test]
async fn a_name_stored_decomposed_upstream_is_reachable_by_every_method() {
    let gw = Gw::start().await;
    upstream_put(&gw, &format!("/{NFD}"), b"from the web").await;
    let href = format!("/{}", enc(NFD));
    let nfc = format!("/{}", enc(NFC));
    let (s, body) = gw.propfind("/", "1").await;
    assert_eq!(s, 207);
    assert_eq!(
        crate::dav_common::decoded_hrefs(&body),
        ["/".to_string(), format!("/{NFD}")],
        "{body}"
    );

    for p in [&href, &nfc] {
        let (s, b) = gw.get(p).await;
        assert_eq!((s, &b[..]), (200, &b"from the web"[..]), "GET {p}");
        let (s, body) = gw.propfind(p, "0").await;
        assert_eq!(s, 207, "PROPFIND {p}");
        assert!(body.contains("<D:getcontentlength>12<"), "{body}");
    }
    // PUT over either spelling replaces the one file.
    assert_eq!(gw.put(&href, "v2").await, 204);
    assert_eq!(gw.put(&nfc, "v3").await, 204);
    assert_eq!(names(&gw, "/").await, [NFD]);
    assert_eq!(
        gw.up.file_bytes(EMAIL, &format!("/{NFD}")).await.as_deref(),
        Some(&b"v3"[..])
    );
    // PROPPATCH, LOCK, UNLOCK.
    let r = gw
        .req("PROPPATCH", &href)
        .body(r#"<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:z"><D:set><D:prop><Z:tag>t</Z:tag></D:prop></D:set></D:propertyupdate>"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 207);
    let body = r.text().await.unwrap();
    assert!(body.contains("200 OK"), "{body}");
    let token = lock_new(&gw, &href).await;
    unlock(&gw, &href, &token).await;
    // COPY from it, MOVE onto it (Destination in its own spelling).
    let r = gw
        .req("COPY", &href)
        .header("destination", format!("{}/copy.txt", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = gw
        .req("MOVE", "/copy.txt")
        .header("destination", format!("{}{href}", gw.url))
        .header("overwrite", "T")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(names(&gw, "/").await, [NFD], "replaced, not doubled");
    // DELETE.
    assert_eq!(gw.req("DELETE", &href).send().await.unwrap().status(), 204);
    assert!(names(&gw, "/").await.is_empty());
    gw.stop().await;
}

/// Two names that differ only in normalization are two resources, each
/// reached by its own spelling; the ambiguous third spelling reaches none.
#[tokio::test]
async fn names_differing_only_in_normalization_stay_distinct() {
    let gw = Gw::start().await;
    upstream_put(&gw, &format!("/{NFD}"), b"decomposed").await;
    upstream_put(&gw, &format!("/{NFC}"), b"composed").await;
    let (s, body) = gw.propfind("/", "1").await;
    assert_eq!(s, 207);
    assert_eq!(hrefs(&body).len(), 3, "{body}");
    let (s, b) = gw.get(&format!("/{}", enc(NFD))).await;
    assert_eq!((s, &b[..]), (200, &b"decomposed"[..]));
    let (s, b) = gw.get(&format!("/{}", enc(NFC))).await;
    assert_eq!((s, &b[..]), (200, &b"composed"[..]));
    // "Re\u{301}sum\u{e9}.txt": neither, and both match it after normalization.
    let mixed = enc("Re\u{301}sum\u{e9}.txt");
    assert_eq!(gw.get(&format!("/{mixed}")).await.0, 404);
    assert_eq!(
        gw.req("DELETE", &format!("/{}", enc(NFC)))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(names(&gw, "/").await, [NFD]);
    let (s, b) = gw.get(&format!("/{}", enc(NFD))).await;
    assert_eq!((s, &b[..]), (200, &b"decomposed"[..]));
    gw.stop().await;
}
