/* Sending: submit calls and header block encoding (HEADERS + CONTINUATION split). DATA frames are
 * produced in h2_schedule.c. */
#include "h2/h2_internal.h"
#include "h2/h2_vouched.h"
#include "hpack/encoder_internal.h"


int h2_ensure_encoder(rill_h2_session *s)
{
    if (s->enc)
        return 0;
    s->enc = rill_hpack_encoder_new(RILL_HPACK_DEFAULT_TABLE_SIZE);
    if (!s->enc)
        return RILL_ERR_NOMEM;
    rill_hpack_encoder_set_peer_max_table_size(s->enc, s->peer.header_table_size);
    if (s->prof->pool) /* the learning is brief (trimmed when idle): pooled like output */
        rill_hpack_encoder_set_pool(s->enc, s->prof->pool->get, s->prof->pool->put, s->prof->pool->ctx);
    return 0;
}

/* One HEADERS frame of a block already encoded (len <= the peer's frame size). */
static int put_block(rill_h2_session *s, int32_t sid, uint8_t flags, const uint8_t *block, size_t len)
{
    uint8_t *p = h2_out_reserve(s, H2_FRAME_HEADER + len);
    if (!p)
        return RILL_ERR_NOMEM;
    memcpy(p + H2_FRAME_HEADER, block, len);
    h2_frame_header(p, (uint32_t)len, RILL_H2_HEADERS, flags | H2_FLAG_END_HEADERS, sid);
    h2_out_commit(s, H2_FRAME_HEADER + len);
    return 0;
}

int h2_encode_headers(rill_h2_session *s, uint8_t type, int32_t sid, int32_t promised, uint8_t flags,
                      const rill_header *fields, size_t count)
{
    return h2_encode_headers_named(s, type, sid, promised, flags, fields, count, NULL);
}

int h2_encode_headers_named(rill_h2_session *s, uint8_t type, int32_t sid, int32_t promised, uint8_t flags,
                            const rill_header *fields, size_t count, const uint64_t *token)
{
    int rc = h2_ensure_encoder(s);
    if (rc)
        return rc;
    size_t extra = type == RILL_H2_PUSH_PROMISE ? 4 : 0;
    size_t mf = s->peer.max_frame_size;
    size_t rlen;
    const uint8_t *again = hpack_encode_replay(s->enc, fields, count, token, &rlen);
    if (again && extra + rlen <= mf) { /* the previous block again: no bound, no encode */
        uint8_t *p = h2_out_reserve(s, H2_FRAME_HEADER + extra + rlen);
        if (!p)
            return RILL_ERR_NOMEM;
        if (extra)
            h2_put32(p + H2_FRAME_HEADER, (uint32_t)promised & 0x7fffffffu);
        memcpy(p + H2_FRAME_HEADER + extra, again, rlen);
        h2_frame_header(p, (uint32_t)(extra + rlen), type, flags | H2_FLAG_END_HEADERS, sid);
        h2_out_commit(s, H2_FRAME_HEADER + extra + rlen);
        return 0;
    }
    size_t bound = rill_hpack_encode_bound(s->enc, fields, count);
    if (bound == SIZE_MAX)
        return RILL_ERR_INVALID_ARG;
    size_t frames = (bound + extra) / mf + 1;
    uint8_t *p = h2_out_reserve(s, bound + extra + frames * H2_FRAME_HEADER);
    if (!p)
        return RILL_ERR_NOMEM;
    size_t blen = hpack_encode_within_bound(s->enc, fields, count, p + H2_FRAME_HEADER + extra, !again, token);
    if (extra)
        h2_put32(p + H2_FRAME_HEADER, (uint32_t)promised & 0x7fffffffu);
    size_t total = extra + blen;
    if (total <= mf) {
        h2_frame_header(p, (uint32_t)total, type, flags | H2_FLAG_END_HEADERS, sid);
        h2_out_commit(s, H2_FRAME_HEADER + total);
        return 0;
    }
    /* Too big for one frame: open gaps for CONTINUATION headers, last fragment first. */
    size_t k = (total + mf - 1) / mf;
    for (size_t i = k - 1; i >= 1; i--) {
        size_t flen = i == k - 1 ? total - i * mf : mf;
        uint8_t *src = p + H2_FRAME_HEADER + i * mf;
        uint8_t *dst = src + i * H2_FRAME_HEADER;
        memmove(dst, src, flen);
        h2_frame_header(dst - H2_FRAME_HEADER, (uint32_t)flen, RILL_H2_CONTINUATION,
                        i == k - 1 ? H2_FLAG_END_HEADERS : 0, sid);
    }
    h2_frame_header(p, (uint32_t)mf, type, flags, sid);
    h2_out_commit(s, total + k * H2_FRAME_HEADER);
    return 0;
}

