//! Envelope and auth (docs/UPSTREAM.md §1.2–§1.5, §2), the envelope parts
//! of errors and batches (§1.4, §8) and the site endpoints (§2.6).

use std::time::Duration;

use cloudreve_dav::cloudreve::{Client, CreateKind, Error, ErrorCode, Token};
use cloudreve_dav::emulator::{Fault, FaultKind, LockOwner, LockSpec};
use reqwest::Method;
use serde_json::json;

use crate::emulator_or_skip;
use crate::harness::*;

#[tokio::test]
async fn envelope_void_success_has_no_data() {
    let up = Upstream::start().await;
    up.put("v.txt", b"x").await;
    let v = up
        .raw_authed(
            Method::PATCH,
            "/file/metadata",
            Some(json!({"uris":[up.uri("v.txt").to_string()],
                        "patches":[{"key":"customize:k","value":"v"}]})),
        )
        .await;
    assert_eq!(code_of(&v), 0, "{v}");
    assert!(v.get("data").is_none(), "void success carries no data: {v}");
    assert!(v.get("correlation_id").is_none(), "{v}");
    let v = up
        .raw_authed(
            Method::DELETE,
            "/file",
            Some(json!({"uris":[up.uri("v.txt").to_string()]})),
        )
        .await;
    assert_eq!(code_of(&v), 0, "{v}");
    assert!(v.get("data").is_none(), "{v}");
    assert_eq!(v["msg"], "", "{v}");
    up.finish().await;
}

#[tokio::test]
async fn envelope_binding_error_40001_without_correlation_id() {
    let up = Upstream::start().await;
    // `type` must be file|folder: a binding failure.
    let v = up
        .raw_authed(
            Method::POST,
            "/file/create",
            Some(json!({"uri": up.uri("b").to_string(), "type": "bogus"})),
        )
        .await;
    assert_eq!(code_of(&v), 40001, "{v}");
    assert!(
        v.get("correlation_id").is_none(),
        "binding errors have no cid: {v}"
    );
    // Other errors carry a correlation id, surfaced by the client.
    let e = expect_code(up.session.info(&up.uri("missing"), false).await, 40016);
    assert!(
        e.api().and_then(|a| a.correlation_id.clone()).is_some(),
        "{e:?}"
    );
    up.finish().await;
}

#[tokio::test]
async fn envelope_unknown_route_is_http_404_text() {
    let up = Upstream::start().await;
    let resp = up
        .http
        .get(up.api("/no/such/route"))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.text().await.expect("body"), "404 page not found");
    // A known path with an unrouted method is the same gin 404.
    let resp = up
        .http
        .get(up.api("/file/create"))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.text().await.expect("body"), "404 page not found");
    // Through the typed client: a base URL with a bogus prefix is answered
    // by Cloudreve's web front end (HTML, HTTP 200), which the client names.
    let c = Client::new(&format!("{}/bogus-prefix", up.url())).expect("client");
    match c.ping().await {
        Err(Error::Decode { message, .. }) => {
            assert!(message.contains("HTML page"), "{message}");
        }
        other => panic!("expected an HTML-page error, got {other:?}"),
    }
    up.finish().await;
}

#[tokio::test]
async fn envelope_code_minus_one_is_an_error() {
    let up = Upstream::start().await;
    let emu = emulator_or_skip!(up);
    emu.add_fault(Fault {
        method: None,
        path_prefix: "/api/v4/user/capacity".into(),
        kind: FaultKind::CodeMinusOne,
        times: Some(1),
    });
    let e = expect_code(up.session.capacity().await, -1);
    assert!(e.is(ErrorCode::NotSet));
    // The fault fired once; the next call succeeds.
    up.session.capacity().await.expect("capacity");
    up.finish().await;
}

