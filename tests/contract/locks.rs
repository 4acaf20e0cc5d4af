//! Locks (docs/UPSTREAM.md §4.9) and batch errors (§1.4, §8).

use cloudreve_dav::cloudreve::{CrUri, CreateKind, DownloadUrlOptions, MetadataPatch};
use cloudreve_dav::emulator::{LockOwner, LockSpec};
use reqwest::Method;
use serde_json::json;

use crate::emulator_or_skip;
use crate::harness::*;

fn infinite(owner: LockOwner) -> LockSpec {
    LockSpec {
        owner,
        zero_depth: false,
        ttl: None,
    }
}

const OWNER_XML: &str = "<D:href>mailto:someone@example.com</D:href>";

#[tokio::test]
async fn lock_conflict_payload_for_a_dav_lock() {
    let up = Upstream::start().await;
    let emu = emulator_or_skip!(up);
    let name = "locked #1 é&.txt";
    up.put(name, b"x").await;
    let token = emu.inject_lock(
        &up.email,
        &up.owner_path(name),
        infinite(LockOwner::Dav {
            inner_xml: OWNER_XML.into(),
        }),
    );
    // Raw payload, exactly.
    let v = up
        .raw_authed(
            Method::POST,
            "/file/rename",
            Some(json!({"uri": up.uri(name).to_string(), "new_name": "other.txt"})),
        )
        .await;
    assert_eq!(code_of(&v), 40073, "{v}");
    assert!(v.get("correlation_id").is_some(), "{v}");
    let data = v["data"].as_array().expect("data list");
    assert_eq!(data.len(), 1, "{v}");
    assert_eq!(
        data[0],
        json!({
            "path": up.uri(name).to_string(),
            "token": token,
            "owner": {"application": {"type": "dav", "inner_xml": OWNER_XML}},
            "type": 0
        }),
        "{v}"
    );
    // Through the client.
    let e = expect_code(up.session.rename(&up.uri(name), "other.txt").await, 40073);
    assert!(e.is_locked());
    let c = &e.lock_conflicts()[0];
    assert_eq!(
        c.path.as_deref().map(|p| CrUri::parse(p).expect("path")),
        Some(up.uri(name))
    );
    assert_eq!(c.token.as_deref(), Some(token.as_str()));
    assert_eq!(c.owner.application.kind, "dav");
    assert_eq!(c.owner.application.inner_xml.as_deref(), Some(OWNER_XML));
    assert_eq!(c.owner.application.viewer_id, None);
    assert_eq!(c.file_type, 0);
    up.finish().await;
}

#[tokio::test]
async fn lock_conflict_payload_for_a_viewer_lock() {
    let up = Upstream::start().await;
    let emu = emulator_or_skip!(up);
    up.put("doc.docx", b"x").await;
    let token = emu.inject_lock(
        &up.email,
        &up.owner_path("doc.docx"),
        LockSpec {
            owner: LockOwner::Viewer {
                viewer_id: "monaco".into(),
            },
            zero_depth: true,
            ttl: Some(std::time::Duration::from_secs(1800)),
        },
    );
    let e = expect_code(
        put_bytes(&up.session, &up.uri("doc.docx"), b"y").await,
        40073,
    );
    let c = &e.lock_conflicts()[0];
    assert_eq!(c.owner.application.kind, "viewer");
    assert_eq!(c.owner.application.viewer_id.as_deref(), Some("monaco"));
    assert_eq!(c.owner.application.inner_xml, None);
    assert_eq!(c.token.as_deref(), Some(token.as_str()));
    // Folder locks report type 1.
    up.mkdir("dir").await;
    emu.inject_lock(
        &up.email,
        &up.owner_path("dir"),
        infinite(LockOwner::Other("create".into())),
    );
    let e = expect_code(up.session.rename(&up.uri("dir"), "dir2").await, 40073);
    assert_eq!(e.lock_conflicts()[0].file_type, 1);
    assert_eq!(e.lock_conflicts()[0].owner.application.kind, "create");
    up.finish().await;
}

