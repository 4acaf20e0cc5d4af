//! The one place that decides which upstream a test gets: the embedded
//! emulator (default), or a real Cloudreve when `CLOUDREVE_BIN` names a
//! binary. Tests reach users, files and emulator controls through
//! [`TestUpstream`], so the same test body runs against either.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use cloudreve_dav::cloudreve::{Client, CrUri, Session};
use cloudreve_dav::emulator::{Emulator, EmulatorConfig, LockInfo};

use super::real_cloudreve::{self, RealCloudreve};

enum Server {
    Emulator(Emulator),
    Real(RealCloudreve),
}

/// The upstream of one test.
pub(crate) struct TestUpstream {
    server: Option<Server>,
    /// Sign-in passwords of the users added so far (to inspect their
    /// drives on a real server).
    passwords: Mutex<HashMap<String, String>>,
}

/// True when tests run against a real Cloudreve (`CLOUDREVE_BIN` set).
pub(crate) fn real_server_configured() -> bool {
    real_cloudreve::configured_bin().is_some()
}

impl TestUpstream {
    /// Starts the upstream; the emulator keeps its data below `dir`.
    pub(crate) async fn start(dir: &Path) -> TestUpstream {
        Self::start_with(dir, |_| {}).await
    }

    /// [`TestUpstream::start`] with the emulator's configuration adjusted
    /// by `tweak` (not applied to a real server).
    pub(crate) async fn start_with(
        dir: &Path,
        tweak: impl FnOnce(&mut EmulatorConfig),
    ) -> TestUpstream {
        let server = match real_cloudreve::configured_bin() {
            Some(bin) => Server::Real(RealCloudreve::start(&bin).await),
            None => {
                let mut cfg = EmulatorConfig::new(dir.join("emu"));
                tweak(&mut cfg);
                Server::Emulator(Emulator::start(cfg).await.expect("emulator starts"))
            }
        };
        TestUpstream {
            server: Some(server),
            passwords: Mutex::new(HashMap::new()),
        }
    }

    fn server(&self) -> &Server {
        self.server.as_ref().expect("upstream running")
    }

    /// Base URL (no `/api/v4`).
    pub(crate) fn url(&self) -> String {
        match self.server() {
            Server::Emulator(e) => e.url(),
            Server::Real(r) => r.url(),
        }
    }

    /// True against a real Cloudreve.
    pub(crate) fn is_real(&self) -> bool {
        matches!(self.server(), Server::Real(_))
    }

    /// The emulator's controls, or `None` against a real server.
    pub(crate) fn emulator(&self) -> Option<&Emulator> {
        match self.server() {
            Server::Emulator(e) => Some(e),
            Server::Real(_) => None,
        }
    }

    /// The emulator's controls; fails the test against a real server (use
    /// `skip_on_real!` first in tests that need them).
    #[track_caller]
    pub(crate) fn emu(&self) -> &Emulator {
        self.emulator()
            .expect("this test needs emulator controls: start it with skip_on_real!")
    }

    /// The real server, or `None` on the emulator.
    pub(crate) fn real(&self) -> Option<&RealCloudreve> {
        match self.server() {
            Server::Real(r) => Some(r),
            Server::Emulator(_) => None,
        }
    }

    /// Adds a user who may use WebDAV (on a real server: signed up through
    /// the API into the group the harness granted WebDAV).
    pub(crate) async fn add_user(&self, email: &str, password: &str) {
        match self.server() {
            Server::Emulator(e) => {
                e.add_user(email, password);
            }
            Server::Real(r) => {
                r.sign_up(email, password).await;
            }
        }
        self.passwords
            .lock()
            .expect("passwords")
            .insert(email.to_ascii_lowercase(), password.to_string());
    }

    /// A new signed-in session of a user added with [`Self::add_user`].
    pub(crate) async fn sign_in(&self, email: &str) -> Session {
        let pw = self.password_of(email);
        Client::new(&self.url())
            .expect("client")
            .sign_in(email, &pw)
            .await
            .expect("sign in")
    }

    fn password_of(&self, email: &str) -> String {
        self.passwords
            .lock()
            .expect("passwords")
            .get(&email.to_ascii_lowercase())
            .cloned()
            .unwrap_or_else(|| panic!("{email} was not added through TestUpstream::add_user"))
    }

    /// The bytes of the file at `path` (decoded, from the user's drive
    /// root), or `None` when there is no such file.
    pub(crate) async fn file_bytes(&self, email: &str, path: &str) -> Option<Vec<u8>> {
        match self.server() {
            Server::Emulator(e) => e.file_bytes(email, path),
            Server::Real(_) => {
                let s = self.sign_in(email).await;
                let uri = CrUri::my_path(path).ok()?;
                let info = s.info(&uri, false).await.ok()?;
                if info.is_folder() {
                    return None;
                }
                if info.size == 0 {
                    return Some(Vec::new());
                }
                let r = s.open_read_uri(&uri, None, None).await.ok()?;
                Some(r.bytes().await.ok()?.to_vec())
            }
        }
    }

