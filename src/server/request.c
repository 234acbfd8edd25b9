/* The request side of an exchange: the request as the transport hands it over (copied into the
 * arena), its body flowing to the handler (held until on_body is set, with back-pressure), and
 * the rill_server_request_* / rill_server_session_* getters. */
#include <stdlib.h>
#include <string.h>

#include "common/small_copy.h"
#include "server/server_internal.h"

static bool is_pseudo(const rill_header *h)
{
    return h->name_len > 0 && h->name[0] == ':';
}

/* Bytes from fields[0].name to the end of the last value if the fields' names and values lie one
 * after another, each followed by a NUL (as the HTTP/2 engine hands them over); else 0. */
static size_t contiguous_span(const rill_header *fields, size_t n)
{
    const uint8_t *next = fields[0].name;
    for (size_t i = 0; i < n; i++) {
        if (fields[i].name != next || fields[i].value != next + fields[i].name_len + 1 ||
            fields[i].name[fields[i].name_len] != '\0' || fields[i].value[fields[i].value_len] != '\0')
            return 0;
        next = fields[i].value + fields[i].value_len + 1;
    }
    return (size_t)(next - fields[0].name);
}

/* Copies field i's name (lowercased unless already) and value, each NUL-terminated, to p; returns
 * the end. */
static char *copy_field(rill_header *to, const rill_header *from, char *p, bool names_lowercase)
{
    char *name = p;
    if (names_lowercase)
        small_copy(name, from->name, from->name_len);
    else
        lower_copy(name, from->name, from->name_len);
    name[from->name_len] = '\0';
    p += from->name_len + 1;
    small_copy(p, from->value, from->value_len);
    p[from->value_len] = '\0';
    to->name = (const uint8_t *)name;
    to->value = (const uint8_t *)p;
    return p + from->value_len + 1;
}

/* The request target's parts by pseudo-header name (length first: one compare each). */
static inline void note_pseudo(rill_server_stream *st, const rill_header *h)
{
    const char *v = (const char *)h->value, *n = (const char *)h->name;
    switch (h->name_len) {
    case 5:
        if (memcmp(n, ":path", 5) == 0) {
            st->path = v;
            st->path_len = h->value_len;
        }
        break;
    case 7:
        if (memcmp(n, ":method", 7) == 0)
            st->method = v;
        else if (memcmp(n, ":scheme", 7) == 0)
            st->scheme = v;
        break;
    case 9:
        if (memcmp(n, ":protocol", 9) == 0)
            st->connect_protocol = v;
        break;
    case 10:
        if (memcmp(n, ":authority", 10) == 0)
            st->authority = v;
        break;
    default:
        break;
    }
}

/* All strings go into one arena: the header array first, then NUL-terminated names and values
 * (copied in one piece when they arrive laid out that way already). */
int exchange_set_request(rill_server_stream *st, const rill_header *fields, size_t n, const char *version,
                         unsigned layout)
{
    bool names_lowercase = layout & REQUEST_NAMES_LOWER;
    size_t span = !n || !names_lowercase ? 0
                  : layout & REQUEST_PACKED ? (size_t)(fields[n - 1].value + fields[n - 1].value_len + 1 - fields[0].name)
                                            : contiguous_span(fields, n);
    size_t bytes = n * sizeof(rill_header) + span;
    if (!span)
        for (size_t i = 0; i < n; i++)
            bytes += fields[i].name_len + fields[i].value_len + 2;
    rill_header *all = exchange_alloc(st, bytes ? bytes : 1);
    if (!all)
        return RILL_ERR_NOMEM;
    st->all_fields = all;
    char *p = (char *)(all + n);
    if (span)
        memcpy(p, fields[0].name, span);
    size_t npseudo = 0;
    for (size_t i = 0; i < n; i++) {
        all[i] = fields[i];
        if (span) {
            all[i].name = (const uint8_t *)p + (fields[i].name - fields[0].name);
            all[i].value = (const uint8_t *)p + (fields[i].value - fields[0].name);
        } else {
            p = copy_field(&all[i], &fields[i], p, names_lowercase);
        }
        if (is_pseudo(&all[i])) {
            npseudo = i + 1;
            note_pseudo(st, &all[i]);
        }
    }
    st->fields = all + npseudo;
    st->nfields = n - npseudo;
    if (!st->method)
        st->method = "GET";
    if (!st->scheme)
        st->scheme = st->sess->tls ? "https" : "http";
    if (!st->path)
        st->path = ""; /* path_len 0 */
    /* No '#' gets this far (request-target checks on both transports). */
    const char *query = memchr(st->path, '?', st->path_len);
    st->route_len = query ? (size_t)(query - st->path) : st->path_len;
    if (!st->authority) {
        size_t len;
        const char *host = rill_server_request_header(st, "host", &len);
        st->authority = host ? host : "";
    }
    st->head_request = st->method[0] == 'H' && strcmp(st->method, "HEAD") == 0;
    st->version = version;
    return RILL_OK;
}

