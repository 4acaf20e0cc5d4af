//! The gateway as a whole: end to end through the production wiring, authentication and its
//! security, TLS reloads, and two instances sharing Redis.
//!
//! Run with `cargo test --test gateway` (one module per former test file).

#[path = "../support/mod.rs"]
mod support;

#[path = "../auth_security.rs"]
mod auth_security;
#[path = "../gateway_e2e.rs"]
mod gateway_e2e;
#[path = "../scaleout_redis.rs"]
mod scaleout_redis;
#[path = "../tls_reload.rs"]
mod tls_reload;
