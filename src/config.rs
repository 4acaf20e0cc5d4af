//! Gateway configuration.
//!
//! Sources, lowest precedence first:
//! 1. a TOML file (`--config PATH` or `CLOUDREVE_DAV_CONFIG`),
//! 2. environment variables `CLOUDREVE_DAV_*`,
//! 3. command-line flags ([`ServeArgs`]).
//!
//! Secrets (passwords, refresh tokens) come only from the file or from the
//! environment (directly or via a `*_file` / `*_env` indirection), never from
//! the command line. [`load`] resolves every secret, validates everything and
//! returns a ready-to-use [`Config`].

use std::{
    fmt,
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context, anyhow, bail};
use serde::Deserialize;

pub use crate::dav::reserved::ReservedNames;
pub use crate::dav::settings::{DeleteMode, JunkPolicy};
pub use crate::front::server::TlsPaths;
pub use crate::front::throttle::LoginThrottle;
use crate::front::{AuthSettings, FrontSettings};

/// Prefix of every environment variable the gateway reads.
pub const ENV_PREFIX: &str = "CLOUDREVE_DAV_";

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// Command-line flags of the `serve` command. Every flag is optional and
/// overrides the environment and the configuration file. Secrets cannot be
/// given here on purpose.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    /// Path of the TOML configuration file (env: CLOUDREVE_DAV_CONFIG).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Address to listen on, e.g. 0.0.0.0:8080 (env: CLOUDREVE_DAV_LISTEN).
    #[arg(long, global = true, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Base URL of the Cloudreve server, e.g. `https://cloud.example.com` (env: CLOUDREVE_DAV_UPSTREAM).
    #[arg(long, global = true, value_name = "URL")]
    pub upstream: Option<String>,
    /// PEM certificate chain for TLS (env: CLOUDREVE_DAV_TLS_CERT).
    #[arg(long, global = true, value_name = "PATH")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for TLS (env: CLOUDREVE_DAV_TLS_KEY).
    #[arg(long, global = true, value_name = "PATH")]
    pub tls_key: Option<PathBuf>,
    /// Seconds between refreshes of the WebDAV account list (env: CLOUDREVE_DAV_ACCOUNT_REFRESH_SECS).
    #[arg(long, global = true, value_name = "SECS")]
    pub account_refresh_secs: Option<u64>,
    /// Seconds a verified credential stays cached (env: CLOUDREVE_DAV_CREDENTIAL_CACHE_TTL_SECS).
    #[arg(long, global = true, value_name = "SECS")]
    pub credential_cache_ttl_secs: Option<u64>,
    /// What DELETE does: `trash` or `permanent` (env: CLOUDREVE_DAV_DELETE_MODE).
    #[arg(long, global = true, value_name = "MODE")]
    pub delete_mode: Option<String>,
    /// Directory for spooled uploads (env: CLOUDREVE_DAV_SPOOL_DIR).
    #[arg(long, global = true, value_name = "PATH")]
    pub spool_dir: Option<PathBuf>,
    /// Upper bound of the bytes held in the spool directory (env: CLOUDREVE_DAV_SPOOL_MAX_BYTES).
    #[arg(long, global = true, value_name = "BYTES")]
    pub spool_max_bytes: Option<u64>,
    /// Gateway state directory, e.g. the WebDAV lock table (env: CLOUDREVE_DAV_STATE_DIR).
    #[arg(long, global = true, value_name = "PATH")]
    pub state_dir: Option<PathBuf>,
    /// Smallest WebDAV lock timeout granted, seconds (env: CLOUDREVE_DAV_LOCK_TIMEOUT_MIN_SECS).
    #[arg(long, global = true, value_name = "SECS")]
    pub lock_timeout_min_secs: Option<u64>,
    /// Largest WebDAV lock timeout granted, also for `Infinite` (env: CLOUDREVE_DAV_LOCK_TIMEOUT_MAX_SECS).
    #[arg(long, global = true, value_name = "SECS")]
    pub lock_timeout_max_secs: Option<u64>,
    /// Seconds a client may take to send request headers (env: CLOUDREVE_DAV_HEADER_TIMEOUT_SECS).
    #[arg(long, global = true, value_name = "SECS")]
    pub header_timeout_secs: Option<u64>,
    /// Seconds one upstream (Cloudreve) request may take (env: CLOUDREVE_DAV_UPSTREAM_TIMEOUT_SECS).
    #[arg(long, global = true, value_name = "SECS")]
    pub upstream_timeout_secs: Option<u64>,
    /// Seconds a connection to the upstream may take to open (env: CLOUDREVE_DAV_UPSTREAM_CONNECT_TIMEOUT_SECS).
    #[arg(long, global = true, value_name = "SECS")]
    pub upstream_connect_timeout_secs: Option<u64>,
    /// Seconds in-flight requests get to finish on shutdown (env: CLOUDREVE_DAV_SHUTDOWN_GRACE_SECS).
    #[arg(long, global = true, value_name = "SECS")]
    pub shutdown_grace_secs: Option<u64>,
    /// Junk files (`.DS_Store`, `._*`, `Thumbs.db`, `desktop.ini`, `~$*`, `.~lock.*#`):
    /// `auto`, `off`, `hide`, `park` or `reject` (env: CLOUDREVE_DAV_JUNK_FILES).
    #[arg(long, global = true, value_name = "POLICY")]
    pub junk_files: Option<String>,
    /// Names with characters Cloudreve refuses (`\ : * ? " < > |`): `refuse`
    /// (400) or `map` (stored as full-width look-alikes) (env:
    /// CLOUDREVE_DAV_RESERVED_NAMES).
    #[arg(long, global = true, value_name = "MODE")]
    pub reserved_names: Option<String>,
    /// Log format: `human` or `json` (env: CLOUDREVE_DAV_LOG_FORMAT).
    #[arg(long, global = true, value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// Address of the admin endpoints `/healthz`, `/readyz` and `/metrics`,
    /// e.g. 127.0.0.1:9090; off when unset (env: CLOUDREVE_DAV_ADMIN_LISTEN).
    #[arg(long, global = true, value_name = "ADDR")]
    pub admin_listen: Option<String>,
    /// Redis holding the state shared by several instances (locks, accounts,
    /// login throttle), e.g. `redis://10.0.0.5:6379/0`; a URL with a
    /// password belongs in the environment or the file (env: CLOUDREVE_DAV_REDIS).
    #[arg(long, global = true, value_name = "URL")]
    pub redis: Option<String>,
    /// Prefix of every Redis key, so deployments can share one Redis (env: CLOUDREVE_DAV_REDIS_PREFIX).
    #[arg(long, global = true, value_name = "PREFIX")]
    pub redis_prefix: Option<String>,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "human" => Ok(Self::Human),
            "json" => Ok(Self::Json),
            other => bail!("log format must be `human` or `json`, not `{other}`"),
        }
    }
}

