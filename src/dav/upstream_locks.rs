//! Cloudreve's own locks (UPSTREAM §4.9): 40073 conflicts become 423 with a
//! `DAV:error` body naming the locked path and the owning application,
//! LOCK probes upstream before granting, and UNLOCK with an upstream token
//! force-unlocks (`DELETE /file/lock`, docs/UPSTREAM.md §4.9).
//!
//! Upstream tokens are bare UUIDs; the gateway shows them as
//! `opaquelocktoken:<uuid>` (RFC 4918 appendix C), which never collides
//! with its own `urn:uuid:` tokens, and accepts either form back.
//!
//! The lock probe: Cloudreve has no call that lists or tests locks. The
//! side-effect-free way to learn of a lock is a metadata patch that removes
//! a key nobody sets ([`PROBE_KEY`]): it takes (and releases at once) a
//! zero-depth lock on the target, so it fails with 40073 exactly when the
//! target or an ancestor with depth infinity is locked (a viewer, upload
//! or `/dav` lock), changes nothing otherwise (metadata patches do not
//! touch `updated_at`). Locks on *descendants* of a folder are not
//! revealed; a depth-infinity LOCK on such a folder is granted and the
//! conflict shows up at write time (as a 423 with the body below).

use dav_server::davpath::DavPath;
use http::{HeaderValue, Response, StatusCode, header};

use crate::cloudreve::{CrUri, LockConflict, MetadataPatch};
use crate::shared::{BoxBody, full_body};

use super::ctx::RequestCtx;

/// Namespace of the gateway's own elements in error bodies.
pub const NS: &str = "urn:cloudreve-dav:";
/// Metadata key removed by the lock probe (never set by anyone).
pub const PROBE_KEY: &str = "dav:urn:cloudreve-dav:|lock-probe";
/// Scheme prefix shown for upstream tokens.
pub const UPSTREAM_TOKEN_PREFIX: &str = "opaquelocktoken:";

/// The human-readable owner of an upstream lock.
pub fn describe(c: &LockConflict) -> String {
    let app = &c.owner.application;
    match app.kind.as_str() {
        "viewer" => match app.viewer_id.as_deref().filter(|v| !v.is_empty()) {
            Some(v) => format!("Cloudreve web editor (viewer {v})"),
            None => "Cloudreve web editor".to_string(),
        },
        "upload" => "upload in progress".to_string(),
        "dav" => match app.inner_xml.as_deref().filter(|x| !x.trim().is_empty()) {
            Some(x) => format!("Cloudreve /dav client (owner {})", x.trim()),
            None => "Cloudreve /dav client".to_string(),
        },
        "" => "another Cloudreve operation".to_string(),
        other => format!("Cloudreve operation in progress ({other})"),
    }
}

/// The token as shown to clients (`opaquelocktoken:<uuid>`).
pub fn shown_token(upstream: &str) -> String {
    format!("{UPSTREAM_TOKEN_PREFIX}{upstream}")
}

/// The upstream token named by a client token, if it is one (our own
/// `urn:uuid:` tokens are not).
pub fn upstream_token(client: &str) -> Option<String> {
    let t = client.trim().trim_matches(|c| c == '<' || c == '>').trim();
    if let Some(u) = t.strip_prefix(UPSTREAM_TOKEN_PREFIX) {
        return (!u.is_empty()).then(|| u.to_string());
    }
    // A bare UUID (`Uuid::parse_str` also takes `urn:uuid:`, which is ours).
    (!t.contains(':') && uuid::Uuid::parse_str(t).is_ok()).then(|| t.to_string())
}

/// The WebDAV href of an upstream conflict path (below the account root),
/// or `fallback` when it is missing or outside the account.
fn href_of(ctx: &RequestCtx, c: &LockConflict, fallback: &str) -> String {
    let Some(u) = c.path.as_deref().and_then(|p| CrUri::parse(p).ok()) else {
        return fallback.to_string();
    };
    if !u.starts_with(&ctx.root) {
        return fallback.to_string();
    }
    let rel = &u.segments()[ctx.root.segments().len()..];
    let mut s = String::new();
    for seg in rel {
        s.push('/');
        s.push_str(&crate::cloudreve::escape_segment(seg));
    }
    if s.is_empty() {
        s.push('/');
    }
    let p = match DavPath::new(&s) {
        Ok(p) => p.as_url_string(),
        Err(_) => s,
    };
    format!("{}{}", ctx.settings.prefix, p)
}

