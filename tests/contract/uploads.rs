//! Uploads (docs/UPSTREAM.md §5.4–§5.7): sessions, chunks, cancel, policy
//! types, the client's writer, and the big-transfer test.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cloudreve_dav::cloudreve::{
    DownloadUrlOptions, EntityType, Error, Session, UploadOptions, UploadRequest, UploadSession,
};
use cloudreve_dav::emulator::PolicyKind;
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, ReadBuf};

use crate::emulator_or_skip;
use crate::harness::*;

fn req(up: &Upstream, rel: &str, size: u64, policy: &str, et: EntityType) -> UploadRequest {
    UploadRequest {
        uri: Some(up.uri(rel)),
        size,
        policy_id: policy.to_string(),
        last_modified_ms: Some(1_718_000_000_000),
        mime_type: Some("application/octet-stream".into()),
        entity_type: et,
        metadata: None,
    }
}

async fn policy(up: &Upstream) -> String {
    up.session
        .policy_id_for(&up.uri("x"))
        .await
        .expect("policy id")
}

async fn chunk(
    s: &Session,
    sid: &str,
    index: u64,
    data: &[u8],
) -> cloudreve_dav::cloudreve::Result<()> {
    let b = Bytes::copy_from_slice(data);
    let len = b.len() as u64;
    s.upload_chunk(
        sid,
        index,
        futures::stream::once(async move { Ok::<_, std::io::Error>(b) }),
        len,
    )
    .await
}

/// Sends `data` as chunks per the session's chunk size.
async fn send_all(
    s: &Session,
    sess: &UploadSession,
    data: &[u8],
) -> cloudreve_dav::cloudreve::Result<()> {
    let cs = if sess.chunk_size == 0 {
        data.len().max(1)
    } else {
        sess.chunk_size as usize
    };
    if data.is_empty() {
        return chunk(s, &sess.session_id, 0, &[]).await;
    }
    for (i, c) in data.chunks(cs).enumerate() {
        chunk(s, &sess.session_id, i as u64, c).await?;
    }
    Ok(())
}

#[tokio::test]
async fn upload_policy_id_must_be_valid_40001() {
    let up = Upstream::start().await;
    expect_code(
        up.session
            .create_upload_session(&req(&up, "a.bin", 1, "bogus", EntityType::New))
            .await,
        40001,
    );
    // A hashid of another type (the user id) does not decode as a policy.
    let uid = up.session.user().expect("user").id;
    expect_code(
        up.session
            .create_upload_session(&req(&up, "a.bin", 1, &uid, EntityType::New))
            .await,
        40001,
    );
    assert!(up.names("").await.is_empty());
    up.finish().await;
}

#[tokio::test]
async fn upload_existing_target_40004_and_version_overwrites() {
    let up = Upstream::start().await;
    let p = policy(&up).await;
    let f = up.put("a.bin", b"old").await;
    expect_code(
        up.session
            .create_upload_session(&req(&up, "a.bin", 3, &p, EntityType::New))
            .await,
        40004,
    );
    up.mkdir("dir").await;
    expect_code(
        up.session
            .create_upload_session(&req(&up, "dir", 3, &p, EntityType::Version))
            .await,
        40004,
    );
    let sess = up
        .session
        .create_upload_session(&req(&up, "a.bin", 3, &p, EntityType::Version))
        .await
        .expect("version session");
    send_all(&up.session, &sess, b"new").await.expect("chunks");
    let i = up
        .session
        .info(&up.uri("a.bin"), false)
        .await
        .expect("info");
    assert_eq!(i.id, f.id);
    assert_ne!(i.primary_entity, f.primary_entity);
    assert!(i.meta("sys:upload_session_id").is_none());
    assert_eq!(up.get("a.bin").await, b"new");
    // The writer's overwrite flag.
    let mut src: &[u8] = b"newer";
    let g = up
        .session
        .upload(
            &up.uri("a.bin"),
            5,
            &mut src,
            UploadOptions {
                overwrite: true,
                ..Default::default()
            },
        )
        .await
        .expect("overwrite");
    assert_eq!(g.size, 5);
    let mut src: &[u8] = b"fails";
    expect_code(
        up.session
            .upload(&up.uri("a.bin"), 5, &mut src, UploadOptions::default())
            .await,
        40004,
    );
    up.finish().await;
}

