//! Which upstream object a requested name means when Unicode offers more
//! than one spelling of it.
//!
//! Cloudreve compares names byte for byte. macOS sends names decomposed
//! (NFD: `e` + U+0301), Windows and Linux composed (NFC: `é`), and the web
//! UI stores whatever the browser had. So a name is first taken as spelled
//! (every name a listing shows then reaches its object, and two names that
//! differ only in normalization stay two objects). When nothing has that
//! spelling, a name that is the same after normalization reaches the object
//! if exactly one such name exists in the folder; otherwise a new object is
//! created composed (NFC), as it always was, so that a Mac and a PC writing
//! "the same" name meet on one file.
//!
//! Names whose characters have a single spelling (ASCII among them) skip
//! all of this: no extra upstream call.

use dav_server::davpath::DavPath;
use unicode_normalization::UnicodeNormalization as _;

use crate::cloudreve::CrUri;

use super::ctx::RequestCtx;
use super::fs::lookup;

/// True when no other spelling of `seg` normalizes to the same name.
fn single_spelling(seg: &str) -> bool {
    unicode_normalization::is_nfc(seg) && unicode_normalization::is_nfd(seg)
}

fn nfc(seg: &str) -> String {
    seg.nfc().collect()
}

/// Resolves `path` for this request (see the module doc) and records the
/// outcome in `ctx`, so that every later [`RequestCtx::uri_of`] of it, or
/// of a path below it, uses the object's own spelling. Upstream errors end
/// the resolution quietly: the request then goes on with the name as
/// spelled and meets the same error where it is handled.
pub async fn resolve(ctx: &RequestCtx, path: &DavPath) {
    let Ok(s) = std::str::from_utf8(path.as_bytes()) else {
        return;
    };
    if s.split('/').all(single_spelling) {
        return;
    }
    let segs: Vec<&str> = s.split('/').filter(|s| !s.is_empty()).collect();
    let Some(exact) = ctx.uri_of(path) else {
        return;
    };
    if lookup(ctx, &exact).await.is_ok() {
        return;
    }
    let mut uri = ctx.root.clone();
    let mut changed = false;
    let mut requested = String::new();
    for (i, sent) in segs.iter().enumerate() {
        requested.push('/');
        requested.push_str(sent);
        let seg = &*ctx.upstream_name(sent);
        let last = i + 1 == segs.len();
        let Ok(as_spelled) = uri.join(seg) else {
            return;
        };
        if single_spelling(seg) || (!last && lookup(ctx, &as_spelled).await.is_ok()) {
            uri = as_spelled;
            continue;
        }
        let Some(name) = other_spelling(ctx, &uri, seg).await else {
            return;
        };
        changed |= name != seg;
        let Ok(next) = uri.join(&name) else {
            return;
        };
        uri = next;
        // Recorded per level: dav-server also asks about the parents
        // (a COPY's destination folder, say).
        if changed {
            tracing::debug!(path = %requested, uri = %uri, "name resolved to another Unicode spelling");
            ctx.spell(&requested, uri.clone());
        }
    }
}

/// The name in `parent` that `seg` means when `seg` itself is not there:
/// the one name equal to it after normalization; `seg` composed when there
/// is none (a new name); `seg` as sent when there are several (it reaches
/// none of them). `None` when the folder cannot be listed.
async fn other_spelling(ctx: &RequestCtx, parent: &CrUri, seg: &str) -> Option<String> {
    let wanted = nfc(seg);
    let (_, files) = ctx.session.list_all(parent, 0).await.ok()?;
    if files.iter().any(|f| f.name == seg) {
        return Some(seg.to_string());
    }
    let mut same = files.iter().filter(|f| nfc(&f.name) == wanted);
    match (same.next(), same.next()) {
        (Some(one), None) => Some(one.name.clone()),
        (Some(_), Some(_)) => Some(seg.to_string()),
        (None, _) => Some(wanted),
    }
}
