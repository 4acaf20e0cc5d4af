//! The configuration reference and the sample file match the real loader:
//! the sample loads, every `serve` setting is documented with its
//! environment variable, and upstream plus one user is all it takes.

use std::path::Path;
use std::time::Duration;

use clap::{Args, Command};
use cloudreve_dav::config::{DeleteMode, LogFormat, ServeArgs, UserSecret, load_with_env};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn read(rel: &str) -> String {
    std::fs::read_to_string(Path::new(ROOT).join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The setting names `serve` accepts as flags (`--admin-listen` → `admin_listen`).
fn setting_names() -> Vec<String> {
    let cmd = ServeArgs::augment_args(Command::new("serve"));
    let names: Vec<String> = cmd
        .get_arguments()
        .filter_map(|a| a.get_long())
        .filter(|l| *l != "config")
        .map(|l| l.replace('-', "_"))
        .collect();
    assert!(names.len() >= 17, "{names:?}");
    names
}

#[test]
fn every_setting_is_documented_and_in_the_sample() {
    let doc = read("docs/CONFIG.md");
    let sample = read("packaging/cloudreve-dav.toml");
    for name in setting_names() {
        assert!(
            doc.contains(&format!("| `{name}` |")),
            "{name} missing in CONFIG.md"
        );
        let env = format!("`CLOUDREVE_DAV_{}`", name.to_uppercase());
        assert!(doc.contains(&env), "{env} missing in CONFIG.md");
        assert!(
            sample.contains(&format!("{name} = ")),
            "{name} missing in the sample config"
        );
    }
}

#[test]
fn sample_config_loads_with_the_real_loader() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("cloudreve-dav.toml");
    std::fs::write(&cfg, read("packaging/cloudreve-dav.toml")).unwrap();
    let secret = dir.path().join("you.password");
    std::fs::write(&secret, "s3cret\n").unwrap();
    // Secrets files must be private (the loader refuses group/other access).
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let args = ServeArgs {
        config: Some(cfg),
        ..ServeArgs::default()
    };
    let c = load_with_env(&args, &|_: &str| None).expect("the sample loads");
    assert_eq!(c.upstream, "https://cloud.example.com");
    assert_eq!(c.listen.to_string(), "0.0.0.0:8080");
    assert_eq!(c.admin_listen.unwrap().to_string(), "127.0.0.1:9090");
    assert_eq!(c.state_dir, Path::new("/var/lib/cloudreve-dav"));
    assert_eq!(c.users.len(), 1);
    assert_eq!(c.users[0].email, "you@example.com");
    match &c.users[0].secret {
        UserSecret::Password(p) => assert_eq!(p.expose(), "s3cret"),
        other => panic!("expected a password, got {other:?}"),
    }
    assert!(c.tls.is_none());
}

#[test]
fn upstream_and_one_user_are_enough() {
    let env = |k: &str| match k {
        "CLOUDREVE_DAV_UPSTREAM" => Some("http://cloud.local:5212/".to_string()),
        "CLOUDREVE_DAV_USER_EMAIL" => Some("a@b.c".to_string()),
        "CLOUDREVE_DAV_USER_PASSWORD" => Some("pw".to_string()),
        "HOME" => Some("/home/a".to_string()),
        _ => None,
    };
    let c = load_with_env(&ServeArgs::default(), &env).expect("minimal config");
    assert_eq!(c.upstream, "http://cloud.local:5212");
    assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(c.admin_listen, None);
    assert!(c.tls.is_none());
    assert_eq!(c.account_refresh, Duration::from_secs(60));
    assert_eq!(c.credential_cache_ttl, Duration::from_secs(300));
    assert_eq!(c.delete_mode, DeleteMode::Trash);
    assert_eq!(c.log_format, LogFormat::Human);
    assert_eq!(c.spool.max_bytes, 4 << 30);
    assert_eq!(c.state_dir, Path::new("/home/a/.local/state/cloudreve-dav"));
    assert_eq!(
        c.lock_timeouts,
        (Duration::from_secs(1), Duration::from_secs(86_400))
    );
    assert_eq!(c.timeouts.header_read, Duration::from_secs(30));
    assert_eq!(c.timeouts.upstream, Duration::from_secs(60));
    assert_eq!(c.timeouts.shutdown_grace, Duration::from_secs(30));

    // Without the user, or without the upstream, it says what is missing.
    let no_user = |k: &str| (k == "CLOUDREVE_DAV_UPSTREAM").then(|| "http://x".to_string());
    let e = load_with_env(&ServeArgs::default(), &no_user).unwrap_err();
    assert!(format!("{e:#}").contains("no users configured"));
    let no_upstream = |k: &str| env(k).filter(|_| k != "CLOUDREVE_DAV_UPSTREAM");
    let e = load_with_env(&ServeArgs::default(), &no_upstream).unwrap_err();
    assert!(format!("{e:#}").contains("upstream Cloudreve URL is required"));
}

#[test]
fn admin_listen_from_env_and_validated() {
    let env = |k: &str| match k {
        "CLOUDREVE_DAV_UPSTREAM" => Some("http://x".to_string()),
        "CLOUDREVE_DAV_USER_EMAIL" => Some("a@b.c".to_string()),
        "CLOUDREVE_DAV_USER_PASSWORD" => Some("pw".to_string()),
        "CLOUDREVE_DAV_ADMIN_LISTEN" => Some("127.0.0.1:9191".to_string()),
        _ => None,
    };
    let c = load_with_env(&ServeArgs::default(), &env).unwrap();
    assert_eq!(c.admin_listen.unwrap().port(), 9191);
    let args = ServeArgs {
        admin_listen: Some("nonsense".into()),
        ..ServeArgs::default()
    };
    let e = load_with_env(&args, &env).unwrap_err();
    assert!(format!("{e:#}").contains("admin_listen"));
    let args = ServeArgs {
        admin_listen: Some("127.0.0.1:8080".into()),
        ..ServeArgs::default()
    };
    let e = load_with_env(&args, &env).unwrap_err();
    assert!(format!("{e:#}").contains("must differ from listen"));
}

#[test]
fn systemd_unit_matches_the_sample_config() {
    let unit = read("packaging/cloudreve-dav.service");
    let sample = read("packaging/cloudreve-dav.toml");
    let value = |key: &str| -> Vec<String> {
        unit.lines()
            .filter_map(|l| l.strip_prefix(&format!("{key}=")))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(
        value("ExecStart"),
        ["/usr/local/bin/cloudreve-dav serve --config /etc/cloudreve-dav/cloudreve-dav.toml"]
    );
    assert_eq!(value("ExecReload"), ["/bin/kill -HUP $MAINPID"]);
    // The directories systemd creates are the ones the sample config uses.
    assert_eq!(value("StateDirectory"), ["cloudreve-dav"]);
    assert!(sample.contains("state_dir = \"/var/lib/cloudreve-dav\""));
    assert_eq!(value("CacheDirectory"), ["cloudreve-dav"]);
    assert!(sample.contains("spool_dir = \"/var/cache/cloudreve-dav/spool\""));
    // Hardening that must not silently disappear.
    for opt in [
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
    ] {
        assert!(unit.lines().any(|l| l == opt), "{opt} missing");
    }
    // The shutdown grace fits in systemd's stop timeout (default grace 30 s).
    let stop: u64 = value("TimeoutStopSec")[0]
        .trim_end_matches('s')
        .parse()
        .unwrap();
    assert!(stop > 30);
    if let Ok(out) = std::process::Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(Path::new(ROOT).join("packaging/cloudreve-dav.service"))
        .output()
    {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !err.contains("Unknown key") && !err.contains("Failed to parse"),
            "systemd-analyze: {err}"
        );
    }
}
