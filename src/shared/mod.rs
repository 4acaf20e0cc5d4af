//! The vocabulary the HTTP front layer and the WebDAV layer share, kept
//! below both (as `axum-core` sits below `axum`) so that neither reaches
//! into the other for it: the body type, the authenticated principal, and
//! the interface of the inner WebDAV service.

pub mod body;
pub mod principal;
pub mod service;

pub use body::{BoxBody, empty_body, full_body};
pub use principal::Principal;
pub use service::DavService;
