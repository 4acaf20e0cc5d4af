//! Further details around the topics of docs/UPSTREAM.md: headers, user states,
//! trash moves, upload cancel edge cases, limits.

use cloudreve_dav::cloudreve::{
    CrUri, DownloadUrlOptions, EntityType, Error, MetadataPatch, UploadRequest,
};
use reqwest::{Method, header};
use serde_json::json;

use crate::emulator_or_skip;
use crate::files::trash_item;
use crate::harness::*;

#[tokio::test]
async fn envelope_cache_control_and_correlation_id_reuse() {
    let up = Upstream::start().await;
    let cid = uuid::Uuid::new_v4().to_string();
    let resp = up
        .raw(
            Method::GET,
            &format!("/file/info?uri={}", up.uri("missing").to_query_value()),
        )
        .await
        .header("X-Cr-Correlation-Id", &cid)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()
            .get(header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok()),
        Some("private, no-cache")
    );
    let v: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(code_of(&v), 40016, "{v}");
    assert_eq!(
        v["correlation_id"],
        cid.as_str(),
        "a valid client cid is reused: {v}"
    );
    up.finish().await;
}

#[tokio::test]
async fn file_response_capability_owned_and_site_config_basic() {
    let up = Upstream::start().await;
    up.put("c.txt", b"x").await;
    let p = up.session.list_page(&up.base, 0, None).await.expect("list");
    let f = &p.files[0];
    assert!(f.owned, "own files are owned");
    assert!(
        f.capability.get(0) && f.capability.get(9) && f.capability.get(19),
        "{:?}",
        f.capability
    );
    if !up.is_real() {
        assert_eq!(f.capability.to_base64(), "w8edAQ==");
        assert_eq!(
            p.props.as_ref().and_then(|v| v["capability"].as_str()),
            Some("w8edAQ==")
        );
        assert_eq!(
            p.props.as_ref().and_then(|v| v["max_page_size"].as_i64()),
            Some(2000)
        );
    }
    let basic = up.client.site_config("basic").await.expect("basic");
    assert!(
        basic.get("instance_id").is_some() || basic.get("title").is_some(),
        "{basic}"
    );
    up.finish().await;
}

#[tokio::test]
async fn content_route_cors_csp_and_cache_headers() {
    let up = Upstream::start().await;
    up.put("h.txt", b"x").await;
    let url = up
        .session
        .download_url(&up.uri("h.txt"), None, DownloadUrlOptions::default())
        .await
        .expect("url")
        .url;
    // CORS headers only for a cross-origin request.
    let plain = up.http.get(&url).send().await.expect("get");
    assert!(
        plain
            .headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none()
    );
    let resp = up
        .http
        .get(&url)
        .header(header::ORIGIN, "http://elsewhere.example")
        .send()
        .await
        .expect("get");
    let h = resp.headers();
    assert_eq!(
        h.get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .and_then(|v| v.to_str().ok()),
        Some("*")
    );
    assert_eq!(
        h.get(header::CONTENT_SECURITY_POLICY)
            .and_then(|v| v.to_str().ok()),
        Some("sandbox")
    );
    assert!(
        h.get(header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("public, max-age=")),
        "{h:?}"
    );
    assert!(h.get(header::CONTENT_TYPE).is_some());
    up.finish().await;
}

