//! Fault injection for tests.

use http::Method;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

/// A barrier for [`FaultKind::Hold`]: the matching request waits at the
/// gate until the test opens it, and the test can wait until a request
/// has arrived — so it can act upstream "between" two steps of a client
/// without sleeping.
#[derive(Clone)]
pub struct Gate(Arc<GateState>);

struct GateState {
    arrived: watch::Sender<bool>,
    open: watch::Sender<bool>,
}

impl Gate {
    /// A closed gate no request has reached.
    pub fn new() -> Self {
        Self(Arc::new(GateState {
            arrived: watch::Sender::new(false),
            open: watch::Sender::new(false),
        }))
    }

    /// Resolves once a request is waiting at (or has passed) the gate.
    pub async fn arrived(&self) {
        let mut rx = self.0.arrived.subscribe();
        let _ = rx.wait_for(|a| *a).await;
    }

    /// Lets the waiting request (and any later one) through.
    pub fn open(&self) {
        self.0.open.send_replace(true);
    }

    /// Called by the request: announce, then wait until opened.
    pub(crate) async fn pass(&self) {
        self.0.arrived.send_replace(true);
        let mut rx = self.0.open.subscribe();
        let _ = rx.wait_for(|o| *o).await;
    }
}

impl Default for Gate {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("arrived", &*self.0.arrived.borrow())
            .field("open", &*self.0.open.borrow())
            .finish()
    }
}

impl PartialEq for Gate {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Gate {}

/// What an injected fault does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// Delay the request, then serve it normally.
    Latency(Duration),
    /// Answer with this HTTP status and an empty body.
    HttpStatus(u16),
    /// Answer HTTP 200 with `{"code":-1}`.
    CodeMinusOne,
    /// Serve the response but abort the connection after this many body bytes.
    DropAfterBytes(u64),
    /// Abort the connection without any response.
    DropConnection,
    /// Hold the request at a [`Gate`] until the test opens it, then serve
    /// it normally.
    Hold(Gate),
}

/// A fault rule matched by method and path prefix (full path, e.g. `/api/v4/file/content`).
#[derive(Debug, Clone)]
pub struct Fault {
    /// Method to match; `None` matches any.
    pub method: Option<Method>,
    /// Path prefix to match.
    pub path_prefix: String,
    /// The effect.
    pub kind: FaultKind,
    /// How many times it fires; `None` = forever.
    pub times: Option<u32>,
}

/// Takes the first matching fault, decrementing its counter.
pub(super) fn take(faults: &mut Vec<Fault>, method: &Method, path: &str) -> Option<FaultKind> {
    let idx = faults.iter().position(|f| {
        f.method.as_ref().is_none_or(|m| m == method) && path.starts_with(&f.path_prefix)
    })?;
    let kind = faults[idx].kind.clone();
    if let Some(t) = faults[idx].times.as_mut() {
        *t = t.saturating_sub(1);
        if *t == 0 {
            faults.remove(idx);
        }
    }
    Some(kind)
}
