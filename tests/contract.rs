//! Contract tests: the typed Cloudreve client against the emulator (or a
//! real Cloudreve with `CLOUDREVE_BIN`, see `README.md`), one or more tests
//! per behaviour the gateway relies on (`docs/UPSTREAM.md`).
//!
//! Run with `cargo test --test contract`.

#[path = "contract/harness.rs"]
mod harness;
mod support;

#[path = "contract/accounts.rs"]
mod accounts;
#[path = "contract/auth.rs"]
mod auth;
#[path = "contract/content.rs"]
mod content;
#[path = "contract/edges.rs"]
mod edges;
#[path = "contract/events.rs"]
mod events;
#[path = "contract/files.rs"]
mod files;
#[path = "contract/locks.rs"]
mod locks;
#[path = "contract/metadata.rs"]
mod metadata;
#[path = "contract/uploads.rs"]
mod uploads;
#[path = "contract/uris.rs"]
mod uris;
