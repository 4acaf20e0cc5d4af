//! Request hygiene, applied before dav-server sees a request.
//!
//! [`check_syntax`] runs before authentication and rejects malformed or
//! dangerous requests (path traversal, encoded separators, control characters,
//! broken percent-encoding, absolute-form targets, oversized headers, and the
//! conditional headers that make dav-server 0.11 panic, malformed `Depth`,
//! `Overwrite`, `Timeout`, `Lock-Token`, `Destination` and byte `Range`
//! headers, names longer than [`MAX_NAME_BYTES`] and paths longer or deeper
//! than [`MAX_PATH_BYTES`] / [`MAX_PATH_SEGMENTS`]). [`check_policy`] runs
//! after authentication and enforces the PROPFIND depth policy.
//!
//! Malformed headers are refused rather than ignored because dav-server
//! silently drops headers it cannot parse: an `Overwrite: f` would become the
//! default `T` and overwrite, a garbled `Timeout` the default lock timeout.

use http::{HeaderMap, Method, Request, StatusCode, header};

/// Upper bound of the summed size of all request header names and values.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 64 * 1024;

/// Longest name (one decoded path segment), in bytes, as Cloudreve allows.
pub const MAX_NAME_BYTES: usize = 255;

/// Longest raw (percent-encoded) request path; 414 above.
pub const MAX_PATH_BYTES: usize = 8 * 1024;

/// Most segments in a request path; 414 above.
pub const MAX_PATH_SEGMENTS: usize = 128;

/// Most ranges in one `Range: bytes=` header.
pub const MAX_RANGES: usize = 64;

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// 400 Bad Request, with a reason for the log.
    BadRequest(&'static str),
    /// 431 Request Header Fields Too Large.
    HeadersTooLarge,
    /// 414 URI Too Long: a path longer than [`MAX_PATH_BYTES`] or deeper
    /// than [`MAX_PATH_SEGMENTS`].
    UriTooLong,
    /// 413 Content Too Large: an XML request body above the limit.
    PayloadTooLarge,
    /// 502 Bad Gateway: `Destination` names another server (RFC 4918 §9.8.5).
    ForeignDestination,
    /// 403 Forbidden, with a reason for the log.
    Forbidden(&'static str),
    /// 403 with `<D:propfind-finite-depth/>` (RFC 4918 §9.1): PROPFIND with
    /// a missing or `infinity` Depth.
    FiniteDepth,
}

impl Rejection {
    /// The HTTP status of this rejection.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::UriTooLong => StatusCode::URI_TOO_LONG,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::ForeignDestination => StatusCode::BAD_GATEWAY,
            Self::FiniteDepth | Self::Forbidden(_) => StatusCode::FORBIDDEN,
        }
    }

    /// A short reason for the log.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::BadRequest(r) => r,
            Self::HeadersTooLarge => "request headers too large",
            Self::UriTooLong => "request path too long or too deep",
            Self::PayloadTooLarge => "request body too large",
            Self::ForeignDestination => "destination on another server",
            Self::FiniteDepth => "PROPFIND without finite Depth",
            Self::Forbidden(r) => r,
        }
    }
}

/// The value of a `Depth` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// `0`
    Zero,
    /// `1`
    One,
    /// `infinity`
    Infinity,
}

/// Percent-encodes raw non-ASCII bytes in the request path and in
/// `Destination` (some clients send raw UTF-8; dav-server rejects it).
/// Raw bytes that are not UTF-8 are refused with 400.
pub fn normalize<B>(req: &mut Request<B>) -> Result<(), Rejection> {
    let path = req.uri().path();
    if !path.is_ascii() {
        let encoded = encode_non_ascii(path.as_bytes())
            .ok_or(Rejection::BadRequest("raw non-UTF-8 bytes in path"))?;
        let target = match req.uri().query() {
            Some(q) => format!("{encoded}?{q}"),
            None => encoded,
        };
        *req.uri_mut() = target
            .parse()
            .map_err(|_| Rejection::BadRequest("unparsable request target"))?;
    }
    if let Some(v) = req.headers().get("destination")
        && v.to_str().is_err()
    {
        let encoded = encode_non_ascii(v.as_bytes())
            .ok_or(Rejection::BadRequest("raw non-UTF-8 bytes in Destination"))?;
        let value = http::HeaderValue::from_str(&encoded)
            .map_err(|_| Rejection::BadRequest("control character in Destination"))?;
        req.headers_mut().insert("destination", value);
    }
    Ok(())
}

