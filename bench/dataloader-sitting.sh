#!/bin/bash
# bench/dataloader-sitting.sh META ROUNDS TARGET... - one sitting of
# ../shared/bench/clients/dataloader.sh (DL=) on each target in turn, ROUNDS times, for the
# figures of issue #10 side by side. A TARGET is NAME=PATH: a mounted file system used as it is
# (the local disk, the FUSE passthrough, MooseFS), or cairn:NAME[:OPTS] for a CairnFS mount of
# META (a meta= list) at a scratch folder, made afresh before every epoch (so no client cache
# carries over; OPTS are extra -o options, commas between them), or cairn1:NAME[:OPTS] for one
# such mount a round that serves all its epochs, as a training job's mount does (the page cache
# is still dropped before every epoch: what carries over is the client's own state, such as its
# disk cache's index and the chunk files it keeps open). The first run on a target
# writes the data set (dataloader.sh does); a CairnFS target's data set is the one under META.
# Raw outputs go to OUT (default /tmp/dataloader-sitting), one file per target and round; a
# line per target and round on stdout (MiB/s: files w0 w4 w8, shards w0 w4 w8). Needs root.
#
#   bench/dataloader-sitting.sh 127.0.0.1:9520 3 local=/tmp/dlocal pt=/tmp/pt mfs=/tmp/mfs \
#       cairn:cairn cairn1:dc:local_reads=0,cache_dir=/tmp/dc1,cache_size=4G
set -euo pipefail
META=${1:?usage: dataloader-sitting.sh META ROUNDS TARGET...}
ROUNDS=${2:?rounds}
shift 2
HERE=$(cd "$(dirname "$0")/.." && pwd)
MOUNT_BIN=${MOUNT_BIN:-$HERE/build/cairn-mount}
DL=${DL:-$HERE/../shared/bench/clients/dataloader.sh}
OUT=${OUT:-/tmp/dataloader-sitting}
mkdir -p "$OUT"
SCRATCH=$(mktemp -d /tmp/cairn-sitting.XXXXXX)
trap 'umount "$SCRATCH"/* 2>/dev/null || true; rm -rf "$SCRATCH"' EXIT

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

for r in $(seq "$ROUNDS"); do
    for t in "$@"; do
        case $t in
        cairn:* | cairn1:*)
            spec=${t#*:}
            name=${spec%%:*}
            opts=
            [[ $spec == *:* ]] && opts=${spec#*:}
            f=$OUT/$name-$r.txt
            : >"$f"
            if [[ $t == cairn1:* ]]; then
                fresh "$SCRATCH/$name" "$opts"
                "$DL" "$SCRATCH/$name" >"$f" 2>/dev/null
            else
                for kind in files shards; do
                    for w in 0 4 8; do
                        fresh "$SCRATCH/$name" "$opts"
                        WORKERS=$w "$DL" "$SCRATCH/$name" --only $kind >>"$f" 2>/dev/null
                    done
                done
            fi
            umount "$SCRATCH/$name" 2>/dev/null || true
            ;;
        *=*)
            name=${t%%=*}
            f=$OUT/$name-$r.txt
            "$DL" "${t#*=}" >"$f" 2>/dev/null
            ;;
        *)
            echo "bad target '$t' (NAME=PATH, cairn:NAME[:OPTS] or cairn1:NAME[:OPTS])" >&2
            exit 2
            ;;
        esac
        echo "$(date +%T) round $r $name: $(awk '/_mib_per_s/ {printf "%s ", $2}' "$f")"
    done
done