/// A secret string whose `Debug` output is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The secret itself. Do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// How the gateway signs in to Cloudreve's REST API as a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserSecret {
    /// The user's Cloudreve login password.
    Password(Secret),
    /// A Cloudreve refresh token (for users with 2FA, or to avoid storing the password).
    RefreshToken(Secret),
}

/// One Cloudreve user whose WebDAV accounts this gateway serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserConfig {
    /// The user's e-mail as configured (matched case-insensitively).
    pub email: String,
    /// The credential the gateway uses for the REST API.
    pub secret: UserSecret,
}

/// Upload spooling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolConfig {
    /// Directory for temporary upload data.
    pub dir: PathBuf,
    /// Upper bound of the bytes kept in `dir` at any time.
    pub max_bytes: u64,
}

/// Timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Time a client may take to send the request head.
    pub header_read: Duration,
    /// Time one upstream request may take.
    pub upstream: Duration,
    /// Time a connection to the upstream may take to open.
    pub upstream_connect: Duration,
    /// Time in-flight requests get to finish after a shutdown signal.
    pub shutdown_grace: Duration,
}

/// The Redis that several instances share (see `redis_state`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port[/db]` (may hold a password).
    pub url: Secret,
    /// Prefix of every key.
    pub prefix: String,
}

/// The validated gateway configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Listen address.
    pub listen: SocketAddr,
    /// Cloudreve base URL (`http(s)://host[:port][/path]`, no trailing slash).
    pub upstream: String,
    /// Users whose WebDAV accounts are served (e-mails unique, case-insensitively).
    pub users: Vec<UserConfig>,
    /// TLS, when both a certificate and a key are configured.
    pub tls: Option<TlsPaths>,
    /// Interval between refreshes of each user's WebDAV account list.
    pub account_refresh: Duration,
    /// How long a verified credential is cached.
    pub credential_cache_ttl: Duration,
    /// What DELETE does.
    pub delete_mode: DeleteMode,
    /// Upload spooling.
    pub spool: SpoolConfig,
    /// Gateway state directory (lock table).
    pub state_dir: PathBuf,
    /// Range of WebDAV lock timeouts (`min`, `max`).
    pub lock_timeouts: (Duration, Duration),
    /// Timeouts.
    pub timeouts: Timeouts,
    /// Log format.
    pub log_format: LogFormat,
    /// Junk-file policy.
    pub junk_files: JunkPolicy,
    /// Names with characters Cloudreve refuses.
    pub reserved_names: ReservedNames,
    /// Address of the admin endpoints (health, readiness, metrics); `None` = off.
    pub admin_listen: Option<SocketAddr>,
    /// Failed-login throttle.
    pub login_throttle: LoginThrottle,
    /// Shared state in Redis; `None`: everything is kept per instance.
    pub redis: Option<RedisConfig>,
}

/// The TOML file layout. All keys are optional in the file itself.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    upstream: Option<String>,
    #[serde(default)]
    users: Vec<FileUser>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    account_refresh_secs: Option<u64>,
    credential_cache_ttl_secs: Option<u64>,
    delete_mode: Option<DeleteMode>,
    spool_dir: Option<PathBuf>,
    spool_max_bytes: Option<u64>,
    state_dir: Option<PathBuf>,
    lock_timeout_min_secs: Option<u64>,
    lock_timeout_max_secs: Option<u64>,
    header_timeout_secs: Option<u64>,
    upstream_timeout_secs: Option<u64>,
    upstream_connect_timeout_secs: Option<u64>,
    shutdown_grace_secs: Option<u64>,
    log_format: Option<LogFormat>,
    junk_files: Option<JunkPolicy>,
    reserved_names: Option<ReservedNames>,
    admin_listen: Option<String>,
    login_failure_window_secs: Option<u64>,
    login_max_failures_per_address: Option<u64>,
    login_max_failures_per_user_address: Option<u64>,
    login_max_failures_per_user: Option<u64>,
    redis: Option<String>,
    redis_prefix: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileUser {
    email: String,
    password: Option<String>,
    password_file: Option<PathBuf>,
    password_env: Option<String>,
    refresh_token: Option<String>,
    refresh_token_file: Option<PathBuf>,
    refresh_token_env: Option<String>,
}

