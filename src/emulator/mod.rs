//! A Cloudreve v4 emulator: a real HTTP server that behaves as Cloudreve
//! 4.18.0 does (`docs/UPSTREAM.md`; where the two disagree, the real server
//! wins and the emulator is fixed). It shares no wire types or URI code with
//! the typed client in `crate::cloudreve`.
//!
//! Blobs live in `<data>/blobs/<entity>`; everything else is an in-memory model
//! saved as `<data>/state.json` (debounced, atomic). Locks and upload sessions
//! are not persisted.
//!
//! Known differences from a real Cloudreve 4.18 server (all deliberate):
//! * Only the `my` and `trash` file systems exist; `share`/`shared_with_me` give 403,
//!   unknown ones 40001. URI search queries (`?name=`) are ignored (plain listing).
//!   `sys:shared_redirect` is stored but does not make a symbolic folder.
//! * Listing is always cursor-paginated (`page` ignored). A trashed folder's contents
//!   cannot be listed.
//! * One version per file (no version retention); `used` is the sum of file sizes,
//!   copies counted again, trash included. The default quota is 1 TiB, not 1 GB.
//! * Download URLs are never cached (each call gets a full TTL); the `{speed}` segment
//!   is 0 and not enforced; the host comes from the request's `Host`. `archive` always
//!   gives 40007. Entity-less files serve an empty 200 body.
//! * No thumbnails or media-metadata side effects. Timestamps are UTC (`Z`).
//! * "Held" locks are not modelled. Cancelling an upload does not take a zero-depth
//!   lock. Identical lock paths within one batch are taken once. `create` answers an
//!   existing object before taking locks.
//! * Expired upload sessions delete their placeholder. After an emulator restart,
//!   placeholders of lost sessions stay (with their stale `sys:upload_session_id`).
//! * `customize:emoji` accepts any non-empty value; colours are approximated.
//!   The captcha answer is [`CAPTCHA_ANSWER`]. Error `msg` texts are approximate.
//! * An encrypting policy ([`Emulator::set_policy_encryption`]) hands a client
//!   that offers `aes-256-ctr` a key in the session and stores its chunks as
//!   sent; relayed uploads and `PUT /file/content` are encrypted by the
//!   server; a client that offers no cipher is stored in clear. Downloads
//!   decrypt. The master-key wrapping of the stored key is not modelled.

/// The Cloudreve version the emulator behaves as (its `/site/ping`).
pub const VERSION: &str = "4.18.0";

mod auth;
mod caller;
mod clock;
mod content;
mod crypt;
mod dav_accounts;
mod envelope;
mod events;
mod faults;
mod feed;
mod files;
mod ids;
mod instance;
mod locks;
mod metadata;
mod server;
mod site;
mod state;
mod tree;
mod upload;
mod uri;

#[cfg(test)]
mod tests;

pub use auth::CAPTCHA_ANSWER;
pub use faults::{Fault, FaultKind, Gate};
pub use state::{PolicyKind, UserFlags as UserOptions};

use ids::IdKind;
use instance::Inner;
use locks::{LockApp, LockReq};
use state::State as Model;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

/// Emulator configuration.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Address to bind, e.g. `127.0.0.1:0`.
    pub listen: SocketAddr,
    /// Directory for blobs and the state snapshot.
    pub data_dir: PathBuf,
}

impl EmulatorConfig {
    /// A config listening on `127.0.0.1:0` with the given data directory.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.into(),
        }
    }
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self::new("emulator-data")
    }
}

/// The application owning an injected lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockOwner {
    /// A Cloudreve `/dav` lock with its `<owner>` inner XML.
    Dav {
        /// Owner XML.
        inner_xml: String,
    },
    /// A WOPI/viewer lock.
    Viewer {
        /// Viewer id.
        viewer_id: String,
    },
    /// An upload lock.
    Upload,
    /// Any other application type (e.g. `create`).
    Other(String),
}

/// An injected lock.
#[derive(Debug, Clone)]
pub struct LockSpec {
    /// Owning application.
    pub owner: LockOwner,
    /// Zero depth (else infinite).
    pub zero_depth: bool,
    /// Time to live; `None` = infinite.
    pub ttl: Option<Duration>,
}

/// A lock as seen by tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockInfo {
    /// File system (`my` or `trash`).
    pub fs: String,
    /// Decoded owner-view path.
    pub path: String,
    /// Application type.
    pub app_type: String,
    /// Token.
    pub token: String,
    /// Zero depth?
    pub zero_depth: bool,
}