void h2_end_local(rill_h2_session *s, struct h2_stream *st)
{
    st->flags |= SF_END_QUEUED;
    if (st->state == H2_OPEN)
        h2_stream_set_state(s, st, H2_HALF_CLOSED_LOCAL);
    else if (st->state == H2_HALF_CLOSED_REMOTE)
        h2_stream_close(s, st, RILL_H2_NO_ERROR, H2_CLOSED_NORMAL);
}

static bool closed_for_new_streams(const rill_h2_session *s)
{
    return s->rstate == RS_DEAD || s->goaway_recv || s->goaway_sent;
}

static bool has_protocol_field(const rill_header *fields, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (fields[i].name_len == 9 && memcmp(fields[i].name, ":protocol", 9) == 0)
            return true;
    return false;
}

int32_t rill_h2_submit_request(rill_h2_session *s, const rill_header *fields, size_t count,
                               uint32_t flags, void *stream_user)
{
    if (s->role != RILL_H2_CLIENT)
        return RILL_ERR_INVALID_ARG;
    if (closed_for_new_streams(s) || s->next_local_id <= 0)
        return RILL_ERR_STATE;
    /* Until the server's SETTINGS say how many streams it takes, no more than most servers do
     * (as nghttp2 assumes): a burst sent before them would be refused (and, in numbers, taken for
     * a flood) instead of waiting. */
    uint32_t limit = s->peer.max_concurrent_streams;
    if (!s->peer_settings_seen && limit > H2_STREAMS_BEFORE_SETTINGS)
        limit = H2_STREAMS_BEFORE_SETTINGS;
    if (s->local_active >= limit)
        return RILL_ERR_LIMIT;
    bool ext = has_protocol_field(fields, count);
    if (ext && s->peer.enable_connect_protocol != 1)
        return RILL_ERR_UNSUPPORTED;
    struct h2_msg_info mi;
    if (!h2_message_valid(fields, count, H2_MSG_REQUEST, ext, &mi))
        return RILL_ERR_INVALID_ARG;
    int32_t id = s->next_local_id;
    bool end = flags & RILL_H2_FLAG_END_STREAM;
    struct h2_stream *st = h2_stream_new(s, id, H2_OPEN);
    if (!st)
        return RILL_ERR_NOMEM;
    s->next_local_id = id <= INT32_MAX - 2 ? id + 2 : -1; /* -1: ids exhausted */
    st->user = stream_user;
    if (mi.head)
        st->flags |= SF_HEAD;
    if (mi.connect)
        st->flags |= SF_CONNECT;
    if (mi.urgency >= 0)
        st->urgency = (uint8_t)mi.urgency;
    if (mi.incremental > 0)
        st->flags |= SF_INCREMENTAL;
    int rc = h2_encode_headers(s, RILL_H2_HEADERS, id, 0, end ? H2_FLAG_END_STREAM : 0, fields, count);
    if (rc) {
        h2_stream_close(s, st, RILL_H2_INTERNAL_ERROR, H2_CLOSED_LOCAL_RST);
        return rc;
    }
    st->flags |= SF_HEADERS_SENT;
    if (end)
        h2_end_local(s, st);
    return id;
}

