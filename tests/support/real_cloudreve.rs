//! A real Cloudreve server for one test: its own data folder and
//! `conf.ini` (SQLite, a free loopback port, a fixed session secret), the
//! binary named by `CLOUDREVE_BIN` started in that folder, the first user
//! signed up as administrator, WebDAV granted to the default user group
//! through the admin API, and everything stopped and removed when the value
//! is dropped.
//!
//! The project never builds Cloudreve; a developer who has a binary points
//! `CLOUDREVE_BIN` at it (see the README).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

/// The variable that names the Cloudreve binary.
pub(crate) const BIN_VAR: &str = "CLOUDREVE_BIN";

/// The administrator every instance is set up with.
const ADMIN_EMAIL: &str = "admin@cloudreve-dav.test";
const ADMIN_PASSWORD: &str = "admin-password-cloudreve-dav";

/// How long Cloudreve may take to answer its first ping.
const START_LIMIT: Duration = Duration::from_secs(60);

/// Group 2 ("User") is where sign-ups land on a fresh install.
const USER_GROUP: u64 = 2;

/// Permission bits (Cloudreve's `GroupPermission` order, a little-endian
/// bit set sent as base64) an administrator turns on for WebDAV users:
/// WebDAV and WebDAV proxy. Nothing else, so tests see what an ordinary
/// user of a default install sees.
const GRANTED_BITS: [usize; 2] = [3, 6];

/// The binary to run, when the developer named one.
pub(crate) fn configured_bin() -> Option<PathBuf> {
    let v = std::env::var_os(BIN_VAR)?;
    (!v.is_empty()).then(|| PathBuf::from(v))
}

/// One running Cloudreve process.
pub(crate) struct RealCloudreve {
    url: String,
    bin: PathBuf,
    child: Child,
    http: reqwest::Client,
    admin_token: String,
    dir: tempfile::TempDir,
}

