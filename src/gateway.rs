//! Assembles a running gateway from a [`Config`]: one signed-in Cloudreve
//! session per configured user, the WebDAV-account directory read through
//! the client, the WebDAV service ([`crate::dav`]) and the HTTP front
//! ([`crate::front`]).
//!
//! [`start`] is used by `serve`, by `demo` and by the end-to-end tests;
//! [`run`] is `cloudreve-dav serve`: it binds, serves, reloads its TLS
//! certificate on SIGHUP and stops on SIGINT/SIGTERM.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::cloudreve::{CallObserver, Client, ClientOptions, Error as CrError, Session, version};
use crate::config::{Config, UserSecret};
use crate::dav::{DavGateway, DavSettings, SessionLookup};
use crate::front::{self, AccountSource, Authenticator, Front, RawAccount, SourceError};

/// How long shutdown waits for aborted uploads to cancel their sessions
/// before cancelling the rest itself.
const SETTLE_WAIT: Duration = Duration::from_secs(5);

/// How many times a user's sign-in is tried at start-up before giving up.
const SIGN_IN_ATTEMPTS: u32 = 5;

/// The signed-in Cloudreve sessions, keyed by lower-cased e-mail.
#[derive(Clone, Default)]
pub struct Sessions {
    by_email: Arc<HashMap<String, Session>>,
}

impl Sessions {
    /// Wraps already signed-in sessions (keys are lower-cased here).
    pub fn new(sessions: impl IntoIterator<Item = (String, Session)>) -> Self {
        let by_email = sessions
            .into_iter()
            .map(|(email, s)| (email.to_lowercase(), s))
            .collect();
        Self {
            by_email: Arc::new(by_email),
        }
    }

    /// The session of `email` (case-insensitive).
    pub fn get(&self, email: &str) -> Option<Session> {
        self.by_email.get(&email.to_lowercase()).cloned()
    }

    /// The configured e-mails.
    pub fn emails(&self) -> Vec<String> {
        self.by_email.keys().cloned().collect()
    }

    /// A lookup closure for [`DavGateway`].
    pub fn lookup(&self) -> SessionLookup {
        let sessions = self.clone();
        Arc::new(move |email: &str| sessions.get(email))
    }
}

/// Reads a user's WebDAV accounts from Cloudreve (`GET /devices/dav`, all
/// pages) through that user's session.
pub struct ClientAccountSource {
    sessions: Sessions,
}

impl ClientAccountSource {
    /// A source over `sessions`.
    pub fn new(sessions: Sessions) -> Self {
        Self { sessions }
    }
}

#[async_trait]
impl AccountSource for ClientAccountSource {
    async fn fetch_accounts(&self, email: &str) -> Result<Vec<RawAccount>, SourceError> {
        let session = self
            .sessions
            .get(email)
            .ok_or_else(|| SourceError::UnknownUser(email.to_string()))?;
        let accounts = session
            .list_dav_accounts()
            .await
            .map_err(|e| source_error(email, e))?;
        Ok(accounts
            .into_iter()
            .map(|a| {
                let flags = a.flags();
                RawAccount {
                    id: a.id,
                    name: a.name,
                    uri: a.uri,
                    password: a.password,
                    readonly: flags.readonly,
                    proxy: flags.proxy,
                    disable_sys_files: flags.disable_sys_files,
                }
            })
            .collect())
    }
}

fn source_error(email: &str, e: CrError) -> SourceError {
    if e.is_login_required() || matches!(e, CrError::SignInRequired) {
        SourceError::Unauthorized(format!("{email}: {e}"))
    } else if e.is_permission_denied() {
        SourceError::Unauthorized(format!("{email}: WebDAV not allowed for this user: {e}"))
    } else {
        SourceError::Unavailable(format!("{email}: {e}"))
    }
}

/// Counts the client's calls and error codes in the gateway's metrics.
#[derive(Debug)]
struct UpstreamMetrics;

impl CallObserver for UpstreamMetrics {
    fn call(&self, path: &str, status: Option<u16>) {
        crate::metrics::global().upstream_call(path, status);
    }
    fn api_error(&self, operation: &str, code: i64) {
        crate::metrics::global().upstream_error(operation, code);
    }
}

/// The client options the gateway uses towards `config.upstream`.
pub fn client_options(config: &Config) -> ClientOptions {
    ClientOptions {
        connect_timeout: config.timeouts.upstream_connect,
        read_timeout: Some(config.timeouts.upstream),
        observer: Some(Arc::new(UpstreamMetrics)),
        ..ClientOptions::default()
    }
}

