//! The benchmark harness works end to end with tiny sizes: transfers
//! complete, digests match, the mixed load has no errors. No timing is
//! asserted.

use std::path::PathBuf;

use cloudreve_dav::bench::{Settings, scenario};

fn assert_sound(rep: &cloudreve_dav::bench::Report) {
    assert!(rep.errors.is_empty(), "harness errors: {:?}", rep.errors);
    for metric in ["GET", "PUT", "PROPFIND"] {
        for who in ["gateway", "direct"] {
            assert!(
                rep.rows
                    .iter()
                    .any(|r| r.metric.starts_with(metric) && r.who == who && r.median.is_some()),
                "no {metric} row for {who}"
            );
        }
    }
    let mixed: Vec<_> = rep
        .loads
        .iter()
        .filter(|l| l.name.starts_with("mixed"))
        .collect();
    assert_eq!(mixed.len(), 2);
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
