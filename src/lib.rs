//! cloudreve-dav: a WebDAV gateway in front of a Cloudreve v4 server.
//!
//! Data flows one way: request → [`front`] → [`dav`] → [`cloudreve`].
//! The [`emulator`] is an independent Cloudreve v4 server used by `demo`
//! and by the tests; it shares no wire types or URI code with the client.
//! [`redis_state`] holds what several instances share (`--redis`).

pub mod admin;
pub mod bench;
pub mod cli;
pub mod cloudreve;
pub mod config;
pub mod dav;
pub mod emulator;
pub mod front;
#[doc(hidden)]
pub mod fuzzing;
pub mod gateway;
pub mod metrics;
pub mod redis_state;
pub mod shared;