/// `bytes` with every byte >= 0x80 percent-encoded, if `bytes` is UTF-8.
fn encode_non_ascii(bytes: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut out = String::with_capacity(text.len() * 2);
    for b in text.bytes() {
        if b.is_ascii() {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    Some(out)
}

/// Checks what can be checked without knowing the user. See the module docs.
pub fn check_syntax<B>(req: &Request<B>, max_header_bytes: usize) -> Result<(), Rejection> {
    let headers = req.headers();
    let total: usize = headers
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum();
    if total > max_header_bytes {
        return Err(Rejection::HeadersTooLarge);
    }
    let uri = req.uri();
    if uri.scheme().is_some() || uri.authority().is_some() {
        return Err(Rejection::BadRequest("absolute-form request target"));
    }
    check_path(uri.path())?;
    if let Some(q) = uri.query()
        && q.bytes().any(|b| b < 0x20 || b == 0x7f)
    {
        return Err(Rejection::BadRequest("control character in query"));
    }
    depth(headers)?;
    for name in [header::IF_MATCH, header::IF_NONE_MATCH] {
        for v in headers.get_all(&name) {
            let text = v
                .to_str()
                .map_err(|_| Rejection::BadRequest("non-ASCII entity tag"))?;
            check_etag_list(text)?;
        }
    }
    if let Some(v) = single(headers, header::IF_RANGE.as_str())? {
        // An entity tag or an HTTP-date; dav-server 0.11 panics on a lone `"`.
        let text = v
            .to_str()
            .map_err(|_| Rejection::BadRequest("non-ASCII If-Range"))?;
        let t = text.trim();
        if t.contains('"') && (t.contains(',') || check_etag_list(t).is_err()) {
            return Err(Rejection::BadRequest("malformed If-Range"));
        }
    }
    for v in headers.get_all("if") {
        let text = v
            .to_str()
            .map_err(|_| Rejection::BadRequest("non-ASCII If header"))?;
        check_if_header(text)?;
    }
    let mut dests = headers.get_all("destination").iter();
    if let Some(v) = dests.next() {
        if dests.next().is_some() {
            return Err(Rejection::BadRequest("several Destination headers"));
        }
        let text = v
            .to_str()
            .map_err(|_| Rejection::BadRequest("non-ASCII Destination"))?;
        check_destination(text, headers)?;
    }
    if let Some(v) = single(headers, "overwrite")? {
        match v.as_bytes().trim_ascii() {
            b"T" | b"F" => {}
            _ => return Err(Rejection::BadRequest("Overwrite is neither T nor F")),
        }
    }
    if let Some(v) = single(headers, "timeout")? {
        let text = v
            .to_str()
            .map_err(|_| Rejection::BadRequest("non-ASCII Timeout"))?;
        check_timeout(text)?;
    }
    if let Some(v) = single(headers, "lock-token")? {
        let text = v
            .to_str()
            .map_err(|_| Rejection::BadRequest("non-ASCII Lock-Token"))?;
        check_coded_url(text.trim())?;
    }
    if let Some(v) = single(headers, header::RANGE.as_str())? {
        let text = v
            .to_str()
            .map_err(|_| Rejection::BadRequest("non-ASCII Range"))?;
        check_range(text)?;
    }
    Ok(())
}

/// The value of a header that may appear at most once.
fn single<'a>(
    headers: &'a HeaderMap,
    name: &'static str,
) -> Result<Option<&'a http::HeaderValue>, Rejection> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    if first.is_some() && values.next().is_some() {
        return Err(Rejection::BadRequest("repeated single-valued header"));
    }
    Ok(first)
}

