//! Wire types of the Cloudreve v4 API (docs/UPSTREAM.md §1.6, §2, §4, §5, §6).
//!
//! Unknown fields are ignored; every `omitempty` field is an `Option` or
//! defaults. Timestamps are RFC 3339 with any offset.

use std::collections::HashMap;

use base64::Engine as _;
use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Deserializer, Serialize};

use super::error::{Error, Result};
use super::uri::CrUri;

/// A timestamp as sent by the server.
pub type Timestamp = DateTime<FixedOffset>;

/// A Cloudreve boolean set: bit `n` is `byte[n/8] & (1 << (n%8))`, sent as
/// standard base64 (docs/UPSTREAM.md §1.6). `""` and `null` are the empty set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Boolset(pub Vec<u8>);

impl Boolset {
    /// Decodes a base64 boolset (padding optional).
    pub fn from_base64(s: &str) -> Result<Self> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(Boolset(Vec::new()));
        }
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .or_else(|_| {
                base64::engine::general_purpose::STANDARD_NO_PAD.decode(s.trim_end_matches('='))
            })
            .map(Boolset)
            .map_err(|e| Error::decode("boolset", e))
    }

    /// Encodes as standard base64 (empty set → `""`).
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.0)
    }

    /// Whether bit `n` is set.
    pub fn get(&self, n: usize) -> bool {
        self.0.get(n / 8).is_some_and(|b| b & (1 << (n % 8)) != 0)
    }

    /// Sets or clears bit `n`.
    pub fn set(&mut self, n: usize, value: bool) {
        let idx = n / 8;
        if self.0.len() <= idx {
            if !value {
                return;
            }
            self.0.resize(idx + 1, 0);
        }
        if value {
            self.0[idx] |= 1 << (n % 8);
        } else {
            self.0[idx] &= !(1 << (n % 8));
        }
    }
}

impl<'de> Deserialize<'de> for Boolset {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s: Option<String> = Option::deserialize(d)?;
        match s {
            None => Ok(Boolset::default()),
            Some(s) => Boolset::from_base64(&s).map_err(serde::de::Error::custom),
        }
    }
}

fn null_default<'de, D, T>(d: D) -> std::result::Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `type` of a file row: `0` file, `1` folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FileKind {
    /// A regular file.
    #[default]
    File,
    /// A folder.
    Folder,
    /// Another value (not used by the reference server).
    Other(i64),
}

impl<'de> Deserialize<'de> for FileKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Ok(match Option::<i64>::deserialize(d)? {
            None | Some(0) => FileKind::File,
            Some(1) => FileKind::Folder,
            Some(o) => FileKind::Other(o),
        })
    }
}

/// `FileResponse` (docs/UPSTREAM.md §4.1).
#[derive(Debug, Clone, Deserialize)]
pub struct FileResponse {
    /// File or folder.
    #[serde(rename = "type", default)]
    pub kind: FileKind,
    /// File hashid (stable across rename and move).
    #[serde(default)]
    pub id: String,
    /// Display name (`""` for the root).
    #[serde(default)]
    pub name: String,
    /// Creation time.
    #[serde(default)]
    pub created_at: Option<Timestamp>,
    /// Last write time of the row.
    #[serde(default)]
    pub updated_at: Option<Timestamp>,
    /// Size of the current version in bytes.
    #[serde(default)]
    pub size: i64,
    /// Public metadata; `None` when `null` (not loaded).
    #[serde(default)]
    pub metadata: Option<HashMap<String, String>>,
    /// URI in the caller's view (escaped).
    #[serde(default)]
    pub path: Option<String>,
    /// Whether the owner has share links.
    #[serde(default)]
    pub shared: bool,
    /// Navigator capability boolset.
    #[serde(default)]
    pub capability: Boolset,
    /// Whether the caller owns it (absent = false).
    #[serde(default)]
    pub owned: bool,
    /// Hashid of the current version blob: the ETag.
    #[serde(default)]
    pub primary_entity: Option<String>,
    /// Folder summary (only with `folder_summary=true`).
    #[serde(default)]
    pub folder_summary: Option<serde_json::Value>,
    /// Extended info (only with `extended=true`).
    #[serde(default)]
    pub extended_info: Option<ExtendedInfo>,
}

