//! The WebDAV layer: a [`dav_server`] handler over the Cloudreve client.
//!
//! * [`ctx`] — [`RequestCtx`], the per-request credentials/hints/cache;
//! * [`conditions`] — conditional headers the gateway acts on itself;
//! * [`fs`] — [`CloudreveFs`], the `GuardedFileSystem` over Cloudreve;
//! * [`junk`] — the junk-file policy (hide, park in the gateway, reject);
//! * [`file_meta`] — metadata and directory entries built from `FileResponse`s;
//! * [`props`] — dead properties stored as Cloudreve metadata;
//! * [`times_and_checksums`] — client mtimes/checksums kept per version (own `dav:` props);
//! * [`propfind_fixup`] — the 404 propstats dav-server omits;
//! * [`propfind`] — the gateway's own streaming PROPFIND writer for the
//!   common request shapes;
//! * [`read`](mod@read) / [`write`](mod@write) — the lazy download and the upload `DavFile`s;
//! * [`upload_journal`] — [`upload_journal::UploadJournal`], open upload sessions, cancelled after a crash;
//! * [`locks`] — [`MemLockSystem`], the expiring, persisted `DavLockSystem`;
//! * [`locks_redis`] — the same table in Redis, shared by several instances;
//! * [`upstream_locks`] — Cloudreve's own locks: 423 bodies, LOCK probe, force unlock;
//! * [`spelling`] — which object a name means when Unicode spells it two ways;
//! * [`reserved`] — names with characters Cloudreve refuses: refused or mapped;
//! * [`xml_text`] — XML/HTML escaping and the date formats;
//! * [`html_index`] — the HTML index browsers get for a collection;
//! * [`responses`] — the plain answers and error statuses the layer writes itself;
//! * [`response_body`] — dav-server's answer body as sent on (cut, fixed, quoted);
//! * [`settings`] — the layer's settings types;
//! * [`service`] — [`DavGateway`], the front's `DavService` wrapping the
//!   handler and fixing the crate's known gaps around it.

pub mod conditions;
pub mod ctx;
pub mod errors;
pub mod file_meta;
pub mod fs;
pub mod html_index;
pub mod junk;
pub mod locks;
pub mod locks_redis;
pub mod propfind;
pub mod propfind_fixup;
pub mod props;
pub mod read;
pub mod reserved;
pub mod response_body;
pub mod responses;
pub mod service;
pub mod settings;
pub mod spelling;
pub mod times_and_checksums;
pub mod upload_journal;
pub mod upstream_locks;
pub mod write;
pub mod xml_text;

pub use ctx::RequestCtx;
pub use fs::CloudreveFs;
pub use locks::MemLockSystem;
pub use service::{DavGateway, DavSettings, DeleteMode, SessionLookup};
