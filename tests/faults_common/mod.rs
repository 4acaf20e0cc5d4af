//! Harness of the fault tests: an upstream (the emulator, or a real
//! Cloudreve when `CLOUDREVE_BIN` is set, see `support::upstream`), a TCP
//! proxy in front of it (switched off to make the upstream unreachable:
//! connection refused), and the real gateway (`gateway::start_with`, full
//! config path) whose upstream is the proxy; or the gateway as a child
//! process. Test binaries that use it declare `mod support;` too.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cloudreve_dav::cloudreve::{Client, CrUri, DavAccountOptions, Session};
use cloudreve_dav::config::{self, ServeArgs};
use cloudreve_dav::emulator::Emulator;
use cloudreve_dav::gateway::{self, RunningGateway, Sessions};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::support::upstream::TestUpstream;

/// The Cloudreve user.
pub(crate) const EMAIL: &str = "faults@example.com";
/// Its sign-in password.
pub(crate) const LOGIN: &str = "faults-login-password";

pub(crate) use crate::support::wait::eventually;

/// A TCP forwarder that can be switched off (listener closed, open
/// connections cut) and on again on the same port.
pub(crate) struct Proxy {
    addr: SocketAddr,
    target: SocketAddr,
    state: Arc<Mutex<ProxyState>>,
}

#[derive(Default)]
struct ProxyState {
    acceptor: Option<JoinHandle<()>>,
    conns: Vec<JoinHandle<()>>,
}

impl Proxy {
    /// A proxy to `target`, up.
    pub(crate) async fn start(target: SocketAddr) -> Proxy {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let p = Proxy {
            addr: l.local_addr().expect("addr"),
            target,
            state: Arc::new(Mutex::new(ProxyState::default())),
        };
        p.run(l);
        p
    }

    /// `http://127.0.0.1:PORT`.
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn run(&self, l: TcpListener) {
        let state = self.state.clone();
        let target = self.target;
        let acceptor = tokio::spawn(async move {
            while let Ok((mut down, _)) = l.accept().await {
                let h = tokio::spawn(async move {
                    if let Ok(mut up) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                    }
                });
                let mut st = state.lock().expect("proxy state");
                st.conns.retain(|c| !c.is_finished());
                st.conns.push(h);
            }
        });
        self.state.lock().expect("proxy state").acceptor = Some(acceptor);
    }

    /// Closes the listener (new connections are refused) and cuts every
    /// forwarded connection.
    pub(crate) async fn down(&self) {
        let (acceptor, conns) = {
            let mut st = self.state.lock().expect("proxy state");
            (st.acceptor.take(), std::mem::take(&mut st.conns))
        };
        if let Some(a) = acceptor {
            a.abort();
            let _ = a.await;
        }
        for c in conns {
            c.abort();
            let _ = c.await;
        }
        assert!(
            TcpStream::connect(self.addr).await.is_err(),
            "proxy port still accepts"
        );
    }

    /// Listens again on the same port.
    pub(crate) async fn up(&self) {
        let l = TcpListener::bind(self.addr).await.expect("rebind proxy");
        self.run(l);
    }
}

/// Upstream + proxy + user + WebDAV account; the gateway is started on top.
pub(crate) struct Upstream {
    /// The upstream: the emulator, or a real Cloudreve (`CLOUDREVE_BIN`).
    pub upstream: TestUpstream,
    /// The proxy the gateway talks to.
    pub proxy: Proxy,
    /// A direct session (arranging and inspecting).
    pub session: Session,
    /// WebDAV account password.
    pub dav_password: String,
    /// Temporary directory (state, spool).
    pub dir: tempfile::TempDir,
}

impl Upstream {
    /// Starts the upstream with the user and a read-write WebDAV account on
    /// the drive's root.
    pub(crate) async fn start() -> Upstream {
        let dir = tempfile::tempdir().expect("tempdir");
        let upstream = TestUpstream::start(dir.path()).await;
        upstream.add_user(EMAIL, LOGIN).await;
        let session = upstream.sign_in(EMAIL).await;
        let acct = session
            .create_dav_account(&CrUri::my(), "faults", DavAccountOptions::default())
            .await
            .expect("dav account");
        let target = match upstream.emulator() {
            Some(emu) => emu.addr(),
            None => socket_addr_of(&upstream.url()),
        };
        let proxy = Proxy::start(target).await;
        Upstream {
            upstream,
            proxy,
            session,
            dav_password: acct.password,
            dir,
        }
    }

    /// True against a real Cloudreve (for `skip_on_real!`).
    pub(crate) fn is_real(&self) -> bool {
        self.upstream.is_real()
    }

    /// The emulator's controls (faults, chunk size, clock…); fails the test
    /// against a real server (start such a test with `skip_on_real!`).
    #[track_caller]
    pub(crate) fn emu(&self) -> &Emulator {
        self.upstream.emu()
    }

    /// The gateway state directory.
    pub(crate) fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Bytes of `path` upstream (`None`: no such file).
    pub(crate) async fn bytes(&self, path: &str) -> Option<Vec<u8>> {
        self.upstream.file_bytes(EMAIL, path).await
    }

    /// Open upload sessions and active locks upstream, as far as the
    /// upstream shows them (a real server lists neither: always `(0, 0)`).
    pub(crate) fn leftovers(&self) -> (usize, usize) {
        (
            self.upstream.upload_sessions(EMAIL),
            self.upstream.active_locks(EMAIL).len(),
        )
    }