/// Loads the configuration from the process environment, the file and `args`.
pub fn load(args: &ServeArgs) -> anyhow::Result<Config> {
    load_with_env(args, &|key: &str| std::env::var(key).ok())
}

/// Like [`load`], but reads environment variables through `env` (for tests and embedding).
pub fn load_with_env(
    args: &ServeArgs,
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<Config> {
    let var = |name: &str| -> Option<String> {
        env(&format!("{ENV_PREFIX}{name}")).filter(|v| !v.trim().is_empty())
    };
    let config_path = args
        .config
        .clone()
        .or_else(|| var("CONFIG").map(PathBuf::from));
    let file = match &config_path {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read configuration file {}", path.display()))?;
            let file = parse_file(&text)
                .with_context(|| format!("invalid configuration file {}", path.display()))?;
            if file
                .users
                .iter()
                .any(|u| u.password.is_some() || u.refresh_token.is_some())
            {
                // The file itself holds secrets.
                check_private(path)?;
            }
            file
        }
        None => FileConfig::default(),
    };
    let base_dir = config_path
        .as_deref()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default();

    // Scalars: flag > env > file > default.
    let listen_text = args
        .listen
        .clone()
        .or_else(|| var("LISTEN"))
        .or(file.listen)
        .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
    let listen: SocketAddr = listen_text.trim().parse().map_err(|_| {
        anyhow!("listen address `{listen_text}` is not an IP:port pair (e.g. 127.0.0.1:8080)")
    })?;

    let admin_listen = match args
        .admin_listen
        .clone()
        .or_else(|| var("ADMIN_LISTEN"))
        .or(file.admin_listen)
    {
        Some(text) => Some(text.trim().parse::<SocketAddr>().map_err(|_| {
            anyhow!("admin_listen address `{text}` is not an IP:port pair (e.g. 127.0.0.1:9090)")
        })?),
        None => None,
    };
    if admin_listen.is_some_and(|a| a == listen && a.port() != 0) {
        bail!("admin_listen must differ from listen ({listen})");
    }

    let upstream_text = args
        .upstream
        .clone()
        .or_else(|| var("UPSTREAM"))
        .or(file.upstream)
        .ok_or_else(|| {
            anyhow!("the upstream Cloudreve URL is required (`upstream` in the file, CLOUDREVE_DAV_UPSTREAM or --upstream)")
        })?;
    let upstream = validate_upstream(&upstream_text)?;

    let tls_cert = args
        .tls_cert
        .clone()
        .or_else(|| var("TLS_CERT").map(PathBuf::from))
        .or(file.tls_cert.map(|p| base_dir.join(p)));
    let tls_key = args
        .tls_key
        .clone()
        .or_else(|| var("TLS_KEY").map(PathBuf::from))
        .or(file.tls_key.map(|p| base_dir.join(p)));
    let tls = match (tls_cert, tls_key) {
        (Some(cert), Some(key)) => Some(TlsPaths { cert, key }),
        (None, None) => None,
        (Some(_), None) => bail!("a TLS certificate is configured but no TLS key (tls_key)"),
        (None, Some(_)) => bail!("a TLS key is configured but no TLS certificate (tls_cert)"),
    };

    let num = |flag: Option<u64>, name: &str, file: Option<u64>| -> anyhow::Result<Option<u64>> {
        if flag.is_some() {
            return Ok(flag);
        }
        if let Some(v) = var(name) {
            let n = v.trim().parse::<u64>().map_err(|_| {
                anyhow!("{ENV_PREFIX}{name} must be a non-negative integer, not `{v}`")
            })?;
            return Ok(Some(n));
        }
        Ok(file)
    };

    let account_refresh = num(
        args.account_refresh_secs,
        "ACCOUNT_REFRESH_SECS",
        file.account_refresh_secs,
    )?
    .unwrap_or(60);
    if !(1..=86_400).contains(&account_refresh) {
        bail!("account_refresh_secs must be between 1 and 86400, not {account_refresh}");
    }
    let cache_ttl = num(
        args.credential_cache_ttl_secs,
        "CREDENTIAL_CACHE_TTL_SECS",
        file.credential_cache_ttl_secs,
    )?
    .unwrap_or(300);
    if cache_ttl > 86_400 {
        bail!("credential_cache_ttl_secs must be at most 86400, not {cache_ttl}");
    }

    let delete_mode = match args.delete_mode.clone().or_else(|| var("DELETE_MODE")) {
        Some(text) => text.parse()?,
        None => file.delete_mode.unwrap_or_default(),
    };
    let junk_files = match args.junk_files.clone().or_else(|| var("JUNK_FILES")) {
        Some(text) => text.parse()?,
        None => file.junk_files.unwrap_or_default(),
    };
    let reserved_names = match args
        .reserved_names
        .clone()
        .or_else(|| var("RESERVED_NAMES"))
    {
        Some(text) => text.parse()?,
        None => file.reserved_names.unwrap_or_default(),
    };
    let log_format = match args.log_format.clone().or_else(|| var("LOG_FORMAT")) {
        Some(text) => text.parse()?,
        None => file.log_format.unwrap_or_default(),
    };

    let spool_dir = args
        .spool_dir
        .clone()
        .or_else(|| var("SPOOL_DIR").map(PathBuf::from))
        .or(file.spool_dir.map(|p| base_dir.join(p)))
        .unwrap_or_else(|| std::env::temp_dir().join("cloudreve-dav-spool"));
    let spool_max_bytes = num(
        args.spool_max_bytes,
        "SPOOL_MAX_BYTES",
        file.spool_max_bytes,
    )?
    .unwrap_or(4 * 1024 * 1024 * 1024);
    if spool_max_bytes < 1024 * 1024 {
        bail!("spool_max_bytes must be at least 1048576 (1 MiB), not {spool_max_bytes}");
    }

    let state_dir = args
        .state_dir
        .clone()
        .or_else(|| var("STATE_DIR").map(PathBuf::from))
        .or(file.state_dir.map(|p| base_dir.join(p)))
        .unwrap_or_else(|| default_state_dir(env));
    let lock_min = num(
        args.lock_timeout_min_secs,
        "LOCK_TIMEOUT_MIN_SECS",
        file.lock_timeout_min_secs,
    )?
    .unwrap_or(1);
    let lock_max = num(
        args.lock_timeout_max_secs,
        "LOCK_TIMEOUT_MAX_SECS",
        file.lock_timeout_max_secs,
    )?
    .unwrap_or(86_400);
    if lock_min == 0 || lock_min > lock_max || lock_max > 30 * 86_400 {
        bail!(
            "lock timeouts need 1 <= lock_timeout_min_secs ({lock_min}) <= lock_timeout_max_secs ({lock_max}) <= 2592000"
        );
    }

    let secs = |v: u64, name: &str, min: u64, max: u64| -> anyhow::Result<Duration> {
        if !(min..=max).contains(&v) {
            bail!("{name} must be between {min} and {max}, not {v}");
        }
        Ok(Duration::from_secs(v))
    };
    let timeouts = Timeouts {
        header_read: secs(
            num(
                args.header_timeout_secs,
                "HEADER_TIMEOUT_SECS",
                file.header_timeout_secs,
            )?
            .unwrap_or(30),
            "header_timeout_secs",
            1,
            3600,
        )?,
        upstream: secs(
            num(
                args.upstream_timeout_secs,
                "UPSTREAM_TIMEOUT_SECS",
                file.upstream_timeout_secs,
            )?
            .unwrap_or(60),
            "upstream_timeout_secs",
            1,
            86_400,
        )?,
        upstream_connect: secs(
            num(
                args.upstream_connect_timeout_secs,
                "UPSTREAM_CONNECT_TIMEOUT_SECS",
                file.upstream_connect_timeout_secs,
            )?
            .unwrap_or(10),
            "upstream_connect_timeout_secs",
            1,
            3600,
        )?,
        shutdown_grace: secs(
            num(
                args.shutdown_grace_secs,
                "SHUTDOWN_GRACE_SECS",
                file.shutdown_grace_secs,
            )?
            .unwrap_or(30),
            "shutdown_grace_secs",
            0,
            3600,
        )?,
    };

    let default_throttle = LoginThrottle::default();
    let count = |name: &str, file: Option<u64>, default: u32| -> anyhow::Result<u32> {
        let v = num(None, &name.to_ascii_uppercase(), file)?.unwrap_or(u64::from(default));
        if !(1..=1_000_000).contains(&v) {
            bail!("{name} must be between 1 and 1000000, not {v}");
        }
        Ok(v as u32)
    };
    let login_throttle = LoginThrottle {
        window: secs(
            num(
                None,
                "LOGIN_FAILURE_WINDOW_SECS",
                file.login_failure_window_secs,
            )?
            .unwrap_or(default_throttle.window.as_secs()),
            "login_failure_window_secs",
            1,
            86_400,
        )?,
        max_failures_per_address: count(
            "login_max_failures_per_address",
            file.login_max_failures_per_address,
            default_throttle.max_failures_per_address,
        )?,
        max_failures_per_user_address: count(
            "login_max_failures_per_user_address",
            file.login_max_failures_per_user_address,
            default_throttle.max_failures_per_user_address,
        )?,
        max_failures_per_user: count(
            "login_max_failures_per_user",
            file.login_max_failures_per_user,
            default_throttle.max_failures_per_user,
        )?,
    };

    // Users: the file's list, plus an optional single user from the environment
    // (which replaces a file entry with the same e-mail).
    let mut users = Vec::with_capacity(file.users.len() + 1);
    for (i, u) in file.users.into_iter().enumerate() {
        users.push(resolve_user(u, &base_dir, env).with_context(|| format!("users[{i}]"))?);
    }
    if let Some(email) = var("USER_EMAIL") {
        let env_user = FileUser {
            email,
            password: var("USER_PASSWORD"),
            password_file: var("USER_PASSWORD_FILE").map(PathBuf::from),
            refresh_token: var("USER_REFRESH_TOKEN"),
            refresh_token_file: var("USER_REFRESH_TOKEN_FILE").map(PathBuf::from),
            ..FileUser::default()
        };
        let user = resolve_user(env_user, Path::new(""), env)
            .context("user from CLOUDREVE_DAV_USER_EMAIL")?;
        users.retain(|u| !u.email.eq_ignore_ascii_case(&user.email));
        users.push(user);
    }
    if users.is_empty() {
        bail!(
            "no users configured: add [[users]] entries to the file or set CLOUDREVE_DAV_USER_EMAIL"
        );
    }
    for (i, a) in users.iter().enumerate() {
        if users[..i]
            .iter()
            .any(|b| b.email.to_lowercase() == a.email.to_lowercase())
        {
            bail!("user {} is configured twice", a.email);
        }
    }

    if let Some(url) = &args.redis
        && url_has_password(url)
    {
        bail!(
            "--redis must not carry a password (it would show in the process list); set {ENV_PREFIX}REDIS or `redis` in the configuration file"
        );
    }
    let redis = match args.redis.clone().or_else(|| var("REDIS")).or(file.redis) {
        Some(url) if !url.trim().is_empty() => {
            let url = url.trim().to_string();
            if !(url.starts_with("redis://") || url.starts_with("unix://")) {
                bail!(
                    "redis must be a redis:// or unix:// URL, not `{}`",
                    crate::redis_state::redacted(&url)
                );
            }
            let prefix = args
                .redis_prefix
                .clone()
                .or_else(|| var("REDIS_PREFIX"))
                .or(file.redis_prefix)
                .unwrap_or_else(|| crate::redis_state::DEFAULT_PREFIX.to_string());
            if prefix.is_empty() || prefix.len() > 64 || prefix.chars().any(char::is_whitespace) {
                bail!("redis_prefix must be 1 to 64 characters without spaces, not `{prefix}`");
            }
            Some(RedisConfig {
                url: Secret::new(url),
                prefix,
            })
        }
        _ => None,
    };

    Ok(Config {
        listen,
        upstream,
        users,
        tls,
        account_refresh: Duration::from_secs(account_refresh),
        credential_cache_ttl: Duration::from_secs(cache_ttl),
        delete_mode,
        spool: SpoolConfig {
            dir: spool_dir,
            max_bytes: spool_max_bytes,
        },
        state_dir,
        lock_timeouts: (Duration::from_secs(lock_min), Duration::from_secs(lock_max)),
        timeouts,
        log_format,
        junk_files,
        reserved_names,
        admin_listen,
        login_throttle,
        redis,
    })
}