#[tokio::test]
async fn auth_garbage_token_is_anonymous() {
    let up = Upstream::start().await;
    let bad = Some("not-a-jwt");
    for p in ["/user/me", "/user/capacity"] {
        let v = up.raw_json(Method::GET, p, None, bad).await;
        assert_eq!(code_of(&v), 401, "{p}: {v}");
    }
    let q = format!("/file?uri={}", up.base.to_query_value());
    let v = up.raw_json(Method::GET, &q, None, bad).await;
    assert_eq!(code_of(&v), 401, "{v}");
    let v = up
        .raw_json(
            Method::POST,
            "/file/create",
            Some(json!({"uri": up.uri("anon").to_string(), "type":"folder"})),
            bad,
        )
        .await;
    assert_eq!(code_of(&v), 401, "{v}");
    // DELETE /file/lock works anonymously: an unknown token is a plain 40001.
    let v = up
        .raw_json(
            Method::DELETE,
            "/file/lock",
            Some(json!({"tokens":[uuid::Uuid::new_v4().to_string()]})),
            bad,
        )
        .await;
    assert_eq!(code_of(&v), 40001, "{v}");
    // A session with a dead token pair cannot recover.
    let s = up.client.session_from_token(Token {
        access_token: "garbage".into(),
        refresh_token: "garbage".into(),
        access_expires: chrono::Utc::now().fixed_offset() + chrono::Duration::hours(1),
        refresh_expires: chrono::Utc::now().fixed_offset() + chrono::Duration::days(1),
    });
    let e = s.user_me().await.expect_err("dead session");
    assert!(e.is_login_required(), "{e:?}");
    up.finish().await;
}

#[tokio::test]
async fn auth_delete_lock_works_anonymously() {
    let up = Upstream::start().await;
    let emu = emulator_or_skip!(up);
    up.put("l.txt", b"x").await;
    let token = emu.inject_lock(
        &up.email,
        &up.owner_path("l.txt"),
        LockSpec {
            owner: LockOwner::Other("create".into()),
            zero_depth: false,
            ttl: None,
        },
    );
    let v = up
        .raw_json(
            Method::DELETE,
            "/file/lock",
            Some(json!({ "tokens": [token] })),
            Some("garbage"),
        )
        .await;
    assert_eq!(code_of(&v), 0, "{v}");
    assert!(emu.active_locks(&up.email).is_empty());
    up.finish().await;
}

#[tokio::test]
async fn auth_refresh_token_as_bearer_40020() {
    let up = Upstream::start().await;
    let t = up.session.token().await;
    for p in ["/user/me", "/user/capacity", "/site/ping"] {
        let v = up
            .raw_json(Method::GET, p, None, Some(&t.refresh_token))
            .await;
        assert_eq!(code_of(&v), 40020, "{p}: {v}");
    }
    let q = format!("/file?uri={}", up.base.to_query_value());
    let v = up
        .raw_json(Method::GET, &q, None, Some(&t.refresh_token))
        .await;
    assert_eq!(code_of(&v), 40020, "{v}");
    up.finish().await;
}

#[tokio::test]
async fn sign_in_returns_user_and_token_pair() {
    let up = Upstream::start().await;
    let v = up
        .raw_json(
            Method::POST,
            "/session/token",
            Some(json!({"email": up.email, "password": up.password})),
            None,
        )
        .await;
    assert_eq!(code_of(&v), 0, "{v}");
    let d = &v["data"];
    assert!(
        d["user"]["id"].as_str().is_some_and(|s| !s.is_empty()),
        "{v}"
    );
    for k in [
        "access_token",
        "refresh_token",
        "access_expires",
        "refresh_expires",
    ] {
        assert!(
            d["token"][k].as_str().is_some_and(|s| !s.is_empty()),
            "{k}: {v}"
        );
    }
    let ae = chrono::DateTime::parse_from_rfc3339(d["token"]["access_expires"].as_str().unwrap())
        .expect("rfc3339");
    let re = chrono::DateTime::parse_from_rfc3339(d["token"]["refresh_expires"].as_str().unwrap())
        .expect("rfc3339");
    assert!(re > ae);
    // E-mail lookup is case-insensitive.
    up.client
        .sign_in(&up.email.to_uppercase(), &up.password)
        .await
        .expect("upper-case e-mail");
    let me = up.session.user_me().await.expect("me");
    assert_eq!(me.id, up.session.user().expect("user").id);
    up.finish().await;
}

#[tokio::test]
async fn sign_in_wrong_credentials_40080() {
    let up = Upstream::start().await;
    expect_code(up.client.sign_in(&up.email, "wrong-password").await, 40080);
    expect_code(
        up.client
            .sign_in("nobody-contract@example.com", "wrong-password")
            .await,
        40080,
    );
    up.finish().await;
}

