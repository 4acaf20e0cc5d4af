//! Faults: the upstream failing in every way the fault injector knows, clients misbehaving, and the
//! soak that mixes them.
//!
//! Run with `cargo test --test faults` (one module per former test file).

#[path = "../faults_common/mod.rs"]
mod faults_common;
#[path = "../support/mod.rs"]
mod support;

#[path = "../faults_client.rs"]
mod faults_client;
#[path = "../faults_upstream.rs"]
mod faults_upstream;
#[path = "../soak.rs"]
mod soak;