#[tokio::test]
async fn lock_conflict_reports_only_the_first_target_and_is_bare() {
    let up = Upstream::start().await;
    let emu = emulator_or_skip!(up);
    up.put("a.txt", b"a").await;
    up.put("b.txt", b"b").await;
    up.put("c.txt", b"c").await;
    let ta = emu.inject_lock(
        &up.email,
        &up.owner_path("a.txt"),
        infinite(LockOwner::Upload),
    );
    emu.inject_lock(
        &up.email,
        &up.owner_path("b.txt"),
        infinite(LockOwner::Upload),
    );
    let e = expect_code(
        up.session
            .delete(
                &[up.uri("a.txt"), up.uri("b.txt"), up.uri("c.txt")],
                false,
                false,
            )
            .await,
        40073,
    );
    assert!(e.aggregated().is_none(), "lock conflicts are bare");
    assert_eq!(e.lock_conflicts().len(), 1);
    assert_eq!(e.lock_conflicts()[0].token.as_deref(), Some(ta.as_str()));
    let mut names = up.names("").await;
    names.sort();
    assert_eq!(names, vec!["a.txt", "b.txt", "c.txt"], "nothing deleted");
    up.finish().await;
}

#[tokio::test]
async fn lock_depth_rules() {
    let up = Upstream::start().await;
    let emu = emulator_or_skip!(up);
    // Rule 2: an infinite lock on an ancestor covers the subtree.
    up.mkdir("inf").await;
    emu.inject_lock(
        &up.email,
        &up.owner_path("inf"),
        infinite(LockOwner::Upload),
    );
    let e = expect_code(
        put_bytes(&up.session, &up.uri("inf/x.txt"), b"x").await,
        40073,
    );
    assert_eq!(
        e.lock_conflicts()[0]
            .path
            .as_deref()
            .map(|p| CrUri::parse(p).expect("p")),
        Some(up.uri("inf"))
    );
    expect_code(
        up.session
            .create(&up.uri("inf/a/b"), CreateKind::Folder, false, None)
            .await,
        40073,
    );
    // A zero-depth lock on a folder does not cover its children.
    up.mkdir("zero").await;
    emu.inject_lock(
        &up.email,
        &up.owner_path("zero"),
        LockSpec {
            owner: LockOwner::Dav {
                inner_xml: String::new(),
            },
            zero_depth: true,
            ttl: None,
        },
    );
    up.put("zero/x.txt", b"x").await;
    // Rule 1: the path itself.
    expect_code(up.session.rename(&up.uri("zero"), "zero2").await, 40073);
    // Rule 3: an infinite request conflicts with any locked descendant.
    up.put("deep/sub/f.txt", b"f").await;
    emu.inject_lock(
        &up.email,
        &up.owner_path("deep/sub/f.txt"),
        LockSpec {
            owner: LockOwner::Upload,
            zero_depth: true,
            ttl: None,
        },
    );
    let e = expect_code(up.session.rename(&up.uri("deep"), "deep2").await, 40073);
    assert_eq!(
        e.lock_conflicts()[0]
            .path
            .as_deref()
            .map(|p| CrUri::parse(p).expect("p")),
        Some(up.uri("deep/sub/f.txt"))
    );
    expect_code(
        up.session.delete(&[up.uri("deep")], false, false).await,
        40073,
    );
    // Every locked descendant is reported for an infinite request.
    up.put("deep/sub/g.txt", b"g").await;
    emu.inject_lock(
        &up.email,
        &up.owner_path("deep/sub/g.txt"),
        LockSpec {
            owner: LockOwner::Upload,
            zero_depth: true,
            ttl: None,
        },
    );
    let e = expect_code(up.session.rename(&up.uri("deep"), "deep2").await, 40073);
    let mut paths: Vec<CrUri> = e
        .lock_conflicts()
        .iter()
        .map(|c| CrUri::parse(c.path.as_deref().expect("path")).expect("p"))
        .collect();
    paths.sort_by_key(|p| p.to_string());
    assert_eq!(
        paths,
        vec![up.uri("deep/sub/f.txt"), up.uri("deep/sub/g.txt")]
    );
    // Metadata takes a zero-depth lock: fine on the ancestor.
    up.session
        .patch_metadata(&[up.uri("deep")], &[MetadataPatch::set("customize:k", "v")])
        .await
        .expect("zero-depth metadata lock");
    // A sibling is unaffected.
    up.put("deep/other.txt", b"o").await;
    up.finish().await;
}

