//! File-tree endpoints: list, info, create, rename, move/copy, delete, restore.

use super::caller::current_user;
use super::envelope::{ApiError, aggregate, err, ok, ok_void, parse_json, parse_query};
use super::events::{self, Change};
use super::ids::IdKind;
use super::instance::Inner;
use super::locks::LockReq;
use super::state::{Node, State as Model, new_node, valid_name};
use super::tree::{
    CAP_MY, CAP_TRASH, Target, agg_key, check_batch, check_fs, collect_trash, display_name,
    file_json, illegal_name, lreq, mkdir_p, node_uri, parse_uri, policy_json, remove_blobs,
    resolve, run, take_locks, walk_limit,
};
use super::uri;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Deserialize)]
struct ListQ {
    uri: Option<String>,
    page_size: Option<String>,
    page: Option<String>,
    order_by: Option<String>,
    order_direction: Option<String>,
    next_page_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, Deserialize)]
#[serde(untagged)]
enum SortVal {
    Int(i64),
    Str(String),
}

#[derive(serde::Serialize, Deserialize)]
struct Cursor {
    g: u8,
    k: SortVal,
    i: u64,
}

fn parse_int(v: &Option<String>) -> Result<i64, ApiError> {
    match v.as_deref() {
        None | Some("") => Ok(0),
        Some(s) => s
            .parse::<i64>()
            .map_err(|_| ApiError::binding("invalid integer")),
    }
}

/// `GET /file`.
pub(super) async fn list(State(inner): State<Arc<Inner>>, headers: HeaderMap, q: Uri) -> Response {
    run(|| {
        let lq: ListQ = parse_query(q.query())?;
        let raw = lq
            .uri
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::binding("uri is required"))?;
        let page_size = parse_int(&lq.page_size)?;
        let _page = parse_int(&lq.page)?;
        if page_size < 0 {
            return Err(ApiError::binding("page_size must be >= 0"));
        }
        let u = parse_uri(&raw)?;
        let uid = check_fs(&inner, current_user(&inner, &headers)?, &u)?;
        let mut st = inner.lock();
        super::upload::sweep(&inner, &mut st);
        collect_trash(&inner, &mut st, uid);
        let target = resolve(&st, uid, &u)?;
        let (children, parent_json, fs): (Vec<u64>, Value, &str) = match &target {
            Target::My(id, segs) => {
                let n = st.files.get(id).ok_or_else(err::not_exist)?;
                if !n.folder {
                    return Err(err::not_exist());
                }
                (
                    n.children.values().copied().collect(),
                    // Cloudreve lists the folder itself without metadata.
                    file_json(&inner, n, uri::emit("my", segs), false),
                    "my",
                )
            }
            Target::TrashRoot => {
                let user = st.users.get(&uid).ok_or_else(err::login)?;
                let now = inner.clock.now();
                let mut root = new_node(0, uid, None, "", true, now);
                root.created_at = user.created_at;
                root.updated_at = user.created_at;
                (
                    user.trash.values().copied().collect(),
                    file_json(&inner, &root, "cloudreve://trash/".into(), true),
                    "trash",
                )
            }
            Target::TrashItem(..) => return Err(err::not_exist()),
        };
        let max = st.settings.max_page_size;
        let size = if page_size == 0 {
            100
        } else {
            page_size as usize
        }
        .min(max)
        .max(1);
        let desc = lq.order_direction.as_deref() == Some("desc");
        let order_by = lq.order_by.as_deref().unwrap_or("");
        let key_of = |n: &Node| -> (u8, SortVal, u64) {
            let k = match order_by {
                "name" => SortVal::Str(n.name.clone()),
                "size" => SortVal::Int(n.size),
                "updated_at" => SortVal::Int(n.updated_at.timestamp_nanos_opt().unwrap_or(0)),
                _ => SortVal::Int(n.id as i64),
            };
            (u8::from(!n.folder), k, n.id)
        };
        let cmp = |a: &(u8, SortVal, u64), b: &(u8, SortVal, u64)| {
            a.0.cmp(&b.0).then_with(|| {
                let o = a.1.cmp(&b.1).then(a.2.cmp(&b.2));
                if desc { o.reverse() } else { o }
            })
        };
        let mut keyed: Vec<((u8, SortVal, u64), &Node)> = children
            .iter()
            .filter_map(|id| st.files.get(id))
            .map(|n| (key_of(n), n))
            .collect();
        keyed.sort_by(|a, b| cmp(&a.0, &b.0));
        let start = match lq.next_page_token.as_deref().filter(|t| !t.is_empty()) {
            None => 0,
            Some(t) => {
                let c: Cursor = STANDARD
                    .decode(t)
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok())
                    .ok_or_else(|| ApiError::new(-1, ""))?;
                let ck = (c.g, c.k, c.i);
                keyed.partition_point(|(k, _)| cmp(k, &ck) != std::cmp::Ordering::Greater)
            }
        };
        let end = (start + size).min(keyed.len());
        let base_segs: Vec<String> = match &target {
            Target::My(_, s) => s.clone(),
            _ => vec![],
        };
        let files: Vec<Value> = keyed[start..end]
            .iter()
            .map(|(_, n)| {
                let mut s = base_segs.clone();
                s.push(n.name.clone());
                file_json(&inner, n, uri::emit(fs, &s), true)
            })
            .collect();
        let mut pagination = json!({"page": 0, "page_size": size, "is_cursor": true});
        if end < keyed.len() && end > 0 {
            let (k, _) = &keyed[end - 1];
            let c = Cursor {
                g: k.0,
                k: k.1.clone(),
                i: k.2,
            };
            let tok = STANDARD.encode(serde_json::to_vec(&c).unwrap_or_default());
            pagination["next_token"] = json!(tok);
        }
        Ok(ok(json!({
            "files": files,
            "parent": parent_json,
            "pagination": pagination,
            "props": {"capability": if fs == "trash" { CAP_TRASH } else { CAP_MY },
                      "max_page_size": max,
                      "order_by_options": ["name","size","updated_at","created_at"],
                      "order_direction_options": ["asc","desc"]},
            "context_hint": uuid::Uuid::new_v4().to_string(),
            "mixed_type": false,
            "storage_policy": policy_json(
                &inner,
                st.settings.policy,
                st.settings.policy_max_size,
                st.settings.policy_encryption,
            ),
        })))
    })
}

