//! [`CloudreveFs`]: dav-server's `GuardedFileSystem` over the Cloudreve
//! client. Stateless; everything per request lives in [`RequestCtx`].
//!
//! Collection operations and dav-server's member-by-member walks: for
//! DELETE, COPY and MOVE requests, `read_dir` yields **nothing** (the
//! request method is in the ctx), so dav-server never walks a collection:
//! * DELETE of a collection becomes one `remove_dir` → one upstream delete
//!   of the whole subtree (one trash item, one call);
//! * COPY (Depth infinity) of a collection: dav-server's first step,
//!   `create_dir(destination)`, performs the whole upstream copy in one
//!   call; COPY Depth 0 creates just the empty collection;
//! * the deletion of an overwritten destination (COPY/MOVE with
//!   `Overwrite: T`) is put off: the copy/move sets the old destination
//!   aside under a hidden name and deletes it (one call) only once the new
//!   one is in place, or puts it back when a step fails;
//! * MOVE is a single `rename` in dav-server already.
//!
//! This keeps the crate's locking/`If` evaluation and multistatus code while
//! avoiding N upstream calls and N trash items.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dav_server::davpath::DavPath;
use dav_server::fs::{
    DavDirEntry, DavFile, DavMetaData, DavProp, FsError, FsFuture, FsStream, GuardedFileSystem,
    OpenOptions, ReadDirMeta,
};
use futures::FutureExt as _;
use http::Method;

use crate::cloudreve::{CrUri, CreateKind, FileResponse};

use super::ctx::RequestCtx;
use super::errors::{Outcome, classify, map_err};
use super::file_meta::{CrEntry, CrMeta};
use super::junk;
use super::props;
use super::read::ReadFile;
use super::service::DeleteMode;
use super::times_and_checksums;
use super::write::{WriteFile, WriteGuard};

/// Retries of a MKCOL that met a lock conflict (a racing create of the same
/// folder), and the first pause between them (doubled each time: 50 ms up
/// to 400 ms, under a second in all).
const MKCOL_RACE_RETRIES: usize = 4;
const MKCOL_RACE_FIRST_PAUSE: std::time::Duration = std::time::Duration::from_millis(50);

/// Name prefix of the private staging folders used for same-folder copies.
pub const STAGING_PREFIX: &str = ".cloudreve-dav-staging-";
/// Name prefix of a destination that `Overwrite: T` is replacing while the
/// copy or move runs (hidden from listings; see `with_replaced`).
pub const ASIDE_PREFIX: &str = ".cdav-replaced-";

/// How long a quota answer is reused.
pub const QUOTA_TTL: Duration = Duration::from_secs(30);

type Ctx = Arc<RequestCtx>;

/// The Cloudreve-backed file system (cheap to clone).
#[derive(Debug, Clone, Default)]
pub struct CloudreveFs;

/// Metadata of `uri`: from the request cache, the root's listing `parent`
/// (`/file/info` refuses the root), or `/file/info`.
pub async fn lookup(ctx: &RequestCtx, uri: &CrUri) -> Result<FileResponse, FsError> {
    match ctx.cached(uri) {
        Some(Some(f)) => return Ok(f),
        Some(None) => return Err(FsError::NotFound),
        None => {}
    }
    let f = if uri.is_root() || *uri == ctx.root {
        let page = ctx
            .session
            .list_page(uri, 1, None)
            .await
            .map_err(|e| map_err(ctx, "list", &e))?;
        page.parent.ok_or_else(|| {
            ctx.want(http::StatusCode::BAD_GATEWAY, None);
            FsError::GeneralFailure
        })
    } else {
        ctx.session
            .info(uri, false)
            .await
            .map_err(|e| map_err(ctx, "info", &e))
    };
    let f = match f {
        Ok(f) => f,
        Err(FsError::NotFound) => {
            ctx.remember_missing(uri.clone());
            return Err(FsError::NotFound);
        }
        Err(e) => return Err(e),
    };
    ctx.remember(uri.clone(), f.clone());
    Ok(f)
}

fn uri_of(ctx: &RequestCtx, path: &DavPath) -> Result<CrUri, FsError> {
    ctx.uri_of(path).ok_or(FsError::NotFound)
}

/// True when `f` (listed in `parent`) must not be shown: the gateway's
/// staging folders, junk names the account's junk policy hides.
pub(crate) fn hidden(ctx: &RequestCtx, parent: &CrUri, f: &FileResponse) -> bool {
    (parent.is_root() && f.name.starts_with(STAGING_PREFIX) && ctx.root.is_root())
        || f.name.starts_with(ASIDE_PREFIX)
        || (ctx.junk.hides_upstream() && junk::is_junk(&f.name))
}