#[tokio::test]
async fn url_several_uris_skip_error_and_entity() {
    let up = Upstream::start().await;
    let a = up.put("a.txt", b"a").await;
    up.put("b.txt", b"b").await;
    let r = up
        .session
        .download_urls(
            &[up.uri("a.txt"), up.uri("b.txt")],
            None,
            DownloadUrlOptions::default(),
        )
        .await
        .expect("urls");
    assert_eq!(r.urls.len(), 2);
    let mut bodies = Vec::new();
    for u in &r.urls {
        bodies.push(
            up.client
                .open_url(&u.url, None)
                .await
                .expect("open")
                .bytes()
                .await
                .expect("b"),
        );
    }
    assert_eq!((&bodies[0][..], &bodies[1][..]), (&b"a"[..], &b"b"[..]));
    let e = expect_code(
        up.session
            .download_urls(
                &[up.uri("a.txt"), up.uri("zz")],
                None,
                DownloadUrlOptions::default(),
            )
            .await,
        40081,
    );
    expect_aggregated(&e, &up.uri("zz"), 40016);
    let v = up
        .raw_authed(
            Method::POST,
            "/file/url",
            Some(json!({"uris":[up.uri("a.txt").to_string(), up.uri("zz").to_string()], "skip_error": true})),
        )
        .await;
    assert_eq!(code_of(&v), 0, "{v}");
    assert_eq!(v["data"]["urls"][1]["url"], "", "{v}");
    // A specific version: the current one works; a hashid that is no
    // entity's names no entity (40077).
    let pe = a.primary_entity.expect("pe");
    let u = up
        .session
        .download_url(&up.uri("a.txt"), Some(&pe), DownloadUrlOptions::default())
        .await
        .expect("entity url");
    assert_eq!(
        up.client.open_url(&u.url, None).await.expect("o").etag,
        Some(format!("\"{pe}\""))
    );
    expect_code(
        up.session
            .download_url(&up.uri("a.txt"), Some(&a.id), DownloadUrlOptions::default())
            .await,
        40077,
    );
    up.finish().await;
}

#[tokio::test]
async fn info_folder_summary() {
    let up = Upstream::start().await;
    up.put("s/a.txt", b"12345").await;
    up.put("s/d/b.txt", b"123").await;
    let v = up
        .raw_authed(
            Method::GET,
            &format!(
                "/file/info?uri={}&folder_summary=true",
                up.uri("s").to_query_value()
            ),
            None,
        )
        .await;
    assert_eq!(code_of(&v), 0, "{v}");
    let s = &v["data"]["folder_summary"];
    assert_eq!(s["size"], 8, "{v}");
    assert_eq!(s["files"], 2, "{v}");
    assert_eq!(s["folders"], 1, "{v}");
    up.finish().await;
}

#[tokio::test]
async fn trash_move_out_deep_path_and_copy_into_trash() {
    let up = Upstream::start().await;
    up.put("a.txt", b"a").await;
    up.session
        .delete(&[up.uri("a.txt")], false, false)
        .await
        .expect("delete");
    let t = trash_item(&up, &up.uri("a.txt"))
        .await
        .expect("trash")
        .uri()
        .expect("uri");
    expect_code(
        up.session.info(&t.join("below").expect("j"), false).await,
        40016,
    );
    up.mkdir("dst").await;
    up.session
        .move_or_copy(std::slice::from_ref(&t), &up.uri("dst"), false)
        .await
        .expect("move out");
    assert_eq!(up.names("dst").await, vec!["a.txt"], "original name");
    assert_eq!(up.get("dst/a.txt").await, b"a");
    // Copying or moving into the trash crashes Cloudreve 4.18's handler:
    // HTTP 500 with an empty body, which the client reports as such.
    for copy in [true, false] {
        match up
            .session
            .move_or_copy(&[up.uri("dst/a.txt")], &CrUri::root("trash"), copy)
            .await
        {
            Err(Error::UnexpectedStatus { status: 500, .. }) => {}
            other => panic!("copy={copy}: expected HTTP 500, got {other:?}"),
        }
        assert_eq!(up.names("dst").await, vec!["a.txt"], "source untouched");
    }
    up.finish().await;
}

#[tokio::test]
async fn sign_in_banned_inactive_and_banned_jwt() {
    let up = Upstream::start().await;
    let emu = emulator_or_skip!(up);
    let (email, s) = up.extra_user("state").await;
    let mut o = emu.user_options(&email).expect("user");
    o.banned = true;
    emu.set_user_options(&email, o.clone());
    expect_code(up.client.sign_in(&email, PASSWORD).await, 40017);
    let t = s.token().await.access_token;
    let v = up.raw_json(Method::GET, "/user/me", None, Some(&t)).await;
    assert_eq!(code_of(&v), 50001, "valid JWT of a banned user: {v}");
    o.banned = false;
    o.inactive = true;
    emu.set_user_options(&email, o);
    expect_code(up.client.sign_in(&email, PASSWORD).await, 40018);
    up.finish().await;
}