#[derive(Deserialize)]
struct InfoQ {
    uri: Option<String>,
    id: Option<String>,
    extended: Option<String>,
    folder_summary: Option<String>,
}

fn parse_bool(v: &Option<String>) -> Result<bool, ApiError> {
    match v.as_deref() {
        None | Some("") => Ok(false),
        Some("true") | Some("1") | Some("t") | Some("T") | Some("TRUE") | Some("True") => Ok(true),
        Some("false") | Some("0") | Some("f") | Some("F") | Some("FALSE") | Some("False") => {
            Ok(false)
        }
        _ => Err(ApiError::binding("invalid bool")),
    }
}

/// `GET /file/info`.
pub(super) async fn info(State(inner): State<Arc<Inner>>, headers: HeaderMap, q: Uri) -> Response {
    run(|| {
        let iq: InfoQ = parse_query(q.query())?;
        let extended = parse_bool(&iq.extended)?;
        let summary = parse_bool(&iq.folder_summary)?;
        let raw_uri = iq.uri.clone().filter(|s| !s.is_empty());
        let raw_id = iq.id.clone().filter(|s| !s.is_empty());
        let user = current_user(&inner, &headers)?;
        let st_guard;
        let (id, path) = match (raw_uri, raw_id) {
            (Some(r), _) => {
                let u = parse_uri(&r)?;
                let uid = check_fs(&inner, user, &u)?;
                st_guard = inner.lock();
                match resolve(&st_guard, uid, &u)? {
                    Target::My(id, segs) => {
                        if segs.is_empty() {
                            return Err(err::unsupported());
                        }
                        (id, uri::emit("my", &segs))
                    }
                    Target::TrashRoot => return Err(err::unsupported()),
                    Target::TrashItem(name, id) => (id, uri::emit("trash", &[name])),
                }
            }
            (None, Some(i)) => {
                let fid = inner
                    .ids
                    .decode(&i, IdKind::File)
                    .ok_or_else(|| ApiError::new(40001, "Invalid file id"))?;
                let uid = user.ok_or_else(err::login)?;
                st_guard = inner.lock();
                let n = st_guard.files.get(&fid).ok_or_else(err::not_exist)?;
                if n.owner != uid {
                    return Err(ApiError::new(403, "Permission denied"));
                }
                if n.parent.is_none() && !n.trashed {
                    return Err(err::unsupported());
                }
                (fid, node_uri(&st_guard, fid).ok_or_else(err::not_exist)?)
            }
            (None, None) => return Err(ApiError::binding("uri is required")),
        };
        let st = st_guard;
        let n = st.files.get(&id).ok_or_else(err::not_exist)?;
        let mut v = file_json(&inner, n, path, true);
        if extended {
            let pol = policy_json(
                &inner,
                st.settings.policy,
                st.settings.policy_max_size,
                st.settings.policy_encryption,
            );
            let mut ents = vec![];
            if let Some(e) = st.entities.get(&n.primary) {
                ents.push(
                    json!({"id": inner.ids.encode(e.id, IdKind::Entity), "size": e.size, "type": 0,
                                 "created_at": super::clock::fmt_time(&e.created_at),
                                 "storage_policy": pol.clone()}),
                );
                if e.key.is_some()
                    && let Some(last) = ents.last_mut()
                {
                    last["encrypted_with"] = json!(super::crypt::CIPHER);
                }
            }
            v["extended_info"] =
                json!({"storage_policy": pol, "storage_used": n.size, "entities": ents});
        }
        if summary && n.folder {
            let ids = st.subtree(id);
            let files = ids
                .iter()
                .filter(|x| st.files.get(x).is_some_and(|n| !n.folder))
                .count();
            v["folder_summary"] = json!({"size": st.subtree_size(id), "files": files,
                "folders": ids.len() - files - 1, "completed": true,
                "calculated_at": super::clock::fmt_time(&inner.clock.now())});
        }
        Ok(ok(v))
    })
}

