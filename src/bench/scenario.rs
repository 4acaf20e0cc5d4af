//! The measurements, in order: set-up, GET, PUT, PROPFIND, request rates,
//! concurrent mixed load, the 4 GiB memory check and the peers.
//!
//! The upstream is the embedded emulator, or in external mode a real
//! Cloudreve server: the bench then works in a fresh folder of the user's
//! drive, creates a WebDAV account rooted there (used by the gateway and by
//! Cloudreve's own `/dav`, the third subject), and removes both at the end.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use futures::{StreamExt as _, TryStreamExt as _};

use super::client::{self, Dav, Direct};
use super::data::{self, expected_digest, file_digest};
use super::gwproc::{Gateway, PeakSampler};
use super::load::{self, LoadResult};
use super::peers::{self, Peer};
use super::report::{LoadRow, Machine, MemRow, Ratio, Report, Row, Target, loadavg};
use super::stats::{median, mib_per_s};
use super::{External, Settings};
use crate::cloudreve::{Client, CrUri, DavAccountOptions};
use crate::emulator::{Emulator, EmulatorConfig};

const EMAIL: &str = "bench@example.com";
/// Who Cloudreve's own WebDAV endpoint is in rows and loads.
pub const CDAV: &str = "/dav";
const SEED_GET: u64 = 1;
const SEED_PUT: u64 = 2;
const SEED_GET4: u64 = 3;
const SEED_PUT4: u64 = 4;
/// Small files of the mixed load.
const SMALL_FILES: u64 = 16;
/// Page size of the direct listing (the gateway's own page size).
const DIRECT_PAGE: u32 = 1000;
/// Clients of the requests-per-second measurements.
const RPS_CLIENTS: usize = 8;
/// Allowed growth of the gateway's peak RSS from the 1 GiB to the 4 GiB
/// transfer for it to count as flat.
const FLAT_SLACK: u64 = 8 << 20;
/// The memory ceiling of the issue.
const RSS_LIMIT: u64 = 64 << 20;

/// A working directory removed on drop unless it was given.
struct WorkDir {
    path: PathBuf,
    remove: bool,
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if self.remove {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// `1 GiB`, `8 MiB`, or bytes.
pub fn size_label(n: u64) -> String {
    if n >= 1 << 30 && n.is_multiple_of(1 << 30) {
        format!("{} GiB", n >> 30)
    } else if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else {
        format!("{n} B")
    }
}

async fn timed<T, Fut: Future<Output = anyhow::Result<T>>>(f: Fut) -> anyhow::Result<(f64, T)> {
    let t = Instant::now();
    let v = f.await?;
    Ok((t.elapsed().as_secs_f64(), v))
}

fn row(metric: &str, who: &str, unit: &str, runs: Vec<f64>, chart: bool) -> Row {
    Row {
        metric: metric.into(),
        who: who.into(),
        unit: unit.into(),
        median: (!runs.is_empty()).then(|| median(&runs)),
        runs,
        note: String::new(),
        chart,
    }
}

fn missing(metric: &str, who: &str, unit: &str, note: &str) -> Row {
    Row {
        metric: metric.into(),
        who: who.into(),
        unit: unit.into(),
        median: None,
        runs: Vec::new(),
        note: note.into(),
        chart: true,
    }
}

async fn digest_on_disk(path: Option<PathBuf>) -> anyhow::Result<u64> {
    let path = path.context("uploaded file has no blob")?;
    tokio::task::spawn_blocking(move || file_digest(&path))
        .await?
        .map_err(Into::into)
}

async fn expected(seed: u64, len: u64) -> anyhow::Result<u64> {
    Ok(tokio::task::spawn_blocking(move || expected_digest(seed, len)).await?)
}

fn check(rep: &mut Report, ok: bool, what: impl FnOnce() -> String) {
    if !ok {
        let w = what();
        eprintln!("bench: {w}");
        rep.errors.push(w);
    }
}

/// Everything a scenario needs.
struct Ctx<'a> {
    s: &'a Settings,
    /// The emulator (`None` in external mode).
    emu: Option<Emulator>,
    /// The signed-in user.
    email: String,
    gw: Gateway,
    dav: Dav,
    direct: Direct,
    /// Cloudreve's own `/dav` (external mode only).
    cdav: Option<Dav>,
    http: reqwest::Client,
    label: String,
    work: PathBuf,
}

/// The upstream's side of a run: what to undo at the end.
enum Upstream {
    Emulator(Emulator),
    External {
        /// The session with paths from the drive's root.
        base: Direct,
        /// The bench folder (`/cloudreve-dav-bench-…`).
        folder: String,
        /// The WebDAV account created for the run.
        account_id: String,
    },
}

/// The runs of one subject that may answer wrongly (Cloudreve's `/dav`):
/// a wrong answer or a failure ends its runs and replaces its figure with
/// the reason.
#[derive(Default)]
struct Runs {
    values: Vec<f64>,
    bad: Option<String>,
}

impl Runs {
    fn live(&self) -> bool {
        self.bad.is_none()
    }

