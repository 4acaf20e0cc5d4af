//! `cloudreve-dav bench`: the gateway against the same work done directly
//! on the upstream API (and, for reference, against peer WebDAV servers on
//! local disk).
//!
//! The emulator runs in this process; the gateway runs as a child process
//! `cloudreve-dav serve` so its memory can be read alone from `/proc`.
//! With `--upstream` (external mode) a real Cloudreve server replaces the
//! emulator, and Cloudreve's own WebDAV endpoint `/dav` on that server is
//! measured as a third subject next to the gateway and the direct API.
//! Payloads come from a seeded generator and are streamed both ways; the
//! big transfers are checked by digest. Every figure is the median of
//! `--runs` runs after one warm-up run.
//!
//! Modules: [`data`] (payloads, digests), [`client`] (WebDAV and direct
//! load clients), [`gwproc`] (the gateway process, peak RSS), [`load`]
//! (concurrent closed-loop load), [`peers`] (rclone, Apache), [`stats`],
//! [`report`] (table, JSON, SVG) and [`scenario`] (the measurements).

pub mod client;
pub mod data;
pub mod gwproc;
pub mod load;
pub mod peers;
pub mod report;
pub mod scenario;
pub mod stats;

use std::path::PathBuf;
use std::time::Duration;

pub use report::Report;

/// Command-line options of `cloudreve-dav bench`.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Measured runs per figure (the median is reported), after one warm-up.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// A short smoke run: 8 MiB instead of 1 GiB, 200 files, 2 runs, 3 s of
    /// load with 8 clients.
    #[arg(long)]
    pub quick: bool,
    /// Size of the big transfer in bytes (default 1 GiB; 8 MiB with --quick).
    #[arg(long)]
    pub size: Option<u64>,
    /// Files in the PROPFIND folder (default 10000; 200 with --quick).
    #[arg(long)]
    pub files: Option<usize>,
    /// Seconds of the concurrent mixed load (default 30; 3 with --quick).
    #[arg(long)]
    pub duration: Option<u64>,
    /// Concurrent clients of the mixed load (default 64; 8 with --quick).
    #[arg(long)]
    pub clients: Option<usize>,
    /// Also transfer a 4 GiB file once each way through the gateway to show
    /// that its peak RSS does not grow with the size (needs ~9 GiB of disk).
    #[arg(long)]
    pub big4: bool,
    /// Also measure `rclone serve webdav` and Apache mod_dav on local disk
    /// (rows say "not installed" when they are missing).
    #[arg(long)]
    pub peers: bool,
    /// Write the results as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write a bar chart (SVG) of gateway vs direct vs peers to this file.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// Run the gateway inside the bench process instead of as a child
    /// process (its memory is then not measured).
    #[arg(long)]
    pub in_process: bool,
    /// Measure only these phases (comma-separated: get, put, propfind,
    /// rates, mixed, big4, peers; default: all enabled ones). Handy to
    /// profile one phase.
    #[arg(long, value_delimiter = ',')]
    pub phases: Vec<String>,
    /// Working directory for the emulator's and the peers' files (default:
    /// a temporary directory, removed at the end).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// External mode: benchmark against this real Cloudreve v4 server
    /// instead of the embedded emulator, and add Cloudreve's own `/dav` as
    /// a third subject. Needs --email and the sign-in password in
    /// CLOUDREVE_DAV_BENCH_PASSWORD or --password-file.
    #[arg(long, value_name = "URL", env = "CLOUDREVE_DAV_BENCH_UPSTREAM")]
    pub upstream: Option<String>,
    /// External mode: the Cloudreve user's e-mail.
    #[arg(long, value_name = "EMAIL", env = "CLOUDREVE_DAV_BENCH_EMAIL")]
    pub email: Option<String>,
    /// External mode: a file holding the user's sign-in password (else
    /// CLOUDREVE_DAV_BENCH_PASSWORD; never on the command line).
    #[arg(long, value_name = "FILE", env = "CLOUDREVE_DAV_BENCH_PASSWORD_FILE")]
    pub password_file: Option<PathBuf>,
}