#[derive(Deserialize)]
struct CreateReq {
    #[serde(default)]
    uri: String,
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    err_on_conflict: bool,
    #[serde(default)]
    metadata: Option<BTreeMap<String, String>>,
}

/// `POST /file/create`.
pub(super) async fn create(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    run(|| {
        let req: CreateReq = parse_json(&body)?;
        if req.uri.is_empty() || !(req.kind == "file" || req.kind == "folder") {
            return Err(ApiError::binding("uri and type are required"));
        }
        let folder = req.kind == "folder";
        let u = parse_uri(&req.uri)?;
        let uid = check_fs(&inner, current_user(&inner, &headers)?, &u)?;
        if u.fs != "my" {
            return Err(err::unsupported());
        }
        let meta = req.metadata.unwrap_or_default();
        for (k, v) in &meta {
            super::metadata::validate(&inner, k, v, false)?;
        }
        let Some((name, parent_segs)) = u.segments.split_last() else {
            return Err(err::unsupported());
        };
        let now = inner.clock.now();
        let mut st = inner.lock();
        // An existing object is answered before any lock is taken.
        let root = st.users.get(&uid).ok_or_else(err::login)?.root;
        if let Some(existing) = st.walk(root, &u.segments) {
            let n = st.files.get(&existing).ok_or_else(err::not_exist)?;
            if n.folder != folder || req.err_on_conflict {
                return Err(err::existed());
            }
            let path = node_uri(&st, existing).unwrap_or_default();
            return Ok(ok(file_json(&inner, n, path, true)));
        }
        let locks = take_locks(
            &inner,
            &mut st,
            &[lreq(uid, "my", &u.segments, false, folder, "create")],
        )?;
        let r = (|| {
            if !valid_name(name) {
                return Err(illegal_name());
            }
            let origin = events::origin(&headers);
            let origin = origin.as_deref();
            let parent = mkdir_p(&mut st, uid, parent_segs, now, illegal_name, origin)?;
            let id = st.alloc();
            let mut n = new_node(id, uid, None, name, folder, now);
            for (k, v) in &meta {
                n.metadata.insert(k.clone(), v.clone());
            }
            st.files.insert(id, n);
            st.attach(id, parent);
            events::publish(&mut st, Change::Created(id), origin);
            let n = st.files.get(&id).ok_or_else(err::not_exist)?;
            let path = node_uri(&st, id).unwrap_or_default();
            Ok(ok(file_json(&inner, n, path, true)))
        })();
        st.locks.release(&locks);
        inner.touch();
        r
    })
}