#[tokio::test]
async fn sign_in_2fa_unknown_session_404_and_sign_out_garbage_40020() {
    let up = Upstream::start().await;
    expect_code(
        up.client
            .sign_in_2fa("123456", &uuid::Uuid::new_v4().to_string())
            .await,
        404,
    );
    let v = up
        .raw_json(
            Method::DELETE,
            "/session/token",
            Some(json!({"refresh_token": "garbage"})),
            None,
        )
        .await;
    assert_eq!(code_of(&v), 40020, "{v}");
    up.finish().await;
}

fn ureq(up: &Upstream, rel: &str, size: u64, p: &str, et: EntityType) -> UploadRequest {
    UploadRequest {
        uri: Some(up.uri(rel)),
        size,
        policy_id: p.to_string(),
        last_modified_ms: Some(1_000_000_000_000),
        mime_type: None,
        entity_type: et,
        metadata: None,
    }
}

#[tokio::test]
async fn upload_live_photo_needs_existing_file_and_cancel_edge_cases() {
    let up = Upstream::start().await;
    let p = up
        .session
        .policy_id_for(&up.uri("x"))
        .await
        .expect("policy");
    expect_code(
        up.session
            .create_upload_session(&ureq(&up, "lp.heic", 1, &p, EntityType::LivePhoto))
            .await,
        40016,
    );
    // Unknown session, existing file: tolerated.
    up.put("exists.txt", b"x").await;
    up.session
        .cancel_upload(&uuid::Uuid::new_v4().to_string(), &up.uri("exists.txt"))
        .await
        .expect("unknown session on an existing file");
    assert_eq!(up.get("exists.txt").await, b"x");
    // Unknown session, missing file: 40016.
    expect_code(
        up.session
            .cancel_upload(&uuid::Uuid::new_v4().to_string(), &up.uri("gone.txt"))
            .await,
        40016,
    );
    // A session of another file: 404.
    let s = up
        .session
        .create_upload_session(&ureq(&up, "one.bin", 1, &p, EntityType::New))
        .await
        .expect("session");
    expect_code(
        up.session
            .cancel_upload(&s.session_id, &up.uri("exists.txt"))
            .await,
        404,
    );
    up.session
        .cancel_upload(&s.session_id, &up.uri("one.bin"))
        .await
        .expect("cancel");
    // Cancelling a version upload keeps the file and its content.
    let s = up
        .session
        .create_upload_session(&ureq(&up, "exists.txt", 3, &p, EntityType::Version))
        .await
        .expect("version session");
    let i = up
        .session
        .info(&up.uri("exists.txt"), false)
        .await
        .expect("info");
    assert_eq!(i.meta("sys:upload_session_id"), Some(s.session_id.as_str()));
    up.session
        .cancel_upload(&s.session_id, &up.uri("exists.txt"))
        .await
        .expect("cancel");
    let i = up
        .session
        .info(&up.uri("exists.txt"), false)
        .await
        .expect("info");
    assert!(i.meta("sys:upload_session_id").is_none());
    assert_eq!(up.get("exists.txt").await, b"x");
    up.finish().await;
}

#[tokio::test]
async fn upload_last_modified_sets_updated_at() {
    let up = Upstream::start().await;
    let mut src: &[u8] = b"mtime";
    let f = up
        .session
        .upload(
            &up.uri("m.bin"),
            5,
            &mut src,
            cloudreve_dav::cloudreve::UploadOptions {
                last_modified_ms: Some(1_000_000_000_000),
                ..Default::default()
            },
        )
        .await
        .expect("upload");
    // Since 4.4 (and still in 4.18) the uploader's time is kept.
    let ua = f.updated_at.expect("updated_at");
    assert_eq!(ua.timestamp_millis(), 1_000_000_000_000, "{ua}");
    up.finish().await;
}

