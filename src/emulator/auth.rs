//! Tokens (hand-rolled HS256 JWTs) and the session endpoints.

use super::envelope::{ApiError, ok, parse_json};
use super::instance::Inner;
use super::state::User;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// Signs claims as an HS256 JWT.
pub(super) fn sign(secret: &[u8], claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let input = format!("{header}.{payload}");
    let sig = mac(secret, input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

fn mac(secret: &[u8], data: &[u8]) -> Vec<u8> {
    match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mut m) => {
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

/// Verifies signature, `nbf` and `exp`; returns the claims.
pub(super) fn verify(secret: &[u8], token: &str, now: i64) -> Option<Value> {
    let mut parts = token.split('.');
    let (h, p, s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let sig = URL_SAFE_NO_PAD.decode(s).ok()?;
    let input = format!("{h}.{p}");
    let m = Hmac::<Sha256>::new_from_slice(secret).ok()?;
    let mut m = m;
    m.update(input.as_bytes());
    m.verify_slice(&sig).ok()?;
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).ok()?).ok()?;
    let exp = claims.get("exp")?.as_i64()?;
    let nbf = claims.get("nbf").and_then(Value::as_i64).unwrap_or(0);
    if now >= exp || now < nbf {
        return None;
    }
    Some(claims)
}

/// Hash of the user's credentials; refresh tokens die when it changes.
pub(super) fn state_hash(u: &User) -> String {
    let mut h = Sha256::new();
    h.update(u.email.as_bytes());
    h.update([0]);
    h.update(u.password.as_bytes());
    URL_SAFE_NO_PAD.encode(&h.finalize()[..12])
}

/// Issues an access/refresh pair as the `Token` JSON.
pub(super) fn issue(
    inner: &Inner,
    user: &User,
    root: Option<String>,
    access_ttl: i64,
    refresh_ttl: i64,
) -> Value {
    let now = inner.clock.now();
    let ts = now.timestamp();
    let sub = inner.ids.encode(user.id, super::ids::IdKind::User);
    let access = sign(
        &inner.secret(),
        &json!({"token_type":"access","sub":sub,"nbf":ts,"exp":ts + access_ttl,
                "jti": uuid::Uuid::new_v4().to_string()}),
    );
    let root = root.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let refresh = sign(
        &inner.secret(),
        &json!({"token_type":"refresh","sub":sub,"nbf":ts,"exp":ts + refresh_ttl,
                "state_hash":state_hash(user),"root_token_id":root,
                "jti": uuid::Uuid::new_v4().to_string()}),
    );
    if let Ok(mut issued) = inner.issued_tokens.lock() {
        issued.push(access.clone());
        issued.push(refresh.clone());
    }
    let fmt = |secs: i64| super::clock::fmt_time(&(now + chrono::Duration::seconds(secs)));
    json!({"access_token":access,"refresh_token":refresh,
           "access_expires":fmt(access_ttl),"refresh_expires":fmt(refresh_ttl)})
}

/// The `User` JSON.
pub(super) fn user_json(inner: &Inner, u: &User) -> Value {
    let mut bits = vec![];
    if u.flags.webdav {
        bits.push(3);
    }
    if u.flags.archive {
        bits.push(4);
    }
    if u.flags.webdav_proxy {
        bits.push(6);
    }
    if u.flags.advance_delete {
        bits.push(12);
    }
    let status = if u.flags.banned {
        "manual_banned"
    } else if u.flags.inactive {
        "inactive"
    } else {
        "active"
    };
    json!({
        "id": inner.ids.encode(u.id, super::ids::IdKind::User),
        "email": u.email, "nickname": u.nickname, "status": status, "avatar": "",
        "created_at": super::clock::fmt_time(&u.created_at),
        "group": {"id": inner.ids.encode(2, super::ids::IdKind::User), "name": "User",
                  "permission": super::state::boolset(&bits),
                  "direct_link_batch_size": 10, "trash_retention": 604800},
        "language": "en-US", "disable_view_sync": false,
    })
}

fn valid_email(e: &str) -> bool {
    match e.split_once('@') {
        Some((a, b)) => !a.is_empty() && !b.is_empty() && !b.contains('@') && !e.contains(' '),
        None => false,
    }
}

#[derive(Deserialize)]
struct LoginReq {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    captcha: String,
}

/// The captcha answer accepted when the captcha is required.
pub const CAPTCHA_ANSWER: &str = "emulator-captcha";

/// `POST /session/token`.
pub(super) async fn login(State(inner): State<Arc<Inner>>, body: Bytes) -> Response {
    let r = (|| -> Result<Response, ApiError> {
        let req: LoginReq = parse_json(&body)?;
        let plen = req.password.chars().count();
        if !valid_email(&req.email) || !(4..=128).contains(&plen) {
            return Err(ApiError::binding("invalid email or password"));
        }
        let mut st = inner.lock();
        if st.settings.captcha && req.captcha != CAPTCHA_ANSWER {
            return Err(ApiError::new(40026, "CAPTCHA not match."));
        }
        let uid = st.user_by_email(&req.email);
        let user = match uid.and_then(|id| st.users.get(&id)) {
            Some(u) if u.password == req.password => u.clone(),
            _ => return Err(ApiError::new(40080, "Incorrect password or email address")),
        };
        if user.flags.banned {
            return Err(ApiError::new(40017, "This account has been blocked"));
        }
        if user.flags.inactive {
            return Err(ApiError::new(40018, "This account is not activated"));
        }
        if user.flags.otp.is_some() {
            let sid = uuid::Uuid::new_v4().to_string();
            let exp = inner.clock.now() + chrono::Duration::minutes(10);
            st.twofa.insert(sid.clone(), (user.id, exp));
            return Ok(super::envelope::envelope(
                203,
                "2FA required",
                Some(json!(sid)),
            ));
        }
        let (a, r) = (st.settings.access_ttl, st.settings.refresh_ttl);
        drop(st);
        let token = issue(&inner, &user, None, a, r);
        Ok(ok(
            json!({"user": user_json(&inner, &user), "token": token}),
        ))
    })();
    r.unwrap_or_else(ApiError::into_resp)
}

#[derive(Deserialize)]
struct PrepareQ {
    email: Option<String>,
}

/// `GET /session/prepare?email=`.
pub(super) async fn prepare(State(inner): State<Arc<Inner>>, q: axum::http::Uri) -> Response {
    let r = (|| -> Result<Response, ApiError> {
        let pq: PrepareQ = super::envelope::parse_query(q.query())?;
        let email = pq
            .email
            .filter(|e| valid_email(e))
            .ok_or_else(|| ApiError::binding("email is required"))?;
        if inner.lock().user_by_email(&email).is_none() {
            return Err(ApiError::new(404, "User not found"));
        }
        Ok(ok(
            json!({"webauthn_enabled": false, "password_enabled": true}),
        ))
    })();
    r.unwrap_or_else(ApiError::into_resp)
}

#[derive(Deserialize)]
struct TwoFaReq {
    #[serde(default)]
    otp: String,
    #[serde(default)]
    session_id: String,
}

/// `POST /session/token/2fa`.
pub(super) async fn login_2fa(State(inner): State<Arc<Inner>>, body: Bytes) -> Response {
    let r = (|| -> Result<Response, ApiError> {
        let req: TwoFaReq = parse_json(&body)?;
        if req.otp.is_empty() || req.session_id.is_empty() {
            return Err(ApiError::binding("otp and session_id are required"));
        }
        let mut st = inner.lock();
        let now = inner.clock.now();
        let uid = match st.twofa.get(&req.session_id) {
            Some((uid, exp)) if *exp > now => *uid,
            _ => return Err(ApiError::new(404, "Sign in session not exist")),
        };
        let user = st
            .users
            .get(&uid)
            .cloned()
            .ok_or_else(|| ApiError::new(404, "Sign in session not exist"))?;
        if user.flags.otp.as_deref() != Some(req.otp.as_str()) {
            return Err(ApiError::new(40022, "Incorrect 2FA code"));
        }
        st.twofa.remove(&req.session_id);
        let (a, r) = (st.settings.access_ttl, st.settings.refresh_ttl);
        drop(st);
        let token = issue(&inner, &user, None, a, r);
        Ok(ok(
            json!({"user": user_json(&inner, &user), "token": token}),
        ))
    })();
    r.unwrap_or_else(ApiError::into_resp)
}

#[derive(Deserialize)]
struct RefreshReq {
    #[serde(default)]
    refresh_token: String,
}

/// `POST /session/token/refresh`.
pub(super) async fn refresh(State(inner): State<Arc<Inner>>, body: Bytes) -> Response {
    let r = (|| -> Result<Response, ApiError> {
        let req: RefreshReq = parse_json(&body)?;
        if req.refresh_token.is_empty() {
            return Err(ApiError::binding("refresh_token is required"));
        }
        let bad = || ApiError::new(40020, "Failed to issue token pair");
        let now = inner.clock.now().timestamp();
        let claims = verify(&inner.secret(), &req.refresh_token, now).ok_or_else(bad)?;
        if claims["token_type"] != "refresh" {
            return Err(bad());
        }
        let root = claims["root_token_id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let st = inner.lock();
        if st.revoked.contains(&root) {
            return Err(bad());
        }
        let uid = claims["sub"]
            .as_str()
            .and_then(|s| inner.ids.decode(s, super::ids::IdKind::User))
            .ok_or_else(bad)?;
        let user = st.users.get(&uid).cloned().ok_or_else(bad)?;
        if user.flags.banned || user.flags.inactive || claims["state_hash"] != state_hash(&user) {
            return Err(bad());
        }
        let (a, r) = (st.settings.access_ttl, st.settings.refresh_ttl);
        drop(st);
        Ok(ok(issue(&inner, &user, Some(root), a, r)))
    })();
    r.unwrap_or_else(ApiError::into_resp)
}

/// `DELETE /session/token`.
pub(super) async fn sign_out(State(inner): State<Arc<Inner>>, body: Bytes) -> Response {
    let r = (|| -> Result<Response, ApiError> {
        let req: RefreshReq = parse_json(&body)?;
        if req.refresh_token.is_empty() {
            return Err(ApiError::binding("refresh_token is required"));
        }
        let now = inner.clock.now().timestamp();
        let claims = verify(&inner.secret(), &req.refresh_token, now)
            .filter(|c| c["token_type"] == "refresh")
            .ok_or_else(|| ApiError::new(40020, "Invalid refresh token"))?;
        let root = claims["root_token_id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        inner.lock().revoked.insert(root);
        Ok(ok(json!("")))
    })();
    r.unwrap_or_else(ApiError::into_resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwt_round_trip() {
        let t = sign(b"k", &json!({"token_type":"access","exp":100,"nbf":10}));
        assert!(verify(b"k", &t, 50).is_some());
        assert!(verify(b"k", &t, 100).is_none());
        assert!(verify(b"k", &t, 5).is_none());
        assert!(verify(b"other", &t, 50).is_none());
        assert!(verify(b"k", "a.b", 50).is_none());
        let mut bad = t.clone();
        bad.push('x');
        assert!(verify(b"k", &bad, 50).is_none());
    }
}