static bool can_send_on(const struct h2_stream *st)
{
    return st && (st->state == H2_OPEN || st->state == H2_HALF_CLOSED_REMOTE) &&
           !(st->flags & (SF_END_QUEUED | SF_END_WANTED));
}

/* status < 0: the fields are checked here and give the status. fields == NULL: the block is the
 * previous one again, named by token (h2_submit_response_replay); 1 when it is not. */
static int submit_response(rill_h2_session *s, int32_t stream_id, int status, const rill_header *fields,
                           size_t count, uint32_t flags, const uint64_t *token)
{
    if (s->role != RILL_H2_SERVER)
        return RILL_ERR_INVALID_ARG;
    if (s->rstate == RS_DEAD)
        return RILL_ERR_STATE;
    struct h2_stream *st = h2_stream_find(s, stream_id);
    if (!st)
        return RILL_ERR_NOT_FOUND;
    bool reserved = st->state == H2_RESERVED_LOCAL;
    if ((!reserved && !can_send_on(st)) || (st->flags & SF_FINAL_SENT))
        return RILL_ERR_STATE;
    if (status < 0) {
        struct h2_msg_info mi;
        if (!h2_message_valid(fields, count, H2_MSG_RESPONSE, false, &mi))
            return RILL_ERR_INVALID_ARG;
        status = mi.status;
    }
    bool end = flags & RILL_H2_FLAG_END_STREAM;
    if (status < 200) {
        if (end)
            return RILL_ERR_INVALID_ARG; /* interim responses never end a stream */
        if (reserved)
            return RILL_ERR_STATE;
    } else {
        /* No content after HEAD, 204 or 304 (RFC 9110 sections 9.3.2, 15.3.5, 15.4.5). */
        if ((st->flags & SF_HEAD) || status == 204 || status == 304) {
            end = true;
            st->flags |= SF_SEND_NO_BODY;
        }
        if ((st->flags & SF_CONNECT) && status < 300)
            st->flags |= SF_TUNNEL;
    }
    int rc;
    if (!fields) { /* a replay: only the flags above (the same for the fallback) change unless it goes out */
        size_t len;
        const uint8_t *block = s->enc ? hpack_encode_replay_token(s->enc, token, &len) : NULL;
        if (!block || reserved || len > s->peer.max_frame_size)
            return 1;
        if ((rc = put_block(s, stream_id, end ? H2_FLAG_END_STREAM : 0, block, len)) != 0)
            return rc;
    } else {
        if (reserved) {
            if (s->local_active >= s->peer.max_concurrent_streams)
                return RILL_ERR_LIMIT;
            h2_stream_set_state(s, st, H2_HALF_CLOSED_REMOTE);
        }
        rc = h2_encode_headers_named(s, RILL_H2_HEADERS, stream_id, 0, end ? H2_FLAG_END_STREAM : 0, fields,
                                     count, token);
        if (rc)
            return rc;
    }
    st->flags |= SF_HEADERS_SENT | SF_RESPONDED;
    if (status >= 200)
        st->flags |= SF_FINAL_SENT;
    if (end)
        h2_end_local(s, st);
    return 0;
}

int rill_h2_submit_response(rill_h2_session *s, int32_t stream_id, const rill_header *fields,
                            size_t count, uint32_t flags)
{
    return submit_response(s, stream_id, -1, fields, count, flags, NULL);
}

int h2_submit_response_vouched(rill_h2_session *s, int32_t stream_id, int status, const rill_header *fields,
                               size_t count, uint32_t flags, const uint64_t *token)
{
    return submit_response(s, stream_id, status, fields, count, flags, token);
}

