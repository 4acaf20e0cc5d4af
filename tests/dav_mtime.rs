//! Kept modification times and checksums (issue 4 item 3), through real
//! HTTP against the emulator-backed gateway.

use crate::dav_common::{Gw, values};
use base64::Engine as _;
use cloudreve_dav::cloudreve::CrUri;

const T: &str = "Fri, 14 Jul 2017 02:40:00 GMT";

async fn lastmod(gw: &Gw, path: &str) -> String {
    let r = gw
        .req("PROPFIND", path)
        .header("depth", "0")
        .body(r#"<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:getlastmodified/></D:prop></D:propfind>"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 207);
    let body = r.text().await.unwrap();
    values(&body, "D:getlastmodified")
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no getlastmodified: {body}"))
}

async fn last_modified_header(gw: &Gw, path: &str) -> String {
    let r = gw.req("HEAD", path).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.headers()["last-modified"].to_str().unwrap().to_string()
}

fn decode_kept(v: &str) -> String {
    let j: serde_json::Value = serde_json::from_str(v).unwrap();
    let b = base64::engine::general_purpose::STANDARD
        .decode(j["i"].as_str().unwrap())
        .unwrap();
    String::from_utf8(b).unwrap()
}

async fn proppatch(gw: &Gw, path: &str, props: &str) -> String {
    let r = gw
        .req("PROPPATCH", path)
        .body(format!(
            r#"<?xml version="1.0" encoding="utf-8"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:schemas-microsoft-com:"><D:set><D:prop>{props}</D:prop></D:set></D:propertyupdate>"#
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 207);
    r.text().await.unwrap()
}

#[tokio::test]
async fn x_oc_mtime_on_put_is_kept_until_another_write() {
    let gw = Gw::start().await;
    let r = gw
        .req("PUT", "/m.txt")
        .header("x-oc-mtime", "1500000000")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["x-oc-mtime"], "accepted");
    assert_eq!(lastmod(&gw, "/m.txt").await, T);
    assert_eq!(last_modified_header(&gw, "/m.txt").await, T);

    // Stored upstream in Cloudreve's /dav format, tied to the version.
    let uri = CrUri::my_path("/m.txt").unwrap();
    let f = gw.session.info(&uri, false).await.unwrap();
    let v = f
        .meta("dav:urn:cloudreve-dav:|mtime")
        .unwrap_or_else(|| panic!("{:?}", f.metadata));
    let j: serde_json::Value = serde_json::from_str(v).unwrap();
    assert_eq!(j.as_object().unwrap().len(), 1, "only \"i\": {v}");
    let entity = f.primary_entity.clone().unwrap();
    assert_eq!(
        decode_kept(v),
        format!("<kept entity=\"{entity}\">1500000000</kept>")
    );
    // Not listed as a dead property of its own.
    let r = gw
        .req("PROPFIND", "/m.txt")
        .header("depth", "0")
        .send()
        .await
        .unwrap();
    let body = r.text().await.unwrap();
    assert!(!body.contains("cloudreve-dav"), "{body}");

    // Another Cloudreve client writes: the kept time is stale.
    let body = futures::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from_static(
        b"changed",
    ))]);
    gw.session.put_content(&uri, None, body, 7).await.unwrap();
    assert_ne!(lastmod(&gw, "/m.txt").await, T);
    let f = gw.session.info(&uri, false).await.unwrap();
    let updated = f.updated_at.unwrap().with_timezone(&chrono::Utc);
    assert_eq!(
        lastmod(&gw, "/m.txt").await,
        updated.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
    );

    // A fractional value is accepted too; no header without X-OC-Mtime.
    let r = gw
        .req("PUT", "/m.txt")
        .header("x-oc-mtime", "1500000000.25")
        .body("again")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    assert_eq!(r.headers()["x-oc-mtime"], "accepted");
    assert_eq!(lastmod(&gw, "/m.txt").await, T);
    let r = gw.req("PUT", "/n.txt").body("x").send().await.unwrap();
    assert!(r.headers().get("x-oc-mtime").is_none());
    gw.stop().await;
}

