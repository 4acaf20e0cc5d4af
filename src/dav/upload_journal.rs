//! The journal of open upload sessions, so that sessions a crashed or
//! killed gateway left open upstream (each holding an upload lock and,
//! for a new file, a placeholder) are cancelled on its next start.
//!
//! One small JSON file per session in `<state_dir>/uploads/`, written
//! (and synced) right after the session is created and before its first
//! chunk is sent, removed once the session completed or was cancelled.
//! [`UploadJournal::open`] takes the files it finds as the previous run's
//! leftovers; [`UploadJournal::recover`] cancels them with each user's
//! session. On shutdown, [`UploadJournal::settle`] waits (bounded) for the
//! uploads still running to cancel themselves and cancels the rest.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::cloudreve::{CrUri, UploadObserver, cancel_settled};

use super::service::SessionLookup;

/// Name of the journal directory inside the state directory.
pub const JOURNAL_DIR: &str = "uploads";

/// One open upload session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// The Cloudreve user (configured e-mail) whose session opened it.
    pub email: String,
    /// The upload session id.
    pub session_id: String,
    /// The target URI (`cloudreve://…`).
    pub uri: String,
    /// When it was opened (unix seconds).
    pub opened: u64,
}

/// What [`UploadJournal::recover`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Sessions cancelled (or found gone) upstream and dropped.
    pub cancelled: usize,
    /// Sessions kept for a later attempt (upstream unreachable).
    pub kept: usize,
}

/// The journal (shared by every upload of the process).
#[derive(Debug)]
pub struct UploadJournal {
    dir: PathBuf,
    open: Mutex<HashMap<String, JournalEntry>>,
    leftovers: Mutex<Vec<JournalEntry>>,
    changed: Notify,
}

