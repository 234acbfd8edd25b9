/* Receiving control frames: PRIORITY, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE
 * (RFC 9113 sections 6.3-6.9) and PRIORITY_UPDATE (RFC 9218). */
#include "h2/h2_internal.h"

#define H2_TINY_WINDOW_UPDATE 128u
#define H2_SMALL_WINDOW 16384 /* the smallest SETTINGS_MAX_FRAME_SIZE: one full frame */

/* A server charges tiny increments to a window below one full frame as a flood: each would make
 * it send a frame of a few bytes (the "data dribble"). Not when the window is larger: the
 * increment only gives back credit while full frames can go anyway, as gRPC peers do after each
 * small message they read. A client charges none: a server that announced a tiny window
 * (SETTINGS_INITIAL_WINDOW_SIZE 100, say) can only ever send tiny increments, and an upload to
 * it is legitimate. True when the connection ended. */
static bool tiny_window_flood(rill_h2_session *s, uint32_t inc, int64_t window)
{
    if (inc >= H2_TINY_WINDOW_UPDATE || s->role != RILL_H2_SERVER || window >= H2_SMALL_WINDOW ||
        h2_flood_take(s, FL_WU))
        return false;
    h2_connection_error(s, RILL_H2_ENHANCE_YOUR_CALM, "WINDOW_UPDATE flood");
    return true;
}

static bool output_overloaded(rill_h2_session *s)
{
    /* The peer keeps asking for answers it does not read (section 10.5). */
    if (s->out_pending <= s->prof->max_pending_output)
        return false;
    h2_connection_error(s, RILL_H2_ENHANCE_YOUR_CALM, "peer does not read");
    return true;
}

void h2_on_priority(rill_h2_session *s, const uint8_t *p, size_t len)
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
        h2_peer_stream_error(s, s->fsid, RILL_H2_FRAME_SIZE_ERROR);
        return;
    }
    if ((int32_t)(h2_get32(p) & 0x7fffffffu) == s->fsid)
        h2_peer_stream_error(s, s->fsid, RILL_H2_PROTOCOL_ERROR);
    /* Otherwise RFC 7540 priorities are ignored (RFC 9218 replaces them). */
}

void h2_on_rst_stream(rill_h2_session *s, const uint8_t *p, size_t len)
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
        if (h2_is_idle(s, s->fsid))
            h2_connection_error(s, RILL_H2_PROTOCOL_ERROR, "RST_STREAM on idle stream");
        return;
    }
    /* Rapid reset (CVE-2023-44487): resets cost us work, so they are rationed. */
    if (!h2_charge_reset(s, 1, "RST_STREAM flood"))
        return;
    uint32_t code = h2_get32(p);
    int32_t sid = st->id;
    if (H2_CB(s, on_stream_reset)) {
        int rc = H2_CB(s, on_stream_reset)(s, sid, code, s->user);
        if (rc < 0) {
            h2_cb_fail(s, rc);
            return;
        }
        if (!(st = h2_stream_find(s, sid)))
            return;
    }
    h2_stream_close(s, st, code, H2_CLOSED_PEER_RST);
}

static void apply_local_ack(rill_h2_session *s)
{
    if (s->pending_count == 0)
        return;
    struct h2_pending *pd = s->pend; /* NULL: only our first SETTINGS was outstanding */
    const rill_h2_settings *before = h2_acked(s);
    /* The newest pending settings are `local`; older ones wait in pd->older. */
    rill_h2_settings acked = s->pending_count > 1 ? pd->older[0] : *s->local;
    if (s->pending_count > 1)
        memmove(&pd->older[0], &pd->older[1], (size_t)(s->pending_count - 2) * sizeof pd->older[0]);
    int64_t delta = (int64_t)acked.initial_window_size - before->initial_window_size;
    if (delta) {
        for (uint32_t i = 0; i < s->nbuckets; i++)
            for (struct h2_stream *st = s->tab->buckets[i]; st; st = st->hnext)
                st->recv_window += delta;
    }
    if (s->dec && acked.header_table_size != before->header_table_size)
        rill_hpack_decoder_set_max_table_size(s->dec, acked.header_table_size);
    if (pd)
        pd->acked = acked;
    if (--s->pending_count == 0) {
        h2_free(s, s->pend); /* all acknowledged: h2_acked() is `local` now */
        s->pend = NULL;
    }
    s->settings_deadline = s->pending_count && s->prof->settings_timeout_ms ? s->now + s->prof->settings_timeout_ms
                                                                      : UINT64_MAX;
}

