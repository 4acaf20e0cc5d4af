//! Cloudreve URIs (docs/UPSTREAM.md §3; writing §3.2, reading §3.3).
//!
//! A [`CrUri`] holds the file system (`my`, `trash`, …), an optional
//! `id[:password]@` authority and the **decoded** path segments. It is
//! rendered by escaping every segment with `encodeURIComponent` semantics
//! (keep `A–Z a–z 0–9 - _ . ! ~ * ' ( )`, upper-case `%XX` otherwise) and
//! parsed by percent-decoding every segment. Inside query strings the whole
//! URI is form-encoded once more ([`query_escape`]).

use std::fmt;
use std::str::FromStr;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use super::error::{Error, Result};

/// Bytes escaped in a path segment: everything but
/// `A–Z a–z 0–9 - _ . ! ~ * ' ( )`.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// Bytes escaped in a form-encoded query value (WHATWG
/// `application/x-www-form-urlencoded`: keep `A–Z a–z 0–9 * - . _`).
const FORM: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'*')
    .remove(b'-')
    .remove(b'.')
    .remove(b'_');

/// The URI scheme.
pub(super) const SCHEME: &str = "cloudreve";

/// Escapes one path segment like JavaScript `encodeURIComponent`.
pub fn escape_segment(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// Form-encodes a value for a query string (space as `%20`, so the result
/// is valid both as form and as plain percent-encoding).
pub fn query_escape(s: &str) -> String {
    utf8_percent_encode(s, FORM).to_string()
}

/// Builds a query string `k1=v1&k2=v2` with form-encoded values.
pub fn build_query(pairs: &[(&str, String)]) -> String {
    let mut out = String::new();
    for (k, v) in pairs {
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(&query_escape(k));
        out.push('=');
        out.push_str(&query_escape(v));
    }
    out
}

/// Strictly percent-decodes `s` into UTF-8; a stray `%` is an error.
fn decode_strict(s: &str) -> Result<String> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let ok =
                i + 2 < b.len() && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit();
            if !ok {
                return Err(Error::InvalidUri(format!("bad percent escape in {s:?}")));
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| Error::InvalidUri(format!("segment is not UTF-8: {s:?}")))
}

/// A parsed Cloudreve URI: `cloudreve://[auth@]fs/seg/seg…`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CrUri {
    fs: String,
    auth: Option<String>,
    segments: Vec<String>,
}

impl CrUri {
    /// The root of a file system, e.g. `CrUri::root("trash")`.
    pub fn root(fs: &str) -> Self {
        CrUri {
            fs: fs.to_ascii_lowercase(),
            auth: None,
            segments: Vec::new(),
        }
    }

    /// The root of the caller's own space, `cloudreve://my/`.
    pub fn my() -> Self {
        Self::root("my")
    }