/// True when `url` has a user-info part with a password (`…://user:pw@…`
/// or `…://:pw@…`).
fn url_has_password(url: &str) -> bool {
    url.split_once("://")
        .and_then(|(_, rest)| rest.split('/').next()?.rsplit_once('@'))
        .is_some_and(|(info, _)| info.contains(':'))
}

/// Refuses a secrets file that its group or others may read or write
/// (mode & 0o077 != 0): the secret may already have leaked, and the
/// operator should know.
fn check_private(path: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let meta = std::fs::metadata(path)
            .with_context(|| format!("cannot read the permissions of {}", path.display()))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            bail!(
                "{} holds secrets but is accessible to group or others (mode {mode:04o}); restrict it with `chmod 600 {}`",
                path.display(),
                path.display()
            );
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// `$XDG_STATE_HOME/cloudreve-dav`, else `$HOME/.local/state/cloudreve-dav`,
/// else `<temp dir>/cloudreve-dav-state`.
fn default_state_dir(env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    if let Some(x) = env("XDG_STATE_HOME").filter(|x| Path::new(x).is_absolute()) {
        return PathBuf::from(x).join("cloudreve-dav");
    }
    if let Some(h) = env("HOME").filter(|h| Path::new(h).is_absolute()) {
        return PathBuf::from(h).join(".local/state/cloudreve-dav");
    }
    std::env::temp_dir().join("cloudreve-dav-state")
}

fn parse_file(text: &str) -> anyhow::Result<FileConfig> {
    Ok(toml::from_str(text)?)
}

fn validate_upstream(text: &str) -> anyhow::Result<String> {
    let t = text.trim();
    let rest = t
        .strip_prefix("https://")
        .or_else(|| t.strip_prefix("http://"))
        .ok_or_else(|| anyhow!("upstream URL `{t}` must start with http:// or https://"))?;
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() {
        bail!("upstream URL `{t}` has no host");
    }
    if t.contains(['?', '#']) || t.chars().any(|c| c.is_whitespace() || c.is_control()) {
        bail!("upstream URL `{t}` must not contain a query, a fragment or whitespace");
    }
    if host.contains('@') {
        bail!("upstream URL `{t}` must not contain user information");
    }
    Ok(t.trim_end_matches('/').to_owned())
}

fn resolve_user(
    u: FileUser,
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<UserConfig> {
    let email = u.email.trim().to_owned();
    let valid_email = email
        .split_once('@')
        .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty() && !d.contains('@'))
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if !valid_email {
        bail!("`{email}` is not an e-mail address");
    }
    let from_env = |name: &str| -> anyhow::Result<String> {
        env(name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| anyhow!("environment variable {name} (named for {email}) is not set"))
    };
    let from_file = |p: &Path| -> anyhow::Result<String> {
        let path = base_dir.join(p);
        check_private(&path)?;
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read secret file {}", path.display()))?;
        let secret = text.trim_end_matches(['\r', '\n']).to_owned();
        if secret.is_empty() {
            bail!("secret file {} is empty", path.display());
        }
        Ok(secret)
    };
    let mut found: Vec<UserSecret> = Vec::new();
    if let Some(p) = u.password {
        found.push(UserSecret::Password(Secret(p)));
    }
    if let Some(p) = &u.password_file {
        found.push(UserSecret::Password(Secret(from_file(p)?)));
    }
    if let Some(n) = &u.password_env {
        found.push(UserSecret::Password(Secret(from_env(n)?)));
    }
    if let Some(t) = u.refresh_token {
        found.push(UserSecret::RefreshToken(Secret(t)));
    }
    if let Some(p) = &u.refresh_token_file {
        found.push(UserSecret::RefreshToken(Secret(from_file(p)?)));
    }
    if let Some(n) = &u.refresh_token_env {
        found.push(UserSecret::RefreshToken(Secret(from_env(n)?)));
    }
    if found.len() > 1 {
        bail!(
            "{email}: give exactly one of password, password_file, password_env, refresh_token, refresh_token_file, refresh_token_env"
        );
    }
    let secret = found.pop().ok_or_else(|| {
        anyhow!("{email}: no credential (password_file, password_env, refresh_token_file, ...)")
    })?;
    let empty = match &secret {
        UserSecret::Password(s) | UserSecret::RefreshToken(s) => s.0.is_empty(),
    };
    if empty {
        bail!("{email}: the credential is empty");
    }
    Ok(UserConfig { email, secret })
}

/// The front layer's settings that follow from `config`.
pub fn front_settings(config: &Config) -> FrontSettings {
    FrontSettings {
        header_read_timeout: config.timeouts.header_read,
        shutdown_grace: config.timeouts.shutdown_grace,
        login_throttle: config.login_throttle,
        ..FrontSettings::default()
    }
}

/// The authenticator's settings that follow from `config`.
pub fn auth_settings(config: &Config) -> AuthSettings {
    AuthSettings {
        refresh_interval: config.account_refresh,
        cache_ttl: config.credential_cache_ttl,
        fetch_timeout: config.timeouts.upstream,
        ..AuthSettings::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k: &str| map.get(k).cloned()
    }

    fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt as _;
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write test file");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        p
    }

    const BASE: &str = r#"
upstream = "https://cloud.example.com/"
listen = "127.0.0.1:9000"
account_refresh_secs = 10
delete_mode = "permanent"
[[users]]
email = "Alice@Example.com"
password = "file-secret"
"#;

    #[test]
    fn file_only_and_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg_path = write_file(dir.path(), "c.toml", BASE);
        let args = ServeArgs {
            config: Some(cfg_path),
            ..ServeArgs::default()
        };
        let c = load_with_env(&args, &env_of(&[])).expect("load");
        assert_eq!(c.listen, "127.0.0.1:9000".parse().expect("addr"));
        assert_eq!(c.upstream, "https://cloud.example.com");
        assert_eq!(c.account_refresh, Duration::from_secs(10));
        assert_eq!(c.credential_cache_ttl, Duration::from_secs(300));
        assert_eq!(c.delete_mode, DeleteMode::Permanent);
        assert_eq!(c.log_format, LogFormat::Human);
        assert_eq!(c.junk_files, JunkPolicy::Auto);
        assert_eq!(c.users.len(), 1);
        assert_eq!(
            c.users[0].secret,
            UserSecret::Password(Secret::new("file-secret"))
        );
        assert!(c.tls.is_none());
        assert!(!format!("{c:?}").contains("file-secret"));
    }

    #[test]
    fn precedence_file_env_flags() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg_path = write_file(dir.path(), "c.toml", BASE);
        let env = env_of(&[
            ("CLOUDREVE_DAV_CONFIG", cfg_path.to_str().expect("utf8")),
            ("CLOUDREVE_DAV_LISTEN", "127.0.0.1:9001"),
            ("CLOUDREVE_DAV_ACCOUNT_REFRESH_SECS", "20"),
            ("CLOUDREVE_DAV_LOG_FORMAT", "json"),
            ("CLOUDREVE_DAV_DELETE_MODE", "trash"),
        ]);
        // env beats file
        let c = load_with_env(&ServeArgs::default(), &env).expect("load");
        assert_eq!(c.listen.port(), 9001);
        assert_eq!(c.account_refresh, Duration::from_secs(20));
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.delete_mode, DeleteMode::Trash);
        // flags beat env
        let args = ServeArgs {
            listen: Some("127.0.0.1:9002".into()),
            account_refresh_secs: Some(30),
            log_format: Some("human".into()),
            upstream: Some("http://other:5212".into()),
            ..ServeArgs::default()
        };
        let c = load_with_env(&args, &env).expect("load");
        assert_eq!(c.listen.port(), 9002);
        assert_eq!(c.account_refresh, Duration::from_secs(30));
        assert_eq!(c.log_format, LogFormat::Human);
        assert_eq!(c.upstream, "http://other:5212");
    }

    #[test]
    fn junk_policy_from_file_env_and_flags() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Before `BASE`: it ends inside a `[[users]]` table.
        let text = format!("junk_files = \"hide\"\n{BASE}");
        let cfg_path = write_file(dir.path(), "c.toml", &text);
        let cfg = cfg_path.to_str().expect("utf8");
        let c = load_with_env(
            &ServeArgs::default(),
            &env_of(&[("CLOUDREVE_DAV_CONFIG", cfg)]),
        )
        .expect("load");
        assert_eq!(c.junk_files, JunkPolicy::Hide);
        let env = env_of(&[
            ("CLOUDREVE_DAV_CONFIG", cfg),
            ("CLOUDREVE_DAV_JUNK_FILES", "reject"),
        ]);
        assert_eq!(
            load_with_env(&ServeArgs::default(), &env)
                .expect("load")
                .junk_files,
            JunkPolicy::Reject
        );
        let args = ServeArgs {
            junk_files: Some("PARK".into()),
            ..ServeArgs::default()
        };
        assert_eq!(
            load_with_env(&args, &env).expect("load").junk_files,
            JunkPolicy::Park
        );
        let args = ServeArgs {
            junk_files: Some("shred".into()),
            ..ServeArgs::default()
        };
        let e = load_with_env(&args, &env).expect_err("bad policy");
        assert!(e.to_string().contains("junk_files"), "{e}");
        let c = load_with_env(
            &ServeArgs::default(),
            &env_of(&[("CLOUDREVE_DAV_CONFIG", cfg)]),
        );
        assert_eq!(c.expect("load").junk_files, JunkPolicy::Hide);
    }

    #[test]
    fn reserved_names_from_file_env_and_flags() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = format!("reserved_names = \"map\"\n{BASE}");
        let cfg_path = write_file(dir.path(), "c.toml", &text);
        let cfg = cfg_path.to_str().expect("utf8");
        let file_only = env_of(&[("CLOUDREVE_DAV_CONFIG", cfg)]);
        let c = load_with_env(&ServeArgs::default(), &file_only).expect("load");
        assert_eq!(c.reserved_names, ReservedNames::Map);
        let env = env_of(&[
            ("CLOUDREVE_DAV_CONFIG", cfg),
            ("CLOUDREVE_DAV_RESERVED_NAMES", "refuse"),
        ]);
        let c = load_with_env(&ServeArgs::default(), &env).expect("load");
        assert_eq!(c.reserved_names, ReservedNames::Refuse);
        let args = ServeArgs {
            reserved_names: Some("escape".into()),
            ..ServeArgs::default()
        };
        let e = load_with_env(&args, &env).expect_err("bad mode");
        assert!(e.to_string().contains("reserved_names"), "{e}");
    }

    #[test]
    fn secrets_from_file_and_env() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_file(dir.path(), "pw", "from-file\n");
        let cfg = r#"