/// Environment variable holding the external mode's sign-in password.
pub const PASSWORD_ENV: &str = "CLOUDREVE_DAV_BENCH_PASSWORD";

/// A real Cloudreve server and a user on it (external mode).
#[derive(Clone)]
pub struct External {
    /// Base URL of the server (no trailing `/`).
    pub url: String,
    /// The user's e-mail.
    pub email: String,
    /// The user's sign-in password.
    pub password: String,
}

impl std::fmt::Debug for External {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("External")
            .field("url", &self.url)
            .field("email", &self.email)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl External {
    /// The external upstream named by the arguments, if any: the password
    /// comes from `--password-file` or [`PASSWORD_ENV`] (read through `env`).
    pub fn from_args(
        a: &BenchArgs,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Option<Self>> {
        let Some(url) = &a.upstream else {
            if a.email.is_some() || a.password_file.is_some() {
                anyhow::bail!("--email and --password-file need --upstream");
            }
            return Ok(None);
        };
        let url = url.trim_end_matches('/').to_string();
        anyhow::ensure!(
            url.starts_with("http://") || url.starts_with("https://"),
            "--upstream must be an http(s) URL, got {url:?}"
        );
        let email = a.email.clone().filter(|e| !e.is_empty()).ok_or_else(|| {
            anyhow::anyhow!("--upstream needs --email (or CLOUDREVE_DAV_BENCH_EMAIL)")
        })?;
        let password = match &a.password_file {
            Some(p) => {
                let s = std::fs::read_to_string(p)
                    .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.display()))?;
                s.trim_end_matches(['\r', '\n']).to_string()
            }
            None => env(PASSWORD_ENV).ok_or_else(|| {
                anyhow::anyhow!(
                    "--upstream needs the sign-in password in {PASSWORD_ENV} or --password-file"
                )
            })?,
        };
        anyhow::ensure!(!password.is_empty(), "the sign-in password is empty");
        Ok(Some(Self {
            url,
            email,
            password,
        }))
    }
}

/// Resolved benchmark settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Measured runs per figure.
    pub runs: usize,
    /// Big transfer size (bytes).
    pub size: u64,
    /// Files in the listing folder.
    pub files: usize,
    /// Mixed-load duration.
    pub duration: Duration,
    /// Duration of each requests-per-second measurement.
    pub rps_duration: Duration,
    /// Mixed-load clients.
    pub clients: usize,
    /// Size of the small files of the mixed load.
    pub small: u64,
    /// Run the 4 GiB transfer.
    pub big4: Option<u64>,
    /// Measure the peers.
    pub peers: bool,
    /// The gateway binary (`None`: in-process).
    pub gateway_exe: Option<PathBuf>,
    /// Working directory (`None`: a temporary one).
    pub dir: Option<PathBuf>,
    /// Phases to run (empty: all).
    pub phases: Vec<String>,
    /// A real Cloudreve server instead of the emulator (external mode).
    pub external: Option<External>,
}

impl Settings {
    /// Settings from the command line; the gateway binary is this one.
    pub fn from_args(a: &BenchArgs) -> anyhow::Result<Self> {
        let q = a.quick;
        let exe = if a.in_process {
            None
        } else {
            Some(std::env::current_exe()?)
        };
        Ok(Self {
            runs: a.runs.max(1).min(if q { 2 } else { usize::MAX }),
            size: a.size.unwrap_or(if q { 8 << 20 } else { 1 << 30 }),
            files: a.files.unwrap_or(if q { 200 } else { 10_000 }),
            duration: Duration::from_secs(a.duration.unwrap_or(if q { 3 } else { 30 })),
            rps_duration: Duration::from_secs(if q { 1 } else { 5 }),
            clients: a.clients.unwrap_or(if q { 8 } else { 64 }),
            small: 64 * 1024,
            big4: a.big4.then_some(4 << 30),
            peers: a.peers,
            gateway_exe: exe,
            dir: a.dir.clone(),
            phases: a.phases.iter().map(|p| p.trim().to_lowercase()).collect(),
            external: External::from_args(a, &|k| std::env::var(k).ok())?,
        })
    }

