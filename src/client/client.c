/* The request client: options, requests and their lifetime. Its connections to the origin are
 * client_pool.c's; the protocols on them client_h2.c's and client_h1.c's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client_internal.h"
#include "common/api_struct.h"
#include "common/http_chars.h"
#include "common/small_copy.h"
#include "rill/tls.h"

#define DEFAULT_CONNECT_TIMEOUT_MS 10000u
#define DEFAULT_STREAM_BUFFER (256u << 10)
#define DEFAULT_MAX_CONNECTIONS 6u    /* per origin over HTTP/1.1, as browsers and curl */
#define DEFAULT_ATTEMPT_DELAY_MS 250u /* RFC 8305 §8's Connection Attempt Delay */

void rill_client_options_init(rill_client_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->size = sizeof *opt;
    opt->connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
    opt->idle_timeout_ms = CLIENT_DEFAULT_IDLE_TIMEOUT_MS;
    opt->stream_buffer = DEFAULT_STREAM_BUFFER;
    opt->max_connections = DEFAULT_MAX_CONNECTIONS;
    opt->attempt_delay_ms = DEFAULT_ATTEMPT_DELAY_MS;
}

bool client_method_idempotent(const char *m)
{
    static const char *const names[] = {"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(m, names[i]) == 0)
            return true;
    return false;
}

/* ---- requests ------------------------------------------------------------------------------ */

/* Spares a client keeps (more when it pipelines: a connection's whole queue ends in one read and
 * is sent again in the next turn), and the largest memory block that goes with one. */
#define SPARE_MAX 16
#define SPARE_MEM_MAX 4096

static void stream_free(rill_client_stream *st)
{
    /* A chunk the transport still references is freed when it releases it. */
    for (struct body_chunk *ch = st->chunks, *next; ch; ch = next) {
        next = ch->next;
        ch->st = NULL;
        ch->prev = ch->next = NULL;
        if (!ch->refs)
            free(ch);
    }
    while (st->held) {
        struct held_data *h = st->held;
        st->held = h->next;
        free(h);
    }
    free(st->trailers);
    free(st->held_trailers);
    rill_client *cl = st->client;
    if (cl && !cl->freeing && (cl->nspare < SPARE_MAX || cl->nspare < cl->opt.max_pipeline) &&
        st->mem_cap <= SPARE_MEM_MAX) {
        /* Kept for the next request: its block and timers (disarmed) stay, the rest is reset. */
        rill_io_timer *timer = st->timer, *expect_timer = st->expect_timer;
        rill_io_timer_cancel(timer);
        rill_io_timer_cancel(expect_timer);
        uint8_t *mem = st->mem;
        size_t mem_cap = st->mem_cap;
        memset(st, 0, sizeof *st);
        st->timer = timer;
        st->expect_timer = expect_timer;
        st->mem = mem;
        st->mem_cap = mem_cap;
        st->next = cl->spare;
        cl->spare = st;
        cl->nspare++;
        return;
    }
    rill_io_timer_free(st->timer);
    rill_io_timer_free(st->expect_timer);
    free(st->mem);
    free(st);
}

/* A stream for c: a spare one, else a new one (zeroed either way but for what spares keep). */
static rill_client_stream *stream_new(rill_client *c)
{
    rill_client_stream *st = c->spare;
    if (!st)
        return calloc(1, sizeof *st);
    c->spare = st->next;
    c->nspare--;
    st->next = NULL;
    return st;
}

/* rill_client_free: the spares go. */
static void spares_free(rill_client *c)
{
    while (c->spare) {
        rill_client_stream *st = c->spare;
        c->spare = st->next;
        rill_io_timer_free(st->timer);
        rill_io_timer_free(st->expect_timer);
        free(st->mem);
        free(st);
    }
    c->nspare = 0;
}

/* Room for `bytes` in st's block (its old contents are not kept). */
static int stream_mem(rill_client_stream *st, size_t bytes)
{
    if (bytes <= st->mem_cap)
        return RILL_OK;
    free(st->mem);
    st->mem_cap = 0;
    st->mem = malloc(bytes);
    if (!st->mem)
        return RILL_ERR_NOMEM;
    st->mem_cap = bytes;
    return RILL_OK;
}

/* Copies s[0..n) and a NUL to *p, moving it on; returns the copy. */
static char *put_string(uint8_t **p, const void *s, size_t n)
{
    char *out = (char *)*p;
    small_copy(out, s, n);
    out[n] = '\0';
    *p += n + 1;
    return out;
}

static void chunk_unlink(rill_client_stream *st, struct body_chunk *ch)
{
    if (st->next_hand == ch)
        st->next_hand = ch->next;
    if (ch->prev)
        ch->prev->next = ch->next;
    else
        st->chunks = ch->next;
    if (ch->next)
        ch->next->prev = ch->prev;
    else
        st->chunks_tail = ch->prev;
    ch->prev = ch->next = NULL;
}

void client_chunk_released(struct body_chunk *ch)
{
    rill_client_stream *st = ch->st;
    if (ch->refs)
        ch->refs--;
    if (ch->refs)
        return;
    if (!st) { /* its stream ended while the transport held it */
        free(ch);
        return;
    }
    if (ch->keep)
        return; /* the buffered body stays for a resend */
    st->buffered -= ch->len;
    chunk_unlink(st, ch);
    free(ch);
    if (st->want_drain && st->buffered <= st->client->stream_buffer / 2 && !st->drain_due) {
        /* on_drain on the next turn: this runs inside the transport's output accounting */
        st->drain_due = true;
        rill_io_timer_arm(st->client->kick, 0);
    }
}

static void unlink_stream(rill_client_stream *st)
{
    rill_client *cl = st->client;
    if (st->state == ST_PENDING)
        client_stream_unpend(st);
    cl->nws -= st->ws != NULL;
    if (st->prev)
        st->prev->next = st->next;
    else
        cl->head = st->next;
    if (st->next)
        st->next->prev = st->prev;
    else
        cl->tail = st->prev;
    st->prev = st->next = NULL;
}

void client_stream_finish(rill_client_stream *st, int err, const char *why)
{
    rill_client *cl = st->client;
    if (st->cancelled) { /* whatever ended it meanwhile, the caller (or a check of ours) asked */
        err = st->cancel_err ? st->cancel_err : RILL_ERR_CANCELLED;
        why = st->cancel_why ? st->cancel_why : "the request was cancelled";
    }
    unlink_stream(st);
    if (st->conn && st->conn->h1_cur == st)
        st->conn->h1_cur = NULL;
    if (st->h1_queued)
        client_h1_unqueue(st->conn, st);
    if (!cl->freeing && st->cb.on_end)
        st->cb.on_end(st, err, err ? (why ? why : rill_strerror(err)) : NULL, st->user);
    stream_free(st);
}

/* The value of field name in f[0..n), or "" (and its length in *len). */
static const char *field_find(const rill_header *f, size_t n, const char *name, size_t *len)
{
    size_t nlen = strlen(name);
    for (size_t i = 0; i < n; i++)
        if (f[i].name_len == nlen && memcmp(f[i].name, name, nlen) == 0) {
            *len = f[i].value_len;
            return (const char *)f[i].value;
        }
    *len = 0;
    return "";
}

rill_client_stream *client_stream_pushed(struct client_conn *cc, rill_client_stream *parent,
                                         int32_t id, const rill_header *request, size_t n)
{
    rill_client *c = cc->client;
    rill_client_stream *st = stream_new(c);
    if (!st)
        return NULL;
    st->client = c;
    st->cb = parent->cb;
    st->user = parent->user;
    st->body_ended = st->end_handed = true; /* a pushed request has no body of ours */
    st->declared_len = -1;
    size_t mlen, plen;
    const char *method = field_find(request, n, ":method", &mlen);
    const char *path = field_find(request, n, ":path", &plen);
    if (stream_mem(st, mlen + plen + 2) < 0) {
        stream_free(st);
        return NULL;
    }
    uint8_t *p = st->mem;
    st->method = put_string(&p, method, mlen);
    st->path = put_string(&p, path, plen);
    st->method_len = mlen;
    st->path_len = plen;
    st->state = ST_SENT; /* before linking: never counted as pending */
    st->conn = cc;
    st->h2_id = id;
    st->proto = "h2";
    st->prev = c->tail;
    if (c->tail)
        c->tail->next = st;
    else
        c->head = st;
    c->tail = st;
    st->seq = c->next_seq++;
    return st;
}

void client_stream_requeue(rill_client_stream *st)
{
    client_stream_set_state(st, ST_PENDING);
    st->conn = NULL;
    st->h2_id = 0;
    st->pipelined = false; /* what it is sent as next time decides */
    /* Only a buffered body, or a streamed one none of which went out, is sent again: from its
     * first chunk. */
    st->next_hand = st->chunks;
    st->end_handed = false;
    st->expect_wait = false;
    rill_io_timer_cancel(st->expect_timer);
}

static void on_request_timeout(rill_io_timer *t, void *arg)
{
    rill_client_stream *st = arg;
    struct client_conn *cc = st->conn;
    char why[128];
    snprintf(why, sizeof why, "no complete response within %u ms", st->client->opt.request_timeout_ms);
    if (cc && cc->h2) {
        client_h2_cancel(cc, st);
        client_stream_finish(st, RILL_ERR_TIMEOUT, why);
        conn_flush(&cc->c);
    } else if (cc && st->h1_queued) { /* not answered yet: its answer will be dropped */
        client_h1_drop_queued(st, RILL_ERR_TIMEOUT, why);
    } else if (cc) {
        /* HTTP/1.1 cannot drop one response and keep the connection: end both. */
        client_stream_finish(st, RILL_ERR_TIMEOUT, why);
        cc->no_new = true;
        rill_io_conn_close(cc->c.io, false);
    } else {
        client_stream_finish(st, RILL_ERR_TIMEOUT, why);
    }
}

/* Lays out st's block: the fields (names lowercased; a "host" field becomes the authority, else
 * default_authority), method, path and authority, all copied. */
static int copy_request(rill_client_stream *st, const char *method, const char *path,
                        const rill_header *f, size_t n, const char *default_authority)
{
    size_t mlen = strlen(method), plen = strlen(path);
    size_t bytes = n * sizeof(rill_header) + mlen + 1 + plen + 1;
    const rill_header *host = NULL;
    for (size_t i = 0; i < n; i++) {
        if (!f[i].name || !f[i].name_len || (!f[i].value && f[i].value_len))
            return RILL_ERR_INVALID_ARG;
        if (f[i].name_len == 4 && lower_eq_lit(f[i].name, "host", 4))
            host = &f[i]; /* the last one counts */
        bytes += f[i].name_len + f[i].value_len + 2;
    }
    const char *auth = host ? (const char *)host->value : default_authority;
    size_t alen = host ? host->value_len : strlen(default_authority);
    if (host && memchr(auth, '\0', alen)) /* a C string ends there */
        alen = strlen(auth);
    bytes += alen + 1;
    int rc = stream_mem(st, bytes);
    if (rc < 0)
        return rc;
    st->fields = (rill_header *)(void *)st->mem;
    uint8_t *p = st->mem + n * sizeof(rill_header);
    st->method = put_string(&p, method, mlen);
    st->path = put_string(&p, path, plen);
    st->method_len = mlen;
    st->path_len = plen;
    st->authority = put_string(&p, auth, alen);
    st->authority_len = alen;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (f[i].name_len == 4 && lower_eq_lit(f[i].name, "host", 4))
            continue;
        rill_header *h = &st->fields[k++];
        if (f[i].flags & RILL_HEADER_VALID) /* a lowercase token already */
            small_copy(p, f[i].name, f[i].name_len);
        else
            lower_copy(p, f[i].name, f[i].name_len);
        p[f[i].name_len] = '\0';
        h->name = p;
        h->name_len = f[i].name_len;
        p += f[i].name_len + 1;
        h->value = (const uint8_t *)put_string(&p, f[i].value, f[i].value_len);
        h->value_len = f[i].value_len;
        h->flags = f[i].flags & RILL_HEADER_VALID; /* still true of the lowercased copy */
    }
    st->nfields = k;
    return RILL_OK;
}

