//! Client times and checksums the gateway keeps in Cloudreve metadata. In
//! 4.18 an upload's `last_modified` does set the file's `updated_at`
//! (docs/UPSTREAM.md §5.4), but ctime and checksums have no field upstream,
//! and the gateway keeps mtimes here too. They are dead properties of the
//! gateway's own namespace in Cloudreve's `/dav` format (UPSTREAM §4.8),
//! each tied to the `primary_entity` it was set for. A later write by
//! anyone makes the entity change, so the kept value goes stale and
//! `updated_at` wins.
//!
//! Keys: `dav:urn:cloudreve-dav:|mtime`, `…|ctime`, `…|checksum`; inner
//! XML `<kept entity="ENTITY">VALUE</kept>` (times as unix seconds,
//! checksums as `ALGO:hex`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;

use crate::cloudreve::{FileResponse, MetadataPatch};

/// The gateway's own property namespace.
pub const NS: &str = "urn:cloudreve-dav:";
/// Local name of the kept modification time.
pub const MTIME: &str = "mtime";
/// Local name of the kept creation time.
pub const CTIME: &str = "ctime";
/// Local name of the kept checksum.
pub const CHECKSUM: &str = "checksum";

/// The metadata key of one kept value.
pub fn key(name: &str) -> String {
    format!("{}{NS}|{name}", super::props::KEY_PREFIX)
}

/// The patch storing `value` for `entity` under `name`.
pub fn patch(name: &str, entity: &str, value: &str) -> MetadataPatch {
    let inner = format!(
        "<kept entity=\"{}\">{}</kept>",
        super::xml_text::escape(entity),
        super::xml_text::escape(value)
    );
    let b64 = base64::engine::general_purpose::STANDARD.encode(inner.as_bytes());
    let v = serde_json::json!({ "i": b64 }).to_string();
    MetadataPatch::set(key(name), v)
}

/// `(entity, value)` of a stored inner XML.
fn parse_inner(inner: &str) -> Option<(String, String)> {
    let rest = inner.trim().strip_prefix("<kept")?;
    let i = rest.find("entity=\"")? + "entity=\"".len();
    let j = rest[i..].find('"')? + i;
    let entity = super::xml_text::unescape(&rest[i..j]).into_owned();
    let k = rest[j..].find('>')? + j + 1;
    let l = rest[k..].find("</kept>")? + k;
    Some((
        entity,
        super::xml_text::unescape(rest[k..l].trim()).into_owned(),
    ))
}

/// The value kept under `name`, if it was set for `f`'s current entity.
pub fn current(f: &FileResponse, name: &str) -> Option<String> {
    let raw = f.metadata.as_ref()?.get(&key(name))?;
    let v: serde_json::Value = serde_json::from_str(raw).ok()?;
    let b = base64::engine::general_purpose::STANDARD
        .decode(v.get("i")?.as_str()?.as_bytes())
        .ok()?;
    let (entity, value) = parse_inner(std::str::from_utf8(&b).ok()?)?;
    let now = f.primary_entity.as_deref().unwrap_or("");
    (entity == now).then_some(value)
}

/// A kept time, if current.
pub fn time(f: &FileResponse, name: &str) -> Option<SystemTime> {
    parse_time(&current(f, name)?)
}

/// Parses a client time: unix seconds (maybe fractional, as `X-OC-Mtime`
/// and rclone's `lastmodified` send them), an HTTP date (Windows'
/// `Win32LastModifiedTime`, `getlastmodified`) or RFC 3339.
pub fn parse_time(s: &str) -> Option<SystemTime> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if s.bytes()
        .all(|c| c.is_ascii_digit() || c == b'.' || c == b'-')
    {
        let f: f64 = s.parse().ok()?;
        if !f.is_finite() || !(0.0..=253_402_300_799.0).contains(&f) {
            return None;
        }
        return Some(UNIX_EPOCH + Duration::from_secs_f64(f));
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc2822(s) {
        return to_sys(t.timestamp(), t.timestamp_subsec_nanos());
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return to_sys(t.timestamp(), t.timestamp_subsec_nanos());
    }
    None
}

fn to_sys(secs: i64, nanos: u32) -> Option<SystemTime> {
    let secs = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + Duration::new(secs, nanos))
}

/// The stored form of a time: unix seconds, with a fraction when needed.
pub fn format_time(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    if d.subsec_nanos() == 0 {
        d.as_secs().to_string()
    } else {
        let s = format!("{}.{:09}", d.as_secs(), d.subsec_nanos());
        s.trim_end_matches('0').to_string()
    }
}

/// Times a client asked to set on one resource.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Times {
    /// Modification time.
    pub mtime: Option<SystemTime>,
    /// Creation time.
    pub ctime: Option<SystemTime>,
}