#[tokio::test]
async fn policy_max_size_40049() {
    let up = Upstream::start().await;
    let emu = emulator_or_skip!(up);
    emu.set_policy_max_size(5);
    let p = up
        .session
        .policy_id_for(&up.uri("x"))
        .await
        .expect("policy");
    expect_code(
        up.session
            .create_upload_session(&ureq(&up, "big.bin", 6, &p, EntityType::New))
            .await,
        40049,
    );
    expect_code(
        put_bytes(&up.session, &up.uri("big.bin"), b"123456").await,
        40049,
    );
    up.put("ok.bin", b"12345").await;
    up.finish().await;
}

#[tokio::test]
async fn max_walked_files_40079() {
    let up = Upstream::start().await;
    let emu = emulator_or_skip!(up);
    for i in 0..5 {
        up.put(&format!("w/f{i}"), b"x").await;
    }
    emu.set_max_walked_files(3);
    let e = expect_code(up.session.delete(&[up.uri("w")], false, true).await, 40079);
    assert!(e.aggregated().is_none(), "{e:?}");
    assert_eq!(up.names("w").await.len(), 5);
    up.mkdir("dst").await;
    let e = up
        .session
        .move_or_copy(&[up.uri("w")], &up.uri("dst"), true)
        .await
        .expect_err("copy over the walk limit");
    let code = e.api().map(|a| a.code);
    let inner = e
        .aggregated()
        .and_then(|a| a.get_uri(&up.uri("w")).map(|x| x.code));
    assert!(code == Some(40079) || inner == Some(40079), "{e:?}");
    assert!(up.names("dst").await.is_empty());
    up.finish().await;
}

#[tokio::test]
async fn soft_delete_folder_is_one_trash_item_with_its_subtree() {
    let up = Upstream::start().await;
    up.put("d/a.txt", b"a").await;
    up.put("d/e/b.txt", b"b").await;
    up.session
        .delete(&[up.uri("d")], false, false)
        .await
        .expect("delete");
    assert!(up.names("").await.is_empty());
    let t = trash_item(&up, &up.uri("d")).await.expect("one item");
    assert!(t.is_folder());
    assert!(
        trash_item(&up, &up.uri("d/a.txt")).await.is_none(),
        "children are not separate items"
    );
    up.session
        .restore(&[t.uri().expect("uri")])
        .await
        .expect("restore");
    assert_eq!(up.get("d/e/b.txt").await, b"b");
    up.finish().await;
}

#[tokio::test]
async fn sign_in_binding_rules_and_2fa_session_lifetime() {
    let up = Upstream::start().await;
    for body in [
        json!({"email": "not-an-email", "password": "password"}),
        json!({"email": up.email, "password": "abc"}),
        json!({"email": up.email}),
    ] {
        let v = up
            .raw_json(Method::POST, "/session/token", Some(body.clone()), None)
            .await;
        assert_eq!(code_of(&v), 40001, "{body}: {v}");
        assert!(v.get("correlation_id").is_none(), "{v}");
    }
    let emu = emulator_or_skip!(up);
    let (email, _) = up.extra_user("tfa-life").await;
    let mut o = emu.user_options(&email).expect("user");
    o.otp = Some("654321".into());
    emu.set_user_options(&email, o);
    let sid = match up.client.sign_in(&email, PASSWORD).await {
        Err(cloudreve_dav::cloudreve::Error::TwoFactorRequired { session_id }) => session_id,
        other => panic!("expected 2FA, got {other:?}"),
    };
    emu.advance_clock(std::time::Duration::from_secs(601));
    expect_code(up.client.sign_in_2fa("654321", &sid).await, 404);
    up.finish().await;
}

