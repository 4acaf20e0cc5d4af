//! URIs (docs/UPSTREAM.md §3): parsing, emitted escaping, `id@my`, name rules.

use cloudreve_dav::cloudreve::{CrUri, CreateKind, EntityType, UploadRequest};
use reqwest::Method;
use serde_json::json;

use crate::emulator_or_skip;
use crate::harness::*;

/// Names with characters that need escaping but are legal.
const ODD_NAMES: &[&str] = &[
    "hash#tag.txt",
    "100% sure.txt",
    "a+b=c.txt",
    " spaced  name .txt",
    "ünïcødé 日本語 ✓.txt",
    "me@host.txt",
    "tom&jerry;x,y.txt",
    "it's (1)!~[x]{y}$.txt",
    "percent%2F%41.txt",
];

#[tokio::test]
async fn uri_odd_names_round_trip_create_list_info_rename() {
    let up = Upstream::start().await;
    for (i, name) in ODD_NAMES.iter().enumerate() {
        let uri = up.base.join(name).expect("join");
        let f = up
            .session
            .create(&uri, CreateKind::File, true, None)
            .await
            .unwrap_or_else(|e| panic!("create {name:?}: {e:?}"));
        assert_eq!(f.name, *name);
        // Emitted paths use encodeURIComponent escaping, exactly.
        assert_eq!(
            f.path.as_deref(),
            Some(uri.to_string().as_str()),
            "{name:?}"
        );
        let info = up.session.info(&uri, false).await.expect("info");
        assert_eq!(info.name, *name);
        assert_eq!(info.uri().expect("path parses"), uri);
        // A folder with the same odd name, with content below it.
        let dir = up.base.join(&format!("d{i} {name}")).expect("join");
        let inner = dir.join(name).expect("join");
        put_bytes(&up.session, &inner, name.as_bytes())
            .await
            .expect("put below odd folder");
        let got = up
            .session
            .open_read_uri(&inner, None, None)
            .await
            .expect("read")
            .bytes()
            .await
            .expect("body");
        assert_eq!(&got[..], name.as_bytes());
        let (_, kids) = up.session.list_all(&dir, 0).await.expect("list odd folder");
        assert_eq!(kids.len(), 1);
        assert_eq!(kids[0].name, *name);
        assert_eq!(kids[0].uri().expect("uri"), inner);
        let renamed = format!("r{i}-{name}");
        let r = up.session.rename(&uri, &renamed).await.expect("rename");
        assert_eq!(r.name, renamed);
        assert_eq!(r.uri().expect("uri"), up.base.join(&renamed).expect("join"));
    }
    let names = up.names("").await;
    for (i, name) in ODD_NAMES.iter().enumerate() {
        assert!(names.contains(&format!("r{i}-{name}")), "{names:?}");
        assert!(names.contains(&format!("d{i} {name}")), "{names:?}");
    }
    up.finish().await;
}

async fn raw_info(up: &Upstream, uri: &str) -> serde_json::Value {
    let q = format!(
        "/file/info?uri={}",
        cloudreve_dav::cloudreve::query_escape(uri)
    );
    up.raw_authed(Method::GET, &q, None).await
}

#[tokio::test]
async fn uri_bad_percent_and_wrong_scheme_40001() {
    let up = Upstream::start().await;
    up.put("x.txt", b"x").await;
    // The client refuses to build these, so send them raw.
    assert!(CrUri::parse("cloudreve://my/a%zz").is_err());
    let base = up.base.to_string();
    for bad in [
        format!("{base}/a%zz"),
        format!("{base}/a%"),
        format!("http://my{}", up.base.path()),
        "my/x.txt".to_string(),
    ] {
        let v = raw_info(&up, &bad).await;
        assert_eq!(code_of(&v), 40001, "{bad}: {v}");
    }
    let v = up
        .raw_authed(
            Method::POST,
            "/file/create",
            Some(json!({"uri": format!("{base}/bad%zz"), "type":"folder"})),
        )
        .await;
    assert_eq!(code_of(&v), 40001, "{v}");
    up.finish().await;
}

