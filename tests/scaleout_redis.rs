//! Scale-out: two gateway instances in front of one Cloudreve, sharing a
//! real `redis-server` (installed by scripts/install-test-tools.sh) that
//! this harness starts on a free port and stops at the end. As clients
//! behind a load balancer see it: a lock taken through one instance holds
//! on the other, racing LOCKs have one winner, an account deleted upstream
//! stops on both, failed logins add up, and with Redis gone lock requests
//! fail with 503 while reads go on.

use crate::support::upstream::TestUpstream;

use std::net::IpAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use cloudreve_dav::cloudreve::{Client, CrUri, DavAccountOptions, Session};
use cloudreve_dav::config::{self, ServeArgs};
use cloudreve_dav::gateway::{self, RunningGateway, Sessions};
use reqwest::{Method, StatusCode};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

const EMAIL: &str = "scale@example.com";
const LOGIN: &str = "scale-login-password";
const DEADLINE: Duration = Duration::from_secs(20);

/// A `redis-server` of this test, killed on drop.
struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    async fn start(dir: &Path) -> RedisServer {
        if Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_err()
        {
            panic!("redis-server is not installed: run scripts/install-test-tools.sh");
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let rdir = dir.join("redis");
        std::fs::create_dir_all(&rdir).expect("redis dir");
        let log = std::fs::File::create(rdir.join("redis.log")).expect("log");
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&rdir)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start redis-server");
        let mut me = RedisServer { child, port };
        // Ready when it answers PING (or fail if it exited).
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            if me.ping().await {
                return me;
            }
            if let Ok(Some(st)) = me.child.try_wait() {
                panic!(
                    "redis-server exited ({st}): {}",
                    std::fs::read_to_string(rdir.join("redis.log")).unwrap_or_default()
                );
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "redis-server did not answer"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn ping(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)).await else {
            return false;
        };
        if s.write_all(b"PING\r\n").await.is_err() {
            return false;
        }
        let mut buf = [0u8; 7];
        s.read_exact(&mut buf).await.is_ok() && &buf == b"+PONG\r\n"
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One emulator, one Redis, two gateway instances.
struct Farm {
    redis: RedisServer,
    emulator: TestUpstream,
    a: RunningGateway,
    b: RunningGateway,
    session: Session,
    account_id: String,
    password: String,
    _dir: tempfile::TempDir,
}

async fn instance(
    dir: &Path,
    name: &str,
    emu: &TestUpstream,
    redis: &str,
    extra_env: &[(&str, &str)],
) -> RunningGateway {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let args = ServeArgs {
        upstream: Some(emu.url()),
        listen: Some(listener.local_addr().expect("addr").to_string()),
        spool_dir: Some(dir.join(name).join("spool")),
        state_dir: Some(dir.join(name).join("state")),
        redis: Some(redis.to_string()),
        redis_prefix: Some("test-farm:".into()),
        // No periodic refresh during a test: refreshes happen on demand.
        account_refresh_secs: Some(3600),
        ..ServeArgs::default()
    };
    let env: Vec<(String, String)> = extra_env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let config = config::load_with_env(&args, &|key: &str| match key {
        "CLOUDREVE_DAV_USER_EMAIL" => Some(EMAIL.to_string()),
        "CLOUDREVE_DAV_USER_PASSWORD" => Some(LOGIN.to_string()),
        _ => env.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()),
    })
    .expect("config");
    std::fs::create_dir_all(&config.spool.dir).expect("spool");
    // Each instance signs in on its own, as separate processes would.
    let session = Client::new(&emu.url())
        .expect("client")
        .sign_in(EMAIL, LOGIN)
        .await
        .expect("sign in");
    let sessions = Sessions::new([(EMAIL.to_string(), session)]);
    gateway::start_with(&config, sessions, listener, std::future::pending())
        .await
        .expect("gateway")
}

impl Farm {
    async fn start(extra_env: &[(&str, &str)]) -> Farm {
        let dir = tempfile::tempdir().expect("tempdir");
        let redis = RedisServer::start(dir.path()).await;
        let emulator = TestUpstream::start(dir.path()).await;
        emulator.add_user(EMAIL, LOGIN).await;
        let session = Client::new(&emulator.url())
            .expect("client")
            .sign_in(EMAIL, LOGIN)
            .await
            .expect("sign in");
        let account = session
            .create_dav_account(
                &CrUri::my_path("/").expect("uri"),
                "farm",
                DavAccountOptions::default(),
            )
            .await
            .expect("account");
        let a = instance(dir.path(), "a", &emulator, &redis.url(), extra_env).await;
        let b = instance(dir.path(), "b", &emulator, &redis.url(), extra_env).await;
        Farm {
            redis,
            emulator,
            a,
            b,
            session,
            account_id: account.id,
            password: account.password,
            _dir: dir,
        }
    }

    fn req(&self, gw: &RunningGateway, method: &str, path: &str) -> reqwest::RequestBuilder {
        reqwest::Client::new()
            .request(
                Method::from_bytes(method.as_bytes()).expect("method"),
                format!("{}{}", gw.url(), path.trim_start_matches('/')),
            )
            .basic_auth(EMAIL, Some(&self.password))
    }

