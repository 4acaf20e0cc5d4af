//! The plain answers the WebDAV layer writes itself (outside dav-server):
//! a status with a short text, and how a file-system error or a status the
//! file system asked for becomes one.

use dav_server::fs::FsError;
use http::{HeaderValue, Response, StatusCode, header};

use crate::shared::{BoxBody, full_body};

use super::ctx::RequestCtx;
use super::errors::RETRY_AFTER;

/// 503 (with `Retry-After`): the shared lock table could not be used, so
/// no lock was granted, changed or checked.
pub(crate) fn locks_unavailable() -> Response<BoxBody> {
    text(
        StatusCode::SERVICE_UNAVAILABLE,
        "the shared lock table is unavailable; try again later",
    )
}

/// `status` with `msg` as a plain-text body (and `Retry-After` for the
/// statuses that mean "try again").
pub(crate) fn text(status: StatusCode, msg: &str) -> Response<BoxBody> {
    let mut r = Response::new(full_body(format!("{msg}\n")));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if matches!(
        status,
        StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT
    ) {
        r.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(RETRY_AFTER.as_secs()),
        );
    }
    r
}

/// Whether dav-server's answer `got` should give way to the `wanted` status
/// the file system recorded. A 500 always does. dav-server also reads a
/// failed lookup as "absent": a destination whose parent could not be
/// listed becomes 409, a source 404, a destination 405. When an upstream
/// call of this request failed (a wanted 5xx), those answers describe the
/// failure, not the tree, and the client must hear "retry".
pub(crate) fn masks_upstream_failure(got: StatusCode, wanted: StatusCode) -> bool {
    got == StatusCode::INTERNAL_SERVER_ERROR
        || (wanted.is_server_error()
            && matches!(
                got,
                StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED | StatusCode::CONFLICT
            ))
}

/// The status dav-server gives an `FsError`.
pub(crate) fn fs_status(e: FsError) -> StatusCode {
    match e {
        FsError::NotFound => StatusCode::NOT_FOUND,
        FsError::Forbidden => StatusCode::FORBIDDEN,
        FsError::Exists => StatusCode::CONFLICT,
        FsError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        FsError::InsufficientStorage => StatusCode::INSUFFICIENT_STORAGE,
        FsError::NotImplemented => StatusCode::NOT_IMPLEMENTED,
        _ => StatusCode::BAD_GATEWAY,
    }
}

/// The plain answer for a file-system error (or the status the file
/// system asked for when it failed generally).
pub(crate) fn error_response(ctx: &RequestCtx, e: FsError) -> Response<BoxBody> {
    let status = match ctx.wanted() {
        Some(w) if e == FsError::GeneralFailure => w.status,
        _ => fs_status(e),
    };
    text(status, status.canonical_reason().unwrap_or("error"))
}
