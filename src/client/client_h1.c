/* The client's HTTP/1.1 protocol table: one request at a time on a keep-alive connection (the
 * client's pool has several of them, client_pool.c), or with max_pipeline a few bodiless GETs and
 * HEADs sent behind it, their answers read in order; the response read with the src/h1 parser in
 * the RESPONSE role (Content-Length, chunked, until close). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "client/client_internal.h"

int client_h1_start(struct client_conn *cc)
{
    cc->h1 = rill_h1_parser_new(RILL_H1_RESPONSE, NULL);
    if (!cc->h1)
        return RILL_ERR_NOMEM;
    conn_set_proto(&cc->c, &client_h1_proto);
    return RILL_OK;
}

static rill_header field(const char *name, const char *value)
{
    return (rill_header){(const uint8_t *)name, strlen(name), (const uint8_t *)value, strlen(value), 0};
}

/* base64url without padding (RFC 7540 §3.2.1's HTTP2-Settings): OpenSSL's base64 (as the
 * WebSocket handshake uses) with the URL alphabet's two letters and the padding dropped. out has
 * room for 4 * ((len + 2) / 3) + 1 bytes. */
static void base64url(const uint8_t *in, size_t len, char *out)
{
    int n = EVP_EncodeBlock((unsigned char *)out, in, (int)len);
    while (n > 0 && out[n - 1] == '=')
        n--;
    out[n] = '\0';
    for (int i = 0; i < n; i++)
        out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
}

/* The h2c Upgrade goes on the connection's first request when it has no body (one that has
 * would have to be sent whole before the switch) and no other connection is open (the pool grows
 * only after a server declined): Connection, Upgrade and HTTP2-Settings, our SETTINGS from the
 * HTTP/2 session that takes over if the server agrees. */
static bool offer_h2c(struct client_conn *cc, rill_client_stream *st)
{
    rill_client *cl = cc->client;
    if (!cl->opt.h2c_upgrade || cl->origin.tls || cc->h2c_tried || st->streamed || st->body_len ||
        !strcmp(st->method, "CONNECT") || cl->nconns > 1)
        return false;
    cc->h2c_tried = true;
    cc->h2c_offer = client_h2_session_new(cc);
    return cc->h2c_offer != NULL; /* without memory, plain HTTP/1.1 */
}

/* A request that may go behind others: GET or HEAD, no body, nothing to wait for. */
static bool pipelinable(const rill_client_stream *st)
{
    return !st->streamed && !st->body_len && !st->ws && !st->expect_continue && !st->no_pipeline &&
           ((st->method_len == 3 && !memcmp(st->method, "GET", 3)) ||
            (st->method_len == 4 && !memcmp(st->method, "HEAD", 4)));
}

/* Whether st may be sent now although cc is reading another answer (RFC 9112 §9.3.2): the
 * connection kept one alive already, the request ahead was sent whole and is idempotent or
 * answered (a retry never repeats what may have changed something), and the queue has room. */
static bool may_pipeline(const struct client_conn *cc, const rill_client_stream *st)
{
    const rill_client_stream *cur = cc->h1_cur;
    return cc->client->pipelining && cc->client->opt.max_pipeline > cc->h1_queue_len + 1 &&
           cc->served && !cc->no_new &&
           !cc->h2c_offer && pipelinable(st) && cur->end_handed && !cur->expect_wait &&
           (pipelinable(cur) || cur->got_response);
}

