//! cadaver against the gateway (issue 5 item 2): scripted sessions of the
//! real `cadaver` (Debian package, installed by
//! `scripts/install-test-tools.sh`), credentials from `~/.netrc` in a
//! temporary HOME. cadaver exits 0 whatever happens, so every command's
//! output is read, and the upstream state checked after each session.

use std::path::Path;
use std::time::Duration;

use crate::client_common::{SERIAL, assert_no_server_errors, capture, mix, run, take};
use crate::dav_common::{DAV_PASSWORD, EMAIL, Gw};
use cloudreve_dav::cloudreve::CrUri;

const PROP_KEY: &str = "dav:http://webdav.org/cadaver/custom-properties/|myprop";

/// Runs one cadaver session with `script` on stdin, in `home` (which
/// holds `.netrc` and the local files). Returns the output split per
/// command: `(command, its output)`.
async fn session(gw: &Gw, home: &Path, script: &str) -> Vec<(String, String)> {
    let mut c = tokio::process::Command::new("cadaver");
    c.arg(format!("{}/", gw.url))
        .env("HOME", home)
        .current_dir(home);
    let input = format!("{script}\nquit\n");
    let o = run(c, input.as_bytes(), Duration::from_secs(120)).await;
    assert!(o.ok, "cadaver failed to run: {}", o.stderr);
    // Each command is echoed after a `dav:/…> ` prompt.
    let mut out: Vec<(String, String)> = Vec::new();
    for part in o.stdout.split("dav:/").skip(1) {
        let Some(i) = part.find("> ") else { continue };
        let rest = &part[i + 2..];
        let (cmd, text) = rest.split_once('\n').unwrap_or((rest, ""));
        out.push((cmd.trim().to_string(), text.to_string()));
    }
    let cmds: Vec<&str> = script.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(
        out.len() > cmds.len(),
        "not every command ran:\n{}\n{}",
        o.stdout,
        o.stderr
    );
    out
}

/// The output of the `n`th command, which must be `cmd`.
fn output<'a>(out: &'a [(String, String)], n: usize, cmd: &str) -> &'a str {
    assert_eq!(out[n].0, cmd, "{out:#?}");
    &out[n].1
}

fn succeeded(out: &[(String, String)], n: usize, cmd: &str) {
    let text = output(out, n, cmd);
    assert!(text.contains("succeeded"), "{cmd}: {text}");
    assert!(!text.contains("failed"), "{cmd}: {text}");
}

async fn metadata_has_prop(gw: &Gw, path: &str) -> bool {
    let f = gw
        .session
        .info(&CrUri::my_path(path).unwrap(), true)
        .await
        .unwrap();
    f.metadata.is_some_and(|m| m.contains_key(PROP_KEY))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cadaver_scripted_sessions() {
    let _turn = SERIAL.lock().await;
    let gw = Gw::start().await;
    capture();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    std::fs::write(
        h.join(".netrc"),
        format!("machine 127.0.0.1\nlogin {EMAIL}\npassword {DAV_PASSWORD}\n"),
    )
    .unwrap();
    std::fs::write(h.join("one.txt"), "first version\n").unwrap();
    std::fs::write(h.join("two.txt"), "second version, longer\n").unwrap();
    std::fs::write(h.join("three.txt"), "must not land\n").unwrap();

    // 1: mkcol, put, get, copy, move, propset, propget, propnames.
    let out = session(
        &gw,
        h,
        "mkcol dir1\ncd dir1\nput one.txt a.txt\nget a.txt got.txt\ncopy a.txt b.txt\n\
         move b.txt c.txt\npropset a.txt myprop myvalue\npropget a.txt myprop\npropnames a.txt",
    )
    .await;
    succeeded(&out, 0, "mkcol dir1");
    succeeded(&out, 2, "put one.txt a.txt");
    succeeded(&out, 3, "get a.txt got.txt");
    succeeded(&out, 4, "copy a.txt b.txt");
    succeeded(&out, 5, "move b.txt c.txt");
    succeeded(&out, 6, "propset a.txt myprop myvalue");
    let t = output(&out, 7, "propget a.txt myprop");
    assert!(t.contains("Value of myprop is: myvalue"), "{t}");
    let t = output(&out, 8, "propnames a.txt");
    assert!(t.contains("custom-properties/ myprop"), "{t}");
    assert!(t.contains("DAV: getetag"), "{t}");
    assert_eq!(
        std::fs::read(h.join("got.txt")).unwrap(),
        b"first version\n"
    );
    for p in ["/dir1/a.txt", "/dir1/c.txt"] {
        assert_eq!(
            gw.up.file_bytes(EMAIL, p).await.as_deref(),
            Some(&b"first version\n"[..]),
            "{p}"
        );
    }
    assert!(gw.up.file_bytes(EMAIL, "/dir1/b.txt").await.is_none());
    assert!(metadata_has_prop(&gw, "/dir1/a.txt").await);

    // 2: propdel, lock, discover, put under its own lock, unlock.
    let out = session(
        &gw,
        h,
        "cd dir1\npropdel a.txt myprop\npropget a.txt myprop\nlock a.txt\ndiscover a.txt\n\
         put two.txt a.txt\nunlock a.txt",
    )
    .await;
    succeeded(&out, 1, "propdel a.txt myprop");
    let t = output(&out, 2, "propget a.txt myprop");
    assert!(t.contains("404"), "{t}");
    succeeded(&out, 3, "lock a.txt");
    let t = output(&out, 4, "discover a.txt");
    assert!(t.contains("Lock token <urn:uuid:"), "{t}");
    assert!(t.contains("Depth 0"), "{t}");
    assert!(t.contains("Scope: exclusive  Type: write"), "{t}");
    succeeded(&out, 5, "put two.txt a.txt");
    succeeded(&out, 6, "unlock a.txt");
    assert_eq!(
        gw.up.file_bytes(EMAIL, "/dir1/a.txt").await.as_deref(),
        Some(&b"second version, longer\n"[..])
    );
    assert!(!metadata_has_prop(&gw, "/dir1/a.txt").await);
    assert_eq!(gw.gateway.locks().count(), 0);

    // 3: a put while someone else holds the lock.
    let r = gw
        .req("LOCK", "/dir1/a.txt")
        .body(r#"<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner>someone else</D:owner></D:lockinfo>"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let token = r.headers()["lock-token"].to_str().unwrap().to_string();
    let out = session(&gw, h, "put three.txt dir1/a.txt\ndiscover dir1/a.txt").await;
    let t = output(&out, 0, "put three.txt dir1/a.txt");
    assert!(t.contains("failed") && t.contains("423"), "{t}");
    let t = output(&out, 1, "discover dir1/a.txt");
    assert!(t.contains("someone else"), "{t}");
    assert_eq!(
        gw.up.file_bytes(EMAIL, "/dir1/a.txt").await.as_deref(),
        Some(&b"second version, longer\n"[..])
    );
    let r = gw
        .req("UNLOCK", "/dir1/a.txt")
        .header("lock-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);

    // 4: rm, rmcol.
    let out = session(&gw, h, "rm dir1/c.txt\nrmcol dir1\nls").await;
    succeeded(&out, 0, "rm dir1/c.txt");
    succeeded(&out, 1, "rmcol dir1");
    let t = output(&out, 2, "ls");
    assert!(t.contains("collection is empty"), "{t}");
    let (_, list) = gw.session.list_all(&CrUri::my(), 100).await.unwrap();
    assert!(list.is_empty(), "{list:?}");

    let log = take();
    println!("cadaver request mix: {}", mix(&log));
    assert_no_server_errors(&log);
    gw.stop().await;
}