    /// Starts the in-process gateway through the proxy; `tweak` adjusts
    /// the arguments (timeouts…).
    pub(crate) async fn gateway(&self, tweak: impl FnOnce(&mut ServeArgs)) -> Gw {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let mut args = ServeArgs {
            upstream: Some(self.proxy.url()),
            listen: Some(listener.local_addr().expect("addr").to_string()),
            spool_dir: Some(self.dir.path().join("spool")),
            state_dir: Some(self.state_dir()),
            ..ServeArgs::default()
        };
        tweak(&mut args);
        let config = config::load_with_env(&args, &|key: &str| match key {
            "CLOUDREVE_DAV_USER_EMAIL" => Some(EMAIL.to_string()),
            "CLOUDREVE_DAV_USER_PASSWORD" => Some(LOGIN.to_string()),
            _ => None,
        })
        .expect("config");
        std::fs::create_dir_all(&config.spool.dir).expect("spool");
        let session = Client::with_options(&config.upstream, gateway::client_options(&config))
            .expect("client")
            .sign_in(EMAIL, LOGIN)
            .await
            .expect("gateway sign in");
        let sessions = Sessions::new([(EMAIL.to_string(), session.clone())]);
        let running = gateway::start_with(&config, sessions, listener, std::future::pending())
            .await
            .expect("gateway");
        let gw = Gw {
            url: running.url().trim_end_matches('/').to_string(),
            running: Some(running),
            session,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("http"),
            password: self.dav_password.clone(),
        };
        // The account list is learnt in the background.
        assert!(
            eventually(async || gw
                .req("PROPFIND", "/")
                .header("depth", "0")
                .send()
                .await
                .is_ok_and(|r| r.status().as_u16() == 207))
            .await,
            "gateway serves"
        );
        gw
    }
}

/// The socket address of a base URL such as `http://127.0.0.1:PORT`.
fn socket_addr_of(url: &str) -> SocketAddr {
    let u = reqwest::Url::parse(url).unwrap_or_else(|e| panic!("upstream URL {url}: {e}"));
    let host = u.host_str().expect("upstream URL has a host");
    let port = u.port_or_known_default().expect("upstream URL has a port");
    std::net::ToSocketAddrs::to_socket_addrs(&(host, port))
        .ok()
        .and_then(|mut a| a.next())
        .unwrap_or_else(|| panic!("upstream URL {url}: cannot resolve {host}:{port}"))
}

/// A gateway running in this process.
pub(crate) struct Gw {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    running: Option<RunningGateway>,
    /// The gateway's own Cloudreve session (refresh counts).
    pub session: Session,
    /// HTTP client.
    pub http: reqwest::Client,
    password: String,
}

impl Gw {
    /// A request with the account's credentials.
    pub(crate) fn req(&self, method: &str, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).expect("method"),
                format!("{}{path}", self.url),
            )
            .basic_auth(EMAIL, Some(&self.password))
    }

    /// PUT; the status.
    pub(crate) async fn put(&self, path: &str, body: impl Into<reqwest::Body>) -> u16 {
        self.req("PUT", path)
            .body(body)
            .send()
            .await
            .expect("put")
            .status()
            .as_u16()
    }

    /// Stops the gateway.
    pub(crate) async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await.expect("shutdown");
        }
    }
}

/// A request body whose bytes the test feeds; dropping the sender ends it.
pub(crate) fn fed_body() -> (tokio::sync::mpsc::Sender<bytes::Bytes>, reqwest::Body) {
    let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(4);
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, std::io::Error>(b), rx))
    });
    (tx, reqwest::Body::wrap_stream(stream))
}

/// Deterministic test bytes.
pub(crate) fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| {
            (i as u32)
                .wrapping_mul(2_654_435_761)
                .rotate_left(u32::from(seed % 31)) as u8
        })
        .collect()
}

/// A gateway child process (`cloudreve-dav serve`).
pub(crate) struct GwProc {
    /// The child.
    pub child: tokio::process::Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

impl GwProc {
    /// Starts `cloudreve-dav serve` against `upstream` with `state`, and
    /// waits until it accepts connections.
    pub(crate) async fn spawn(
        upstream: &str,
        state: &Path,
        spool: &Path,
        extra_env: &[(&str, &str)],
    ) -> GwProc {
        let addr = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
            l.local_addr().expect("addr")
        };
        std::fs::create_dir_all(spool).expect("spool");
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_cloudreve-dav"));
        cmd.arg("serve")
            .env("CLOUDREVE_DAV_UPSTREAM", upstream)
            .env("CLOUDREVE_DAV_LISTEN", addr.to_string())
            .env("CLOUDREVE_DAV_STATE_DIR", state)
            .env("CLOUDREVE_DAV_SPOOL_DIR", spool)
            .env("CLOUDREVE_DAV_USER_EMAIL", EMAIL)
            .env("CLOUDREVE_DAV_USER_PASSWORD", LOGIN)
            .env("RUST_LOG", "warn")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true);
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("gateway starts");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                panic!("gateway exited early: {status}");
            }
            if TcpStream::connect(addr).await.is_ok() {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "gateway listens within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        GwProc {
            child,
            url: format!("http://{addr}"),
        }
    }

    /// Sends `signal` (`KILL`, `TERM`) with kill(1).
    pub(crate) fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("running").to_string();
        let ok = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .expect("kill runs")
            .success();
        assert!(ok, "kill -{signal} {pid}");
    }
}