#[tokio::test]
async fn upload_placeholder_visible_and_path_locked_until_cancel() {
    let up = Upstream::start().await;
    let p = policy(&up).await;
    let sess = up
        .session
        .create_upload_session(&req(&up, "dir/ph.bin", 10, &p, EntityType::New))
        .await
        .expect("session");
    assert!(!sess.session_id.is_empty());
    assert!(
        sess.callback_secret
            .as_deref()
            .is_some_and(|s| !s.is_empty())
    );
    assert_eq!(sess.upload_id.as_deref(), Some(""));
    assert_eq!(
        sess.uri
            .as_deref()
            .map(|u| cloudreve_dav::cloudreve::CrUri::parse(u).expect("uri")),
        Some(up.uri("dir/ph.bin"))
    );
    assert!(
        sess.storage_policy
            .as_ref()
            .is_some_and(|sp| !sp.id.is_empty())
    );
    let now = chrono::Utc::now().timestamp();
    assert!(
        (sess.expires - now - 86_400).abs() < 3600,
        "unix seconds: {}",
        sess.expires
    );
    if !up.is_real() {
        assert_eq!(sess.chunk_size, 25 << 20);
    }
    // The placeholder (and its parent) exist at once.
    let (_, kids) = up.session.list_all(&up.uri("dir"), 0).await.expect("list");
    assert_eq!(kids.len(), 1);
    assert_eq!(kids[0].size, 0);
    assert_eq!(
        kids[0].meta("sys:upload_session_id"),
        Some(sess.session_id.as_str())
    );
    assert!(kids[0].is_upload_placeholder());
    // Locked: the path and its ancestors cannot be changed.
    let e = expect_code(
        up.session.rename(&up.uri("dir/ph.bin"), "other.bin").await,
        40073,
    );
    let c = &e.lock_conflicts()[0];
    assert_eq!(c.owner.application.kind, "upload");
    assert!(c.token.is_some(), "the owner sees the token");
    expect_code(
        put_bytes(&up.session, &up.uri("dir/ph.bin"), b"x").await,
        40073,
    );
    expect_code(up.session.rename(&up.uri("dir"), "dir2").await, 40073);
    expect_code(
        up.session.delete(&[up.uri("dir")], false, false).await,
        40073,
    );
    expect_code(
        up.session
            .create_upload_session(&req(&up, "dir/ph.bin", 10, &p, EntityType::Version))
            .await,
        40073,
    );
    // Metadata on the parent takes a zero-depth lock: allowed.
    up.session
        .patch_metadata(
            &[up.uri("dir")],
            &[cloudreve_dav::cloudreve::MetadataPatch::set(
                "customize:a",
                "b",
            )],
        )
        .await
        .expect("metadata on the parent");
    up.session
        .cancel_upload(&sess.session_id, &up.uri("dir/ph.bin"))
        .await
        .expect("cancel");
    assert!(up.names("dir").await.is_empty(), "placeholder removed");
    up.session
        .rename(&up.uri("dir"), "dir2")
        .await
        .expect("lock released");
    if let Some(emu) = up.emulator() {
        assert!(emu.active_locks(&up.email).is_empty());
        assert_eq!(emu.upload_sessions(&up.email), 0);
    }
    up.finish().await;
}

#[tokio::test]
async fn upload_chunk_length_40013_and_index_40012() {
    let up = Upstream::start().await;
    if let Some(emu) = up.emulator() {
        emu.set_chunk_size(4);
    }
    let p = policy(&up).await;
    let sess = up
        .session
        .create_upload_session(&req(&up, "c.bin", 10, &p, EntityType::New))
        .await
        .expect("session");
    let cs = sess.chunk_size.min(10) as usize;
    let n = 10usize.div_ceil(cs) as u64;
    expect_code(
        chunk(&up.session, &sess.session_id, 0, &vec![1u8; cs - 1]).await,
        40013,
    );
    expect_code(
        chunk(&up.session, &sess.session_id, 0, &vec![1u8; cs + 1]).await,
        40013,
    );
    expect_code(chunk(&up.session, &sess.session_id, n, &[1u8]).await, 40012);
    expect_code(
        chunk(&up.session, &sess.session_id, 99, &[1u8]).await,
        40012,
    );
    up.session
        .cancel_upload(&sess.session_id, &up.uri("c.bin"))
        .await
        .expect("cancel");
    up.finish().await;
}

