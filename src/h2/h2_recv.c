/* Receiving: the input state machine (preface, frame headers, payloads), every frame type's rules
 * (RFC 9113 sections 4-6), the stream state checks of section 5.1 and header blocks. */
#include "h2/h2_internal.h"

#define H2_HEADER_LIST_CAP (1024u * 1024u) /* even with "unlimited" announced */
#define H2_TINY_WINDOW_UPDATE 128u

static int code_to_err(uint32_t code)
{
    switch (code) {
    case RILL_H2_FLOW_CONTROL_ERROR: return RILL_ERR_FLOW_CONTROL;
    case RILL_H2_FRAME_SIZE_ERROR: return RILL_ERR_FRAME_SIZE;
    case RILL_H2_COMPRESSION_ERROR: return RILL_ERR_COMPRESSION;
    case RILL_H2_ENHANCE_YOUR_CALM: return RILL_ERR_LIMIT;
    case RILL_H2_SETTINGS_TIMEOUT: return RILL_ERR_TIMEOUT;
    case RILL_H2_INTERNAL_ERROR: return RILL_ERR_NOMEM;
    default: return RILL_ERR_PROTOCOL;
    }
}

void h2_connection_error(rill_h2_session *s, uint32_t code, const char *why)
{
    if (s->rstate == RS_DEAD)
        return;
    uint8_t payload[8 + 64];
    size_t dlen = why ? strlen(why) : 0;
    if (dlen > 64)
        dlen = 64;
    h2_put32(payload, (uint32_t)s->last_peer_id);
    h2_put32(payload + 4, code);
    if (dlen)
        memcpy(payload + 8, why, dlen);
    s->rstate = RS_DEAD; /* before queueing: an allocation failure must not recurse */
    h2_out_frame(s, RILL_H2_GOAWAY, 0, 0, payload, 8 + dlen);
    s->goaway_sent = true;
    s->goaway_last_sent = s->last_peer_id;
    s->error_code = code;
    if (!s->fatal)
        s->fatal = code_to_err(code);
}

void h2_stream_error(rill_h2_session *s, int32_t sid, uint32_t code)
{
    if (s->out_pending > s->max_pending_output) {
        /* The peer provokes resets faster than it reads them (section 10.5). */
        h2_connection_error(s, RILL_H2_ENHANCE_YOUR_CALM, "peer does not read");
        return;
    }
    uint8_t p[4];
    h2_put32(p, code);
    h2_out_frame(s, RILL_H2_RST_STREAM, 0, sid, p, 4);
    struct h2_stream *st = h2_stream_find(s, sid);
    if (st)
        h2_stream_close(s, st, code, H2_CLOSED_LOCAL_RST);
    else if (!h2_closed_lookup(s, sid))
        h2_remember_closed(s, sid, H2_CLOSED_LOCAL_RST);
}

static bool dead(const rill_h2_session *s) { return s->rstate == RS_DEAD; }

/* A stream id nobody has used yet (section 5.1.1). */
static bool is_idle(const rill_h2_session *s, int32_t id)
{
    if (h2_is_local_id(s, id))
        return id >= s->next_local_id;
    if (s->goaway_sent && id > s->goaway_last_sent)
        return false; /* a stream opened after our GOAWAY: ignored, not an error */
    return id > s->last_peer_id;
}

static bool after_goaway(const rill_h2_session *s, int32_t id)
{
    return !h2_is_local_id(s, id) && s->goaway_sent && id > s->goaway_last_sent;
}

static void credit_conn(rill_h2_session *s, uint32_t n)
{
    s->conn_recv_consumed += n;
}

int h2_queue_window_updates(rill_h2_session *s, struct h2_stream *st)
{
    if (dead(s))
        return 0;
    /* Announce consumed bytes once half the window is used: few frames, the peer never stalls. */
    if (s->conn_recv_consumed && s->conn_recv_consumed >= s->conn_window_target / 2) {
        uint8_t p[4];
        h2_put32(p, s->conn_recv_consumed);
        if (h2_out_frame(s, RILL_H2_WINDOW_UPDATE, 0, 0, p, 4) != 0)
            return RILL_ERR_NOMEM;
        s->conn_recv_window += s->conn_recv_consumed;
        s->conn_recv_consumed = 0;
    }
    if (st && st->recv_consumed && (st->state == H2_OPEN || st->state == H2_HALF_CLOSED_LOCAL) &&
        st->recv_consumed >= s->local_acked.initial_window_size / 2) {
        uint8_t p[4];
        h2_put32(p, st->recv_consumed);
        if (h2_out_frame(s, RILL_H2_WINDOW_UPDATE, 0, st->id, p, 4) != 0)
            return RILL_ERR_NOMEM;
        st->recv_window += st->recv_consumed;
        st->recv_consumed = 0;
    }
    return 0;
}

static int cb_fail(rill_h2_session *s, int rc)
{
    /* The application failed inside a callback: the connection cannot go on consistently. */
    if (!s->fatal)
        s->fatal = rc;
    h2_connection_error(s, RILL_H2_INTERNAL_ERROR, "callback failed");
    return rc;
}

/* ---- end of the peer's side of a stream ---- */

static void end_stream_recv(rill_h2_session *s, struct h2_stream *st)
{
    int32_t sid = st->id;
    if (st->content_length >= 0 && !(st->flags & (SF_TUNNEL | SF_RECV_NO_BODY)) &&
        (uint64_t)st->content_length != st->data_received) {
        h2_stream_error(s, sid, RILL_H2_PROTOCOL_ERROR); /* content-length mismatch (8.1.1) */
        return;
    }
    if (s->cb.on_end_stream) {
        int rc = s->cb.on_end_stream(s, sid, s->user);
        if (rc < 0) {
            cb_fail(s, rc);
            return;
        }
    }
    st = h2_stream_find(s, sid); /* the callback may have reset it */
    if (!st)
        return;
    if (st->state == H2_OPEN)
        h2_stream_set_state(s, st, H2_HALF_CLOSED_REMOTE);
    else if (st->state == H2_HALF_CLOSED_LOCAL)
        h2_stream_close(s, st, RILL_H2_NO_ERROR, H2_CLOSED_NORMAL);
}

/* ---- DATA (section 6.1), streamed to the application ---- */

/* The body length of this DATA frame is known: check it against content-length. */
static bool data_length_ok(rill_h2_session *s, struct h2_stream *st, uint32_t body)
{
    st->data_received += body;
    if (body && (st->flags & SF_RECV_NO_BODY))
        return false;
    if (st->content_length >= 0 && !(st->flags & SF_TUNNEL) &&
        st->data_received > (uint64_t)st->content_length)
        return false;
    return true;
}

