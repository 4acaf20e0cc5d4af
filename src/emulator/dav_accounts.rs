//! WebDAV account management (`/devices/dav`, docs/UPSTREAM.md §6).

use super::caller::require_user;
use super::envelope::{ApiError, err, ok, ok_void, parse_json, parse_query};
use super::ids::IdKind;
use super::instance::Inner;
use super::state::{DavAccount, boolset};
use super::tree::run;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::Rng;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// Random lower-case letters and digits (the alphabet of Cloudreve's
/// generated WebDAV passwords).
pub(super) fn random_letters(n: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut r = rand::thread_rng();
    (0..n)
        .map(|_| ALPHABET[r.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

fn account_json(inner: &Inner, a: &DavAccount) -> Value {
    let mut bits = vec![];
    for (i, byte) in a.options.iter().enumerate() {
        for b in 0..8 {
            if byte & (1 << b) != 0 {
                bits.push(i * 8 + b);
            }
        }
    }
    json!({
        "id": inner.ids.encode(a.id, IdKind::Dav),
        "created_at": super::clock::fmt_time(&a.created_at),
        "name": a.name, "uri": a.uri, "password": a.password,
        "options": boolset(&bits),
    })
}

#[derive(Deserialize)]
struct ListQ {
    page_size: Option<String>,
    next_page_token: Option<String>,
}

/// `GET /devices/dav`.
pub(super) async fn list(State(inner): State<Arc<Inner>>, headers: HeaderMap, q: Uri) -> Response {
    run(|| {
        let uid = require_user(&inner, &headers)?;
        let lq: ListQ = parse_query(q.query())?;
        let size: usize = lq
            .page_size
            .as_deref()
            .and_then(|s| s.parse().ok())
            .filter(|n| (10..=100).contains(n))
            .ok_or_else(|| ApiError::binding("page_size must be 10..100"))?;
        let after: Option<u64> = match lq.next_page_token.as_deref().filter(|t| !t.is_empty()) {
            None => None,
            Some(t) => Some(
                STANDARD
                    .decode(t)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| ApiError::new(-1, ""))?,
            ),
        };
        let st = inner.lock();
        let mine: Vec<&DavAccount> = st
            .dav
            .values()
            .rev()
            .filter(|a| a.owner == uid)
            .filter(|a| after.is_none_or(|x| a.id < x))
            .collect();
        let page: Vec<Value> = mine
            .iter()
            .take(size)
            .map(|a| account_json(&inner, a))
            .collect();
        let mut pagination = json!({"page": 0, "page_size": size, "is_cursor": true});
        if mine.len() > size
            && let Some(last) = mine.get(size - 1)
        {
            pagination["next_token"] = json!(STANDARD.encode(last.id.to_string()));
        }
        Ok(ok(json!({"accounts": page, "pagination": pagination})))
    })
}

#[derive(Deserialize)]
struct AccountReq {
    #[serde(default)]
    uri: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    readonly: bool,
    #[serde(default)]
    proxy: bool,
    #[serde(default)]
    disable_sys_files: bool,
}

fn validate(inner: &Inner, uid: u64, body: &[u8]) -> Result<(AccountReq, Vec<u8>), ApiError> {
    let req: AccountReq = parse_json(body)?;
    let n = req.name.chars().count();
    if req.uri.is_empty() || n == 0 || n > 255 {
        return Err(ApiError::binding("uri and name are required"));
    }
    let st = inner.lock();
    let u = st.users.get(&uid).ok_or_else(err::login)?;
    if !u.flags.webdav {
        return Err(ApiError::new(40007, "Group not allowed"));
    }
    let parsed = super::uri::parse(&req.uri).ok_or_else(err::bad_uri)?;
    if !(parsed.fs == "my" || parsed.fs == "share") || parsed.query.is_some() {
        return Err(ApiError::new(40001, "Invalid URI"));
    }
    let mut bits = vec![];
    if req.readonly {
        bits.push(0);
    }
    if req.proxy && u.flags.webdav_proxy {
        bits.push(1);
    }
    if req.disable_sys_files {
        bits.push(2);
    }
    let opts = if bits.is_empty() {
        vec![]
    } else {
        STANDARD.decode(boolset(&bits)).unwrap_or_default()
    };
    Ok((req, opts))
}

/// `PUT /devices/dav`.
pub(super) async fn create(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    run(|| {
        let uid = require_user(&inner, &headers)?;
        let (req, options) = validate(&inner, uid, &body)?;
        let mut st = inner.lock();
        let id = st.alloc();
        let a = DavAccount {
            id,
            owner: uid,
            name: req.name,
            uri: req.uri,
            password: random_letters(32),
            options,
            created_at: inner.clock.now(),
        };
        let v = account_json(&inner, &a);
        st.dav.insert(id, a);
        inner.touch();
        Ok(ok(v))
    })
}

fn find(inner: &Inner, uid: u64, id: &str) -> Result<u64, ApiError> {
    let raw = inner
        .ids
        .decode(id, IdKind::Dav)
        .ok_or_else(|| ApiError::new(40001, "Invalid account id"))?;
    let st = inner.lock();
    match st.dav.get(&raw) {
        Some(a) if a.owner == uid => Ok(raw),
        _ => Err(ApiError::new(404, "Account not exist")),
    }
}

/// `PATCH /devices/dav/{id}`.
pub(super) async fn update(
    State(inner): State<Arc<Inner>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    run(|| {
        let Ok(Path(id)) = path else {
            return Err(ApiError::binding("invalid path"));
        };
        let uid = require_user(&inner, &headers)?;
        let raw = find(&inner, uid, &id)?;
        let (req, options) = validate(&inner, uid, &body)?;
        let mut st = inner.lock();
        let a = st
            .dav
            .get_mut(&raw)
            .ok_or_else(|| ApiError::new(404, "Account not exist"))?;
        a.name = req.name;
        a.uri = req.uri;
        a.options = options;
        let v = account_json(&inner, a);
        inner.touch();
        Ok(ok(v))
    })
}

/// `DELETE /devices/dav/{id}`.
pub(super) async fn remove(
    State(inner): State<Arc<Inner>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    run(|| {
        let Ok(Path(id)) = path else {
            return Err(ApiError::binding("invalid path"));
        };
        let uid = require_user(&inner, &headers)?;
        let raw = find(&inner, uid, &id)?;
        inner.lock().dav.remove(&raw);
        inner.touch();
        Ok(ok_void())
    })
}
