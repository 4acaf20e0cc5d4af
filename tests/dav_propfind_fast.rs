//! The gateway's own PROPFIND writer (`dav::propfind`) against
//! dav-server's answers on the same data: same hrefs, same properties and
//! values for allprop, the Windows allprop, propname and `<prop>` lists at
//! Depth 0 and 1; hrefs of odd names; every requested property answered;
//! listings over several upstream pages.

use std::collections::{BTreeMap, BTreeSet};

use crate::dav_common::{EMAIL, Gw};
use percent_encoding::percent_decode_str;

/// `(namespace, local name)`.
type Key = (String, String);
/// Per href: property → (status, canonical value).
type Answer = BTreeMap<String, BTreeMap<Key, (u16, String)>>;

const LOCKINFO: &str = r#"<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner><D:href>mailto:office@example.com</D:href></D:owner></D:lockinfo>"#;
const SHARED_LOCKINFO: &str = r#"<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:shared/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner>someone</D:owner></D:lockinfo>"#;

/// Names with characters hrefs must encode.
const ODD: &[&str] = &[
    "a b.txt",
    "h#sh.txt",
    "pct%41.txt",
    "amp&plus+.txt",
    "ünï cödé 日本.txt",
    ".hidden",
    "noext",
    "semi;colon,comma=eq@at.md",
];

fn canon(e: &xmltree::Element) -> String {
    let mut s = format!("{{{}}}{}", e.namespace.as_deref().unwrap_or(""), e.name);
    let mut attrs: Vec<_> = e.attributes.iter().collect();
    attrs.sort();
    for (k, v) in attrs {
        s.push_str(&format!(" {k}={v:?}"));
    }
    s.push('[');
    for c in &e.children {
        match c {
            xmltree::XMLNode::Element(c) => s.push_str(&canon(c)),
            xmltree::XMLNode::Text(t) if !t.trim().is_empty() => s.push_str(t.trim()),
            _ => {}
        }
    }
    s.push(']');
    s
}

fn parse(body: &str) -> Answer {
    let root = xmltree::Element::parse(body.as_bytes())
        .unwrap_or_else(|e| panic!("not XML ({e}): {body}"));
    assert_eq!(root.name, "multistatus", "{body}");
    let mut out = Answer::new();
    for r in root.children.iter().filter_map(|c| c.as_element()) {
        assert_eq!(r.name, "response");
        let href = r
            .get_child("href")
            .and_then(|h| h.get_text())
            .expect("href")
            .to_string();
        let mut props = BTreeMap::new();
        for ps in r
            .children
            .iter()
            .filter_map(|c| c.as_element())
            .filter(|e| e.name == "propstat")
        {
            let status: u16 = ps
                .get_child("status")
                .and_then(|s| s.get_text())
                .and_then(|s| s.split_whitespace().nth(1).map(str::to_string))
                .and_then(|s| s.parse().ok())
                .expect("status");
            for p in ps
                .get_child("prop")
                .expect("prop")
                .children
                .iter()
                .filter_map(|c| c.as_element())
            {
                let k = (p.namespace.clone().unwrap_or_default(), p.name.clone());
                let v = p.children.iter().fold(String::new(), |mut s, c| {
                    match c {
                        xmltree::XMLNode::Element(c) => s.push_str(&canon(c)),
                        xmltree::XMLNode::Text(t) => s.push_str(t.trim()),
                        _ => {}
                    }
                    s
                });
                assert!(
                    props.insert(k.clone(), (status, v)).is_none(),
                    "{k:?} twice in {href}: {body}"
                );
            }
        }
        assert!(out.insert(href.clone(), props).is_none(), "{href} twice");
    }
    out
}

struct Reply {
    status: u16,
    content_location: Option<String>,
    body: String,
}

