/* Streams: a small hash table by id, a free list so opening a stream does not allocate in the
 * steady state, the memory of recently closed streams, and the RFC 9218 send queues. */
#include "h2/h2_internal.h"

struct h2_stream *h2_stream_find(const rill_h2_session *s, int32_t id)
{
    if (!s->nbuckets)
        return NULL;
    for (struct h2_stream *st = s->tab->buckets[h2_slot(s->nbuckets, id)]; st; st = st->hnext)
        if (st->id == id)
            return st;
    return NULL;
}

bool h2_is_local_id(const rill_h2_session *s, int32_t id)
{
    /* Clients open odd streams, servers even (pushed) ones. */
    return ((id & 1) == 1) == (s->role == RILL_H2_CLIENT);
}

static bool counts_active(uint8_t state)
{
    return state == H2_OPEN || state == H2_HALF_CLOSED_LOCAL || state == H2_HALF_CLOSED_REMOTE;
}

void h2_stream_set_state(rill_h2_session *s, struct h2_stream *st, uint8_t state)
{
    bool was = counts_active(st->state), is = counts_active(state);
    uint32_t *ctr = h2_is_local_id(s, st->id) ? &s->local_active : &s->peer_active;
    if (was && !is)
        (*ctr)--;
    else if (!was && is)
        (*ctr)++;
    if (st->state == H2_RESERVED_REMOTE)
        s->reserved_remote--;
    if (state == H2_RESERVED_REMOTE)
        s->reserved_remote++;
    st->state = state;
}

struct h2_stream *h2_stream_new(rill_h2_session *s, int32_t id, uint8_t state)
{
    if (s->nstreams >= s->nbuckets && !h2_table_grow(s))
        return NULL;
    /* Ids the peer uses are recorded from its first stream on (see h2_peer_id_used). */
    if (!s->hist && !h2_is_local_id(s, id) && !h2_history_alloc(s))
        return NULL;
    struct h2_stream *st = s->free_streams;
    if (st)
        s->free_streams = st->hnext;
    else if (!(st = h2_malloc(s, sizeof *st)))
        return NULL;
    memset(st, 0, sizeof *st);
    st->id = id;
    st->state = H2_IDLE;
    st->urgency = 3;
    st->content_length = -1;
    st->send_window = s->peer.initial_window_size;
    st->recv_window = h2_acked(s)->initial_window_size;
    uint32_t k = h2_slot(s->nbuckets, id);
    st->hnext = s->tab->buckets[k];
    s->tab->buckets[k] = st;
    s->nstreams++;
    h2_stream_set_state(s, st, state);
    if (h2_is_local_id(s, id)) {
        if (id > s->last_local_id)
            s->last_local_id = id;
    } else if (id > s->last_peer_id) {
        h2_peer_id_used(s, id);
    }
    return st;
}

void h2_peer_id_used(rill_h2_session *s, int32_t id)
{
    if (id <= s->last_peer_id)
        return;
    if (!h2_history_ensure(s)) {
        h2_connection_error(s, RILL_H2_INTERNAL_ERROR, "out of memory");
        return;
    }
    uint64_t *used = s->hist->peer_used;
    /* A ring: id's bit is (id / 2) % 512. The ids skipped since the last one were not used; their
     * bits (and the new id's) still say what ids 1,024 lower did, so they are cleared. */
    uint32_t shift = s->last_peer_id ? (uint32_t)(id - s->last_peer_id) / 2 : 512;
    if (shift >= 512) {
        memset(used, 0, 8 * sizeof *used);
    } else {
        for (uint32_t k = 1; k < shift; k++) {
            uint32_t bit = ((uint32_t)s->last_peer_id / 2 + k) % 512;
            used[bit / 64] &= ~((uint64_t)1 << (bit % 64));
        }
    }
    uint32_t bit = ((uint32_t)id / 2) % 512;
    used[bit / 64] |= (uint64_t)1 << (bit % 64);
    s->last_peer_id = id;
}

int h2_peer_id_was_used(const rill_h2_session *s, int32_t id)
{
    if (id > s->last_peer_id)
        return 0;
    uint32_t k = (uint32_t)(s->last_peer_id - id) / 2;
    if (k >= 512 || !s->hist)
        return -1;
    uint32_t bit = ((uint32_t)id / 2) % 512;
    return (int)(s->hist->peer_used[bit / 64] >> (bit % 64) & 1);
}

