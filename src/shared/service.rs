//! The interface between the front layer and the WebDAV service behind it.

use std::sync::Arc;

use async_trait::async_trait;
use http::{Request, Response};

use super::body::BoxBody;
use super::principal::Principal;

/// The inner WebDAV service: receives only requests that passed the front
/// layer, with the authenticated principal. The `Authorization` header has
/// been removed.
#[async_trait]
pub trait DavService: Send + Sync {
    /// Handles one request.
    async fn handle(&self, req: Request<BoxBody>, principal: Arc<Principal>) -> Response<BoxBody>;
}