#[tokio::test]
async fn lock_reads_are_never_blocked() {
    let up = Upstream::start().await;
    let emu = emulator_or_skip!(up);
    up.put("r/f.txt", b"read me").await;
    emu.inject_lock(&up.email, &up.owner_path("r"), infinite(LockOwner::Upload));
    up.session
        .info(&up.uri("r/f.txt"), true)
        .await
        .expect("info");
    up.session.list_all(&up.uri("r"), 0).await.expect("list");
    up.session
        .download_url(&up.uri("r/f.txt"), None, DownloadUrlOptions::default())
        .await
        .expect("url");
    assert_eq!(up.get("r/f.txt").await, b"read me");
    up.finish().await;
}

#[tokio::test]
async fn lock_force_unlock_is_all_or_nothing() {
    let up = Upstream::start().await;
    let emu = emulator_or_skip!(up);
    up.put("u.txt", b"x").await;
    let t = emu.inject_lock(
        &up.email,
        &up.owner_path("u.txt"),
        infinite(LockOwner::Dav {
            inner_xml: OWNER_XML.into(),
        }),
    );
    let unknown = uuid::Uuid::new_v4().to_string();
    expect_code(up.session.force_unlock(&[t.clone(), unknown]).await, 40001);
    assert_eq!(emu.active_locks(&up.email).len(), 1, "nothing unlocked");
    expect_code(up.session.rename(&up.uri("u.txt"), "v.txt").await, 40073);
    up.session
        .force_unlock(std::slice::from_ref(&t))
        .await
        .expect("unlock");
    assert!(emu.active_locks(&up.email).is_empty());
    up.session
        .rename(&up.uri("u.txt"), "v.txt")
        .await
        .expect("free");
    // Unlocking twice: the token is unknown now.
    expect_code(up.session.force_unlock(&[t]).await, 40001);
    up.finish().await;
}

#[tokio::test]
async fn lock_expiry_follows_the_clock() {
    let up = Upstream::start().await;
    let emu = emulator_or_skip!(up);
    up.put("e.txt", b"x").await;
    emu.inject_lock(
        &up.email,
        &up.owner_path("e.txt"),
        LockSpec {
            owner: LockOwner::Viewer {
                viewer_id: "v".into(),
            },
            zero_depth: true,
            ttl: Some(std::time::Duration::from_secs(1800)),
        },
    );
    expect_code(up.session.rename(&up.uri("e.txt"), "f.txt").await, 40073);
    emu.advance_clock(std::time::Duration::from_secs(1801));
    up.session.refresh().await.expect("refresh after the jump");
    up.session
        .rename(&up.uri("e.txt"), "f.txt")
        .await
        .expect("expired lock");
    up.finish().await;
}

#[tokio::test]
async fn lock_restart_drops_all_locks() {
    let mut up = Upstream::start().await;
    if up.is_real() {
        eprintln!("skipped (real server): needs emulator controls");
        up.finish().await;
        return;
    }
    up.put("keep.txt", b"persisted").await;
    let emu = up.emulator().expect("emulator");
    emu.inject_lock(
        &up.email,
        &up.owner_path("keep.txt"),
        infinite(LockOwner::Upload),
    );
    expect_code(up.session.rename(&up.uri("keep.txt"), "k.txt").await, 40073);
    up.restart_emulator().await;
    let emu = up.emulator().expect("emulator");
    assert!(emu.active_locks(&up.email).is_empty());
    // Tokens and files survive a restart; the lock does not.
    assert_eq!(up.get("keep.txt").await, b"persisted");
    up.session
        .rename(&up.uri("keep.txt"), "k.txt")
        .await
        .expect("unlocked");
    // The simulated variant.
    let emu = up.emulator().expect("emulator");
    emu.inject_lock(
        &up.email,
        &up.owner_path("k.txt"),
        infinite(LockOwner::Upload),
    );
    emu.drop_all_locks();
    up.session
        .rename(&up.uri("k.txt"), "j.txt")
        .await
        .expect("unlocked");
    up.finish().await;
}

#[tokio::test]
async fn batch_over_max_batched_file_40074() {
    let up = Upstream::start().await;
    let max = up
        .client
        .explorer_config()
        .await
        .expect("config")
        .max_batch_size
        .expect("max_batch_size") as usize;
    let uris: Vec<CrUri> = (0..=max).map(|i| up.uri(&format!("n{i}"))).collect();
    expect_code(up.session.delete(&uris, false, false).await, 40074);
    expect_code(up.session.restore(&uris).await, 40074);
    up.mkdir("dst").await;
    expect_code(
        up.session.move_or_copy(&uris, &up.uri("dst"), false).await,
        40074,
    );
    expect_code(
        up.session
            .patch_metadata(&uris, &[MetadataPatch::set("customize:k", "v")])
            .await,
        40074,
    );
    // At the limit it is a normal (aggregated) batch.
    let e = expect_code(up.session.delete(&uris[..max], false, false).await, 40081);
    assert_eq!(e.aggregated().expect("agg").len(), max);
    up.finish().await;
}