async fn parent_is_dir(ctx: &RequestCtx, uri: &CrUri) -> Result<(), FsError> {
    let Some(parent) = uri.parent() else {
        return Err(FsError::Forbidden);
    };
    match lookup(ctx, &parent).await {
        Ok(p) if p.is_folder() => Ok(()),
        Ok(_) => Err(FsError::NotFound),
        Err(e) => Err(e),
    }
}

fn read_dir_stream(
    ctx: Ctx,
    uri: CrUri,
    first: crate::cloudreve::ListPage,
    parked: Vec<CrEntry>,
) -> FsStream<Box<dyn DavDirEntry>> {
    struct St {
        ctx: Ctx,
        uri: CrUri,
        items: std::vec::IntoIter<FileResponse>,
        next: Option<String>,
        parked: std::vec::IntoIter<CrEntry>,
        done: bool,
    }
    let next = first.next_token().map(str::to_string);
    let st = St {
        ctx,
        uri,
        items: first.files.into_iter(),
        next,
        parked: parked.into_iter(),
        done: false,
    };
    let s = futures::stream::unfold(st, |mut st| async move {
        loop {
            if st.done {
                return None;
            }
            if let Some(f) = st.items.next() {
                if hidden(&st.ctx, &st.uri, &f) {
                    continue;
                }
                let meta = CrMeta::from_file(&f);
                if let Ok(child) = st.uri.join(&f.name) {
                    st.ctx.remember(child, f.clone());
                }
                let name = st.ctx.into_client_name(f.name);
                let e: Box<dyn DavDirEntry> = Box::new(CrEntry { name, meta });
                return Some((Ok(e), st));
            }
            let Some(token) = st.next.take() else {
                // Upstream members done: the junk parked in this folder.
                let e = st.parked.next()?;
                return Some((Ok(Box::new(e) as Box<dyn DavDirEntry>), st));
            };
            let page_size = st.ctx.settings.page_size;
            match st
                .ctx
                .session
                .list_page(&st.uri, page_size, Some(&token))
                .await
            {
                Ok(p) => {
                    st.next = p
                        .next_token()
                        .filter(|t| *t != token.as_str())
                        .map(str::to_string);
                    st.items = p.files.into_iter();
                }
                Err(e) => {
                    // dav-server would skip the failure and close the 207
                    // normally: a partial listing. Cut the response instead.
                    let fe = map_err(&st.ctx, "list(next page)", &e);
                    st.ctx.abort();
                    st.done = true;
                    return Some((Err(fe), st));
                }
            }
        }
    });
    Box::pin(s)
}

impl CloudreveFs {
    async fn do_read_dir(
        &self,
        path: &DavPath,
        ctx: &Ctx,
    ) -> Result<FsStream<Box<dyn DavDirEntry>>, FsError> {
        let m = &ctx.method;
        if *m == Method::DELETE || m.as_str() == "COPY" || m.as_str() == "MOVE" {
            // See the module doc: no member-by-member walks.
            return Ok(Box::pin(futures::stream::empty()));
        }
        let uri = uri_of(ctx, path)?;
        let first = match ctx.take_first_page(&uri) {
            Some(p) => p,
            None => ctx
                .session
                .list_page(&uri, ctx.settings.page_size, None)
                .await
                .map_err(|e| map_err(ctx, "list", &e))?,
        };
        if let Some(p) = &first.parent {
            ctx.remember(uri.clone(), p.clone());
        }
        let parked = match &ctx.park {
            Some(root) => match junk::local_path(root, path) {
                Some(dir) => tokio::task::spawn_blocking(move || junk::parked_entries(&dir))
                    .await
                    .unwrap_or_default(),
                None => Vec::new(),
            },
            None => Vec::new(),
        };
        Ok(read_dir_stream(ctx.clone(), uri, first, parked))
    }

