/* A worker's memory for brief objects. Exchanges and output buffers come from slabs of their own
 * (slab.h), apart from the connections' long-lived allocations, so a burst's peak can go back to
 * the system whole instead of staying as holes in the heap. Emptied slabs are kept while the
 * worker is busy (a load that swings would otherwise map, unmap and fault in slabs all the time:
 * that tripled the system time per request). Once connections go quiet (a short pause after the
 * last one's idle trim) the empty slabs are unmapped and the heap trimmed (malloc_trim also
 * returns whole free pages inside the heap, such as what quiet connections gave back: parsers).
 * At most once a second per worker: a trim walks the heap. */
#include <malloc.h>

#include "server/server_internal.h"

#define RELEASE_DELAY_MS 250u
#define RELEASE_INTERVAL_MS 1000u

static _Thread_local struct worker *current;

void worker_enter(struct worker *w)
{
    current = w;
}

struct worker *worker_current(void)
{
    return current;
}

void worker_pools_init(struct worker *w)
{
    worker_exchanges_init(w);
    /* bufs start zeroed: buf_pool_get sets up a class on a size's first use */
}

void worker_pools_stop(struct worker *w)
{
    rill_io_timer_free(w->release_timer);
    w->release_timer = NULL;
    w->pools_stopped = true;
}

void worker_pools_destroy(struct worker *w)
{
    slab_cache_destroy(&w->exchanges);
    for (int i = 0; i < BUF_POOL_CLASSES; i++)
        slab_cache_destroy(&w->bufs[i]);
}

static void release(rill_io_timer *t, void *arg)
{
    (void)t;
    struct worker *w = arg;
    w->last_release_ms = rill_io_loop_now_ms(w->loop);
    slab_cache_release_empty(&w->exchanges);
    for (int i = 0; i < BUF_POOL_CLASSES; i++)
        slab_cache_release_empty(&w->bufs[i]);
    h2_pools_clear();
    malloc_trim(0);
}

void worker_pools_release_soon(struct worker *w)
{
    if (w->pools_stopped)
        return;
    if (!w->release_timer && !(w->release_timer = rill_io_timer_new(w->loop, release, w)))
        return; /* no timer, no release: the memory stays with the worker, nothing breaks */
    uint64_t at = rill_io_loop_now_ms(w->loop) + RELEASE_DELAY_MS;
    if (w->last_release_ms && at < w->last_release_ms + RELEASE_INTERVAL_MS)
        at = w->last_release_ms + RELEASE_INTERVAL_MS;
    rill_io_timer_arm_at(w->release_timer, at); /* re-armed by every quiet connection: one at the end */
}
