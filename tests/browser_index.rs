//! A browser opening a collection sees a clean HTML listing: checked in
//! headless Chromium (`scripts/install-test-tools.sh` installs it) against
//! `cloudreve-dav demo`, credentials in the URL.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_cloudreve-dav");
const WAIT: Duration = Duration::from_secs(90);

/// The DOM Chromium builds for `url`.
async fn chromium_dom(url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(["--dump-dom", url])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(WAIT, out)
        .await
        .expect("chromium finishes within 90 s")
        .unwrap_or_else(|e| {
            panic!("cannot run chromium ({e}); install it with scripts/install-test-tools.sh")
        });
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Every `href="..."` value in document order.
fn hrefs(dom: &str) -> Vec<String> {
    dom.split("href=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .map(|s| s.replace("&amp;", "&"))
        .collect()
}

#[tokio::test]
async fn chromium_shows_names_sizes_dates_and_working_links() {
    let mut child = Command::new(BIN)
        .args(["demo", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(WAIT, lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let info: Value = serde_json::from_str(&line).unwrap();
    let url = info["webdav_url"].as_str().unwrap().to_string();
    let user = info["username"].as_str().unwrap().to_string();
    let pass = info["password"].as_str().unwrap().to_string();
    let http = reqwest::Client::new();

    // Cloudreve refuses `<>"` in names; `&lt;b&gt;` written literally must
    // reach the page as those characters, not as markup.
    let odd = "x &lt;b&gt; & 'q' 100%;+=#.txt";
    let files: [(&str, &[u8]); 3] = [
        (odd, b"odd name"),
        ("r\u{e9}sum\u{e9}.txt", b"unicode"),
        ("big.bin", &[7u8; 3000]),
    ];
    let enc = |n: &str| {
        percent_encoding::utf8_percent_encode(n, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    for (name, body) in files {
        let r = http
            .put(format!("{url}{}", enc(name)))
            .basic_auth(&user, Some(&pass))
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{name}");
    }
    let r = http
        .request(
            reqwest::Method::from_bytes(b"MKCOL").unwrap(),
            format!("{url}{}", enc("Folder #1")),
        )
        .basic_auth(&user, Some(&pass))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    let with_creds = url.replacen(
        "http://",
        &format!("http://{}:{}@", enc(&user), enc(&pass)),
        1,
    );
    let dom = chromium_dom(&with_creds).await;
    assert!(dom.contains("<title>Index of /</title>"), "{dom}");
    // Names are escaped text, not markup.
    assert!(
        dom.contains("x &amp;lt;b&amp;gt; &amp; 'q' 100%;+=#.txt</a>"),
        "{dom}"
    );
    assert!(!dom.contains("<b>"), "no markup from names: {dom}");
    assert!(dom.contains("r\u{e9}sum\u{e9}.txt</a>"), "{dom}");
    assert!(dom.contains("Folder #1/</a>"), "{dom}");
    // Sizes and dates.
    assert!(dom.contains("2.9 KiB"), "{dom}");
    assert!(dom.contains("title=\"3000 bytes\""), "{dom}");
    assert!(dom.contains("<time datetime=\"20"), "{dom}");
    // Folders first.
    let folder_at = dom.find("Folder #1/</a>").unwrap();
    let file_at = dom.find("big.bin</a>").unwrap();
    assert!(folder_at < file_at);

    // Links are percent-encoded paths that fetch the right bytes.
    let links = hrefs(&dom);
    assert_eq!(links.len(), 4, "{links:?}");
    assert!(links.contains(&"/Folder%20%231/".to_string()), "{links:?}");
    for (name, body) in files {
        let href = links
            .iter()
            .find(|h| {
                percent_encoding::percent_decode_str(h).decode_utf8_lossy() == format!("/{name}")
            })
            .unwrap_or_else(|| panic!("no link for {name}: {links:?}"));
        assert!(
            !href.contains([' ', '<', '>', '"', '#', '&', '\'', ';']),
            "encoded: {href}"
        );
        let base = url.trim_end_matches('/');
        let r = http
            .get(format!("{base}{href}"))
            .basic_auth(&user, Some(&pass))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{href}");
        assert_eq!(&r.bytes().await.unwrap()[..], body, "{href}");
    }

    // A sub-collection lists its parent link.
    let dom = chromium_dom(&format!("{with_creds}Folder%20%231/")).await;
    assert!(dom.contains("<title>Index of /Folder #1/</title>"), "{dom}");
    assert_eq!(hrefs(&dom), vec!["../".to_string()]);
    let _ = child.start_kill();
}
