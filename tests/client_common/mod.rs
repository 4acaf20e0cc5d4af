//! Shared by the tests that drive real client programs: the gateway's
//! access log captured per test (the request mix a client produced), and
//! running a program with a deadline.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Mutex, Once};
use std::time::Duration;

use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// One access-log line: method, path, status.
#[derive(Debug, Clone)]
pub(crate) struct Access {
    /// Request method.
    pub method: String,
    /// Request path (as sent).
    pub path: String,
    /// Response status.
    pub status: u16,
}

static LOG: Mutex<Vec<Access>> = Mutex::new(Vec::new());
static INIT: Once = Once::new();

/// Tests of one binary take turns (the access log is process-wide).
pub(crate) static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct Recorder;

#[derive(Default)]
struct Fields {
    method: String,
    path: String,
    status: u16,
}

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "method" => self.method = format!("{value:?}"),
            "path" => self.path = format!("{value:?}"),
            _ => {}
        }
    }
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        if field.name() == "status" {
            self.status = value as u16;
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Recorder {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if event.metadata().target() != "access" {
            return;
        }
        let mut f = Fields::default();
        event.record(&mut f);
        if let Ok(mut l) = LOG.lock() {
            l.push(Access {
                method: f.method,
                path: f.path,
                status: f.status,
            });
        }
    }
}

/// Starts capturing the gateway's access log (idempotent) and clears it.
pub(crate) fn capture() {
    INIT.call_once(|| {
        let _ = tracing_subscriber::registry().with(Recorder).try_init();
    });
    take();
}

/// The access-log lines captured since the last call.
pub(crate) fn take() -> Vec<Access> {
    LOG.lock()
        .map(|mut l| std::mem::take(&mut *l))
        .unwrap_or_default()
}

/// `METHOD status×count …` per method, e.g. `PUT 201×3`.
pub(crate) fn mix(log: &[Access]) -> String {
    let mut m: BTreeMap<&str, BTreeMap<u16, usize>> = BTreeMap::new();
    for a in log {
        *m.entry(&a.method).or_default().entry(a.status).or_default() += 1;
    }
    m.iter()
        .map(|(meth, st)| {
            let s: Vec<String> = st.iter().map(|(s, n)| format!("{s}×{n}")).collect();
            format!("{meth} {}", s.join(" "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Fails when any captured request was answered with a 5xx.
pub(crate) fn assert_no_server_errors(log: &[Access]) {
    let bad: Vec<&Access> = log.iter().filter(|a| a.status >= 500).collect();
    assert!(bad.is_empty(), "server errors: {bad:?}");
}

/// The output of a finished program.
#[derive(Debug)]
pub(crate) struct Output {
    /// Exit success.
    pub ok: bool,
    /// Standard output.
    pub stdout: String,
    /// Standard output, raw bytes.
    pub raw: Vec<u8>,
    /// Standard error.
    pub stderr: String,
}

/// Runs `cmd` (stdin: `input`) with a deadline of `limit`; panics when the
/// program is missing or overruns.
pub(crate) async fn run(mut cmd: tokio::process::Command, input: &[u8], limit: Duration) -> Output {
    use tokio::io::AsyncWriteExt as _;
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let shown = format!("{cmd:?}");
    let mut child = cmd.spawn().unwrap_or_else(|e| {
        panic!("cannot start {shown}: {e} (install the test tools: scripts/install-test-tools.sh)")
    });
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    let feed = tokio::spawn(async move {
        let _ = stdin.write_all(&input).await;
        let _ = stdin.shutdown().await;
    });
    let out = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{shown} did not finish within {limit:?}"))
        .expect("wait");
    let _ = feed.await;
    Output {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        raw: out.stdout.clone(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
