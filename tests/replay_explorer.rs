//! Windows Explorer (WebClient / Mini-Redirector) replay (issue 5 item 5):
//! the request sequence Windows 10/11 sends when mapping a drive on a
//! sub-path mount, creating a file through Explorer, setting its times,
//! writing it under a lock, creating and renaming a folder. Explorer cannot
//! run here; every response it depends on is asserted.

use crate::dav_common::{DAV_PASSWORD, EMAIL, Gw, hrefs, values};
use cloudreve_dav::cloudreve::CrUri;
use cloudreve_dav::dav::junk::JunkPolicy;
use cloudreve_dav::emulator::{Fault, FaultKind};

const UA: &str = "Microsoft-WebDAV-MiniRedir/10.0.19045";
const PROBE_UA: &str = "DavClnt";
const MS_TIMES: &str = "<Z:Win32CreationTime>Mon, 03 Jul 2017 10:00:00 GMT</Z:Win32CreationTime>\
<Z:Win32LastAccessTime>Fri, 14 Jul 2017 02:40:00 GMT</Z:Win32LastAccessTime>\
<Z:Win32LastModifiedTime>Fri, 14 Jul 2017 02:40:00 GMT</Z:Win32LastModifiedTime>\
<Z:Win32FileAttributes>00000020</Z:Win32FileAttributes>";

fn proppatch_body(props: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8" ?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:schemas-microsoft-com:"><D:set><D:prop>{props}</D:prop></D:set></D:propertyupdate>"#
    )
}

/// A request as the Mini-Redirector sends it (credentials included).
fn ms(gw: &Gw, method: &str, path: &str) -> reqwest::RequestBuilder {
    gw.req(method, path).header("user-agent", UA)
}

/// Asserts a PROPPATCH answer: 207, one 200 propstat per Win32 property,
/// and no other status.
async fn assert_all_200(r: reqwest::Response, what: &str) {
    assert_eq!(r.status(), 207, "{what}");
    let body = r.text().await.unwrap();
    for p in [
        "Win32CreationTime",
        "Win32LastAccessTime",
        "Win32LastModifiedTime",
        "Win32FileAttributes",
    ] {
        assert!(body.contains(p), "{what}: {p} missing: {body}");
    }
    let statuses = values(&body, "D:status");
    assert!(!statuses.is_empty(), "{what}: {body}");
    assert!(
        statuses.iter().all(|s| s == "HTTP/1.1 200 OK"),
        "{what}: {body}"
    );
}

#[tokio::test]
async fn explorer_maps_a_sub_path_mount_without_credentials_first() {
    let gw = Gw::start_with(|s| s.prefix = "/dav".into()).await;
    // The WebClient service probes the server root, the mount URL (with and
    // without slash) and its parents before it has any credentials.
    for path in ["/", "/dav", "/dav/", "/dav/sub/"] {
        let r = gw
            .http
            .request(reqwest::Method::OPTIONS, format!("{}{path}", gw.url))
            .header("user-agent", PROBE_UA)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "OPTIONS {path}");
        let dav = r.headers()["dav"].to_str().unwrap();
        assert!(dav.contains('2'), "OPTIONS {path}: DAV {dav}");
        assert_eq!(r.headers()["ms-author-via"], "DAV", "OPTIONS {path}");
        let allow = r.headers()["allow"].to_str().unwrap();
        for m in ["PROPFIND", "PROPPATCH", "LOCK", "UNLOCK", "PUT", "MOVE"] {
            assert!(allow.contains(m), "OPTIONS {path}: Allow {allow}");
        }
    }
    // First PROPFIND without credentials: a Basic challenge, not a redirect.
    let r = gw
        .http
        .request(
            reqwest::Method::from_bytes(b"PROPFIND").unwrap(),
            format!("{}/dav", gw.url),
        )
        .header("user-agent", UA)
        .header("depth", "0")
        .header("content-length", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let chal = r.headers()["www-authenticate"].to_str().unwrap();
    assert!(chal.starts_with("Basic"), "{chal}");
    // Authenticated OPTIONS on the mount URL.
    let r = ms(&gw, "OPTIONS", "/dav/").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["dav"].to_str().unwrap().contains('2'));
    // PROPFIND with an empty body: allprop, with the Win32 properties.
    let r = ms(&gw, "PROPFIND", "/dav")
        .header("depth", "0")
        .header("content-length", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 207);
    let body = r.text().await.unwrap();
    assert!(
        body.contains("<D:collection/>") || body.contains("<D:collection></D:collection>"),
        "{body}"
    );
    for p in [
        "Win32CreationTime",
        "Win32LastModifiedTime",
        "Win32FileAttributes",
    ] {
        assert!(body.contains(p), "allprop for Windows lacks {p}: {body}");
    }
    // Drive capacity for the mapped drive.
    let r = ms(&gw, "PROPFIND", "/dav/")
        .header("depth", "0")
        .body(r#"<?xml version="1.0" encoding="utf-8" ?><D:propfind xmlns:D="DAV:"><D:prop><D:quota-available-bytes/><D:quota-used-bytes/></D:prop></D:propfind>"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 207);
    let body = r.text().await.unwrap();
    let avail = values(&body, "D:quota-available-bytes");
    let used = values(&body, "D:quota-used-bytes");
    assert_eq!(avail.len(), 1, "{body}");
    assert!(avail[0].parse::<u64>().unwrap() > 0, "{body}");
    assert_eq!(used[0].parse::<u64>().unwrap(), 0, "{body}");
    gw.stop().await;
}

