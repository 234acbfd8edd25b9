/* The client's HTTP/2 protocol table: the rill/h2.h engine in the client role between the
 * connection and the requests (stream user data = the request). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client_internal.h"

static rill_client_stream *stream_of(rill_h2_session *s, int32_t id)
{
    return rill_h2_stream_user(s, id);
}

static bool is_name(const rill_header *f, const char *name)
{
    size_t n = strlen(name);
    return f->name_len == n && memcmp(f->name, name, n) == 0;
}

/* Trailers that arrive while the stream is paused wait in a copy of their own. */
static int hold_trailers(rill_client_stream *st, const rill_header *f, size_t n)
{
    size_t bytes = n * sizeof *f;
    for (size_t i = 0; i < n; i++)
        bytes += f[i].name_len + f[i].value_len + 2;
    uint8_t *mem = malloc(bytes ? bytes : 1);
    if (!mem)
        return RILL_ERR_NOMEM;
    rill_header *h = (rill_header *)(void *)mem;
    uint8_t *p = mem + n * sizeof *f;
    for (size_t i = 0; i < n; i++) {
        h[i] = f[i];
        memcpy(p, f[i].name, f[i].name_len);
        p[f[i].name_len] = '\0';
        h[i].name = p;
        p += f[i].name_len + 1;
        if (f[i].value_len)
            memcpy(p, f[i].value, f[i].value_len);
        p[f[i].value_len] = '\0';
        h[i].value = p;
        p += f[i].value_len + 1;
    }
    free(st->held_trailers);
    st->held_trailers = h;
    st->nheld_trailers = n;
    return RILL_OK;
}

/* Hands what was gathered to on_data_v: each stream's consecutive pieces in one call. Runs
 * before any other event of the read (and at its end), so that order is what on_data gave. */
static void flush_gathered(struct client_conn *cc)
{
    struct iovec iov[CLIENT_GATHER_MAX];
    unsigned i = 0, n = cc->ngathered;
    cc->ngathered = 0;
    while (i < n) {
        rill_client_stream *st = cc->gathered[i].st;
        int k = 0;
        for (; i < n && cc->gathered[i].st == st; i++)
            iov[k++] = (struct iovec){(void *)cc->gathered[i].data, cc->gathered[i].len};
        if (st->cb.on_data_v) /* NULL once cancelled by an earlier call */
            st->cb.on_data_v(st, iov, k, st->user);
    }
}

static int on_headers(rill_h2_session *s, int32_t id, enum rill_h2_headers_kind kind,
                      const rill_header *f, size_t n, uint32_t flags, void *user)
{
    flush_gathered(user);
    rill_client_stream *st = stream_of(s, id);
    if (!st)
        return 0;
    if (kind == RILL_H2_HEADERS_TRAILERS) {
        if (client_stream_holding(st))
            return hold_trailers(st, f, n) < 0 ? RILL_ERR_NOMEM : 0;
        if (st->cb.on_trailers)
            st->cb.on_trailers(st, f, n, st->user);
        return 0;
    }
    int status = 0;
    size_t first = 0; /* the engine checked that pseudo-header fields come first */
    while (first < n && f[first].name_len && f[first].name[0] == ':') {
        if (is_name(&f[first], ":status") && f[first].value_len == 3)
            status = (f[first].value[0] - '0') * 100 + (f[first].value[1] - '0') * 10 +
                     (f[first].value[2] - '0');
        first++;
    }
    if (kind == RILL_H2_HEADERS_INFORMATIONAL) {
        if (status == 100)
            client_stream_continue(st); /* the body may go now */
        if (st->cb.on_informational)
            st->cb.on_informational(st, status, f + first, n - first, st->user);
        return 0;
    }
    if (kind != RILL_H2_HEADERS_RESPONSE)
        return 0;
    st->got_response = true;
    st->head_ended = (flags & RILL_H2_FLAG_END_STREAM) != 0; /* a trailers-only gRPC answer */
    if (st->expect_wait) /* a final answer instead of 100: the body is not sent */
        rill_io_timer_cancel(st->expect_timer);
    if (st->cb.on_response)
        st->cb.on_response(st, status, f + first, n - first, st->user);
    return 0;
}