impl Times {
    /// Nothing to set?
    pub fn is_empty(&self) -> bool {
        self.mtime.is_none() && self.ctime.is_none()
    }

    /// The metadata patches keeping these times for `entity`.
    pub fn patches(&self, entity: &str) -> Vec<MetadataPatch> {
        let mut v = Vec::new();
        if let Some(t) = self.mtime {
            v.push(patch(MTIME, entity, &format_time(t)));
        }
        if let Some(t) = self.ctime {
            v.push(patch(CTIME, entity, &format_time(t)));
        }
        v
    }
}

/// Streaming checksum of an upload, as `OC-Checksum` names it.
pub enum Hasher {
    /// `SHA1:<hex>`.
    Sha1(sha1::Sha1),
    /// `MD5:<hex>`.
    Md5(md5::Md5),
    /// `SHA256:<hex>`.
    Sha256(sha2::Sha256),
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Hasher::Sha1(_) => "SHA1",
            Hasher::Md5(_) => "MD5",
            Hasher::Sha256(_) => "SHA256",
        })
    }
}

impl Hasher {
    fn update(&mut self, b: &[u8]) {
        use sha2::Digest as _;
        match self {
            Hasher::Sha1(h) => h.update(b),
            Hasher::Md5(h) => h.update(b),
            Hasher::Sha256(h) => h.update(b),
        }
    }

    /// `ALGO:hex` of the bytes fed so far.
    fn value(&self) -> String {
        use sha2::Digest as _;
        let (algo, digest) = match self {
            Hasher::Sha1(h) => ("SHA1", h.clone().finalize().to_vec()),
            Hasher::Md5(h) => ("MD5", h.clone().finalize().to_vec()),
            Hasher::Sha256(h) => ("SHA256", h.clone().finalize().to_vec()),
        };
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("{algo}:{hex}")
    }
}

/// A parsed `OC-Checksum` header: the hasher to run and the expected
/// value (`ALGO:hex`, algorithm upper case, hex lower case).
///
/// Like ownCloud, the gateway also computes the other common algorithm
/// (MD5 next to SHA1, SHA1 next to MD5 or SHA256) while the bytes stream
/// by, so `oc:checksums` offers both: rclone uploads with SHA1 but
/// compares with MD5 when both sides have it.
#[derive(Debug)]
pub struct Expected {
    /// The running hash.
    pub hasher: Hasher,
    /// Normalised expected value.
    pub value: String,
    /// The companion hash computed alongside.
    pub companion: Hasher,
}

impl Expected {
    /// Parses `SHA1:…`, `MD5:…` or `SHA256:…`; `None` for another
    /// algorithm (not verified, not kept). Malformed hex never matches.
    pub fn parse(header: &str) -> Option<Self> {
        use sha2::Digest as _;
        let (algo, hex) = header.trim().split_once(':')?;
        let algo = algo.trim().to_ascii_uppercase();
        let hex = hex.trim().to_ascii_lowercase();
        let (hasher, companion) = match algo.as_str() {
            "SHA1" => (
                Hasher::Sha1(sha1::Sha1::new()),
                Hasher::Md5(md5::Md5::new()),
            ),
            "MD5" => (
                Hasher::Md5(md5::Md5::new()),
                Hasher::Sha1(sha1::Sha1::new()),
            ),
            "SHA256" => (
                Hasher::Sha256(sha2::Sha256::new()),
                Hasher::Sha1(sha1::Sha1::new()),
            ),
            _ => return None,
        };
        Some(Self {
            hasher,
            value: format!("{algo}:{hex}"),
            companion,
        })
    }

    /// Feeds bytes.
    pub fn update(&mut self, b: &[u8]) {
        self.hasher.update(b);
        self.companion.update(b);
    }

    /// True when the bytes fed so far match.
    pub fn matches(&self) -> bool {
        self.hasher.value() == self.value
    }

    /// The value to keep once verified: the client's checksum, then the
    /// companion (`SHA1:… MD5:…`, ownCloud's space-separated form).
    pub fn kept_value(&self) -> String {
        format!("{} {}", self.value, self.companion.value())
    }
}

/// The ownCloud namespace.
pub const OC_NS: &str = "http://owncloud.org/ns";

/// The `oc:checksums` property of `f`, if a checksum is kept for its
/// current entity.
pub fn checksums_prop(f: &FileResponse, with_content: bool) -> Option<dav_server::fs::DavProp> {
    let v = current(f, CHECKSUM)?;
    Some(dav_server::fs::DavProp {
        name: "checksums".into(),
        prefix: Some("oc".into()),
        namespace: Some(OC_NS.into()),
        xml: with_content.then(|| {
            format!(
                "<checksums xmlns=\"{OC_NS}\"><checksum>{}</checksum></checksums>",
                super::xml_text::escape(&v)
            )
            .into_bytes()
        }),
    })
}

