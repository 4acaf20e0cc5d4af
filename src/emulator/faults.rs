//! Fault injection for tests.

use http::Method;
use std::time::Duration;

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
pub fn take(faults: &mut Vec<Fault>, method: &Method, path: &str) -> Option<FaultKind> {
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
