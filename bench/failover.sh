#!/bin/bash
# bench/failover.sh - how long a mount pauses when the meta leader dies: a local cluster with
# 3 meta replicas (election timeout ELECTION_MS, default 1000), one mount, a writer that
# creates a small file and fsyncs it in a loop logging every completion; the leader is killed
# with SIGKILL, and the pause is the time from the kill to the writer's next acknowledged
# create. The killed replica is started again and caught up before the next of ROUNDS rounds
# (default 10). Prints every pause, then the median and the maximum, as `name value unit`.
# Needs root (FUSE). Run: make bench-failover.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
B=${BUILD:-$ROOT/build}
ROUNDS=${ROUNDS:-10}
ELECTION_MS=${ELECTION_MS:-1000}
DIR=$(mktemp -d "${TMPDIR:-/tmp}/cairn-failover-XXXXXX")
MNT=$DIR/mnt
CAIRN=$B/cairn
WRITER_PID=

cleanup() {
    [[ -n $WRITER_PID ]] && kill "$WRITER_PID" 2>/dev/null || true
    "$CAIRN" local stop "$DIR" >/dev/null 2>&1 || true
    rm -rf "$DIR"
}
trap cleanup EXIT

"$CAIRN" local start "$DIR" --mount "$MNT" --metas 3 \
    --meta-opt "election_timeout_ms=$ELECTION_MS" >/dev/null
META=$(grep '^META_ADDR=' "$DIR/cluster.env" | cut -d= -f2)

leader_id() { # the id of the leader, or nothing
    "$CAIRN" meta status --json --meta "$META" 2>/dev/null |
        python3 -c "import json,sys; d=json.load(sys.stdin); print(d['leader_id'] or '')" || true
}

wait_all_caught_up() { # every member reachable and at lag 0 (bounded: 30 s)
    for _ in $(seq 1 300); do
        if "$CAIRN" meta status --json --meta "$META" 2>/dev/null | python3 -c "
import json,sys
d=json.load(sys.stdin)
m=d['members']
sys.exit(0 if d['leader_id'] and len(m)==3 and all(x['reachable'] and x['lag']==0 for x in m) else 1)"; then
            return 0
        fi
        sleep 0.1
    done
    echo "the group did not catch up" >&2
    return 1
}

# the writer: one create + fsync per line of its log, with the completion time
mkdir -p "$MNT/fo"
python3 - "$MNT/fo" "$DIR/writer.log" <<'EOF' &
import os, sys, time
d, log = sys.argv[1], open(sys.argv[2], "w", buffering=1)
i = 0
while True:
    p = os.path.join(d, "f%d" % i)
    fd = os.open(p, os.O_CREAT | os.O_WRONLY, 0o644)
    os.write(fd, b"x")
    os.fsync(fd)
    os.close(fd)
    log.write("%d %.6f\n" % (i, time.time()))
    i += 1
    time.sleep(0.005)
EOF
WRITER_PID=$!

pauses=()
for round in $(seq 1 "$ROUNDS"); do
    wait_all_caught_up
    sleep 1
    lid=$(leader_id)
    [[ -n $lid ]] || { echo "no leader" >&2; exit 1; }
    pid=$(cat "$DIR/meta$lid.pid")
    kill -9 "$pid"
    t0=$(python3 -c 'import time; print("%.6f" % time.time())')
    # the first create acknowledged after the kill (bounded: 60 s)
    pause=
    for _ in $(seq 1 600); do
        pause=$(python3 -c "
import sys
t0=$t0
for line in open('$DIR/writer.log'):
    i,t=line.split()
    if float(t)>t0+0.0001:
        print('%.3f' % (float(t)-t0)); break
" || true)
        [[ -n $pause ]] && break
        sleep 0.1
    done
    [[ -n $pause ]] || { echo "round $round: no create acknowledged within 60 s" >&2; exit 1; }
    echo "failover_pause_round_$round $pause s"
    pauses+=("$pause")
    "$B/cairn-meta" --config "$DIR/meta$lid.conf" --daemon --pid_file="$DIR/meta$lid.pid"
done
kill "$WRITER_PID" 2>/dev/null || true
WRITER_PID=
printf '%s\n' "${pauses[@]}" | python3 -c "
import statistics,sys
v=[float(x) for x in sys.stdin]
print('failover_pause_median %.3f s' % statistics.median(v))
print('failover_pause_max %.3f s' % max(v))
print('election_timeout %d ms' % $ELECTION_MS)"