    async fn do_open(
        &self,
        path: &DavPath,
        options: OpenOptions,
        ctx: &Ctx,
    ) -> Result<Box<dyn DavFile>, FsError> {
        let uri = uri_of(ctx, path)?;
        if !options.write {
            let f = lookup(ctx, &uri).await?;
            let meta = CrMeta::from_file(&f);
            let mut r = ReadFile::new(ctx.clone(), uri, meta);
            if ctx.method == Method::GET && !f.is_folder() {
                r.prepare().await?;
            }
            return Ok(Box::new(r));
        }
        if uri == ctx.root {
            return Err(FsError::Forbidden);
        }
        let existing = match lookup(ctx, &uri).await {
            Ok(f) => Some(f),
            Err(FsError::NotFound) => None,
            Err(e) => return Err(e),
        };
        match &existing {
            Some(f) if f.is_folder() => return Err(FsError::Forbidden),
            Some(_) if options.create_new => return Err(FsError::Exists),
            None if !options.create => return Err(FsError::NotFound),
            None => parent_is_dir(ctx, &uri).await?,
            Some(_) => {}
        }
        if ctx.method.as_str() == "LOCK" {
            // RFC 4918 lock-empty resource: create it now (an existing
            // resource is left alone).
            let f = match existing {
                Some(f) => f,
                None => {
                    let f = ctx
                        .session
                        .create(&uri, CreateKind::File, false, None)
                        .await
                        .map_err(|e| map_err(ctx, "create", &e))?;
                    ctx.forget_all();
                    f
                }
            };
            return Ok(Box::new(WriteFile::done(ctx.clone(), uri, &f)));
        }
        if !options.truncate {
            // Partial updates cannot be done through the API.
            return Err(FsError::NotImplemented);
        }
        // dav-server has checked If-Match against `existing`: the upstream
        // write must still find that version (module doc of `write`).
        let previous = existing
            .as_ref()
            .filter(|f| {
                let tag = CrMeta::from_file(f).etag;
                ctx.if_match.as_ref().is_some_and(|t| t.contains(&tag))
            })
            .map(|f| crate::cloudreve::Previous {
                id: f.id.clone(),
                entity: f.primary_entity.clone().filter(|e| !e.is_empty()),
            });
        let guard = WriteGuard {
            previous,
            create_new: options.create_new,
        };
        let w = WriteFile::open(
            ctx.clone(),
            uri,
            options.size,
            options.checksum.as_deref(),
            guard,
        )
        .await?;
        Ok(Box::new(w))
    }

    async fn do_create_dir(&self, path: &DavPath, ctx: &Ctx) -> Result<(), FsError> {
        no_earlier_upstream_failure(ctx)?;
        let uri = uri_of(ctx, path)?;
        if ctx.method.as_str() == "COPY"
            && !ctx.depth_zero()
            && ctx.destination.as_ref() == Some(&uri)
            && let Some(src) = ctx.target.clone()
        {
            // Whole-collection COPY in one upstream call (module doc).
            return with_replaced(ctx, &uri, copy_obj(ctx, &src, &uri)).await;
        }
        parent_is_dir(ctx, &uri).await?;
        // Cloudreve locks the path while it creates a folder, so a second
        // client creating the same folder at that moment (rclone and davfs2
        // create parents in parallel) meets a lock conflict that lasts
        // only as long as the first create. Retry a few times; once the
        // folder exists the answer becomes the usual 405.
        let mut pause = MKCOL_RACE_FIRST_PAUSE;
        let mut r = ctx
            .session
            .create(&uri, CreateKind::Folder, true, None)
            .await;
        for _ in 0..MKCOL_RACE_RETRIES {
            match &r {
                Err(e) if e.is_locked() => {
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                    r = ctx
                        .session
                        .create(&uri, CreateKind::Folder, true, None)
                        .await;
                }
                _ => break,
            }
        }
        ctx.forget_all();
        r.map(drop).map_err(|e| map_err(ctx, "create", &e))
    }

    async fn do_remove(&self, path: &DavPath, ctx: &Ctx) -> Result<(), FsError> {
        let uri = uri_of(ctx, path)?;
        if uri == ctx.root {
            return Err(FsError::Forbidden);
        }
        if matches!(ctx.method.as_str(), "COPY" | "MOVE")
            && ctx.destination.as_ref() == Some(&uri)
            && ctx.target.as_ref() != Some(&uri)
        {
            // `Overwrite: T`: dav-server deletes the destination before it
            // copies or moves. Deleting now would lose it if a later step
            // fails, so the replacement happens in the copy/move itself.
            ctx.defer_replace(uri);
            return Ok(());
        }
        let r = ctx
            .session
            .delete(std::slice::from_ref(&uri), false, permanent(ctx))
            .await;
        ctx.forget_all();
        r.map_err(|e| map_err(ctx, "delete", &e))
    }

