//! rclone against the gateway (issue 5 item 1): the real `rclone` binary
//! (Debian package, installed by `scripts/install-test-tools.sh`) with
//! `vendor=other` and `vendor=owncloud` remotes, copying a tree with
//! awkward names, nested folders, an empty file and a 300 MB file up and
//! down, checking it, and streaming with `rcat`.
//!
//! Each test prints the gateway's request mix (`cargo test --test
//! client_rclone -- --nocapture`) and fails on any 5xx answer.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::client_common::{Output, SERIAL, assert_no_server_errors, capture, mix, run, take};
use crate::dav_common::{DAV_PASSWORD, EMAIL, Gw};
use crate::support::rng::{Prng, bytes};

const LIMIT: Duration = Duration::from_secs(900);
const BIG: u64 = 300 * 1000 * 1000;
/// 2021-03-04 05:06:07 UTC.
const T0: u64 = 1_614_834_367;

/// The tree: `(relative path, size)`; every file gets mtime `T0 + i h`.
fn tree(big: bool) -> Vec<(&'static str, u64)> {
    let mut t = vec![
        (
            "\u{dc}n\u{ef}c\u{f8}d\u{e9} \u{6587}\u{4ef6}/na\u{ef}ve caf\u{e9}.txt",
            1234,
        ),
        ("spaces in name.txt", 10),
        ("hash#tag.txt", 20),
        ("100% done.txt", 30),
        ("a&b.txt", 40),
        ("c+d.txt", 50),
        ("nested/deeper/deepest/leaf.bin", 70_000),
        ("nested/sibling.txt", 60),
        ("empty.txt", 0),
    ];
    if big {
        t.push(("big.bin", BIG));
    }
    t
}

fn write_tree(root: &Path, big: bool) -> Vec<(String, u64, SystemTime)> {
    let mut out = Vec::new();
    for (i, (rel, size)) in tree(big).into_iter().enumerate() {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        let mut f = std::fs::File::create(&p).unwrap();
        let mut g = Prng::new(0x5EED_0000 + i as u64);
        let mut left = size;
        let mut buf = vec![0u8; 1 << 20];
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            g.fill(&mut buf[..n]);
            std::io::Write::write_all(&mut f, &buf[..n]).unwrap();
            left -= n as u64;
        }
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(T0 + 3600 * i as u64);
        f.set_modified(t).unwrap();
        out.push((rel.to_string(), size, t));
    }
    out
}

/// A config file with one remote `gw` of `vendor`.
async fn config(dir: &Path, gw: &Gw, vendor: &str) -> PathBuf {
    let mut c = tokio::process::Command::new("rclone");
    c.args(["obscure", DAV_PASSWORD]);
    let o = run(c, b"", Duration::from_secs(60)).await;
    assert!(o.ok, "rclone obscure: {}", o.stderr);
    let path = dir.join(format!("rclone-{vendor}.conf"));
    std::fs::write(
        &path,
        format!(
            "[gw]\ntype = webdav\nurl = {}/\nvendor = {vendor}\nuser = {EMAIL}\npass = {}\n",
            gw.url,
            o.stdout.trim()
        ),
    )
    .unwrap();
    path
}

/// Runs rclone with `cfg`; no retries, so a failed request fails the run.
async fn rclone(cfg: &Path, args: &[&str], input: &[u8]) -> Output {
    let mut c = tokio::process::Command::new("rclone");
    c.arg("--config")
        .arg(cfg)
        .args(["--retries", "1", "--low-level-retries", "1", "-v"])
        .args(args)
        .env("TZ", "UTC");
    run(c, input, LIMIT).await
}

fn must(o: Output, what: &str) -> Output {
    assert!(o.ok, "{what} failed:\n{}\n{}", o.stdout, o.stderr);
    o
}

