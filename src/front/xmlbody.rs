//! Screening of XML request bodies (PROPFIND, PROPPATCH, LOCK) before
//! dav-server or our own PROPPATCH/PROPFIND readers parse them.
//!
//! Policy:
//! - A body that declares a document type or an entity (`<!DOCTYPE`,
//!   `<!ENTITY`, matched ASCII case-insensitively anywhere in the body) is
//!   refused with **400** and never parsed, so no external entity is fetched
//!   and no entity is expanded. WebDAV bodies never need a DTD; a literal
//!   `<!DOCTYPE` inside a CDATA property value is refused too (false
//!   positive by design).
//! - A body with a NUL byte or a UTF-16/UTF-32 byte-order mark is refused
//!   with 400: such encodings would hide the markup from the byte scan.
//! - A body above [`MAX_XML_BODY`] bytes is refused with **413** (at once if
//!   `Content-Length` says so, else as soon as the limit is passed).
//!   dav-server buffers these bodies whole with the same limit, so the
//!   memory held per request is bounded by it either way.
//!
//! The scan is incremental ([`DtdScanner`]): it reads the body frame by
//! frame and stops at the first refused byte.

use bytes::{Bytes, BytesMut};
use http::{Method, Request, header};
use http_body_util::BodyExt as _;

use super::{BoxBody, full_body, guard::Rejection};

/// Largest XML request body accepted (the limit dav-server 0.11 applies).
pub const MAX_XML_BODY: usize = 64 * 1024;

/// Methods whose body is XML parsed by the gateway.
pub fn is_xml_method(method: &Method) -> bool {
    matches!(method.as_str(), "PROPFIND" | "PROPPATCH" | "LOCK")
}

/// Markers refused anywhere in a body (compared ASCII case-insensitively).
const MARKERS: [&[u8]; 2] = [b"<!doctype", b"<!entity"];

/// Bytes kept between chunks so that a marker split across two chunks is found.
const CARRY: usize = 8;

/// Incremental scanner for DTD and entity declarations.
#[derive(Debug, Clone, Default)]
pub struct DtdScanner {
    /// The last bytes of the previous chunk (at most [`CARRY`]).
    tail: Vec<u8>,
    /// Bytes seen so far.
    seen: u64,
}

impl DtdScanner {
    /// A scanner at the start of a body.
    pub fn new() -> Self {
        Self::default()
    }

    /// Scans the next chunk; `Err` carries the reason for the log.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), &'static str> {
        if chunk.contains(&0) {
            return Err("NUL byte in XML body");
        }
        let mut window = Vec::with_capacity(self.tail.len() + chunk.len());
        window.extend_from_slice(&self.tail);
        window.extend_from_slice(chunk);
        // A UTF-16/32 byte-order mark; `tail` holds every earlier byte
        // while fewer than two were seen (found by fuzzing: a mark split
        // across chunks).
        if self.seen < 2 && (window.starts_with(&[0xfe, 0xff]) || window.starts_with(&[0xff, 0xfe]))
        {
            return Err("XML body in UTF-16 or UTF-32");
        }
        if contains_marker(&window) {
            return Err("DTD or entity declaration in XML body");
        }
        let keep = window.len().min(CARRY);
        self.tail = window[window.len() - keep..].to_vec();
        self.seen += chunk.len() as u64;
        Ok(())
    }
}

fn contains_marker(hay: &[u8]) -> bool {
    MARKERS.iter().any(|m| {
        hay.windows(m.len()).any(|w| {
            w.iter()
                .zip(m.iter())
                .all(|(a, b)| a.to_ascii_lowercase() == *b)
        })
    })
}

/// Scans a whole body at once (see [`DtdScanner`]).
pub fn scan(body: &[u8]) -> Result<(), &'static str> {
    DtdScanner::new().feed(body)
}

/// Reads and screens the body of an XML method, bounded by
/// [`MAX_XML_BODY`], and returns the request with the screened body.
/// Requests of other methods pass untouched.
pub async fn screen(req: Request<BoxBody>) -> Result<Request<BoxBody>, Rejection> {
    if !is_xml_method(req.method()) {
        return Ok(req);
    }
    if let Some(len) = req.headers().get(header::CONTENT_LENGTH)
        && len
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .is_some_and(|n| n > MAX_XML_BODY as u64)
    {
        return Err(Rejection::PayloadTooLarge);
    }
    let (parts, mut body) = req.into_parts();
    let mut scanner = DtdScanner::new();
    let mut buf = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| Rejection::BadRequest("request body unreadable"))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if buf.len() + data.len() > MAX_XML_BODY {
            return Err(Rejection::PayloadTooLarge);
        }
        scanner.feed(&data).map_err(Rejection::BadRequest)?;
        buf.extend_from_slice(&data);
    }
    let bytes: Bytes = buf.freeze();
    Ok(Request::from_parts(parts, full_body(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_found_across_chunks_and_cases() {
        let doc = b"<?xml version=\"1.0\"?><!DocType x [<!ENTITY a \"b\">]><x/>";
        assert!(scan(doc).is_err());
        for cut in 0..doc.len() {
            let mut s = DtdScanner::new();
            let r = s.feed(&doc[..cut]).and_then(|()| s.feed(&doc[cut..]));
            assert!(r.is_err(), "cut at {cut}");
        }
        assert!(scan(b"<D:propfind xmlns:D=\"DAV:\"><D:allprop/></D:propfind>").is_ok());
        assert!(scan(b"<a>&lt;!DOCTYPE</a>").is_ok());
        assert!(scan(b"<!ENTITY").is_err());
        assert!(scan(b"\xff\xfe<\0a\0").is_err());
        assert!(scan(b"<a>\0</a>").is_err());
    }
}