    fn fail(&mut self, why: String) {
        eprintln!("bench: {CDAV}: {why}");
        self.bad.get_or_insert(why);
    }

    fn into_row(self, metric: &str, who: &str, unit: &str) -> Row {
        match self.bad {
            Some(why) => missing(metric, who, unit, &why),
            None => row(metric, who, unit, self.values, true),
        }
    }
}

/// Runs the whole benchmark.
pub async fn run(s: &Settings) -> anyhow::Result<Report> {
    let mut rep = Report {
        machine: Machine::probe(),
        settings: format!(
            "runs={} (median, after 1 warm-up), size={}, files={}, mixed load {} clients x {} s, \
             rps with {RPS_CLIENTS} clients x {} s, gateway {}",
            s.runs,
            size_label(s.size),
            s.files,
            s.clients,
            s.duration.as_secs_f64(),
            s.rps_duration.as_secs_f64(),
            if s.gateway_exe.is_some() {
                "child process"
            } else {
                "in-process"
            }
        ),
        ..Report::default()
    };
    let work = match &s.dir {
        Some(d) => WorkDir {
            path: d.clone(),
            remove: false,
        },
        None => WorkDir {
            path: std::env::temp_dir()
                .join(format!("cloudreve-dav-bench-{}", uuid::Uuid::new_v4())),
            remove: true,
        },
    };
    std::fs::create_dir_all(&work.path)?;
    let http = client::http();
    let (upstream, email, login, direct, account) = match &s.external {
        None => {
            let emu = Emulator::start(EmulatorConfig::new(work.path.join("emulator"))).await?;
            let login = uuid::Uuid::new_v4().simple().to_string();
            emu.add_user(EMAIL, &login);
            let session = Client::new(&emu.url())?.sign_in(EMAIL, &login).await?;
            let account = session
                .create_dav_account(&CrUri::my(), "bench", DavAccountOptions::default())
                .await?;
            let direct = Direct::new(session, http.clone()).await?;
            let up = Upstream::Emulator(emu);
            (up, EMAIL.to_string(), login, direct, account)
        }
        Some(ext) => {
            let (up, direct, account) = external_setup(ext, &http, &mut rep).await?;
            (up, ext.email.clone(), ext.password.clone(), direct, account)
        }
    };
    let upstream_url = match &upstream {
        Upstream::Emulator(emu) => emu.url(),
        Upstream::External { .. } => s
            .external
            .as_ref()
            .map(|e| e.url.clone())
            .unwrap_or_default(),
    };
    let cdav = s.external.as_ref().map(|e| {
        Dav::new(
            http.clone(),
            &format!("{}/dav/", e.url),
            Some((email.clone(), account.password.clone())),
        )
    });
    let gw = match &s.gateway_exe {
        Some(exe) => {
            Gateway::spawn_child(exe, &upstream_url, &email, &login, &work.path.join("spool")).await
        }
        None => Gateway::in_process(&upstream_url, &email, &login, work.path.join("spool")).await,
    };
    let gw = match gw {
        Ok(gw) => gw,
        Err(e) => {
            upstream_cleanup(upstream).await;
            return Err(e);
        }
    };
    let dav = Dav::new(
        http.clone(),
        &gw.url(),
        Some((email.clone(), account.password.clone())),
    );
    let (emu, upstream) = match upstream {
        Upstream::Emulator(emu) => (Some(emu), None),
        other => (None, Some(other)),
    };
    let mut cx = Ctx {
        s,
        emu,
        email,
        gw,
        dav,
        direct,
        cdav,
        http,
        label: size_label(s.size),
        work: work.path.clone(),
    };
    // On a real server, Ctrl-C still removes the folder and the account.
    let result = if upstream.is_some() {
        tokio::select! {
            r = measure_all(&mut cx, &mut rep) => r,
            _ = tokio::signal::ctrl_c() => {
                eprintln!("bench: interrupted, cleaning up");
                Err(anyhow::anyhow!("interrupted"))
            }
        }
    } else {
        measure_all(&mut cx, &mut rep).await
    };
    cx.gw.stop().await;
    if let Some(emu) = cx.emu {
        emu.shutdown().await;
    }
    if let Some(up) = upstream {
        upstream_cleanup(up).await;
    }
    result?;
    rep.machine.loadavg.push(loadavg());
    targets(&mut rep, s);
    rep.ratios = dav_ratios(&rep);
    Ok(rep)
}

/// External mode: signs in, makes the bench folder and a WebDAV account
/// rooted there (proxied downloads, read-write).
async fn external_setup(
    ext: &External,
    http: &reqwest::Client,
    rep: &mut Report,
) -> anyhow::Result<(Upstream, Direct, crate::cloudreve::DavAccount)> {
    let client = Client::new(&ext.url)?;
    let version = client
        .ping()
        .await
        .with_context(|| format!("{} does not answer /api/v4/site/ping", ext.url))?;
    let session = client
        .sign_in(&ext.email, &ext.password)
        .await
        .with_context(|| format!("cannot sign in {} at {}", ext.email, ext.url))?;
    let base = Direct::new(session, http.clone()).await?;
    let folder = format!("/cloudreve-dav-bench-{}", uuid::Uuid::new_v4().simple());
    base.mkdir(&folder).await?;
    let root = CrUri::my_path(&folder)?;
    let opts = DavAccountOptions {
        proxy: true,
        ..Default::default()
    };
    let account = match base
        .session()
        .create_dav_account(&root, "cloudreve-dav bench", opts)
        .await
    {
        Ok(a) => a,
        Err(e) => {
            let _ = base.delete(&folder).await;
            return Err(anyhow::Error::new(e).context(
                "cannot create a WebDAV account (is WebDAV allowed for the user's group?)",
            ));
        }
    };
    eprintln!(
        "bench: external upstream {} (Cloudreve {version}), folder {folder}, WebDAV account {}",
        ext.url, account.id
    );
    rep.settings.push_str(&format!(
        ", upstream {} (Cloudreve {version}, external), {CDAV} = {}/dav/ (proxied account)",
        ext.url, ext.url
    ));
    let direct = base.with_root(&folder);
    let up = Upstream::External {
        base,
        folder,
        account_id: account.id.clone(),
    };
    Ok((up, direct, account))
}

/// Removes what external mode created (best effort; says what failed).
async fn upstream_cleanup(up: Upstream) {
    match up {
        Upstream::Emulator(emu) => emu.shutdown().await,
        Upstream::External {
            base,
            folder,
            account_id,
        } => {
            if let Err(e) = base.session().delete_dav_account(&account_id).await {
                eprintln!("bench: cannot delete WebDAV account {account_id}: {e:#}");
            }
            match base.delete(&folder).await {
                Ok(()) => eprintln!("bench: removed {folder} and the WebDAV account"),
                Err(e) => eprintln!("bench: cannot remove {folder}: {e:#}"),
            }
        }
    }
}

/// What the upstream stored at `path`: (bytes, digest). The emulator's
/// blob is read from disk; a real server's file is downloaded directly.
async fn stored(cx: &Ctx<'_>, path: &str) -> anyhow::Result<(u64, u64)> {
    match &cx.emu {
        Some(emu) => {
            let p = emu.file_path_on_disk(&cx.email, path);
            let len = p
                .as_ref()
                .and_then(|p| std::fs::metadata(p).ok())
                .map_or(0, |m| m.len());
            Ok((len, digest_on_disk(p).await?))
        }
        None => cx.direct.get(path).await,
    }
}

async fn measure_all(cx: &mut Ctx<'_>, rep: &mut Report) -> anyhow::Result<()> {
    let s = cx.s;
    setup(cx).await?;
    if s.runs_phase("get") {
        eprintln!("bench: GET {}", cx.label);
        get_big(cx, rep).await?;
    }
    if s.runs_phase("put") {
        eprintln!("bench: PUT {}", cx.label);
        put_big(cx, rep).await?;
    }
    // Before the concurrent loads: the allocator keeps what they touched
    // resident, which would hide whether big transfers grow the RSS.
    if let Some(n) = s.big4
        && s.runs_phase("big4")
    {
        eprintln!("bench: {} through the gateway", size_label(n));
        big4(cx, rep, n).await?;
    }
    if s.runs_phase("propfind") {
        eprintln!("bench: PROPFIND");
        propfind(cx, rep).await?;
    }
    if s.runs_phase("rates") {
        eprintln!("bench: request rates");
        rates(cx, rep).await;
    }
    if s.runs_phase("mixed") {
        eprintln!("bench: mixed load");
        mixed(cx, rep).await;
    }
    if s.peers && s.runs_phase("peers") {
        peers_all(cx, rep).await?;
    }
    Ok(())
}

async fn setup(cx: &Ctx<'_>) -> anyhow::Result<()> {
    let d = &cx.direct;
    for dir in ["/big", "/list", "/mix", "/mixput"] {
        d.mkdir(dir).await?;
    }
    eprintln!(
        "bench: seeding {} files and a {} file",
        cx.s.files, cx.label
    );
    futures::stream::iter(0..cx.s.files)
        .map(|i| {
            let d = d.clone();
            async move { d.touch(&format!("/list/f{i:05}.txt")).await }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await?;
    for i in 0..SMALL_FILES {
        d.put(&format!("/mix/s{i}.bin"), 1000 + i, cx.s.small)
            .await?;
    }
    d.put("/big/get.bin", SEED_GET, cx.s.size).await?;
    // The gateway learns the account on its first request.
    cx.dav.propfind("/", 0).await?;
    if let Some(c) = &cx.cdav {
        c.propfind("/", 0)
            .await
            .context("Cloudreve's /dav does not answer PROPFIND with the new account")?;
    }
    Ok(())
}

async fn get_big(cx: &Ctx<'_>, rep: &mut Report) -> anyhow::Result<()> {
    let size = cx.s.size;
    let want = expected(SEED_GET, size).await?;
    let metric = format!("GET {}", cx.label);
    cx.dav.get("/big/get.bin").await?;
    cx.direct.get("/big/get.bin").await?;
    let mut c = Runs::default();
    if let Some(cdav) = &cx.cdav {
        cdav_get(cdav, &mut c, size, want, None).await;
    }
    let sampler = cx.gw.pid().map(PeakSampler::start);
    let (mut g, mut d) = (Vec::new(), Vec::new());
    for _ in 0..cx.s.runs {
        let (t, (n, h)) = timed(cx.dav.get("/big/get.bin")).await?;
        check(rep, n == size && h == want, || {
            format!("gateway GET: {n} bytes, digest {h:x}, want {size} / {want:x}")
        });
        g.push(mib_per_s(size, t));
        let (t, (n, h)) = timed(cx.direct.get("/big/get.bin")).await?;
        check(rep, n == size && h == want, || {
            format!("direct GET: {n} bytes, digest {h:x}, want {size} / {want:x}")
        });
        d.push(mib_per_s(size, t));
        if let Some(cdav) = &cx.cdav {
            cdav_get(cdav, &mut c, size, want, Some(size)).await;
        }
    }
    if let Some(sm) = sampler {
        rep.memory
            .push(MemRow::new(&metric, "gateway", sm.finish().await));
    }
    rep.rows.push(row(&metric, "gateway", "MiB/s", g, true));
    rep.rows.push(row(&metric, "direct", "MiB/s", d, true));
    if cx.cdav.is_some() {
        rep.rows.push(c.into_row(&metric, CDAV, "MiB/s"));
    }
    Ok(())
}

/// One GET of the big file from `/dav`, checked; `timed_size` records the
/// throughput (`None`: warm-up).
async fn cdav_get(cdav: &Dav, c: &mut Runs, size: u64, want: u64, timed_size: Option<u64>) {
    if !c.live() {
        return;
    }
    match timed(cdav.get("/big/get.bin")).await {
        Ok((t, (n, h))) if n == size && h == want => {
            if let Some(sz) = timed_size {
                c.values.push(mib_per_s(sz, t));
            }
        }
        Ok((_, (n, h))) => c.fail(format!(
            "GET returned wrong bytes: {n} bytes, digest {h:x}, want {size} / {want:x}"
        )),
        Err(e) => c.fail(format!("GET failed: {e:#}")),
    }
}

async fn put_big(cx: &Ctx<'_>, rep: &mut Report) -> anyhow::Result<()> {
    let size = cx.s.size;
    let want = expected(SEED_PUT, size).await?;
    let metric = format!("PUT {}", cx.label);
    cx.dav.put("/big/put-gw.bin", SEED_PUT, size).await?;
    cx.direct.put("/big/put-direct.bin", SEED_PUT, size).await?;
    let mut c = Runs::default();
    if cx.cdav.is_some() {
        cdav_put(cx, &mut c, size, want, false).await;
    }
    let sampler = cx.gw.pid().map(PeakSampler::start);
    let (mut g, mut d) = (Vec::new(), Vec::new());
    for _ in 0..cx.s.runs {
        let (t, ()) = timed(cx.dav.put("/big/put-gw.bin", SEED_PUT, size)).await?;
        g.push(mib_per_s(size, t));
        let (n, h) = stored(cx, "/big/put-gw.bin").await?;
        check(rep, h == want, || {
            format!("gateway PUT: stored {n} bytes, digest {h:x}, want {size} / {want:x}")
        });
        let (t, ()) = timed(cx.direct.put("/big/put-direct.bin", SEED_PUT, size)).await?;
        d.push(mib_per_s(size, t));
        let (n, h) = stored(cx, "/big/put-direct.bin").await?;
        check(rep, h == want, || {
            format!("direct PUT: stored {n} bytes, digest {h:x}, want {size} / {want:x}")
        });
        if cx.cdav.is_some() {
            cdav_put(cx, &mut c, size, want, true).await;
        }
    }
    if let Some(sm) = sampler {
        rep.memory
            .push(MemRow::new(&metric, "gateway", sm.finish().await));
    }
    rep.rows.push(row(&metric, "gateway", "MiB/s", g, true));
    rep.rows.push(row(&metric, "direct", "MiB/s", d, true));
    if cx.cdav.is_some() {
        rep.rows.push(c.into_row(&metric, CDAV, "MiB/s"));
    }
    Ok(())
}

/// One PUT of the big file to `/dav` (with a `Content-Length`: Cloudreve
/// stores a chunked PUT as 0 bytes), then what was stored is checked.
async fn cdav_put(cx: &Ctx<'_>, c: &mut Runs, size: u64, want: u64, record: bool) {
    let Some(cdav) = &cx.cdav else { return };
    if !c.live() {
        return;
    }
    let path = "/big/put-cdav.bin";
    match timed(cdav.put(path, SEED_PUT, size)).await {
        Ok((t, ())) => {
            if record {
                c.values.push(mib_per_s(size, t));
            }
        }
        Err(e) => return c.fail(format!("PUT failed: {e:#}")),
    }
    match stored(cx, path).await {
        Ok((_, h)) if h == want => {}
        Ok((n, h)) => c.fail(format!(
            "PUT stored wrong bytes: {n} bytes, digest {h:x}, want {size} / {want:x}"
        )),
        Err(e) => c.fail(format!("reading back its PUT failed: {e:#}")),
    }
}

fn propfind_metric(files: usize) -> String {
    format!("PROPFIND Depth 1, {files} files")
}

async fn propfind(cx: &Ctx<'_>, rep: &mut Report) -> anyhow::Result<()> {
    let files = cx.s.files;
    let metric = propfind_metric(files);
    cx.dav.propfind("/list/", 1).await?;
    cx.direct.list("/list", DIRECT_PAGE).await?;
    let mut c = Runs::default();
    if let Some(cdav) = &cx.cdav {
        cdav_propfind(cdav, &mut c, files, false).await;
    }
    let sampler = cx.gw.pid().map(PeakSampler::start);
    let (mut g, mut d) = (Vec::new(), Vec::new());
    for _ in 0..cx.s.runs {
        let (t, n) = timed(cx.dav.propfind("/list/", 1)).await?;
        check(rep, n == files + 1, || {
            format!("gateway PROPFIND: {n} responses, want {}", files + 1)
        });
        g.push(t);
        let (t, n) = timed(cx.direct.list("/list", DIRECT_PAGE)).await?;
        check(rep, n == files, || {
            format!("direct listing: {n} files, want {files}")
        });
        d.push(t);
        if let Some(cdav) = &cx.cdav {
            cdav_propfind(cdav, &mut c, files, true).await;
        }
    }
    if let Some(sm) = sampler {
        rep.memory
            .push(MemRow::new(&metric, "gateway", sm.finish().await));
    }
    rep.rows.push(row(&metric, "gateway", "s", g, true));
    rep.rows.push(row(&metric, "direct", "s", d, true));
    if let Some(r) = rep.rows.last_mut() {
        r.note = format!("all pages of {DIRECT_PAGE}");
    }
    if cx.cdav.is_some() {
        rep.rows.push(c.into_row(&metric, CDAV, "s"));
    }
    Ok(())
}

async fn cdav_propfind(cdav: &Dav, c: &mut Runs, files: usize, record: bool) {
    if !c.live() {
        return;
    }
    match timed(cdav.propfind("/list/", 1)).await {
        Ok((t, n)) if n == files + 1 => {
            if record {
                c.values.push(t);
            }
        }
        Ok((_, n)) => c.fail(format!("PROPFIND gave {n} responses, want {}", files + 1)),
        Err(e) => c.fail(format!("PROPFIND failed: {e:#}")),
    }
}

fn push_load(rep: &mut Report, name: &str, who: &str, r: LoadResult) {
    rep.loads.push(LoadRow {
        name: name.into(),
        who: who.into(),
        result: r,
    });
}

/// The WebDAV subjects: the gateway, and `/dav` in external mode.
fn webdav_subjects(cx: &Ctx<'_>) -> Vec<(&'static str, Dav)> {
    let mut v = vec![("gateway", cx.dav.clone())];
    v.extend(cx.cdav.clone().map(|c| (CDAV, c)));
    v
}

async fn rates(cx: &Ctx<'_>, rep: &mut Report) {
    let dur = cx.s.rps_duration;
    for (who, dav) in webdav_subjects(cx) {
        let r = load::run(RPS_CLIENTS, dur, move |_, _| {
            let dav = dav.clone();
            async move { dav.propfind("/big/get.bin", 0).await.map(drop) }
        })
        .await;
        push_load(rep, "PROPFIND Depth 0, warm file", who, r);
    }
    let direct = cx.direct.clone();
    let r = load::run(RPS_CLIENTS, dur, move |_, _| {
        let d = direct.clone();
        async move { d.info("/big/get.bin").await }
    })
    .await;
    push_load(rep, "GET /file/info, same file", "direct", r);

    for (who, dav) in webdav_subjects(cx) {
        let r = load::run(RPS_CLIENTS, dur, move |_, _| {
            let dav = dav.clone();
            async move {
                let s = dav.options("/").await?;
                anyhow::ensure!(s.is_success(), "OPTIONS: {s}");
                Ok(())
            }
        })
        .await;
        push_load(rep, "OPTIONS /, authenticated (cache warm)", who, r);
    }
    for (who, dav) in webdav_subjects(cx) {
        let anon = dav.with_auth(None);
        let r = load::run(RPS_CLIENTS, dur, move |_, _| {
            let dav = anon.clone();
            async move {
                let s = dav.status_of_get("/big/get.bin").await?;
                anyhow::ensure!(s.as_u16() == 401, "anonymous GET: {s}");
                Ok(())
            }
        })
        .await;
        push_load(rep, "GET without credentials (401)", who, r);
    }
}

async fn mixed(cx: &Ctx<'_>, rep: &mut Report) {
    let (small, clients, dur) = (cx.s.small, cx.s.clients, cx.s.duration);
    let name = format!("mixed PROPFIND/GET/PUT, {clients} clients");
    let dav = cx.dav.clone();
    let sampler = cx.gw.pid().map(PeakSampler::start);
    let r = mixed_dav(dav, "c", clients, dur, small).await;
    push_load(rep, &name, "gateway", r);
    if let Some(sm) = sampler {
        rep.memory
            .push(MemRow::new(&name, "gateway", sm.finish().await));
    }
    let direct = cx.direct.clone();
    let r = load::run(clients, dur, move |c, i| {
        let d = direct.clone();
        async move {
            let k = c as u64 + i;
            match k % 3 {
                0 => d.list("/mix", DIRECT_PAGE).await.map(drop),
                1 => {
                    let (n, _) = d.get(&format!("/mix/s{}.bin", k % SMALL_FILES)).await?;
                    anyhow::ensure!(n == small, "GET: {n} bytes, want {small}");
                    Ok(())
                }
                _ => d.put(&format!("/mixput/d{c}.bin"), k, small).await,
            }
        }
    })
    .await;
    push_load(rep, &name, "direct", r);
    if let Some(cdav) = cx.cdav.clone() {
        let r = mixed_dav(cdav, "v", clients, dur, small).await;
        push_load(rep, &name, CDAV, r);
    }
}

/// The mixed load over WebDAV; each client PUTs to `/mixput/{prefix}{c}.bin`.
async fn mixed_dav(
    dav: Dav,
    prefix: &'static str,
    clients: usize,
    dur: std::time::Duration,
    small: u64,
) -> LoadResult {
    load::run(clients, dur, move |c, i| {
        let dav = dav.clone();
        async move {
            let k = c as u64 + i;
            match k % 3 {
                0 => dav.propfind("/mix/", 1).await.map(drop),
                1 => {
                    let (n, _) = dav.get(&format!("/mix/s{}.bin", k % SMALL_FILES)).await?;
                    anyhow::ensure!(n == small, "GET: {n} bytes, want {small}");
                    Ok(())
                }
                _ => dav.put(&format!("/mixput/{prefix}{c}.bin"), k, small).await,
            }
        }
    })
    .await
}

async fn big4(cx: &Ctx<'_>, rep: &mut Report, n: u64) -> anyhow::Result<()> {
    let label = size_label(n);
    let Some(pid) = cx.gw.pid() else {
        eprintln!("bench: in-process gateway, skipping the {label} memory check");
        return Ok(());
    };
    cx.direct.put("/big/get4.bin", SEED_GET4, n).await?;
    let want = expected(SEED_GET4, n).await?;
    let sm = PeakSampler::start(pid);
    let (t, (len, h)) = timed(cx.dav.get("/big/get4.bin")).await?;
    let peak = sm.finish().await;
    check(rep, len == n && h == want, || {
        format!("gateway GET {label}: {len} bytes, digest {h:x}, want {want:x}")
    });
    rep.memory
        .push(MemRow::new(&format!("GET {label}"), "gateway", peak));
    rep.rows.push(row(
        &format!("GET {label} (1 run)"),
        "gateway",
        "MiB/s",
        vec![mib_per_s(n, t)],
        false,
    ));
    cx.direct.delete("/big/get4.bin").await?;

    let want = expected(SEED_PUT4, n).await?;
    let sm = PeakSampler::start(pid);
    let (t, ()) = timed(cx.dav.put("/big/put4.bin", SEED_PUT4, n)).await?;
    let peak = sm.finish().await;
    let (len, h) = stored(cx, "/big/put4.bin").await?;
    check(rep, h == want, || {
        format!("gateway PUT {label}: stored {len} bytes, digest {h:x}, want {want:x}")
    });
    rep.memory
        .push(MemRow::new(&format!("PUT {label}"), "gateway", peak));
    rep.rows.push(row(
        &format!("PUT {label} (1 run)"),
        "gateway",
        "MiB/s",
        vec![mib_per_s(n, t)],
        false,
    ));
    cx.direct.delete("/big/put4.bin").await?;
    Ok(())
}

/// The local directory the peers serve: the listing folder and the big file.
async fn peer_dir(cx: &Ctx<'_>) -> anyhow::Result<PathBuf> {
    let root = cx.work.join("peer");
    let list = root.join("list");
    std::fs::create_dir_all(&list)?;
    std::fs::create_dir_all(root.join("big"))?;
    for i in 0..cx.s.files {
        std::fs::File::create(list.join(format!("f{i:05}.txt")))?;
    }
    let (big, size) = (root.join("big/get.bin"), cx.s.size);
    tokio::task::spawn_blocking(move || data::write_file(&big, SEED_GET, size)).await??;
    Ok(root)
}

async fn peers_all(cx: &Ctx<'_>, rep: &mut Report) -> anyhow::Result<()> {
    let root = peer_dir(cx).await?;
    for kind in ["rclone serve webdav", "Apache mod_dav"] {
        eprintln!("bench: peer {kind}");
        let started = if kind.starts_with("rclone") {
            peers::rclone(&root).await
        } else {
            peers::apache(&root, &cx.work.join("apache")).await
        };
        match started {
            Ok(Some(peer)) => {
                let r = peer_measure(cx, rep, &peer, &root).await;
                peer.stop().await;
                r?;
            }
            Ok(None) => {
                for (m, u) in peer_metrics(cx) {
                    rep.rows.push(missing(&m, kind, u, "not installed"));
                }
            }
            Err(e) => {
                for (m, u) in peer_metrics(cx) {
                    rep.rows
                        .push(missing(&m, kind, u, &format!("failed to start: {e:#}")));
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&root);
    Ok(())
}

fn peer_metrics(cx: &Ctx<'_>) -> [(String, &'static str); 3] {
    [
        (propfind_metric(cx.s.files), "s"),
        (format!("GET {}", cx.label), "MiB/s"),
        (format!("PUT {}", cx.label), "MiB/s"),
    ]
}

async fn peer_measure(
    cx: &Ctx<'_>,
    rep: &mut Report,
    peer: &Peer,
    root: &Path,
) -> anyhow::Result<()> {
    let dav = Dav::new(cx.http.clone(), &peer.url, None);
    let (files, size) = (cx.s.files, cx.s.size);
    let [(pm, _), (gm, _), (um, _)] = peer_metrics(cx);
    let sampler = peer.pid.map(PeakSampler::start);

    dav.propfind("/list/", 1).await?;
    let mut runs = Vec::new();
    for _ in 0..cx.s.runs {
        let (t, n) = timed(dav.propfind("/list/", 1)).await?;
        check(rep, n == files + 1, || {
            format!("{} PROPFIND: {n} responses, want {}", peer.name, files + 1)
        });
        runs.push(t);
    }
    rep.rows.push(row(&pm, peer.name, "s", runs, true));

    let want = expected(SEED_GET, size).await?;
    dav.get("/big/get.bin").await?;
    let mut runs = Vec::new();
    for _ in 0..cx.s.runs {
        let (t, (n, h)) = timed(dav.get("/big/get.bin")).await?;
        check(rep, n == size && h == want, || {
            format!("{} GET: {n} bytes, digest {h:x}, want {want:x}", peer.name)
        });
        runs.push(mib_per_s(size, t));
    }
    rep.rows.push(row(&gm, peer.name, "MiB/s", runs, true));

    let want = expected(SEED_PUT, size).await?;
    dav.put("/big/put.bin", SEED_PUT, size).await?;
    let mut runs = Vec::new();
    for _ in 0..cx.s.runs {
        let (t, ()) = timed(dav.put("/big/put.bin", SEED_PUT, size)).await?;
        runs.push(mib_per_s(size, t));
        let h = digest_on_disk(Some(root.join("big/put.bin"))).await?;
        check(rep, h == want, || {
            format!("{} PUT: digest {h:x}, want {want:x}", peer.name)
        });
    }
    rep.rows.push(row(&um, peer.name, "MiB/s", runs, true));
    if let Some(sm) = sampler {
        rep.memory.push(MemRow::new(
            "its PROPFIND, GET and PUT runs",
            peer.name,
            sm.finish().await,
        ));
    }
    Ok(())
}

fn ratio_target(rep: &Report, name: &str, metric: &str, goal: f64, at_least: bool) -> Target {
    let r = match (rep.median(metric, "gateway"), rep.median(metric, "direct")) {
        (Some(g), Some(d)) if d > 0.0 => Some(g / d),
        _ => None,
    };
    Target {
        name: name.into(),
        goal: format!("{} {goal:.2}", if at_least { ">=" } else { "<=" }),
        measured: r.map_or("-".into(), |r| format!("{r:.3}")),
        met: r.map(|r| if at_least { r >= goal } else { r <= goal }),
    }
}

fn targets(rep: &mut Report, s: &Settings) {
    let label = size_label(s.size);
    let mut t = vec![
        ratio_target(
            rep,
            &format!("GET {label} throughput, gateway / direct"),
            &format!("GET {label}"),
            0.90,
            true,
        ),
        ratio_target(
            rep,
            &format!("PUT {label} throughput, gateway / direct"),
            &format!("PUT {label}"),
            0.85,
            true,
        ),
        ratio_target(
            rep,
            &format!("PROPFIND {} files time, gateway / direct", s.files),
            &propfind_metric(s.files),
            1.25,
            false,
        ),
    ];
    let gw_peaks: Vec<(String, u64)> = rep
        .memory
        .iter()
        .filter(|m| {
            m.who == "gateway" && (m.during.starts_with("GET") || m.during.starts_with("PUT"))
        })
        .filter_map(|m| Some((m.during.clone(), m.peak?)))
        .collect();
    for (during, peak) in &gw_peaks {
        t.push(Target {
            name: format!("gateway peak RSS during {during}"),
            goal: "<= 64 MiB".into(),
            measured: format!("{:.1} MiB", *peak as f64 / 1048576.0),
            met: Some(*peak <= RSS_LIMIT),
        });
    }
    if let Some(n) = s.big4 {
        let big = size_label(n);
        let peak_of = |prefix: &str| {
            gw_peaks
                .iter()
                .filter(|(d, _)| d.ends_with(prefix))
                .map(|(_, p)| *p)
                .max()
        };
        if let (Some(small), Some(large)) = (peak_of(&label), peak_of(&big)) {
            let growth = large as i64 - small as i64;
            t.push(Target {
                name: format!("peak RSS growth {label} -> {big} (flat)"),
                goal: "<= 8 MiB".into(),
                measured: format!("{:+.1} MiB", growth as f64 / 1048576.0),
                met: Some(growth <= FLAT_SLACK as i64),
            });
        }
    }
    for l in rep.loads.iter().filter(|l| l.name.starts_with("mixed")) {
        t.push(Target {
            name: format!("{} errors ({})", l.name, l.who),
            goal: "0".into(),
            measured: l.result.errors.to_string(),
            met: Some(l.result.errors == 0),
        });
    }
    for (metric, higher_better) in [
        (propfind_metric(s.files), false),
        (format!("GET {label}"), true),
        (format!("PUT {label}"), true),
    ] {
        let g = rep.median(&metric, "gateway");
        let r = rep.median(&metric, "rclone serve webdav");
        if let (Some(g), Some(r)) = (g, r) {
            t.push(Target {
                name: format!("beat rclone: {metric}"),
                goal: if higher_better {
                    "> rclone"
                } else {
                    "< rclone"
                }
                .into(),
                measured: format!("{:.2}x", g / r),
                met: Some(if higher_better { g > r } else { g < r }),
            });
        }
    }
    rep.targets = t;
}

/// Gateway / `/dav` for every figure and load both have (external mode).
fn dav_ratios(rep: &Report) -> Vec<Ratio> {
    let mut out = Vec::new();
    for r in rep.rows.iter().filter(|r| r.who == "gateway") {
        if let (Some(g), Some(c)) = (r.median, rep.median(&r.metric, CDAV))
            && c > 0.0
        {
            out.push(Ratio::new(&r.metric, &r.unit, g / c, r.unit != "s"));
        }
    }
    for l in rep.loads.iter().filter(|l| l.who == "gateway") {
        let other = rep.loads.iter().find(|o| o.name == l.name && o.who == CDAV);
        if let Some(o) = other
            && o.result.rps > 0.0
            && l.result.errors == 0
            && o.result.errors == 0
        {
            out.push(Ratio::new(
                &l.name,
                "req/s",
                l.result.rps / o.result.rps,
                true,
            ));
        }
    }
    out
}
