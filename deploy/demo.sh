#!/usr/bin/env bash
# The demo (README quick start, command 1), on a fresh Debian machine as root:
#   a lab of three MariaDB hosts (GTID, lossless semi-sync) and three manager zones, the
#   replication group registered and checked, then kill -9 of the Raft leader: a new leader
#   takes over and keeps managing the group; the old one rejoins.
# The master failover itself joins this demo with the failover milestone (docs/architecture.md).
# Installs what it needs; `--keep` leaves the lab up afterwards (deploy/lab/lab down removes it).
set -euo pipefail
cd "$(dirname "$0")/.."
keep=0
[ "${1:-}" = --keep ] && keep=1

missing=()
command -v cc >/dev/null 2>&1 || missing+=(build-essential)
command -v cargo >/dev/null 2>&1 || missing+=(cargo rustc)
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}"
fi

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
lab=deploy/lab/lab

step "building release binaries"
cargo build --release --locked --bins
bin=$PWD/target/release
((keep)) || trap '$lab down >/dev/null 2>&1 || true' EXIT

step "lab up: db1 (master), db2, db3 with GTID + lossless semi-sync; managers in zone-1..3"
$lab up --mode gtid --semisync --mhad "$bin/mhad"
eval "$($lab env)"
mhactl() { "$bin/mhactl" "$@"; }
for _ in $(seq 1 200); do mhactl cluster status >/dev/null 2>&1 && break; sleep 0.1; done

step "mhactl group add -f $MHA_LAB_GROUP_FILE"
mhactl group add -f "$MHA_LAB_GROUP_FILE"

step "mhactl check repl --group lab"
mhactl check repl --group lab

step "mhactl check ssh --group lab"
mhactl check ssh --group lab

step "mhactl cluster status"
mhactl cluster status
old=$(mhactl cluster status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["leader"]["id"])')

step "kill -9 the Raft leader (manager $old, zone-$old)"
t0=$(date +%s%N)
$lab mgr kill "$old"
new=""
for _ in $(seq 1 500); do
  new=$(mhactl cluster status --json 2>/dev/null |
    python3 -c 'import json,sys; v=json.load(sys.stdin); print(v["leader"]["id"] if v["has_quorum"] and v["leader"] else "")' 2>/dev/null || true)
  [ -n "$new" ] && [ "$new" != "$old" ] && break
  sleep 0.02
done
echo "new leader: manager $new after $(( ($(date +%s%N) - t0) / 1000000 )) ms"
mhactl cluster status || true

step "restart manager $old: it rejoins and catches up"
$lab mgr start "$old"
for _ in $(seq 1 200); do
  mhactl cluster status --json 2>/dev/null | python3 -c 'import json,sys; v=json.load(sys.stdin); ok=[m for m in v["managers"] if m["reachable"] and m["lag"]==0]; sys.exit(0 if len(ok)==len(v["managers"]) else 1)' && break
  sleep 0.1
done
mhactl cluster status

step "done"
((keep)) && echo "lab left up: eval \"\$($lab env)\"; $lab down removes it" || echo "tearing the lab down"
