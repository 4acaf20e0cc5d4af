//! Fuzz targets, shared by the libFuzzer binaries in `fuzz/` and by the
//! bounded in-`cargo test` run (`tests/fuzz_smoke.rs`). Each function takes
//! arbitrary bytes, must never panic or hang, and asserts invariants (an
//! assertion failure is a crash). See `docs/FUZZING.md`.

use std::sync::OnceLock;

use bytes::Bytes;
use dav_server::{DavHandler, davpath::DavPath, memfs::MemFs, memls::MemLs};
use http::{HeaderValue, Request};
use http_body_util::BodyExt as _;

use crate::{
    cloudreve::CrUri,
    dav::{locks::RequestedTimeout, propfind_fixup, times_and_checksums},
    front::{
        auth,
        guard::{self, DEFAULT_MAX_HEADER_BYTES},
        xmlbody,
    },
};

/// Headers the `headers` target picks from (first input byte).
pub const HEADER_NAMES: [&str; 14] = [
    "if",
    "if-match",
    "if-none-match",
    "depth",
    "timeout",
    "destination",
    "overwrite",
    "range",
    "lock-token",
    "authorization",
    "x-oc-mtime",
    "oc-checksum",
    "if-range",
    "content-type",
];

/// Methods the `headers` target picks from (second input byte).
const METHODS: [&str; 9] = [
    "GET",
    "PUT",
    "PROPFIND",
    "PROPPATCH",
    "LOCK",
    "UNLOCK",
    "COPY",
    "MOVE",
    "DELETE",
];

/// dav-server over an in-memory file system holding `/a` (a file) and `/d/`.
fn handler() -> &'static DavHandler {
    static H: OnceLock<DavHandler> = OnceLock::new();
    H.get_or_init(|| {
        let h = DavHandler::builder()
            .filesystem(MemFs::new())
            .locksystem(MemLs::new())
            .build_handler();
        for (method, path, body) in [("PUT", "/a", &b"0123456789"[..]), ("MKCOL", "/d/", b"")] {
            let req = Request::builder()
                .method(method)
                .uri(path)
                .body(http_body_util::Full::new(Bytes::from_static(body)))
                .expect("request");
            let _ = futures::executor::block_on(h.handle(req));
        }
        h
    })
}

fn run_dav(req: Request<Bytes>) -> u16 {
    let (parts, body) = req.into_parts();
    let req = Request::from_parts(parts, http_body_util::Full::new(body));
    let h = handler();
    futures::executor::block_on(async {
        let resp = h.handle(req).await;
        let status = resp.status().as_u16();
        let _ = resp.into_body().collect().await;
        status
    })
}

/// Header parsing: one request header (name picked by `data[0]`, method by
/// `data[1]`, value = the rest) goes through the front layer's checks; what
/// they accept is handed to dav-server (in-memory file system), which must
/// not panic on it. Our own header parsers (Basic credentials, lock
/// timeouts, `X-OC-Mtime`, `OC-Checksum`, Range) run on every value.
pub fn headers(data: &[u8]) {
    let [n, m, value @ ..] = data else {
        return;
    };
    let name = HEADER_NAMES[usize::from(*n) % HEADER_NAMES.len()];
    let method = METHODS[usize::from(*m) % METHODS.len()];
    let Ok(hv) = HeaderValue::from_bytes(value) else {
        return;
    };
    let _ = auth::parse_basic(&hv);
    if let Ok(text) = hv.to_str() {
        let _ = RequestedTimeout::parse(text);
        let _ = times_and_checksums::parse_time(text);
        let _ = times_and_checksums::Expected::parse(text);
        let _ = guard::check_range(text);
    }
    let Ok(mut req) = Request::builder()
        .method(method)
        .uri("/a")
        .header("host", "localhost")
        .header(name, hv)
        .body(Bytes::new())
    else {
        return;
    };
    if guard::normalize(&mut req).is_err()
        || guard::check_syntax(&req, DEFAULT_MAX_HEADER_BYTES).is_err()
    {
        return;
    }
    let status = run_dav(req);
    assert!((100..600).contains(&status));
}

/// Path mapping: bytes as a request target go through the front layer
/// (`normalize`, `check_path`); an accepted path must map to a dav-server
/// path and to a Cloudreve URI that survives a print/parse round trip, with
/// every name within the limits.
pub fn paths(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(uri) = text.parse::<http::Uri>() else {
        return;
    };
    let Ok(mut req) = Request::builder().uri(uri).body(()) else {
        return;
    };
    if guard::normalize(&mut req).is_err()
        || guard::check_syntax(&req, DEFAULT_MAX_HEADER_BYTES).is_err()
    {
        return;
    }
    let raw = req.uri().path();
    let path = DavPath::new(raw).expect("an accepted path is a dav-server path");
    let bytes = path.as_bytes();
    let decoded = std::str::from_utf8(bytes).expect("an accepted path is UTF-8");
    let mut cr = CrUri::my();
    for seg in decoded.split('/').filter(|s| !s.is_empty()) {
        assert!(seg.len() <= guard::MAX_NAME_BYTES, "name too long: {seg:?}");
        assert!(seg != "." && seg != "..", "dot segment accepted");
        assert!(!seg.contains(['\0', '\\']), "bad byte accepted: {seg:?}");
        let Ok(next) = cr.join(seg) else {
            return;
        };
        cr = next;
    }
    let printed = cr.to_string();
    let back = CrUri::parse(&printed).expect("a built URI parses");
    assert_eq!(back, cr, "CrUri round trip of {printed}");
}

/// XML handling: the DTD scanner gives the same verdict however the body is
/// split into chunks (split point from `data[0]`), refuses every body that
/// contains a declaration, and the gateway's own PROPFIND/PROPPATCH body
/// readers never panic on what it lets through. Accepted bodies are also
/// sent to dav-server as PROPPATCH and LOCK.
pub fn xml(data: &[u8]) {
    let Some((&k, body)) = data.split_first() else {
        return;
    };
    let whole = xmlbody::scan(body);
    let cut = if body.is_empty() {
        0
    } else {
        usize::from(k) % body.len()
    };
    let mut s = xmlbody::DtdScanner::new();
    let split = s.feed(&body[..cut]).and_then(|()| s.feed(&body[cut..]));
    assert_eq!(whole.is_ok(), split.is_ok(), "verdict depends on chunking");
    let lower = body.to_ascii_lowercase();
    let declares = [&b"<!doctype"[..], b"<!entity"]
        .iter()
        .any(|m| lower.windows(m.len()).any(|w| w == *m));
    if declares {
        assert!(whole.is_err(), "declaration let through");
        return;
    }
    if whole.is_err() {
        return;
    }
    let _ = propfind_fixup::requested(body);
    let _ = times_and_checksums::take_times(body);
    for method in ["PROPPATCH", "LOCK"] {
        let req = Request::builder()
            .method(method)
            .uri("/a")
            .body(Bytes::copy_from_slice(body))
            .expect("request");
        let _ = run_dav(req);
    }
}
