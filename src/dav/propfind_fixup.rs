//! Adds the `404 Not Found` propstat dav-server 0.11 omits for requested
//! but absent properties (RFC 4918 §9.1), by rewriting each streamed
//! `<D:response>` chunk of a PROPFIND `<prop>` answer.
//!
//! It also gives back the `D:` prefix to the `DAV:` properties dav-server
//! echoes in the request's own spelling: asked as `<resourcetype
//! xmlns="DAV:"/>` (LibreOffice does), `resourcetype` comes back in a
//! default-namespace declaration, which LibreOffice's response parser does
//! not understand (it then cannot tell a document from a folder and refuses
//! to open it).
//!
//! dav-server flushes one chunk per resource; a chunk that does not hold
//! whole responses is passed through unchanged.

use bytes::Bytes;

/// A requested property: namespace and local name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropName {
    /// Namespace URI (`""` for none).
    pub ns: String,
    /// Local name.
    pub name: String,
}

/// The properties a PROPFIND body asks for by name (`None` for allprop,
/// propname, an empty body or an unparsable one).
pub fn requested(body: &[u8]) -> Option<Vec<PropName>> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return None;
    }
    let root = xmltree::Element::parse(body).ok()?;
    if root.name != "propfind" {
        return None;
    }
    let prop = root.get_child("prop")?;
    let v: Vec<PropName> = prop
        .children
        .iter()
        .filter_map(|c| c.as_element())
        .map(|e| PropName {
            ns: e.namespace.clone().unwrap_or_default(),
            name: e.name.clone(),
        })
        .collect();
    (!v.is_empty()).then_some(v)
}

const DAV_DEFAULT_NS: &str = " xmlns=\"DAV:\"";

/// Rewrites `<name xmlns="DAV:">…</name>` (and the empty-element form) to
/// `<D:name>…</D:name>` in one response; `D` is bound to `DAV:` on the
/// multistatus root. The declaration stays when unprefixed child elements
/// rely on it; an element holding one of its own name is left alone.
fn prefix_dav_defaults(response: &str) -> std::borrow::Cow<'_, str> {
    if !response.contains(DAV_DEFAULT_NS) {
        return std::borrow::Cow::Borrowed(response);
    }
    let mut out = String::with_capacity(response.len() + 16);
    let mut rest = response;
    while let Some(k) = rest.find(DAV_DEFAULT_NS) {
        let Some(lt) = rest[..k].rfind('<') else {
            break;
        };
        let name = &rest[lt + 1..k];
        let after = &rest[k + DAV_DEFAULT_NS.len()..];
        let plain = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
        if !plain {
            out.push_str(&rest[..k + DAV_DEFAULT_NS.len()]);
            rest = after;
            continue;
        }
        out.push_str(&rest[..lt]);
        if let Some(tail) = after.strip_prefix("/>") {
            out.push_str(&format!("<D:{name}/>"));
            rest = tail;
        } else if let Some(tail) = after.strip_prefix('>') {
            let close = format!("</{name}>");
            match tail.find(&close) {
                Some(c) if !has_start_tag(&tail[..c], |n| n == name) => {
                    let keep = if has_start_tag(&tail[..c], |n| !n.contains(':')) {
                        DAV_DEFAULT_NS
                    } else {
                        ""
                    };
                    out.push_str(&format!("<D:{name}{keep}>"));
                    out.push_str(&tail[..c]);
                    out.push_str(&format!("</D:{name}>"));
                    rest = &tail[c + close.len()..];
                }
                _ => {
                    out.push_str(&rest[lt..k + DAV_DEFAULT_NS.len()]);
                    rest = after;
                }
            }
        } else {
            out.push_str(&rest[lt..k + DAV_DEFAULT_NS.len()]);
            rest = after;
        }
    }
    out.push_str(rest);
    std::borrow::Cow::Owned(out)
}

/// Whether `xml` holds a start tag whose name satisfies `pred`.
fn has_start_tag(xml: &str, pred: impl Fn(&str) -> bool) -> bool {
    xml.split('<').skip(1).any(|t| {
        !t.starts_with(['/', '!', '?'])
            && pred(
                t.split(|c: char| c.is_whitespace() || c == '>' || c == '/')
                    .next()
                    .unwrap_or(""),
            )
    })
}

/// Rewrites chunks of a multistatus answer.
#[derive(Debug)]
pub struct PropFixer {
    wanted: Vec<PropName>,
    /// `<D:multistatus ...>` start tag (namespace declarations).
    root_start: Option<String>,
}

const RESP_OPEN: &str = "<D:response>";
const RESP_CLOSE: &str = "</D:response>";

impl PropFixer {
    /// A fixer for the `wanted` properties.
    pub fn new(wanted: Vec<PropName>) -> Self {
        Self {
            wanted,
            root_start: None,
        }
    }

    /// Rewrites one chunk.
    pub fn fix(&mut self, chunk: &Bytes) -> Bytes {
        let Ok(s) = std::str::from_utf8(chunk) else {
            return chunk.clone();
        };
        if self.root_start.is_none()
            && let Some(i) = s.find("<D:multistatus")
            && let Some(j) = s[i..].find('>')
        {
            self.root_start = Some(s[i..i + j + 1].to_string());
        }
        let Some(root) = self.root_start.clone() else {
            return chunk.clone();
        };
        let mut out = String::with_capacity(s.len() + 128);
        let mut rest = s;
        while let Some(i) = rest.find(RESP_OPEN) {
            let Some(j) = rest[i..].find(RESP_CLOSE) else {
                return chunk.clone();
            };
            let end = i + j;
            out.push_str(&rest[..i]);
            out.push_str(&prefix_dav_defaults(&rest[i..end]));
            out.push_str(&self.missing_propstat(&root, &rest[i..end + RESP_CLOSE.len()]));
            out.push_str(RESP_CLOSE);
            rest = &rest[end + RESP_CLOSE.len()..];
        }
        out.push_str(rest);
        Bytes::from(out)
    }

