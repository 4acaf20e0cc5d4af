//! Names Cloudreve refuses: the characters `\ : * ? " < > |` (its
//! `validateFileName`). Linux and macOS allow them (Finder turns a `/`
//! typed in a name into `:`), so a WebDAV client may send them.
//!
//! By default such a name is refused before any upstream call (400, with a
//! body naming the character). With `reserved_names = "map"` each of them
//! is stored as its full-width look-alike (`:` as `：`, …) and shown again
//! as itself, as rclone's encoder does. A name that really contains a
//! look-alike is stored with the mark `‛` (U+201B) before it, and a `‛`
//! that would be read as such a mark is doubled, so no two client names
//! ever share an upstream name.

use std::borrow::Cow;

use dav_server::davpath::DavPath;
use http::{Method, Response, StatusCode};

use crate::shared::BoxBody;

use super::junk::{self, JunkAction};
use super::responses::text;

/// How names with characters Cloudreve refuses are handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReservedNames {
    /// Answer 400 naming the character (default).
    #[default]
    Refuse,
    /// Store them as full-width look-alikes.
    Map,
}

impl std::str::FromStr for ReservedNames {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s {
            "refuse" => Ok(Self::Refuse),
            "map" => Ok(Self::Map),
            other => anyhow::bail!("reserved_names must be `refuse` or `map`, not `{other}`"),
        }
    }
}

/// The characters Cloudreve refuses in names, and their look-alikes.
const PAIRS: [(char, char); 8] = [
    ('\\', '＼'),
    (':', '：'),
    ('*', '＊'),
    ('?', '？'),
    ('"', '＂'),
    ('<', '＜'),
    ('>', '＞'),
    ('|', '｜'),
];

/// Marks a look-alike that is meant literally.
const MARK: char = '‛';

fn look_alike(c: char) -> Option<char> {
    PAIRS.iter().find(|p| p.0 == c).map(|p| p.1)
}

fn reserved_of(c: char) -> Option<char> {
    PAIRS.iter().find(|p| p.1 == c).map(|p| p.0)
}

/// The first character of `name` Cloudreve refuses, if any.
pub fn first_reserved(name: &str) -> Option<char> {
    name.chars().find(|c| look_alike(*c).is_some())
}

/// The upstream spelling of a name a client sent.
pub fn to_upstream(name: &str) -> Cow<'_, str> {
    if !name
        .chars()
        .any(|c| c == MARK || look_alike(c).is_some() || reserved_of(c).is_some())
    {
        return Cow::Borrowed(name);
    }
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 8);
    for (i, &c) in chars.iter().enumerate() {
        if let Some(l) = look_alike(c) {
            out.push(l);
        } else if reserved_of(c).is_some() {
            out.push(MARK);
            out.push(c);
        } else if c == MARK {
            // Doubled when what follows would otherwise read as marked.
            let next = chars.get(i + 1).copied();
            let marks_next = next
                .is_some_and(|n| n == MARK || look_alike(n).is_some() || reserved_of(n).is_some());
            out.push(MARK);
            if marks_next {
                out.push(MARK);
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// The name a client is shown for an upstream name.
pub fn to_client(name: &str) -> Cow<'_, str> {
    if !name.chars().any(|c| c == MARK || reserved_of(c).is_some()) {
        return Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len());
    let mut it = name.chars().peekable();
    while let Some(c) = it.next() {
        match (c, it.peek().copied()) {
            (MARK, Some(n)) if n == MARK || reserved_of(n).is_some() => {
                out.push(n);
                it.next();
            }
            _ => out.push(reserved_of(c).unwrap_or(c)),
        }
    }
    Cow::Owned(out)
}

/// 400 for a request that would create a name Cloudreve refuses (before
/// any upstream call): the body names the character. `None` otherwise.
/// Junk names parked by the gateway never reach Cloudreve and pass.
pub(crate) fn refuse(
    method: &Method,
    path: &DavPath,
    dest: Option<&DavPath>,
    junk: JunkAction,
) -> Option<Response<BoxBody>> {
    let created = match method.as_str() {
        "PUT" | "MKCOL" | "LOCK" => path,
        "COPY" | "MOVE" => dest?,
        _ => return None,
    };
    if junk == JunkAction::Park && junk::path_is_junk(created) {
        return None;
    }
    let s = std::str::from_utf8(created.as_bytes()).ok()?;
    let (name, c) = s
        .split('/')
        .find_map(|seg| first_reserved(seg).map(|c| (seg, c)))?;
    tracing::info!(method = %method, name, character = %c, "name with a character Cloudreve refuses");
    Some(text(
        StatusCode::BAD_REQUEST,
        &format!(
            "the name {name:?} contains {c:?}, which Cloudreve does not allow in names \
             (\\ : * ? \" < > |); rename it, or have the gateway store such characters as \
             look-alikes (reserved_names = \"map\")"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_characters_become_look_alikes_and_come_back() {
        assert_eq!(to_upstream("a:b?.txt"), "a：b？.txt");
        assert_eq!(to_client("a：b？.txt"), "a:b?.txt");
        assert_eq!(to_upstream(r#"\*"<>|"#), "＼＊＂＜＞｜");
        assert!(matches!(to_upstream("plain.txt"), Cow::Borrowed(_)));
        assert_eq!(first_reserved("q?.txt"), Some('?'));
        assert_eq!(first_reserved("fine.txt"), None);
    }

    #[test]
    fn a_real_look_alike_stays_distinct() {
        // "a：b" (a look-alike typed by the user) and "a:b" are two files.
        assert_eq!(to_upstream("a：b"), "a‛：b");
        assert_ne!(to_upstream("a：b"), to_upstream("a:b"));
        assert_eq!(to_client("a‛：b"), "a：b");
    }

    #[test]
    fn every_client_name_round_trips_and_none_collide() {
        let alphabet = ['a', ':', '：', '‛', '?', '？'];
        let mut seen = std::collections::HashMap::new();
        // Every name of up to four characters over the alphabet.
        let mut names = vec![String::new()];
        for _ in 0..4 {
            let mut next = Vec::new();
            for n in &names {
                for c in alphabet {
                    next.push(format!("{n}{c}"));
                }
            }
            names.extend(next.iter().cloned());
            names.dedup();
            if names.len() > 2000 {
                break;
            }
        }
        for n in names {
            let up = to_upstream(&n).into_owned();
            assert!(first_reserved(&up).is_none(), "{n:?} -> {up:?}");
            assert_eq!(to_client(&up), n, "round trip of {n:?} via {up:?}");
            if let Some(other) = seen.insert(up.clone(), n.clone()) {
                assert_eq!(other, n, "{other:?} and {n:?} both store as {up:?}");
            }
        }
    }
}