    /// Builds a URI from decoded segments; rejects empty, `.`, `..` and
    /// names containing `/`.
    pub fn from_segments<I, S>(fs: &str, segments: I) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut u = Self::root(fs);
        for s in segments {
            u = u.join(s.as_ref())?;
        }
        Ok(u)
    }

    /// Builds a `my` URI from a slash-separated, **decoded** path such as
    /// `/a b/c#d.txt` (empty components are ignored).
    pub fn my_path(path: &str) -> Result<Self> {
        Self::from_segments("my", path.split('/').filter(|s| !s.is_empty()))
    }

    /// Sets the `id[:password]` authority (decoded form).
    pub fn with_auth(mut self, auth: Option<&str>) -> Self {
        self.auth = auth.map(str::to_string);
        self
    }

    /// File system (`my`, `trash`, `share`, `shared_with_me`).
    pub fn fs(&self) -> &str {
        &self.fs
    }

    /// The authority before `@`, decoded (e.g. a user or share hashid).
    pub fn auth(&self) -> Option<&str> {
        self.auth.as_deref()
    }

    /// Decoded path segments.
    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// True for the root of a file system.
    pub fn is_root(&self) -> bool {
        self.segments.is_empty()
    }

    /// Last decoded segment; `""` for the root.
    pub fn name(&self) -> &str {
        self.segments.last().map(String::as_str).unwrap_or("")
    }

    /// Decoded path with a leading `/` (root = `/`).
    pub fn path(&self) -> String {
        let mut p = String::from("/");
        p.push_str(&self.segments.join("/"));
        p
    }

    /// The child `name`. Fails on empty, `.`, `..` or a name containing `/`.
    pub fn join(&self, name: &str) -> Result<Self> {
        if name.is_empty() || name == "." || name == ".." || name.contains('/') {
            return Err(Error::InvalidUri(format!("invalid name {name:?}")));
        }
        let mut u = self.clone();
        u.segments.push(name.to_string());
        Ok(u)
    }

    /// The parent folder, or `None` for the root.
    pub fn parent(&self) -> Option<Self> {
        if self.segments.is_empty() {
            return None;
        }
        let mut u = self.clone();
        u.segments.pop();
        Some(u)
    }

    /// True when `self` is `other` or below it.
    pub fn starts_with(&self, other: &CrUri) -> bool {
        self.fs == other.fs
            && self.auth == other.auth
            && self.segments.len() >= other.segments.len()
            && self.segments[..other.segments.len()] == other.segments[..]
    }

    /// Parses a URI as sent by the server (e.g. `FileResponse.path`).
    /// Accepts `cloudreve://my`, `cloudreve://my/`, `cloudreve://id@my/…`.
    /// The path is percent-decoded (so `%2F` separates, as on the server);
    /// `.`/`..`/empty segments are
    /// resolved like Go's `path.Clean`. A raw `?` or `#` (search query or
    /// fragment) is rejected, as is a stray `%`.
    pub fn parse(s: &str) -> Result<Self> {
        let (scheme, rest) = s
            .split_once("://")
            .ok_or_else(|| Error::InvalidUri(format!("missing scheme: {s:?}")))?;
        if !scheme.eq_ignore_ascii_case(SCHEME) {
            return Err(Error::InvalidUri(format!("wrong scheme: {s:?}")));
        }
        if rest.contains('?') || rest.contains('#') {
            return Err(Error::InvalidUri(format!("query or fragment in {s:?}")));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (auth, fs) = match authority.rsplit_once('@') {
            Some((a, h)) => (Some(decode_strict(a)?), h),
            None => (None, authority),
        };
        if fs.is_empty() {
            return Err(Error::InvalidUri(format!("missing file system: {s:?}")));
        }
        // Like the server: percent-decode first, then clean and split, so
        // an encoded `%2F` is a separator too (UPSTREAM §3.3).
        let mut segments: Vec<String> = Vec::new();
        for raw in path.split('/') {
            if raw.is_empty() {
                continue;
            }
            let decoded = decode_strict(raw)?;
            for seg in decoded.split('/') {
                match seg {
                    "" | "." => {}
                    ".." => {
                        segments.pop();
                    }
                    _ => segments.push(seg.to_string()),
                }
            }
        }
        Ok(CrUri {
            fs: fs.to_ascii_lowercase(),
            auth,
            segments,
        })
    }

    /// The URI form-encoded for a query string value (double encoding:
    /// `%20` → `%2520`, `+` → `%2B`).
    pub fn to_query_value(&self) -> String {
        query_escape(&self.to_string())
    }
}

impl fmt::Display for CrUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}://")?;
        if let Some(a) = &self.auth {
            // Keep a `:` separating id and password.
            let mut parts = a.splitn(2, ':');
            let id = parts.next().unwrap_or("");
            write!(f, "{}", escape_segment(id))?;
            if let Some(pw) = parts.next() {
                write!(f, ":{}", escape_segment(pw))?;
            }
            f.write_str("@")?;
        }
        f.write_str(&self.fs)?;
        f.write_str("/")?;
        for (i, s) in self.segments.iter().enumerate() {
            if i > 0 {
                f.write_str("/")?;
            }
            f.write_str(&escape_segment(s))?;
        }
        Ok(())
    }
}

impl FromStr for CrUri {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl serde::Serialize for CrUri {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn escaping_examples() {
        let u = CrUri::my()
            .join("a b#%+?@:&é")
            .unwrap()
            .join("x!~*'()-_.y")
            .unwrap();
        assert_eq!(
            u.to_string(),
            "cloudreve://my/a%20b%23%25%2B%3F%40%3A%26%C3%A9/x!~*'()-_.y"
        );
        assert_eq!(CrUri::my().to_string(), "cloudreve://my/");
        assert_eq!(
            CrUri::my().join("a b").unwrap().to_query_value(),
            "cloudreve%3A%2F%2Fmy%2Fa%2520b"
        );
        assert_eq!(
            CrUri::my().join("a+b").unwrap().to_query_value(),
            "cloudreve%3A%2F%2Fmy%2Fa%252Bb"
        );
    }