    async fn stop(self) {
        self.a.shutdown().await.expect("stop a");
        self.b.shutdown().await.expect("stop b");
        self.emulator.shutdown().await;
        drop(self.redis);
    }
}

const LOCK_BODY: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner>farm-test</D:owner></D:lockinfo>"#;

fn lock_token(r: &reqwest::Response) -> String {
    r.headers()
        .get("lock-token")
        .and_then(|v| v.to_str().ok())
        .expect("Lock-Token header")
        .trim_matches(|c| c == '<' || c == '>')
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_taken_through_one_instance_holds_on_the_other() {
    let f = Farm::start(&[]).await;
    let put = f
        .req(&f.a, "PUT", "/doc.txt")
        .body("v1")
        .send()
        .await
        .expect("put");
    assert_eq!(put.status(), StatusCode::CREATED);

    let lock = f
        .req(&f.a, "LOCK", "/doc.txt")
        .header("timeout", "Second-600")
        .body(LOCK_BODY)
        .send()
        .await
        .expect("lock");
    assert_eq!(lock.status(), StatusCode::OK);
    let token = lock_token(&lock);

    // B enforces A's lock: a write without the token and a second LOCK are refused.
    let put = f
        .req(&f.b, "PUT", "/doc.txt")
        .body("v2")
        .send()
        .await
        .expect("put");
    assert_eq!(put.status(), StatusCode::LOCKED);
    let relock = f
        .req(&f.b, "LOCK", "/doc.txt")
        .body(LOCK_BODY)
        .send()
        .await
        .expect("lock");
    assert_eq!(relock.status(), StatusCode::LOCKED);
    // B reports it...
    let pf = f
        .req(&f.b, "PROPFIND", "/doc.txt")
        .header("depth", "0")
        .body(r#"<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:lockdiscovery/></D:prop></D:propfind>"#)
        .send()
        .await
        .expect("propfind");
    assert_eq!(pf.status().as_u16(), 207);
    let body = pf.text().await.expect("body");
    assert!(body.contains(&token), "lockdiscovery on B: {body}");
    // ...refreshes it, accepts it for a write...
    let refresh = f
        .req(&f.b, "LOCK", "/doc.txt")
        .header("if", format!("(<{token}>)"))
        .header("timeout", "Second-900")
        .send()
        .await
        .expect("refresh");
    assert_eq!(refresh.status(), StatusCode::OK);
    let put = f
        .req(&f.b, "PUT", "/doc.txt")
        .header("if", format!("(<{token}>)"))
        .body("v2")
        .send()
        .await
        .expect("put");
    assert!(put.status().is_success(), "{}", put.status());
    // ...and unlocks it; then A writes freely.
    let unlock = f
        .req(&f.b, "UNLOCK", "/doc.txt")
        .header("lock-token", format!("<{token}>"))
        .send()
        .await
        .expect("unlock");
    assert_eq!(unlock.status(), StatusCode::NO_CONTENT);
    let put = f
        .req(&f.a, "PUT", "/doc.txt")
        .body("v3")
        .send()
        .await
        .expect("put");
    assert!(put.status().is_success(), "{}", put.status());
    let get = f.req(&f.b, "GET", "/doc.txt").send().await.expect("get");
    assert_eq!(get.text().await.expect("body"), "v3");

    // Racing LOCKs on one new path through both instances: one winner.
    let put = f
        .req(&f.a, "PUT", "/race.txt")
        .body("r")
        .send()
        .await
        .expect("put");
    assert_eq!(put.status(), StatusCode::CREATED);
    let mut jobs = Vec::new();
    for i in 0..12 {
        let rb = f
            .req(if i % 2 == 0 { &f.a } else { &f.b }, "LOCK", "/race.txt")
            .body(LOCK_BODY);
        jobs.push(tokio::spawn(async move {
            rb.send().await.expect("lock").status()
        }));
    }
    let mut statuses = Vec::new();
    for j in jobs {
        statuses.push(j.await.expect("join"));
    }
    let won = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let lost = statuses
        .iter()
        .filter(|s| **s == StatusCode::LOCKED)
        .count();
    assert_eq!((won, lost), (1, 11), "{statuses:?}");
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_deleted_upstream_stops_on_every_instance() {
    let f = Farm::start(&[]).await;
    for gw in [&f.a, &f.b] {
        let r = f
            .req(gw, "PROPFIND", "/")
            .header("depth", "0")
            .send()
            .await
            .expect("propfind");
        assert_eq!(r.status().as_u16(), 207);
    }
    let b_auth = f.b.front().authenticator().clone();
    assert!(b_auth.is_cached(EMAIL, &f.password));
    // B's refresh loop fetches once at start: wait until it has begun,
    // then refresh B once more, which waits for it (one fetch at a time
    // per user) — so no fetch of B is still under way from here on.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while b_auth.stats().fetches < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "B's refresh loop did not run"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    b_auth.refresh_all().await;
    assert!(b_auth.is_cached(EMAIL, &f.password));
    let b_fetches = b_auth.stats().fetches;

    f.session
        .delete_dav_account(&f.account_id)
        .await
        .expect("delete account");
    // Only A looks upstream.
    f.a.front().authenticator().refresh_all().await;
    let r = f
        .req(&f.a, "PROPFIND", "/")
        .header("depth", "0")
        .send()
        .await
        .expect("propfind");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // B drops the credential it had verified, without a fetch of its own...
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while b_auth.is_cached(EMAIL, &f.password) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "B still admits the deleted account from its cache"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        b_auth.stats().fetches,
        b_fetches,
        "B fetched the accounts itself"
    );
    // ...and refuses it.
    let r = f
        .req(&f.b, "PROPFIND", "/")
        .header("depth", "0")
        .send()
        .await
        .expect("propfind");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    f.stop().await;
}

fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<IpAddr>().expect("ip"))
        .build()
        .expect("client")
}