void h2_on_settings(rill_h2_session *s, const uint8_t *p, size_t len)
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
            for (struct h2_stream *st = s->tab->buckets[i]; st; st = st->hnext) {
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
    if (H2_CB(s, on_settings)) {
        int rc = H2_CB(s, on_settings)(s, &s->peer, s->user);
        if (rc < 0)
            h2_cb_fail(s, rc);
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

void h2_on_ping(rill_h2_session *s, const uint8_t *p, size_t len)
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
        if (s->shutdown_notice && memcmp(p, H2_SHUTDOWN_PING, 8) == 0)
            h2_final_goaway(s);
        if (H2_CB(s, on_ping_ack)) {
            int rc = H2_CB(s, on_ping_ack)(s, p, s->user);
            if (rc < 0)
                h2_cb_fail(s, rc);
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

void h2_on_goaway(rill_h2_session *s, const uint8_t *p, size_t len)
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
    if (H2_CB(s, on_goaway)) {
        int rc = H2_CB(s, on_goaway)(s, last, code, p + 8, len - 8, s->user);
        if (rc < 0) {
            h2_cb_fail(s, rc);
            return;
        }
    }
    /* Streams we opened above `last` were never processed: safe to retry elsewhere. */
    for (bool again = true; again;) {
        again = false;
        for (uint32_t i = 0; i < s->nbuckets && !again; i++)
            for (struct h2_stream *st = s->tab->buckets[i]; st; st = st->hnext)
                if (h2_is_local_id(s, st->id) && st->id > last) {
                    h2_stream_close(s, st, RILL_H2_REFUSED_STREAM, H2_CLOSED_LOCAL_RST);
                    again = true;
                    break;
                }
    }
}

void h2_on_window_update(rill_h2_session *s, const uint8_t *p, size_t len)
{
    if (len != 4) {
        h2_connection_error(s, RILL_H2_FRAME_SIZE_ERROR, "WINDOW_UPDATE length");
        return;
    }
    uint32_t inc = h2_get32(p) & 0x7fffffffu;
    if (s->fsid == 0) {
        if (tiny_window_flood(s, inc, s->conn_send_window))
            return;
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
        if (h2_is_idle(s, s->fsid))
            h2_connection_error(s, RILL_H2_PROTOCOL_ERROR, "WINDOW_UPDATE on idle stream");
        return; /* closed: ignore */
    }
    if (st->state == H2_RESERVED_REMOTE) {
        h2_connection_error(s, RILL_H2_PROTOCOL_ERROR, "WINDOW_UPDATE on reserved (remote) stream");
        return;
    }
    if (tiny_window_flood(s, inc, st->send_window))
        return;
    if (inc == 0) {
        h2_peer_stream_error(s, s->fsid, RILL_H2_PROTOCOL_ERROR);
        return;
    }
    if (st->send_window + inc > RILL_H2_MAX_WINDOW) {
        h2_peer_stream_error(s, s->fsid, RILL_H2_FLOW_CONTROL_ERROR);
        return;
    }
    st->send_window += inc;
}

void h2_on_priority_update(rill_h2_session *s, const uint8_t *p, size_t len)
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
        if (h2_is_idle(s, id) && (s->tab || h2_table_grow(s))) {
            /* The request may still be on its way (RFC 9218 section 7.1): keep it for later.
             * (Without memory for the table the advisory signal is simply dropped.) */
            int u = 3, inc = 0;
            h2_parse_priority(p + 4, len - 4, &u, &inc);
            struct h2_table *t = s->tab;
            unsigned k = t->early_prio_next++ % 4u;
            t->early_prio[k].id = id;
            t->early_prio[k].urgency = (uint8_t)u;
            t->early_prio[k].incremental = (uint8_t)inc;
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