static void body(rill_server_stream *st, const uint8_t *data, size_t len);

void exchange_body(rill_server_stream *st, const uint8_t *data, size_t len)
{
    exchange_hold(st);
    body(st, data, len);
    exchange_release(st);
}

/* Out of memory for body bytes that must be held: the handler never sees a shortened body. It is
 * answered 500 if it can still be (the rest of the body is then read and dropped); otherwise the
 * connection ends, which the client sees as a reset. */
static void body_lost(rill_server_stream *st)
{
    free(st->early_body);
    st->early_body = NULL;
    st->early_len = 0;
    st->body_fn = NULL;
    st->body_lost = true;
    st->keep_alive = false;
    if (!st->head_sent)
        exchange_respond_simple(st, 500, "text/plain; charset=utf-8", "out of memory\n");
    else
        session_close(st->sess);
}

static void body(rill_server_stream *st, const uint8_t *data, size_t len)
{
    if (len == 0)
        return;
    if (st->body_lost) {
        if (st->ops->consumed)
            st->ops->consumed(st, len);
        return;
    }
    if (st->body_fn && !st->early_len && !st->body_paused) {
        st->body_fn(st, data, len, false, st->body_user);
        if (st->ops->consumed)
            st->ops->consumed(st, len);
        return;
    }
    if (!st->body_fn && st->ended) { /* answered already and nobody reads: discard */
        if (st->ops->consumed)
            st->ops->consumed(st, len);
        return;
    }
    /* Held until on_body is set; flow control bounds how much can arrive meanwhile. */
    uint8_t *grown = realloc(st->early_body, st->early_len + len);
    if (!grown) {
        body_lost(st);
        return;
    }
    memcpy(grown + st->early_len, data, len);
    st->early_body = grown;
    st->early_len += len;
}

void exchange_body_end(rill_server_stream *st)
{
    st->request_ended = true;
    if (st->body_fn && !st->early_len && !st->body_paused && !st->request_end_delivered) {
        st->request_end_delivered = true;
        exchange_hold(st);
        st->body_fn(st, NULL, 0, true, st->body_user);
        exchange_release(st);
    }
}

/* One section, all at once (one HEADERS frame, one chunked trailer section): an array of its
 * own in the arena, no list to grow. */
int exchange_request_trailers(rill_server_stream *st, const rill_header *fields, size_t n,
                              bool names_lowercase)
{
    if (st->req_trailers || n == 0 || n > UINT32_MAX)
        return n ? RILL_ERR_STATE : RILL_OK;
    struct header_list l = {.items = exchange_alloc(st, n * sizeof(rill_header)), .cap = n};
    if (!l.items)
        return RILL_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        if (fields[i].name_len && fields[i].name[0] == ':')
            continue; /* the HTTP/2 engine refuses them already; never handed out */
        int rc = header_list_add(st, &l, (const char *)fields[i].name, fields[i].name_len,
                                 (const char *)fields[i].value, fields[i].value_len,
                                 names_lowercase ? HEADER_NAME_LOWER : 0);
        if (rc < 0)
            return rc;
    }
    st->req_trailers = l.items;
    st->nreq_trailers = (uint32_t)l.count;
    return RILL_OK;
}