#[tokio::test]
async fn password_change_revokes_refresh_not_access() {
    let up = Upstream::start().await;
    let emu = emulator_or_skip!(up);
    let (email, s) = up.extra_user("pwchange").await;
    let t = s.token().await;
    emu.add_user(&email, "a-new-password");
    let v = up
        .raw_json(
            Method::POST,
            "/session/token/refresh",
            Some(json!({"refresh_token": t.refresh_token})),
            None,
        )
        .await;
    assert_eq!(code_of(&v), 40020, "state hash changed: {v}");
    let v = up
        .raw_json(Method::GET, "/user/me", None, Some(&t.access_token))
        .await;
    assert_eq!(code_of(&v), 0, "{v}");
    up.finish().await;
}

#[tokio::test]
async fn list_order_by_and_direction() {
    let up = Upstream::start().await;
    for n in ["b.txt", "a.txt", "c.txt"] {
        up.put(n, n.as_bytes()).await;
    }
    up.mkdir("y").await;
    up.mkdir("x").await;
    let q = format!(
        "/file?uri={}&order_by=name&order_direction=desc",
        up.base.to_query_value()
    );
    let v = up.raw_authed(Method::GET, &q, None).await;
    assert_eq!(code_of(&v), 0, "{v}");
    let names: Vec<&str> = v["data"]["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, vec!["y", "x", "c.txt", "b.txt", "a.txt"]);
    let q = format!(
        "/file?uri={}&order_by=name&order_direction=asc",
        up.base.to_query_value()
    );
    let v = up.raw_authed(Method::GET, &q, None).await;
    let names: Vec<&str> = v["data"]["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, vec!["x", "y", "a.txt", "b.txt", "c.txt"]);
    up.finish().await;
}

#[tokio::test]
async fn ids_of_the_wrong_type_give_40001() {
    let up = Upstream::start().await;
    let f = up.put("i.txt", b"x").await;
    let pe = f.primary_entity.expect("pe");
    expect_code(up.session.info_by_id(&pe, false).await, 40001);
    expect_code(up.session.info_by_id("garbage!", false).await, 40001);
    expect_code(up.session.delete_dav_account(&f.id).await, 40001);
    up.finish().await;
}

#[tokio::test]
async fn dav_account_name_required_and_root_existence_not_checked() {
    let up = Upstream::start().await;
    expect_code(
        up.session
            .create_dav_account(&up.base, "", Default::default())
            .await,
        40001,
    );
    let a = up
        .session
        .create_dav_account(&up.uri("does/not/exist"), "ghost", Default::default())
        .await
        .expect("existence is not checked");
    let v = up
        .raw_authed(
            Method::PUT,
            "/devices/dav",
            Some(json!({"uri": format!("{}?name=x", up.base), "name": "q"})),
        )
        .await;
    assert_eq!(code_of(&v), 40001, "search query in the root: {v}");
    up.session.delete_dav_account(&a.id).await.expect("cleanup");
    up.finish().await;
}

#[tokio::test]
async fn put_content_quota_counts_the_full_new_size() {
    let up = Upstream::start().await;
    let emu = emulator_or_skip!(up);
    up.put("q.bin", &[1u8; 10]).await;
    let used = up.session.capacity().await.expect("cap").used;
    emu.set_quota(&up.email, used + 5);
    // Net +2 bytes, but the whole 12 must fit before the old version is freed.
    expect_code(
        put_bytes(&up.session, &up.uri("q.bin"), &[2u8; 12]).await,
        40051,
    );
    up.put("q.bin", &[2u8; 5]).await;
    up.finish().await;
}

#[tokio::test]
async fn metadata_sys_keys_that_clients_may_set() {
    let up = Upstream::start().await;
    up.mkdir("link").await;
    let u = [up.uri("link")];
    let me = up.session.user().expect("user").id;
    up.session
        .patch_metadata(&u, &[MetadataPatch::set("sys:shared_owner", me.clone())])
        .await
        .expect("own hashid");
    expect_code(
        up.session
            .patch_metadata(&u, &[MetadataPatch::set("sys:shared_owner", "bogus!")])
            .await,
        40001,
    );
    expect_code(
        up.session
            .patch_metadata(
                &u,
                &[MetadataPatch::set("sys:shared_redirect", "not a share uri")],
            )
            .await,
        40001,
    );
    expect_code(
        up.session
            .patch_metadata(
                &u,
                &[MetadataPatch::set(
                    "sys:shared_redirect",
                    up.base.to_string(),
                )],
            )
            .await,
        40001,
    );
    up.finish().await;
}

#[tokio::test]
async fn content_route_if_match_and_suffix_range() {
    let up = Upstream::start().await;
    let f = up.put("m.bin", b"0123456789").await;
    let url = up
        .session
        .download_url(&up.uri("m.bin"), None, DownloadUrlOptions::default())
        .await
        .expect("url")
        .url;
    let resp = up
        .http
        .get(&url)
        .header(header::IF_MATCH, "\"not-the-etag\"")
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), 412);
    let etag = format!("\"{}\"", f.primary_entity.expect("pe"));
    let resp = up
        .http
        .get(&url)
        .header(header::IF_MATCH, &etag)
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), 200);
    let resp = up
        .http
        .get(&url)
        .header(header::RANGE, "bytes=-3")
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), 206);
    assert_eq!(
        resp.headers()
            .get(header::CONTENT_RANGE)
            .and_then(|v| v.to_str().ok()),
        Some("bytes 7-9/10")
    );
    assert_eq!(&resp.bytes().await.expect("b")[..], b"789");
    up.finish().await;
}

