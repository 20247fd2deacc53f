#!/bin/bash
# install_check.sh - what test_mount_install runs: `make install` checked three ways.
#
#   install_check.sh files WORK   DESTDIR installs (PREFIX=/usr and the default /usr/local)
#                                 put exactly the files listed below in place; uninstall
#                                 removes them again
#   install_check.sh mount WORK   a DESTDIR install used for real in a private mount and
#                                 network namespace (unshare -m -n): overlays show its /sbin
#                                 and /usr/local over the real ones there only; a cluster from
#                                 the installed programs and example configurations; mount -t
#                                 fuse.cairn, mount -t cairn, an fstab line (mount -T) and the
#                                 example .mount unit's mount, all from `env -i PATH=/sbin:/bin`
#   install_check.sh netns WORK   the README's three machines: meta and a chunk server on
#                                 10.0.0.1, chunk servers on .2 and .3, the client on .10, each
#                                 in a network namespace of its own on a private bridge; the
#                                 configs made from the examples with the README's commands and
#                                 the daemons started with the installed units' ExecStart
#
# WORK is an empty folder made by the caller; everything lives under it. Processes are
# stopped by the PIDs this script recorded (checked to run from WORK first); the namespaces
# are named cin<pid>-*, deleted on exit. Every wait is bounded. Run from the repository root
# as root; BUILD names the build folder (default build).
set -euo pipefail

MODE=$1
WORK=$2
BUILD=${BUILD:-build}
REPO=$(pwd)
SELF=$(readlink -f "$0")
DEST=$WORK/dest

say() { printf '[install_check %s] %s\n' "$MODE" "$*" >&2; }
fail() {
    say "FAIL: $*"
    exit 1
}

# wait_for SECONDS WHAT COMMAND...: retry every 0.2 s, bounded
wait_for() {
    local n=$(($1 * 5)) what=$2 i
    shift 2
    for ((i = 0; i < n; i++)); do
        if "$@" 2>/dev/null; then return 0; fi
        sleep 0.2
    done
    fail "timed out after ${n}/5 s waiting for $what"
}

# PIDs of our daemons: cairn-* programs whose command line names WORK (this run's own
# folder), among them a mount daemon that a failed step left behind.
ours() {
    local f p
    for f in $(grep -l -s -F "$WORK" /proc/[0-9]*/cmdline); do
        p=${f#/proc/}
        p=${p%/cmdline}
        case $(basename "$(readlink "/proc/$p/exe" 2>/dev/null)") in cairn-*) echo "$p" ;; esac
    done
}

# Stop them: SIGTERM, up to 5 s, then SIGKILL.
stop_ours() {
    local p i
    for p in $(ours); do kill "$p" 2>/dev/null || true; done
    for ((i = 0; i < 50; i++)); do
        [ -z "$(ours)" ] && return 0
        sleep 0.1
    done
    for p in $(ours); do kill -9 "$p" 2>/dev/null || true; done
}

do_install() { # PREFIX (empty: the Makefile's default)
    make -s --no-print-directory -C "$REPO" install BUILD="$BUILD" DESTDIR="$DEST" \
        ${1:+PREFIX=$1} >"$WORK/install.log" 2>&1 || {
        cat "$WORK/install.log" >&2
        fail "make install failed"
    }
}

# ---- files: every file listed, nothing else --------------------------------------------------
files_expected() { # PREFIX
    local p=$1
    cat <<EOF | sort
etc/cairn/chunk.conf.example
etc/cairn/fstab.example
etc/cairn/meta.conf.example
etc/cairn/mnt-datasets.mount.example
sbin/mount.cairn
sbin/mount.fuse.cairn
$p/bin/cairn
$p/bin/cairn-chunk
$p/bin/cairn-local
$p/bin/cairn-meta
$p/bin/cairn-mount
$p/lib/systemd/system/cairn-chunk@.service
$p/lib/systemd/system/cairn-meta.service
$p/share/man/man1/cairn.1
$p/share/man/man8/cairn-chunk.8
$p/share/man/man8/cairn-meta.8
$p/share/man/man8/cairn-mount.8
$p/share/man/man8/mount.cairn.8
$p/share/man/man8/mount.fuse.cairn.8
EOF
}

