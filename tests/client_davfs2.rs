//! davfs2 (Debian's 1.6, a FUSE file system, `use_locks 1`) mounts the
//! gateway: a tree is copied in and read back, a file and a folder are
//! renamed, a file and a folder deleted; after unmounting (when davfs2 has
//! uploaded everything) Cloudreve holds exactly the expected tree. A second
//! mount with the same cache revalidates cached files with conditional
//! GETs (304) and fetches changed ones. The request mix the gateway saw is
//! printed and checked: LOCK (201) on create, PUT later with the lock token,
//! UNLOCK, MOVE of whole folders. Needs root and /dev/fuse; davfs2 comes
//! from `scripts/install-test-tools.sh`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::dav_common::{DAV_PASSWORD, EMAIL, Gw, SeenRequest, request_mix};
use cloudreve_dav::cloudreve::{CrUri, FileKind, Session};

/// Fails (never skips) when davfs2 cannot run here.
fn require_davfs2() {
    assert!(
        Path::new("/usr/sbin/mount.davfs").exists() || which("mount.davfs"),
        "davfs2 is missing (no mount.davfs): run scripts/install-test-tools.sh (Debian package davfs2)"
    );
    assert!(
        Path::new("/dev/fuse").exists(),
        "/dev/fuse is missing: davfs2 needs FUSE (modprobe fuse, or a container with /dev/fuse)"
    );
    let uid = std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    assert_eq!(uid, "0", "mounting davfs2 with a private config needs root");
    let group = std::fs::read_to_string("/etc/group").unwrap_or_default();
    assert!(
        group.lines().any(|l| l.starts_with("davfs2:")),
        "group davfs2 is missing (the davfs2 package creates it): reinstall davfs2"
    );
}

