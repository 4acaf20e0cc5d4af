//! The WebDAV layer: a [`dav_server`] handler over the Cloudreve client.
//!
//! * [`ctx`] — [`RequestCtx`], the per-request credentials/hints/cache;
//! * [`conditions`] — conditional headers the gateway acts on itself;
//! * [`fs`] — [`CloudreveFs`], the `GuardedFileSystem` over Cloudreve;
//! * [`junk`] — the junk-file policy (hide, park in the gateway, reject);
//! * [`meta`] — metadata and directory entries built from `FileResponse`s;
//! * [`props`] — dead properties stored as Cloudreve metadata;
//! * [`kept`] — client mtimes/checksums kept per version (own `dav:` props);
//! * [`propfix`] — the 404 propstats dav-server omits;
//! * [`propfind`] — the gateway's own streaming PROPFIND writer for the
//!   common request shapes;
//! * [`read`](mod@read) / [`write`](mod@write) — the lazy download and the upload `DavFile`s;
//! * [`journal`] — [`journal::UploadJournal`], open upload sessions, cancelled after a crash;
//! * [`locks`] — [`MemLockSystem`], the expiring, persisted `DavLockSystem`;
//! * [`locks_redis`] — the same table in Redis, shared by several instances;
//! * [`conflicts`] — Cloudreve's own locks: 423 bodies, LOCK probe, force unlock;
//! * [`service`] — [`DavGateway`], the front's `DavService` wrapping the
//!   handler and fixing the crate's known gaps around it.

pub mod conditions;
pub mod conflicts;
pub mod ctx;
pub mod errors;
pub mod fs;
pub mod journal;
pub mod junk;
pub mod kept;
pub mod locks;
pub mod locks_redis;
pub mod meta;
pub mod propfind;
pub mod propfix;
pub mod props;
pub mod read;
pub mod reserved;
pub mod service;
pub mod settings;
pub mod spelling;
pub mod write;

pub use ctx::RequestCtx;
pub use fs::CloudreveFs;
pub use locks::MemLockSystem;
pub use service::{DavGateway, DavSettings, DeleteMode, SessionLookup};
