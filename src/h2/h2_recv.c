/* Receiving: the input state machine (preface, frame headers, payloads), connection and stream
 * errors, receive-window accounting and DATA frames (streamed to the application). Header blocks
 * are in h2_headers.c, control frames in h2_control.c. */
#include "h2/h2_internal.h"


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

bool h2_charge_reset(rill_h2_session *s, uint32_t cost, const char *why)
{
    if (h2_flood_take_n(s, FL_RST, cost))
        return true;
    h2_connection_error(s, RILL_H2_ENHANCE_YOUR_CALM, why);
    return false;
}

void h2_peer_stream_error(rill_h2_session *s, int32_t sid, uint32_t code)
{
    if (h2_charge_reset(s, 1, "stream error flood"))
        h2_stream_error(s, sid, code);
}

void h2_stream_error(rill_h2_session *s, int32_t sid, uint32_t code)
{
    if (s->out_pending > s->prof->max_pending_output) {
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


/* A stream id nobody has used yet (section 5.1.1). */
bool h2_is_idle(const rill_h2_session *s, int32_t id)
{
    if (h2_is_local_id(s, id))
        return id >= s->next_local_id;
    if (s->goaway_sent && id > s->goaway_last_sent)
        return false; /* a stream opened after our GOAWAY: ignored, not an error */
    return id > s->last_peer_id;
}

bool h2_after_goaway(const rill_h2_session *s, int32_t id)
{
    return !h2_is_local_id(s, id) && s->goaway_sent && id > s->goaway_last_sent;
}

static void credit_conn(rill_h2_session *s, uint32_t n)
{
    s->conn_recv_consumed += n;
}

int h2_queue_window_updates(rill_h2_session *s, struct h2_stream *st)
{
    if (h2_dead(s))
        return 0;
    /* Announce consumed bytes once half the window is used: few frames, the peer never stalls. */
    if (s->conn_recv_consumed && s->conn_recv_consumed >= s->prof->conn_window_target / 2) {
        uint8_t p[4];
        h2_put32(p, s->conn_recv_consumed);
        if (h2_out_frame(s, RILL_H2_WINDOW_UPDATE, 0, 0, p, 4) != 0)
            return RILL_ERR_NOMEM;
        s->conn_recv_window += s->conn_recv_consumed;
        s->conn_recv_consumed = 0;
    }
    if (st && st->recv_consumed && (st->state == H2_OPEN || st->state == H2_HALF_CLOSED_LOCAL) &&
        st->recv_consumed >= h2_acked(s)->initial_window_size / 2) {
        uint8_t p[4];
        h2_put32(p, st->recv_consumed);
        if (h2_out_frame(s, RILL_H2_WINDOW_UPDATE, 0, st->id, p, 4) != 0)
            return RILL_ERR_NOMEM;
        st->recv_window += st->recv_consumed;
        st->recv_consumed = 0;
    }
    return 0;
}

int h2_cb_fail(rill_h2_session *s, int rc)
{
    /* The application failed inside a callback: the connection cannot go on consistently. */
    if (!s->fatal)
        s->fatal = rc;
    h2_connection_error(s, RILL_H2_INTERNAL_ERROR, "callback failed");
    return rc;
}

/* ---- end of the peer's side of a stream ---- */

void h2_end_stream_recv(rill_h2_session *s, struct h2_stream *st)
{
    int32_t sid = st->id;
    if (st->content_length >= 0 && !(st->flags & (SF_TUNNEL | SF_RECV_NO_BODY)) &&
        (uint64_t)st->content_length != st->data_received) {
        h2_peer_stream_error(s, sid, RILL_H2_PROTOCOL_ERROR); /* content-length mismatch (8.1.1) */
        return;
    }
    if (H2_CB(s, on_end_stream)) {
        int rc = H2_CB(s, on_end_stream)(s, sid, s->user);
        if (rc < 0) {
            h2_cb_fail(s, rc);
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
        if (h2_is_idle(s, s->fsid)) {
            h2_connection_error(s, RILL_H2_PROTOCOL_ERROR, "DATA on idle stream");
            return;
        }
        int how = h2_closed_lookup(s, s->fsid);
        if (how == H2_CLOSED_NORMAL) {
            h2_connection_error(s, RILL_H2_STREAM_CLOSED, "DATA on closed stream");
            return;
        }
        if (how != H2_CLOSED_LOCAL_RST && !h2_after_goaway(s, s->fsid))
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
            h2_peer_stream_error(s, s->fsid, err);
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
        h2_peer_stream_error(s, st->id, RILL_H2_PROTOCOL_ERROR);
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
            h2_peer_stream_error(s, st->id, RILL_H2_PROTOCOL_ERROR);
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
    if (H2_CB(s, on_data)) {
        int rc = H2_CB(s, on_data)(s, s->fsid, p, n, s->user);
        if (rc < 0) {
            h2_cb_fail(s, rc);
            return;
        }
    }
    if (s->prof->auto_consume)
        rill_h2_consume(s, s->fsid, n);
}

static void data_end(rill_h2_session *s)
{
    struct h2_stream *st = s->data_stream ? h2_stream_find(s, s->fsid) : NULL;
    s->data_stream = NULL;
    h2_queue_window_updates(s, st);
    if (st && (s->fflags & H2_FLAG_END_STREAM))
        h2_end_stream_recv(s, st);
}

static void frame_payload(rill_h2_session *s, const uint8_t *p, size_t len)
{
    switch (s->ftype) {
    case RILL_H2_HEADERS: h2_on_headers_frame(s, p, len); break;
    case RILL_H2_PRIORITY: h2_on_priority(s, p, len); break;
    case RILL_H2_RST_STREAM: h2_on_rst_stream(s, p, len); break;
    case RILL_H2_SETTINGS: h2_on_settings(s, p, len); break;
    case RILL_H2_PUSH_PROMISE: h2_on_push_promise_frame(s, p, len); break;
    case RILL_H2_PING: h2_on_ping(s, p, len); break;
    case RILL_H2_GOAWAY: h2_on_goaway(s, p, len); break;
    case RILL_H2_WINDOW_UPDATE: h2_on_window_update(s, p, len); break;
    case RILL_H2_CONTINUATION: h2_on_continuation(s, p, len); break;
    case RILL_H2_PRIORITY_UPDATE: h2_on_priority_update(s, p, len); break;
    default: break;
    }
}

static bool known_type(uint8_t t)
{
    return t <= RILL_H2_CONTINUATION || t == RILL_H2_PRIORITY_UPDATE;
}

static void frame_done(rill_h2_session *s)
{
    if (!h2_dead(s))
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
    /* The larger of what we announced and what is acknowledged (they differ only while pending). */
    uint32_t max = s->local->max_frame_size;
    if (h2_acked(s)->max_frame_size > max)
        max = h2_acked(s)->max_frame_size;
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
        if (!h2_dead(s) && s->flen == 0) {
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
    while (i < len && !h2_dead(s)) {
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
            if (!h2_dead(s) && s->remaining == s->data_pad) {
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
            if (h2_dead(s))
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
    h2_stall_update(s);
    return (int64_t)len;
}
