//! Metadata and dead properties (docs/UPSTREAM.md §4.8).

use std::time::Duration;

use cloudreve_dav::cloudreve::{CrUri, MetadataPatch};
use reqwest::Method;
use serde_json::json;

use crate::files::trash_item;
use crate::harness::*;

#[tokio::test]
async fn metadata_category_rules() {
    let up = Upstream::start().await;
    up.put("m.txt", b"x").await;
    let u = [up.uri("m.txt")];
    let ok = [
        ("dav:anything at all|x y", "not even json"),
        ("dav:", ""),
        ("customize:anything", "free text"),
        ("customize:icon_color", "#ff0000"),
        ("tag:red", ""),
        ("tag:green", "#00ff00"),
        // 4.18: the thumb: category is open to clients (any key, any value).
        ("thumb:disabled", ""),
        ("thumb:anything", "v"),
    ];
    for (k, v) in ok {
        up.session
            .patch_metadata(&u, &[MetadataPatch::set(k, v)])
            .await
            .unwrap_or_else(|e| panic!("{k}: {e:?}"));
    }
    let bad = [
        ("nocolon", "v"),
        ("unknown:k", "v"),
        ("exif:x", "v"),
        ("sys:foo", "v"),
        ("sys:upload_session_id", "v"),
        ("tag:", ""),
        ("tag:x", "not a colour"),
        ("customize:icon_color", "not a colour"),
    ];
    for (k, v) in bad {
        expect_code(
            up.session
                .patch_metadata(&u, &[MetadataPatch::set(k, v)])
                .await,
            40001,
        );
    }
    // Removing a sys: key is forbidden.
    expect_code(
        up.session
            .patch_metadata(&u, &[MetadataPatch::remove("sys:shared_owner")])
            .await,
        40001,
    );
    // `private:true` is rejected by binding.
    let v = up
        .raw_authed(
            Method::PATCH,
            "/file/metadata",
            Some(json!({"uris":[u[0].to_string()],
                        "patches":[{"key":"customize:p","value":"v","private":true}]})),
        )
        .await;
    assert_eq!(code_of(&v), 40001, "{v}");
    let i = up.session.info(&u[0], false).await.expect("info");
    let m = i.metadata.expect("metadata");
    for (k, v) in ok {
        assert_eq!(m.get(k).map(String::as_str), Some(v), "{k}");
    }
    assert!(!m.contains_key("customize:p"));
    assert!(!m.contains_key("unknown:k"));
    up.finish().await;
}

#[tokio::test]
async fn metadata_value_size_limit_is_minus_one() {
    let up = Upstream::start().await;
    up.put("big.txt", b"x").await;
    let u = [up.uri("big.txt")];
    up.session
        .patch_metadata(
            &u,
            &[MetadataPatch::set("dav:urn:x|max", "a".repeat(65535))],
        )
        .await
        .expect("65535 bytes");
    expect_code(
        up.session
            .patch_metadata(
                &u,
                &[MetadataPatch::set("dav:urn:x|over", "a".repeat(65536))],
            )
            .await,
        -1,
    );
    let i = up.session.info(&u[0], false).await.expect("info");
    assert_eq!(i.meta("dav:urn:x|max").map(str::len), Some(65535));
    assert!(i.meta("dav:urn:x|over").is_none());
    up.finish().await;
}

#[tokio::test]
async fn metadata_root_is_aggregated_403_and_missing_40016() {
    let up = Upstream::start().await;
    up.put("ok.txt", b"x").await;
    let e = expect_code(
        up.session
            .patch_metadata(&[CrUri::my()], &[MetadataPatch::set("customize:k", "v")])
            .await,
        40081,
    );
    expect_aggregated(&e, &CrUri::my(), 403);
    let missing = up.uri("no such.txt");
    let e = expect_code(
        up.session
            .patch_metadata(
                &[missing.clone(), up.uri("ok.txt")],
                &[MetadataPatch::set("customize:k", "v")],
            )
            .await,
        40081,
    );
    expect_aggregated(&e, &missing, 40016);
    let i = up
        .session
        .info(&up.uri("ok.txt"), false)
        .await
        .expect("info");
    assert_eq!(i.meta("customize:k"), Some("v"), "partial success");
    up.finish().await;
}

#[tokio::test]
async fn metadata_other_users_file_is_refused() {
    let up = Upstream::start().await;
    let Some(_) = up.emulator() else {
        eprintln!("skipped (real server): needs emulator controls");
        up.finish().await;
        return;
    };
    up.put("mine.txt", b"x").await;
    let (_, other) = up.extra_user("meta-other").await;
    let owner = up.session.user().expect("user").id;
    let mut foreign = CrUri::my().with_auth(Some(&owner));
    for s in up.uri("mine.txt").segments() {
        foreign = foreign.join(s).expect("join");
    }
    // Without share support the only way to name another user's file is
    // `id@my`, which the navigator refuses with 403 (UPSTREAM §3.1). (A share URI
    // would reach the owner check, 40082; the emulator has no shares.)
    let e = other
        .patch_metadata(&[foreign], &[MetadataPatch::set("customize:k", "v")])
        .await
        .expect_err("foreign");
    let code = e.api().map(|a| a.code).expect("api error");
    let inner = e
        .aggregated()
        .and_then(|a| a.entries.values().next().map(|x| x.code));
    assert!(
        code == 403 || code == 40082 || inner == Some(403) || inner == Some(40082),
        "{e:?}"
    );
    let i = up
        .session
        .info(&up.uri("mine.txt"), false)
        .await
        .expect("info");
    assert!(i.meta("customize:k").is_none());
    // `info?id=` is owner-only as well.
    let e = other
        .info_by_id(&i.id, false)
        .await
        .expect_err("not the owner");
    assert!(e.is_permission_denied(), "{e:?}");
    up.finish().await;
}