#[tokio::test]
async fn proppatch_lastmodified_rclone_style() {
    let gw = Gw::start().await;
    assert_eq!(gw.put("/r.txt", "rclone").await, 201);
    // rclone's owncloud/nextcloud vendors.
    let body = proppatch(
        &gw,
        "/r.txt",
        r#"<lastmodified xmlns="DAV:">1500000000</lastmodified>"#,
    )
    .await;
    assert!(body.contains("lastmodified"), "{body}");
    assert!(body.contains("200 OK") && !body.contains("403"), "{body}");
    assert_eq!(lastmod(&gw, "/r.txt").await, T);
    // Not stored as a DAV: dead property.
    let f = gw
        .session
        .info(&CrUri::my_path("/r.txt").unwrap(), false)
        .await
        .unwrap();
    assert!(
        f.meta("dav:DAV:|lastmodified").is_none(),
        "{:?}",
        f.metadata
    );

    // getlastmodified, together with a dead property: one call, all 200.
    let body = proppatch(
        &gw,
        "/r.txt",
        r#"<D:getlastmodified>Thu, 01 Jan 2015 00:00:00 GMT</D:getlastmodified><x:c xmlns:x="urn:x">v</x:c>"#,
    )
    .await;
    assert!(body.contains("getlastmodified"), "{body}");
    assert!(!body.contains("403") && !body.contains("424"), "{body}");
    assert_eq!(
        lastmod(&gw, "/r.txt").await,
        "Thu, 01 Jan 2015 00:00:00 GMT"
    );
    let f = gw
        .session
        .info(&CrUri::my_path("/r.txt").unwrap(), false)
        .await
        .unwrap();
    assert_eq!(f.meta("dav:urn:x|c"), Some(r#"{"i":"dg=="}"#));

    // The gateway's own namespace is not writable by clients.
    let body = proppatch(
        &gw,
        "/r.txt",
        r#"<k:mtime xmlns:k="urn:cloudreve-dav:">x</k:mtime>"#,
    )
    .await;
    assert!(body.contains("403"), "{body}");
    gw.stop().await;
}

#[tokio::test]
async fn windows_win32_times() {
    let gw = Gw::start().await;
    assert_eq!(gw.put("/w.docx", "word").await, 201);
    let body = proppatch(
        &gw,
        "/w.docx",
        &format!(
            "<Z:Win32CreationTime>Thu, 13 Jul 2017 02:40:00 GMT</Z:Win32CreationTime><Z:Win32LastAccessTime>{T}</Z:Win32LastAccessTime><Z:Win32LastModifiedTime>{T}</Z:Win32LastModifiedTime><Z:Win32FileAttributes>00000020</Z:Win32FileAttributes>"
        ),
    )
    .await;
    assert!(!body.contains("403") && !body.contains("424"), "{body}");
    assert_eq!(lastmod(&gw, "/w.docx").await, T);
    assert_eq!(last_modified_header(&gw, "/w.docx").await, T);
    let r = gw
        .req("PROPFIND", "/w.docx")
        .header("depth", "0")
        .body(r#"<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:creationdate/></D:prop></D:propfind>"#)
        .send()
        .await
        .unwrap();
    let body = r.text().await.unwrap();
    assert_eq!(
        values(&body, "D:creationdate"),
        vec!["2017-07-13T02:40:00Z".to_string()],
        "{body}"
    );
    // A Depth-1 listing shows the kept time as well.
    let r = gw
        .req("PROPFIND", "/")
        .header("depth", "1")
        .send()
        .await
        .unwrap();
    let body = r.text().await.unwrap();
    assert!(body.contains(T), "{body}");

    // The root keeps no metadata: a clear status, not an error page.
    let body = proppatch(
        &gw,
        "/",
        &format!("<Z:Win32LastModifiedTime>{T}</Z:Win32LastModifiedTime>"),
    )
    .await;
    assert!(body.contains("403"), "{body}");
    gw.stop().await;
}

async fn checksums(gw: &Gw, path: &str) -> String {
    let r = gw
        .req("PROPFIND", path)
        .header("depth", "0")
        .body(r#"<?xml version="1.0"?><D:propfind xmlns:D="DAV:" xmlns:oc="http://owncloud.org/ns"><D:prop><oc:checksums/></D:prop></D:propfind>"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 207);
    r.text().await.unwrap()
}

#[tokio::test]
async fn oc_checksum_verified_and_kept() {
    let gw = Gw::start().await;
    // SHA1("abc"), MD5("abc").
    let sha1 = "SHA1:a9993e364706816aba3e25717850c26c9cd0d89d";
    let r = gw
        .req("PUT", "/c.txt")
        .header(
            "oc-checksum",
            "SHA1:A9993E364706816ABA3E25717850C26C9CD0D89D",
        )
        .body("abc")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let body = checksums(&gw, "/c.txt").await;
    // The client's SHA1, then the MD5 the gateway computed alongside.
    let both = format!("{sha1} MD5:900150983cd24fb0d6963f7d28e17f72");
    assert!(
        body.contains(&format!("<checksum>{both}</checksum>"))
            || body.contains(&format!(":checksum>{both}</")),
        "{body}"
    );
    assert!(body.contains("http://owncloud.org/ns"), "{body}");
    assert!(!body.contains("404"), "{body}");

    // Mismatch: 400, the old content stays, nothing else changes.
    let r = gw
        .req("PUT", "/c.txt")
        .header("oc-checksum", "MD5:900150983cd24fb0d6963f7d28e17f72")
        .body("abd")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(gw.get("/c.txt").await, (200, b"abc".to_vec()));
    let body = checksums(&gw, "/c.txt").await;
    assert!(body.contains(sha1), "{body}");
    // Also for a new file: nothing is created.
    let r = gw
        .req("PUT", "/new.txt")
        .header(
            "oc-checksum",
            "SHA1:0000000000000000000000000000000000000000",
        )
        .body("abc")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(gw.get("/new.txt").await.0, 404);

    // A chunked body (spooled, no length) is verified as well.
    let chunks = futures::stream::iter([
        Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"ab")),
        Ok(bytes::Bytes::from_static(b"d")),
    ]);
    let r = gw
        .req("PUT", "/c.txt")
        .header("oc-checksum", sha1)
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(gw.get("/c.txt").await, (200, b"abc".to_vec()));
    assert_eq!(std::fs::read_dir(&gw.spool).unwrap().count(), 0);

    // MD5 match on overwrite; then an upstream write makes it stale.
    let r = gw
        .req("PUT", "/c.txt")
        .header("oc-checksum", "MD5:900150983cd24fb0d6963f7d28e17f72")
        .body("abc")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let body = checksums(&gw, "/c.txt").await;
    assert!(
        body.contains(
            "MD5:900150983cd24fb0d6963f7d28e17f72 SHA1:a9993e364706816aba3e25717850c26c9cd0d89d"
        ),
        "{body}"
    );
    let uri = CrUri::my_path("/c.txt").unwrap();
    let s = futures::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"xyz"))]);
    gw.session.put_content(&uri, None, s, 3).await.unwrap();
    let body = checksums(&gw, "/c.txt").await;
    assert!(!body.contains("MD5:"), "{body}");
    assert!(body.contains("404"), "{body}");
    gw.stop().await;
}
