#!/usr/bin/env bash
# The whole test suite (README quick start, command 2; CI runs exactly this through .ci/run).
# On a fresh Debian machine it installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v cc >/dev/null 2>&1 || missing+=(build-essential)
command -v cargo >/dev/null 2>&1 || missing+=(cargo rustc)
if ((${#missing[@]})); then
  echo "== installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}"
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
# Both builds: without the test-only failpoints (what ships) and with them (what the tests run).
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo clippy --workspace --all-targets --locked --all-features -- -D warnings
echo "== cargo test"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
# --no-fail-fast: one failing test binary must not hide the results of the others.
# failpoints: test-only fault injection in mhad (MHAD_FAILPOINT), used by the resume tests.
cargo test --workspace --locked --no-fail-fast --all-features 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
# The Jepsen-style suite (jepsen/, quick mode: every scenario once against the lab). Each
# scenario counts as one test. It needs root (the lab); without root it is skipped, loudly.
if [ "$(id -u)" = 0 ]; then
  echo "== mha-jepsen quick"
  cargo build --workspace --locked --all-features --bins 2>&1 | tail -n 1
  target/debug/mha-jepsen quick --mhad target/debug/mhad --store jepsen/store 2>&1 | tee -a "$log"
  jrc=${PIPESTATUS[0]}
  [ "$jrc" = 0 ] || rc=$jrc
else
  echo "SKIPPED: mha-jepsen quick needs root (the lab)"
fi
set -e
# One closing line over every test binary and the scenarios, so the total is what a reader (or
# CI) sees last.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1) } }
     /^[0-9]+ passed, [0-9]+ failed$/ { p += $1; f += $3 }
     END { printf "%d passed, %d failed\n", p, f }' "$log"
exit "$rc"
