//! Files (docs/UPSTREAM.md §4): list, info, create, rename, move/copy,
//! delete, restore.

use std::collections::HashSet;
use std::time::Duration;

use cloudreve_dav::cloudreve::{CrUri, CreateKind, FileResponse, MetadataPatch};
use reqwest::Method;

use crate::emulator_or_skip;
use crate::harness::*;

/// The trash item whose `sys:restore_uri` is `uri`.
pub(crate) async fn trash_item(up: &Upstream, uri: &CrUri) -> Option<FileResponse> {
    let (_, items) = up
        .session
        .list_all(&CrUri::root("trash"), 0)
        .await
        .expect("list trash");
    items.into_iter().find(|f| {
        f.meta("sys:restore_uri")
            .and_then(|r| CrUri::parse(r).ok())
            .is_some_and(|r| &r == uri)
    })
}

// ---------------------------------------------------------------- list

#[tokio::test]
async fn list_folders_first_then_files() {
    let up = Upstream::start().await;
    up.put("a.txt", b"a").await;
    up.mkdir("z-dir").await;
    up.put("b.txt", b"b").await;
    up.mkdir("0-dir").await;
    let (_, files) = up.session.list_all(&up.base, 0).await.expect("list");
    let kinds: Vec<bool> = files.iter().map(|f| f.is_folder()).collect();
    assert_eq!(kinds, vec![true, true, false, false], "{files:?}");
    up.finish().await;
}

#[tokio::test]
async fn list_cursor_pagination_and_max_page_size() {
    let up = Upstream::start().await;
    let mut want = HashSet::new();
    for i in 0..13 {
        up.mkdir(&format!("dir{i:02}")).await;
        want.insert(format!("dir{i:02}"));
    }
    for i in 0..12 {
        let n = format!("f{i:02}.txt");
        up.session
            .create(&up.uri(&n), CreateKind::File, false, None)
            .await
            .expect("create");
        want.insert(n);
    }
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let p = up
            .session
            .list_page(&up.base, 10, token.as_deref())
            .await
            .expect("page");
        pages += 1;
        assert!(p.files.len() <= 10);
        assert!(p.pagination.is_cursor, "{:?}", p.pagination);
        assert!(p.parent.is_some(), "parent on every page");
        seen.extend(p.files.iter().map(|f| (f.is_folder(), f.name.clone())));
        match p.next_token() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
        assert!(pages < 10, "pagination does not end");
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 25);
    let names: HashSet<String> = seen.iter().map(|(_, n)| n.clone()).collect();
    assert_eq!(names, want, "no duplicates, nothing missing");
    let first_file = seen.iter().position(|(d, _)| !d).expect("files");
    assert!(
        seen[first_file..].iter().all(|(d, _)| !d),
        "folders first across pages"
    );
    // A bad cursor is an untyped error.
    expect_code(
        up.session
            .list_page(&up.base, 10, Some("not-a-token"))
            .await,
        -1,
    );
    let emu = emulator_or_skip!(up);
    emu.set_max_page_size(7);
    let p = up
        .session
        .list_page(&up.base, 100, None)
        .await
        .expect("capped");
    assert_eq!(p.files.len(), 7);
    assert!(p.next_token().is_some());
    let (_, all) = up.session.list_all(&up.base, 100).await.expect("all");
    assert_eq!(all.len(), 25);
    up.finish().await;
}

#[tokio::test]
async fn list_default_page_size_is_100() {
    let up = Upstream::start().await;
    for i in 0..101 {
        up.session
            .create(&up.uri(&format!("e{i:03}")), CreateKind::File, false, None)
            .await
            .expect("create");
    }
    let p = up.session.list_page(&up.base, 0, None).await.expect("page");
    assert_eq!(p.files.len(), 100);
    assert!(p.next_token().is_some());
    up.finish().await;
}