#[tokio::test]
async fn uri_parsing_fragment_query_trailing_slash_and_clean() {
    let up = Upstream::start().await;
    up.put("x.txt", b"x").await;
    up.mkdir("d").await;
    let base = up.base.to_string();
    for (raw, want) in [
        (format!("{base}/x.txt#fragment"), "x.txt"),
        (format!("{base}/x.txt?foo=bar"), "x.txt"),
        (format!("{base}/d/"), "d"),
        (format!("{base}/d/../x.txt"), "x.txt"),
        (format!("{base}//d/./"), "d"),
        (format!("{base}/%78.txt"), "x.txt"),
        (format!("CLOUDREVE://MY{}/x.txt", up.base.path()), "x.txt"),
    ] {
        let v = raw_info(&up, &raw).await;
        assert_eq!(code_of(&v), 0, "{raw}: {v}");
        assert_eq!(v["data"]["name"], want, "{raw}: {v}");
    }
    // `#` truncates a create too: only "trunc" is made.
    let v = up
        .raw_authed(
            Method::POST,
            "/file/create",
            Some(json!({"uri": format!("{base}/trunc#tail"), "type":"folder"})),
        )
        .await;
    assert_eq!(code_of(&v), 0, "{v}");
    assert_eq!(v["data"]["name"], "trunc");
    // `+` stays a literal plus in the path.
    let v = up
        .raw_authed(
            Method::POST,
            "/file/create",
            Some(json!({"uri": format!("{base}/a+b"), "type":"folder"})),
        )
        .await;
    assert_eq!(v["data"]["name"], "a+b", "{v}");
    up.finish().await;
}

#[tokio::test]
async fn uri_root_and_id_at_my() {
    let up = Upstream::start().await;
    let page = up
        .session
        .list_page(&CrUri::my(), 1, None)
        .await
        .expect("root");
    let parent = page.parent.expect("parent");
    assert_eq!(parent.name, "");
    assert_eq!(parent.path.as_deref(), Some("cloudreve://my/"));
    assert!(parent.is_folder());
    up.put("own.txt", b"x").await;
    let me = up.session.user().expect("user").id;
    let mut own = CrUri::my().with_auth(Some(&me));
    for s in up.uri("own.txt").segments() {
        own = own.join(s).expect("join");
    }
    let f = up.session.info(&own, false).await.expect("own id@my");
    assert_eq!(f.name, "own.txt");
    let emu = emulator_or_skip!(up);
    let other = emu.add_user("other-idmy@example.com", PASSWORD);
    let mut foreign = CrUri::my().with_auth(Some(&other));
    for s in up.uri("own.txt").segments() {
        foreign = foreign.join(s).expect("join");
    }
    expect_code(up.session.info(&foreign, false).await, 403);
    up.finish().await;
}

const FORBIDDEN: &[&str] = &[
    "back\\slash",
    "co:lon",
    "st*ar",
    "que?ry",
    "dq\"uote",
    "lt<",
    "gt>",
    "pi|pe",
];

#[tokio::test]
async fn names_forbidden_chars_40052_on_create_and_rename() {
    let up = Upstream::start().await;
    up.put("ok.txt", b"x").await;
    for name in FORBIDDEN {
        let uri = up.base.join(name).expect("join");
        expect_code(
            up.session.create(&uri, CreateKind::File, false, None).await,
            40052,
        );
        expect_code(
            up.session
                .create(&uri, CreateKind::Folder, false, None)
                .await,
            40052,
        );
        expect_code(up.session.rename(&up.uri("ok.txt"), name).await, 40052);
    }
    for name in [".", ".."] {
        expect_code(up.session.rename(&up.uri("ok.txt"), name).await, 40052);
    }
    assert_eq!(up.names("").await, vec!["ok.txt".to_string()]);
    up.finish().await;
}

#[tokio::test]
async fn names_255_bytes_limit() {
    let up = Upstream::start().await;
    // 85 three-byte characters = 255 bytes: allowed.
    let ok = "語".repeat(85);
    assert_eq!(ok.len(), 255);
    let f = up
        .session
        .create(
            &up.base.join(&ok).expect("join"),
            CreateKind::File,
            true,
            None,
        )
        .await
        .expect("255 bytes");
    assert_eq!(f.name, ok);
    let long = format!("{ok}x");
    assert_eq!(long.len(), 256);
    let uri = up.base.join(&long).expect("join");
    expect_code(
        up.session
            .create(&uri, CreateKind::Folder, false, None)
            .await,
        40052,
    );
    expect_code(
        up.session
            .rename(&up.base.join(&ok).expect("j"), &long)
            .await,
        40052,
    );
    // On PUT the same rule gives 40052 too (4.18; 4.0 gave an untyped -1).
    expect_code(put_bytes(&up.session, &uri, b"x").await, 40052);
    // Content, though, needs a stored name: the default local policy keeps
    // `{uid}_{random8}_{name}` on disk, so a 255-byte file name can be
    // created empty but not uploaded (PUT 50004, upload session -1), while
    // a name that leaves room for the prefix can.
    expect_code(
        put_bytes(&up.session, &up.base.join(&ok).expect("j"), b"x").await,
        50004,
    );
    let fits = "n".repeat(240);
    up.put(&fits, b"x").await;
    assert_eq!(up.get(&fits).await, b"x");
    up.finish().await;
}