check_tree() { # PREFIX (as an absolute path)
    local p=$1 rel=${1#/} f
    (cd "$DEST" && find . ! -type d | sed 's|^\./||' | sort) >"$WORK/got"
    files_expected "$rel" >"$WORK/want"
    diff -u "$WORK/want" "$WORK/got" >&2 || fail "installed files differ from the list (PREFIX=$p)"
    for f in cairn cairn-chunk cairn-local cairn-meta cairn-mount; do
        [ -x "$DEST$p/bin/$f" ] && [ ! -L "$DEST$p/bin/$f" ] || fail "$p/bin/$f is not a program"
        cmp -s "$DEST$p/bin/$f" "$BUILD/$f" || fail "$p/bin/$f is not $BUILD/$f"
    done
    for f in mount.cairn mount.fuse.cairn; do
        [ "$(readlink "$DEST/sbin/$f")" = "$p/bin/cairn-mount" ] ||
            fail "/sbin/$f -> $(readlink "$DEST/sbin/$f"), not $p/bin/cairn-mount"
    done
    grep -qx "ExecStart=$p/bin/cairn-meta --config /etc/cairn/meta.conf" \
        "$DEST$p/lib/systemd/system/cairn-meta.service" || fail "cairn-meta.service ExecStart"
    grep -qx "ExecStart=$p/bin/cairn-chunk --config /etc/cairn/%i.conf" \
        "$DEST$p/lib/systemd/system/cairn-chunk@.service" || fail "cairn-chunk@.service ExecStart"
    ! grep -rq '@BINDIR@' "$DEST" || fail "an unsubstituted @BINDIR@"
    for f in "$DEST$p"/share/man/man*/*; do
        [ "$(stat -c %a "$f")" = 644 ] || fail "$f mode $(stat -c %a "$f")"
    done
    [ "$(stat -c %a "$DEST$p/bin/cairn-meta")" = 755 ] || fail "cairn-meta mode"
}

mode_files() {
    do_install /usr
    check_tree /usr
    make -s --no-print-directory -C "$REPO" uninstall BUILD="$BUILD" DESTDIR="$DEST" \
        PREFIX=/usr >>"$WORK/install.log" 2>&1 || fail "make uninstall failed"
    left=$(find "$DEST" ! -type d | wc -l)
    [ "$left" = 0 ] || fail "uninstall left $left files: $(find "$DEST" ! -type d)"
    [ ! -e "$DEST/etc/cairn" ] || fail "uninstall left /etc/cairn"
    rm -rf "$DEST"
    do_install ""
    check_tree /usr/local
    say "ok: PREFIX=/usr and /usr/local install every listed file, uninstall removes them"
}

# ---- mount: the installed helper from a clean environment -------------------------------------
# Runs inside `unshare -m -n`: this mount and network namespace only.
mount_inner() {
    local sbin m=$WORK/mnt port=9520
    sbin=$(readlink -f /sbin)
    mount -t overlay overlay -o "lowerdir=$DEST/usr/local:/usr/local" /usr/local
    mount -t overlay overlay -o "lowerdir=$DEST/sbin:$sbin" "$sbin"
    ip link set lo up
    [ -x /sbin/mount.fuse.cairn ] || fail "no /sbin/mount.fuse.cairn in the namespace"
    if command -v systemd-analyze >/dev/null; then
        mkdir -p "$WORK/units"
        cp /usr/local/lib/systemd/system/cairn-meta.service \
            /usr/local/lib/systemd/system/cairn-chunk@.service "$WORK/units/"
        cp "$DEST/etc/cairn/mnt-datasets.mount.example" "$WORK/units/mnt-datasets.mount"
        (cd "$WORK/units" && systemd-analyze verify --man=no cairn-meta.service \
            cairn-chunk@.service mnt-datasets.mount) >"$WORK/verify.log" 2>&1 || {
            cat "$WORK/verify.log" >&2
            fail "systemd-analyze verify"
        }
    fi
    # configurations from the examples: this namespace's loopback, folders under WORK
    mkdir -p "$WORK/etc" "$m" "$WORK/cs1" "$WORK/cs2"
    chmod 755 "$WORK" # user nobody reaches the mount point below
    sed -e "s|^listen = .*|listen = 127.0.0.1:$port|" -e "s|/var/lib/cairn|$WORK/lib|" \
        -e "s|^chunk_size = .*|chunk_size = 4M|" \
        "$DEST/etc/cairn/meta.conf.example" >"$WORK/etc/meta.conf"
    for i in 1 2; do
        sed -e "s|^meta = .*|meta = 127.0.0.1:$port|" -e "s|^listen = .*|listen = 127.0.0.1:953$i|" \
            -e "/^advertise/d" -e "s|^data_dirs = .*|data_dirs = $WORK/cs$i/a,$WORK/cs$i/b|" \
            "$DEST/etc/cairn/chunk.conf.example" >"$WORK/etc/cs$i.conf"
    done
    /usr/local/bin/cairn-meta --init --config "$WORK/etc/meta.conf" >"$WORK/init.log" 2>&1 ||
        fail "cairn-meta --init: $(cat "$WORK/init.log")"
    ! /usr/local/bin/cairn-meta --init --config "$WORK/etc/meta.conf" >"$WORK/init2.log" 2>&1 ||
        fail "a second --init on the same data_dir succeeded"
    grep -q "not empty" "$WORK/init2.log" || fail "second --init: $(cat "$WORK/init2.log")"
    # a group of several replicas, or a joining one, is not made by --init
    for o in --peers=127.0.0.1:$port,127.0.0.1:9522 --join=127.0.0.1:9522; do
        ! /usr/local/bin/cairn-meta --init --config "$WORK/etc/meta.conf" \
            --data_dir="$WORK/lib/other" "$o" >"$WORK/init3.log" 2>&1 || fail "--init $o succeeded"
        [ ! -e "$WORK/lib/other" ] || fail "--init $o made a data_dir"
    done
    /usr/local/bin/cairn-meta --config "$WORK/etc/meta.conf" >"$WORK/meta.log" 2>&1 &
    for i in 1 2; do
        /usr/local/bin/cairn-chunk --config "$WORK/etc/cs$i.conf" >"$WORK/cs$i.log" 2>&1 &
    done
    wait_for 15 "two chunk servers up" sh -c \
        "[ \$(/usr/local/bin/cairn health --meta 127.0.0.1:$port --json | grep -c '\"up\"') = 2 ]"
    grep -q "registered with meta .* (chunk size 4194304)" "$WORK/cs1.log" ||
        fail "the served store's chunk size is not --init's 4M: $(tail -n 3 "$WORK/cs1.log")"

    # mount -t fuse.cairn from a clean environment: nodev,nosuid,allow_other by default
    env -i PATH=/sbin:/bin mount -t fuse.cairn "127.0.0.1:$port" "$m" || fail "mount -t fuse.cairn"
    local line
    line=$(grep " $m fuse.cairn " /proc/mounts) || fail "no fuse.cairn mount at $m"
    for o in nosuid nodev allow_other default_permissions; do
        [[ ,$(echo "$line" | cut -d' ' -f4), == *,$o,* ]] || fail "default mount lacks $o: $line"
    done
    head -c 3000000 /dev/urandom >"$WORK/data"
    cp "$WORK/data" "$m/data" || fail "write through the mount"
    /usr/local/bin/cairn fileinfo "$m/data" | grep -q "2 of 2 valid" ||
        fail "not 2 copies: $(/usr/local/bin/cairn fileinfo "$m/data")"
    # another user reads (allow_other), but cannot write into root's folder (modes checked)
    setpriv --reuid=65534 --regid=65534 --clear-groups cat "$m/data" | cmp -s "$WORK/data" - ||
        fail "user nobody cannot read the file"
    ! setpriv --reuid=65534 --regid=65534 --clear-groups sh -c "echo x >$m/nobody" 2>/dev/null ||
        fail "user nobody wrote into a folder of root's with mode 755"
    umount "$m" || fail "umount"

    # dev and suid when asked (through mount(8) they are spelled allow_dev, allow_suid)
    env -i PATH=/sbin:/bin mount -t fuse.cairn -o allow_dev,allow_suid "127.0.0.1:$port" "$m" ||
        fail "mount -o allow_dev,allow_suid"
    line=$(grep " $m fuse.cairn " /proc/mounts) || fail "no mount with allow_dev,allow_suid"
    [[ ,$(echo "$line" | cut -d' ' -f4), != *,nosuid,* && $line != *,nodev,* ]] ||
        fail "allow_dev,allow_suid mount is still nodev or nosuid: $line"
    umount "$m"

    # mount -t cairn (mount.cairn), with the NFS-style source naming the root
    env -i PATH=/sbin:/bin mount -t cairn "127.0.0.1:$port:/" "$m" || fail "mount -t cairn"
    cmp -s "$WORK/data" "$m/data" || fail "read through mount -t cairn"
    umount "$m"

    # an fstab line (mount -T FILE MOUNTPOINT), read-only
    printf '127.0.0.1:%s  %s  fuse.cairn  _netdev,ro  0  0\n' "$port" "$m" >"$WORK/fstab"
    env -i PATH=/sbin:/bin mount -T "$WORK/fstab" "$m" || fail "mount -T fstab"
    cmp -s "$WORK/data" "$m/data" || fail "read through the fstab mount"
    ! cp "$WORK/data" "$m/data2" 2>/dev/null || fail "wrote to a ro fstab mount"
    umount "$m"

    # the example .mount unit, as systemd mounts it (mount -t Type -o Options What Where)
    local what where type opts u=$DEST/etc/cairn/mnt-datasets.mount.example
    what=127.0.0.1:$port where=$m
    type=$(sed -n 's/^Type=//p' "$u") opts=$(sed -n 's/^Options=//p' "$u")
    [ "$type" = fuse.cairn ] || fail "the .mount example's Type is '$type'"
    env -i PATH=/sbin:/bin mount -t "$type" -o "$opts" "$what" "$where" ||
        fail "mount as the .mount unit does"
    cmp -s "$WORK/data" "$m/data" || fail "read through the .mount unit's mount"
    umount "$m"
    stop_ours
    say "ok: mount -t fuse.cairn, -t cairn, fstab, .mount example; defaults; dev,suid"
}

mode_mount() {
    do_install ""
    if ! unshare -m -n --propagation private "$SELF" mount-inner "$WORK"; then
        stop_ours
        exit 1
    fi
}

# ---- netns: the README's three machines -----------------------------------------------------
NSP=ci${WORK##*-} # namespaces of this run: WORK ends in mkdtemp's random letters
ns_cleanup() {
    set +e
    stop_ours
    for n in $(ip netns list | awk '{print $1}' | grep -E "^$NSP-"); do ip netns del "$n"; done
}

ns_up() { # name address/24 (empty: the hub)
    local n=$NSP-$1
    ip netns add "$n"
    ip -n "$n" link set lo up
    [ -n "$2" ] || return 0
    ip -n "$n" link add eth0 type veth peer name "$1" netns "$NSP-hub"
    ip -n "$NSP-hub" link set "$1" master br0
    ip -n "$NSP-hub" link set "$1" up
    ip -n "$n" addr add "$2/24" dev eth0
    ip -n "$n" link set eth0 up
}

# ExecStart of an installed unit, for machine M: /etc/cairn is that machine's, %i is chunk
unit_cmd() { # unit machine
    sed -n 's/^ExecStart=//p' "$DEST/usr/local/lib/systemd/system/$1" |
        sed -e "s|/usr/local/bin/|$DEST/usr/local/bin/|" -e "s|/etc/cairn/|$WORK/$2/etc/cairn/|" \
            -e 's|%i|chunk|'
}

mode_netns() {
    do_install ""
    trap ns_cleanup EXIT
    ns_up hub ""
    ip -n "$NSP-hub" link add br0 type bridge
    ip -n "$NSP-hub" link set br0 up
    ns_up m1 10.0.0.1
    ns_up m2 10.0.0.2
    ns_up m3 10.0.0.3
    ns_up client 10.0.0.10
    local i
    for i in 1 2 3; do # /etc/cairn and /var/lib/cairn of machine i
        mkdir -p "$WORK/m$i/etc"
        cp -r "$DEST/etc/cairn" "$WORK/m$i/etc/"
    done
    # machine 1: the meta service (README: "On machine 1")
    (
        cd "$WORK/m1/etc/cairn"
        cp meta.conf.example meta.conf
        sed -i "s|/var/lib/cairn|$WORK/m1/var/lib/cairn|" meta.conf
    )
    ip netns exec "$NSP-m1" "$DEST/usr/local/bin/cairn-meta" --init \
        --config "$WORK/m1/etc/cairn/meta.conf" >"$WORK/init.log" 2>&1 ||
        fail "--init: $(cat "$WORK/init.log")"
    # shellcheck disable=SC2046
    ip netns exec "$NSP-m1" $(unit_cmd cairn-meta.service m1) >"$WORK/meta.log" 2>&1 &
    # every machine: a chunk server (README: "On every machine")
    for i in 1 2 3; do
        (
            cd "$WORK/m$i/etc/cairn"
            cp chunk.conf.example chunk.conf
            sed -i "s/^advertise = .*/advertise = 10.0.0.$i:9530/" chunk.conf
            sed -i "s|/var/lib/cairn|$WORK/m$i/var/lib/cairn|" chunk.conf
        )
        mkdir -p "$WORK/m$i/var/lib/cairn"
        # shellcheck disable=SC2046
        ip netns exec "$NSP-m$i" $(unit_cmd cairn-chunk@.service "m$i") >"$WORK/cs$i.log" 2>&1 &
    done
    local cairn=$DEST/usr/local/bin/cairn
    wait_for 20 "three chunk servers up" sh -c "[ \$(ip netns exec $NSP-client $cairn health \
        --meta 10.0.0.1:9520 --json | grep -c '\"up\"') = 3 ]"
    # the client: mount(8) with the installed helper, as the README says
    ip netns exec "$NSP-client" "$SELF" netns-client "$WORK" || fail "the client"
    say "ok: three machines in network namespaces, mounted from a fourth"
}

# In the client namespace (ip netns exec gives it a mount namespace of its own).
netns_client() {
    local sbin m=$WORK/mnt
    sbin=$(readlink -f /sbin)
    mount -t overlay overlay -o "lowerdir=$DEST/usr/local:/usr/local" /usr/local
    mount -t overlay overlay -o "lowerdir=$DEST/sbin:$sbin" "$sbin"
    mkdir -p "$m"
    env -i PATH=/sbin:/bin mount -t fuse.cairn 10.0.0.1:9520 "$m" || fail "mount -t fuse.cairn"
    trap 'umount -l "$m" 2>/dev/null' EXIT
    head -c 5000000 /dev/urandom >"$WORK/data"
    cp "$WORK/data" "$m/data" && cmp -s "$WORK/data" "$m/data" || fail "write and read back"
    local info
    info=$(/usr/local/bin/cairn fileinfo "$m/data")
    echo "$info" | grep -q "2 of 2 valid" || fail "not 2 valid copies: $info"
    [ "$(echo "$info" | grep -oE '10\.0\.0\.[123]:9530' | sort -u | wc -l)" = 2 ] ||
        fail "the copies are not on two machines: $info"
    umount "$m"
    trap - EXIT
}

case $MODE in
files) mode_files ;;
mount) mode_mount ;;
mount-inner) mount_inner ;;
netns) mode_netns ;;
cleanup) ns_cleanup ;;
netns-client) netns_client ;;
*) fail "usage: install_check.sh files|mount|netns WORK" ;;
esac