#[derive(Deserialize)]
struct RenameReq {
    #[serde(default)]
    uri: String,
    #[serde(default)]
    new_name: String,
}

fn ext(name: &str) -> &str {
    name.rsplit_once('.').map(|(_, e)| e).unwrap_or("")
}

/// `POST /file/rename`.
pub(super) async fn rename(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    run(|| {
        let req: RenameReq = parse_json(&body)?;
        let n_runes = req.new_name.chars().count();
        if req.uri.is_empty() || n_runes == 0 || n_runes > 255 {
            return Err(ApiError::binding("uri and new_name are required"));
        }
        let u = parse_uri(&req.uri)?;
        let uid = check_fs(&inner, current_user(&inner, &headers)?, &u)?;
        let mut st = inner.lock();
        let (id, segs) = match resolve(&st, uid, &u)? {
            Target::My(id, segs) => (id, segs),
            _ => return Err(err::unsupported()),
        };
        if segs.is_empty() {
            return Err(err::unsupported());
        }
        if !valid_name(&req.new_name) {
            return Err(illegal_name());
        }
        let folder = st.files.get(&id).is_some_and(|n| n.folder);
        let locks = take_locks(
            &inner,
            &mut st,
            &[lreq(uid, "my", &segs, false, folder, "rename")],
        )?;
        let r = (|| {
            let parent = st
                .files
                .get(&id)
                .and_then(|n| n.parent)
                .ok_or_else(err::not_exist)?;
            if let Some(other) = st.child(parent, &req.new_name)
                && other != id
            {
                return Err(err::existed());
            }
            let old = st
                .files
                .get(&id)
                .map(|n| n.name.clone())
                .unwrap_or_default();
            let origin = events::origin(&headers);
            events::publish(
                &mut st,
                Change::Renamed(id, &req.new_name),
                origin.as_deref(),
            );
            st.detach(id);
            let now = inner.clock.now();
            if let Some(n) = st.files.get_mut(&id) {
                n.name = req.new_name.clone();
                n.updated_at = now;
                if ext(&old) != ext(&req.new_name) {
                    n.metadata.remove("thumb:disabled");
                }
            }
            st.attach(id, parent);
            let mut s = segs.clone();
            if let Some(l) = s.last_mut() {
                *l = req.new_name.clone();
            }
            let n = st.files.get(&id).ok_or_else(err::not_exist)?;
            Ok(ok(file_json(&inner, n, uri::emit("my", &s), true)))
        })();
        st.locks.release(&locks);
        inner.touch();
        r
    })
}

#[derive(Deserialize)]
struct MoveReq {
    #[serde(default)]
    uris: Vec<String>,
    #[serde(default)]
    dst: String,
    #[serde(default)]
    copy: bool,
}

