//! `cloudreve-dav demo`: the embedded Cloudreve v4 emulator with a seeded
//! user and two WebDAV accounts on `cloudreve://my` (read-write and
//! read-only), and the gateway in front of it.
//!
//! When ready it prints exactly one JSON line on stdout (`webdav_url`,
//! `upstream_url`, `username`, `password`, `readonly_password`,
//! `login_password`, `admin_url`) and mount instructions on stderr, then serves until
//! SIGINT/SIGTERM. With `--data DIR` the files, the sign-in password and
//! the WebDAV accounts survive restarts; without it everything lives in a
//! temporary directory removed at exit.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use rand::Rng as _;
use rand::distributions::Alphanumeric;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

use crate::cloudreve::{Client, CrUri, DavAccountOptions, Session};
use crate::config::{self, ServeArgs};
use crate::emulator::{Emulator, EmulatorConfig};
use crate::front;
use crate::gateway;

/// The seeded user's e-mail.
pub const DEMO_EMAIL: &str = "demo@example.com";
/// Name of the read-write WebDAV account.
const RW_ACCOUNT: &str = "demo (read-write)";
/// Name of the read-only WebDAV account.
const RO_ACCOUNT: &str = "demo (read-only)";
/// File in the data directory keeping the demo's sign-in password.
const CREDENTIALS_FILE: &str = "demo-credentials.json";

/// What `demo` prints on stdout when ready.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DemoInfo {
    /// The gateway's WebDAV URL.
    pub webdav_url: String,
    /// The emulator's base URL.
    pub upstream_url: String,
    /// WebDAV user name (the Cloudreve e-mail).
    pub username: String,
    /// Password of the read-write WebDAV account.
    pub password: String,
    /// Password of the read-only WebDAV account.
    pub readonly_password: String,
    /// The Cloudreve sign-in password of the user.
    pub login_password: String,
    /// Base URL of the admin endpoints (`/healthz`, `/readyz`, `/metrics`).
    pub admin_url: String,
}

#[derive(Serialize, Deserialize)]
struct SavedCredentials {
    login_password: String,
}

/// Options of `demo`.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Gateway listen address.
    pub listen: SocketAddr,
    /// Data directory kept across runs; `None` = a temporary one.
    pub data: Option<PathBuf>,
    /// Admin endpoints' listen address (port 0 = a free port).
    pub admin_listen: SocketAddr,
}

/// A running demo: emulator plus gateway.
pub struct RunningDemo {
    /// What was printed.
    pub info: DemoInfo,
    emulator: Emulator,
    gateway: gateway::RunningGateway,
    _temp: Option<tempdir::TempDir>,
}

impl RunningDemo {
    /// The emulator (for inspection in tests).
    pub fn emulator(&self) -> &Emulator {
        &self.emulator
    }

    /// Stops the gateway, then the emulator (saving its state).
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.gateway.shutdown().await?;
        self.emulator.shutdown().await;
        Ok(())
    }
}

/// A tiny self-removing temporary directory (no extra dependency).
mod tempdir {
    use std::path::{Path, PathBuf};

    /// Removed on drop.
    pub(super) struct TempDir(PathBuf);