    async fn do_rename(&self, from: &DavPath, to: &DavPath, ctx: &Ctx) -> Result<(), FsError> {
        no_earlier_upstream_failure(ctx)?;
        let src = uri_of(ctx, from)?;
        let dst = uri_of(ctx, to)?;
        if src == ctx.root || dst == ctx.root {
            return Err(FsError::Forbidden);
        }
        let r = with_replaced(ctx, &dst, move_obj(ctx, &src, &dst)).await;
        ctx.forget_all();
        r
    }

    async fn do_copy(&self, from: &DavPath, to: &DavPath, ctx: &Ctx) -> Result<(), FsError> {
        no_earlier_upstream_failure(ctx)?;
        let src = uri_of(ctx, from)?;
        let dst = uri_of(ctx, to)?;
        if dst == ctx.root {
            return Err(FsError::Forbidden);
        }
        with_replaced(ctx, &dst, copy_obj(ctx, &src, &dst)).await
    }

    async fn do_quota(&self, ctx: &Ctx) -> Result<(u64, Option<u64>), FsError> {
        quota(ctx).await
    }
}

/// The user's `(used, Some(total))`, from the shared cache or
/// `GET /user/capacity`.
pub(crate) async fn quota(ctx: &RequestCtx) -> Result<(u64, Option<u64>), FsError> {
    let key = ctx.principal.email.clone();
    if let Some(q) = ctx.quota.get(&key) {
        return Ok(q);
    }
    let c = ctx
        .session
        .capacity()
        .await
        .map_err(|e| map_err(ctx, "capacity", &e))?;
    let used = c.used.max(0) as u64;
    let avail = c.total.saturating_sub(c.used).max(0) as u64;
    let q = (used, Some(used + avail));
    ctx.quota.put(key, q);
    Ok(q)
}

/// Refuses a creating step once an upstream failure was recorded for this
/// request. dav-server takes any error of its destination check as "does
/// not exist" (and its parent check as "no parent"), so after a failed
/// lookup it would go on to MOVE or COPY onto a destination it never
/// deleted (Cloudreve: 40004, shown as 405) or ignore `Overwrite: F`. The
/// recorded 5xx (with `Retry-After`) is answered instead.
fn no_earlier_upstream_failure(ctx: &RequestCtx) -> Result<(), FsError> {
    match ctx.wanted() {
        Some(w) if w.status.is_server_error() => {
            tracing::info!(
                status = w.status.as_u16(),
                "not going on after an upstream failure earlier in this request"
            );
            Err(FsError::GeneralFailure)
        }
        _ => Ok(()),
    }
}

/// Whether deletions of this request skip the trash.
fn permanent(ctx: &RequestCtx) -> bool {
    ctx.settings.delete_mode == DeleteMode::Permanent
}

/// Runs `op` (a copy or move onto `dst`), first setting aside a
/// destination that `Overwrite: T` is replacing: it is renamed to a unique
/// hidden name in its folder, `op` runs, and then the set-aside object is
/// deleted (success) or renamed back (failure). Whatever fails, the client
/// never loses the old destination without getting the new one.
async fn with_replaced(
    ctx: &RequestCtx,
    dst: &CrUri,
    op: impl std::future::Future<Output = Result<(), FsError>>,
) -> Result<(), FsError> {
    if !ctx.take_replace(dst) {
        return op.await;
    }
    let s = &ctx.session;
    let (dp, dn) = parent_and_name(dst)?;
    let aside_name = format!("{ASIDE_PREFIX}{}", uuid::Uuid::new_v4().simple());
    let aside = dp.join(&aside_name).map_err(|_| FsError::GeneralFailure)?;
    if let Err(e) = s.rename(dst, &aside_name).await {
        let fe = map_err(ctx, "rename(aside)", &e);
        // A lost answer may hide a rename that was applied.
        put_back(ctx, &aside, dst, &dn).await;
        ctx.forget_all();
        return Err(fe);
    }
    ctx.forget_all();
    let r = op.await;
    ctx.forget_all();
    match r {
        Ok(()) => {
            remove_retrying(s, &aside, permanent(ctx), "the replaced destination").await;
            Ok(())
        }
        Err(fe) => {
            // The destination name was free once set aside: an object there
            // now is the copy or move, applied with its answer lost.
            if s.info(dst, false).await.is_ok() {
                tracing::info!(uri = %dst, "the copy/move was applied despite a failed answer");
                remove_retrying(s, &aside, permanent(ctx), "the replaced destination").await;
                return Ok(());
            }
            put_back(ctx, &aside, dst, &dn).await;
            Err(fe)
        }
    }
}

