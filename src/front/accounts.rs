//! Where WebDAV accounts come from.
//!
//! The gateway serves the WebDAV accounts that configured Cloudreve users have
//! created in Cloudreve's web UI. An [`AccountSource`] lists them (the real
//! implementation calls `GET /devices/dav` over the REST client); the
//! [`Authenticator`](super::auth::Authenticator) turns them into hashed
//! credentials.

use async_trait::async_trait;

/// One WebDAV account as listed by Cloudreve, plaintext password included.
///
/// The authenticator keeps only an argon2 hash of the password: right after a
/// fetch it checks the plaintext against the stored hash (or hashes it, if new
/// or changed) and drops it.
#[derive(Clone, PartialEq, Eq)]
pub struct RawAccount {
    /// Cloudreve's account id (hashid).
    pub id: String,
    /// Display name of the account.
    pub name: String,
    /// Root of the account, e.g. `cloudreve://my/Documents`.
    pub uri: String,
    /// The account's WebDAV password (plaintext, as Cloudreve returns it).
    pub password: String,
    /// Option bit 0: read-only.
    pub readonly: bool,
    /// Option bit 1: stream downloads through the server instead of redirecting.
    pub proxy: bool,
    /// Option bit 2: refuse uploads of names starting with `.`.
    pub disable_sys_files: bool,
}

impl std::fmt::Debug for RawAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawAccount")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("uri", &self.uri)
            .field("password", &"***")
            .field("readonly", &self.readonly)
            .field("proxy", &self.proxy)
            .field("disable_sys_files", &self.disable_sys_files)
            .finish()
    }
}

/// Why accounts could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Cloudreve could not be reached or answered with a server error; try again later.
    #[error("account source unavailable: {0}")]
    Unavailable(String),
    /// The gateway's own credentials for this user were refused.
    #[error("account source refused the gateway's credentials: {0}")]
    Unauthorized(String),
    /// The user is not known to the source.
    #[error("unknown user: {0}")]
    UnknownUser(String),
    /// Anything else.
    #[error("account source error: {0}")]
    Other(String),
}

/// Lists the WebDAV accounts of a configured user.
#[async_trait]
pub trait AccountSource: Send + Sync {
    /// All WebDAV accounts of `email` (the e-mail as configured).
    async fn fetch_accounts(&self, email: &str) -> Result<Vec<RawAccount>, SourceError>;
}
