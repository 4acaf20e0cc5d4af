//! `cloudreve-dav accounts list|create|update|delete`: a Cloudreve user's
//! WebDAV accounts through the documented account endpoints
//! (docs/UPSTREAM.md §6).

use std::fmt::Write as _;

use anyhow::{Context as _, anyhow};
use serde::Serialize;

use crate::cloudreve::{Client, CrUri, DavAccount, DavAccountOptions, Session};

/// The environment variable holding the sign-in password.
pub const PASSWORD_ENV: &str = "CLOUDREVE_PASSWORD";

/// Signs in to `upstream` as `email` with the password from
/// [`PASSWORD_ENV`].
pub async fn sign_in(upstream: &str, email: &str) -> anyhow::Result<Session> {
    let password = std::env::var(PASSWORD_ENV)
        .ok()
        .filter(|p| !p.is_empty())
        .ok_or_else(|| anyhow!("set {PASSWORD_ENV} to the Cloudreve sign-in password"))?;
    let client = Client::new(upstream).with_context(|| format!("bad upstream URL {upstream}"))?;
    client
        .sign_in(email, &password)
        .await
        .with_context(|| format!("cannot sign in {email} at {upstream}"))
}

/// One account as printed by `accounts` (`--json` and table).
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct AccountView {
    /// Cloudreve's account id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Root folder (`cloudreve://my/...`).
    pub root: String,
    /// Read-only account.
    pub readonly: bool,
    /// Downloads proxied through Cloudreve.
    pub proxy: bool,
    /// Dot files refused on upload.
    pub disable_sys_files: bool,
    /// The account's WebDAV password.
    pub password: String,
    /// Creation time (RFC 3339), when Cloudreve tells it.
    pub created_at: Option<String>,
}

impl From<&DavAccount> for AccountView {
    fn from(a: &DavAccount) -> Self {
        let f = a.flags();
        Self {
            id: a.id.clone(),
            name: a.name.clone(),
            root: a.uri.clone(),
            readonly: f.readonly,
            proxy: f.proxy,
            disable_sys_files: f.disable_sys_files,
            password: a.password.clone(),
            created_at: a.created_at.map(|t| t.to_rfc3339()),
        }
    }
}

/// Renders accounts as an aligned text table (header first).
pub fn table(accounts: &[AccountView]) -> String {
    let yes = |b: bool| if b { "yes" } else { "no" };
    let mut rows: Vec<[String; 6]> = vec![[
        "ID".into(),
        "NAME".into(),
        "ROOT".into(),
        "READONLY".into(),
        "PROXY".into(),
        "PASSWORD".into(),
    ]];
    for a in accounts {
        rows.push([
            a.id.clone(),
            a.name.clone(),
            a.root.clone(),
            yes(a.readonly).into(),
            yes(a.proxy).into(),
            a.password.clone(),
        ]);
    }
    let mut widths = [0usize; 6];
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in &rows {
        let mut line = String::new();
        for (i, (c, w)) in r.iter().zip(widths).enumerate() {
            if i + 1 == r.len() {
                line.push_str(c);
            } else {
                let _ = write!(line, "{c:<w$}  ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A root given on the command line: a `cloudreve://` URI or a path in
/// the user's own space (`/Documents`).
pub fn parse_root(text: &str) -> anyhow::Result<CrUri> {
    if text.contains("://") {
        CrUri::parse(text).map_err(|e| anyhow!("bad root {text:?}: {e}"))
    } else {
        CrUri::my_path(text).map_err(|e| anyhow!("bad root {text:?}: {e}"))
    }
}

/// Lists the accounts.
pub async fn list(session: &Session) -> anyhow::Result<Vec<AccountView>> {
    let accounts = session
        .list_dav_accounts()
        .await
        .context("cannot list WebDAV accounts")?;
    Ok(accounts.iter().map(AccountView::from).collect())
}

/// Creates an account.
pub async fn create(
    session: &Session,
    name: &str,
    root: &CrUri,
    options: DavAccountOptions,
) -> anyhow::Result<AccountView> {
    let a = session
        .create_dav_account(root, name, options)
        .await
        .context("Cloudreve refused to create the account")?;
    Ok(AccountView::from(&a))
}

/// Changes of `accounts update`; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct AccountChanges {
    /// New name.
    pub name: Option<String>,
    /// New root.
    pub root: Option<CrUri>,
    /// New read-only flag.
    pub readonly: Option<bool>,
    /// New proxy flag.
    pub proxy: Option<bool>,
    /// New dot-file flag.
    pub disable_sys_files: Option<bool>,
}

/// Updates an account: Cloudreve replaces every field, so the current
/// values are read first and only the given ones change.
pub async fn update(
    session: &Session,
    id: &str,
    changes: AccountChanges,
) -> anyhow::Result<AccountView> {
    let current = session
        .list_dav_accounts()
        .await
        .context("cannot list WebDAV accounts")?
        .into_iter()
        .find(|a| a.id == id)
        .ok_or_else(|| anyhow!("no WebDAV account with id {id}"))?;
    let flags = current.flags();
    let root = match changes.root {
        Some(r) => r,
        None => CrUri::parse(&current.uri)
            .map_err(|e| anyhow!("account {id} has an unreadable root: {e}"))?,
    };
    let name = changes.name.unwrap_or(current.name);
    let options = DavAccountOptions {
        readonly: changes.readonly.unwrap_or(flags.readonly),
        proxy: changes.proxy.unwrap_or(flags.proxy),
        disable_sys_files: changes.disable_sys_files.unwrap_or(flags.disable_sys_files),
    };
    let a = session
        .update_dav_account(id, &root, &name, options)
        .await
        .context("Cloudreve refused to update the account")?;
    Ok(AccountView::from(&a))
}

/// Deletes an account.
pub async fn delete(session: &Session, id: &str) -> anyhow::Result<()> {
    session
        .delete_dav_account(id)
        .await
        .with_context(|| format!("Cloudreve refused to delete account {id}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let a = AccountView {
            id: "x1".into(),
            name: "laptop".into(),
            root: "cloudreve://my".into(),
            readonly: true,
            proxy: false,
            disable_sys_files: false,
            password: "pw".into(),
            created_at: None,
        };
        let t = table(&[a]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("ID  NAME    ROOT"));
        assert_eq!(lines[1], "x1  laptop  cloudreve://my  yes       no     pw");
    }

    #[test]
    fn roots_from_paths_and_uris() {
        assert_eq!(
            parse_root("/Docs/a b").unwrap().to_string(),
            "cloudreve://my/Docs/a%20b"
        );
        assert_eq!(parse_root("cloudreve://my").unwrap(), CrUri::my());
        assert!(parse_root("cloudreve://my/a?b").is_err());
    }
}