int client_h1_send(struct client_conn *cc, rill_client_stream *st)
{
    if (cc->h1_cur && !may_pipeline(cc, st))
        return RILL_ERR_WOULD_BLOCK; /* the next goes after this response */
    rill_header small[32];
    size_t cap = st->nfields + 5;
    rill_header *f = cap <= 32 ? small : malloc(cap * sizeof *f);
    if (!f)
        return RILL_ERR_NOMEM;
    size_t n = 0;
    f[n++] = (rill_header){(const uint8_t *)"Host", 4, (const uint8_t *)st->authority,
                           st->authority_len, 0};
    bool has_length = false;
    bool chunked = st->streamed && st->declared_len < 0;
    size_t need = st->method_len + st->path_len + st->authority_len + 64;
    for (size_t i = 0; i < st->nfields; i++) {
        const rill_header *h = &st->fields[i];
        has_length |= rill_h1_name_eq((const char *)h->name, h->name_len, "content-length");
        if (chunked && rill_h1_name_eq((const char *)h->name, h->name_len, "transfer-encoding"))
            continue; /* the framing is ours */
        need += h->name_len + h->value_len + 4;
        f[n++] = *h;
    }
    char settings[128];
    if (offer_h2c(cc, st)) {
        uint8_t payload[64];
        int plen = rill_h2_session_settings_payload(cc->h2c_offer, payload, sizeof payload);
        if (plen < 0)
            plen = 0;
        base64url(payload, (size_t)plen, settings);
        f[n++] = field("Connection", "Upgrade, HTTP2-Settings");
        f[n++] = field("Upgrade", "h2c");
        f[n++] = field("HTTP2-Settings", settings);
        need += sizeof settings + 80;
    }
    char len[24];
    if (chunked) {
        f[n++] = field("Transfer-Encoding", "chunked");
    } else if (!has_length && !st->streamed &&
               (st->body_len || !strcmp(st->method, "POST") || !strcmp(st->method, "PUT"))) {
        snprintf(len, sizeof len, "%zu", st->body_len);
        f[n++] = field("Content-Length", len);
    }
    uint8_t stack_buf[2048]; /* the write copies it */
    uint8_t *buf = need <= sizeof stack_buf ? stack_buf : malloc(need);
    size_t used = 0;
    int rc = buf ? rill_h1_write_request_head(buf, need, &used, st->method, st->method_len,
                                              st->path, st->path_len, f, n)
                 : RILL_ERR_NOMEM;
    if (f != small)
        free(f);
    if (rc == RILL_OK)
        rc = rill_io_conn_write(cc->c.io, buf, used);
    if (buf != stack_buf)
        free(buf);
    if (rc < 0)
        return rc;
    client_stream_set_state(st, ST_SENT);
    st->conn = cc;
    st->proto = "http/1.1";
    if (cc->h1_cur) { /* behind the others: its answer comes after theirs */
        st->h1_next = NULL;
        st->h1_queued = st->pipelined = true;
        if (cc->h1_queue_tail)
            cc->h1_queue_tail->h1_next = st;
        else
            cc->h1_queue = st;
        cc->h1_queue_tail = st;
        cc->h1_queue_len++;
    } else {
        rill_h1_set_request_method(cc->h1, st->method, st->method_len);
        cc->h1_cur = st;
        cc->h1_answered = false;
    }
    client_stream_sent(st);
    return client_h1_hand_body(cc, st);
}

static void release_chunk(void *arg)
{
    client_chunk_released(arg);
}

int client_h1_hand_body(struct client_conn *cc, rill_client_stream *st)
{
    /* Chunks are queued by reference and released once written: the socket's pace decides when
     * a streamed body's memory goes back (and on_drain follows). */
    bool chunked = st->streamed && st->declared_len < 0;
    if (st->expect_wait)
        return RILL_OK;
    while (st->next_hand) {
        struct body_chunk *ch = st->next_hand;
        st->next_hand = ch->next;
        st->body_started |= st->streamed;
        if (chunked) {
            uint8_t hdr[RILL_H1_CHUNK_HEADER_MAX];
            size_t n = 0;
            int rc = rill_h1_write_chunk_header(hdr, sizeof hdr, &n, ch->len);
            if (rc == RILL_OK)
                rc = rill_io_conn_write(cc->c.io, hdr, n);
            if (rc < 0)
                return rc;
        }
        ch->refs++;
        int rc = rill_io_conn_write_ref(cc->c.io, ch->data, ch->len, release_chunk, ch);
        if (rc == RILL_OK && chunked)
            rc = rill_io_conn_write(cc->c.io, RILL_H1_CHUNK_END, 2);
        if (rc < 0)
            return rc;
    }
    if (st->body_ended && !st->end_handed) {
        if (chunked) {
            size_t need = 8;
            for (size_t i = 0; i < st->ntrailers; i++)
                need += st->trailers[i].name_len + st->trailers[i].value_len + 4;
            uint8_t small[256];
            uint8_t *buf = need <= sizeof small ? small : malloc(need);
            size_t n = 0;
            int rc = buf ? rill_h1_write_last_chunk(buf, need, &n, st->trailers, st->ntrailers)
                         : RILL_ERR_NOMEM;
            if (rc == RILL_OK)
                rc = rill_io_conn_write(cc->c.io, buf, n);
            if (buf != small)
                free(buf);
            if (rc < 0)
                return rc;
        }
        st->end_handed = true;
    }
    return RILL_OK;
}

