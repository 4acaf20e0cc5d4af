//! Mapping of upstream errors to WebDAV outcomes (docs/UPSTREAM.md §8).
//!
//! `FsError` has no 409/412/423/502/503: for those the wanted status is
//! recorded in the [`RequestCtx`] and `GeneralFailure` (500) is returned;
//! the gateway then rewrites the 500 into the wanted status.
//!
//! Upstream outages are answered so that clients retry: an unreachable
//! or failing Cloudreve (connection refused or dropped, HTTP 5xx/429, an
//! untyped `code: -1` outside the name checks) gives 503, an upstream
//! request that timed out 504, an answer the gateway cannot use 502 —
//! all three with `Retry-After`.

use std::time::Duration;

use dav_server::fs::FsError;
use http::StatusCode;

use crate::cloudreve::{Error, ErrorCode};

use super::ctx::RequestCtx;

/// `Retry-After` sent with 502, 503 and 504 answers.
pub const RETRY_AFTER: Duration = Duration::from_secs(30);

/// Operations whose `code: -1` means a refused name or value (untyped
/// refusals: in 4.18 e.g. a name too long for the local policy's stored
/// file at upload, or a metadata value too long; illegal names give 40052);
/// elsewhere `-1` is an untyped server failure (docs/UPSTREAM.md §1.3, §8).
const NAME_CHECKED_OPS: &[&str] = &["upload", "metadata"];

/// Maps `e` to an `FsError`, recording statuses `FsError` cannot carry in
/// `ctx` and logging one line per upstream failure.
pub fn map_err(ctx: &RequestCtx, op: &str, e: &Error) -> FsError {
    let fs = classify_in(op, e);
    if e.is_locked() {
        ctx.record_conflicts(e.lock_conflicts());
    }
    match fs {
        Outcome::Fs(f) => {
            tracing::debug!(op, error = %e, "upstream refused ({f:?})");
            f
        }
        Outcome::Status(s, retry) => {
            if s.is_server_error() {
                tracing::warn!(op, error = %e, status = s.as_u16(), "upstream failure");
            } else {
                tracing::info!(op, error = %e, status = s.as_u16(), "upstream refused");
            }
            ctx.want(s, retry);
            FsError::GeneralFailure
        }
    }
}

/// What an upstream error means for the client.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    /// Expressible as an `FsError`.
    Fs(FsError),
    /// Needs a status rewrite (and maybe `Retry-After`).
    Status(StatusCode, Option<Duration>),
}

/// Classifies an upstream error of a call that checks names (`code: -1`
/// is a refused name there).
pub fn classify(e: &Error) -> Outcome {
    classify_in("metadata", e)
}

/// Classifies an upstream error of operation `op` (`"list"`, `"upload"`…).
pub fn classify_in(op: &str, e: &Error) -> Outcome {
    use Outcome::*;
    let retry = Some(RETRY_AFTER);
    if e.is_not_found() {
        return Fs(FsError::NotFound);
    }
    if e.is_conflict_exists() {
        return Fs(FsError::Exists);
    }
    if e.is_locked() {
        return Status(StatusCode::LOCKED, None);
    }
    if e.is_permission_denied() {
        return Fs(FsError::Forbidden);
    }
    if e.is_too_large() {
        return Fs(FsError::TooLarge);
    }
    if e.is_insufficient_capacity() {
        return Fs(FsError::InsufficientStorage);
    }
    if e.is_stale_version() {
        return Status(StatusCode::PRECONDITION_FAILED, None);
    }
    if e.is_login_required() {
        return Status(StatusCode::SERVICE_UNAVAILABLE, Some(RETRY_AFTER));
    }
    match e {
        Error::Api(a) => match a.kind {
            // Invalid names / extensions (40052, -1 on name checks).
            ErrorCode::IllegalObjectName => Fs(FsError::Forbidden),
            _ if a.code == -1 && NAME_CHECKED_OPS.iter().any(|o| op.starts_with(o)) => {
                Fs(FsError::Forbidden)
            }
            _ if a.code == -1 => Status(StatusCode::SERVICE_UNAVAILABLE, retry),
            ErrorCode::PolicyNotAllowed => Fs(FsError::InsufficientStorage),
            ErrorCode::Conflict | ErrorCode::ConflictUploadOngoing => {
                Status(StatusCode::CONFLICT, None)
            }
            ErrorCode::NotFullySuccess | ErrorCode::BatchOperationNotFullyCompleted => {
                // One URI per call here: classify its entry.
                match a
                    .aggregated
                    .as_ref()
                    .and_then(|g| g.entries.values().next())
                {
                    Some(inner) => classify_in(op, &Error::Api(Box::new(inner.clone()))),
                    None => Status(StatusCode::BAD_GATEWAY, retry),
                }
            }
            _ => Status(StatusCode::BAD_GATEWAY, retry),
        },
        Error::Transport(t) if t.is_timeout() => Status(StatusCode::GATEWAY_TIMEOUT, retry),
        Error::Transport(_) | Error::ShortBody { .. } => {
            Status(StatusCode::SERVICE_UNAVAILABLE, retry)
        }
        Error::UnexpectedStatus { status, .. } if *status >= 500 || *status == 429 => {
            Status(StatusCode::SERVICE_UNAVAILABLE, retry)
        }
        Error::InvalidUri(_) => Fs(FsError::Forbidden),
        _ => Status(StatusCode::BAD_GATEWAY, retry),
    }
}
