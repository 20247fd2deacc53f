#!/bin/bash
# bench/creates.sh MNT [SECONDS] - metadata throughput from concurrent writers: for 1 and then
# 4 writer processes (each in its own directory), create empty files as fast as possible for
# SECONDS (default 10) and print files/s for each, as `name value unit` lines. With a Raft
# group every create is a committed log entry, so 4 writers show how much batching across
# clients gains. Run against any mounted file system (ours, MooseFS, a local folder).
set -euo pipefail
MNT=${1:?usage: creates.sh MOUNTPOINT [SECONDS]}
SECS=${2:-10}
WORK=$MNT/creates-bench-$$
mkdir -p "$WORK"
trap 'rm -rf "$WORK"' EXIT

run() { # run N: N writers for SECS seconds; prints the total files created per second
    local n=$1
    python3 - "$WORK/n$n" "$n" "$SECS" <<'EOF'
import os, sys, time, multiprocessing as mp
base, n, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
def writer(k, q):
    d = os.path.join(base, "w%d" % k)
    os.makedirs(d, exist_ok=True)
    end = time.time() + secs
    i = 0
    while time.time() < end:
        fd = os.open(os.path.join(d, "f%d" % i), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        os.close(fd)
        i += 1
    q.put(i)
q = mp.Queue()
ps = [mp.Process(target=writer, args=(k, q)) for k in range(n)]
t0 = time.time()
for p in ps: p.start()
total = sum(q.get() for _ in ps)
for p in ps: p.join()
print("%.0f" % (total / (time.time() - t0)))
EOF
}

one=$(run 1)
four=$(run 4)
echo "creates_1_writer $one files/s"
echo "creates_4_writers $four files/s"
python3 -c "print('creates_4_over_1 %.2f x' % ($four / max($one, 1)))"