/* The server broke HTTP/1.1: the request fails, the connection closes. */
static void bad_response(struct client_conn *cc)
{
    char why[200];
    snprintf(why, sizeof why, "bad HTTP/1.1 response: %s",
             rill_h1_error_text(rill_h1_parser_error(cc->h1)));
    cc->no_new = true;
    if (cc->h1_cur)
        client_stream_finish(cc->h1_cur, RILL_ERR_PROTOCOL, why);
    conn_close(&cc->c);
}

static rill_client_stream *queue_pop(struct client_conn *cc)
{
    rill_client_stream *st = cc->h1_queue;
    if (st) {
        cc->h1_queue = st->h1_next;
        if (!cc->h1_queue)
            cc->h1_queue_tail = NULL;
        cc->h1_queue_len--;
        st->h1_next = NULL;
        st->h1_queued = false;
    }
    return st;
}

/* The current answer ended: the next one is the oldest queued request's. */
static void next_in_queue(struct client_conn *cc)
{
    rill_client_stream *st = queue_pop(cc);
    if (!st)
        return;
    rill_h1_set_request_method(cc->h1, st->method, st->method_len);
    cc->h1_cur = st;
    cc->h1_answered = false;
}

void client_h1_unqueue(struct client_conn *cc, rill_client_stream *st)
{
    rill_client_stream **link = &cc->h1_queue, *prev = NULL;
    while (*link && *link != st) {
        prev = *link;
        link = &(*link)->h1_next;
    }
    if (*link) {
        *link = st->h1_next;
        if (cc->h1_queue_tail == st)
            cc->h1_queue_tail = prev;
        cc->h1_queue_len--;
    }
    st->h1_next = NULL;
    st->h1_queued = false;
    cc->no_new = true;
    conn_close(&cc->c);
}

void client_h1_drop_queued(rill_client_stream *st, int err, const char *why)
{
    if (st->cancelled) { /* as client_stream_finish reports a cancel */
        err = st->cancel_err ? st->cancel_err : RILL_ERR_CANCELLED;
        why = st->cancel_why ? st->cancel_why : "the request was cancelled";
    }
    void (*on_end)(rill_client_stream *, int, const char *, void *) = st->cb.on_end;
    memset(&st->cb, 0, sizeof st->cb);
    st->cb.size = sizeof st->cb;
    st->zombie = true;
    st->cancelled = false; /* dealt with: the next dispatch leaves it alone */
    st->paused = false;
    rill_io_timer_cancel(st->timer);
    if (!st->client->freeing && on_end)
        on_end(st, err, why ? why : rill_strerror(err), st->user);
}

/* A request cc closed on before its answer: sent again, alone (a connection per try makes
 * progress); one whose caller heard its end already is freed. */
static void send_again(rill_client_stream *st)
{
    if (st->zombie) {
        client_stream_finish(st, 0, NULL);
        return;
    }
    st->no_pipeline = true;
    client_stream_requeue(st);
}

void client_h1_requeue_unanswered(struct client_conn *cc)
{
    rill_client *cl = cc->client;
    unsigned again = 0;
    rill_client_stream *cur = cc->h1_cur;
    if (cur && cur->pipelined && !cc->h1_answered && !cl->freeing) {
        cc->h1_cur = NULL; /* went behind another and nothing of its answer came */
        send_again(cur);
        again++;
    }
    while (cc->h1_queue) {
        rill_client_stream *st = queue_pop(cc);
        if (cl->freeing)
            continue; /* ended with the others on cc, silently */
        send_again(st);
        again++;
    }
    if (again)
        client_trace(cl, "connection #%u closed with %u pipelined request%s unanswered; sending %s "
                     "again", cc->id, again, again == 1 ? "" : "s", again == 1 ? "it" : "them");
}

