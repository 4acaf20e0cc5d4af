//! Peer WebDAV servers on local disk, for reference rows: `rclone serve
//! webdav` and Apache httpd with mod_dav. Missing binaries give "not
//! installed" rows rather than failures.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;

/// A running peer server.
pub struct Peer {
    /// Display name.
    pub name: &'static str,
    /// WebDAV base URL (ends with `/`).
    pub url: String,
    /// Pid whose memory is meaningful (rclone: the server; Apache: none,
    /// it is several processes).
    pub pid: Option<u32>,
    child: tokio::process::Child,
}

impl Peer {
    /// Stops the server.
    pub async fn stop(mut self) {
        // SIGTERM first: Apache's parent then stops its workers too.
        if let Some(pid) = self.child.id() {
            let _ = tokio::process::Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status()
                .await;
        }
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.start_kill();
            let _ = self.child.wait().await;
        }
    }
}

/// Finds `name` on `PATH` (or in the sbin directories).
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn free_addr() -> anyhow::Result<SocketAddr> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?)
}

async fn wait_listening(
    child: &mut tokio::process::Child,
    addr: SocketAddr,
    what: &str,
) -> anyhow::Result<()> {
    for _ in 0..200 {
        if let Some(s) = child.try_wait()? {
            anyhow::bail!("{what} exited early: {s}");
        }
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("{what} did not listen on {addr}")
}

/// `rclone serve webdav DIR` on loopback; `Ok(None)` when not installed.
pub async fn rclone(dir: &Path) -> anyhow::Result<Option<Peer>> {
    let Some(exe) = which("rclone") else {
        return Ok(None);
    };
    let addr = free_addr()?;
    let mut child = tokio::process::Command::new(exe)
        .args(["serve", "webdav", "--addr"])
        .arg(addr.to_string())
        .arg(dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("cannot start rclone")?;
    wait_listening(&mut child, addr, "rclone").await?;
    let pid = child.id();
    Ok(Some(Peer {
        name: "rclone serve webdav",
        url: format!("http://{addr}/"),
        pid,
        child,
    }))
}

/// Apache httpd with mod_dav/mod_dav_fs serving `dir`, with its own
/// configuration in `work`; `Ok(None)` when not installed.
pub async fn apache(dir: &Path, work: &Path) -> anyhow::Result<Option<Peer>> {
    let Some(exe) = which("apache2").or_else(|| which("httpd")) else {
        return Ok(None);
    };
    let modules = ["/usr/lib/apache2/modules", "/usr/lib64/httpd/modules"]
        .into_iter()
        .map(PathBuf::from)
        .find(|d| d.join("mod_dav.so").is_file());
    let Some(modules) = modules else {
        return Ok(None);
    };
    std::fs::create_dir_all(work)?;
    let addr = free_addr()?;
    let user = if is_root() {
        // httpd refuses to serve as root; hand the directory to www-data.
        let _ = std::process::Command::new("chown")
            .args(["-R", "www-data:www-data"])
            .arg(dir)
            .arg(work)
            .status();
        "User www-data\nGroup www-data\n"
    } else {
        ""
    };
    let has = |m: &str| modules.join(m).is_file();
    let mut load = String::new();
    for (name, file) in [
        ("mpm_event_module", "mod_mpm_event.so"),
        ("authz_core_module", "mod_authz_core.so"),
        ("dav_module", "mod_dav.so"),
        ("dav_fs_module", "mod_dav_fs.so"),
        ("unixd_module", "mod_unixd.so"),
    ] {
        if has(file) {
            load.push_str(&format!(
                "LoadModule {name} {}\n",
                modules.join(file).display()
            ));
        }
    }
    let conf = format!(
        "ServerName localhost\nListen {addr}\n{load}{user}\
PidFile {w}/httpd.pid\nDefaultRuntimeDir {w}\nErrorLog {w}/error.log\nLogLevel warn\n\
ServerLimit 4\nThreadsPerChild 64\nMaxRequestWorkers 256\nKeepAliveTimeout 30\n\
MaxKeepAliveRequests 0\nDavLockDB {w}/davlock\nDocumentRoot {d}\n\
<Directory {d}>\n  Dav On\n  Require all granted\n  LimitRequestBody 0\n</Directory>\n",
        w = work.display(),
        d = dir.display(),
    );
    let conf_path = work.join("httpd.conf");
    std::fs::write(&conf_path, conf)?;
    let mut child = tokio::process::Command::new(exe)
        .arg("-f")
        .arg(&conf_path)
        .args(["-DFOREGROUND"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("cannot start apache")?;
    wait_listening(&mut child, addr, "apache").await?;
    Ok(Some(Peer {
        name: "Apache mod_dav",
        url: format!("http://{addr}/"),
        pid: None,
        child,
    }))
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .map(|r| r.split_whitespace().next() == Some("0"))
        })
        .unwrap_or(false)
}