static void data_begin(rill_h2_session *s)
{
    uint32_t len = s->flen;
    s->data_stream = NULL;
    if (s->fsid == 0) {
        h2_connection_error(s, RILL_H2_PROTOCOL_ERROR, "DATA on stream 0");
        return;
    }
    if ((s->fflags & H2_FLAG_PADDED) && len < 1) {
        h2_connection_error(s, RILL_H2_FRAME_SIZE_ERROR, "DATA too short for padding");
        return;
    }
    if ((int64_t)len > s->conn_recv_window) {
        h2_connection_error(s, RILL_H2_FLOW_CONTROL_ERROR, "connection window exceeded");
        return;
    }
    s->conn_recv_window -= len;
    s->rstate = RS_SKIP; /* unless the stream takes it */
    struct h2_stream *st = h2_stream_find(s, s->fsid);
    uint32_t err = 0;
    if (!st) {
        if (is_idle(s, s->fsid)) {
            h2_connection_error(s, RILL_H2_PROTOCOL_ERROR, "DATA on idle stream");
            return;
        }
        int how = h2_closed_lookup(s, s->fsid);
        if (how == H2_CLOSED_NORMAL) {
            h2_connection_error(s, RILL_H2_STREAM_CLOSED, "DATA on closed stream");
            return;
        }
        if (how != H2_CLOSED_LOCAL_RST && !after_goaway(s, s->fsid))
            err = RILL_H2_STREAM_CLOSED;
    } else if (st->state == H2_RESERVED_LOCAL || st->state == H2_RESERVED_REMOTE) {
        h2_connection_error(s, RILL_H2_PROTOCOL_ERROR, "DATA on reserved stream");
        return;
    } else if (st->state == H2_HALF_CLOSED_REMOTE) {
        err = RILL_H2_STREAM_CLOSED;
    } else if (!(st->flags & SF_HEADERS_RECV) ||
               (s->role == RILL_H2_CLIENT && !(st->flags & SF_FINAL_RECV))) {
        err = RILL_H2_PROTOCOL_ERROR; /* DATA before the (final) header block: malformed */
    } else if ((int64_t)len > st->recv_window) {
        err = RILL_H2_FLOW_CONTROL_ERROR;
    }
    if (!st || err) {
        credit_conn(s, len); /* discarded bytes still count against and return to the window */
        if (err)
            h2_stream_error(s, s->fsid, err);
        h2_queue_window_updates(s, NULL);
        return;
    }
    st->recv_window -= len;
    if (len == 0 && !(s->fflags & H2_FLAG_END_STREAM) && !h2_flood_take(s, FL_EMPTY)) {
        h2_connection_error(s, RILL_H2_ENHANCE_YOUR_CALM, "empty DATA flood");
        return;
    }
    s->data_stream = st;
    s->data_pad = 0;
    if (s->fflags & H2_FLAG_PADDED) {
        s->rstate = RS_DATA_PAD;
        return;
    }
    s->rstate = RS_DATA;
    if (!data_length_ok(s, st, len)) {
        h2_stream_error(s, st->id, RILL_H2_PROTOCOL_ERROR);
        s->data_stream = NULL;
    }
}

static void data_padlen(rill_h2_session *s, uint8_t pad)
{
    struct h2_stream *st = h2_stream_find(s, s->fsid);
    if ((uint32_t)pad > s->flen - 1) {
        h2_connection_error(s, RILL_H2_PROTOCOL_ERROR, "DATA padding too long");
        return;
    }
    s->data_pad = pad;
    /* The pad length byte and the padding are flow-controlled but never reach the app. */
    credit_conn(s, 1u + pad);
    if (st) {
        st->recv_consumed += 1u + pad;
        if (!data_length_ok(s, st, s->flen - 1 - pad)) {
            h2_stream_error(s, st->id, RILL_H2_PROTOCOL_ERROR);
            s->data_stream = NULL;
        }
    }
    s->rstate = RS_DATA;
}

static void data_chunk(rill_h2_session *s, const uint8_t *p, size_t n)
{
    struct h2_stream *st = s->data_stream ? h2_stream_find(s, s->fsid) : NULL;
    if (!st) {
        credit_conn(s, (uint32_t)n);
        return;
    }
    st->recv_unconsumed += (uint32_t)n;
    if (s->cb.on_data) {
        int rc = s->cb.on_data(s, s->fsid, p, n, s->user);
        if (rc < 0) {
            cb_fail(s, rc);
            return;
        }
    }
    if (s->auto_consume)
        rill_h2_consume(s, s->fsid, n);
}

static void data_end(rill_h2_session *s)
{
    struct h2_stream *st = s->data_stream ? h2_stream_find(s, s->fsid) : NULL;
    s->data_stream = NULL;
    h2_queue_window_updates(s, st);
    if (st && (s->fflags & H2_FLAG_END_STREAM))
        end_stream_recv(s, st);
}

/* ---- header blocks ---- */

static int collect_field(void *user, const rill_header *f)
{
    rill_h2_session *s = user;
    struct h2_fieldset *fs = &s->fs;
    if (fs->count == fs->cap) {
        size_t ncap = fs->cap ? fs->cap * 2 : 16;
        rill_header *nf = h2_realloc(s, fs->fields, ncap * sizeof *nf);
        if (!nf)
            return RILL_ERR_NOMEM;
        fs->fields = nf;
        fs->cap = ncap;
    }
    size_t need = f->name_len + f->value_len;
    if (!fs->bytes || fs->used + need > fs->bytes_cap) {
        size_t ncap = fs->bytes_cap ? fs->bytes_cap : 512;
        while (ncap < fs->used + need)
            ncap *= 2;
        uint8_t *nb = h2_realloc(s, fs->bytes, ncap);
        if (!nb)
            return RILL_ERR_NOMEM;
        fs->bytes = nb;
        fs->bytes_cap = ncap;
    }
    /* Offsets for now (the byte buffer may move); pointers once the block is complete. */
    rill_header *d = &fs->fields[fs->count++];
    if (f->name_len)
        memcpy(fs->bytes + fs->used, f->name, f->name_len);
    d->name = (const uint8_t *)(uintptr_t)fs->used;
    d->name_len = f->name_len;
    fs->used += f->name_len;
    if (f->value_len)
        memcpy(fs->bytes + fs->used, f->value, f->value_len);
    d->value = (const uint8_t *)(uintptr_t)fs->used;
    d->value_len = f->value_len;
    fs->used += f->value_len;
    d->flags = f->flags;
    return 0;
}