#[tokio::test]
async fn sign_in_2fa_user_gets_203_and_otp_is_checked() {
    let up = Upstream::start().await;
    let emu = emulator_or_skip!(up);
    let (email, _) = up.extra_user("tfa").await;
    let mut o = emu.user_options(&email).expect("user");
    o.otp = Some("123456".into());
    emu.set_user_options(&email, o);
    let v = up
        .raw_json(
            Method::POST,
            "/session/token",
            Some(json!({"email": email, "password": PASSWORD})),
            None,
        )
        .await;
    assert_eq!(code_of(&v), 203, "{v}");
    assert!(v["data"].as_str().is_some_and(|s| !s.is_empty()), "{v}");
    let sid = match up.client.sign_in(&email, PASSWORD).await {
        Err(Error::TwoFactorRequired { session_id }) => session_id,
        other => panic!("expected 2FA, got {other:?}"),
    };
    expect_code(up.client.sign_in_2fa("000000", &sid).await, 40022);
    let s = up.client.sign_in_2fa("123456", &sid).await.expect("2fa");
    s.user_me().await.expect("me");
    up.finish().await;
}

#[tokio::test]
async fn sign_in_captcha_required_40026() {
    let up = Upstream::start().await;
    let emu = emulator_or_skip!(up);
    assert!(!up.client.login_config().await.expect("cfg").login_captcha);
    emu.set_captcha_required(true);
    assert!(up.client.login_config().await.expect("cfg").login_captcha);
    expect_code(up.client.sign_in(&up.email, &up.password).await, 40026);
    let v = up
        .raw_json(
            Method::POST,
            "/session/token",
            Some(json!({"email": up.email, "password": up.password,
                        "captcha": cloudreve_dav::emulator::CAPTCHA_ANSWER, "ticket": "t"})),
            None,
        )
        .await;
    assert_eq!(code_of(&v), 0, "{v}");
    up.finish().await;
}

async fn raw_refresh(up: &Upstream, rt: &str) -> serde_json::Value {
    up.raw_json(
        Method::POST,
        "/session/token/refresh",
        Some(json!({ "refresh_token": rt })),
        None,
    )
    .await
}

