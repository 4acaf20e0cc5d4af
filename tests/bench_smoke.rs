//! The benchmark harness works end to end with tiny sizes: transfers
//! complete, digests match, the mixed load has no errors. No timing is
//! asserted. With `CLOUDREVE_BIN` set, external mode also runs against a
//! real Cloudreve (with its own `/dav` as the third subject).

use std::path::PathBuf;

use cloudreve_dav::bench::{External, Settings, scenario};
use cloudreve_dav::cloudreve::{Client, CrUri};

fn assert_sound(rep: &cloudreve_dav::bench::Report) {
    assert_sound_with(rep, &["gateway", "direct"]);
}

fn assert_sound_with(rep: &cloudreve_dav::bench::Report, subjects: &[&str]) {
    assert!(rep.errors.is_empty(), "harness errors: {:?}", rep.errors);
    for metric in ["GET", "PUT", "PROPFIND"] {
        for who in subjects {
            assert!(
                rep.rows
                    .iter()
                    .any(|r| r.metric.starts_with(metric) && r.who == *who && r.median.is_some()),
                "no {metric} row for {who}: {:?}",
                rep.rows
                    .iter()
                    .filter(|r| r.metric.starts_with(metric))
                    .collect::<Vec<_>>()
            );
        }
    }
    let mixed: Vec<_> = rep
        .loads
        .iter()
        .filter(|l| l.name.starts_with("mixed"))
        .collect();
    assert_eq!(mixed.len(), subjects.len());
    for l in mixed {
        assert!(l.result.requests > 0);
        assert_eq!(l.result.errors, 0, "{:?}", l.result.first_error);
    }
    assert!(rep.table().contains("gateway"));
    assert!(rep.svg().starts_with("<svg"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_quick_with_child_gateway() {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_cloudreve-dav"));
    let rep = scenario::run(&Settings::tiny(Some(exe)))
        .await
        .expect("bench run");
    assert_sound(&rep);
    assert!(
        rep.memory
            .iter()
            .any(|m| m.who == "gateway" && m.peak.is_some_and(|p| p > 0)),
        "no gateway memory reading"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_quick_in_process() {
    let rep = scenario::run(&Settings::tiny(None))
        .await
        .expect("bench run");
    assert_sound(&rep);
}

/// External mode against a real Cloudreve (skipped without
/// `CLOUDREVE_BIN`): three subjects, ratios to `/dav`, and nothing left on
/// the server afterwards (no bench folder, no WebDAV account).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_external_against_real_cloudreve() {
    let Some(bin) = crate::support::real_cloudreve::configured_bin() else {
        eprintln!("CLOUDREVE_BIN not set: external mode not exercised");
        return;
    };
    let server = crate::support::real_cloudreve::RealCloudreve::start(&bin).await;
    let (email, password) = ("bench-ext@example.com", "bench-ext-password-1");
    server.sign_up(email, password).await;
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_cloudreve-dav"));
    let mut settings = Settings::tiny(Some(exe));
    settings.external = Some(External {
        url: server.url(),
        email: email.into(),
        password: password.into(),
    });
    let rep = scenario::run(&settings).await.expect("bench run");
    assert_sound_with(&rep, &["gateway", "direct", "/dav"]);
    for figure in ["GET", "PUT", "PROPFIND Depth 1", "mixed"] {
        assert!(
            rep.ratios.iter().any(|r| r.figure.starts_with(figure)),
            "no gateway / /dav ratio for {figure}: {:?}",
            rep.ratios
        );
    }
    assert!(rep.table().contains("gateway / Cloudreve /dav"));

    let session = Client::new(&server.url())
        .expect("client")
        .sign_in(email, password)
        .await
        .expect("sign in");
    let (_, files) = session.list_all(&CrUri::my(), 100).await.expect("list");
    assert!(
        files
            .iter()
            .all(|f| !f.name.starts_with("cloudreve-dav-bench-")),
        "bench folder left behind"
    );
    let accounts = session.list_dav_accounts().await.expect("accounts");
    assert!(accounts.is_empty(), "WebDAV account left behind");
}
