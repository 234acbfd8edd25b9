/* Session lifetime, options, memory accounting, queries, timers. */
#include <stdlib.h>

#include "h2/h2_internal.h"

/* Every allocation carries its size in front so the session can report what it holds. */
#define H2_ALLOC_HDR 16u

void *h2_malloc(rill_h2_session *s, size_t n)
{
    size_t *p = s->prof->alloc ? s->prof->alloc->alloc(n + H2_ALLOC_HDR, s->prof->alloc->ctx) : malloc(n + H2_ALLOC_HDR);
    if (!p)
        return NULL;
    p[0] = n;
    s->mem_bytes += n;
    return (uint8_t *)p + H2_ALLOC_HDR;
}

void *h2_realloc(rill_h2_session *s, void *ptr, size_t n)
{
    if (!ptr)
        return h2_malloc(s, n);
    size_t *old = (size_t *)((uint8_t *)ptr - H2_ALLOC_HDR);
    size_t oldn = old[0];
    size_t *p = s->prof->alloc ? s->prof->alloc->realloc(old, n + H2_ALLOC_HDR, s->prof->alloc->ctx)
                         : realloc(old, n + H2_ALLOC_HDR);
    if (!p)
        return NULL;
    p[0] = n;
    s->mem_bytes = s->mem_bytes - oldn + n;
    return (uint8_t *)p + H2_ALLOC_HDR;
}

void h2_free(rill_h2_session *s, void *ptr)
{
    if (!ptr)
        return;
    size_t *p = (size_t *)((uint8_t *)ptr - H2_ALLOC_HDR);
    s->mem_bytes -= p[0];
    if (s->prof->alloc)
        s->prof->alloc->free(p, s->prof->alloc->ctx);
    else
        free(p);
}

/* Zeroed memory from the session's allocator. */
static void *h2_calloc(rill_h2_session *s, size_t n)
{
    void *p = h2_malloc(s, n);
    if (p)
        memset(p, 0, n);
    return p;
}

bool h2_table_grow(rill_h2_session *s)
{
    uint32_t n = s->nbuckets ? s->nbuckets * 2 : 8;
    struct h2_table *t = h2_malloc(s, sizeof *t + n * sizeof t->buckets[0]);
    if (!t)
        return false;
    if (s->tab)
        memcpy(t, s->tab, sizeof *t);
    else
        memset(t, 0, sizeof *t);
    memset(t->buckets, 0, n * sizeof t->buckets[0]);
    for (uint32_t i = 0; s->tab && i < s->nbuckets; i++) {
        struct h2_stream *st = s->tab->buckets[i];
        while (st) {
            struct h2_stream *next = st->hnext;
            uint32_t k = h2_slot(n, st->id);
            st->hnext = t->buckets[k];
            t->buckets[k] = st;
            st = next;
        }
    }
    h2_free(s, s->tab);
    s->tab = t;
    s->nbuckets = n;
    return true;
}

bool h2_history_alloc(rill_h2_session *s)
{
    s->hist = h2_calloc(s, sizeof *s->hist + s->prof->max_closed * sizeof s->hist->closed[0]);
    return s->hist != NULL;
}

static const rill_h2_callbacks no_callbacks = {.size = sizeof no_callbacks};

/* The default flood limits (rill_h2_options_init). */
static const rill_h2_rate default_rates[FL_COUNT] = {
    [FL_PING] = {100, 10},      [FL_SETTINGS] = {100, 10},    [FL_RST] = {1000, 33},
    [FL_EMPTY] = {1000, 100},   [FL_WU] = {1000, 100},        [FL_PRIORITY] = {1000, 100},
};