/// Renames a set-aside destination back to its name `dn` (at `dst`), on
/// the schedule of [`retry_then_background`]; nothing to do when it is not
/// there, and it stops when the name has been taken meanwhile (both
/// objects are kept).
async fn put_back(ctx: &RequestCtx, aside: &CrUri, dst: &CrUri, dn: &str) {
    /// `true`: done, or nothing (more) to do.
    async fn attempt(s: &crate::cloudreve::Session, aside: &CrUri, dst: &CrUri, dn: &str) -> bool {
        match s.rename(aside, dn).await {
            Ok(_) => {
                tracing::info!(uri = %dst, "a replaced destination was put back after a failed step");
                true
            }
            Err(e) if e.is_not_found() => true,
            Err(e) => {
                if s.info(aside, false).await.is_err_and(|e| e.is_not_found()) {
                    // Applied with its answer lost.
                    return true;
                }
                if s.info(dst, false).await.is_ok() {
                    tracing::error!(uri = %aside, name = dn, "a replaced destination cannot be put back: its name is taken; it stays under its hidden name");
                    return true;
                }
                tracing::info!(uri = %aside, error = %e, "putting back a replaced destination failed");
                false
            }
        }
    }
    let (s, aside, dst, dn) = (
        ctx.session.clone(),
        aside.clone(),
        dst.clone(),
        dn.to_string(),
    );
    let gave_up = {
        let (aside, dn) = (aside.clone(), dn.clone());
        move || tracing::error!(uri = %aside, name = dn, "a replaced destination could not be put back; it stays under its hidden name")
    };
    retry_then_background(
        move |_| {
            let (s, aside, dst, dn) = (s.clone(), aside.clone(), dst.clone(), dn.clone());
            async move { attempt(&s, &aside, &dst, &dn).await }
        },
        gave_up,
    )
    .await;
}

fn parent_and_name(u: &CrUri) -> Result<(CrUri, String), FsError> {
    let p = u.parent().ok_or(FsError::Forbidden)?;
    Ok((p, u.name().to_string()))
}

/// MOVE `src` to `dst` (the destination no longer exists). Cloudreve's move
/// keeps names and its rename stays in the folder, so a move with a new name
/// is: rename to a unique temporary name, move, rename to the final name —
/// neither step can collide with an existing sibling. When a step fails,
/// the object is found again by its id (a lost answer may hide a step that
/// was applied) and the move is completed if only the final rename is
/// missing, else rolled back.
async fn move_obj(ctx: &RequestCtx, src: &CrUri, dst: &CrUri) -> Result<(), FsError> {
    let s = &ctx.session;
    let (sp, sn) = parent_and_name(src)?;
    let (dp, dn) = parent_and_name(dst)?;
    if sp == dp {
        return s
            .rename(src, &dn)
            .await
            .map(drop)
            .map_err(|e| map_err(ctx, "rename", &e));
    }
    if sn == dn {
        return s
            .move_or_copy(std::slice::from_ref(src), &dp, false)
            .await
            .map_err(|e| map_err(ctx, "move", &e));
    }
    let id = match lookup(ctx, src).await {
        Ok(f) => f.id,
        Err(e) => return Err(e),
    };
    let tmp = format!(".cdav-mv-{}", uuid::Uuid::new_v4().simple());
    let src_tmp = sp.join(&tmp).map_err(|_| FsError::GeneralFailure)?;
    let dst_tmp = dp.join(&tmp).map_err(|_| FsError::GeneralFailure)?;
    let steps = async {
        s.rename(src, &tmp).await.map_err(|e| ("rename(tmp)", e))?;
        s.move_or_copy(std::slice::from_ref(&src_tmp), &dp, false)
            .await
            .map_err(|e| ("move", e))?;
        s.rename(&dst_tmp, &dn).await.map_err(|e| ("rename", e))?;
        Ok::<(), (&str, crate::cloudreve::Error)>(())
    };
    let Err((op, e)) = steps.await else {
        return Ok(());
    };
    let fe = map_err(ctx, op, &e);
    let mut settled = settle_move(s, &id, src, dst, &src_tmp, &dst_tmp).await;
    for pause in [
        std::time::Duration::from_millis(200),
        std::time::Duration::from_secs(1),
    ] {
        if settled.is_ok() {
            break;
        }
        tokio::time::sleep(pause).await;
        settled = settle_move(s, &id, src, dst, &src_tmp, &dst_tmp).await;
    }
    match settled {
        Ok(true) => {
            tracing::info!(%src, %dst, "MOVE completed after a failed step");
            ctx.forget_all();
            Ok(())
        }
        Ok(false) => Err(fe),
        Err(re) => {
            tracing::error!(%src, %dst, id, error = %re, "MOVE could not be completed or rolled back");
            Err(fe)
        }
    }
}