/// Validates `Timeout` (RFC 4918 §10.7): a comma-separated list of
/// `Infinite` and `Second-N`.
fn check_timeout(text: &str) -> Result<(), Rejection> {
    let bad = Err(Rejection::BadRequest("malformed Timeout"));
    let items: Vec<&str> = text.split(',').map(str::trim).collect();
    if items.len() > 16 {
        return bad;
    }
    for item in items {
        if item.eq_ignore_ascii_case("infinite") {
            continue;
        }
        let digits = match item.get(..7) {
            Some(p) if p.eq_ignore_ascii_case("second-") => &item[7..],
            _ => return bad,
        };
        if digits.is_empty() || digits.len() > 19 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return bad;
        }
    }
    Ok(())
}

/// Validates a Coded-URL `<...>` (`Lock-Token`): closed, non-empty, no
/// whitespace, quotes or angle brackets inside.
fn check_coded_url(text: &str) -> Result<(), Rejection> {
    let inner = text
        .strip_prefix('<')
        .and_then(|t| t.strip_suffix('>'))
        .ok_or(Rejection::BadRequest("Lock-Token is not a Coded-URL"))?;
    if inner.is_empty()
        || inner
            .bytes()
            .any(|b| b <= b' ' || b == 0x7f || b"<>\"".contains(&b))
    {
        return Err(Rejection::BadRequest("Lock-Token is not a Coded-URL"));
    }
    Ok(())
}

/// Validates `Range` (RFC 9110 §14.2). Other units than `bytes` are left
/// alone (the server ignores them); a `bytes` range set must be well
/// formed (`a-b` with a <= b, `a-`, `-n`) and hold at most [`MAX_RANGES`]
/// ranges. Unsatisfiable ranges are the file system's business (416).
pub fn check_range(text: &str) -> Result<(), Rejection> {
    let bad = Err(Rejection::BadRequest("malformed Range"));
    let t = text.trim();
    let Some((unit, set)) = t.split_once('=') else {
        return bad;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return if unit.is_empty() || !unit.bytes().all(|b| b.is_ascii_alphanumeric()) {
            bad
        } else {
            Ok(())
        };
    }
    let number = |s: &str| -> Option<u64> {
        if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    let mut count = 0;
    for spec in set.split(',') {
        let spec = spec.trim();
        if spec.is_empty() {
            // RFC 9110 allows empty list elements; a set of only those is not.
            continue;
        }
        count += 1;
        if count > MAX_RANGES {
            return bad;
        }
        let Some((first, last)) = spec.split_once('-') else {
            return bad;
        };
        match (first.is_empty(), last.is_empty()) {
            (true, true) => return bad,
            (true, false) => {
                if number(last).is_none() {
                    return bad;
                }
            }
            (false, true) => {
                if number(first).is_none() {
                    return bad;
                }
            }
            (false, false) => match (number(first), number(last)) {
                (Some(a), Some(b)) if a <= b => {}
                _ => return bad,
            },
        }
    }
    if count == 0 {
        return bad;
    }
    Ok(())
}

/// Checks what depends on the method once the user is known: PROPFIND must
/// carry `Depth: 0` or `Depth: 1`.
pub fn check_policy<B>(req: &Request<B>) -> Result<(), Rejection> {
    if req.method().as_str() == "PROPFIND" {
        match depth(req.headers())? {
            Some(Depth::Zero | Depth::One) => {}
            None | Some(Depth::Infinity) => return Err(Rejection::FiniteDepth),
        }
    }
    Ok(())
}

/// Parses the `Depth` header: `None` when absent, 400 when repeated or unparsable.
pub fn depth(headers: &HeaderMap) -> Result<Option<Depth>, Rejection> {
    let mut values = headers.get_all("depth").iter();
    let Some(v) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(Rejection::BadRequest("several Depth headers"));
    }
    match v.to_str().map(str::trim) {
        Ok("0") => Ok(Some(Depth::Zero)),
        Ok("1") => Ok(Some(Depth::One)),
        Ok(s) if s.eq_ignore_ascii_case("infinity") => Ok(Some(Depth::Infinity)),
        _ => Err(Rejection::BadRequest("unparsable Depth")),
    }
}