/* Keeps a piece for on_data_v until the read's end; false when there is no room to keep it. */
static bool gather(struct client_conn *cc, rill_client_stream *st, const uint8_t *data, size_t len)
{
    if (!cc->gathered && !(cc->gathered = malloc(CLIENT_GATHER_MAX * sizeof *cc->gathered)))
        return false;
    if (cc->ngathered == CLIENT_GATHER_MAX)
        flush_gathered(cc);
    cc->gathered[cc->ngathered++] = (struct gathered_data){st, data, len};
    return true;
}

static int on_data(rill_h2_session *s, int32_t id, const uint8_t *data, size_t len, void *user)
{
    struct client_conn *cc = user;
    rill_client_stream *st = stream_of(s, id);
    bool gathered = st && st->cb.on_data_v && !client_stream_holding(st) && len &&
                    gather(cc, st, data, len);
    if (!gathered) {
        flush_gathered(cc); /* a piece of another kind: what came before goes first */
        if (st && client_stream_holding(st)) {
            /* Paused: kept, and not given back to flow control, so the server runs out of
             * window. */
            struct held_data *h = malloc(sizeof *h + len);
            if (!h)
                return RILL_ERR_NOMEM;
            h->next = NULL;
            h->len = len;
            memcpy(h->data, data, len);
            if (st->held_tail)
                st->held_tail->next = h;
            else
                st->held = h;
            st->held_tail = h;
            return 0;
        }
        if (st)
            client_stream_deliver(st, data, len);
    }
    rill_h2_consume(s, id, len); /* delivered (or to be, gathered): also when on_data paused st */
    uint64_t owed = rill_h2_session_recv_owed(s, id);
    if (owed > cc->h2_owed)
        cc->h2_owed = owed;
    return 0;
}

void client_h2_resume(rill_client_stream *st)
{
    struct client_conn *cc = st->state == ST_SENT ? st->conn : NULL;
    while (st->held && !st->paused && !st->cancelled) {
        struct held_data *h = st->held;
        st->held = h->next;
        if (!st->held)
            st->held_tail = NULL;
        client_stream_deliver(st, h->data, h->len);
        if (cc && cc->h2 && !cc->c.closing)
            rill_h2_consume(cc->h2, st->h2_id, h->len); /* WINDOW_UPDATE when half is used */
        free(h);
    }
    if (cc && cc->h2)
        conn_flush(&cc->c);
    if (st->held || st->paused || st->cancelled)
        return;
    if (st->held_trailers) {
        if (st->cb.on_trailers)
            st->cb.on_trailers(st, st->held_trailers, st->nheld_trailers, st->user);
        free(st->held_trailers);
        st->held_trailers = NULL;
        if (st->paused || st->cancelled)
            return;
    }
    if (st->peer_end_due) {
        st->peer_end_due = false;
        st->cb.on_peer_end(st, st->user);
        if (st->paused || st->cancelled)
            return;
    }
    if (st->state == ST_HELD)
        client_stream_finish(st, 0, NULL);
}

static int on_end_stream(rill_h2_session *s, int32_t id, void *user)
{
    flush_gathered(user);
    rill_client_stream *st = stream_of(s, id);
    if (!st)
        return 0;
    st->got_end = true;
    if (st->ws) { /* the WebSocket's transport ends: ours after our last frame */
        client_ws_peer_ended(user, st);
        return 0;
    }
    if (!st->end_handed && st->cb.on_peer_end && strcmp(st->method, "CONNECT") == 0) {
        /* A tunnel's half-close (RFC 8441 §4: END_STREAM ends one direction): the stream stays
         * for our side, which ends it (on_stream_close then finishes st). */
        if (client_stream_holding(st))
            st->peer_end_due = true; /* after what waits: client_h2_resume */
        else
            st->cb.on_peer_end(st, st->user);
        return 0;
    }
    if (!st->end_handed) {
        /* The whole response came before our body ended (say a 417 to Expect: 100-continue, or
         * a server that needs no more): the rest of it is not sent, the stream ends cleanly
         * (RFC 9113 §8.1). The close that follows finishes st. */
        st->expect_wait = false;
        st->end_handed = st->body_ended = true; /* writes say RILL_ERR_STATE from now on */
        rill_h2_submit_rst_stream(s, id, RILL_H2_NO_ERROR);
    }
    return 0;
}