impl FileResponse {
    /// True for folders.
    pub fn is_folder(&self) -> bool {
        self.kind == FileKind::Folder
    }

    /// The parsed `path`, if present and valid.
    pub fn uri(&self) -> Option<CrUri> {
        self.path.as_deref().and_then(|p| CrUri::parse(p).ok())
    }

    /// Metadata value for `key`.
    pub fn meta(&self, key: &str) -> Option<&str> {
        self.metadata.as_ref()?.get(key).map(String::as_str)
    }

    /// True for an upload placeholder still in progress.
    pub fn is_upload_placeholder(&self) -> bool {
        self.meta("sys:upload_session_id").is_some()
    }
}

/// `extended_info` of a [`FileResponse`].
#[derive(Debug, Clone, Deserialize)]
pub struct ExtendedInfo {
    /// Storage policy of the file.
    #[serde(default)]
    pub storage_policy: Option<StoragePolicy>,
    /// Bytes used by all entities.
    #[serde(default)]
    pub storage_used: i64,
    /// Entities (versions, thumbnails, live photos).
    #[serde(default, deserialize_with = "null_default")]
    pub entities: Vec<Entity>,
}

/// A blob entity of a file.
#[derive(Debug, Clone, Deserialize)]
pub struct Entity {
    /// Entity hashid.
    #[serde(default)]
    pub id: String,
    /// Size in bytes.
    #[serde(default)]
    pub size: i64,
    /// `0` version, `1` thumbnail, `2` live photo.
    #[serde(rename = "type", default)]
    pub kind: i64,
    /// Creation time.
    #[serde(default)]
    pub created_at: Option<Timestamp>,
    /// The cipher it is stored encrypted with (4.10+), if any.
    #[serde(default)]
    pub encrypted_with: Option<String>,
}

/// A storage policy summary (list / upload session).
#[derive(Debug, Clone, Deserialize)]
pub struct StoragePolicy {
    /// Policy hashid (needed by `PUT /file/upload`).
    #[serde(default)]
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Driver type (`local`, `remote`, `s3`, …).
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Maximum file size (0 = unlimited).
    #[serde(default)]
    pub max_size: i64,
    /// Whether uploads are relayed through the server.
    #[serde(default)]
    pub relay: bool,
    /// Allowed extensions, if restricted.
    #[serde(default)]
    pub allowed_suffix: Option<Vec<String>>,
    /// Chunk size, if the server reports it here.
    #[serde(default)]
    pub chunk_size: Option<u64>,
    /// How many chunks may be in flight at once (4.7+; absent = one).
    /// The client sends chunks one at a time, in index order, which both
    /// completion rules accept (4.17 and older: the last index completes;
    /// 4.18: all chunks).
    #[serde(default)]
    pub chunk_concurrency: Option<u32>,
    /// The policy encrypts at rest (4.10+). Cloudreve's encryption is done
    /// by the uploading client with a key from the upload session (this
    /// client does it, `cipher.rs`), or by the server for relayed uploads
    /// and `PUT /file/content`.
    #[serde(default)]
    pub encryption: bool,
}

impl StoragePolicy {
    /// Whether chunks can be sent to `/file/upload/{id}/{i}`.
    pub fn accepts_chunks(&self) -> bool {
        self.kind == "local" || self.relay
    }
}

/// `pagination` of a listing.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Pagination {
    /// Page index (offset mode).
    #[serde(default)]
    pub page: i64,
    /// Effective page size.
    #[serde(default)]
    pub page_size: i64,
    /// Cursor for the next page (send as `next_page_token`).
    #[serde(default)]
    pub next_token: Option<String>,
    /// Cursor mode.
    #[serde(default)]
    pub is_cursor: bool,
    /// Total items (offset mode only).
    #[serde(default)]
    pub total_items: Option<i64>,
}

/// One page of `GET /file` (`ListResponse`).
#[derive(Debug, Clone, Deserialize)]
pub struct ListPage {
    /// Children on this page (folders first in cursor mode).
    #[serde(default, deserialize_with = "null_default")]
    pub files: Vec<FileResponse>,
    /// The listed folder itself.
    pub parent: Option<FileResponse>,
    /// Pagination state.
    #[serde(default)]
    pub pagination: Pagination,
    /// Storage policy of the folder.
    #[serde(default)]
    pub storage_policy: Option<StoragePolicy>,
    /// Navigator props.
    #[serde(default)]
    pub props: Option<serde_json::Value>,
    /// Context hint (echo as `X-Cr-Context-Hint`).
    #[serde(default)]
    pub context_hint: Option<String>,
}