#[tokio::test]
async fn batch_aggregated_keys_are_normalised() {
    let up = Upstream::start().await;
    // Sent over-escaped / differently escaped; found by the decoded URI.
    let base = up.base.to_string();
    let sent = format!("{base}/%6Eo%20such%2Bfile%21.txt");
    let v = up
        .raw_authed(Method::DELETE, "/file", Some(json!({ "uris": [sent] })))
        .await;
    assert_eq!(code_of(&v), 40081, "{v}");
    let agg = v["aggregated_error"].as_object().expect("aggregated_error");
    assert_eq!(agg.len(), 1);
    let (k, entry) = agg.iter().next().expect("entry");
    assert_eq!(
        CrUri::parse(k).expect("key parses"),
        up.uri("no such+file!.txt")
    );
    assert_eq!(entry["code"], 40016);
    assert!(entry["correlation_id"].is_string() || entry.get("correlation_id").is_none());
    up.finish().await;
}

#[tokio::test]
async fn lock_every_mutating_op_takes_its_locks() {
    let up = Upstream::start().await;
    let emu = emulator_or_skip!(up);
    up.put("src/f.txt", b"f").await;
    up.mkdir("dst").await;
    up.put("other.txt", b"o").await;
    let spec = || {
        infinite(LockOwner::Dav {
            inner_xml: OWNER_XML.into(),
        })
    };
    // A locked source: move, rename, delete, metadata, PUT, upload all fail.
    let t = emu.inject_lock(&up.email, &up.owner_path("src/f.txt"), spec());
    let f = up.uri("src/f.txt");
    expect_code(
        up.session
            .move_or_copy(std::slice::from_ref(&f), &up.uri("dst"), false)
            .await,
        40073,
    );
    expect_code(up.session.rename(&f, "g.txt").await, 40073);
    expect_code(
        up.session
            .delete(std::slice::from_ref(&f), false, false)
            .await,
        40073,
    );
    expect_code(
        up.session
            .delete(std::slice::from_ref(&f), false, true)
            .await,
        40073,
    );
    expect_code(
        up.session
            .patch_metadata(
                std::slice::from_ref(&f),
                &[MetadataPatch::set("customize:k", "v")],
            )
            .await,
        40073,
    );
    expect_code(put_bytes(&up.session, &f, b"new").await, 40073);
    let mut src: &[u8] = b"new";
    expect_code(
        up.session
            .upload(
                &f,
                3,
                &mut src,
                cloudreve_dav::cloudreve::UploadOptions {
                    overwrite: true,
                    ..Default::default()
                },
            )
            .await,
        40073,
    );
    // Copy does not lock its sources.
    up.session
        .move_or_copy(std::slice::from_ref(&f), &up.uri("dst"), true)
        .await
        .expect("copy of a locked source");
    up.session.force_unlock(&[t]).await.expect("unlock");
    // A locked destination name: move and copy fail, create below it too.
    emu.inject_lock(&up.email, &up.owner_path("dst/other.txt"), spec());
    expect_code(
        up.session
            .move_or_copy(&[up.uri("other.txt")], &up.uri("dst"), false)
            .await,
        40073,
    );
    expect_code(
        up.session
            .move_or_copy(&[up.uri("other.txt")], &up.uri("dst"), true)
            .await,
        40073,
    );
    expect_code(
        up.session
            .create(&up.uri("dst/other.txt"), CreateKind::File, true, None)
            .await,
        40073,
    );
    // Metadata under an infinite ancestor lock conflicts (rule 2).
    emu.inject_lock(&up.email, &up.owner_path("src"), spec());
    expect_code(
        up.session
            .patch_metadata(
                &[up.uri("src/f.txt")],
                &[MetadataPatch::set("customize:k", "v")],
            )
            .await,
        40073,
    );
    expect_code(
        up.session
            .patch_metadata(&[up.uri("src")], &[MetadataPatch::set("customize:k", "v")])
            .await,
        40073,
    );
    up.finish().await;
}
