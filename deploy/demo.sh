#!/usr/bin/env bash
# The demo (README quick start, command 1), on a fresh Debian machine as root:
#   a lab of three MariaDB hosts (GTID, lossless semi-sync) and three manager zones, the
#   replication group registered and checked; kill -9 of the Raft leader (a new leader takes
#   over, the old one rejoins); then a writer through the VIP and kill -9 of the master: the
#   managers fail over by themselves, and the demo shows the journaled timeline, the final
#   status, and that every acknowledged write is on the new master.
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

step "manager 1's own config: the hooks, credentials and SSH profiles the group file names"
grep -v '^#' "$MHA_LAB_DIR/m1/mhad.toml"

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

step "a writer in the client namespace: INSERTs through the VIP ($MHA_LAB_VIP), one per ~20 ms"
app_pw=demo-app-$RANDOM$RANDOM
# SQL through stdin: the password is never a process argument.
$lab exec db1 -- mariadb <<SQL
CREATE USER 'app'@'10.77.0.%' IDENTIFIED BY '$app_pw';
GRANT INSERT, SELECT ON mha_lab.* TO 'app'@'10.77.0.%';
CREATE TABLE mha_lab.demo (id INT PRIMARY KEY, at TIMESTAMP(3) DEFAULT CURRENT_TIMESTAMP(3));
SQL
work=$(mktemp -d)
# The password reaches the client through MYSQL_PWD, never the command line.
MYSQL_PWD=$app_pw $lab exec client -- bash -c '
  i=0
  while [ ! -e "$1/stop" ]; do
    i=$((i + 1))
    if mariadb --no-defaults -h "$2" -uapp --connect-timeout=1 \
         -e "INSERT INTO mha_lab.demo (id) VALUES ($i)" 2>/dev/null; then
      echo "$i" >>"$1/acked"
    fi
    sleep 0.02
  done' writer "$work" "${MHA_LAB_VIP%/*}" &
writer=$!
sleep 2
echo "acknowledged so far: $(wc -l <"$work/acked")"

step "kill -9 mysqld on the master (db1)"
$lab mysqld kill db1
t0=$(date +%s%N)
state=running
for _ in $(seq 1 600); do
  state=$(mhactl failover history --group lab --json 2>/dev/null |
    python3 -c 'import json,sys; r=json.load(sys.stdin)["runs"]; print(r[-1]["state"]["state"] if r else "none")' 2>/dev/null || echo none)
  [ "$state" = completed ] || [ "$state" = failed ] && break
  sleep 0.1
done
echo "failover run $state, $(( ($(date +%s%N) - t0) / 1000000 )) ms after the kill (as seen by polling)"
sleep 2
touch "$work/stop"; wait "$writer" || true

step "mhactl failover history --group lab   (the journal: MHA's phases, who ran each, in which term)"
mhactl failover history --group lab

step "mhactl cluster status"
mhactl cluster status

step "every acknowledged write is on the new master"
new_master=$($lab vip-holder)
acked=$(wc -l <"$work/acked")
$lab exec "$new_master" -- mariadb -N -B -e "SELECT id FROM mha_lab.demo" </dev/null | sort -n >"$work/rows"
sort -n "$work/acked" >"$work/acked.sorted"
lost=$(comm -23 "$work/acked.sorted" "$work/rows" | wc -l)
echo "VIP holder: $new_master; writes acknowledged: $acked; rows on $new_master: $(wc -l <"$work/rows"); acknowledged but missing: $lost"
[ "$lost" = 0 ] && echo "nothing acknowledged was lost" || echo "WARNING: $lost acknowledged writes are missing"
rm -rf "$work"

step "done"
((keep)) && echo "lab left up: eval \"\$($lab env)\"; $lab down removes it" || echo "tearing the lab down"
