//! A 1 GiB PUT and GET through the gateway, compared by SHA-256. The bytes
//! come from a seeded PRNG stream; nothing holds the whole file.

use std::time::Instant;

use crate::dav_common::Gw;
use futures::StreamExt as _;
use sha2::{Digest, Sha256};

const SIZE: u64 = 1 << 30;
const BLOCK: usize = 1 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_gib_put_and_get_match_by_hash() {
    let gw = Gw::start().await;
    let t0 = Instant::now();
    let mut expected = Sha256::new();
    let mut s = std::pin::pin!(crate::support::rng::stream(42, SIZE, BLOCK));
    while let Some(b) = s.next().await {
        expected.update(b.unwrap());
    }
    let expected = expected.finalize();

    let body = reqwest::Body::wrap_stream(crate::support::rng::stream(42, SIZE, BLOCK));
    let r = gw
        .req("PUT", "/big.bin")
        .header("content-length", SIZE.to_string())
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let t_put = t0.elapsed();

    let r = gw.req("GET", "/big.bin").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.content_length(), Some(SIZE));
    let mut got = Sha256::new();
    let mut n = 0u64;
    let mut body = r.bytes_stream();
    while let Some(b) = body.next().await {
        let b = b.unwrap();
        n += b.len() as u64;
        got.update(&b);
    }
    assert_eq!(n, SIZE);
    assert_eq!(got.finalize(), expected);
    println!(
        "1 GiB: hash+PUT {:.1?}, GET {:.1?}, total {:.1?}",
        t_put,
        t0.elapsed() - t_put,
        t0.elapsed()
    );
    gw.stop().await;
}