    /// Tiny settings for the harness test (in-process unless `exe` given).
    pub fn tiny(exe: Option<PathBuf>) -> Self {
        Self {
            runs: 1,
            size: 3 * 1024 * 1024 + 17,
            files: 30,
            duration: Duration::from_millis(500),
            rps_duration: Duration::from_millis(300),
            clients: 4,
            small: 4096,
            big4: None,
            peers: false,
            gateway_exe: exe,
            dir: None,
            phases: Vec::new(),
            external: None,
        }
    }

    /// Whether `phase` is selected.
    pub fn runs_phase(&self, phase: &str) -> bool {
        self.phases.is_empty() || self.phases.iter().any(|p| p == phase)
    }
}

/// `cloudreve-dav bench`: runs, prints the table, writes JSON/SVG.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let settings = Settings::from_args(&args)?;
    let report = scenario::run(&settings).await?;
    print!("{}", report.table());
    if let Some(p) = &args.json {
        std::fs::write(p, serde_json::to_string_pretty(&report)?)?;
        eprintln!("wrote {}", p.display());
    }
    if let Some(p) = &args.svg {
        std::fs::write(p, report.svg())?;
        eprintln!("wrote {}", p.display());
    }
    if !report.errors.is_empty() {
        anyhow::bail!("benchmark errors: {}", report.errors.join("; "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        bench: BenchArgs,
    }

    fn args(argv: &[&str]) -> BenchArgs {
        Cli::try_parse_from(std::iter::once("bench").chain(argv.iter().copied()))
            .expect("arguments parse")
            .bench
    }

    fn env_with_password(k: &str) -> Option<String> {
        (k == PASSWORD_ENV).then(|| "pw-from-env".to_string())
    }

    #[test]
    fn external_mode_only_with_upstream() {
        assert!(
            External::from_args(&args(&[]), &env_with_password)
                .unwrap()
                .is_none()
        );
        let err = External::from_args(&args(&["--email", "a@x"]), &env_with_password);
        assert!(err.is_err(), "--email without --upstream is refused");
    }

    #[test]
    fn external_password_from_env_or_file_never_printed() {
        let a = args(&["--upstream", "http://h:1/", "--email", "a@x"]);
        let e = External::from_args(&a, &env_with_password)
            .unwrap()
            .unwrap();
        assert_eq!(
            (e.url.as_str(), e.email.as_str(), e.password.as_str()),
            ("http://h:1", "a@x", "pw-from-env")
        );
        assert!(!format!("{e:?}").contains("pw-from-env"));

        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pw");
        std::fs::write(&f, "pw-from-file\n").unwrap();
        let mut a = a.clone();
        a.password_file = Some(f);
        let e = External::from_args(&a, &env_with_password)
            .unwrap()
            .unwrap();
        assert_eq!(e.password, "pw-from-file");
    }

    #[test]
    fn external_mode_needs_email_and_password() {
        let no_env = |_: &str| None;
        let a = args(&["--upstream", "http://h:1"]);
        assert!(External::from_args(&a, &env_with_password).is_err());
        let a = args(&["--upstream", "http://h:1", "--email", "a@x"]);
        let err = External::from_args(&a, &no_env).unwrap_err().to_string();
        assert!(err.contains(PASSWORD_ENV), "{err}");
        let a = args(&["--upstream", "h:1", "--email", "a@x"]);
        assert!(External::from_args(&a, &env_with_password).is_err());
    }
}