/// After a failed step of [`move_obj`]: where is object `id` now? At
/// `dst` (done: true), at `dst_tmp` (renamed to the final name: true), at
/// `src_tmp` (renamed back: false), at `src` (false).
async fn settle_move(
    s: &crate::cloudreve::Session,
    id: &str,
    src: &CrUri,
    dst: &CrUri,
    src_tmp: &CrUri,
    dst_tmp: &CrUri,
) -> Result<bool, crate::cloudreve::Error> {
    let now = s.info_by_id(id, false).await?;
    let here = |u: &CrUri| {
        now.path
            .as_deref()
            .is_some_and(|p| CrUri::parse(p).is_ok_and(|x| &x == u))
    };
    if here(dst) {
        return Ok(true);
    }
    if here(dst_tmp) {
        s.rename(dst_tmp, dst.name()).await?;
        return Ok(true);
    }
    if here(src_tmp) {
        s.rename(src_tmp, src.name()).await?;
    }
    Ok(false)
}

/// COPY `src` (file or whole collection) to `dst` (which does not exist).
/// Cloudreve's copy keeps names; a copy to another name goes through a
/// private staging folder (copy there, rename, move into place, remove the
/// staging folder), so nothing visible is touched until the last step.
async fn copy_obj(ctx: &RequestCtx, src: &CrUri, dst: &CrUri) -> Result<(), FsError> {
    let s = &ctx.session;
    let (_, sn) = parent_and_name(src)?;
    let (dp, dn) = parent_and_name(dst)?;
    parent_is_dir(ctx, dst).await?;
    if sn == dn && src.parent().as_ref() != Some(&dp) {
        let r = s
            .move_or_copy(std::slice::from_ref(src), &dp, true)
            .await
            .map_err(|e| map_err(ctx, "copy", &e));
        ctx.forget_all();
        return r;
    }
    let stage = CrUri::root(ctx.root.fs())
        .join(&format!(
            "{STAGING_PREFIX}{}",
            uuid::Uuid::new_v4().simple()
        ))
        .map_err(|_| FsError::GeneralFailure)?;
    if let Err(e) = s.create(&stage, CreateKind::Folder, true, None).await {
        // The folder may exist all the same (a lost answer).
        let fe = map_err(ctx, "create(staging)", &e);
        remove_staging(s, &stage).await;
        return Err(fe);
    }
    let r = async {
        s.move_or_copy(std::slice::from_ref(src), &stage, true)
            .await
            .map_err(|e| map_err(ctx, "copy(staging)", &e))?;
        let staged = stage.join(&sn).map_err(|_| FsError::GeneralFailure)?;
        if sn != dn {
            s.rename(&staged, &dn)
                .await
                .map_err(|e| map_err(ctx, "rename(staging)", &e))?;
        }
        let staged = stage.join(&dn).map_err(|_| FsError::GeneralFailure)?;
        s.move_or_copy(std::slice::from_ref(&staged), &dp, false)
            .await
            .map_err(|e| map_err(ctx, "move(staging)", &e))
    }
    .await;
    remove_staging(s, &stage).await;
    ctx.forget_all();
    r
}

/// Removes a COPY staging folder (permanently), see [`remove_retrying`].
async fn remove_staging(s: &crate::cloudreve::Session, stage: &CrUri) {
    remove_retrying(s, stage, true, "the staging folder").await;
}

/// Pauses between the attempts of a clean-up that failed inline and goes
/// on in the background (about two minutes in all).
const BACKGROUND_PAUSES: [Duration; 8] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(8),
    Duration::from_secs(15),
    Duration::from_secs(30),
    Duration::from_secs(30),
    Duration::from_secs(30),
];