#[tokio::test]
async fn upload_unknown_or_foreign_session_40011() {
    let up = Upstream::start().await;
    let unknown = uuid::Uuid::new_v4().to_string();
    expect_code(chunk(&up.session, &unknown, 0, b"x").await, 40011);
    emulator_or_skip!(up);
    let p = policy(&up).await;
    let sess = up
        .session
        .create_upload_session(&req(&up, "f.bin", 1, &p, EntityType::New))
        .await
        .expect("session");
    let (_, other) = up.extra_user("foreign").await;
    expect_code(chunk(&other, &sess.session_id, 0, b"x").await, 40011);
    chunk(&up.session, &sess.session_id, 0, b"x")
        .await
        .expect("owner");
    up.finish().await;
}

#[tokio::test]
async fn upload_last_chunk_completes_and_retry_is_allowed() {
    let up = Upstream::start().await;
    if let Some(emu) = up.emulator() {
        emu.set_chunk_size(4);
    }
    let p = policy(&up).await;
    let mut r = req(&up, "done.bin", 10, &p, EntityType::New);
    r.metadata = Some(
        [("customize:from".to_string(), "session".to_string())]
            .into_iter()
            .collect(),
    );
    let sess = up.session.create_upload_session(&r).await.expect("session");
    let data = b"0123456789";
    if sess.chunk_size == 4 {
        chunk(&up.session, &sess.session_id, 0, b"0123")
            .await
            .expect("c0");
        chunk(&up.session, &sess.session_id, 0, b"0123")
            .await
            .expect("c0 again");
        chunk(&up.session, &sess.session_id, 1, b"4567")
            .await
            .expect("c1");
        let i = up
            .session
            .info(&up.uri("done.bin"), false)
            .await
            .expect("info");
        assert_eq!(i.size, 0, "not complete before the last chunk");
        chunk(&up.session, &sess.session_id, 2, b"89")
            .await
            .expect("last");
    } else {
        send_all(&up.session, &sess, data).await.expect("chunks");
    }
    let i = up
        .session
        .info(&up.uri("done.bin"), false)
        .await
        .expect("info");
    assert_eq!(i.size, 10);
    assert!(i.meta("sys:upload_session_id").is_none());
    assert_eq!(
        i.meta("customize:from"),
        Some("session"),
        "session metadata applied"
    );
    assert_eq!(up.get("done.bin").await, data);
    // The session is gone.
    expect_code(
        chunk(&up.session, &sess.session_id, 0, b"0123").await,
        40011,
    );
    up.finish().await;
}

#[tokio::test]
async fn upload_zero_bytes_with_one_empty_chunk() {
    let up = Upstream::start().await;
    let p = policy(&up).await;
    let sess = up
        .session
        .create_upload_session(&req(&up, "zero.bin", 0, &p, EntityType::New))
        .await
        .expect("session");
    chunk(&up.session, &sess.session_id, 0, &[])
        .await
        .expect("empty chunk");
    let i = up
        .session
        .info(&up.uri("zero.bin"), false)
        .await
        .expect("info");
    assert_eq!(i.size, 0);
    assert!(i.meta("sys:upload_session_id").is_none());
    up.session
        .rename(&up.uri("zero.bin"), "z.bin")
        .await
        .expect("unlocked");
    let mut src: &[u8] = b"";
    let f = up
        .session
        .upload(&up.uri("zero2.bin"), 0, &mut src, UploadOptions::default())
        .await
        .expect("writer, 0 bytes");
    assert_eq!(f.size, 0);
    assert!(!f.is_upload_placeholder());
    up.finish().await;
}