/// Validates a raw (still percent-encoded) absolute path.
pub fn check_path(raw: &str) -> Result<(), Rejection> {
    let bad = |r| Err(Rejection::BadRequest(r));
    if !raw.starts_with('/') {
        return bad("request target is not an absolute path");
    }
    if raw.len() > MAX_PATH_BYTES || raw.bytes().filter(|b| *b == b'/').count() > MAX_PATH_SEGMENTS
    {
        return Err(Rejection::UriTooLong);
    }
    let bytes = raw.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'\\' => return bad("backslash in path"),
            0..=0x20 | 0x7f..=0xff => return bad("control, space or non-ASCII byte in path"),
            b'%' => {
                let hi = bytes.get(i + 1).and_then(|c| (*c as char).to_digit(16));
                let lo = bytes.get(i + 2).and_then(|c| (*c as char).to_digit(16));
                let (Some(hi), Some(lo)) = (hi, lo) else {
                    return bad("invalid percent-encoding in path");
                };
                let d = (hi * 16 + lo) as u8;
                match d {
                    b'/' => return bad("encoded slash in path"),
                    b'\\' => return bad("encoded backslash in path"),
                    0..=0x1f | 0x7f => return bad("encoded control character in path"),
                    _ => decoded.push(d),
                }
                i += 3;
                continue;
            }
            _ => decoded.push(b),
        }
        i += 1;
    }
    let Ok(text) = std::str::from_utf8(&decoded) else {
        return bad("path is not UTF-8");
    };
    if text.split('/').any(|seg| seg == "." || seg == "..") {
        return bad("dot segment in path");
    }
    if text.split('/').any(|seg| seg.len() > MAX_NAME_BYTES) {
        return bad("name longer than 255 bytes");
    }
    Ok(())
}

/// Validates an `If-Match` / `If-None-Match` value: `*` or a list of entity
/// tags. Quoted tags must be closed (dav-server 0.11 panics on `"`).
fn check_etag_list(text: &str) -> Result<(), Rejection> {
    let t = text.trim();
    if t == "*" {
        return Ok(());
    }
    for item in t.split(',') {
        let item = item.trim();
        let tag = item.strip_prefix("W/").unwrap_or(item);
        if let Some(inner) = tag.strip_prefix('"') {
            match inner.strip_suffix('"') {
                Some(body) if !body.contains('"') => {}
                _ => return Err(Rejection::BadRequest("malformed entity tag")),
            }
        } else if tag.contains('"') {
            return Err(Rejection::BadRequest("malformed entity tag"));
        }
    }
    Ok(())
}

/// Validates the structure of an RFC 4918 `If` header: `<...>` and `[...]`
/// must be closed outside quotes (the way dav-server 0.11 scans them; it
/// indexes past the end otherwise), contain no whitespace, entity tags in
/// `[...]` must be well formed, and lists `(...)` must be balanced.
fn check_if_header(text: &str) -> Result<(), Rejection> {
    let bad = Err(Rejection::BadRequest("malformed If header"));
    let b = text.as_bytes();
    let mut i = 0;
    let mut in_list = false;
    let mut saw_list = false;
    while i < b.len() {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'<' | b'[' => {
                if c == b'[' && !in_list {
                    return bad;
                }
                let close = if c == b'<' { b'>' } else { b']' };
                // Quote-aware scan for the closing character.
                let mut j = i + 1;
                let mut quoted = false;
                loop {
                    let Some(&x) = b.get(j) else { return bad };
                    if matches!(x, b' ' | b'\t' | b'\r' | b'\n') {
                        return bad;
                    }
                    if x == b'"' {
                        quoted = !quoted;
                    } else if x == close && !quoted {
                        break;
                    }
                    j += 1;
                }
                let inner = &text[i + 1..j];
                if inner.is_empty() {
                    return bad;
                }
                if c == b'[' {
                    check_etag_list(inner)?;
                    if inner.contains(',') || inner == "*" {
                        return bad;
                    }
                    if !inner.trim_start_matches("W/").starts_with('"') {
                        return bad;
                    }
                }
                i = j + 1;
            }
            b'(' if !in_list => {
                in_list = true;
                saw_list = true;
                i += 1;
            }
            b')' if in_list => {
                in_list = false;
                i += 1;
            }
            _ if in_list => {
                // A bare word (`Not`, or a state token some clients send
                // without angle brackets).
                let start = i;
                while i < b.len() && !b" \t\r\n<>()[]\"".contains(&b[i]) {
                    i += 1;
                }
                if i == start {
                    return bad;
                }
            }
            _ => return bad,
        }
    }
    if in_list || !saw_list {
        return bad;
    }
    Ok(())
}