/// Deletes a gateway-made object (`what`), on the schedule of
/// [`retry_then_background`]; an object already gone counts as removed.
async fn remove_retrying(
    s: &crate::cloudreve::Session,
    uri: &CrUri,
    permanent: bool,
    what: &'static str,
) {
    let (s, uri) = (s.clone(), uri.clone());
    let gave_up = {
        let uri = uri.clone();
        move || tracing::warn!(%uri, "removing {what} failed; it stays under its hidden name")
    };
    retry_then_background(
        move |in_background| {
            let (s, uri) = (s.clone(), uri.clone());
            async move {
                match s.delete(std::slice::from_ref(&uri), false, permanent).await {
                    Err(e) if !e.is_not_found() => {
                        tracing::info!(%uri, error = %e, "removing {what} failed; trying again");
                        false
                    }
                    _ => {
                        if in_background {
                            tracing::info!(%uri, "removed {what} in the background");
                        }
                        true
                    }
                }
            }
        },
        gave_up,
    )
    .await;
}

/// Runs `attempt` until it reports `true` (done, or nothing left to do):
/// now, after 0.2 s and after 1 s while the request waits, then in a
/// background task after each of [`BACKGROUND_PAUSES`], so the request is
/// not held up; `gave_up` runs when the last attempt fails too. `attempt`
/// is told whether it runs in the background.
async fn retry_then_background<F, Fut>(attempt: F, gave_up: impl FnOnce() + Send + 'static)
where
    F: Fn(bool) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    for pause in [
        Duration::ZERO,
        Duration::from_millis(200),
        Duration::from_secs(1),
    ] {
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
        if attempt(false).await {
            return;
        }
    }
    tokio::spawn(async move {
        for pause in BACKGROUND_PAUSES {
            tokio::time::sleep(pause).await;
            if attempt(true).await {
                return;
            }
        }
        gave_up();
    });
}

