//! GNOME Files against the gateway: the GVFS WebDAV backend that Files
//! (Nautilus) uses, driven with `gio` in a private D-Bus session
//! (`dbus-run-session`; Debian packages gvfs, gvfs-backends and
//! libglib2.0-bin, installed by `scripts/install-test-tools.sh`). The
//! session mounts `dav://`, copies both ways (a 20 MB round trip compared
//! byte for byte), makes a folder, moves, lists and removes; the upstream
//! state is checked afterwards.

use std::time::Duration;

use crate::client_common::{SERIAL, assert_no_server_errors, capture, mix, run, take};
use crate::dav_common::{DAV_PASSWORD, EMAIL, Gw};

/// The steps, each followed by a `STEP name rc` line. The mount prompts for
/// the user and the password, answered on stdin.
const SCRIPT: &str = r#"
set -u
step() { name=$1; shift; "$@"; echo "STEP $name $?"; }
step mount gio mount "$DAV/"
step upload gio copy up.bin "$DAV/up.bin"
step download gio copy "$DAV/up.bin" down.bin
step mkdir gio mkdir "$DAV/Folder Ä"
step move gio move "$DAV/up.bin" "$DAV/Folder Ä/moved.bin"
step note gio copy note.txt "$DAV/note.txt"
step remove gio remove "$DAV/note.txt"
echo LIST-BEGIN
step list gio list "$DAV/Folder Ä/"
echo LIST-END
step info gio info -a standard::size "$DAV/Folder Ä/moved.bin"
step unmount gio mount -u "$DAV/"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gio_mounts_copies_moves_lists_and_removes() {
    let _turn = SERIAL.lock().await;
    let gw = Gw::start().await;
    capture();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let runtime = h.join("runtime");
    std::fs::create_dir(&runtime).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    let data = crate::support::rng::bytes(7, 20_000_000);
    std::fs::write(h.join("up.bin"), &data).unwrap();
    std::fs::write(h.join("note.txt"), b"a short note\n").unwrap();

    let dav = gw.url.replacen("http://", "dav://", 1);
    let mut c = tokio::process::Command::new("dbus-run-session");
    c.args(["--", "bash", "-c", SCRIPT])
        .current_dir(h)
        .env("HOME", h)
        .env("XDG_RUNTIME_DIR", &runtime)
        .env("GVFS_DISABLE_FUSE", "1")
        .env("DAV", &dav);
    let input = format!("{EMAIL}\n{DAV_PASSWORD}\n");
    let o = run(c, input.as_bytes(), Duration::from_secs(300)).await;
    let log = take();
    eprintln!("gio request mix: {}", mix(&log));

    let steps: Vec<(&str, &str)> = o
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("STEP "))
        .filter_map(|l| l.split_once(' '))
        .collect();
    let names: Vec<&str> = steps.iter().map(|s| s.0).collect();
    assert_eq!(
        names,
        [
            "mount", "upload", "download", "mkdir", "move", "note", "remove", "list", "info",
            "unmount"
        ],
        "{}\n{}",
        o.stdout,
        o.stderr
    );
    for (name, rc) in &steps {
        assert_eq!(*rc, "0", "gio {name} failed:\n{}\n{}", o.stdout, o.stderr);
    }

    // The 20 MB came back byte for byte.
    let down = std::fs::read(h.join("down.bin")).expect("downloaded file");
    assert!(
        down == data,
        "round trip differs ({} bytes back)",
        down.len()
    );
    // The listing showed the moved file; the size is right.
    let listed = o
        .stdout
        .split("LIST-BEGIN")
        .nth(1)
        .and_then(|s| s.split("LIST-END").next())
        .unwrap_or_default();
    let listed: Vec<&str> = listed
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with("STEP "))
        .collect();
    assert_eq!(listed, ["moved.bin"], "{}", o.stdout);
    assert!(
        o.stdout.contains("standard::size: 20000000"),
        "{}",
        o.stdout
    );

    // Upstream: moved into the new folder, the note removed.
    assert_eq!(
        gw.up
            .file_bytes(EMAIL, "/Folder Ä/moved.bin")
            .await
            .as_deref(),
        Some(&data[..])
    );
    let mut root = gw.up.child_names(EMAIL, "/").await.expect("root");
    root.sort();
    assert_eq!(root, ["Folder Ä"], "up.bin moved away, note.txt removed");
    assert_no_server_errors(&log);
    gw.stop().await;
}