/// The 423 answer for upstream `conflicts` of a request on `raw_path`.
pub fn locked_response(
    ctx: &RequestCtx,
    conflicts: &[LockConflict],
    raw_path: &str,
    is_lock: bool,
) -> Response<BoxBody> {
    let cond = if is_lock {
        "no-conflicting-lock"
    } else {
        "lock-token-submitted"
    };
    let mut hrefs: Vec<String> = conflicts
        .iter()
        .map(|c| href_of(ctx, c, raw_path))
        .collect();
    if hrefs.is_empty() {
        hrefs.push(raw_path.to_string());
    }
    hrefs.dedup();
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
    x.push_str(&format!(
        "<D:error xmlns:D=\"DAV:\" xmlns:G=\"{NS}\">\n<D:{cond}>"
    ));
    for h in &hrefs {
        x.push_str(&format!("<D:href>{}</D:href>", super::xml_text::escape(h)));
    }
    x.push_str(&format!("</D:{cond}>\n"));
    for (c, h) in conflicts
        .iter()
        .zip(hrefs.iter().chain(std::iter::repeat(&hrefs[0])))
    {
        let who = describe(c);
        x.push_str(&format!(
            "<!-- {} is locked upstream by: {} -->\n",
            super::xml_text::escape(h).replace("--", "- -"),
            super::xml_text::escape(&who).replace("--", "- -")
        ));
        x.push_str("<G:upstream-lock>");
        x.push_str(&format!("<D:href>{}</D:href>", super::xml_text::escape(h)));
        x.push_str(&format!(
            "<G:application>{}</G:application>",
            super::xml_text::escape(&c.owner.application.kind)
        ));
        x.push_str(&format!(
            "<G:holder>{}</G:holder>",
            super::xml_text::escape(&who)
        ));
        if let Some(o) = c.owner.application.inner_xml.as_deref() {
            x.push_str(&format!(
                "<G:owner>{}</G:owner>",
                super::xml_text::escape(o)
            ));
        }
        if let Some(t) = c.token.as_deref().filter(|t| !t.is_empty()) {
            x.push_str(&format!(
                "<D:locktoken><D:href>{}</D:href></D:locktoken>",
                super::xml_text::escape(&shown_token(t))
            ));
        }
        x.push_str("</G:upstream-lock>\n");
    }
    if conflicts.is_empty() {
        x.push_str("<!-- locked upstream by another Cloudreve client -->\n");
    }
    x.push_str("</D:error>\n");
    let mut r = Response::new(full_body(x));
    *r.status_mut() = StatusCode::LOCKED;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml; charset=utf-8"),
    );
    r
}

/// The LOCK probe: `Err(conflicts)` when `uri` is locked upstream.
pub async fn probe(ctx: &RequestCtx, uri: &CrUri) -> Result<(), Vec<LockConflict>> {
    if uri.is_root() || *uri == ctx.root {
        return Ok(());
    }
    let patch = MetadataPatch {
        key: PROBE_KEY.to_string(),
        value: String::new(),
        remove: true,
    };
    match ctx
        .session
        .patch_metadata(std::slice::from_ref(uri), std::slice::from_ref(&patch))
        .await
    {
        Err(e) if e.is_locked() => Err(e.lock_conflicts().to_vec()),
        Err(e) => {
            // A missing file or an unrelated refusal: not a lock.
            tracing::debug!(%uri, error = %e, "lock probe inconclusive");
            Ok(())
        }
        Ok(()) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        let u = "2f1c0000-0000-4000-8000-000000000000";
        assert_eq!(
            upstream_token(&format!("<{}>", shown_token(u))).as_deref(),
            Some(u)
        );
        assert_eq!(upstream_token(u).as_deref(), Some(u));
        assert_eq!(upstream_token(&format!("urn:uuid:{u}")), None);
    }
}
