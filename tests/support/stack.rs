//! The whole gateway as it is deployed — configuration loaded the way
//! `serve` loads it, wired by `gateway::start_with` — in front of the
//! test's upstream (emulator or real Cloudreve), with one user whose WebDAV
//! accounts are real Cloudreve accounts created through the API.

use cloudreve_dav::cloudreve::{Client, CrUri, CreateKind, DavAccountOptions, Session};
use cloudreve_dav::config::{self, ServeArgs};
use cloudreve_dav::gateway::{self, RunningGateway};
use tokio::net::TcpListener;

use super::upstream::TestUpstream;

/// The stack's user.
pub(crate) const EMAIL: &str = "e2e@example.com";
/// The user's Cloudreve sign-in password.
pub(crate) const LOGIN: &str = "e2e-login-password";

/// Upstream + gateway (production wiring) + a session of the user.
pub(crate) struct Stack {
    /// The upstream.
    pub up: TestUpstream,
    /// The running gateway.
    pub gateway: RunningGateway,
    /// A session of [`EMAIL`] (arranging and inspecting upstream).
    pub session: Session,
    _dir: tempfile::TempDir,
}

impl Stack {
    /// Starts the upstream, adds the user and starts the gateway.
    pub(crate) async fn start() -> Stack {
        let dir = tempfile::tempdir().expect("tempdir");
        let up = TestUpstream::start(dir.path()).await;
        up.add_user(EMAIL, LOGIN).await;
        let session = Client::new(&up.url())
            .expect("client")
            .sign_in(EMAIL, LOGIN)
            .await
            .expect("sign in");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let args = ServeArgs {
            upstream: Some(up.url()),
            listen: Some(listener.local_addr().expect("addr").to_string()),
            spool_dir: Some(dir.path().join("spool")),
            state_dir: Some(dir.path().join("state")),
            ..ServeArgs::default()
        };
        let config = config::load_with_env(&args, &|key: &str| match key {
            "CLOUDREVE_DAV_USER_EMAIL" => Some(EMAIL.to_string()),
            "CLOUDREVE_DAV_USER_PASSWORD" => Some(LOGIN.to_string()),
            _ => None,
        })
        .expect("config");
        std::fs::create_dir_all(&config.spool.dir).expect("spool dir");
        // The gateway signs in on its own, as in production (its own client
        // id and metrics); `session` is the test's, a separate client.
        let sessions = gateway::sign_in_users(&config).await.expect("sign in");
        let gateway = gateway::start_with(&config, sessions, listener, std::future::pending())
            .await
            .expect("gateway starts");
        Stack {
            up,
            gateway,
            session,
            _dir: dir,
        }
    }

    /// The gateway's WebDAV URL with a trailing slash.
    pub(crate) fn webdav_url(&self) -> String {
        format!("{}/", self.gateway.url().trim_end_matches('/'))
    }

    /// Creates a WebDAV account rooted at `root` (created upstream when
    /// missing) through Cloudreve's API; returns its id and the password
    /// Cloudreve generated for it.
    pub(crate) async fn account(&self, root: &str, readonly: bool) -> (String, String) {
        let uri = CrUri::my_path(root).expect("root uri");
        if !uri.is_root() {
            self.session
                .create(&uri, CreateKind::Folder, false, None)
                .await
                .expect("create account root");
        }
        let a = self
            .session
            .create_dav_account(
                &uri,
                &format!("acct-{}-{readonly}", uuid::Uuid::new_v4().simple()),
                DavAccountOptions {
                    readonly,
                    ..DavAccountOptions::default()
                },
            )
            .await
            .expect("create WebDAV account");
        (a.id, a.password)
    }

    /// Stops the gateway and the upstream.
    pub(crate) async fn stop(self) {
        self.gateway.shutdown().await.expect("gateway stops");
        self.up.shutdown().await;
    }
}
