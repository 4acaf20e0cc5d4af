//! Dead properties stored as Cloudreve metadata, in the format of
//! Cloudreve's own `/dav` (docs/UPSTREAM.md §4.8), so both see the same values:
//! key `dav:<namespace>|<local name>`, value `{"i":"<base64 inner XML>"}`.
//!
//! Reads come from the `metadata` map of the (cached) `FileResponse`, so a
//! listing costs no extra upstream call per entry.

use base64::Engine as _;
use dav_server::fs::DavProp;
use serde::{Deserialize, Serialize};

use crate::cloudreve::{FileResponse, MetadataPatch};

/// Prefix of dead-property metadata keys.
pub const KEY_PREFIX: &str = "dav:";

#[derive(Serialize, Deserialize)]
struct Value {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    l: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    i: String,
}

/// The metadata key of a property; `None` when the namespace contains `|`
/// (which Cloudreve could not split back).
pub fn key_of(p: &DavProp) -> Option<String> {
    let ns = p.namespace.as_deref().unwrap_or("");
    // The gateway's own namespace holds kept times/checksums: not
    // writable by clients.
    if ns.contains('|') || p.name.is_empty() || ns == super::times_and_checksums::NS {
        return None;
    }
    Some(format!("{KEY_PREFIX}{ns}|{}", p.name))
}

/// The inner XML of a serialised element (`<a ...>inner</a>` → `inner`).
fn inner_xml(xml: &[u8]) -> Vec<u8> {
    let s = String::from_utf8_lossy(xml);
    let s = s.trim();
    let s = match s.strip_prefix("<?xml") {
        Some(rest) => rest.split_once("?>").map(|(_, r)| r.trim()).unwrap_or(""),
        None => s,
    };
    // End of the start tag, outside quoted attribute values.
    let mut quote: Option<char> = None;
    let mut end = None;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '>') => {
                end = Some(i);
                break;
            }
            _ => {}
        }
    }
    let Some(end) = end else { return Vec::new() };
    if s[..end].ends_with('/') {
        return Vec::new();
    }
    let body = &s[end + 1..];
    match body.rfind("</") {
        Some(close) => body.as_bytes()[..close].to_vec(),
        None => Vec::new(),
    }
}

/// A metadata patch for one PROPPATCH item (`set` → upsert).
pub fn patch_of(set: bool, p: &DavProp) -> Option<MetadataPatch> {
    let key = key_of(p)?;
    if !set {
        return Some(MetadataPatch::remove(key));
    }
    let inner = p.xml.as_deref().map(inner_xml).unwrap_or_default();
    let v = Value {
        l: String::new(),
        i: if inner.is_empty() {
            String::new()
        } else {
            base64::engine::general_purpose::STANDARD.encode(&inner)
        },
    };
    let value = serde_json::to_string(&v).ok()?;
    Some(MetadataPatch::set(key, value))
}

/// The dead properties of an object.
pub fn props_of(f: &FileResponse, with_content: bool) -> Vec<DavProp> {
    let Some(md) = f.metadata.as_ref() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (k, v) in md {
        let Some(rest) = k.strip_prefix(KEY_PREFIX) else {
            continue;
        };
        let Some((ns, name)) = rest.split_once('|') else {
            continue;
        };
        if ns == super::times_and_checksums::NS {
            continue;
        }
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_alphanumeric() || "-_.".contains(c))
        {
            continue;
        }
        let xml = if with_content {
            let Ok(val) = serde_json::from_str::<Value>(v) else {
                continue;
            };
            let inner = base64::engine::general_purpose::STANDARD
                .decode(val.i.as_bytes())
                .unwrap_or_default();
            let inner = String::from_utf8_lossy(&inner);
            let lang = if val.l.is_empty() {
                String::new()
            } else {
                format!(" xml:lang=\"{}\"", super::xml_text::escape(&val.l))
            };
            Some(
                format!(
                    "<{name} xmlns=\"{}\"{lang}>{inner}</{name}>",
                    super::xml_text::escape(ns)
                )
                .into_bytes(),
            )
        } else {
            None
        };
        out.push(DavProp {
            name: name.to_string(),
            prefix: None,
            namespace: Some(ns.to_string()),
            xml,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inner_xml_cases() {
        assert_eq!(inner_xml(b"<x:foo xmlns:x=\"urn:x\">bar</x:foo>"), b"bar");
        assert_eq!(inner_xml(b"<foo a=\"b>c\"/>"), b"");
        assert_eq!(inner_xml(b"<foo><b>1</b></foo>"), b"<b>1</b>");
    }

    #[test]
    fn cloudreve_format() {
        let p = DavProp {
            name: "foo".into(),
            prefix: Some("x".into()),
            namespace: Some("urn:x".into()),
            xml: Some(b"<x:foo xmlns:x=\"urn:x\">bar</x:foo>".to_vec()),
        };
        let m = patch_of(true, &p).expect("patch");
        assert_eq!(m.key, "dav:urn:x|foo");
        assert_eq!(m.value, "{\"i\":\"YmFy\"}");
    }
}
