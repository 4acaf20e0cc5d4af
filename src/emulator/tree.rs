//! What every endpoint needs to find its way in the tree: URI parsing and
//! access checks, resolving a URI to an object, the JSON of a file, lock
//! requests, `mkdir -p`, the trash sweep, and the shared error shapes.

use super::envelope::{ApiError, err};
use super::events::{self, Change};
use super::ids::IdKind;
use super::instance::Inner;
use super::locks::{LockApp, LockReq, conflict_payload};
use super::state::{Node, PolicyKind, State as Model, new_node, valid_name};
use super::uri::{self, CrUri};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// Capability boolset of `my`.
pub(super) const CAP_MY: &str = "w8edAQ==";
/// Capability boolset of `trash`.
pub(super) const CAP_TRASH: &str = "AMIK";

/// Runs a fallible handler body and renders errors.
pub(super) fn run(f: impl FnOnce() -> Result<Response, ApiError>) -> Response {
    f().unwrap_or_else(ApiError::into_resp)
}

/// Parses a URI string (40001 "unknown uri").
pub(super) fn parse_uri(raw: &str) -> Result<CrUri, ApiError> {
    uri::parse(raw).ok_or_else(err::bad_uri)
}

/// Checks access to the URI's file system; returns the user id.
pub(super) fn check_fs(inner: &Inner, uid: Option<u64>, u: &CrUri) -> Result<u64, ApiError> {
    match u.fs.as_str() {
        "my" | "trash" => {
            let uid = uid.ok_or_else(err::login)?;
            if let Some(user) = &u.user
                && u.fs == "my"
                && inner.ids.decode(user, IdKind::User) != Some(uid)
            {
                return Err(ApiError::new(403, "Permission denied"));
            }
            Ok(uid)
        }
        "share" | "shared_with_me" => Err(err::unsupported()),
        _ => Err(ApiError::new(40001, "unknown fs")),
    }
}

/// A resolved target.
#[derive(Debug, Clone)]
pub(super) enum Target {
    /// A node in `my` with its decoded segments.
    My(u64, Vec<String>),
    /// The trash root.
    TrashRoot,
    /// A top-level trash item (uuid name, node id).
    TrashItem(String, u64),
}

/// Resolves a parsed URI to an existing object (40016 when missing).
pub(super) fn resolve(st: &Model, uid: u64, u: &CrUri) -> Result<Target, ApiError> {
    let user = st.users.get(&uid).ok_or_else(err::login)?;
    match u.fs.as_str() {
        "my" => {
            let id = st.walk(user.root, &u.segments).ok_or_else(err::not_exist)?;
            // Use the stored names (they differ from the request in case-insensitive mode).
            let segs = if st.settings.case_insensitive {
                st.path_of(id).unwrap_or_else(|| u.segments.clone())
            } else {
                u.segments.clone()
            };
            Ok(Target::My(id, segs))
        }
        "trash" => match u.segments.as_slice() {
            [] => Ok(Target::TrashRoot),
            [one] => user
                .trash
                .get(one)
                .map(|id| Target::TrashItem(one.clone(), *id))
                .ok_or_else(err::not_exist),
            _ => Err(err::not_exist()),
        },
        _ => Err(err::unsupported()),
    }
}

/// Display name of a node (trash items show their original name).
pub(super) fn display_name(n: &Node) -> String {
    if n.trashed
        && let Some(r) = n.metadata.get("sys:restore_uri")
        && let Some(u) = uri::parse(r)
        && let Some(last) = u.segments.last()
    {
        return last.clone();
    }
    n.name.clone()
}

/// Policy JSON.
pub(super) fn policy_json(
    inner: &Inner,
    kind: PolicyKind,
    max_size: i64,
    encryption: bool,
) -> Value {
    let id = inner.ids.encode(1, IdKind::Policy);
    let mut v = match kind {
        PolicyKind::Local => {
            json!({"id": id, "name": "Default storage policy", "type": "local", "max_size": 0})
        }
        PolicyKind::Relay => {
            json!({"id": id, "name": "Relay policy", "type": "s3", "max_size": 0, "relay": true})
        }
        PolicyKind::S3 => json!({"id": id, "name": "S3 policy", "type": "s3", "max_size": 0}),
    };
    v["max_size"] = json!(max_size);
    if encryption {
        v["encryption"] = json!(true);
    }
    v
}