impl ListPage {
    /// The next cursor, if more pages follow.
    pub fn next_token(&self) -> Option<&str> {
        self.pagination
            .next_token
            .as_deref()
            .filter(|t| !t.is_empty())
    }
}

/// A user group.
#[derive(Debug, Clone, Deserialize)]
pub struct Group {
    /// Group hashid.
    #[serde(default)]
    pub id: String,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Permission boolset (bit 0 admin, 3 WebDAV, 6 WebDAV proxy, 12
    /// advance delete).
    #[serde(default)]
    pub permission: Boolset,
    /// Trash retention in seconds.
    #[serde(default)]
    pub trash_retention: Option<i64>,
}

/// A user (`/user/me`, sign-in).
#[derive(Debug, Clone, Deserialize)]
pub struct User {
    /// User hashid.
    #[serde(default)]
    pub id: String,
    /// E-mail.
    #[serde(default)]
    pub email: Option<String>,
    /// Nickname.
    #[serde(default)]
    pub nickname: String,
    /// Status (`active`, …).
    #[serde(default)]
    pub status: Option<String>,
    /// Creation time.
    #[serde(default)]
    pub created_at: Option<Timestamp>,
    /// Group.
    #[serde(default)]
    pub group: Option<Group>,
}

/// A token pair (docs/UPSTREAM.md §2.1, §2.4).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Token {
    /// Access JWT.
    pub access_token: String,
    /// Refresh JWT.
    pub refresh_token: String,
    /// Access expiry.
    pub access_expires: Timestamp,
    /// Refresh expiry.
    pub refresh_expires: Timestamp,
}

/// Sign-in answer `{user, token}`.
#[derive(Debug, Clone, Deserialize)]
pub struct LoginResponse {
    /// Signed-in user.
    pub user: User,
    /// Tokens.
    pub token: Token,
}

/// `GET /user/capacity`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
pub struct Capacity {
    /// Quota in bytes.
    #[serde(default)]
    pub total: i64,
    /// Used bytes (includes trash and old versions).
    #[serde(default)]
    pub used: i64,
}

impl Capacity {
    /// `total − used`, clamped at 0.
    pub fn available(&self) -> i64 {
        (self.total - self.used).max(0)
    }
}

/// `POST /file/url` answer.
#[derive(Debug, Clone, Deserialize)]
pub struct DownloadUrls {
    /// One slot per URI.
    #[serde(default, deserialize_with = "null_default")]
    pub urls: Vec<DownloadUrlEntry>,
    /// Expiry, if any.
    #[serde(default)]
    pub expires: Option<Timestamp>,
}

/// One download URL slot.
#[derive(Debug, Clone, Deserialize)]
pub struct DownloadUrlEntry {
    /// The URL (`""` for a failed slot with `skip_error`).
    #[serde(default)]
    pub url: String,
    /// Display name for stream savers.
    #[serde(default)]
    pub stream_saver_display_name: Option<String>,
}

/// A single download URL with its expiry.
#[derive(Debug, Clone)]
pub struct DownloadUrl {
    /// Signed or presigned URL.
    pub url: String,
    /// Expiry, if reported.
    pub expires: Option<Timestamp>,
}

/// `PUT /file/upload` answer (docs/UPSTREAM.md §5.4).
#[derive(Debug, Clone, Deserialize)]
pub struct UploadSession {
    /// Session id.
    pub session_id: String,
    /// Chunk size in bytes (0 = one chunk).
    #[serde(default)]
    pub chunk_size: u64,
    /// Expiry in unix seconds.
    #[serde(default)]
    pub expires: i64,
    /// Storage policy.
    #[serde(default)]
    pub storage_policy: Option<StoragePolicy>,
    /// Target URI.
    #[serde(default)]
    pub uri: Option<String>,
    /// Callback secret (remote policies).
    #[serde(default)]
    pub callback_secret: Option<String>,
    /// Provider upload URLs (remote policies).
    #[serde(default)]
    pub upload_urls: Option<Vec<String>>,
    /// Provider upload id.
    #[serde(default)]
    pub upload_id: Option<String>,
    /// The key to encrypt this upload with, when the policy encrypts and
    /// the request listed the cipher (4.10+).
    #[serde(default)]
    pub encrypt_metadata: Option<EncryptMetadata>,
}

