//! The HTTP/1.1 server (optionally behind TLS) with graceful shutdown.

use std::{
    convert::Infallible,
    future::Future,
    io,
    sync::{Arc, RwLock},
    time::Duration,
};

use anyhow::{Context, anyhow};
use http_body_util::BodyExt as _;
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::{GracefulShutdown, Watcher},
};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpListener,
};
use tokio_rustls::{
    TlsAcceptor, rustls,
    rustls::server::{ClientHello, ResolvesServerCert},
    rustls::sign::CertifiedKey,
};

use super::{Front, fragment_filter::FragmentFilter};

/// Upper bound of hyper's per-connection read buffer (also bounds the request head).
const MAX_BUF_SIZE: usize = 256 * 1024;

/// Reads a certificate chain and its private key from PEM files and checks
/// that they fit together.
fn read_certified_key(
    paths: &TlsPaths,
    provider: &rustls::crypto::CryptoProvider,
) -> anyhow::Result<CertifiedKey> {
    let cert_pem = std::fs::read(&paths.cert)
        .with_context(|| format!("cannot read TLS certificate {}", paths.cert.display()))?;
    let key_pem = std::fs::read(&paths.key)
        .with_context(|| format!("cannot read TLS key {}", paths.key.display()))?;
    let certs = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("invalid PEM in {}", paths.cert.display()))?;
    if certs.is_empty() {
        return Err(anyhow!("no certificate found in {}", paths.cert.display()));
    }
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .with_context(|| format!("invalid PEM in {}", paths.key.display()))?
        .ok_or_else(|| anyhow!("no private key found in {}", paths.key.display()))?;
    CertifiedKey::from_der(certs, key, provider)
        .context("TLS certificate and key do not fit together")
}

/// The server certificate, replaceable while serving: every new TLS
/// handshake uses the certificate loaded last. [`TlsReloader::reload`]
/// re-reads the files and keeps the current certificate when they are
/// unreadable or invalid.
pub struct TlsReloader {
    paths: TlsPaths,
    provider: Arc<rustls::crypto::CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
}

impl std::fmt::Debug for TlsReloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsReloader")
            .field("cert", &self.paths.cert)
            .field("key", &self.paths.key)
            .finish_non_exhaustive()
    }
}

impl ResolvesServerCert for TlsReloader {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|c| c.clone())
    }
}

impl TlsReloader {
    /// Loads the certificate and key once (errors are fatal here).
    pub fn load(paths: &TlsPaths) -> anyhow::Result<Arc<Self>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = read_certified_key(paths, &provider)?;
        Ok(Arc::new(Self {
            paths: paths.clone(),
            provider,
            current: RwLock::new(Arc::new(key)),
        }))
    }

    /// Re-reads the files; on success new handshakes use the new
    /// certificate, on failure the current one stays. Logs either way.
    pub fn reload(&self) -> anyhow::Result<()> {
        match read_certified_key(&self.paths, &self.provider) {
            Ok(key) => {
                if let Ok(mut c) = self.current.write() {
                    *c = Arc::new(key);
                }
                tracing::info!(cert = %self.paths.cert.display(), "TLS certificate reloaded");
                Ok(())
            }
            Err(e) => {
                tracing::error!(cert = %self.paths.cert.display(), error = %format!("{e:#}"), "TLS reload failed; keeping the current certificate");
                Err(e)
            }
        }
    }

    /// A TLS acceptor (TLS 1.2 and 1.3, ALPN `http/1.1`) resolving through this reloader.
    pub fn acceptor(self: &Arc<Self>) -> anyhow::Result<TlsAcceptor> {
        let mut config = rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}

/// Builds a TLS acceptor from PEM files (ring provider, TLS 1.2 and 1.3,
/// ALPN `http/1.1`), without reloading.
pub fn load_tls(paths: &TlsPaths) -> anyhow::Result<TlsAcceptor> {
    TlsReloader::load(paths)?.acceptor()
}

/// Calls [`TlsReloader::reload`] on every SIGHUP (Unix); without TLS a
/// SIGHUP is logged and ignored (instead of ending the process). The
/// handler is in place when this returns.
pub fn spawn_sighup_reload(tls: Option<Arc<TlsReloader>>) -> tokio::task::JoinHandle<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let hup = signal(SignalKind::hangup());
        tokio::spawn(async move {
            let Ok(mut hup) = hup else {
                tracing::warn!("cannot listen for SIGHUP; TLS reload disabled");
                return;
            };
            while hup.recv().await.is_some() {
                match &tls {
                    Some(t) => {
                        tracing::info!("SIGHUP: reloading the TLS certificate");
                        let _ = t.reload();
                    }
                    None => tracing::info!("SIGHUP: no TLS configured, nothing to reload"),
                }
            }
        })
    }
    #[cfg(not(unix))]
    {
        let _ = tls;
        tokio::spawn(async {})
    }
}

/// Resolves on SIGINT (Ctrl-C) or, on Unix, SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            futures::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => futures::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = futures::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal received");
}

/// Serves `front` on `listener` until `shutdown` resolves; then stops
/// accepting, lets in-flight requests finish (idle keep-alive connections
/// are closed) for up to `front.settings().shutdown_grace`, cuts the
/// connections still open (dropping their requests, which cancels their
/// uploads), and returns.
///
/// With `tls`, every connection is a TLS connection.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    front: Arc<Front>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let graceful = GracefulShutdown::new();
    let mut connections = tokio::task::JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, tls = tls.is_some(), "listening");
    }
    loop {
        let (stream, peer) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(x) => x,
                Err(e) => {
                    // Typically EMFILE; back off a little instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // Reap finished connections so the set stays small.
        while connections.try_join_next().is_some() {}
        let _ = stream.set_nodelay(true);
        let front = front.clone();
        let watcher = graceful.watcher();
        let tls = tls.clone();
        connections.spawn(async move {
            match tls {
                None => serve_connection(stream, front, watcher, peer).await,
                Some(acceptor) => {
                    let limit = front.settings().tls_handshake_timeout;
                    match tokio::time::timeout(limit, acceptor.accept(stream)).await {
                        Ok(Ok(s)) => serve_connection(s, front, watcher, peer).await,
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
        });
    }
    drop(listener);
    let grace = front.settings().shutdown_grace;
    tracing::info!(
        connections = graceful.count(),
        "stopped accepting; draining in-flight requests"
    );
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(grace) => {
            tracing::warn!(connections = connections.len(), "shutdown grace period elapsed; cutting the remaining connections");
        }
    }
    connections.abort_all();
    while connections.join_next().await.is_some() {}
    Ok(())
}

async fn serve_connection<I>(io: I, front: Arc<Front>, watcher: Watcher, peer: std::net::SocketAddr)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let settings = front.settings().clone();
    let service = service_fn(move |req: hyper::Request<Incoming>| {
        let front = front.clone();
        async move {
            let mut req = req.map(|body| body.map_err(io::Error::other).boxed_unsync());
            req.extensions_mut()
                .insert(super::throttle::ClientAddr(peer));
            Ok::<_, Infallible>(front.handle(req).await)
        }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout)
        .max_buf_size(MAX_BUF_SIZE);
    // Requests whose target carries a `#` are refused with 400 (see `wire`).
    let io = FragmentFilter::new(io, peer);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// TLS certificate and key paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsPaths {
    /// PEM certificate chain.
    pub cert: std::path::PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: std::path::PathBuf,
}