/// Signs in every configured user, retrying transient failures a few times.
/// Wrong credentials fail at once with a clear message.
pub async fn sign_in_users(config: &Config) -> anyhow::Result<Sessions> {
    let client = Client::with_options(&config.upstream, client_options(config))
        .with_context(|| format!("bad upstream URL {:?}", config.upstream))?;
    check_upstream_version(&client, &config.upstream).await?;
    let mut sessions = Vec::new();
    for user in &config.users {
        let session = retry_transient(&format!("sign-in of {}", user.email), || async {
            match &user.secret {
                UserSecret::Password(p) => client.sign_in(&user.email, p.expose()).await,
                UserSecret::RefreshToken(t) => client.session_from_refresh_token(t.expose()).await,
            }
        })
        .await
        .map_err(|e| {
            anyhow::anyhow!("cannot sign in {} at {}: {e}", user.email, config.upstream)
        })?;
        tracing::info!(user = %user.email, "signed in to Cloudreve");
        sessions.push((user.email.clone(), session));
    }
    Ok(Sessions::new(sessions))
}

/// Refuses an upstream older than the oldest supported Cloudreve (v3, or
/// anything that is not Cloudreve) before any user signs in, so the
/// operator gets one clear message instead of odd failures later; warns
/// when it is older than the tested version. Transient failures are
/// retried like sign-ins.
async fn check_upstream_version(client: &Client, upstream: &str) -> anyhow::Result<()> {
    let answered = retry_transient("upstream ping", || client.ping())
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "{upstream} does not answer as a Cloudreve v4 server (GET /api/v4/site/ping): {e}"
            )
        })?;
    match version::classify(&answered) {
        version::Support::Tested => {
            tracing::info!(version = %answered, "upstream Cloudreve version");
        }
        version::Support::Older => tracing::warn!(
            version = %answered,
            tested = version::TESTED,
            "upstream Cloudreve is older than the version this gateway is tested with"
        ),
        version::Support::Unsupported(why) => {
            return Err(anyhow::anyhow!("{upstream}: {why}"));
        }
    }
    Ok(())
}

/// Runs `op`, retrying transient failures (unreachable upstream, 5xx) up
/// to [`SIGN_IN_ATTEMPTS`] times with a growing pause; any other failure is
/// returned at once.
async fn retry_transient<T, F, Fut>(what: &str, mut op: F) -> Result<T, CrError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, CrError>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        match op().await {
            Err(e) if attempt < SIGN_IN_ATTEMPTS && is_transient(&e) => {
                tracing::warn!(error = %e, attempt, "{what} failed; retrying");
                tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
            }
            result => return result,
        }
    }
}

fn is_transient(e: &CrError) -> bool {
    matches!(
        e,
        CrError::Transport(_) | CrError::UnexpectedStatus { .. } | CrError::Io(_)
    )
}

/// The WebDAV-layer settings that follow from `config`.
pub fn dav_settings(config: &Config) -> DavSettings {
    DavSettings {
        delete_mode: config.delete_mode,
        spool_dir: config.spool.dir.clone(),
        spool_max: config.spool.max_bytes,
        state_dir: Some(config.state_dir.clone()),
        junk: config.junk_files,
        reserved_names: config.reserved_names,
        lock_limits: crate::dav::locks::LockLimits {
            min: config.lock_timeouts.0,
            max: config.lock_timeouts.1,
            default: crate::dav::locks::DEFAULT_TIMEOUT
                .clamp(config.lock_timeouts.0, config.lock_timeouts.1),
        },
        ..DavSettings::default()
    }
}

/// A gateway serving in the background.
pub struct RunningGateway {
    addr: SocketAddr,
    tls: bool,
    stop: Option<oneshot::Sender<()>>,
    server: JoinHandle<std::io::Result<()>>,
    refresher: JoinHandle<()>,
    shared_listener: Option<JoinHandle<()>>,
    front: Arc<Front>,
    admin: Option<(SocketAddr, JoinHandle<()>)>,
    tls_reloader: Option<Arc<front::TlsReloader>>,
}

impl RunningGateway {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its base URL, e.g. `http://127.0.0.1:8080/`.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}/", self.addr)
    }

    /// The admin endpoints' base URL (`http://ADDR/`), when `admin_listen` is set.
    pub fn admin_url(&self) -> Option<String> {
        self.admin.as_ref().map(|(a, _)| format!("http://{a}/"))
    }

    /// The reloadable TLS certificate, when serving TLS.
    pub fn tls_reloader(&self) -> Option<Arc<front::TlsReloader>> {
        self.tls_reloader.clone()
    }

    /// The front layer (for inspection in tests).
    pub fn front(&self) -> &Arc<Front> {
        &self.front
    }

    /// Stops accepting, lets in-flight requests finish within the configured
    /// grace period, and waits for the server to end.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.refresher.abort();
        if let Some(l) = self.shared_listener.take() {
            l.abort();
        }
        let result = (&mut self.server).await;
        if let Some((_, admin)) = self.admin.take() {
            admin.abort();
        }
        match result {
            Ok(r) => r,
            Err(e) => Err(std::io::Error::other(e)),
        }
    }

    /// Waits until the server ends by itself (e.g. after a signal).
    pub async fn wait(mut self) -> std::io::Result<()> {
        // The account refresh (and the shared-account listener) run for as
        // long as the server does.
        let result = (&mut self.server).await;
        self.refresher.abort();
        if let Some(l) = self.shared_listener.take() {
            l.abort();
        }
        if let Some((_, admin)) = self.admin.take() {
            admin.abort();
        }
        match result {
            Ok(r) => r,
            Err(e) => Err(std::io::Error::other(e)),
        }
    }
}