/* One parser event for the current request; false when the connection is done reading. */
static bool event(struct client_conn *cc, const rill_h1_event *ev)
{
    rill_client_stream *st = cc->h1_cur;
    switch (ev->type) {
    case RILL_H1_EV_HEAD:
        if (ev->head->status == 101 && cc->h2c_offer) { /* the h2c Upgrade was taken */
            cc->h2c_switch = true;
            return true;
        }
        if (cc->h2c_offer) { /* declined (or a 1xx before the answer): HTTP/1.1 goes on */
            if (ev->head->status >= 200) {
                rill_h2_session_free(cc->h2c_offer);
                cc->h2c_offer = NULL;
                cc->client->h1_origin = true; /* the pool may grow now */
            }
        }
        if (ev->head->status < 200) { /* 1xx: the final response follows */
            st->in_1xx = true;
            if (ev->head->status == 100)
                client_stream_continue(st); /* the body may go now */
            if (st->cb.on_informational)
                st->cb.on_informational(st, ev->head->status, ev->head->fields, ev->head->nfields,
                                        st->user);
            return true;
        }
        st->got_response = true;
        if (st->expect_wait) { /* a final answer instead of 100: the body is not sent */
            rill_io_timer_cancel(st->expect_timer);
            cc->no_new = true;
        }
        if (st->cb.on_response)
            st->cb.on_response(st, ev->head->status, ev->head->fields, ev->head->nfields, st->user);
        return true;
    case RILL_H1_EV_BODY:
        client_stream_deliver(st, ev->data, ev->len); /* a read's body is one piece already */
        return true;
    case RILL_H1_EV_TRAILERS:
        if (st->cb.on_trailers)
            st->cb.on_trailers(st, ev->fields, ev->nfields, st->user);
        return true;
    case RILL_H1_EV_END:
        if (cc->h2c_switch)
            return false; /* proto_data hands the rest of the read to HTTP/2 */
        if (st->in_1xx) {
            st->in_1xx = false;
            return true;
        }
        if (ev->upgraded || !ev->head->keep_alive) {
            cc->no_new = true; /* a switch we did not ask for is a close too */
        }
        if (!st->end_handed)
            cc->no_new = true; /* answered before its body ended: the rest cannot follow */
        cc->served++;
        client_stream_finish(st, 0, NULL);
        next_in_queue(cc);
        if (cc->no_new) {
            conn_close(&cc->c);
            return false;
        }
        client_dispatch(cc->client);
        return true;
    case RILL_H1_EV_NONE: break;
    }
    return true;
}

/* The current response is paused: what was read waits (one read's worth at most), and the
 * connection is not read any more, so TCP flow control holds the server. */
static void stash(struct client_conn *cc, const uint8_t *data, size_t len)
{
    if (len) {
        uint8_t *p = realloc(cc->h1_stash, cc->h1_stash_len + len);
        if (!p) {
            cc->no_new = true;
            client_stream_finish(cc->h1_cur, RILL_ERR_NOMEM, NULL);
            conn_close(&cc->c);
            return;
        }
        memcpy(p + cc->h1_stash_len, data, len);
        cc->h1_stash = p;
        cc->h1_stash_len += len;
    }
    if (!cc->h1_read_paused) {
        rill_io_conn_pause_read(cc->c.io, true);
        cc->h1_read_paused = true;
    }
}

/* After the 101: the HTTP/1.1 side is done; the offering request is HTTP/2's stream 1. */
static void switch_to_h2(struct client_conn *cc, const uint8_t *rest, size_t rest_len)
{
    rill_client_stream *st = cc->h1_cur;
    cc->h1_cur = NULL;
    cc->h2c_switch = false;
    rill_h1_parser_free(cc->h1);
    cc->h1 = NULL;
    int rc = client_h2_upgraded(cc, st, rest, rest_len);
    if (rc < 0) {
        cc->no_new = true;
        client_stream_finish(st, rc, "the h2c Upgrade could not be completed");
        conn_close(&cc->c);
        return;
    }
    client_dispatch(cc->client); /* what waited for HTTP/1.1 goes as HTTP/2 streams now */
}

