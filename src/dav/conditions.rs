//! The request's conditional headers where the gateway acts on them itself
//! before dav-server evaluates them (RFC 9110 §13, RFC 4918 §10.4):
//!
//! * `If` resource tags given as absolute paths (`</dir/file>`, legal per
//!   RFC 4918 §10.4.1 through `Coded-URL`/`Simple-ref`) are made absolute
//!   URLs: dav-server 0.11 only parses absolute URLs and otherwise drops
//!   the whole header, i.e. ignores every condition in it;
//! * `If-None-Match` is compared weakly (RFC 9110 §13.1.2): the `W/` of
//!   its tags is dropped (dav-server compares them strongly, so a weak tag
//!   never matched); `If-Match` keeps the strong comparison;
//! * [`if_match_tags`] gives the entity tags a PUT's upstream write must
//!   still find ([`super::write::WriteGuard`]);
//! * [`lock_token`]: the `Lock-Token` header some clients (Office) send on
//!   PUT instead of an `If` header.

use http::HeaderMap;

/// Base URL given to absolute-path resource tags (dav-server only uses the
/// path of a tag).
const TAG_BASE: &str = "http://gateway.invalid";

/// The `If` header with every absolute-path resource tag turned into an
/// absolute URL; `None` when nothing needed a change.
pub fn absolute_if_tags(v: &str) -> Option<String> {
    let b = v.as_bytes();
    let mut out = String::with_capacity(v.len() + 32);
    let mut changed = false;
    let mut in_list = false;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'(' if !in_list => in_list = true,
            b')' if in_list => in_list = false,
            b'<' | b'[' => {
                let close = if c == b'<' { b'>' } else { b']' };
                let mut j = i + 1;
                let mut quoted = false;
                while j < b.len() && (quoted || b[j] != close) {
                    if b[j] == b'"' {
                        quoted = !quoted;
                    }
                    j += 1;
                }
                let end = (j + 1).min(b.len());
                let item = &v[i..end];
                if c == b'<' && !in_list && item.starts_with("</") {
                    out.push('<');
                    out.push_str(TAG_BASE);
                    out.push_str(&item[1..]);
                    changed = true;
                } else {
                    out.push_str(item);
                }
                i = end;
                continue;
            }
            _ => {}
        }
        out.push(c as char);
        i += 1;
    }
    changed.then_some(out)
}

/// `If-None-Match` for a weak comparison: the tags without `W/`; `None`
/// when there was no weak tag.
pub fn weak_if_none_match(v: &str) -> Option<String> {
    if !v.contains("W/") {
        return None;
    }
    let items: Vec<&str> = v
        .split(',')
        .map(|t| {
            let t = t.trim();
            t.strip_prefix("W/").unwrap_or(t)
        })
        .collect();
    Some(items.join(", "))
}

/// The strong entity tags of `If-Match`, without quotes. `None` when the
/// header is absent or `*` (a condition on existence, not on a version).
pub fn if_match_tags(headers: &HeaderMap) -> Option<Vec<String>> {
    let mut tags = Vec::new();
    let mut any = false;
    for v in headers.get_all(http::header::IF_MATCH) {
        let Ok(s) = v.to_str() else { continue };
        any = true;
        if s.trim() == "*" {
            return None;
        }
        for t in s.split(',') {
            let t = t.trim();
            if let Some(inner) = t.strip_prefix('"').and_then(|x| x.strip_suffix('"')) {
                tags.push(inner.to_string());
            }
        }
    }
    any.then_some(tags)
}

/// The token of a `Lock-Token` header (angle brackets removed).
pub fn lock_token(headers: &HeaderMap) -> Option<String> {
    let v = headers.get("lock-token")?.to_str().ok()?;
    let t = v
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim();
    (!t.is_empty()).then(|| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_tags_become_urls() {
        assert_eq!(
            absolute_if_tags("</a/b.txt> ([\"e\"])").as_deref(),
            Some("<http://gateway.invalid/a/b.txt> ([\"e\"])")
        );
        assert_eq!(
            absolute_if_tags("</a> (<urn:uuid:1>) </b%20c> (Not <DAV:no-lock>)").as_deref(),
            Some(
                "<http://gateway.invalid/a> (<urn:uuid:1>) <http://gateway.invalid/b%20c> (Not <DAV:no-lock>)"
            )
        );
        // Absolute URLs, untagged lists and tokens inside lists stay.
        assert_eq!(absolute_if_tags("<http://h/a> (<urn:x>)"), None);
        assert_eq!(absolute_if_tags("(</not-a-tag>) ([\"a)b\"])"), None);
        assert_eq!(absolute_if_tags("([\"x</y>\"])"), None);
    }

    #[test]
    fn weak_tags_lose_their_prefix_for_if_none_match() {
        assert_eq!(
            weak_if_none_match("W/\"a\", \"b\"").as_deref(),
            Some("\"a\", \"b\"")
        );
        assert_eq!(weak_if_none_match("\"a\""), None);
    }

    #[test]
    fn if_match_tags_are_strong_and_unquoted() {
        let mut h = HeaderMap::new();
        assert_eq!(if_match_tags(&h), None);
        h.insert("if-match", "\"a\", W/\"b\", c".parse().unwrap());
        assert_eq!(if_match_tags(&h), Some(vec!["a".to_string()]));
        h.insert("if-match", "*".parse().unwrap());
        assert_eq!(if_match_tags(&h), None);
    }

    #[test]
    fn lock_token_without_brackets() {
        let mut h = HeaderMap::new();
        assert_eq!(lock_token(&h), None);
        h.insert("lock-token", " <urn:uuid:1> ".parse().unwrap());
        assert_eq!(lock_token(&h).as_deref(), Some("urn:uuid:1"));
        h.insert("lock-token", "urn:uuid:2".parse().unwrap());
        assert_eq!(lock_token(&h).as_deref(), Some("urn:uuid:2"));
    }
}