void h2_remember_closed(rill_h2_session *s, int32_t id, uint8_t how)
{
    if (!s->prof->max_closed || !h2_history_ensure(s))
        return;
    struct h2_closed *closed = s->hist->closed;
    uint32_t max = s->prof->max_closed, i;
    if (s->closed_count == max) { /* full: the oldest goes (wrapped by compare: no division per close) */
        i = s->closed_head;
        s->closed_head = i + 1 == max ? 0 : i + 1;
    } else {
        i = s->closed_head + s->closed_count;
        if (i >= max)
            i -= max;
        s->closed_count++;
    }
    closed[i].id = id;
    closed[i].how = how;
}

int h2_closed_lookup(const rill_h2_session *s, int32_t id)
{
    for (uint32_t i = 0; i < s->closed_count; i++) {
        uint32_t k = (s->closed_head + i) % s->prof->max_closed;
        if (s->hist->closed[k].id == id)
            return s->hist->closed[k].how;
    }
    return 0;
}

void h2_trailers_free(rill_h2_session *s, struct h2_stream *st)
{
    if (st->trailers) {
        h2_free(s, st->trailers);
        st->trailers = NULL;
    }
}

void h2_stream_drop_data(rill_h2_session *s, struct h2_stream *st)
{
    while (st->dq_head) {
        struct h2_dataref *r = st->dq_head;
        st->dq_head = r->next;
        r->detached = true;
        if (r->inflight == 0)
            h2_ref_release(s, r);
    }
    st->dq_tail = NULL;
    st->read = NULL;
    st->readv = NULL;
    h2_trailers_free(s, st);
    h2_sched_remove(s, st);
}

void h2_stream_close(rill_h2_session *s, struct h2_stream *st, uint32_t code, uint8_t how)
{
    if (st->state == H2_CLOSED)
        return; /* closing already (a call from inside on_stream_close) */
    h2_stream_drop_data(s, st);
    /* Body bytes the app never consumed still go back to the connection window. */
    s->conn_recv_consumed += st->recv_unconsumed;
    st->recv_unconsumed = 0;
    h2_stream_set_state(s, st, H2_CLOSED);
    int32_t id = st->id;
    /* Reported while the stream is still findable, so its user data can be read and freed. */
    if (H2_CB(s, on_stream_close) && !s->freeing)
        H2_CB(s, on_stream_close)(s, id, code, s->user);
    struct h2_stream **pp = &s->tab->buckets[h2_slot(s->nbuckets, id)];
    while (*pp != st)
        pp = &(*pp)->hnext;
    *pp = st->hnext;
    s->nstreams--;
    h2_remember_closed(s, id, how);
    st->hnext = s->free_streams;
    s->free_streams = st;
    h2_queue_window_updates(s, NULL);
}

/* ---- RFC 9218 send queues ---- */

void h2_sched_add(rill_h2_session *s, struct h2_stream *st)
{
    if (st->flags & SF_SCHEDULED)
        return;
    st->flags |= SF_SCHEDULED;
    int inc = (st->flags & SF_INCREMENTAL) ? 1 : 0;
    struct h2_stream **head = &s->tab->queue[st->urgency][inc];
    struct h2_stream **tail = &s->tab->queue_tail[st->urgency][inc];
    /* Non-incremental streams are served one after another in stream order; incremental ones
     * round-robin, so they join at the end, as does a new stream (the highest id so far). */
    struct h2_stream *prev = *tail, *cur = NULL;
    if (!inc && prev && prev->id > st->id) {
        prev = NULL;
        cur = *head;
        while (cur->id < st->id) {
            prev = cur;
            cur = cur->qnext;
        }
    }
    st->qprev = prev;
    st->qnext = cur;
    if (cur)
        cur->qprev = st;
    else
        *tail = st;
    if (prev)
        prev->qnext = st;
    else
        *head = st;
    s->tab->queued |= (uint16_t)(1u << (st->urgency * 2 + inc));
}

void h2_sched_remove(rill_h2_session *s, struct h2_stream *st)
{
    if (!(st->flags & SF_SCHEDULED))
        return;
    int inc = (st->flags & SF_INCREMENTAL) ? 1 : 0;
    struct h2_stream **head = &s->tab->queue[st->urgency][inc];
    if (st->qprev)
        st->qprev->qnext = st->qnext;
    else
        *head = st->qnext;
    if (st->qnext)
        st->qnext->qprev = st->qprev;
    else
        s->tab->queue_tail[st->urgency][inc] = st->qprev;
    if (!*head)
        s->tab->queued &= (uint16_t)~(1u << (st->urgency * 2 + inc));
    st->qnext = st->qprev = NULL;
    st->flags &= (uint16_t)~SF_SCHEDULED;
}