impl GuardedFileSystem<Ctx> for CloudreveFs {
    fn open<'a>(
        &'a self,
        path: &'a DavPath,
        options: OpenOptions,
        ctx: &'a Ctx,
    ) -> FsFuture<'a, Box<dyn DavFile>> {
        self.do_open(path, options, ctx).boxed()
    }

    fn read_dir<'a>(
        &'a self,
        path: &'a DavPath,
        _meta: ReadDirMeta,
        ctx: &'a Ctx,
    ) -> FsFuture<'a, FsStream<Box<dyn DavDirEntry>>> {
        self.do_read_dir(path, ctx).boxed()
    }

    fn metadata<'a>(
        &'a self,
        path: &'a DavPath,
        ctx: &'a Ctx,
    ) -> FsFuture<'a, Box<dyn DavMetaData>> {
        async move {
            let uri = uri_of(ctx, path)?;
            let f = lookup(ctx, &uri).await?;
            Ok(Box::new(CrMeta::from_file(&f)) as Box<dyn DavMetaData>)
        }
        .boxed()
    }

    fn create_dir<'a>(&'a self, path: &'a DavPath, ctx: &'a Ctx) -> FsFuture<'a, ()> {
        self.do_create_dir(path, ctx).boxed()
    }

    fn remove_dir<'a>(&'a self, path: &'a DavPath, ctx: &'a Ctx) -> FsFuture<'a, ()> {
        self.do_remove(path, ctx).boxed()
    }

    fn remove_file<'a>(&'a self, path: &'a DavPath, ctx: &'a Ctx) -> FsFuture<'a, ()> {
        self.do_remove(path, ctx).boxed()
    }

    fn rename<'a>(&'a self, from: &'a DavPath, to: &'a DavPath, ctx: &'a Ctx) -> FsFuture<'a, ()> {
        self.do_rename(from, to, ctx).boxed()
    }

    fn copy<'a>(&'a self, from: &'a DavPath, to: &'a DavPath, ctx: &'a Ctx) -> FsFuture<'a, ()> {
        self.do_copy(from, to, ctx).boxed()
    }

    fn have_props<'a>(
        &'a self,
        _path: &'a DavPath,
        _ctx: &'a Ctx,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send + 'a>> {
        Box::pin(futures::future::ready(true))
    }

    /// Dead properties go to Cloudreve metadata in one call (UPSTREAM §4.8 format);
    /// a refusal is reported per property in a 207 (never a bare 501).
    fn patch_props<'a>(
        &'a self,
        path: &'a DavPath,
        patch: Vec<(bool, DavProp)>,
        ctx: &'a Ctx,
    ) -> FsFuture<'a, Vec<(http::StatusCode, DavProp)>> {
        async move {
            let uri = uri_of(ctx, path)?;
            let all = |st: http::StatusCode, patch: Vec<(bool, DavProp)>| {
                patch.into_iter().map(|(_, p)| (st, p)).collect::<Vec<_>>()
            };
            if uri == ctx.root {
                // Cloudreve stores no metadata on the root.
                return Ok(all(http::StatusCode::FORBIDDEN, patch));
            }
            // Document order (RFC 4918 §9.2): the last instruction per key
            // wins (Cloudreve applies all upserts before all removals).
            let mut patches: Vec<crate::cloudreve::MetadataPatch> = Vec::with_capacity(patch.len());
            for (set, p) in &patch {
                match props::patch_of(*set, p) {
                    Some(m) => {
                        patches.retain(|x| x.key != m.key);
                        patches.push(m);
                    }
                    None => return Ok(all(http::StatusCode::FORBIDDEN, patch)),
                }
            }
            // Times of the same PROPPATCH (`kept`) go in the same call.
            if !ctx.times.is_empty() {
                let f = lookup(ctx, &uri).await?;
                let entity = f.primary_entity.unwrap_or_default();
                patches.extend(ctx.times.patches(&entity));
            }
            let r = ctx
                .session
                .patch_metadata(std::slice::from_ref(&uri), &patches)
                .await;
            ctx.forget_all();
            match r {
                Ok(()) => {
                    if !ctx.times.is_empty() {
                        ctx.set_times_kept();
                    }
                    Ok(all(http::StatusCode::OK, patch))
                }
                Err(e) => {
                    if e.is_locked() {
                        // The gateway answers 423 naming the holder.
                        ctx.record_conflicts(e.lock_conflicts());
                    }
                    let st = match classify(&e) {
                        Outcome::Fs(FsError::NotFound) => http::StatusCode::NOT_FOUND,
                        Outcome::Fs(FsError::Forbidden) => http::StatusCode::FORBIDDEN,
                        Outcome::Fs(FsError::InsufficientStorage) => {
                            http::StatusCode::INSUFFICIENT_STORAGE
                        }
                        Outcome::Fs(_) => http::StatusCode::CONFLICT,
                        Outcome::Status(s, _) => s,
                    };
                    tracing::info!(%uri, error = %e, status = st.as_u16(), "PROPPATCH refused upstream");
                    Ok(all(st, patch))
                }
            }
        }
        .boxed()
    }

    fn get_props<'a>(
        &'a self,
        path: &'a DavPath,
        do_content: bool,
        ctx: &'a Ctx,
    ) -> FsFuture<'a, Vec<DavProp>> {
        async move {
            if ctx.park.is_some() && junk::path_is_junk(path) {
                // A parked member of a listing: no dead properties.
                return Ok(Vec::new());
            }
            let uri = uri_of(ctx, path)?;
            let f = lookup(ctx, &uri).await?;
            let mut v = props::props_of(&f, do_content);
            v.extend(times_and_checksums::checksums_prop(&f, do_content));
            Ok(v)
        }
        .boxed()
    }

    /// Always "not found": dav-server 0.11 appends every dead property
    /// from [`get_props`](GuardedFileSystem::get_props) to every PROPFIND
    /// response anyway, so answering here would list requested dead
    /// properties twice. Absent ones get their 404 propstat from
    /// [`propfind_fixup`](super::propfind_fixup).
    fn get_prop<'a>(
        &'a self,
        _path: &'a DavPath,
        _prop: DavProp,
        _ctx: &'a Ctx,
    ) -> FsFuture<'a, Vec<u8>> {
        futures::future::ready(Err(FsError::NotFound)).boxed()
    }

    fn get_quota<'a>(&'a self, ctx: &'a Ctx) -> FsFuture<'a, (u64, Option<u64>)> {
        self.do_quota(ctx).boxed()
    }
}

/// `(used, Some(total))` as dav-server wants it.
type Quota = (u64, Option<u64>);

/// A per-user quota cache shared by all requests.
#[derive(Debug, Default)]
pub struct QuotaCache {
    map: std::sync::Mutex<std::collections::HashMap<String, (Instant, Quota)>>,
}

impl QuotaCache {
    fn get(&self, key: &str) -> Option<(u64, Option<u64>)> {
        let m = self.map.lock().ok()?;
        m.get(key)
            .filter(|(t, _)| t.elapsed() < QUOTA_TTL)
            .map(|(_, q)| *q)
    }

    fn put(&self, key: String, q: (u64, Option<u64>)) {
        if let Ok(mut m) = self.map.lock() {
            m.insert(key, (Instant::now(), q));
        }
    }
}