#[tokio::test]
async fn list_parent_and_storage_policy() {
    let up = Upstream::start().await;
    up.mkdir("sub").await;
    let p = up
        .session
        .list_page(&up.uri("sub"), 0, None)
        .await
        .expect("list");
    let parent = p.parent.expect("parent");
    assert_eq!(parent.name, "sub");
    assert!(parent.is_folder());
    assert_eq!(parent.uri().expect("uri"), up.uri("sub"));
    let sp = p.storage_policy.expect("storage_policy");
    assert!(!sp.id.is_empty());
    assert!(p.files.is_empty());
    let root = up
        .session
        .list_page(&CrUri::my(), 1, None)
        .await
        .expect("root");
    let rp = root.parent.expect("root parent");
    assert_eq!(
        (rp.name.as_str(), rp.path.as_deref()),
        ("", Some("cloudreve://my/"))
    );
    up.finish().await;
}

#[tokio::test]
async fn list_file_or_missing_path_40016() {
    let up = Upstream::start().await;
    up.put("f.txt", b"x").await;
    expect_code(up.session.list_page(&up.uri("f.txt"), 0, None).await, 40016);
    expect_code(up.session.list_page(&up.uri("nope"), 0, None).await, 40016);
    expect_code(
        up.session.list_page(&up.uri("nope/deeper"), 0, None).await,
        40016,
    );
    up.finish().await;
}

// ---------------------------------------------------------------- info

#[tokio::test]
async fn info_root_403_missing_40016_and_extended_entities() {
    let up = Upstream::start().await;
    expect_code(up.session.info(&CrUri::my(), false).await, 403);
    expect_code(up.session.info(&up.uri("missing"), false).await, 40016);
    let f = up.put("e.bin", b"hello").await;
    expect_code(up.session.info(&up.uri("e.bin/below"), false).await, 40016);
    let plain = up
        .session
        .info(&up.uri("e.bin"), false)
        .await
        .expect("info");
    assert!(plain.extended_info.is_none());
    assert!(plain.metadata.is_some(), "info always loads metadata");
    let ext = up.session.info(&up.uri("e.bin"), true).await.expect("info");
    let ents = ext.extended_info.expect("extended_info").entities;
    assert!(!ents.is_empty());
    let cur = ents
        .iter()
        .find(|e| Some(&e.id) == f.primary_entity.as_ref())
        .expect("the primary entity is listed");
    assert_eq!(cur.size, 5);
    assert_eq!(cur.kind, 0, "version entity");
    let by_id = up.session.info_by_id(&f.id, false).await.expect("by id");
    assert_eq!(by_id.uri().expect("uri"), up.uri("e.bin"));
    let v = up.raw_authed(Method::GET, "/file/info", None).await;
    assert_eq!(code_of(&v), 40001, "{v}");
    up.finish().await;
}

// ---------------------------------------------------------------- create

#[tokio::test]
async fn create_is_mkdir_p() {
    let up = Upstream::start().await;
    let f = up
        .session
        .create(&up.uri("a/b/c"), CreateKind::Folder, true, None)
        .await
        .expect("create");
    assert!(f.is_folder());
    assert_eq!(up.names("").await, vec!["a".to_string()]);
    assert_eq!(up.names("a").await, vec!["b".to_string()]);
    let g = up
        .session
        .create(&up.uri("x/y/new.txt"), CreateKind::File, true, None)
        .await
        .expect("create file");
    assert!(!g.is_folder());
    assert!(
        up.session
            .info(&up.uri("x/y"), false)
            .await
            .expect("info")
            .is_folder()
    );
    up.finish().await;
}

#[tokio::test]
async fn create_existing_same_type_returned_else_40004() {
    let up = Upstream::start().await;
    let d1 = up.mkdir("d").await;
    let d2 = up
        .session
        .create(&up.uri("d"), CreateKind::Folder, false, None)
        .await
        .expect("existing folder returned");
    assert_eq!(d1.id, d2.id);
    expect_code(
        up.session
            .create(&up.uri("d"), CreateKind::Folder, true, None)
            .await,
        40004,
    );
    expect_code(
        up.session
            .create(&up.uri("d"), CreateKind::File, false, None)
            .await,
        40004,
    );
    let f1 = up.put("f", b"data").await;
    let f2 = up
        .session
        .create(&up.uri("f"), CreateKind::File, false, None)
        .await
        .expect("existing file returned");
    assert_eq!((f1.id.as_str(), f2.size), (f2.id.as_str(), 4));
    expect_code(
        up.session
            .create(&up.uri("f"), CreateKind::File, true, None)
            .await,
        40004,
    );
    expect_code(
        up.session
            .create(&up.uri("f"), CreateKind::Folder, false, None)
            .await,
        40004,
    );
    // Below a file: the parent is not a folder.
    expect_code(
        up.session
            .create(&up.uri("f/x"), CreateKind::Folder, false, None)
            .await,
        403,
    );
    up.finish().await;
}

