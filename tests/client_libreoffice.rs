//! LibreOffice (Debian's 7.4, headless, driven over UNO by
//! `tests/clients/lo_edit.py` with Debian's `/usr/bin/python3`) opens an
//! `.odt` from the gateway, edits, stores, saves it under a new name and
//! closes it; a second LibreOffice opening the document meanwhile gets it
//! read-only. Checked from the gateway side: LOCK, PUT with the lock token
//! in `If:`, 423 for the second LOCK, LOCK creating the new name, UNLOCKs;
//! and upstream: both stored documents hold the edit. Tools come from
//! `scripts/install-test-tools.sh`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::dav_common::{DAV_PASSWORD, EMAIL, Gw, SeenRequest, request_mix};
use cloudreve_dav::cloudreve::CrUri;

const PYTHON: &str = "/usr/bin/python3";

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/lo_edit.py")
}

/// Fails (never skips) when LibreOffice or python3-uno is missing.
fn require_libreoffice() {
    let ok = std::process::Command::new(PYTHON)
        .args([
            "-c",
            "import uno, shutil, sys; sys.exit(0 if shutil.which('soffice') else 1)",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "LibreOffice with python3-uno is missing ({PYTHON} cannot import uno or soffice is not \
         on PATH): run scripts/install-test-tools.sh (Debian packages libreoffice-writer-nogui \
         python3-uno)"
    );
}

/// Kills a whole process group (the script and the soffice processes it
/// starts) when dropped, so no soffice outlives the test, even on failure.
struct GroupKill(Option<u32>);

impl Drop for GroupKill {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Runs `lo_edit.py` with `args`; returns stdout, panicking with stderr on
/// failure. Bounded by `limit`.
async fn run_script(args: &[&str], home: &Path, limit: Duration) -> String {
    let mut cmd = tokio::process::Command::new(PYTHON);
    cmd.arg(script())
        .args(args)
        .env("HOME", home)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let child = cmd.spawn().expect("start /usr/bin/python3 lo_edit.py");
    let _guard = GroupKill(child.id());
    let out = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("lo_edit.py {args:?} did not finish within {limit:?}"))
        .expect("lo_edit.py output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "lo_edit.py {:?} failed ({}):\n{stderr}",
        args.first(),
        out.status
    );
    eprint!("{stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn position(reqs: &[SeenRequest], what: impl Fn(&SeenRequest) -> bool) -> Option<usize> {
    reqs.iter().position(what)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libreoffice_edits_a_document_under_a_lock_and_a_second_opener_gets_it_read_only() {
    // One real client at a time (see tests/areas/clients.rs).
    let _turn = crate::client_common::SERIAL.lock().await;
    require_libreoffice();
    let gw = Gw::start().await;
    let work = tempfile::tempdir().expect("tempdir");
    let home = work.path().join("home");
    std::fs::create_dir_all(&home).expect("home");

    // Arrange: a real ODF text document on the gateway.
    let odt = work.path().join("letter.odt");
    run_script(
        &["make-odt", odt.to_str().expect("utf8"), "Hello gateway"],
        &home,
        Duration::from_secs(20),
    )
    .await;
    let status = gw
        .put("/letter.odt", std::fs::read(&odt).expect("odt"))
        .await;
    assert_eq!(status, 201, "upload of the .odt");
    let from = gw.requests.len();

    // LibreOffice opens, edits, stores; a second one opens meanwhile.
    let mark = " edited through cloudreve-dav";
    let url = format!("{}/letter.odt", gw.url);
    let save_as = format!("{}/Saved%20copy.odt", gw.url);
    let stdout = run_script(
        &[
            "edit",
            "--url",
            &url,
            "--user",
            EMAIL,
            "--password",
            DAV_PASSWORD,
            "--workdir",
            work.path().to_str().expect("utf8"),
            "--mark",
            mark,
            "--save-as",
            &save_as,
        ],
        &home,
        Duration::from_secs(90),
    )
    .await;
    let reqs = gw.requests.since(from);
    println!("LibreOffice request mix: {:?}", request_mix(&reqs));
    for r in &reqs {
        println!(
            "  {} {} -> {} {}",
            r.method,
            r.path,
            r.status,
            [
                "depth",
                "if",
                "lock-token",
                "timeout",
                "expect",
                "content-length"
            ]
            .iter()
            .filter_map(|h| r.header(h).map(|v| format!("{h}: {v}")))
            .collect::<Vec<_>>()
            .join("; ")
        );
    }
    let result: serde_json::Value = serde_json::from_str(
        stdout
            .lines()
            .last()
            .expect("lo_edit.py prints a JSON line"),
    )
    .expect("JSON result");

    // What LibreOffice reported.
    assert_eq!(
        result["a_readonly"], false,
        "first opener can edit: {result}"
    );
    assert_eq!(result["a_stored"], true, "{result}");
    assert_eq!(result["a_saved_as"], true, "{result}");
    assert_eq!(result["a_closed"], true, "{result}");
    assert_eq!(
        result["interactions_a"],
        serde_json::json!(["com.sun.star.ucb.URLAuthenticationRequest"]),
        "the first opener was asked only for credentials: {result}"
    );
    assert_eq!(
        result["b_readonly"], true,
        "the second opener gets the locked document read-only: {result}"
    );
    assert!(
        result["interactions_b"]
            .as_array()
            .expect("list")
            .iter()
            .any(|k| k == "com.sun.star.document.LockedDocumentRequest"),
        "the second opener was told the document is locked: {result}"
    );
    assert_eq!(
        result["b_sees_mark"], true,
        "the second opener reads the stored edit: {result}"
    );

    // What the gateway saw: LOCK, PUT with the token, the second LOCK
    // refused, UNLOCK with the same token.
    let on_doc = |r: &SeenRequest| r.path == "/letter.odt";
    let lock = position(&reqs, |r| {
        on_doc(r) && r.method == "LOCK" && r.status == 200
    })
    .expect("a granted LOCK");
    let put = position(&reqs, |r| on_doc(r) && r.method == "PUT").expect("a PUT");
    let put_req = &reqs[put];
    assert!(
        put_req.status == 204 || put_req.status == 201,
        "PUT stored: {}",
        put_req.status
    );
    assert_eq!(
        put_req.header("expect"),
        Some("100-continue"),
        "LibreOffice sends bodies after 100 Continue"
    );
    let token = lock_token_of(put_req);
    let refused = position(&reqs, |r| {
        on_doc(r) && r.method == "LOCK" && r.status == 423
    })
    .expect("the second opener's LOCK is refused with 423");
    let unlock = position(&reqs, |r| on_doc(r) && r.method == "UNLOCK").expect("an UNLOCK");
    assert_eq!(reqs[unlock].status, 204, "UNLOCK");
    assert_eq!(
        reqs[unlock].header("lock-token"),
        Some(format!("<{token}>").as_str()),
        "UNLOCK names the token the PUT used"
    );
    assert!(
        lock < put && put < refused && refused < unlock,
        "order LOCK < PUT < refused LOCK < UNLOCK: {lock} {put} {refused} {unlock}"
    );
    assert_eq!(
        reqs.iter()
            .filter(|r| on_doc(r) && r.method == "LOCK" && r.status == 200)
            .count(),
        1,
        "one lock granted on the document"
    );
    // "Save As" a new name: LOCK creates it (201), PUT with that lock's
    // token, UNLOCK.
    let copy = "/Saved%20copy.odt";
    let on_copy = |r: &SeenRequest| r.path == copy;
    let created =
        position(&reqs, |r| on_copy(r) && r.method == "LOCK").expect("a LOCK of the new name");
    assert_eq!(reqs[created].status, 201, "LOCK creates the new name");
    let put2 = position(&reqs, |r| on_copy(r) && r.method == "PUT").expect("PUT of the copy");
    assert!(created < put2, "LOCK before PUT of the copy");
    assert!(matches!(reqs[put2].status, 201 | 204), "PUT of the copy");
    let token2 = lock_token_of(&reqs[put2]);
    assert!(
        reqs.iter().skip(put2).any(|r| on_copy(r)
            && r.method == "UNLOCK"
            && r.status == 204
            && r.header("lock-token") == Some(format!("<{token2}>").as_str())),
        "UNLOCK of the copy with its token"
    );
    // Nothing LibreOffice asked for failed on the gateway's side (405/501
    // on GET/HEAD of the folder, 5xx). Expected refusals: the second
    // opener's LOCK (423) and the look-up of the new name before it
    // exists (404).
    for (i, r) in reqs.iter().enumerate() {
        let expected = (r.status == 423 && r.method == "LOCK" && on_doc(r))
            || (r.status == 404 && r.method == "PROPFIND" && on_copy(r) && i < created);
        assert!(
            r.status < 400 || expected,
            "unexpected {} for {} {}",
            r.status,
            r.method,
            r.path
        );
    }

    // Upstream: both stored documents hold the edit.
    for name in ["/letter.odt", "/Saved copy.odt"] {
        let bytes = gw
            .session
            .open_read_uri(&CrUri::my_path(name).expect("uri"), None, None)
            .await
            .expect("download")
            .bytes()
            .await
            .expect("bytes");
        let back = work.path().join("back.odt");
        std::fs::write(&back, &bytes).expect("write");
        let text = run_script(
            &["text", back.to_str().expect("utf8")],
            &home,
            Duration::from_secs(20),
        )
        .await;
        assert!(
            text.contains(&format!("Hello gateway{mark}")),
            "{name}: stored document text: {text:?}"
        );
        // The lock is gone: a plain PUT without a token succeeds.
        let path = name.replace(' ', "%20");
        assert_eq!(gw.put(&path, bytes.to_vec()).await, 204, "{name} unlocked");
    }
    gw.stop().await;
}

/// The lock token in a request's `If:` header (`(<token>)` or tagged).
fn lock_token_of(r: &SeenRequest) -> String {
    let h = r
        .header("if")
        .unwrap_or_else(|| panic!("{} {} carries no If: header", r.method, r.path));
    let token = h
        .split("(<")
        .nth(1)
        .and_then(|t| t.split(">)").next())
        .unwrap_or_else(|| panic!("no lock token in If: {h}"));
    assert!(token.starts_with("urn:uuid:"), "lock token in If: {h}");
    token.to_string()
}

/// LibreOffice's own PROPFIND body (replayed byte for byte, no LibreOffice
/// needed): `DAV:` properties in a default namespace. The answer must spell
/// them with a prefix, or LibreOffice cannot tell a document from a folder
/// ("type detection failed"); unknown properties get a 404 propstat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libreoffice_propfind_gets_prefixed_dav_properties() {
    // One real client at a time (see tests/areas/clients.rs).
    let _turn = crate::client_common::SERIAL.lock().await;
    let gw = Gw::start().await;
    assert_eq!(gw.put("/a.odt", b"x".to_vec()).await, 201);
    assert_eq!(
        gw.req("MKCOL", "/dir")
            .send()
            .await
            .expect("mkcol")
            .status(),
        201
    );
    let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<propfind xmlns=\"DAV:\"><prop>\
        <resourcetype xmlns=\"DAV:\"/><IsReadOnly xmlns=\"http://ucb.openoffice.org/dav/props/\"/>\
        <getcontenttype xmlns=\"DAV:\"/><supportedlock xmlns=\"DAV:\"/></prop></propfind>";
    for (path, resourcetype) in [
        ("/a.odt", "<D:resourcetype/>"),
        ("/dir/", "<D:resourcetype><D:collection/></D:resourcetype>"),
    ] {
        let r = gw
            .req("PROPFIND", path)
            .header("depth", "0")
            .header("content-type", "application/xml")
            .body(body)
            .send()
            .await
            .expect("propfind");
        assert_eq!(r.status(), 207, "{path}");
        let text = r.text().await.expect("body");
        // Empty elements may be written either way (`<x/>` or `<x></x>`).
        let compact = text
            .replace("<D:collection></D:collection>", "<D:collection/>")
            .replace("<D:resourcetype></D:resourcetype>", "<D:resourcetype/>");
        assert!(compact.contains(resourcetype), "{path}: {text}");
        assert!(!text.contains("<resourcetype"), "{path}: {text}");
        let (_, not_found) = text
            .split_once("<D:propstat><D:prop><IsReadOnly")
            .unwrap_or_default();
        assert!(
            not_found.contains("404 Not Found"),
            "{path}: IsReadOnly in a 404 propstat: {text}"
        );
    }
    gw.stop().await;
}