#[tokio::test]
async fn transport_faults_surface_as_typed_errors() {
    use cloudreve_dav::cloudreve::Error;
    use cloudreve_dav::emulator::{Fault, FaultKind};
    let up = Upstream::start().await;
    let emu = emulator_or_skip!(up);
    up.put("f.bin", &sample(100_000, 7)).await;
    let fault = |path: &str, kind| Fault {
        method: None,
        path_prefix: path.to_string(),
        kind,
        times: Some(1),
    };
    emu.add_fault(fault("/api/v4/user/me", FaultKind::HttpStatus(500)));
    match up.session.user_me().await {
        Err(Error::UnexpectedStatus { status: 500, .. }) => {}
        other => panic!("expected HTTP 500, got {other:?}"),
    }
    emu.add_fault(fault("/api/v4/user/me", FaultKind::DropConnection));
    assert!(matches!(
        up.session.user_me().await,
        Err(Error::Transport(_))
    ));
    up.session.user_me().await.expect("faults fired once");
    let url = up
        .session
        .download_url(&up.uri("f.bin"), None, DownloadUrlOptions::default())
        .await
        .expect("url")
        .url;
    emu.add_fault(fault(
        "/api/v4/file/content/",
        FaultKind::DropAfterBytes(1000),
    ));
    let r = up
        .client
        .open_url(&url, None)
        .await
        .expect("headers arrive");
    assert_eq!(r.content_length, Some(100_000));
    let e = r.bytes().await.expect_err("truncated body");
    assert!(
        matches!(e, Error::ShortBody { .. } | Error::Transport(_)),
        "{e:?}"
    );
    let r = up.client.open_url(&url, None).await.expect("open");
    assert_eq!(r.bytes().await.expect("body").len(), 100_000);
    up.finish().await;
}

#[tokio::test]
async fn token_lifetimes_and_sliding_refresh_window() {
    let up = Upstream::start().await;
    let t = up.session.token().await;
    let now = chrono::Utc::now();
    let access = (t.access_expires.with_timezone(&chrono::Utc) - now).num_seconds();
    let refresh = (t.refresh_expires.with_timezone(&chrono::Utc) - now).num_seconds();
    assert!(access > 0 && access <= 3600 + 60, "access ttl {access}");
    assert!(refresh > access, "refresh ttl {refresh}");
    let emu = emulator_or_skip!(up);
    assert!((access - 3600).abs() < 60, "default access ttl: {access}");
    assert!(
        (refresh - 1_209_600).abs() < 60,
        "default refresh ttl: {refresh}"
    );
    let rt0 = t.refresh_token;
    // Ten days later the old refresh token still works and yields a new one
    // that is valid for another 14 days.
    emu.advance_clock(std::time::Duration::from_secs(10 * 86400));
    let v = up
        .raw_json(
            Method::POST,
            "/session/token/refresh",
            Some(json!({ "refresh_token": rt0 })),
            None,
        )
        .await;
    assert_eq!(code_of(&v), 0, "{v}");
    let rt1 = v["data"]["refresh_token"].as_str().expect("rt").to_string();
    emu.advance_clock(std::time::Duration::from_secs(10 * 86400));
    for (rt, want) in [(rt0, 40020), (rt1, 0)] {
        let v = up
            .raw_json(
                Method::POST,
                "/session/token/refresh",
                Some(json!({ "refresh_token": rt })),
                None,
            )
            .await;
        assert_eq!(code_of(&v), want, "{v}");
    }
    up.finish().await;
}

