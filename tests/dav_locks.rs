//! Gateway locks across restarts, and Cloudreve's own locks (issue 4,
//! items 4 and 5): 423 bodies naming the holder, LOCK refused on an
//! upstream-locked file, force unlock with the upstream token.

use std::time::Duration;

use crate::dav_common::{EMAIL, Gw};
use cloudreve_dav::emulator::{LockOwner, LockSpec};

const LOCKINFO: &str = r#"<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner><D:href>mailto:office@example.com</D:href></D:owner></D:lockinfo>"#;

#[tokio::test]
async fn lock_survives_a_gateway_restart() {
    let mut gw = Gw::start().await;
    assert_eq!(gw.put("/report.docx", "v1").await, 201);
    let r = gw
        .req("LOCK", "/report.docx")
        .header("timeout", "Infinite")
        .body(LOCKINFO)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let token = r.headers()["lock-token"].to_str().unwrap().to_string();
    let body = r.text().await.unwrap();
    // Infinite → the configured cap (default one day), not dav-server's 600 s.
    assert!(body.contains("Second-86400"), "{body}");
    assert!(gw.state.join("locks.json").exists());

    gw.restart_gateway().await;
    assert_eq!(
        gw.gateway.locks().count(),
        1,
        "lock loaded from the state dir"
    );
    assert_eq!(gw.put("/report.docx", "intruder").await, 423);
    let r = gw
        .req("PUT", "/report.docx")
        .header("if", format!("({token})"))
        .body("v2")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        gw.up.file_bytes(EMAIL, "/report.docx").await,
        Some(b"v2".to_vec())
    );
    let (s, pf) = gw.propfind("/report.docx", "0").await;
    assert_eq!(s, 207);
    assert!(pf.contains("mailto:office@example.com"), "{pf}");
    assert!(
        pf.contains(token.trim_matches(|c| c == '<' || c == '>')),
        "{pf}"
    );

    // Refresh and UNLOCK still work after the restart; the unlock persists.
    let r = gw
        .req("LOCK", "/report.docx")
        .header("if", format!("({token})"))
        .header("timeout", "Second-120")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = gw
        .req("UNLOCK", "/report.docx")
        .header("lock-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    gw.restart_gateway().await;
    assert_eq!(gw.gateway.locks().count(), 0);
    assert_eq!(gw.put("/report.docx", "v3").await, 204);
    gw.stop().await;
}

fn spec(owner: LockOwner) -> LockSpec {
    LockSpec {
        owner,
        zero_depth: true,
        ttl: Some(Duration::from_secs(1800)),
    }
}