void rill_h2_options_init(rill_h2_options *opt, enum rill_h2_role role)
{
    memset(opt, 0, sizeof *opt);
    opt->size = sizeof *opt;
    opt->local.header_table_size = 4096;
    opt->local.enable_push = role == RILL_H2_CLIENT ? 1 : 0;
    opt->local.max_concurrent_streams = 100;
    opt->local.initial_window_size = 256 * 1024;
    opt->local.max_frame_size = RILL_H2_MIN_FRAME_SIZE;
    opt->local.max_header_list_size = 65536;
    opt->local.enable_connect_protocol = 0;
    opt->local.no_rfc7540_priorities = 1;
    opt->connection_window = 1024 * 1024;
    opt->settings_timeout_ms = 10000;
    opt->max_header_block = 0; /* derived from the header-list limit */
    opt->max_continuations = 64;
    opt->max_closed_streams = 32;
    opt->max_pending_output = 256 * 1024;
    opt->output_chunk_size = 16384 + 64;
    opt->ping_rate = default_rates[FL_PING];
    opt->settings_rate = default_rates[FL_SETTINGS];
    opt->rst_rate = default_rates[FL_RST];
    opt->empty_frame_rate = default_rates[FL_EMPTY];
    opt->window_update_rate = default_rates[FL_WU];
    opt->priority_rate = default_rates[FL_PRIORITY];
}

static uint32_t flood_cap(const rill_h2_rate *r)
{
    uint64_t cap = (uint64_t)r->burst * H2_FLOOD_UNIT;
    return cap > UINT32_MAX ? UINT32_MAX : (uint32_t)cap;
}

/* The default wire bound of one header block: twice the header-list limit we announce, so that
 * a block still arriving past it could only be refused (encoders do not make a list's block
 * larger than the list); never below one full frame, never above the list cap. */
static uint32_t header_block_bound(const rill_h2_settings *local)
{
    uint32_t list = local->max_header_list_size;
    if (list == 0 || list > H2_HEADER_LIST_CAP)
        list = H2_HEADER_LIST_CAP;
    uint64_t bound = 2ull * list;
    if (bound < RILL_H2_MIN_FRAME_SIZE)
        bound = RILL_H2_MIN_FRAME_SIZE;
    return bound > H2_HEADER_LIST_CAP ? H2_HEADER_LIST_CAP : (uint32_t)bound;
}

rill_h2_profile *rill_h2_profile_new(enum rill_h2_role role, const rill_h2_options *opt)
{
    if (role != RILL_H2_SERVER && role != RILL_H2_CLIENT)
        return NULL;
    rill_h2_options defaults;
    rill_h2_options_init(&defaults, role);
    if (opt && rill_struct_copy(&defaults, sizeof defaults, opt) != RILL_OK)
        return NULL;
    opt = &defaults;
    if (opt->local.initial_window_size > RILL_H2_MAX_WINDOW ||
        opt->local.max_frame_size < RILL_H2_MIN_FRAME_SIZE ||
        opt->local.max_frame_size > RILL_H2_MAX_FRAME_SIZE_LIMIT || opt->local.enable_push > 1 ||
        (role == RILL_H2_SERVER && opt->local.enable_push) || opt->local.enable_connect_protocol > 1 ||
        opt->connection_window > RILL_H2_MAX_WINDOW)
        return NULL;
    const rill_h2_allocator *a = opt->allocator;
    rill_h2_profile *p = a ? a->alloc(sizeof *p, a->ctx) : malloc(sizeof *p);
    if (!p)
        return NULL;
    memset(p, 0, sizeof *p);
    p->alloc = a;
    p->role = (uint8_t)role;
    p->local = opt->local;
    p->conn_window_target = opt->connection_window > RILL_H2_DEFAULT_WINDOW ? opt->connection_window
                                                                            : RILL_H2_DEFAULT_WINDOW;
    p->settings_timeout_ms = opt->settings_timeout_ms;
    p->max_header_block = opt->max_header_block ? opt->max_header_block : header_block_bound(&opt->local);
    p->max_continuations = opt->max_continuations;
    p->max_closed = opt->max_closed_streams;
    p->max_pending_output = opt->max_pending_output ? opt->max_pending_output : 256 * 1024;
    p->chunk_size = opt->output_chunk_size >= 1024 ? opt->output_chunk_size : 16384 + 64;
    p->pool = opt->output_pool;
    p->auto_consume = opt->auto_consume;
    p->rates[FL_PING] = opt->ping_rate;
    p->rates[FL_SETTINGS] = opt->settings_rate;
    p->rates[FL_RST] = opt->rst_rate;
    p->rates[FL_EMPTY] = opt->empty_frame_rate;
    p->rates[FL_WU] = opt->window_update_rate;
    p->rates[FL_PRIORITY] = opt->priority_rate;
    for (int i = 0; i < FL_COUNT; i++) /* in units; bursts above about four million frames are that many */
        p->flood_cap[i] = flood_cap(&p->rates[i]);
    return p;
}

