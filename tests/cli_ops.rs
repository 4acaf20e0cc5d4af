//! The operator commands as an operator runs them: `check` and
//! `accounts list|create|update|delete` against an emulator started as a
//! child process, and `--help`/`--version` on every command.

use std::process::{Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_cloudreve-dav");
const WAIT: Duration = Duration::from_secs(60);
const EMAIL: &str = "ops@example.com";
const PASSWORD: &str = "ops-sign-in-pw";

/// An emulator child process with one user (WebDAV permission granted).
struct Emu {
    _child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

async fn emulator() -> Emu {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["emulator", "--listen", "127.0.0.1:0", "--data"])
        .arg(dir.path())
        .args(["--user", &format!("{EMAIL}:{PASSWORD}")])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("emulator starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(WAIT, lines.next_line())
        .await
        .expect("emulator ready within a minute")
        .unwrap()
        .expect("a JSON line");
    let v: Value = serde_json::from_str(&line).unwrap();
    Emu {
        _child: child,
        url: v["upstream_url"].as_str().unwrap().to_string(),
        _dir: dir,
    }
}

/// Runs the binary to completion with a clean `CLOUDREVE_*` environment.
async fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args).env("RUST_LOG", "warn").stdin(Stdio::null());
    for (k, _) in std::env::vars() {
        if k.starts_with("CLOUDREVE_") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    tokio::time::timeout(WAIT, cmd.output())
        .await
        .expect("command finishes within a minute")
        .expect("command runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json_of(o: &Output) -> Value {
    assert!(o.status.success(), "command failed: {}", stderr(o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(o)))
}

#[tokio::test]
async fn help_on_every_command_and_version() {
    let v = run(&["--version"], &[]).await;
    assert!(v.status.success());
    assert_eq!(
        stdout(&v).trim(),
        format!("cloudreve-dav {}", env!("CARGO_PKG_VERSION"))
    );
    for cmd in [
        &["serve"][..],
        &["demo"],
        &["emulator"],
        &["bench"],
        &["check"],
        &["locks"],
        &["locks", "list"],
        &["locks", "unlock"],
        &["accounts"],
        &["accounts", "list"],
        &["accounts", "create"],
        &["accounts", "update"],
        &["accounts", "delete"],
    ] {
        let mut args = cmd.to_vec();
        args.push("--help");
        let o = run(&args, &[]).await;
        assert!(o.status.success(), "{cmd:?} --help failed: {}", stderr(&o));
        assert!(
            stdout(&o).contains("Usage: cloudreve-dav"),
            "{cmd:?} --help: {}",
            stdout(&o)
        );
    }
}

#[tokio::test]
async fn accounts_lifecycle_as_json_and_table() {
    let emu = emulator().await;
    let base = ["accounts", "--upstream", &emu.url, "--email", EMAIL];
    let env = [("CLOUDREVE_PASSWORD", PASSWORD)];
    let with = |extra: &[&'static str]| {
        let mut a: Vec<&str> = base.to_vec();
        a.extend_from_slice(extra);
        a.iter().map(|s| s.to_string()).collect::<Vec<String>>()
    };
    let go = |args: Vec<String>| async move {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&refs, &env).await
    };

    let empty = json_of(&go(with(&["--json", "list"])).await);
    assert_eq!(empty, Value::Array(vec![]));

    let created = json_of(
        &go(with(&[
            "--json",
            "create",
            "--name",
            "laptop <1>",
            "--root",
            "/Docs",
            "--readonly",
        ]))
        .await,
    );
    let id = created["id"].as_str().unwrap().to_string();
    let password = created["password"].as_str().unwrap().to_string();
    assert!(!id.is_empty() && !password.is_empty());
    assert_eq!(created["name"], "laptop <1>");
    assert_eq!(created["root"], "cloudreve://my/Docs");
    assert_eq!(created["readonly"], true);
    assert_eq!(created["proxy"], false);

    // Table output: a header and one row with the values.
    let t = go(with(&["list"])).await;
    assert!(t.status.success(), "{}", stderr(&t));
    let text = stdout(&t);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with("ID") && lines[0].contains("READONLY"));
    assert!(lines[1].starts_with(&id) && lines[1].contains("laptop <1>"));
    assert!(lines[1].contains("cloudreve://my/Docs") && lines[1].contains(&password));

    // Update changes only what is given.
    let mut args = with(&["--json", "update"]);
    args.extend([id.clone(), "--readonly".into(), "false".into()]);
    let updated = json_of(&go(args).await);
    assert_eq!(updated["readonly"], false);
    assert_eq!(updated["name"], "laptop <1>");
    assert_eq!(updated["root"], "cloudreve://my/Docs");

    // Read back through the API, independently of the CLI.
    let client = cloudreve_dav::cloudreve::Client::new(&emu.url).unwrap();
    let session = client.sign_in(EMAIL, PASSWORD).await.unwrap();
    let upstream = session.list_dav_accounts().await.unwrap();
    assert_eq!(upstream.len(), 1);
    assert_eq!(upstream[0].id, id);
    assert!(!upstream[0].flags().readonly);
    assert_eq!(upstream[0].password, password, "update keeps the password");

    let mut args = with(&["delete"]);
    args.push(id.clone());
    let d = go(args).await;
    assert!(d.status.success(), "{}", stderr(&d));
    assert!(stdout(&d).contains(&id));
    assert!(session.list_dav_accounts().await.unwrap().is_empty());

    // Errors: unknown id, no password, wrong password.
    let mut args = with(&["delete"]);
    args.push(id.clone());
    let again = go(args).await;
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("refused to delete"),
        "{}",
        stderr(&again)
    );
    let nopw = run(
        &with(&["list"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        &[],
    )
    .await;
    assert!(!nopw.status.success());
    assert!(
        stderr(&nopw).contains("CLOUDREVE_PASSWORD"),
        "{}",
        stderr(&nopw)
    );
    let wrong = run(
        &with(&["list"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        &[("CLOUDREVE_PASSWORD", "wrong")],
    )
    .await;
    assert!(!wrong.status.success());
    assert!(
        stderr(&wrong).contains("cannot sign in"),
        "{}",
        stderr(&wrong)
    );
}

#[tokio::test]
async fn check_reports_version_users_and_accounts_and_fails_clearly() {
    let emu = emulator().await;
    let client = cloudreve_dav::cloudreve::Client::new(&emu.url).unwrap();
    let session = client.sign_in(EMAIL, PASSWORD).await.unwrap();
    for (name, ro) in [("a", false), ("b", true)] {
        let o = cloudreve_dav::cloudreve::DavAccountOptions {
            readonly: ro,
            ..Default::default()
        };
        session
            .create_dav_account(&cloudreve_dav::cloudreve::CrUri::my(), name, o)
            .await
            .unwrap();
    }
    let good = [
        ("CLOUDREVE_DAV_UPSTREAM", emu.url.as_str()),
        ("CLOUDREVE_DAV_USER_EMAIL", EMAIL),
        ("CLOUDREVE_DAV_USER_PASSWORD", PASSWORD),
    ];
    let ok = run(&["check"], &good).await;
    assert!(ok.status.success(), "{}", stderr(&ok));
    let out = stdout(&ok);
    assert!(out.contains("Cloudreve 4.18.0"), "{out}");
    assert!(
        out.contains(&format!(
            "user {EMAIL}: signed in, 2 WebDAV account(s) (1 read-only)"
        )),
        "{out}"
    );

    let mut bad_pw = good;
    bad_pw[2].1 = "wrong";
    let o = run(&["check"], &bad_pw).await;
    assert!(!o.status.success());
    assert!(
        stdout(&o).contains("FAILED: cannot sign in"),
        "{}",
        stdout(&o)
    );
    assert!(stderr(&o).contains("check failed for"), "{}", stderr(&o));

    // An upstream nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let o = run(&["check", "--upstream", &dead], &good).await;
    assert!(!o.status.success());
    assert!(stderr(&o).contains("not reachable"), "{}", stderr(&o));

    // An invalid configuration: no user.
    let o = run(&["check", "--upstream", &emu.url], &[]).await;
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no users configured"), "{}", stderr(&o));
}

/// Flags of `accounts` and `locks` are accepted before or after the action,
/// and a missing required one is named.
#[tokio::test]
async fn flags_go_before_or_after_the_action() {
    let emu = emulator().await;
    let env = [("CLOUDREVE_PASSWORD", PASSWORD)];
    for args in [
        &[
            "accounts",
            "list",
            "--upstream",
            &emu.url,
            "--email",
            EMAIL,
            "--json",
        ][..],
        &[
            "accounts",
            "--email",
            EMAIL,
            "list",
            "--upstream",
            &emu.url,
            "--json",
        ],
        &[
            "accounts",
            "--json",
            "--upstream",
            &emu.url,
            "--email",
            EMAIL,
            "list",
        ],
    ] {
        let o = run(args, &env).await;
        assert_eq!(json_of(&o), Value::Array(vec![]), "{args:?}");
    }
    let o = run(&["accounts", "list", "--email", EMAIL], &env).await;
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("--upstream URL is required"),
        "{}",
        stderr(&o)
    );

    // `locks`: the settings flags either side of the action.
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let conf = dir.path().join("gw.toml");
    std::fs::write(
        &conf,
        format!(
            "upstream = \"{}\"\n[[users]]\nemail = \"{EMAIL}\"\npassword_env = \"CLOUDREVE_PASSWORD\"\n",
            emu.url
        ),
    )
    .unwrap();
    let (c, s) = (conf.to_str().unwrap(), state.to_str().unwrap());
    for args in [
        &["locks", "--config", c, "--state-dir", s, "list"][..],
        &["locks", "list", "--config", c, "--state-dir", s],
        &["locks", "--config", c, "list", "--state-dir", s],
    ] {
        let o = run(args, &env).await;
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        assert_eq!(stdout(&o), "", "no locks: {args:?}");
    }
}
