#!/bin/bash
# bench/heal.sh - how fast a cluster heals: a local cluster (3 chunk servers, copies 2, the
# repair rate limit lifted) gets GIB GiB of data, the chunk server holding the most copies is
# killed with SIGKILL, and the script times how long the cluster takes from the moment the
# meta service declares it dead until every chunk has its copies again. Prints the bytes
# copied, the time and the rate beside the local disk's sequential write speed (dd with
# conv=fsync on the same folder), as `name value unit` lines. Needs root (FUSE) and about
# 4 x GIB GiB free under TMPDIR. Run: make bench-heal (GIB=3 by default).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
B=${BUILD:-$ROOT/build}
GIB=${GIB:-3}
CS_TIMEOUT=${CS_TIMEOUT:-3}
DIR=$(mktemp -d "${TMPDIR:-/tmp}/cairn-heal-XXXXXX")
MNT=$DIR/mnt
CAIRN=$B/cairn

cleanup() {
    "$CAIRN" local stop "$DIR" >/dev/null 2>&1 || true
    rm -rf "$DIR"
}
trap cleanup EXIT

json() { # json EXPR: evaluate a python expression over `cairn health --json` as h
    "$CAIRN" health --json --meta "$META" | python3 -c "import json,sys; h=json.load(sys.stdin); print($1)"
}

# the local disk, same folder
ref=$(dd if=/dev/zero of="$DIR/ref" bs=1M count=2048 conv=fsync 2>&1 | tail -n 1)
rm -f "$DIR/ref"
ref_mibs=$(echo "$ref" | python3 -c "
import re,sys
m=re.search(r'([0-9.]+) (GB|MB)/s', sys.stdin.read())
print(round(float(m.group(1))*(1e9 if m.group(2)=='GB' else 1e6)/1048576, 1))")
echo "local_seq_write $ref_mibs MiB/s"

"$CAIRN" local start "$DIR" --mount "$MNT" --copies 2 --meta-opt repair_rate=0 \
    --meta-opt "cs_timeout=$CS_TIMEOUT" --cs-opt heartbeat_ms=500 >/dev/null
META=$(grep '^META_ADDR=' "$DIR/cluster.env" | cut -d= -f2)

# data: GIB files of 1 GiB, written and synced
for ((i = 0; i < GIB; i++)); do
    dd if=/dev/urandom of="$MNT/f$i" bs=1M count=1024 conv=fsync status=none
done
for ((t = 0; t < 600; t++)); do
    [[ $(json "h['chunks']['full'] == h['chunks']['total'] and h['scan_complete']") == True ]] &&
        break
    sleep 0.5
done

# the server holding the most copies, and its pid (cluster.env: CSi_ADDR, CSi_PID)
victim=$(json "max(h['servers'], key=lambda s: s['chunks'])['addr']")
held=$(json "max(s['chunks'] for s in h['servers'])")
idx=$(grep -E "^CS[0-9]+_ADDR=$victim\$" "$DIR/cluster.env" | sed -E 's/^CS([0-9]+)_ADDR=.*/\1/')
pid=$(grep "^CS${idx}_PID=" "$DIR/cluster.env" | cut -d= -f2)
bytes0=$(json "h['repair']['bytes']")
echo "killed_server_copies $held chunks"
kill -9 "$pid"

start=$(date +%s.%N)
for ((t = 0; t < 1200; t++)); do # declared dead
    [[ $(json "[s['state'] for s in h['servers'] if s['addr'] == '$victim'][0]") == down ]] && break
    sleep 0.1
done
dead=$(date +%s.%N)
for ((t = 0; t < 6000; t++)); do # every chunk back at 2 copies, nothing queued
    [[ $(json "h['chunks']['under_replicated'] == 0 and h['chunks']['missing'] == 0 and h['repair']['queue'] == 0 and h['repair']['bytes'] > $bytes0") == True ]] &&
        break
    sleep 0.2
done
done_t=$(date +%s.%N)
bytes=$(($(json "h['repair']['bytes']") - bytes0))
python3 - "$start" "$dead" "$done_t" "$bytes" "$ref_mibs" <<'EOF'
import sys
start, dead, done, nbytes, ref = map(float, sys.argv[1:])
heal = done - dead
mib = nbytes / 1048576
print(f"detect_time {dead - start:.1f} s")
print(f"heal_bytes {mib:.0f} MiB")
print(f"heal_time {heal:.1f} s")
print(f"heal_rate {mib / heal:.1f} MiB/s")
print(f"heal_rate_vs_local_write {mib / heal / ref:.2f} x")
EOF