static int discard_field(void *user, const rill_header *f)
{
    (void)user;
    (void)f;
    return 0;
}

static int ensure_decoder(rill_h2_session *s)
{
    if (s->dec)
        return 0;
    s->dec = rill_hpack_decoder_new(s->local_acked.header_table_size);
    if (!s->dec)
        return RILL_ERR_NOMEM;
    uint32_t lim = s->local.max_header_list_size;
    rill_hpack_decoder_set_max_header_list_size(s->dec, lim && lim < H2_HEADER_LIST_CAP ? lim : H2_HEADER_LIST_CAP);
    return 0;
}

/* Decodes a block; returns RILL_OK, RILL_ERR_HEADER_LIST_TOO_LARGE, or fails the connection and
 * returns another negative code. */
static int decode_block(rill_h2_session *s, const uint8_t *block, size_t len, bool collect)
{
    if (ensure_decoder(s) != 0) {
        h2_connection_error(s, RILL_H2_INTERNAL_ERROR, "out of memory");
        return RILL_ERR_NOMEM;
    }
    s->fs.count = 0;
    s->fs.used = 0;
    int rc = rill_hpack_decode_block(s->dec, block, len, collect ? collect_field : discard_field, s);
    if (rc == RILL_ERR_HEADER_LIST_TOO_LARGE || rc == 0) {
        for (size_t i = 0; i < s->fs.count; i++) {
            s->fs.fields[i].name = s->fs.bytes + (uintptr_t)s->fs.fields[i].name;
            s->fs.fields[i].value = s->fs.bytes + (uintptr_t)s->fs.fields[i].value;
        }
        return rc;
    }
    if (rc == RILL_ERR_NOMEM)
        h2_connection_error(s, RILL_H2_INTERNAL_ERROR, "out of memory");
    else
        h2_connection_error(s, RILL_H2_COMPRESSION_ERROR, "header block");
    return rc < 0 ? rc : RILL_ERR_COMPRESSION;
}

static int deliver_headers(rill_h2_session *s, int32_t sid, enum rill_h2_headers_kind kind, bool end)
{
    if (!s->cb.on_headers)
        return 0;
    int rc = s->cb.on_headers(s, sid, kind, s->fs.fields, s->fs.count, end ? RILL_H2_FLAG_END_STREAM : 0,
                              s->user);
    if (rc < 0)
        cb_fail(s, rc);
    return rc;
}

static void answer_431(rill_h2_session *s, struct h2_stream *st, bool request_ended)
{
    static const uint8_t name[] = ":status", value[] = "431";
    rill_header f = {name, 7, value, 3, 0};
    int32_t sid = st->id;
    st->flags |= SF_FINAL_SENT | SF_HEADERS_SENT | SF_RESPONDED;
    if (h2_encode_headers(s, RILL_H2_HEADERS, sid, 0, H2_FLAG_END_STREAM, &f, 1) != 0)
        return;
    h2_end_local(s, st);
    if (!request_ended)
        h2_stream_error(s, sid, RILL_H2_NO_ERROR); /* stop the request body (section 8.1) */
}

/* Server: a HEADERS frame that opens stream sid. */
static void request_headers(rill_h2_session *s, int32_t sid, const uint8_t *block, size_t len,
                            bool end, bool self_dep)
{
    bool ignore = s->goaway_sent && sid > s->goaway_last_sent;
    uint32_t limit = s->local.max_concurrent_streams < s->local_acked.max_concurrent_streams
                         ? s->local.max_concurrent_streams
                         : s->local_acked.max_concurrent_streams;
    bool refuse = !ignore && s->peer_active >= limit;
    int rc = decode_block(s, block, len, !ignore && !refuse && !self_dep);
    if (dead(s))
        return;
    if (!ignore)
        s->last_peer_id = sid;
    if (ignore)
        return;
    if (self_dep) {
        h2_stream_error(s, sid, RILL_H2_PROTOCOL_ERROR);
        return;
    }
    if (refuse) {
        /* Refused streams cost a decode and a reset each: rationed like resets. */
        if (!h2_flood_take(s, FL_RST)) {
            h2_connection_error(s, RILL_H2_ENHANCE_YOUR_CALM, "refused stream flood");
            return;
        }
        h2_stream_error(s, sid, RILL_H2_REFUSED_STREAM);
        return;
    }
    struct h2_stream *st = h2_stream_new(s, sid, end ? H2_HALF_CLOSED_REMOTE : H2_OPEN);
    if (!st) {
        h2_stream_error(s, sid, RILL_H2_REFUSED_STREAM);
        return;
    }
    st->flags |= SF_HEADERS_RECV;
    if (rc == RILL_ERR_HEADER_LIST_TOO_LARGE) {
        answer_431(s, st, end);
        return;
    }
    struct h2_msg_info mi;
    bool ok = h2_message_valid(s->fs.fields, s->fs.count, H2_MSG_REQUEST,
                               s->local.enable_connect_protocol == 1, &mi);
    if (ok && end && mi.content_length > 0)
        ok = false; /* promised a body that cannot come */
    if (!ok) {
        h2_stream_error(s, sid, RILL_H2_PROTOCOL_ERROR);
        return;
    }
    st->content_length = mi.content_length;
    if (mi.head)
        st->flags |= SF_HEAD | SF_SEND_NO_BODY;
    if (mi.connect)
        st->flags |= SF_CONNECT | SF_TUNNEL;
    if (mi.urgency >= 0)
        st->urgency = (uint8_t)mi.urgency;
    if (mi.incremental > 0)
        st->flags |= SF_INCREMENTAL;
    for (int k = 0; k < 4; k++)
        if (s->early_prio[k].id == sid) {
            /* A PRIORITY_UPDATE overrides the priority header field. */
            st->urgency = s->early_prio[k].urgency;
            st->flags = (uint16_t)(s->early_prio[k].incremental ? st->flags | SF_INCREMENTAL
                                                                  : st->flags & ~SF_INCREMENTAL);
            s->early_prio[k].id = 0;
        }
    if (deliver_headers(s, sid, RILL_H2_HEADERS_REQUEST, end) < 0)
        return;
    if (end && (st = h2_stream_find(s, sid)) != NULL) {
        /* on_end_stream after the request, state already half-closed (remote) */
        if (s->cb.on_end_stream) {
            int r = s->cb.on_end_stream(s, sid, s->user);
            if (r < 0)
                cb_fail(s, r);
        }
    }
}

