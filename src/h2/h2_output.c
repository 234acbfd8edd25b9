/* Output queue: frames are serialised into a few large chunks; DATA from caller buffers is
 * referenced by its own segment. The I/O layer reads the queue as iovecs and reports how much it
 * wrote; drained chunks are freed (the newest one is kept for reuse until trimmed). */
#include "h2/h2_internal.h"

#define H2_SEG_RING_FIRST 16u /* the ring's first size; this one comes from the pool */

static struct h2_seg *ring_alloc(rill_h2_session *s, uint32_t cap)
{
    if (s->prof->pool && cap == H2_SEG_RING_FIRST) {
        struct h2_seg *r = s->prof->pool->get(cap * sizeof *r, s->prof->pool->ctx);
        if (r)
            s->mem_bytes += cap * sizeof *r;
        return r;
    }
    return h2_malloc(s, cap * sizeof(struct h2_seg));
}

static void ring_free(rill_h2_session *s)
{
    if (s->segs && s->prof->pool && s->seg_cap == H2_SEG_RING_FIRST) {
        s->mem_bytes -= s->seg_cap * sizeof *s->segs;
        s->prof->pool->put(s->segs, s->seg_cap * sizeof *s->segs, s->prof->pool->ctx);
    } else {
        h2_free(s, s->segs);
    }
    s->segs = NULL;
    s->seg_cap = 0;
}

static int seg_push(rill_h2_session *s, const uint8_t *p, size_t n, struct h2_chunk *c,
                    struct h2_dataref *ref)
{
    if (s->seg_count == s->seg_cap) {
        uint32_t ncap = s->seg_cap ? s->seg_cap * 2 : H2_SEG_RING_FIRST;
        struct h2_seg *ns = ring_alloc(s, ncap);
        if (!ns)
            return RILL_ERR_NOMEM;
        for (uint32_t i = 0; i < s->seg_count; i++)
            ns[i] = s->segs[(s->seg_head + i) & (s->seg_cap - 1)];
        ring_free(s);
        s->segs = ns;
        s->seg_cap = ncap;
        s->seg_head = 0;
    }
    struct h2_seg *g = &s->segs[(s->seg_head + s->seg_count) & (s->seg_cap - 1)];
    g->ptr = p;
    g->len = (uint32_t)n;
    g->chunk = c;
    g->ref = ref;
    s->seg_count++;
    s->out_pending += n;
    return 0;
}

/* Buffers of the standard size and the small start buffers come from the pool when there is one. */
static bool pooled(const rill_h2_session *s, size_t cap)
{
    return s->prof->pool && (cap == s->prof->chunk_size || cap == H2_START_CHUNK ||
                             cap == H2_SMALL_CHUNK || cap == H2_BIG_CHUNK);
}

static struct h2_chunk *chunk_alloc(rill_h2_session *s, size_t cap)
{
    struct h2_chunk *c;
    if (pooled(s, cap)) {
        if (!(c = s->prof->pool->get(sizeof *c + cap, s->prof->pool->ctx)))
            return NULL;
        s->mem_bytes += sizeof *c + cap;
    } else if (!(c = h2_malloc(s, sizeof *c + cap))) {
        return NULL;
    }
    c->next = NULL;
    c->cap = (uint32_t)cap;
    c->used = c->consumed = 0;
    return c;
}

void h2_out_release(rill_h2_session *s)
{
    while (s->out_head) {
        struct h2_chunk *c = s->out_head;
        s->out_head = c->next;
        h2_chunk_free(s, c);
    }
    s->out_tail = NULL;
    ring_free(s);
    s->seg_head = 0;
}

void h2_chunk_free(rill_h2_session *s, struct h2_chunk *c)
{
    if (pooled(s, c->cap)) {
        s->mem_bytes -= sizeof *c + c->cap;
        s->prof->pool->put(c, sizeof *c + c->cap, s->prof->pool->ctx);
    } else {
        h2_free(s, c);
    }
}

uint8_t *h2_out_reserve(rill_h2_session *s, size_t need)
{
    struct h2_chunk *t = s->out_tail;
    if (t && t->cap - t->used >= need)
        return t->data + t->used;
    /* An empty tail chunk nobody points at can simply be replaced when too small. */
    size_t cap = need > s->prof->chunk_size ? need : s->prof->chunk_size;
    if (!t && s->prof->pool && need <= H2_SMALL_CHUNK && s->prof->chunk_size > H2_SMALL_CHUNK)
        cap = H2_SMALL_CHUNK;
    struct h2_chunk *c = chunk_alloc(s, cap);
    if (!c)
        return NULL;
    if (t && t->used == t->consumed) {
        /* Nothing queued from the old tail: drop it instead of chaining. */
        struct h2_chunk **pp = &s->out_head;
        while (*pp != t)
            pp = &(*pp)->next;
        *pp = c;
        h2_chunk_free(s, t);
    } else if (t) {
        t->next = c;
    } else {
        s->out_head = c;
    }
    s->out_tail = c;
    return c->data;
}

uint8_t *h2_out_reserve_small(rill_h2_session *s, size_t need, size_t cap)
{
    /* Without a pool the session keeps a full-size buffer anyway: take it now. */
    if (s->out_tail || need > cap || !s->prof->pool)
        return h2_out_reserve(s, need);
    struct h2_chunk *c = chunk_alloc(s, cap);
    if (!c)
        return NULL;
    s->out_head = s->out_tail = c;
    return c->data;
}