impl RealCloudreve {
    /// The newest blob the local policy stored for a file called `name`
    /// (it names blobs `{uid}_{random}_{name}` below the working folder).
    pub(crate) fn newest_blob_named(&self, name: &str) -> Option<PathBuf> {
        let suffix = format!("_{name}");
        let mut found: Option<(std::time::SystemTime, PathBuf)> = None;
        let mut dirs = vec![self.dir.path().to_path_buf()];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(&d).ok()?.flatten() {
                let p = e.path();
                let Ok(meta) = e.metadata() else { continue };
                if meta.is_dir() {
                    dirs.push(p);
                } else if p
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.ends_with(&suffix))
                {
                    let t = meta.modified().ok()?;
                    if found.as_ref().is_none_or(|(ft, _)| t >= *ft) {
                        found = Some((t, p));
                    }
                }
            }
        }
        found.map(|(_, p)| p)
    }

    /// Starts `bin` in a fresh folder and prepares it for tests.
    pub(crate) async fn start(bin: &Path) -> RealCloudreve {
        let dir = tempfile::Builder::new()
            .prefix("cloudreve-real-")
            .tempdir()
            .expect("tempdir for Cloudreve");
        let port = free_port();
        let url = format!("http://127.0.0.1:{port}");
        let conf = dir.path().join("conf.ini");
        std::fs::write(
            &conf,
            format!(
                "[System]\nMode = master\nListen = 127.0.0.1:{port}\n\
                 SessionSecret = cloudreve-dav-tests-fixed-session-secret-0001\n\
                 LogLevel = warning\n\n[Database]\nType = sqlite\nDBFile = {}\n",
                dir.path().join("cloudreve.db").display()
            ),
        )
        .expect("write conf.ini");
        let child = spawn(bin, dir.path());
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60))
            .build()
            .expect("http client");
        let mut me = RealCloudreve {
            url,
            bin: bin.to_path_buf(),
            child,
            http,
            admin_token: String::new(),
            dir,
        };
        me.wait_ready().await;
        me.sign_up(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        me.admin_token = me.access_token(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        me.grant_webdav().await;
        me.set_settings(json!({ "siteURL": me.url })).await;
        me
    }

    /// Base URL, e.g. `http://127.0.0.1:PORT` (no `/api/v4`).
    pub(crate) fn url(&self) -> String {
        self.url.clone()
    }

    /// The folder holding `conf.ini`, the database, uploads and the log.
    pub(crate) fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Restarts the server with a new `secret_key` (through the
    /// configuration's `[OptionOverwrite]` section), which is what the 4.13
    /// upgrade did to every site: all tokens and signed URLs issued so far
    /// stop working; files, users and WebDAV accounts stay.
    pub(crate) async fn reset_secret_key(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let conf = self.dir.path().join("conf.ini");
        let mut text = std::fs::read_to_string(&conf).expect("read conf.ini");
        if let Some(i) = text.find("\n[OptionOverwrite]") {
            text.truncate(i + 1);
        }
        text.push_str(&format!(
            "\n[OptionOverwrite]\nsecret_key = {}\n",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::write(&conf, text).expect("write conf.ini");
        self.child = spawn(&self.bin, self.dir.path());
        self.wait_ready().await;
        self.admin_token = self.access_token(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    }

    /// Polls `/api/v4/site/ping` until it answers (bounded); a process that
    /// exits early fails the test with its log.
    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + START_LIMIT;
        let ping = format!("{}/api/v4/site/ping", self.url);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("Cloudreve exited at start ({status}): {}", self.log_tail());
            }
            if let Ok(r) = self.http.get(&ping).send().await
                && r.status().is_success()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "Cloudreve did not answer {ping} within {START_LIMIT:?}: {}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The end of Cloudreve's log, for failure messages.
    pub(crate) fn log_tail(&self) -> String {
        let bytes = std::fs::read(self.dir.path().join("cloudreve.log")).unwrap_or_default();
        let start = bytes.len().saturating_sub(4000);
        String::from_utf8_lossy(&bytes[start..]).into_owned()
    }

    /// A JSON API call that must succeed (`code` 0); returns `data`.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        bearer: Option<&str>,
        body: Value,
    ) -> Value {
        let mut rb = self
            .http
            .request(method.clone(), format!("{}/api/v4{path}", self.url))
            .json(&body);
        if let Some(t) = bearer {
            rb = rb.bearer_auth(t);
        }
        let resp = rb
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let v: Value = resp
            .json()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: not JSON: {e}"));
        assert_eq!(v["code"], 0, "{method} {path} failed: {v}");
        v["data"].clone()
    }

    /// Signs a new user up through `POST /user` (the first one becomes the
    /// administrator); returns the user's hashid.
    pub(crate) async fn sign_up(&self, email: &str, password: &str) -> String {
        let data = self
            .call(
                reqwest::Method::POST,
                "/user",
                None,
                json!({ "email": email, "password": password }),
            )
            .await;
        data["id"].as_str().unwrap_or_default().to_string()
    }

    async fn access_token(&self, email: &str, password: &str) -> String {
        let data = self
            .call(
                reqwest::Method::POST,
                "/session/token",
                None,
                json!({ "email": email, "password": password }),
            )
            .await;
        data["token"]["access_token"]
            .as_str()
            .expect("access_token")
            .to_string()
    }

    /// Turns on WebDAV (and its proxy bit) for the group new users join,
    /// and lifts its 1 GB quota so the big transfers of the benchmark fit.
    /// The whole group object goes back, `edges` included: Cloudreve
    /// replaces every field, and without the edge the group loses its
    /// storage policy.
    async fn grant_webdav(&self) {
        let path = format!("/admin/group/{USER_GROUP}");
        let mut group = self
            .call(
                reqwest::Method::GET,
                &path,
                Some(&self.admin_token),
                Value::Null,
            )
            .await;
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut bits = b64
            .decode(group["permissions"].as_str().unwrap_or_default())
            .expect("permissions are base64");
        for bit in GRANTED_BITS {
            if bits.len() <= bit / 8 {
                bits.resize(bit / 8 + 1, 0);
            }
            bits[bit / 8] |= 1 << (bit % 8);
        }
        group["permissions"] = json!(b64.encode(&bits));
        group["max_storage"] = json!(1u64 << 40);
        self.call(
            reqwest::Method::PUT,
            &path,
            Some(&self.admin_token),
            json!({ "group": group }),
        )
        .await;
    }

    /// Turns the default storage policy's `encryption` switch (4.10) on or
    /// off through the admin API (the whole policy object goes back).
    pub(crate) async fn set_policy_encryption(&self, on: bool) {
        self.set_policy_setting("encryption", json!(on)).await;
    }

    /// Sets one of the default storage policy's `settings` through the
    /// admin API (the whole policy goes back with it).
    pub(crate) async fn set_policy_setting(&self, key: &str, value: Value) {
        let mut policy = self
            .call(
                reqwest::Method::GET,
                "/admin/policy/1",
                Some(&self.admin_token),
                Value::Null,
            )
            .await;
        policy["settings"][key] = value;
        self.call(
            reqwest::Method::PUT,
            "/admin/policy/1",
            Some(&self.admin_token),
            json!({ "policy": policy }),
        )
        .await;
    }

    /// Sets site settings through the admin API (`PATCH /admin/settings`).
    pub(crate) async fn set_settings(&self, settings: Value) {
        self.call(
            reqwest::Method::PATCH,
            "/admin/settings",
            Some(&self.admin_token),
            json!({ "settings": settings }),
        )
        .await;
    }
}

impl Drop for RealCloudreve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::env::var_os("CLOUDREVE_KEEP_LOG").is_some() {
            eprintln!("Cloudreve log of {}:\n{}", self.url, self.log_tail());
        }
    }
}

/// Starts `bin` in `dir` (its `conf.ini`), output appended to
/// `cloudreve.log`.
fn spawn(bin: &Path, dir: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("cloudreve.log"))
        .expect("log file");
    Command::new(bin)
        .arg("-w")
        .arg("-c")
        .arg(dir.join("conf.ini"))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log file"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {BIN_VAR}={}: {e}", bin.display()))
}

/// A port that was free a moment ago on 127.0.0.1.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