int h2_submit_response_replay(rill_h2_session *s, int32_t stream_id, int status, const uint64_t token[2],
                              uint32_t flags)
{
    return submit_response(s, stream_id, status, NULL, 0, flags, token);
}

bool h2_body_pending(const struct h2_stream *st)
{
    return st->dq_head || (st->read && !(st->flags & SF_SOURCE_EOF));
}

int rill_h2_submit_trailers(rill_h2_session *s, int32_t stream_id, const rill_header *fields, size_t count)
{
    struct h2_stream *st = h2_stream_find(s, stream_id);
    if (!st)
        return RILL_ERR_NOT_FOUND;
    if (s->rstate == RS_DEAD || !can_send_on(st) || !(st->flags & SF_HEADERS_SENT) || st->trailers ||
        (s->role == RILL_H2_SERVER && !(st->flags & SF_FINAL_SENT)))
        return RILL_ERR_STATE;
    struct h2_msg_info mi;
    if (!h2_message_valid(fields, count, H2_MSG_TRAILERS, false, &mi))
        return RILL_ERR_INVALID_ARG;
    if (!h2_body_pending(st)) {
        int rc = h2_encode_headers(s, RILL_H2_HEADERS, stream_id, 0, H2_FLAG_END_STREAM, fields, count);
        if (rc)
            return rc;
        h2_end_local(s, st);
        return 0;
    }
    /* Body still queued: keep a copy; HPACK must encode in wire order, so encode later. */
    size_t bytes = sizeof(struct h2_trailers) + count * sizeof(rill_header);
    for (size_t i = 0; i < count; i++)
        bytes += fields[i].name_len + fields[i].value_len;
    struct h2_trailers *t = h2_malloc(s, bytes);
    if (!t)
        return RILL_ERR_NOMEM;
    t->count = count;
    t->fields = (rill_header *)(t + 1);
    uint8_t *q = (uint8_t *)(t->fields + count);
    for (size_t i = 0; i < count; i++) {
        t->fields[i] = fields[i];
        memcpy(q, fields[i].name, fields[i].name_len);
        t->fields[i].name = q;
        q += fields[i].name_len;
        if (fields[i].value_len)
            memcpy(q, fields[i].value, fields[i].value_len);
        t->fields[i].value = q;
        q += fields[i].value_len;
    }
    st->trailers = t;
    st->flags |= SF_END_WANTED;
    h2_sched_add(s, st);
    return 0;
}

int rill_h2_submit_data(rill_h2_session *s, int32_t stream_id, const uint8_t *data, size_t len,
                        uint32_t flags, void *token)
{
    struct h2_stream *st = h2_stream_find(s, stream_id);
    if (!st)
        return RILL_ERR_NOT_FOUND;
    if (s->rstate == RS_DEAD || !can_send_on(st) || !(st->flags & SF_HEADERS_SENT) ||
        (s->role == RILL_H2_SERVER && !(st->flags & SF_FINAL_SENT)))
        return RILL_ERR_STATE;
    if (len && (st->flags & SF_SEND_NO_BODY))
        return RILL_ERR_STATE;
    struct h2_dataref *r = s->free_refs;
    if (r)
        s->free_refs = r->next;
    else if (!(r = h2_malloc(s, sizeof *r)))
        return RILL_ERR_NOMEM;
    memset(r, 0, sizeof *r);
    r->data = data;
    r->len = len;
    r->token = token;
    r->stream_id = stream_id;
    r->end_stream = flags & RILL_H2_FLAG_END_STREAM;
    if (st->dq_tail)
        st->dq_tail->next = r;
    else
        st->dq_head = r;
    st->dq_tail = r;
    if (r->end_stream)
        st->flags |= SF_END_WANTED;
    h2_sched_add(s, st);
    return 0;
}

