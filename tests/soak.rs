//! Soak: concurrent WebDAV clients doing random PUT/GET/MOVE/COPY/DELETE/
//! LOCK/PROPFIND against the gateway while single-shot emulator faults
//! (5xx, `code: -1`, dropped connections, cut bodies, latency) are
//! injected; every answer is checked against a model of what the clients
//! were told, and the upstream tree must equal the model at the end (no
//! lost, duplicated or corrupt file, no upload session or lock left).
//!
//! Each client works in its own folder (`/c<i>/` and `/c<i>/sub/`), one
//! request at a time, so its model is exact: a 2xx is applied to the model
//! and checked upstream at once; a 4xx must have changed nothing; an
//! outcome the client cannot know (5xx, cut connection) must have left one
//! of the states the operation allows, and the model adopts that state.
//!
//! With `CLOUDREVE_BIN` set (see `crate::support::upstream`) the same clients run
//! against a real Cloudreve, without injected faults (those are emulator
//! controls): every answer must then be a known outcome that matches the
//! model, and upload sessions and Cloudreve locks, which a real server does
//! not list, are not checked (the upload journal still is).
//!
//! Runs for `CLOUDREVE_DAV_SOAK_SECS` seconds (default 45, as in `cargo test`; CI keeps it at
//! most 120) with seed `CLOUDREVE_DAV_SOAK_SEED` (default: from the clock).
//! The seed, operation count and fault count are printed:
//!
//! ```sh
//! CLOUDREVE_DAV_SOAK_SECS=1800 CLOUDREVE_DAV_SOAK_SEED=42 \
//!     cargo test --release --test faults soak -- --nocapture
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::faults_common::{EMAIL, Gw, Upstream};
use crate::support::upstream::TestUpstream;
use cloudreve_dav::cloudreve::{CrUri, FileKind, Session};
use cloudreve_dav::dav::fs::{ASIDE_PREFIX, STAGING_PREFIX};
use cloudreve_dav::emulator::{Fault, FaultKind};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Method;

const CLIENTS: usize = 6;
/// File slots of one client, relative to its folder.
const SLOTS: [&str; 7] = [
    "f0.bin",
    "f1.bin",
    "f2.bin",
    "f3.bin",
    "sub/f0.bin",
    "sub/s1.bin",
    "sub/s2.bin",
];
/// Routes faults are injected on (method, path prefix).
const ROUTES: [(&str, &str); 11] = [
    ("GET", "/api/v4/file"),
    ("GET", "/api/v4/file/content/"),
    ("POST", "/api/v4/file/url"),
    ("PUT", "/api/v4/file/upload"),
    ("POST", "/api/v4/file/upload/"),
    ("DELETE", "/api/v4/file/upload"),
    ("POST", "/api/v4/file/move"),
    ("POST", "/api/v4/file/rename"),
    ("POST", "/api/v4/file/create"),
    ("DELETE", "/api/v4/file"),
    ("PATCH", "/api/v4/file/metadata"),
];

/// Most single-shot faults waiting for their route at once (default;
/// `CLOUDREVE_DAV_SOAK_FAULTS` sets another).
const MAX_PENDING_FAULTS: usize = 4;

type Model = BTreeMap<String, Vec<u8>>;
/// The contents of two paths (`None`: absent).
type PairState<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

/// What a client learnt from an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Told {
    /// 2xx: done.
    Done(u16),
    /// 4xx: refused, nothing changed.
    Refused(u16),
    /// 5xx or a cut connection: unknown.
    Unknown,
}

fn told(r: &Result<reqwest::Response, reqwest::Error>) -> Told {
    match r {
        // A 207 to MOVE/COPY/DELETE/LOCK reports a failure inside.
        Ok(r) if r.status().as_u16() == 207 => Told::Unknown,
        Ok(r) if r.status().is_success() => Told::Done(r.status().as_u16()),
        Ok(r) if r.status().is_client_error() => Told::Refused(r.status().as_u16()),
        Ok(r) => {
            assert!(
                matches!(r.status().as_u16(), 500 | 502..=504),
                "unexpected status {} for {} {}",
                r.status(),
                r.url(),
                r.headers()
                    .get("x-soak-op")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
            );
            Told::Unknown
        }
        Err(e) => {
            assert!(!e.is_timeout(), "the gateway did not answer: {e}");
            Told::Unknown
        }
    }
}

