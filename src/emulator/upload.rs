//! Upload sessions (UPSTREAM §5.4–§5.7) and `PUT /file/content` (§5.1). All bodies stream to disk.

use super::caller::current_user;
use super::crypt::{CIPHER, EntityKey, Keystream};
use super::envelope::{ApiError, err, ok, ok_void, parse_json, parse_query};
use super::events::{self, Change};
use super::ids::IdKind;
use super::instance::Inner;
use super::locks::{LockApp, LockReq};
use super::state::{Entity, PolicyKind, State as Model, UploadSession, new_node, valid_name};
use super::tree::{check_fs, file_json, mkdir_p, parse_uri, policy_json, run, take_locks};
use super::uri;
use axum::body::{Body, Bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

/// Drops expired locks and upload sessions.
pub(super) fn sweep(inner: &Inner, st: &mut Model) {
    let now = inner.clock.now();
    st.locks.collect(now);
    let expired: Vec<String> = st
        .sessions
        .values()
        .filter(|s| s.expires <= now)
        .map(|s| s.id.clone())
        .collect();
    for sid in expired {
        if let Some(s) = st.sessions.remove(&sid) {
            abort(inner, st, &s, None);
        }
    }
}

/// Undoes a session: releases its lock, removes the placeholder or the pending marker.
pub(super) fn abort(inner: &Inner, st: &mut Model, s: &UploadSession, origin: Option<&str>) {
    st.locks.remove(&s.lock);
    let _ = std::fs::remove_file(inner.upload_path(&s.id));
    let Some(n) = st.files.get_mut(&s.file) else {
        return;
    };
    let mine = n.metadata.get("sys:upload_session_id") == Some(&s.id);
    if s.new_file && n.primary == 0 && mine {
        events::publish(st, Change::Deleted(s.file), origin);
        let blobs = st.purge(s.file);
        super::tree::remove_blobs(inner, blobs);
    } else if mine {
        n.metadata.remove("sys:upload_session_id");
    }
    inner.touch();
}

/// Size from `Content-Length` or `X-Expected-Entity-Length` (0 when absent).
pub(super) fn sniff_len(headers: &HeaderMap) -> Result<i64, ApiError> {
    for h in ["content-length", "x-expected-entity-length"] {
        if let Some(v) = headers.get(h) {
            return v
                .to_str()
                .ok()
                .and_then(|s| s.trim().parse::<i64>().ok())
                .filter(|n| *n >= 0)
                .ok_or_else(|| ApiError::binding("invalid content length"));
        }
    }
    Ok(0)
}

/// Prepares an upload: checks, lock, placeholder, temp file. Does not register the session.
#[allow(clippy::too_many_arguments)]
pub(super) fn prepare(
    inner: &Inner,
    st: &mut Model,
    uid: u64,
    segs: &[String],
    size: i64,
    entity_type: &str,
    metadata: BTreeMap<String, String>,
    last_modified: Option<DateTime<Utc>>,
    origin: Option<&str>,
) -> Result<UploadSession, ApiError> {
    let Some((name, parent_segs)) = segs.split_last() else {
        return Err(err::existed());
    };
    let now = inner.clock.now();
    let root = st.users.get(&uid).ok_or_else(err::login)?.root;
    let existing = st.walk(root, segs);
    if let Some(e) = existing {
        if st.files.get(&e).is_some_and(|n| n.folder) || entity_type.is_empty() {
            return Err(err::existed());
        }
    } else if entity_type == "live_photo" {
        return Err(err::not_exist());
    }
    if !valid_name(name) {
        return Err(ApiError::new(40052, "Invalid object name"));
    }
    if physical_name_too_long(st.settings.policy, uid, name) {
        return Err(err::untyped());
    }
    let max = st.settings.policy_max_size;
    if max > 0 && size > max {
        return Err(ApiError::new(40049, "File too large"));
    }
    let u = st.users.get(&uid).ok_or_else(err::login)?;
    if u.used.saturating_add(size) > u.quota {
        return Err(ApiError::new(40051, "Insufficient capacity"));
    }
    let ttl = st.settings.upload_ttl;
    let expires = now + chrono::Duration::seconds(ttl);
    let lock = take_locks(
        inner,
        st,
        &[LockReq {
            owner: uid,
            fs: "my".into(),
            path: uri::join_path(segs),
            zero_depth: false,
            file_type: 0,
            app: LockApp::of("upload"),
            expires: Some(expires),
        }],
    )?
    .remove(0);
    let sid = uuid::Uuid::new_v4().to_string();
    let (file, new_file) = match existing {
        Some(e) => {
            if let Some(n) = st.files.get_mut(&e) {
                n.metadata
                    .insert("sys:upload_session_id".into(), sid.clone());
                n.updated_at = now;
            }
            (e, false)
        }
        None => {
            let parent = match mkdir_p(st, uid, parent_segs, now, err::untyped, origin) {
                Ok(p) => p,
                Err(e) => {
                    st.locks.remove(&lock);
                    return Err(e);
                }
            };
            let id = st.alloc();
            let mut n = new_node(id, uid, None, name, false, now);
            // A new file starts with the client's modification time.
            n.updated_at = last_modified.unwrap_or(now);
            n.metadata
                .insert("sys:upload_session_id".into(), sid.clone());
            st.files.insert(id, n);
            st.attach(id, parent);
            events::publish(st, Change::Created(id), origin);
            (id, true)
        }
    };
    let tmp = inner.upload_path(&sid);
    let created = std::fs::File::create(&tmp).and_then(|f| f.set_len(size.max(0) as u64));
    let policy = st.settings.policy;
    let chunk_size = if policy == PolicyKind::Relay {
        0
    } else {
        st.settings.chunk_size
    };
    let s = UploadSession {
        id: sid,
        owner: uid,
        file,
        size,
        chunk_size,
        expires,
        lock,
        new_file,
        metadata,
        policy,
        last_modified,
        key: None,
        client_encrypts: false,
    };
    if created.is_err() {
        abort(inner, st, &s, origin);
        return Err(ApiError::new(50004, "Failed to create upload placeholder"));
    }
    inner.touch();
    Ok(s)
}

/// Completes an upload: the temp file becomes a new entity and the primary version.
pub(super) fn complete(
    inner: &Inner,
    st: &mut Model,
    s: &UploadSession,
    origin: Option<&str>,
) -> Result<u64, ApiError> {
    if !st.locks.contains(&s.lock) {
        return Err(ApiError::new(40073, "Lock expired"));
    }
    if !st.files.contains_key(&s.file) {
        return Err(err::not_exist());
    }
    let now = inner.clock.now();
    let eid = st.alloc();
    std::fs::rename(inner.upload_path(&s.id), inner.blob_path(eid))
        .map_err(|_| ApiError::new(50004, "Failed to upload file"))?;
    st.entities.insert(
        eid,
        Entity {
            id: eid,
            size: s.size,
            created_at: now,
            refs: 1,
            key: s.key.clone(),
        },
    );
    let (old, old_size) = match st.files.get(&s.file) {
        Some(n) => (n.primary, n.size),
        None => (0, 0),
    };
    let blob = st.unref_entity(old);
    if let Some(n) = st.files.get_mut(&s.file) {
        n.primary = eid;
        n.size = s.size;
        // 4.18 keeps the uploader's `last_modified` as the file's time.
        n.updated_at = s.last_modified.unwrap_or(now);
        n.metadata.remove("sys:upload_session_id");
        n.metadata.remove("thumb:disabled");
        for (k, v) in &s.metadata {
            n.metadata.insert(k.clone(), v.clone());
        }
    }
    if let Some(u) = st.users.get_mut(&s.owner) {
        u.used += s.size - old_size;
    }
    if let Some(b) = blob {
        let _ = std::fs::remove_file(inner.blob_path(b));
    }
    st.locks.remove(&s.lock);
    events::publish(st, Change::Modified(s.file), origin);
    inner.touch();
    Ok(s.file)
}

/// The keystream the server encrypts a body with, when the session's content
/// is encrypted and the client did not do it.
fn server_seal(s: &UploadSession, offset: u64) -> Option<Keystream> {
    s.key
        .as_ref()
        .filter(|_| !s.client_encrypts)
        .map(|k| k.at(offset))
}

/// Streams at most `len` bytes of `body` into `path` at `offset` (through
/// `seal` when given); returns bytes written.
async fn write_body(
    path: &std::path::Path,
    offset: u64,
    len: u64,
    body: Body,
    mut seal: Option<Keystream>,
) -> std::io::Result<u64> {
    let mut f = tokio::fs::OpenOptions::new().write(true).open(path).await?;
    f.seek(std::io::SeekFrom::Start(offset)).await?;
    let mut stream = body.into_data_stream();
    let mut written = 0u64;
    while written < len {
        let Some(chunk) = stream.next().await else {
            break;
        };
        let chunk = chunk.map_err(std::io::Error::other)?;
        let take = (len - written).min(chunk.len() as u64) as usize;
        match seal.as_mut() {
            Some(k) => f.write_all(&k.apply(&chunk[..take])).await?,
            None => f.write_all(&chunk[..take]).await?,
        }
        written += take as u64;
    }
    f.flush().await?;
    Ok(written)
}

async fn drain(body: Body) {
    let mut s = body.into_data_stream();
    while let Some(Ok(_)) = s.next().await {}
}

#[derive(Deserialize)]
struct CreateReq {
    #[serde(default)]
    uri: String,
    size: Option<i64>,
    #[serde(default)]
    policy_id: String,
    #[serde(default)]
    entity_type: String,
    #[serde(default)]
    metadata: Option<BTreeMap<String, String>>,
    /// The client's modification time, milliseconds since the epoch.
    #[serde(default)]
    last_modified: Option<i64>,
    /// Ciphers the client can encrypt with (4.10+).
    #[serde(default)]
    encryption_supported: Vec<String>,
}

/// Whether the default local policy's stored name (`{uid}_{random8}_{name}`)
/// exceeds the 255 bytes a file-system name may have: Cloudreve then fails
/// the upload, although the name itself is valid.
fn physical_name_too_long(policy: PolicyKind, uid: u64, name: &str) -> bool {
    policy == PolicyKind::Local && uid.to_string().len() + 10 + name.len() > 255
}

/// `PUT /file/upload`.
pub(super) async fn create(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    run(|| {
        let req: CreateReq = parse_json(&body)?;
        let size = req.size.filter(|s| *s >= 0);
        let meta = req.metadata.unwrap_or_default();
        if req.uri.is_empty()
            || size.is_none()
            || meta.len() > 256
            || !["", "version", "live_photo"].contains(&req.entity_type.as_str())
        {
            return Err(ApiError::binding("invalid upload request"));
        }
        let size = size.unwrap_or(0);
        let u = parse_uri(&req.uri)?;
        let uid = check_fs(&inner, current_user(&inner, &headers)?, &u)?;
        if u.fs != "my" {
            return Err(err::unsupported());
        }
        if inner.ids.decode(&req.policy_id, IdKind::Policy).is_none() {
            return Err(ApiError::new(40001, "unknown policy id"));
        }
        for (k, v) in &meta {
            super::metadata::validate(&inner, k, v, false)?;
        }
        let mut st = inner.lock();
        let last_modified = req
            .last_modified
            .and_then(DateTime::<Utc>::from_timestamp_millis);
        let mut s = prepare(
            &inner,
            &mut st,
            uid,
            &u.segments,
            size,
            &req.entity_type,
            meta,
            last_modified,
            events::origin(&headers).as_deref(),
        )?;
        // An encrypting policy gives a client that offers the cipher a key;
        // a relayed upload is encrypted by the server instead.
        if st.settings.policy_encryption
            && req.encryption_supported.first().map(String::as_str) == Some(CIPHER)
        {
            s.key = Some(EntityKey::random());
            s.client_encrypts = s.policy != PolicyKind::Relay;
        }
        let policy = policy_json(
            &inner,
            s.policy,
            st.settings.policy_max_size,
            st.settings.policy_encryption,
        );
        let mut v = json!({
            "session_id": s.id, "upload_id": "", "chunk_size": s.chunk_size,
            "expires": s.expires.timestamp(), "storage_policy": policy,
            "uri": uri::emit("my", &u.segments),
            "callback_secret": super::dav_accounts::random_letters(32),
        });
        if let Some(k) = s.key.as_ref().filter(|_| s.client_encrypts) {
            v["encrypt_metadata"] = k.session_json();
        }
        if s.policy == PolicyKind::S3 {
            v["upload_urls"] = json!([format!("{}/s3-emulated/{}", inner.base_url, s.id)]);
            v["completeURL"] = json!(format!("{}/s3-emulated/{}/complete", inner.base_url, s.id));
        }
        st.sessions.insert(s.id.clone(), s);
        Ok(ok(v))
    })
}

/// `POST /file/upload/{session_id}/{index}`.
pub(super) async fn chunk(
    State(inner): State<Arc<Inner>>,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Ok(Path((sid, index))) = path else {
        return ApiError::binding("invalid path").into_resp();
    };
    let prep = (|| -> Result<(UploadSession, u64, u64), ApiError> {
        let uid = current_user(&inner, &headers)?;
        let index: i64 = index
            .parse()
            .map_err(|_| ApiError::binding("invalid index"))?;
        if index < 0 {
            return Err(ApiError::binding("invalid index"));
        }
        let mut st = inner.lock();
        sweep(&inner, &mut st);
        let s = st
            .sessions
            .get(&sid)
            .filter(|s| Some(s.owner) == uid)
            .cloned()
            .ok_or_else(|| ApiError::new(40011, "Upload session expired or not exist"))?;
        if s.policy == PolicyKind::S3 {
            return Err(ApiError::new(40006, "Storage policy not supported"));
        }
        let (start, end) = if s.chunk_size <= 0 {
            if index != 0 {
                return Err(ApiError::new(40012, "Invalid chunk index"));
            }
            (0, s.size)
        } else {
            let start = index.saturating_mul(s.chunk_size);
            if !(start < s.size || (s.size == 0 && index == 0)) {
                return Err(ApiError::new(40012, "Invalid chunk index"));
            }
            (start, start.saturating_add(s.chunk_size).min(s.size))
        };
        let expected = end - start;
        let got = sniff_len(&headers)?;
        if got != expected {
            return Err(ApiError::new(
                40013,
                &format!("Invalid Content-Length (expected: {expected})"),
            ));
        }
        Ok((s, start as u64, expected as u64))
    })();
    let (s, start, len) = match prep {
        Ok(x) => x,
        Err(e) => return e.into_resp(),
    };
    let seal = server_seal(&s, start);
    match write_body(&inner.upload_path(&s.id), start, len, body, seal).await {
        Ok(n) if n == len => {}
        _ => return ApiError::new(50004, "Failed to upload file").into_resp(),
    }
    if start + len < s.size as u64 {
        return ok_void();
    }
    let mut st = inner.lock();
    let Some(cur) = st.sessions.get(&s.id).cloned() else {
        return ApiError::new(40011, "Upload session expired or not exist").into_resp();
    };
    match complete(&inner, &mut st, &cur, events::origin(&headers).as_deref()) {
        Ok(_) => {
            st.sessions.remove(&s.id);
            ok_void()
        }
        Err(e) => e.into_resp(),
    }
}

#[derive(Deserialize)]
struct CancelReq {
    #[serde(default)]
    id: String,
    #[serde(default)]
    uri: String,
}

/// `DELETE /file/upload`.
pub(super) async fn cancel(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    run(|| {
        let req: CancelReq = parse_json(&body)?;
        if req.id.is_empty() || req.uri.is_empty() {
            return Err(ApiError::binding("id and uri are required"));
        }
        let u = parse_uri(&req.uri)?;
        let uid = check_fs(&inner, current_user(&inner, &headers)?, &u)?;
        let mut st = inner.lock();
        sweep(&inner, &mut st);
        let root = st.users.get(&uid).ok_or_else(err::login)?.root;
        if let Some(s) = st.sessions.get(&req.id).cloned() {
            let same_file = u.fs == "my" && st.walk(root, &u.segments) == Some(s.file);
            if s.owner != uid || !same_file {
                return Err(ApiError::new(404, "Upload session not exist"));
            }
            st.sessions.remove(&req.id);
            abort(&inner, &mut st, &s, events::origin(&headers).as_deref());
            return Ok(ok_void());
        }
        let id = st.walk(root, &u.segments).ok_or_else(err::not_exist)?;
        if let Some(n) = st.files.get_mut(&id) {
            n.metadata.remove("sys:upload_session_id");
        }
        Ok(ok_void())
    })
}

#[derive(Deserialize)]
struct PutQ {
    uri: Option<String>,
    previous: Option<String>,
}

/// `PUT /file/content`.
pub(super) async fn put_content(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    q: Uri,
    body: Body,
) -> Response {
    let origin = events::origin(&headers);
    let origin = origin.as_deref();
    let prep = (|| -> Result<Result<UploadSession, ApiError>, ApiError> {
        let pq: PutQ = parse_query(q.query())?;
        let raw = pq
            .uri
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::binding("uri is required"))?;
        let u = parse_uri(&raw)?;
        let uid = check_fs(&inner, current_user(&inner, &headers)?, &u)?;
        if u.fs != "my" {
            return Err(err::unsupported());
        }
        let size = sniff_len(&headers)?;
        let mut st = inner.lock();
        if size > st.settings.max_edit_size {
            return Ok(Err(ApiError::new(40049, "File too large")));
        }
        if let Some(prev) = pq.previous.filter(|p| !p.is_empty()) {
            let eid = inner
                .ids
                .decode(&prev, IdKind::Entity)
                .ok_or_else(|| ApiError::new(40001, "unknown version id"))?;
            let root = st.users.get(&uid).ok_or_else(err::login)?.root;
            let cur = st
                .walk(root, &u.segments)
                .and_then(|id| st.files.get(&id))
                .map(|n| n.primary);
            if cur != Some(eid) {
                return Err(ApiError::new(40076, "Version is not the latest"));
            }
        }
        if let Some(name) = u.segments.last()
            && valid_name(name)
            && physical_name_too_long(st.settings.policy, uid, name)
        {
            return Ok(Err(ApiError::new(50004, "Failed to upload file")));
        }
        // An encrypting policy: the server encrypts what it writes itself.
        let encrypt = st.settings.policy_encryption;
        Ok(prepare(
            &inner,
            &mut st,
            uid,
            &u.segments,
            size,
            "version",
            BTreeMap::new(),
            None,
            origin,
        )
        .map(|mut s| {
            s.key = encrypt.then(EntityKey::random);
            s
        }))
    })();
    let s = match prep {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            drain(body).await;
            return e.into_resp();
        }
        Err(e) => return e.into_resp(),
    };
    let len = s.size as u64;
    let seal = server_seal(&s, 0);
    let written = write_body(&inner.upload_path(&s.id), 0, len, body, seal).await;
    let mut st = inner.lock();
    if !matches!(written, Ok(n) if n == len) {
        abort(&inner, &mut st, &s, origin);
        return ApiError::new(50004, "Failed to upload file").into_resp();
    }
    match complete(&inner, &mut st, &s, origin) {
        Ok(id) => {
            let path = super::tree::node_uri(&st, id).unwrap_or_default();
            match st.files.get(&id) {
                Some(n) => ok(file_json(&inner, n, path, false)),
                None => err::not_exist().into_resp(),
            }
        }
        Err(e) => {
            abort(&inner, &mut st, &s, origin);
            e.into_resp()
        }
    }
}
