#!/usr/bin/env bash
# Installs the external programs the test suite drives. Idempotent: a tool
# that is already present is left alone. Debian packages via apt-get (root).
set -euo pipefail

need=()
# (Filled in as test suites that drive real programs are added.)
command -v litmus >/dev/null || need+=(litmus)   # litmus/run.sh (WebDAV compliance)
command -v chromium >/dev/null || need+=(chromium)   # tests/browser_index.rs (HTML listing)

if [ "${#need[@]}" -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
fi
command -v cargo-clippy >/dev/null || { echo "clippy missing from the Rust toolchain" >&2; exit 1; }