/* A method is a token (RFC 9110 §9.1). */
static bool method_ok(const char *m)
{
    if (!m || !*m)
        return false;
    for (; *m; m++)
        if (!http_tchar[(uint8_t)*m])
            return false;
    return true;
}

/* A content-length field's value: digits only; -1 when absent, -2 when malformed. */
static int64_t declared_length(const rill_client_stream *st)
{
    for (size_t i = 0; i < st->nfields; i++) {
        const rill_header *f = &st->fields[i];
        if (f->name_len != 14 || memcmp(f->name, "content-length", 14) != 0)
            continue;
        if (!f->value_len || f->value_len > 18)
            return -2;
        int64_t v = 0;
        for (size_t j = 0; j < f->value_len; j++) {
            if (f->value[j] < '0' || f->value[j] > '9')
                return -2;
            v = v * 10 + (f->value[j] - '0');
        }
        return v;
    }
    return -1;
}

/* An "expect: 100-continue" field (names are lowercase by now). */
static bool expects_continue(const rill_client_stream *st)
{
    for (size_t i = 0; i < st->nfields; i++)
        if (st->fields[i].name_len == 6 && memcmp(st->fields[i].name, "expect", 6) == 0 &&
            st->fields[i].value_len == 12 &&
            strncasecmp((const char *)st->fields[i].value, "100-continue", 12) == 0)
            return true;
    return false;
}

