//! Real client programs against the gateway: litmus, rclone, cadaver, davfs2, LibreOffice and GNOME
//! Files (gio). They take turns (`client_common::SERIAL`): the access log they read is process-
//! wide, and a 2-core machine runs one of them at a time best.
//!
//! Run with `cargo test --test clients` (one module per former test file).

#[path = "../client_common/mod.rs"]
mod client_common;
#[path = "../dav_common/mod.rs"]
mod dav_common;
#[path = "../support/mod.rs"]
mod support;

#[path = "../client_cadaver.rs"]
mod client_cadaver;
#[path = "../client_davfs2.rs"]
mod client_davfs2;
#[path = "../client_gnome_files.rs"]
mod client_gnome_files;
#[path = "../client_libreoffice.rs"]
mod client_libreoffice;
#[path = "../client_rclone.rs"]
mod client_rclone;
#[path = "../litmus.rs"]
mod litmus;