/// `POST /file/move`.
pub(super) async fn move_copy(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    run(|| {
        let req: MoveReq = parse_json(&body)?;
        if req.uris.is_empty() || req.dst.is_empty() {
            return Err(ApiError::binding("uris and dst are required"));
        }
        check_batch(&req.uris)?;
        let user = current_user(&inner, &headers)?;
        let du = parse_uri(&req.dst)?;
        let uid = check_fs(&inner, user, &du)?;
        let now = inner.clock.now();
        let mut st = inner.lock();
        let dst = resolve(&st, uid, &du)?;
        let (dst_id, dst_segs) = match &dst {
            Target::My(id, s) => {
                if !st.files.get(id).is_some_and(|n| n.folder) {
                    return Err(err::unsupported());
                }
                (*id, s.clone())
            }
            Target::TrashRoot => {
                // Cloudreve 4.18 panics on a move or copy into the trash;
                // gin's recovery answers HTTP 500 with an empty body.
                return Ok(axum::response::IntoResponse::into_response(
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                ));
            }
            Target::TrashItem(..) => return Err(err::unsupported()),
        };
        // Per-source validation.
        let mut fails = vec![];
        let mut items: Vec<(u64, Vec<String>, String, bool)> = vec![]; // id, src segs, dst name, from trash
        for raw in &req.uris {
            let r = (|| -> Result<(u64, Vec<String>, String, bool), ApiError> {
                let u = parse_uri(raw)?;
                check_fs(&inner, Some(uid), &u)?;
                match resolve(&st, uid, &u)? {
                    Target::My(id, segs) => {
                        if segs.is_empty() {
                            return Err(err::unsupported());
                        }
                        if dst_segs.starts_with(&segs) {
                            return Err(err::unsupported());
                        }
                        let name = segs.last().cloned().unwrap_or_default();
                        Ok((id, segs, name, false))
                    }
                    Target::TrashItem(_, id) => {
                        if req.copy {
                            return Err(err::unsupported());
                        }
                        let n = st.files.get(&id).ok_or_else(err::not_exist)?;
                        Ok((id, vec![], display_name(n), true))
                    }
                    Target::TrashRoot => Err(err::unsupported()),
                }
            })();
            match r {
                Ok(x) => items.push(x),
                Err(e) => fails.push((agg_key(raw), e)),
            }
        }
        // Locks.
        let mut reqs = vec![];
        for (id, segs, name, from_trash) in &items {
            let folder = st.files.get(id).is_some_and(|n| n.folder);
            if !req.copy {
                if *from_trash {
                    let tname = st.files.get(id).map(|n| n.name.clone()).unwrap_or_default();
                    reqs.push(lreq(uid, "trash", &[tname], false, folder, "moveCopy"));
                } else {
                    reqs.push(lreq(uid, "my", segs, false, folder, "moveCopy"));
                }
            }
            let mut d = dst_segs.clone();
            d.push(name.clone());
            reqs.push(lreq(uid, "my", &d, false, folder, "moveCopy"));
        }
        let locks = take_locks(&inner, &mut st, &reqs)?;
        let origin = events::origin(&headers);
        let r = (|| {
            // All-or-nothing name clash check.
            let mut seen = std::collections::HashSet::new();
            for (id, _, name, _) in &items {
                let k = st.key(name);
                let clash = match st.child(dst_id, name) {
                    Some(other) => other != *id,
                    None => false,
                };
                if clash || !seen.insert(k) {
                    return Err(err::existed());
                }
            }
            if req.copy {
                let walked: usize = items.iter().map(|(id, ..)| st.subtree(*id).len()).sum();
                if walked > st.settings.max_walked_files {
                    return Err(walk_limit("failed to copy files"));
                }
                let total: i64 = items.iter().map(|(id, ..)| st.subtree_size(*id)).sum();
                let u = st.users.get(&uid).ok_or_else(err::login)?;
                if u.used.saturating_add(total) > u.quota {
                    return Err(ApiError::new(40051, "Insufficient capacity"));
                }
                for (id, ..) in &items {
                    let copy = copy_tree(&mut st, *id, dst_id, now);
                    events::publish(&mut st, Change::Created(copy), origin.as_deref());
                }
                if let Some(u) = st.users.get_mut(&uid) {
                    u.used += total;
                }
            } else {
                for (id, _, name, from_trash) in &items {
                    if st.files.get(id).and_then(|n| n.parent) == Some(dst_id) {
                        continue;
                    }
                    let moved = Change::Moved {
                        id: *id,
                        dst: dst_id,
                        name,
                    };
                    events::publish(&mut st, moved, origin.as_deref());
                    st.detach(*id);
                    if *from_trash {
                        let tname = st.files.get(id).map(|n| n.name.clone()).unwrap_or_default();
                        if let Some(u) = st.users.get_mut(&uid) {
                            u.trash.remove(&tname);
                        }
                    }
                    if let Some(n) = st.files.get_mut(id) {
                        n.name = name.clone();
                        n.updated_at = now;
                        if *from_trash {
                            n.trashed = false;
                            n.metadata.remove("sys:restore_uri");
                            n.metadata.remove("sys:expected_collect_time");
                        }
                    }
                    st.attach(*id, dst_id);
                }
            }
            Ok(())
        })();
        st.locks.release(&locks);
        inner.touch();
        r?;
        if fails.is_empty() {
            Ok(ok_void())
        } else {
            Err(aggregate(fails))
        }
    })
}

