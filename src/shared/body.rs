//! The one streaming body type on both sides of the front layer.

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty, Full, combinators::UnsyncBoxBody};

/// A streaming body: request bodies as they arrive, responses as they are
/// produced. Never held whole.
pub type BoxBody = UnsyncBoxBody<Bytes, std::io::Error>;

/// A body holding `bytes`.
pub fn full_body(bytes: impl Into<Bytes>) -> BoxBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// An empty body.
pub fn empty_body() -> BoxBody {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}
