#!/usr/bin/env bash
# The demo (README quick start, command 1). Today: a three-zone mhad manager cluster on
# loopback — status, kill -9 of the Raft leader, a new leader, the old one rejoining. The lab
# with real MariaDB hosts and a master failover joins this demo as it lands (docs/testing.md).
# Installs what it needs on a fresh Debian machine; cleans up only the processes it started.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v cc >/dev/null 2>&1 || missing+=(build-essential)
command -v cargo >/dev/null 2>&1 || missing+=(cargo rustc)
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}"
fi

echo "== building release binaries"
cargo build --release --locked --bins
bin=target/release
work=$(mktemp -d /tmp/mha-demo.XXXXXX)
ports=(17101 17102 17103)
zones=(zone-a zone-b zone-c)
members="1=127.0.0.1:${ports[0]},2=127.0.0.1:${ports[1]},3=127.0.0.1:${ports[2]}"
export MHACTL_ENDPOINTS="127.0.0.1:${ports[0]},127.0.0.1:${ports[1]},127.0.0.1:${ports[2]}"
declare -A pid

start() {
  local i=$1
  "$bin/mhad" --id "$i" --listen "127.0.0.1:${ports[$((i-1))]}" --zone "${zones[$((i-1))]}" \
    --data-dir "$work/n$i" --initial-members "$members" --cluster-name demo \
    >>"$work/n$i.log" 2>&1 &
  pid[$i]=$!
}
cleanup() {
  for i in "${!pid[@]}"; do kill "${pid[$i]}" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "== logs kept in $work"
}
trap cleanup EXIT

wait_status() { # wait until `mhactl cluster status` exits 0 and prints $1
  for _ in $(seq 1 200); do
    if out=$("$bin/mhactl" cluster status 2>/dev/null) && grep -q -- "$1" <<<"$out"; then return 0; fi
    sleep 0.05
  done
  echo "timed out waiting for: $1" >&2; "$bin/mhactl" cluster status || true; return 1
}

echo "== starting three managers (zones a, b, c)"
for i in 1 2 3; do start "$i"; done
wait_status "cluster: demo"
"$bin/mhactl" cluster status
old=$("$bin/mhactl" cluster status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["leader"]["id"])')

echo
echo "== kill -9 the leader (manager $old)"
t0=$(date +%s%N)
kill -9 "${pid[$old]}"; wait "${pid[$old]}" 2>/dev/null || true; unset "pid[$old]"
for _ in $(seq 1 400); do
  new=$("$bin/mhactl" cluster status --json 2>/dev/null | python3 -c 'import json,sys; v=json.load(sys.stdin); print(v["leader"]["id"] if v["has_quorum"] and v["leader"] else "")' 2>/dev/null || true)
  [ -n "$new" ] && [ "$new" != "$old" ] && break
  sleep 0.02
done
echo "new leader: $new after $(( ($(date +%s%N) - t0) / 1000000 )) ms"
"$bin/mhactl" cluster status || true

echo
echo "== restart manager $old: it rejoins and catches up"
start "$old"
wait_status "follower"
sleep 0.5
"$bin/mhactl" cluster status
echo
echo "== demo done (managers are stopped with SIGTERM on exit)"