#[derive(Default)]
struct Counters {
    ops: AtomicU64,
    unknown: AtomicU64,
    faults: AtomicU64,
    /// Failed uploads whose placeholder outlived the answer (every
    /// cancel failed until the gateway's background retry).
    deferred: AtomicU64,
    /// Answers after which a set-aside destination was still being dealt
    /// with (see [`Client::settle`]).
    settled: AtomicU64,
}

struct Client {
    id: usize,
    gw: Arc<Gw>,
    /// The upstream (emulator or real Cloudreve) the model is checked on.
    up: Arc<TestUpstream>,
    rng: StdRng,
    model: Model,
    counters: Arc<Counters>,
}

impl Client {
    fn path(&self, slot: &str) -> String {
        format!("/c{}/{slot}", self.id)
    }

    async fn upstream(&self, path: &str) -> Option<Vec<u8>> {
        self.up.file_bytes(EMAIL, path).await
    }

    /// The model's state of `path` must be the upstream one.
    async fn check(&self, path: &str, what: &str) {
        let up = self.upstream(path).await;
        // A blob missing under an existing file (emulator only: a real
        // server's storage is not inspected).
        if up.is_none()
            && let Some(disk) = self
                .up
                .emulator()
                .and_then(|emu| emu.file_path_on_disk(EMAIL, path))
        {
            panic!(
                "client {}: after {what}: {path} exists upstream but its blob {} is missing",
                self.id,
                disk.display()
            );
        }
        assert!(
            up.as_deref() == self.model.get(path).map(Vec::as_slice),
            "client {}: after {what}: {path} upstream {:?} bytes, model {:?} bytes",
            self.id,
            up.as_ref().map(Vec::len),
            self.model.get(path).map(Vec::len)
        );
    }

