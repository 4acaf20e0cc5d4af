//! How the WebDAV layer writes text into XML and HTML, and times into
//! properties and headers: one place for every escaper and date format.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::time::SystemTime;

use chrono::{DateTime, Datelike as _, Timelike as _, Utc};

/// Appends `s` escaped as XML character data: `& < >` (quotes stay as they
/// are, as in dav-server's answers: clients compare `getetag` text with
/// the `ETag` header).
pub fn push_text(out: &mut Vec<u8>, s: &str) {
    push_escaped(out, s, false)
}

/// Appends `s` escaped for a double-quoted attribute value: `& < > "`.
pub fn push_attr(out: &mut Vec<u8>, s: &str) {
    push_escaped(out, s, true)
}

fn push_escaped(out: &mut Vec<u8>, s: &str, attr: bool) {
    let mut last = 0;
    for (i, b) in s.bytes().enumerate() {
        let r: &[u8] = match b {
            b'&' => b"&amp;",
            b'<' => b"&lt;",
            b'>' => b"&gt;",
            b'"' if attr => b"&quot;",
            _ => continue,
        };
        out.extend_from_slice(&s.as_bytes()[last..i]);
        out.extend_from_slice(r);
        last = i + 1;
    }
    out.extend_from_slice(&s.as_bytes()[last..]);
}

/// `s` escaped for a double-quoted XML attribute or text: `& < > "`.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.contains(['&', '<', '>', '"']) {
        return Cow::Borrowed(s);
    }
    let mut out = Vec::with_capacity(s.len() + 16);
    push_attr(&mut out, s);
    Cow::Owned(String::from_utf8(out).unwrap_or_default())
}

/// The inverse of [`escape`] (and of the five predefined entities).
pub fn unescape(s: &str) -> Cow<'_, str> {
    if !s.contains('&') {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        s.replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}

/// `s` escaped for HTML text and attribute values (`'` included).
pub fn escape_html(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// RFC 1123 date (`Sun, 06 Nov 1994 08:49:37 GMT`), as `getlastmodified`
/// and the `Win32*` times use. Written by hand from chrono's fields: a
/// Depth-1 PROPFIND writes two per entry.
pub fn http_date(t: SystemTime) -> String {
    const WD: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MON: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let c = DateTime::<Utc>::from(t);
    let mut out = String::with_capacity(29);
    let _ = write!(
        out,
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        WD[c.weekday().num_days_from_monday() as usize],
        c.day(),
        MON[c.month0() as usize],
        c.year(),
        c.hour(),
        c.minute(),
        c.second()
    );
    out
}

/// RFC 3339 in whole seconds with `Z`, as `creationdate` uses.
pub fn rfc3339(t: SystemTime) -> String {
    let c = DateTime::<Utc>::from(t);
    let mut out = String::with_capacity(20);
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        c.year(),
        c.month(),
        c.day(),
        c.hour(),
        c.minute(),
        c.second()
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn dates_match_chrono_formatting() {
        for secs in [
            0u64,
            59,
            86_399,
            951_782_400,
            4_107_542_400,
            253_402_300_799,
        ] {
            let t = UNIX_EPOCH + Duration::from_secs(secs);
            let c = DateTime::<Utc>::from(t);
            assert_eq!(
                http_date(t),
                c.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
            );
            assert_eq!(rfc3339(t), c.format("%Y-%m-%dT%H:%M:%SZ").to_string());
        }
    }

    #[test]
    fn escaping_round_trips() {
        let s = r#"a&b<c>d"e'f"#;
        assert_eq!(escape(s), "a&amp;b&lt;c&gt;d&quot;e'f");
        assert_eq!(unescape(&escape(s)), s);
        let mut v = Vec::new();
        push_text(&mut v, s);
        assert_eq!(v, b"a&amp;b&lt;c&gt;d\"e'f");
        assert_eq!(escape_html(s), "a&amp;b&lt;c&gt;d&quot;e&#39;f");
    }
}
