//! File operations (docs/UPSTREAM.md §4, §5.1, §5.2): info, create,
//! rename, move/copy, delete, restore, content update, metadata, force
//! unlock, download URLs.

use std::collections::HashMap;

use bytes::Bytes;
use futures::Stream;
use reqwest::Method;
use serde::Serialize;

use super::core::ReqBody;
use super::error::{Error, Result};
use super::session::Session;
use super::types::{DownloadUrl, DownloadUrls, FileResponse, MetadataPatch};
use super::uri::CrUri;
use super::writer::LengthChecked;

/// `type` of `POST /file/create`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateKind {
    /// An empty file (no blob entity).
    File,
    /// A folder.
    Folder,
}

impl CreateKind {
    fn as_str(self) -> &'static str {
        match self {
            CreateKind::File => "file",
            CreateKind::Folder => "folder",
        }
    }
}

/// Options of [`Session::download_url`].
#[derive(Debug, Clone, Copy, Default)]
pub struct DownloadUrlOptions {
    /// Bypass the server's URL cache (fresh expiry).
    pub no_cache: bool,
    /// Ask for `Content-Disposition: attachment`.
    pub download: bool,
}

#[derive(Serialize)]
struct CreateReq<'a> {
    uri: String,
    #[serde(rename = "type")]
    kind: &'a str,
    err_on_conflict: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<&'a HashMap<String, String>>,
}

#[derive(Serialize)]
struct RenameReq<'a> {
    uri: String,
    new_name: &'a str,
}

#[derive(Serialize)]
struct MoveReq {
    uris: Vec<String>,
    dst: String,
    copy: bool,
}

#[derive(Serialize)]
struct DeleteReq {
    uris: Vec<String>,
    unlink: bool,
    skip_soft_delete: bool,
}

#[derive(Serialize)]
struct UrisReq {
    uris: Vec<String>,
}

#[derive(Serialize)]
struct MetadataReq<'a> {
    uris: Vec<String>,
    patches: &'a [MetadataPatch],
}

#[derive(Serialize)]
struct UnlockReq<'a> {
    tokens: &'a [String],
}

#[derive(Serialize)]
struct UrlReq<'a> {
    uris: Vec<String>,
    download: bool,
    redirect: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    entity: Option<&'a str>,
    use_primary_site_url: bool,
    skip_error: bool,
    archive: bool,
    no_cache: bool,
}

fn uri_strings(uris: &[CrUri]) -> Vec<String> {
    uris.iter().map(CrUri::to_string).collect()
}

impl Session {
    /// `GET /file/info?uri=…[&extended=true]`. The root is refused by the
    /// server (403): use the listing's `parent` for it.
    pub async fn info(&self, uri: &CrUri, extended: bool) -> Result<FileResponse> {
        let mut q = vec![("uri", uri.to_string())];
        if extended {
            q.push(("extended", "true".to_string()));
        }
        self.call(Method::GET, "/file/info", &q, ReqBody::Empty, "info")
            .await
    }

    /// `GET /file/info?id=…` (owner only).
    pub async fn info_by_id(&self, id: &str, extended: bool) -> Result<FileResponse> {
        let mut q = vec![("id", id.to_string())];
        if extended {
            q.push(("extended", "true".to_string()));
        }
        self.call(Method::GET, "/file/info", &q, ReqBody::Empty, "info")
            .await
    }

    /// `POST /file/create` (mkdir -p semantics; an existing object of the
    /// same type is returned unless `err_on_conflict`).
    pub async fn create(
        &self,
        uri: &CrUri,
        kind: CreateKind,
        err_on_conflict: bool,
        metadata: Option<&HashMap<String, String>>,
    ) -> Result<FileResponse> {
        let body = ReqBody::json(&CreateReq {
            uri: uri.to_string(),
            kind: kind.as_str(),
            err_on_conflict,
            metadata,
        })?;
        self.call(Method::POST, "/file/create", &[], body, "create")
            .await
    }

    /// `POST /file/rename` (same folder).
    pub async fn rename(&self, uri: &CrUri, new_name: &str) -> Result<FileResponse> {
        let body = ReqBody::json(&RenameReq {
            uri: uri.to_string(),
            new_name,
        })?;
        self.call(Method::POST, "/file/rename", &[], body, "rename")
            .await
    }