/// Namespace of Windows' `Win32*` properties.
pub const MS_NS: &str = "urn:schemas-microsoft-com:";

/// What a PROPPATCH body asks for time-wise.
#[derive(Debug, Default)]
pub struct TimePatch {
    /// The times to keep.
    pub times: Times,
    /// The body to hand to dav-server when properties were taken out.
    pub body: Option<Vec<u8>>,
    /// `(namespace, local name)` of the properties taken out of the body
    /// (`DAV:getlastmodified`, which dav-server refuses as protected, and
    /// `DAV:lastmodified`, which it would store as a dead property); their
    /// propstat is added to the answer.
    pub taken: Vec<(String, String)>,
}

/// Finds the times a PROPPATCH sets: `DAV:lastmodified` (rclone's
/// owncloud/nextcloud vendors, unix seconds), `DAV:getlastmodified`, and
/// Windows' `Win32LastModifiedTime` / `Win32CreationTime` (which dav-server
/// acknowledges itself, so they stay in the body). Unparsable values are
/// left to dav-server.
pub fn take_times(body: &[u8]) -> TimePatch {
    let mut out = TimePatch::default();
    let Ok(mut root) = xmltree::Element::parse(body) else {
        return out;
    };
    if root.name != "propertyupdate" || root.namespace.as_deref() != Some("DAV:") {
        return out;
    }
    for op in root.children.iter_mut().filter_map(|c| c.as_mut_element()) {
        if op.name != "set" || op.namespace.as_deref() != Some("DAV:") {
            continue;
        }
        for prop in op.children.iter_mut().filter_map(|c| c.as_mut_element()) {
            if prop.name != "prop" {
                continue;
            }
            let mut keep = Vec::with_capacity(prop.children.len());
            for c in std::mem::take(&mut prop.children) {
                if let Some(e) = c.as_element() {
                    let ns = e.namespace.as_deref().unwrap_or("");
                    let t = e.get_text().and_then(|t| parse_time(&t));
                    match (ns, e.name.as_str(), t) {
                        ("DAV:", "getlastmodified" | "lastmodified", Some(t)) => {
                            out.times.mtime = Some(t);
                            out.taken.push((ns.to_string(), e.name.clone()));
                            continue;
                        }
                        (MS_NS, "Win32LastModifiedTime", Some(t)) => out.times.mtime = Some(t),
                        (MS_NS, "Win32CreationTime", Some(t)) => out.times.ctime = Some(t),
                        _ => {}
                    }
                }
                keep.push(c);
            }
            prop.children = keep;
        }
    }
    if !out.taken.is_empty() {
        let mut b = Vec::new();
        if root.write(&mut b).is_ok() {
            out.body = Some(b);
        } else {
            out.taken.clear();
            out.times = Times::default();
        }
    }
    out
}

/// True when every propstat of a PROPPATCH answer says 200.
pub fn all_ok(body: &str) -> bool {
    const ST: &str = "<D:status>HTTP/1.1 ";
    body.match_indices(ST)
        .all(|(i, _)| body[i + ST.len()..].starts_with("200"))
}