size_t rill_server_request_trailer_count(const rill_server_request *r) { return r->nreq_trailers; }

const rill_header *rill_server_request_trailer_at(const rill_server_request *r, size_t i)
{
    return i < r->nreq_trailers ? &r->req_trailers[i] : NULL;
}

const char *rill_server_request_method(const rill_server_request *r) { return r->method; }
const char *rill_server_request_scheme(const rill_server_request *r) { return r->scheme; }
const char *rill_server_request_authority(const rill_server_request *r) { return r->authority; }
const char *rill_server_request_path(const rill_server_request *r) { return r->path; }
const char *rill_server_request_connect_protocol(const rill_server_request *r) { return r->connect_protocol; }
const char *rill_server_request_version(const rill_server_request *r) { return r->version; }
rill_protocol rill_server_request_protocol(const rill_server_request *r) { return (rill_protocol)r->sess->protocol; }
size_t rill_server_request_header_count(const rill_server_request *r) { return r->nfields; }
void rill_server_request_set_user(rill_server_request *r, void *user) { r->user = user; }
void *rill_server_request_user(const rill_server_request *r) { return r->user; }
rill_io_loop *rill_server_request_loop(const rill_server_request *r) { return rill_io_conn_loop(r->sess->c.io); }
rill_server_session *rill_server_stream_session(const rill_server_stream *stream) { return stream->sess; }
int32_t rill_server_stream_id(const rill_server_stream *stream) { return stream->id; }
rill_protocol rill_server_session_protocol(const rill_server_session *session) { return (rill_protocol)session->protocol; }
/* The session is not const to its owner: the text is formatted on first use and cached. */
const char *rill_server_session_peer(const rill_server_session *session) { return session_peer((rill_server_session *)session); }
uint64_t rill_server_session_id(const rill_server_session *session) { return session->id; }

const rill_header *rill_server_request_header_at(const rill_server_request *r, size_t i)
{
    return i < r->nfields ? &r->fields[i] : NULL;
}

const char *rill_server_request_header(const rill_server_request *r, const char *name, size_t *len)
{
    size_t nlen = strlen(name);
    for (size_t i = 0; i < r->nfields; i++)
        if (r->fields[i].name_len == nlen && memcmp(r->fields[i].name, name, nlen) == 0) {
            if (len)
                *len = r->fields[i].value_len;
            return (const char *)r->fields[i].value;
        }
    return NULL;
}

static void request_on_body(rill_server_request *r, rill_server_body_fn fn, void *user);

void rill_server_request_on_body(rill_server_request *r, rill_server_body_fn fn, void *user)
{
    exchange_hold(r);
    request_on_body(r, fn, user);
    exchange_release(r);
}

static void request_on_body(rill_server_request *r, rill_server_body_fn fn, void *user)
{
    if (r->body_lost)
        return; /* answered 500 already: no part of the body reaches the handler */
    r->body_fn = fn;
    r->body_user = user;
    if (r->body_paused)
        return;
    if (fn && r->early_len) {
        uint8_t *held = r->early_body;
        size_t n = r->early_len;
        r->early_body = NULL;
        r->early_len = 0;
        fn(r, held, n, false, user);
        if (r->ops->consumed)
            r->ops->consumed(r, n);
        free(held);
    }
    if (fn && r->request_ended && !r->request_end_delivered) {
        r->request_end_delivered = true;
        fn(r, NULL, 0, true, user);
    }
}

void rill_server_request_pause(rill_server_request *r, bool paused)
{
    if (r->body_paused == paused)
        return;
    exchange_hold(r);
    r->body_paused = paused;
    if (r->ops->pause_body)
        r->ops->pause_body(r, paused);
    if (!paused) /* deliver what was held meanwhile */
        request_on_body(r, r->body_fn, r->body_user);
    session_flush(r->sess);
    exchange_release(r);
}