#[tokio::test]
async fn upload_force_unlocked_lock_fails_completion_lock_expired() {
    let up = Upstream::start().await;
    let p = policy(&up).await;
    let sess = up
        .session
        .create_upload_session(&req(&up, "lk.bin", 3, &p, EntityType::New))
        .await
        .expect("session");
    let e = expect_code(up.session.rename(&up.uri("lk.bin"), "x.bin").await, 40073);
    let token = e.lock_conflicts()[0].token.clone().expect("token");
    up.session
        .force_unlock(&[token])
        .await
        .expect("force unlock");
    let e = expect_code(chunk(&up.session, &sess.session_id, 0, b"abc").await, 40073);
    assert!(
        e.lock_conflicts().is_empty(),
        "Lock expired carries no data"
    );
    // Restart variant.
    let emu = emulator_or_skip!(up);
    let sess = up
        .session
        .create_upload_session(&req(&up, "lk2.bin", 3, &p, EntityType::New))
        .await
        .expect("session");
    emu.drop_all_locks();
    expect_code(chunk(&up.session, &sess.session_id, 0, b"abc").await, 40073);
    up.finish().await;
}

#[tokio::test]
async fn upload_session_expires_40011() {
    let up = Upstream::start().await;
    let emu = emulator_or_skip!(up);
    let p = policy(&up).await;
    let sess = up
        .session
        .create_upload_session(&req(&up, "exp.bin", 3, &p, EntityType::New))
        .await
        .expect("session");
    emu.advance_clock(Duration::from_secs(86_400 + 60));
    expect_code(chunk(&up.session, &sess.session_id, 0, b"abc").await, 40011);
    // The access token expired with the clock too; a streamed PUT is not
    // replayable, so refresh before it.
    up.session.refresh().await.expect("refresh");
    up.put("exp.bin", b"ok").await;
    up.finish().await;
}

#[tokio::test]
async fn upload_relay_policy_chunk_size_zero() {
    let up = Upstream::start().await;
    let emu = emulator_or_skip!(up);
    emu.set_policy_type(PolicyKind::Relay);
    let p = policy(&up).await;
    let sess = up
        .session
        .create_upload_session(&req(&up, "relay.bin", 7, &p, EntityType::New))
        .await
        .expect("session");
    assert_eq!(sess.chunk_size, 0);
    assert!(
        sess.storage_policy.as_ref().is_some_and(|sp| sp.relay),
        "{sess:?}"
    );
    chunk(&up.session, &sess.session_id, 0, b"relayed")
        .await
        .expect("one chunk");
    assert_eq!(up.get("relay.bin").await, b"relayed");
    let mut src: &[u8] = b"via writer";
    up.session
        .upload(
            &up.uri("relay2.bin"),
            10,
            &mut src,
            UploadOptions::default(),
        )
        .await
        .expect("writer on relay");
    assert_eq!(up.get("relay2.bin").await, b"via writer");
    up.finish().await;
}

#[tokio::test]
async fn upload_non_local_policy_chunk_40006() {
    let up = Upstream::start().await;
    let emu = emulator_or_skip!(up);
    emu.set_policy_type(PolicyKind::S3);
    let p = policy(&up).await;
    let sess = up
        .session
        .create_upload_session(&req(&up, "s3.bin", 3, &p, EntityType::New))
        .await
        .expect("session");
    expect_code(chunk(&up.session, &sess.session_id, 0, b"abc").await, 40006);
    up.session
        .cancel_upload(&sess.session_id, &up.uri("s3.bin"))
        .await
        .expect("cancel");
    // The writer gives 40006 and cleans up.
    let mut src: &[u8] = b"abc";
    let e = expect_code(
        up.session
            .upload(&up.uri("s3w.bin"), 3, &mut src, UploadOptions::default())
            .await,
        40006,
    );
    assert!(e.is_policy_not_allowed());
    assert!(up.names("").await.is_empty());
    assert_eq!(emu.upload_sessions(&up.email), 0);
    // PUT /file/content works for every policy.
    up.put("s3.bin", b"put").await;
    up.finish().await;
}

/// An `AsyncRead` that yields `ok` bytes, then fails.
struct Failing {
    ok: usize,
}