#[tokio::test]
async fn info_uri_wins_over_id_and_session_prepare() {
    let up = Upstream::start().await;
    up.put("a.txt", b"a").await;
    let b = up.put("b.txt", b"b").await;
    let q = format!(
        "/file/info?uri={}&id={}",
        up.uri("a.txt").to_query_value(),
        b.id
    );
    let v = up.raw_authed(Method::GET, &q, None).await;
    assert_eq!(v["data"]["name"], "a.txt", "{v}");
    let v = up
        .raw_json(
            Method::GET,
            &format!(
                "/session/prepare?email={}",
                cloudreve_dav::cloudreve::query_escape(&up.email)
            ),
            None,
            None,
        )
        .await;
    assert_eq!(code_of(&v), 0, "{v}");
    assert_eq!(v["data"]["password_enabled"], true, "{v}");
    let v = up
        .raw_json(
            Method::GET,
            "/session/prepare?email=nobody-prepare%40example.com",
            None,
            None,
        )
        .await;
    assert_eq!(code_of(&v), 404, "{v}");
    // Site config fields are omitempty.
    let v = up
        .raw_json(Method::GET, "/site/config/login", None, None)
        .await;
    assert!(
        v["data"].get("login_captcha").is_none_or(|c| c == false),
        "{v}"
    );
    if !up.is_real() {
        assert!(
            v["data"].get("login_captcha").is_none(),
            "omitted when false: {v}"
        );
    }
    // `Bearer Cr …` is an internal signature: skipped, so anonymous.
    let v = up
        .raw_json(Method::GET, "/user/me", None, Some("Cr abc:123"))
        .await;
    assert_eq!(code_of(&v), 401, "{v}");
    up.finish().await;
}

#[tokio::test]
async fn chunk_answers_carry_no_data_and_accept_expected_entity_length() {
    let up = Upstream::start().await;
    let p = up
        .session
        .policy_id_for(&up.uri("x"))
        .await
        .expect("policy");
    let s = up
        .session
        .create_upload_session(&ureq(&up, "raw.bin", 6, &p, EntityType::New))
        .await
        .expect("session");
    // A streamed (chunked) body sized by X-Expected-Entity-Length.
    let stream = futures::stream::iter(
        [&b"abc"[..], &b"def"[..]]
            .into_iter()
            .map(|c| Ok::<_, std::io::Error>(bytes::Bytes::from_static(c))),
    );
    let resp = up
        .raw(Method::POST, &format!("/file/upload/{}/0", s.session_id))
        .await
        .header("X-Expected-Entity-Length", "6")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    let v: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(code_of(&v), 0, "{v}");
    assert!(
        v.get("data").is_none(),
        "the completing chunk returns no data: {v}"
    );
    assert_eq!(up.get("raw.bin").await, b"abcdef");
    // Trash names are UUIDs.
    up.session
        .delete(&[up.uri("raw.bin")], false, false)
        .await
        .expect("delete");
    let t = trash_item(&up, &up.uri("raw.bin")).await.expect("trash");
    let tu = t.uri().expect("uri");
    assert!(uuid::Uuid::parse_str(tu.name()).is_ok(), "{tu}");
    up.finish().await;
}