int rill_h2_set_data_source(rill_h2_session *s, int32_t stream_id, rill_h2_read_fn read, void *source_user)
{
    struct h2_stream *st = h2_stream_find(s, stream_id);
    if (!st)
        return RILL_ERR_NOT_FOUND;
    if (!read || s->rstate == RS_DEAD || !can_send_on(st) || !(st->flags & SF_HEADERS_SENT) || st->read ||
        (s->role == RILL_H2_SERVER && !(st->flags & SF_FINAL_SENT)) || (st->flags & SF_SEND_NO_BODY))
        return RILL_ERR_STATE;
    st->read = read;
    st->read_user = source_user;
    st->flags &= (uint16_t)~(SF_SOURCE_EOF | SF_SOURCE_PAUSED);
    h2_sched_add(s, st);
    return 0;
}

/* Stands in st->read while a vectored source is set (st->read non-NULL means "has a source"). */
static int vectored_marker(rill_h2_session *s, int32_t id, uint8_t *buf, size_t max, bool *eof,
                           void *user)
{
    (void)s, (void)id, (void)buf, (void)max, (void)eof, (void)user;
    return RILL_ERR_STATE;
}

int rill_h2_set_data_source_v(rill_h2_session *s, int32_t stream_id, rill_h2_readv_fn readv,
                              void *source_user)
{
    if (!readv)
        return RILL_ERR_STATE;
    int rc = rill_h2_set_data_source(s, stream_id, vectored_marker, source_user);
    if (rc == 0)
        h2_stream_find(s, stream_id)->readv = readv;
    return rc;
}

int rill_h2_resume_data(rill_h2_session *s, int32_t stream_id)
{
    struct h2_stream *st = h2_stream_find(s, stream_id);
    if (!st)
        return RILL_ERR_NOT_FOUND;
    st->flags &= (uint16_t)~SF_SOURCE_PAUSED;
    if (h2_body_pending(st) || st->trailers)
        h2_sched_add(s, st);
    return 0;
}

int32_t rill_h2_submit_push_promise(rill_h2_session *s, int32_t stream_id, const rill_header *fields,
                                    size_t count, void *stream_user)
{
    if (s->role != RILL_H2_SERVER)
        return RILL_ERR_INVALID_ARG;
    struct h2_stream *st = h2_stream_find(s, stream_id);
    if (!st)
        return RILL_ERR_NOT_FOUND;
    /* Only while the client allows it, on a stream it opened that we still send on. */
    if (s->peer.enable_push != 1 || !s->peer_settings_seen || closed_for_new_streams(s) ||
        !can_send_on(st) || (stream_id & 1) == 0 || s->next_local_id <= 0)
        return RILL_ERR_STATE;
    struct h2_msg_info mi;
    if (!h2_message_valid(fields, count, H2_MSG_PUSH_REQUEST, false, &mi))
        return RILL_ERR_INVALID_ARG;
    int32_t pid = s->next_local_id;
    struct h2_stream *ps = h2_stream_new(s, pid, H2_RESERVED_LOCAL);
    if (!ps)
        return RILL_ERR_NOMEM;
    s->next_local_id = pid <= INT32_MAX - 2 ? pid + 2 : -1;
    ps->user = stream_user;
    ps->flags |= SF_HEADERS_RECV; /* the promised request counts as received */
    if (mi.head)
        ps->flags |= SF_HEAD;
    int rc = h2_encode_headers(s, RILL_H2_PUSH_PROMISE, stream_id, pid, 0, fields, count);
    if (rc) {
        h2_stream_close(s, ps, RILL_H2_INTERNAL_ERROR, H2_CLOSED_LOCAL_RST);
        return rc;
    }
    return pid;
}