upstream = "http://u"
[[users]]
email = "a@x"
password_file = "pw"
[[users]]
email = "b@x"
refresh_token_env = "B_TOKEN"
"#;
        let cfg_path = write_file(dir.path(), "c.toml", cfg);
        let args = ServeArgs {
            config: Some(cfg_path),
            ..ServeArgs::default()
        };
        let env = env_of(&[
            ("B_TOKEN", "tok"),
            ("CLOUDREVE_DAV_USER_EMAIL", "c@x"),
            ("CLOUDREVE_DAV_USER_PASSWORD", "envpw"),
        ]);
        let c = load_with_env(&args, &env).expect("load");
        assert_eq!(
            c.users[0].secret,
            UserSecret::Password(Secret::new("from-file"))
        );
        assert_eq!(
            c.users[1].secret,
            UserSecret::RefreshToken(Secret::new("tok"))
        );
        assert_eq!(c.users[2].email, "c@x");
    }

    fn load_text(text: &str) -> anyhow::Result<Config> {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg_path = write_file(dir.path(), "c.toml", text);
        let args = ServeArgs {
            config: Some(cfg_path),
            ..ServeArgs::default()
        };
        load_with_env(&args, &env_of(&[]))
    }

    fn err_of(text: &str) -> String {
        format!("{:#}", load_text(text).expect_err("must fail"))
    }

    #[test]
    fn validation_errors() {
        let user = "[[users]]\nemail = \"a@x\"\npassword = \"p\"\n";
        assert!(err_of(user).contains("upstream Cloudreve URL is required"));
        assert!(err_of(&format!("upstream = \"ftp://x\"\n{user}")).contains("http://"));
        assert!(err_of("upstream = \"http://x\"\n").contains("no users configured"));
        assert!(
            err_of(&format!(
                "upstream = \"http://x\"\nlisten = \"nope\"\n{user}"
            ))
            .contains("listen address")
        );
        assert!(
            err_of(&format!(
                "upstream = \"http://x\"\ndelete_mode = \"shred\"\n{user}"
            ))
            .contains("delete_mode")
        );
        assert!(
            err_of(&format!("upstream = \"http://x\"\nbogus = 1\n{user}"))
                .contains("unknown field")
        );
        assert!(
            err_of(&format!(
                "upstream = \"http://x\"\ntls_cert = \"c.pem\"\n{user}"
            ))
            .contains("no TLS key")
        );
        assert!(
            err_of(&format!(
                "upstream = \"http://x\"\naccount_refresh_secs = 0\n{user}"
            ))
            .contains("account_refresh_secs")
        );
        assert!(
            err_of("upstream = \"http://x\"\n[[users]]\nemail = \"a@x\"\n")
                .contains("no credential")
        );
        assert!(
            err_of(
                "upstream = \"http://x\"\n[[users]]\nemail = \"a@x\"\npassword = \"p\"\nrefresh_token = \"t\"\n"
            )
            .contains("exactly one")
        );
        assert!(
            err_of("upstream = \"http://x\"\n[[users]]\nemail = \"nomail\"\npassword = \"p\"\n")
                .contains("not an e-mail")
        );
        assert!(
            err_of(&format!(
                "upstream = \"http://x\"\n{user}[[users]]\nemail = \"A@X\"\npassword = \"q\"\n"
            ))
            .contains("configured twice")
        );
        assert!(
            err_of(
                "upstream = \"http://x\"\n[[users]]\nemail = \"a@x\"\npassword_env = \"MISSING\"\n"
            )
            .contains("MISSING")
        );
    }

    #[test]
    fn bad_env_number_is_reported() {
        let env = env_of(&[
            ("CLOUDREVE_DAV_UPSTREAM", "http://x"),
            ("CLOUDREVE_DAV_USER_EMAIL", "a@x"),
            ("CLOUDREVE_DAV_USER_PASSWORD", "p"),
            ("CLOUDREVE_DAV_CREDENTIAL_CACHE_TTL_SECS", "five"),
        ]);
        let e = load_with_env(&ServeArgs::default(), &env).expect_err("must fail");
        assert!(format!("{e:#}").contains("CLOUDREVE_DAV_CREDENTIAL_CACHE_TTL_SECS"));
    }

    #[test]
    fn state_dir_defaults_and_lock_timeout_range() {
        let xdg = |k: &str| match k {
            "XDG_STATE_HOME" => Some("/var/lib/st".to_string()),
            "HOME" => Some("/home/u".to_string()),
            _ => None,
        };
        assert_eq!(
            default_state_dir(&xdg),
            PathBuf::from("/var/lib/st/cloudreve-dav")
        );
        let home = |k: &str| (k == "HOME").then(|| "/home/u".to_string());
        assert_eq!(
            default_state_dir(&home),
            PathBuf::from("/home/u/.local/state/cloudreve-dav")
        );
        assert!(default_state_dir(&|_: &str| None).starts_with(std::env::temp_dir()));
        let env = |k: &str| match k {
            "CLOUDREVE_DAV_USER_EMAIL" => Some("a@b.c".to_string()),
            "CLOUDREVE_DAV_USER_PASSWORD" => Some("pw".to_string()),
            "CLOUDREVE_DAV_LOCK_TIMEOUT_MIN_SECS" => Some("600".to_string()),
            "CLOUDREVE_DAV_LOCK_TIMEOUT_MAX_SECS" => Some("60".to_string()),
            _ => None,
        };
        let args = ServeArgs {
            upstream: Some("http://x".into()),
            ..ServeArgs::default()
        };
        assert!(load_with_env(&args, &env).is_err(), "min > max refused");
        let args = ServeArgs {
            lock_timeout_max_secs: Some(7200),
            state_dir: Some(PathBuf::from("/srv/state")),
            ..args
        };
        let c = load_with_env(&args, &env).expect("config");
        assert_eq!(c.state_dir, PathBuf::from("/srv/state"));
        assert_eq!(
            c.lock_timeouts,
            (Duration::from_secs(600), Duration::from_secs(7200))
        );
    }

    #[test]
    fn loose_secret_files_are_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let pw = write_file(dir.path(), "pw", "s3cret\n");
        let cfg = write_file(
            dir.path(),
            "c.toml",
            "upstream = \"https://c.example\"\n[[users]]\nemail = \"a@x\"\npassword_file = \"pw\"\n",
        );
        let args = ServeArgs {
            config: Some(cfg.clone()),
            ..ServeArgs::default()
        };
        assert!(load_with_env(&args, &env_of(&[])).is_ok());
        for mode in [0o640, 0o604, 0o660, 0o644] {
            std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(mode)).expect("chmod");
            let e = format!(
                "{:#}",
                load_with_env(&args, &env_of(&[])).expect_err("loose")
            );
            assert!(
                e.contains("chmod 600") && e.contains(&format!("{mode:04o}")),
                "{e}"
            );
        }
        // The same for the env-named file and for a config file holding a secret.
        let env = env_of(&[
            ("CLOUDREVE_DAV_UPSTREAM", "https://c.example"),
            ("CLOUDREVE_DAV_USER_EMAIL", "b@x"),
            (
                "CLOUDREVE_DAV_USER_REFRESH_TOKEN_FILE",
                pw.to_str().expect("utf8"),
            ),
        ]);
        assert!(load_with_env(&ServeArgs::default(), &env).is_err());
        std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o400)).expect("chmod");
        assert!(load_with_env(&ServeArgs::default(), &env).is_ok());
        let inline = write_file(
            dir.path(),
            "inline.toml",
            "upstream = \"https://c.example\"\n[[users]]\nemail = \"a@x\"\npassword = \"p\"\n",
        );
        std::fs::set_permissions(&inline, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let args = ServeArgs {
            config: Some(inline),
            ..ServeArgs::default()
        };
        assert!(load_with_env(&args, &env_of(&[])).is_err());
    }

    #[test]
    fn login_throttle_limits() {
        let c = load_text(BASE).expect("base");
        assert_eq!(c.login_throttle, LoginThrottle::default());
        let c = load_text(&format!(
            "login_failure_window_secs = 30\nlogin_max_failures_per_user_address = 2\n{BASE}"
        ))
        .expect("file keys");
        assert_eq!(c.login_throttle.window, Duration::from_secs(30));
        assert_eq!(c.login_throttle.max_failures_per_user_address, 2);
        assert!(load_text(&format!("login_max_failures_per_address = 0\n{BASE}")).is_err());
    }

    #[test]
    fn redis_url_prefix_and_no_password_in_flags() {
        assert_eq!(load_text(BASE).expect("base").redis, None);
        let c = load_text(&format!("redis = \"redis://:pw@10.0.0.5:6379/1\"\n{BASE}"))
            .expect("file key");
        let r = c.redis.expect("redis");
        assert_eq!(r.url.expose(), "redis://:pw@10.0.0.5:6379/1");
        assert_eq!(r.prefix, crate::redis_state::DEFAULT_PREFIX);
        assert!(!format!("{r:?}").contains("pw@"), "URL redacted in Debug");
        let c = load_text(&format!(
            "redis = \"redis://127.0.0.1:6379\"\nredis_prefix = \"site-b:\"\n{BASE}"
        ))
        .expect("prefix");
        assert_eq!(c.redis.expect("redis").prefix, "site-b:");
        assert!(load_text(&format!("redis = \"http://x\"\n{BASE}")).is_err());
        assert!(
            load_text(&format!(
                "redis = \"redis://x\"\nredis_prefix = \"a b\"\n{BASE}"
            ))
            .is_err()
        );
        assert!(url_has_password("redis://user:pw@h:1/0"));
        assert!(url_has_password("redis://:pw@h"));
        assert!(!url_has_password("redis://h:6379/0"));
        assert!(!url_has_password("redis://user@h:6379"));
    }
}
