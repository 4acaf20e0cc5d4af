//! Folder listing (`GET /file`, docs/UPSTREAM.md §4.2) with cursor pagination.

use futures::Stream;
use reqwest::Method;

use super::core::ReqBody;
use super::error::Result;
use super::session::Session;
use super::types::ListPage;
use super::uri::CrUri;

/// Stream of listing pages returned by [`Session::list`].
pub type ListStream = std::pin::Pin<Box<dyn Stream<Item = Result<ListPage>> + Send>>;

impl Session {
    /// One page of `GET /file`. `page_size` 0 lets the server choose;
    /// `next_token` is the previous page's `pagination.next_token`.
    pub async fn list_page(
        &self,
        uri: &CrUri,
        page_size: u32,
        next_token: Option<&str>,
    ) -> Result<ListPage> {
        let mut q = vec![("uri", uri.to_string())];
        if page_size > 0 {
            q.push(("page_size", page_size.to_string()));
        }
        if let Some(t) = next_token.filter(|t| !t.is_empty()) {
            q.push(("next_page_token", t.to_string()));
        }
        self.call(Method::GET, "/file", &q, ReqBody::Empty, "list")
            .await
    }

    /// All pages of a folder, following `next_token`. The stream ends after
    /// the first error.
    pub fn list(&self, uri: &CrUri, page_size: u32) -> ListStream {
        struct St {
            session: Session,
            uri: CrUri,
            page_size: u32,
            next: Option<String>,
            done: bool,
        }
        let st = St {
            session: self.clone(),
            uri: uri.clone(),
            page_size,
            next: None,
            done: false,
        };
        Box::pin(futures::stream::unfold(st, |mut st| async move {
            if st.done {
                return None;
            }
            let r = st
                .session
                .list_page(&st.uri, st.page_size, st.next.as_deref())
                .await;
            match &r {
                Ok(p) => match p.next_token() {
                    Some(t) if Some(t) != st.next.as_deref() => st.next = Some(t.to_string()),
                    // No token, or the same token again: stop (no endless loop).
                    _ => st.done = true,
                },
                Err(_) => st.done = true,
            }
            Some((r, st))
        }))
    }

    /// Convenience: every child of a folder (all pages), plus the first
    /// page's metadata (`parent`, `storage_policy`, …) with `files` emptied.
    pub async fn list_all(
        &self,
        uri: &CrUri,
        page_size: u32,
    ) -> Result<(ListPage, Vec<super::types::FileResponse>)> {
        use futures::StreamExt;
        let mut s = self.list(uri, page_size);
        let mut head: Option<ListPage> = None;
        let mut files = Vec::new();
        while let Some(p) = s.next().await {
            let mut p = p?;
            files.append(&mut p.files);
            if head.is_none() {
                head = Some(p);
            }
        }
        let head = head.ok_or_else(|| super::error::Error::decode("list", "no page"))?;
        Ok((head, files))
    }
}