/* Why our side ended the connection with code. */
static void connection_error_text(uint32_t code, char *buf, size_t cap)
{
    if (code == RILL_H2_SETTINGS_TIMEOUT)
        snprintf(buf, cap, "the server did not acknowledge our HTTP/2 SETTINGS in time "
                 "(SETTINGS_TIMEOUT)");
    else
        snprintf(buf, cap, "HTTP/2 connection error (%s)", rill_h2_error_name(code));
}

static int on_stream_close(rill_h2_session *s, int32_t id, uint32_t code, void *user)
{
    flush_gathered(user);
    struct client_conn *cc = user;
    rill_client_stream *st = stream_of(s, id);
    if (!st || cc->c.closing)
        return 0; /* cancelled, or the connection's end speaks for it */
    rill_h2_stream_set_user(s, id, NULL);
    bool goaway = cc->goaway && id > cc->goaway_last_id;
    if (code == RILL_H2_NO_ERROR && st->got_end && client_stream_holding(st)) {
        client_stream_set_state(st, ST_HELD); /* complete, paused: ends after the resume delivers what waits */
        st->conn = NULL;
    } else if (code == RILL_H2_NO_ERROR && st->got_end) {
        client_stream_finish(st, 0, NULL);
    } else if (code == RILL_H2_REFUSED_STREAM && goaway && !st->got_response) {
        /* Never processed (RFC 9113 §6.8): again on the next connection, when that is safe. */
        if (client_method_idempotent(st->method) && !st->body_started && ++st->refusals <= 8) {
            client_stream_requeue(st);
        } else {
            char why[160];
            snprintf(why, sizeof why, "the server refused the request (GOAWAY): %s",
                     st->body_started ? "its streamed body had started, not sent again"
                     : !client_method_idempotent(st->method) ? "not idempotent, not sent again"
                                               : "too many times");
            client_stream_finish(st, RILL_ERR_PROTOCOL, why);
        }
    } else if (code == RILL_H2_REFUSED_STREAM && !st->got_response && !st->body_started &&
               ++st->refusals <= 8) {
        client_stream_requeue(st); /* never processed: safe to send again */
    } else {
        char why[128];
        if (rill_h2_session_error_code(s) >= 0 && !cc->goaway) /* our connection error */
            connection_error_text(code, why, sizeof why);
        else
            snprintf(why, sizeof why, "the server reset the stream (%s)", rill_h2_error_name(code));
        client_stream_finish(st, RILL_ERR_PROTOCOL, why);
    }
    client_dispatch(cc->client); /* a stream slot is free */
    return 0;
}

static int on_goaway(rill_h2_session *s, int32_t last_id, uint32_t code, const uint8_t *debug,
                     size_t debug_len, void *user)
{
    flush_gathered(user);
    struct client_conn *cc = user;
    cc->no_new = true;
    if (!cc->goaway || last_id < cc->goaway_last_id)
        cc->goaway_last_id = last_id;
    cc->goaway = true;
    if (code != RILL_H2_NO_ERROR && !cc->fail_err) {
        cc->fail_err = RILL_ERR_PROTOCOL;
        snprintf(cc->why, sizeof cc->why, "the server ended the HTTP/2 connection (GOAWAY %s)",
                 rill_h2_error_name(code));
    }
    return 0;
}

static void on_data_released(rill_h2_session *s, int32_t id, void *token, void *user)
{
    if (token) /* NULL: an empty END_STREAM */
        client_chunk_released(token);
}

/* A push (enable_push only: else the engine refuses it as a protocol error) goes to the parent
 * request's on_push, which may cancel it; without one it is refused. */
static int on_push_promise(rill_h2_session *s, int32_t id, int32_t promised, const rill_header *f,
                           size_t n, void *user)
{
    flush_gathered(user);
    struct client_conn *cc = user;
    rill_client_stream *parent = stream_of(s, id);
    if (!parent || parent->cancelled || !parent->cb.on_push) {
        rill_h2_submit_rst_stream(s, promised, RILL_H2_CANCEL);
        return 0;
    }
    rill_client_stream *pushed = client_stream_pushed(cc, parent, promised, f, n);
    if (!pushed) {
        rill_h2_submit_rst_stream(s, promised, RILL_H2_CANCEL);
        return 0;
    }
    rill_h2_stream_set_user(s, promised, pushed);
    client_trace(cc->client, "push promised: stream %d (%s) on stream %d", promised, pushed->path, id);
    parent->cb.on_push(parent, pushed, f, n, parent->user);
    return 0;
}

