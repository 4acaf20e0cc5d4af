//! Who is calling: the bearer token of a request checked and turned into
//! the signed-in user (or anonymous).

use axum::http::{HeaderMap, header};

use super::envelope::{ApiError, err};
use super::instance::Inner;

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let t = v.strip_prefix("Bearer ")?;
    if t.starts_with("Cr ") {
        return None;
    }
    Some(t)
}

/// The signed-in user, `None` for anonymous (bad or expired tokens included).
pub(super) fn current_user(inner: &Inner, headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(t) = bearer(headers) else {
        return Ok(None);
    };
    let now = inner.clock.now().timestamp();
    let Some(claims) = super::auth::verify(&inner.secret(), t, now) else {
        return Ok(None);
    };
    if claims["token_type"] != "access" {
        return Err(ApiError::new(40020, "Invalid token type"));
    }
    let Some(uid) = claims["sub"]
        .as_str()
        .and_then(|s| inner.ids.decode(s, super::ids::IdKind::User))
    else {
        return Ok(None);
    };
    let st = inner.lock();
    match st.users.get(&uid) {
        Some(u) if !u.flags.banned && !u.flags.inactive => Ok(Some(uid)),
        _ => Err(ApiError::new(50001, "Failed to find user")),
    }
}

/// The signed-in user or 401.
pub(super) fn require_user(inner: &Inner, headers: &HeaderMap) -> Result<u64, ApiError> {
    current_user(inner, headers)?.ok_or_else(err::login)
}