    /// Waits (at most 150 s) until the gateway is done with what it set
    /// aside in `path`'s folder for an `Overwrite: T` replacement. After a
    /// failed step it puts the old destination back, in the background when
    /// the upstream keeps failing, so until then the destination looks
    /// deleted. A set-aside object still there at the deadline fails the
    /// final check.
    async fn settle(&self, path: &str) {
        let dir = &path[..path.rfind('/').unwrap_or(0)];
        let aside = async || {
            self.up
                .child_names(EMAIL, dir)
                .await
                .is_some_and(|names| names.iter().any(|n| n.starts_with(ASIDE_PREFIX)))
        };
        if !aside().await {
            return;
        }
        self.counters.settled.fetch_add(1, Ordering::Relaxed);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(150);
        while tokio::time::Instant::now() < deadline && aside().await {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// After an unknown outcome: upstream `path` must be one of `allowed`;
    /// the model adopts it.
    async fn adopt(&mut self, path: &str, allowed: &[Option<&[u8]>], what: &str) {
        let up = self.upstream(path).await;
        assert!(
            allowed.contains(&up.as_deref()),
            "client {}: after {what} with an unknown outcome: {path} upstream is {:?} bytes, none of the allowed states {:?}",
            self.id,
            up.as_ref().map(Vec::len),
            allowed
                .iter()
                .map(|a| a.map(<[u8]>::len))
                .collect::<Vec<_>>()
        );
        match up {
            Some(b) => self.model.insert(path.to_string(), b),
            None => self.model.remove(path),
        };
    }

    /// Like [`Client::adopt`] for the joint state of two paths.
    async fn adopt_pair(&mut self, a: &str, b: &str, allowed: &[PairState<'_>], what: &str) {
        let (ua, ub) = (self.upstream(a).await, self.upstream(b).await);
        assert!(
            allowed.contains(&(ua.as_deref(), ub.as_deref())),
            "client {}: after {what} with an unknown outcome: upstream ({:?}, {:?}) bytes, none of {:?}",
            self.id,
            ua.as_ref().map(Vec::len),
            ub.as_ref().map(Vec::len),
            allowed
                .iter()
                .map(|(x, y)| (x.map(<[u8]>::len), y.map(<[u8]>::len)))
                .collect::<Vec<_>>()
        );
        for (p, v) in [(a, ua), (b, ub)] {
            match v {
                Some(bytes) => self.model.insert(p.to_string(), bytes),
                None => self.model.remove(p),
            };
        }
    }

    fn slot(&mut self) -> String {
        let s = SLOTS[self.rng.gen_range(0..SLOTS.len())];
        self.path(s)
    }

    fn content(&mut self) -> Vec<u8> {
        let len = match self.rng.gen_range(0..10) {
            0 => 0,
            1..=6 => self.rng.gen_range(1..20_000),
            _ => self.rng.gen_range(20_000..300_000),
        };
        let mut v = vec![0u8; len];
        self.rng.fill(&mut v[..]);
        v
    }

    async fn step(&mut self) {
        self.counters.ops.fetch_add(1, Ordering::Relaxed);
        match self.rng.gen_range(0..100) {
            0..35 => self.put(None).await,
            35..55 => self.get().await,
            55..67 => self.move_or_copy(true).await,
            67..77 => self.move_or_copy(false).await,
            77..87 => self.delete().await,
            87..95 => self.lock_put().await,
            _ => self.propfind().await,
        }
    }

    fn note(&self, t: Told) -> Told {
        if t == Told::Unknown {
            self.counters.unknown.fetch_add(1, Ordering::Relaxed);
        }
        t
    }

    async fn put(&mut self, lock: Option<(&str, &str)>) {
        let p = match lock {
            Some((p, _)) => p.to_string(),
            None => self.slot(),
        };
        let body = self.content();
        let mut rb = self.gw.req("PUT", &p);
        if let Some((_, token)) = lock {
            rb = rb.header("if", format!("(<{token}>)"));
        }
        rb = if self.rng.gen_bool(0.2) {
            // Unknown length (chunked): spooled by the gateway.
            let b = bytes::Bytes::from(body.clone());
            rb.body(reqwest::Body::wrap_stream(futures::stream::iter([Ok::<
                _,
                std::io::Error,
            >(
                b
            )])))
        } else {
            rb.body(body.clone())
        };
        let r = rb.send().await;
        let t = self.note(told(&r));
        let what = format!("PUT {p} ({} bytes) -> {t:?}", body.len());
        match t {
            Told::Done(_) => {
                self.model.insert(p.clone(), body);
                self.check(&p, &what).await;
            }
            Told::Refused(s) => {
                // 403: an untyped `code: -1` at upload is a refused name.
                assert!(
                    matches!(s, 403 | 409 | 412 | 423),
                    "client {}: {what}: refused with {s}",
                    self.id
                );
                self.check(&p, &what).await
            }
            Told::Unknown => {
                let old = self.model.get(&p).cloned();
                if old.is_none() && !body.is_empty() && self.upload_pending(&p).await {
                    // Every cancel of the failed upload failed for the
                    // ~7.7 s the gateway retries before answering: its
                    // placeholder stays until the gateway's background
                    // cancel gets through (first retry after 10 s).
                    self.counters.deferred.fetch_add(1, Ordering::Relaxed);
                    let until = tokio::time::Instant::now() + Duration::from_secs(120);
                    while self.upload_pending(&p).await && tokio::time::Instant::now() < until {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    assert!(
                        !self.upload_pending(&p).await,
                        "client {}: {what}: the placeholder of the failed upload was never cancelled",
                        self.id
                    );
                }
                self.adopt(&p, &[old.as_deref(), Some(&body)], &what).await;
            }
        }
    }

    /// `path` is a placeholder of an upload session still open upstream
    /// (size 0, held by an `upload` lock). Always false on a real server,
    /// which does not list its locks; there, with no injected faults, no
    /// upload ends with an unknown outcome short of a gateway bug, and a
    /// placeholder left behind then fails [`Client::adopt`] (0 bytes, not
    /// one of the allowed states) instead of being waited for.
    async fn upload_pending(&self, path: &str) -> bool {
        self.upstream(path).await.is_some_and(|b| b.is_empty())
            && self.up.active_locks(EMAIL).iter().any(|l| {
                l.app_type == "upload"
                    && l.path.trim_start_matches('/') == path.trim_start_matches('/')
            })
    }

    async fn get(&mut self) {
        let p = self.slot();
        let r = self.gw.req("GET", &p).send().await;
        match r {
            Ok(r) if r.status().as_u16() == 200 => {
                let want = self.model.get(&p).cloned();
                assert!(
                    want.is_some(),
                    "client {}: GET {p} found a file the model lacks",
                    self.id
                );
                // A cut body is fine; a complete one must be exact.
                if let Ok(b) = r.bytes().await {
                    assert!(
                        want.as_deref() == Some(&b[..]),
                        "client {}: GET {p}: {} bytes, model {:?}",
                        self.id,
                        b.len(),
                        want.as_ref().map(Vec::len)
                    );
                } else {
                    self.counters.unknown.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(r) if r.status().as_u16() == 404 => {
                assert!(
                    !self.model.contains_key(&p),
                    "client {}: GET {p}: 404 for a file of the model",
                    self.id
                );
            }
            other => {
                assert_eq!(self.note(told(&other)), Told::Unknown, "GET {p}");
            }
        }
    }

    async fn move_or_copy(&mut self, is_move: bool) {
        let (src, dst) = (self.slot(), self.slot());
        if src == dst {
            return;
        }
        let overwrite = self.rng.gen_bool(0.7);
        let m = if is_move { "MOVE" } else { "COPY" };
        let r = self
            .gw
            .req(m, &src)
            .header("destination", format!("{}{}", self.gw.url, dst))
            .header("overwrite", if overwrite { "T" } else { "F" })
            .send()
            .await;
        let t = self.note(told(&r));
        let what = format!("{m} {src} -> {dst} (overwrite {overwrite}) -> {t:?}");
        let (os, od) = (self.model.get(&src).cloned(), self.model.get(&dst).cloned());
        match t {
            Told::Done(_) => {
                let s = os.unwrap_or_else(|| {
                    panic!("client {}: {what} succeeded on a missing source", self.id)
                });
                assert!(
                    overwrite || od.is_none(),
                    "client {}: {what} overwrote",
                    self.id
                );
                if is_move {
                    self.model.remove(&src);
                }
                self.model.insert(dst.clone(), s);
            }
            Told::Refused(st) => match st {
                404 => assert!(
                    os.is_none(),
                    "client {}: {what}: 404 with a source",
                    self.id
                ),
                412 => assert!(
                    !overwrite && od.is_some(),
                    "client {}: {what}: 412",
                    self.id
                ),
                423 | 409 => {
                    // dav-server deletes an overwritten destination before
                    // the move/copy itself, which may then be refused.
                    if overwrite && od.is_some() {
                        self.settle(&dst).await;
                        self.adopt(&dst, &[od.as_deref(), None], &what).await;
                    }
                }
                _ => panic!("client {}: {what}: refused with {st}", self.id),
            },
            Told::Unknown => {
                // Nothing happened, or it completed, or (Overwrite) the
                // destination was deleted before the step that failed.
                let (s_, d_) = (os.as_deref(), od.as_deref());
                let mut pairs = vec![(s_, d_)];
                if s_.is_some() {
                    pairs.push((if is_move { None } else { s_ }, s_));
                    if d_.is_some() {
                        pairs.push((s_, None));
                    }
                }
                self.settle(&dst).await;
                self.adopt_pair(&src, &dst, &pairs, &what).await;
            }
        }
        self.check(&src, &what).await;
        self.check(&dst, &what).await;
    }

    async fn delete(&mut self) {
        let p = self.slot();
        let r = self.gw.req("DELETE", &p).send().await;
        let t = self.note(told(&r));
        let what = format!("DELETE {p} -> {t:?}");
        match t {
            Told::Done(_) => {
                assert!(
                    self.model.remove(&p).is_some(),
                    "client {}: {what} of a missing file",
                    self.id
                );
            }
            Told::Refused(404) => {
                assert!(
                    !self.model.contains_key(&p),
                    "client {}: {what}: 404",
                    self.id
                )
            }
            Told::Refused(s) => assert!(matches!(s, 409 | 423), "client {}: {what}: {s}", self.id),
            Told::Unknown => {
                let old = self.model.get(&p).cloned();
                self.adopt(&p, &[old.as_deref(), None], &what).await;
            }
        }
        self.check(&p, &what).await;
    }

    async fn lock_put(&mut self) {
        let p = self.slot();
        let r = self
            .gw
            .req("LOCK", &p)
            .header("timeout", "Second-60")
            .header("content-type", "application/xml")
            .body(
                r#"<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner>soak</D:owner></D:lockinfo>"#,
            )
            .send()
            .await;
        let what = format!("LOCK {p}");
        let old = self.model.get(&p).cloned();
        let token = match &r {
            Ok(resp) if resp.status().is_success() => resp
                .headers()
                .get("lock-token")
                .and_then(|v| v.to_str().ok())
                .map(|t| t.trim_matches(|c| c == '<' || c == '>').to_string()),
            _ => None,
        };
        match self.note(told(&r)) {
            Told::Done(_) => {
                if old.is_none() {
                    // A lock on a new name creates an empty file.
                    self.model.insert(p.clone(), Vec::new());
                }
                self.check(&p, &what).await;
            }
            Told::Refused(s) => {
                assert!(matches!(s, 409 | 423), "client {}: {what}: {s}", self.id);
                self.check(&p, &what).await;
            }
            Told::Unknown => self.adopt(&p, &[old.as_deref(), Some(&[])], &what).await,
        }
        let Some(token) = token else { return };
        self.put(Some((&p, &token))).await;
        let mut unlocked = false;
        for _ in 0..3 {
            let r = self
                .gw
                .req("UNLOCK", &p)
                .header("lock-token", format!("<{token}>"))
                .send()
                .await;
            if r.is_ok_and(|r| r.status().is_success()) {
                unlocked = true;
                break;
            }
        }
        assert!(
            unlocked,
            "client {}: UNLOCK {p} (a gateway-local lock) failed",
            self.id
        );
    }

    async fn propfind(&mut self) {
        let dir = format!("/c{}/", self.id);
        let r = self
            .gw
            .req("PROPFIND", &dir)
            .header("depth", "1")
            .send()
            .await;
        let Ok(r) = r else {
            self.counters.unknown.fetch_add(1, Ordering::Relaxed);
            return;
        };
        if r.status().as_u16() != 207 {
            assert_eq!(self.note(told(&Ok(r))), Told::Unknown, "PROPFIND {dir}");
            return;
        }
        let Ok(body) = r.text().await else {
            self.counters.unknown.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let mut listed: Vec<String> = body
            .split("<D:href>")
            .skip(1)
            .filter_map(|s| s.split("</D:href>").next())
            .map(|h| h.trim_start_matches(&dir).to_string())
            .filter(|n| !n.is_empty() && !n.ends_with('/'))
            .collect();
        listed.sort();
        let mut want: Vec<String> = self
            .model
            .keys()
            .filter_map(|k| k.strip_prefix(&dir))
            .filter(|n| !n.contains('/'))
            .map(str::to_string)
            .collect();
        want.sort();
        assert_eq!(listed, want, "client {}: PROPFIND {dir} listing", self.id);
    }
}

/// Every file below `uri` (recursively), as `path -> bytes`, plus the
/// names of anything that is not a file of a client slot.
async fn upstream_tree(
    session: &Session,
    up: &TestUpstream,
    uri: &CrUri,
    path: &str,
    out: &mut Model,
) {
    let (_, files) = session.list_all(uri, 1000).await.expect("list upstream");
    for f in files {
        let p = format!("{path}/{}", f.name);
        match f.kind {
            FileKind::Folder => {
                let u = uri.join(&f.name).expect("uri");
                Box::pin(upstream_tree(session, up, &u, &p, out)).await;
            }
            _ => {
                let bytes = up.file_bytes(EMAIL, &p).await.expect("bytes");
                out.insert(p.clone(), bytes);
            }
        }
    }
}

fn env_u64(key: &str) -> Option<u64> {
    std::env::var(key).ok().and_then(|v| v.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_random_operations_under_upstream_faults() {
    let secs = env_u64("CLOUDREVE_DAV_SOAK_SECS").unwrap_or(45);
    let max_pending =
        env_u64("CLOUDREVE_DAV_SOAK_FAULTS").map_or(MAX_PENDING_FAULTS, |n| n as usize);
    let seed = env_u64("CLOUDREVE_DAV_SOAK_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    });
    if std::env::var("CLOUDREVE_DAV_SOAK_LOG").is_ok() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("cloudreve_dav=info")
            .try_init();
    }
    // Faults and the chunk size are emulator controls: a real server runs
    // the same clients without injected faults, with its own chunk size.
    let faulty = !crate::support::upstream::real_server_configured();
    if faulty {
        println!(
            "soak: seed {seed}, {secs} s, {CLIENTS} clients, up to {max_pending} pending faults (CLOUDREVE_DAV_SOAK_SEED={seed} to replay)"
        );
    } else {
        println!(
            "soak: seed {seed}, {secs} s, {CLIENTS} clients, on a real Cloudreve without injected faults (CLOUDREVE_DAV_SOAK_SEED={seed} to replay)"
        );
    }

    let up = Upstream::start().await;
    assert_eq!(up.upstream.is_real(), !faulty, "upstream kind");
    let upstream_name = if faulty {
        "the emulator".to_string()
    } else {
        format!("a real Cloudreve at {}", up.upstream.url())
    };
    if let Some(emu) = up.upstream.emulator() {
        emu.set_chunk_size(64 * 1024);
    }
    let gw = Arc::new(up.gateway(|_| {}).await);
    for i in 0..CLIENTS {
        for d in [format!("/c{i}"), format!("/c{i}/sub")] {
            let r = gw.req("MKCOL", &d).send().await.expect("mkcol");
            assert_eq!(r.status().as_u16(), 201, "MKCOL {d}");
        }
    }
    let Upstream {
        upstream,
        proxy: _proxy,
        session,
        dav_password: _,
        dir,
    } = up;
    let upstream = Arc::new(upstream);
    let counters = Arc::new(Counters::default());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);

    // Chaos: one single-shot fault at a time on a random route (on the
    // emulator only).
    let stop = Arc::new(AtomicBool::new(false));
    let chaos = faulty.then(|| {
        let (up, counters, stop) = (upstream.clone(), counters.clone(), stop.clone());
        let mut rng = StdRng::seed_from_u64(seed);
        tokio::spawn(async move {
            let emu = up.emu();
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(rng.gen_range(20..120))).await;
                // Faults wait for a request on their route: do not let
                // them pile up on rarely used routes.
                if emu.pending_faults() >= max_pending {
                    continue;
                }
                let (m, prefix) = ROUTES[rng.gen_range(0..ROUTES.len())];
                let kind = match rng.gen_range(0..7) {
                    0 => FaultKind::HttpStatus(500),
                    1 => FaultKind::HttpStatus([502, 503][rng.gen_range(0..2)]),
                    2 => FaultKind::CodeMinusOne,
                    3 => FaultKind::DropConnection,
                    4 => FaultKind::DropAfterBytes(rng.gen_range(0..40_000)),
                    _ => FaultKind::Latency(Duration::from_millis(rng.gen_range(20..250))),
                };
                emu.add_fault(Fault {
                    method: Some(Method::from_bytes(m.as_bytes()).expect("method")),
                    path_prefix: prefix.to_string(),
                    kind,
                    times: Some(1),
                });
                counters.faults.fetch_add(1, Ordering::Relaxed);
            }
        })
    });

    let mut tasks = Vec::new();
    for id in 0..CLIENTS {
        let mut c = Client {
            id,
            gw: gw.clone(),
            up: upstream.clone(),
            rng: StdRng::seed_from_u64(seed.wrapping_add(1 + id as u64)),
            model: Model::new(),
            counters: counters.clone(),
        };
        tasks.push(tokio::spawn(async move {
            while tokio::time::Instant::now() < deadline {
                c.step().await;
            }
            c.model
        }));
    }
    let mut model = Model::new();
    for t in tasks {
        model.extend(t.await.expect("a client failed (see above)"));
    }
    stop.store(true, Ordering::Relaxed);
    if let Some(chaos) = chaos {
        chaos.await.expect("chaos");
    }
    let pending = upstream.emulator().map_or(0, |emu| {
        let pending = emu.pending_faults() as u64;
        emu.clear_faults();
        pending
    });

    // The gateway may still be removing, in the background, objects it
    // set aside (`Overwrite: T`) or staged (COPY) when a clean-up step hit
    // a fault; with the faults gone it finishes within about 30 s.
    let mut tree = Model::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        tree.clear();
        upstream_tree(&session, &upstream, &CrUri::my(), "", &mut tree).await;
        let (_, root) = session.list_all(&CrUri::my(), 1000).await.expect("root");
        let internal = tree.keys().any(|k| k.contains(&format!("/{ASIDE_PREFIX}")))
            || root.iter().any(|f| f.name.starts_with(STAGING_PREFIX));
        if !internal || tokio::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The upstream tree equals the model.
    let (_, root) = session.list_all(&CrUri::my(), 1000).await.expect("root");
    let mut names: Vec<String> = root.into_iter().map(|f| f.name).collect();
    names.sort();
    let mut want_names: Vec<String> = (0..CLIENTS).map(|i| format!("c{i}")).collect();
    want_names.sort();
    assert_eq!(
        names, want_names,
        "nothing but the client folders at the root"
    );
    let extra: Vec<&String> = tree.keys().filter(|k| !model.contains_key(*k)).collect();
    let missing: Vec<&String> = model.keys().filter(|k| !tree.contains_key(*k)).collect();
    assert!(
        extra.is_empty(),
        "files upstream the clients do not know: {extra:?}"
    );
    assert!(
        missing.is_empty(),
        "files the clients were told exist are gone: {missing:?}"
    );
    for (p, b) in &model {
        assert!(
            tree.get(p) == Some(b),
            "{p}: content differs from the model"
        );
    }
    // Nothing left open (as far as the upstream shows: a real server lists
    // neither upload sessions nor locks).
    assert!(
        crate::faults_common::eventually(async || upstream.upload_sessions(EMAIL) == 0
            && upstream.active_locks(EMAIL).is_empty())
        .await,
        "upload sessions {} / upstream locks {:?} left",
        upstream.upload_sessions(EMAIL),
        upstream.active_locks(EMAIL)
    );
    // Sessions whose cancel kept failing stay journaled (their answers were
    // lost: the cancel may well have been applied); what the next start
    // does with them must leave nothing open either.
    let lookup_session = session.clone();
    let lookup: cloudreve_dav::dav::SessionLookup =
        Arc::new(move |e: &str| (e == EMAIL).then(|| lookup_session.clone()));
    let journal =
        cloudreve_dav::dav::upload_journal::UploadJournal::open(&dir.path().join("state"))
            .expect("journal");
    let carried = journal.leftovers().len();
    let recovered = journal.recover(&lookup).await;
    assert_eq!(
        recovered.kept, 0,
        "journaled sessions could not be cancelled"
    );
    assert_eq!(upstream.upload_sessions(EMAIL), 0);
    let journal: Vec<String> = std::fs::read_dir(dir.path().join("state/uploads"))
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        journal.is_empty(),
        "upload journal not emptied: {journal:?}"
    );

    if let Ok(gw) = Arc::try_unwrap(gw) {
        gw.stop().await;
    }
    let ops = counters.ops.load(Ordering::Relaxed);
    let injected = counters.faults.load(Ordering::Relaxed);
    println!(
        "soak: seed {seed} on {upstream_name}: {ops} operations, {} faults fired ({injected} injected), {} answers with an unknown outcome, {} failed uploads cancelled only in the background, {} waits for a set-aside destination, {} files at the end, {carried} journaled sessions cancelled at the next start",
        injected - pending,
        counters.unknown.load(Ordering::Relaxed),
        counters.deferred.load(Ordering::Relaxed),
        counters.settled.load(Ordering::Relaxed),
        model.len()
    );
    assert!(ops > 0);
}