#[tokio::test]
async fn create_new_file_is_empty_without_blob() {
    let up = Upstream::start().await;
    let f = up
        .session
        .create(&up.uri("empty.txt"), CreateKind::File, true, None)
        .await
        .expect("create");
    assert_eq!(f.size, 0);
    let pe = f.primary_entity.clone().expect("primary_entity");
    assert!(!pe.is_empty());
    let g = up
        .session
        .create(&up.uri("empty2.txt"), CreateKind::File, true, None)
        .await
        .expect("create");
    let d = up.mkdir("dir").await;
    // Entity 0 everywhere.
    assert_eq!(g.primary_entity.as_deref(), Some(pe.as_str()));
    assert_eq!(d.primary_entity.as_deref(), Some(pe.as_str()));
    let ext = up
        .session
        .info(&up.uri("empty.txt"), true)
        .await
        .expect("info");
    assert!(ext.extended_info.expect("ext").entities.is_empty());
    let m = [("customize:note".to_string(), "v".to_string())]
        .into_iter()
        .collect();
    up.session
        .create(&up.uri("meta.txt"), CreateKind::File, true, Some(&m))
        .await
        .expect("create with metadata");
    let h = up
        .session
        .info(&up.uri("meta.txt"), false)
        .await
        .expect("info");
    assert_eq!(h.meta("customize:note"), Some("v"));
    let bad = [("nocolon".to_string(), "v".to_string())]
        .into_iter()
        .collect();
    expect_code(
        up.session
            .create(&up.uri("bad.txt"), CreateKind::File, true, Some(&bad))
            .await,
        40001,
    );
    up.finish().await;
}

// ---------------------------------------------------------------- rename

#[tokio::test]
async fn rename_clash_root_bumps_updated_at_keeps_entity() {
    let up = Upstream::start().await;
    let f = up.put("a.txt", b"a").await;
    up.put("b.txt", b"b").await;
    expect_code(up.session.rename(&up.uri("a.txt"), "b.txt").await, 40004);
    expect_code(up.session.rename(&CrUri::my(), "x").await, 403);
    expect_code(up.session.rename(&up.uri("missing"), "x").await, 40016);
    if let Some(emu) = up.emulator() {
        emu.advance_clock(Duration::from_secs(10));
    }
    let r = up
        .session
        .rename(&up.uri("a.txt"), "c.txt")
        .await
        .expect("rename");
    assert_eq!(r.name, "c.txt");
    assert_eq!(r.id, f.id);
    assert_eq!(r.primary_entity, f.primary_entity);
    let (before, after) = (f.updated_at.expect("ts"), r.updated_at.expect("ts"));
    if up.is_real() {
        assert!(after >= before);
    } else {
        assert!(after > before, "{before} -> {after}");
    }
    // Same name succeeds.
    up.session
        .rename(&up.uri("c.txt"), "c.txt")
        .await
        .expect("same name");
    let mut names = up.names("").await;
    names.sort();
    assert_eq!(names, vec!["b.txt", "c.txt"]);
    up.finish().await;
}

// ---------------------------------------------------------------- move / copy

#[tokio::test]
async fn move_keeps_names_and_ids() {
    let up = Upstream::start().await;
    let f = up.put("src/a.txt", b"a").await;
    let d = up.mkdir("src/sub").await;
    up.put("src/sub/inner.txt", b"i").await;
    up.mkdir("dst").await;
    up.session
        .move_or_copy(
            &[up.uri("src/a.txt"), up.uri("src/sub")],
            &up.uri("dst"),
            false,
        )
        .await
        .expect("move");
    assert!(up.names("src").await.is_empty());
    let mut names = up.names("dst").await;
    names.sort();
    assert_eq!(names, vec!["a.txt", "sub"]);
    assert_eq!(
        up.session
            .info(&up.uri("dst/a.txt"), false)
            .await
            .expect("i")
            .id,
        f.id
    );
    assert_eq!(
        up.session
            .info(&up.uri("dst/sub"), false)
            .await
            .expect("i")
            .id,
        d.id
    );
    assert_eq!(up.get("dst/sub/inner.txt").await, b"i");
    up.finish().await;
}

