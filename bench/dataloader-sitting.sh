#!/bin/bash
# bench/dataloader-sitting.sh META ROUNDS TARGET... - one sitting of
# ../shared/bench/clients/dataloader.sh (DL=) on each target, ROUNDS times, for the figures of
# issue #10 side by side. A TARGET is NAME=PATH: a mounted file system used as it is (the local
# disk, the FUSE passthrough, MooseFS), or cairn:NAME[:OPTS] for a CairnFS mount of META (a
# meta= list) at a scratch folder, made afresh before every epoch (so no client cache carries
# over; OPTS are extra -o options, commas between them), or cairn1:NAME[:OPTS] for one such
# mount a round that serves all its epochs, as a training job's mount does (the page cache is
# still dropped before every epoch: what carries over is the client's own state, such as its
# disk cache's index and the chunk files it keeps open). The first run on a target writes the
# data set (dataloader.sh does); a CairnFS target's data set is the one under META.
#
# The targets take turns epoch by epoch: for each kind (files, shards) and worker count (WS,
# default "0 4 8") every target runs its epoch before the next cell starts, so a quiet or a busy
# minute of this shared machine falls on all of them alike rather than on one target's round.
# Raw outputs go to OUT (default /tmp/dataloader-sitting), one file per target and round; a line
# per target and round on stdout (MiB/s: files w0 w4 w8, shards w0 w4 w8), then the medians
# over the rounds (the first dropped when there are three or more: it warms the machine) and the
# ratios of each CairnFS target to the others. Needs root.
#
#   bench/dataloader-sitting.sh 127.0.0.1:9520 4 local=/tmp/dlocal pt=/tmp/pt mfs=/tmp/mfs \
#       cairn:cairn cairn:dc:local_reads=0,cache_dir=/tmp/dc1,cache_size=4G
set -euo pipefail
META=${1:?usage: dataloader-sitting.sh META ROUNDS TARGET...}
ROUNDS=${2:?rounds}
shift 2
HERE=$(cd "$(dirname "$0")/.." && pwd)
MOUNT_BIN=${MOUNT_BIN:-$HERE/build/cairn-mount}
DL=${DL:-$HERE/../shared/bench/clients/dataloader.sh}
OUT=${OUT:-/tmp/dataloader-sitting}
WS=${WS:-0 4 8}
mkdir -p "$OUT"
SCRATCH=$(mktemp -d /tmp/cairn-sitting.XXXXXX)
trap 'umount "$SCRATCH"/* 2>/dev/null || true; rm -rf "$SCRATCH"' EXIT
LOG=$OUT/sitting.log
: >"$LOG"

for t in "$@"; do
    case $t in
    cairn:* | cairn1:* | *=*) ;;
    *)
        echo "bad target '$t' (NAME=PATH, cairn:NAME[:OPTS] or cairn1:NAME[:OPTS])" >&2
        exit 2
        ;;
    esac
done

# fresh MNT OPTS: unmount MNT and mount META there again (a cache_dir is free again only once
# the old client has exited: retried for 10 s)
fresh() {
    umount "$1" 2>/dev/null || true
    mkdir -p "$1"
    for _ in $(seq 50); do
        "$MOUNT_BIN" "$1" -o "meta=$META${2:+,$2}" 2>/dev/null && break
        sleep 0.2
    done
    mountpoint -q "$1" || { echo "cannot mount $META at $1" >&2; exit 1; }
}

name_of() {
    case $1 in
    cairn:* | cairn1:*)
        local spec=${1#*:}
        echo "${spec%%:*}"
        ;;
    *) echo "${1%%=*}" ;;
    esac
}

# epoch TARGET ROUND KIND W: one epoch of TARGET, its figure lines appended to its round's file
epoch() {
    local t=$1 r=$2 kind=$3 w=$4 name path
    name=$(name_of "$t")
    case $t in
    cairn:*)
        local spec=${t#*:} opts=
        [[ $spec == *:* ]] && opts=${spec#*:}
        fresh "$SCRATCH/$name" "$opts"
        path=$SCRATCH/$name
        ;;
    cairn1:*) path=$SCRATCH/$name ;;
    *) path=${t#*=} ;;
    esac
    WORKERS=$w "$DL" "$path" --only "$kind" >>"$OUT/$name-$r.txt" 2>/dev/null
    if [[ $t == cairn:* ]]; then umount "$path" 2>/dev/null || true; fi
}

for r in $(seq "$ROUNDS"); do
    for t in "$@"; do
        : >"$OUT/$(name_of "$t")-$r.txt"
        if [[ $t == cairn1:* ]]; then
            spec=${t#*:}
            opts=
            [[ $spec == *:* ]] && opts=${spec#*:}
            fresh "$SCRATCH/$(name_of "$t")" "$opts"
        fi
    done
    for kind in files shards; do
        for w in $WS; do
            for t in "$@"; do
                epoch "$t" "$r" "$kind" "$w"
            done
        done
    done
    for t in "$@"; do
        name=$(name_of "$t")
        [[ $t == cairn1:* ]] && { umount "$SCRATCH/$name" 2>/dev/null || true; }
        echo "$(date +%T) round $r $name: $(awk '/_mib_per_s/ {printf "%s ", $2}' "$OUT/$name-$r.txt")" |
            tee -a "$LOG"
    done
done

cairns=""
for t in "$@"; do [[ $t == cairn* ]] && cairns="$cairns $(name_of "$t")"; done
python3 - "$LOG" "$WS" $cairns <<'EOF'
import statistics, sys
log, ws, cairns = sys.argv[1], sys.argv[2].split(), sys.argv[3:]
rows = {}
for line in open(log):
    head, _, figs = line.partition(": ")
    parts = head.split()
    if len(parts) != 4 or parts[1] != "round":
        continue
    rows.setdefault(parts[3], {})[int(parts[2])] = [float(x) for x in figs.split()]
if not rows:
    sys.exit(0)
nrounds = max(max(v) for v in rows.values())
keep = range(2, nrounds + 1) if nrounds >= 3 else range(1, nrounds + 1)
cells = " ".join(f"w{w}" for w in ws)
print(f"medians of rounds {keep.start}-{keep.stop - 1}, MiB/s: files {cells}, shards {cells}")
med = {}
for name, by_round in rows.items():
    cols = [by_round[r] for r in keep if r in by_round and by_round[r]]
    if not cols or any(len(c) != len(cols[0]) for c in cols):
        continue
    med[name] = [statistics.median(c) for c in zip(*cols)]
    print(f"  {name:10s}" + "".join(f"{x:9.1f}" for x in med[name]))
for a in cairns:
    for b in med:
        if b == a or b in cairns or a not in med:
            continue
        print(f"  {a + ' / ' + b:10s}" + "".join(f"{x / y:9.2f}" for x, y in zip(med[a], med[b])))
EOF
