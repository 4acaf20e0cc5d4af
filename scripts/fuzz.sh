#!/usr/bin/env bash
# Builds the libFuzzer targets in fuzz/ with SanitizerCoverage on the stable
# toolchain (no nightly, no cargo-fuzz needed) and runs one of them.
#
#   scripts/fuzz.sh build                  # build all targets
#   scripts/fuzz.sh run TARGET SECONDS     # fuzz TARGET for SECONDS, corpus in fuzz/corpus/TARGET
#   scripts/fuzz.sh list                   # target names
#
# A crash leaves `fuzz/artifacts/TARGET/crash-*`; replay it with
# `fuzz/target/HOST/release/TARGET fuzz/artifacts/TARGET/crash-...` and turn it
# into a regression test (tests/fuzz_regressions.rs).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

TARGETS=(headers paths xml)
HOST="$(rustc -vV | sed -n "s/^host: //p")"
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"

build() {
    cargo build --release --bins --target "$HOST"
}

case "${1:-}" in
    build) build ;;
    list) printf '%s\n' "${TARGETS[@]}" ;;
    run)
        target="${2:?target name}"
        secs="${3:-60}"
        build
        mkdir -p "corpus/$target" "artifacts/$target"
        seeds=()
        [ -d "seeds/$target" ] && seeds=("seeds/$target")
        "target/$HOST/release/$target" "corpus/$target" "${seeds[@]}" \
            -max_total_time="$secs" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
            -artifact_prefix="artifacts/$target/" -print_final_stats=1
        ;;
    *) echo "usage: $0 build | list | run TARGET SECONDS" >&2; exit 2 ;;
esac