/// Starts a gateway on `listener` with already signed-in `sessions`. It
/// stops on [`RunningGateway::shutdown`] or when `signal` resolves.
pub async fn start_with(
    config: &Config,
    sessions: Sessions,
    listener: TcpListener,
    signal: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<RunningGateway> {
    let addr = listener.local_addr()?;
    std::fs::create_dir_all(&config.spool.dir).with_context(|| {
        format!(
            "cannot create spool directory {}",
            config.spool.dir.display()
        )
    })?;
    let shared = match &config.redis {
        Some(r) => Some(crate::redis_state::RedisState::connect(r.url.expose(), &r.prefix).await?),
        None => None,
    };
    let source = Arc::new(ClientAccountSource::new(sessions.clone()));
    let mut auth = Authenticator::new(
        source,
        config.users.iter().map(|u| u.email.clone()),
        crate::config::auth_settings(config),
    );
    if let Some(state) = &shared {
        auth = auth.with_shared(state.clone());
    }
    let auth = Arc::new(auth);
    // Listening before the first fetch: no notice of another instance is
    // missed (and the stored lists are adopted first).
    let listener_task = auth.spawn_shared_listener();
    // Serve only once the accounts are known: a client arriving right after
    // start-up would otherwise get 401 for a valid password.
    auth.refresh_all().await;
    let refresher = auth.spawn_refresh_loop();
    let mut dav_cfg = dav_settings(config);
    dav_cfg.shared_locks = shared.clone().map(crate::dav::locks::RedisLocks::new);
    let dav = Arc::new(DavGateway::try_new(sessions.lookup(), dav_cfg)?);
    // Upload sessions a crash of the previous run left open: cancel them
    // before serving (they hold upload locks on the users' files).
    let journal = dav.upload_journal().cloned();
    if let Some(j) = &journal {
        j.recover(&sessions.lookup()).await;
    }
    let admin = match config.admin_listen {
        Some(addr) => {
            let locks = dav.locks().clone();
            let client = Client::with_options(&config.upstream, client_options(config))?;
            let count: crate::admin::LockCount = Arc::new(move || {
                let locks = locks.clone();
                Box::pin(async move {
                    locks
                        .live_count()
                        .await
                        .inspect_err(|e| tracing::warn!(error = %e, "cannot count locks"))
                        .ok()
                })
            });
            Some(crate::admin::start(addr, client, count).await?)
        }
        None => None,
    };
    let mut front_cfg = crate::config::front_settings(config);
    front_cfg.shared = shared;
    let front = Arc::new(Front::new(front_cfg, auth, dav));
    let tls_reloader = config
        .tls
        .as_ref()
        .map(front::TlsReloader::load)
        .transpose()?;
    let tls = tls_reloader.as_ref().map(|t| t.acceptor()).transpose()?;
    let has_tls = tls.is_some();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let shutdown = async move {
        tokio::select! {
            _ = stop_rx => {}
            _ = signal => {}
        }
    };
    let serving = front::serve(listener, tls, front.clone(), shutdown);
    let lookup = sessions.lookup();
    let server = tokio::spawn(async move {
        let r = serving.await;
        // Requests cut at the end of the grace period cancel their upload
        // sessions themselves; cancel whatever is still open after a while.
        if let Some(j) = journal {
            j.settle(&lookup, SETTLE_WAIT).await;
        }
        r
    });
    Ok(RunningGateway {
        addr,
        tls: has_tls,
        stop: Some(stop_tx),
        server,
        refresher,
        shared_listener: listener_task,
        front,
        admin,
        tls_reloader,
    })
}

/// Signs in the configured users and starts a gateway on `listener`.
pub async fn start(config: &Config, listener: TcpListener) -> anyhow::Result<RunningGateway> {
    let sessions = sign_in_users(config).await?;
    start_with(config, sessions, listener, std::future::pending()).await
}

/// `cloudreve-dav serve`: binds `config.listen`, serves, and stops
/// gracefully on SIGINT/SIGTERM.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let sessions = sign_in_users(&config).await?;
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let gateway = start_with(&config, sessions, listener, front::shutdown_signal()).await?;
    let hup = front::spawn_sighup_reload(gateway.tls_reloader());
    tracing::info!(url = %gateway.url(), upstream = %config.upstream, admin = gateway.admin_url().as_deref().unwrap_or("off"), "serving WebDAV");
    let result = gateway.wait().await;
    hup.abort();
    result?;
    tracing::info!("stopped");
    Ok(())
}