/* A HEADERS frame on a stream that exists: a response, 1xx, pushed response or trailers. */
static void stream_headers(rill_h2_session *s, struct h2_stream *st, const uint8_t *block, size_t len,
                           bool end, bool self_dep)
{
    int32_t sid = st->id;
    uint32_t err = 0;
    bool conn_err = false;
    enum h2_msg kind = H2_MSG_TRAILERS;
    switch (st->state) {
    case H2_RESERVED_LOCAL: conn_err = true; break;
    case H2_HALF_CLOSED_REMOTE: err = RILL_H2_STREAM_CLOSED; break;
    case H2_RESERVED_REMOTE: kind = H2_MSG_RESPONSE; break;
    default:
        if (s->role == RILL_H2_CLIENT && !(st->flags & SF_FINAL_RECV))
            kind = H2_MSG_RESPONSE;
        else if (!end || (st->flags & SF_TUNNEL))
            err = RILL_H2_PROTOCOL_ERROR; /* trailers must end the stream; tunnels have none */
        break;
    }
    if (conn_err) {
        h2_connection_error(s, RILL_H2_PROTOCOL_ERROR, "HEADERS on reserved (local) stream");
        return;
    }
    if (self_dep && !err)
        err = RILL_H2_PROTOCOL_ERROR;
    int rc = decode_block(s, block, len, !err);
    if (dead(s))
        return;
    if (err) {
        h2_stream_error(s, sid, err);
        return;
    }
    if (rc == RILL_ERR_HEADER_LIST_TOO_LARGE) {
        if (s->role == RILL_H2_SERVER && !(st->flags & SF_HEADERS_SENT))
            answer_431(s, st, end);
        else
            h2_stream_error(s, sid, RILL_H2_CANCEL);
        return;
    }
    struct h2_msg_info mi;
    if (!h2_message_valid(s->fs.fields, s->fs.count, kind, false, &mi)) {
        h2_stream_error(s, sid, RILL_H2_PROTOCOL_ERROR);
        return;
    }
    enum rill_h2_headers_kind ev = RILL_H2_HEADERS_TRAILERS;
    if (kind == H2_MSG_RESPONSE) {
        if (mi.status < 200) {
            if (end) {
                h2_stream_error(s, sid, RILL_H2_PROTOCOL_ERROR); /* 1xx cannot end a stream */
                return;
            }
            ev = RILL_H2_HEADERS_INFORMATIONAL;
        } else {
            ev = RILL_H2_HEADERS_RESPONSE;
            st->flags |= SF_FINAL_RECV;
            st->content_length = mi.content_length;
            if ((st->flags & SF_HEAD) || mi.status == 204 || mi.status == 304)
                st->flags |= SF_RECV_NO_BODY;
            if ((st->flags & SF_CONNECT) && mi.status < 300)
                st->flags |= SF_TUNNEL;
            if (end && st->content_length > 0 && !(st->flags & SF_RECV_NO_BODY)) {
                h2_stream_error(s, sid, RILL_H2_PROTOCOL_ERROR);
                return;
            }
        }
        if (st->state == H2_RESERVED_REMOTE)
            h2_stream_set_state(s, st, H2_HALF_CLOSED_LOCAL);
    }
    st->flags |= SF_HEADERS_RECV;
    if (deliver_headers(s, sid, ev, end) < 0)
        return;
    if (end && (st = h2_stream_find(s, sid)) != NULL)
        end_stream_recv(s, st);
}

static void headers_for_closed(rill_h2_session *s, int32_t sid, const uint8_t *block, size_t len)
{
    int how = h2_closed_lookup(s, sid);
    if (how == H2_CLOSED_NORMAL) {
        h2_connection_error(s, RILL_H2_STREAM_CLOSED, "HEADERS on closed stream");
        return;
    }
    if (how == 0 && !h2_is_local_id(s, sid) && s->role == RILL_H2_SERVER) {
        /* A new stream must have a higher id than every earlier one (section 5.1.1). */
        h2_connection_error(s, RILL_H2_PROTOCOL_ERROR, "stream id not increasing");
        return;
    }
    /* Keep the HPACK state in step even though the fields go nowhere. */
    decode_block(s, block, len, false);
    if (dead(s))
        return;
    if (how == H2_CLOSED_PEER_RST || how == 0)
        h2_stream_error(s, sid, RILL_H2_STREAM_CLOSED);
}

static void headers_complete(rill_h2_session *s, const uint8_t *block, size_t len)
{
    int32_t sid = s->hb_sid;
    bool end = (s->hb_flags & H2_FLAG_END_STREAM) != 0;
    bool self_dep = (s->hb_flags & 0x80u) != 0; /* private marker set while parsing */
    if (s->hb_type == RILL_H2_PUSH_PROMISE) {
        int32_t pid = s->hb_promised;
        if (!h2_stream_find(s, sid)) {
            decode_block(s, block, len, false); /* the associated stream was reset by us */
            if (!dead(s))
                h2_stream_error(s, pid, RILL_H2_CANCEL);
            return;
        }
        /* Promises do not count toward concurrency, so they get their own cap. */
        bool refuse = s->reserved_remote >= s->local.max_concurrent_streams;
        int rc = decode_block(s, block, len, !refuse);
        if (dead(s))
            return;
        if (refuse) {
            if (!h2_flood_take(s, FL_RST))
                h2_connection_error(s, RILL_H2_ENHANCE_YOUR_CALM, "PUSH_PROMISE flood");
            else
                h2_stream_error(s, pid, RILL_H2_REFUSED_STREAM);
            return;
        }
        struct h2_stream *ps = h2_stream_new(s, pid, H2_RESERVED_REMOTE);
        if (!ps) {
            h2_stream_error(s, pid, RILL_H2_REFUSED_STREAM);
            return;
        }
        struct h2_msg_info mi;
        if (rc == RILL_ERR_HEADER_LIST_TOO_LARGE) {
            h2_stream_error(s, pid, RILL_H2_CANCEL);
            return;
        }
        if (!h2_message_valid(s->fs.fields, s->fs.count, H2_MSG_PUSH_REQUEST, false, &mi)) {
            h2_stream_error(s, pid, RILL_H2_PROTOCOL_ERROR);
            return;
        }
        if (mi.head)
            ps->flags |= SF_HEAD;
        ps->flags |= SF_HEADERS_SENT | SF_END_QUEUED;
        if (s->cb.on_push_promise) {
            int r = s->cb.on_push_promise(s, sid, pid, s->fs.fields, s->fs.count, s->user);
            if (r < 0)
                cb_fail(s, r);
        }
        return;
    }
    struct h2_stream *st = h2_stream_find(s, sid);
    if (st) {
        stream_headers(s, st, block, len, end, self_dep);
        return;
    }
    if (s->role == RILL_H2_SERVER && after_goaway(s, sid) && sid > s->last_peer_id) {
        request_headers(s, sid, block, len, end, self_dep); /* decoded for HPACK, then ignored */
        return;
    }
    if (!is_idle(s, sid)) {
        headers_for_closed(s, sid, block, len);
        return;
    }
    if (h2_is_local_id(s, sid) || s->role == RILL_H2_CLIENT) {
        /* Servers open streams only with PUSH_PROMISE; clients only with odd ids. */
        h2_connection_error(s, RILL_H2_PROTOCOL_ERROR, "HEADERS on idle stream");
        return;
    }
    request_headers(s, sid, block, len, end, self_dep);
}