#[tokio::test]
async fn names_forbidden_on_put_and_upload_give_40052() {
    let up = Upstream::start().await;
    let policy = up
        .session
        .policy_id_for(&up.uri("p"))
        .await
        .expect("policy");
    for name in FORBIDDEN {
        let uri = up.base.join(name).expect("join");
        expect_code(put_bytes(&up.session, &uri, b"x").await, 40052);
        let req = UploadRequest {
            uri: Some(uri.clone()),
            size: 1,
            policy_id: policy.clone(),
            last_modified_ms: None,
            mime_type: None,
            entity_type: EntityType::New,
            metadata: None,
        };
        expect_code(up.session.create_upload_session(&req).await, 40052);
    }
    assert!(up.names("").await.is_empty());
    up.finish().await;
}

#[tokio::test]
async fn names_no_unicode_normalisation() {
    let up = Upstream::start().await;
    let nfc = "caf\u{e9}.txt";
    let nfd = "cafe\u{301}.txt";
    up.put(nfc, b"nfc").await;
    up.put(nfd, b"nfd").await;
    let mut names = up.names("").await;
    names.sort();
    let mut want = vec![nfc.to_string(), nfd.to_string()];
    want.sort();
    assert_eq!(names, want);
    assert_eq!(up.get(nfc).await, b"nfc");
    assert_eq!(up.get(nfd).await, b"nfd");
    up.finish().await;
}

#[tokio::test]
async fn names_one_namespace_and_case_sensitive_by_default() {
    let up = Upstream::start().await;
    up.mkdir("same").await;
    expect_code(
        up.session
            .create(&up.uri("same"), CreateKind::File, false, None)
            .await,
        40004,
    );
    expect_code(put_bytes(&up.session, &up.uri("same"), b"x").await, 40004);
    let emu = emulator_or_skip!(up);
    up.put("Case.txt", b"1").await;
    up.put("case.txt", b"2").await;
    assert_eq!(up.names("").await.len(), 3);
    up.session
        .delete(&[up.uri("case.txt")], false, true)
        .await
        .expect("delete");
    // Opt-in MySQL-like insensitivity.
    emu.set_case_insensitive(true);
    expect_code(
        up.session
            .create(&up.uri("CASE.TXT"), CreateKind::File, true, None)
            .await,
        40004,
    );
    up.finish().await;
}

#[tokio::test]
async fn uri_encoded_slash_splits_and_raw_chars_are_tolerated() {
    let up = Upstream::start().await;
    up.put("a/b.txt", b"x").await;
    let base = up.base.to_string();
    // Percent-decoding happens before path.Clean: `%2F` is a separator.
    let raw = format!("{base}/a%2Fb.txt");
    let v = raw_info(&up, &raw).await;
    assert_eq!(code_of(&v), 0, "{v}");
    assert_eq!(v["data"]["name"], "b.txt", "{v}");
    let raw_up = format!("{base}/a%2F..%2Fa%2Fb.txt");
    let v = raw_info(&up, &raw_up).await;
    assert_eq!(v["data"]["name"], "b.txt", "{v}");
    // The client reads such URIs the same way.
    assert_eq!(CrUri::parse(&raw).expect("parse"), up.uri("a/b.txt"));
    assert_eq!(CrUri::parse(&raw_up).expect("parse"), up.uri("a/b.txt"));
    // Raw spaces and UTF-8 in the path are accepted.
    let v = up
        .raw_authed(
            Method::POST,
            "/file/create",
            Some(json!({"uri": format!("{base}/raw space/ü ñ"), "type": "folder"})),
        )
        .await;
    assert_eq!(code_of(&v), 0, "{v}");
    assert_eq!(v["data"]["name"], "ü ñ", "{v}");
    assert_eq!(
        CrUri::parse(v["data"]["path"].as_str().expect("path")).expect("parse"),
        up.uri("raw space/ü ñ")
    );
    up.finish().await;
}

#[tokio::test]
async fn uri_unescaped_at_in_path_and_lower_case_hex() {
    let up = Upstream::start().await;
    let base = up.base.to_string();
    let v = up
        .raw_authed(
            Method::POST,
            "/file/create",
            Some(json!({"uri": format!("{base}/me@host/x"), "type": "folder"})),
        )
        .await;
    assert_eq!(code_of(&v), 0, "{v}");
    assert_eq!(
        CrUri::parse(v["data"]["path"].as_str().expect("path")).expect("parse"),
        up.uri("me@host/x"),
        "{v}"
    );
    let v = raw_info(&up, &format!("{base}/me%40host/%78")).await;
    assert_eq!(v["data"]["name"], "x", "{v}");
    up.put("é.txt", b"e").await;
    let v = raw_info(&up, &format!("{base}/%c3%a9.txt")).await;
    assert_eq!(v["data"]["name"], "é.txt", "{v}");
    // The emitted form is upper-case hex.
    assert!(
        v["data"]["path"]
            .as_str()
            .expect("path")
            .ends_with("/%C3%A9.txt"),
        "{v}"
    );
    up.finish().await;
}
