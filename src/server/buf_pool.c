/* The worker's fixed-size buffers: the HTTP/2 engines' output buffers and segment rings, and
 * HTTP/1.1 file pieces. A slab cache per size (slab.h): a busy worker reuses the same blocks
 * instead of moving the heap top (brk and page faults on every malloc/free of 64 KiB once held a
 * 100 MiB HTTP/1.1 download to 0.4 GB/s), and after a burst the blocks go back to the system
 * instead of staying as holes between connections' allocations. */
#include <stdatomic.h>
#include <stdio.h>

#include "server/server_internal.h"

void *buf_pool_get(struct worker *w, size_t size)
{
    if (!w)
        return NULL; /* not on a worker's thread: nothing here may allocate there */
    for (int i = 0; i < BUF_POOL_CLASSES; i++) {
        struct slab_cache *c = &w->bufs[i];
        if (c->slab_bytes == 0) /* a size not seen before */
            slab_cache_init(c, size);
        if (c->obj_size == ((size + 15) & ~(size_t)15))
            return slab_alloc(c);
    }
    /* The server asks for a handful of sizes (BUF_POOL_CLASSES): more is a bug, said once. */
    static atomic_bool said;
    if (!atomic_exchange(&said, true))
        fprintf(stderr, "rill: buffer pool has no class left for %zu-byte buffers\n", size);
    return NULL;
}

void buf_pool_put(void *buf, size_t size)
{
    slab_free(buf, size);
}