async fn propfind(url: &str, path: &str, depth: &str, ua: &str, body: &str) -> Reply {
    let r = reqwest::Client::new()
        .request(
            reqwest::Method::from_bytes(b"PROPFIND").unwrap(),
            format!("{url}{path}"),
        )
        .basic_auth(EMAIL, Some(crate::dav_common::DAV_PASSWORD))
        .header("depth", depth)
        .header("user-agent", ua)
        .body(body.to_string())
        .send()
        .await
        .expect("propfind");
    Reply {
        status: r.status().as_u16(),
        content_location: r
            .headers()
            .get("content-location")
            .map(|v| v.to_str().unwrap().to_string()),
        body: r.text().await.expect("body"),
    }
}

fn prop_body(props: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:" xmlns:x="urn:x" xmlns:oc="http://owncloud.org/ns" xmlns:Z="urn:schemas-microsoft-com:" xmlns:A="http://apache.org/dav/props/"><D:prop>{props}</D:prop></D:propfind>"#
    )
}

/// The properties a `<prop>` body asks for.
fn requested(body: &str) -> Vec<Key> {
    let root = xmltree::Element::parse(body.as_bytes()).unwrap();
    root.get_child("prop")
        .unwrap()
        .children
        .iter()
        .filter_map(|c| c.as_element())
        .map(|e| (e.namespace.clone().unwrap_or_default(), e.name.clone()))
        .collect()
}

enum Kind {
    All,
    Names,
    Prop(Vec<Key>),
}