/// Rewrites a PROPPATCH answer: every 200 becomes `failed` when the
/// times could not be kept, and the `taken` properties get a propstat
/// (200, or `failed`/424).
pub fn fix_response(body: &str, taken: &[(String, String)], failed: Option<u16>) -> String {
    let reason = |c: u16| {
        http::StatusCode::from_u16(c)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("Error")
    };
    let mut s = body.to_string();
    let taken_status = match failed {
        Some(c) => {
            s = s.replace(
                "<D:status>HTTP/1.1 200 OK</D:status>",
                &format!("<D:status>HTTP/1.1 {c} {}</D:status>", reason(c)),
            );
            c
        }
        None if all_ok(body) => 200,
        None => 424,
    };
    if taken.is_empty() {
        return s;
    }
    let mut ps = String::from("<D:propstat><D:prop>");
    for (ns, name) in taken {
        ps.push_str(&format!(
            "<{name} xmlns=\"{}\"/>",
            super::xml_text::escape(ns)
        ));
    }
    ps.push_str(&format!(
        "</D:prop><D:status>HTTP/1.1 {taken_status} {}</D:status></D:propstat>",
        reason(taken_status)
    ));
    match s.rfind("</D:response>") {
        Some(i) => s.insert_str(i, &ps),
        None => {
            tracing::warn!("PROPPATCH answer without a response element");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_is_kept_with_its_companion() {
        let mut e = Expected::parse("sha1:A9993E364706816ABA3E25717850C26C9CD0D89D").unwrap();
        e.update(b"a");
        e.update(b"bc");
        assert!(e.matches());
        assert_eq!(
            e.kept_value(),
            "SHA1:a9993e364706816aba3e25717850c26c9cd0d89d MD5:900150983cd24fb0d6963f7d28e17f72"
        );
        let mut e = Expected::parse("MD5:900150983cd24fb0d6963f7d28e17f72").unwrap();
        e.update(b"abc");
        assert!(e.matches());
        assert!(
            e.kept_value()
                .ends_with(" SHA1:a9993e364706816aba3e25717850c26c9cd0d89d")
        );
        let mut e = Expected::parse("MD5:900150983cd24fb0d6963f7d28e17f72").unwrap();
        e.update(b"abd");
        assert!(!e.matches());
    }

    #[test]
    fn kept_roundtrip_and_staleness() {
        let p = patch(MTIME, "ab\"c", "1500000000");
        assert_eq!(p.key, "dav:urn:cloudreve-dav:|mtime");
        let mut f: FileResponse = serde_json::from_value(serde_json::json!({
            "type": 0, "id": "x", "name": "a", "size": 1,
            "primary_entity": "ab\"c",
            "metadata": { p.key.clone(): p.value.clone() },
        }))
        .expect("file");
        assert_eq!(current(&f, MTIME).as_deref(), Some("1500000000"));
        assert_eq!(
            time(&f, MTIME),
            Some(UNIX_EPOCH + Duration::from_secs(1_500_000_000))
        );
        f.primary_entity = Some("other".into());
        assert_eq!(current(&f, MTIME), None);
    }

    #[test]
    fn times_parse() {
        let t = UNIX_EPOCH + Duration::from_secs(1_500_000_000);
        assert_eq!(parse_time("1500000000"), Some(t));
        assert_eq!(parse_time("Fri, 14 Jul 2017 02:40:00 GMT"), Some(t));
        assert_eq!(parse_time("2017-07-14T02:40:00Z"), Some(t));
        let f = parse_time("1500000000.5").expect("fraction");
        assert_eq!(format_time(f), "1500000000.5");
        assert_eq!(parse_time("nope"), None);
        assert_eq!(parse_time("-5"), None);
    }

    #[test]
    fn proppatch_times() {
        let b = br#"<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:schemas-microsoft-com:"><D:set><D:prop><lastmodified xmlns="DAV:">1500000000</lastmodified><Z:Win32CreationTime>Thu, 13 Jul 2017 02:40:00 GMT</Z:Win32CreationTime><x:o xmlns:x="urn:x">v</x:o></D:prop></D:set></D:propertyupdate>"#;
        let tp = take_times(b);
        let t = UNIX_EPOCH + Duration::from_secs(1_500_000_000);
        assert_eq!(tp.times.mtime, Some(t));
        assert_eq!(tp.times.ctime, Some(t - Duration::from_secs(86400)));
        assert_eq!(
            tp.taken,
            vec![("DAV:".to_string(), "lastmodified".to_string())]
        );
        let nb = String::from_utf8(tp.body.expect("rewritten")).expect("utf8");
        assert!(!nb.contains("lastmodified"), "{nb}");
        assert!(
            nb.contains("Win32CreationTime") && nb.contains("urn:x"),
            "{nb}"
        );
        let resp = "<D:multistatus xmlns:D=\"DAV:\"><D:response><D:href>/a</D:href><D:propstat><D:prop><o xmlns=\"urn:x\"/></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response></D:multistatus>";
        let fixed = fix_response(resp, &tp.taken, None);
        assert!(
            fixed.contains("<lastmodified xmlns=\"DAV:\"/></D:prop><D:status>HTTP/1.1 200 OK"),
            "{fixed}"
        );
        let failed = fix_response(resp, &tp.taken, Some(403));
        assert!(!failed.contains("200 OK"), "{failed}");
    }

    #[test]
    fn checksums() {
        let mut e = Expected::parse("sha1:A9993E364706816ABA3E25717850C26C9CD0D89D").expect("ok");
        e.update(b"ab");
        e.update(b"c");
        assert!(e.matches());
        assert_eq!(e.value, "SHA1:a9993e364706816aba3e25717850c26c9cd0d89d");
        let mut m = Expected::parse("MD5:900150983cd24fb0d6963f7d28e17f72").expect("ok");
        m.update(b"abc");
        assert!(m.matches());
        assert!(Expected::parse("CRC32:1234").is_none());
        let mut bad = Expected::parse("SHA1:zz").expect("known algorithm");
        bad.update(b"abc");
        assert!(!bad.matches());
    }
}