#[tokio::test]
async fn refresh_rotates_and_old_refresh_stays_valid() {
    let up = Upstream::start().await;
    let t0 = up.session.token().await;
    let v = raw_refresh(&up, &t0.refresh_token).await;
    assert_eq!(code_of(&v), 0, "{v}");
    let r1 = v["data"]["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_string();
    let a1 = v["data"]["access_token"]
        .as_str()
        .expect("access")
        .to_string();
    assert!(v["data"]["access_expires"].is_string() && v["data"]["refresh_expires"].is_string());
    // Cloudreve 4.18 re-issues the same claims with new expiry times, so a
    // refresh within the same second may hand back identical strings: a
    // client must not rely on the pair changing. The old refresh token
    // still works, and so does the new one.
    assert_eq!(code_of(&raw_refresh(&up, &t0.refresh_token).await), 0);
    assert_eq!(code_of(&raw_refresh(&up, &r1).await), 0);
    let me = up.raw_json(Method::GET, "/user/me", None, Some(&a1)).await;
    assert_eq!(code_of(&me), 0, "{me}");
    // The client's explicit refresh swaps its pair.
    let before = up.session.refresh_count();
    up.session.refresh().await.expect("refresh");
    assert_eq!(up.session.refresh_count(), before + 1);
    assert_eq!(code_of(&raw_refresh(&up, &r1).await), 0);
    up.finish().await;
}

#[tokio::test]
async fn refresh_invalid_or_expired_40020() {
    let up = Upstream::start().await;
    assert_eq!(code_of(&raw_refresh(&up, "garbage").await), 40020);
    // An access token is not a refresh token.
    let a = up.access_token().await;
    assert_eq!(code_of(&raw_refresh(&up, &a).await), 40020);
    let Some(emu) = up.emulator() else {
        eprintln!("skipped (real server): needs emulator controls");
        up.finish().await;
        return;
    };
    let rt = up.session.token().await.refresh_token;
    emu.advance_clock(Duration::from_secs(15 * 86400 + 60));
    assert_eq!(code_of(&raw_refresh(&up, &rt).await), 40020);
    up.finish().await;
}

#[tokio::test]
async fn sign_out_revokes_refresh_but_not_access() {
    let up = Upstream::start().await;
    let s = up
        .client
        .sign_in(&up.email, &up.password)
        .await
        .expect("sign in");
    let t = s.token().await;
    // A refresh descendant of the same sign-in dies with it.
    let child = raw_refresh(&up, &t.refresh_token).await;
    let child_rt = child["data"]["refresh_token"]
        .as_str()
        .expect("rt")
        .to_string();
    let v = up
        .raw_json(
            Method::DELETE,
            "/session/token",
            Some(json!({"refresh_token": t.refresh_token})),
            None,
        )
        .await;
    assert_eq!(code_of(&v), 0, "{v}");
    assert_eq!(code_of(&raw_refresh(&up, &t.refresh_token).await), 40020);
    assert_eq!(code_of(&raw_refresh(&up, &child_rt).await), 40020);
    let me = up
        .raw_json(Method::GET, "/user/me", None, Some(&t.access_token))
        .await;
    assert_eq!(code_of(&me), 0, "access token survives sign-out: {me}");
    // The client's sign_out on another sign-in.
    let s2 = up
        .client
        .sign_in(&up.email, &up.password)
        .await
        .expect("sign in");
    let t2 = s2.token().await;
    s2.sign_out().await.expect("sign out");
    assert!(
        matches!(s2.capacity().await, Err(Error::SignInRequired)),
        "a signed-out session fails fast"
    );
    assert_eq!(code_of(&raw_refresh(&up, &t2.refresh_token).await), 40020);
    // The main session is unaffected.
    up.session.capacity().await.expect("capacity");
    drop(s);
    up.finish().await;
}

#[tokio::test]
async fn clock_access_expiry_is_refreshed_single_flight() {
    let up = Upstream::start().await;
    let emu = emulator_or_skip!(up);
    up.session.capacity().await.expect("capacity");
    let before = up.session.refresh_count();
    let old = up.access_token().await;
    emu.advance_clock(Duration::from_secs(2 * 3600));
    // The old access token is now anonymous.
    let v = up.raw_json(Method::GET, "/user/me", None, Some(&old)).await;
    assert_eq!(code_of(&v), 401, "{v}");
    let mut tasks = Vec::new();
    for i in 0..8 {
        let s = up.session.clone();
        let uri = up.uri(&format!("c{i}"));
        tasks.push(tokio::spawn(async move {
            s.capacity().await?;
            s.create(&uri, CreateKind::Folder, false, None).await
        }));
    }
    for t in tasks {
        tokio::time::timeout(WAIT, t)
            .await
            .expect("bounded")
            .expect("join")
            .expect("call after expiry");
    }
    assert_eq!(up.session.refresh_count(), before + 1, "one shared refresh");
    assert_ne!(up.access_token().await, old);
    up.finish().await;
}

#[tokio::test]
async fn clock_refresh_expiry_falls_back_to_password_sign_in() {
    let up = Upstream::start().await;
    let emu = emulator_or_skip!(up);
    emu.advance_clock(Duration::from_secs(20 * 86400));
    up.session.capacity().await.expect("re-signed in");
    up.finish().await;
}

#[tokio::test]
async fn site_ping_and_config() {
    let up = Upstream::start().await;
    let v = up.client.ping().await.expect("ping");
    assert!(v.starts_with('4'), "version {v}");
    let raw = up.raw_json(Method::GET, "/site/ping", None, None).await;
    assert_eq!(raw["data"], v.as_str());
    let login = up.client.login_config().await.expect("login config");
    assert!(
        !login.login_captcha,
        "the harness user signs in without captcha"
    );
    let ex = up.client.explorer_config().await.expect("explorer config");
    let mbs = ex.max_batch_size.expect("max_batch_size");
    if !up.is_real() {
        assert_eq!(mbs, 3000);
    }
    assert!(mbs > 0);
    up.finish().await;
}

#[tokio::test]
async fn user_me_and_capacity_shapes() {
    let up = Upstream::start().await;
    let me = up.session.user_me().await.expect("me");
    assert!(!me.id.is_empty());
    let g = me.group.expect("group");
    if !up.is_real() {
        assert!(g.permission.get(3), "emulator users have WebDAV");
    }
    let c = up.session.capacity().await.expect("capacity");
    assert!(c.total > 0 && c.used >= 0, "{c:?}");
    up.finish().await;
}