/// `encrypt_metadata` of an upload session: Go `[]byte`s, so base64.
#[derive(Clone, Deserialize, Serialize, Default)]
pub struct EncryptMetadata {
    /// The cipher (`aes-256-ctr`).
    #[serde(default)]
    pub algorithm: String,
    /// The content key in clear, base64.
    #[serde(default)]
    pub key_plain_text: String,
    /// The initial counter block, base64.
    #[serde(default)]
    pub iv: String,
}

impl std::fmt::Debug for EncryptMetadata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptMetadata")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// `entity_type` of an upload session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EntityType {
    /// New file; fails with 40004 if it exists.
    #[default]
    New,
    /// Create or overwrite (new version).
    Version,
    /// Live photo (needs an existing file).
    LivePhoto,
}

impl EntityType {
    /// Wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            EntityType::New => "",
            EntityType::Version => "version",
            EntityType::LivePhoto => "live_photo",
        }
    }
}

/// A metadata patch (docs/UPSTREAM.md §4.8).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct MetadataPatch {
    /// Key, e.g. `dav:urn:x|foo`.
    pub key: String,
    /// Value (ignored on removal).
    #[serde(default)]
    pub value: String,
    /// Remove instead of upsert.
    #[serde(default)]
    pub remove: bool,
}

impl MetadataPatch {
    /// An upsert.
    pub fn set(key: impl Into<String>, value: impl Into<String>) -> Self {
        MetadataPatch {
            key: key.into(),
            value: value.into(),
            remove: false,
        }
    }

    /// A removal.
    pub fn remove(key: impl Into<String>) -> Self {
        MetadataPatch {
            key: key.into(),
            value: String::new(),
            remove: true,
        }
    }
}

/// The application holding a lock.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct LockOwnerApp {
    /// Application type (`upload`, `dav`, `viewer`, …).
    #[serde(rename = "type", default)]
    pub kind: String,
    /// DAV owner XML.
    #[serde(default)]
    pub inner_xml: Option<String>,
    /// Viewer id.
    #[serde(default)]
    pub viewer_id: Option<String>,
}

/// Lock owner.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct LockOwner {
    /// Application.
    #[serde(default)]
    pub application: LockOwnerApp,
}

/// One lock conflict (docs/UPSTREAM.md §4.9).
#[derive(Debug, Clone, Deserialize)]
pub struct LockConflict {
    /// Locked path (absolute for owners).
    #[serde(default)]
    pub path: Option<String>,
    /// Lock token (owners only).
    #[serde(default)]
    pub token: Option<String>,
    /// Owner.
    #[serde(default)]
    pub owner: LockOwner,
    /// File type of the locked object.
    #[serde(rename = "type", default)]
    pub file_type: i64,
}

/// Options of a DAV account (bits 0 readonly, 1 proxy, 2 disable sys files).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DavAccountOptions {
    /// Read-only account.
    pub readonly: bool,
    /// Proxy downloads through Cloudreve.
    pub proxy: bool,
    /// Block uploads of dot files (newer servers).
    pub disable_sys_files: bool,
}

impl DavAccountOptions {
    /// Decodes the options boolset.
    pub fn from_boolset(b: &Boolset) -> Self {
        DavAccountOptions {
            readonly: b.get(0),
            proxy: b.get(1),
            disable_sys_files: b.get(2),
        }
    }

    /// Encodes as a boolset.
    pub fn to_boolset(self) -> Boolset {
        let mut b = Boolset::default();
        b.set(0, self.readonly);
        b.set(1, self.proxy);
        b.set(2, self.disable_sys_files);
        b
    }
}

/// A WebDAV account (docs/UPSTREAM.md §6).
#[derive(Debug, Clone, Deserialize)]
pub struct DavAccount {
    /// Account hashid.
    #[serde(default)]
    pub id: String,
    /// Creation time.
    #[serde(default)]
    pub created_at: Option<Timestamp>,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Root URI.
    #[serde(default)]
    pub uri: String,
    /// Password (plaintext).
    #[serde(default)]
    pub password: String,
    /// Raw options boolset.
    #[serde(default)]
    pub options: Boolset,
}