void rill_h2_profile_free(rill_h2_profile *p)
{
    if (!p)
        return;
    if (p->alloc)
        p->alloc->free(p, p->alloc->ctx);
    else
        free(p);
}

rill_h2_session *rill_h2_session_new(enum rill_h2_role role, const rill_h2_options *opt,
                                     const rill_h2_callbacks *cb, void *user)
{
    rill_h2_profile *p = rill_h2_profile_new(role, opt);
    if (!p)
        return NULL;
    rill_h2_session *s = rill_h2_session_new_shared(
        p, cb, user, opt && RILL_STRUCT_HAS(opt, rill_h2_options, now_ms) ? opt->now_ms : 0);
    if (!s) {
        rill_h2_profile_free(p);
        return NULL;
    }
    s->prof_owned = true;
    return s;
}

rill_h2_session *rill_h2_session_new_shared(const rill_h2_profile *prof, const rill_h2_callbacks *cb,
                                            void *user, uint64_t now_ms)
{
    if (cb && !rill_struct_size_ok(cb->size, sizeof *cb))
        return NULL;
    const rill_h2_allocator *a = prof->alloc;
    rill_h2_session *s = a ? a->alloc(sizeof *s, a->ctx) : malloc(sizeof *s);
    if (!s)
        return NULL;
    memset(s, 0, sizeof *s);
    s->prof = prof;
    s->cb = cb ? cb : &no_callbacks;
    s->user = user;
    s->role = prof->role;
    s->local = &prof->local;
    s->peer = h2_protocol_settings;
    s->now = now_ms;
    s->next_local_id = s->role == RILL_H2_CLIENT ? 1 : 2;
    s->conn_send_window = RILL_H2_DEFAULT_WINDOW;
    s->conn_recv_window = RILL_H2_DEFAULT_WINDOW;
    s->error_code = -1;
    s->settings_deadline = UINT64_MAX;
    s->shutdown_deadline = UINT64_MAX;
    s->rstate = s->role == RILL_H2_SERVER ? RS_PREFACE : RS_HEADER;
    for (int i = 0; i < FL_COUNT; i++)
        s->flood_tokens[i] = prof->flood_cap[i];
    s->flood_ms = (uint32_t)s->now;
    /* Our first SETTINGS is pending until acknowledged; until then the protocol defaults hold
     * (h2_acked: no pend record needed for that). */
    s->pending_count = 1;

    /* Connection start (section 3.4): the client preface, then SETTINGS from both sides. With a
     * shared pool they go in a small buffer of their own (with room for the peer's SETTINGS ACK),
     * so a connection that stays quiet never borrows a full-size one. */
    uint8_t *p = h2_out_reserve_small(s, H2_PREFACE_LEN + H2_FRAME_HEADER + 48 + H2_FRAME_HEADER + 4,
                                      H2_START_CHUNK);
    if (!p) {
        rill_h2_session_free(s);
        return NULL;
    }
    size_t n = 0;
    if (s->role == RILL_H2_CLIENT) {
        memcpy(p, H2_PREFACE, H2_PREFACE_LEN);
        n = H2_PREFACE_LEN;
    }
    size_t plen = h2_settings_write(s->local, h2_acked(s), p + n + H2_FRAME_HEADER);
    h2_frame_header(p + n, (uint32_t)plen, RILL_H2_SETTINGS, 0, 0);
    n += H2_FRAME_HEADER + plen;
    if (s->prof->conn_window_target > RILL_H2_DEFAULT_WINDOW) {
        /* Enlarge the connection window at once; SETTINGS cannot. */
        h2_frame_header(p + n, 4, RILL_H2_WINDOW_UPDATE, 0, 0);
        h2_put32(p + n + H2_FRAME_HEADER, s->prof->conn_window_target - RILL_H2_DEFAULT_WINDOW);
        n += H2_FRAME_HEADER + 4;
        s->conn_recv_window = s->prof->conn_window_target;
    }
    h2_out_commit(s, n);
    if (s->prof->settings_timeout_ms)
        s->settings_deadline = s->now + s->prof->settings_timeout_ms;
    return s;
}