static bool hb_append(rill_h2_session *s, const uint8_t *p, size_t n)
{
    if ((size_t)s->hb_len + n > s->max_header_block) {
        h2_connection_error(s, RILL_H2_ENHANCE_YOUR_CALM, "header block too large");
        return false;
    }
    if (s->hb_len + n > s->hb_cap) {
        size_t ncap = s->hb_cap ? s->hb_cap : 4096;
        while (ncap < s->hb_len + n)
            ncap *= 2;
        uint8_t *nb = h2_realloc(s, s->hb, ncap);
        if (!nb) {
            h2_connection_error(s, RILL_H2_INTERNAL_ERROR, "out of memory");
            return false;
        }
        s->hb = nb;
        s->hb_cap = (uint32_t)ncap;
    }
    if (n)
        memcpy(s->hb + s->hb_len, p, n);
    s->hb_len += (uint32_t)n;
    return true;
}

/* Strips padding (and the priority fields of HEADERS); returns false after a connection error. */
static bool unpad(rill_h2_session *s, const uint8_t **p, size_t *len, size_t fixed, bool *self_dep)
{
    size_t off = 0, pad = 0;
    if (s->fflags & H2_FLAG_PADDED) {
        if (*len < 1) {
            h2_connection_error(s, RILL_H2_FRAME_SIZE_ERROR, "frame too short for padding");
            return false;
        }
        pad = (*p)[0];
        off = 1;
    }
    if (s->ftype == RILL_H2_HEADERS && (s->fflags & H2_FLAG_PRIORITY)) {
        if (*len < off + 5) {
            h2_connection_error(s, RILL_H2_FRAME_SIZE_ERROR, "HEADERS too short for priority");
            return false;
        }
        *self_dep = (int32_t)(h2_get32(*p + off) & 0x7fffffffu) == s->fsid;
        off += 5;
    }
    if (*len < off + fixed || pad > *len - off - fixed) {
        h2_connection_error(s, RILL_H2_PROTOCOL_ERROR, "padding exceeds payload");
        return false;
    }
    *p += off;
    *len -= off + pad;
    return true;
}

static void on_headers_frame(rill_h2_session *s, const uint8_t *p, size_t len)
{
    if (s->fsid == 0) {
        h2_connection_error(s, RILL_H2_PROTOCOL_ERROR, "HEADERS on stream 0");
        return;
    }
    bool self_dep = false;
    if (!unpad(s, &p, &len, 0, &self_dep))
        return;
    if (!(s->fflags & H2_FLAG_END_STREAM) && len == 0 && !h2_flood_take(s, FL_EMPTY)) {
        h2_connection_error(s, RILL_H2_ENHANCE_YOUR_CALM, "empty HEADERS flood");
        return;
    }
    s->hb_sid = s->fsid;
    s->hb_type = RILL_H2_HEADERS;
    s->hb_flags = (uint8_t)((s->fflags & H2_FLAG_END_STREAM) | (self_dep ? 0x80u : 0));
    s->hb_conts = 0;
    s->hb_len = 0;
    if (s->fflags & H2_FLAG_END_HEADERS) {
        headers_complete(s, p, len); /* in place: no copy */
        return;
    }
    if (hb_append(s, p, len))
        s->expect_continuation = true;
}

static void on_push_promise_frame(rill_h2_session *s, const uint8_t *p, size_t len)
{
    if (s->role == RILL_H2_SERVER) {
        h2_connection_error(s, RILL_H2_PROTOCOL_ERROR, "PUSH_PROMISE from a client");
        return;
    }
    if (s->local_acked.enable_push == 0) {
        h2_connection_error(s, RILL_H2_PROTOCOL_ERROR, "push disabled");
        return;
    }
    if (s->fsid == 0) {
        h2_connection_error(s, RILL_H2_PROTOCOL_ERROR, "PUSH_PROMISE on stream 0");
        return;
    }
    bool unused = false;
    if (!unpad(s, &p, &len, 4, &unused))
        return;
    int32_t pid = (int32_t)(h2_get32(p) & 0x7fffffffu);
    struct h2_stream *st = h2_stream_find(s, s->fsid);
    /* A promise on a stream we reset was in flight: it still reserves the promised stream
     * (section 5.1), which headers_complete then cancels. */
    bool we_reset = !st && h2_closed_lookup(s, s->fsid) == H2_CLOSED_LOCAL_RST;
    if (!we_reset && (!st || (st->state != H2_OPEN && st->state != H2_HALF_CLOSED_LOCAL))) {
        h2_connection_error(s, RILL_H2_PROTOCOL_ERROR, "PUSH_PROMISE on a stream that cannot carry it");
        return;
    }
    if (pid == 0 || (pid & 1) || !is_idle(s, pid)) {
        h2_connection_error(s, RILL_H2_PROTOCOL_ERROR, "bad promised stream id");
        return;
    }
    s->last_peer_id = pid;
    s->hb_sid = s->fsid;
    s->hb_promised = pid;
    s->hb_type = RILL_H2_PUSH_PROMISE;
    s->hb_flags = 0;
    s->hb_conts = 0;
    s->hb_len = 0;
    p += 4;
    len -= 4;
    if (s->fflags & H2_FLAG_END_HEADERS) {
        headers_complete(s, p, len);
        return;
    }
    if (hb_append(s, p, len))
        s->expect_continuation = true;
}