/// Builds a `FileResponse`.
pub(super) fn file_json(inner: &Inner, n: &Node, path: String, with_meta: bool) -> Value {
    let cap = if path.starts_with("cloudreve://trash") {
        CAP_TRASH
    } else {
        CAP_MY
    };
    let meta = if with_meta {
        json!(n.metadata)
    } else {
        Value::Null
    };
    json!({
        "type": if n.folder { 1 } else { 0 },
        "id": inner.ids.encode(n.id, IdKind::File),
        "name": display_name(n),
        "created_at": super::clock::fmt_time(&n.created_at),
        "updated_at": super::clock::fmt_time(&n.updated_at),
        "size": n.size,
        "metadata": meta,
        "path": path,
        "capability": cap,
        "owned": true,
        "primary_entity": inner.ids.encode(n.primary, IdKind::Entity),
    })
}

/// The URI of a node as the owner sees it.
pub(super) fn node_uri(st: &Model, id: u64) -> Option<String> {
    if let Some(segs) = st.path_of(id) {
        return Some(uri::emit("my", &segs));
    }
    let n = st.files.get(&id)?;
    n.trashed
        .then(|| uri::emit("trash", std::slice::from_ref(&n.name)))
}

/// Acquires locks or fails with 40073.
pub(super) fn take_locks(
    inner: &Inner,
    st: &mut Model,
    reqs: &[LockReq],
) -> Result<Vec<String>, ApiError> {
    super::upload::sweep(inner, st);
    // Identical requests in one batch are taken once.
    let mut uniq: Vec<LockReq> = Vec::with_capacity(reqs.len());
    for r in reqs {
        if !uniq.iter().any(|u| u.fs == r.fs && u.path == r.path) {
            uniq.push(r.clone());
        }
    }
    st.locks
        .acquire_all(&uniq)
        .map_err(|c| ApiError::new(40073, "Lock conflict").with_data(conflict_payload(&c)))
}

/// A short-lived lock request in `my`.
pub(super) fn lreq(
    uid: u64,
    fs: &str,
    segs: &[String],
    zero: bool,
    folder: bool,
    app: &str,
) -> LockReq {
    LockReq {
        owner: uid,
        fs: fs.to_string(),
        path: uri::join_path(segs),
        zero_depth: zero,
        file_type: u8::from(folder),
        app: LockApp::of(app),
        expires: None,
    }
}

/// `mkdir -p` of `segs` below the user's root; returns the folder id.
/// `name_err` is the error for invalid names.
pub(super) fn mkdir_p(
    st: &mut Model,
    uid: u64,
    segs: &[String],
    now: DateTime<Utc>,
    name_err: fn() -> ApiError,
    origin: Option<&str>,
) -> Result<u64, ApiError> {
    let mut cur = st.users.get(&uid).ok_or_else(err::login)?.root;
    for s in segs {
        match st.child(cur, s) {
            Some(c) => {
                if !st.files.get(&c).is_some_and(|n| n.folder) {
                    return Err(err::unsupported());
                }
                cur = c;
            }
            None => {
                if !valid_name(s) {
                    return Err(name_err());
                }
                let id = st.alloc();
                st.files.insert(id, new_node(id, uid, None, s, true, now));
                st.attach(id, cur);
                events::publish(st, Change::Created(id), origin);
                cur = id;
            }
        }
    }
    Ok(cur)
}

/// 40079 walk limit, with the outer message.
pub(super) fn walk_limit(msg: &str) -> ApiError {
    ApiError::new(40079, msg)
}

/// 40052 illegal name.
pub(super) fn illegal_name() -> ApiError {
    ApiError::new(40052, "Invalid object name")
}

pub(super) fn collect_trash(inner: &Inner, st: &mut Model, uid: u64) {
    let now = inner.clock.now().timestamp();
    let Some(user) = st.users.get(&uid) else {
        return;
    };
    let due: Vec<u64> = user
        .trash
        .values()
        .copied()
        .filter(|id| {
            st.files
                .get(id)
                .and_then(|n| n.metadata.get("sys:expected_collect_time"))
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|t| t <= now)
        })
        .collect();
    for id in due {
        let blobs = st.purge(id);
        remove_blobs(inner, blobs);
    }
}

/// Deletes blob files.
pub(super) fn remove_blobs(inner: &Inner, blobs: Vec<u64>) {
    for b in blobs {
        let _ = std::fs::remove_file(inner.blob_path(b));
    }
}

/// Re-serialised key of a URI for aggregated errors.
pub(super) fn agg_key(raw: &str) -> String {
    match uri::parse(raw) {
        Some(u) => {
            let mut s = uri::emit(&u.fs, &u.segments);
            if let Some(q) = u.query {
                s.push('?');
                s.push_str(&q);
            }
            s
        }
        None => raw.to_string(),
    }
}

/// Checks the batch size (40074) and that every URI parses (else a bare 40001).
pub(super) fn check_batch(uris: &[String]) -> Result<(), ApiError> {
    if uris.len() > 3000 {
        return Err(ApiError::new(40074, "Too many uris"));
    }
    for u in uris {
        parse_uri(u)?;
    }
    Ok(())
}