static void parse_input(struct conn *c, const uint8_t *data, size_t len)
{
    struct client_conn *cc = client_conn_of(c);
    size_t off = 0;
    while (!c->closing) {
        if (off < len && cc->h1_cur)
            cc->h1_answered = true; /* a close from now on is no stale connection's */
        if (!cc->h1_cur) {
            if (off < len) { /* bytes nobody asked for */
                cc->no_new = true;
                conn_close(c);
            }
            return;
        }
        if (cc->h1_cur->paused && !cc->h1_eof) {
            stash(cc, data + off, len - off);
            return;
        }
        size_t used = 0;
        rill_h1_event ev;
        if (rill_h1_parse(cc->h1, data + off, len - off, &used, &ev) < 0) {
            bad_response(cc);
            return;
        }
        off += used;
        if (ev.type == RILL_H1_EV_NONE)
            return;
        if (!event(cc, &ev)) {
            if (cc->h2c_switch)
                switch_to_h2(cc, data + off, len - off);
            return;
        }
    }
}

static void proto_data(struct conn *c, const uint8_t *data, size_t len)
{
    parse_input(c, data, len);
    struct client_conn *cc = client_conn_of(c);
    /* A large body on its way: wake per batch rather than per segment (read_batch.c). */
    if (!c->closing && cc->h1 && !cc->h2)
        rill_io_conn_expect_bytes(c->io, rill_h1_parser_body_left(cc->h1));
}

void client_h1_resume(struct client_conn *cc)
{
    uint8_t *held = cc->h1_stash;
    size_t n = cc->h1_stash_len;
    cc->h1_stash = NULL;
    cc->h1_stash_len = 0;
    if (cc->h1_read_paused && !cc->c.closing) {
        rill_io_conn_pause_read(cc->c.io, false);
        cc->h1_read_paused = false;
    }
    if (n && !cc->c.closing) {
        cc->c.in_callback++;
        proto_data(&cc->c, held, n); /* may stash again: it copies */
        cc->c.in_callback--;
        conn_flush(&cc->c);
    }
    free(held);
}

void client_h1_eof(struct client_conn *cc)
{
    rill_client_stream *st = cc->h1_cur;
    if (!st || cc->client->freeing)
        return; /* rill_client_free: no more callbacks */
    if (cc->h1_stash_len) { /* the end came while paused: what was read still counts */
        cc->h1_eof = true;
        cc->no_new = true; /* nothing more goes on this connection */
        uint8_t *held = cc->h1_stash;
        size_t n = cc->h1_stash_len;
        cc->h1_stash = NULL;
        cc->h1_stash_len = 0;
        bool closing = cc->c.closing;
        cc->c.closing = false; /* conn_io_closed marked it; the parser loop checks it */
        proto_data(&cc->c, held, n);
        cc->c.closing = closing || cc->c.closing;
        free(held);
        if (!(st = cc->h1_cur))
            return;
    }
    rill_h1_event ev;
    if (rill_h1_parse_eof(cc->h1, &ev) < 0 || ev.type != RILL_H1_EV_END) {
        client_stream_finish(st, RILL_ERR_PROTOCOL,
                             "the server closed the connection before the response was complete");
        return;
    }
    client_stream_finish(st, 0, NULL);
}

static bool proto_busy(const struct conn *c)
{
    return ((const struct client_conn *)c)->h1_cur != NULL;
}

static void proto_free(struct conn *c)
{
    struct client_conn *cc = client_conn_of(c);
    rill_h1_parser_free(cc->h1);
    cc->h1 = NULL;
    rill_h2_session_free(cc->h2c_offer); /* offered, never answered */
    cc->h2c_offer = NULL;
    free(cc->h1_stash);
    cc->h1_stash = NULL;
    cc->h1_stash_len = 0;
}

const struct conn_proto client_h1_proto = {
    .name = "http/1.1",
    .data = proto_data,
    .busy = proto_busy,
    .free = proto_free,
};
