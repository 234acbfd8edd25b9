/* An exchange's memory: the per-thread pool of exchange structs, the bump arena that holds its
 * request and response strings, and the header lists built in that arena. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/small_copy.h"
#include "server/server_internal.h"

/* An exchange and its arena, one slab object (the worker's exchanges cache). */
#define EXCHANGE_SIZE (sizeof(rill_server_stream) + EXCHANGE_ARENA)

struct arena_block {
    struct arena_block *next;
    size_t cap, used;
    bool pooled; /* from the worker's buffers (buf_pool.c), not malloc */
    _Alignas(16) char data[];
};

/* The usual overflow block: a proxied response's fields overflow the inline arena on every
 * request, so these come from the worker's pool, not malloc. */
#define ARENA_BLOCK 4096u
#define ARENA_BLOCK_BYTES (sizeof(struct arena_block) + ARENA_BLOCK)


void worker_exchanges_init(struct worker *w)
{
    slab_cache_init(&w->exchanges, EXCHANGE_SIZE);
}

rill_server_stream *exchange_new(rill_server_session *sess, const struct exchange_ops *ops, int32_t id)
{
    rill_server_stream *st = slab_alloc(&session_worker(sess)->exchanges);
    if (!st)
        return NULL;
    memset(st, 0, sizeof *st); /* the arena needs no clearing */
    if (!sess->peer)
        session_peer(sess); /* now, while the peer is surely connected (kept for logs and callers) */
    st->sess = sess;
    st->ops = ops;
    st->id = id;
    st->status = 200;
    st->file_fd = -1;
    st->live_next = sess->live;
    if (sess->live)
        sess->live->live_prev = st;
    sess->live = st;
    sess->open_streams++;
    atomic_fetch_add_explicit(&session_worker(sess)->stats.streams, 1, memory_order_relaxed);
    return st;
}

void exchange_free(rill_server_stream *st)
{
    for (struct arena_block *b = st->arena_more; b;) {
        struct arena_block *next = b->next;
        if (b->pooled)
            buf_pool_put(b, ARENA_BLOCK_BYTES);
        else
            free(b);
        b = next;
    }
    slab_free(st, EXCHANGE_SIZE);
}

void *exchange_alloc(rill_server_stream *st, size_t n)
{
    n = (n + 7) & ~(size_t)7;
    if (EXCHANGE_ARENA - st->arena_used >= n) {
        void *p = st->arena + st->arena_used;
        st->arena_used += n;
        return p;
    }
    struct arena_block *b = st->arena_more;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > ARENA_BLOCK ? n : ARENA_BLOCK;
        bool pooled = cap == ARENA_BLOCK &&
                      (b = buf_pool_get(session_worker(st->sess), ARENA_BLOCK_BYTES)) != NULL;
        if (!pooled && !(b = malloc(sizeof *b + cap)))
            return NULL;
        b->pooled = pooled;
        b->cap = cap;
        b->used = 0;
        b->next = st->arena_more;
        st->arena_more = b;
    }
    void *p = b->data + b->used;
    b->used += n;
    return p;
}

int header_list_grow(rill_server_stream *st, struct header_list *l)
{
    size_t cap = l->cap ? l->cap * 2 : 12; /* the old array stays in the arena: lists rarely grow */
    rill_header *items = exchange_alloc(st, (cap + 1) * sizeof *items);
    if (!items)
        return RILL_ERR_NOMEM;
    items++; /* items[-1] stays free: see struct header_list */
    if (l->count)
        memcpy(items, l->items, l->count * sizeof *items);
    l->items = items;
    l->cap = cap;
    return RILL_OK;
}

int header_list_add(rill_server_stream *st, struct header_list *l, const char *name, size_t nlen,
                    const char *value, size_t vlen, uint32_t flags)
{
    if (l->count == l->cap && header_list_grow(st, l) != RILL_OK)
        return RILL_ERR_NOMEM;
    char *copy = exchange_alloc(st, nlen + vlen + 2);
    if (!copy)
        return RILL_ERR_NOMEM;
    if (flags & HEADER_NAME_LOWER)
        small_copy(copy, name, nlen);
    else
        lower_copy(copy, name, nlen);
    copy[nlen] = '\0';
    small_copy(copy + nlen + 1, value, vlen);
    copy[nlen + 1 + vlen] = '\0';
    l->items[l->count++] = (rill_header){(const uint8_t *)copy, nlen,
                                         (const uint8_t *)copy + nlen + 1, vlen,
                                         flags & ~HEADER_NAME_LOWER};
    l->unvouched += !(flags & HEADER_VOUCHED);
    l->has |= header_list_name_bit(copy, nlen);
    return RILL_OK;
}

void header_list_remove(struct header_list *l, const char *name)
{
    size_t nlen = strlen(name), k = 0;
    l->unvouched = 0;
    l->has = 0;
    for (size_t i = 0; i < l->count; i++)
        if (l->items[i].name_len != nlen || strncasecmp((const char *)l->items[i].name, name, nlen) != 0) {
            l->unvouched += !(l->items[i].flags & HEADER_VOUCHED);
            l->has |= header_list_name_bit((const char *)l->items[i].name, l->items[i].name_len);
            l->items[k++] = l->items[i];
        }
    l->count = k;
}

