//! `PATCH /file/metadata` and `DELETE /file/lock`.

use super::caller::current_user;
use super::envelope::{ApiError, aggregate, err, ok_void, parse_json};
use super::ids::IdKind;
use super::instance::Inner;
use super::tree::{
    Target, agg_key, check_batch, check_fs, lreq, parse_uri, resolve, run, take_locks,
};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use std::sync::Arc;

/// Maximum metadata value length.
pub(super) const MAX_META_LEN: usize = 65535;

fn is_color(v: &str) -> bool {
    let hex = |s: &str| s.chars().all(|c| c.is_ascii_hexdigit());
    if let Some(h) = v.strip_prefix('#') {
        return matches!(h.len(), 3 | 4 | 6 | 8) && hex(h);
    }
    let lower = v.to_ascii_lowercase();
    ["rgb(", "rgba(", "hsl(", "hsla("]
        .iter()
        .any(|p| lower.starts_with(p) && lower.ends_with(')'))
}

/// Validates one metadata key/value (UPSTREAM §4.8); errors are 40001.
pub(super) fn validate(
    inner: &Inner,
    key: &str,
    value: &str,
    remove: bool,
) -> Result<(), ApiError> {
    let bad = || ApiError::new(40001, "Invalid metadata key");
    let (cat, rest) = key.split_once(':').ok_or_else(bad)?;
    match cat {
        "sys" => {
            if remove {
                return Err(bad());
            }
            match key {
                "sys:shared_owner" => {
                    inner.ids.decode(value, IdKind::User).ok_or_else(bad)?;
                }
                "sys:shared_redirect" => {
                    let u = super::uri::parse(value).ok_or_else(bad)?;
                    if u.fs != "share" {
                        return Err(bad());
                    }
                }
                _ => return Err(bad()),
            }
        }
        // Open to clients: `dav:` without any check, `thumb:` since 4.18
        // (only `thumb:disabled` means something; any key is accepted).
        "dav" | "thumb" => {}
        "customize" => {
            if !remove && rest == "icon_color" && !is_color(value) {
                return Err(bad());
            }
            if !remove && rest == "emoji" && value.is_empty() {
                return Err(bad());
            }
        }
        "tag" => {
            if rest.is_empty() || (!remove && !value.is_empty() && !is_color(value)) {
                return Err(bad());
            }
        }
        _ => return Err(bad()),
    }
    Ok(())
}

#[derive(Deserialize)]
struct Patch {
    key: Option<String>,
    #[serde(default)]
    value: String,
    #[serde(default)]
    remove: bool,
    #[serde(default)]
    private: bool,
}

#[derive(Deserialize)]
struct PatchReq {
    #[serde(default)]
    uris: Vec<String>,
    #[serde(default)]
    patches: Vec<Patch>,
}

/// `PATCH /file/metadata`.
pub(super) async fn patch(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    run(|| {
        let req: PatchReq = parse_json(&body)?;
        if req.uris.is_empty() {
            return Err(ApiError::binding("uris is required"));
        }
        check_batch(&req.uris)?;
        let mut keys = vec![];
        for p in &req.patches {
            let k = p.key.clone().filter(|k| !k.is_empty());
            let Some(k) = k else {
                return Err(ApiError::binding("key is required"));
            };
            if p.private {
                return Err(ApiError::binding("private must not be true"));
            }
            keys.push(k);
        }
        let user = current_user(&inner, &headers)?;
        let first = parse_uri(&req.uris[0])?;
        let uid = check_fs(&inner, user, &first)?;
        for (p, k) in req.patches.iter().zip(&keys) {
            validate(&inner, k, &p.value, p.remove)?;
        }
        let mut st = inner.lock();
        let mut fails = vec![];
        let mut targets = vec![];
        for raw in &req.uris {
            let r = (|| -> Result<(u64, String, Vec<String>), ApiError> {
                let u = parse_uri(raw)?;
                check_fs(&inner, Some(uid), &u)?;
                match resolve(&st, uid, &u)? {
                    Target::My(id, segs) => {
                        if segs.is_empty() {
                            return Err(err::unsupported());
                        }
                        Ok((id, "my".into(), segs))
                    }
                    Target::TrashItem(n, id) => Ok((id, "trash".into(), vec![n])),
                    Target::TrashRoot => Err(err::unsupported()),
                }
            })();
            match r {
                Ok(t) => targets.push(t),
                Err(e) => fails.push((agg_key(raw), e)),
            }
        }
        let reqs: Vec<_> = targets
            .iter()
            .map(|(id, fs, segs)| {
                let folder = st.files.get(id).is_some_and(|n| n.folder);
                lreq(uid, fs, segs, true, folder, "updateMetadata")
            })
            .collect();
        let locks = take_locks(&inner, &mut st, &reqs)?;
        let too_long = req
            .patches
            .iter()
            .any(|p| !p.remove && p.value.len() > MAX_META_LEN);
        if too_long && !targets.is_empty() {
            st.locks.release(&locks);
            return Err(err::untyped());
        }
        for (id, ..) in &targets {
            if let Some(n) = st.files.get_mut(id) {
                for (p, k) in req.patches.iter().zip(&keys) {
                    if !p.remove {
                        n.metadata.insert(k.clone(), p.value.clone());
                    }
                }
                for (p, k) in req.patches.iter().zip(&keys) {
                    if p.remove {
                        n.metadata.remove(k);
                    }
                }
            }
        }
        st.locks.release(&locks);
        inner.touch();
        if fails.is_empty() {
            Ok(ok_void())
        } else {
            Err(aggregate(fails))
        }
    })
}

#[derive(Deserialize)]
struct UnlockReq {
    #[serde(default)]
    tokens: Vec<String>,
}

/// `DELETE /file/lock` (no auth check).
pub(super) async fn unlock(State(inner): State<Arc<Inner>>, body: Bytes) -> Response {
    run(|| {
        let req: UnlockReq = parse_json(&body)?;
        if req.tokens.is_empty() || req.tokens.len() > 16384 {
            return Err(ApiError::binding("tokens is required"));
        }
        let mut st = inner.lock();
        super::upload::sweep(&inner, &mut st);
        if !st.locks.unlock(&req.tokens) {
            return Err(ApiError::new(40001, "failed to unlock file"));
        }
        Ok(ok_void())
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn colors() {
        assert!(super::is_color("#fff"));
        assert!(super::is_color("#A0B1C2"));
        assert!(super::is_color("rgb(1,2,3)"));
        assert!(!super::is_color("red!"));
        assert!(!super::is_color("#12"));
    }
}