static void on_continuation(rill_h2_session *s, const uint8_t *p, size_t len)
{
    if (!s->expect_continuation) {
        h2_connection_error(s, RILL_H2_PROTOCOL_ERROR, "CONTINUATION without a header block");
        return;
    }
    if (++s->hb_conts > s->max_continuations) {
        h2_connection_error(s, RILL_H2_ENHANCE_YOUR_CALM, "CONTINUATION flood");
        return;
    }
    if (!hb_append(s, p, len))
        return;
    if (s->fflags & H2_FLAG_END_HEADERS) {
        s->expect_continuation = false;
        headers_complete(s, s->hb, s->hb_len);
    }
}

/* ---- control frames ---- */

static bool output_overloaded(rill_h2_session *s)
{
    /* The peer keeps asking for answers it does not read (section 10.5). */
    if (s->out_pending <= s->max_pending_output)
        return false;
    h2_connection_error(s, RILL_H2_ENHANCE_YOUR_CALM, "peer does not read");
    return true;
}

static void on_priority(rill_h2_session *s, const uint8_t *p, size_t len)
{
    if (s->fsid == 0) {
        h2_connection_error(s, RILL_H2_PROTOCOL_ERROR, "PRIORITY on stream 0");
        return;
    }
    if (!h2_flood_take(s, FL_PRIORITY)) {
        h2_connection_error(s, RILL_H2_ENHANCE_YOUR_CALM, "PRIORITY flood");
        return;
    }
    if (len != 5) {
        h2_stream_error(s, s->fsid, RILL_H2_FRAME_SIZE_ERROR);
        return;
    }
    if ((int32_t)(h2_get32(p) & 0x7fffffffu) == s->fsid)
        h2_stream_error(s, s->fsid, RILL_H2_PROTOCOL_ERROR);
    /* Otherwise RFC 7540 priorities are ignored (RFC 9218 replaces them). */
}

static void on_rst_stream(rill_h2_session *s, const uint8_t *p, size_t len)
{
    if (s->fsid == 0) {
        h2_connection_error(s, RILL_H2_PROTOCOL_ERROR, "RST_STREAM on stream 0");
        return;
    }
    if (len != 4) {
        h2_connection_error(s, RILL_H2_FRAME_SIZE_ERROR, "RST_STREAM length");
        return;
    }
    struct h2_stream *st = h2_stream_find(s, s->fsid);
    if (!st) {
        if (is_idle(s, s->fsid))
            h2_connection_error(s, RILL_H2_PROTOCOL_ERROR, "RST_STREAM on idle stream");
        return;
    }
    /* Rapid reset (CVE-2023-44487): resets cost us work, so they are rationed. */
    if (!h2_flood_take(s, FL_RST)) {
        h2_connection_error(s, RILL_H2_ENHANCE_YOUR_CALM, "RST_STREAM flood");
        return;
    }
    h2_stream_close(s, st, h2_get32(p), H2_CLOSED_PEER_RST);
}

static void apply_local_ack(rill_h2_session *s)
{
    if (s->pending_count == 0)
        return;
    rill_h2_settings acked = s->pending[0];
    memmove(&s->pending[0], &s->pending[1], (size_t)(s->pending_count - 1) * sizeof s->pending[0]);
    s->pending_count--;
    int64_t delta = (int64_t)acked.initial_window_size - s->local_acked.initial_window_size;
    if (delta) {
        for (uint32_t i = 0; i < s->nbuckets; i++)
            for (struct h2_stream *st = s->buckets[i]; st; st = st->hnext)
                st->recv_window += delta;
    }
    if (s->dec && acked.header_table_size != s->local_acked.header_table_size)
        rill_hpack_decoder_set_max_table_size(s->dec, acked.header_table_size);
    s->local_acked = acked;
    s->settings_deadline = s->pending_count && s->settings_timeout_ms ? s->now + s->settings_timeout_ms
                                                                      : UINT64_MAX;
}

static void on_settings(rill_h2_session *s, const uint8_t *p, size_t len)
{
    if (s->fsid != 0) {
        h2_connection_error(s, RILL_H2_PROTOCOL_ERROR, "SETTINGS on a stream");
        return;
    }
    if (s->fflags & H2_FLAG_ACK) {
        if (len != 0)
            h2_connection_error(s, RILL_H2_FRAME_SIZE_ERROR, "SETTINGS ACK with payload");
        else
            apply_local_ack(s);
        return;
    }
    if (len % 6 != 0) {
        h2_connection_error(s, RILL_H2_FRAME_SIZE_ERROR, "SETTINGS length");
        return;
    }
    if (s->peer_settings_seen && !h2_flood_take(s, FL_SETTINGS)) {
        h2_connection_error(s, RILL_H2_ENHANCE_YOUR_CALM, "SETTINGS flood");
        return;
    }
    if (output_overloaded(s))
        return;
    uint32_t old_window = s->peer.initial_window_size;
    uint32_t err = h2_settings_apply(&s->peer, p, len, s->role == RILL_H2_CLIENT);
    if (err) {
        h2_connection_error(s, err, "bad SETTINGS value");
        return;
    }
    int64_t delta = (int64_t)s->peer.initial_window_size - old_window;
    if (delta) {
        /* Applies to every stream's sending window; may go negative (section 6.9.2). */
        for (uint32_t i = 0; i < s->nbuckets; i++)
            for (struct h2_stream *st = s->buckets[i]; st; st = st->hnext) {
                st->send_window += delta;
                if (st->send_window > RILL_H2_MAX_WINDOW) {
                    h2_connection_error(s, RILL_H2_FLOW_CONTROL_ERROR, "window overflow");
                    return;
                }
            }
    }
    if (s->enc)
        rill_hpack_encoder_set_peer_max_table_size(s->enc, s->peer.header_table_size);
    h2_out_frame(s, RILL_H2_SETTINGS, H2_FLAG_ACK, 0, NULL, 0);
    s->peer_settings_seen = true;
    if (s->cb.on_settings) {
        int rc = s->cb.on_settings(s, &s->peer, s->user);
        if (rc < 0)
            cb_fail(s, rc);
    }
}

void h2_final_goaway(rill_h2_session *s)
{
    s->shutdown_notice = false;
    s->shutdown_deadline = UINT64_MAX;
    uint8_t payload[8];
    h2_put32(payload, (uint32_t)s->last_peer_id);
    h2_put32(payload + 4, RILL_H2_NO_ERROR);
    h2_out_frame(s, RILL_H2_GOAWAY, 0, 0, payload, 8);
    s->goaway_last_sent = s->last_peer_id;
}