impl AsyncRead for Failing {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.ok == 0 {
            return Poll::Ready(Err(std::io::Error::other("source broke")));
        }
        let n = self.ok.min(buf.remaining());
        buf.put_slice(&vec![9u8; n]);
        self.ok -= n;
        Poll::Ready(Ok(()))
    }
}

#[tokio::test]
async fn upload_writer_cancels_its_session_on_a_failing_source() {
    let up = Upstream::start().await;
    if let Some(emu) = up.emulator() {
        emu.set_chunk_size(1024);
    }
    let mut src = Failing { ok: 3000 };
    let r = up
        .session
        .upload(
            &up.uri("w/broken.bin"),
            10_000,
            &mut src,
            UploadOptions::default(),
        )
        .await;
    assert!(r.is_err(), "{r:?}");
    let mut short: &[u8] = &[1u8; 50];
    let r = up
        .session
        .upload(
            &up.uri("w/short.bin"),
            100,
            &mut short,
            UploadOptions::default(),
        )
        .await;
    assert!(matches!(r, Err(Error::SourceLength { .. })), "{r:?}");
    // Cancelled: no placeholders, no locks.
    assert!(up.names("w").await.is_empty(), "{:?}", up.names("w").await);
    if let Some(emu) = up.emulator() {
        assert!(
            emu.active_locks(&up.email).is_empty(),
            "{:?}",
            emu.active_locks(&up.email)
        );
        assert_eq!(emu.upload_sessions(&up.email), 0);
    }
    let mut ok: &[u8] = b"fine";
    up.session
        .upload(
            &up.uri("w/broken.bin"),
            4,
            &mut ok,
            UploadOptions::default(),
        )
        .await
        .expect("path free");
    up.finish().await;
}

#[tokio::test]
async fn upload_writer_chunk_boundaries() {
    let up = Upstream::start().await;
    if let Some(emu) = up.emulator() {
        emu.set_chunk_size(4);
    }
    for n in 0..=9usize {
        let data = sample(n, n as u64);
        let mut src: &[u8] = &data;
        let f = up
            .session
            .upload(
                &up.uri(&format!("b{n}.bin")),
                n as u64,
                &mut src,
                UploadOptions::default(),
            )
            .await
            .unwrap_or_else(|e| panic!("size {n}: {e:?}"));
        assert_eq!(f.size as usize, n);
        assert!(!f.is_upload_placeholder());
        assert_eq!(up.get(&format!("b{n}.bin")).await, data, "size {n}");
    }
    up.finish().await;
}

// ---------------------------------------------------------------- big transfer

const BIG: u64 = 256 << 20;
const SEED: u64 = 0x5EED_C0DE_2026;

/// Seeded PRNG source of `len` bytes, hashing what it yields.
struct PrngSource {
    prng: Prng,
    left: u64,
    block: Vec<u8>,
    pos: usize,
    hasher: Sha256,
}

impl PrngSource {
    fn new(seed: u64, len: u64) -> Self {
        PrngSource {
            prng: Prng::new(seed),
            left: len,
            block: vec![0u8; 64 << 10],
            pos: 64 << 10,
            hasher: Sha256::new(),
        }
    }
}

impl AsyncRead for PrngSource {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if this.left == 0 {
            return Poll::Ready(Ok(()));
        }
        if this.pos == this.block.len() {
            this.prng.fill(&mut this.block);
            this.pos = 0;
        }
        let n = (this.block.len() - this.pos)
            .min(buf.remaining())
            .min(this.left as usize);
        let s = &this.block[this.pos..this.pos + n];
        this.hasher.update(s);
        buf.put_slice(s);
        this.pos += n;
        this.left -= n as u64;
        Poll::Ready(Ok(()))
    }
}

/// SHA-256 of bytes `[start, end)` of the seeded stream (generated again).
fn expected_range_hash(seed: u64, start: u64, end: u64) -> [u8; 32] {
    let mut prng = Prng::new(seed);
    let mut block = vec![0u8; 64 << 10];
    let mut h = Sha256::new();
    let mut off = 0u64;
    while off < end {
        prng.fill(&mut block);
        let b_end = off + block.len() as u64;
        let lo = start.max(off);
        let hi = end.min(b_end);
        if lo < hi {
            h.update(&block[(lo - off) as usize..(hi - off) as usize]);
        }
        off = b_end;
    }
    h.finalize().into()
}