    impl TempDir {
        /// Creates a fresh directory under the system temp dir.
        pub(super) fn new(prefix: &str) -> std::io::Result<Self> {
            let path = std::env::temp_dir().join(format!("{prefix}-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&path)?;
            Ok(Self(path))
        }

        /// Its path.
        pub(super) fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn random_password(len: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

fn login_password(dir: &Path) -> anyhow::Result<String> {
    let file = dir.join(CREDENTIALS_FILE);
    if let Ok(text) = std::fs::read_to_string(&file)
        && let Ok(saved) = serde_json::from_str::<SavedCredentials>(&text)
    {
        return Ok(saved.login_password);
    }
    let login_password = random_password(20);
    let text = serde_json::to_string_pretty(&SavedCredentials {
        login_password: login_password.clone(),
    })?;
    std::fs::write(&file, text).with_context(|| format!("cannot write {}", file.display()))?;
    #[cfg(unix)]
    {
        // It holds a password: owner only.
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot restrict {}", file.display()))?;
    }
    Ok(login_password)
}

/// Finds the account named `name` on `cloudreve://my`, creating it if
/// missing; returns its password.
async fn ensure_account(session: &Session, name: &str, readonly: bool) -> anyhow::Result<String> {
    let existing = session.list_dav_accounts().await?;
    if let Some(a) = existing.iter().find(|a| a.name == name) {
        return Ok(a.password.clone());
    }
    let options = DavAccountOptions {
        readonly,
        proxy: false,
        disable_sys_files: false,
    };
    let created = session
        .create_dav_account(&CrUri::my(), name, options)
        .await?;
    Ok(created.password)
}

/// Starts the emulator, seeds it and starts the gateway on `listener`.
pub async fn start(
    data: Option<PathBuf>,
    listener: TcpListener,
    admin_listen: SocketAddr,
) -> anyhow::Result<RunningDemo> {
    let temp = match data {
        Some(_) => None,
        None => Some(tempdir::TempDir::new("cloudreve-dav-demo")?),
    };
    let dir = match (&data, &temp) {
        (Some(d), _) => d.clone(),
        (None, Some(t)) => t.path().to_path_buf(),
        (None, None) => unreachable!("a temporary directory exists when no data dir is given"),
    };
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create data directory {}", dir.display()))?;
    let emulator_dir = dir.join("emulator");
    let login_password = login_password(&dir)?;

    let emulator = Emulator::start(EmulatorConfig::new(&emulator_dir)).await?;
    emulator.add_user(DEMO_EMAIL, &login_password);
    let upstream_url = emulator.url();

    let addr = listener.local_addr()?;
    let args = ServeArgs {
        upstream: Some(upstream_url.clone()),
        listen: Some(addr.to_string()),
        spool_dir: Some(dir.join("spool")),
        state_dir: Some(dir.join("state")),
        admin_listen: Some(admin_listen.to_string()),
        ..ServeArgs::default()
    };
    let env_password = login_password.clone();
    let config = config::load_with_env(&args, &move |key: &str| match key {
        "CLOUDREVE_DAV_USER_EMAIL" => Some(DEMO_EMAIL.to_string()),
        "CLOUDREVE_DAV_USER_PASSWORD" => Some(env_password.clone()),
        _ => None,
    })?;
    std::fs::create_dir_all(&config.spool.dir)?;
    // The gateway's own client options: its calls count in the metrics.
    let client = Client::with_options(&upstream_url, gateway::client_options(&config))?;
    let session = client.sign_in(DEMO_EMAIL, &login_password).await?;
    let password = ensure_account(&session, RW_ACCOUNT, false).await?;
    let readonly_password = ensure_account(&session, RO_ACCOUNT, true).await?;
    let sessions = gateway::Sessions::new([(DEMO_EMAIL.to_string(), session)]);
    let gateway = gateway::start_with(&config, sessions, listener, std::future::pending()).await?;

    let info = DemoInfo {
        webdav_url: gateway.url(),
        upstream_url,
        username: DEMO_EMAIL.to_string(),
        password,
        readonly_password,
        login_password,
        admin_url: gateway
            .admin_url()
            .context("the admin endpoints are configured")?,
    };
    Ok(RunningDemo {
        info,
        emulator,
        gateway,
        _temp: temp,
    })
}

fn mount_instructions(info: &DemoInfo) -> String {
    let url = &info.webdav_url;
    let user = &info.username;
    let pass = &info.password;
    format!(
        "\n\
cloudreve-dav demo is running.\n\
\n\
  WebDAV URL : {url}\n\
  user       : {user}\n\
  password   : {pass}   (read-write account)\n\
  read-only  : {ro}\n\
  Cloudreve  : {up} (sign in with {user} / {login})\n\
  admin      : {admin}healthz, {admin}readyz, {admin}metrics\n\
\n\
Mount it:\n\
  Linux (davfs2): sudo mount -t davfs {url} /mnt/cloudreve\n\
  GNOME Files   : Other Locations → Connect to Server → {dav}\n\
  macOS Finder  : Go → Connect to Server… → {url}\n\
  Windows       : net use Z: {url} /user:{user} {pass}\n\
                  (plain http needs BasicAuthLevel=2 in the WebClient service settings)\n\
  rclone        : rclone config create demo webdav url={url} vendor=owncloud user={user} pass=$(rclone obscure {pass})\n\
  curl          : curl -u '{user}:{pass}' -X PROPFIND -H 'Depth: 1' {url}\n\
\n\
Press Ctrl-C to stop.\n",
        ro = info.readonly_password,
        up = info.upstream_url,
        login = info.login_password,
        admin = info.admin_url,
        dav = url.replacen("http", "dav", 1),
    )
}

/// `cloudreve-dav demo`: runs until SIGINT/SIGTERM.
pub async fn run(options: DemoOptions) -> anyhow::Result<()> {
    let listener = TcpListener::bind(options.listen)
        .await
        .with_context(|| format!("cannot listen on {}", options.listen))?;
    let demo = start(options.data, listener, options.admin_listen).await?;
    println!("{}", serde_json::to_string(&demo.info)?);
    eprint!("{}", mount_instructions(&demo.info));
    front::shutdown_signal().await;
    eprintln!("stopping…");
    demo.shutdown().await?;
    Ok(())
}