static void on_ping(rill_h2_session *s, const uint8_t *p, size_t len)
{
    if (s->fsid != 0) {
        h2_connection_error(s, RILL_H2_PROTOCOL_ERROR, "PING on a stream");
        return;
    }
    if (len != 8) {
        h2_connection_error(s, RILL_H2_FRAME_SIZE_ERROR, "PING length");
        return;
    }
    if (s->fflags & H2_FLAG_ACK) {
        if (s->shutdown_notice && memcmp(p, s->shutdown_ping, 8) == 0)
            h2_final_goaway(s);
        if (s->cb.on_ping_ack) {
            int rc = s->cb.on_ping_ack(s, p, s->user);
            if (rc < 0)
                cb_fail(s, rc);
        }
        return;
    }
    if (!h2_flood_take(s, FL_PING)) {
        h2_connection_error(s, RILL_H2_ENHANCE_YOUR_CALM, "PING flood");
        return;
    }
    if (output_overloaded(s))
        return;
    h2_out_frame(s, RILL_H2_PING, H2_FLAG_ACK, 0, p, 8);
}

static void on_goaway(rill_h2_session *s, const uint8_t *p, size_t len)
{
    if (s->fsid != 0) {
        h2_connection_error(s, RILL_H2_PROTOCOL_ERROR, "GOAWAY on a stream");
        return;
    }
    if (len < 8) {
        h2_connection_error(s, RILL_H2_FRAME_SIZE_ERROR, "GOAWAY length");
        return;
    }
    int32_t last = (int32_t)(h2_get32(p) & 0x7fffffffu);
    uint32_t code = h2_get32(p + 4);
    s->goaway_recv = true;
    s->goaway_last_recv = last;
    if (code != RILL_H2_NO_ERROR)
        s->error_code = code;
    if (s->cb.on_goaway) {
        int rc = s->cb.on_goaway(s, last, code, p + 8, len - 8, s->user);
        if (rc < 0) {
            cb_fail(s, rc);
            return;
        }
    }
    /* Streams we opened above `last` were never processed: safe to retry elsewhere. */
    for (bool again = true; again;) {
        again = false;
        for (uint32_t i = 0; i < s->nbuckets && !again; i++)
            for (struct h2_stream *st = s->buckets[i]; st; st = st->hnext)
                if (h2_is_local_id(s, st->id) && st->id > last) {
                    h2_stream_close(s, st, RILL_H2_REFUSED_STREAM, H2_CLOSED_LOCAL_RST);
                    again = true;
                    break;
                }
    }
}

static void on_window_update(rill_h2_session *s, const uint8_t *p, size_t len)
{
    if (len != 4) {
        h2_connection_error(s, RILL_H2_FRAME_SIZE_ERROR, "WINDOW_UPDATE length");
        return;
    }
    uint32_t inc = h2_get32(p) & 0x7fffffffu;
    if (inc < H2_TINY_WINDOW_UPDATE && !h2_flood_take(s, FL_WU)) {
        h2_connection_error(s, RILL_H2_ENHANCE_YOUR_CALM, "WINDOW_UPDATE flood");
        return;
    }
    if (s->fsid == 0) {
        if (inc == 0) {
            h2_connection_error(s, RILL_H2_PROTOCOL_ERROR, "zero WINDOW_UPDATE");
            return;
        }
        if (s->conn_send_window + inc > RILL_H2_MAX_WINDOW) {
            h2_connection_error(s, RILL_H2_FLOW_CONTROL_ERROR, "connection window overflow");
            return;
        }
        s->conn_send_window += inc;
        return;
    }
    struct h2_stream *st = h2_stream_find(s, s->fsid);
    if (!st) {
        if (is_idle(s, s->fsid))
            h2_connection_error(s, RILL_H2_PROTOCOL_ERROR, "WINDOW_UPDATE on idle stream");
        return; /* closed: ignore */
    }
    if (st->state == H2_RESERVED_REMOTE) {
        h2_connection_error(s, RILL_H2_PROTOCOL_ERROR, "WINDOW_UPDATE on reserved (remote) stream");
        return;
    }
    if (inc == 0) {
        h2_stream_error(s, s->fsid, RILL_H2_PROTOCOL_ERROR);
        return;
    }
    if (st->send_window + inc > RILL_H2_MAX_WINDOW) {
        h2_stream_error(s, s->fsid, RILL_H2_FLOW_CONTROL_ERROR);
        return;
    }
    st->send_window += inc;
}

static void on_priority_update(rill_h2_session *s, const uint8_t *p, size_t len)
{
    if (s->role == RILL_H2_CLIENT || s->fsid != 0) {
        h2_connection_error(s, RILL_H2_PROTOCOL_ERROR, "PRIORITY_UPDATE misplaced");
        return;
    }
    if (len < 4) {
        h2_connection_error(s, RILL_H2_FRAME_SIZE_ERROR, "PRIORITY_UPDATE length");
        return;
    }
    int32_t id = (int32_t)(h2_get32(p) & 0x7fffffffu);
    if (id == 0 || h2_is_local_id(s, id)) {
        h2_connection_error(s, RILL_H2_PROTOCOL_ERROR, "PRIORITY_UPDATE stream id");
        return;
    }
    if (!h2_flood_take(s, FL_PRIORITY)) {
        h2_connection_error(s, RILL_H2_ENHANCE_YOUR_CALM, "PRIORITY_UPDATE flood");
        return;
    }
    struct h2_stream *st = h2_stream_find(s, id);
    if (!st) {
        if (is_idle(s, id)) {
            /* The request may still be on its way (RFC 9218 section 7.1): keep it for later. */
            int u = 3, inc = 0;
            h2_parse_priority(p + 4, len - 4, &u, &inc);
            unsigned k = s->early_prio_next++ % 4u;
            s->early_prio[k].id = id;
            s->early_prio[k].urgency = (uint8_t)u;
            s->early_prio[k].incremental = (uint8_t)inc;
        }
        return; /* closed: ignored */
    }
    int u = st->urgency, inc = (st->flags & SF_INCREMENTAL) ? 1 : 0;
    h2_parse_priority(p + 4, len - 4, &u, &inc);
    bool queued = (st->flags & SF_SCHEDULED) != 0;
    h2_sched_remove(s, st);
    st->urgency = (uint8_t)u;
    st->flags = (uint16_t)(inc ? st->flags | SF_INCREMENTAL : st->flags & ~SF_INCREMENTAL);
    if (queued)
        h2_sched_add(s, st);
}