impl UploadJournal {
    /// Opens (creating) `<state_dir>/uploads` and reads the previous run's
    /// entries; unreadable files are logged and removed.
    pub fn open(state_dir: &Path) -> std::io::Result<Arc<Self>> {
        let dir = state_dir.join(JOURNAL_DIR);
        std::fs::create_dir_all(&dir)?;
        let mut leftovers = Vec::new();
        for e in std::fs::read_dir(&dir)? {
            let path = e?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if !name.ends_with(".json") || name.starts_with('.') {
                let _ = std::fs::remove_file(&path);
                continue;
            }
            match std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<JournalEntry>(&b).ok())
            {
                Some(entry) => leftovers.push(entry),
                None => {
                    tracing::warn!(path = %path.display(), "unreadable upload journal entry removed");
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        if !leftovers.is_empty() {
            tracing::info!(
                count = leftovers.len(),
                "upload sessions left open by the previous run"
            );
        }
        Ok(Arc::new(Self {
            dir,
            open: Mutex::new(HashMap::new()),
            leftovers: Mutex::new(leftovers),
            changed: Notify::new(),
        }))
    }

    /// The journal directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// An observer recording the sessions opened for `email`.
    pub fn observer(self: &Arc<Self>, email: &str) -> Arc<dyn UploadObserver> {
        Arc::new(Observer {
            journal: self.clone(),
            email: email.to_string(),
        })
    }

    /// The sessions of this run still open.
    pub fn open_entries(&self) -> Vec<JournalEntry> {
        self.open
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// The previous run's entries not yet recovered.
    pub fn leftovers(&self) -> Vec<JournalEntry> {
        self.leftovers.lock().map(|l| l.clone()).unwrap_or_default()
    }

    fn file_of(&self, session_id: &str) -> PathBuf {
        // Session ids are UUIDs; anything else is hex-encoded.
        let safe = if !session_id.is_empty()
            && session_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            session_id.to_string()
        } else {
            session_id.bytes().map(|b| format!("{b:02x}")).collect()
        };
        self.dir.join(format!("{safe}.json"))
    }

    fn record(&self, entry: JournalEntry) {
        let path = self.file_of(&entry.session_id);
        if let Err(e) = write_synced(&self.dir, &path, &entry) {
            tracing::error!(path = %path.display(), error = %e, "cannot journal an upload session; a crash would leave it open upstream");
        }
        if let Ok(mut m) = self.open.lock() {
            m.insert(entry.session_id.clone(), entry);
        }
    }

    fn forget(&self, session_id: &str) {
        let path = self.file_of(session_id);
        if let Err(e) = std::fs::remove_file(&path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove upload journal entry");
        }
        if let Ok(mut m) = self.open.lock() {
            m.remove(session_id);
        }
        self.changed.notify_waiters();
    }

    /// Cancels the previous run's sessions, each with its user's session;
    /// entries whose cancel failed for an unreachable upstream stay for the
    /// next start, the others are removed.
    pub async fn recover(&self, lookup: &SessionLookup) -> Recovered {
        let entries =
            std::mem::take(&mut *self.leftovers.lock().unwrap_or_else(|p| p.into_inner()));
        let mut out = Recovered::default();
        for entry in entries {
            if self.cancel_entry(lookup, &entry).await {
                out.cancelled += 1;
            } else {
                out.kept += 1;
            }
        }
        if out.cancelled + out.kept > 0 {
            tracing::info!(
                cancelled = out.cancelled,
                kept = out.kept,
                "upload sessions of the previous run recovered"
            );
        }
        out
    }

    /// Waits up to `wait` for this run's open sessions to settle by
    /// themselves (their uploads cancel on abort), then cancels the rest.
    pub async fn settle(&self, lookup: &SessionLookup, wait: Duration) {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let notified = self.changed.notified();
            if self.open_entries().is_empty() {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                break;
            }
        }
        for entry in self.open_entries() {
            tracing::info!(session_id = %entry.session_id, uri = %entry.uri, "cancelling an upload left open at shutdown");
            self.cancel_entry(lookup, &entry).await;
        }
    }

    /// Cancels one entry; true (and the entry removed) when the session is
    /// known gone upstream.
    async fn cancel_entry(&self, lookup: &SessionLookup, entry: &JournalEntry) -> bool {
        let Some(session) = lookup(&entry.email) else {
            tracing::warn!(user = %entry.email, session_id = %entry.session_id, "journaled upload of an unconfigured user dropped");
            self.forget(&entry.session_id);
            return true;
        };
        let Ok(uri) = CrUri::parse(&entry.uri) else {
            tracing::warn!(uri = %entry.uri, "journaled upload with a bad URI dropped");
            self.forget(&entry.session_id);
            return true;
        };
        let r = session.cancel_upload(&entry.session_id, &uri).await;
        match &r {
            Ok(()) => {
                tracing::info!(session_id = %entry.session_id, %uri, "journaled upload session cancelled")
            }
            Err(e) => {
                tracing::warn!(session_id = %entry.session_id, %uri, error = %e, "cancelling a journaled upload session failed")
            }
        }
        if cancel_settled(&r) {
            self.forget(&entry.session_id);
            true
        } else {
            // Keep the file for the next start.
            if let Ok(mut m) = self.open.lock() {
                m.remove(&entry.session_id);
            }
            false
        }
    }
}

fn write_synced(dir: &Path, path: &Path, entry: &JournalEntry) -> std::io::Result<()> {
    let body = serde_json::to_vec(entry).map_err(std::io::Error::other)?;
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("entry")
    ));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&body)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[derive(Debug)]
struct Observer {
    journal: Arc<UploadJournal>,
    email: String,
}

impl UploadObserver for Observer {
    fn opened(&self, session_id: &str, uri: &CrUri) {
        let opened = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        self.journal.record(JournalEntry {
            email: self.email.clone(),
            session_id: session_id.to_string(),
            uri: uri.to_string(),
            opened,
        });
    }

    fn closed(&self, session_id: &str) {
        self.journal.forget(session_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_survive_a_reopen_and_odd_ids_are_encoded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let j = UploadJournal::open(dir.path()).expect("open");
        let uri = CrUri::parse("cloudreve://my/a.txt").expect("uri");
        let o = j.observer("u@example.com");
        o.opened("0f9a-11", &uri);
        o.opened("../x y", &uri);
        o.opened("gone", &uri);
        o.closed("gone");
        assert_eq!(j.open_entries().len(), 2);
        assert!(j.dir().join("0f9a-11.json").exists());
        assert!(!dir.path().join("x y.json").exists());
        let again = UploadJournal::open(dir.path()).expect("reopen");
        let mut ids: Vec<String> = again
            .leftovers()
            .into_iter()
            .map(|e| e.session_id)
            .collect();
        ids.sort();
        assert_eq!(ids, vec!["../x y".to_string(), "0f9a-11".to_string()]);
        assert!(again.open_entries().is_empty());
    }
}
