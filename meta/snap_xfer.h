/* snap_xfer.h - Raft snapshots that travel outside libraft, in bounded memory.
 *
 * libraft 0.15 holds a snapshot as memory buffers: it is taken into memory, sent in one
 * InstallSnapshot message and restored from one buffer, and its libuv backend takes it on
 * the loop thread. So the snapshot libraft sees is a small reference (the Raft index it
 * covers) and the data is this replica's own LMDB store, made durable when the reference is
 * taken (mraft_fsm.c). A replica that must install a snapshot fetches a copy of the store from
 * another replica whose store is at least that far (snap_fetch.c): that replica makes a
 * compacted LMDB copy and compresses it with zstd in a thread of its own, to a file, and
 * serves it in 1 MiB pieces (snap_serve.c, MSG_SNAP_OPEN / MSG_SNAP_READ). The copy may be
 * newer than the reference: it records its own applied index and entries it holds are
 * skipped. */
#ifndef CAIRN_SNAP_XFER_H
#define CAIRN_SNAP_XFER_H

#include <stddef.h>
#include <stdint.h>

struct meta;
struct mraft;
struct evsrv_conn;
struct wire_hdr;

#define SNAP_MAGIC 0x50414e53u /* "SNAP": a whole compressed store (the old buffers too) */
#define SNAP_HDR 16u           /* u32 magic, u32 version, u64 reserved */
#define SNAP_READ_MAX (1u << 20)

/* ---- snap_zstd.c: the compressed form of a store copy ---------------------------------------- */

/* Write the header and in_fd's bytes (from its start) compressed to out_fd. 0 or -errno. */
int snapz_compress_fd(int in_fd, int out_fd);
/* A streaming decompressor into the file path (created or truncated): feed the compressed
 * form in pieces of any size, then close, which flushes the file to disk and frees d; -EBADMSG
 * when it was not one or was cut short. Memory: zstd's window plus one output buffer. */
struct snapz_dec;
int snapz_dec_open(const char *path, struct snapz_dec **out);
int snapz_dec_feed(struct snapz_dec *d, const void *p, size_t n);
int snapz_dec_close(struct snapz_dec *d);
/* The applied index an LMDB data file records (opened read-only on its own). */
int snapz_peek_applied(const char *file, uint64_t *applied);

/* ---- snap_serve.c: a replica lends its store ------------------------------------------------- */

/* MSG_SNAP_OPEN and MSG_SNAP_READ (layouts in proto.h), answered by every replica. */
int snap_serve_handle(struct meta *m, struct evsrv_conn *conn, const struct wire_hdr *h,
                      const uint8_t *payload);
/* Forget a prepared copy nobody read for a minute (called every second). */
void snap_serve_tick(struct meta *m);
/* Wait for a copy being made and drop the prepared one (the daemon is exiting). */
void snap_serve_stop(void);

/* ---- snap_fetch.c: a replica borrows one ------------------------------------------------------
 */

/* Fetch into dest an uncompressed store whose applied index is at least need, from the
 * leader or any other member. Blocks (the caller is libraft's restore) for as long as a copy
 * is being made, up to a few minutes. 0 or -errno. */
int snap_fetch(struct mraft *r, uint64_t need, const char *dest);

#endif
