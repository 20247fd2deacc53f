#!/bin/sh
# Installs the Debian 12 packages CairnFS needs to build and to run its tests. Run as root.
set -e
PKGS="build-essential pkg-config libfuse3-dev fuse3 libevent-dev liblmdb-dev lmdb-utils \
libxxhash-dev libzstd-dev zstd libraft-dev libuv1-dev iproute2 check clang libclang-rt-14-dev attr acl rsync git sqlite3 fio \
python3 util-linux procps prometheus chromium curl"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -z "$missing" ]; then
    echo "deps: all installed"
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "deps: missing:$missing (run 'make deps' as root)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing
