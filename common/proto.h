/* proto.h - CairnFS message types and payload layouts, the contract between all programs.
 *
 * Every payload is encoded with codec.h: integers little-endian, `str` = u16 length + bytes
 * (no NUL), `bytes` = u32 length + bytes. A reply has type (request type | WIRE_REPLY_BIT) and
 * the request's reqid; status < 0 means failure (negative errno) and then the payload is
 * empty. The layouts below list the request fields, then "->" and the reply fields.
 *
 * Encoders/decoders for the structures shared by several messages live in proto.c. */
#ifndef CAIRN_PROTO_H
#define CAIRN_PROTO_H

#include <stdint.h>

#include "codec.h"

#define CAIRN_NAME_MAX 255
#define CAIRN_PATH_MAX 4095
#define CAIRN_XATTR_NAME_MAX 255
#define CAIRN_XATTR_SIZE_MAX 65536
/* Virtual read-only xattrs of every directory, answered by the meta service from its
 * recursive totals: CAIRN_DIR_XATTR_PREFIX "rbytes", "rfiles", "rsubdirs", each a decimal
 * number as text (meta/mstore_rstat.c defines them). Never listed; setting or removing a name
 * with this prefix is -EPERM. In the user namespace so that getfattr(1) reaches them. */
#define CAIRN_DIR_XATTR_PREFIX "user.cairn.dir."
#define CAIRN_DIR_XATTR_PREFIX_LEN 15
#define CAIRN_ADDR_MAX 63 /* "host:port" */
#define CAIRN_ROOT_INO 1
#define CAIRN_DEFAULT_CHUNK_SIZE (64ull << 20)
/* Largest data piece of one chunk read or write request. */
#define CAIRN_IO_MAX (1u << 20)
#define CAIRN_MAX_CHAIN 8
#define CAIRN_MAX_LOCS 8

/* Distinct errors. A block failed its checksum (never served): */
#define CAIRN_ECORRUPT EUCLEAN
/* A chunk write/read named a version the server does not hold: ESTALE. */

/* A meta replica that is not the leader answers every request that needs the leader (all
 * client and chunk-server requests, META_ADD/REMOVE) with status -CAIRN_ENOTLEADER and the
 * payload { str leader_addr }: the leader's client address, or "" while no leader is known
 * (an election is running: wait ~100 ms and ask again, any replica). Not an errno: never
 * shown to applications. */
#define CAIRN_ENOTLEADER 1001
/* A new meta leader is in its lock grace period (MSG_LOCK): only reclaims are served; ask
 * again shortly. Not an errno: never shown to applications. */
#define CAIRN_EGRACE 1002

/* Exactly-once mutations across a failover. A request whose type has MSG_F_SEQ set carries,
 * after its own fields, a 24-byte trailer { u64 session, u64 seq, u64 acked_below } (the
 * reply's type is the request's type with MSG_F_SEQ too, plus WIRE_REPLY_BIT). seq numbers a
 * session's mutations from 1 up; a retry of the same request reuses its seq; acked_below is
 * the lowest seq the client still waits for (every lower one was answered). The meta service
 * remembers the outcome of each (session, seq) >= acked_below in its replicated state, so a
 * repeated request is answered with its first outcome (a retried mkdir never fails with
 * EEXIST) and applies exactly once. Clients set it on MSG_SETATTR, MKNOD, MKDIR, UNLINK,
 * RMDIR, RENAME, LINK, SYMLINK, SETXATTR, REMOVEXATTR, CREATE, OPEN, RELEASE, CHUNK_LEASE,
 * COMMIT, SET_COPIES, once they have a session. */
#define MSG_F_SEQ 0x4000u
/* Whether a client numbers requests of this type (the list above): the meta service's
 * mutations, less the session messages. */
int proto_numbered(uint16_t type);
#define MSG_SEQ_TRAILER 24u

enum proto_type {
    /* --- client -> meta ------------------------------------------------------------- */
    /* str client_name, u64 resume_session (0 = new)
     *   -> u64 session_id, u64 chunk_size, u32 session_timeout_s */
    MSG_SESSION_OPEN = 1,
    /* u64 session_id -> (empty) ; -ENOENT if the session expired */
    MSG_SESSION_KEEPALIVE = 2,
    /* u64 session_id -> (empty); releases every open file of the session */
    MSG_SESSION_CLOSE = 3,
    /* u64 parent, str name, [u8 flags] -> attr [, u32 n, n x chunkinfo]
     * With LOOKUP_CHUNKS in flags, a regular file with data also gets its first chunks'
     * locations (as OPEN gives them), so that a client can open it for reading without
     * another round trip; left out (n absent) while a new leader is still learning where
     * chunks are. */
    MSG_LOOKUP = 10,
    /* u64 ino -> attr */
    MSG_GETATTR = 11,
    /* u64 ino, u32 valid (SETATTR_*), u32 mode, u32 uid, u32 gid, u64 size,
     * i64 atime_s, u32 atime_ns, i64 mtime_s, u32 mtime_ns -> attr */
    MSG_SETATTR = 12,
    /* u64 parent, str name, u32 mode (with type bits), u64 rdev, u32 uid, u32 gid
     * [, u32 umask] -> attr
     * With the optional umask the meta service applies it, unless the parent directory has a
     * default POSIX ACL, which then decides the mode (and is inherited); without it the mode
     * is taken as given (the same for MKDIR and CREATE). */
    MSG_MKNOD = 13,
    /* u64 parent, str name, u32 mode, u32 uid, u32 gid [, u32 umask] -> attr */
    MSG_MKDIR = 14,
    /* u64 parent, str name -> (empty) */
    MSG_UNLINK = 15,
    /* u64 parent, str name -> (empty) */
    MSG_RMDIR = 16,
    /* u64 parent, str name, u64 newparent, str newname, u32 flags (RENAME_NOREPLACE=1,
     * RENAME_EXCHANGE=2) -> (empty) */
    MSG_RENAME = 17,
    /* u64 ino, u64 newparent, str newname -> attr */
    MSG_LINK = 18,
    /* u64 parent, str name, str target (<= CAIRN_PATH_MAX), u32 uid, u32 gid -> attr */
    MSG_SYMLINK = 19,
    /* u64 ino -> str target */
    MSG_READLINK = 20,
    /* u64 ino, u64 cookie, u32 max_entries, u8 plus
     *   -> u32 count, count x { u64 ino, u32 mode, str name, u64 cookie_next,
     *                           [attr if plus] }, u8 eof
     * Entries come in a stable order; cookie_next resumes after the entry (telldir-safe).
     * A cookie of 0 starts at the beginning. "." and ".." are not returned. */
    MSG_READDIR = 21,
    /* (empty) -> u64 total_bytes, u64 free_bytes, u64 total_inodes, u64 free_inodes,
     *            u32 block_size, u32 name_max */
    MSG_STATFS = 22,
    /* u64 ino, str name, bytes value, u32 flags (XATTR_CREATE=1, XATTR_REPLACE=2) -> (empty) */
    MSG_SETXATTR = 23,
    /* u64 ino, str name -> bytes value ; -ENODATA if absent */
    MSG_GETXATTR = 24,
    /* u64 ino -> bytes names (each NUL-terminated) */
    MSG_LISTXATTR = 25,
    /* u64 ino, str name -> (empty) ; -ENODATA if absent */
    MSG_REMOVEXATTR = 26,
    /* u64 parent, str name, u32 mode, u32 uid, u32 gid, u32 flags (O_EXCL honoured),
     * u64 session [, u32 umask] -> attr  (creates a regular file and opens it for the session) */
    MSG_CREATE = 27,
    /* u64 ino, u32 flags (O_ACCMODE, O_TRUNC), u64 session
     *   -> attr, u32 n, n x chunkinfo (the first chunks of the file, for small files).
     * Also a client's opendir (flags O_RDONLY, no chunks): an open directory that is then
     * removed or replaced stays (nlink 0) until its RELEASE, as an open file does. */
    MSG_OPEN = 28,
    /* u64 ino, u64 session -> (empty) */
    MSG_RELEASE = 29,
    /* u64 ino, u64 first_index, u32 count -> u32 n, n x chunkinfo (only chunks that exist) */
    MSG_CHUNK_LOCATE = 30,
    /* u64 ino, u64 index, u64 session, u8 nexcl, nexcl x u64 server_id
     *   -> chunkinfo with a new version (write lease; the chunk is allocated if absent,
     *      prev_version 0 then). The locations are the write chain, in order.
     * nexcl names servers that failed this writer (a dead hop, an I/O error): the new chain
     * leaves them out, so their copies become stale (never served) and are rebuilt later.
     * The chain holds the live valid copies (possibly fewer than the file's copies: the
     * chunk is then under-replicated and healed in the background). prev_version is the
     * oldest version a chain member may hold (servers accept held in [prev_version, version]). */
    MSG_CHUNK_LEASE = 31,
    /* u64 ino, u64 size, i64 mtime_s, u32 mtime_ns, u32 flags (COMMIT_*),
     * [u32 n, n x {u64 chunk index, u64 allocated bytes}] -> attr
     * Publishes a writer's size (grows only, unless COMMIT_SET_SIZE) and mtime, and the bytes
     * the chunk servers last reported storing for the chunks it wrote (st_blocks). */
    MSG_COMMIT = 32,
    /* u64 session, str label, u64 meta_calls, u64 reads, u64 read_bytes, u64 writes,
     * u64 write_bytes -> (empty). A mount's counters since it started (label: "host:mount
     * point"), sent every CLIENT_STATS_S seconds to the leader, which keeps them in memory only
     * (cairn top, the status page, metrics). -ENOENT: no such session. */
    MSG_CLIENT_STATS = 36,
    /* u8 flags (ATIME_STRICT), u32 n (<= ATIME_BATCH_MAX), n x { u64 ino, i64 atime_s,
     * u32 atime_ns } -> (empty). Reads a mount saw, noted lazily and sent in batches (atime.c):
     * the leader sets each inode's atime to the given time when that is later than the stored
     * one and, without ATIME_STRICT, only as relatime does (the stored atime is not later than
     * the mtime or the ctime, or is a day old). ctime does not change; inodes gone meanwhile
     * are skipped. Idempotent, so not numbered. */
    MSG_ATIME = 37,
    /* --- admin (the cairn command) -> meta ----------------------------------------- */
    /* u64 ino, u32 copies (1..CAIRN_COPIES_MAX; 0 = inherit the default again) -> attr
     * Sets the number of copies of one inode (directories: what new children inherit).
     * Chunks gain or lose copies in the background. -EINVAL out of range. */
    MSG_SET_COPIES = 40,
    /* u64 ino, u64 first_index, u32 max
     *   -> attr, u32 copies (effective goal), u64 chunk_size, u32 n,
     *      n x { u64 index, u64 chunk_id, u32 version, u64 length, u8 ncopies,
     *            ncopies x { u64 server_id, str addr, str zone, u32 version, u8 state } },
     *      u8 more (1 = chunks past the last one listed exist: ask again from index+1)
     * state is COPY_*; length is the chunk's share of the file size. */
    MSG_FILEINFO = 41,
    /* (empty) -> u32 nservers, nservers x { u64 id, str addr, str zone, u8 state (CS_STATE_*),
     *            u64 capacity, u64 free, u32 load, u64 chunks (copies it holds),
     *            u32 repairs_in_flight },
     *            u64 chunks, u64 full, u64 under, u64 missing, u64 over, u64 stale_copies,
     *            u64 bad_copies, u64 repair_queue, u64 repairs_done, u64 repair_bytes,
     *            u64 repair_rate (bytes/s over the last 10 s), u64 bad_repaired,
     *            u64 moves_done (balance + drain), u8 scan_complete (1 = the counts cover a
     *            whole pass over the chunk map), u32 default_copies, u32 balance_pct,
     *            u64 inodes, u64 file_bytes (sum of file sizes), u32 sessions
     * The chunk counts come from the repair scanner's last complete pass over every chunk
     * (during the first pass: the pass so far). */
    MSG_HEALTH = 42,
    /* u64 server_id, u8 on (1 drain, 0 undrain) -> (empty); -ENOENT unknown server.
     * A draining server gets no new chunks; its copies are made elsewhere, then dropped. */
    MSG_CS_DRAIN = 43,
    /* The namespace check of `cairn fsck`, leader only, in bounded slices: every request does
     * at most `max` items of work (inodes, entries or chunks) and says where to go on, so a
     * long check never holds the meta service's one thread for long. u8 op first:
     *
     * FSCK_OP_SCAN: u8 phase (FSCK_PH_*), u64 pos, str name, u32 max (0 or > 4096: 4096),
     *   u8 flags (FSCK_F_REPAIR)
     *   -> u8 next_phase (0 = the scan is over), u64 next_pos, str next_name,
     *      u32 scanned (items this slice visited), u64 total (inodes + entries + chunks
     *      now: the progress bar's end), u64 unref_seen (copies of unknown chunks the chunk
     *      servers reported since the leader started),
     *      u32 ni, ni x { u64 ino, u32 mode, u32 nlink, u8 open },
     *      u32 ne, ne x { u64 parent, u64 child, u8 child_is_dir },
     *      u32 np, np x problem
     *   A scan starts at phase FSCK_PH_INODES, pos 0, name "" and sends back what the reply
     *   names until next_phase is 0. INODES lists every inode (pos: the last inode number
     *   done); ENTRIES lists every directory entry whose inode exists and reports the others
     *   as FSCK_P_DANGLING (pos, name: the last entry done); CHUNKS reports chunks with no
     *   valid copy on a live server (FSCK_P_MISSING) or fewer valid copies than their file's
     *   goal (FSCK_P_UNDER; pos: the last chunk id done; -EAGAIN while a new leader still
     *   learns where chunks are: ask again); UNREF reports copies the chunk servers hold of
     *   chunks no file references (FSCK_P_UNREF; they are queued for deletion when seen).
     *   The link counts are the caller's to add up (from the inodes and entries listed),
     *   then to confirm with FSCK_OP_LINKS.
     *   With FSCK_F_REPAIR, dangling entries are removed and under-replicated chunks queued
     *   for repair at once; a problem's `fixed` says it was done.
     *   problem: u8 kind (FSCK_P_*), u8 fixed, u64 ino, u64 parent, u64 chunk_id,
     *            u64 index, u32 have, u32 want, str name
     *     DANGLING: parent, name, ino = the missing inode.
     *     MISSING, UNDER: ino, index (of the chunk in the file), chunk_id, have = valid
     *       copies, want = the file's goal.
     *     UNREF: chunk_id, index = the version, parent = the chunk server's id, fixed = 1
     *       (its deletion is queued), have = 1 while the deletion still waits to be sent.
     * FSCK_OP_LINKS: u8 flags (FSCK_F_REPAIR), u32 n (<= 256), n x u64 ino
     *   -> u32 n, n x { u64 ino, u8 exists, u32 mode, u32 nlink, u32 entries, u32 subdirs,
     *                  u8 open, u8 fixed, str path }
     *   Counts, in one consistent read of the whole namespace, the entries pointing at each
     *   inode and (directories) its subdirectories; path is one path of the inode ("" when no
     *   entry points at it). A link count is right when nlink = entries (not a directory) or
     *   2 + subdirs (a directory). With FSCK_F_REPAIR a wrong link count of an inode that
     *   some entry points at is set right (a record); an inode no entry points at is never
     *   changed. With FSCK_F_PATHS instead, only exists, mode, nlink, open and path are
     *   filled (entries and subdirs 0), without the pass over the namespace: paths of the
     *   files and directories a scan reported. */
    MSG_FSCK = 48,
    /* --- admin -> any meta replica: the Raft group ---------------------------------- */
    /* (empty) -> u64 self_id, u8 self_state (META_ST_*), u64 leader_id (0 = none known),
     *            str leader_addr, u64 term, u64 commit_index, u64 applied_index,
     *            u64 last_index (of this replica's log), u32 n,
     *            n x { u64 id, str addr, u8 role (META_ROLE_*), u8 reachable,
     *                  u64 match_index }
     * Answered by every replica (a follower too). addr is a member's client address. Only
     * the leader knows match_index (the last log index a member is known to hold: its lag is
     * last_index - match_index) and reachable (heard from within the election timeout);
     * other replicas send match_index 0 and reachable 1. */
    MSG_META_STATUS = 44,
    /* str addr (client address of a cairn-meta running with an empty data folder and no
     * bootstrap) -> u64 id. Leader only. Gives it the next free id, adds it to the group and
     * replies once it has caught up and votes. -EEXIST: a member has that address;
     * -ETIMEDOUT: it did not catch up within 60 s (it stays a non-voting member: remove it
     * or ask again). */
    MSG_META_ADD = 45,
    /* u64 id -> (empty). Leader only. Removes a member (the leader itself: it steps down
     * once the change commits). -ENOENT unknown id; -EBUSY another change is running. */
    MSG_META_REMOVE = 46,
    /* str addr -> u64 id (0 = no member has that address yet). What a fresh replica asks
     * (every replica it knows, repeatedly) to learn the id META_ADD gave it. */
    MSG_META_WHOAMI = 47,
    /* (empty) -> u64 now_ms (the leader's monotonic clock),
     *   u32 n, n x server { u64 id, str addr, u8 state (CS_STATE_*), u64 reads,
     *                       u64 read_bytes, u64 writes, u64 write_bytes, u64 seen_ms },
     *   u32 c, c x client { u64 session, str label, str peer, u64 meta_calls, u64 reads,
     *                       u64 read_bytes, u64 writes, u64 write_bytes, u64 seen_ms }
     *   u64 meta_requests (every request the leader handled since it started)
     * Cumulative counters as the servers' heartbeats and the clients' MSG_CLIENT_STATS last
     * told them; `cairn top` turns two answers into rates. */
    MSG_TOP = 49,

    /* --- chunk server -> meta ------------------------------------------------------- */
    /* u64 server_id, str addr, u64 capacity, u64 free, str zone ("" = none) -> u64 chunk_size */
    MSG_CS_REGISTER = 50,
    /* u64 server_id, u32 n, n x { u64 chunk_id, u32 version } (what it holds; may be sent in
     * several batches after REGISTER) -> u32 m, m x { u64 chunk_id, u32 version } to delete */
    MSG_CS_REPORT = 51,
    /* u64 server_id, u64 capacity, u64 free, u32 load
     *   [, u64 reads, u64 read_bytes, u64 writes, u64 write_bytes]  (counters since the
     *   server started; an older server sends none)
     *   -> u32 m, m x { u64 chunk_id, u32 version } to delete,
     *      u32 r, r x replication order { u64 chunk_id, u32 version, u8 nsrc,
     *                                     nsrc x str addr }
     * A replication order asks this server to make a copy of chunk_id at version: first
     * CHK_SETVER to every source (moving their valid copies up to version), then read the
     * chunk from any source with CHK_READ_EXACT, verify every block's checksum, write it
     * under a temporary name and install it (replacing any other version this server holds),
     * and answer with CS_REPLICATED. */
    MSG_CS_HEARTBEAT = 52,
    /* u64 server_id, u64 chunk_id, u32 version, u32 block -> (empty) */
    MSG_CS_BAD_CHUNK = 53,
    /* u64 server_id, u64 chunk_id, u32 version -> (empty)  (server lost/gained a copy:
     * flags bit0 = 1 gained, 0 lost) ; u32 flags follows version */
    MSG_CS_CHUNK_EVENT = 54,
    /* u64 server_id, u64 chunk_id, u32 version, i32 status (0 = installed), u64 bytes
     *   -> (empty). The end of a replication order. */
    MSG_CS_REPLICATED = 55,

    /* --- client -> meta: locks across clients (meta/locks.c) ------------------------- */
    /* Locks are the leader's soft state (never in the log): owned by (session, owner), owner
     * being the kernel's lock owner as FUSE gives it. kind and type are lockset.h's LS_*;
     * [start, end] is inclusive (end LS_EOF: to the end of the file); a flock ignores it.
     * After an election the new leader starts a grace period (when the store has sessions):
     * for LOCK_GRACE_MS only reclaims (LOCK_F_RECLAIM) and releases are served; anything
     * else is answered -CAIRN_EGRACE (ask again ~100 ms later). */
    /* u64 session, u64 ino, u64 owner, u8 kind, u8 type, u64 start, u64 end, u32 pid,
     * u8 flags (LOCK_F_*) -> u64 epoch
     * Sets (type LS_RD/LS_WR) or releases (LS_UN) the range for the owner, atomically as
     * fcntl(F_SETLK) does; never waits. -EAGAIN: another owner holds a conflicting lock;
     * -ENOENT: no such session (it expired: its locks are gone); -EINVAL: bad kind, type or
     * range. epoch names this leadership: a mount that sees it change reclaims its locks. */
    MSG_LOCK = 56,
    /* u64 session, u64 ino, u64 owner, u8 kind, u8 type, u64 start, u64 end
     *   -> u8 type (LS_UN: nothing conflicts), u64 start, u64 end, u32 pid, u64 session
     * The first lock of another owner that would conflict (F_GETLK). pid is the holder's as
     * its kernel gave it, or 0 when another session (mount) holds it: a pid of another
     * machine means nothing here. */
    MSG_LOCK_TEST = 57,
    /* u64 session, u64 ino, u64 owner, u8 kinds (bit 1 << LS_POSIX, 1 << LS_FLOCK)
     *   -> (empty). Releases every lock of the owner on ino of those kinds (a close: FUSE
     *   FLUSH and RELEASE). Served during the grace period too. */
    MSG_LOCK_DROP = 58,
    /* u64 session -> u64 epoch, u32 grace_ms_left. What a mount holding locks asks every
     * LOCK_POLL_MS to notice a new leader (a new epoch) and reclaim its locks in time. */
    MSG_LOCK_EPOCH = 59,

    /* --- meta replica -> meta replica: snapshots outside libraft (meta/snap_xfer.h) ---- */
    /* u64 need (a Raft index) -> u64 id, u64 size, u64 applied
     * Answered by every replica whose store has applied at least need: a compacted copy of
     * its store, zstd-compressed (snap_zstd.c), size bytes long, holding index applied
     * (>= need). -EAGAIN: the copy is being made (ask again in ~100 ms); -ESTALE: this
     * replica's store is behind need (ask another). */
    MSG_SNAP_OPEN = 60,
    /* u64 id, u64 offset, u32 length (<= SNAP_READ_MAX) -> bytes (short only at the end)
     * A piece of the copy MSG_SNAP_OPEN named. -ENOENT: that copy is gone (open again). */
    MSG_SNAP_READ = 61,

    /* --- anyone -> chunk server ----------------------------------------------------- */
    /* u64 chunk_id, u32 version, u32 offset, u32 length (<= CAIRN_IO_MAX), [u8 flags]
     *   -> u32 data_offset (block aligned, <= offset), u32 chunk_length, u32 nblocks,
     *      nblocks x u64 block checksum, bytes data
     * data covers whole blocks from data_offset up to the chunk's length, enough to cover
     * [offset, offset+length) clipped to chunk_length; each checksum covers its block's valid
     * bytes (cksum.h), so the reader can verify end to end.
     * flags (optional byte; absent = 0): CHK_READ_EXACT serves only a copy held at exactly
     * version (-ESTALE otherwise); without it an older held version is served too. */
    MSG_CHK_READ = 70,
    /* u64 chunk_id, u32 version, u32 prev_version, u32 offset, u64 data_xxh3, u8 flags
     * (CHK_WRITE_SYNC), u8 nchain, nchain x str addr, bytes data
     *   -> u32 chunk_length, u64 allocated bytes of the chunk's data on this server,
     *      u8 chain_ok, i32 chain_err
     * The server holding prev_version (or nothing when prev_version is 0) moves the chunk to
     * version; it refuses an older version with -ESTALE. With a chain it forwards the same
     * request (minus its first hop) to chain[0] and replies after both are done.
     * A failure of this server's own write is the reply's status. Otherwise the reply is a
     * success that says how far down the chain the data got: chain_ok = 1 + the chain_ok of
     * the next hop (1 when the next hop failed or was unreachable), chain_err = 0 when every
     * hop has the data, else the first failing hop's negative errno (-ECONNRESET etc. when
     * unreachable). So a writer knows that hops [0, chain_ok) hold the data and that hop
     * chain_ok (0 = the server it sent to) failed with chain_err. */
    MSG_CHK_WRITE = 71,
    /* u64 chunk_id, u32 version, u32 prev_version, u32 length, u8 nchain, chain
     *   -> u8 chain_ok, i32 chain_err (as CHK_WRITE) */
    MSG_CHK_TRUNCATE = 72,
    /* u64 chunk_id, u32 version (0 = every version) -> (empty) */
    MSG_CHK_DELETE = 73,
    /* u64 chunk_id, u32 version -> (empty) ; fsyncs the chunk file */
    MSG_CHK_FSYNC = 74,
    /* u64 chunk_id -> u32 version, u32 length */
    MSG_CHK_INFO = 75,
    /* u64 chunk_id, u32 version -> u32 version held afterwards
     * Moves a held older version up to version (a rename; the data is unchanged): replication
     * does this on its sources so that a writer still holding the older lease is refused
     * (-ESTALE) from then on and takes a new lease. Held == version: nothing to do.
     * Held newer: -ESTALE. Not held: -ENOENT. A bad copy: -EUCLEAN. */
    MSG_CHK_SETVER = 76,
    /* (empty) -> str text: the server's counters and timings, one "name value" per line
     * (names [a-z0-9_], values decimal; times in microseconds, summed since start), for
     * `cairn cs stats` and the read-path breakdown in docs/ARCHITECTURE.md */
    MSG_CHK_STATS = 77,
    /* u64 chunk_id, u32 version, u32 offset, u8 whence (3 = SEEK_DATA, 4 = SEEK_HOLE)
     *   -> u32 offset found (inside the chunk, at the granularity of the server's file system)
     * SEEK_DATA: the first byte of data at or after offset, -ENXIO when there is none before the
     * chunk's length. SEEK_HOLE: the first byte of a hole at or after offset; the chunk's length
     * when the data runs to it (what lies beyond reads as zeros). Like CHK_READ, an older held
     * version is served. */
    MSG_CHK_SEEK = 78,
    /* u64 chunk_id, u32 version, u32 prev_version, u32 offset, u32 length, u8 mode
     * (CHK_FALLOC_*), u8 nchain, nchain x str addr
     *   -> u32 chunk_length, u64 allocated bytes of the chunk's data on this server,
     *      u8 chain_ok, i32 chain_err (as CHK_WRITE)
     * fallocate of [offset, offset+length) inside the chunk, under the version rules of
     * CHK_WRITE (a lease: the chunk is created when prev_version is 0) and forwarded down the
     * chain like it. The chunk's length (its valid data) never changes: what lies past it reads
     * as zeros, and a file's size is the meta service's. Modes:
     *   CHK_FALLOC_RESERVE: allocate the range on disk (data unchanged); -ENOSPC from the disk
     *     is the reply's status, and whatever it allocated past the chunk's data is freed again;
     *   CHK_FALLOC_PUNCH: the range reads as zeros afterwards; whole 64 KiB blocks are
     *     deallocated (holes), the partial ones at the edges rewritten with zeros, and their
     *     checksums updated;
     *   CHK_FALLOC_ZERO: as PUNCH, but the range stays allocated;
     *   CHK_FALLOC_UNRESERVE: free what is allocated in the range past the chunk's data (on a
     *     file system that ignores punches past the end of a file, ext4, every reservation past
     *     the data): the undo of a RESERVE that failed elsewhere; data unchanged.
     * -EINVAL for another mode, an empty range or one past the chunk size; -EUCLEAN when a
     * partial block at an edge of a punch or zero range fails its checksum (nothing changed).
     * A data folder that cannot punch holes gets zeros written instead. */
    MSG_CHK_FALLOC = 79,
    /* (empty) -> str boot_id, u32 pid, u64 pid namespace inode, u8 ndirs,
     *            ndirs x (str path, u64 st_dev, u64 st_ino)
     * What a client on the same machine needs to read this server's chunk files in place
     * (client-fuse/local_read.c): the kernel's boot id (/proc/sys/kernel/random/boot_id), the
     * server's pid in its pid namespace (so that a client in the same one can watch it die),
     * and every data folder in service with its device and inode, so that the client can tell
     * that it sees the very same folders. -EOPNOTSUPP when the server's local_reads is off. */
    MSG_CHK_LOCAL = 80,
};

#define CHK_FALLOC_RESERVE 0u
#define CHK_FALLOC_PUNCH 1u
#define CHK_FALLOC_ZERO 2u
#define CHK_FALLOC_UNRESERVE 3u

#define CHK_READ_EXACT 1u

/* MSG_FSCK */
enum fsck_op { FSCK_OP_SCAN = 1, FSCK_OP_LINKS = 2 };
enum fsck_phase { FSCK_PH_INODES = 1, FSCK_PH_ENTRIES = 2, FSCK_PH_CHUNKS = 3, FSCK_PH_UNREF = 4 };
enum fsck_problem {
    FSCK_P_MISSING = 1,  /* a chunk without a valid copy on a live server */
    FSCK_P_UNDER = 2,    /* fewer valid copies than the file's goal */
    FSCK_P_UNREF = 3,    /* a copy of a chunk no file references */
    FSCK_P_DANGLING = 4, /* a directory entry whose inode does not exist */
    FSCK_P_NLINK = 5,    /* a link count that does not match the entries (the client's finding) */
    FSCK_P_ORPHAN = 6    /* an inode no entry points at, not open (the client's finding) */
};
#define FSCK_F_REPAIR 1u
#define FSCK_F_PATHS 2u
#define FSCK_SLICE_MAX 4096u
#define FSCK_LINKS_MAX 256u
#define LOOKUP_CHUNKS 1u

/* Copies per file (the replication goal). */
#define CAIRN_COPIES_MAX 8
#define CAIRN_ZONE_MAX 31
#define CLIENT_STATS_S 2 /* seconds between a mount's MSG_CLIENT_STATS */

/* State of one copy in MSG_FILEINFO. */
enum copy_state {
    COPY_VALID = 0,   /* holds the current data: served and counted */
    COPY_STALE = 1,   /* missed a write (older version): never served, dropped or refreshed */
    COPY_BAD = 2,     /* a block failed its checksum: never served, replaced */
    COPY_DOWN = 3,    /* the server holding it is down: not served, not counted */
    COPY_PENDING = 4, /* being copied to this server now */
    COPY_DRAINING = 5 /* valid, on a draining server: served, not counted toward the goal */
};

/* A replica's state and a member's role in MSG_META_STATUS. */
enum meta_state {
    META_ST_UNAVAILABLE = 0,
    META_ST_FOLLOWER = 1,
    META_ST_CANDIDATE = 2,
    META_ST_LEADER = 3
};
enum meta_role { META_ROLE_STANDBY = 0, META_ROLE_VOTER = 1, META_ROLE_SPARE = 2 };

/* State of a chunk server in MSG_HEALTH. */
enum cs_health_state { CS_STATE_UP = 0, CS_STATE_DOWN = 1, CS_STATE_DRAINING = 2 };

#define SETATTR_MODE (1u << 0)
#define SETATTR_UID (1u << 1)
#define SETATTR_GID (1u << 2)
#define SETATTR_SIZE (1u << 3)
#define SETATTR_ATIME (1u << 4)
#define SETATTR_MTIME (1u << 5)
#define SETATTR_ATIME_NOW (1u << 6)
#define SETATTR_MTIME_NOW (1u << 7)
#define SETATTR_CTIME (1u << 8) /* set ctime to now only */
/* Clear setuid/setgid as a write by a non-owner would (killpriv). */
#define SETATTR_KILL_SUIDGID (1u << 9)
/* With SETATTR_ATIME: a read's atime (MSG_ATIME) - never moves atime back, leaves ctime. */
#define SETATTR_ATIME_LAZY (1u << 10)

#define ATIME_STRICT 1u        /* MSG_ATIME flags: every read counts (strictatime) */
#define ATIME_BATCH_MAX 1024u  /* inodes in one MSG_ATIME */
#define ATIME_RELATIME_S 86400 /* relatime: an atime this old is updated on the next read */

#define LOCK_F_RECLAIM 1u  /* MSG_LOCK: a lock held before a failover, granted in the grace */
#define LOCK_GRACE_MS 5000 /* a new leader's lock grace period */
#define LOCK_POLL_MS 500   /* a mount holding locks asks MSG_LOCK_EPOCH this often */

#define COMMIT_SET_SIZE 1u /* set size exactly (ftruncate semantics, frees chunks) */

#define CHK_WRITE_SYNC 1u

#define PROTO_RENAME_NOREPLACE 1u
#define PROTO_RENAME_EXCHANGE 2u

/* cairn_attr.flags */
/* The inode may have extended attributes. Clear means it has none at the time of the reply,
 * so a client may answer getxattr (-ENODATA) and listxattr (empty) itself while it trusts the
 * rest of these attributes (attr_timeout). */
#define ATTR_F_XATTRS 1u

/* attr on the wire: u64 ino, u64 gen, u32 mode, u32 uid, u32 gid, u32 nlink, u64 rdev,
 * u64 size, i64 atime_s, u32 atime_ns, i64 mtime_s, u32 mtime_ns, i64 ctime_s, u32 ctime_ns,
 * u32 flags (ATTR_F_*), u64 blocks, u32 copies */
struct cairn_attr {
    uint64_t ino;
    uint64_t gen;
    uint32_t mode;
    uint32_t uid;
    uint32_t gid;
    uint32_t nlink;
    uint64_t rdev;
    uint64_t size;
    int64_t atime_s;
    uint32_t atime_ns;
    int64_t mtime_s;
    uint32_t mtime_ns;
    int64_t ctime_s;
    uint32_t ctime_ns;
    uint32_t flags;  /* ATTR_F_* */
    uint64_t blocks; /* 512-byte units the chunk servers store for the file (st_blocks) */
    uint32_t copies; /* copies of each chunk (effective: the inherited default filled in) */
};

struct chunk_loc {
    uint64_t server_id;
    char addr[CAIRN_ADDR_MAX + 1];
};

/* chunkinfo on the wire: u64 index, u64 chunk_id, u32 version, u32 prev_version, u8 nloc,
 * nloc x { u64 server_id, str addr } */
struct chunk_info {
    uint64_t index;
    uint64_t chunk_id;
    uint32_t version;
    uint32_t prev_version;
    uint8_t nloc;
    struct chunk_loc loc[CAIRN_MAX_LOCS];
};

void proto_put_attr(struct wbuf *b, const struct cairn_attr *a);
void proto_get_attr(struct rcur *c, struct cairn_attr *a);
void proto_put_chunk_info(struct wbuf *b, const struct chunk_info *ci);
void proto_get_chunk_info(struct rcur *c, struct chunk_info *ci);
/* Name of a message type for logs ("LOOKUP"), or "?". */
const char *proto_type_name(uint16_t type);
/* The name in lower case for metrics ("lookup", "chunk_lease"); "type_N" without a name. */
void proto_type_lname(uint16_t type, char *out, size_t len);

#endif