#[tokio::test]
async fn move_clash_40004_is_all_or_nothing() {
    let up = Upstream::start().await;
    up.put("src/a.txt", b"a").await;
    up.put("src/b.txt", b"b").await;
    up.put("dst/b.txt", b"old").await;
    let e = expect_code(
        up.session
            .move_or_copy(
                &[up.uri("src/a.txt"), up.uri("src/b.txt")],
                &up.uri("dst"),
                false,
            )
            .await,
        40004,
    );
    assert!(e.aggregated().is_none(), "bare, not aggregated");
    let mut names = up.names("src").await;
    names.sort();
    assert_eq!(names, vec!["a.txt", "b.txt"], "nothing moved");
    assert_eq!(up.names("dst").await, vec!["b.txt"]);
    assert_eq!(up.get("dst/b.txt").await, b"old");
    // Copy clashes the same way.
    expect_code(
        up.session
            .move_or_copy(
                &[up.uri("src/a.txt"), up.uri("src/b.txt")],
                &up.uri("dst"),
                true,
            )
            .await,
        40004,
    );
    assert_eq!(up.names("dst").await, vec!["b.txt"]);
    up.finish().await;
}

#[tokio::test]
async fn move_into_own_descendant_is_aggregated_403() {
    let up = Upstream::start().await;
    up.mkdir("d/sub").await;
    let e = expect_code(
        up.session
            .move_or_copy(&[up.uri("d")], &up.uri("d/sub"), false)
            .await,
        40081,
    );
    expect_aggregated(&e, &up.uri("d"), 403);
    let e = expect_code(
        up.session
            .move_or_copy(&[up.uri("d")], &up.uri("d"), false)
            .await,
        40081,
    );
    expect_aggregated(&e, &up.uri("d"), 403);
    assert_eq!(up.names("d").await, vec!["sub"]);
    up.finish().await;
}

#[tokio::test]
async fn move_missing_source_is_partial_success_40081() {
    let up = Upstream::start().await;
    up.put("a.txt", b"a").await;
    up.mkdir("dst").await;
    let missing = up.uri("gone #1 é+x.txt");
    let e = expect_code(
        up.session
            .move_or_copy(&[missing.clone(), up.uri("a.txt")], &up.uri("dst"), false)
            .await,
        40081,
    );
    expect_aggregated(&e, &missing, 40016);
    assert_eq!(e.aggregated().expect("agg").len(), 1);
    assert_eq!(
        up.names("dst").await,
        vec!["a.txt"],
        "the other source moved"
    );
    // Destination errors are bare.
    expect_code(
        up.session
            .move_or_copy(&[up.uri("dst/a.txt")], &up.uri("nowhere"), false)
            .await,
        40016,
    );
    up.put("file", b"f").await;
    expect_code(
        up.session
            .move_or_copy(&[up.uri("dst/a.txt")], &up.uri("file"), false)
            .await,
        403,
    );
    up.finish().await;
}

