//! WebDAV accounts (docs/UPSTREAM.md §6).

use cloudreve_dav::cloudreve::{CrUri, DavAccount, DavAccountOptions};
use reqwest::Method;

use crate::emulator_or_skip;
use crate::harness::*;

fn opts(readonly: bool, proxy: bool) -> DavAccountOptions {
    DavAccountOptions {
        readonly,
        proxy,
        disable_sys_files: false,
    }
}

async fn cleanup(up: &Upstream, accounts: &[DavAccount]) {
    for a in accounts {
        let _ = up.session.delete_dav_account(&a.id).await;
    }
}

#[tokio::test]
async fn dav_accounts_page_size_bounds_40001() {
    let up = Upstream::start().await;
    for q in [
        "",
        "?page_size=9",
        "?page_size=101",
        "?page_size=0",
        "?page_size=abc",
    ] {
        let v = up
            .raw_authed(Method::GET, &format!("/devices/dav{q}"), None)
            .await;
        assert_eq!(code_of(&v), 40001, "{q}: {v}");
    }
    for q in ["?page_size=10", "?page_size=100"] {
        let v = up
            .raw_authed(Method::GET, &format!("/devices/dav{q}"), None)
            .await;
        assert_eq!(code_of(&v), 0, "{q}: {v}");
        assert!(v["data"]["accounts"].is_array(), "{v}");
        assert_eq!(v["data"]["pagination"]["is_cursor"], true, "{v}");
    }
    up.finish().await;
}

#[tokio::test]
async fn dav_accounts_create_shape_list_all_pages_newest_first() {
    let up = Upstream::start().await;
    let before = up.session.list_dav_accounts().await.expect("list");
    let mut made = Vec::new();
    for i in 0..12 {
        let a = up
            .session
            .create_dav_account(&up.base, &format!("contract-{i}"), opts(i == 0, false))
            .await
            .expect("create");
        assert_eq!(a.password.len(), 32, "{a:?}");
        assert!(
            a.password
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
            "{a:?}"
        );
        assert_eq!(CrUri::parse(&a.uri).expect("uri"), up.base);
        assert_eq!(a.name, format!("contract-{i}"));
        made.push(a);
    }
    assert_eq!(made[0].options.to_base64(), "AQ==", "readonly bit 0");
    assert!(made[0].flags().readonly);
    assert_eq!(made[1].options.to_base64(), "", "no options");
    // Raw: the first page of 10 has a cursor.
    let v = up
        .raw_authed(Method::GET, "/devices/dav?page_size=10", None)
        .await;
    assert_eq!(
        v["data"]["accounts"].as_array().map(Vec::len),
        Some(10),
        "{v}"
    );
    let next = v["data"]["pagination"]["next_token"]
        .as_str()
        .expect("next_token")
        .to_string();
    let v2 = up
        .raw_authed(
            Method::GET,
            &format!(
                "/devices/dav?page_size=10&next_page_token={}",
                cloudreve_dav::cloudreve::query_escape(&next)
            ),
            None,
        )
        .await;
    assert_eq!(code_of(&v2), 0, "{v2}");
    assert!(
        !v2["data"]["accounts"]
            .as_array()
            .expect("accounts")
            .is_empty()
    );
    // The client follows every page; newest first.
    let all = up.session.list_dav_accounts().await.expect("list");
    if !up.is_real() {
        // Other tests may add accounts concurrently on a shared real account.
        assert_eq!(all.len(), before.len() + 12);
    }
    let ours: Vec<&str> = all
        .iter()
        .filter(|a| made.iter().any(|m| m.id == a.id))
        .map(|a| a.id.as_str())
        .collect();
    let want: Vec<&str> = made.iter().rev().map(|a| a.id.as_str()).collect();
    assert_eq!(ours, want, "newest first");
    let listed = all.iter().find(|a| a.id == made[3].id).expect("listed");
    assert_eq!(listed.password, made[3].password, "passwords are listed");
    cleanup(&up, &made).await;
    up.finish().await;
}

#[tokio::test]
async fn dav_accounts_need_group_bit_3_40007() {
    let up = Upstream::start().await;
    let emu = emulator_or_skip!(up);
    let mut o = emu.user_options(&up.email).expect("user");
    o.webdav = false;
    emu.set_user_options(&up.email, o);
    expect_code(
        up.session
            .create_dav_account(&up.base, "nope", opts(false, false))
            .await,
        40007,
    );
    up.finish().await;
}

#[tokio::test]
async fn dav_accounts_proxy_dropped_without_bit_6() {
    let up = Upstream::start().await;
    let emu = emulator_or_skip!(up);
    let a = up
        .session
        .create_dav_account(&up.base, "with-proxy", opts(true, true))
        .await
        .expect("create");
    assert_eq!(a.options.to_base64(), "Aw==", "readonly + proxy");
    let mut o = emu.user_options(&up.email).expect("user");
    o.webdav_proxy = false;
    emu.set_user_options(&up.email, o);
    let b = up
        .session
        .create_dav_account(&up.base, "no-proxy", opts(false, true))
        .await
        .expect("create");
    assert!(!b.flags().proxy, "proxy silently dropped: {b:?}");
    assert_eq!(b.options.to_base64(), "");
    up.finish().await;
}

#[tokio::test]
async fn dav_accounts_patch_replaces_options_keeps_password_then_delete() {
    let up = Upstream::start().await;
    let a = up
        .session
        .create_dav_account(&up.base, "patch-me", opts(true, false))
        .await
        .expect("create");
    up.mkdir("sub").await;
    let b = up
        .session
        .update_dav_account(&a.id, &up.uri("sub"), "patched", opts(false, false))
        .await
        .expect("update");
    assert_eq!(b.id, a.id);
    assert_eq!(b.password, a.password, "password kept");
    assert_eq!(b.name, "patched");
    assert_eq!(CrUri::parse(&b.uri).expect("uri"), up.uri("sub"));
    assert!(!b.flags().readonly, "options fully replaced: {b:?}");
    up.session.delete_dav_account(&a.id).await.expect("delete");
    assert!(
        !up.session
            .list_dav_accounts()
            .await
            .expect("list")
            .iter()
            .any(|x| x.id == a.id)
    );
    // Unknown id: code 404; a malformed id: 40001.
    expect_code(
        up.session
            .update_dav_account(&a.id, &up.base, "x", opts(false, false))
            .await,
        404,
    );
    expect_code(up.session.delete_dav_account(&a.id).await, 404);
    expect_code(up.session.delete_dav_account("not-a-hashid!").await, 40001);
    // The root must be in `my` (or a share).
    expect_code(
        up.session
            .create_dav_account(&CrUri::root("trash"), "bad", opts(false, false))
            .await,
        40001,
    );
    up.finish().await;
}
