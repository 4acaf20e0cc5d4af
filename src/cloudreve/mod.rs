//! Typed async client for the Cloudreve v4 REST API.
//!
//! Layout (one file per concern, in the style of OpenDAL services):
//! * [`core`](self::Client) — pooled HTTP client, envelope decoding, the
//!   authenticated send-with-retry path;
//! * `error` — [`Error`], [`ErrorCode`] for every envelope code, lock
//!   conflicts and normalised per-URI batch errors;
//! * `uri` — [`CrUri`], Cloudreve URI escaping/parsing and query embedding;
//! * `session` — [`Session`]: sign-in, single-flight token refresh;
//! * `files`, `lister`, `reader`, `writer`, `accounts` — the endpoints;
//! * `events` — the change feed (`GET /file/events`).
//!
//! ```no_run
//! # async fn demo() -> cloudreve_dav::cloudreve::Result<()> {
//! use cloudreve_dav::cloudreve::{Client, CrUri};
//! let client = Client::new("http://127.0.0.1:5212")?;
//! let session = client.sign_in("admin@example.com", "secret").await?;
//! let page = session.list_page(&CrUri::my(), 100, None).await?;
//! println!("{} entries", page.files.len());
//! # Ok(()) }
//! ```

mod accounts;
mod cipher;
mod core;
mod error;
mod events;
mod files;
mod lister;
mod reader;
mod session;
mod types;
mod uri;
pub mod version;
mod writer;

#[cfg(test)]
mod tests;

pub use self::core::{API_PREFIX, CallObserver, Client, ClientOptions};
pub use self::error::{AggregatedErrors, ApiError, Error, ErrorCode, Result};
pub use self::events::{ChangeFeed, ChangeKind, FeedItem, FileChange};
pub use self::files::{CreateKind, DownloadUrlOptions};
pub use self::lister::ListStream;
pub use self::reader::{ByteStream, ContentRange, Reader};
pub use self::session::Session;
pub use self::types::{
    Boolset, Capacity, DavAccount, DavAccountOptions, DownloadUrl, DownloadUrlEntry, DownloadUrls,
    EncryptMetadata, Entity, EntityType, ExplorerConfig, ExtendedInfo, FileKind, FileResponse,
    Group, ListPage, LockConflict, LockOwner, LockOwnerApp, LoginConfig, LoginResponse,
    MetadataPatch, Pagination, StoragePolicy, Timestamp, Token, UploadSession, User,
};
pub use self::uri::{CrUri, build_query, escape_segment, query_escape};
pub use self::writer::{
    ChunkSpec, Previous, REPLAY_MAX, UploadObserver, UploadOptions, UploadRequest, cancel_settled,
    chunk_plan,
};