    /// `POST /file/move`: moves (or copies) `uris` into the folder `dst`,
    /// keeping their names. Partial failures give 40081.
    pub async fn move_or_copy(&self, uris: &[CrUri], dst: &CrUri, copy: bool) -> Result<()> {
        let body = ReqBody::json(&MoveReq {
            uris: uri_strings(uris),
            dst: dst.to_string(),
            copy,
        })?;
        self.call_value(Method::POST, "/file/move", &[], body, "move")
            .await
            .map(drop)
    }

    /// `DELETE /file` (soft delete unless `skip_soft_delete`).
    pub async fn delete(&self, uris: &[CrUri], unlink: bool, skip_soft_delete: bool) -> Result<()> {
        let body = ReqBody::json(&DeleteReq {
            uris: uri_strings(uris),
            unlink,
            skip_soft_delete,
        })?;
        self.call_value(Method::DELETE, "/file", &[], body, "delete")
            .await
            .map(drop)
    }

    /// `POST /file/restore` (trash items back to their origin).
    pub async fn restore(&self, uris: &[CrUri]) -> Result<()> {
        let body = ReqBody::json(&UrisReq {
            uris: uri_strings(uris),
        })?;
        self.call_value(Method::POST, "/file/restore", &[], body, "restore")
            .await
            .map(drop)
    }

    /// `PATCH /file/metadata`.
    pub async fn patch_metadata(&self, uris: &[CrUri], patches: &[MetadataPatch]) -> Result<()> {
        let body = ReqBody::json(&MetadataReq {
            uris: uri_strings(uris),
            patches,
        })?;
        self.call_value(Method::PATCH, "/file/metadata", &[], body, "patch_metadata")
            .await
            .map(drop)
    }

    /// `DELETE /file/lock` (all-or-nothing; unknown or held token → 40001).
    pub async fn force_unlock(&self, tokens: &[String]) -> Result<()> {
        let body = ReqBody::json(&UnlockReq { tokens })?;
        self.call_value(Method::DELETE, "/file/lock", &[], body, "force_unlock")
            .await
            .map(drop)
    }

    /// `PUT /file/content?uri=…[&previous=…]`: create-or-overwrite with the
    /// streamed `body` of exactly `len` bytes (`Content-Length` is always
    /// sent). `previous` is the `primary_entity` last seen (If-Match).
    /// A body producing a different number of bytes aborts the request
    /// with [`Error::SourceLength`].
    pub async fn put_content<S, E>(
        &self,
        uri: &CrUri,
        previous: Option<&str>,
        body: S,
        len: u64,
    ) -> Result<FileResponse>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send + 'static,
        E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
    {
        let mut q = vec![("uri", uri.to_string())];
        if let Some(p) = previous {
            q.push(("previous", p.to_string()));
        }
        let checked = LengthChecked::new(body, len);
        let state = checked.state();
        let res = self
            .call_stream(
                Method::PUT,
                "/file/content",
                &q,
                reqwest::Body::wrap_stream(checked),
                len,
                "put_content",
            )
            .await;
        match state.error() {
            Some(e) => Err(e),
            None => res,
        }
    }

    /// `POST /file/url` for one URI with `redirect:false`; `entity` selects
    /// a version. Returns the URL and its expiry.
    pub async fn download_url(
        &self,
        uri: &CrUri,
        entity: Option<&str>,
        opts: DownloadUrlOptions,
    ) -> Result<DownloadUrl> {
        // Cloudreve 4.18 reports even a lone URI's failure as a 40081
        // aggregate; hand the caller that URI's own error.
        let r = self
            .download_urls(std::slice::from_ref(uri), entity, opts)
            .await
            .map_err(Error::into_single_failure)?;
        let expires = r.expires;
        let url = r
            .urls
            .into_iter()
            .next()
            .map(|u| u.url)
            .filter(|u| !u.is_empty())
            .ok_or_else(|| Error::decode("download_url", "no url in answer"))?;
        Ok(DownloadUrl { url, expires })
    }

    /// `POST /file/url` for several URIs (`skip_error:false`).
    pub async fn download_urls(
        &self,
        uris: &[CrUri],
        entity: Option<&str>,
        opts: DownloadUrlOptions,
    ) -> Result<DownloadUrls> {
        let body = ReqBody::json(&UrlReq {
            uris: uri_strings(uris),
            download: opts.download,
            redirect: false,
            entity,
            use_primary_site_url: false,
            skip_error: false,
            archive: false,
            no_cache: opts.no_cache,
        })?;
        self.call(Method::POST, "/file/url", &[], body, "download_url")
            .await
    }
}