#[tokio::test]
async fn copy_shares_primary_entity_and_metadata() {
    let up = Upstream::start().await;
    let f = up.put("src/a.txt", b"copy me").await;
    up.session
        .patch_metadata(
            &[up.uri("src/a.txt")],
            &[
                MetadataPatch::set("dav:urn:x|p", r#"{"i":"YmFy"}"#),
                MetadataPatch::set("customize:c", "v"),
            ],
        )
        .await
        .expect("patch");
    up.put("src/sub/b.txt", b"b").await;
    up.mkdir("dst").await;
    up.session
        .move_or_copy(
            &[up.uri("src/a.txt"), up.uri("src/sub")],
            &up.uri("dst"),
            true,
        )
        .await
        .expect("copy");
    let c = up
        .session
        .info(&up.uri("dst/a.txt"), false)
        .await
        .expect("copy");
    assert_ne!(c.id, f.id);
    assert_eq!(
        c.primary_entity, f.primary_entity,
        "copies share the entity"
    );
    assert_eq!(c.size, 7);
    assert_eq!(c.meta("dav:urn:x|p"), Some(r#"{"i":"YmFy"}"#));
    assert_eq!(c.meta("customize:c"), Some("v"));
    assert_eq!(up.get("dst/a.txt").await, b"copy me");
    assert_eq!(up.get("dst/sub/b.txt").await, b"b");
    // Sources stay.
    assert_eq!(up.get("src/a.txt").await, b"copy me");
    // Rewriting the copy gives it its own entity.
    let w = up.put("dst/a.txt", b"changed").await;
    assert_ne!(w.primary_entity, f.primary_entity);
    assert_eq!(up.get("src/a.txt").await, b"copy me");
    up.finish().await;
}

// ---------------------------------------------------------------- delete

#[tokio::test]
async fn delete_soft_moves_to_trash_frees_name_keeps_quota() {
    let up = Upstream::start().await;
    up.put("d/a.txt", b"0123456789").await;
    let used0 = up.session.capacity().await.expect("cap").used;
    up.session
        .delete(&[up.uri("d/a.txt")], false, false)
        .await
        .expect("delete");
    assert!(up.names("d").await.is_empty());
    let t = trash_item(&up, &up.uri("d/a.txt")).await.expect("in trash");
    assert_eq!(t.name, "a.txt", "display name is the original name");
    let tp = t.uri().expect("trash path");
    assert_eq!(tp.fs(), "trash");
    assert_eq!(tp.segments().len(), 1);
    assert_ne!(tp.name(), "a.txt");
    let collect: i64 = t
        .meta("sys:expected_collect_time")
        .expect("collect time")
        .parse()
        .expect("unix seconds");
    let now = chrono::Utc::now().timestamp();
    assert!((collect - now - 604_800).abs() < 3600, "{collect} vs {now}");
    if !up.is_real() {
        // Parallel tests share a real account, so only the emulator is exact.
        assert_eq!(
            up.session.capacity().await.expect("cap").used,
            used0,
            "quota kept"
        );
    }
    // The name is free at once.
    up.put("d/a.txt", b"new").await;
    assert_eq!(up.get("d/a.txt").await, b"new");
    up.finish().await;
}

#[tokio::test]
async fn delete_skip_soft_delete_is_permanent() {
    let up = Upstream::start().await;
    up.put("p.txt", b"0123456789").await;
    let used0 = up.session.capacity().await.expect("cap").used;
    up.session
        .delete(&[up.uri("p.txt")], false, true)
        .await
        .expect("delete");
    assert!(up.names("").await.is_empty());
    assert!(trash_item(&up, &up.uri("p.txt")).await.is_none());
    if !up.is_real() {
        assert_eq!(up.session.capacity().await.expect("cap").used, used0 - 10);
    }
    up.finish().await;
}

#[tokio::test]
async fn delete_unlink_without_permission_403() {
    let up = Upstream::start().await;
    up.put("u.txt", b"x").await;
    if up
        .session
        .user()
        .and_then(|u| u.group)
        .is_some_and(|g| g.permission.get(12))
    {
        eprintln!("skipped: the account has the advance-delete permission");
        up.finish().await;
        return;
    }
    expect_code(up.session.delete(&[up.uri("u.txt")], true, true).await, 403);
    assert_eq!(up.names("").await, vec!["u.txt"]);
    let emu = emulator_or_skip!(up);
    let mut o = emu.user_options(&up.email).expect("user");
    o.advance_delete = true;
    emu.set_user_options(&up.email, o);
    up.session
        .delete(&[up.uri("u.txt")], true, true)
        .await
        .expect("unlink");
    assert!(up.names("").await.is_empty());
    up.finish().await;
}

#[tokio::test]
async fn delete_trash_item_needs_skip_soft_delete() {
    let up = Upstream::start().await;
    up.put("t.txt", b"x").await;
    up.session
        .delete(&[up.uri("t.txt")], false, false)
        .await
        .expect("delete");
    let t = trash_item(&up, &up.uri("t.txt")).await.expect("trash");
    let tu = t.uri().expect("uri");
    let e = expect_code(
        up.session
            .delete(std::slice::from_ref(&tu), false, false)
            .await,
        40081,
    );
    expect_aggregated(&e, &tu, 403);
    up.session
        .delete(std::slice::from_ref(&tu), false, true)
        .await
        .expect("purge");
    assert!(trash_item(&up, &up.uri("t.txt")).await.is_none());
    up.finish().await;
}

#[tokio::test]
async fn delete_missing_is_40081_wrapping_40016() {
    let up = Upstream::start().await;
    up.put("keep.txt", b"x").await;
    up.put("del.txt", b"x").await;
    let missing = up.uri("no such #file%.txt");
    let e = expect_code(
        up.session
            .delete(std::slice::from_ref(&missing), false, false)
            .await,
        40081,
    );
    expect_aggregated(&e, &missing, 40016);
    // A single failure lends its message (4.18: its whole error chain,
    // which contains the entry's own message) to the envelope; several do
    // not.
    let a = e.api().expect("api");
    let inner = a
        .aggregated
        .as_ref()
        .and_then(|g| g.get_uri(&missing))
        .expect("entry");
    assert!(a.msg.contains(&inner.msg), "{a:?}");
    assert!(
        a.correlation_id.is_some() && inner.correlation_id.is_some(),
        "{a:?}"
    );
    let other = up.uri("also missing");
    let e2 = expect_code(
        up.session
            .delete(&[missing.clone(), other.clone()], false, false)
            .await,
        40081,
    );
    assert_eq!(e2.api().expect("api").msg, "One or more operation failed");
    expect_aggregated(&e2, &other, 40016);
    // Partial success.
    let e = expect_code(
        up.session
            .delete(&[missing.clone(), up.uri("del.txt")], false, false)
            .await,
        40081,
    );
    expect_aggregated(&e, &missing, 40016);
    assert_eq!(up.names("").await, vec!["keep.txt"]);
    // The root is refused per URI.
    let e = expect_code(up.session.delete(&[CrUri::my()], false, false).await, 40081);
    expect_aggregated(&e, &CrUri::my(), 403);
    up.finish().await;
}

// ---------------------------------------------------------------- restore

#[tokio::test]
async fn restore_back_to_original_place() {
    let up = Upstream::start().await;
    let f = up.put("d/r.txt", b"restore").await;
    up.session
        .patch_metadata(
            &[up.uri("d/r.txt")],
            &[MetadataPatch::set("customize:k", "v")],
        )
        .await
        .expect("patch");
    up.session
        .delete(&[up.uri("d/r.txt")], false, false)
        .await
        .expect("delete");
    let t = trash_item(&up, &up.uri("d/r.txt")).await.expect("trash");
    assert_eq!(t.meta("customize:k"), Some("v"), "metadata survives trash");
    up.session
        .restore(&[t.uri().expect("uri")])
        .await
        .expect("restore");
    let r = up
        .session
        .info(&up.uri("d/r.txt"), false)
        .await
        .expect("back");
    assert_eq!(r.id, f.id);
    assert_eq!(
        r.meta("customize:k"),
        Some("v"),
        "metadata survives restore"
    );
    assert!(r.meta("sys:restore_uri").is_none());
    assert!(r.meta("sys:expected_collect_time").is_none());
    assert_eq!(up.get("d/r.txt").await, b"restore");
    up.finish().await;
}

#[tokio::test]
async fn restore_clash_40004_and_missing_parent_40016_aggregated() {
    let up = Upstream::start().await;
    up.put("c.txt", b"old").await;
    up.session
        .delete(&[up.uri("c.txt")], false, false)
        .await
        .expect("delete");
    up.put("c.txt", b"new").await;
    let t1 = trash_item(&up, &up.uri("c.txt"))
        .await
        .expect("trash")
        .uri()
        .expect("u");
    up.put("gone/m.txt", b"m").await;
    up.session
        .delete(&[up.uri("gone/m.txt")], false, false)
        .await
        .expect("delete");
    up.session
        .delete(&[up.uri("gone")], false, true)
        .await
        .expect("purge parent");
    let t2 = trash_item(&up, &up.uri("gone/m.txt"))
        .await
        .expect("trash")
        .uri()
        .expect("u");
    let e = expect_code(up.session.restore(&[t1.clone(), t2.clone()]).await, 40081);
    expect_aggregated(&e, &t1, 40004);
    expect_aggregated(&e, &t2, 40016);
    assert_eq!(up.get("c.txt").await, b"new");
    up.finish().await;
}