static int hand_body(rill_client_stream *st);

/* Like curl: a server that does not answer 100 within a second gets the body anyway. */
#define EXPECT_WAIT_MS 1000

static void on_expect_timeout(rill_io_timer *t, void *arg)
{
    client_stream_continue(arg);
}

void client_stream_sent(rill_client_stream *st)
{
    if (st->expect_continue && !st->end_handed) {
        st->expect_wait = true;
        rill_io_timer_arm(st->expect_timer, EXPECT_WAIT_MS);
    }
}

void client_stream_continue(rill_client_stream *st)
{
    if (!st->expect_wait)
        return;
    st->expect_wait = false;
    rill_io_timer_cancel(st->expect_timer);
    hand_body(st);
}

int client_request_start(rill_client *c, const char *method, const char *target,
                         const rill_header *fields, size_t nfields, const void *body, size_t len,
                         bool streamed, const rill_client_callbacks *cb, void *user,
                         rill_client_stream **out)
{
    if (out)
        *out = NULL;
    if (!c || !method_ok(method) || !target || (!body && len) || (!fields && nfields) ||
        (streamed && !out))
        return RILL_ERR_INVALID_ARG;
    rill_client_stream *st = stream_new(c);
    if (!st)
        return RILL_ERR_NOMEM;
    st->client = c;
    st->user = user;
    st->streamed = streamed;
    st->body_ended = !streamed;
    st->declared_len = -1;
    st->cb.size = sizeof st->cb;
    int rc = cb ? rill_struct_copy(&st->cb, sizeof st->cb, cb) : RILL_OK;
    const char *path = target;
    struct client_url u;
    if (rc == RILL_OK && target[0] != '/') {
        char err[256];
        rc = client_url_parse(target, &u, err, sizeof err);
        if (rc == RILL_OK && (u.tls != c->origin.tls || strcasecmp(u.authority, c->origin.authority)))
            rc = RILL_ERR_INVALID_ARG; /* another origin: another client */
        path = u.path;
    }
    for (const char *p = path; rc == RILL_OK && *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            rc = RILL_ERR_INVALID_ARG;
    if (rc == RILL_OK)
        rc = copy_request(st, method, path, fields, nfields, c->origin.host_field);
    if (rc == RILL_OK && streamed && (st->declared_len = declared_length(st)) < -1)
        rc = RILL_ERR_INVALID_ARG;
    if (rc == RILL_OK && len) {
        struct body_chunk *ch = calloc(1, sizeof *ch + len);
        if (ch) {
            memcpy(ch->data, body, len);
            ch->len = len;
            ch->keep = true;
            ch->st = st;
            st->chunks = st->chunks_tail = st->next_hand = ch;
            st->body_len = len;
        } else {
            rc = RILL_ERR_NOMEM;
        }
    }
    if (rc == RILL_OK && (streamed || len) && expects_continue(st)) {
        st->expect_continue = true;
        if (!st->expect_timer) /* a spare stream may have one already */
            st->expect_timer = rill_io_timer_new(c->loop, on_expect_timeout, st);
        if (!st->expect_timer)
            rc = RILL_ERR_NOMEM;
    }
    if (rc == RILL_OK && c->opt.request_timeout_ms) {
        if (!st->timer)
            st->timer = rill_io_timer_new(c->loop, on_request_timeout, st);
        rc = st->timer ? rill_io_timer_arm(st->timer, c->opt.request_timeout_ms) : RILL_ERR_NOMEM;
    }
    if (rc == RILL_OK)
        rc = rill_io_timer_arm(c->kick, 0);
    if (rc < 0) {
        stream_free(st);
        return rc;
    }
    st->prev = c->tail;
    if (c->tail)
        c->tail->next = st;
    else
        c->head = st;
    c->tail = st;
    st->seq = c->next_seq++;
    if (st->state == ST_PENDING) {
        c->npending++;
        if (!c->first_pending)
            c->first_pending = st;
    }
    if (out)
        *out = st;
    return RILL_OK;
}

int rill_client_request(rill_client *c, const char *method, const char *target,
                        const rill_header *fields, size_t nfields, const void *body, size_t len,
                        const rill_client_callbacks *cb, void *user, rill_client_stream **out)
{
    return client_request_start(c, method, target, fields, nfields, body, len, false, cb, user, out);
}

int rill_client_request_stream(rill_client *c, const char *method, const char *target,
                               const rill_header *fields, size_t nfields,
                               const rill_client_callbacks *cb, void *user, rill_client_stream **out)
{
    return client_request_start(c, method, target, fields, nfields, NULL, 0, true, cb, user, out);
}

/* Gives what the stream has of its body to its connection (the request is on one). */
static int hand_body(rill_client_stream *st)
{
    struct client_conn *cc = st->conn;
    if (st->state != ST_SENT || !cc || cc->c.closing)
        return RILL_OK; /* it goes when the request does */
    int rc = cc->h2 ? client_h2_hand_body(cc, st) : client_h1_hand_body(cc, st);
    conn_flush(&cc->c);
    return rc;
}

/* Ends st on a later turn with err (a check of ours failed; nothing more goes out for it). */
static void stream_abort(rill_client_stream *st, int err, const char *why)
{
    rill_client_stream_cancel(st);
    st->cancel_err = err;
    st->cancel_why = why;
}

int rill_client_stream_write(rill_client_stream *st, const void *data, size_t len)
{
    if (!st || (!data && len))
        return RILL_ERR_INVALID_ARG;
    if (!st->streamed || st->body_ended || st->cancelled)
        return RILL_ERR_STATE;
    if (!len)
        return RILL_OK;
    if (st->declared_len >= 0 && st->written + len > (uint64_t)st->declared_len)
        return RILL_ERR_INVALID_ARG;
    size_t cap = st->client->stream_buffer;
    if (st->buffered >= cap) {
        st->want_drain = true;
        return RILL_ERR_LIMIT;
    }
    struct body_chunk *ch = malloc(sizeof *ch + len);
    if (!ch)
        return RILL_ERR_NOMEM;
    memcpy(ch->data, data, len);
    ch->len = len;
    ch->refs = 0;
    ch->keep = false;
    ch->st = st;
    ch->next = NULL;
    ch->prev = st->chunks_tail;
    if (st->chunks_tail)
        st->chunks_tail->next = ch;
    else
        st->chunks = ch;
    st->chunks_tail = ch;
    if (!st->next_hand)
        st->next_hand = ch;
    st->buffered += len;
    st->written += len;
    int rc = hand_body(st);
    if (rc < 0)
        return rc;
    if (st->buffered >= cap) {
        st->want_drain = true;
        return RILL_ERR_WOULD_BLOCK;
    }
    return RILL_OK;
}

/* Copies trailer fields into one allocation, names lowercased; pseudo-header or empty names and
 * values with CR, LF or NUL are refused. */
static int copy_trailers(const rill_header *f, size_t n, rill_header **out)
{
    size_t bytes = n * sizeof(rill_header);
    for (size_t i = 0; i < n; i++) {
        if (!f[i].name || !f[i].name_len || f[i].name[0] == ':' || (!f[i].value && f[i].value_len))
            return RILL_ERR_INVALID_ARG;
        for (size_t j = 0; j < f[i].name_len; j++)
            if (f[i].name[j] <= 0x20 || f[i].name[j] >= 0x7f || f[i].name[j] == ':')
                return RILL_ERR_INVALID_ARG;
        for (size_t j = 0; j < f[i].value_len; j++)
            if (f[i].value[j] == '\r' || f[i].value[j] == '\n' || f[i].value[j] == 0)
                return RILL_ERR_INVALID_ARG;
        bytes += f[i].name_len + f[i].value_len + 2;
    }
    uint8_t *mem = malloc(bytes ? bytes : 1);
    if (!mem)
        return RILL_ERR_NOMEM;
    rill_header *h = (rill_header *)(void *)mem;
    uint8_t *p = mem + n * sizeof(rill_header);
    for (size_t i = 0; i < n; i++) {
        if (f[i].flags & RILL_HEADER_VALID) /* a lowercase token already */
            small_copy(p, f[i].name, f[i].name_len);
        else
            lower_copy(p, f[i].name, f[i].name_len);
        p[f[i].name_len] = '\0';
        h[i] = (rill_header){p, f[i].name_len, p + f[i].name_len + 1, f[i].value_len, 0};
        p += f[i].name_len + 1;
        if (f[i].value_len)
            memcpy(p, f[i].value, f[i].value_len);
        p[f[i].value_len] = '\0';
        p += f[i].value_len + 1;
    }
    *out = h;
    return RILL_OK;
}

int rill_client_stream_end(rill_client_stream *st, const rill_header *trailers, size_t ntrailers)
{
    if (!st || (!trailers && ntrailers))
        return RILL_ERR_INVALID_ARG;
    if (!st->streamed || st->body_ended || st->cancelled)
        return RILL_ERR_STATE;
    bool h2 = st->proto ? strcmp(st->proto, "h2") == 0
                        : !st->client->origin.tls && st->client->opt.h2_prior_knowledge;
    if (ntrailers && st->declared_len >= 0 && !h2)
        return RILL_ERR_INVALID_ARG; /* HTTP/1.1 could not carry them (HTTP/2 can) */
    if (st->declared_len >= 0 && st->written != (uint64_t)st->declared_len) {
        st->body_ended = true;
        stream_abort(st, RILL_ERR_INVALID_ARG,
                     "the request body ended short of its content-length field");
        return RILL_ERR_INVALID_ARG;
    }
    if (ntrailers) {
        int rc = copy_trailers(trailers, ntrailers, &st->trailers);
        if (rc < 0)
            return rc;
        st->ntrailers = ntrailers;
    }
    st->body_ended = true;
    return hand_body(st);
}

size_t rill_client_stream_buffered(const rill_client_stream *st)
{
    return st ? st->buffered : 0;
}

void rill_client_stream_pause(rill_client_stream *st, bool paused)
{
    if (!st || st->paused == paused)
        return;
    st->paused = paused;
    if (paused) {
        st->resume_due = false;
        return;
    }
    /* What waits is delivered on the next turn: a callback of st's own may be running now. */
    st->resume_due = true;
    rill_io_timer_arm(st->client->kick, 0);
}

/* A resumed stream: the events held while it was paused, then reading again. */
static void resume(rill_client_stream *st)
{
    if (st->paused || st->cancelled)
        return;
    struct client_conn *cc = st->state == ST_SENT ? st->conn : NULL;
    if (st->held || st->state == ST_HELD) {
        client_h2_resume(st); /* may end st (ST_HELD) */
        return;
    }
    if (cc && cc->h1 && cc->h1_cur == st)
        client_h1_resume(cc);
}

void rill_client_stream_cancel(rill_client_stream *st)
{
    if (!st || st->cancelled)
        return;
    /* The work is left to the next dispatch: a callback of st's own may be running now, with the
     * parser or the engine still holding st and the connection. */
    st->cancelled = true;
    st->cb.on_response = NULL;
    st->cb.on_data = NULL;
    st->cb.on_data_v = NULL;
    st->cb.on_trailers = NULL;
    st->cb.on_drain = NULL;
    st->cb.on_informational = NULL;
    rill_io_timer_arm(st->client->kick, 0);
}

/* Ends the cancelled requests: not sent yet, simply; HTTP/2, with RST_STREAM; HTTP/1.1, by
 * closing the connection (the requests behind it stay pending and reconnect). */
static void reap_cancelled(rill_client *cl)
{
    rill_client_stream *st = cl->head;
    while (st) {
        rill_client_stream *next = st->next;
        if (st->cancelled) {
            struct client_conn *cc = st->state == ST_SENT ? st->conn : NULL;
            if (cc && cc->h1 && st->streamed && !st->end_handed)
                cc->no_new = true; /* its body was cut: the connection cannot go on */
            if (cc && cc->h2) {
                client_h2_cancel(cc, st);
                client_stream_finish(st, RILL_ERR_CANCELLED, NULL);
                conn_flush(&cc->c);
            } else if (cc && st->h1_queued) { /* pipelined, not answered: the one ahead goes on */
                client_h1_drop_queued(st, RILL_ERR_CANCELLED, NULL);
            } else if (cc) {
                client_stream_finish(st, RILL_ERR_CANCELLED, NULL);
                cc->no_new = true;
                rill_io_conn_close(cc->c.io, false); /* on_close now; st's next may be gone */
                next = cl->head;
            } else {
                client_stream_finish(st, RILL_ERR_CANCELLED, NULL);
            }
        }
        st = next;
    }
}

const char *rill_client_stream_protocol(const rill_client_stream *st)
{
    return st->proto;
}

bool rill_client_stream_head_ended(const rill_client_stream *st)
{
    return st->head_ended;
}

rill_client *rill_client_stream_client(const rill_client_stream *st)
{
    return st->client;
}

unsigned rill_client_connections(const rill_client *c)
{
    return c->connections;
}

unsigned rill_client_stream_connection(const rill_client_stream *st)
{
    return st ? st->conn_id : 0;
}


/* on_drain and resumes due (never called inside a call of the caller's or of a transport). */
static void run_due(rill_client *cl)
{
    for (rill_client_stream *st = cl->head, *next; st; st = next) {
        next = st->next;
        if (st->drain_due) {
            st->drain_due = false;
            st->want_drain = false;
            if (st->cb.on_drain && !st->cancelled)
                st->cb.on_drain(st, st->user);
        }
    }
    /* A resume runs the protocol (an HTTP/1.1 response ends, the next request goes, another
     * may fail): the list may change under it, so each one starts again from the head. Those
     * resumed again meanwhile wait for the next turn. */
    for (rill_client_stream *st = cl->head; st; st = st->next) {
        st->resume_now = st->resume_due;
        st->resume_due = false;
    }
    for (;;) {
        rill_client_stream *st = cl->head;
        while (st && !st->resume_now)
            st = st->next;
        if (!st)
            break;
        st->resume_now = false;
        resume(st);
    }
}

static void on_kick(rill_io_timer *t, void *arg)
{
    /* Only here, never from client_dispatch: that also runs inside the protocols' callbacks. */
    run_due(arg);
    reap_cancelled(arg);
    client_dispatch(arg);
}

/* ---- the client ---------------------------------------------------------------------------- */

int rill_client_new(rill_io_loop *loop, const rill_client_options *opt, rill_client **out,
                    char *err, size_t errlen)
{
    char scratch[8];
    if (!err || !errlen) {
        err = scratch;
        errlen = sizeof scratch;
    }
    err[0] = '\0';
    rill_client_options o;
    rill_client_options_init(&o);
    if (!loop || !out || !opt || rill_struct_copy(&o, sizeof o, opt) != RILL_OK) {
        snprintf(err, errlen, "bad arguments or options (their size field)");
        return RILL_ERR_INVALID_ARG;
    }
    if (!o.url) {
        snprintf(err, errlen, "no URL");
        return RILL_ERR_INVALID_ARG;
    }
    rill_client *c = calloc(1, sizeof *c);
    if (!c)
        return RILL_ERR_NOMEM;
    c->loop = loop;
    c->opt = o;
    c->opt.url = NULL; /* not kept: the origin is */
    struct client_url url;
    int rc = client_url_parse(o.url, &url, err, errlen);
    if (rc == RILL_OK) {
        c->origin.tls = url.tls;
        memcpy(c->origin.host, url.host, sizeof c->origin.host);
        memcpy(c->origin.authority, url.authority, sizeof c->origin.authority);
        memcpy(c->origin.host_field, url.host_field, sizeof c->origin.host_field);
    }
    if (rc == RILL_OK && o.ca_file && !(c->ca_file = strdup(o.ca_file)))
        rc = RILL_ERR_NOMEM;
    c->opt.ca_file = c->ca_file;
    c->stream_buffer = o.stream_buffer ? o.stream_buffer : DEFAULT_STREAM_BUFFER;
    c->max_connections = o.max_connections ? o.max_connections : DEFAULT_MAX_CONNECTIONS;
    if (c->opt.max_pipeline > CLIENT_PIPELINE_MAX)
        c->opt.max_pipeline = CLIENT_PIPELINE_MAX;
    /* Known before any connection: only HTTP/1.1 will be spoken, so the pool may grow at once */
    c->h1_origin = o.http1_only || (!url.tls && !o.h2_prior_knowledge && !o.h2c_upgrade);
    if (rc == RILL_OK && c->origin.tls) {
        unsigned flags = (o.insecure ? RILL_TLS_CLIENT_NO_VERIFY : 0) |
                         (o.http1_only ? RILL_TLS_CLIENT_HTTP11 : 0);
        rc = rill_tls_client_new(flags, c->ca_file, &c->tls, err, errlen);
    }
    if (rc == RILL_OK) {
        c->kick = rill_io_timer_new(loop, on_kick, c);
        c->connect_timer = rill_io_timer_new(loop, client_connect_timeout, c);
        c->dns = client_dns_new(loop);
        if (!c->kick || !c->connect_timer || !c->dns)
            rc = RILL_ERR_NOMEM;
    }
    if (rc < 0) {
        rill_client_free(c);
        return rc;
    }
    *out = c;
    return RILL_OK;
}

void rill_client_free(rill_client *c)
{
    if (!c)
        return;
    c->freeing = true;
    client_ws_detach_all(c);
    client_close_all(c);
    while (c->head)
        client_stream_finish(c->head, RILL_ERR_STATE, NULL);
    spares_free(c);
    rill_io_timer_free(c->kick);
    rill_io_timer_free(c->connect_timer);
    client_dns_free(c->dns);
    if (c->tls)
        rill_tls_ctx_free(c->tls);
    free(c->ca_file);
    free(c->addrs);
    free(c);
}