/* The server's SETTINGS may allow more streams than were opened before them: send what waits. */
static int on_settings(rill_h2_session *s, const rill_h2_settings *peer, void *user)
{
    flush_gathered(user);
    (void)s;
    struct client_conn *cc = user;
    cc->h2_settings_seen = true;
    cc->h2_connect_protocol = peer->enable_connect_protocol != 0;
    client_dispatch(cc->client);
    return 0;
}

static const rill_h2_callbacks h2_callbacks = {
    .size = sizeof h2_callbacks,
    .on_settings = on_settings,
    .on_push_promise = on_push_promise,
    .on_headers = on_headers,
    .on_data = on_data,
    .on_end_stream = on_end_stream,
    .on_stream_close = on_stream_close,
    .on_goaway = on_goaway,
    .on_data_released = on_data_released,
};

rill_h2_session *client_h2_session_new(struct client_conn *cc)
{
    rill_h2_options o;
    rill_h2_options_init(&o, RILL_H2_CLIENT);
    o.local.enable_push = cc->client->opt.enable_push ? 1 : 0;
    o.connection_window = 16u << 20; /* a fast download is not held back by the default 64 KiB */
    o.local.initial_window_size = 4u << 20;
    o.now_ms = rill_io_loop_now_ms(cc->client->loop);
    return rill_h2_session_new(RILL_H2_CLIENT, &o, &h2_callbacks, cc);
}

int client_h2_start(struct client_conn *cc)
{
    cc->h2 = client_h2_session_new(cc);
    if (!cc->h2)
        return RILL_ERR_NOMEM;
    cc->tap_out.skip = 24; /* the client preface is not a frame */
    conn_set_proto(&cc->c, &client_h2_proto);
    return RILL_OK;
}

int client_h2_upgraded(struct client_conn *cc, rill_client_stream *st, const uint8_t *data, size_t len)
{
    cc->h2 = cc->h2c_offer;
    cc->h2c_offer = NULL;
    bool head = strcmp(st->method, "HEAD") == 0;
    int rc = rill_h2_session_upgrade_client(cc->h2, head, st);
    if (rc < 0)
        return rc;
    st->h2_id = 1;
    st->proto = "h2";
    cc->client->h1_origin = false; /* one connection multiplexes everything from now on */
    cc->tap_out.skip = 24;
    conn_set_proto(&cc->c, &client_h2_proto); /* our preface and SETTINGS go out with the flush */
    client_trace(cc->client, "upgraded to h2c (101 Switching Protocols)");
    if (len)
        client_h2_proto.data(&cc->c, data, len);
    return RILL_OK;
}