async fn unlock(gw: &Gw, path: &str, token: &str) -> u16 {
    gw.req("UNLOCK", path)
        .header("lock-token", format!("<{token}>"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn viewer_lock_is_423_naming_the_web_editor_and_force_unlock_clears_it() {
    let gw = Gw::start().await;
    crate::skip_on_real!(gw.up, "injects a Cloudreve lock held by the web editor");
    assert_eq!(gw.put("/doc.txt", "v1").await, 201);
    let up = gw.up.inject_lock(
        EMAIL,
        "/doc.txt",
        spec(LockOwner::Viewer {
            viewer_id: "monaco".into(),
        }),
    );
    assert!(!up.is_empty());
    let r = gw.req("PUT", "/doc.txt").body("v2").send().await.unwrap();
    assert_eq!(r.status(), 423);
    let body = r.text().await.unwrap();
    assert!(body.contains("<D:error xmlns:D=\"DAV:\""), "{body}");
    assert!(
        body.contains("<D:lock-token-submitted><D:href>/doc.txt</D:href>"),
        "{body}"
    );
    assert!(body.contains("Cloudreve web editor"), "{body}");
    let shown = format!("opaquelocktoken:{up}");
    assert!(body.contains(&shown), "{body}");

    // LOCK on the upstream-locked file: 423 no-conflicting-lock.
    let r = gw
        .req("LOCK", "/doc.txt")
        .body(LOCKINFO)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 423);
    let body = r.text().await.unwrap();
    assert!(body.contains("no-conflicting-lock"), "{body}");
    assert!(body.contains("Cloudreve web editor"), "{body}");
    assert_eq!(gw.gateway.locks().count(), 0);

    // Force unlock with the shown token, then the PUT works.
    assert_eq!(unlock(&gw, "/doc.txt", &shown).await, 204);
    assert!(gw.up.active_locks(EMAIL).is_empty());
    assert_eq!(gw.put("/doc.txt", "v2").await, 204);
    assert_eq!(
        gw.up.file_bytes(EMAIL, "/doc.txt").await,
        Some(b"v2".to_vec())
    );
    // An unknown upstream token: 409, nothing else changes.
    assert_eq!(unlock(&gw, "/doc.txt", &shown).await, 409);
    gw.stop().await;
}

#[tokio::test]
async fn upload_and_dav_locks_name_their_holders() {
    let gw = Gw::start().await;
    crate::skip_on_real!(
        gw.up,
        "injects Cloudreve locks of an upload and of its own /dav"
    );
    assert_eq!(gw.put("/up.bin", "v1").await, 201);
    assert_eq!(gw.put("/dav.txt", "v1").await, 201);
    let up = gw.up.inject_lock(EMAIL, "/up.bin", spec(LockOwner::Upload));
    let dav = gw.up.inject_lock(
        EMAIL,
        "/dav.txt",
        spec(LockOwner::Dav {
            inner_xml: "<D:href>mailto:libre@example.com</D:href>".into(),
        }),
    );
    let r = gw.req("PUT", "/up.bin").body("v2").send().await.unwrap();
    assert_eq!(r.status(), 423);
    let body = r.text().await.unwrap();
    assert!(body.contains("upload in progress"), "{body}");
    assert!(body.contains(&up), "{body}");
    let r = gw.req("DELETE", "/dav.txt").send().await.unwrap();
    assert_eq!(r.status(), 423);
    let body = r.text().await.unwrap();
    assert!(body.contains("Cloudreve /dav client"), "{body}");
    assert!(body.contains("mailto:libre@example.com"), "{body}");
    assert!(body.contains(&dav), "{body}");

    // The bare UUID is accepted too.
    assert_eq!(unlock(&gw, "/up.bin", &up).await, 204);
    assert_eq!(gw.put("/up.bin", "v2").await, 204);
    assert_eq!(
        unlock(&gw, "/dav.txt", &format!("opaquelocktoken:{dav}")).await,
        204
    );
    let r = gw.req("DELETE", "/dav.txt").send().await.unwrap();
    assert_eq!(r.status(), 204);
    gw.stop().await;
}

#[tokio::test]
async fn locks_cli_lists_removes_and_force_unlocks() {
    let gw = Gw::start().await;
    crate::skip_on_real!(gw.up, "injects a Cloudreve lock to force-unlock");
    assert_eq!(gw.put("/cli.txt", "v1").await, 201);
    let r = gw
        .req("LOCK", "/cli.txt")
        .body(LOCKINFO)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let token = r.headers()["lock-token"].to_str().unwrap().to_string();
    let args = cloudreve_dav::config::ServeArgs {
        upstream: Some(gw.up.url()),
        state_dir: Some(gw.state.clone()),
        ..Default::default()
    };
    let config = cloudreve_dav::config::load_with_env(&args, &|k: &str| match k {
        "CLOUDREVE_DAV_USER_EMAIL" => Some(EMAIL.to_string()),
        "CLOUDREVE_DAV_USER_PASSWORD" => Some(crate::dav_common::CR_PASSWORD.to_string()),
        _ => None,
    })
    .expect("config");
    let listed = cloudreve_dav::cli::locks::list(&config)
        .await
        .expect("list");
    assert_eq!(listed.len(), 1);
    assert!(listed[0].contains("/cli.txt") && listed[0].contains("office@example.com"));
    let done = cloudreve_dav::cli::locks::unlock(&config, &token, None)
        .await
        .expect("unlock gateway lock");
    assert!(done.contains("removed gateway lock"), "{done}");
    assert!(
        cloudreve_dav::cli::locks::list(&config)
            .await
            .unwrap()
            .is_empty()
    );

    let up = gw
        .up
        .inject_lock(EMAIL, "/cli.txt", spec(LockOwner::Upload));
    let done = cloudreve_dav::cli::locks::unlock(&config, &format!("opaquelocktoken:{up}"), None)
        .await
        .expect("force unlock");
    assert!(done.contains("force-unlocked"), "{done}");
    assert!(gw.up.active_locks(EMAIL).is_empty());
    assert!(
        cloudreve_dav::cli::locks::unlock(&config, &up, None)
            .await
            .is_err(),
        "already gone"
    );
    gw.stop().await;
}
