//! The gateway under test: a child process `cloudreve-dav serve` (so its
//! memory can be read alone from `/proc`), or, for tests, in-process.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;

use super::stats::{self, Mem};

/// Environment variable naming a command the gateway child runs under
/// (split at whitespace; the gateway's own command line is appended).
pub const WRAPPER_ENV: &str = "CLOUDREVE_DAV_BENCH_WRAP";

/// How the gateway runs.
pub enum Gateway {
    /// `cloudreve-dav serve` as a child process.
    Child {
        /// The child.
        child: tokio::process::Child,
        /// Its pid.
        pid: u32,
        /// Its WebDAV base URL.
        url: String,
    },
    /// In this process (memory is not measurable on its own).
    InProcess(crate::gateway::RunningGateway),
}

fn free_addr() -> anyhow::Result<SocketAddr> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?)
}

impl Gateway {
    /// Starts `exe serve` against `upstream`, signing in `email`.
    pub async fn spawn_child(
        exe: &Path,
        upstream: &str,
        email: &str,
        password: &str,
        spool: &Path,
    ) -> anyhow::Result<Gateway> {
        let addr = free_addr()?;
        std::fs::create_dir_all(spool)?;
        // A profiler to run the gateway under, e.g.
        // `valgrind --tool=callgrind` (figures are then not comparable).
        let wrapper: Vec<String> = std::env::var(WRAPPER_ENV)
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect();
        let mut cmd = match wrapper.split_first() {
            Some((prog, args)) => {
                let mut c = tokio::process::Command::new(prog);
                c.args(args).arg(exe);
                c
            }
            None => tokio::process::Command::new(exe),
        };
        let wait_rounds = if wrapper.is_empty() { 300 } else { 3000 };
        cmd.arg("serve")
            .arg("--upstream")
            .arg(upstream)
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--spool-dir")
            .arg(spool)
            .env("CLOUDREVE_DAV_USER_EMAIL", email)
            .env("CLOUDREVE_DAV_USER_PASSWORD", password)
            .env("RUST_LOG", "warn")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start {} serve", exe.display()))?;
        let pid = child.id().context("gateway child has no pid")?;
        for _ in 0..wait_rounds {
            if let Some(status) = child.try_wait()? {
                anyhow::bail!("gateway child exited early: {status}");
            }
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return Ok(Gateway::Child {
                    child,
                    pid,
                    url: format!("http://{addr}/"),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!(
            "gateway child did not listen on {addr} within {} s",
            wait_rounds / 10
        )
    }

    /// Starts the gateway in this process with an already signed-in session.
    pub async fn in_process(
        upstream: &str,
        email: &str,
        password: &str,
        spool: PathBuf,
    ) -> anyhow::Result<Gateway> {
        std::fs::create_dir_all(&spool)?;
        let args = crate::config::ServeArgs {
            upstream: Some(upstream.to_string()),
            listen: Some("127.0.0.1:0".into()),
            spool_dir: Some(spool),
            ..Default::default()
        };
        let (e, p) = (email.to_string(), password.to_string());
        let config = crate::config::load_with_env(&args, &move |key: &str| match key {
            "CLOUDREVE_DAV_USER_EMAIL" => Some(e.clone()),
            "CLOUDREVE_DAV_USER_PASSWORD" => Some(p.clone()),
            _ => None,
        })?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        Ok(Gateway::InProcess(
            crate::gateway::start(&config, listener).await?,
        ))
    }

    /// The WebDAV base URL (ends with `/`).
    pub fn url(&self) -> String {
        match self {
            Gateway::Child { url, .. } => url.clone(),
            Gateway::InProcess(g) => g.url(),
        }
    }

    /// The child's pid (none in-process).
    pub fn pid(&self) -> Option<u32> {
        match self {
            Gateway::Child { pid, .. } => Some(*pid),
            Gateway::InProcess(_) => None,
        }
    }

    /// Stops the gateway: SIGTERM (a graceful stop, which also lets a
    /// profiler write its output), SIGKILL after 60 s.
    pub async fn stop(self) {
        match self {
            Gateway::Child { mut child, pid, .. } => {
                let term = tokio::process::Command::new("kill")
                    .arg("-TERM")
                    .arg(pid.to_string())
                    .status()
                    .await;
                let graceful = match term {
                    Ok(s) if s.success() => {
                        tokio::time::timeout(Duration::from_secs(60), child.wait())
                            .await
                            .is_ok()
                    }
                    _ => false,
                };
                if !graceful {
                    let _ = child.start_kill();
                    let _ = child.wait().await;
                }
            }
            Gateway::InProcess(g) => {
                let _ = g.shutdown().await;
            }
        }
    }
}

/// Samples a process's RSS while some work runs and reports its peak: the
/// kernel's high-water mark after a reset, cross-checked by polling VmRSS.
pub struct PeakSampler {
    stop: Arc<AtomicBool>,
    max: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
    pid: u32,
    reset_ok: bool,
    start_rss: u64,
    start_cpu: Option<f64>,
}

/// What a [`PeakSampler`] saw.
#[derive(Debug, Clone, Copy)]
pub struct Peak {
    /// RSS when sampling started (bytes).
    pub start: u64,
    /// Peak RSS while sampling (bytes).
    pub peak: u64,
    /// CPU seconds (user + system) the process used while sampling.
    pub cpu_secs: Option<f64>,
}

impl PeakSampler {
    /// Resets the peak of `pid` and starts polling every 20 ms.
    pub fn start(pid: u32) -> Self {
        let reset_ok = stats::reset_peak(pid);
        let start_rss = stats::read_mem(pid).map_or(0, |m| m.rss);
        let start_cpu = stats::cpu_secs(pid);
        let stop = Arc::new(AtomicBool::new(false));
        let max = Arc::new(AtomicU64::new(0));
        let (s, m) = (stop.clone(), max.clone());
        let task = tokio::spawn(async move {
            while !s.load(Ordering::Relaxed) {
                if let Some(Mem { rss, .. }) = stats::read_mem(pid) {
                    m.fetch_max(rss, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        Self {
            stop,
            max,
            task,
            pid,
            reset_ok,
            start_rss,
            start_cpu,
        }
    }

    /// Stops polling; returns the RSS at the start and the peak.
    pub async fn finish(self) -> Peak {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        let polled = self.max.load(Ordering::Relaxed).max(self.start_rss);
        let peak = match stats::read_mem(self.pid) {
            Some(m) if self.reset_ok => m.hwm.max(polled),
            _ => polled,
        };
        let cpu_secs = match (self.start_cpu, stats::cpu_secs(self.pid)) {
            (Some(a), Some(b)) => Some(b - a),
            _ => None,
        };
        Peak {
            start: self.start_rss,
            peak,
            cpu_secs,
        }
    }
}
