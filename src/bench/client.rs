//! The two kinds of load client: a WebDAV client (for the gateway and the
//! peer servers) and the direct Cloudreve API client (the floor). Both
//! stream bodies both ways and digest what they download.

use anyhow::{Context as _, bail};
use futures::StreamExt as _;
use reqwest::{Method, StatusCode, header};

use super::data::{Digest, Payload};
use crate::cloudreve::{CrUri, DownloadUrlOptions, Session, UploadOptions};

/// A pooled reqwest client for load generation.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .tcp_nodelay(true)
        .build()
        .expect("reqwest client")
}

/// Streams a response body into a digest; returns (bytes, digest).
async fn digest_body(resp: reqwest::Response) -> anyhow::Result<(u64, u64)> {
    let mut d = Digest::new();
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        d.update(&chunk?);
    }
    Ok((d.len(), d.finish()))
}

/// A WebDAV client for one server.
#[derive(Clone)]
pub struct Dav {
    http: reqwest::Client,
    base: String,
    auth: Option<(String, String)>,
}

impl Dav {
    /// A client for `base` (ending with `/`), with Basic credentials if any.
    pub fn new(http: reqwest::Client, base: &str, auth: Option<(String, String)>) -> Self {
        let base = if base.ends_with('/') {
            base.to_string()
        } else {
            format!("{base}/")
        };
        Self { http, base, auth }
    }

    /// The same server with other credentials.
    pub fn with_auth(&self, auth: Option<(String, String)>) -> Self {
        Self {
            auth,
            ..self.clone()
        }
    }

    fn req(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let url = format!("{}{}", self.base, path.trim_start_matches('/'));
        let rb = self.http.request(method, url);
        match &self.auth {
            Some((u, p)) => rb.basic_auth(u, Some(p)),
            None => rb,
        }
    }

    /// `GET path`: returns (bytes, digest).
    pub async fn get(&self, path: &str) -> anyhow::Result<(u64, u64)> {
        let resp = self.req(Method::GET, path).send().await?;
        if resp.status() != StatusCode::OK {
            bail!("GET {path}: {}", resp.status());
        }
        digest_body(resp).await
    }

    /// `PUT path` with `len` bytes of payload `seed`, streamed with a
    /// declared `Content-Length`.
    pub async fn put(&self, path: &str, seed: u64, len: u64) -> anyhow::Result<()> {
        let body = reqwest::Body::wrap_stream(Payload::new(seed, len).into_stream());
        let resp = self
            .req(Method::PUT, path)
            .header(header::CONTENT_LENGTH, len)
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .body(body)
            .send()
            .await?;
        if !resp.status().is_success() {
            bail!("PUT {path}: {}", resp.status());
        }
        let _ = resp.bytes().await?;
        Ok(())
    }

    /// `PROPFIND path` (allprop) with `depth`; returns the number of
    /// `response` elements.
    pub async fn propfind(&self, path: &str, depth: u8) -> anyhow::Result<usize> {
        let resp = self
            .req(Method::from_bytes(b"PROPFIND")?, path)
            .header("Depth", depth.to_string())
            .header(header::CONTENT_TYPE, "application/xml")
            .body(r#"<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>"#)
            .send()
            .await?;
        if resp.status().as_u16() != 207 {
            bail!("PROPFIND {path}: {}", resp.status());
        }
        let text = resp.text().await?;
        Ok(count_responses(&text))
    }

    /// `MKCOL path` (an existing collection is fine).
    pub async fn mkcol(&self, path: &str) -> anyhow::Result<()> {
        let resp = self.req(Method::from_bytes(b"MKCOL")?, path).send().await?;
        let s = resp.status();
        if s.is_success() || s == StatusCode::METHOD_NOT_ALLOWED {
            Ok(())
        } else {
            bail!("MKCOL {path}: {s}")
        }
    }

    /// `OPTIONS path`; returns the status.
    pub async fn options(&self, path: &str) -> anyhow::Result<StatusCode> {
        let resp = self.req(Method::OPTIONS, path).send().await?;
        let s = resp.status();
        let _ = resp.bytes().await?;
        Ok(s)
    }

    /// `GET path`, returning only the status (body drained).
    pub async fn status_of_get(&self, path: &str) -> anyhow::Result<StatusCode> {
        let resp = self.req(Method::GET, path).send().await?;
        let s = resp.status();
        let _ = resp.bytes().await?;
        Ok(s)
    }
}

/// Counts closing `response` elements of a multistatus, whatever the
/// namespace prefix.
pub fn count_responses(xml: &str) -> usize {
    let mut n = 0;
    let mut rest = xml;
    while let Some(i) = rest.find("response>") {
        let head = &rest[..i];
        if let Some(lt) = head.rfind('<')
            && head[lt..].starts_with("</")
        {
            n += 1;
        }
        rest = &rest[i + "response>".len()..];
    }
    n
}

/// The direct Cloudreve API client: the same work without the gateway.
#[derive(Clone)]
pub struct Direct {
    session: Session,
    http: reqwest::Client,
    policy: String,
    /// Folder of the user's drive that paths are relative to (`""`: the
    /// drive's root, else `/name`).
    root: String,
}

fn uri(path: &str) -> anyhow::Result<CrUri> {
    CrUri::my_path(path).with_context(|| format!("bad path {path:?}"))
}

impl Direct {
    /// Wraps a signed-in session; looks up the storage policy once.
    pub async fn new(session: Session, http: reqwest::Client) -> anyhow::Result<Self> {
        let policy = session.policy_id_for(&uri("/x")?).await?;
        Ok(Self {
            session,
            http,
            policy,
            root: String::new(),
        })
    }