async fn attempt(c: &reqwest::Client, gw: &RunningGateway, password: &str) -> u16 {
    let r = c
        .request(Method::from_bytes(b"PROPFIND").expect("m"), gw.url())
        .header("depth", "0")
        .basic_auth(EMAIL, Some(password))
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    if status == 429 {
        let ra: u64 = r
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .expect("429 carries Retry-After in seconds");
        assert!((1..=600).contains(&ra), "Retry-After {ra}");
    }
    status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_on_both_instances_add_up() {
    let f = Farm::start(&[
        ("CLOUDREVE_DAV_LOGIN_FAILURE_WINDOW_SECS", "600"),
        ("CLOUDREVE_DAV_LOGIN_MAX_FAILURES_PER_USER_ADDRESS", "3"),
        ("CLOUDREVE_DAV_LOGIN_MAX_FAILURES_PER_ADDRESS", "50"),
        ("CLOUDREVE_DAV_LOGIN_MAX_FAILURES_PER_USER", "5"),
    ])
    .await;
    // One attacker address, spread over both instances: 3 failures in all.
    let attacker = client_from("127.0.0.41");
    assert_eq!(attempt(&attacker, &f.a, "guess-1").await, 401);
    assert_eq!(attempt(&attacker, &f.b, "guess-2").await, 401);
    assert_eq!(attempt(&attacker, &f.a, "guess-3").await, 401);
    // Throttled on both, even with the right password.
    assert_eq!(attempt(&attacker, &f.b, "guess-4").await, 429);
    assert_eq!(attempt(&attacker, &f.a, &f.password).await, 429);
    // Two more addresses spend the user's budget (5) across instances:
    // each is now throttled on the other instance...
    let c2 = client_from("127.0.0.42");
    let c3 = client_from("127.0.0.43");
    assert_eq!(attempt(&c2, &f.a, "guess-c2").await, 401);
    assert_eq!(attempt(&c3, &f.b, "guess-c3").await, 401);
    assert_eq!(attempt(&c2, &f.b, "guess-c2-again").await, 429);
    assert_eq!(attempt(&c3, &f.a, "guess-c3-again").await, 429);
    // ...while the owner, from a clean address, gets in through either.
    let owner = client_from("127.0.0.44");
    assert_eq!(attempt(&owner, &f.b, &f.password).await, 207);
    assert_eq!(attempt(&owner, &f.a, &f.password).await, 207);
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_locks_fail_closed_and_reads_go_on() {
    let mut f = Farm::start(&[]).await;
    let put = f
        .req(&f.a, "PUT", "/keep.txt")
        .body("kept")
        .send()
        .await
        .expect("put");
    assert_eq!(put.status(), StatusCode::CREATED);
    let lock = f
        .req(&f.a, "LOCK", "/keep.txt")
        .body(LOCK_BODY)
        .send()
        .await
        .expect("lock");
    assert_eq!(lock.status(), StatusCode::OK);
    let token = lock_token(&lock);

    f.redis.kill();
    for gw in [&f.a, &f.b] {
        // No lock is granted, refreshed or released that the other
        // instance could not see, and no write skips the lock check.
        let r = f
            .req(gw, "LOCK", "/other.txt")
            .body(LOCK_BODY)
            .send()
            .await
            .expect("lock");
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(r.headers().contains_key("retry-after"));
        let r = f
            .req(gw, "UNLOCK", "/keep.txt")
            .header("lock-token", format!("<{token}>"))
            .send()
            .await
            .expect("unlock");
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        let r = f
            .req(gw, "PUT", "/keep.txt")
            .body("overwritten")
            .send()
            .await
            .expect("put");
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        // Reads go on.
        let r = f.req(gw, "GET", "/keep.txt").send().await.expect("get");
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.text().await.expect("body"), "kept");
        let r = f
            .req(gw, "PROPFIND", "/")
            .header("depth", "1")
            .send()
            .await
            .expect("propfind");
        assert_eq!(r.status().as_u16(), 207);
        assert!(r.text().await.expect("body").contains("keep.txt"));
    }
    f.stop().await;
}
