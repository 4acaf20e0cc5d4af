//! GET or HEAD on a collection: an HTML index of its members, for
//! browsers (folders first, then files, by name; sizes, times, links).

use futures::StreamExt as _;
use http::{HeaderValue, Response, header};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::cloudreve::CrUri;
use crate::shared::{BoxBody, full_body};

use super::ctx::RequestCtx;
use super::responses::error_response;

const PATH_SEG: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// A size for people: bytes below 1 KiB, else one decimal and a binary unit.
fn human_size(n: i64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n.max(0) as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// One row of the HTML index.
struct IndexEntry {
    name: String,
    folder: bool,
    size: i64,
    modified: Option<crate::cloudreve::Timestamp>,
}

const INDEX_STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse}th,td{padding:.25em 1em;text-align:left}td.size{text-align:right}tr:nth-child(even){background:#f4f4f4}";

/// GET/HEAD on a collection: an HTML index of its members (folders first,
/// then files, by name), with sizes, modification times and links (names
/// HTML-escaped, links percent-encoded).
pub(crate) async fn collection_index(
    ctx: &RequestCtx,
    uri: &CrUri,
    raw_path: &str,
    head: bool,
) -> Response<BoxBody> {
    let mut base = raw_path.to_string();
    if !base.ends_with('/') {
        base.push('/');
    }
    let mut entries: Vec<IndexEntry> = Vec::new();
    let mut pages = ctx.session.list(uri, ctx.settings.page_size);
    while let Some(p) = pages.next().await {
        match p {
            Ok(p) => entries.extend(p.files.into_iter().map(|f| IndexEntry {
                folder: f.is_folder(),
                size: f.size,
                modified: f.updated_at,
                name: ctx.into_client_name(f.name),
            })),
            Err(e) => {
                let fe = super::errors::map_err(ctx, "list", &e);
                return error_response(ctx, fe);
            }
        }
    }
    entries.sort_by(|a, b| b.folder.cmp(&a.folder).then_with(|| a.name.cmp(&b.name)));
    let title = super::xml_text::escape_html(
        &percent_encoding::percent_decode_str(&base).decode_utf8_lossy(),
    );
    let mut html = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>Index of {title}</title><style>{INDEX_STYLE}</style></head>\n<body><h1>Index of {title}</h1>\n<table>\n<thead><tr><th>Name</th><th>Size</th><th>Modified</th></tr></thead>\n<tbody>\n"
    );
    if base != "/" {
        html.push_str("<tr><td><a href=\"../\">../</a></td><td></td><td></td></tr>\n");
    }
    for e in &entries {
        let slash = if e.folder { "/" } else { "" };
        let href = format!("{base}{}{slash}", utf8_percent_encode(&e.name, PATH_SEG));
        let size = if e.folder {
            "—".to_string()
        } else {
            format!(
                "<span title=\"{} bytes\">{}</span>",
                e.size,
                human_size(e.size)
            )
        };
        let modified = e
            .modified
            .map(|t| {
                let utc = t.with_timezone(&chrono::Utc);
                format!(
                    "<time datetime=\"{}\">{}</time>",
                    utc.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    utc.format("%Y-%m-%d %H:%M UTC")
                )
            })
            .unwrap_or_default();
        let download = if e.folder { "" } else { " download" };
        html.push_str(&format!(
            "<tr><td><a href=\"{}\"{download}>{}{slash}</a></td><td class=\"size\">{size}</td><td>{modified}</td></tr>\n",
            super::xml_text::escape_html(&href),
            super::xml_text::escape_html(&e.name)
        ));
    }
    html.push_str("</tbody></table></body></html>\n");
    let len = html.len();
    let mut r = Response::new(if head {
        crate::shared::empty_body()
    } else {
        full_body(html)
    });
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_for_people() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(5 * 1024 * 1024 * 1024), "5.0 GiB");
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            crate::dav::xml_text::escape_html("<a&'\">"),
            "&lt;a&amp;&#39;&quot;&gt;"
        );
    }
}
