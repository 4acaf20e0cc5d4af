//! Who a request acts for, once the front layer authenticated it.

/// The authenticated identity of a request: one WebDAV account of one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user's e-mail, spelled as configured.
    pub email: String,
    /// Cloudreve id of the WebDAV account that matched.
    pub account_id: String,
    /// Display name of the account.
    pub account_name: String,
    /// Root of the account, e.g. `cloudreve://my/Documents`.
    pub root_uri: String,
    /// Read-only account: every mutating method is refused.
    pub readonly: bool,
    /// Downloads are streamed through the gateway (Cloudreve's "proxy" option).
    pub proxy: bool,
    /// Uploads of names starting with `.` are refused.
    pub disable_sys_files: bool,
}
