//! The fuzz targets of `cloudreve_dav::fuzzing` (the same code the libFuzzer
//! binaries in `fuzz/` run), in a bounded, deterministic run inside
//! `cargo test`: every seed (`fuzz/seeds/TARGET/`), every saved crash
//! (`fuzz/regressions/TARGET/`), then mutations of the seeds from a fixed
//! PRNG seed. `FUZZ_SMOKE_ITERS` sets the mutations per target (default
//! 20000; CI keeps the default, a few seconds), `FUZZ_SMOKE_SEED` the PRNG seed.
//! Long, coverage-guided runs: `scripts/fuzz.sh` (docs/FUZZING.md).

use std::path::{Path, PathBuf};

use cloudreve_dav::fuzzing;
use rand::{Rng, SeedableRng, rngs::StdRng};

/// Tokens the mutator splices in.
const DICT: &[&[u8]] = &[
    b"<!DOCTYPE",
    b"<!ENTITY",
    b"<!doctype",
    b"&a;",
    b"]>",
    b"\"",
    b"W/\"",
    b"<urn:uuid:",
    b"(",
    b")",
    b"<",
    b">",
    b"[",
    b"]",
    b"Not ",
    b"%2f",
    b"%2e",
    b"%00",
    b"%C3%A9",
    b"%ff",
    b"/..",
    b"/./",
    b"//",
    b"?",
    b"#",
    b"\\",
    b"Second-",
    b"Infinite",
    b"bytes=",
    b"-",
    b",",
    b"99999999999999999999",
    b"http://localhost/",
    b"Basic ",
    b"\xef\xbb\xbf",
    b"\xfe\xff",
    b"\0",
    b"\r\n",
];

fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.file_name().is_some_and(|n| n != "README"))
        .map(|p| {
            let b = std::fs::read(&p).expect("read");
            (p, b)
        })
        .collect();
    out.sort();
    out
}

fn mutate(rng: &mut StdRng, seeds: &[(PathBuf, Vec<u8>)]) -> Vec<u8> {
    let mut d = seeds[rng.gen_range(0..seeds.len())].1.clone();
    for _ in 0..rng.gen_range(1..6) {
        let at = if d.is_empty() {
            0
        } else {
            rng.gen_range(0..=d.len())
        };
        match rng.gen_range(0..6) {
            0 if !d.is_empty() => {
                let i = at.min(d.len() - 1);
                d[i] ^= 1 << rng.gen_range(0..8);
            }
            1 => {
                let t = DICT[rng.gen_range(0..DICT.len())];
                d.splice(at..at, t.iter().copied());
            }
            2 if !d.is_empty() => {
                let end = (at + rng.gen_range(1..16)).min(d.len());
                d.drain(at.min(end)..end);
            }
            3 => {
                let other = &seeds[rng.gen_range(0..seeds.len())].1;
                let from = rng.gen_range(0..=other.len());
                d.splice(at..at, other[from..].iter().copied());
            }
            4 => {
                let n = rng.gen_range(1..8);
                let bytes: Vec<u8> = (0..n).map(|_| rng.r#gen()).collect();
                d.splice(at..at, bytes);
            }
            _ => {
                if !d.is_empty() {
                    // Repeat a slice (long names, deep paths, big bodies).
                    let end = (at + rng.gen_range(1..8)).min(d.len());
                    let piece = d[at.min(end)..end].to_vec();
                    for _ in 0..rng.gen_range(1..64) {
                        d.splice(at..at, piece.iter().copied());
                    }
                }
            }
        }
    }
    d.truncate(8192);
    d
}

fn run(target: &str, f: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let seeds = files(&root.join("seeds").join(target));
    assert!(!seeds.is_empty(), "no seeds for {target}");
    for (p, b) in seeds
        .iter()
        .chain(files(&root.join("regressions").join(target)).iter())
    {
        let r = std::panic::catch_unwind(|| f(b));
        assert!(r.is_ok(), "{target}: {} crashes", p.display());
    }
    let iters: usize = std::env::var("FUZZ_SMOKE_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let seed: u64 = std::env::var("FUZZ_SMOKE_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x00c0_ffee);
    let mut rng = StdRng::seed_from_u64(seed);
    for i in 0..iters {
        let input = mutate(&mut rng, &seeds);
        if std::panic::catch_unwind(|| f(&input)).is_err() {
            panic!(
                "{target}: mutation {i} (seed {seed}) crashes; input (save it under fuzz/regressions/{target}/): {input:?}"
            );
        }
    }
}

#[test]
fn headers_target() {
    run("headers", fuzzing::headers);
}

#[test]
fn paths_target() {
    run("paths", fuzzing::paths);
}

#[test]
fn xml_target() {
    run("xml", fuzzing::xml);
}
