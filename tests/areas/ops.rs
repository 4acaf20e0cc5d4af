//! What operators run: the command line (`demo`, `serve`, `check`, `accounts`, `locks`, `bench`),
//! configuration and its documentation, the admin endpoints, and the fuzz targets' seeds.
//!
//! Run with `cargo test --test ops` (one module per former test file).

#[path = "../support/mod.rs"]
mod support;

#[path = "../admin_obs.rs"]
mod admin_obs;
#[path = "../bench_smoke.rs"]
mod bench_smoke;
#[path = "../cli.rs"]
mod cli;
#[path = "../cli_ops.rs"]
mod cli_ops;
#[path = "../config_docs.rs"]
mod config_docs;
#[path = "../fuzz_smoke.rs"]
mod fuzz_smoke;