    fn missing_propstat(&self, root: &str, response: &str) -> String {
        let doc = format!("{root}{response}</D:multistatus>");
        let Ok(tree) = xmltree::Element::parse(doc.as_bytes()) else {
            return String::new();
        };
        let mut present: Vec<(String, String)> = Vec::new();
        if let Some(resp) = tree.get_child("response") {
            for ps in resp.children.iter().filter_map(|c| c.as_element()) {
                if ps.name != "propstat" {
                    continue;
                }
                if let Some(prop) = ps.get_child("prop") {
                    for e in prop.children.iter().filter_map(|c| c.as_element()) {
                        present.push((e.namespace.clone().unwrap_or_default(), e.name.clone()));
                    }
                }
            }
        }
        let missing: Vec<&PropName> = self
            .wanted
            .iter()
            .filter(|w| !present.iter().any(|(ns, n)| *ns == w.ns && *n == w.name))
            .collect();
        if missing.is_empty() {
            return String::new();
        }
        let mut o = String::from("<D:propstat><D:prop>");
        for m in missing {
            o.push_str(&format!(
                "<{} xmlns=\"{}\"/>",
                m.name,
                super::xml_text::escape(&m.ns)
            ));
        }
        o.push_str("</D:prop><D:status>HTTP/1.1 404 Not Found</D:status></D:propstat>");
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_missing_props() {
        let req = br#"<?xml version="1.0"?><D:propfind xmlns:D="DAV:" xmlns:x="urn:x"><D:prop><D:getetag/><x:nope/></D:prop></D:propfind>"#;
        let wanted = requested(req).expect("prop list");
        assert_eq!(wanted.len(), 2);
        let mut f = PropFixer::new(wanted);
        let c1 = Bytes::from_static(
            b"<?xml version=\"1.0\" encoding=\"utf-8\"?><D:multistatus xmlns:D=\"DAV:\">",
        );
        assert_eq!(f.fix(&c1), c1);
        let c2 = Bytes::from_static(b"<D:response><D:href>/a</D:href><D:propstat><D:prop><D:getetag>\"e\"</D:getetag></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>");
        let out = String::from_utf8(f.fix(&c2).to_vec()).expect("utf8");
        assert!(out.contains("<nope xmlns=\"urn:x\"/>"), "{out}");
        assert!(!out.contains("<getetag xmlns"), "{out}");
        assert!(
            out.ends_with("404 Not Found</D:status></D:propstat></D:response>"),
            "{out}"
        );
        assert!(requested(b"<D:propfind xmlns:D=\"DAV:\"><D:allprop/></D:propfind>").is_none());
    }

    #[test]
    fn echoed_dav_props_get_the_d_prefix() {
        // LibreOffice's PROPFIND spells DAV: properties with a default
        // namespace; dav-server echoes `resourcetype` that way.
        let req = br#"<?xml version="1.0" encoding="UTF-8"?>
<propfind xmlns="DAV:"><prop><resourcetype xmlns="DAV:"/><IsReadOnly xmlns="http://ucb.openoffice.org/dav/props/"/></prop></propfind>"#;
        let mut f = PropFixer::new(requested(req).expect("prop list"));
        f.fix(&Bytes::from_static(
            b"<?xml version=\"1.0\" encoding=\"utf-8\"?><D:multistatus xmlns:D=\"DAV:\">",
        ));
        let file = Bytes::from_static(b"<D:response><D:href>/a.odt</D:href><D:propstat><D:prop><resourcetype xmlns=\"DAV:\"></resourcetype></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>");
        let out = String::from_utf8(f.fix(&file).to_vec()).expect("utf8");
        assert!(
            out.contains("<D:prop><D:resourcetype></D:resourcetype></D:prop>"),
            "{out}"
        );
        assert!(!out.contains("<resourcetype"), "{out}");
        assert!(out.contains("<IsReadOnly xmlns="), "{out}");
        let dir = Bytes::from_static(b"<D:response><D:href>/d/</D:href><D:propstat><D:prop><resourcetype xmlns=\"DAV:\"><D:collection></D:collection></resourcetype></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>");
        let out = String::from_utf8(f.fix(&dir).to_vec()).expect("utf8");
        assert!(
            out.contains("<D:resourcetype><D:collection></D:collection></D:resourcetype>"),
            "{out}"
        );
        assert_eq!(
            prefix_dav_defaults("<x><getetag xmlns=\"DAV:\"/></x>"),
            "<x><D:getetag/></x>"
        );
        assert_eq!(
            prefix_dav_defaults("<a:b xmlns=\"DAV:\"/>"),
            "<a:b xmlns=\"DAV:\"/>"
        );
        // Unprefixed children keep their namespace.
        assert_eq!(
            prefix_dav_defaults("<owner xmlns=\"DAV:\"><href>m</href></owner>"),
            "<D:owner xmlns=\"DAV:\"><href>m</href></D:owner>"
        );
        // Nested same name: left alone.
        assert_eq!(
            prefix_dav_defaults("<p xmlns=\"DAV:\"><p/></p>"),
            "<p xmlns=\"DAV:\"><p/></p>"
        );
        // Unclosed: left alone.
        assert_eq!(
            prefix_dav_defaults("<r xmlns=\"DAV:\">x"),
            "<r xmlns=\"DAV:\">x"
        );
    }
}
