/* reply_buf.c - the buffer a FUSE READ is answered from: one per serving thread, 2 MiB, on a
 * transparent huge page where the kernel gives one (MADV_HUGEPAGE).
 *
 * A READ's buffer is pinned twice by the kernel: by the O_DIRECT read in place into it and by
 * the reply's copy out of it (writev to /dev/fuse). On 4 KiB pages each pin walks and counts
 * every page (gup_fast was the mount's largest kernel cost in a perf profile of eight
 * DataLoader workers); a huge page is one entry and one count. The buffer is kept for the
 * thread's life, so its pages are faulted in once rather than for every request. */
#include <stdint.h>
#include <stdlib.h>
#include <pthread.h>
#include <sys/mman.h>

#include "client.h"

#define RB_SIZE (2u << 20)

static pthread_key_t rb_key;
static pthread_once_t rb_once = PTHREAD_ONCE_INIT;

static void rb_destroy(void *p)
{
    munmap(p, RB_SIZE);
}

static void rb_init(void)
{
    if (pthread_key_create(&rb_key, rb_destroy) != 0) rb_key = (pthread_key_t)-1;
}

/* A 2 MiB aligned mapping of RB_SIZE bytes, or NULL. */
static void *map_aligned(void)
{
    size_t span = 2 * (size_t)RB_SIZE;
    uint8_t *p = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    uintptr_t a = ((uintptr_t)p + RB_SIZE - 1) & ~(uintptr_t)(RB_SIZE - 1);
    uint8_t *al = (uint8_t *)a;
    if (al > p) munmap(p, (size_t)(al - p));
    uint8_t *end = p + span, *al_end = al + RB_SIZE;
    if (end > al_end) munmap(al_end, (size_t)(end - al_end));
    madvise(al, RB_SIZE, MADV_HUGEPAGE);
    return al;
}

uint8_t *rb_get(size_t size)
{
    if (size <= RB_SIZE) {
        pthread_once(&rb_once, rb_init);
        if (rb_key != (pthread_key_t)-1) {
            void *b = pthread_getspecific(rb_key);
            if (!b && (b = map_aligned()) && pthread_setspecific(rb_key, b) != 0) {
                munmap(b, RB_SIZE);
                b = NULL;
            }
            if (b) return b;
        }
    }
    uint8_t *b = NULL;
    return posix_memalign((void **)&b, 4096, size ? size : 1) == 0 ? b : NULL;
}

void rb_put(uint8_t *buf)
{
    if (buf && !(rb_key != (pthread_key_t)-1 && buf == pthread_getspecific(rb_key))) free(buf);
}