/// Validates `Destination`: an absolute path or an http(s) URL on this server.
fn check_destination(text: &str, headers: &HeaderMap) -> Result<(), Rejection> {
    let t = text.trim();
    if t.contains(['?', '#']) {
        return Err(Rejection::BadRequest("query or fragment in Destination"));
    }
    let path = if t.starts_with('/') {
        t
    } else {
        let lower = t.to_ascii_lowercase();
        let rest_at = if lower.starts_with("http://") {
            7
        } else if lower.starts_with("https://") {
            8
        } else {
            return Err(Rejection::BadRequest("Destination is not an http(s) URL"));
        };
        let rest = &t[rest_at..];
        let (authority, path) = match rest.find('/') {
            Some(n) => (&rest[..n], &rest[n..]),
            None => (rest, "/"),
        };
        if authority.is_empty() || authority.contains('@') {
            return Err(Rejection::BadRequest("bad authority in Destination"));
        }
        if !same_server(authority, headers) {
            return Err(Rejection::ForeignDestination);
        }
        path
    };
    check_path(path).map_err(|e| match e {
        Rejection::BadRequest(_) | Rejection::UriTooLong => {
            Rejection::BadRequest("bad Destination path")
        }
        other => other,
    })?;
    if path.split('/').all(str::is_empty) {
        // MOVE/COPY onto the root would replace the whole drive (found by
        // fuzzing: dav-server deletes the destination first).
        return Err(Rejection::Forbidden("Destination is the root"));
    }
    Ok(())
}

/// Whether `authority` names this server, judged by `Host` and
/// `X-Forwarded-Host` (a missing port on either side matches any port, so a
/// TLS-terminating proxy on another port does not break MOVE/COPY).
fn same_server(authority: &str, headers: &HeaderMap) -> bool {
    let split = |a: &str| -> (String, Option<String>) {
        let a = a.trim().to_ascii_lowercase();
        if let Some(end) = a.strip_prefix('[').and_then(|r| r.find(']')) {
            let host = a[..end + 2].to_owned();
            let port = a[end + 2..].strip_prefix(':').map(str::to_owned);
            return (host, port);
        }
        match a.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p.to_owned())),
            None => (a, None),
        }
    };
    let (dh, dp) = split(authority);
    let mut candidates = headers
        .get_all(header::HOST)
        .iter()
        .chain(headers.get_all("x-forwarded-host").iter())
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .peekable();
    if candidates.peek().is_none() {
        // HTTP/1.0 without Host: nothing to compare against.
        return true;
    }
    candidates.any(|c| {
        let (h, p) = split(c);
        h == dh && (p.is_none() || dp.is_none() || p == dp)
    })
}