void h2_out_commit(rill_h2_session *s, size_t n)
{
    struct h2_chunk *c = s->out_tail;
    uint8_t *p = c->data + c->used;
    c->used += (uint32_t)n;
    if (s->seg_count) {
        struct h2_seg *last = &s->segs[(s->seg_head + s->seg_count - 1) & (s->seg_cap - 1)];
        if (last->chunk == c && last->ptr + last->len == p) {
            last->len += (uint32_t)n;
            s->out_pending += n;
            return;
        }
    }
    if (seg_push(s, p, n, c, NULL) != 0) {
        /* Cannot describe the bytes: take them back and fail the connection. */
        c->used -= (uint32_t)n;
        h2_connection_error(s, RILL_H2_INTERNAL_ERROR, "out of memory");
    }
}

bool h2_out_ref_room(const rill_h2_session *s)
{
    return s->seg_count + 2 <= s->seg_cap || s->seg_cap < 1024;
}

int h2_out_ref(rill_h2_session *s, const uint8_t *p, size_t n, struct h2_dataref *ref)
{
    int rc = seg_push(s, p, n, NULL, ref);
    if (rc == 0)
        ref->inflight++;
    return rc;
}

int h2_out_frame(rill_h2_session *s, uint8_t type, uint8_t flags, int32_t sid, const uint8_t *payload,
                 size_t len)
{
    uint8_t *p = h2_out_reserve(s, H2_FRAME_HEADER + len);
    if (!p)
        return RILL_ERR_NOMEM;
    h2_frame_header(p, (uint32_t)len, type, flags, sid);
    if (len)
        memcpy(p + H2_FRAME_HEADER, payload, len);
    h2_out_commit(s, H2_FRAME_HEADER + len);
    return 0;
}

void h2_ref_release(rill_h2_session *s, struct h2_dataref *ref)
{
    if (H2_CB(s, on_data_released))
        H2_CB(s, on_data_released)(s, ref->stream_id, ref->token, s->user);
    ref->next = s->free_refs;
    s->free_refs = ref;
}

int rill_h2_session_output(rill_h2_session *s, struct iovec *iov, int max)
{
    h2_fill_output(s);
    int n = 0;
    for (uint32_t i = 0; i < s->seg_count && n < max; i++) {
        const struct h2_seg *g = &s->segs[(s->seg_head + i) & (s->seg_cap - 1)];
        iov[n].iov_base = (void *)g->ptr;
        iov[n].iov_len = g->len;
        n++;
    }
    return n;
}

void rill_h2_session_output_sent(rill_h2_session *s, size_t n)
{
    while (n && s->seg_count) {
        struct h2_seg *g = &s->segs[s->seg_head];
        size_t take = n < g->len ? n : g->len;
        g->ptr += take;
        g->len -= (uint32_t)take;
        n -= take;
        s->out_pending -= take;
        if (g->chunk)
            g->chunk->consumed += (uint32_t)take;
        if (g->len)
            break;
        struct h2_chunk *c = g->chunk;
        struct h2_dataref *ref = g->ref;
        s->seg_head = (s->seg_head + 1) & (s->seg_cap - 1);
        s->seg_count--;
        if (c && c->consumed == c->used && c != s->out_tail) {
            /* Chunks drain in order: c is the head. */
            s->out_head = c->next;
            h2_chunk_free(s, c);
        }
        if (ref && --ref->inflight == 0 && ref->detached)
            h2_ref_release(s, ref);
    }
    if (s->stalled)
        h2_stall_update(s);
    if (s->seg_count == 0) {
        s->seg_head = 0;
        if (s->prof->pool) {
            /* Drained: the buffer goes back to the shared pool (cheap), the segment ring too, so
             * a quiet session holds no output memory at all. */
            h2_out_release(s);
        } else if (s->out_tail && s->out_tail->consumed == s->out_tail->used) {
            s->out_tail->used = s->out_tail->consumed = 0; /* reuse from the start */
        }
    }
}

size_t rill_h2_session_send_copy(rill_h2_session *s, uint8_t *buf, size_t cap)
{
    struct iovec iov[16];
    size_t total = 0;
    while (total < cap) {
        int n = rill_h2_session_output(s, iov, 16);
        if (n == 0)
            break;
        size_t round = 0;
        for (int i = 0; i < n && total + round < cap; i++) {
            size_t take = iov[i].iov_len;
            if (take > cap - total - round)
                take = cap - total - round;
            memcpy(buf + total + round, iov[i].iov_base, take);
            round += take;
        }
        rill_h2_session_output_sent(s, round);
        total += round;
    }
    return total;
}

void h2_out_free_all(rill_h2_session *s)
{
    while (s->seg_count) {
        struct h2_seg *g = &s->segs[s->seg_head];
        struct h2_dataref *ref = g->ref;
        s->seg_head = (s->seg_head + 1) & (s->seg_cap - 1);
        s->seg_count--;
        if (ref && --ref->inflight == 0 && ref->detached)
            h2_ref_release(s, ref);
    }
    s->out_pending = 0;
    h2_out_release(s);
}
