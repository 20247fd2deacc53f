#!/bin/bash
# bench/dirscan.sh META [NFILES] - what the directory-scan prefetch (dir_prefetch) gains for a
# scan in listing order and costs a shuffled reader. Mounts the cluster at META (a meta= list)
# twice in turn, with dir_prefetch=1 and dir_prefetch=0, on a scratch folder; writes NFILES
# (default 2000) files of 64-256 KiB in 10 folders once; then, for each setting, with the page
# cache dropped and a fresh mount each time:
#   tar      `tar cf - DIR | wc -c` (directory order)
#   find     `find DIR -type f -exec cat {} +` (directory order)
#   shuffled `ls -lR DIR`, then every file read whole in a random order (a data loader)
# Prints `name value unit` lines (seconds, lower is better) and the prefetches used and
# wasted (the mount's user.cairn.stats). Needs root (mounts, drop_caches).
set -euo pipefail
META=${1:?usage: dirscan.sh META_LIST [NFILES]}
NFILES=${2:-2000}
HERE=$(cd "$(dirname "$0")/.." && pwd)
MOUNT_BIN=${MOUNT_BIN:-$HERE/build/cairn-mount}
MNT=$(mktemp -d /tmp/cairn-dirscan.XXXXXX)
trap 'umount "$MNT" 2>/dev/null || true; rmdir "$MNT"' EXIT

mnt() { # mnt OPTS: a fresh mount at $MNT
    umount "$MNT" 2>/dev/null || true
    "$MOUNT_BIN" "$MNT" -o "meta=$META,$1"
    for _ in $(seq 50); do mountpoint -q "$MNT" && return 0; sleep 0.1; done
    echo "dirscan.sh: mount failed" >&2
    exit 1
}
stat_of() { getfattr -n user.cairn.stats --only-values "$MNT" 2>/dev/null | awk -v k="$1" '$1 == k {print $2}'; }
cold() { sync; echo 3 >/proc/sys/vm/drop_caches; }
secs() { local t0; t0=$(date +%s.%N); "$@" >/dev/null 2>&1; echo "$(date +%s.%N) - $t0" | bc; }

mnt dir_prefetch=0
DATA=$MNT/dirscan-data
if [[ ! -f $DATA/.done-$NFILES ]]; then
    rm -rf "$DATA"
    python3 - "$DATA" "$NFILES" <<'EOF'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
random.seed(7)
for i in range(n):
    d = os.path.join(root, "d%02d" % (i % 10))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%06d" % i), "wb") as f:
        f.write(os.urandom(random.randint(64, 256) * 1024))
EOF
    touch "$DATA/.done-$NFILES"
fi

for dp in 1 0; do
    mnt "dir_prefetch=$dp"
    cold
    echo "tar_dp$dp $(secs sh -c "tar cf - -C '$MNT' dirscan-data | wc -c") s"
    mnt "dir_prefetch=$dp"
    cold
    echo "find_cat_dp$dp $(secs sh -c "find '$DATA' -type f -exec cat {} + | wc -c") s"
    echo "find_cat_dp${dp}_prefetch_used $(stat_of prefetch_used) segments"
    mnt "dir_prefetch=$dp"
    cold
    ls -lR "$DATA" >/dev/null
    echo "shuffled_dp$dp $(secs python3 -c "
import os, random, sys
root = sys.argv[1]
paths = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if f.startswith('f')]
random.seed(3); random.shuffle(paths)
for p in paths:
    with open(p, 'rb') as f: f.read()
" "$DATA") s"
    echo "shuffled_dp${dp}_prefetch_segments $(stat_of prefetch_segments) segments"
    echo "shuffled_dp${dp}_prefetch_wasted $(stat_of prefetch_wasted) segments"
done