async fn hash_stream(r: cloudreve_dav::cloudreve::Reader) -> ([u8; 32], u64) {
    let mut s = r.into_stream();
    let mut h = Sha256::new();
    let mut n = 0u64;
    while let Some(c) = tokio::time::timeout(WAIT, s.next())
        .await
        .expect("bounded read")
    {
        let c = c.expect("body chunk");
        n += c.len() as u64;
        h.update(&c);
    }
    (h.finalize().into(), n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_transfer_256mib_up_and_down_by_sha256() {
    let up = Upstream::start().await;
    let uri = up.uri("big/blob.bin");
    let t0 = Instant::now();
    let mut src = PrngSource::new(SEED, BIG);
    let f = up
        .session
        .upload(&uri, BIG, &mut src, UploadOptions::default())
        .await
        .expect("upload 256 MiB");
    let up_secs = t0.elapsed();
    assert_eq!(src.left, 0);
    let sent: [u8; 32] = src.hasher.finalize().into();
    assert_eq!(f.size as u64, BIG);
    assert_eq!(
        sent,
        expected_range_hash(SEED, 0, BIG),
        "source hash is reproducible"
    );

    let t1 = Instant::now();
    let url = up
        .session
        .download_url(
            &uri,
            None,
            DownloadUrlOptions {
                no_cache: true,
                download: false,
            },
        )
        .await
        .expect("url")
        .url;
    let r = up.client.open_url(&url, None).await.expect("open");
    assert_eq!(r.total_length, Some(BIG));
    let (got, n) = hash_stream(r).await;
    let down_secs = t1.elapsed();
    assert_eq!(n, BIG);
    assert_eq!(got, sent, "full download matches");

    let (start, end) = (100 * (1 << 20) + 3, 200 * (1 << 20) + 7);
    let t2 = Instant::now();
    let r = up
        .client
        .open_url(&url, Some((start, Some(end - 1))))
        .await
        .expect("range");
    assert_eq!(r.status, 206);
    let (got, n) = hash_stream(r).await;
    let range_secs = t2.elapsed();
    assert_eq!(n, end - start);
    assert_eq!(got, expected_range_hash(SEED, start, end), "range matches");
    eprintln!(
        "big transfer (256 MiB): upload {:.2?}, download {:.2?}, 100 MiB range {:.2?}",
        up_secs, down_secs, range_secs
    );
    up.finish().await;
}

/// Yields `ok` bytes, reports that through `reached`, then never ends.
struct Stalling {
    ok: usize,
    reached: Option<tokio::sync::oneshot::Sender<()>>,
}

impl AsyncRead for Stalling {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.ok == 0 {
            if let Some(tx) = self.reached.take() {
                let _ = tx.send(());
            }
            return Poll::Pending;
        }
        let n = self.ok.min(buf.remaining());
        buf.put_slice(&vec![3u8; n]);
        self.ok -= n;
        Poll::Ready(Ok(()))
    }
}

#[tokio::test]
async fn upload_writer_dropped_mid_way_cancels_its_session() {
    let up = Upstream::start().await;
    let emu = emulator_or_skip!(up);
    emu.set_chunk_size(1024);
    let (tx, rx) = tokio::sync::oneshot::channel();
    let mut src = Stalling {
        ok: 1500,
        reached: Some(tx),
    };
    let uri = up.uri("dropped.bin");
    {
        let fut = up
            .session
            .upload(&uri, 4096, &mut src, UploadOptions::default());
        tokio::select! {
            r = fut => panic!("the upload cannot finish: {r:?}"),
            _ = rx => {}
        }
        // `fut` is dropped here, mid-chunk.
    }
    // The guard cancels in a spawned task: wait (bounded) for its effect.
    tokio::time::timeout(WAIT, async {
        while emu.upload_sessions(&up.email) != 0 || !emu.active_locks(&up.email).is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("session cancelled after the drop");
    assert!(up.names("").await.is_empty(), "placeholder removed");
    up.finish().await;
}
