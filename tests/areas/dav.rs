//! WebDAV behaviour through the gateway: methods, properties, locks, conditional requests,
//! modification times, junk files, the front layer, hostile input, the HTML index, and the Explorer
//! and Finder replays.
//!
//! Run with `cargo test --test dav` (one module per former test file).

#[path = "../dav_common/mod.rs"]
mod dav_common;
#[path = "../support/mod.rs"]
mod support;

#[path = "../browser_index.rs"]
mod browser_index;
#[path = "../dav_big.rs"]
mod dav_big;
#[path = "../dav_conditional.rs"]
mod dav_conditional;
#[path = "../dav_http.rs"]
mod dav_http;
#[path = "../dav_junk.rs"]
mod dav_junk;
#[path = "../dav_locks.rs"]
mod dav_locks;
#[path = "../dav_mtime.rs"]
mod dav_mtime;
#[path = "../dav_propfind_fast.rs"]
mod dav_propfind_fast;
#[path = "../front_guard_props.rs"]
mod front_guard_props;
#[path = "../front_http.rs"]
mod front_http;
#[path = "../hostile_input.rs"]
mod hostile_input;
#[path = "../replay_explorer.rs"]
mod replay_explorer;
#[path = "../replay_finder.rs"]
mod replay_finder;