#[tokio::test]
async fn explorer_creates_a_file_sets_win32_times_and_writes_under_a_lock() {
    let gw = Gw::start().await;
    // Listing the folder, then the probes Explorer makes on entering it.
    let r = ms(&gw, "PROPFIND", "/")
        .header("depth", "1")
        .header("content-length", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 207);
    for probe in ["/desktop.ini", "/folder.jpg", "/folder.gif", "/Thumbs.db"] {
        let r = ms(&gw, "PROPFIND", probe)
            .header("depth", "0")
            .header("content-length", "0")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "PROPFIND {probe}");
        let (s, _) = gw.get(probe).await;
        assert_eq!(s, 404, "GET {probe}");
    }

    // "New → Text Document": an empty PUT, a LOCK without Depth, the four
    // Win32 properties under the lock, the content, UNLOCK.
    let f = "/New%20Text%20Document.txt";
    let r = ms(&gw, "PUT", f)
        .header("content-length", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = ms(&gw, "LOCK", f)
        .header("timeout", "Second-3600")
        .body(r#"<?xml version="1.0" encoding="utf-8" ?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner><D:href>WIN10\user</D:href></D:owner></D:lockinfo>"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let token = r.headers()["lock-token"]
        .to_str()
        .unwrap()
        .trim_matches(|c| c == '<' || c == '>')
        .to_string();
    let body = r.text().await.unwrap();
    assert!(body.contains("<D:lockdiscovery>"), "{body}");
    assert!(body.contains(&token), "{body}");
    assert!(body.contains("WIN10\\user"), "{body}");
    let iff = format!("(<{token}>)");
    let r = ms(&gw, "PROPPATCH", f)
        .header("if", &iff)
        .body(proppatch_body(MS_TIMES))
        .send()
        .await
        .unwrap();
    assert_all_200(r, "PROPPATCH under the lock").await;
    // Without the token the locked file refuses the write.
    let r = ms(&gw, "PUT", f).body("intruder").send().await.unwrap();
    assert_eq!(r.status(), 423);
    let r = ms(&gw, "PUT", f)
        .header("if", &iff)
        .body("hello from windows")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    // Explorer sets the times again after writing the content.
    let r = ms(&gw, "PROPPATCH", f)
        .header("if", &iff)
        .body(proppatch_body(MS_TIMES))
        .send()
        .await
        .unwrap();
    assert_all_200(r, "PROPPATCH after PUT").await;
    let r = ms(&gw, "UNLOCK", f)
        .header("lock-token", format!("<{token}>"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        gw.up
            .file_bytes(EMAIL, "/New Text Document.txt")
            .await
            .as_deref(),
        Some(&b"hello from windows"[..])
    );

    // Windows reads its Win32LastModifiedTime back as getlastmodified.
    let r = ms(&gw, "PROPFIND", f)
        .header("depth", "0")
        .header("content-length", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 207);
    let body = r.text().await.unwrap();
    assert_eq!(
        values(&body, "D:getlastmodified"),
        ["Fri, 14 Jul 2017 02:40:00 GMT"],
        "{body}"
    );
    assert!(
        body.contains("Fri, 14 Jul 2017 02:40:00 GMT</Z:Win32LastModifiedTime>")
            || body.contains("Fri, 14 Jul 2017 02:40:00 GMT</Win32LastModifiedTime>"),
        "{body}"
    );
    assert_eq!(values(&body, "D:getcontentlength"), ["18"], "{body}");
    gw.stop().await;
}

#[tokio::test]
async fn explorer_folder_times_and_rename_with_overwrite_f() {
    let gw = Gw::start().await;
    let r = ms(&gw, "MKCOL", "/New%20folder").send().await.unwrap();
    assert_eq!(r.status(), 201);
    // Win32 properties on a folder (no lock held).
    let r = ms(&gw, "PROPPATCH", "/New%20folder")
        .body(proppatch_body(MS_TIMES))
        .send()
        .await
        .unwrap();
    assert_all_200(r, "PROPPATCH on a folder").await;
    // And on a locked folder, with If.
    let r = ms(&gw, "LOCK", "/New%20folder")
        .body(r#"<?xml version="1.0" encoding="utf-8" ?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner><D:href>WIN10\user</D:href></D:owner></D:lockinfo>"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let token = r.headers()["lock-token"].to_str().unwrap().to_string();
    let r = ms(&gw, "PROPPATCH", "/New%20folder")
        .header("if", format!("({token})"))
        .body(proppatch_body(MS_TIMES))
        .send()
        .await
        .unwrap();
    assert_all_200(r, "PROPPATCH on a locked folder").await;
    let r = ms(&gw, "UNLOCK", "/New%20folder")
        .header("lock-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);

    // Rename: Explorer sends Overwrite: F.
    assert_eq!(gw.put("/Docs.txt", "x").await, 201);
    let r = ms(&gw, "MOVE", "/New%20folder")
        .header("destination", format!("{}/Docs.txt", gw.url))
        .header("overwrite", "F")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        412,
        "MOVE onto an existing name with Overwrite: F"
    );
    let r = ms(&gw, "MOVE", "/New%20folder")
        .header("destination", format!("{}/Projects", gw.url))
        .header("overwrite", "F")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let (_, list) = gw.session.list_all(&CrUri::my(), 100).await.unwrap();
    let mut names: Vec<_> = list.iter().map(|f| f.name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["Docs.txt", "Projects"]);
    let r = ms(&gw, "PROPFIND", "/Projects")
        .header("depth", "0")
        .header("content-length", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 207);
    let body = r.text().await.unwrap();
    assert_eq!(
        values(&body, "D:getlastmodified"),
        ["Fri, 14 Jul 2017 02:40:00 GMT"],
        "{body}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn explorer_probes_are_answered_without_upstream_calls_when_junk_is_parked() {
    let gw = Gw::start_sys_files_disabled(|s| s.junk = JunkPolicy::Auto).await;
    crate::skip_on_real!(gw.up, "makes every upstream call fail");
    // Warm the credential cache, then make every upstream call fail: an
    // answer now can only come from the gateway itself.
    assert_eq!(gw.propfind("/", "0").await.0, 207);
    gw.up.add_fault(Fault {
        method: None,
        path_prefix: "/api/v4/".into(),
        kind: FaultKind::HttpStatus(500),
        times: None,
    });
    for probe in ["/desktop.ini", "/Thumbs.db", "/sub/desktop.ini"] {
        let r = ms(&gw, "PROPFIND", probe)
            .header("depth", "0")
            .header("content-length", "0")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "PROPFIND {probe}");
        let r = ms(&gw, "GET", probe).send().await.unwrap();
        assert_eq!(r.status(), 404, "GET {probe}");
    }
    // Explorer writes desktop.ini when a folder is customised: kept by the
    // gateway, with its Win32 properties acknowledged.
    let r = ms(&gw, "PUT", "/desktop.ini")
        .body("[.ShellClassInfo]\r\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = ms(&gw, "PROPPATCH", "/desktop.ini")
        .body(proppatch_body(MS_TIMES))
        .send()
        .await
        .unwrap();
    assert_all_200(r, "PROPPATCH of a parked file").await;
    let (s, b) = gw.get("/desktop.ini").await;
    assert_eq!((s, &b[..]), (200, &b"[.ShellClassInfo]\r\n"[..]));
    gw.up.clear_faults();
    let (s, body) = gw.propfind("/", "1").await;
    assert_eq!(s, 207);
    assert!(hrefs(&body).iter().any(|h| h == "/desktop.ini"), "{body}");
    assert!(gw.up.file_bytes(EMAIL, "/desktop.ini").await.is_none());
    let _ = DAV_PASSWORD;
    gw.stop().await;
}