    /// The same client with paths relative to `root` (`/name`) of the drive.
    pub fn with_root(&self, root: &str) -> Self {
        Self {
            root: root.trim_end_matches('/').to_string(),
            ..self.clone()
        }
    }

    fn uri(&self, path: &str) -> anyhow::Result<CrUri> {
        uri(&format!("{}{path}", self.root))
    }

    /// The session.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// `POST /file/url` then a plain GET of the signed URL: (bytes, digest).
    pub async fn get(&self, path: &str) -> anyhow::Result<(u64, u64)> {
        let url = self
            .session
            .download_url(
                &self.uri(path)?,
                None,
                DownloadUrlOptions {
                    no_cache: true,
                    download: false,
                },
            )
            .await?;
        let resp = self.http.get(&url.url).send().await?;
        if resp.status() != StatusCode::OK {
            bail!("direct GET {path}: {}", resp.status());
        }
        digest_body(resp).await
    }

    /// An upload session and its chunks (streamed), overwriting.
    pub async fn put(&self, path: &str, seed: u64, len: u64) -> anyhow::Result<()> {
        let opts = UploadOptions {
            policy_id: Some(self.policy.clone()),
            overwrite: true,
            ..Default::default()
        };
        self.session
            .upload_stream(
                &self.uri(path)?,
                len,
                Payload::new(seed, len).into_stream(),
                opts,
            )
            .await?;
        Ok(())
    }

    /// Every page of a folder listing (`page_size` per page); returns the
    /// number of children.
    pub async fn list(&self, path: &str, page_size: u32) -> anyhow::Result<usize> {
        let (_, files) = self.session.list_all(&self.uri(path)?, page_size).await?;
        Ok(files.len())
    }

    /// `GET /file/info` of one object.
    pub async fn info(&self, path: &str) -> anyhow::Result<()> {
        self.session.info(&self.uri(path)?, false).await?;
        Ok(())
    }

    /// Creates an empty file (`POST /file/create`).
    pub async fn touch(&self, path: &str) -> anyhow::Result<()> {
        self.session
            .create(
                &self.uri(path)?,
                crate::cloudreve::CreateKind::File,
                false,
                None,
            )
            .await?;
        Ok(())
    }

    /// Deletes a file for good (frees its blob).
    pub async fn delete(&self, path: &str) -> anyhow::Result<()> {
        self.session.delete(&[self.uri(path)?], false, true).await?;
        Ok(())
    }

    /// Creates a folder (mkdir -p).
    pub async fn mkdir(&self, path: &str) -> anyhow::Result<()> {
        self.session
            .create(
                &self.uri(path)?,
                crate::cloudreve::CreateKind::Folder,
                false,
                None,
            )
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_responses_with_any_prefix() {
        let x = r#"<D:multistatus xmlns:D="DAV:"><D:response><D:href>/a</D:href></D:response><D:response xmlns:lp1="x"><D:href>/b</D:href></D:response></D:multistatus>"#;
        assert_eq!(super::count_responses(x), 2);
        assert_eq!(
            super::count_responses("<multistatus><response/></multistatus>"),
            0
        );
        assert_eq!(super::count_responses("<response></response>"), 1);
    }
}