int rill_h2_submit_rst_stream(rill_h2_session *s, int32_t stream_id, uint32_t error_code)
{
    if (stream_id <= 0)
        return RILL_ERR_INVALID_ARG;
    if (s->rstate == RS_DEAD)
        return RILL_ERR_STATE;
    struct h2_stream *st = h2_stream_find(s, stream_id);
    if (!st)
        return RILL_ERR_NOT_FOUND;
    if (st->state == H2_CLOSED)
        return RILL_ERR_STATE;
    /* A request we reset unanswered is a stream opened and reset without useful work, whichever
     * side's doing: charged like the peer's resets (a MadeYouReset through the application). */
    if (s->role == RILL_H2_SERVER && !h2_is_local_id(s, stream_id) && !(st->flags & SF_RESPONDED) &&
        !h2_charge_reset(s, 1, "stream reset flood"))
        return RILL_ERR_LIMIT;
    h2_stream_error(s, stream_id, error_code);
    return 0;
}

int rill_h2_submit_ping(rill_h2_session *s, const uint8_t *opaque)
{
    static const uint8_t zeros[8];
    if (s->rstate == RS_DEAD)
        return RILL_ERR_STATE;
    return h2_out_frame(s, RILL_H2_PING, 0, 0, opaque ? opaque : zeros, 8);
}

int rill_h2_submit_goaway(rill_h2_session *s, uint32_t error_code, const uint8_t *debug, size_t debug_len)
{
    if (s->rstate == RS_DEAD)
        return RILL_ERR_STATE;
    uint8_t *p = h2_out_reserve(s, H2_FRAME_HEADER + 8 + debug_len);
    if (!p)
        return RILL_ERR_NOMEM;
    h2_frame_header(p, (uint32_t)(8 + debug_len), RILL_H2_GOAWAY, 0, 0);
    h2_put32(p + H2_FRAME_HEADER, (uint32_t)s->last_peer_id);
    h2_put32(p + H2_FRAME_HEADER + 4, error_code);
    if (debug_len)
        memcpy(p + H2_FRAME_HEADER + 8, debug, debug_len);
    h2_out_commit(s, H2_FRAME_HEADER + 8 + debug_len);
    s->goaway_sent = true;
    s->goaway_last_sent = s->last_peer_id;
    s->shutdown_notice = false;
    s->shutdown_deadline = UINT64_MAX;
    if (error_code != RILL_H2_NO_ERROR) {
        /* An error GOAWAY ends the connection: nothing more is read. */
        s->error_code = error_code;
        s->rstate = RS_DEAD;
    }
    return 0;
}

int rill_h2_submit_shutdown(rill_h2_session *s)
{
    if (s->rstate == RS_DEAD || s->goaway_sent)
        return RILL_ERR_STATE;
    /* Step 1 (section 6.8): a GOAWAY with the largest id, so requests in flight are still taken,
     * and a PING whose ACK proves the peer has seen it; step 2 happens on that ACK. */
    uint8_t payload[8];
    h2_put32(payload, RILL_H2_MAX_WINDOW);
    h2_put32(payload + 4, RILL_H2_NO_ERROR);
    int rc = h2_out_frame(s, RILL_H2_GOAWAY, 0, 0, payload, 8);
    if (rc)
        return rc;
    s->goaway_sent = true;
    s->goaway_last_sent = RILL_H2_MAX_WINDOW;
    s->shutdown_notice = true;
    /* A peer that never answers the PING still gets the real GOAWAY after one RTT budget. */
    s->shutdown_deadline = s->now + (s->prof->settings_timeout_ms ? s->prof->settings_timeout_ms : 10000);
    return h2_out_frame(s, RILL_H2_PING, 0, 0, (const uint8_t *)H2_SHUTDOWN_PING, 8);
}