/// Copies `src` with everything below it under `dst_parent`; the copy's id.
fn copy_tree(st: &mut Model, src: u64, dst_parent: u64, now: DateTime<Utc>) -> u64 {
    let Some(n) = st.files.get(&src).cloned() else {
        return 0;
    };
    let id = st.alloc();
    let mut c = n.clone();
    c.id = id;
    c.parent = None;
    c.children = BTreeMap::new();
    c.created_at = now;
    c.updated_at = now;
    c.trashed = false;
    if let Some(e) = st.entities.get_mut(&n.primary) {
        e.refs += 1;
    }
    st.files.insert(id, c);
    st.attach(id, dst_parent);
    for child in n.children.values() {
        copy_tree(st, *child, id, now);
    }
    id
}

#[derive(Deserialize)]
struct DeleteReq {
    #[serde(default)]
    uris: Vec<String>,
    #[serde(default)]
    unlink: bool,
    #[serde(default)]
    skip_soft_delete: bool,
}

/// `DELETE /file`.
pub(super) async fn delete(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    run(|| {
        let req: DeleteReq = parse_json(&body)?;
        if req.uris.is_empty() {
            return Err(ApiError::binding("uris is required"));
        }
        check_batch(&req.uris)?;
        let user = current_user(&inner, &headers)?;
        let first = parse_uri(&req.uris[0])?;
        let uid = check_fs(&inner, user, &first)?;
        if req.unlink {
            let st = inner.lock();
            if !st.users.get(&uid).is_some_and(|u| u.flags.advance_delete) {
                return Err(err::unsupported());
            }
        }
        let origin = events::origin(&headers);
        delete_impl(
            &inner,
            uid,
            &req.uris,
            req.skip_soft_delete,
            req.unlink,
            origin.as_deref(),
        )
    })
}

fn delete_impl(
    inner: &Inner,
    uid: u64,
    uris: &[String],
    hard: bool,
    unlink: bool,
    origin: Option<&str>,
) -> Result<Response, ApiError> {
    let now = inner.clock.now();
    let mut st = inner.lock();
    let mut fails = vec![];
    let mut targets: Vec<(u64, String, Vec<String>, bool)> = vec![]; // id, fs, lock segs, folder
    for raw in uris {
        let r = (|| -> Result<(u64, String, Vec<String>, bool), ApiError> {
            let u = parse_uri(raw)?;
            check_fs(inner, Some(uid), &u)?;
            let t = resolve(&st, uid, &u)?;
            match t {
                Target::My(id, segs) => {
                    if segs.is_empty() {
                        return Err(err::unsupported());
                    }
                    let folder = st.files.get(&id).is_some_and(|n| n.folder);
                    Ok((id, "my".into(), segs, folder))
                }
                Target::TrashItem(name, id) => {
                    if !hard {
                        return Err(err::unsupported());
                    }
                    let folder = st.files.get(&id).is_some_and(|n| n.folder);
                    Ok((id, "trash".into(), vec![name], folder))
                }
                Target::TrashRoot => Err(err::unsupported()),
            }
        })();
        match r {
            Ok(t) => {
                if !targets.iter().any(|x| x.0 == t.0) {
                    targets.push(t)
                }
            }
            Err(e) => fails.push((agg_key(raw), e)),
        }
    }
    let app = if hard { "delete" } else { "softDelete" };
    let reqs: Vec<LockReq> = targets
        .iter()
        .map(|(_, fs, segs, folder)| lreq(uid, fs, segs, false, *folder, app))
        .collect();
    let locks = take_locks(inner, &mut st, &reqs)?;
    if hard {
        let walked: usize = targets.iter().map(|t| st.subtree(t.0).len()).sum();
        if walked > st.settings.max_walked_files {
            st.locks.release(&locks);
            return Err(walk_limit("failed to delete files"));
        }
    }
    let mut blobs = vec![];
    let retention = st.settings.trash_retention;
    for (id, _, segs, _) in &targets {
        if !st.files.contains_key(id) {
            continue;
        }
        events::publish(&mut st, Change::Deleted(*id), origin);
        if hard {
            if unlink {
                // Keep the blobs: drop records only.
                for x in st.subtree(*id) {
                    if let Some(p) = st.files.get(&x).map(|n| n.primary)
                        && let Some(e) = st.entities.get_mut(&p)
                    {
                        e.refs += 1;
                    }
                }
                st.purge(*id);
            } else {
                blobs.extend(st.purge(*id));
            }
        } else {
            let restore = uri::emit("my", segs);
            let tname = uuid::Uuid::new_v4().to_string();
            st.detach(*id);
            if let Some(n) = st.files.get_mut(id) {
                n.name = tname.clone();
                n.trashed = true;
                n.metadata.insert("sys:restore_uri".into(), restore);
                n.metadata.insert(
                    "sys:expected_collect_time".into(),
                    (now.timestamp() + retention).to_string(),
                );
            }
            if let Some(u) = st.users.get_mut(&uid) {
                u.trash.insert(tname, *id);
            }
        }
    }
    st.locks.release(&locks);
    drop(st);
    remove_blobs(inner, blobs);
    inner.touch();
    if fails.is_empty() {
        Ok(ok_void())
    } else {
        Err(aggregate(fails))
    }
}