/* Connection-specific fields (RFC 9113 §8.2.2) are dropped; TE only as "trailers". */
static bool h2_forbidden(const rill_header *f)
{
    static const char *const names[] = {"connection", "keep-alive", "proxy-connection",
                                        "transfer-encoding", "upgrade"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (is_name(f, names[i]))
            return true;
    return is_name(f, "te") && !(f->value_len == 8 && memcmp(f->value, "trailers", 8) == 0);
}

static rill_header field(const char *name, const char *value)
{
    return (rill_header){(const uint8_t *)name, strlen(name), (const uint8_t *)value, strlen(value), 0};
}

/* One the client checked when the request was made (method a token, path visible ASCII, scheme
 * ours): the engine need not check it again. */
static rill_header checked_field(const char *name, const char *value)
{
    rill_header h = field(name, value);
    h.flags = RILL_HEADER_VALID;
    return h;
}

/* A request with a :protocol field (RFC 8441 extended CONNECT, the caller's first field). */
static bool extended_connect(const rill_client_stream *st)
{
    return st->nfields && is_name(&st->fields[0], ":protocol");
}

int client_h2_submit(struct client_conn *cc, rill_client_stream *st)
{
    rill_client *cl = cc->client;
    /* Whether the server takes it is in its SETTINGS (RFC 8441 §3): wait for them, as at the
     * stream limit; one that does not take it gets RILL_ERR_UNSUPPORTED from the engine. */
    if (!cc->h2_settings_seen && extended_connect(st))
        return RILL_ERR_LIMIT;
    rill_header small[32];
    size_t cap = st->nfields + 5;
    rill_header *f = cap <= 32 ? small : malloc(cap * sizeof *f);
    if (!f)
        return RILL_ERR_NOMEM;
    size_t n = 0;
    f[n++] = checked_field(":method", st->method);
    f[n++] = checked_field(":scheme", cl->origin.tls ? "https" : "http");
    f[n++] = field(":authority", st->authority); /* a caller's Host is not checked before */
    f[n++] = checked_field(":path", st->path);
    bool has_length = false;
    for (size_t i = 0; i < st->nfields; i++) {
        if (h2_forbidden(&st->fields[i]))
            continue;
        has_length |= is_name(&st->fields[i], "content-length");
        f[n++] = st->fields[i];
    }
    char len[24];
    if (!has_length && !st->streamed &&
        (st->body_len || !strcmp(st->method, "POST") || !strcmp(st->method, "PUT"))) {
        snprintf(len, sizeof len, "%zu", st->body_len);
        f[n++] = field("content-length", len);
    }
    bool no_body = st->body_ended && !st->chunks && !st->ntrailers;
    int32_t id = rill_h2_submit_request(cc->h2, f, n, no_body ? RILL_H2_FLAG_END_STREAM : 0, st);
    if (f != small)
        free(f);
    if (id < 0)
        return id;
    if (st->ws && client_ws_submitted(cc, st, id) < 0) {
        rill_h2_submit_rst_stream(cc->h2, id, RILL_H2_CANCEL);
        return RILL_ERR_NOMEM;
    }
    client_stream_set_state(st, ST_SENT);
    st->conn = cc;
    st->h2_id = id;
    st->proto = "h2";
    st->end_handed = no_body;
    client_stream_sent(st);
    int rc = client_h2_hand_body(cc, st);
    if (rc < 0) {
        rill_h2_submit_rst_stream(cc->h2, id, RILL_H2_CANCEL);
        rill_h2_stream_set_user(cc->h2, id, NULL);
        return rc;
    }
    return RILL_OK;
}

int client_h2_hand_body(struct client_conn *cc, rill_client_stream *st)
{
    /* The engine references each chunk until it reports it released (sent, or dropped): the
     * peer's windows decide when, and the stream's memory stays bounded by what was written. */
    if (st->expect_wait)
        return RILL_OK;
    while (st->next_hand) {
        struct body_chunk *ch = st->next_hand;
        bool last = st->body_ended && !ch->next && !st->ntrailers;
        int rc = rill_h2_submit_data(cc->h2, st->h2_id, ch->data, ch->len,
                                     last ? RILL_H2_FLAG_END_STREAM : 0, ch);
        if (rc < 0)
            return rc;
        ch->refs++;
        st->next_hand = ch->next;
        st->body_started |= st->streamed;
        st->end_handed |= last;
    }
    if (st->body_ended && !st->end_handed) {
        int rc = st->ntrailers
                     ? rill_h2_submit_trailers(cc->h2, st->h2_id, st->trailers, st->ntrailers)
                     : rill_h2_submit_data(cc->h2, st->h2_id, NULL, 0, RILL_H2_FLAG_END_STREAM, NULL);
        if (rc < 0)
            return rc;
        st->end_handed = true;
    }
    return RILL_OK;
}

void client_h2_cancel(struct client_conn *cc, rill_client_stream *st)
{
    rill_h2_stream_set_user(cc->h2, st->h2_id, NULL);
    rill_h2_submit_rst_stream(cc->h2, st->h2_id, RILL_H2_CANCEL);
}

/* ---- the connection layer's view ----------------------------------------------------------- */

static void fail_connection(struct client_conn *cc)
{
    if (!cc->fail_err) {
        int64_t code = rill_h2_session_error_code(cc->h2);
        cc->fail_err = RILL_ERR_PROTOCOL;
        connection_error_text(code < 0 ? RILL_H2_PROTOCOL_ERROR : (uint32_t)code, cc->why,
                              sizeof cc->why);
    }
    rill_io_conn_want_output(cc->c.io); /* the GOAWAY the engine queued */
    conn_close(&cc->c);
}

static void proto_data(struct conn *c, const uint8_t *data, size_t len)
{
    struct client_conn *cc = client_conn_of(c);
    rill_h2_session_tick(cc->h2, rill_io_loop_now_ms(cc->client->loop));
    if (cc->client->trace)
        client_frame_tap(cc->client, &cc->tap_in, "recv", data, len);
    cc->h2_owed = 0;
    int64_t rc = rill_h2_session_recv(cc->h2, data, len);
    flush_gathered(cc); /* data still points into this read */
    if (rc < 0) {
        fail_connection(cc);
        return;
    }
    /* A large body on its way: wake per batch rather than per segment (read_batch.c). */
    rill_io_conn_expect_bytes(cc->c.io, cc->h2_owed);
}

static void proto_drain(struct conn *c)
{
    conn_flush(c);
}

static int proto_output(struct conn *c, struct iovec *iov, int max)
{
    struct client_conn *cc = client_conn_of(c);
    if (!cc->h2)
        return 0;
    bool tracing = cc->client->trace != NULL;
    if (tracing && !cc->out_iov && !(cc->out_iov = malloc(TRACE_IOV * sizeof *cc->out_iov)))
        tracing = false; /* no memory for the trace: the frames still go */
    if (tracing && max > TRACE_IOV)
        max = TRACE_IOV;
    c->in_callback++;
    int n = rill_h2_session_output(cc->h2, iov, max);
    c->in_callback--;
    if (tracing) { /* traced when reported sent: the loop may take only part */
        memcpy(cc->out_iov, iov, (size_t)n * sizeof *iov);
        cc->out_n = n;
    }
    if (n == 0 && !c->closing && !rill_h2_session_want_read(cc->h2))
        conn_close(c); /* GOAWAY exchanged and the last stream done */
    return n;
}

static void proto_output_sent(struct conn *c, size_t n)
{
    struct client_conn *cc = client_conn_of(c);
    if (!cc->h2)
        return;
    size_t left = n;
    for (int i = 0; cc->client->trace && cc->out_iov && i < cc->out_n && left; i++) {
        size_t k = left < cc->out_iov[i].iov_len ? left : cc->out_iov[i].iov_len;
        client_frame_tap(cc->client, &cc->tap_out, "send", cc->out_iov[i].iov_base, k);
        left -= k;
    }
    cc->out_n = 0;
    c->in_callback++;
    rill_h2_session_output_sent(cc->h2, n);
    c->in_callback--;
}

static uint64_t proto_deadline(const struct conn *c)
{
    return rill_h2_session_next_deadline(((const struct client_conn *)c)->h2);
}

/* The engine's clock: SETTINGS ACK deadline, flood buckets. */
static void proto_timeout(struct conn *c, uint64_t now)
{
    struct client_conn *cc = client_conn_of(c);
    rill_h2_session_tick(cc->h2, now);
    if (rill_h2_session_error_code(cc->h2) >= 0 && !rill_h2_session_want_read(cc->h2))
        fail_connection(cc);
}

static bool proto_busy(const struct conn *c)
{
    return rill_h2_session_stream_count(((const struct client_conn *)c)->h2) > 0;
}

static void proto_goodbye(struct conn *c)
{
    struct client_conn *cc = client_conn_of(c);
    rill_h2_submit_goaway(cc->h2, RILL_H2_NO_ERROR, NULL, 0);
    rill_io_conn_want_output(c->io);
}

/* The graceful end (rill_io_loop_shutdown): GOAWAY, then the close once it is written. */
static void proto_shutdown(struct conn *c)
{
    proto_goodbye(c);
    conn_close(c);
}

static void proto_trim(struct conn *c)
{
    rill_h2_session_trim(client_conn_of(c)->h2);
}

static void proto_free(struct conn *c)
{
    struct client_conn *cc = client_conn_of(c);
    rill_h2_session_free(cc->h2); /* releases the bodies it still referenced */
    cc->h2 = NULL;
}

const struct conn_proto client_h2_proto = {
    .name = "h2",
    .data = proto_data,
    .drain = proto_drain,
    .output = proto_output,
    .output_sent = proto_output_sent,
    .deadline = proto_deadline,
    .timeout = proto_timeout,
    .busy = proto_busy,
    .goodbye = proto_goodbye,
    .trim = proto_trim,
    .shutdown = proto_shutdown,
    .free = proto_free,
};