/// Sets up a folder with odd names, dead properties, kept times and
/// checksums, a subfolder and locks.
async fn arrange(gw: &Gw) {
    assert_eq!(gw.req("MKCOL", "/dir").send().await.unwrap().status(), 201);
    assert_eq!(
        gw.req("MKCOL", "/dir/sub%20dir")
            .send()
            .await
            .unwrap()
            .status(),
        201
    );
    for (i, n) in ODD.iter().enumerate() {
        let enc: String =
            percent_encoding::utf8_percent_encode(n, percent_encoding::NON_ALPHANUMERIC).collect();
        assert_eq!(
            gw.put(&format!("/dir/{enc}"), vec![b'x'; i]).await,
            201,
            "{n}"
        );
    }
    for i in 0..12 {
        assert_eq!(gw.put(&format!("/dir/f{i:02}.bin"), "data").await, 201);
    }
    // Kept client mtime and checksum.
    let r = gw
        .req("PUT", "/dir/kept.txt")
        .header("x-oc-mtime", "1500000000")
        .header(
            "oc-checksum",
            "SHA1:A9993E364706816ABA3E25717850C26C9CD0D89D",
        )
        .body("abc")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // Dead properties, one with markup inside.
    let r = gw
        .req("PROPPATCH", "/dir/a%20b.txt")
        .body(r#"<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:x="urn:x"><D:set><D:prop><x:color>red &amp; blue</x:color><x:nested><x:inner a="1">v</x:inner></x:nested><D:displayname>Shown Name</D:displayname></D:prop></D:set></D:propertyupdate>"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 207);
    let t = r.text().await.unwrap();
    assert!(
        !t.contains("HTTP/1.1 4") && !t.contains("HTTP/1.1 5"),
        "{t}"
    );
    let r = gw
        .req("PROPPATCH", "/dir/")
        .body(r#"<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:x="urn:x"><D:set><D:prop><x:color>green</x:color></D:prop></D:set></D:propertyupdate>"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 207);
    assert_eq!(gw.put("/dir/sub%20dir/inside.txt", "in").await, 201);
    // An exclusive lock on a file, a shared deep lock on the subfolder.
    let r = gw
        .req("LOCK", "/dir/h%23sh.txt")
        .header("timeout", "Second-3600")
        .body(LOCKINFO)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = gw
        .req("LOCK", "/dir/sub%20dir/")
        .header("timeout", "Second-7200")
        .header("depth", "infinity")
        .body(SHARED_LOCKINFO)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

fn compare(kind: &Kind, what: &str, fast: &Answer, slow: &Answer) {
    assert_eq!(
        fast.keys().collect::<Vec<_>>(),
        slow.keys().collect::<Vec<_>>(),
        "hrefs of {what}"
    );
    for (href, f) in fast {
        let s = &slow[href];
        match kind {
            Kind::All => assert_eq!(f, s, "{what} {href}"),
            Kind::Names => {
                let names = |a: &BTreeMap<Key, (u16, String)>| {
                    a.iter()
                        .filter(|(_, (st, _))| *st == 200)
                        .map(|(k, _)| k.clone())
                        .collect::<BTreeSet<_>>()
                };
                assert_eq!(names(f), names(s), "{what} {href}");
                assert!(
                    f.values().all(|(st, v)| *st == 200 && v.is_empty()),
                    "{what} {href}: {f:?}"
                );
            }
            Kind::Prop(wanted) => {
                // Exactly what was asked for (dav-server adds every dead
                // property; that is not compared).
                let got: BTreeSet<&Key> = f.keys().collect();
                let want: BTreeSet<&Key> = wanted.iter().collect();
                assert_eq!(got, want, "{what} {href}");
                for k in wanted {
                    assert_eq!(f.get(k), s.get(k), "{what} {href} {k:?}");
                }
            }
        }
    }
}

#[tokio::test]
async fn fast_path_answers_like_dav_server() {
    let gw = Gw::start_with(|s| s.page_size = 7).await;
    arrange(&gw).await;
    let slow_gw = gw
        .extra_gateway(|s| {
            s.fast_propfind = false;
        })
        .await;

    let props_sets = [
        "<D:getetag/><D:getlastmodified/><D:getcontentlength/><D:resourcetype/><D:getcontenttype/><D:creationdate/><D:displayname/><D:getcontentlanguage/>",
        "<D:quota-available-bytes/><D:quota-used-bytes/>",
        "<D:lockdiscovery/><D:supportedlock/><D:current-user-principal/>",
        "<x:color/><x:nested/><x:nope/><oc:checksums/><A:executable/><Z:Win32LastAccessTime/><Z:Win32FileAttributes/><Z:Win32CreationTime/><Z:Win32LastModifiedTime/><D:bogus/><plain xmlns=\"\"/>",
    ];
    let mut bodies: Vec<(Kind, String, &str)> = vec![
        (Kind::All, String::new(), "litmus"),
        (
            Kind::All,
            String::new(),
            "Microsoft-WebDAV-MiniRedir/10.0.19045",
        ),
        (
            Kind::All,
            r#"<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>"#.into(),
            "rclone/v1.60",
        ),
        (
            Kind::Names,
            r#"<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:propname/></D:propfind>"#.into(),
            "x",
        ),
    ];
    for p in props_sets {
        let b = prop_body(p);
        bodies.push((Kind::Prop(requested(&b)), b.clone(), "x"));
        bodies.push((
            Kind::Prop(requested(&b)),
            b,
            "WebDAVFS/3.0.0 (03008000) Darwin/22.0.0",
        ));
    }
    let kept_enc: String = percent_encoding::utf8_percent_encode(
        "ünï cödé 日本.txt",
        percent_encoding::NON_ALPHANUMERIC,
    )
    .collect();
    let paths = [
        "/".to_string(),
        "/dir".to_string(),
        "/dir/".to_string(),
        "/dir/a%20b.txt".to_string(),
        "/dir/h%23sh.txt".to_string(),
        format!("/dir/{kept_enc}"),
        "/dir/kept.txt".to_string(),
        "/dir/sub%20dir".to_string(),
    ];
    let mut compared = 0;
    for (kind, body, ua) in &bodies {
        for path in &paths {
            for depth in ["0", "1"] {
                let what = format!("PROPFIND {path} depth {depth} ua {ua} body {body}");
                let f = propfind(&gw.url, path, depth, ua, body).await;
                let s = propfind(&slow_gw.url, path, depth, ua, body).await;
                assert_eq!(f.status, 207, "{what}: {}", f.body);
                assert_eq!(s.status, 207, "{what}: {}", s.body);
                assert_eq!(f.content_location, s.content_location, "{what}");
                compare(kind, &what, &parse(&f.body), &parse(&s.body));
                // Two different writers (dav-server closes empty elements
                // with an end tag, ours self-closes).
                if matches!(kind, Kind::All) {
                    assert!(s.body.contains("</D:resourcetype>"), "{}", s.body);
                    assert!(
                        f.body.contains("<D:resourcetype/>") || f.body.contains("<D:collection/>"),
                        "{}",
                        f.body
                    );
                    assert_ne!(f.body, s.body);
                }
                compared += 1;
            }
        }
    }
    assert_eq!(compared, bodies.len() * paths.len() * 2);

    // The same errors.
    for path in ["/nope", "/dir/nope/"] {
        for depth in ["0", "1"] {
            let f = propfind(&gw.url, path, depth, "x", "").await;
            let s = propfind(&slow_gw.url, path, depth, "x", "").await;
            assert_eq!((f.status, s.status), (404, 404), "{path} {depth}");
        }
    }
    // Bad XML and unusual shapes fall back to dav-server: same answers.
    for body in [
        "<D:propfind xmlns:D=\"DAV:\"><D:prop>",
        " ",
        r#"<D:propfind xmlns:D="DAV:"><D:allprop/><D:include><D:supported-live-property-set/></D:include></D:propfind>"#,
    ] {
        let f = propfind(&gw.url, "/dir/", "1", "x", body).await;
        let s = propfind(&slow_gw.url, "/dir/", "1", "x", body).await;
        assert_eq!(f.status, s.status, "{body}");
    }
    slow_gw.stop().await;
    gw.stop().await;
}

#[tokio::test]
async fn hrefs_of_odd_names_and_every_requested_property() {
    let gw = Gw::start_with(|s| s.page_size = 4).await;
    arrange(&gw).await;
    let body = prop_body("<D:getetag/><D:resourcetype/><D:getcontentlength/><x:color/>");
    let r = propfind(&gw.url, "/dir/", "1", "x", &body).await;
    assert_eq!(r.status, 207);
    let a = parse(&r.body);
    let mut names = BTreeSet::new();
    for (href, props) in &a {
        assert!(href.starts_with("/dir/"), "{href}");
        let is_dir = props[&("DAV:".to_string(), "resourcetype".to_string())]
            .1
            .contains("collection");
        assert_eq!(href.ends_with('/'), is_dir, "{href}");
        // Nothing a client would have to guess: only unreserved
        // characters and percent escapes.
        assert!(
            href.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.~/%".contains(&b)),
            "{href}"
        );
        for k in requested(&body) {
            let (st, _) = props.get(&k).unwrap_or_else(|| panic!("{k:?} in {href}"));
            assert!(*st == 200 || *st == 404, "{href} {k:?}");
        }
        let decoded = percent_decode_str(href).decode_utf8().expect("utf-8 href");
        if let Some(n) = decoded.strip_prefix("/dir/") {
            names.insert(n.trim_end_matches('/').to_string());
        }
    }
    for n in ODD {
        assert!(names.contains(*n), "{n} listed: {names:?}");
    }
    assert!(names.contains("sub dir") && names.contains("f11.bin"));
    assert_eq!(a.len(), 1 + ODD.len() + 12 + 2, "{:?}", a.keys());
    // Values: the file sizes, and the dead property only where it is set.
    let len = |n: &str| a[n][&("DAV:".to_string(), "getcontentlength".to_string())].clone();
    assert_eq!(len("/dir/f00.bin"), (200, "4".to_string()));
    assert_eq!(len("/dir/sub%20dir/").0, 404);
    let color = |n: &str| a[n][&("urn:x".to_string(), "color".to_string())].clone();
    assert_eq!(color("/dir/a%20b.txt"), (200, "red & blue".to_string()));
    assert_eq!(color("/dir/"), (200, "green".to_string()));
    assert_eq!(color("/dir/noext").0, 404);
    // ETags are quoted, as in the ETag header.
    let etag = a["/dir/f00.bin"][&("DAV:".to_string(), "getetag".to_string())]
        .1
        .clone();
    let head = gw.req("HEAD", "/dir/f00.bin").send().await.unwrap();
    assert_eq!(head.headers()["etag"].to_str().unwrap(), etag);
    // Literally so: clients compare the text without an XML parser.
    assert!(
        r.body.contains(&format!("<D:getetag>{etag}</D:getetag>")),
        "{}",
        r.body
    );
    gw.stop().await;
}