/// A running emulator. Dropping it stops the server.
#[derive(Debug)]
pub struct Emulator {
    inner: Arc<Inner>,
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    server: Option<JoinHandle<()>>,
    saver: Option<JoinHandle<()>>,
}

impl Emulator {
    /// Starts the server (loading the snapshot in `data_dir`, if any).
    pub async fn start(config: EmulatorConfig) -> anyhow::Result<Emulator> {
        let dir = config.data_dir.clone();
        std::fs::create_dir_all(dir.join("blobs"))?;
        let _ = std::fs::remove_dir_all(dir.join("uploads"));
        std::fs::create_dir_all(dir.join("uploads"))?;
        let snap = dir.join("state.json");
        let mut model = if snap.exists() {
            let bytes = std::fs::read(&snap)?;
            serde_json::from_slice::<Model>(&bytes)?
        } else {
            Model::new()
        };
        model.rebuild_children();
        let listener = tokio::net::TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let inner = Arc::new(Inner {
            secret: std::sync::RwLock::new(model.secret.clone()),
            ids: ids::HashIds::new(&model.secret),
            state: Mutex::new(model),
            clock: clock::Clock::default(),
            data_dir: dir,
            faults: Mutex::new(Vec::new()),
            dirty: Notify::new(),
            base_url: format!("http://{addr}"),
            save_guard: Mutex::new(()),
            issued_tokens: Mutex::new(Vec::new()),
        });
        let (stop, rx) = watch::channel(false);
        let app = server::router(inner.clone());
        let server = tokio::spawn(server::serve(listener, app, rx.clone()));
        let saver_inner = inner.clone();
        let mut saver_rx = rx;
        let saver = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = saver_inner.dirty.notified() => {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        let i = saver_inner.clone();
                        let _ = tokio::task::spawn_blocking(move || i.save()).await;
                    }
                    _ = saver_rx.changed() => break,
                }
            }
        });
        Ok(Emulator {
            inner,
            addr,
            stop,
            server: Some(server),
            saver: Some(saver),
        })
    }

    /// Base URL, e.g. `http://127.0.0.1:PORT` (no `/api/v4`).
    pub fn url(&self) -> String {
        self.inner.base_url.clone()
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Graceful stop plus a final snapshot save.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(s) = self.saver.take() {
            let _ = s.await;
        }
        if let Some(s) = self.server.take() {
            let _ = s.await;
        }
        let i = self.inner.clone();
        let _ = tokio::task::spawn_blocking(move || i.save()).await;
    }

    fn with<R>(&self, f: impl FnOnce(&mut Model) -> R) -> R {
        let mut st = self.inner.lock();
        let r = f(&mut st);
        drop(st);
        self.inner.touch();
        r
    }

    fn uid(st: &Model, email: &str) -> Option<u64> {
        st.user_by_email(email)
    }

    /// Adds a user (WebDAV + proxy group bits on); returns the user's hashid.
    /// An existing e-mail gets its password reset.
    pub fn add_user(&self, email: &str, password: &str) -> String {
        let now = self.inner.clock.now();
        let id = self.with(|st| st.add_user(email, password, now));
        self.inner.ids.encode(id, IdKind::User)
    }

    /// Replaces a user's permission bits and switches; returns false for an unknown user.
    pub fn set_user_options(&self, email: &str, options: UserOptions) -> bool {
        self.with(|st| {
            let Some(id) = Self::uid(st, email) else {
                return false;
            };
            if let Some(u) = st.users.get_mut(&id) {
                u.flags = options;
            }
            true
        })
    }

    /// Current options of a user.
    pub fn user_options(&self, email: &str) -> Option<UserOptions> {
        let st = self.inner.lock();
        Self::uid(&st, email).and_then(|id| st.users.get(&id).map(|u| u.flags.clone()))
    }

    /// Requires a sign-in captcha (answer: [`CAPTCHA_ANSWER`]).
    pub fn set_captcha_required(&self, on: bool) {
        self.with(|st| st.settings.captcha = on);
    }

    /// Every access and refresh token this emulator has issued, oldest first.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.inner
            .issued_tokens
            .lock()
            .map(|t| t.clone())
            .unwrap_or_default()
    }

    /// Advances the clock used for tokens, URLs, sessions, locks and trash.
    pub fn advance_clock(&self, by: Duration) {
        self.inner.clock.advance(by);
    }

    /// Injects a lock on an owner-view path (e.g. `/a/b.txt`), bypassing conflict checks.
    /// Returns the token, or an empty string for an unknown user.
    pub fn inject_lock(&self, email: &str, path: &str, spec: LockSpec) -> String {
        let now = self.inner.clock.now();
        self.with(|st| {
            let Some(uid) = Self::uid(st, email) else {
                return String::new();
            };
            let segs = uri::clean(path);
            let root = st.users.get(&uid).map(|u| u.root).unwrap_or_default();
            let folder = st
                .walk(root, &segs)
                .and_then(|id| st.files.get(&id))
                .is_some_and(|n| n.folder);
            let app = match spec.owner {
                LockOwner::Dav { inner_xml } => LockApp {
                    kind: "dav".into(),
                    inner_xml: Some(inner_xml),
                    viewer_id: None,
                },
                LockOwner::Viewer { viewer_id } => LockApp {
                    kind: "viewer".into(),
                    inner_xml: None,
                    viewer_id: Some(viewer_id),
                },
                LockOwner::Upload => LockApp::of("upload"),
                LockOwner::Other(k) => LockApp::of(&k),
            };
            st.locks.insert_forced(&LockReq {
                owner: uid,
                fs: "my".into(),
                path: uri::join_path(&segs),
                zero_depth: spec.zero_depth,
                file_type: u8::from(folder),
                app,
                expires: spec.ttl.map(|t| {
                    chrono::Duration::from_std(t)
                        .ok()
                        .and_then(|d| now.checked_add_signed(d))
                        .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC)
                }),
            })
        })
    }

    /// Drops every lock (simulates a restart; upload sessions then fail with "Lock expired").
    pub fn drop_all_locks(&self) {
        self.with(|st| st.locks.clear());
    }

    /// Sets a user's quota in bytes.
    pub fn set_quota(&self, email: &str, total_bytes: i64) {
        self.with(|st| {
            if let Some(id) = Self::uid(st, email)
                && let Some(u) = st.users.get_mut(&id)
            {
                u.quota = total_bytes;
            }
        });
    }

    /// Sets `maxEditSize` for `PUT /file/content`.
    pub fn set_max_edit_size(&self, bytes: i64) {
        self.with(|st| st.settings.max_edit_size = bytes);
    }

    /// Sets the storage policy type (affects new upload sessions).
    pub fn set_policy_type(&self, kind: PolicyKind) {
        self.with(|st| st.settings.policy = kind);
    }

    /// Turns the policy's `encryption` switch on or off.
    pub fn set_policy_encryption(&self, on: bool) {
        self.with(|st| st.settings.policy_encryption = on);
    }

    /// Switches the change feed (`fs_event_push_enabled`, on by default).
    pub fn set_events_enabled(&self, on: bool) {
        self.with(|st| st.settings.events_enabled = on);
    }

    /// Sets how long the change feed waits for more changes before it sends
    /// (`fs_event_push_debounce`, 5 s by default).
    pub fn set_event_debounce(&self, by: Duration) {
        self.with(|st| st.settings.event_debounce = by);
    }

    /// Sets the policy chunk size (default 25 MiB).
    pub fn set_chunk_size(&self, bytes: i64) {
        self.with(|st| st.settings.chunk_size = bytes);
    }

    /// Sets the storage policy `max_size` (0 = unlimited; larger uploads give 40049).
    pub fn set_policy_max_size(&self, bytes: i64) {
        self.with(|st| st.settings.policy_max_size = bytes);
    }

    /// Sets the group `max_walked_files` (default 100000; over it gives 40079).
    pub fn set_max_walked_files(&self, n: usize) {
        self.with(|st| st.settings.max_walked_files = n);
    }

    /// Sets the trash retention (default 7 days).
    pub fn set_trash_retention(&self, by: Duration) {
        self.with(|st| st.settings.trash_retention = by.as_secs() as i64);
    }

    /// Sets `max_page_size` (default 2000).
    pub fn set_max_page_size(&self, n: usize) {
        self.with(|st| st.settings.max_page_size = n.max(1));
    }

    /// Switches case-insensitive name matching (MySQL-like).
    pub fn set_case_insensitive(&self, on: bool) {
        self.with(|st| {
            st.settings.case_insensitive = on;
            st.rebuild_children();
        });
    }

    /// Adds a fault rule.
    pub fn add_fault(&self, fault: Fault) {
        if let Ok(mut f) = self.inner.faults.lock() {
            f.push(fault);
        }
    }

    /// Number of fault rules not yet used up.
    pub fn pending_faults(&self) -> usize {
        self.inner.faults.lock().map(|f| f.len()).unwrap_or(0)
    }

    /// Removes all fault rules.
    pub fn clear_faults(&self) {
        if let Ok(mut f) = self.inner.faults.lock() {
            f.clear();
        }
    }

    fn node_of(&self, email: &str, path: &str) -> Option<(u64, i64)> {
        let st = self.inner.lock();
        let n = Self::node_at(&st, email, path)?;
        (!n.folder).then_some((n.primary, n.size))
    }

    /// The node at `path` in a user's drive.
    fn node_at<'m>(st: &'m Model, email: &str, path: &str) -> Option<&'m state::Node> {
        let root = st.users.get(&Self::uid(st, email)?)?.root;
        st.files.get(&st.walk(root, &uri::clean(path))?)
    }

    /// The bytes of a file as a download gives them (test helper; small
    /// files only). Empty files give `Some(vec![])`.
    pub fn file_bytes(&self, email: &str, path: &str) -> Option<Vec<u8>> {
        let (eid, _) = self.node_of(email, path)?;
        if eid == 0 {
            return Some(Vec::new());
        }
        let stored = std::fs::read(self.inner.blob_path(eid)).ok()?;
        let key = self
            .inner
            .lock()
            .entities
            .get(&eid)
            .and_then(|e| e.key.clone());
        Some(match key {
            Some(k) => k.at(0).apply(&stored).to_vec(),
            None => stored,
        })
    }

    /// Whether a file's current content is stored encrypted.
    pub fn is_stored_encrypted(&self, email: &str, path: &str) -> bool {
        let Some((eid, _)) = self.node_of(email, path) else {
            return false;
        };
        self.inner
            .lock()
            .entities
            .get(&eid)
            .is_some_and(|e| e.key.is_some())
    }

    /// The names in a folder (test helper); `None` when `path` is not a folder.
    pub fn child_names(&self, email: &str, path: &str) -> Option<Vec<String>> {
        let st = self.inner.lock();
        let folder = Self::node_at(&st, email, path)?;
        folder.folder.then(|| {
            folder
                .children
                .values()
                .filter_map(|id| st.files.get(id).map(|n| n.name.clone()))
                .collect()
        })
    }

    /// Where a file's current blob lives (`None` for folders and entity-less files).
    pub fn file_path_on_disk(&self, email: &str, path: &str) -> Option<PathBuf> {
        let (eid, _) = self.node_of(email, path)?;
        (eid != 0).then(|| self.inner.blob_path(eid))
    }

    /// Replaces the signing secret, as Cloudreve 4.13's upgrade reset
    /// `secret_key`: every token and signed URL issued so far stops working
    /// (object ids stay as they are).
    pub fn reset_secret_key(&self) {
        let fresh: [u8; 32] = rand::random();
        *self.inner.secret.write().unwrap_or_else(|p| p.into_inner()) = fresh.to_vec();
    }

    /// Active (unexpired) locks of a user.
    pub fn active_locks(&self, email: &str) -> Vec<LockInfo> {
        let now = self.inner.clock.now();
        let mut st = self.inner.lock();
        st.locks.collect(now);
        let Some(uid) = Self::uid(&st, email) else {
            return vec![];
        };
        st.locks
            .of_owner(uid)
            .into_iter()
            .map(|l| LockInfo {
                fs: l.fs,
                path: l.path,
                app_type: l.app.kind,
                token: l.token,
                zero_depth: l.zero_depth,
            })
            .collect()
    }

    /// Number of open (unexpired) upload sessions of a user.
    pub fn upload_sessions(&self, email: &str) -> usize {
        let mut st = self.inner.lock();
        upload::sweep(&self.inner, &mut st);
        let Some(uid) = Self::uid(&st, email) else {
            return 0;
        };
        st.sessions.values().filter(|s| s.owner == uid).count()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if self.server.is_some() {
            let _ = self.stop.send(true);
            let _ = self.inner.save();
        }
    }
}

/// Runs the emulator for the CLI: prints `{"upstream_url":"http://..."}` once ready and
/// serves until SIGINT/SIGTERM. CLI users get the WebDAV group permission.
pub async fn run_cli(
    listen: SocketAddr,
    data_dir: PathBuf,
    users: Vec<(String, String)>,
) -> anyhow::Result<()> {
    let emu = Emulator::start(EmulatorConfig { listen, data_dir }).await?;
    for (email, password) in &users {
        emu.add_user(email, password);
        if let Some(mut o) = emu.user_options(email) {
            o.webdav = true;
            emu.set_user_options(email, o);
        }
    }
    println!("{}", serde_json::json!({"upstream_url": emu.url()}));
    wait_for_signal().await;
    emu.shutdown().await;
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
