//! One running emulator's shared state, handed to every handler: the
//! model, the signing secret, the id codec, the test clock, the injected
//! faults and the data directory (snapshots, blobs, upload temp files).

use super::clock::Clock;
use super::faults::Fault;
use super::ids::HashIds;
use super::state::State as Model;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use tokio::sync::Notify;

/// Shared server state.
#[derive(Debug)]
pub(super) struct Inner {
    /// The model.
    pub state: Mutex<Model>,
    /// Signing secret of tokens and download URLs (Cloudreve's
    /// `secret_key`); it can be replaced, as 4.13's upgrade did.
    pub secret: std::sync::RwLock<Vec<u8>>,
    /// Id codec.
    pub ids: HashIds,
    /// Test clock.
    pub clock: Clock,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Injected faults.
    pub faults: Mutex<Vec<Fault>>,
    /// Signalled when the state changed (snapshot debounce).
    pub dirty: Notify,
    /// Base URL of this server.
    pub base_url: String,
    /// Serialises snapshot writes.
    pub save_guard: Mutex<()>,
    /// Every access and refresh token issued (test control: secret scans).
    pub issued_tokens: Mutex<Vec<String>>,
}

impl Inner {
    /// The current signing secret.
    pub(super) fn secret(&self) -> Vec<u8> {
        self.secret
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Locks the model (poison-tolerant).
    pub(super) fn lock(&self) -> MutexGuard<'_, Model> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks the state dirty.
    pub(super) fn touch(&self) {
        self.dirty.notify_one();
    }

    /// Blob path of an entity.
    pub(super) fn blob_path(&self, eid: u64) -> PathBuf {
        self.data_dir.join("blobs").join(eid.to_string())
    }

    /// Temp path of an upload session.
    pub(super) fn upload_path(&self, sid: &str) -> PathBuf {
        self.data_dir.join("uploads").join(sid)
    }

    /// Writes the snapshot atomically.
    pub(super) fn save(&self) -> std::io::Result<()> {
        let _g = self.save_guard.lock().unwrap_or_else(|p| p.into_inner());
        let bytes = {
            let st = self.lock();
            serde_json::to_vec(&*st).map_err(std::io::Error::other)?
        };
        let tmp = self
            .data_dir
            .join(format!("state.json.{}.tmp", uuid::Uuid::new_v4().simple()));
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(tmp, self.data_dir.join("state.json"))
    }
}
