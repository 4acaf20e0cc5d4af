//! WebDAV accounts (docs/UPSTREAM.md §6).

use reqwest::Method;
use serde::Serialize;

use super::core::ReqBody;
use super::error::{Error, Result};
use super::session::Session;
use super::types::{DavAccount, DavAccountOptions, DavAccountPage};
use super::uri::{CrUri, escape_segment};

/// Page size used when listing accounts (the server allows 10..100).
const PAGE_SIZE: u32 = 100;
/// Safety bound on the number of pages followed.
const MAX_PAGES: usize = 10_000;

#[derive(Serialize)]
struct AccountReq<'a> {
    uri: String,
    name: &'a str,
    readonly: bool,
    proxy: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    disable_sys_files: bool,
}

impl<'a> AccountReq<'a> {
    fn new(uri: &CrUri, name: &'a str, o: DavAccountOptions) -> Self {
        AccountReq {
            uri: uri.to_string(),
            name,
            readonly: o.readonly,
            proxy: o.proxy,
            disable_sys_files: o.disable_sys_files,
        }
    }
}

impl Session {
    /// `GET /devices/dav`: every account (all pages, page size 100).
    pub async fn list_dav_accounts(&self) -> Result<Vec<DavAccount>> {
        let mut out = Vec::new();
        let mut next: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut q = vec![("page_size", PAGE_SIZE.to_string())];
            if let Some(t) = &next {
                q.push(("next_page_token", t.clone()));
            }
            let page: DavAccountPage = self
                .call(
                    Method::GET,
                    "/devices/dav",
                    &q,
                    ReqBody::Empty,
                    "list_dav_accounts",
                )
                .await?;
            out.extend(page.accounts);
            match page.pagination.next_token.filter(|t| !t.is_empty()) {
                Some(t) if Some(&t) != next.as_ref() => next = Some(t),
                _ => return Ok(out),
            }
        }
        Err(Error::decode("list_dav_accounts", "too many pages"))
    }

    /// `PUT /devices/dav`: creates an account rooted at `uri`.
    pub async fn create_dav_account(
        &self,
        uri: &CrUri,
        name: &str,
        options: DavAccountOptions,
    ) -> Result<DavAccount> {
        let body = ReqBody::json(&AccountReq::new(uri, name, options))?;
        self.call(Method::PUT, "/devices/dav", &[], body, "create_dav_account")
            .await
    }

    /// `PATCH /devices/dav/{id}`: replaces root, name and all options
    /// (the password is kept).
    pub async fn update_dav_account(
        &self,
        id: &str,
        uri: &CrUri,
        name: &str,
        options: DavAccountOptions,
    ) -> Result<DavAccount> {
        let body = ReqBody::json(&AccountReq::new(uri, name, options))?;
        self.call(
            Method::PATCH,
            &format!("/devices/dav/{}", escape_segment(id)),
            &[],
            body,
            "update_dav_account",
        )
        .await
    }

    /// `DELETE /devices/dav/{id}`.
    pub async fn delete_dav_account(&self, id: &str) -> Result<()> {
        self.call_value(
            Method::DELETE,
            &format!("/devices/dav/{}", escape_segment(id)),
            &[],
            ReqBody::Empty,
            "delete_dav_account",
        )
        .await
        .map(drop)
    }
}
