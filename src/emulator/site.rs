//! Site and user endpoints: `/site/ping`, `/site/config/{section}`,
//! `/user/me`, `/user/capacity`.

use super::caller::{current_user, require_user};
use super::envelope::{err, ok};
use super::instance::Inner;
use super::tree::{collect_trash, run};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::json;
use std::sync::Arc;

/// `GET /site/ping`.
pub(super) async fn ping() -> Response {
    ok(json!(super::VERSION))
}

/// `GET /site/config/{section}`.
pub(super) async fn site_config(
    State(inner): State<Arc<Inner>>,
    section: Result<Path<String>, axum::extract::rejection::PathRejection>,
    headers: HeaderMap,
) -> Response {
    run(|| {
        let section = section.map(|Path(s)| s).unwrap_or_default();
        let captcha = inner.lock().settings.captcha;
        Ok(match section.as_str() {
            "login" => {
                let mut v = json!({});
                if captcha {
                    v["login_captcha"] = json!(true);
                }
                ok(v)
            }
            "explorer" => {
                ok(json!({"max_batch_size": 3000, "thumbnail_width": 400, "thumbnail_height": 300}))
            }
            "emojis" | "app" => ok(json!({})),
            _ => {
                let uid = current_user(&inner, &headers).ok().flatten();
                let st = inner.lock();
                let user = match uid.and_then(|u| st.users.get(&u)) {
                    Some(u) => super::auth::user_json(&inner, u),
                    None => json!({"id": "", "nickname": "", "created_at": "0001-01-01T00:00:00Z",
                                   "anonymous": true}),
                };
                ok(
                    json!({"instance_id": "emulator", "title": "Cloudreve", "user": user,
                          "captcha_type": "normal"}),
                )
            }
        })
    })
}

/// `GET /user/me`.
pub(super) async fn me(State(inner): State<Arc<Inner>>, headers: HeaderMap) -> Response {
    run(|| {
        let uid = require_user(&inner, &headers)?;
        let st = inner.lock();
        let u = st.users.get(&uid).ok_or_else(err::login)?;
        Ok(ok(super::auth::user_json(&inner, u)))
    })
}

/// Purges trash items whose collect time has passed.
/// `GET /user/capacity`.
pub(super) async fn capacity(State(inner): State<Arc<Inner>>, headers: HeaderMap) -> Response {
    run(|| {
        let uid = require_user(&inner, &headers)?;
        let mut st = inner.lock();
        collect_trash(&inner, &mut st, uid);
        let u = st.users.get(&uid).ok_or_else(err::login)?;
        Ok(ok(json!({"total": u.quota, "used": u.used})))
    })
}
