//! The commands besides `serve`, each in its own file: `demo` (the gateway
//! in front of the embedded emulator), `check` (is a configuration good to
//! serve?), `accounts` (a user's WebDAV accounts) and `locks` (the
//! gateway's and Cloudreve's locks). `main.rs` parses the command line and
//! calls them.

pub mod accounts;
pub mod check;
pub mod demo;
pub mod locks;