fn which(cmd: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs a command, bounded by `limit`; returns whether it succeeded and its
/// output.
async fn run(cmd: &str, args: &[&str], limit: Duration) -> (bool, String) {
    let out = tokio::time::timeout(
        limit,
        tokio::process::Command::new(cmd)
            .args(args)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await;
    match out {
        Ok(Ok(o)) => (
            o.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
        ),
        Ok(Err(e)) => (false, format!("{cmd} did not start: {e}")),
        Err(_) => (false, format!("{cmd} {args:?} timed out after {limit:?}")),
    }
}

/// A davfs2 mount; unmounted when dropped (lazily if it hangs), so a
/// failing test leaves no mount behind.
struct Mount {
    point: PathBuf,
    mounted: bool,
}

impl Mount {
    async fn new(url: &str, point: &Path, conf: &Path) -> Mount {
        let (ok, out) = run(
            "mount",
            &[
                "-t",
                "davfs",
                url,
                point.to_str().expect("utf8"),
                "-o",
                &format!("conf={}", conf.display()),
            ],
            Duration::from_secs(30),
        )
        .await;
        assert!(ok, "mount -t davfs {url} failed: {out}");
        Mount {
            point: point.to_path_buf(),
            mounted: true,
        }
    }

    /// Unmounts; davfs2 uploads what is left and `umount` waits for it.
    async fn unmount(mut self) {
        let (ok, out) = run(
            "umount",
            &[self.point.to_str().expect("utf8")],
            Duration::from_secs(60),
        )
        .await;
        assert!(ok, "umount {}: {out}", self.point.display());
        self.mounted = false;
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if !self.mounted {
            return;
        }
        let p = self.point.to_str().expect("utf8").to_string();
        let ok = std::process::Command::new("timeout")
            .args(["30", "umount", &p])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = std::process::Command::new("umount")
                .args(["-l", &p])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Runs blocking file-system work on the mount, bounded by `limit`.
async fn on_mount<T: Send + 'static>(
    what: &str,
    limit: Duration,
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> T {
    match tokio::time::timeout(limit, tokio::task::spawn_blocking(f)).await {
        Ok(Ok(Ok(v))) => v,
        Ok(Ok(Err(e))) => panic!("{what} on the davfs2 mount failed: {e}"),
        Ok(Err(e)) => panic!("{what}: {e}"),
        Err(_) => panic!("{what} on the davfs2 mount took longer than {limit:?}"),
    }
}

/// The local tree copied in: relative path → content (`None`: folder).
fn source_tree() -> BTreeMap<&'static str, Option<Vec<u8>>> {
    let blob: Vec<u8> = (0..(1024 * 1024 + 17u32))
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    BTreeMap::from([
        ("top.txt", Some(b"top level\n".to_vec())),
        ("docs", None),
        ("docs/readme.txt", Some(b"hello davfs2\n".to_vec())),
        (
            "docs/with space.txt",
            Some(b"a name with a space\n".to_vec()),
        ),
        ("docs/empty.txt", Some(Vec::new())),
        ("docs/notes", None),
        ("docs/notes/deep", None),
        ("docs/notes/deep/leaf.txt", Some(b"deep leaf\n".to_vec())),
        ("data", None),
        ("data/blob.bin", Some(blob)),
    ])
}

/// Everything under `uri` upstream: relative path → content (`None`:
/// folder).
async fn upstream_tree(session: &Session, uri: &CrUri) -> BTreeMap<String, Option<Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![(uri.clone(), String::new())];
    while let Some((dir, prefix)) = todo.pop() {
        let (_, files) = session.list_all(&dir, 1000).await.expect("list upstream");
        for f in files {
            let rel = format!("{prefix}{}", f.name);
            let child = dir.join(&f.name).expect("uri");
            if f.kind == FileKind::Folder {
                out.insert(rel.clone(), None);
                todo.push((child, format!("{rel}/")));
            } else {
                let bytes = session
                    .open_read_uri(&child, None, None)
                    .await
                    .expect("download")
                    .bytes()
                    .await
                    .expect("bytes");
                out.insert(rel, Some(bytes.to_vec()));
            }
        }
    }
    out
}

fn describe(r: &SeenRequest) -> String {
    let hs: Vec<String> = [
        "depth",
        "if",
        "if-match",
        "if-none-match",
        "if-modified-since",
        "lock-token",
        "timeout",
        "destination",
        "overwrite",
    ]
    .iter()
    .filter_map(|h| r.header(h).map(|v| format!("{h}: {v}")))
    .collect();
    format!("{} {} -> {} {}", r.method, r.path, r.status, hs.join("; "))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn davfs2_copies_reads_renames_and_deletes_through_the_gateway() {
    // One real client at a time (see tests/areas/clients.rs).
    let _turn = crate::client_common::SERIAL.lock().await;
    require_davfs2();
    let gw = Gw::start().await;
    let base = tempfile::tempdir().expect("tempdir");
    // mount.davfs drops to user davfs2: it must reach the cache directory.
    std::fs::set_permissions(
        base.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod base");
    let point = base.path().join("mnt");
    let cache = base.path().join("cache");
    std::fs::create_dir_all(&point).expect("mount point");
    std::fs::create_dir_all(&cache).expect("cache dir");
    let (ok, out) = run(
        "chown",
        &["root:davfs2", cache.to_str().expect("utf8")],
        Duration::from_secs(10),
    )
    .await;
    assert!(ok, "chown root:davfs2 cache: {out}");
    std::fs::set_permissions(&cache, std::os::unix::fs::PermissionsExt::from_mode(0o775))
        .expect("chmod cache");
    let url = format!("{}/", gw.url);
    let secrets = base.path().join("secrets");
    std::fs::write(
        &secrets,
        format!("\"{url}\" \"{EMAIL}\" \"{DAV_PASSWORD}\"\n"),
    )
    .expect("secrets");
    std::fs::set_permissions(
        &secrets,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .expect("chmod secrets");
    let conf = base.path().join("davfs2.conf");
    // buf_size 64: kernels >= 6.16 refuse davfs2's default FUSE buffer.
    std::fs::write(
        &conf,
        format!(
            "use_locks 1\ncache_dir {}\nsecrets {}\nbuf_size 64\ndelay_upload 0\n",
            cache.display(),
            secrets.display()
        ),
    )
    .expect("davfs2.conf");

    // ---- first mount: copy in, read back, rename, delete
    let from = gw.requests.len();
    let mount = Mount::new(&url, &point, &conf).await;
    let tree = source_tree();
    {
        let (p, t) = (point.clone(), tree.clone());
        on_mount("copying the tree in", Duration::from_secs(60), move || {
            for (rel, content) in &t {
                match content {
                    None => std::fs::create_dir(p.join(rel))?,
                    Some(bytes) => std::fs::write(p.join(rel), bytes)?,
                }
            }
            Ok(())
        })
        .await;
    }
    {
        let (p, t) = (point.clone(), tree.clone());
        on_mount(
            "reading the tree back",
            Duration::from_secs(60),
            move || {
                for (rel, content) in &t {
                    match content {
                        None => assert!(p.join(rel).is_dir(), "{rel} is a folder"),
                        Some(bytes) => {
                            assert!(std::fs::read(p.join(rel))? == *bytes, "{rel} reads back")
                        }
                    }
                }
                let mut top: Vec<String> = std::fs::read_dir(&p)?
                    .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
                    .collect::<Result<_, _>>()?;
                top.sort();
                // lost+found is davfs2's own local folder.
                assert_eq!(
                    top,
                    ["data", "docs", "lost+found", "top.txt"],
                    "root listing"
                );
                Ok(())
            },
        )
        .await;
    }
    {
        let p = point.clone();
        on_mount(
            "renaming and deleting",
            Duration::from_secs(60),
            move || {
                std::fs::rename(p.join("docs/readme.txt"), p.join("docs/README.md"))?;
                std::fs::rename(p.join("docs/notes"), p.join("docs/notes-renamed"))?;
                std::fs::remove_file(p.join("docs/empty.txt"))?;
                std::fs::remove_dir_all(p.join("data"))?;
                assert_eq!(
                    std::fs::read(p.join("docs/notes-renamed/deep/leaf.txt"))?,
                    b"deep leaf\n",
                    "renamed folder content"
                );
                Ok(())
            },
        )
        .await;
    }
    mount.unmount().await;
    let first = gw.requests.since(from);

    // Upstream after unmount: exactly the expected tree.
    let expected: BTreeMap<String, Option<Vec<u8>>> = [
        ("top.txt", Some(&b"top level\n"[..])),
        ("docs", None),
        ("docs/README.md", Some(&b"hello davfs2\n"[..])),
        ("docs/with space.txt", Some(&b"a name with a space\n"[..])),
        ("docs/notes-renamed", None),
        ("docs/notes-renamed/deep", None),
        (
            "docs/notes-renamed/deep/leaf.txt",
            Some(&b"deep leaf\n"[..]),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.map(<[u8]>::to_vec)))
    .collect();
    let got = upstream_tree(&gw.session, &CrUri::my()).await;
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "upstream tree after unmount"
    );
    assert_eq!(got, expected, "upstream contents after unmount");

    // ---- second mount, same cache: revalidation and changed files
    assert_eq!(
        gw.put("/top.txt", b"changed upstream\n".to_vec()).await,
        204
    );
    assert_eq!(
        gw.put("/docs/new.txt", b"new upstream\n".to_vec()).await,
        201
    );
    let from2 = gw.requests.len();
    let mount = Mount::new(&url, &point, &conf).await;
    {
        let p = point.clone();
        on_mount(
            "reading changed files",
            Duration::from_secs(30),
            move || {
                assert_eq!(std::fs::read(p.join("top.txt"))?, b"changed upstream\n");
                assert_eq!(std::fs::read(p.join("docs/new.txt"))?, b"new upstream\n");
                Ok(())
            },
        )
        .await;
    }
    // davfs2 revalidates a cached file when it is opened more than
    // `file_refresh` (1 s) after it last checked it: read until the gateway
    // has answered such a conditional GET with 304.
    let cached = "/docs/with%20space.txt";
    let deadline = Instant::now() + Duration::from_secs(20);
    let revalidated = loop {
        let p = point.clone();
        let bytes = on_mount(
            "reading a cached file",
            Duration::from_secs(20),
            move || std::fs::read(p.join("docs/with space.txt")),
        )
        .await;
        assert_eq!(bytes, b"a name with a space\n", "cached file content");
        let hit =
            gw.requests.since(from2).into_iter().find(|r| {
                r.method == "GET" && r.path == cached && r.header("if-none-match").is_some()
            });
        if let Some(r) = hit {
            break r;
        }
        assert!(
            Instant::now() < deadline,
            "davfs2 never revalidated {cached} with a conditional GET"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    // Editing an existing file: davfs2 LOCKs it and PUTs with `If-Match`
    // (the ETag it knows); a wrong comparison would make the PUT fail (412)
    // and davfs2 move the file to lost+found.
    {
        let p = point.clone();
        on_mount(
            "editing an existing file",
            Duration::from_secs(30),
            move || std::fs::write(p.join("docs/README.md"), b"edited on the mount\n"),
        )
        .await;
    }
    mount.unmount().await;
    let second = gw.requests.since(from2);
    let readme = upstream_tree(&gw.session, &CrUri::my_path("/docs").expect("uri")).await;
    assert_eq!(
        readme.get("README.md"),
        Some(&Some(b"edited on the mount\n".to_vec())),
        "the edit reached Cloudreve"
    );

    println!("davfs2 request mix, first mount: {:?}", request_mix(&first));
    for r in &first {
        println!("  {}", describe(r));
    }
    println!(
        "davfs2 request mix, second mount: {:?}",
        request_mix(&second)
    );
    for r in &second {
        println!("  {}", describe(r));
    }

    assert_eq!(
        revalidated.status,
        304,
        "conditional GET of an unchanged file: {}",
        describe(&revalidated)
    );
    // Changed files were fetched in full.
    for path in ["/top.txt", "/docs/new.txt"] {
        assert!(
            second
                .iter()
                .any(|r| r.method == "GET" && r.path == path && r.status == 200),
            "GET 200 for {path}"
        );
    }

    let edit_lock = second
        .iter()
        .position(|r| r.method == "LOCK" && r.path == "/docs/README.md")
        .expect("LOCK of the edited file");
    assert_eq!(second[edit_lock].status, 200, "LOCK of an existing file");
    let edit_put = second
        .iter()
        .position(|r| r.method == "PUT" && r.path == "/docs/README.md")
        .expect("PUT of the edited file");
    assert!(edit_lock < edit_put, "LOCK before PUT");
    assert_eq!(second[edit_put].status, 204, "PUT of the edited file");
    assert!(
        second[edit_put].header("if-match").is_some() && second[edit_put].header("if").is_some(),
        "PUT of the edited file carries If-Match and the lock token: {}",
        describe(&second[edit_put])
    );

    // Creating a file: LOCK of the new name (201), later a PUT carrying the
    // lock token, then UNLOCK.
    for (rel, content) in &tree {
        let Some(bytes) = content else { continue };
        let path = format!("/{}", rel.replace(' ', "%20"));
        let lock = first
            .iter()
            .position(|r| r.method == "LOCK" && r.path == path)
            .unwrap_or_else(|| panic!("no LOCK of {path}"));
        assert_eq!(first[lock].status, 201, "LOCK creates {path}");
        if bytes.is_empty() {
            continue;
        }
        let put = first
            .iter()
            .position(|r| r.method == "PUT" && r.path == path)
            .unwrap_or_else(|| panic!("no PUT of {path}"));
        assert!(lock < put, "{path}: LOCK before PUT");
        assert!(
            matches!(first[put].status, 201 | 204),
            "PUT {path}: {}",
            first[put].status
        );
        let token = first[put]
            .header("if")
            .and_then(|v| v.split("(<").nth(1))
            .and_then(|v| v.split(">)").next())
            .unwrap_or_else(|| panic!("PUT {path} carries no lock token"))
            .to_string();
        assert!(
            first.iter().skip(put).any(|r| r.method == "UNLOCK"
                && r.path == path
                && r.status == 204
                && r.header("lock-token") == Some(format!("<{token}>").as_str())),
            "UNLOCK of {path} with its token"
        );
    }
    // Renames are MOVEs, the folder as a whole.
    let moved = |from: &str, to: &str| {
        first.iter().any(|r| {
            r.method == "MOVE"
                && r.path == from
                && r.status == 201
                && r.header("destination").is_some_and(|d| d.ends_with(to))
        })
    };
    assert!(moved("/docs/readme.txt", "/docs/README.md"), "file MOVE");
    assert!(
        moved("/docs/notes/", "/docs/notes-renamed/"),
        "folder MOVE in one request"
    );
    assert!(
        !first
            .iter()
            .any(|r| r.path.starts_with("/docs/notes/deep") && r.method == "MOVE"),
        "no per-file MOVEs inside the renamed folder"
    );
    assert!(
        first
            .iter()
            .any(|r| r.method == "DELETE" && r.path == "/docs/empty.txt" && r.status == 204),
        "file DELETE"
    );
    // Nothing davfs2 asked failed on the gateway's side.
    for r in first.iter().chain(&second) {
        assert!(
            r.status < 400 || r.status == 404,
            "unexpected answer: {}",
            describe(r)
        );
    }
    gw.stop().await;
}
