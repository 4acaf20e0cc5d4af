//! Cloudreve URI parsing with Go `url.Parse` + `path.Clean` semantics, and emission.

/// A parsed `cloudreve://` URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CrUri {
    /// The file system (URL host), lower-cased: `my`, `trash`, ...
    pub fs: String,
    /// The user part before `@`, if any (decoded).
    pub user: Option<String>,
    /// The password part (decoded), if any.
    pub password: Option<String>,
    /// Decoded, cleaned path segments; empty for the root.
    pub segments: Vec<String>,
    /// The raw query (search), if a `?` was present.
    pub query: Option<String>,
}

/// Joins decoded segments into an absolute path.
pub(super) fn join_path(segments: &[String]) -> String {
    if segments.is_empty() {
        "/".to_string()
    } else {
        let mut s = String::new();
        for seg in segments {
            s.push('/');
            s.push_str(seg);
        }
        s
    }
}

/// Splits an absolute decoded path into segments.
pub(super) fn split_path(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn unhex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes like Go's `unescape` in path mode (`+` stays literal).
pub(super) fn unescape(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hi = unhex(*b.get(i + 1)?)?;
            let lo = unhex(*b.get(i + 2)?)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Go `path.Clean` for an absolute path.
pub(super) fn clean(path: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            p => out.push(p.to_string()),
        }
    }
    out
}

fn valid_host_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c >= 0x80 || b"-._~!$&'()*+,;=:[]<>\"".contains(&c)
}

/// Parses a Cloudreve URI. `None` means "unknown uri" (code 40001).
pub(super) fn parse(raw: &str) -> Option<CrUri> {
    if raw.bytes().any(|c| c < 0x20 || c == 0x7f) {
        return None;
    }
    let (rest, frag) = match raw.split_once('#') {
        Some((a, f)) => (a, Some(f)),
        None => (raw, None),
    };
    if let Some(f) = frag {
        unescape(f)?;
    }
    // Scheme.
    let colon = rest.find(':')?;
    let scheme = &rest[..colon];
    if scheme.is_empty()
        || !scheme.as_bytes()[0].is_ascii_alphabetic()
        || !scheme
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'+' || c == b'-' || c == b'.')
    {
        return None;
    }
    if !scheme.eq_ignore_ascii_case("cloudreve") {
        return None;
    }
    let rest = &rest[colon + 1..];
    let (rest, query) = match rest.split_once('?') {
        Some((a, q)) => (a, Some(q.to_string())),
        None => (rest, None),
    };
    let rest = rest.strip_prefix("//")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let (userinfo, host) = match authority.rfind('@') {
        Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
        None => (None, authority),
    };
    if !host.bytes().all(valid_host_char) {
        return None;
    }
    if let Some(i) = host.rfind(':') {
        let port = &host[i + 1..];
        if !port.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
    }
    let (user, password) = match userinfo {
        None => (None, None),
        Some(ui) => {
            if !ui
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:%@".contains(&c))
            {
                return None;
            }
            match ui.split_once(':') {
                Some((u, p)) => (Some(unescape(u)?), Some(unescape(p)?)),
                None => (Some(unescape(ui)?), None),
            }
        }
    };
    let mut decoded = unescape(path)?;
    if decoded.len() > 1 && decoded.ends_with('/') {
        decoded.pop();
    }
    Some(CrUri {
        fs: host.to_ascii_lowercase(),
        user,
        password,
        segments: clean(&decoded),
        query,
    })
}

/// `encodeURIComponent`-style escaping of one path segment.
pub(super) fn escape_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Emits `cloudreve://<fs>/<escaped path>`; the root gets a trailing slash.
pub(super) fn emit(fs: &str, segments: &[String]) -> String {
    let mut s = format!("cloudreve://{fs}");
    if segments.is_empty() {
        s.push('/');
    }
    for seg in segments {
        s.push('/');
        s.push_str(&escape_segment(seg));
    }
    s
}

/// Emits an absolute decoded path (e.g. `/a/b`) in the `fs` file system.
pub(super) fn emit_path(fs: &str, path: &str) -> String {
    emit(fs, &split_path(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(u: &str) -> Vec<String> {
        parse(u).expect("parse").segments
    }

    #[test]
    fn go_semantics() {
        assert_eq!(segs("cloudreve://my"), Vec::<String>::new());
        assert_eq!(segs("cloudreve://my/"), Vec::<String>::new());
        assert_eq!(segs("cloudreve://MY/a/b/"), vec!["a", "b"]);
        assert_eq!(parse("cloudreve://MY/a").map(|u| u.fs), Some("my".into()));
        assert_eq!(segs("cloudreve://my/a#b/c"), vec!["a"]);
        let q = parse("cloudreve://my/a?name=x").expect("q");
        assert_eq!(q.segments, vec!["a"]);
        assert_eq!(q.query.as_deref(), Some("name=x"));
        assert!(parse("cloudreve://my/a%zz").is_none());
        assert!(parse("cloudreve://my/a%2").is_none());
        assert!(parse("cloudreve://my/a%").is_none());
        assert!(parse("http://my/a").is_none());
        assert!(parse("my/a").is_none());
        assert!(parse("").is_none());
        assert!(parse("cloudreve://my/a#%zz").is_none());
        assert_eq!(segs("cloudreve://my/a%20b/c+d"), vec!["a b", "c+d"]);
        assert_eq!(segs("cloudreve://my/a/../b/./c//d"), vec!["b", "c", "d"]);
        assert_eq!(segs("cloudreve://my/../../x"), vec!["x"]);
        assert_eq!(segs("cloudreve://my/a%2Fb"), vec!["a", "b"]);
        assert_eq!(segs("cloudreve://my/%C3%A9"), vec!["é"]);
        let u = parse("cloudreve://abc:pw@share/x").expect("share");
        assert_eq!(u.user.as_deref(), Some("abc"));
        assert_eq!(u.password.as_deref(), Some("pw"));
        assert_eq!(u.fs, "share");
        assert!(parse("cloudreve://my\u{1}/a").is_none());
    }

    #[test]
    fn emission() {
        assert_eq!(emit("my", &[]), "cloudreve://my/");
        assert_eq!(
            emit("my", &["a b".into(), "é#%+@:&".into()]),
            "cloudreve://my/a%20b/%C3%A9%23%25%2B%40%3A%26"
        );
        assert_eq!(escape_segment("A-z_0.!~*'()"), "A-z_0.!~*'()");
        let u = emit("my", &["x y".into(), "50%".into()]);
        assert_eq!(segs(&u), vec!["x y", "50%"]);
    }
}