int rill_h2_submit_settings(rill_h2_session *s, const uint16_t *ids, const uint32_t *values, size_t count)
{
    if (s->rstate == RS_DEAD)
        return RILL_ERR_STATE;
    if (s->pending_count == H2_MAX_PENDING_SETTINGS)
        return RILL_ERR_LIMIT;
    uint8_t payload[6 * 16];
    if (count > 16)
        return RILL_ERR_INVALID_ARG;
    for (size_t i = 0; i < count; i++) {
        payload[6 * i] = (uint8_t)(ids[i] >> 8);
        payload[6 * i + 1] = (uint8_t)ids[i];
        h2_put32(payload + 6 * i + 2, values[i]);
    }
    rill_h2_settings next = *s->local;
    if (h2_settings_apply(&next, payload, 6 * count, s->role == RILL_H2_SERVER) != 0)
        return RILL_ERR_INVALID_ARG;
    /* The first change gives the session its own copy of `local` (the profile's is shared). */
    rill_h2_settings *own = s->local == &s->prof->local ? h2_malloc(s, sizeof *own) : (rill_h2_settings *)s->local;
    if (!own)
        return RILL_ERR_NOMEM;
    bool new_own = own != s->local;
    bool new_pend = !s->pend;
    int rc = new_pend && !(s->pend = h2_malloc(s, sizeof *s->pend)) ? RILL_ERR_NOMEM
                                                                   : h2_out_frame(s, RILL_H2_SETTINGS, 0, 0, payload, 6 * count);
    if (rc) {
        if (new_pend) {
            h2_free(s, s->pend);
            s->pend = NULL;
        }
        if (new_own)
            h2_free(s, own);
        return rc;
    }
    /* `local` was the newest pending (or, with none pending, what is in effect). A record made
     * while our first SETTINGS is outstanding starts from the protocol defaults. */
    if (new_pend)
        s->pend->acked = s->pending_count ? h2_protocol_settings : *s->local;
    if (s->pending_count)
        s->pend->older[s->pending_count - 1] = *s->local;
    s->pending_count++;
    *own = next;
    s->local = own;
    if (s->dec) {
        uint32_t lim = next.max_header_list_size;
        rill_hpack_decoder_set_max_header_list_size(s->dec, lim && lim < 1024u * 1024u ? lim : 1024u * 1024u);
    }
    if (s->settings_deadline == UINT64_MAX && s->prof->settings_timeout_ms)
        s->settings_deadline = s->now + s->prof->settings_timeout_ms;
    return 0;
}

int rill_h2_submit_priority_update(rill_h2_session *s, int32_t stream_id, unsigned urgency, bool incremental)
{
    if (s->role != RILL_H2_CLIENT || urgency > 7 || stream_id <= 0)
        return RILL_ERR_INVALID_ARG;
    if (s->rstate == RS_DEAD)
        return RILL_ERR_STATE;
    uint8_t payload[4 + 8];
    h2_put32(payload, (uint32_t)stream_id);
    size_t n = 4;
    payload[n++] = 'u';
    payload[n++] = '=';
    payload[n++] = (uint8_t)('0' + urgency);
    if (incremental) {
        memcpy(payload + n, ", i", 3);
        n += 3;
    }
    struct h2_stream *st = h2_stream_find(s, stream_id);
    if (st) { /* out of its send queue while the queue's key changes */
        bool queued = (st->flags & SF_SCHEDULED) != 0;
        h2_sched_remove(s, st);
        st->urgency = (uint8_t)urgency;
        st->flags = (uint16_t)(incremental ? st->flags | SF_INCREMENTAL : st->flags & ~SF_INCREMENTAL);
        if (queued)
            h2_sched_add(s, st);
    }
    return h2_out_frame(s, RILL_H2_PRIORITY_UPDATE, 0, 0, payload, n);
}

int rill_h2_consume(rill_h2_session *s, int32_t stream_id, size_t n)
{
    struct h2_stream *st = h2_stream_find(s, stream_id);
    if (!st)
        return 0; /* closed: its bytes went back to the connection at close */
    if (n > st->recv_unconsumed)
        n = st->recv_unconsumed;
    st->recv_unconsumed -= (uint32_t)n;
    st->recv_consumed += (uint32_t)n;
    s->conn_recv_consumed += (uint32_t)n;
    return h2_queue_window_updates(s, st);
}
