#!/usr/bin/env bash
# Runs the litmus WebDAV compliance suites (Debian's litmus 0.13) against a URL.
#
#   litmus/run.sh URL [USER [PASSWORD]]
#
# URL, USER and PASSWORD may also come from LITMUS_URL, LITMUS_USER and
# LITMUS_PASSWORD (prefer the environment for the password: arguments are
# visible in the process list). LITMUS_SUITES picks the suites
# (default: "basic copymove http").
#
# Installs the `litmus` Debian package when the binary is missing (needs root
# or sudo). Prints a summary and exits non-zero on any failed test, on any
# warning, on a suite that produced no summary, or when litmus itself fails.
set -uo pipefail

url="${1:-${LITMUS_URL:-}}"
user="${2:-${LITMUS_USER:-}}"
pass="${3:-${LITMUS_PASSWORD:-}}"
suites="${LITMUS_SUITES:-basic copymove http}"

if [ -z "$url" ]; then
  echo "usage: $0 URL [USER [PASSWORD]]  (or LITMUS_URL, LITMUS_USER, LITMUS_PASSWORD)" >&2
  exit 2
fi
if [ -n "$user" ] && [ -z "$pass" ]; then
  echo "a user was given without a password" >&2
  exit 2
fi

if ! command -v litmus >/dev/null 2>&1; then
  echo "== installing litmus"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq || exit 1
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq litmus >/dev/null || exit 1
fi

# litmus writes debug.log and child.log into the working directory.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
out="$work/litmus.out"

args=("$url")
[ -n "$user" ] && args+=("$user" "$pass")

echo "== litmus ($suites) against $url"
(cd "$work" && TESTS="$suites" litmus "${args[@]}") 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}

failed_total=0
warnings=0
problems=()
echo
echo "== litmus summary"
for suite in $suites; do
  line="$(grep -E "^<- summary for \`$suite': " "$out" | tail -n 1)"
  if [ -z "$line" ]; then
    echo "  $suite: no summary (suite did not run to completion)"
    problems+=("$suite: no summary")
    continue
  fi
  run="$(sed -E 's/.* of ([0-9]+) tests run.*/\1/' <<<"$line")"
  passed="$(sed -E 's/.* ([0-9]+) passed.*/\1/' <<<"$line")"
  failed="$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")"
  echo "  $suite: $run run, $passed passed, $failed failed"
  failed_total=$((failed_total + failed))
done
# "-> 1 warning was issued." / "-> 3 warnings were issued."
while read -r n; do
  warnings=$((warnings + n))
done < <(grep -oE '^-> [0-9]+ warnings? (was|were) issued' "$out" | grep -oE '[0-9]+')
if [ "$warnings" -eq 0 ] && grep -q 'WARNING:' "$out"; then
  warnings=$(grep -c 'WARNING:' "$out")
fi
grep -E 'WARNING:|FAIL' "$out" | sed 's/^/  /'
echo "  failed tests: $failed_total, warnings: $warnings, litmus exit code: $rc"

[ "$failed_total" -gt 0 ] && problems+=("$failed_total failed")
[ "$warnings" -gt 0 ] && problems+=("$warnings warning(s)")
[ "$rc" -ne 0 ] && problems+=("litmus exited with $rc")
if [ "${#problems[@]}" -gt 0 ]; then
  echo "== litmus: NOT CLEAN (${problems[*]})"
  exit 1
fi
echo "== litmus: clean"