impl DavAccount {
    /// Decoded option flags.
    pub fn flags(&self) -> DavAccountOptions {
        DavAccountOptions::from_boolset(&self.options)
    }
}

/// A page of DAV accounts.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct DavAccountPage {
    #[serde(default, deserialize_with = "null_default")]
    pub accounts: Vec<DavAccount>,
    #[serde(default)]
    pub pagination: Pagination,
}

/// `GET /site/config/login` (all fields optional).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct LoginConfig {
    /// Captcha required at sign-in (a gateway cannot pass it).
    #[serde(default)]
    pub login_captcha: bool,
    /// Registration enabled.
    #[serde(default)]
    pub register_enabled: bool,
    /// Passkey sign-in enabled.
    #[serde(default)]
    pub authn: bool,
}

/// `GET /site/config/explorer` (all fields optional).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ExplorerConfig {
    /// Maximum URIs per batch call.
    #[serde(default)]
    pub max_batch_size: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boolset_decoding() {
        let b = Boolset::from_base64("w8edAQ==").unwrap();
        for bit in [0, 1, 6, 7, 8, 9, 10, 14, 15, 16, 18, 19, 20, 23, 24] {
            assert!(b.get(bit), "bit {bit}");
        }
        for bit in [2, 3, 4, 5, 11, 12, 13, 17, 21, 22, 25, 100] {
            assert!(!b.get(bit), "bit {bit}");
        }
        assert_eq!(b.to_base64(), "w8edAQ==");
        for (s, r, p, d) in [
            ("", false, false, false),
            ("AQ==", true, false, false),
            ("Ag==", false, true, false),
            ("Aw==", true, true, false),
            ("BA==", false, false, true),
            ("Bw", true, true, true),
        ] {
            let o = DavAccountOptions::from_boolset(&Boolset::from_base64(s).unwrap());
            assert_eq!((o.readonly, o.proxy, o.disable_sys_files), (r, p, d), "{s}");
        }
        let o = DavAccountOptions {
            readonly: true,
            proxy: true,
            disable_sys_files: false,
        };
        assert_eq!(o.to_boolset().to_base64(), "Aw==");
        assert_eq!(DavAccountOptions::default().to_boolset().to_base64(), "");
        assert!(Boolset::from_base64("!!").is_err());
        let acc: DavAccount = serde_json::from_str(
            r#"{"id":"x","name":"n","uri":"cloudreve://my/","password":"p","options":null}"#,
        )
        .unwrap();
        assert_eq!(acc.flags(), DavAccountOptions::default());
    }

    #[test]
    fn file_response_tolerant() {
        let f: FileResponse = serde_json::from_str(
            r#"{"type":1,"id":"a","name":"","created_at":"2025-05-24T10:55:22.123456789+08:00",
            "updated_at":"0001-01-01T00:00:00Z","size":0,"metadata":null,"path":"cloudreve://my/",
            "capability":"w8edAQ==","primary_entity":"x","permission":null,"unknown":{"a":1}}"#,
        )
        .unwrap();
        assert!(f.is_folder());
        assert!(!f.owned);
        assert!(f.metadata.is_none());
        assert!(f.uri().unwrap().is_root());
        let f: FileResponse =
            serde_json::from_str(r#"{"type":0,"id":"b","name":"x","size":5,"metadata":{"sys:upload_session_id":"u"},"owned":true}"#)
                .unwrap();
        assert!(f.is_upload_placeholder());
        assert!(f.owned);
    }

    #[test]
    fn list_page_decoding() {
        let p: ListPage = serde_json::from_str(
            r#"{"files":[{"type":0,"id":"1","name":"a","size":3}],
            "parent":{"type":1,"id":"0","name":"","path":"cloudreve://my/"},
            "pagination":{"page":0,"page_size":100,"next_token":"","is_cursor":true},
            "storage_policy":{"id":"p","name":"Default","type":"local","max_size":0,"relay":true},
            "context_hint":null,"mixed_type":false}"#,
        )
        .unwrap();
        assert_eq!(p.files.len(), 1);
        assert!(p.next_token().is_none());
        let sp = p.storage_policy.unwrap();
        assert!(sp.accepts_chunks());
        assert_eq!(sp.id, "p");
    }
}
