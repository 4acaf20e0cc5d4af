//! Metadata and directory entries built from Cloudreve `FileResponse`s.

use std::time::SystemTime;

use dav_server::fs::{DavDirEntry, DavMetaData, FsError, FsFuture, FsResult};
use futures::FutureExt as _;

use crate::cloudreve::{FileResponse, Timestamp};

/// Metadata of one Cloudreve object.
#[derive(Debug, Clone)]
pub struct CrMeta {
    /// Folder?
    pub dir: bool,
    /// Size in bytes (0 for folders).
    pub size: u64,
    /// The kept client mtime, else `updated_at`.
    pub modified: Option<SystemTime>,
    /// The kept client creation time, else `created_at`.
    pub created: Option<SystemTime>,
    /// Entity tag without quotes.
    pub etag: String,
    /// `primary_entity` (the version to read).
    pub entity: Option<String>,
}

fn sys_time(t: Option<&Timestamp>) -> Option<SystemTime> {
    t.map(|t| SystemTime::from(t.with_timezone(&chrono::Utc)))
}

impl CrMeta {
    /// Builds metadata from an upstream answer. Files use `primary_entity`
    /// as ETag (stable across thumbnail regeneration, changes with every new
    /// version); folders use their id plus `updated_at`.
    pub fn from_file(f: &FileResponse) -> Self {
        let dir = f.is_folder();
        // Times a client set through the gateway win while the version they
        // were set for is current (see `kept`).
        let modified = super::times_and_checksums::time(f, super::times_and_checksums::MTIME)
            .or_else(|| sys_time(f.updated_at.as_ref()));
        let created = super::times_and_checksums::time(f, super::times_and_checksums::CTIME)
            .or_else(|| sys_time(f.created_at.as_ref()));
        let etag = match (&f.primary_entity, dir) {
            (Some(e), false) if !e.is_empty() => e.clone(),
            _ => {
                let ts = f
                    .updated_at
                    .as_ref()
                    .map(|t| t.timestamp_micros())
                    .unwrap_or(0);
                format!("{}-{ts:x}", f.id)
            }
        };
        Self {
            dir,
            size: if dir { 0 } else { f.size.max(0) as u64 },
            modified,
            created,
            etag,
            entity: f.primary_entity.clone().filter(|e| !e.is_empty()),
        }
    }
}

impl DavMetaData for CrMeta {
    fn len(&self) -> u64 {
        self.size
    }
    fn modified(&self) -> FsResult<SystemTime> {
        self.modified.ok_or(FsError::NotImplemented)
    }
    fn is_dir(&self) -> bool {
        self.dir
    }
    fn is_symlink(&self) -> bool {
        false
    }
    fn etag(&self) -> Option<String> {
        Some(self.etag.clone())
    }
    fn created(&self) -> FsResult<SystemTime> {
        self.created.ok_or(FsError::NotImplemented)
    }
    fn status_changed(&self) -> FsResult<SystemTime> {
        self.modified()
    }
}

/// A listing entry: name and metadata taken from the listing page.
#[derive(Debug, Clone)]
pub struct CrEntry {
    /// Decoded name.
    pub name: String,
    /// Metadata.
    pub meta: CrMeta,
}

impl DavDirEntry for CrEntry {
    fn name(&self) -> Vec<u8> {
        self.name.as_bytes().to_vec()
    }
    fn metadata(&self) -> FsFuture<'_, Box<dyn DavMetaData>> {
        let m: Box<dyn DavMetaData> = Box::new(self.meta.clone());
        futures::future::ready(Ok(m)).boxed()
    }
    fn is_dir(&self) -> FsFuture<'_, bool> {
        futures::future::ready(Ok(self.meta.dir)).boxed()
    }
    fn is_file(&self) -> FsFuture<'_, bool> {
        futures::future::ready(Ok(!self.meta.dir)).boxed()
    }
    fn is_symlink(&self) -> FsFuture<'_, bool> {
        futures::future::ready(Ok(false)).boxed()
    }
}