/// Methods a read-only principal may not use.
pub fn is_mutating(method: &Method) -> bool {
    matches!(
        method.as_str(),
        "PUT"
            | "DELETE"
            | "MKCOL"
            | "COPY"
            | "MOVE"
            | "PROPPATCH"
            | "LOCK"
            | "UNLOCK"
            | "PATCH"
            | "POST"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(path: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::builder().method("PROPFIND").uri(path);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).expect("request")
    }

    fn syntax(path: &str, headers: &[(&str, &str)]) -> Result<(), Rejection> {
        check_syntax(&req(path, headers), DEFAULT_MAX_HEADER_BYTES)
    }

    #[test]
    fn paths() {
        for ok in [
            "/",
            "/a/b",
            "/a%20b/",
            "/%C3%A9t%C3%A9",
            "/a//b",
            "/.hidden",
            "/..x",
        ] {
            assert_eq!(check_path(ok), Ok(()), "{ok}");
        }
        for bad in [
            "/../x",
            "/a/..",
            "/./x",
            "/%2e%2e/x",
            "/%2E./x",
            "/a%2fb",
            "/a%2Fb",
            "/a\\b",
            "/a%5cb",
            "/%00",
            "/%0a",
            "/%zz",
            "/%4",
            "/%ff",
            "x",
            "*",
        ] {
            assert!(check_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn conditional_headers() {
        assert!(syntax("/", &[("if-match", "\"")]).is_err());
        assert!(syntax("/", &[("if-none-match", "\"")]).is_err());
        assert!(syntax("/", &[("if-match", "\"a\", W/\"b\"")]).is_ok());
        assert!(syntax("/", &[("if-none-match", "*")]).is_ok());
        assert!(syntax("/", &[("if-match", "W/\"")]).is_err());
        assert!(syntax("/", &[("if", "(<urn:uuid:1> [\"e\"])")]).is_ok());
        assert!(syntax("/", &[("if", "<http://h/a> (Not <urn:x>) (<urn:y>)")]).is_ok());
        assert!(syntax("/", &[("if", "(<urn:uuid:1")]).is_err());
        assert!(syntax("/", &[("if", "([\"e\"")]).is_err());
        assert!(syntax("/", &[("if", "<http://h/a")]).is_err());
        assert!(syntax("/", &[("if", "garbage")]).is_err());
        assert!(syntax("/", &[("if", "(<urn:a\"b>)")]).is_err());
        assert!(syntax("/", &[("if", "([\"])")]).is_err());
        assert!(syntax("/", &[("if", "([\"a\"b\"])")]).is_err());
        assert!(syntax("/", &[("if", "([\"\"])")]).is_ok());
        assert!(syntax("/", &[("if", "(<urn:a b>)")]).is_err());
        assert!(syntax("/", &[("if", "(Not urn:uuid:1)")]).is_ok());
        assert!(syntax("/", &[("if", "(<")]).is_err());
        // Found by fuzzing: dav-server 0.11 panics on these.
        assert!(syntax("/", &[("if-range", "\"")]).is_err());
        assert!(syntax("/", &[("if-range", "W/\"")]).is_err());
        assert!(syntax("/", &[("if-range", "\"a\"")]).is_ok());
        assert!(syntax("/", &[("if-range", "Wed, 21 Oct 2015 07:28:00 GMT")]).is_ok());
    }

    #[test]
    fn depth_and_destination() {
        assert!(syntax("/", &[("depth", "2")]).is_err());
        assert!(syntax("/", &[("depth", "Infinity")]).is_ok());
        assert_eq!(check_policy(&req("/", &[])), Err(Rejection::FiniteDepth));
        assert_eq!(
            check_policy(&req("/", &[("depth", "infinity")])),
            Err(Rejection::FiniteDepth)
        );
        assert_eq!(check_policy(&req("/", &[("depth", "1")])), Ok(()));
        let host = ("host", "dav.example:8080");
        assert!(syntax("/", &[host, ("destination", "http://dav.example:8080/a")]).is_ok());
        assert!(syntax("/", &[host, ("destination", "https://DAV.example/a")]).is_ok());
        assert!(syntax("/", &[host, ("destination", "/a%20b")]).is_ok());
        assert_eq!(
            syntax("/", &[host, ("destination", "http://evil/a")]),
            Err(Rejection::ForeignDestination)
        );
        assert!(
            syntax(
                "/",
                &[host, ("destination", "http://dav.example:8080/../x")]
            )
            .is_err()
        );
        assert!(syntax("/", &[host, ("destination", "/a%2fb")]).is_err());
        assert!(syntax("/", &[host, ("destination", "ftp://dav.example/a")]).is_err());
    }

    #[test]
    fn raw_utf8_is_percent_encoded() {
        let mut r = Request::builder()
            .uri("/caf\u{e9}?x=1")
            .header(
                "destination",
                http::HeaderValue::from_bytes("/th\u{e9}".as_bytes()).expect("hv"),
            )
            .body(())
            .expect("request");
        assert_eq!(normalize(&mut r), Ok(()));
        assert_eq!(r.uri().path(), "/caf%C3%A9");
        assert_eq!(r.uri().query(), Some("x=1"));
        assert_eq!(r.headers()["destination"], "/th%C3%A9");
        let mut r = Request::builder()
            .header(
                "destination",
                http::HeaderValue::from_bytes(b"/\xff").expect("hv"),
            )
            .body(())
            .expect("request");
        assert!(normalize(&mut r).is_err());
    }

    #[test]
    fn oversized_headers() {
        let big = "x".repeat(DEFAULT_MAX_HEADER_BYTES);
        assert_eq!(
            syntax("/", &[("x-big", &big)]),
            Err(Rejection::HeadersTooLarge)
        );
    }
}