/// `POST /file/restore`.
pub(super) async fn restore(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    run(|| {
        let req: DeleteReq = parse_json(&body)?;
        if req.uris.is_empty() {
            return Err(ApiError::binding("uris is required"));
        }
        check_batch(&req.uris)?;
        let user = current_user(&inner, &headers)?;
        let first = parse_uri(&req.uris[0])?;
        let uid = check_fs(&inner, user, &first)?;
        let now = inner.clock.now();
        let mut st = inner.lock();
        let mut fails = vec![];
        let mut items = vec![];
        for raw in &req.uris {
            let r = (|| -> Result<(u64, String, Vec<String>), ApiError> {
                let u = parse_uri(raw)?;
                check_fs(&inner, Some(uid), &u)?;
                match resolve(&st, uid, &u)? {
                    Target::TrashItem(name, id) => {
                        let n = st.files.get(&id).ok_or_else(err::not_exist)?;
                        let ru = n
                            .metadata
                            .get("sys:restore_uri")
                            .and_then(|r| uri::parse(r))
                            .ok_or_else(err::not_exist)?;
                        Ok((id, name, ru.segments))
                    }
                    _ => Err(err::unsupported()),
                }
            })();
            match r {
                Ok(x) => items.push((raw.clone(), x)),
                Err(e) => fails.push((agg_key(raw), e)),
            }
        }
        let reqs: Vec<LockReq> = items
            .iter()
            .map(|(_, (id, _, segs))| {
                let folder = st.files.get(id).is_some_and(|n| n.folder);
                lreq(uid, "my", segs, false, folder, "moveCopy")
            })
            .collect();
        let locks = take_locks(&inner, &mut st, &reqs)?;
        let root = st.users.get(&uid).map(|u| u.root).unwrap_or_default();
        let origin = events::origin(&headers);
        for (raw, (id, tname, segs)) in items {
            let Some((name, parent_segs)) = segs.split_last() else {
                fails.push((agg_key(&raw), err::not_exist()));
                continue;
            };
            let parent = match st.walk(root, parent_segs) {
                Some(p) if st.files.get(&p).is_some_and(|n| n.folder) => p,
                _ => {
                    fails.push((agg_key(&raw), err::not_exist()));
                    continue;
                }
            };
            if st.child(parent, name).is_some() {
                fails.push((agg_key(&raw), err::existed()));
                continue;
            }
            if let Some(u) = st.users.get_mut(&uid) {
                u.trash.remove(&tname);
            }
            if let Some(n) = st.files.get_mut(&id) {
                n.name = name.clone();
                n.trashed = false;
                n.updated_at = now;
                n.metadata.remove("sys:restore_uri");
                n.metadata.remove("sys:expected_collect_time");
            }
            st.attach(id, parent);
            events::publish(&mut st, Change::Created(id), origin.as_deref());
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