static void close_all_streams(rill_h2_session *s, uint32_t code)
{
    for (uint32_t i = 0; i < s->nbuckets; i++)
        while (s->tab && s->tab->buckets[i])
            h2_stream_close(s, s->tab->buckets[i], code, H2_CLOSED_LOCAL_RST);
}

/* Recycled stream and DATA-reference structs go back to the allocator. */
static void free_lists_release(rill_h2_session *s)
{
    while (s->free_streams) {
        struct h2_stream *st = s->free_streams;
        s->free_streams = st->hnext;
        h2_free(s, st);
    }
    while (s->free_refs) {
        struct h2_dataref *r = s->free_refs;
        s->free_refs = r->next;
        h2_free(s, r);
    }
}

void rill_h2_session_free(rill_h2_session *s)
{
    if (!s)
        return;
    /* No more events but the releases the caller needs to free its buffers. */
    s->freeing = true;
    close_all_streams(s, RILL_H2_CANCEL);
    h2_out_free_all(s);
    free_lists_release(s);
    h2_free(s, s->tab);
    h2_free(s, s->hist);
    h2_free(s, s->pend);
    h2_free(s, s->pbuf);
    h2_hblock_free(s, true);
    if (s->local != &s->prof->local)
        h2_free(s, (void *)s->local);
    if (s->dec)
        rill_hpack_decoder_free(s->dec);
    if (s->enc)
        rill_hpack_encoder_free(s->enc);
    const rill_h2_profile *prof = s->prof;
    bool owned = s->prof_owned;
    if (prof->alloc)
        prof->alloc->free(s, prof->alloc->ctx);
    else
        free(s);
    if (owned)
        rill_h2_profile_free((rill_h2_profile *)prof);
}

void h2_close_all_on_error(rill_h2_session *s)
{
    close_all_streams(s, (uint32_t)(s->error_code >= 0 ? s->error_code : RILL_H2_CANCEL));
}

void rill_h2_session_trim(rill_h2_session *s)
{
    if (s->out_pending == 0 && s->seg_count == 0)
        h2_out_release(s);
    if (s->rstate != RS_PAYLOAD) {
        h2_free(s, s->pbuf);
        s->pbuf = NULL;
        s->pbuf_cap = 0;
    }
    h2_hblock_free(s, !s->expect_continuation);
    free_lists_release(s);
    if (s->enc && s->nstreams == 0)
        rill_hpack_encoder_trim(s->enc);
    if (s->nstreams == 0 && s->tab) {
        /* Keep the table only for a PRIORITY_UPDATE whose stream may still open. */
        bool waiting = false;
        for (int k = 0; k < 4; k++)
            waiting |= s->tab->early_prio[k].id > s->last_peer_id;
        if (!waiting) {
            h2_free(s, s->tab);
            s->tab = NULL;
            s->nbuckets = 0;
        }
    }
}

bool rill_h2_session_want_read(const rill_h2_session *s)
{
    if (s->rstate == RS_DEAD)
        return false;
    if ((s->goaway_sent || s->goaway_recv) && s->nstreams == 0 && !s->shutdown_notice)
        return false;
    return s->out_pending < s->prof->max_pending_output;
}

bool rill_h2_session_want_write(rill_h2_session *s)
{
    h2_fill_output(s);
    return s->out_pending > 0;
}

/* Counting in thousandths of a frame keeps each bucket's fraction across refills, so one clock
 * serves all six buckets (per_second thousandths arrive per millisecond). */