    /// The size of the file at `path` as stored upstream, or `None` when
    /// there is no such file (without reading its bytes).
    pub(crate) async fn file_size(&self, email: &str, path: &str) -> Option<u64> {
        match self.server() {
            Server::Emulator(e) => match e.file_path_on_disk(email, path) {
                Some(p) => std::fs::metadata(p).ok().map(|m| m.len()),
                // No blob: an empty file, or nothing at all.
                None => e.file_bytes(email, path).map(|b| b.len() as u64),
            },
            Server::Real(_) => {
                let s = self.sign_in(email).await;
                let info = s.info(&CrUri::my_path(path).ok()?, false).await.ok()?;
                (!info.is_folder()).then_some(info.size.max(0) as u64)
            }
        }
    }

    /// The names in the folder at `path`, or `None` when it is not a folder.
    pub(crate) async fn child_names(&self, email: &str, path: &str) -> Option<Vec<String>> {
        match self.server() {
            Server::Emulator(e) => e.child_names(email, path),
            Server::Real(_) => {
                let s = self.sign_in(email).await;
                let uri = CrUri::my_path(path).ok()?;
                let (_, files) = s.list_all(&uri, 0).await.ok()?;
                Some(files.into_iter().map(|f| f.name).collect())
            }
        }
    }

    /// Cloudreve's own locks held by a user. A real server has no API that
    /// lists them, so there this is always empty: assertions that nothing
    /// is left locked are checked on the emulator only.
    pub(crate) fn active_locks(&self, email: &str) -> Vec<LockInfo> {
        self.emulator()
            .map(|e| e.active_locks(email))
            .unwrap_or_default()
    }

    /// Open upload sessions of a user. A real server has no API that lists
    /// them, so there this is always 0: assertions that no session is left
    /// are checked on the emulator only.
    pub(crate) fn upload_sessions(&self, email: &str) -> usize {
        self.emulator()
            .map(|e| e.upload_sessions(email))
            .unwrap_or(0)
    }

    /// The bytes of the file at `path` as they lie on the storage (the
    /// local policy's blob), which differ from its content when the
    /// policy encrypts.
    pub(crate) fn stored_bytes(&self, email: &str, path: &str) -> Option<Vec<u8>> {
        match self.server() {
            Server::Emulator(e) => std::fs::read(e.file_path_on_disk(email, path)?).ok(),
            Server::Real(r) => {
                let name = path.rsplit('/').next().unwrap_or(path);
                std::fs::read(r.newest_blob_named(name)?).ok()
            }
        }
    }

    /// Sets the storage policy's chunk size.
    pub(crate) async fn set_policy_chunk_size(&self, bytes: i64) {
        match self.server() {
            Server::Emulator(e) => e.set_chunk_size(bytes),
            Server::Real(r) => r.set_policy_setting("chunk_size", bytes.into()).await,
        }
    }

    /// Turns the storage policy's `encryption` switch on or off.
    pub(crate) async fn set_policy_encryption(&self, on: bool) {
        match self.server() {
            Server::Emulator(e) => e.set_policy_encryption(on),
            Server::Real(r) => r.set_policy_encryption(on).await,
        }
    }

    /// Invalidates every token and signed URL issued so far, as Cloudreve
    /// 4.13's upgrade did by resetting `secret_key` (a real server is
    /// restarted with a new key; the emulator swaps its secret).
    pub(crate) async fn reset_secret_key(&mut self) {
        match self.server.as_mut().expect("upstream running") {
            Server::Emulator(e) => e.reset_secret_key(),
            Server::Real(r) => r.reset_secret_key().await,
        }
    }

    /// Restarts the emulator on the same address and data folder `dir`
    /// (the one given to [`Self::start`]): locks and upload sessions are
    /// lost, files and tokens survive.
    pub(crate) async fn restart_emulator(mut self, dir: &Path) -> TestUpstream {
        let Some(Server::Emulator(e)) = self.server.take() else {
            panic!("restarting needs the emulator");
        };
        let addr = e.addr();
        e.shutdown().await;
        let mut cfg = EmulatorConfig::new(dir.join("emu"));
        cfg.listen = addr;
        self.server = Some(Server::Emulator(
            Emulator::start(cfg).await.expect("emulator restarts"),
        ));
        self
    }

    /// Stops the upstream and removes its data.
    pub(crate) async fn shutdown(mut self) {
        match self.server.take() {
            Some(Server::Emulator(e)) => e.shutdown().await,
            Some(Server::Real(r)) => drop(r),
            None => {}
        }
    }
}

/// Emulator controls (faults, clock, quotas, policy switches, injected
/// locks) are reached through the upstream as if it were the emulator; on a
/// real server that fails the test with a message that says to skip it.
impl std::ops::Deref for TestUpstream {
    type Target = Emulator;

    #[track_caller]
    fn deref(&self) -> &Emulator {
        self.emu()
    }
}

/// Ends a test early against a real server, saying why; the rest of the
/// test needs emulator controls (clock, injected faults, foreign locks,
/// quotas, policy switches).
#[macro_export]
macro_rules! skip_on_real {
    ($up:expr, $why:expr) => {
        if $up.is_real() {
            eprintln!("skipped on a real Cloudreve: {}", $why);
            return;
        }
    };
}