#[tokio::test]
async fn metadata_removals_apply_after_upserts() {
    let up = Upstream::start().await;
    up.put("r.txt", b"x").await;
    let u = [up.uri("r.txt")];
    up.session
        .patch_metadata(&u, &[MetadataPatch::set("customize:keep", "1")])
        .await
        .expect("patch");
    up.session
        .patch_metadata(
            &u,
            &[
                MetadataPatch::remove("customize:k"),
                MetadataPatch::set("customize:k", "v"),
                MetadataPatch::set("customize:other", "o"),
                MetadataPatch::remove("customize:keep"),
                MetadataPatch::remove("customize:never-existed"),
            ],
        )
        .await
        .expect("patch");
    let m = up
        .session
        .info(&u[0], false)
        .await
        .expect("info")
        .metadata
        .expect("metadata");
    assert!(!m.contains_key("customize:k"), "removal wins: {m:?}");
    assert!(!m.contains_key("customize:keep"), "{m:?}");
    assert_eq!(m.get("customize:other").map(String::as_str), Some("o"));
    up.finish().await;
}

#[tokio::test]
async fn metadata_dav_values_round_trip_verbatim() {
    let up = Upstream::start().await;
    up.put("d.txt", b"x").await;
    up.mkdir("folder").await;
    let pairs = [
        ("dav:urn:x|foo", r#"{"i":"YmFy"}"#),
        (
            "dav:http://example.com/ns|color",
            r#"{"l":"en","i":"PHg6cmVkIHhtbG5zOng9InVybjp4Ii8+"}"#,
        ),
        ("dav:DAV:|displayname", r#"{"l":"fr"}"#),
        ("dav:|nons", r#"{}"#),
        ("dav:urn:ünï|ключ", r#"{"i":"w6k="}"#),
    ];
    let patches: Vec<MetadataPatch> = pairs
        .iter()
        .map(|(k, v)| MetadataPatch::set(*k, *v))
        .collect();
    up.session
        .patch_metadata(&[up.uri("d.txt"), up.uri("folder")], &patches)
        .await
        .expect("patch");
    let (_, files) = up.session.list_all(&up.base, 0).await.expect("list");
    assert_eq!(files.len(), 2);
    for f in &files {
        for (k, v) in pairs {
            assert_eq!(f.meta(k), Some(v), "list {}: {k}", f.name);
        }
    }
    for rel in ["d.txt", "folder"] {
        let i = up.session.info(&up.uri(rel), false).await.expect("info");
        for (k, v) in pairs {
            assert_eq!(i.meta(k), Some(v), "info {rel}: {k}");
        }
    }
    up.finish().await;
}

#[tokio::test]
async fn metadata_survives_rename_move_trash_restore_overwrite() {
    let up = Upstream::start().await;
    let f = up.put("a/s.txt", b"x").await;
    let key = "dav:urn:x|life";
    let val = r#"{"i":"bGlmZQ=="}"#;
    if let Some(emu) = up.emulator() {
        emu.advance_clock(Duration::from_secs(30));
    }
    up.session
        .patch_metadata(&[up.uri("a/s.txt")], &[MetadataPatch::set(key, val)])
        .await
        .expect("patch");
    let i = up
        .session
        .info(&up.uri("a/s.txt"), false)
        .await
        .expect("info");
    assert_eq!(
        i.updated_at, f.updated_at,
        "metadata does not bump updated_at"
    );
    assert_eq!(i.primary_entity, f.primary_entity);
    up.session
        .rename(&up.uri("a/s.txt"), "t.txt")
        .await
        .expect("rename");
    up.mkdir("b").await;
    up.session
        .move_or_copy(&[up.uri("a/t.txt")], &up.uri("b"), false)
        .await
        .expect("move");
    assert_eq!(
        up.session
            .info(&up.uri("b/t.txt"), false)
            .await
            .expect("i")
            .meta(key),
        Some(val)
    );
    up.session
        .delete(&[up.uri("b/t.txt")], false, false)
        .await
        .expect("trash");
    let t = trash_item(&up, &up.uri("b/t.txt")).await.expect("in trash");
    assert_eq!(t.meta(key), Some(val));
    up.session
        .restore(&[t.uri().expect("uri")])
        .await
        .expect("restore");
    up.put("b/t.txt", b"overwritten").await;
    let i = up
        .session
        .info(&up.uri("b/t.txt"), false)
        .await
        .expect("info");
    assert_eq!(i.meta(key), Some(val), "survives overwrite");
    assert_eq!(i.id, f.id);
    up.finish().await;
}