bool h2_flood_take_n(rill_h2_session *s, enum h2_flood which, uint32_t n)
{
    if (s->prof->rates[which].burst == 0)
        return true; /* no limit */
    uint32_t elapsed = (uint32_t)s->now - s->flood_ms;
    if (elapsed) {
        s->flood_ms = (uint32_t)s->now;
        for (int i = 0; i < FL_COUNT; i++) {
            uint64_t t = s->flood_tokens[i] + (uint64_t)elapsed * s->prof->rates[i].per_second;
            s->flood_tokens[i] = t > s->prof->flood_cap[i] ? s->prof->flood_cap[i] : (uint32_t)t;
        }
    }
    uint64_t cost = (uint64_t)n * H2_FLOOD_UNIT;
    if (s->flood_tokens[which] < cost)
        return false;
    s->flood_tokens[which] -= (uint32_t)cost;
    return true;
}

/* A peer that leaves max_pending_output of our frames unread (the I/O layer has stopped reading
 * it: want_read) gets as long as it has to acknowledge SETTINGS, then the connection ends. The
 * clock is kept in seconds, 16 bits: all an idle session has room for. */
void h2_stall_update(rill_h2_session *s)
{
    bool full = s->out_pending >= s->prof->max_pending_output;
    if (full && !s->stalled)
        s->stall_s = (uint16_t)(s->now / 1000);
    s->stalled = full;
}

static uint64_t stall_deadline(const rill_h2_session *s)
{
    if (!s->stalled || !s->prof->settings_timeout_ms)
        return UINT64_MAX;
    uint64_t waited_ms = (uint64_t)(uint16_t)(s->now / 1000 - s->stall_s) * 1000;
    return waited_ms >= s->prof->settings_timeout_ms ? s->now
                                                     : s->now + s->prof->settings_timeout_ms - waited_ms;
}

void rill_h2_session_tick(rill_h2_session *s, uint64_t now_ms)
{
    if (now_ms > s->now)
        s->now = now_ms;
    if (s->rstate != RS_DEAD && s->now >= s->settings_deadline) {
        s->settings_deadline = UINT64_MAX;
        h2_connection_error(s, RILL_H2_SETTINGS_TIMEOUT, "SETTINGS not acknowledged");
        h2_close_all_on_error(s);
    }
    if (s->rstate != RS_DEAD && s->now >= stall_deadline(s)) {
        h2_connection_error(s, RILL_H2_ENHANCE_YOUR_CALM, "peer does not read");
        h2_close_all_on_error(s);
    }
    if (s->rstate != RS_DEAD && s->shutdown_notice && s->now >= s->shutdown_deadline)
        h2_final_goaway(s);
}

uint64_t rill_h2_session_next_deadline(const rill_h2_session *s)
{
    if (s->rstate == RS_DEAD)
        return UINT64_MAX;
    uint64_t at = s->settings_deadline < s->shutdown_deadline ? s->settings_deadline : s->shutdown_deadline;
    uint64_t stall = stall_deadline(s);
    return stall < at ? stall : at;
}

void *rill_h2_session_user(const rill_h2_session *s) { return s->user; }
void rill_h2_session_set_user(rill_h2_session *s, void *user) { s->user = user; }
enum rill_h2_role rill_h2_session_role(const rill_h2_session *s) { return (enum rill_h2_role)s->role; }
const rill_h2_settings *rill_h2_session_local_settings(const rill_h2_session *s) { return s->local; }
const rill_h2_settings *rill_h2_session_peer_settings(const rill_h2_session *s) { return &s->peer; }
int64_t rill_h2_session_error_code(const rill_h2_session *s) { return s->error_code; }
size_t rill_h2_session_stream_count(const rill_h2_session *s) { return s->nstreams; }
size_t rill_h2_stream_size(void) { return sizeof(struct h2_stream); }

size_t rill_h2_session_memory(const rill_h2_session *s)
{
    return sizeof *s + s->mem_bytes + (s->prof_owned ? sizeof *s->prof : 0);
}

int64_t rill_h2_session_send_window(const rill_h2_session *s, int32_t stream_id)
{
    if (stream_id == 0)
        return s->conn_send_window;
    const struct h2_stream *st = h2_stream_find(s, stream_id);
    return st ? st->send_window : INT64_MIN;
}