static void frame_payload(rill_h2_session *s, const uint8_t *p, size_t len)
{
    switch (s->ftype) {
    case RILL_H2_HEADERS: on_headers_frame(s, p, len); break;
    case RILL_H2_PRIORITY: on_priority(s, p, len); break;
    case RILL_H2_RST_STREAM: on_rst_stream(s, p, len); break;
    case RILL_H2_SETTINGS: on_settings(s, p, len); break;
    case RILL_H2_PUSH_PROMISE: on_push_promise_frame(s, p, len); break;
    case RILL_H2_PING: on_ping(s, p, len); break;
    case RILL_H2_GOAWAY: on_goaway(s, p, len); break;
    case RILL_H2_WINDOW_UPDATE: on_window_update(s, p, len); break;
    case RILL_H2_CONTINUATION: on_continuation(s, p, len); break;
    case RILL_H2_PRIORITY_UPDATE: on_priority_update(s, p, len); break;
    default: break;
    }
}

static bool known_type(uint8_t t)
{
    return t <= RILL_H2_CONTINUATION || t == RILL_H2_PRIORITY_UPDATE;
}

static void frame_done(rill_h2_session *s)
{
    if (!dead(s))
        s->rstate = RS_HEADER;
    s->have = 0;
}

static void frame_header(rill_h2_session *s)
{
    const uint8_t *h = s->hdr;
    s->flen = (uint32_t)h[0] << 16 | (uint32_t)h[1] << 8 | h[2];
    s->ftype = h[3];
    s->fflags = h[4];
    s->fsid = (int32_t)(h2_get32(h + 5) & 0x7fffffffu); /* the reserved bit is ignored */
    s->remaining = s->flen;
    s->have = 0;
    uint32_t max = s->local.max_frame_size > s->local_acked.max_frame_size ? s->local.max_frame_size
                                                                          : s->local_acked.max_frame_size;
    if (s->flen > max) {
        h2_connection_error(s, RILL_H2_FRAME_SIZE_ERROR, "frame larger than SETTINGS_MAX_FRAME_SIZE");
        return;
    }
    if (s->expect_continuation && (s->ftype != RILL_H2_CONTINUATION || s->fsid != s->hb_sid)) {
        h2_connection_error(s, RILL_H2_PROTOCOL_ERROR, "header block interrupted");
        return;
    }
    if (!s->peer_settings_seen && (s->ftype != RILL_H2_SETTINGS || (s->fflags & H2_FLAG_ACK))) {
        h2_connection_error(s, RILL_H2_PROTOCOL_ERROR, "preface must start with SETTINGS");
        return;
    }
    if (s->ftype == RILL_H2_DATA) {
        data_begin(s);
        if (!dead(s) && s->flen == 0) {
            data_end(s);
            frame_done(s);
        }
        return;
    }
    if (!known_type(s->ftype)) {
        s->rstate = RS_SKIP; /* unknown frame types are ignored (section 5.5) */
    } else {
        s->rstate = RS_PAYLOAD;
    }
    if (s->flen == 0) {
        if (s->rstate == RS_PAYLOAD)
            frame_payload(s, (const uint8_t *)"", 0);
        frame_done(s);
    }
}

int64_t rill_h2_session_recv(rill_h2_session *s, const uint8_t *data, size_t len)
{
    size_t i = 0;
    while (i < len && !dead(s)) {
        size_t avail = len - i;
        switch (s->rstate) {
        case RS_PREFACE: {
            size_t n = H2_PREFACE_LEN - s->have;
            if (n > avail)
                n = avail;
            static const char preface[] = H2_PREFACE;
            if (memcmp(data + i, preface + s->have, n) != 0) {
                h2_connection_error(s, RILL_H2_PROTOCOL_ERROR, "bad connection preface");
                break;
            }
            s->have += (uint32_t)n;
            i += n;
            if (s->have == H2_PREFACE_LEN) {
                s->have = 0;
                s->rstate = RS_HEADER;
            }
            break;
        }
        case RS_HEADER: {
            size_t n = H2_FRAME_HEADER - s->have;
            if (n > avail)
                n = avail;
            if (s->have == 0 && avail >= H2_FRAME_HEADER) {
                memcpy(s->hdr, data + i, H2_FRAME_HEADER);
                n = H2_FRAME_HEADER;
            } else {
                memcpy(s->hdr + s->have, data + i, n);
            }
            s->have += (uint32_t)n;
            i += n;
            if (s->have == H2_FRAME_HEADER)
                frame_header(s);
            break;
        }
        case RS_PAYLOAD:
            if (s->have == 0 && avail >= s->flen) {
                /* The whole payload is in the caller's buffer: parse it in place. */
                frame_payload(s, data + i, s->flen);
                i += s->flen;
                frame_done(s);
                break;
            }
            if (s->pbuf_cap < s->flen) {
                uint8_t *nb = h2_realloc(s, s->pbuf, s->flen);
                if (!nb) {
                    h2_connection_error(s, RILL_H2_INTERNAL_ERROR, "out of memory");
                    break;
                }
                s->pbuf = nb;
                s->pbuf_cap = s->flen;
            }
            {
                size_t n = s->flen - s->have;
                if (n > avail)
                    n = avail;
                memcpy(s->pbuf + s->have, data + i, n);
                s->have += (uint32_t)n;
                i += n;
                if (s->have == s->flen) {
                    frame_payload(s, s->pbuf, s->flen);
                    frame_done(s);
                }
            }
            break;
        case RS_DATA_PAD:
            s->remaining--;
            data_padlen(s, data[i++]);
            if (!dead(s) && s->remaining == s->data_pad) {
                s->rstate = RS_SKIP;
                if (s->remaining == 0) {
                    data_end(s);
                    frame_done(s);
                }
            }
            break;
        case RS_DATA: {
            size_t body = s->remaining - s->data_pad;
            size_t n = body < avail ? body : avail;
            if (n)
                data_chunk(s, data + i, n);
            i += n;
            s->remaining -= (uint32_t)n;
            if (dead(s))
                break;
            if (s->remaining == s->data_pad) {
                if (s->remaining) {
                    s->rstate = RS_SKIP;
                } else {
                    data_end(s);
                    frame_done(s);
                }
            }
            break;
        }
        case RS_SKIP: {
            size_t n = s->remaining < avail ? s->remaining : avail;
            i += n;
            s->remaining -= (uint32_t)n;
            if (s->remaining == 0) {
                if (s->ftype == RILL_H2_DATA)
                    data_end(s);
                frame_done(s);
            }
            break;
        }
        default: i = len; break;
        }
    }
    if (s->fatal) {
        h2_close_all_on_error(s);
        return s->fatal;
    }
    return (int64_t)len;
}