/// Files rclone reports as transferred (`-v` log lines).
fn copied(o: &Output) -> usize {
    o.stderr.matches("Copied (").count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rclone_owncloud_round_trip_keeps_mtimes_and_checksums() {
    let _turn = SERIAL.lock().await;
    let gw = Gw::start().await;
    capture();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let files = write_tree(&src, true);
    let cfg = config(dir.path(), &gw, "owncloud").await;
    let s = src.to_str().unwrap();

    let o = must(rclone(&cfg, &["copy", s, "gw:tree"], b"").await, "copy up");
    assert_eq!(copied(&o), files.len(), "{}", o.stderr);
    // Every byte upstream (the big file by size and a sample).
    for (rel, size, _) in &files {
        let len = gw.up.file_size(EMAIL, &format!("/tree/{rel}")).await;
        assert_eq!(len, Some(*size), "{rel}");
    }
    assert_eq!(
        gw.up
            .file_bytes(EMAIL, "/tree/nested/deeper/deepest/leaf.bin")
            .await
            .unwrap(),
        std::fs::read(src.join("nested/deeper/deepest/leaf.bin")).unwrap()
    );

    // `lsl` shows the original modification times.
    let o = must(rclone(&cfg, &["lsl", "gw:tree"], b"").await, "lsl");
    for (rel, size, t) in &files {
        let when = chrono::DateTime::<chrono::Utc>::from(*t)
            .format("%Y-%m-%d %H:%M:%S")
            .to_string();
        let line = o
            .stdout
            .lines()
            .find(|l| l.ends_with(&format!(" {rel}")))
            .unwrap_or_else(|| panic!("{rel} not listed:\n{}", o.stdout));
        assert!(
            line.trim_start().starts_with(&format!("{size} {when}")),
            "{rel}: {line}"
        );
    }
    // A second copy transfers nothing.
    let o = must(
        rclone(&cfg, &["copy", s, "gw:tree"], b"").await,
        "copy again",
    );
    assert_eq!(copied(&o), 0, "{}", o.stderr);
    // Hash check without download: the checksums come from oc:checksums.
    let o = must(rclone(&cfg, &["check", s, "gw:tree"], b"").await, "check");
    assert!(o.stderr.contains("0 differences found"), "{}", o.stderr);
    assert!(
        !o.stderr.contains("could not be checked") && !o.stderr.contains("hashes could not"),
        "{}",
        o.stderr
    );
    assert!(
        o.stderr
            .contains(&format!("{} matching files", files.len())),
        "{}",
        o.stderr
    );
    // Content checks both ways, and a download.
    for args in [
        ["check", "--download", s, "gw:tree"],
        ["check", "--download", "gw:tree", s],
    ] {
        let o = must(rclone(&cfg, &args, b"").await, "check --download");
        assert!(o.stderr.contains("0 differences found"), "{}", o.stderr);
    }
    let down = dir.path().join("down");
    let d = down.to_str().unwrap();
    let o = must(
        rclone(&cfg, &["copy", "gw:tree", d], b"").await,
        "copy down",
    );
    assert_eq!(copied(&o), files.len(), "{}", o.stderr);
    let o = must(rclone(&cfg, &["check", s, d], b"").await, "local check");
    assert!(o.stderr.contains("0 differences found"), "{}", o.stderr);
    for (rel, _, t) in &files {
        let m = std::fs::metadata(down.join(rel))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(m, *t, "{rel}: downloaded mtime");
    }

    let log = take();
    println!("rclone owncloud request mix: {}", mix(&log));
    assert_no_server_errors(&log);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rclone_other_round_trip_checks_clean_both_ways() {
    let _turn = SERIAL.lock().await;
    let gw = Gw::start().await;
    capture();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let files = write_tree(&src, false);
    let cfg = config(dir.path(), &gw, "other").await;
    let s = src.to_str().unwrap();

    let o = must(rclone(&cfg, &["copy", s, "gw:tree"], b"").await, "copy up");
    assert_eq!(copied(&o), files.len(), "{}", o.stderr);
    for args in [
        ["check", "--download", s, "gw:tree"],
        ["check", "--download", "gw:tree", s],
    ] {
        let o = must(rclone(&cfg, &args, b"").await, "check --download");
        assert!(o.stderr.contains("0 differences found"), "{}", o.stderr);
        assert!(
            o.stderr
                .contains(&format!("{} matching files", files.len())),
            "{}",
            o.stderr
        );
    }
    let down = dir.path().join("down");
    let d = down.to_str().unwrap();
    let o = must(
        rclone(&cfg, &["copy", "gw:tree", d], b"").await,
        "copy down",
    );
    assert_eq!(copied(&o), files.len(), "{}", o.stderr);
    let o = must(rclone(&cfg, &["check", s, d], b"").await, "local check");
    assert!(o.stderr.contains("0 differences found"), "{}", o.stderr);
    // Folders created again (rclone re-MKCOLs parents) and a purge.
    let o = must(
        rclone(&cfg, &["mkdir", "gw:tree/nested"], b"").await,
        "mkdir",
    );
    drop(o);
    must(rclone(&cfg, &["purge", "gw:tree"], b"").await, "purge");
    let (_, list) = gw
        .session
        .list_all(&cloudreve_dav::cloudreve::CrUri::my(), 100)
        .await
        .unwrap();
    assert!(list.is_empty(), "{list:?}");

    let log = take();
    println!("rclone other request mix: {}", mix(&log));
    assert_no_server_errors(&log);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rclone_rcat_streams_every_byte() {
    let _turn = SERIAL.lock().await;
    let gw = Gw::start().await;
    capture();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &gw, "owncloud").await;
    let data = bytes(42, 5 * 1024 * 1024 + 17);
    must(
        rclone(&cfg, &["rcat", "gw:streams/rcat.bin"], &data).await,
        "rcat",
    );
    assert_eq!(
        gw.up.file_bytes(EMAIL, "/streams/rcat.bin").await.unwrap(),
        data
    );
    // And an empty stream.
    must(
        rclone(&cfg, &["rcat", "gw:streams/empty.bin"], b"").await,
        "rcat empty",
    );
    assert_eq!(
        gw.up.file_bytes(EMAIL, "/streams/empty.bin").await.unwrap(),
        b""
    );
    let o = must(
        rclone(&cfg, &["cat", "gw:streams/rcat.bin"], b"").await,
        "cat",
    );
    assert!(o.raw == data, "cat gave {} bytes", o.raw.len());
    let log = take();
    println!("rclone rcat request mix: {}", mix(&log));
    assert!(
        log.iter().any(|a| a.method == "PUT" && a.status < 300),
        "{log:?}"
    );
    assert_no_server_errors(&log);
    gw.stop().await;
}