int64_t rill_h2_session_recv_window(const rill_h2_session *s, int32_t stream_id)
{
    if (stream_id == 0)
        return s->conn_recv_window;
    const struct h2_stream *st = h2_stream_find(s, stream_id);
    return st ? st->recv_window : INT64_MIN;
}

uint64_t rill_h2_session_recv_owed(const rill_h2_session *s, int32_t stream_id)
{
    const struct h2_stream *st = h2_stream_find(s, stream_id);
    if (!st || st->content_length < 0 || (st->flags & (SF_TUNNEL | SF_RECV_NO_BODY)) ||
        st->data_received >= (uint64_t)st->content_length)
        return 0;
    int64_t owed = st->content_length - (int64_t)st->data_received;
    int64_t window = st->recv_window < s->conn_recv_window ? st->recv_window : s->conn_recv_window;
    if (window < owed)
        owed = window;
    return owed > 0 ? (uint64_t)owed : 0;
}

void *rill_h2_stream_user(const rill_h2_session *s, int32_t stream_id)
{
    const struct h2_stream *st = h2_stream_find(s, stream_id);
    return st ? st->user : NULL;
}

int rill_h2_stream_set_user(rill_h2_session *s, int32_t stream_id, void *user)
{
    struct h2_stream *st = h2_stream_find(s, stream_id);
    if (!st)
        return RILL_ERR_NOT_FOUND;
    st->user = user;
    return 0;
}

int rill_h2_session_settings_payload(const rill_h2_session *s, uint8_t *buf, size_t cap)
{
    uint8_t tmp[48];
    size_t n = h2_settings_write(s->local, &h2_protocol_settings, tmp);
    if (n > cap)
        return RILL_ERR_BUFFER_TOO_SMALL;
    memcpy(buf, tmp, n);
    return (int)n;
}

int rill_h2_session_upgrade_server(rill_h2_session *s, const uint8_t *payload, size_t len,
                                   const rill_header *request, size_t count)
{
    if (s->role != RILL_H2_SERVER || s->nstreams || s->last_peer_id)
        return RILL_ERR_STATE;
    struct h2_msg_info mi;
    if (!h2_message_valid(request, count, H2_MSG_REQUEST, false, &mi) || mi.connect)
        return RILL_ERR_INVALID_ARG;
    /* The HTTP2-Settings header is the client's first SETTINGS; the 101 acknowledges it. */
    rill_h2_settings peer = s->peer;
    if (h2_settings_apply(&peer, payload, len, false) != 0)
        return RILL_ERR_INVALID_ARG;
    s->peer = peer;
    struct h2_stream *st = h2_stream_new(s, 1, H2_HALF_CLOSED_REMOTE);
    if (!st)
        return RILL_ERR_NOMEM;
    st->flags |= SF_HEADERS_RECV;
    if (mi.head)
        st->flags |= SF_HEAD | SF_SEND_NO_BODY;
    if (mi.urgency >= 0)
        st->urgency = (uint8_t)mi.urgency;
    if (mi.incremental > 0)
        st->flags |= SF_INCREMENTAL;
    /* The upgraded request reaches the application like any other one. */
    if (H2_CB(s, on_headers)) {
        int rc = H2_CB(s, on_headers)(s, 1, RILL_H2_HEADERS_REQUEST, request, count, RILL_H2_FLAG_END_STREAM, s->user);
        if (rc < 0)
            return rc;
    }
    if (H2_CB(s, on_end_stream) && h2_stream_find(s, 1)) {
        int rc = H2_CB(s, on_end_stream)(s, 1, s->user);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int rill_h2_session_upgrade_client(rill_h2_session *s, bool head_request, void *stream_user)
{
    if (s->role != RILL_H2_CLIENT || s->nstreams || s->next_local_id != 1)
        return RILL_ERR_STATE;
    struct h2_stream *st = h2_stream_new(s, 1, H2_HALF_CLOSED_LOCAL);
    if (!st)
        return RILL_ERR_NOMEM;
    st->flags |= SF_HEADERS_SENT | SF_END_QUEUED | (head_request ? SF_HEAD : 0);
    st->user = stream_user;
    s->next_local_id = 3;
    return 0;
}