    #[test]
    fn parse_server_paths() {
        let u = CrUri::parse(
            "cloudreve://my/%E9%97%A8%E7%A5%A8/btn_google_signin_dark_normal_web%402x.png",
        )
        .unwrap();
        assert_eq!(
            u.segments(),
            ["门票", "btn_google_signin_dark_normal_web@2x.png"]
        );
        assert_eq!(u.name(), "btn_google_signin_dark_normal_web@2x.png");
        let r = CrUri::parse("cloudreve://my/").unwrap();
        assert!(r.is_root());
        assert_eq!(r, CrUri::parse("cloudreve://my").unwrap());
        assert_eq!(r, CrUri::parse("CloudReve://MY").unwrap());
        let a = CrUri::parse("cloudreve://lpua@my/x").unwrap();
        assert_eq!(a.auth(), Some("lpua"));
        assert_eq!(a.to_string(), "cloudreve://lpua@my/x");
        let s = CrUri::parse("cloudreve://abc:pw@share/d").unwrap();
        assert_eq!(s.to_string(), "cloudreve://abc:pw@share/d");
        assert_eq!(
            CrUri::parse("cloudreve://my/a/./b/../c//d/")
                .unwrap()
                .path(),
            "/a/c/d"
        );
        assert_eq!(CrUri::parse("cloudreve://my/a+b").unwrap().name(), "a+b");
        assert_eq!(
            CrUri::parse("cloudreve://my/a%2Fb%2F..%2Fc")
                .unwrap()
                .segments(),
            ["a", "c"]
        );
        assert!(CrUri::parse("cloudreve://my/a%2").is_err());
        assert!(CrUri::parse("cloudreve://my/a%zz").is_err());
        assert!(CrUri::parse("http://my/a").is_err());
        assert!(CrUri::parse("cloudreve://my/a?name=x").is_err());
        assert!(CrUri::parse("cloudreve:///a").is_err());
        assert!(CrUri::parse("").is_err());
        assert!(CrUri::parse("cloudreve://my/%FF").is_err());
    }

    #[test]
    fn join_parent_name() {
        let u = CrUri::my_path("/a/b c").unwrap();
        assert_eq!(u.name(), "b c");
        assert_eq!(u.parent().unwrap(), CrUri::my_path("a").unwrap());
        assert_eq!(u.parent().unwrap().parent().unwrap(), CrUri::my());
        assert!(CrUri::my().parent().is_none());
        assert!(CrUri::my().join("").is_err());
        assert!(CrUri::my().join("..").is_err());
        assert!(CrUri::my().join("a/b").is_err());
        assert!(u.starts_with(&CrUri::my_path("/a").unwrap()));
        assert!(
            !CrUri::my_path("/ab")
                .unwrap()
                .starts_with(&CrUri::my_path("/a").unwrap())
        );
    }

    fn name_strategy() -> impl Strategy<Value = String> {
        let special = prop::sample::select(vec![
            "#", "%", "+", "?", " ", "@", ":", "&", "=", "%20", "%2B", "é", "门", "😀", "\u{301}",
            "'", "(", "*", "~", "\\", "\"", "<", "|", ".",
        ]);
        let piece = prop_oneof![
            "[\\PC]{1,6}".prop_map(|s| s),
            special.prop_map(|s| s.to_string()),
        ];
        prop::collection::vec(piece, 1..6)
            .prop_map(|v| v.concat().replace('/', "_"))
            .prop_filter("not a dot name", |s| s != "." && s != "..")
    }

    proptest! {
        #[test]
        fn escape_parse_round_trip(names in prop::collection::vec(name_strategy(), 0..5)) {
            let u = CrUri::from_segments("my", &names).unwrap();
            let s = u.to_string();
            prop_assert!(s.bytes().all(|b| b.is_ascii_graphic()));
            prop_assert!(!s.contains('#') && !s.contains('?') && !s.contains('+') && !s.contains(' '));
            let back = CrUri::parse(&s).unwrap();
            prop_assert_eq!(&back, &u);
            prop_assert_eq!(back.segments(), &names[..]);
        }

        #[test]
        fn query_embedding_round_trip(names in prop::collection::vec(name_strategy(), 0..4)) {
            let u = CrUri::from_segments("my", &names).unwrap();
            let q = build_query(&[("uri", u.to_string()), ("page_size", "5".into())]);
            prop_assert!(!q.contains(' ') && !q.contains('+') && !q.contains('#'));
            let decoded: Vec<(String, String)> = serde_urlencoded::from_str(&q).unwrap();
            prop_assert_eq!(decoded.len(), 2);
            prop_assert_eq!(&decoded[0].0, "uri");
            prop_assert_eq!(&decoded[0].1, &u.to_string());
            prop_assert_eq!(CrUri::parse(&decoded[0].1).unwrap(), u);
        }
    }
}
